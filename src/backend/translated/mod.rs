//! MySQL/MariaDB and SQLite binds that look, to a PostgreSQL client, exactly like PostgreSQL.
//!
//! Owns: the public face the session pump calls ([`TranslatedBind`], [`TranslatedConn`]), checkout
//! (a semaphore of `pool_size` permits: waiting longer than `checkout_timeout` is 53300; failing to
//! connect is 08001 naming the bind), the per-bind cache of column types used to describe
//! parameters, the dispatch to the engine modules, and [`CancelHandle`]: how a CancelRequest stops
//! the statement running on a connection (MySQL: `KILL QUERY` from a fresh connection; SQLite: its
//! interrupt handle), through a [`CancelGate`] so that it never reaches a later statement's lease.
//!
//! Files: [`types`] (type map and value encodings), [`errors`] (SQLSTATE map), [`mysql`] (mysql_async
//! pool and connection), [`mysql_tls`] (`ssl_mode`/`ssl_ca` of a MySQL URL), [`sqlite`] (one OS thread per rusqlite connection), [`local`] (SET/SHOW and
//! other table-less statements answered without an engine), [`session`] (the per-client PostgreSQL
//! emulation: statements, portals, transactions).
//!
//! Must never: send PostgreSQL syntax to an engine (everything goes through `crate::translate`), or
//! block the async runtime on an engine call.

pub mod copy;
pub mod errors;
pub mod local;
pub mod mysql;
pub mod mysql_tls;
pub mod rebuild;
mod restype;
pub mod session;
pub mod sqlite;
mod template;
pub mod types;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{BindConfig, BindUrl};
use crate::error::ProxyError;
use crate::translate::{rewrite_sql_typed, ColumnTypes, Rewritten, Target, TranslateError};

pub use session::TranslatedConn;
use types::{PgType, Value};

/// A result column as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: PgType,
    /// PostgreSQL's atttypmod (`numeric(p,s)`: `((p << 16) | s) + 4`), -1 when not known. Text
    /// output of a numeric column keeps its declared scale, as PostgreSQL's does.
    pub typmod: i32,
    /// The engine reported a type for the column (false: a SQLite expression, typed from its first
    /// value or from [`crate::translate::Rewritten::result_types`]).
    pub declared: bool,
    /// For a numeric expression without a typmod: the scale PostgreSQL prints its values with
    /// (`1.5 * 2` → `3.0`), where the operands fix it.
    pub scale: Option<usize>,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: PgType) -> Self {
        Column {
            name: name.into(),
            ty,
            typmod: -1,
            declared: true,
            scale: None,
        }
    }

    /// The typmod the values are encoded with: the column's, or one that carries [`Column::scale`].
    pub(crate) fn value_typmod(&self) -> i32 {
        match (self.typmod, self.scale) {
            (-1, Some(s)) if s <= 1000 => ((1000 << 16) | s as i32) + 4,
            (t, _) => t,
        }
    }
}

/// What preparing a statement on the engine taught us.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub columns: Vec<Column>,
    pub param_count: usize,
}

/// What running a statement did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOutcome {
    /// Rows changed (INSERT/UPDATE/DELETE), as the engine counts them.
    pub affected: u64,
    /// Rows returned.
    pub rows: u64,
}

/// How a statement without parameters may run (MySQL/MariaDB; SQLite has one way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Protocol {
    /// Prepare (the connection's statement cache) and execute: the binary protocol.
    #[default]
    Prepared,
    /// One round trip with the text protocol; the values are converted to what the binary protocol
    /// would have produced. `rerun`: a FLOAT result column (whose text form MySQL rounds to six
    /// digits) makes the statement run again prepared, the text result unread — only for
    /// statements that may run twice (SELECT).
    Text { rerun: bool },
}

/// Column name → type of one table, from the engine's catalog.
/// A table's column types by lower-case name, and also by position as `#1`, `#2`, … (for
/// `INSERT INTO t VALUES ($1, $2)`, whose parameters line up with the columns in table order).
pub type TableColumns = Arc<HashMap<String, PgType>>;

