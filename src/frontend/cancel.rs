//! CancelRequests: the proxy's own BackendKeyData, and what each key may cancel.
//!
//! Every session registers a (pid, secret) pair and a slot holding the backend connection that is
//! running its statement right now, if any. A CancelRequest with a matching secret cancels that
//! statement and nothing else: a slot is cleared when the session has no statement in flight, so a
//! stale cancel never reaches a pooled connection's next user.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// The backend statement a session has in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub addr: SocketAddr,
    pub pid: i32,
    pub secret: Vec<u8>,
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
        assert_eq!(reg.lookup(r.pid, r.secret), None);
        let f = InFlight {
            addr: "127.0.0.1:5432".parse().unwrap(),
            pid: 7,
            secret: vec![1, 2, 3, 4],
        };
        *r.slot.lock().unwrap() = Some(f.clone());
        assert_eq!(reg.lookup(r.pid, r.secret.wrapping_add(1)), None);
        assert_eq!(reg.lookup(r.pid, r.secret), Some(f));
        let (pid, secret) = (r.pid, r.secret);
        drop(r);
        assert_eq!(reg.lookup(pid, secret), None);
    }
}
