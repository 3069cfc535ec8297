//! What every session shares: the configuration, the analysis cache, the bind registry (with
//! each bind's read replicas), the live table map, the cancel registry, and for the admin console the registry of live sessions
//! and the pause gate.
//!
//! Owns [`Live`]: the table map (router), the bind name → [`BindId`] map and the configuration in
//! force, swapped as one value by a reload (`reload.rs`). Readers take a lock-free `ArcSwap` load;
//! a session pins one `Live` for the length of a transaction (`session/client.rs`), so a
//! transaction open during a reload keeps the map it started with.
//!
//! Must never: address a bind by its position in the configuration (ids come from the
//! append-only [`BindRegistry`] and are never reused), or change `config` after start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use futures::task::AtomicWaker;

use crate::backend::pg::ReplicaSet;
use crate::backend::Bind;
use crate::catalog::shadow::Syncer;
use crate::clients::ClientRegistry;
use crate::config::{BindConfig, BindUrl, Config, PgTarget, CATALOG_BIND};
use crate::error::ProxyError;
use crate::frontend::cancel::CancelRegistry;
use crate::pause::PauseGate;
pub use crate::registry::BindId;
use crate::registry::BindRegistry;
pub use crate::registry::{is_replica_lease, primary_of, replica_lease};
use crate::router::Router;
use crate::sql::AnalysisCache;
use crate::tx::{Capability, Coordinator};

pub struct Proxy {
    /// The configuration read at start. What only a restart changes (listen, tls, admin_http,
    /// transactions, catalog, max_client_conn, log_format, shutdown_timeout) is read here; what a
    /// reload changes is read from [`Proxy::live`].
    pub config: Config,
    pub cache: AnalysisCache,
    /// Every bind the process opened, by an id that is never reused.
    pub binds: BindRegistry,
    live: ArcSwap<Live>,
    pub cancels: Arc<CancelRegistry>,
    /// Transactions across binds: mode, ids, decision log.
    pub tx: Coordinator,
    /// The shadow catalog, when there is one (`catalog:`). A reload keeps it.
    pub catalog: Option<ShadowCatalog>,
    /// Every open client session (`SHOW CLIENTS`, `KILL`).
    pub clients: Arc<ClientRegistry>,
    /// Binds paused by the admin console (`PAUSE`).
    pub pause: PauseGate,
    /// One reload at a time (SIGHUP and the admin console's RELOAD).
    pub(crate) reloading: tokio::sync::Mutex<()>,
    /// Counts the swaps of `live`; sessions compare it with what they saw ([`ReloadSignal`]).
    generation: AtomicU64,
    /// Each session's waker, woken after a swap so that an idle session gives back its leases on
    /// retired pools without waiting for its next statement.
    reload_wakers: Mutex<Vec<Weak<AtomicWaker>>>,
}

/// One session's view of reloads: ready once after each reload (woken once the slots it retired
/// are marked). Costs one `AtomicWaker` registration and one atomic load per wait of the pump.
pub struct ReloadSignal {
    waker: Arc<AtomicWaker>,
    seen: u64,
}

impl ReloadSignal {
    pub fn poll_reloaded(&mut self, proxy: &Proxy, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        let now = proxy.generation.load(Ordering::Acquire);
        if now != self.seen {
            self.seen = now;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The table map and binds in force: swapped whole by a reload.
pub struct Live {
    /// The configuration in force: the file as last loaded, with the settings that need a
    /// restart kept from the start.
    pub config: Arc<Config>,
    pub router: Router,
    /// Bind name (the catalog bind's too) → the slot serving it.
    ids: HashMap<String, BindId>,
    pub default_bind: BindId,
    /// 0 at start, one more for each reload that swapped.
    pub generation: u64,
    /// Table rules of binds a reload removed, kept in `router` so that their tables are refused
    /// rather than sent to the default bind (`reload.rs`); empty at start.
    pub remembered: Vec<(String, String)>,
}

impl Live {
    pub(crate) fn new(
        config: Arc<Config>,
        router: Router,
        ids: HashMap<String, BindId>,
        generation: u64,
    ) -> Live {
        let default_bind = ids.get(&config.default_bind).copied().unwrap_or(0);
        Live {
            config,
            router,
            ids,
            default_bind,
            generation,
            remembered: Vec::new(),
        }
    }

    /// The slot serving the bind `name` in this map.
    pub fn bind_id(&self, name: &str) -> Option<BindId> {
        self.ids.get(name).copied()
    }

    /// The configured binds (not the catalog bind), in file order, with their slots.
    pub fn user_binds(&self) -> Vec<(String, BindId)> {
        self.config
            .binds
            .keys()
            .filter_map(|n| self.ids.get(n).map(|id| (n.clone(), *id)))
            .collect()
    }
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
        let binds = BindRegistry::default();
        let mut ids = HashMap::new();
        let mut opened = Vec::new();
        for (name, cfg) in &config.binds {
            opened.push((name.clone(), Bind::open(cfg)?, cfg.clone()));
        }
        for (name, bind, cfg) in opened {
            let replicas = config.replicas.get(&name).map(|r| ReplicaSet::new(&cfg, r));
            let id = binds.push(&name, bind, Some(cfg), replicas);
            ids.insert(name, id);
        }
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
            let id = binds.push(CATALOG_BIND, bind, None, None);
            ids.insert(CATALOG_BIND.to_owned(), id);
            ShadowCatalog {
                bind: id,
                store,
                syncer: OnceLock::new(),
            }
        });
        let tx = Coordinator::new(&config.transactions);
        // the router names the catalog bind when the config has one, as `catalog` does here
        let router = config.router();
        let live = Live::new(Arc::new(config.clone()), router, ids, 0);
        Ok(Arc::new(Proxy {
            cache: AnalysisCache::new(4096),
            pause: PauseGate::new(),
            binds,
            live: ArcSwap::from_pointee(live),
            cancels: CancelRegistry::new(),
            tx,
            clients: ClientRegistry::new(),
            catalog,
            config,
            reloading: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            reload_wakers: Mutex::new(Vec::new()),
        }))
    }

