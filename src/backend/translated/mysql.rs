//! MySQL/MariaDB binds: a mysql_async pool per bind, and the leased connection.
//!
//! Owns: pool options (at most `pool_size` connections, no COM_RESET_CONNECTION on return so the
//! statement cache survives; a connection that may hold an open transaction is reset instead), the
//! session setup every connection gets (the translator's `MYSQL_SESSION_SETUP`: strict mode,
//! `NO_BACKSLASH_ESCAPES`, `time_zone '+00:00'` so TIMESTAMP/timestamptz values are UTC, utf8mb4),
//! `CLIENT_FOUND_ROWS` (UPDATE n counts matched rows, as PostgreSQL), statement preparation with
//! result column mapping (wire metadata refined by information_schema: the translator's
//! `pg:<type>` column comments, MariaDB's JSON check), and
//! row streaming: rows are handed to the sink one by one as they arrive, never collected; and
//! cancelling ([`MyCancel`]): `KILL QUERY <connection id>` from a fresh connection (not the pool's),
//! which stops the statement and leaves the connection usable (error 1317 → 57014).
//!
//! Must never: block; leak an open transaction, a temporary table or a session variable to the next
//! lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts};

use super::errors::{from_mysql, mysql_is_fatal};
use super::mysql_tls::{MySslMode, MyTls};
use super::session::RowSink;
use super::types::{
    mysql_column_type, mysql_info_schema_type, mysql_refine, MySqlColumnType, PgType, Value,
};
use super::{
    CancelGate, Column, ColumnCache, Prepared, Protocol, RunOutcome, TableColumns, Ticket,
};
use crate::config::BindConfig;
use crate::error::ProxyError;
use crate::translate::MYSQL_SESSION_SETUP;

/// Statements each connection keeps prepared (LRU).
const STMT_CACHE: usize = 256;

pub struct MyBind {
    pool: Pool,
    connect_timeout: Duration,
    cache: Arc<ColumnCache>,
    /// The bind's URL options alone, for the connection that runs `KILL QUERY`.
    kill_opts: Opts,
    /// `ssl_mode=PREFERRED`: the plaintext pool (and kill options) used from the first time the
    /// server turns out to offer no TLS.
    plain: Option<(Pool, Opts)>,
    use_plain: AtomicBool,
}

impl MyBind {
    pub fn new(
        cfg: &BindConfig,
        url: &str,
        tls: &MyTls,
        cache: Arc<ColumnCache>,
    ) -> Result<MyBind, ProxyError> {
        let opts = Opts::from_url(url).map_err(|e| ProxyError::BackendUnavailable {
            bind: cfg.name.clone(),
            reason: format!("invalid MySQL URL: {e}"),
        })?;
        let size = cfg.pool_size.max(1);
        let pool = |ssl: Option<mysql_async::SslOpts>| {
            let constraints = PoolConstraints::new(0, size).unwrap_or_default();
            // With TLS, the connection stays the TCP one whose certificate was checked: mysql_async
            // would otherwise move a connection to a local server onto its Unix socket.
            let tcp_only = ssl.is_some().then_some(false);
            let kill_opts: Opts = OptsBuilder::from_opts(opts.clone())
                .prefer_socket(tcp_only.or(Some(opts.prefer_socket())))
                .ssl_opts(ssl.clone())
                .into();
            let opts = OptsBuilder::from_opts(kill_opts.clone())
                .pool_opts(
                    PoolOpts::default()
                        .with_constraints(constraints)
                        .with_reset_connection(false),
                )
                .stmt_cache_size(STMT_CACHE)
                // UPDATE n counts matched rows, as PostgreSQL does, not changed ones.
                .client_found_rows(true)
                .setup(MYSQL_SESSION_SETUP.to_vec());
            (Pool::new(opts), kill_opts)
        };
        // with no TLS key in the URL, mysql_async's own (`require_ssl=true`) stay as they are
        let (main, kill_opts) = match tls.ssl_opts() {
            Some(ssl) => pool(Some(ssl)),
            None => pool(opts.ssl_opts().cloned()),
        };
        let plain = (tls.mode == MySslMode::Preferred).then(|| pool(None));
        Ok(MyBind {
            pool: main,
            connect_timeout: cfg.connect_timeout,
            cache,
            kill_opts,
            plain,
            use_plain: AtomicBool::new(false),
        })
    }

