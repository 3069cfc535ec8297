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

/// Per bind: reachable, and why not.
type Reachability = Arc<Vec<(bool, Option<String>)>>;

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
        let reach = self.reachability(proxy).await;
        let binds: Vec<BindReadiness> = proxy
            .binds
            .iter()
            .zip(&proxy.bind_names)
            .zip(reach.iter())
            .enumerate()
            // the catalog database answers catalog queries only: data keeps flowing without it
            .filter(|(i, _)| proxy.is_user_bind(*i))
            .map(|(i, ((bind, name), (ok, error)))| {
                let (in_use, idle) = bind.pool_usage();
                let size = proxy
                    .config
                    .binds
                    .get(name)
                    .map(|c| c.pool_size)
                    .unwrap_or(0);
                BindReadiness {
                    name: name.clone(),
                    engine: bind.engine(),
                    ok: *ok,
                    error: error.clone(),
                    pool: PoolUsage { size, in_use, idle },
                    replicas: proxy
                        .replicas
                        .get(i)
                        .and_then(Option::as_ref)
                        .map(|r| r.status()),
                }
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

    async fn reachability(&self, proxy: &Proxy) -> Reachability {
        // Held across the check: concurrent probes wait for it instead of checking too.
        let mut last = self.last.lock().await;
        if let Some((at, r)) = last.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return r.clone();
            }
        }
        let checks = proxy.binds.iter().map(|b| async move {
            match tokio::time::timeout(CHECK_TIMEOUT, b.check()).await {
                Ok(Ok(_)) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (
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
