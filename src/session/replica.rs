//! Reads on read replicas, from the session's side: whether a replica-safe statement runs on the
//! session's replica lease of its bind or on the primary, and the writes that keep reads on the
//! primary for `read_your_writes_ms`.
//!
//! A bind with replicas has one more connection slot in the session ([`Proxy::replica_slot`]: the
//! primary's id with the top bit set, in a table of its own, `leases.rs`): the replica lease, held
//! like a bind's lease, with the client's startup parameters and session settings applied the
//! same way. The pump treats it as one more connection (answers due, relay, release); it never
//! joins a transaction. The replicas belong to the primary's registry slot: after a reload that
//! replaces the bind, reads resolve to the new slot and take a lease on one of its replicas; the
//! lease on the old slot's replica is given back once idle (`leases.rs`), and its pool drains.
//!
//! A statement goes to the replica lease only when all of these hold, else to the primary:
//! - it is replica-safe (`sql/readonly.rs`) and has tables of its own on this bind (a statement
//!   without tables follows the transaction, as everywhere);
//! - no transaction is open (explicit, or the implicit one of a pipeline or COPY that already
//!   reached another connection since the last Sync);
//! - the client has not written to this bind within `read_your_writes_ms`, nor created a temporary
//!   relation there in this session (it exists on the primary only);
//! - the lease's replica is usable now (the monitor of `backend::pg::replica`), or a new lease to
//!   a usable replica can be had at once (round-robin). A lease on a replica that became unusable
//!   is given back as soon as it is idle.
//!
//! Extended protocol: a replica-safe statement is parsed on the connection chosen at Parse and
//! keeps its Parse message; each Bind chooses again, and a statement not yet prepared on the
//! chosen connection is prepared there quietly first (as a statement without tables is on a new
//! participant). So a named statement prepared on a replica runs on the primary inside a
//! transaction, and one whose replica went away is prepared again wherever it runs next.
//!
//! Must never: send a statement that is not replica-safe, or one inside a transaction, to a
//! replica; wait for a replica (a busy or unreachable one means the primary serves); take a lock
//! or touch the clock for a bind without replicas.
//!
//! [`Proxy::replica_slot`]: crate::proxy::Proxy::replica_slot

use std::time::Instant;

use super::conn::Conn;
use super::Session;
use crate::backend::pg::PgPool;
use crate::proxy::BindId;
use crate::registry::primary_of;

/// The session's state for one bind with replicas.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ReplicaLease {
    /// Which replica the lease in the bind's replica slot is on.
    on: Option<usize>,
    /// The last time the client wrote to the bind (read-your-writes).
    wrote: Option<Instant>,
    /// The session created a temporary relation on the primary: its reads of the bind stay there
    /// for the rest of the session.
    pinned: bool,
}

impl Session {
    /// The session state of a replica lease `slot` (or of a primary's: the same entry).
    fn replica_state(&mut self, slot: BindId) -> &mut ReplicaLease {
        self.replica.entry(primary_of(slot)).or_default()
    }

    /// Where a replica-safe statement of `bind` runs now: the session's replica slot of `bind`,
    /// or `bind` itself (see the module's doc).
    pub(super) async fn read_target(&mut self, bind: BindId) -> BindId {
        let Some(slot) = self.proxy.replica_slot(bind) else {
            return bind;
        };
        let in_transaction = self.tx.is_some()
            || self.copy_bind.is_some()
            || self.touched.iter().any(|&b| b != slot);
        if in_transaction {
            return bind;
        }
        let Some(set) = self.proxy.replicas(bind) else {
            return bind;
        };
        let state = *self.replica_state(slot);
        if state.pinned
            || state
                .wrote
                .is_some_and(|t| t.elapsed() < set.read_your_writes)
        {
            return bind;
        }
        if self.conns[slot].is_some() {
            if state.on.is_some_and(|i| set.usable(i)) {
                return slot;
            }
            // its replica lags or is gone: give the lease back once nothing is under way there
            let busy =
                self.touched.contains(&slot) || self.pending.iter().any(|p| p.bind() == Some(slot));
            if busy {
                return bind;
            }
            self.drop_replica_lease(slot);
        }
        let Some((i, lease)) = set.checkout().await else {
            return bind;
        };
        self.replica_state(slot).on = Some(i);
        self.install_pg_lease(slot, lease);
        slot
    }

    /// Gives the replica lease of `slot` back (it is idle) and forgets what lived on it.
    pub(super) fn drop_replica_lease(&mut self, slot: BindId) {
        if let Some(Conn::Pg(lease)) = self.conns[slot].take() {
            PgPool::release(lease);
        }
        self.forget_statements_on(slot);
        self.replica_state(slot).on = None;
    }

    /// After a reload: the read-your-writes window of a bind a reload replaced carries over to the
    /// slot that serves its name now (a write just before the reload still keeps reads on the
    /// primary). Which replica a lease is on stays with its slot.
    pub(super) fn carry_replica_state(&mut self) {
        if self.replica.is_empty() {
            return;
        }
        let moved: Vec<(BindId, Instant)> = self
            .replica
            .iter()
            .filter_map(|(&b, s)| {
                let now = self.proxy.binds.successor(b).filter(|&n| n != b)?;
                Some((now, s.wrote?))
            })
            .collect();
        for (b, wrote) in moved {
            let s = self.replica_state(b);
            s.wrote = Some(s.wrote.map_or(wrote, |w| w.max(wrote)));
        }
    }

    /// A statement that is not a replica-safe read goes to `bind` (or a transaction ends there):
    /// the client's reads of `bind` stay on the primary for `read_your_writes_ms` from now.
    pub(super) fn note_write(&mut self, bind: BindId) {
        let Some(slot) = self.proxy.replica_slot(bind) else {
            return;
        };
        self.replica_state(slot).wrote = Some(Instant::now());
    }

    /// A statement creating a temporary relation goes to `bind`: the relation exists only in this
    /// session of the primary, so every later read of the bind runs there.
    pub(super) fn pin_to_primary(&mut self, bind: BindId) {
        let Some(slot) = self.proxy.replica_slot(bind) else {
            return;
        };
        self.replica_state(slot).pinned = true;
    }

    /// A statement (Query or Execute) is sent to `slot`: counted for its bind, and as a replica
    /// statement when a replica runs it.
    pub(super) fn count_statement(&self, slot: BindId) {
        if self.proxy.is_replica_slot(slot) {
            crate::metrics::replica_statement(self.proxy.primary_of(slot));
        } else {
            crate::metrics::statement(slot);
        }
    }
}