    /// The pool connections come from now, and the options of a `KILL QUERY` connection.
    fn current(&self) -> (&Pool, &Opts) {
        match &self.plain {
            Some((pool, opts)) if self.use_plain.load(Ordering::Relaxed) => (pool, opts),
            _ => (&self.pool, &self.kill_opts),
        }
    }

    /// The options of a connection outside the pool (URL and TLS, no session setup).
    pub(crate) fn direct_opts(&self) -> Opts {
        self.current().1.clone()
    }

    /// A connection from the current pool; with `ssl_mode=PREFERRED`, a server that offers no
    /// TLS moves the bind to plaintext for good.
    async fn get_conn(&self) -> Result<mysql_async::Conn, mysql_async::Error> {
        let r = self.current().0.get_conn().await;
        match (&r, &self.plain) {
            (
                Err(mysql_async::Error::Driver(
                    mysql_async::DriverError::NoClientSslFlagFromServer,
                )),
                Some((plain, _)),
            ) => {
                self.use_plain.store(true, Ordering::Relaxed);
                plain.get_conn().await
            }
            _ => r,
        }
    }

    /// Drains the bind: mysql_async closes every connection once the leased ones are back, and
    /// refuses new ones (the TLS pool and, with `ssl_mode=PREFERRED`, the plaintext one).
    pub(crate) fn retire(&self) {
        let pools: Vec<Pool> = std::iter::once(self.pool.clone())
            .chain(self.plain.as_ref().map(|(p, _)| p.clone()))
            .collect();
        tokio::spawn(async move {
            for pool in pools {
                let _ = pool.disconnect().await;
            }
        });
    }

    pub(crate) async fn get(&self, bind: &str) -> Result<MyConn, ProxyError> {
        let conn = match tokio::time::timeout(self.connect_timeout, self.get_conn()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(ProxyError::BackendUnavailable {
                    bind: bind.into(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ProxyError::BackendUnavailable {
                    bind: bind.into(),
                    reason: format!(
                        "no connection within {} ms",
                        self.connect_timeout.as_millis()
                    ),
                })
            }
        };
        Ok(MyConn {
            bind: bind.into(),
            conn: Some(conn),
            broken: false,
            cache: self.cache.clone(),
            state: SessionState::Pristine,
            gate: Arc::new(CancelGate::default()),
            kill_opts: self.current().1.clone(),
            kill_timeout: self.connect_timeout,
        })
    }

    pub(crate) async fn check(&self, bind: &str) -> Result<String, ProxyError> {
        let mut c = self.get(bind).await?;
        let conn = c.conn()?;
        let v: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| from_mysql(bind, &e))?;
        // the server's word on this connection's encryption
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .map_err(|e| from_mysql(bind, &e))?;
        c.give_back(false).await;
        let v = v.unwrap_or_default();
        let number = v.split('-').next().unwrap_or("").to_string();
        let engine = if v.to_ascii_lowercase().contains("mariadb") {
            format!("MariaDB {number}")
        } else {
            format!("MySQL {number}")
        };
        Ok(match cipher {
            Some((_, c)) if !c.is_empty() => format!("{engine}, TLS {c}"),
            _ => engine,
        })
    }
}

pub struct MyConn {
    bind: String,
    conn: Option<mysql_async::Conn>,
    broken: bool,
    cache: Arc<ColumnCache>,
    state: SessionState,
    /// This lease's cancels (see [`CancelGate`]).
    gate: Arc<CancelGate>,
    kill_opts: Opts,
    kill_timeout: Duration,
}

