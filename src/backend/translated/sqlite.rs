//! SQLite binds: one OS thread per rusqlite connection, driven over channels.
//!
//! Owns: opening connections (files: WAL, `synchronous=NORMAL`, `foreign_keys=ON`, a busy timeout;
//! in-memory binds: see below), the worker thread loop, statement preparation, row streaming in
//! bounded chunks, and the idle list of connections of a bind, with the reset a connection gets
//! before it goes back there (transaction, attached databases, `temp` objects, PRAGMAs), and
//! cancelling ([`SqliteCancel`]): the connection's interrupt handle, which stops only the running
//! statement (SQLITE_INTERRUPT → 57014).
//!
//! In-memory binds (`sqlite:///:memory:`, `sqlite://`) are ONE database for the life of the process,
//! shared by every client of the bind: it is opened as `file:/bindproxy-<bind>-<n>?vfs=memdb`, SQLite's
//! named in-memory VFS, which is shared by every connection of this process that uses the same name
//! and — unlike `cache=shared` — uses ordinary database locking. So each client still gets its own
//! connection and its own transactions, writers wait on the busy timeout instead of failing at once
//! with SQLITE_LOCKED, and a keeper connection,
//! opened in [`SqliteBind::new`] and never closed, keeps the database alive while no client is
//! connected. The cost: memdb locks like rollback-journal mode, so while one client has a write
//! transaction open (transactions start with `BEGIN IMMEDIATE`), other clients' reads wait for it
//! (busy timeout). Nobody ever sees uncommitted data.
//!
//! Must never: run SQLite on an async runtime thread, hold more than a few chunks of a result in
//! the channel (the worker blocks until the session takes them: backpressure), or hand the next
//! lease a connection its last client could have changed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::errors::from_sqlite;
use super::session::RowSink;
use super::types::{
    sqlite_decl_type, sqlite_decl_typmod, sqlite_is_rowid_decl, sqlite_rowid_type, PgType, Value,
};
use super::{CancelGate, Column, Prepared, RunOutcome, TableColumns, Ticket};
use crate::config::BindConfig;
use crate::error::ProxyError;
use crate::translate::SQLITE_SESSION_SETUP;

/// How long a writer waits for the database lock before its statement fails with 55P03.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per chunk sent from the worker thread to the session.
const CHUNK_ROWS: usize = 256;
/// Chunks in flight per running statement.
const CHUNKS_IN_FLIGHT: usize = 4;

static MEMDB_SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    /// A memdb URI.
    Memory(String),
}

pub struct SqliteBind {
    location: Location,
    /// Idle connections; None once the bind is retired (a reload replaced or removed it):
    /// connections given back then close.
    idle: Arc<Mutex<Option<Vec<Worker>>>>,
    /// Keeps an in-memory database alive.
    _keeper: Option<Worker>,
    connect_timeout: Duration,
}

impl SqliteBind {
    pub fn new(cfg: &BindConfig, path: Option<PathBuf>) -> Result<SqliteBind, ProxyError> {
        let location = match path {
            Some(p) => Location::File(p),
            None => {
                let n = MEMDB_SEQ.fetch_add(1, Ordering::Relaxed);
                let safe: String = cfg
                    .name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                Location::Memory(format!(
                    "file:/bindproxy-{safe}-{}-{n}?vfs=memdb",
                    std::process::id()
                ))
            }
        };
        let keeper = match &location {
            Location::Memory(_) => Some(Worker::spawn_blocking_open(&cfg.name, location.clone())?),
            Location::File(_) => None,
        };
        Ok(SqliteBind {
            location,
            idle: Arc::new(Mutex::new(Some(Vec::new()))),
            _keeper: keeper,
            connect_timeout: cfg.connect_timeout,
        })
    }

