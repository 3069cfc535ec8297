//! The read replicas of one PostgreSQL bind: a pool per replica, which of them may serve reads
//! now, and round-robin between those.
//!
//! Owns: [`ReplicaSet`] (the replicas of one bind, `replica_lag_max_ms`, `read_your_writes_ms`),
//! the choice of a replica for a new lease ([`ReplicaSet::checkout`]: round-robin over the usable
//! ones, never waiting for a busy pool), and the monitor ([`ReplicaSet::spawn_monitor`]): one task
//! per bind that asks every replica for its replay lag once per [`CHECK_EVERY`] on a connection of
//! its own, and marks it unusable when it lags more than `replica_lag_max_ms`, is not a standby, or
//! cannot be reached. Sessions read the verdict with one atomic load.
//!
//! A set belongs to its primary's registry slot (`registry.rs`): a reload that replaces the bind
//! (or changes its replicas) opens a new set with the new slot; the old one is retired with the
//! old slot ([`ReplicaSet::retire`]): its pools drain like the primary's, no new lease is handed
//! out, and its monitor stops.
//!
//! Must never: decide which statements may go to a replica (that is `sql/readonly.rs` and the
//! session), look at a replica per statement (the monitor does, in the background), or hand out a
//! connection to a replica it knows is unusable.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::conn::PgConn;
use super::pool::{PgLease, PgPool};
use crate::config::{BindConfig, ReplicaConfig};

/// How often the monitor asks each replica for its lag.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The replay lag in milliseconds: 0 when everything received is replayed, NULL when the server is
/// not a standby or the lag cannot be known yet.
const LAG_QUERY: &str = "SELECT CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN NULL \
     WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0 \
     ELSE (pg_catalog.date_part('epoch', pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::bigint END";

/// Lag not known (never checked, unreachable).
const UNKNOWN_LAG: u64 = u64::MAX;

/// One replica of a bind.
pub struct Replica {
    pub pool: Arc<PgPool>,
    /// The monitor's verdict: reads may go there.
    usable: AtomicBool,
    /// The last lag measured, in ms ([`UNKNOWN_LAG`] when unknown).
    lag_ms: AtomicU64,
    /// Why it is not usable, for `/readyz` (written by the monitor only, read by probes).
    problem: Mutex<Option<String>>,
}

/// The replicas of one PostgreSQL bind.
pub struct ReplicaSet {
    /// The primary's bind name.
    pub bind: String,
    pub replicas: Vec<Replica>,
    /// Round-robin position.
    next: AtomicUsize,
    pub lag_max: Duration,
    pub read_your_writes: Duration,
    connect_timeout: Duration,
    /// What it was opened with (a reload compares it with the file).
    pub config: ReplicaConfig,
    /// Set when its slot is retired: no new lease, the monitor ends.
    retired: AtomicBool,
}

/// A replica's state, as `/readyz` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub target: String,
    pub usable: bool,
    /// Null while unknown.
    pub lag_ms: Option<u64>,
    pub error: Option<String>,
}