/// How to cancel the statement running on one MySQL connection: `KILL QUERY id` from a fresh
/// connection. MySQL/MariaDB stop only the statement (error 1317 on the connection running it);
/// the connection and its transaction stay open.
#[derive(Clone)]
pub struct MyCancel {
    pub(super) id: u32,
    opts: Opts,
    timeout: Duration,
    pub(super) ticket: Ticket,
}

impl MyCancel {
    pub(crate) async fn cancel(&self) -> Result<(), String> {
        let (id, opts, timeout) = (self.id, self.opts.clone(), self.timeout);
        self.ticket
            .act(|| async move {
                let kill = async {
                    let mut c = mysql_async::Conn::new(opts).await?;
                    let r = c.query_drop(format!("KILL QUERY {id}")).await;
                    let _ = c.disconnect().await;
                    r
                };
                match tokio::time::timeout(timeout, kill).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no connection within {} ms", timeout.as_millis())),
                }
            })
            .await
    }
}

/// Whether this lease ran something that leaves state on the MySQL session beyond a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    /// Only statements whose effects are in the tables or end with their transaction.
    Pristine,
    /// A temporary table, a user variable or a session setting may be left behind: the
    /// connection is reset (COM_RESET_CONNECTION) before anyone else gets it.
    Touched,
}

/// True when `sql` may leave session state behind (conservative: a false alarm only costs a
/// connection reset).
fn touches_session(sql: &str) -> bool {
    let lower = sql.trim_start().to_ascii_lowercase();
    lower.contains("temporary") || lower.starts_with("set") || lower.contains('@')
}

fn from_my(v: mysql_async::Value) -> Value {
    use mysql_async::Value as M;
    match v {
        M::NULL => Value::Null,
        M::Bytes(b) => Value::Bytes(b),
        M::Int(i) => Value::Int(i),
        M::UInt(u) => Value::UInt(u),
        M::Float(f) => Value::Float(f as f64),
        M::Double(f) => Value::Float(f),
        M::Date(year, month, day, hour, minute, second, micro) => Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        },
        M::Time(negative, days, hour, minute, second, micro) => Value::Time {
            negative,
            days,
            hour,
            minute,
            second,
            micro,
        },
    }
}

fn to_my(v: Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        Value::Null => M::NULL,
        Value::Int(i) => M::Int(i),
        Value::UInt(u) => M::UInt(u),
        Value::Float(f) => M::Double(f),
        Value::Text(s) => M::Bytes(s.into_bytes()),
        Value::Bytes(b) => M::Bytes(b),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => M::Date(year, month, day, hour, minute, second, micro),
        Value::Time {
            negative,
            days,
            hour,
            minute,
            second,
            micro,
        } => M::Time(negative, days, hour, minute, second, micro),
    }
}

fn wire_type(c: &mysql_async::Column) -> PgType {
    use mysql_async::consts::ColumnFlags;
    mysql_column_type(MySqlColumnType {
        column_type: c.column_type(),
        unsigned: c.flags().contains(ColumnFlags::UNSIGNED_FLAG),
        binary_charset: c.character_set() == 63,
        column_length: c.column_length(),
    })
}

/// Hands each row to the sink as it arrives. A sink error stops reading (the driver discards the
/// unread rest before the next command) and is returned beside the outcome.
async fn drain<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, 'static, P>,
    sink: &mut RowSink<'_>,
) -> Result<(RunOutcome, Option<ProxyError>), mysql_async::Error> {
    if sink.wants_columns() {
        // Rows the prepared statement did not announce (MariaDB's RETURNING): wire types.
        let cols: Vec<Column> = result
            .columns_ref()
            .iter()
            .map(|c| {
                let ty = wire_type(c);
                let mut col = Column::new(c.name_str(), ty);
                col.typmod = wire_typmod(c, ty);
                col
            })
            .collect();
        sink.columns_if_none(&cols);
    }
    let mut rows = 0u64;
    while let Some(row) = result.next().await? {
        rows += 1;
        let vals = row
            .unwrap_raw()
            .into_iter()
            .map(|v| v.map(from_my).unwrap_or(Value::Null))
            .collect();
        if let Err(e) = sink.row(vals) {
            return Ok((RunOutcome::default(), Some(e)));
        }
    }
    let affected = result.affected_rows();
    Ok((RunOutcome { affected, rows }, None))
}

