//! CancelRequests: the proxy's own BackendKeyData, and what each key may cancel (a statement
//! running on a bind, or one waiting for a bind paused by the admin console).
//!
//! Every session registers a (pid, secret) pair and a slot holding the backend connection that is
//! running its statement right now, if any: a PostgreSQL connection (the cancel is PostgreSQL's own
//! CancelRequest with the backend's key), a MySQL/MariaDB one (`KILL QUERY <id>` from a fresh
//! connection) or an SQLite one (its interrupt handle). A CancelRequest with a matching secret
//! cancels that statement and nothing else: a slot is cleared when the session has no statement in
//! flight, so a stale cancel never reaches a pooled connection's next user (MySQL/SQLite handles
//! also carry a ticket that the end of the statement and of the lease invalidate, see
//! `backend::translated::CancelGate`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use crate::backend::translated::mysql::MyCancel;
use crate::backend::translated::sqlite::SqliteCancel;
use crate::backend::translated::CancelHandle;

/// The backend statement a session has in flight, and how to cancel it.
#[derive(Clone)]
pub enum InFlight {
    /// A PostgreSQL bind: a CancelRequest with the backend's own key.
    Pg {
        addr: SocketAddr,
        pid: i32,
        secret: Vec<u8>,
    },
    /// A MySQL/MariaDB bind: `KILL QUERY` of the connection's id.
    MySql(MyCancel),
    /// An SQLite bind: the connection's interrupt handle.
    Sqlite(SqliteCancel),
    /// No bind yet: the statement waits for a bind the admin console paused (`crate::pause`); the
    /// session gives it up with 57014.
    Paused(Arc<crate::clients::ClientEntry>),
}

impl From<CancelHandle> for InFlight {
    fn from(h: CancelHandle) -> Self {
        match h {
            CancelHandle::MySql(c) => InFlight::MySql(c),
            CancelHandle::Sqlite(c) => InFlight::Sqlite(c),
        }
    }
}

impl InFlight {
    /// Cancels the statement (the error says why it could not be delivered).
    pub async fn cancel(self) -> Result<(), String> {
        match self {
            InFlight::Pg { addr, pid, secret } => {
                crate::backend::pg::PgConn::cancel(addr, pid, &secret)
                    .await
                    .map_err(|e| format!("{addr}: {e}"))
            }
            InFlight::MySql(c) => CancelHandle::MySql(c).cancel().await,
            InFlight::Sqlite(c) => CancelHandle::Sqlite(c).cancel().await,
            InFlight::Paused(entry) => {
                entry.cancel_wait();
                Ok(())
            }
        }
    }

    /// The statement ended: a cancel already looked up does nothing (MySQL/SQLite; a PostgreSQL
    /// cancel behaves as PostgreSQL's own).
    pub fn retire(&self) {
        match self {
            InFlight::Pg { .. } | InFlight::Paused(_) => {}
            InFlight::MySql(c) => CancelHandle::MySql(c.clone()).retire(),
            InFlight::Sqlite(c) => CancelHandle::Sqlite(c.clone()).retire(),
        }
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InFlight::Pg { addr, pid, .. } => write!(f, "InFlight::Pg({addr}, {pid})"),
            InFlight::MySql(_) => f.write_str("InFlight::MySql"),
            InFlight::Sqlite(_) => f.write_str("InFlight::Sqlite"),
            InFlight::Paused(e) => write!(f, "InFlight::Paused({})", e.pid),
        }
    }
}

pub type CancelSlot = Arc<Mutex<Option<InFlight>>>;

#[derive(Default)]
pub struct CancelRegistry {
    next_pid: AtomicI32,
    sessions: Mutex<HashMap<i32, (i32, CancelSlot)>>,
}

/// Removes the session's key when dropped.
pub struct Registration {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
    pub slot: CancelSlot,
}

impl CancelRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(CancelRegistry {
            next_pid: AtomicI32::new(1_000),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn register(self: &Arc<Self>) -> Registration {
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed) & 0x3fff_ffff;
        let secret = rand::random::<i32>();
        let slot: CancelSlot = Arc::new(Mutex::new(None));
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(pid, (secret, slot.clone()));
        }
        Registration {
            registry: self.clone(),
            pid,
            secret,
            slot,
        }
    }

    /// The statement to cancel for this key, if the key is valid and a statement is in flight.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<InFlight> {
        let sessions = self.sessions.lock().ok()?;
        let (s, slot) = sessions.get(&pid)?;
        if *s != secret {
            return None;
        }
        let in_flight = slot.lock().ok()?.clone();
        in_flight
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut s) = self.registry.sessions.lock() {
            s.remove(&self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancels_only_with_the_right_secret_and_while_in_flight() {
        let reg = CancelRegistry::new();
        let r = reg.register();
        assert!(reg.lookup(r.pid, r.secret).is_none());
        let f = InFlight::Pg {
            addr: "127.0.0.1:5432".parse().unwrap(),
            pid: 7,
            secret: vec![1, 2, 3, 4],
        };
        *r.slot.lock().unwrap() = Some(f);
        assert!(reg.lookup(r.pid, r.secret.wrapping_add(1)).is_none());
        assert!(matches!(
            reg.lookup(r.pid, r.secret),
            Some(InFlight::Pg { pid: 7, .. })
        ));
        let (pid, secret) = (r.pid, r.secret);
        drop(r);
        assert!(reg.lookup(pid, secret).is_none());
    }
}
