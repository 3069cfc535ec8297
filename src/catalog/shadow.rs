//! The shadow catalog: a PostgreSQL database that bindproxy owns and keeps in step with the binds.
//!
//! Owns: creating the catalog database when it is missing, the full sync (every bind read,
//! every table placed where the table map routes it, the catalog's user schemas dropped and
//! rendered again in one transaction), and the replay of the DDL clients run through bindproxy
//! (their own PostgreSQL text, replayed on the catalog after it ran on its bind, then checked
//! against the bind and re-read from it where they disagree). One task does all writes, in order;
//! sessions wait for the jobs they queued before their next catalog query ([`Syncer::wait`]).
//!
//! Must never: write to a bind (binds are only read), or hold a client's connection: the syncer
//! has a connection of its own to the catalog database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, watch};

use crate::backend::pg::conn::PgConn;
use crate::catalog::ddl::{quote_ident, quote_literal};
use crate::catalog::model::{BindSchema, RelationKind, Table};
use crate::catalog::{ddl, read};
use crate::config::PgTarget;
use crate::proxy::{BindId, CatalogStore, Proxy};
use crate::registry::BindSlot;
use crate::router::KnownRelations;
use crate::sql::TableName;

/// Why the shadow catalog could not be prepared or synced.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot reach the catalog database {target}: {reason}; set `catalog:` to a PostgreSQL database bindproxy may own, or `catalog: off`")]
    Unreachable { target: String, reason: String },
    #[error("cannot create the catalog database {target}: {reason}; create it, or set `catalog:` to another database, or `catalog: off`")]
    CannotCreate { target: String, reason: String },
    #[error("the catalog database {target} failed: {reason}")]
    Failed { target: String, reason: String },
    #[error("{0}")]
    Read(#[from] read::ReadError),
    #[error("table {table} is on binds {binds}; with `discover: true` a table found on several binds must be mapped under `tables:`")]
    DiscoveredTwice { table: String, binds: String },
}

/// A DDL statement a client ran on a bind, to be replayed on the catalog.
#[derive(Clone, Debug)]
pub struct Ddl {
    pub bind: BindId,
    /// The client's statement, PostgreSQL text.
    pub sql: String,
    /// The relations it named, as the session resolved them (schema-qualified where it could).
    pub tables: Vec<TableName>,
    /// The session's `search_path` when it ran, so that unqualified names resolve alike.
    pub search_path: Vec<String>,
    pub outcome: DdlOutcome,
}

/// What the session knows of how a DDL statement went, and so how it reaches the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdlOutcome {
    /// No error reached the client after it: its text is replayed, then checked against the bind.
    Replay,
    /// An error reached the client after it, or a ROLLBACK [TO SAVEPOINT] followed it (the
    /// statement may have failed or been undone): its text is not replayed (an empty stub would take a change
    /// the bind's rows refused); the relations it named are read again from their bind.
    ReadFromBind,
}

enum Job {
    Full,
    Replay(Vec<Ddl>),
}

/// The handle sessions use: queue jobs, wait for them.
pub struct Syncer {
    jobs: mpsc::UnboundedSender<(u64, Job)>,
    done: watch::Receiver<u64>,
    queued: AtomicU64,
}

impl Syncer {
    /// Queues the replay of DDL that ran on binds; returns its ticket for [`Syncer::wait`].
    pub fn replay(&self, ddl: Vec<Ddl>) -> u64 {
        self.queue(Job::Replay(ddl))
    }

    /// Queues a full sync (SIGHUP, `RELOAD`).
    pub fn full(&self) -> u64 {
        self.queue(Job::Full)
    }

    fn queue(&self, job: Job) -> u64 {
        let seq = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        if self.jobs.send((seq, job)).is_err() {
            tracing::warn!("the catalog syncer has stopped; the catalog is no longer updated");
        }
        seq
    }

