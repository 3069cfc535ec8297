//! Graceful shutdown: the signal `run` gives the listener and every session.
//!
//! Owns: the stage of the process ([`Stage`]: running, draining, closing), the count of open
//! sessions, and waking each session when the stage moves on. `run` moves it (SIGTERM/SIGINT →
//! [`Shutdown::drain`], `shutdown_timeout` later → [`Shutdown::close`]); the listener answers new
//! connections with FATAL 57P03 while draining; a session ends with FATAL 57P01 as soon as it is
//! quiet (no transaction open, no answer due) while draining, and at once when closing.
//!
//! The per-session cost while running is one [`AtomicWaker`] registration and one atomic load per
//! wait of the pump: no lock, no allocation (the registry's lock is taken once per session).
//!
//! Must never: end a session with answers still due while only draining (the client's
//! transaction finishes first); block the listener.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::sync::Notify;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Serving.
    Running = 0,
    /// No new sessions; open sessions end once their transaction is over.
    Draining = 1,
    /// `shutdown_timeout` passed: every session ends now, statements running are cancelled.
    Closing = 2,
}

impl Stage {
    fn from_u8(v: u8) -> Stage {
        match v {
            0 => Stage::Running,
            1 => Stage::Draining,
            _ => Stage::Closing,
        }
    }
}

/// The process's shutdown state, shared by `run`, the listener and the sessions.
#[derive(Default)]
pub struct Shutdown {
    stage: AtomicU8,
    open: AtomicUsize,
    /// Notified when the last session ends.
    all_gone: Notify,
    wakers: Mutex<Vec<Weak<AtomicWaker>>>,
}

impl Shutdown {
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Acquire))
    }

    /// Stops taking sessions; open ones end when they are quiet.
    pub fn drain(&self) {
        self.advance(Stage::Draining);
    }

    /// Ends every session now.
    pub fn close(&self) {
        self.advance(Stage::Closing);
    }

    fn advance(&self, to: Stage) {
        self.stage.fetch_max(to as u8, Ordering::AcqRel);
        let wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        for w in wakers.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Resolves when no session is open.
    pub async fn all_sessions_ended(&self) {
        loop {
            let notified = self.all_gone.notified();
            if self.sessions() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// A session starts; it follows the stage through the returned handle until it drops it.
    pub fn session(self: &Arc<Self>) -> SessionSignal {
        let waker = Arc::new(AtomicWaker::new());
        {
            let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
            // Keep the list about as long as the number of open sessions.
            if wakers.len() >= 64 && wakers.len() > 2 * self.sessions() {
                wakers.retain(|w| w.strong_count() > 0);
            }
            wakers.push(Arc::downgrade(&waker));
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        SessionSignal {
            shutdown: self.clone(),
            waker,
            seen: Stage::Running,
        }
    }
}

/// One session's view of the shutdown (see [`Shutdown::session`]).
pub struct SessionSignal {
    shutdown: Arc<Shutdown>,
    waker: Arc<AtomicWaker>,
    seen: Stage,
}

impl SessionSignal {
    pub fn stage(&self) -> Stage {
        self.shutdown.stage()
    }

    /// Ready once each time the stage moves on; registers the task to be woken otherwise.
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Stage> {
        self.waker.register(cx.waker());
        let now = self.shutdown.stage();
        if now > self.seen {
            self.seen = now;
            Poll::Ready(now)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for SessionSignal {
    fn drop(&mut self) {
        if self.shutdown.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shutdown.all_gone.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_wake_sessions_once_each() {
        let s = Shutdown::new();
        let mut a = s.session();
        assert_eq!(s.sessions(), 1);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(a.poll_changed(&mut cx).is_pending());
        s.drain();
        assert_eq!(a.poll_changed(&mut cx), Poll::Ready(Stage::Draining));
        assert!(a.poll_changed(&mut cx).is_pending(), "seen once");
        s.drain();
        assert!(a.poll_changed(&mut cx).is_pending(), "no move, no wake");
        s.close();
        assert_eq!(a.poll_changed(&mut cx), Poll::Ready(Stage::Closing));
        s.drain();
        assert_eq!(s.stage(), Stage::Closing, "never back");
        let ended = tokio::spawn({
            let s = s.clone();
            async move { s.all_sessions_ended().await }
        });
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), ended)
            .await
            .expect("all_sessions_ended resolves")
            .expect("task");
        assert_eq!(s.sessions(), 0);
    }
}
