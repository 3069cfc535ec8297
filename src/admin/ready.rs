//! Readiness of the binds, for `/readyz`: each bind reached with a short timeout, the answer
//! cached for [`CACHE_FOR`] so that probes cannot hammer the databases.
//!
//! Owns: [`Readiness`] (per bind: name, engine, reachable, error, pool usage, and its read
//! replicas' state from their lag monitor) and its cache. A
//! bind is reachable when a fresh connection to it opens and answers (`Bind::check`, the same
//! check as `bindproxy check`) within [`CHECK_TIMEOUT`].
//!
//! Must never: check more often than once per [`CACHE_FOR`], however many probes come at once
//! (concurrent probes wait for the one check under way).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::pg::replica::ReplicaStatus;
use crate::proxy::Proxy;
use crate::shutdown::{Shutdown, Stage};

/// How long one answer is served before the binds are checked again.
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// How long a bind may take to accept a connection and answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Every bind reachable and the process not shutting down.
    pub ready: bool,
    /// `running`, `draining` or `closing`.
    pub stage: &'static str,
    pub binds: Vec<BindReadiness>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BindReadiness {
    pub name: String,
    pub engine: &'static str,
    pub ok: bool,
    pub error: Option<String>,
    pub pool: PoolUsage,
    /// The bind's read replicas as the lag monitor last saw them (absent for a bind without
    /// replicas). They do not make the bind or the process unready: the primary serves instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<ReplicaStatus>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolUsage {
    pub size: usize,
    pub in_use: usize,
    /// Null when the engine's pool does not say (MySQL/MariaDB, SQLite).
    pub idle: Option<usize>,
}

/// Per bind slot: reachable, and why not.
type Reachability = Arc<Vec<(crate::proxy::BindId, bool, Option<String>)>>;

/// The last answer and when it was made.
pub struct ReadyCache {
    last: tokio::sync::Mutex<Option<(Instant, Reachability)>>,
}

impl Default for ReadyCache {
    fn default() -> Self {
        ReadyCache {
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl ReadyCache {
    /// The readiness now: the binds' reachability at most [`CACHE_FOR`] old; the pools' usage
    /// and the shutdown stage as they are.
    pub async fn readiness(&self, proxy: &Proxy, shutdown: &Shutdown) -> Readiness {
        // the binds in force now; the catalog database answers catalog queries only: data keeps
        // flowing without it
        let current = proxy.user_binds();
        let ids: Vec<_> = current.iter().map(|(_, id)| *id).collect();
        let reach = self.reachability(proxy, &ids).await;
        let binds: Vec<BindReadiness> = current
            .into_iter()
            .filter_map(|(name, id)| {
                let slot = proxy.binds.get(id)?;
                let (ok, error) = reach
                    .iter()
                    .find(|(b, _, _)| *b == id)
                    .map(|(_, ok, e)| (*ok, e.clone()))
                    .unwrap_or((false, Some("not checked".into())));
                let (in_use, idle) = slot.bind.pool_usage();
                let size = slot.config.as_ref().map(|c| c.pool_size).unwrap_or(0);
                Some(BindReadiness {
                    name,
                    engine: slot.bind.engine(),
                    ok,
                    error,
                    pool: PoolUsage { size, in_use, idle },
                    replicas: slot.replicas.as_ref().map(|r| r.status()),
                })
            })
            .collect();
        let stage = shutdown.stage();
        Readiness {
            ready: stage == Stage::Running && binds.iter().all(|b| b.ok),
            stage: match stage {
                Stage::Running => "running",
                Stage::Draining => "draining",
                Stage::Closing => "closing",
            },
            binds,
        }
    }

    async fn reachability(&self, proxy: &Proxy, ids: &[crate::proxy::BindId]) -> Reachability {
        // Held across the check: concurrent probes wait for it instead of checking too.
        let mut last = self.last.lock().await;
        if let Some((at, r)) = last.as_ref() {
            // a reload that changed the binds makes the cached answer moot
            let same = r.len() == ids.len() && r.iter().zip(ids).all(|(a, b)| a.0 == *b);
            if same && at.elapsed() < CACHE_FOR {
                return r.clone();
            }
        }
        let checks = ids.iter().map(|&id| async move {
            let Some(slot) = proxy.binds.get(id) else {
                return (id, false, Some("no such bind".into()));
            };
            match tokio::time::timeout(CHECK_TIMEOUT, slot.bind.check()).await {
                Ok(Ok(_)) => (id, true, None),
                Ok(Err(e)) => (id, false, Some(e.to_string())),
                Err(_) => (
                    id,
                    false,
                    Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
                ),
            }
        });
        let r = Arc::new(futures::future::join_all(checks).await);
        *last = Some((Instant::now(), r.clone()));
        r
    }
}