    /// Drains the bind: idle connections close now (their threads end), leased ones when they
    /// come back.
    pub(crate) fn retire(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.take();
        }
    }

    pub(crate) async fn get(&self, bind: &str) -> Result<SqliteConn, ProxyError> {
        let reused = self
            .idle
            .lock()
            .ok()
            .and_then(|mut v| v.as_mut().and_then(Vec::pop));
        let worker = match reused {
            Some(w) => w,
            None => {
                let open = Worker::spawn(bind, self.location.clone());
                match tokio::time::timeout(self.connect_timeout, open).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(ProxyError::BackendUnavailable {
                            bind: bind.into(),
                            reason: "opening the SQLite database timed out".into(),
                        })
                    }
                }
            }
        };
        Ok(SqliteConn {
            bind: bind.into(),
            worker,
            broken: false,
            idle: self.idle.clone(),
            gate: Arc::new(CancelGate::default()),
        })
    }

    pub(crate) async fn check(&self, bind: &str) -> Result<String, ProxyError> {
        let mut c = self.get(bind).await?;
        let (tx, rx) = oneshot::channel();
        c.send(Cmd::Version { reply: tx })?;
        let v = c.reply(rx).await?;
        c.give_back(false).await;
        Ok(format!("SQLite {v}"))
    }
}

enum Cmd {
    Prepare {
        sql: String,
        reply: oneshot::Sender<Result<Prepared, ProxyError>>,
    },
    Run {
        sql: String,
        params: Vec<Value>,
        chunks: mpsc::Sender<Chunk>,
    },
    Batch {
        sql: String,
        reply: oneshot::Sender<Result<(), ProxyError>>,
    },
    TableInfo {
        table: String,
        reply: oneshot::Sender<Result<Vec<(String, PgType)>, ProxyError>>,
    },
    Version {
        reply: oneshot::Sender<Result<String, ProxyError>>,
    },
    /// The lease ended: make the connection as good as new for the next one (see [`reset`]).
    Reset,
}

enum Chunk {
    Columns(Vec<Column>),
    Rows(Vec<Vec<Value>>),
    Done(Result<RunOutcome, ProxyError>),
}

/// The sending end of one connection thread. The thread ends (closing the connection, which rolls
/// back anything open) when this is dropped.
struct Worker {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The interrupt handle of the thread's current connection (replaced when it reopens).
    interrupt: Interrupt,
}

type Interrupt = Arc<Mutex<Option<InterruptHandle>>>;

/// How to cancel the statement running on one SQLite connection: `sqlite3_interrupt`, which stops
/// the running statement with SQLITE_INTERRUPT and nothing else (a no-op when none runs).
#[derive(Clone)]
pub struct SqliteCancel {
    interrupt: Interrupt,
    pub(super) ticket: Ticket,
}

impl SqliteCancel {
    pub(crate) async fn cancel(&self) -> Result<(), String> {
        self.ticket
            .act(|| async {
                if let Some(h) = self
                    .interrupt
                    .lock()
                    .ok()
                    .as_deref()
                    .and_then(Option::as_ref)
                {
                    h.interrupt();
                }
                Ok(())
            })
            .await
    }
}

fn open(bind: &str, loc: &Location) -> Result<Connection, ProxyError> {
    let unavailable = |e: rusqlite::Error| ProxyError::BackendUnavailable {
        bind: bind.into(),
        reason: e.to_string(),
    };
    let conn = match loc {
        Location::File(p) => {
            if let Some(dir) = p.parent() {
                // Like SQLite creating the file, bindproxy creates its folder.
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    std::fs::create_dir_all(dir).map_err(|e| ProxyError::BackendUnavailable {
                        bind: bind.into(),
                        reason: format!("cannot create directory {}: {e}", dir.display()),
                    })?;
                }
            }
            let c = Connection::open(p).map_err(unavailable)?;
            c.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
                .map_err(unavailable)?;
            c
        }
        Location::Memory(uri) => {
            let c = Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(unavailable)?;
            c.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
            c
        }
    };
    // A double-quoted name that is no column must be an error (42703), not a string literal.
    for dqs in [
        DbConfig::SQLITE_DBCONFIG_DQS_DML,
        DbConfig::SQLITE_DBCONFIG_DQS_DDL,
    ] {
        conn.set_db_config(dqs, false).map_err(unavailable)?;
    }
    for sql in SQLITE_SESSION_SETUP {
        conn.execute_batch(sql).map_err(unavailable)?;
    }
    register_divisor(&conn).map_err(unavailable)?;
    register_catalog_functions(&conn).map_err(unavailable)?;
    for ty in crate::translate::SQLITE_RANGE_TYPES {
        register_range(&conn, ty).map_err(unavailable)?;
    }
    Ok(conn)
}

