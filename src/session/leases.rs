//! The session's leases across reloads: which connection it holds per bind slot, which table map
//! it follows, and how it moves to a reloaded bind.
//!
//! Owns: [`Leases`] (one optional connection per [`BindId`], growing as a reload adds slots, and
//! the replica leases in a table of their own keyed by the primary's id), the
//! session's pinned `Live` (`proxy.rs`) and the three rules a reload imposes on a session:
//! - the table map is the one in force when the statement arrives, except inside a transaction,
//!   which keeps the map its first statement was routed with ([`Session::follow_reloads`]);
//! - a bind id the map gives is taken as it is when the session holds a lease on it (a statement
//!   of an open transaction goes on where it started); otherwise a replaced slot leads to the one
//!   that serves the name now, and a removed one is refused ([`Session::serving`]);
//! - a lease on a retired slot is given back (its connection then closes, the pool draining)
//!   once nothing of the session is left on it: no transaction, no answer due, no extended
//!   messages since Sync, no COPY, no prepared statement, portal or SQL-level PREPARE
//!   ([`Session::leave_retired`]). The next statement leases from the new pool. A replica lease
//!   goes with its primary's slot: given back once that slot is retired and nothing of the
//!   session is left on the replica connection, so the retired replica pools drain too; the next
//!   read takes a replica of the new slot.
//!
//! Must never: give back a connection that still owes answers or holds the client's state.

use std::sync::Arc;

use super::conn::Conn;
use super::{Portal, Session};
use crate::backend::pg::PgPool;
use crate::error::ProxyError;
use crate::protocol::messages::Parse;
use crate::proxy::BindId;
use crate::registry::{is_replica_lease, primary_of, replica_lease, Retired, Standing};

/// One optional connection per bind slot, and a table of its own for the leases on read
/// replicas, keyed by the primary's id. A connection is addressed by a key: a bind's id, or
/// [`replica_lease`]`(primary)` for the replica lease of `primary` (never a registry id, so a
/// bind a reload adds can never land on a replica lease). Indexing a key past the end reads as
/// "no connection"; writing there grows its table (a reload added the slot after the session
/// began).
#[derive(Default)]
pub(super) struct Leases {
    binds: Vec<Option<Conn>>,
    replicas: Vec<Option<Conn>>,
}

const NO_CONN: &Option<Conn> = &None;

impl Leases {
    pub(super) fn with_slots(n: usize) -> Leases {
        Leases {
            binds: (0..n).map(|_| None).collect(),
            replicas: Vec::new(),
        }
    }

    /// Every key this session may hold a connection under (binds first, then replica leases);
    /// the iterator does not borrow the leases.
    pub(super) fn keys(&self) -> impl Iterator<Item = BindId> {
        (0..self.binds.len()).chain((0..self.replicas.len()).map(replica_lease))
    }

    /// Whether a connection is held, key by key in the order of [`Leases::keys`].
    pub(super) fn iter(&self) -> impl Iterator<Item = &Option<Conn>> + Clone {
        self.binds.iter().chain(self.replicas.iter())
    }

    /// Every connection slot with its key.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (BindId, &mut Option<Conn>)> {
        let replicas = self
            .replicas
            .iter_mut()
            .enumerate()
            .map(|(b, c)| (replica_lease(b), c));
        self.binds.iter_mut().enumerate().chain(replicas)
    }

    fn table(&self, key: BindId) -> (&Vec<Option<Conn>>, BindId) {
        if is_replica_lease(key) {
            (&self.replicas, primary_of(key))
        } else {
            (&self.binds, key)
        }
    }
}

impl std::ops::Index<BindId> for Leases {
    type Output = Option<Conn>;
    fn index(&self, key: BindId) -> &Option<Conn> {
        let (table, i) = self.table(key);
        table.get(i).unwrap_or(NO_CONN)
    }
}

impl std::ops::IndexMut<BindId> for Leases {
    fn index_mut(&mut self, key: BindId) -> &mut Option<Conn> {
        let (table, i) = if is_replica_lease(key) {
            (&mut self.replicas, primary_of(key))
        } else {
            (&mut self.binds, key)
        };
        if i >= table.len() {
            table.resize_with(i + 1, || None);
        }
        &mut table[i]
    }
}

impl Session {
    /// Outside a transaction (or in one no statement has reached a bind yet), takes the table map
    /// in force now (a lock-free load; the `Arc` is cloned only after a reload), and gives back
    /// leases a reload retired.
    pub(super) fn follow_reloads(&mut self) {
        if self.tx.as_ref().is_some_and(|t| !t.participants.is_empty()) {
            return;
        }
        let now = self.proxy.live();
        if !Arc::ptr_eq(&now, &self.live) {
            self.live = arc_swap::Guard::into_inner(now);
            self.retired_leases = true;
            self.carry_replica_state();
        }
        if self.retired_leases {
            self.leave_retired();
        }
    }