/// Builds [`TableColumns`] from columns in table order.
pub(crate) fn with_positions(cols: impl Iterator<Item = (String, PgType)>) -> TableColumns {
    let mut map = HashMap::new();
    for (i, (name, ty)) in cols.enumerate() {
        map.insert(format!("#{}", i + 1), ty);
        map.insert(name, ty);
    }
    Arc::new(map)
}

/// One configured MySQL/MariaDB or SQLite bind. Shared by every session (`Arc`).
pub struct TranslatedBind {
    pub(crate) name: String,
    pub(crate) engine: EngineBind,
    permits: Arc<Semaphore>,
    pool_size: usize,
    checkout_timeout: Duration,
    pub(crate) columns: Arc<ColumnCache>,
    /// Statement text → its rewrite for this bind's engine, so a repeated statement is parsed and
    /// re-rendered once (ORMs and the extended protocol send the same text again and again).
    rewrites: Mutex<lru::LruCache<String, Arc<Vec<Rewritten>>>>,
    dialect: Dialect,
}

/// Which PostgreSQL statements a translated bind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A MySQL/SQLite bind of the configuration: the translator's subset (`translate`).
    Plain,
    /// The embedded catalog (`catalog/embedded`): catalog queries (`translate::catalog`).
    Catalog,
}

/// How many rewrites a bind keeps, and the longest statement text worth keeping.
const REWRITE_CACHE: usize = 2048;
const REWRITE_CACHE_MAX_TEXT: usize = 16 * 1024;

/// A rewrite, and whether it was made with the column types of every table the translator asked
/// about.
pub(crate) enum Rewrite {
    Done(Arc<Vec<Rewritten>>),
    /// Some table's columns were not in the cache: load the tables' columns and rewrite again.
    Incomplete(Arc<Vec<Rewritten>>),
}

/// The column types the translator asks for ([`ColumnTypes`]), read from a bind's column cache.
struct CachedTypes<'a> {
    cache: &'a ColumnCache,
    /// A table was not in the cache.
    missed: std::sync::atomic::AtomicBool,
}

impl ColumnTypes for CachedTypes<'_> {
    fn column_type(&self, table: &str, column: &str) -> Option<String> {
        match self.cache.get(&table.to_lowercase()) {
            Some(cols) => cols
                .get(column)
                .filter(|t| **t != PgType::Unknown)
                .map(|t| t.typname().to_string()),
            None => {
                self.missed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }
}

/// Lower-case table name → its columns' types, per bind. Cleared after DDL.
#[derive(Debug, Default)]
pub struct ColumnCache(Mutex<HashMap<String, TableColumns>>);

impl ColumnCache {
    pub(crate) fn get(&self, table: &str) -> Option<TableColumns> {
        self.0.lock().ok()?.get(table).cloned()
    }
    pub(crate) fn put(&self, table: &str, cols: TableColumns) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(table.to_string(), cols);
        }
    }
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

pub(crate) enum EngineBind {
    MySql(mysql::MyBind),
    Sqlite(sqlite::SqliteBind),
}

impl std::fmt::Debug for TranslatedBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslatedBind")
            .field("name", &self.name)
            .finish()
    }
}

impl TranslatedBind {
    /// Sets up the bind. No network I/O; an in-memory SQLite bind opens its keeper connection here.
    pub fn new(cfg: &BindConfig) -> Result<Arc<Self>, ProxyError> {
        Self::with_dialect(cfg, Dialect::Plain)
    }

    /// The embedded catalog's bind (a SQLite bind that takes catalog queries; see
    /// `catalog/embedded`).
    pub fn new_catalog(cfg: &BindConfig) -> Result<Arc<Self>, ProxyError> {
        Self::with_dialect(cfg, Dialect::Catalog)
    }

