//! The pause gate of the admin console's `PAUSE [bind]` / `RESUME [bind]`.
//!
//! Owns: which binds are paused (by name: a reload that replaces a paused bind's pool leaves the
//! bind paused), and waking the sessions that wait for one when it resumes. A
//! session asks [`PauseGate::is_paused`] before it starts a statement on a bind (Query, Execute, a
//! piece of a statement across binds); while the bind is paused the statement is held back and
//! the session waits in [`PauseGate::resumed`] (its pump still reads the client and relays the
//! answers already due; shutdown releases it, a CancelRequest gives it up). Statements already
//! sent finish.
//!
//! Cost when nothing is paused: one atomic load per statement.
//!
//! Must never: hold a lock a session waits on (the set of names is locked only for a lookup while
//! something is paused, and by PAUSE/RESUME),
//! or hold back transaction control (COMMIT, ROLLBACK), which lets the open transactions end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct PauseGate {
    /// True while any bind is paused: the only load when none is.
    any: AtomicBool,
    /// The names of the paused binds; changed by PAUSE and RESUME only, one at a time, so that
    /// `any` is never left false while a bind is paused.
    paused: Mutex<BTreeSet<Arc<str>>>,
    resumed: Notify,
}

impl PauseGate {
    pub fn new() -> PauseGate {
        PauseGate::default()
    }

    fn names(&self) -> std::sync::MutexGuard<'_, BTreeSet<Arc<str>>> {
        self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any bind is paused.
    #[inline]
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Whether new statements for the bind `name` must wait.
    #[inline]
    pub fn is_paused(&self, name: &str) -> bool {
        self.any() && self.names().contains(name)
    }

    /// Pauses these binds.
    pub fn pause(&self, binds: &[Arc<str>]) {
        let mut names = self.names();
        names.extend(binds.iter().cloned());
        self.any.store(!names.is_empty(), Ordering::Release);
    }

    /// Resumes these binds and wakes the sessions waiting for them.
    pub fn resume(&self, binds: &[Arc<str>]) {
        let mut names = self.names();
        for b in binds {
            names.remove(b);
        }
        self.any.store(!names.is_empty(), Ordering::Release);
        drop(names);
        self.resumed.notify_waiters();
    }

    /// The binds paused now.
    pub fn paused_binds(&self) -> Vec<Arc<str>> {
        self.names().iter().cloned().collect()
    }

    /// Resolves once the bind `name` is not paused.
    pub async fn resumed(&self, name: &str) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused(name) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn names(n: &[&str]) -> Vec<Arc<str>> {
        n.iter().map(|s| Arc::from(*s)).collect()
    }

    #[tokio::test]
    async fn a_paused_bind_waits_until_resumed() {
        let g = Arc::new(PauseGate::new());
        assert!(!g.is_paused("b") && !g.any());
        g.pause(&names(&["b", "x"]));
        assert!(g.is_paused("b") && g.is_paused("x") && !g.is_paused("a"));
        assert_eq!(g.paused_binds(), names(&["b", "x"]));
        g.resume(&names(&["x"]));
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.resumed("b").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        g.resume(&names(&["a"]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "another bind resumed");
        g.resume(&names(&["b"]));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("resumed")
            .expect("task");
        assert!(g.paused_binds().is_empty() && !g.is_paused("b") && !g.any());
    }
}