/// How a text-protocol value becomes the value the binary protocol would have given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// Strings, DECIMAL, BIT, JSON, blobs: bytes in both protocols.
    Bytes,
    /// Integer types (YEAR too); BIGINT UNSIGNED above i64 stays unsigned.
    Int,
    /// FLOAT: MySQL's text form keeps six digits, so it is not the stored value.
    Float,
    Double,
    DateTime,
    Time,
}

impl TextKind {
    fn of(c: &mysql_async::Column) -> TextKind {
        use mysql_async::consts::ColumnType as T;
        match c.column_type() {
            T::MYSQL_TYPE_TINY
            | T::MYSQL_TYPE_SHORT
            | T::MYSQL_TYPE_YEAR
            | T::MYSQL_TYPE_LONG
            | T::MYSQL_TYPE_INT24
            | T::MYSQL_TYPE_LONGLONG => TextKind::Int,
            T::MYSQL_TYPE_FLOAT => TextKind::Float,
            T::MYSQL_TYPE_DOUBLE => TextKind::Double,
            T::MYSQL_TYPE_TIMESTAMP
            | T::MYSQL_TYPE_TIMESTAMP2
            | T::MYSQL_TYPE_DATE
            | T::MYSQL_TYPE_NEWDATE
            | T::MYSQL_TYPE_DATETIME
            | T::MYSQL_TYPE_DATETIME2 => TextKind::DateTime,
            T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => TextKind::Time,
            _ => TextKind::Bytes,
        }
    }

    /// Text that does not parse stays bytes (the encoder then reports it).
    fn value(self, b: Vec<u8>) -> Value {
        let parsed = std::str::from_utf8(&b).ok().and_then(|s| match self {
            TextKind::Bytes => None,
            TextKind::Int => s
                .parse::<i64>()
                .map(Value::Int)
                .ok()
                .or_else(|| s.parse::<u64>().map(Value::UInt).ok()),
            TextKind::Float => s.parse::<f32>().map(|f| Value::Float(f as f64)).ok(),
            TextKind::Double => s.parse::<f64>().map(Value::Float).ok(),
            TextKind::DateTime => parse_datetime(s),
            TextKind::Time => parse_time(s),
        });
        parsed.unwrap_or(Value::Bytes(b))
    }
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (zero dates included) → the binary protocol's value.
fn parse_datetime(s: &str) -> Option<Value> {
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let year = d.next()?.parse().ok()?;
    let month = d.next()?.parse().ok()?;
    let day = d.next()?.parse().ok()?;
    let (hour, minute, second, micro) = match time {
        Some(t) => {
            let (h, m, sec, us) = parse_hms(t)?;
            (u8::try_from(h).ok()?, m, sec, us)
        }
        None => (0, 0, 0, 0),
    };
    Some(Value::DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micro,
    })
}