    /// A prepared query parsed under an older table map is routed again under the session's map
    /// (followed first, as for a new statement): the bind it goes to now, where `on_bind`
    /// prepares it quietly if it is not there yet (and then marks it routed under this map).
    /// None when nothing changed since its Parse.
    pub(super) fn reroute(&mut self, name: &str) -> Result<Option<BindId>, ProxyError> {
        self.follow_reloads();
        let generation = self.live.generation;
        let parse = match self.statements.get(name).and_then(|s| s.reroute.as_ref()) {
            Some(r) if r.generation != generation => r.parse.clone(),
            _ => return Ok(None),
        };
        // it decoded when it was parsed
        let Ok(p) = Parse::decode(parse.body()) else {
            return Ok(None);
        };
        let analysis = self.proxy.cache.analyze(p.query);
        // the statement keeps its old generation until `on_bind` has it where it now goes (a
        // Bind held back comes here again)
        Ok(Some(self.target(&analysis, p.query)?.bind))
    }

    /// The slot a statement for `bind` (an id from the session's map) runs on.
    pub(super) fn serving(&self, bind: BindId) -> Result<BindId, ProxyError> {
        if self.conns[bind].is_some() {
            return Ok(bind);
        }
        match self.proxy.binds.successor(bind) {
            Some(b) => Ok(b),
            None => Err(ProxyError::BindRetired {
                bind: self.proxy.bind_name(bind).to_string(),
                why: Retired::Removed,
            }),
        }
    }

    /// The default bind of the session's map, as [`Session::serving`] resolves it; the default
    /// bind in force when that one was removed.
    pub(super) fn default_bind(&self) -> BindId {
        self.serving(self.live.default_bind)
            .unwrap_or_else(|_| self.proxy.default_bind())
    }

    /// A new lease on `bind`: refused when a reload retired the slot (the session's routing
    /// leads past retired slots; this is for names that still point at one, such as a
    /// prepared statement whose connection is gone).
    pub(super) fn check_leasable(&self, bind: BindId) -> Result<(), ProxyError> {
        let why = match self.proxy.binds.get(bind).map(|s| s.standing()) {
            Some(Standing::Serving) => return Ok(()),
            Some(Standing::Replaced { .. }) => Retired::Replaced,
            Some(Standing::Removed) | None => Retired::Removed,
        };
        Err(ProxyError::BindRetired {
            bind: self.proxy.bind_name(bind).to_string(),
            why,
        })
    }

    /// Gives back every lease on a retired slot that nothing of the session needs any more.
    /// Leaves `retired_leases` set while some must wait.
    pub(super) fn leave_retired(&mut self) {
        let mut waiting = false;
        for b in self.conns.keys() {
            if self.conns[b].is_none() {
                continue;
            }
            // a replica lease stands or falls with its primary's slot
            let serving = self
                .proxy
                .binds
                .get(primary_of(b))
                .is_some_and(|s| s.standing() == Standing::Serving);
            if serving {
                continue;
            }
            if self.holds_state_on(b) {
                waiting = true;
                continue;
            }
            if is_replica_lease(b) {
                // its statements keep their Parse and are prepared again where they run next
                self.drop_replica_lease(b);
                tracing::debug!(bind = %self.proxy.bind_name(b), "replica lease of a retired bind given back");
                continue;
            }
            match self.conns[b].take() {
                Some(Conn::Pg(lease)) => PgPool::release(lease),
                Some(Conn::Translated(t)) => {
                    tokio::spawn(t.release());
                }
                None => {}
            }
            if self.catalog_bind == Some(b) {
                self.catalog_bind = None;
            }
            tracing::debug!(bind = %self.proxy.bind_name(b), slot = b, "lease on a retired pool given back");
        }
        self.retired_leases = waiting;
    }

    /// Whether the session still needs its connection on `b`. The unnamed statement does not
    /// count: the next Parse replaces it (a Bind of it without one gets `BindRetired`). Nor do
    /// statements prepared on a replica lease: they keep their Parse and are prepared again on
    /// the connection that runs them next (`replica.rs`).
    fn holds_state_on(&self, b: BindId) -> bool {
        self.tx.as_ref().is_some_and(|t| t.has(b))
            || self.pending.iter().any(|p| p.bind() == Some(b))
            || self.touched.contains(&b)
            || self.copy_bind == Some(b)
            || self.in_flight == Some(b)
            || self.held.is_some()
            || (!is_replica_lease(b)
                && self
                    .statements
                    .iter()
                    .any(|(name, s)| !name.is_empty() && s.prepared_on.contains(&b)))
            || self
                .portals
                .values()
                .any(|p| matches!(p, Portal::Bind(x) if *x == b))
            || self.sql_prepared.values().any(|x| *x == b)
    }
}