    /// The table map and binds in force now (a lock-free load; hold it briefly).
    pub fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }

    /// The same, as an `Arc` a session may keep.
    pub fn live_full(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts a new table map and binds in force (`reload.rs`); returns the one it replaces.
    pub(crate) fn swap_live(&self, live: Live) -> Arc<Live> {
        self.live.swap(Arc::new(live))
    }

    /// Wakes every session after a reload, once the slots it retired are marked, so that each
    /// one gives back its leases on them ([`ReloadSignal`]).
    pub(crate) fn wake_sessions(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let wakers = self.reload_wakers.lock().unwrap_or_else(|p| p.into_inner());
        for w in wakers.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }

    /// A session starts following reloads (once per session: the list's lock is taken here).
    pub fn reload_signal(&self) -> ReloadSignal {
        let waker = Arc::new(AtomicWaker::new());
        let mut wakers = self.reload_wakers.lock().unwrap_or_else(|p| p.into_inner());
        // keep the list about as long as the number of open sessions
        let before = wakers.len();
        if before >= 64 && before.is_power_of_two() {
            wakers.retain(|w| w.strong_count() > 0);
        }
        wakers.push(Arc::downgrade(&waker));
        ReloadSignal {
            waker,
            seen: self.generation.load(Ordering::Acquire),
        }
    }

    /// `bind`'s read replicas, if it has any (a replica lease key: its primary's).
    pub fn replicas(&self, bind: BindId) -> Option<Arc<ReplicaSet>> {
        self.binds.replicas(bind)
    }

    /// The key of a session's lease on one of `bind`'s read replicas, when the bind has some
    /// ([`replica_lease`]: never a bind id, whatever a reload adds).
    pub fn replica_slot(&self, bind: BindId) -> Option<BindId> {
        self.binds.has_replicas(bind).then(|| replica_lease(bind))
    }

    /// True for a session's replica lease key, false for a bind.
    pub fn is_replica_slot(&self, slot: BindId) -> bool {
        is_replica_lease(slot)
    }

    /// The bind a session's connection key reads or writes for: itself, or the primary of a
    /// replica lease.
    pub fn primary_of(&self, slot: BindId) -> BindId {
        primary_of(slot)
    }

    /// Starts the lag monitor of every serving bind with replicas (`backend::pg::replica`); a
    /// reload starts those of the slots it opens.
    pub fn start_replica_monitors(&self) {
        for s in self.binds.all().iter() {
            if let Some(r) = &s.replicas {
                if !r.is_retired() {
                    r.spawn_monitor();
                }
            }
        }
    }

    /// The name of `bind` (a replica lease key: its primary's), for messages and log lines.
    pub fn bind_name(&self, bind: BindId) -> Arc<str> {
        self.binds.name(bind)
    }

    /// The slot serving the bind `name` now.
    pub fn bind_id(&self, name: &str) -> Option<BindId> {
        self.live.load().bind_id(name)
    }

    /// The default bind's slot now.
    pub fn default_bind(&self) -> BindId {
        self.live.load().default_bind
    }

    /// The configured binds serving now (not the catalog bind), in file order.
    pub fn user_binds(&self) -> Vec<(String, BindId)> {
        self.live.load().user_binds()
    }

    /// What is known of `bind`'s two-phase capability (None: a PostgreSQL bind not asked yet).
    pub fn capability(&self, bind: BindId) -> Option<Capability> {
        self.binds.capability(bind)
    }

    pub fn set_capability(&self, bind: BindId, c: Capability) {
        self.binds.set_capability(bind, c)
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
}