/// The functions the embedded catalog's SQL uses (`translate::catalog`):
/// `bindproxy_regex(text, pattern)` is PostgreSQL's `text ~ pattern` (the `regex` crate; NULL when
/// either is NULL, an error for a pattern it cannot compile).
fn register_catalog_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        crate::translate::catalog::REGEX_FUNCTION,
        2,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_INNOCUOUS
            | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let (Some(text), Some(pattern)) =
                (ctx.get::<Option<String>>(0)?, ctx.get::<Option<String>>(1)?)
            else {
                return Ok(None);
            };
            let re = regex::Regex::new(&pattern)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            Ok(Some(re.is_match(&text)))
        },
    )
}

/// `bindproxy_divisor(x)`: `x` itself, or an error when `x` is zero (integer, real, or text that
/// reads as a zero number), so that `a / b` and `a % b`, rendered as `a / bindproxy_divisor(b)`,
/// raise PostgreSQL's 22012 instead of SQLite's NULL (see `crate::translate::SQLITE_DIVISOR_FUNCTION`).
fn register_divisor(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    conn.create_scalar_function(
        crate::translate::SQLITE_DIVISOR_FUNCTION,
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_INNOCUOUS
            | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let v = ctx.get_raw(0);
            let zero = match v {
                ValueRef::Integer(i) => i == 0,
                ValueRef::Real(f) => f == 0.0,
                // numeric affinity: text that reads as a number is that number
                ValueRef::Text(t) => {
                    std::str::from_utf8(t)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        == Some(0.0)
                }
                _ => false,
            };
            if zero {
                Err(rusqlite::Error::UserFunctionError(
                    crate::translate::SQLITE_DIVISION_BY_ZERO.into(),
                ))
            } else {
                Value::try_from(v).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
            }
        },
    )
}

/// `bindproxy_int4(x)` (and `_int2`, `_int8`): `x` itself, or an error when `x` is an integer
/// outside the type's range or a real (SQLite turns an overflowing integer operation into a real),
/// so that integer arithmetic raises PostgreSQL's 22003 (see `crate::translate::SQLITE_RANGE_TYPES`).
fn register_range(conn: &Connection, typname: &'static str) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    let (lo, hi) = match typname {
        "int2" => (i16::MIN as i64, i16::MAX as i64),
        "int4" => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    conn.create_scalar_function(
        crate::translate::sqlite_range_function(typname).as_str(),
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_INNOCUOUS
            | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let v = ctx.get_raw(0);
            let out = match v {
                ValueRef::Integer(i) => !(lo..=hi).contains(&i),
                ValueRef::Real(_) => true,
                _ => false,
            };
            if out {
                Err(rusqlite::Error::UserFunctionError(
                    crate::translate::sqlite_out_of_range(typname).into(),
                ))
            } else {
                Value::try_from(v).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
            }
        },
    )
}

/// How a new connection thread reports that its database is open.
enum Ready {
    Async(oneshot::Sender<Result<(), ProxyError>>),
    /// For [`SqliteBind::new`], which is not async (and may run on a runtime thread, where a
    /// tokio blocking receive would panic).
    Blocking(std::sync::mpsc::SyncSender<Result<(), ProxyError>>),
}