    /// The ticket of the last job queued.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::SeqCst)
    }

    /// Waits until job `seq` and every job before it are done (or the syncer stopped).
    pub async fn wait(&self, seq: u64) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d >= seq).await;
    }
}

/// Creates the catalog database if it is missing, syncs it fully, and starts the syncer.
pub async fn start(proxy: &Arc<Proxy>) -> Result<Arc<Syncer>, CatalogError> {
    match proxy.catalog.as_ref().map(|c| &c.store) {
        Some(CatalogStore::Shadow(target)) => start_shadow(proxy, target).await,
        _ => start_embedded(proxy).await,
    }
}

/// The embedded catalog's syncer: loads every bind at start and again after each job.
async fn start_embedded(proxy: &Arc<Proxy>) -> Result<Arc<Syncer>, CatalogError> {
    embedded_sync(proxy).await?;
    let (jobs, mut rx) = mpsc::unbounded_channel::<(u64, Job)>();
    let (done_tx, done) = watch::channel(0u64);
    let weak: Weak<Proxy> = Arc::downgrade(proxy);
    tokio::spawn(async move {
        while let Some((seq, _job)) = rx.recv().await {
            let Some(proxy) = weak.upgrade() else { break };
            if let Err(e) = embedded_sync(&proxy).await {
                tracing::warn!("catalog: {e}");
            }
            let _ = done_tx.send(seq);
        }
    });
    Ok(Arc::new(Syncer {
        jobs,
        done,
        queued: AtomicU64::new(0),
    }))
}

async fn start_shadow(proxy: &Arc<Proxy>, target: &PgTarget) -> Result<Arc<Syncer>, CatalogError> {
    let mut conn = open(proxy, target).await?;
    let first = full_sync(proxy, &mut conn, target).await?;
    let (jobs, mut rx) = mpsc::unbounded_channel::<(u64, Job)>();
    let (done_tx, done) = watch::channel(0u64);
    let syncer = Arc::new(Syncer {
        jobs,
        done,
        queued: AtomicU64::new(0),
    });
    let weak: Weak<Proxy> = Arc::downgrade(proxy);
    let again: Weak<Syncer> = Arc::downgrade(&syncer);
    let target = target.clone();
    let retry = |again: &Weak<Syncer>, unread: &[String]| {
        if unread.is_empty() {
            return;
        }
        let again = again.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_UNREAD).await;
            if let Some(s) = again.upgrade() {
                s.full();
            }
        });
    };
    retry(&again, &first.unread);
    tokio::spawn(async move {
        while let Some((seq, job)) = rx.recv().await {
            let Some(proxy) = weak.upgrade() else { break };
            if conn.is_stale() {
                match open(&proxy, &target).await {
                    Ok(c) => conn = c,
                    Err(e) => tracing::warn!("catalog: {e}"),
                }
            }
            let r = match job {
                Job::Full => full_sync(&proxy, &mut conn, &target).await.map(|s| {
                    retry(&again, &s.unread);
                }),
                Job::Replay(ddl) => replay(&proxy, &mut conn, &target, &ddl).await.map(|_| ()),
            };
            if let Err(e) = r {
                tracing::warn!("catalog: {e}");
                let _ = conn.query_text("ROLLBACK").await;
            }
            let _ = done_tx.send(seq);
        }
    });
    Ok(syncer)
}

/// How long after a full sync that could not read a bind the next one is tried.
const RETRY_UNREAD: std::time::Duration = std::time::Duration::from_secs(10);

/// A one-shot full sync (`bindproxy catalog sync`).
pub async fn sync_once(proxy: &Arc<Proxy>) -> Result<Synced, CatalogError> {
    match proxy.catalog.as_ref().map(|c| &c.store) {
        Some(CatalogStore::Shadow(target)) => {
            let mut conn = open(proxy, target).await?;
            full_sync(proxy, &mut conn, target).await
        }
        _ => embedded_sync(proxy).await,
    }
}