    /// True for the embedded catalog's bind.
    pub fn is_catalog(&self) -> bool {
        self.dialect == Dialect::Catalog
    }

    /// Runs bindproxy's own SQL script (never a client's) on a SQLite bind's engine, as it is: the
    /// embedded catalog's contents. Clears the column-type cache.
    pub async fn run_own_batch(&self, sql: &str) -> Result<(), ProxyError> {
        let EngineBind::Sqlite(b) = &self.engine else {
            return Err(ProxyError::Protocol(format!(
                "bind \"{}\" is not a SQLite bind",
                self.name
            )));
        };
        let _permit = self.permit().await?;
        let mut c = b.get(&self.name).await?;
        let r = c.batch(sql).await;
        c.give_back(r.is_err()).await;
        self.columns.clear();
        r
    }

    fn with_dialect(cfg: &BindConfig, dialect: Dialect) -> Result<Arc<Self>, ProxyError> {
        let columns = Arc::new(ColumnCache::default());
        let engine = match &cfg.url {
            BindUrl::MySql { url, tls, .. } => {
                EngineBind::MySql(mysql::MyBind::new(cfg, url, tls, columns.clone())?)
            }
            BindUrl::Sqlite { path } => {
                EngineBind::Sqlite(sqlite::SqliteBind::new(cfg, path.clone())?)
            }
            BindUrl::Postgres(_) => {
                return Err(ProxyError::Protocol(format!(
                    "bind \"{}\" is a PostgreSQL bind, not a translated one",
                    cfg.name
                )))
            }
        };
        let size = cfg.pool_size.max(1);
        Ok(Arc::new(TranslatedBind {
            name: cfg.name.clone(),
            engine,
            permits: Arc::new(Semaphore::new(size)),
            pool_size: size,
            checkout_timeout: cfg.checkout_timeout,
            columns,
            rewrites: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(REWRITE_CACHE).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            dialect,
        }))
    }

