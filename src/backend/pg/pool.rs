//! A pool of raw connections to one PostgreSQL bind.
//!
//! Owns: how many connections a bind may have (`pool_size`), how long a client waits for one
//! (`checkout_timeout`, then SQLSTATE 53300), and cleaning a connection before anyone else gets it.
//!
//! Invariant: a connection in `idle` is clean: no open transaction, no session state (`DISCARD ALL`
//! ran on it after its last client). A connection that could not be cleaned is closed instead.
//! A retired pool (a reload replaced or removed its bind, `registry.rs`) keeps no idle connection:
//! each one is closed when its lease comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::{ConnectError, PgConn};
use crate::config::{BindConfig, PgTarget};
use crate::error::ProxyError;

pub struct PgPool {
    pub name: String,
    target: PgTarget,
    size: usize,
    checkout_timeout: Duration,
    connect_timeout: Duration,
    idle: Mutex<Vec<PgConn>>,
    permits: Arc<Semaphore>,
    /// ParameterStatus values of the last connection opened (server_version, TimeZone, …).
    server_params: Mutex<Option<Vec<(String, String)>>>,
    /// Set by [`PgPool::retire`]: connections are closed, not pooled.
    retired: AtomicBool,
}

/// A connection leased to one client session. Give it back with [`PgPool::release`].
pub struct PgLease {
    pub conn: PgConn,
    /// Set when the connection's state is unknown (client left mid-statement, I/O error): it will
    /// be closed, not pooled.
    pub broken: bool,
    pool: Arc<PgPool>,
    _permit: OwnedSemaphorePermit,
}

impl PgPool {
    pub fn new(cfg: &BindConfig, target: PgTarget) -> Arc<PgPool> {
        Arc::new(PgPool {
            name: cfg.name.clone(),
            target,
            size: cfg.pool_size,
            checkout_timeout: cfg.checkout_timeout,
            connect_timeout: cfg.connect_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(cfg.pool_size)),
            server_params: Mutex::new(None),
            retired: AtomicBool::new(false),
        })
    }

    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// Connections leased now (or being cleaned after their lease), and connections idle.
    pub fn usage(&self) -> (usize, usize) {
        let in_use = self.size.saturating_sub(self.permits.available_permits());
        let idle = self.idle.lock().map(|i| i.len()).unwrap_or(0);
        (in_use, idle)
    }

    /// The server's ParameterStatus set, if a connection has been opened yet.
    pub fn server_params(&self) -> Option<Vec<(String, String)>> {
        self.server_params.lock().ok().and_then(|p| p.clone())
    }

    /// Takes a clean connection, opening one if none is idle. Waits at most `checkout_timeout` for a
    /// free slot.
    pub async fn checkout(self: &Arc<Self>) -> Result<PgLease, ProxyError> {
        let permit =
            match tokio::time::timeout(self.checkout_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                _ => {
                    return Err(ProxyError::PoolExhausted {
                        bind: self.name.clone(),
                        size: self.size,
                        waited_ms: self.checkout_timeout.as_millis() as u64,
                    })
                }
            };
        self.lease_with(permit).await
    }

    /// Like [`PgPool::checkout`], but without waiting for a free slot: None when every
    /// connection is leased (a read replica's pool, where the primary can serve instead).
    pub async fn try_checkout(self: &Arc<Self>) -> Option<Result<PgLease, ProxyError>> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(self.lease_with(permit).await)
    }

    /// A clean idle connection, or a new one, under `permit`.
    async fn lease_with(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
    ) -> Result<PgLease, ProxyError> {
        loop {
            let conn = match self.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(_) => None,
            };
            match conn {
                Some(mut conn) => {
                    if conn.is_stale() {
                        continue;
                    }
                    return Ok(PgLease {
                        conn,
                        broken: false,
                        pool: self.clone(),
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let conn = self.connect().await?;
        Ok(PgLease {
            conn,
            broken: false,
            pool: self.clone(),
            _permit: permit,
        })
    }

    /// Drains the pool: idle connections close now, leased ones when they come back.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let idle = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => Vec::new(),
        };
        for conn in idle {
            conn.terminate();
        }
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Opens a new connection (used by checkout and by `bindproxy check`).
    pub async fn connect(&self) -> Result<PgConn, ProxyError> {
        let conn =
            match tokio::time::timeout(self.connect_timeout, PgConn::connect(&self.target, &[]))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(self.unavailable(e)),
                Err(_) => return Err(self.unavailable(ConnectError::Timeout)),
            };
        if let Ok(mut p) = self.server_params.lock() {
            *p = Some(conn.params.clone());
        }
        Ok(conn)
    }

    fn unavailable(&self, e: ConnectError) -> ProxyError {
        ProxyError::BackendUnavailable {
            bind: self.name.clone(),
            reason: format!("{} ({})", e, self.target),
        }
    }

    /// Gives a connection back. Cleaning needs a round trip, so it runs in its own task; the slot
    /// stays taken until it is done.
    pub fn release(lease: PgLease) {
        tokio::spawn(async move {
            let PgLease {
                mut conn,
                broken,
                pool,
                _permit,
            } = lease;
            if broken {
                return;
            }
            if pool.is_retired() {
                conn.terminate();
                return;
            }
            // Two Query messages, not one: a multi-statement query is one implicit transaction,
            // and DISCARD ALL refuses to run inside a transaction block.
            let sql: &[&str] = if conn.status == b'I' {
                &["DISCARD ALL"]
            } else {
                &["ROLLBACK", "DISCARD ALL"]
            };
            let clean = tokio::time::timeout(Duration::from_secs(10), conn.run_quiet(sql)).await;
            if matches!(clean, Ok(Ok(None))) && conn.status == b'I' {
                if pool.is_retired() {
                    conn.terminate();
                } else if let Ok(mut idle) = pool.idle.lock() {
                    idle.push(conn);
                }
            }
        });
    }
}