/// Connects to the catalog database, creating it first when it does not exist.
async fn open(proxy: &Proxy, target: &PgTarget) -> Result<PgConn, CatalogError> {
    match PgConn::connect(target, &[]).await {
        Ok(c) => return Ok(c),
        Err(e) if !e.to_string().contains("does not exist") => {
            return Err(CatalogError::Unreachable {
                target: target.to_string(),
                reason: e.to_string(),
            })
        }
        Err(_) => {}
    }
    let cannot = |reason: String| CatalogError::CannotCreate {
        target: target.to_string(),
        reason,
    };
    // Any database on the same server will do to run CREATE DATABASE: the first PostgreSQL bind's
    // when it is on that server, else `postgres`.
    let mut admin = target.clone();
    admin.database = proxy
        .config
        .binds
        .values()
        .find_map(|b| match &b.url {
            crate::config::BindUrl::Postgres(t)
                if t.host == target.host && t.port == target.port =>
            {
                Some(t.database.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| "postgres".into());
    let mut c = PgConn::connect(&admin, &[])
        .await
        .map_err(|e| cannot(e.to_string()))?;
    let create = format!("CREATE DATABASE {}", quote_ident(&target.database));
    match c.query_text(&create).await {
        Ok(Ok(_)) => tracing::info!(catalog = %target, "created the catalog database"),
        Ok(Err(e)) if e.contains("already exists") => {}
        Ok(Err(e)) => return Err(cannot(e)),
        Err(e) => return Err(cannot(e.to_string())),
    }
    PgConn::connect(target, &[])
        .await
        .map_err(|e| CatalogError::Unreachable {
            target: target.to_string(),
            reason: e.to_string(),
        })
}

/// The binds whose tables the catalog shows: every configured bind in force (the table map's,
/// `Proxy::live`) but the catalog itself.
fn user_binds(proxy: &Proxy) -> Vec<Arc<BindSlot>> {
    proxy
        .user_binds()
        .into_iter()
        .filter_map(|(_, id)| proxy.binds.get(id))
        .collect()
}

/// Puts a bind's tables where the client sees them, and keeps only those the table map routes to
/// this bind (the same name on several binds is shown once, where its statements go).
fn place(proxy: &Proxy, bind: BindId, mut schema: BindSchema) -> BindSchema {
    let live = proxy.live();
    let default_schema = live.config.default_schema.clone();
    let name = proxy.bind_name(bind);
    let owner = |s: &str, t: &str| {
        let n = TableName::new(Some(s), t);
        live.router
            .bind_for_table(&n)
            .unwrap_or(live.router.default_bind())
            == &*name
    };
    for t in &mut schema.tables {
        if t.schema.is_none() {
            t.schema = Some(default_schema.clone());
        }
    }
    schema
        .tables
        .retain(|t| owner(t.schema.as_deref().unwrap_or(&default_schema), &t.name));
    for s in &mut schema.sequences {
        if s.schema.is_none() {
            s.schema = Some(default_schema.clone());
        }
    }
    let kept: Vec<(String, String)> = schema
        .tables
        .iter()
        .map(|t| (t.schema.clone().unwrap_or_default(), t.name.clone()))
        .collect();
    schema.sequences.retain(|s| {
        let sch = s.schema.clone().unwrap_or_default();
        match &s.owned_by {
            Some((table, _)) => kept.contains(&(sch, table.clone())),
            None => owner(&sch, &s.name),
        }
    });
    schema
}

/// Reads every bind and renders the catalog again, in one transaction. Returns how many tables it
/// holds.
/// Every bind read and placed: what the catalog must show. `shown` is what it shows now (kept for
/// MySQL/SQLite tables that still match their bind).
async fn gather(
    proxy: &Proxy,
    shown: &BindSchema,
) -> Result<(BindSchema, Vec<String>, KnownRelations), CatalogError> {
    let mut read_all = Vec::new();
    let mut unread = Vec::new();
    for slot in user_binds(proxy) {
        let b = slot.id;
        match read::read_bind(&slot.bind).await {
            Ok(s) => read_all.push((b, s)),
            Err(e) => {
                tracing::warn!(
                    "catalog: {e}; its tables are missing from the catalog until it is read again"
                );
                unread.push(proxy.bind_name(b).to_string());
            }
        }
    }
    let known = KnownRelations {
        discovered: discovered(proxy, &read_all)?,
        ..KnownRelations::default()
    };
    proxy.live().router.learn(known.clone());
    let mut all = BindSchema::default();
    for (b, s) in read_all {
        let mut s = place(proxy, b, s);
        if let Some(crate::backend::Bind::Translated(_)) =
            proxy.binds.get(b).as_ref().map(|s| &s.bind)
        {
            keep_exact(&mut s, shown);
        }
        all.tables.extend(s.tables);
        all.sequences.extend(s.sequences);
        for e in s.enums {
            if !all
                .enums
                .iter()
                .any(|x| x.schema == e.schema && x.name == e.name)
            {
                all.enums.push(e);
            }
        }
    }
    Ok((all, unread, known))
}

/// The embedded catalog (no PostgreSQL server): every bind read and loaded, whatever the job.
async fn embedded_sync(proxy: &Proxy) -> Result<Synced, CatalogError> {
    let (all, unread, known) = gather(proxy, &BindSchema::default()).await?;
    let Some(c) = proxy.catalog_bind() else {
        return Ok(Synced { tables: 0, unread });
    };
    let Some(slot) = proxy.binds.get(c) else {
        return Ok(Synced { tables: 0, unread });
    };
    crate::catalog::embedded::load(&slot.bind, &all, "bindproxy")
        .await
        .map_err(|e| CatalogError::Failed {
            target: "the embedded catalog".into(),
            reason: e.to_string(),
        })?;
    proxy.live().router.learn(known);
    Ok(Synced {
        tables: all.tables.len(),
        unread,
    })
}

async fn full_sync(
    proxy: &Proxy,
    conn: &mut PgConn,
    target: &PgTarget,
) -> Result<Synced, CatalogError> {
    // What the catalog holds now: DDL replayed through bindproxy, exact where an engine's own
    // catalog is not (MariaDB writes `now()` and `CURRENT_TIMESTAMP` alike).
    let shown = match proxy.catalog_bind() {
        Some(c) => match read::read_bind(
            &proxy
                .binds
                .get(c)
                .ok_or_else(|| CatalogError::Failed {
                    target: target.to_string(),
                    reason: "the catalog bind is not registered".into(),
                })?
                .bind,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "catalog: reading the catalog itself: {e}; every table is read from its bind"
                );
                BindSchema::default()
            }
        },
        None => BindSchema::default(),
    };
    let (all, unread, mut known) = gather(proxy, &shown).await?;
    let mut tx = CatalogTx::begin(conn, target).await?;
    let schemas = tx
        .rows(
            "SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema' \
             AND nspname !~ '^pg_'",
        )
        .await?;
    for s in schemas {
        if let Some(Some(s)) = s.into_iter().next() {
            tx.must(&format!("DROP SCHEMA {} CASCADE", quote_ident(&s)))
                .await?;
        }
    }
    // public as a new database has it (PostgreSQL 15: owned by pg_database_owner, USAGE for all)
    if !tx
        .attempt("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        .await?
    {
        tx.must("CREATE SCHEMA public").await?;
    }
    tx.must("GRANT USAGE ON SCHEMA public TO PUBLIC").await?;
    tx.must("COMMENT ON SCHEMA public IS 'standard public schema'")
        .await?;
    let mut failed = 0;
    for stmt in ddl::render(&all) {
        if !tx.attempt(&stmt).await? {
            failed += 1;
        }
    }
    known.owners = owners(&mut tx).await?;
    tx.commit().await?;
    proxy.live().router.learn(known);
    tracing::info!(
        tables = all.tables.len(),
        failed,
        catalog = %target,
        "catalog synced from every bind"
    );
    Ok(Synced {
        tables: all.tables.len(),
        unread,
    })
}

/// What a full sync did.
pub struct Synced {
    pub tables: usize,
    /// Binds that could not be read: their tables are missing until the next full sync.
    pub unread: Vec<String>,
}

/// Replays DDL that ran on binds, then checks every relation it named against its bind. Returns
/// how many tables had to be read again from their bind.
async fn replay(
    proxy: &Proxy,
    conn: &mut PgConn,
    target: &PgTarget,
    ddl: &[Ddl],
) -> Result<usize, CatalogError> {
    let mut tx = CatalogTx::begin(conn, target).await?;
    // (bind, relation, read it from the bind whatever the catalog shows)
    let mut check: Vec<(BindId, TableName, bool)> = Vec::new();
    for d in ddl {
        let from_bind = d.outcome == DdlOutcome::ReadFromBind;
        for t in &d.tables {
            match check.iter_mut().find(|(b, x, _)| *b == d.bind && x == t) {
                Some(entry) => entry.2 |= from_bind,
                None => check.push((d.bind, t.clone(), from_bind)),
            }
        }
        if from_bind {
            continue;
        }
        let path = d
            .search_path
            .iter()
            .map(|s| quote_ident(s))
            .collect::<Vec<_>>()
            .join(", ");
        tx.must(&format!(
            "SELECT pg_catalog.set_config('search_path', {}, true)",
            quote_literal(&path)
        ))
        .await?;
        if !tx.attempt(&d.sql).await? {
            tracing::debug!(sql = %d.sql, "catalog: replay failed; the tables are read from their bind");
        }
    }
    tx.must("SELECT pg_catalog.set_config('search_path', '\"$user\", public', true)")
        .await?;
    let mut resynced = 0;
    for (bind, name, from_bind) in &check {
        let Some(slot) = proxy.binds.get(*bind) else {
            continue;
        };
        let on_bind = place(
            proxy,
            *bind,
            read::read_tables(&slot.bind, std::slice::from_ref(name)).await?,
        );
        let schema = name
            .schema
            .clone()
            .unwrap_or_else(|| proxy.live().config.default_schema.clone());
        let table = on_bind.tables.iter().find(|t| t.name == name.name);
        let shown = tx.columns(&schema, &name.name).await?;
        let agree = match (table, &shown) {
            (None, Shown::Absent | Shown::NotATable) => true,
            (Some(_), Shown::NotATable) => true,
            (None, Shown::Columns(_)) => false,
            (Some(t), Shown::Columns(c)) => t
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .eq(c.iter().map(String::as_str)),
            (Some(_), Shown::Absent) => false,
        };
        let forced = *from_bind
            && !matches!(
                (table, &shown),
                (None, Shown::Absent) | (_, Shown::NotATable)
            );
        if !agree || forced {
            resynced += 1;
            tx.resync(&schema, &name.name, table, &on_bind).await?;
        }
    }
    let known = KnownRelations {
        owners: owners(&mut tx).await?,
        discovered: proxy.live().router.known_relations().discovered.clone(),
    };
    tx.commit().await?;
    proxy.live().router.learn(known);
    Ok(resynced)
}

/// Keeps the catalog's own version of a MySQL/SQLite table when it still matches the bind (same
/// columns in the same order, same nullability, same index names): it came from the client's
/// PostgreSQL DDL, which the engine's catalog can only approximate. A table that changed behind
/// bindproxy's back is taken from the bind.
fn keep_exact(from_bind: &mut BindSchema, shown: &BindSchema) {
    let same = |a: &Table, b: &Table| {
        a.columns.len() == b.columns.len()
            && a.columns
                .iter()
                .zip(&b.columns)
                .all(|(x, y)| x.name == y.name && x.not_null == y.not_null)
            && index_names(a) == index_names(b)
    };
    for t in &mut from_bind.tables {
        let Some(old) = shown
            .tables
            .iter()
            .find(|o| o.schema == t.schema && o.name == t.name)
        else {
            continue;
        };
        if !same(t, old) {
            tracing::info!(
                table = %t.name,
                bind_indexes = ?index_names(t),
                catalog_indexes = ?index_names(old),
                "catalog: the table changed on its bind; it is read from there"
            );
            continue;
        }
        *t = old.clone();
        for seq in shown.sequences.iter().filter(|s| {
            s.schema == t.schema && s.owned_by.as_ref().is_some_and(|(tn, _)| *tn == t.name)
        }) {
            from_bind
                .sequences
                .retain(|x| !(x.schema == seq.schema && x.name == seq.name));
            from_bind.sequences.push(seq.clone());
        }
    }
}

/// The names of a table's indexes and of the constraints that own one.
fn index_names(t: &Table) -> Vec<&str> {
    let mut v: Vec<&str> = t
        .indexes
        .iter()
        .map(|i| i.name.as_str())
        .chain(t.constraints.iter().filter_map(|c| match c.kind {
            crate::catalog::model::ConstraintKind::PrimaryKey
            | crate::catalog::model::ConstraintKind::Unique => Some(c.name.as_str()),
            _ => None,
        }))
        .collect();
    v.sort_unstable();
    v
}

/// With `discover: true`, the tables no rule maps, found on exactly one bind, and that bind.
fn discovered(
    proxy: &Proxy,
    read_all: &[(BindId, BindSchema)],
) -> Result<HashMap<TableName, String>, CatalogError> {
    let mut found: HashMap<TableName, Vec<BindId>> = HashMap::new();
    let live = proxy.live();
    if !live.config.discover {
        return Ok(HashMap::new());
    }
    for (b, s) in read_all {
        for t in &s.tables {
            let schema = t.schema.as_deref().unwrap_or(&live.config.default_schema);
            let name = TableName::new(Some(schema), &t.name);
            if live.router.rule_bind(&name).is_none() {
                found.entry(name).or_default().push(*b);
            }
        }
    }
    let mut out = HashMap::new();
    for (name, binds) in found {
        match binds.as_slice() {
            [b] => {
                out.insert(name, proxy.bind_name(*b).to_string());
            }
            _ => {
                return Err(CatalogError::DiscoveredTwice {
                    table: name.to_string(),
                    binds: binds
                        .iter()
                        .map(|b| proxy.bind_name(*b))
                        .collect::<Vec<_>>()
                        .join(" and "),
                })
            }
        }
    }
    Ok(out)
}

/// Every index and owned sequence the catalog holds, and its table.
async fn owners(tx: &mut CatalogTx<'_>) -> Result<HashMap<TableName, TableName>, CatalogError> {
    let rows = tx
        .rows(
            "SELECT n.nspname, c.relname, tn.nspname, t.relname \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
             WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
             UNION ALL \
             SELECT n.nspname, s.relname, tn.nspname, t.relname \
             FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace \
             JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass \
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
             JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
             WHERE s.relkind = 'S' AND n.nspname !~ '^pg_'",
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Some(s), Some(n), Some(ts), Some(tn)] => {
                Some((TableName::new(Some(s), n), TableName::new(Some(ts), tn)))
            }
            _ => None,
        })
        .collect())
}

