//! What every session shares: the configuration, the router, the analysis cache, the binds (and
//! their read replicas, with the session slots of replica leases), the cancel registry, the registry
//! of live sessions and the pause gate (both for the admin console). Built once at start; read-only
//! afterwards (pools, registries and the gate have their own locks or atomics).

use std::collections::HashMap;
use std::sync::Arc;

use std::sync::OnceLock;

use crate::backend::pg::ReplicaSet;
use crate::backend::Bind;
use crate::catalog::shadow::Syncer;
use crate::clients::ClientRegistry;
use crate::config::{BindConfig, BindUrl, Config, PgTarget, CATALOG_BIND};
use crate::error::ProxyError;
use crate::frontend::cancel::CancelRegistry;
use crate::pause::PauseGate;
use crate::router::Router;
use crate::sql::AnalysisCache;
use crate::tx::Coordinator;

/// Index of a bind in [`Proxy::binds`].
pub type BindId = usize;

pub struct Proxy {
    pub config: Config,
    pub router: Router,
    pub cache: AnalysisCache,
    pub binds: Vec<Bind>,
    pub bind_names: Vec<String>,
    bind_ids: HashMap<String, BindId>,
    pub default_bind: BindId,
    pub cancels: Arc<CancelRegistry>,
    /// Transactions across binds: mode, ids, decision log, which binds can prepare.
    pub tx: Coordinator,
    /// The shadow catalog, when there is one (`catalog:`): the last entry of `binds`.
    pub catalog: Option<ShadowCatalog>,
    /// Per bind (same index as `binds`): its read replicas, if it lists any.
    pub replicas: Vec<Option<Arc<ReplicaSet>>>,
    /// Per bind: the session slot of its replica lease (see [`Proxy::conn_slots`]).
    replica_slots: Vec<Option<BindId>>,
    /// Per replica slot (its id minus `binds.len()`): the bind it reads for.
    slot_primary: Vec<BindId>,
    /// Every open client session (`SHOW CLIENTS`, `KILL`).
    pub clients: Arc<ClientRegistry>,
    /// Binds paused by the admin console (`PAUSE`).
    pub pause: PauseGate,
}

/// The catalog bind and the task that keeps it in step with the binds.
pub struct ShadowCatalog {
    pub bind: BindId,
    pub store: CatalogStore,
    /// Set once the catalog is synced at start (`catalog::shadow::start`).
    pub syncer: OnceLock<Arc<Syncer>>,
}

impl std::fmt::Display for CatalogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogStore::Shadow(t) => write!(f, "{t}"),
            CatalogStore::Embedded => f.write_str("embedded (no PostgreSQL server)"),
        }
    }
}

/// What holds the catalog.
pub enum CatalogStore {
    /// A PostgreSQL database of stub tables.
    Shadow(Box<PgTarget>),
    /// No PostgreSQL server is configured: SQLite catalog tables that answer the catalog queries
    /// of psql and SQLAlchemy (`catalog::embedded`).
    Embedded,
}

/// Connections of the catalog bind: as many as all binds together, since every session that looks
/// at the catalog holds one.
fn catalog_pool_size(config: &Config) -> usize {
    config.binds.values().map(|b| b.pool_size).sum()
}