    /// The statement re-rendered for this bind's engine, from the cache when the same text was
    /// rewritten before. Errors are not cached. The translator reads the types of the tables'
    /// columns from the column cache ([`CachedTypes`]); a rewrite made while a table it asked about
    /// was not in the cache is returned as [`Rewrite::Incomplete`] (not cached): the caller loads
    /// the tables' columns and asks again.
    pub(crate) fn rewrite(&self, sql: &str) -> Result<Rewrite, TranslateError> {
        if self.dialect == Dialect::Catalog {
            return self.rewrite_catalog(sql).map(Rewrite::Done);
        }
        let types = CachedTypes {
            cache: &self.columns,
            missed: std::sync::atomic::AtomicBool::new(false),
        };
        let parts = self.rewrite_with(sql, &types)?;
        if types.missed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Rewrite::Incomplete(parts));
        }
        if sql.len() <= REWRITE_CACHE_MAX_TEXT && self.cached(sql).is_none() {
            self.remember(sql.to_owned(), parts.clone());
        }
        Ok(Rewrite::Done(parts))
    }

    /// Forgets every rewrite (after DDL: the column types they were made with may have changed).
    pub(crate) fn forget_rewrites(&self) {
        if let Ok(mut c) = self.rewrites.lock() {
            c.clear();
        }
    }

    fn rewrite_with(
        &self,
        sql: &str,
        types: &CachedTypes<'_>,
    ) -> Result<Arc<Vec<Rewritten>>, TranslateError> {
        let typed = Some(types as &(dyn ColumnTypes + Sync));
        if sql.len() > REWRITE_CACHE_MAX_TEXT {
            return Ok(Arc::new(rewrite_sql_typed(sql, self.target(), typed)?));
        }
        if let Some(hit) = self.cached(sql) {
            return Ok(hit);
        }
        // Statements that differ only in compared integers share one template.
        if let Some(lifted) = template::lift(sql) {
            // Templates live under a key no client text can equal (it starts with NUL).
            let key = format!("\0{}", lifted.key);
            let entry = match self.cached(&key) {
                Some(t) => Some(t),
                None => {
                    let t = Arc::new(
                        rewrite_sql_typed(&lifted.key, self.target(), typed).unwrap_or_default(),
                    );
                    if types.missed.load(std::sync::atomic::Ordering::Relaxed) {
                        // made without the column types: not kept
                        return Ok(Arc::new(rewrite_sql_typed(sql, self.target(), typed)?));
                    }
                    // An empty entry marks "no usable template": rewrite the text as it is.
                    let usable = !t.is_empty() && template::is_template(&t, &lifted.literals);
                    let t = if usable { t } else { Arc::new(Vec::new()) };
                    self.remember(key, t.clone());
                    Some(t)
                }
            };
            if let Some(t) = entry.filter(|t| !t.is_empty()) {
                return Ok(Arc::new(template::fill(&t, &lifted.literals)));
            }
        }
        Ok(Arc::new(rewrite_sql_typed(sql, self.target(), typed)?))
    }

    /// [`Self::rewrite`] for the embedded catalog: `translate::catalog`, cached by text.
    fn rewrite_catalog(&self, sql: &str) -> Result<Arc<Vec<Rewritten>>, TranslateError> {
        if let Some(hit) = self.cached(sql) {
            return Ok(hit);
        }
        let parts = Arc::new(crate::translate::catalog::rewrite_sql(sql)?);
        if sql.len() <= REWRITE_CACHE_MAX_TEXT {
            self.remember(sql.to_owned(), parts.clone());
        }
        Ok(parts)
    }

    fn cached(&self, key: &str) -> Option<Arc<Vec<Rewritten>>> {
        self.rewrites
            .lock()
            .ok()
            .and_then(|mut c| c.get(key).cloned())
    }

    fn remember(&self, key: String, parts: Arc<Vec<Rewritten>>) {
        if let Ok(mut c) = self.rewrites.lock() {
            c.put(key, parts);
        }
    }

    /// Connections leased now.
    pub fn in_use(&self) -> usize {
        self.pool_size
            .saturating_sub(self.permits.available_permits())
    }

    /// Drains the bind after a reload replaced or removed it (`registry.rs`): connections close
    /// once given back.
    pub fn retire(&self) {
        match &self.engine {
            EngineBind::MySql(b) => b.retire(),
            EngineBind::Sqlite(b) => b.retire(),
        }
    }

    /// True for a MySQL/MariaDB bind (false: SQLite).
    pub fn is_mysql(&self) -> bool {
        matches!(self.engine, EngineBind::MySql(_))
    }

    /// For a MySQL/MariaDB bind: the options of a connection outside the pool (the URL's, with
    /// its TLS), for control work such as `XA RECOVER`.
    pub fn mysql_direct_opts(&self) -> Option<mysql_async::Opts> {
        match &self.engine {
            EngineBind::MySql(m) => Some(m.direct_opts()),
            EngineBind::Sqlite(_) => None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn target(&self) -> Target {
        match self.engine {
            EngineBind::MySql(_) => Target::MySql,
            EngineBind::Sqlite(_) => Target::Sqlite,
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        match tokio::time::timeout(self.checkout_timeout, self.permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ProxyError::PoolExhausted {
                bind: self.name.clone(),
                size: self.pool_size,
                waited_ms: self.checkout_timeout.as_millis() as u64,
            }),
        }
    }

    /// Leases a connection. At most `pool_size` at once; waits up to `checkout_timeout`.
    pub async fn checkout(self: &Arc<Self>) -> Result<TranslatedConn, ProxyError> {
        let permit = self.permit().await?;
        let engine = match &self.engine {
            EngineBind::MySql(b) => EngineConn::MySql(b.get(&self.name).await?),
            EngineBind::Sqlite(b) => EngineConn::Sqlite(b.get(&self.name).await?),
        };
        Ok(TranslatedConn::new(self.clone(), engine, permit))
    }

    /// `bindproxy check`: connects and returns the engine and version ("MariaDB 10.11.6", "SQLite 3.50.1").
    pub async fn check(&self) -> Result<String, ProxyError> {
        match &self.engine {
            EngineBind::MySql(b) => b.check(&self.name).await,
            EngineBind::Sqlite(b) => b.check(&self.name).await,
        }
    }

    /// The types of a table's columns (cached per bind).
    pub(crate) async fn table_columns(
        &self,
        conn: &mut EngineConn,
        table: &str,
    ) -> Result<TableColumns, ProxyError> {
        let key = table.to_lowercase();
        if let Some(c) = self.columns.get(&key) {
            return Ok(c);
        }
        let c = conn.table_columns(&key).await?;
        if !c.is_empty() {
            self.columns.put(&key, c.clone());
        }
        Ok(c)
    }
}

/// How to cancel the statement running on one MySQL/SQLite connection lease (cheap to clone).
#[derive(Clone)]
pub enum CancelHandle {
    MySql(mysql::MyCancel),
    Sqlite(sqlite::SqliteCancel),
}

impl CancelHandle {
    /// Stops the statement this handle was taken for, if it is still the one running (see
    /// [`CancelGate`]); afterwards the connection is usable and the statement fails with 57014.
    pub async fn cancel(&self) -> Result<(), String> {
        match self {
            CancelHandle::MySql(c) => c.cancel().await,
            CancelHandle::Sqlite(c) => c.cancel().await,
        }
    }

    /// The statement ended: a cancel that comes later does nothing.
    pub fn retire(&self) {
        match self {
            CancelHandle::MySql(c) => c.ticket.retire(),
            CancelHandle::Sqlite(c) => c.ticket.retire(),
        }
    }
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelHandle::MySql(c) => write!(f, "CancelHandle::MySql({})", c.id),
            CancelHandle::Sqlite(_) => f.write_str("CancelHandle::Sqlite"),
        }
    }
}