impl Ready {
    fn send(self, r: Result<(), ProxyError>) {
        match self {
            Ready::Async(tx) => {
                let _ = tx.send(r);
            }
            Ready::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

impl Worker {
    fn start(bind: &str, loc: Location, ready: Ready) -> Result<Worker, ProxyError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let name = bind.to_string();
        let interrupt: Interrupt = Arc::new(Mutex::new(None));
        let handle = interrupt.clone();
        std::thread::Builder::new()
            .name(format!("sqlite-{bind}"))
            .spawn(move || match open(&name, &loc) {
                Ok(conn) => {
                    set_interrupt(&handle, &conn);
                    ready.send(Ok(()));
                    worker_loop(&name, &loc, conn, rx, &handle);
                }
                Err(e) => ready.send(Err(e)),
            })
            .map_err(|e| ProxyError::BackendUnavailable {
                bind: bind.into(),
                reason: format!("cannot start a thread: {e}"),
            })?;
        Ok(Worker { tx, interrupt })
    }

    fn ended(bind: &str) -> ProxyError {
        ProxyError::BackendUnavailable {
            bind: bind.into(),
            reason: "the SQLite thread ended while opening".into(),
        }
    }

    async fn spawn(bind: &str, loc: Location) -> Result<Worker, ProxyError> {
        let (tx, rx) = oneshot::channel();
        let w = Worker::start(bind, loc, Ready::Async(tx))?;
        rx.await.map_err(|_| Worker::ended(bind))??;
        Ok(w)
    }

    /// Opens on a new thread and waits for it here (an in-memory open takes microseconds).
    fn spawn_blocking_open(bind: &str, loc: Location) -> Result<Worker, ProxyError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let w = Worker::start(bind, loc, Ready::Blocking(tx))?;
        rx.recv().map_err(|_| Worker::ended(bind))??;
        Ok(w)
    }
}

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(i),
        Value::UInt(u) => match i64::try_from(u) {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => SqlValue::Text(u.to_string()),
        },
        Value::Float(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Bytes(b) => SqlValue::Blob(b),
        other => {
            // Dates/times never come from clients in this form; render as text for safety.
            let mut out = bytes::BytesMut::new();
            let _ = super::types::encode(PgType::Text, &other, false, &mut out);
            SqlValue::Text(String::from_utf8_lossy(out.get(4..).unwrap_or_default()).into_owned())
        }
    }
}

fn from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

fn columns_of(conn: &Connection, stmt: &rusqlite::Statement<'_>) -> Vec<Column> {
    let mut cols: Vec<Column> = stmt
        .columns()
        .map(|c| Column {
            name: c.name().to_string(),
            ty: sqlite_decl_type(c.decl_type()),
            typmod: sqlite_decl_typmod(c.decl_type()),
            declared: c.decl_type().is_some(),
            scale: None,
        })
        .collect();
    let rowid: Vec<bool> = stmt
        .columns()
        .map(|c| sqlite_is_rowid_decl(c.decl_type()))
        .collect();
    if rowid.contains(&true) {
        for (i, m) in stmt.columns_with_metadata().enumerate() {
            if let (Some(true), Some(db), Some(table), Some(column), Some(c)) = (
                rowid.get(i),
                m.database_name(),
                m.table_name(),
                m.origin_name(),
                cols.get_mut(i),
            ) {
                c.ty = rowid_type(conn, db, table, column);
            }
        }
    }
    cols
}

