//! The bind registry: every bind the process has opened, under an id that is never reused.
//!
//! Owns: [`BindId`], the [`BindSlot`]s (a bind's name, its pool, its read replicas, the
//! configuration it was opened with, its two-phase capability and its [`Standing`]), their
//! append-only list, and the key of a session's replica lease ([`replica_lease`]).
//!
//! Read replicas belong to their primary's slot: a reload that replaces a bind opens the new
//! slot's replica set with its pool, and retiring a slot retires its replica pools too (they drain
//! as its primary pool does; its lag monitor stops). A session keys its lease on one of a bind's
//! replicas by the primary's id with the top bit set ([`replica_lease`]): no registry id ever has
//! that bit (ids are positions in a `Vec`), so the key never names a bind, whatever a reload adds.
//!
//! Why append-only: sessions, transactions, prepared statements, portals, the decision log's
//! background retries and the metrics all hold a `BindId` for as long as they need it. A reload
//! (`reload.rs`) that changes a bind's URL or pool size does not change the pool under their feet:
//! it opens a new pool under a new id (the same name) and marks the old slot
//! [`Standing::Replaced`]; a bind dropped from the file is marked [`Standing::Removed`]. Old
//! slots stay where they are, so an id held anywhere always means the pool it meant when it was
//! taken. Leases already out finish their statement, transaction or session on it; once
//! returned, the retired pool's connections are closed ([`crate::backend::Bind::retire`]).
//!
//! Reads are lock-free: the list is an `ArcSwap` snapshot (a new bind copies the list, which only
//! a reload does). The table map that names the *current* slot of each bind is the proxy's
//! `Live` state (`proxy.rs`), swapped as a whole by a reload.
//!
//! Must never: reuse or remove an id; hand out a slot that is not [`Standing::Serving`] for a
//! new lease (the session checks, `session/mod.rs`, `ensure_conn`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use crate::backend::pg::ReplicaSet;
use crate::backend::Bind;
use crate::config::BindConfig;
use crate::tx::Capability;

/// A bind's place in the [`BindRegistry`]: never reused, valid for the life of the process.
pub type BindId = usize;

/// The bit that marks a session's replica lease key (see the module comment).
const REPLICA_LEASE: BindId = 1 << (usize::BITS - 1);

/// The key under which a session holds its lease on one of `primary`'s read replicas: never a
/// registry id.
pub fn replica_lease(primary: BindId) -> BindId {
    primary | REPLICA_LEASE
}

/// True for a replica lease key, false for a bind's id.
pub fn is_replica_lease(key: BindId) -> bool {
    key & REPLICA_LEASE != 0
}

/// The bind a session's connection key reads or writes for: the id itself, or the primary of a
/// replica lease.
pub fn primary_of(key: BindId) -> BindId {
    key & !REPLICA_LEASE
}

/// Whether a slot still takes new leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The current pool of its bind name.
    Serving,
    /// A reload changed the bind's URL or pool size: `by` is the slot that serves the name now.
    /// Leases already out finish; no new ones.
    Replaced { by: BindId },
    /// A reload dropped the bind from the file: leases already out finish; new statements for
    /// it are refused (`ProxyError::BindRemoved`).
    Removed,
}

/// Why a slot takes no new leases, for [`crate::error::ProxyError::BindRetired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    Removed,
    Replaced,
}

impl std::fmt::Display for Retired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Retired::Removed => "removed",
            Retired::Replaced => "replaced",
        })
    }
}

const SERVING: usize = usize::MAX;
const REMOVED: usize = usize::MAX - 1;

/// One bind the process opened.
pub struct BindSlot {
    pub id: BindId,
    pub name: Arc<str>,
    pub bind: Bind,
    /// What it was opened with (None for the catalog bind, which the file does not list).
    pub config: Option<BindConfig>,
    /// Its read replicas (a PostgreSQL bind that lists some): opened with the slot, retired with
    /// it.
    pub replicas: Option<Arc<ReplicaSet>>,
    /// Can it prepare? Known from the engine for MySQL/SQLite; for PostgreSQL from
    /// `max_prepared_transactions`, read at start or reload (or by the first session that needs it).
    capability: OnceLock<Capability>,
    /// [`Standing`], encoded: `SERVING`, `REMOVED`, or the id of the slot that replaced it.
    standing: AtomicUsize,
}

impl BindSlot {
    pub fn standing(&self) -> Standing {
        match self.standing.load(Ordering::Acquire) {
            SERVING => Standing::Serving,
            REMOVED => Standing::Removed,
            by => Standing::Replaced { by },
        }
    }

    pub fn capability(&self) -> Option<Capability> {
        self.capability.get().copied()
    }

    pub fn set_capability(&self, c: Capability) {
        let _ = self.capability.set(c);
    }

    /// Marks the slot retired and lets its pool drain (`reload.rs`).
    pub(crate) fn retire(&self, standing: Standing) {
        let code = match standing {
            Standing::Serving => return,
            Standing::Removed => REMOVED,
            Standing::Replaced { by } => by,
        };
        self.standing.store(code, Ordering::Release);
        self.bind.retire();
        if let Some(r) = &self.replicas {
            r.retire();
        }
    }
}

/// Every bind the process opened, by [`BindId`].
pub struct BindRegistry {
    slots: ArcSwap<Vec<Arc<BindSlot>>>,
    /// Serialises the (rare) copies that add a slot.
    grow: Mutex<()>,
}

