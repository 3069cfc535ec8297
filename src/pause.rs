//! The pause gate of the admin console's `PAUSE [bind]` / `RESUME [bind]`.
//!
//! Owns: which binds are paused, and waking the sessions that wait for one when it resumes. A
//! session asks [`PauseGate::is_paused`] before it starts a statement on a bind (Query, Execute, a
//! piece of a statement across binds); while the bind is paused the statement is held back and
//! the session waits in [`PauseGate::resumed`] (its pump still reads the client and relays the
//! answers already due; shutdown releases it, a CancelRequest gives it up). Statements already
//! sent finish.
//!
//! Cost when nothing is paused: one atomic load per statement.
//!
//! Must never: hold a lock a session waits on (the one lock here serialises PAUSE and RESUME),
//! or hold back transaction control (COMMIT, ROLLBACK), which lets the open transactions end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::proxy::BindId;

pub struct PauseGate {
    /// True while any bind is paused: the only load when none is.
    any: AtomicBool,
    paused: Vec<AtomicBool>,
    resumed: Notify,
    /// Serialises PAUSE and RESUME (two consoles at once), so that `any` is never left false
    /// while a bind is paused. Never taken by sessions.
    change: Mutex<()>,
}

impl PauseGate {
    pub fn new(binds: usize) -> PauseGate {
        PauseGate {
            any: AtomicBool::new(false),
            paused: (0..binds).map(|_| AtomicBool::new(false)).collect(),
            resumed: Notify::new(),
            change: Mutex::new(()),
        }
    }

    /// Whether any bind is paused.
    #[inline]
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Whether new statements for `bind` must wait.
    #[inline]
    pub fn is_paused(&self, bind: BindId) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .paused
                .get(bind)
                .is_some_and(|p| p.load(Ordering::Acquire))
    }

    /// Pauses these binds.
    pub fn pause(&self, binds: &[BindId]) {
        let _one_at_a_time = self.change.lock().unwrap_or_else(|p| p.into_inner());
        for &b in binds {
            if let Some(p) = self.paused.get(b) {
                p.store(true, Ordering::Release);
            }
        }
        self.any
            .store(!self.paused_binds().is_empty(), Ordering::Release);
    }

    /// Resumes these binds and wakes the sessions waiting for them.
    pub fn resume(&self, binds: &[BindId]) {
        let _one_at_a_time = self.change.lock().unwrap_or_else(|p| p.into_inner());
        for &b in binds {
            if let Some(p) = self.paused.get(b) {
                p.store(false, Ordering::Release);
            }
        }
        self.any
            .store(!self.paused_binds().is_empty(), Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// The binds paused now.
    pub fn paused_binds(&self) -> Vec<BindId> {
        self.paused
            .iter()
            .enumerate()
            .filter(|(_, p)| p.load(Ordering::Acquire))
            .map(|(i, _)| i)
            .collect()
    }

    /// Resolves once `bind` is not paused.
    pub async fn resumed(&self, bind: BindId) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused(bind) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_paused_bind_waits_until_resumed() {
        let g = Arc::new(PauseGate::new(3));
        assert!(!g.is_paused(1));
        g.pause(&[1, 7]);
        assert!(g.is_paused(1) && !g.is_paused(0) && !g.is_paused(7));
        assert_eq!(g.paused_binds(), vec![1]);
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.resumed(1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        g.resume(&[0]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "another bind resumed");
        g.resume(&[1]);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("resumed")
            .expect("task");
        assert!(g.paused_binds().is_empty() && !g.is_paused(1));
    }
}
