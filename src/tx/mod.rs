//! The client's transaction across binds: who takes part, in which phase, and how it ends.
//!
//! Owns: [`Transaction`] — the participants (binds a statement of the transaction went to, in
//! joining order, each with its [`Phase`]), the savepoint stack as values (replayed on a bind
//! that joins late), the failed state (PostgreSQL's 25P02 until ROLLBACK, whatever the engine),
//! and the commit protocol ([`commit`]): one participant commits plainly; several commit by
//! two-phase commit with at most one last resource, after a durable decision ([`log`]);
//! [`recover`] finishes what a crash left prepared. Global transaction ids are in [`gid`].
//!
//! Must never: answer COMMIT before the decision is durable; drop a prepared branch without
//! committing or rolling it back; talk to a connection itself (the session does that, through
//! [`crate::session`]'s one connection interface).
//!
//! Invariants:
//! - No participant is left in doubt: a prepared branch is committed or rolled back, by the
//!   session, by a background retry, or by recovery at the next start.
//! - COMMIT of a multi-bind transaction is answered only after its decision is on disk (fsync).

pub mod commit;
pub mod gid;
pub mod log;
pub mod marker;
pub mod recover;

use std::sync::Arc;

use crate::config::{CrossBind, TransactionsConfig};
use crate::proxy::BindId;

/// What the sessions of one process share about transactions.
#[derive(Debug)]
pub struct Coordinator {
    pub mode: CrossBind,
    pub instance: String,
    pub gids: gid::GidMaker,
    pub log: Arc<log::DecisionLog>,
}

impl Coordinator {
    /// Which binds can prepare is in the bind registry (`registry.rs`), per slot.
    pub fn new(cfg: &TransactionsConfig) -> Coordinator {
        Coordinator {
            mode: cfg.cross_bind,
            instance: cfg.instance_id.clone(),
            gids: gid::GidMaker::new(&cfg.instance_id),
            log: Arc::new(log::DecisionLog::new(&cfg.log_dir)),
        }
    }
}

/// Whether a bind can take part in two-phase commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// PREPARE TRANSACTION (PostgreSQL with max_prepared_transactions > 0) or XA (MySQL/MariaDB).
    TwoPhase,
    /// Cannot prepare (SQLite; PostgreSQL with max_prepared_transactions = 0): it can only be
    /// the last resource, whose own commit is the decision.
    LastResource,
}

/// Where one participant is in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its transaction is open.
    Active,
    /// Phase 1 done: prepared under its branch id.
    Prepared,
    Committed,
    RolledBack,
}

/// One bind taking part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub bind: BindId,
    pub phase: Phase,
}

/// How the transaction began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The client's BEGIN / START TRANSACTION: `begin` is its text, sent to every bind that joins
    /// (isolation level and access mode included), followed by its SET TRANSACTION statements.
    Explicit { begin: String },
    /// A multi-statement Query whose statements go to several binds: PostgreSQL runs it as one
    /// transaction, and so does bindproxy (committed at its end).
    Implicit,
    /// An extended-protocol pipeline outside BEGIN that reached a second bind: everything up to
    /// the client's Sync is one transaction (committed at the Sync).
    Pipeline,
}

/// A savepoint the client made, with the text it made it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Savepoint {
    pub name: String,
}

/// The client's open transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub origin: Origin,
    /// Its global id, made at BEGIN (MySQL's XA START needs it when the bind joins).
    pub gid: String,
    /// In joining order: `sequential` commits in this order.
    pub participants: Vec<Participant>,
    /// SET TRANSACTION / SET LOCAL statements sent before any bind joined: they join with BEGIN.
    pub preamble: Vec<String>,
    pub savepoints: Vec<Savepoint>,
    /// A statement failed (on a bind, or refused by bindproxy): only ROLLBACK, ROLLBACK TO or
    /// COMMIT (which rolls back) are accepted.
    pub failed: bool,
    /// Participants that cannot prepare in this transaction although their bind can (a MySQL
    /// bind whose pipeline had already begun a plain transaction when a second bind joined).
    pub one_phase: Vec<BindId>,
}

impl Transaction {
    pub fn new(origin: Origin, gid: String) -> Transaction {
        Transaction {
            origin,
            gid,
            participants: Vec::new(),
            preamble: Vec::new(),
            savepoints: Vec::new(),
            failed: false,
            one_phase: Vec::new(),
        }
    }

    /// True when `bind` has joined.
    pub fn has(&self, bind: BindId) -> bool {
        self.participants.iter().any(|p| p.bind == bind)
    }

    /// Position of `bind` among the participants (its branch number).
    pub fn position(&self, bind: BindId) -> Option<usize> {
        self.participants.iter().position(|p| p.bind == bind)
    }

    /// Adds `bind` (if new) and returns its branch number.
    pub fn join(&mut self, bind: BindId) -> usize {
        match self.position(bind) {
            Some(k) => k,
            None => {
                self.participants.push(Participant {
                    bind,
                    phase: Phase::Active,
                });
                self.participants.len() - 1
            }
        }
    }

    /// The bind of a statement with no tables of its own (SET, SELECT 1): the first participant.
    pub fn home(&self) -> Option<BindId> {
        self.participants.first().map(|p| p.bind)
    }

    pub fn binds(&self) -> Vec<BindId> {
        self.participants.iter().map(|p| p.bind).collect()
    }

    /// The id participant `bind` is prepared (or XA-started) under.
    pub fn branch_id(&self, bind: BindId) -> Option<String> {
        self.position(bind).map(|k| gid::branch(&self.gid, k))
    }

    /// SAVEPOINT `name`.
    pub fn savepoint(&mut self, name: &str) {
        self.savepoints.push(Savepoint {
            name: name.to_owned(),
        });
    }

    /// RELEASE `name`: it and every later savepoint go. False if there is no such savepoint.
    pub fn release(&mut self, name: &str) -> bool {
        match self.find(name) {
            Some(i) => {
                self.savepoints.truncate(i);
                true
            }
            None => false,
        }
    }

    /// ROLLBACK TO `name`: later savepoints go, `name` stays, the failure is undone. False if
    /// there is no such savepoint.
    pub fn rollback_to(&mut self, name: &str) -> bool {
        match self.find(name) {
            Some(i) => {
                self.savepoints.truncate(i + 1);
                self.failed = false;
                true
            }
            None => false,
        }
    }

    /// The innermost savepoint of that name (PostgreSQL allows the same name twice).
    fn find(&self, name: &str) -> Option<usize> {
        self.savepoints.iter().rposition(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoints_are_a_stack_of_values() {
        let mut t = Transaction::new(Origin::Implicit, "g".into());
        t.savepoint("a");
        t.savepoint("b");
        t.savepoint("a");
        t.failed = true;
        assert!(t.rollback_to("b"));
        assert!(!t.failed);
        assert_eq!(t.savepoints.len(), 2);
        assert!(t.release("a"));
        assert!(t.savepoints.is_empty());
        assert!(!t.release("a"));
        assert_eq!(t.join(3), 0);
        assert_eq!(t.join(1), 1);
        assert_eq!(t.join(3), 0);
        assert_eq!(t.branch_id(1).as_deref(), Some("g_1"));
        assert_eq!(t.home(), Some(3));
    }
}
