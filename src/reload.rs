//! Reloading: what SIGHUP and the admin console's `RELOAD` do.
//!
//! Owns the one entry point both use, [`reload`]: the file the daemon was started with is read
//! and checked again (the same loader and checks as at start, `${VAR}` included); on success the
//! table map and the binds are swapped as one value (`Proxy::live`, an `ArcSwap`), and the
//! catalog is synced again. On failure nothing changes and a warning names the file, the key and
//! the problem.
//!
//! What a reload does to binds (ids and slots: `registry.rs`):
//! - unchanged (same URL, pool size and timeouts): the same slot, connections kept;
//! - changed (its URL, pool, timeouts or read replicas): a new pool, with a new replica set and
//!   its lag monitor, under a new id for the same name; the old slot is retired
//!   (`Standing::Replaced`): leases already out finish their transaction (or session, when it
//!   holds prepared statements there), then their connections close; its replica pools drain the
//!   same way and its monitor stops;
//! - added: a new slot, its two-phase capability asked as at start, its metrics registered;
//! - removed: retired (`Standing::Removed`); open transactions on it finish. Its table rules are
//!   remembered (until a restart) so that new statements on its tables are refused with
//!   `ProxyError::BindRetired` (57P04) instead of falling to the default bind, unless the new file
//!   maps those tables itself.
//!
//! Settings only a restart changes (listen, tls, admin_http, transactions, catalog,
//! max_client_conn, max_message_bytes, shutdown_timeout, log_format) keep their running value;
//! a warning names each one that differs in the file.
//!
//! Must never: leave the daemon without a valid configuration (whatever fails keeps what runs);
//! reuse a bind id; close a connection a session still uses.

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::pg::ReplicaSet;
use crate::backend::Bind;
use crate::config::{BindConfig, Config, ConfigError, CATALOG_BIND};
use crate::error::ProxyError;
use crate::proxy::{BindId, Live, Proxy};
use crate::registry::Standing;
use crate::router::Router;
use crate::sql::TableName;

/// What a reload changed, for the log line and the admin console's answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// True when a catalog sync was queued.
    pub catalog_resync: bool,
    /// Binds opened for the first time.
    pub added: Vec<String>,
    /// Binds whose URL, pool size or timeouts changed: a new pool, the old one draining.
    pub replaced: Vec<String>,
    /// Binds no longer in the file.
    pub removed: Vec<String>,
    /// Settings that differ in the file but need a restart (the running value stays).
    pub needs_restart: Vec<&'static str>,
    /// Table rules that changed (added, dropped or pointed elsewhere).
    pub rules_changed: usize,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        let list = |what: &str, v: &[String]| format!("{what}: {}", v.join(", "));
        if !self.added.is_empty() {
            parts.push(list("binds added", &self.added));
        }
        if !self.replaced.is_empty() {
            parts.push(list("binds replaced (old pools drain)", &self.replaced));
        }
        if !self.removed.is_empty() {
            parts.push(list("binds removed", &self.removed));
        }
        if self.rules_changed > 0 {
            parts.push(format!("{} table rule(s) changed", self.rules_changed));
        }
        if !self.needs_restart.is_empty() {
            parts.push(format!(
                "kept until a restart: {}",
                self.needs_restart.join(", ")
            ));
        }
        if self.catalog_resync {
            parts.push("catalog sync queued".into());
        }
        if parts.is_empty() {
            f.write_str("nothing changed")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// Why a reload kept the running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is unreadable or invalid (the message names file, key and problem).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The daemon runs on the embedded configuration: there is no file to read again.
    #[error("bindproxy was started without --config: there is no file to reload")]
    NoFile,
    /// A new bind could not be opened (an unusable SQLite path, a bad MySQL URL).
    #[error("bind \"{bind}\" cannot be opened: {source}")]
    Open {
        bind: String,
        #[source]
        source: ProxyError,
    },
}

/// Reloads the running daemon (SIGHUP, `RELOAD`).
pub async fn reload(proxy: &Arc<Proxy>) -> Result<ReloadReport, ReloadError> {
    // one at a time: SIGHUP and RELOAD may come together
    let _one = proxy.reloading.lock().await;
    let result = swap(proxy).await;
    if let Err(e) = &result {
        tracing::warn!(
            file = %proxy.config.source,
            "reload failed, the running configuration stays: {e}"
        );
    }
    result
}