impl ReplicaSet {
    /// The replicas of `bind`, each with a pool as large as the primary's. No replica serves before
    /// the monitor's first check (at once when it starts); a session that cannot reach one marks
    /// it unusable until the next check.
    pub fn new(bind: &BindConfig, cfg: &ReplicaConfig) -> Arc<ReplicaSet> {
        let replicas = cfg
            .targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let pool_cfg = BindConfig {
                    name: format!("{} (replica {})", bind.name, i + 1),
                    ..bind.clone()
                };
                Replica {
                    pool: PgPool::new(&pool_cfg, target.clone()),
                    usable: AtomicBool::new(false),
                    lag_ms: AtomicU64::new(UNKNOWN_LAG),
                    problem: Mutex::new(Some("not checked yet".into())),
                }
            })
            .collect();
        Arc::new(ReplicaSet {
            bind: bind.name.clone(),
            replicas,
            next: AtomicUsize::new(0),
            lag_max: cfg.lag_max,
            read_your_writes: cfg.read_your_writes,
            connect_timeout: bind.connect_timeout,
            config: cfg.clone(),
            retired: AtomicBool::new(false),
        })
    }

    /// Its primary's slot was retired by a reload: every replica pool drains (connections close
    /// as they come back), no new lease is handed out, the monitor stops at its next tick.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        for r in &self.replicas {
            r.usable.store(false, Ordering::Relaxed);
            r.pool.retire();
        }
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Whether replica `i` may serve reads now (one atomic load).
    pub fn usable(&self, i: usize) -> bool {
        !self.is_retired()
            && self
                .replicas
                .get(i)
                .is_some_and(|r| r.usable.load(Ordering::Relaxed))
    }

    /// A connection to the next usable replica, round-robin, with its index; None when no replica
    /// can serve now (all unusable, their pools busy, or unreachable: those are marked), so that
    /// the primary serves.
    pub async fn checkout(&self) -> Option<(usize, PgLease)> {
        let n = self.replicas.len();
        if n == 0 || self.is_retired() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            if !self.usable(i) {
                continue;
            }
            match self.replicas[i].pool.try_checkout().await {
                Some(Ok(lease)) => return Some((i, lease)),
                Some(Err(e)) => self.replicas[i].set(false, UNKNOWN_LAG, Some(e.to_string())),
                None => {}
            }
        }
        None
    }

    /// Every replica's state, for `/readyz`.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .map(|r| {
                let lag = r.lag_ms.load(Ordering::Relaxed);
                ReplicaStatus {
                    target: r.pool.target().to_string(),
                    usable: r.usable.load(Ordering::Relaxed),
                    lag_ms: (lag != UNKNOWN_LAG).then_some(lag),
                    error: r.problem.lock().ok().and_then(|p| p.clone()),
                }
            })
            .collect()
    }

    /// Starts the task that checks every replica's lag once per [`CHECK_EVERY`], until the set
    /// is retired.
    pub fn spawn_monitor(self: &Arc<Self>) {
        let set = self.clone();
        tokio::spawn(async move {
            let mut conns: Vec<Option<PgConn>> = set.replicas.iter().map(|_| None).collect();
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if set.is_retired() {
                    break;
                }
                for (i, slot) in conns.iter_mut().enumerate() {
                    set.check(i, slot).await;
                }
            }
        });
    }

    /// Measures replica `i`'s lag on the monitor's connection `conn` (opened when missing,
    /// dropped on any failure) and records the verdict.
    async fn check(&self, i: usize, conn: &mut Option<PgConn>) {
        let replica = &self.replicas[i];
        let measured = tokio::time::timeout(self.connect_timeout.max(CHECK_EVERY), async {
            let c = match conn {
                Some(c) => c,
                None => conn.insert(replica.pool.connect().await.map_err(|e| e.to_string())?),
            };
            match c.query_text(LAG_QUERY).await {
                Ok(Ok(rows)) => Ok(rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_deref())
                    .and_then(|v| v.parse::<i64>().ok())),
                Ok(Err(message)) => Err(message),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        let lag_max = u64::try_from(self.lag_max.as_millis()).unwrap_or(u64::MAX);
        match measured {
            Ok(Ok(Some(lag))) => {
                let lag = u64::try_from(lag).unwrap_or(0);
                let problem = (lag > lag_max)
                    .then(|| format!("replay lag {lag} ms exceeds replica_lag_max_ms {lag_max}"));
                replica.set(problem.is_none(), lag, problem);
            }
            Ok(Ok(None)) => replica.set(
                false,
                UNKNOWN_LAG,
                Some("not a standby, or its replay lag is not known yet".into()),
            ),
            Ok(Err(e)) => {
                *conn = None;
                replica.set(false, UNKNOWN_LAG, Some(e));
            }
            Err(_) => {
                *conn = None;
                replica.set(
                    false,
                    UNKNOWN_LAG,
                    Some("no answer to the lag check".into()),
                );
            }
        }
    }
}

impl Replica {
    fn set(&self, usable: bool, lag: u64, problem: Option<String>) {
        let was = self.usable.swap(usable, Ordering::Relaxed);
        self.lag_ms.store(lag, Ordering::Relaxed);
        if was != usable {
            tracing::info!(
                replica = %self.pool.name,
                usable,
                reason = problem.as_deref().unwrap_or("lag within replica_lag_max_ms"),
                "read replica state changed"
            );
        }
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }
}