thread_local! {
    /// This connection's `CREATE TABLE` texts of tables with a rowid alias column, by (schema,
    /// table), with the schema version they were read at (each connection has its own thread).
    static CREATE_TEXTS: std::cell::RefCell<std::collections::HashMap<(String, String), (i64, String)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The PostgreSQL type of a rowid alias column `db.table.column` ([`sqlite_rowid_type`]); int8
/// when the table's text cannot be read.
fn rowid_type(conn: &Connection, db: &str, table: &str, column: &str) -> PgType {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let Ok(version) = conn
        .prepare_cached(&format!("PRAGMA {}.schema_version", q(db)))
        .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
    else {
        return PgType::Int8;
    };
    let key = (db.to_string(), table.to_string());
    let cached = CREATE_TEXTS.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|(v, _)| *v == version)
            .map(|(_, sql)| sqlite_rowid_type(sql, column))
    });
    if let Some(t) = cached {
        return t;
    }
    let Ok(sql) = conn
        .prepare_cached(&format!(
            "SELECT sql FROM {}.sqlite_master WHERE type = 'table' AND name = ?1",
            q(db)
        ))
        .and_then(|mut st| st.query_row([table], |r| r.get::<_, String>(0)))
    else {
        return PgType::Int8;
    };
    let t = sqlite_rowid_type(&sql, column);
    CREATE_TEXTS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(key, (version, sql));
    });
    t
}

fn prepare(bind: &str, conn: &Connection, sql: &str) -> Result<Prepared, ProxyError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| from_sqlite(bind, &e))?;
    let mut columns = columns_of(conn, &stmt);
    let param_count = stmt.parameter_count();
    // Expressions have no declared type. For a read-only statement without parameters, one step
    // tells the storage classes (`SELECT 1`, `SELECT count(*) FROM t`).
    if param_count == 0 && stmt.readonly() && columns.iter().any(|c| c.ty == PgType::Unknown) {
        let mut rows = stmt.raw_query();
        if let Ok(Some(row)) = rows.next() {
            for (i, c) in columns.iter_mut().enumerate() {
                if c.ty == PgType::Unknown {
                    if let Ok(v) = row.get_ref(i) {
                        c.ty = PgType::of_value(&from_ref(v));
                    }
                }
            }
        }
    }
    // Aggregates the translator named as PostgreSQL does (`count`, `sum`, `avg`): their PostgreSQL
    // result types, whatever the first row holds (an empty table has none).
    for c in &mut columns {
        if c.ty != PgType::Unknown {
            continue;
        }
        let name = c.name.to_ascii_lowercase();
        if name == "count" || name.starts_with("count(") {
            c.ty = PgType::Int8;
        } else if matches!(name.as_str(), "sum" | "avg") {
            c.ty = PgType::Numeric;
        }
    }
    Ok(Prepared {
        columns,
        param_count,
    })
}

fn run(
    bind: &str,
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    chunks: &mpsc::Sender<Chunk>,
) -> Result<RunOutcome, ProxyError> {
    let err = |e: rusqlite::Error| from_sqlite(bind, &e);
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(ProxyError::Protocol(format!(
            "the statement needs {expected} parameters, {} were supplied",
            params.len()
        )));
    }
    for (i, p) in params.into_iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sql(p)).map_err(err)?;
    }
    let readonly = stmt.readonly();
    let cols = columns_of(conn, &stmt);
    let ncols = cols.len();
    if chunks.blocking_send(Chunk::Columns(cols)).is_err() {
        return Ok(RunOutcome::default());
    }
    let mut rows = stmt.raw_query();
    let mut buf = Vec::with_capacity(CHUNK_ROWS.min(64));
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(err)? {
        let vals = (0..ncols)
            .map(|i| row.get_ref(i).map(from_ref).unwrap_or(Value::Null))
            .collect();
        buf.push(vals);
        n += 1;
        if buf.len() >= CHUNK_ROWS
            && chunks
                .blocking_send(Chunk::Rows(std::mem::take(&mut buf)))
                .is_err()
        {
            return Ok(RunOutcome::default()); // the session gave up on this result
        }
    }
    drop(rows);
    if !buf.is_empty() {
        let _ = chunks.blocking_send(Chunk::Rows(buf));
    }
    Ok(RunOutcome {
        affected: if readonly { 0 } else { conn.changes() },
        rows: n,
    })
}