async fn swap(proxy: &Arc<Proxy>) -> Result<ReloadReport, ReloadError> {
    let path = proxy.config.path.clone().ok_or(ReloadError::NoFile)?;
    let mut new = Config::load(&path)?;
    let mut report = ReloadReport {
        needs_restart: keep_restart_only(&proxy.config, &mut new),
        ..ReloadReport::default()
    };
    for key in &report.needs_restart {
        tracing::warn!(
            file = %proxy.config.source,
            key,
            "reload: `{key}` differs in the file; it changes only with a restart (the running value stays)"
        );
    }
    let old = proxy.live_full();

    // Open what is new before anything is registered: a bind that cannot open fails the reload.
    let mut ids: HashMap<String, BindId> = HashMap::new();
    let mut opened: Vec<(String, Bind, BindConfig, Option<BindId>)> = Vec::new();
    for (name, cfg) in &new.binds {
        let before = old.bind_id(name).and_then(|id| proxy.binds.get(id));
        match before {
            Some(slot)
                if slot.config.as_ref() == Some(cfg)
                    && slot.replicas.as_ref().map(|r| &r.config) == new.replicas.get(name) =>
            {
                ids.insert(name.clone(), slot.id);
            }
            before => {
                let bind = Bind::open(cfg).map_err(|source| ReloadError::Open {
                    bind: name.clone(),
                    source,
                })?;
                opened.push((name.clone(), bind, cfg.clone(), before.map(|s| s.id)));
            }
        }
    }
    if let Some(c) = proxy.catalog_bind() {
        ids.insert(CATALOG_BIND.to_owned(), c);
    }
    let removed: Vec<(String, BindId)> = old
        .user_binds()
        .into_iter()
        .filter(|(name, _)| !new.binds.contains_key(name))
        .collect();

    let (router, remembered) = router_for(proxy, &old, &new);
    report.rules_changed = rules_changed(&old.config.tables, &new.tables);

    let mut replaced: Vec<(BindId, BindId)> = Vec::new();
    let mut fresh: Vec<BindId> = Vec::new();
    for (name, bind, cfg, before) in opened {
        // its read replicas come with the new slot (the old slot's drain with it)
        let replicas = new.replicas.get(&name).map(|r| ReplicaSet::new(&cfg, r));
        if let Some(r) = &replicas {
            r.spawn_monitor();
        }
        let id = proxy.binds.push(&name, bind, Some(cfg), replicas);
        crate::metrics::register_bind(id, &name);
        fresh.push(id);
        match before {
            Some(b) => {
                replaced.push((b, id));
                report.replaced.push(name.clone());
            }
            None => report.added.push(name.clone()),
        }
        ids.insert(name, id);
    }
    report.removed = removed.iter().map(|(n, _)| n.clone()).collect();

    let mut live = Live::new(Arc::new(new), router, ids, old.generation + 1);
    live.remembered = remembered;
    proxy.swap_live(live);

    // Retired after the swap: a session that still maps a name to the old slot follows it to
    // the new one (`session/leases.rs`).
    for (before, by) in replaced {
        if let Some(slot) = proxy.binds.get(before) {
            slot.retire(Standing::Replaced { by });
        }
    }
    for (_, id) in &removed {
        if let Some(slot) = proxy.binds.get(*id) {
            slot.retire(Standing::Removed);
        }
    }
    // only now: a session woken earlier could see a retired slot still serving
    proxy.wake_sessions();
    crate::tx::recover::detect_capabilities_of(proxy, &fresh).await;
    if let Some(s) = proxy.syncer() {
        s.full();
        report.catalog_resync = true;
    }
    Ok(report)
}

/// The new table map: the file's rules, the catalog bind as it runs, what the catalog taught the
/// old map, and the remembered rules of removed binds (see the module comment). Returns the
/// router and the rules it remembers for removed binds.
fn router_for(proxy: &Proxy, old: &Live, new: &Config) -> (Router, Vec<(String, String)>) {
    let base = new
        .router()
        .with_catalog(proxy.catalog_bind().map(|_| CATALOG_BIND));
    // rules of binds that are gone, earlier ones first, unless the file maps the same tables
    let mut candidates: Vec<(String, String)> = old.remembered.clone();
    for (pattern, bind) in &old.config.tables {
        if !new.binds.contains_key(bind) && !candidates.iter().any(|(p, _)| p == pattern) {
            candidates.push((pattern.clone(), bind.clone()));
        }
    }
    let mut rules = new.tables.clone();
    let mut remembered = Vec::new();
    for (pattern, bind) in candidates {
        if new.binds.contains_key(&bind) || new.tables.iter().any(|(p, _)| *p == pattern) {
            continue;
        }
        if let Some(t) = exact_table(&pattern) {
            // an exact rule beats every glob: keep it only where the file maps nothing
            if base.rule_bind(&t).is_some() {
                continue;
            }
        }
        let mut trial = rules.clone();
        trial.push((pattern.clone(), bind.clone()));
        // a rule that would make the map ambiguous is the file's to decide: dropped
        if Router::new(&trial, &new.default_bind, &new.default_schema).is_ok() {
            rules = trial;
            remembered.push((pattern, bind));
        }
    }
    let router = if remembered.is_empty() {
        base
    } else {
        match Router::new(&rules, &new.default_bind, &new.default_schema) {
            Ok(r) => r
                .with_binds(new.binds.keys())
                .with_catalog_binds(
                    new.binds
                        .iter()
                        .filter(|(_, b)| matches!(b.url, crate::config::BindUrl::Postgres(_)))
                        .map(|(name, _)| name.as_str()),
                )
                .with_catalog(proxy.catalog_bind().map(|_| CATALOG_BIND)),
            Err(_) => {
                remembered.clear();
                base
            }
        }
    };
    router.learn((*old.router.known_relations()).clone());
    for (pattern, bind) in &remembered {
        tracing::info!(%pattern, %bind, "reload: bind removed; statements on these tables are refused until they are mapped again");
    }
    (router, remembered)
}

