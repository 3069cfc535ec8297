//! What every session shares: the configuration, the router, the analysis cache, the binds and the
//! cancel registry. Built once at start; read-only afterwards (pools have their own locks).

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::Bind;
use crate::config::Config;
use crate::error::ProxyError;
use crate::frontend::cancel::CancelRegistry;
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
        let tx = Coordinator::new(&config.transactions, binds.len());
        for (i, b) in binds.iter().enumerate() {
            if let Some(c) = b.known_capability() {
                tx.set_capability(i, c);
            }
        }
        Ok(Arc::new(Proxy {
            router: config.router(),
            cache: AnalysisCache::new(4096),
            binds,
            bind_names,
            bind_ids,
            default_bind,
            cancels: CancelRegistry::new(),
            tx,
            config,
        }))
    }

    pub fn bind_id(&self, name: &str) -> Option<BindId> {
        self.bind_ids.get(name).copied()
    }
}