fn table_info(
    bind: &str,
    conn: &Connection,
    table: &str,
) -> Result<Vec<(String, PgType)>, ProxyError> {
    let err = |e: rusqlite::Error| from_sqlite(bind, &e);
    let mut stmt = conn
        .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(err)?;
    let rows = stmt
        .query_map([table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .map_err(err)?;
    let mut out = vec![];
    for r in rows {
        let (name, decl) = r.map_err(err)?;
        let ty = match sqlite_decl_type(decl.as_deref()) {
            PgType::Unknown => PgType::Text,
            _ if sqlite_is_rowid_decl(decl.as_deref()) => rowid_type(conn, "main", table, &name),
            t => t,
        };
        out.push((name.to_lowercase(), ty));
    }
    Ok(out)
}

/// Undoes everything a client could have changed on its connection, as `DISCARD ALL` and
/// `ROLLBACK` do for a PostgreSQL one: an open transaction, attached databases, every object of
/// the connection's own `temp` schema, and the PRAGMAs that are per connection.
fn reset(loc: &Location, conn: &Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    let attached: Vec<String> = conn
        .prepare("SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in attached {
        conn.execute("DETACH DATABASE ?1", [&name])?;
    }
    // Views and triggers first: a table takes its own triggers and indexes with it.
    let temps: Vec<(String, String)> = conn
        .prepare(
            "SELECT type, name FROM sqlite_temp_master WHERE type IN ('view', 'trigger', 'table') \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type = 'table'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (kind, name) in temps {
        let kind = match kind.as_str() {
            "view" => "VIEW",
            "trigger" => "TRIGGER",
            _ => "TABLE",
        };
        let name = name.replace('"', "\"\"");
        conn.execute_batch(&format!("DROP {kind} IF EXISTS temp.\"{name}\""))?;
    }
    let left: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_temp_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        [],
        |r| r.get(0),
    )?;
    if left > 0 {
        return Err(rusqlite::Error::ExecuteReturnedResults);
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA defer_foreign_keys = OFF; PRAGMA query_only = OFF; \
         PRAGMA recursive_triggers = OFF; PRAGMA reverse_unordered_selects = OFF; \
         PRAGMA ignore_check_constraints = OFF; PRAGMA temp_store = DEFAULT;",
    )?;
    if let Location::File(_) = loc {
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    }
    for sql in SQLITE_SESSION_SETUP {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

fn set_interrupt(interrupt: &Interrupt, conn: &Connection) {
    if let Ok(mut h) = interrupt.lock() {
        *h = Some(conn.get_interrupt_handle());
    }
}

fn worker_loop(
    bind: &str,
    loc: &Location,
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    interrupt: &Interrupt,
) {
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Prepare { sql, reply } => {
                let _ = reply.send(prepare(bind, &conn, &sql));
            }
            Cmd::Run {
                sql,
                params,
                chunks,
            } => {
                let r = run(bind, &conn, &sql, params, &chunks);
                let _ = chunks.blocking_send(Chunk::Done(r));
            }
            Cmd::Batch { sql, reply } => {
                let _ = reply.send(conn.execute_batch(&sql).map_err(|e| from_sqlite(bind, &e)));
            }
            Cmd::TableInfo { table, reply } => {
                let _ = reply.send(table_info(bind, &conn, &table));
            }
            Cmd::Version { reply } => {
                let v = conn
                    .query_row("SELECT sqlite_version()", [], |r| r.get::<_, String>(0))
                    .map_err(|e| from_sqlite(bind, &e));
                let _ = reply.send(v);
            }
            Cmd::Reset => {
                if let Err(e) = reset(loc, &conn) {
                    // Not provably clean: start over with a new connection (closing this one
                    // rolls back whatever it held).
                    tracing::debug!(bind, "SQLite connection reopened after a failed reset: {e}");
                    match open(bind, loc) {
                        Ok(fresh) => {
                            set_interrupt(interrupt, &fresh);
                            conn = fresh;
                        }
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

/// A leased SQLite connection (its thread).
pub struct SqliteConn {
    bind: String,
    worker: Worker,
    broken: bool,
    idle: Arc<Mutex<Option<Vec<Worker>>>>,
    /// This lease's cancels (see [`CancelGate`]).
    gate: Arc<CancelGate>,
}

impl SqliteConn {
    /// How to cancel the statement about to run.
    pub(crate) fn cancel_handle(&self) -> SqliteCancel {
        SqliteCancel {
            interrupt: self.worker.interrupt.clone(),
            ticket: self.gate.ticket(),
        }
    }

    fn lost(&mut self) -> ProxyError {
        self.broken = true;
        ProxyError::BackendLost {
            bind: self.bind.clone(),
            reason: "the SQLite connection thread ended".into(),
        }
    }

    fn send(&mut self, cmd: Cmd) -> Result<(), ProxyError> {
        if self.worker.tx.send(cmd).is_err() {
            return Err(self.lost());
        }
        Ok(())
    }

    async fn reply<T>(
        &mut self,
        rx: oneshot::Receiver<Result<T, ProxyError>>,
    ) -> Result<T, ProxyError> {
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.lost()),
        }
    }

    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Prepared, ProxyError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Prepare {
            sql: sql.into(),
            reply: tx,
        })?;
        self.reply(rx).await
    }

    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), ProxyError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Batch {
            sql: sql.into(),
            reply: tx,
        })?;
        self.reply(rx).await
    }

    pub(crate) async fn table_columns(&mut self, table: &str) -> Result<TableColumns, ProxyError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::TableInfo {
            table: table.into(),
            reply: tx,
        })?;
        Ok(super::with_positions(self.reply(rx).await?.into_iter()))
    }

    pub(crate) async fn run(
        &mut self,
        sql: &str,
        params: Vec<Value>,
        sink: &mut RowSink<'_>,
    ) -> Result<RunOutcome, ProxyError> {
        let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        self.send(Cmd::Run {
            sql: sql.into(),
            params,
            chunks: tx,
        })?;
        // On a sink error the receiver is dropped: the worker stops stepping at its next send and
        // takes the next command (commands are handled in order, so nothing overlaps).
        loop {
            match rx.recv().await {
                Some(Chunk::Columns(c)) => sink.columns(&c),
                Some(Chunk::Rows(rows)) => {
                    for r in rows {
                        sink.row(r)?;
                    }
                }
                Some(Chunk::Done(r)) => return r,
                None => return Err(self.lost()),
            }
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Back to the idle list, or closed (its thread ends) when it may hold an open transaction.
    /// A pooled connection is reset first ([`reset`]): the reset is the thread's next command, so
    /// the next lease's statements run after it. No cancel of this lease reaches the connection
    /// once it is back ([`CancelGate::close`]).
    pub(crate) async fn give_back(self, dirty: bool) {
        self.gate.close().await;
        if dirty || self.broken || self.worker.tx.send(Cmd::Reset).is_err() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if let Some(idle) = idle.as_mut() {
                idle.push(self.worker);
            }
        }
    }
}

/// Catalog reads of bindproxy's own (`catalog/read/sqlite.rs`): not a client's statement.
impl SqliteConn {
    /// Runs one read-only query and returns its rows as text (NULL as `None`, integers and reals
    /// in their decimal form, blobs as lossy UTF-8).
    pub(crate) async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ProxyError> {
        let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        self.send(Cmd::Run {
            sql: sql.into(),
            params: vec![],
            chunks: tx,
        })?;
        let mut out = Vec::new();
        loop {
            match rx.recv().await {
                Some(Chunk::Columns(_)) => {}
                Some(Chunk::Rows(rows)) => out.extend(rows.into_iter().map(|r| {
                    r.into_iter()
                        .map(|v| match v {
                            Value::Null => None,
                            Value::Int(i) => Some(i.to_string()),
                            Value::UInt(u) => Some(u.to_string()),
                            Value::Float(f) => Some(f.to_string()),
                            Value::Text(s) => Some(s),
                            Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                            _ => None,
                        })
                        .collect()
                })),
                Some(Chunk::Done(r)) => return r.map(|_| out),
                None => return Err(self.lost()),
            }
        }
    }
}