/// `[-]H…H:MM:SS[.ffffff]` → the binary protocol's TIME (days split off the hours).
fn parse_time(s: &str) -> Option<Value> {
    let (negative, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let (h, minute, second, micro) = parse_hms(t)?;
    Some(Value::Time {
        negative,
        days: h / 24,
        hour: (h % 24) as u8,
        minute,
        second,
        micro,
    })
}

fn parse_hms(t: &str) -> Option<(u32, u8, u8, u32)> {
    let (hms, frac) = match t.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (t, None),
    };
    let mut it = hms.splitn(3, ':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let sec = it.next()?.parse().ok()?;
    let micro = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    Some((h, m, sec, micro))
}

/// Result columns as PostgreSQL types from the cache alone; `None` when a table is not cached.
fn map_cached(cols: &[mysql_async::Column], cache: &ColumnCache) -> Option<Vec<Column>> {
    let mut out = Vec::with_capacity(cols.len());
    for c in cols {
        let wire = wire_type(c);
        let mut ty = wire;
        let table = c.org_table_str();
        if !table.is_empty() && !c.org_name_str().is_empty() {
            let tc = cache.get(&table.to_lowercase())?;
            ty = mysql_refine(wire, tc.get(&c.org_name_str().to_lowercase()).copied());
        }
        out.push(result_column(c, ty));
    }
    Some(out)
}

/// A result column of type `ty`. An expression (no table behind it) is not `declared`: MySQL types
/// it its own way (`1 + 1` BIGINT, `sum(int)` DECIMAL), and the translator's PostgreSQL type, where
/// it has one, wins.
fn result_column(c: &mysql_async::Column, ty: PgType) -> Column {
    let mut col = Column::new(c.name_str(), ty);
    col.declared = !c.org_table_str().is_empty();
    col.typmod = wire_typmod(c, ty);
    col
}

/// PostgreSQL's typmod of a table column from MySQL's wire metadata, as PostgreSQL describes
/// `numeric(p,s)` (`((p << 16) | s) + 4`) and `varchar(n)` (`n + 4`); -1 for an expression or
/// any other type. A DECIMAL's length counts its digits, a sign (signed columns) and a point
/// (scale > 0); a string's is in bytes of the session's utf8mb4 (4 per character).
/// `DECIMAL(65,30)` is what bindproxy creates for an unconstrained `numeric`: -1.
fn wire_typmod(c: &mysql_async::Column, ty: PgType) -> i32 {
    use mysql_async::consts::{ColumnFlags, ColumnType};
    if c.org_table_str().is_empty() {
        return -1;
    }
    let length = i64::from(c.column_length());
    match (ty, c.column_type()) {
        (PgType::Numeric, ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL) => {
            let s = i64::from(c.decimals());
            let sign = i64::from(!c.flags().contains(ColumnFlags::UNSIGNED_FLAG));
            let p = length - sign - i64::from(s > 0);
            if (p, s) == (65, 30) || !(1..=1000).contains(&p) || s > p {
                return -1;
            }
            i32::try_from(((p << 16) | s) + 4).unwrap_or(-1)
        }
        (
            PgType::Varchar,
            ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_STRING,
        ) if c.character_set() != 63 && length > 0 && length % 4 == 0 => {
            i32::try_from(length / 4 + 4).unwrap_or(-1)
        }
        _ => -1,
    }
}

impl MyConn {
    fn conn(&mut self) -> Result<&mut mysql_async::Conn, ProxyError> {
        match self.conn.as_mut() {
            Some(c) if !self.broken => Ok(c),
            _ => Err(ProxyError::BackendLost {
                bind: self.bind.clone(),
                reason: "the connection was closed after an earlier error".into(),
            }),
        }
    }

    fn fail(&mut self, e: mysql_async::Error) -> ProxyError {
        if mysql_is_fatal(&e) {
            self.broken = true;
        }
        from_mysql(&self.bind, &e)
    }

    /// Result columns as PostgreSQL types: wire metadata, refined from information_schema for
    /// text/blob columns of a table (MariaDB JSON, `pg:` comment markers).
    async fn map_columns(
        &mut self,
        cols: &[mysql_async::Column],
    ) -> Result<Vec<Column>, ProxyError> {
        let mut out = Vec::with_capacity(cols.len());
        for c in cols {
            let wire = wire_type(c);
            let table = c.org_table_str().to_string();
            let mut ty = wire;
            if !table.is_empty() && !c.org_name_str().is_empty() {
                let tc = self.table_columns(&table).await?;
                ty = mysql_refine(wire, tc.get(&c.org_name_str().to_lowercase()).copied());
            }
            out.push(result_column(c, ty));
        }
        Ok(out)
    }

    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Prepared, ProxyError> {
        let stmt = match self.conn()?.prep(sql).await {
            Ok(s) => s,
            Err(mysql_async::Error::Server(s)) if s.code == 1295 => return Ok(Prepared::default()),
            Err(e) => return Err(self.fail(e)),
        };
        let cols = stmt.columns();
        let columns = self.map_columns(&cols).await?;
        Ok(Prepared {
            columns,
            param_count: stmt.num_params() as usize,
        })
    }

    pub(crate) async fn run(
        &mut self,
        sql: &str,
        params: Vec<Value>,
        protocol: Protocol,
        sink: &mut RowSink<'_>,
    ) -> Result<RunOutcome, ProxyError> {
        if touches_session(sql) {
            self.state = SessionState::Touched;
        }
        if let (true, Protocol::Text { rerun }) = (params.is_empty(), protocol) {
            if let Some(outcome) = self.run_text(sql, rerun, sink).await? {
                return Ok(outcome);
            }
        }
        let stmt = match self.conn()?.prep(sql).await {
            Ok(s) => Some(s),
            // Not preparable: the text protocol (only without parameters).
            Err(mysql_async::Error::Server(s)) if s.code == 1295 && params.is_empty() => None,
            Err(e) => return Err(self.fail(e)),
        };
        let cols = match &stmt {
            Some(s) if sink.wants_columns() => {
                let cols = s.columns();
                self.map_columns(&cols).await?
            }
            _ => vec![],
        };
        sink.columns(&cols);
        let bind = self.bind.clone();
        let conn = self.conn()?;
        let drained = match &stmt {
            Some(s) => {
                let p = if params.is_empty() {
                    Params::Empty
                } else {
                    Params::Positional(params.into_iter().map(to_my).collect())
                };
                match conn.exec_iter(s, p).await {
                    Ok(r) => drain(r, sink).await,
                    Err(e) => Err(e),
                }
            }
            None => match conn.query_iter(sql).await {
                Ok(r) => drain(r, sink).await,
                Err(e) => Err(e),
            },
        };
        match drained {
            Ok((outcome, None)) => {
                self.division_warning().await?;
                Ok(outcome)
            }
            Ok((_, Some(sink_error))) => Err(sink_error),
            Err(e) => {
                self.broken |= mysql_is_fatal(&e);
                Err(from_mysql(&bind, &e))
            }
        }
    }

    /// Runs a statement without parameters with the text protocol (COM_QUERY: one round trip).
    /// Result columns are typed from the result's metadata refined by the table column cache (warm
    /// for the statement's tables: see `TranslatedConn::protocol_for`); values are converted to what
    /// the binary protocol would have produced. A column of a table not in the cache (a view's base
    /// table, say) is looked up after the rows, which are then held until the end.
    /// `Ok(None)`: a FLOAT column came back and `rerun` allows it: nothing was written, the caller
    /// runs the statement prepared.
    async fn run_text(
        &mut self,
        sql: &str,
        rerun: bool,
        sink: &mut RowSink<'_>,
    ) -> Result<Option<RunOutcome>, ProxyError> {
        let bind = self.bind.clone();
        let cache = self.cache.clone();
        let conn = self.conn()?;
        let mut result = match conn.query_iter(sql).await {
            Ok(r) => r,
            Err(e) => {
                self.broken |= mysql_is_fatal(&e);
                return Err(from_mysql(&bind, &e));
            }
        };
        let cols = result.columns().unwrap_or_default();
        let kinds: Vec<TextKind> = cols.iter().map(TextKind::of).collect();
        if rerun && kinds.contains(&TextKind::Float) {
            return match result.drop_result().await {
                Ok(()) => Ok(None),
                Err(e) => {
                    self.broken |= mysql_is_fatal(&e);
                    Err(from_mysql(&bind, &e))
                }
            };
        }
        // Column types now, or after the rows when a table is not cached.
        let mut held: Option<Vec<Vec<Value>>> = None;
        if sink.wants_columns() && !cols.is_empty() {
            match map_cached(&cols, &cache) {
                Some(mapped) => sink.columns(&mapped),
                None => held = Some(Vec::new()),
            }
        }
        let mut rows = 0u64;
        let mut sink_error = None;
        let drained: Result<(), mysql_async::Error> = async {
            while let Some(row) = result.next().await? {
                rows += 1;
                let vals: Vec<Value> = row
                    .unwrap_raw()
                    .into_iter()
                    .zip(&kinds)
                    .map(|(v, k)| match v {
                        Some(mysql_async::Value::Bytes(b)) => k.value(b),
                        Some(v) => from_my(v),
                        None => Value::Null,
                    })
                    .collect();
                if let Some(h) = held.as_mut() {
                    h.push(vals);
                } else if let Err(e) = sink.row(vals) {
                    // The driver discards the unread rest before the next command.
                    sink_error = Some(e);
                    break;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = drained {
            self.broken |= mysql_is_fatal(&e);
            return Err(from_mysql(&bind, &e));
        }
        if let Some(e) = sink_error {
            return Err(e);
        }
        let affected = result.affected_rows();
        drop(result);
        self.division_warning().await?;
        if let Some(held) = held {
            let mapped = self.map_columns(&cols).await?;
            sink.columns(&mapped);
            for r in held {
                sink.row(r)?;
            }
        }
        Ok(Some(RunOutcome { affected, rows }))
    }

    /// MySQL answers NULL for `x / 0` and `x % 0` outside INSERT/UPDATE (strict mode raises only
    /// there), with warning 1365; PostgreSQL raises 22012. After a statement that left warnings,
    /// a 1365 among them becomes that error (the session then treats the statement as failed: a
    /// DELETE with a division runs inside a transaction for this, see `session.rs`). A result
    /// GROUP_CONCAT cut short (1260, 1301) becomes 54000 rather than a shorter string.
    async fn division_warning(&mut self) -> Result<(), ProxyError> {
        let bind = self.bind.clone();
        let conn = self.conn()?;
        if conn.get_warnings() == 0 {
            return Ok(());
        }
        let warnings: Vec<(String, u32, String)> = match conn.query("SHOW WARNINGS").await {
            Ok(w) => w,
            Err(e) => {
                self.broken |= mysql_is_fatal(&e);
                return Err(from_mysql(&bind, &e));
            }
        };
        if let Some((_, code, message)) = warnings.iter().find(|(_, code, _)| *code == 1365) {
            return Err(ProxyError::Backend {
                code: "22012".into(),
                message: "division by zero".into(),
                detail: Some(format!("MySQL warning {code}: {message} [bind \"{bind}\"]")),
            });
        }
        // DATE_ADD (timestamp + interval) left MySQL's years 1000–9999: NULL, where PostgreSQL answers
        if let Some((_, code, message)) = warnings.iter().find(|(_, code, _)| *code == 1441) {
            return Err(ProxyError::Backend {
                code: "22008".into(),
                message: "timestamp out of range".into(),
                detail: Some(format!("MySQL warning {code}: {message} [bind \"{bind}\"]")),
            });
        }
        // GROUP_CONCAT (string_agg) cut its result short: group_concat_max_len is set to its
        // largest at connect, max_allowed_packet still bounds it.
        if let Some((_, code, message)) = warnings
            .iter()
            .find(|(_, code, _)| matches!(*code, 1260 | 1301))
        {
            return Err(ProxyError::Backend {
                code: "54000".into(),
                message: "string_agg result longer than the MySQL bind's max_allowed_packet".into(),
                detail: Some(format!("MySQL warning {code}: {message} [bind \"{bind}\"]")),
            });
        }
        Ok(())
    }

    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), ProxyError> {
        if touches_session(sql) {
            self.state = SessionState::Touched;
        }
        match self.conn()?.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    pub(crate) async fn table_columns(&mut self, table: &str) -> Result<TableColumns, ProxyError> {
        let key = table.to_lowercase();
        if let Some(c) = self.cache.get(&key) {
            return Ok(c);
        }
        let conn = self.conn()?;
        let mariadb = conn.server_version() >= (10, 0, 0);
        let sql = if mariadb {
            "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.COLUMN_COMMENT, \
               EXISTS(SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k \
                      WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME \
                        AND k.CHECK_CLAUSE LIKE CONCAT('%json_valid(`', c.COLUMN_NAME, '`)%')) \
             FROM information_schema.COLUMNS c \
             WHERE c.TABLE_SCHEMA = DATABASE() AND LOWER(c.TABLE_NAME) = ? \
             ORDER BY c.ORDINAL_POSITION"
        } else {
            "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.COLUMN_COMMENT, 0 \
             FROM information_schema.COLUMNS c \
             WHERE c.TABLE_SCHEMA = DATABASE() AND LOWER(c.TABLE_NAME) = ? \
             ORDER BY c.ORDINAL_POSITION"
        };
        let rows: Vec<(String, String, String, String, i64)> =
            match conn.exec(sql, (key.clone(),)).await {
                Ok(r) => r,
                Err(e) => return Err(self.fail(e)),
            };
        let map = super::with_positions(rows.into_iter().map(|(name, dt, ct, comment, json)| {
            (
                name.to_lowercase(),
                mysql_info_schema_type(&dt, &ct, &comment, json != 0),
            )
        }));
        if !map.is_empty() {
            self.cache.put(&key, map.clone());
        }
        Ok(map)
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// How to cancel the statement about to run (None: the connection is gone).
    pub(crate) fn cancel_handle(&self) -> Option<MyCancel> {
        let c = self.conn.as_ref().filter(|_| !self.broken)?;
        Some(MyCancel {
            id: c.id(),
            opts: self.kill_opts.clone(),
            timeout: self.kill_timeout,
            ticket: self.gate.ticket(),
        })
    }

    /// Disconnects (never back to the pool): see `EngineConn::close`.
    pub(crate) async fn close(mut self) {
        self.gate.close().await;
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
    }

    /// Returns the connection to the pool. `dirty`: a transaction may be open, so the pool resets
    /// it (COM_RESET_CONNECTION rolls back, drops temporary tables and user variables; the session
    /// setup runs again). So does a lease that left session state behind ([`SessionState`]).
    pub(crate) async fn give_back(mut self, dirty: bool) {
        // No cancel of this lease may reach the connection once someone else has it.
        self.gate.close().await;
        if let Some(mut c) = self.conn.take() {
            if self.broken {
                let _ = c.disconnect().await;
                return;
            }
            if dirty || self.state == SessionState::Touched {
                c.reset_connection(true);
            }
            drop(c);
        }
    }
}

impl Drop for MyConn {
    /// Dropped without `give_back` (a session that vanished): never hand a possibly open
    /// transaction to the next lease.
    fn drop(&mut self) {
        self.gate.close_now();
        if let Some(c) = self.conn.as_mut() {
            c.reset_connection(true);
        }
    }
}

/// Catalog reads of bindproxy's own (`catalog/read/mysql.rs`): not a client's statement.
impl MyConn {
    /// Runs one read-only query (text protocol) and returns its rows as text (NULL as `None`).
    pub(crate) async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ProxyError> {
        let rows: Vec<mysql_async::Row> = match self.conn()?.query(sql).await {
            Ok(r) => r,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                r.unwrap_raw()
                    .into_iter()
                    .map(|v| match v? {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(&b).into_owned())
                        }
                        mysql_async::Value::Int(i) => Some(i.to_string()),
                        mysql_async::Value::UInt(u) => Some(u.to_string()),
                        mysql_async::Value::Float(f) => Some(f.to_string()),
                        mysql_async::Value::Double(f) => Some(f.to_string()),
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }
}