/// The relation an exact pattern (no glob, no quotes) names; None for others.
fn exact_table(pattern: &str) -> Option<TableName> {
    if pattern.contains(['*', '?', '[', '"']) {
        return None;
    }
    let lower = pattern.to_lowercase();
    match lower.split_once('.') {
        Some((s, n)) => Some(TableName::new(Some(s), n)),
        None => Some(TableName::new(None, &lower)),
    }
}

fn rules_changed(old: &[(String, String)], new: &[(String, String)]) -> usize {
    let gone = old.iter().filter(|r| !new.contains(r)).count();
    let came = new.iter().filter(|r| !old.contains(r)).count();
    gone + came
}

/// Puts the running value of each setting only a restart changes into `new`; returns the keys
/// whose value in the file differs.
fn keep_restart_only(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut differ = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            differ.push(key);
        }
    };
    // --listen and BINDPROXY_LISTEN beat the file: its value matters only if it gave the address
    if running.listen_origin == new.listen_origin {
        check("listen", running.listen == new.listen);
    }
    let tls = |c: &Config| c.tls.as_ref().map(|t| (t.mode, t.cert.clone()));
    check("tls", tls(running) == tls(new));
    check("admin_http", running.admin_http == new.admin_http);
    check(
        "transactions.log_dir",
        running.transactions.log_dir == new.transactions.log_dir,
    );
    check(
        "transactions.instance_id",
        running.transactions.instance_id == new.transactions.instance_id,
    );
    check(
        "transactions.cross_bind",
        running.transactions.cross_bind == new.transactions.cross_bind,
    );
    check(
        "catalog",
        running.catalog == new.catalog
            && running.catalog_target() == new.catalog_target()
            && running.catalog_embedded() == new.catalog_embedded(),
    );
    check(
        "max_client_conn",
        running.max_client_conn == new.max_client_conn,
    );
    check(
        "max_message_bytes",
        running.max_message_bytes == new.max_message_bytes,
    );
    check(
        "shutdown_timeout",
        running.shutdown_timeout == new.shutdown_timeout,
    );
    check("log_format", running.log_format == new.log_format);
    new.listen = running.listen;
    new.listen_origin = running.listen_origin;
    new.tls = running.tls.clone();
    new.admin_http = running.admin_http;
    new.transactions = running.transactions.clone();
    new.catalog = running.catalog.clone();
    new.max_client_conn = running.max_client_conn;
    new.max_message_bytes = running.max_message_bytes;
    new.shutdown_timeout = running.shutdown_timeout;
    new.log_format = running.log_format;
    differ
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "listen: 127.0.0.1:7001\nbinds:\n  main: postgresql://u@h/db\ntables:\n  t: main\n{extra}"
        );
        match Config::parse(&text, "test.yaml", &|_| None) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn restart_only_settings_keep_their_running_value_and_are_named() {
        let running = config("max_client_conn: 10\n");
        let mut new = config(
            "max_client_conn: 3\nshutdown_timeout: 5\ntransactions:\n  instance_id: other\n",
        );
        new.listen = "127.0.0.1:7002".parse().unwrap();
        let differ = keep_restart_only(&running, &mut new);
        assert_eq!(
            differ,
            [
                "listen",
                "transactions.instance_id",
                "max_client_conn",
                "shutdown_timeout"
            ]
        );
        assert_eq!(new.max_client_conn, Some(10));
        assert_eq!(new.listen, running.listen);
        assert_eq!(new.transactions, running.transactions);
        assert_eq!(new.shutdown_timeout, running.shutdown_timeout);
        let mut same = config("max_client_conn: 10\n");
        assert!(keep_restart_only(&running, &mut same).is_empty());
    }

    #[test]
    fn exact_patterns_name_their_table() {
        assert_eq!(exact_table("Users"), Some(TableName::new(None, "users")));
        assert_eq!(
            exact_table("audit.events"),
            Some(TableName::new(Some("audit"), "events"))
        );
        assert_eq!(exact_table("user_*"), None);
        assert_eq!(exact_table("\"Quoted\""), None);
    }

    #[test]
    fn report_says_what_changed() {
        let r = ReloadReport {
            added: vec!["y".into()],
            removed: vec!["x".into()],
            rules_changed: 2,
            needs_restart: vec!["tls"],
            ..ReloadReport::default()
        };
        assert_eq!(
            r.to_string(),
            "binds added: y; binds removed: x; 2 table rule(s) changed; kept until a restart: tls"
        );
        assert_eq!(ReloadReport::default().to_string(), "nothing changed");
    }
}