/// What the catalog shows under a name.
enum Shown {
    Absent,
    /// An index, a sequence: checked through its table.
    NotATable,
    Columns(Vec<String>),
}

/// One transaction on the catalog database.
struct CatalogTx<'a> {
    conn: &'a mut PgConn,
    target: &'a PgTarget,
}

impl<'a> CatalogTx<'a> {
    async fn begin(conn: &'a mut PgConn, target: &'a PgTarget) -> Result<Self, CatalogError> {
        let mut tx = CatalogTx { conn, target };
        tx.must("BEGIN").await?;
        Ok(tx)
    }

    fn failed(&self, reason: String) -> CatalogError {
        CatalogError::Failed {
            target: self.target.to_string(),
            reason,
        }
    }

    async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, CatalogError> {
        match self.conn.query_text(sql).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(self.failed(format!("{e} (in {sql})"))),
            Err(e) => Err(self.failed(e.to_string())),
        }
    }

    async fn must(&mut self, sql: &str) -> Result<(), CatalogError> {
        self.rows(sql).await.map(|_| ())
    }

    /// Runs one statement that may fail without failing the transaction. Returns whether it ran.
    async fn attempt(&mut self, sql: &str) -> Result<bool, CatalogError> {
        self.must("SAVEPOINT bindproxy_sync").await?;
        match self.conn.query_text(sql).await {
            Ok(Ok(_)) => {
                self.must("RELEASE SAVEPOINT bindproxy_sync").await?;
                Ok(true)
            }
            Ok(Err(e)) => {
                tracing::warn!(statement = %sql, "catalog: {e}");
                self.must("ROLLBACK TO SAVEPOINT bindproxy_sync").await?;
                Ok(false)
            }
            Err(e) => Err(self.failed(e.to_string())),
        }
    }

    async fn columns(&mut self, schema: &str, name: &str) -> Result<Shown, CatalogError> {
        let rel = quote_literal(&format!("{}.{}", quote_ident(schema), quote_ident(name)));
        let kind = self
            .rows(&format!(
                "SELECT c.relkind FROM pg_class c WHERE c.oid = pg_catalog.to_regclass({rel})"
            ))
            .await?;
        match kind.first().and_then(|r| r.first()).cloned().flatten() {
            None => Ok(Shown::Absent),
            Some(k) if !matches!(k.as_str(), "r" | "v" | "p" | "m" | "f") => Ok(Shown::NotATable),
            Some(_) => {
                let cols = self
                    .rows(&format!(
                        "SELECT attname FROM pg_attribute WHERE attrelid = {rel}::regclass \
                         AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                    ))
                    .await?;
                Ok(Shown::Columns(
                    cols.into_iter()
                        .filter_map(|r| r.into_iter().next().flatten())
                        .collect(),
                ))
            }
        }
    }

    /// Renders one table again from its bind, keeping the foreign keys other stubs had to it.
    async fn resync(
        &mut self,
        schema: &str,
        name: &str,
        table: Option<&Table>,
        on_bind: &BindSchema,
    ) -> Result<(), CatalogError> {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let incoming = self
            .rows(&format!(
                "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) \
                 FROM pg_constraint WHERE contype = 'f' \
                 AND confrelid = pg_catalog.to_regclass({}) AND conrelid <> confrelid",
                quote_literal(&qualified)
            ))
            .await?;
        let drop = match table.map(|t| &t.kind) {
            Some(RelationKind::View { .. }) => "VIEW",
            _ => "TABLE",
        };
        self.attempt(&format!("DROP {drop} IF EXISTS {qualified} CASCADE"))
            .await?;
        if let Some(t) = table {
            for s in &on_bind.sequences {
                if s.owned_by.as_ref().is_some_and(|(tn, _)| tn == &t.name) {
                    let one = BindSchema {
                        sequences: vec![s.clone()],
                        ..BindSchema::default()
                    };
                    for stmt in ddl::render(&one) {
                        self.attempt(&stmt).await?;
                    }
                }
            }
            for stmt in ddl::render_table(t) {
                self.attempt(&stmt).await?;
            }
            for row in incoming {
                if let [Some(from), Some(con), Some(def)] = row.as_slice() {
                    self.attempt(&format!("ALTER TABLE {from} ADD CONSTRAINT {con} {def}"))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), CatalogError> {
        let mut this = self;
        this.must("COMMIT").await
    }
}