impl Proxy {
    pub fn new(config: Config) -> Result<Arc<Proxy>, ProxyError> {
        let mut binds = Vec::new();
        let mut bind_names = Vec::new();
        let mut bind_ids = HashMap::new();
        for (name, cfg) in &config.binds {
            bind_ids.insert(name.clone(), binds.len());
            bind_names.push(name.clone());
            binds.push(Bind::open(cfg)?);
        }
        let default_bind = bind_ids.get(&config.default_bind).copied().unwrap_or(0);
        let catalog = match config.catalog_target() {
            Some(target) => {
                let cfg = BindConfig {
                    name: CATALOG_BIND.to_owned(),
                    url: BindUrl::Postgres(target.clone()),
                    // every session that looks at the catalog holds one of these, as it holds one
                    // connection per bind it uses
                    pool_size: catalog_pool_size(&config),
                    checkout_timeout: config
                        .binds
                        .values()
                        .map(|b| b.checkout_timeout)
                        .max()
                        .unwrap_or_default(),
                    connect_timeout: config
                        .binds
                        .values()
                        .map(|b| b.connect_timeout)
                        .max()
                        .unwrap_or_default(),
                };
                Some((
                    Bind::Pg(crate::backend::pg::PgPool::new(&cfg, target.clone())),
                    CatalogStore::Shadow(Box::new(target)),
                ))
            }
            None if config.catalog_embedded() => Some((
                crate::catalog::embedded::open_embedded(
                    u32::try_from(catalog_pool_size(&config)).unwrap_or(u32::MAX),
                )?,
                CatalogStore::Embedded,
            )),
            None => None,
        }
        .map(|(bind, store)| {
            let id = binds.len();
            bind_ids.insert(CATALOG_BIND.to_owned(), id);
            bind_names.push(CATALOG_BIND.to_owned());
            binds.push(bind);
            ShadowCatalog {
                bind: id,
                store,
                syncer: OnceLock::new(),
            }
        });
        // A session's replica lease of bind b lives in a slot of its own after every bind, so
        // that the pump (answers due, relay, release) handles it as one more connection.
        let mut replicas: Vec<Option<Arc<ReplicaSet>>> = binds.iter().map(|_| None).collect();
        let mut replica_slots = vec![None; binds.len()];
        let mut slot_primary = Vec::new();
        for (name, r) in &config.replicas {
            let (Some(&b), Some(cfg)) = (bind_ids.get(name), config.binds.get(name)) else {
                continue;
            };
            replicas[b] = Some(ReplicaSet::new(cfg, r));
            replica_slots[b] = Some(binds.len() + slot_primary.len());
            slot_primary.push(b);
        }
        let tx = Coordinator::new(&config.transactions, binds.len());
        for (i, b) in binds.iter().enumerate() {
            if let Some(c) = b.known_capability() {
                tx.set_capability(i, c);
            }
        }
        Ok(Arc::new(Proxy {
            // the router names the catalog bind when the config has one, as `catalog` does here
            router: config.router(),
            cache: AnalysisCache::new(4096),
            pause: PauseGate::new(binds.len()),
            binds,
            bind_names,
            bind_ids,
            default_bind,
            cancels: CancelRegistry::new(),
            tx,
            clients: ClientRegistry::new(),
            catalog,
            replicas,
            replica_slots,
            slot_primary,
            config,
        }))
    }

    /// How many connections a session may hold: one per bind, and one replica lease per bind
    /// with replicas (slots `binds.len()..`).
    pub fn conn_slots(&self) -> usize {
        self.binds.len() + self.slot_primary.len()
    }

    /// The session slot of `bind`'s replica lease, when the bind has replicas (a vector index: no
    /// lock, nothing for binds without replicas).
    pub fn replica_slot(&self, bind: BindId) -> Option<BindId> {
        self.replica_slots.get(bind).copied().flatten()
    }

    /// True for a replica slot of a session, false for a bind.
    pub fn is_replica_slot(&self, slot: BindId) -> bool {
        slot >= self.binds.len()
    }

    /// The bind a session slot reads or writes for: itself, or the primary of a replica slot.
    pub fn primary_of(&self, slot: BindId) -> BindId {
        match slot.checked_sub(self.binds.len()) {
            Some(k) => self
                .slot_primary
                .get(k)
                .copied()
                .unwrap_or(self.default_bind),
            None => slot,
        }
    }

    /// The bind name of a session slot (a replica slot has its primary's).
    pub fn name(&self, slot: BindId) -> &str {
        self.bind_names
            .get(self.primary_of(slot))
            .map_or("", String::as_str)
    }

    /// Starts the lag monitor of every bind with replicas (`backend::pg::replica`).
    pub fn start_replica_monitors(&self) {
        for r in self.replicas.iter().flatten() {
            r.spawn_monitor();
        }
    }

    /// The catalog bind, if there is one.
    pub fn catalog_bind(&self) -> Option<BindId> {
        self.catalog.as_ref().map(|c| c.bind)
    }

    /// True for a configured bind, false for the catalog bind (which never takes part in a
    /// client's transaction).
    pub fn is_user_bind(&self, bind: BindId) -> bool {
        Some(bind) != self.catalog_bind()
    }

    /// The catalog's syncer, once the catalog is synced.
    pub fn syncer(&self) -> Option<&Arc<Syncer>> {
        self.catalog.as_ref().and_then(|c| c.syncer.get())
    }

    pub fn bind_id(&self, name: &str) -> Option<BindId> {
        self.bind_ids.get(name).copied()
    }
}