/// Which statement of one connection lease a cancel may still reach. Each handle carries the
/// epoch it was taken at; the end of a statement ([`CancelHandle::retire`]) or of the lease
/// ([`CancelGate::close`]) moves the epoch on, and a cancel acts only while holding `busy` and
/// seeing its own epoch. `close` moves the epoch on and then waits for `busy`, so once it returns
/// no cancel of this lease can reach the connection: the pool's next lease is never hit.
#[derive(Default)]
pub(crate) struct CancelGate {
    epoch: AtomicU64,
    busy: tokio::sync::Mutex<()>,
}

impl CancelGate {
    /// A ticket for the statement about to run.
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket {
            gate: self.clone(),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    /// The lease ends: no cancel taken before reaches the connection after this returns.
    pub(crate) async fn close(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let _ = self.busy.lock().await;
    }

    /// Like [`CancelGate::close`] without waiting (a connection dropped outside async code).
    pub(crate) fn close_now(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// One statement's claim on a [`CancelGate`].
#[derive(Clone)]
pub(crate) struct Ticket {
    gate: Arc<CancelGate>,
    epoch: u64,
}

impl Ticket {
    /// Runs `act` if this ticket's statement may still be cancelled, holding the gate meanwhile.
    pub(crate) async fn act<F: std::future::Future<Output = Result<(), String>>>(
        &self,
        act: impl FnOnce() -> F,
    ) -> Result<(), String> {
        let _busy = self.gate.busy.lock().await;
        if self.gate.epoch.load(Ordering::SeqCst) != self.epoch {
            return Ok(());
        }
        act().await
    }

    fn retire(&self) {
        let _ = self.gate.epoch.compare_exchange(
            self.epoch,
            self.epoch.wrapping_add(1),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// A leased engine connection.
pub(crate) enum EngineConn {
    MySql(mysql::MyConn),
    Sqlite(sqlite::SqliteConn),
}

impl EngineConn {
    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Prepared, ProxyError> {
        match self {
            EngineConn::MySql(c) => c.prepare(sql).await,
            EngineConn::Sqlite(c) => c.prepare(sql).await,
        }
    }

    pub(crate) async fn run(
        &mut self,
        sql: &str,
        params: Vec<Value>,
        protocol: Protocol,
        sink: &mut session::RowSink<'_>,
    ) -> Result<RunOutcome, ProxyError> {
        match self {
            EngineConn::MySql(c) => c.run(sql, params, protocol, sink).await,
            EngineConn::Sqlite(c) => c.run(sql, params, sink).await,
        }
    }

    /// Runs a statement without results (transaction control).
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), ProxyError> {
        match self {
            EngineConn::MySql(c) => c.batch(sql).await,
            EngineConn::Sqlite(c) => c.batch(sql).await,
        }
    }

    pub(crate) async fn table_columns(&mut self, table: &str) -> Result<TableColumns, ProxyError> {
        match self {
            EngineConn::MySql(c) => c.table_columns(table).await,
            EngineConn::Sqlite(c) => c.table_columns(table).await,
        }
    }

    pub(crate) fn is_mysql(&self) -> bool {
        matches!(self, EngineConn::MySql(_))
    }

    /// How to cancel the statement about to run on this connection.
    pub(crate) fn cancel_handle(&self) -> Option<CancelHandle> {
        match self {
            EngineConn::MySql(c) => c.cancel_handle().map(CancelHandle::MySql),
            EngineConn::Sqlite(c) => Some(CancelHandle::Sqlite(c.cancel_handle())),
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        match self {
            EngineConn::MySql(c) => c.is_broken(),
            EngineConn::Sqlite(c) => c.is_broken(),
        }
    }

    /// Engine syntax for transaction control.
    pub(crate) fn begin_sql(&self) -> &'static str {
        match self {
            EngineConn::MySql(_) => "START TRANSACTION",
            // IMMEDIATE: take the write lock at BEGIN, so that two transactions never both read and
            // then fail to upgrade (SQLITE_BUSY without waiting). Writers queue on busy_timeout.
            EngineConn::Sqlite(_) => "BEGIN IMMEDIATE",
        }
    }

    pub(crate) fn quote_ident(&self, name: &str) -> String {
        match self {
            EngineConn::MySql(_) => format!("`{}`", name.replace('`', "``")),
            EngineConn::Sqlite(_) => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// Closes the connection instead of handing it back: it holds a prepared XA branch, which the
    /// server keeps after the disconnect (a reset or the next lease must not touch it).
    pub(crate) async fn close(self) {
        match self {
            EngineConn::MySql(c) => c.close().await,
            EngineConn::Sqlite(c) => c.give_back(true).await,
        }
    }

    /// Hands the connection back to its pool; `dirty` = a transaction may be open.
    pub(crate) async fn give_back(self, dirty: bool) {
        match self {
            EngineConn::MySql(c) => c.give_back(dirty).await,
            EngineConn::Sqlite(c) => c.give_back(dirty).await,
        }
    }
}

/// Catalog reads of bindproxy's own (`catalog/read`): a connection of the bind's pool, checked
/// out and given back clean around one read-only query.
impl TranslatedBind {
    /// Runs one read-only catalog query on a connection of this bind and returns its rows as text
    /// (NULL as `None`).
    pub(crate) async fn query_rows(
        &self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ProxyError> {
        let _permit = self.permit().await?;
        let mut conn = match &self.engine {
            EngineBind::MySql(b) => EngineConn::MySql(b.get(&self.name).await?),
            EngineBind::Sqlite(b) => EngineConn::Sqlite(b.get(&self.name).await?),
        };
        let r = match &mut conn {
            EngineConn::MySql(c) => c.query_rows(sql).await,
            EngineConn::Sqlite(c) => c.query_rows(sql).await,
        };
        // An error leaves no transaction behind (autocommit reads), but a failed read is reset
        // anyway rather than trusted.
        conn.give_back(r.is_err()).await;
        r
    }
}
