//! The live client sessions, as the admin console sees them (`SHOW CLIENTS`, `SHOW TRANSACTIONS`,
//! `KILL`).
//!
//! Owns: one [`ClientEntry`] per session (console sessions included), keyed by the session's
//! BackendKeyData process id (`frontend::cancel`): who it is (user, database, application name,
//! address, TLS, start time), what it does now ([`ClientState`]), the binds it holds leases of,
//! its open multi-bind transaction, and the request to end it ([`ClientEntry::kill`]).
//!
//! Cost: the registry's lock is taken once when a session starts and once when it ends. A
//! session publishes its state with one relaxed atomic store when the state changes; the binds it
//! holds and its multi-bind transaction change at most once per lease or per participant, under a
//! lock of the entry's own. Nothing here is touched per statement on the single-bind path.
//!
//! Must never: reach into a session (a kill is a flag and a wake; the session ends itself, rolling
//! back and giving its connections back as it does on shutdown).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::task::AtomicWaker;

use crate::proxy::BindId;
use crate::tx::Phase;

/// What a session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Waiting for the client, no transaction open.
    Idle,
    /// Waiting for the client inside a transaction.
    InTransaction,
    /// Answers are due: a statement runs.
    Active,
    /// A statement waits for a bind paused by `PAUSE`.
    Waiting,
}

impl ClientState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Idle => "idle",
            ClientState::InTransaction => "in transaction",
            ClientState::Active => "active",
            ClientState::Waiting => "waiting (paused)",
        }
    }

    fn from_u8(v: u8) -> ClientState {
        match v {
            1 => ClientState::InTransaction,
            2 => ClientState::Active,
            3 => ClientState::Waiting,
            _ => ClientState::Idle,
        }
    }
}

/// Who a session is: fixed at its start.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub peer: Option<SocketAddr>,
    pub tls: bool,
    /// An admin console session.
    pub console: bool,
}

/// One session's entry.
pub struct ClientEntry {
    pub pid: i32,
    pub identity: ClientIdentity,
    pub since: SystemTime,
    state: AtomicU8,
    binds: Mutex<Vec<BindId>>,
    transaction: Mutex<Option<Vec<(BindId, Phase)>>>,
    killed: AtomicBool,
    /// A CancelRequest for the statement waiting at the pause gate.
    cancel_wait: AtomicBool,
    /// Woken by [`ClientEntry::kill`]: the session's pump waits on it.
    waker: AtomicWaker,
}

impl ClientEntry {
    pub fn state(&self) -> ClientState {
        ClientState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, s: ClientState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// The binds the session holds a connection of.
    pub fn binds(&self) -> Vec<BindId> {
        self.binds.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub fn set_binds(&self, binds: Vec<BindId>) {
        if let Ok(mut b) = self.binds.lock() {
            *b = binds;
        }
    }

    /// The session's open transaction over several binds: each participant and its phase.
    pub fn transaction(&self) -> Option<Vec<(BindId, Phase)>> {
        self.transaction.lock().ok().and_then(|t| t.clone())
    }

    pub fn set_transaction(&self, t: Option<Vec<(BindId, Phase)>>) {
        if let Ok(mut slot) = self.transaction.lock() {
            *slot = t;
        }
    }

    /// Asks the session to end (`KILL`); it does at its next wake.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// A CancelRequest for the statement waiting at the pause gate (`frontend::cancel`).
    pub fn cancel_wait(&self) {
        self.cancel_wait.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Takes the cancel of [`ClientEntry::cancel_wait`], if one came.
    pub fn take_cancel_wait(&self) -> bool {
        self.cancel_wait.swap(false, Ordering::AcqRel)
    }

    /// Registers the task to be woken by [`ClientEntry::kill`] and [`ClientEntry::cancel_wait`];
    /// true when one of them was asked already.
    pub fn poll_woken(&self, cx: &std::task::Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.killed() || self.cancel_wait.load(Ordering::Acquire)
    }
}

/// Every open session, by process id.
#[derive(Default)]
pub struct ClientRegistry {
    sessions: Mutex<BTreeMap<i32, Arc<ClientEntry>>>,
}

/// A session's place in the registry; removed when dropped.
pub struct ClientHandle {
    registry: Arc<ClientRegistry>,
    pub entry: Arc<ClientEntry>,
}

impl ClientRegistry {
    pub fn new() -> Arc<ClientRegistry> {
        Arc::new(ClientRegistry::default())
    }

    pub fn register(self: &Arc<Self>, pid: i32, identity: ClientIdentity) -> ClientHandle {
        let entry = Arc::new(ClientEntry {
            pid,
            identity,
            since: SystemTime::now(),
            state: AtomicU8::new(ClientState::Idle as u8),
            binds: Mutex::new(Vec::new()),
            transaction: Mutex::new(None),
            killed: AtomicBool::new(false),
            cancel_wait: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(pid, entry.clone());
        }
        ClientHandle {
            registry: self.clone(),
            entry,
        }
    }

    /// Every session open now, by process id.
    pub fn list(&self) -> Vec<Arc<ClientEntry>> {
        self.sessions
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, pid: i32) -> Option<Arc<ClientEntry>> {
        self.sessions.lock().ok()?.get(&pid).cloned()
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        if let Ok(mut s) = self.registry.sessions.lock() {
            s.remove(&self.entry.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> ClientIdentity {
        ClientIdentity {
            user: "u".into(),
            database: "d".into(),
            application_name: "a".into(),
            peer: None,
            tls: false,
            console: false,
        }
    }

    #[test]
    fn entries_live_as_long_as_their_handle() {
        let r = ClientRegistry::new();
        let h = r.register(1001, who());
        assert_eq!(r.list().len(), 1);
        h.entry.set_state(ClientState::Active);
        assert_eq!(r.get(1001).map(|e| e.state()), Some(ClientState::Active));
        assert!(!h.entry.killed());
        r.get(1001).expect("entry").kill();
        assert!(h.entry.killed());
        drop(h);
        assert!(r.get(1001).is_none() && r.list().is_empty());
    }
}