impl Default for BindRegistry {
    fn default() -> Self {
        BindRegistry {
            slots: ArcSwap::from_pointee(Vec::new()),
            grow: Mutex::new(()),
        }
    }
}

impl BindRegistry {
    /// Adds a bind (with its read replicas, if any) under the next id.
    pub(crate) fn push(
        &self,
        name: &str,
        bind: Bind,
        config: Option<BindConfig>,
        replicas: Option<Arc<ReplicaSet>>,
    ) -> BindId {
        let _grow = self.grow.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.slots.load_full();
        let id = current.len();
        let capability = OnceLock::new();
        if let Some(c) = bind.known_capability() {
            let _ = capability.set(c);
        }
        let mut next: Vec<Arc<BindSlot>> = (*current).clone();
        next.push(Arc::new(BindSlot {
            id,
            name: Arc::from(name),
            bind,
            config,
            replicas,
            capability,
            standing: AtomicUsize::new(SERVING),
        }));
        self.slots.store(Arc::new(next));
        id
    }

    /// The slot of `id` (None only for an id this registry never gave out).
    pub fn get(&self, id: BindId) -> Option<Arc<BindSlot>> {
        self.slots.load().get(id).cloned()
    }

    /// The name of `id`'s bind (a replica lease key: its primary's), for messages and log lines.
    pub fn name(&self, id: BindId) -> Arc<str> {
        self.slots
            .load()
            .get(primary_of(id))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// Every slot ever opened, retired ones included, by id.
    pub fn all(&self) -> Arc<Vec<Arc<BindSlot>>> {
        self.slots.load_full()
    }

    /// How many ids were given out.
    pub fn len(&self) -> usize {
        self.slots.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot that serves `id`'s name now: `id` itself while it serves, else the end of its
    /// chain of replacements; None when the bind was removed.
    pub fn successor(&self, id: BindId) -> Option<BindId> {
        let slots = self.slots.load();
        let mut at = id;
        // ids only grow along a chain (a replacement is pushed after what it replaces), so the
        // walk ends; the bound is a guard, not a limit in practice
        for _ in 0..=slots.len() {
            match slots.get(at)?.standing() {
                Standing::Serving => return Some(at),
                Standing::Removed => return None,
                Standing::Replaced { by } if by > at => at = by,
                Standing::Replaced { .. } => return None,
            }
        }
        None
    }

    /// Whether `id`'s bind has read replicas (a lock-free load, no reference count taken).
    pub fn has_replicas(&self, id: BindId) -> bool {
        self.slots
            .load()
            .get(id)
            .is_some_and(|s| s.replicas.is_some())
    }

    /// `id`'s read replicas (a replica lease key: its primary's).
    pub fn replicas(&self, id: BindId) -> Option<Arc<ReplicaSet>> {
        self.slots
            .load()
            .get(primary_of(id))
            .and_then(|s| s.replicas.clone())
    }

    pub fn capability(&self, id: BindId) -> Option<Capability> {
        self.slots.load().get(id).and_then(|s| s.capability())
    }

    pub fn set_capability(&self, id: BindId, c: Capability) {
        if let Some(s) = self.slots.load().get(id) {
            s.set_capability(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_bind_url, BindUrl};
    use std::time::Duration;

    fn pg(name: &str, db: &str) -> (Bind, BindConfig) {
        let Ok(BindUrl::Postgres(t)) = parse_bind_url(&format!("postgresql://u@127.0.0.1:1/{db}"))
        else {
            panic!("a PostgreSQL URL");
        };
        let cfg = BindConfig {
            name: name.into(),
            url: BindUrl::Postgres(t.clone()),
            pool_size: 1,
            checkout_timeout: Duration::from_millis(10),
            connect_timeout: Duration::from_millis(10),
        };
        (Bind::Pg(crate::backend::pg::PgPool::new(&cfg, t)), cfg)
    }

    #[test]
    fn ids_are_never_reused_and_replacements_chain() {
        let r = BindRegistry::default();
        let push = |name: &str, db: &str| {
            let (b, c) = pg(name, db);
            r.push(name, b, Some(c), None)
        };
        let (a, b) = (push("a", "one"), push("b", "two"));
        assert_eq!((a, b), (0, 1));
        let a2 = push("a", "three");
        assert_eq!(a2, 2, "a changed bind gets a new id");
        r.get(a).unwrap().retire(Standing::Replaced { by: a2 });
        assert_eq!(r.successor(a), Some(a2));
        assert_eq!(r.successor(a2), Some(a2));
        let a3 = push("a", "four");
        r.get(a2).unwrap().retire(Standing::Replaced { by: a3 });
        assert_eq!(r.successor(a), Some(a3), "followed along the chain");
        r.get(b).unwrap().retire(Standing::Removed);
        assert_eq!(r.successor(b), None);
        // retired slots stay where they were: an id held anywhere keeps its meaning
        assert_eq!(r.len(), 4);
        assert_eq!(&*r.name(b), "b");
        assert_eq!(r.get(a).unwrap().standing(), Standing::Replaced { by: a2 });
        assert!(matches!(&r.get(a).unwrap().bind, Bind::Pg(p) if p.is_retired()));
        assert_eq!(r.get(a3).unwrap().standing(), Standing::Serving);
        assert_eq!(&*r.name(99), "?");
        // a replica lease key names its primary and is no id of the registry
        let k = replica_lease(a3);
        assert!(is_replica_lease(k) && !is_replica_lease(a3));
        assert_eq!(primary_of(k), a3);
        assert_eq!(&*r.name(k), "a");
        assert!(r.get(k).is_none());
    }
}
