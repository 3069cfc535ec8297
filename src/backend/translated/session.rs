//! One client's use of a MySQL/SQLite bind, made to behave like a PostgreSQL backend.
//!
//! Owns: [`TranslatedConn`] — the client's prepared statements and portals on its leased engine
//! connection, PostgreSQL's transaction semantics (explicit blocks, savepoints, the aborted state
//! with 25P02 until ROLLBACK, COMMIT of a failed block reporting `ROLLBACK`, the implicit
//! transaction of a multi-statement simple query and of an extended-protocol pipeline), the
//! responses (RowDescription/DataRow/CommandComplete with PostgreSQL tags, ParameterDescription,
//! PortalSuspended) and [`RowSink`], which encodes engine rows as they arrive.
//!
//! Implicit transactions start lazily: an engine transaction is opened before the first statement
//! of a pipeline (or multi-statement query) that is not a SELECT, so read-only pipelines cost no
//! BEGIN/COMMIT round trips. MySQL commits DDL implicitly; that is MySQL's and cannot be undone.
//!
//! Explicit transactions ([`TranslatedConn::begin`], or BEGIN sent by the client) are lazy on MySQL:
//! nothing reaches the engine until the first statement, which opens the engine transaction with
//! the client's isolation level and access mode (`SET TRANSACTION …`, then `START TRANSACTION`, or
//! `XA START 'id'` when the bind is a two-phase-commit participant). Until then, DDL runs outside the
//! transaction (committed at once, with a NOTICE saying so); afterwards it is refused (0A000), since
//! MySQL would commit the transaction's earlier statements implicitly and XA refuses DDL anyway.
//! Ending a transaction, whether the session asks ([`TranslatedConn::commit`], [`TranslatedConn::prepare`],
//! …) or the client sends COMMIT/ROLLBACK, goes through one place (`end_transaction`), which speaks
//! XA when a branch is open. SQLite has no phase 1 ([`TranslatedConn::can_prepare`] is false) and its
//! DDL stays transactional.
//!
//! Must never: let an engine carry on inside a transaction PostgreSQL would consider aborted, write
//! a message for a statement that failed before it produced output, or leave an engine transaction
//! open when the lease ends.

mod copy;
mod schema;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::OwnedSemaphorePermit;

use super::local::{classify, result_type, with_identity, Identity, Local, LocalFn, Settings};
use super::types::{decode_param, encode_typmod, oid, pg_type_by_name, PgType, Value};
use super::{Column, EngineConn, Protocol, RunOutcome, TranslatedBind};
use crate::error::ProxyError;
use crate::protocol::messages::{
    command_complete, data_row_begin, data_row_end, empty, format_of, notice_response,
    parameter_description, row_description, Bind, ErrorFields, FieldDescription, Parse,
};
use crate::translate::{mysql_drop_index_sql, Kind, Rewritten, TagHint, TranslateError};

pub use copy::Via as CopyVia;

/// Rows a suspended portal may keep in memory (the rest of its result), in bytes.
pub const SUSPENDED_PORTAL_LIMIT: usize = 256 << 20;

/// PostgreSQL's transaction state, as emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tx {
    /// No engine transaction.
    Idle,
    /// An explicit block (BEGIN).
    Block,
    /// An explicit block after an error: only ROLLBACK / ROLLBACK TO / COMMIT are accepted.
    Failed,
    /// An engine transaction opened for a pipeline or a multi-statement query.
    Implicit,
    /// That implicit transaction after an error: rolled back at Sync.
    ImplicitFailed,
    /// An XA branch after `XA PREPARE` (phase 1): only [`TranslatedConn::commit_prepared`] or
    /// [`TranslatedConn::rollback_prepared`] (or ROLLBACK) may follow.
    Prepared,
}

/// The access mode of the client's transaction on this bind (`BEGIN READ ONLY`, `SET TRANSACTION
/// READ ONLY`): in a READ ONLY one every statement but a query is 25006, as in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// What phase 1 ([`TranslatedConn::prepare`]) left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// An XA branch is prepared on this connection: phase 2 must follow.
    Branch,
    /// The branch never started (nothing ran on this bind in the transaction, or only DDL, which
    /// ran outside it): nothing to prepare, the transaction is over and the connection Idle.
    Nothing,
}

/// How a one-phase [`TranslatedConn::commit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Committed,
    /// The transaction was in the failed state: it was rolled back (PostgreSQL answers COMMIT of
    /// an aborted transaction with the tag ROLLBACK).
    RolledBack,
}

/// An explicit block on MySQL whose engine transaction is not open yet: what opens it.
#[derive(Debug, Clone, Default)]
struct LazyStart {
    /// `SET TRANSACTION` characteristics from the client's BEGIN (`ISOLATION LEVEL SERIALIZABLE`,
    /// `READ ONLY`), set right before the start: `XA START` takes no modes of its own.
    characteristics: Vec<String>,
}

#[derive(Debug)]
enum Body {
    /// Empty query text: EmptyQueryResponse.
    Empty,
    Local(Local),
    Engine(Vec<Rewritten>),
    /// `COPY … FROM STDIN` / `TO STDOUT` (`session/copy.rs`).
    Copy(super::copy::CopyStmt),
    /// An ignored statement or a SQLite table rebuild (`session/schema.rs`).
    Schema(crate::translate::sequence::Plan),
}

#[derive(Debug)]
struct Stmt {
    /// The client's text, for tags and messages.
    sql: String,
    body: Body,
    /// As described to the client.
    param_oids: Vec<u32>,
    /// How Bind values are decoded.
    param_types: Vec<PgType>,
    columns: Vec<Column>,
}

impl Stmt {
    /// COMMIT / ROLLBACK / ROLLBACK TO: accepted in an aborted transaction.
    fn exits_transaction(&self) -> bool {
        match &self.body {
            Body::Engine(parts) => parts
                .iter()
                .all(|p| matches!(p.kind, Kind::Commit | Kind::Rollback | Kind::RollbackTo(_))),
            _ => false,
        }
    }
}

#[derive(Debug)]
enum PortalState {
    Fresh,
    /// Rows left after a PortalSuspended, and the tag's verb.
    Suspended(VecDeque<Vec<Value>>),
    Done(String),
}

#[derive(Debug)]
struct Portal {
    stmt: Arc<Stmt>,
    params: Vec<Value>,
    /// Per result column: binary?
    binary: Vec<bool>,
    state: PortalState,
}

/// One client's lease of one connection of the bind, plus this client's prepared statements and
/// portals on it.
///
/// Dropped without [`TranslatedConn::release`] (a client that vanished), the engine connection is
/// never reused with a transaction open: MySQL connections are reset by the pool
/// (COM_RESET_CONNECTION), SQLite connection threads end, which rolls back.
pub struct TranslatedConn {
    bind: Arc<TranslatedBind>,
    engine: Option<EngineConn>,
    _permit: OwnedSemaphorePermit,
    stmts: HashMap<String, Arc<Stmt>>,
    portals: HashMap<String, Portal>,
    tx: Tx,
    /// Set while an explicit block on MySQL has not opened its engine transaction (lazy start).
    lazy: Option<LazyStart>,
    /// The XA branch id of the current explicit block, quoted (`'bp_…'`), when it is a
    /// two-phase-commit participant.
    xa: Option<String>,
    /// Ending a transaction failed: the engine connection may still hold one, so it is reset (or
    /// closed) when the lease ends.
    dirty: bool,
    savepoints: Vec<String>,
    /// The access mode of the open transaction (ReadWrite when there is none).
    access: Access,
    settings: Settings,
    /// The client's login user and database, for `current_user`, `current_database()`, ….
    identity: Identity,
    sync_error: Option<ProxyError>,
    /// A COPY FROM STDIN waiting for the client's data.
    copy_in: Option<Box<copy::CopyIn>>,
}

impl std::fmt::Debug for TranslatedConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslatedConn")
            .field("bind", &self.bind.name)
            .field("tx", &self.tx)
            .finish()
    }
}

fn tx_error(code: &str, message: String) -> ProxyError {
    ProxyError::Backend {
        code: code.into(),
        message,
        detail: None,
    }
}

/// The CommandComplete tag of a statement that is not one of the kinds with a fixed tag:
/// PostgreSQL writes the command's leading keywords (`CREATE VIEW`, `ALTER TABLE`, `TRUNCATE TABLE`).
fn tag_from_sql(sql: &str) -> String {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty() && !w.starts_with("--"))
        .take(4)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let first = words.first().cloned().unwrap_or_default();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let rest: Vec<&str> = words[1..]
                .iter()
                .map(String::as_str)
                .filter(|w| !matches!(*w, "UNIQUE" | "OR" | "REPLACE" | "TEMP" | "TEMPORARY"))
                .collect();
            match rest.first() {
                Some(w) => format!("{first} {w}"),
                None => first,
            }
        }
        "TRUNCATE" => "TRUNCATE TABLE".into(),
        _ => first,
    }
}

fn translate_error(bind: &TranslatedBind, e: TranslateError) -> ProxyError {
    let engine = match bind.target() {
        crate::translate::Target::MySql => "MySQL",
        crate::translate::Target::Sqlite => "SQLite",
    };
    match e {
        TranslateError::Parse(m) => tx_error("42601", format!("syntax error: {m}")),
        TranslateError::Invalid(m) => tx_error("42601", m),
        TranslateError::Unsupported { construct } => ProxyError::FeatureNotSupported(format!(
            "{construct} is not supported on bind \"{}\" ({engine})",
            bind.name
        )),
        TranslateError::UnsafeRendering(why) => ProxyError::Backend {
            code: "0A000".into(),
            message: format!(
                "the statement could not be rendered safely for bind \"{}\" ({engine}): {why}",
                bind.name
            ),
            detail: Some(
                "bindproxy refuses SQL for an engine that would not read it as the statement sent; nothing ran".into(),
            ),
        },
        TranslateError::TooDeep { depth, limit } => ProxyError::Backend {
            code: "54001".into(),
            message: format!(
                "statement too deeply nested for bind \"{}\" ({engine}): about {depth} levels of operators and parentheses, the limit is {limit}",
                bind.name
            ),
            detail: Some(
                "Write long OR chains of one column as IN (…), split long chains of operators or nested parentheses, or use a PostgreSQL bind.".into(),
            ),
        },
        TranslateError::TooLarge { bytes, limit } => ProxyError::Backend {
            code: "54000".into(),
            message: format!(
                "statement too large for bind \"{}\" ({engine}): {bytes} bytes, the limit is {limit} bytes",
                bind.name
            ),
            detail: Some(
                "Multi-row INSERT … VALUES is taken in pieces at any size; send other statements in smaller parts.".into(),
            ),
        },
        e @ (TranslateError::InvalidText(_)
        | TranslateError::OutOfRange(_)
        | TranslateError::NoSuchColumn { .. }
        | TranslateError::NoSuchRelation(_)
        | TranslateError::InPrimaryKey(_)
        | TranslateError::ValueTooLong(_)
        | TranslateError::CannotCast { .. }) => {
            tx_error(e.sqlstate(), e.to_string())
        }
        e @ TranslateError::StatementCount { .. } => tx_error(
            "42601",
            format!("{e} (bind \"{}\", {engine}); nothing ran", bind.name),
        ),
    }
}

/// Encodes engine rows into DataRows as they arrive.
pub struct RowSink<'a> {
    out: &'a mut BytesMut,
    /// Simple query: RowDescription is written before the first row (or at the end).
    describe: bool,
    described: bool,
    columns: Vec<Column>,
    binary: Vec<bool>,
    /// 0 = all.
    max_rows: u64,
    count: u64,
    overflow: VecDeque<Vec<Value>>,
    overflow_bytes: usize,
    /// Internal queries: rows are kept, not encoded.
    collected: Option<Vec<Vec<Value>>>,
    /// Simple query: PostgreSQL types for the result columns the engine gives no type.
    pub(crate) result_types: Vec<Option<super::restype::Resolved>>,
    /// COPY TO STDOUT: rows become CopyData in COPY's format instead of DataRows.
    copy: Option<Box<super::copy::Encoder>>,
}

impl<'a> RowSink<'a> {
    fn collector(out: &'a mut BytesMut) -> Self {
        RowSink {
            collected: Some(vec![]),
            ..RowSink::portal(out, vec![], vec![], 0)
        }
    }

    /// Whether the engine should report result columns (only a simple query needs them).
    pub(crate) fn wants_columns(&self) -> bool {
        self.describe && !self.described
    }

    fn simple(out: &'a mut BytesMut) -> Self {
        RowSink {
            out,
            describe: true,
            described: false,
            columns: vec![],
            binary: vec![],
            max_rows: 0,
            count: 0,
            overflow: VecDeque::new(),
            overflow_bytes: 0,
            collected: None,
            result_types: vec![],
            copy: None,
        }
    }

    fn portal(
        out: &'a mut BytesMut,
        columns: Vec<Column>,
        binary: Vec<bool>,
        max_rows: u64,
    ) -> Self {
        RowSink {
            out,
            describe: false,
            described: true,
            columns,
            binary,
            max_rows,
            count: 0,
            overflow: VecDeque::new(),
            overflow_bytes: 0,
            collected: None,
            result_types: vec![],
            copy: None,
        }
    }

    /// The engine's result columns (simple query only: a prepared statement's are fixed at Parse).
    pub(crate) fn columns(&mut self, cols: &[Column]) {
        if self.describe && !self.described && !cols.is_empty() {
            self.columns = cols.to_vec();
            self.binary = vec![false; cols.len()];
            if self.result_types.len() == cols.len() {
                for (c, t) in self.columns.iter_mut().zip(&self.result_types) {
                    if let Some(r) = t {
                        r.apply_to(c);
                    }
                }
            }
        }
    }

    /// Columns learnt only from the result itself, when none were announced.
    pub(crate) fn columns_if_none(&mut self, cols: &[Column]) {
        if self.columns.is_empty() {
            self.columns(cols);
        }
    }

    fn write_description(&mut self) {
        if self.describe && !self.described {
            self.described = true;
            if !self.columns.is_empty() {
                row_description(self.out, &fields(&self.columns, &self.binary));
            }
        }
    }

    pub(crate) fn row(&mut self, row: Vec<Value>) -> Result<(), ProxyError> {
        if let Some(c) = self.collected.as_mut() {
            c.push(row);
            return Ok(());
        }
        if self.describe && !self.described {
            // Expressions without a declared type take the first row's storage class.
            for (c, v) in self.columns.iter_mut().zip(&row) {
                if c.ty == PgType::Unknown && !matches!(v, Value::Null) {
                    c.ty = PgType::of_value(v);
                }
            }
            self.write_description();
        }
        if self.max_rows > 0 && self.count >= self.max_rows {
            self.overflow_bytes += row.iter().map(Value::approx_size).sum::<usize>();
            if self.overflow_bytes > SUSPENDED_PORTAL_LIMIT {
                return Err(tx_error(
                    "54000",
                    format!(
                        "the rest of this result is larger than {} MiB; fetch it with a larger row count or without a limit",
                        SUSPENDED_PORTAL_LIMIT >> 20
                    ),
                ));
            }
            self.overflow.push_back(row);
            return Ok(());
        }
        if let Some(enc) = self.copy.as_mut() {
            let mut data = Vec::with_capacity(64);
            enc.row(&row, &mut data)?;
            super::copy::copy_data(self.out, &data);
        } else {
            write_row(self.out, &self.columns, &self.binary, &row)?;
        }
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) {
        self.write_description();
    }
}

fn write_row(
    out: &mut BytesMut,
    columns: &[Column],
    binary: &[bool],
    row: &[Value],
) -> Result<(), ProxyError> {
    if row.len() != columns.len() {
        return Err(tx_error(
            "0A000",
            "cached plan must not change result type".into(),
        ));
    }
    let start = out.len();
    let at = data_row_begin(out, row.len());
    for (i, v) in row.iter().enumerate() {
        let bin = binary.get(i).copied().unwrap_or(false);
        if let Err(e) = encode_typmod(columns[i].ty, columns[i].value_typmod(), v, bin, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    data_row_end(out, at);
    Ok(())
}

fn fields(columns: &[Column], binary: &[bool]) -> Vec<FieldDescription> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| FieldDescription {
            name: c.name.clone(),
            table_oid: 0,
            column: 0,
            type_oid: c.ty.oid(),
            type_size: c.ty.typlen(),
            type_modifier: c.typmod,
            format: binary.get(i).copied().unwrap_or(false) as i16,
        })
        .collect()
}

/// `SELECT <returning list> FROM <table> LIMIT 0`, for an engine that does not describe the rows of
/// `INSERT/DELETE … RETURNING` when preparing (MariaDB).
fn returning_probe(p: &Rewritten) -> Option<String> {
    let r = p.returning.as_ref()?;
    if !r.native {
        return None;
    }
    if let Some(em) = &r.emulation {
        return Some(format!(
            "SELECT {} FROM {} LIMIT 0",
            em.select_list, em.table
        ));
    }
    let upper = p.sql.to_ascii_uppercase();
    let list = &p.sql[upper.rfind(" RETURNING ")? + " RETURNING ".len()..];
    let from = if p.kind == Kind::Delete {
        "DELETE FROM "
    } else {
        "INSERT INTO "
    };
    let start = upper.find(from)? + from.len();
    let rest = &p.sql[start..];
    let table = if let Some(quoted) = rest.strip_prefix('`') {
        let end = quoted.find('`')? + 2;
        &rest[..end]
    } else {
        rest.split_whitespace().next()?
    };
    Some(format!("SELECT {list} FROM {table} LIMIT 0"))
}

/// The longest XA gtrid MySQL accepts, in bytes.
const XA_ID_MAX: usize = 64;

/// An XA branch id as the string literal of `XA START 'id'` & co. The ids are bindproxy's own
/// (`bp_<instance>_<n>_<k>`); anything that would need escaping, or longer than MySQL's gtrid, is
/// refused rather than quoted.
fn xa_literal(id: &str) -> Result<String, ProxyError> {
    let ok = !id.is_empty()
        && id.len() <= XA_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !ok {
        return Err(ProxyError::Protocol(format!(
            "invalid XA branch id {id:?}: 1 to {XA_ID_MAX} characters of A-Z, a-z, 0-9, _ - . :"
        )));
    }
    Ok(format!("'{id}'"))
}

/// Statement verbs after which MySQL commits the open transaction implicitly (and which an XA
/// branch refuses, XAER_RMFAIL): DDL and its relatives.
const MYSQL_IMPLICIT_COMMIT: &[&str] = &[
    "CREATE",
    "ALTER",
    "DROP",
    "RENAME",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "LOCK",
    "UNLOCK",
    "ANALYZE",
    "OPTIMIZE",
    "REPAIR",
    "INSTALL",
    "UNINSTALL",
    "FLUSH",
    "CACHE",
    "RESET",
];

/// True when running `part` on MySQL would commit the open transaction (its SQL or one of its
/// `before` statements is DDL). `CREATE/DROP TEMPORARY TABLE` does not: MySQL runs it inside the
/// transaction, XA included.
fn mysql_implicit_commit(part: &Rewritten) -> bool {
    if part.drop_index_lookup.is_some() {
        return true;
    }
    let commits = |sql: &str| {
        let mut words = sql.split_ascii_whitespace();
        let Some(first) = words.next() else {
            return false;
        };
        let verb = first.to_ascii_uppercase();
        if !MYSQL_IMPLICIT_COMMIT.contains(&verb.as_str()) {
            return false;
        }
        let temporary = matches!(verb.as_str(), "CREATE" | "DROP")
            && words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("TEMPORARY"));
        !temporary
    };
    commits(&part.sql) || part.before.iter().any(|s| commits(s))
}

fn tag_for(part: &Rewritten, o: RunOutcome) -> String {
    let n = match part.tag_hint {
        TagHint::Select => o.rows,
        _ if part.returning.is_some() => o.rows,
        _ => o.affected,
    };
    part.tag_hint.tag(n)
}

impl TranslatedConn {
    pub(crate) fn new(
        bind: Arc<TranslatedBind>,
        engine: EngineConn,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        TranslatedConn {
            bind,
            engine: Some(engine),
            _permit: permit,
            stmts: HashMap::new(),
            portals: HashMap::new(),
            tx: Tx::Idle,
            lazy: None,
            xa: None,
            dirty: false,
            savepoints: vec![],
            access: Access::ReadWrite,
            settings: Settings::default(),
            identity: Identity::default(),
            sync_error: None,
            copy_in: None,
        }
    }

    /// The bind this connection belongs to.
    pub fn bind_name(&self) -> &str {
        &self.bind.name
    }

    /// Records a startup parameter of the client (`application_name`, `DateStyle`, `user`, …) so
    /// that `SHOW` and `current_user` answer as PostgreSQL would.
    pub fn apply_startup_parameter(&mut self, name: &str, value: &str) {
        self.settings.set(&name.to_ascii_lowercase(), value);
    }

    /// The client's login user and the database name it connected with: what `current_user`,
    /// `session_user`, `current_database()`, … answer on this bind.
    pub fn set_identity(&mut self, user: &str, database: &str) {
        self.identity = Identity {
            user: user.to_string(),
            database: database.to_string(),
        };
    }

    /// The client's statement with identity functions replaced by their values (see
    /// [`with_identity`]), then translated.
    ///
    /// Operators whose engine form depends on column types (`optype.rs`) are translated with the
    /// types of the statement's tables: when the bind's column cache lacks one, the tables' columns
    /// are loaded from the engine and the statement is translated again.
    async fn rewrite(&mut self, sql: &str) -> Result<Arc<Vec<Rewritten>>, ProxyError> {
        let search_path = self.settings.get("search_path").unwrap_or("public");
        let with_values = with_identity(sql, &self.identity, search_path);
        let text = with_values.as_deref().unwrap_or(sql);
        let first = self.bind.rewrite(text);
        let parts = match first {
            Ok(super::Rewrite::Done(parts)) => return Ok(parts),
            Ok(super::Rewrite::Incomplete(parts)) => parts,
            Err(e) => {
                // A refusal may come from an operand whose table was not loaded yet: load what the
                // statement names and try once more.
                let names = crate::translate::table_names_of(text);
                if names.is_empty() || !self.load_columns(&names).await? {
                    return Err(translate_error(&self.bind, e));
                }
                return match self.bind.rewrite(text) {
                    Ok(super::Rewrite::Done(p) | super::Rewrite::Incomplete(p)) => Ok(p),
                    Err(e) => Err(translate_error(&self.bind, e)),
                };
            }
        };
        let names: Vec<String> = parts.iter().flat_map(|p| p.tables.clone()).collect();
        self.load_columns(&names).await?;
        match self.bind.rewrite(text) {
            Ok(super::Rewrite::Done(p) | super::Rewrite::Incomplete(p)) => Ok(p),
            Err(e) => Err(translate_error(&self.bind, e)),
        }
    }

    /// Loads the columns of `tables` into the bind's cache; whether any was missing before.
    async fn load_columns(&mut self, tables: &[String]) -> Result<bool, ProxyError> {
        let mut loaded = false;
        for t in tables {
            if self.bind.columns.get(&t.to_lowercase()).is_none() {
                let bind = self.bind.clone();
                let engine = self.engine()?;
                bind.table_columns(engine, t).await?;
                loaded = true;
            }
        }
        Ok(loaded)
    }

    fn engine(&mut self) -> Result<&mut EngineConn, ProxyError> {
        match self.engine.as_mut() {
            Some(e) if !e.is_broken() => Ok(e),
            _ => Err(ProxyError::BackendLost {
                bind: self.bind.name.clone(),
                reason: "the connection was lost earlier in this session".into(),
            }),
        }
    }

    /// How a CancelRequest stops the statement about to run on this connection (None: the
    /// connection is gone). The session publishes it while the statement runs.
    pub fn cancel_handle(&self) -> Option<super::CancelHandle> {
        self.engine.as_ref()?.cancel_handle()
    }

    /// `'I'` idle, `'T'` in a transaction, `'E'` in a failed transaction. A prepared XA branch
    /// answers `'I'`, as a PostgreSQL session does after PREPARE TRANSACTION: the transaction is no
    /// longer the session's, it waits for phase 2.
    pub fn status(&self) -> u8 {
        match self.tx {
            Tx::Idle | Tx::Prepared => b'I',
            Tx::Block | Tx::Implicit => b'T',
            Tx::Failed | Tx::ImplicitFailed => b'E',
        }
    }

    /// The session refused a statement inside this bind's transaction: enter the failed state.
    pub fn fail_transaction(&mut self) {
        self.tx = match self.tx {
            Tx::Block | Tx::Failed => Tx::Failed,
            Tx::Implicit | Tx::ImplicitFailed => Tx::ImplicitFailed,
            Tx::Idle => Tx::Idle,
            Tx::Prepared => Tx::Prepared,
        };
    }

    /// An error happened in a statement. `simple`: the implicit transaction of a simple query ends
    /// now (rolled back); in a pipeline it is rolled back at Sync.
    async fn on_error(&mut self, simple: bool) {
        match self.tx {
            Tx::Block => self.tx = Tx::Failed,
            Tx::Implicit if simple => {
                let _ = self.end_transaction(false).await;
            }
            Tx::Implicit => self.tx = Tx::ImplicitFailed,
            _ => {}
        }
    }

    /// Runs one statement without results on the engine (transaction control).
    async fn batch(&mut self, sql: &str) -> Result<(), ProxyError> {
        self.engine()?.batch(sql).await
    }

    /// The one place a transaction ends, whoever asks: the client's COMMIT/ROLLBACK, Sync, the end
    /// of a simple query, the session's one- or two-phase commit, the end of the lease. Plain
    /// COMMIT/ROLLBACK; in XA terms when a branch is open (`XA END` + `XA COMMIT 'id' ONE PHASE` /
    /// `XA ROLLBACK 'id'`; a prepared branch: `XA COMMIT 'id'` / `XA ROLLBACK 'id'`); nothing at
    /// all when the engine transaction never started (lazy). Back to Idle; named portals end with
    /// the transaction.
    async fn end_transaction(&mut self, commit: bool) -> Result<(), ProxyError> {
        let was = std::mem::replace(&mut self.tx, Tx::Idle);
        self.savepoints.clear();
        if std::mem::replace(&mut self.access, Access::ReadWrite) == Access::ReadOnly
            && !self.bind.is_mysql()
        {
            // SQLite's read-only switch outlives the transaction: off again whatever follows (on
            // failure the lease's reset turns it off).
            if let Err(e) = self.batch("PRAGMA query_only = OFF").await {
                self.dirty = true;
                tracing::debug!(error = %e, "query_only could not be reset");
            }
        }
        let never_started = self.lazy.take().is_some();
        let xa = self.xa.take();
        if was == Tx::Idle || never_started {
            return Ok(());
        }
        let verb = if commit { "COMMIT" } else { "ROLLBACK" };
        let r = match (&xa, was) {
            (Some(id), Tx::Prepared) => self.batch(&format!("XA {verb} {id}")).await,
            (Some(id), _) if commit => match self.batch(&format!("XA END {id}")).await {
                Ok(()) => self.batch(&format!("XA COMMIT {id} ONE PHASE")).await,
                Err(e) => Err(e),
            },
            (Some(id), _) => self.xa_rollback(id).await,
            (None, _) => self.batch(verb).await,
        };
        if r.is_err() {
            self.dirty = true;
            if was == Tx::Prepared {
                // Phase 2 is the coordinator's decision, and the engine keeps a prepared branch
                // whatever happens to this connection: it stays prepared, for a retry or recovery.
                self.tx = Tx::Prepared;
                self.xa = xa;
            } else if commit {
                // A failed COMMIT leaves nothing committed: make sure the engine agrees.
                let _ = match &xa {
                    Some(id) => self.xa_rollback(id).await,
                    None => self.batch("ROLLBACK").await,
                };
            }
        }
        r
    }

    /// `XA END` + `XA ROLLBACK` of a branch that is not prepared. `XA END` fails when the branch
    /// has ended already, which is fine; a branch the engine rolled back itself (deadlock: the
    /// XA_RB* errors, SQLSTATE `XA1xx`) is rolled back, which is what was asked.
    async fn xa_rollback(&mut self, id: &str) -> Result<(), ProxyError> {
        let _ = self.batch(&format!("XA END {id}")).await;
        match self.batch(&format!("XA ROLLBACK {id}")).await {
            Err(ProxyError::Backend { code, .. }) if code.starts_with("XA1") => Ok(()),
            r => r,
        }
    }

    async fn begin_engine(&mut self) -> Result<(), ProxyError> {
        let e = self.engine()?;
        let sql = e.begin_sql();
        e.batch(sql).await
    }

    /// Opens the explicit block's engine transaction if it is still pending (MySQL): right before
    /// the first statement of the block on this bind. The client's modes apply to the next
    /// transaction through `SET TRANSACTION`, the one way to give them to `XA START`.
    async fn start_lazy(&mut self) -> Result<(), ProxyError> {
        let Some(lazy) = &self.lazy else {
            return Ok(());
        };
        let set = (!lazy.characteristics.is_empty())
            .then(|| format!("SET TRANSACTION {}", lazy.characteristics.join(", ")));
        let start = match &self.xa {
            Some(id) => format!("XA START {id}"),
            None => "START TRANSACTION".to_string(),
        };
        if let Some(set) = set {
            self.batch(&set).await?;
        }
        // Still pending if this fails: ending the block then sends nothing.
        self.batch(&start).await?;
        self.lazy = None;
        Ok(())
    }

    fn prepared_error(&self) -> ProxyError {
        tx_error(
            "25000",
            format!(
                "the transaction on bind \"{}\" is prepared for two-phase commit; only its COMMIT or ROLLBACK may follow",
                self.bind.name
            ),
        )
    }

    // -----------------------------------------------------------------------------------------
    // Transaction control, as the session's transaction logic drives it (one bind among the
    // participants of a client transaction). The client's own BEGIN/COMMIT/ROLLBACK/SAVEPOINT text
    // reaches the same code through `exec_part`.

    /// Opens the client's explicit transaction on this bind. `begin_sql` is the client's own BEGIN
    /// text (`BEGIN ISOLATION LEVEL SERIALIZABLE`, `START TRANSACTION READ ONLY`): its modes apply.
    /// `xa` is the XA branch id this bind's transaction gets on MySQL when it takes part in
    /// two-phase commit (None on SQLite, or without two-phase commit).
    ///
    /// Lazy on MySQL: nothing is sent until the first statement, so a participant that never runs
    /// anything costs no round trip and DDL sent first can still run (outside the transaction, as
    /// MySQL must). SQLite begins at once (`BEGIN IMMEDIATE`: its write lock is taken now, so two
    /// transactions never deadlock upgrading a read lock).
    ///
    /// Inside a block this does nothing (PostgreSQL only warns); in an aborted block it is 25P02;
    /// a pipeline's implicit transaction becomes the block, as in PostgreSQL, but cannot become an
    /// XA branch after the fact (0A000).
    pub async fn begin(&mut self, begin_sql: &str, xa: Option<&str>) -> Result<(), ProxyError> {
        let parts = self.rewrite(begin_sql).await?;
        match parts.as_slice() {
            [part] if part.kind == Kind::Begin => self.begin_part(part, xa).await,
            _ => Err(tx_error(
                "42601",
                format!("not a BEGIN statement: {begin_sql}"),
            )),
        }
    }

    async fn begin_part(&mut self, part: &Rewritten, xa: Option<&str>) -> Result<(), ProxyError> {
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            // PostgreSQL: WARNING "there is already a transaction in progress", nothing else.
            Tx::Block => return Ok(()),
            Tx::Implicit if xa.is_some() => {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "statements of this pipeline already run on bind \"{}\" in a plain transaction; it cannot become a two-phase-commit branch",
                    self.bind.name
                )))
            }
            Tx::Implicit => {
                // An implicit transaction becomes the explicit block (as in PostgreSQL).
                self.tx = Tx::Block;
                return Ok(());
            }
            Tx::Idle => {}
        }
        let xa = match xa {
            None => None,
            Some(_) if !self.can_prepare() => {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "two-phase commit is not available on bind \"{}\" (SQLite)",
                    self.bind.name
                )))
            }
            Some(id) => Some(xa_literal(id)?),
        };
        if self.bind.is_mysql() {
            // translate/txn.rs renders the isolation level as `SET TRANSACTION ISOLATION LEVEL …`
            // before the start, the access mode in `START TRANSACTION READ ONLY|READ WRITE`.
            let mut characteristics: Vec<String> = part
                .before
                .iter()
                .filter_map(|s| s.strip_prefix("SET TRANSACTION "))
                .map(str::to_string)
                .collect();
            if let Some(mode) = part.sql.strip_prefix("START TRANSACTION ") {
                if mode == "READ ONLY" {
                    self.access = Access::ReadOnly;
                }
                characteristics.push(mode.to_string());
            }
            self.lazy = Some(LazyStart { characteristics });
            self.xa = xa;
        } else {
            for sql in &part.before {
                self.batch(sql).await?;
            }
            if part
                .before
                .iter()
                .any(|s| s == crate::translate::SQLITE_READ_ONLY)
            {
                // A reader: a deferred BEGIN, which takes no write lock (other clients keep
                // writing) and reads one snapshot from its first read.
                self.access = Access::ReadOnly;
                if let Err(e) = self.batch("BEGIN").await {
                    self.access = Access::ReadWrite;
                    let _ = self.batch("PRAGMA query_only = OFF").await;
                    return Err(e);
                }
            } else {
                self.begin_engine().await?;
            }
        }
        self.tx = Tx::Block;
        Ok(())
    }

    /// True when this connection can do phase 1 of two-phase commit: MySQL/MariaDB, through XA
    /// (begin with an `xa` id). SQLite: false (no prepared state that outlives a connection; it
    /// can only commit in one phase).
    pub fn can_prepare(&self) -> bool {
        self.bind.is_mysql()
    }

    /// Phase 1: `XA END 'id'` + `XA PREPARE 'id'`; the branch is then durable on the server (listed
    /// by `XA RECOVER`, kept even if this connection is lost) until phase 2.
    ///
    /// If the branch never started (nothing ran on this bind in the transaction, or only DDL, which
    /// ran outside it), nothing is prepared: `Ok(Prepared::Nothing)`, the transaction is over
    /// and the connection Idle. Idle already: `Nothing` too. In the aborted state nothing can be
    /// prepared: the branch is rolled back (Idle) and the error is 25P02. A transaction begun
    /// without an XA id (or on SQLite) cannot be prepared: 0A000, and it stays open.
    /// If `XA END`/`XA PREPARE` fails, the branch is rolled back and the error returned.
    pub async fn prepare(&mut self) -> Result<Prepared, ProxyError> {
        match self.tx {
            Tx::Idle => return Ok(Prepared::Nothing),
            Tx::Prepared => return Ok(Prepared::Branch),
            Tx::Failed | Tx::ImplicitFailed => {
                self.end_transaction(false).await?;
                return Err(ProxyError::InFailedTransaction);
            }
            Tx::Block | Tx::Implicit => {}
        }
        let Some(id) = self.xa.clone().filter(|_| self.tx == Tx::Block) else {
            let why = if self.can_prepare() {
                "its transaction was not begun as an XA branch"
            } else {
                "SQLite has no two-phase commit"
            };
            return Err(ProxyError::FeatureNotSupported(format!(
                "cannot prepare the transaction on bind \"{}\": {why}",
                self.bind.name
            )));
        };
        if self.lazy.is_some() {
            self.end_transaction(true).await?;
            return Ok(Prepared::Nothing);
        }
        let r = match self.batch(&format!("XA END {id}")).await {
            Ok(()) => self.batch(&format!("XA PREPARE {id}")).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            let _ = self.end_transaction(false).await;
            return Err(e);
        }
        self.tx = Tx::Prepared;
        self.savepoints.clear();
        Ok(Prepared::Branch)
    }

    /// Phase 2, on the connection that prepared the branch: `XA COMMIT 'id'`. Leaves the connection
    /// Idle. If it fails, the branch stays prepared (the decision is the coordinator's: retry, or
    /// recover from another connection; [`TranslatedConn::release`] then closes this one).
    pub async fn commit_prepared(&mut self) -> Result<(), ProxyError> {
        self.phase_two(true).await
    }

    /// Phase 2: `XA ROLLBACK 'id'` of the branch prepared by [`TranslatedConn::prepare`]. Leaves the
    /// connection Idle.
    pub async fn rollback_prepared(&mut self) -> Result<(), ProxyError> {
        self.phase_two(false).await
    }

    async fn phase_two(&mut self, commit: bool) -> Result<(), ProxyError> {
        if self.tx != Tx::Prepared {
            return Err(tx_error(
                "55000",
                format!(
                    "no prepared transaction on bind \"{}\" to {}",
                    self.bind.name,
                    if commit { "commit" } else { "roll back" }
                ),
            ));
        }
        self.end_transaction(commit).await
    }

    /// One-phase end: COMMIT (an XA branch: `XA END` + `XA COMMIT 'id' ONE PHASE`). Leaves the
    /// connection Idle. A transaction in the failed state is rolled back instead and the answer is
    /// `Committed::RolledBack` (PostgreSQL answers such a COMMIT with ROLLBACK); Idle: nothing to
    /// do (PostgreSQL only warns). A prepared branch needs [`TranslatedConn::commit_prepared`].
    /// If COMMIT fails, nothing is committed and the connection is Idle.
    pub async fn commit(&mut self) -> Result<Committed, ProxyError> {
        match self.tx {
            Tx::Idle => Ok(Committed::Committed),
            Tx::Failed | Tx::ImplicitFailed => {
                self.end_transaction(false).await?;
                Ok(Committed::RolledBack)
            }
            Tx::Prepared => Err(self.prepared_error()),
            Tx::Block | Tx::Implicit => {
                self.end_transaction(true).await?;
                Ok(Committed::Committed)
            }
        }
    }

    /// One-phase end: ROLLBACK (an XA branch: `XA END` + `XA ROLLBACK 'id'`; a prepared one:
    /// `XA ROLLBACK 'id'`). Leaves the connection Idle; Idle already: nothing to do.
    pub async fn rollback(&mut self) -> Result<(), ProxyError> {
        self.end_transaction(false).await
    }

    /// `SAVEPOINT name` (the name as PostgreSQL folds it, unquoted). Only in a transaction block
    /// (25P01 otherwise); opens a pending MySQL transaction first. MariaDB accepts savepoints
    /// inside an XA branch. An error aborts the block, as in PostgreSQL.
    pub async fn savepoint(&mut self, name: &str) -> Result<(), ProxyError> {
        let r = self.savepoint_inner(name).await;
        if r.is_err() {
            self.on_error(false).await;
        }
        r
    }

    /// `RELEASE SAVEPOINT name`: that savepoint and the later ones are gone (3B001 if unknown).
    pub async fn release_savepoint(&mut self, name: &str) -> Result<(), ProxyError> {
        let r = self.release_inner(name).await;
        if r.is_err() {
            self.on_error(false).await;
        }
        r
    }

    /// `ROLLBACK TO SAVEPOINT name`: undoes what followed it, keeps it, and leaves the failed
    /// state (accepted in an aborted block, as in PostgreSQL).
    pub async fn rollback_to_savepoint(&mut self, name: &str) -> Result<(), ProxyError> {
        let r = self.rollback_to_inner(name).await;
        if r.is_err() {
            self.on_error(false).await;
        }
        r
    }

    /// The innermost savepoint of that name (PostgreSQL allows the same name twice).
    fn savepoint_position(&self, name: &str) -> Result<usize, ProxyError> {
        self.savepoints
            .iter()
            .rposition(|s| s == name)
            .ok_or_else(|| ProxyError::NoSuchSavepoint(name.to_owned()))
    }

    async fn savepoint_inner(&mut self, name: &str) -> Result<(), ProxyError> {
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            Tx::Block => {}
            Tx::Idle | Tx::Implicit => return Err(ProxyError::NoTransactionBlock("SAVEPOINT")),
        }
        self.start_lazy().await?;
        let e = self.engine()?;
        let sql = format!("SAVEPOINT {}", e.quote_ident(name));
        e.batch(&sql).await?;
        self.savepoints.push(name.to_string());
        Ok(())
    }

    async fn release_inner(&mut self, name: &str) -> Result<(), ProxyError> {
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            Tx::Block => {}
            Tx::Idle | Tx::Implicit => {
                return Err(ProxyError::NoTransactionBlock("RELEASE SAVEPOINT"))
            }
        }
        let pos = self.savepoint_position(name)?;
        let e = self.engine()?;
        let sql = format!("RELEASE SAVEPOINT {}", e.quote_ident(name));
        e.batch(&sql).await?;
        self.savepoints.truncate(pos);
        Ok(())
    }

    async fn rollback_to_inner(&mut self, name: &str) -> Result<(), ProxyError> {
        match self.tx {
            Tx::Block | Tx::Failed => {}
            Tx::Prepared => return Err(self.prepared_error()),
            Tx::Idle | Tx::Implicit | Tx::ImplicitFailed => {
                return Err(ProxyError::NoTransactionBlock("ROLLBACK TO SAVEPOINT"))
            }
        }
        let pos = self.savepoint_position(name)?;
        let e = self.engine()?;
        let sql = format!("ROLLBACK TO SAVEPOINT {}", e.quote_ident(name));
        e.batch(&sql).await?;
        self.savepoints.truncate(pos + 1);
        self.tx = Tx::Block;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Statements

    /// Runs one engine statement (its rewritten parts) with the client's parameter values.
    /// `implicit`: open an implicit transaction before a statement that writes.
    async fn exec_parts(
        &mut self,
        client_sql: &str,
        parts: &[Rewritten],
        params: &[Value],
        sink: &mut RowSink<'_>,
        implicit: bool,
    ) -> Result<String, ProxyError> {
        if parts.len() > 1 && parts.iter().all(|p| p.kind == Kind::Insert) {
            // One large INSERT translated in slices (translate::bulk): one atomic statement to
            // the client, in the implicit transaction if no block is open, with one tag.
            let mut n = 0;
            for part in parts {
                let o = self.run_part(part, params, sink, true).await?;
                n += if part.returning.is_some() {
                    o.rows
                } else {
                    o.affected
                };
            }
            return Ok(TagHint::Insert.tag(n));
        }
        let mut tag: Option<String> = None;
        for part in parts {
            let t = self
                .exec_part(client_sql, part, params, sink, implicit)
                .await?;
            tag.get_or_insert(t);
        }
        Ok(tag.unwrap_or_else(|| tag_from_sql(client_sql)))
    }

    async fn exec_part(
        &mut self,
        client_sql: &str,
        part: &Rewritten,
        params: &[Value],
        sink: &mut RowSink<'_>,
        implicit: bool,
    ) -> Result<String, ProxyError> {
        match &part.kind {
            Kind::Begin => {
                self.begin_part(part, None).await?;
                return Ok(part.tag_hint.tag(0));
            }
            Kind::Commit => {
                return Ok(match self.commit().await? {
                    Committed::Committed => "COMMIT".into(),
                    Committed::RolledBack => "ROLLBACK".into(),
                });
            }
            Kind::Rollback => {
                self.end_transaction(false).await?;
                return Ok("ROLLBACK".into());
            }
            Kind::Savepoint(name) => {
                self.savepoint_inner(name).await?;
                return Ok("SAVEPOINT".into());
            }
            Kind::Release(name) => {
                self.release_inner(name).await?;
                return Ok("RELEASE".into());
            }
            Kind::RollbackTo(name) => {
                self.rollback_to_inner(name).await?;
                return Ok("ROLLBACK".into());
            }
            _ => {}
        }
        // MySQL DDL in an explicit block whose engine transaction has not started: it runs outside
        // (enter_part lets it), and the client is told so.
        let ddl_outside =
            self.lazy.is_some() && self.tx == Tx::Block && mysql_implicit_commit(part);
        let tag = if let Some(lookup) = &part.drop_index_lookup {
            self.enter_part(part, implicit).await?;
            self.mysql_drop_index(&lookup.index, lookup.if_exists)
                .await?
        } else {
            let outcome = self.run_part(part, params, sink, implicit).await?;
            tag_for(part, outcome)
        };
        let _ = client_sql;
        if ddl_outside {
            notice_response(
                sink.out,
                &ErrorFields {
                    severity: "NOTICE",
                    code: "00000",
                    message: &format!(
                        "DDL on bind \"{}\" was committed at once, outside the transaction: MySQL cannot run DDL inside a transaction",
                        self.bind.name
                    ),
                    detail: Some(
                        "The transaction stays open; a ROLLBACK will not undo this statement.",
                    ),
                    hint: None,
                },
            );
        }
        Ok(tag)
    }

    /// Before a part runs: refused in an aborted transaction; opens the implicit transaction
    /// (`implicit`, not for SELECT); runs the part's `before` statements.
    async fn enter_part(&mut self, part: &Rewritten, implicit: bool) -> Result<(), ProxyError> {
        if self.access == Access::ReadOnly && part.kind != Kind::Select {
            return Err(tx_error(
                "25006",
                format!(
                    "cannot execute {} in a read-only transaction",
                    tag_from_sql(&part.sql)
                ),
            ));
        }
        let ddl = self.bind.is_mysql() && mysql_implicit_commit(part);
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            // MySQL would commit the block's earlier statements before DDL (and XA refuses DDL):
            // refused once the block has run something here, else run outside it (lazy start
            // still pending; exec_part tells the client).
            Tx::Block if ddl && self.lazy.is_none() => {
                return Err(ProxyError::DdlInMySqlTransaction {
                    bind: self.bind.name.clone(),
                })
            }
            Tx::Block if ddl => {}
            Tx::Block => self.start_lazy().await?,
            _ => {}
        }
        // A MySQL DELETE whose WHERE divides: a division by zero there is only a warning, turned
        // into 22012 after the statement ran (mysql.rs), so it runs in a transaction that the error
        // rolls back, as PostgreSQL deletes nothing.
        let implicit = implicit
            || (part.kind == Kind::Delete
                && self.bind.target() == crate::translate::Target::MySql
                && (part.sql.contains(['/', '%']) || part.sql.contains(" DIV ")));
        if implicit && self.tx == Tx::Idle && part.kind != Kind::Select {
            self.begin_engine().await?;
            self.tx = Tx::Implicit;
        }
        for sql in &part.before {
            self.engine()?.batch(sql).await?;
        }
        Ok(())
    }

    /// Runs one translated statement that is not transaction control on the engine.
    async fn run_part(
        &mut self,
        part: &Rewritten,
        params: &[Value],
        sink: &mut RowSink<'_>,
        implicit: bool,
    ) -> Result<RunOutcome, ProxyError> {
        self.enter_part(part, implicit).await?;
        let mut values = Vec::with_capacity(part.params.len());
        for &i in &part.params {
            match params.get(i) {
                Some(v) => values.push(v.clone()),
                None => {
                    return Err(tx_error(
                        "42P02",
                        format!("there is no parameter ${}", i + 1),
                    ));
                }
            }
        }
        let protocol = if values.is_empty() {
            self.protocol_for(part).await?
        } else {
            Protocol::Prepared
        };
        if sink.wants_columns() {
            sink.result_types = super::restype::for_simple(self.engine()?, part).await;
        }
        let outcome = match self.engine()?.run(&part.sql, values, protocol, sink).await {
            Ok(o) => o,
            Err(e) => return Err(self.explain_error(e, part).await),
        };
        if !matches!(
            part.kind,
            Kind::Select | Kind::Insert | Kind::Update | Kind::Delete
        ) {
            self.bind.columns.clear();
            self.bind.forget_rewrites();
        }
        Ok(outcome)
    }

    /// An engine error in PostgreSQL's words: an integrity violation completed with the statement's
    /// table and, where the engine does not name the constraint as PostgreSQL would, its catalog.
    async fn explain_error(&mut self, e: ProxyError, part: &Rewritten) -> ProxyError {
        let e = super::errors::for_kind(e, &part.kind);
        let e = self.name_out_of_range(e, part).await;
        let Some(v) = super::errors::violation(&e) else {
            return e;
        };
        let v = v.in_statement(&part.kind, part.tables.first().map(String::as_str));
        let v = match v.catalog_query(self.bind.target()) {
            Some(sql) => {
                let rows = self.catalog_rows(&sql).await.unwrap_or_default();
                v.resolve(&rows)
            }
            None => v,
        };
        super::errors::with_violation(e, &v)
    }

    /// MySQL's `Out of range value for column 'a'` (22003) in PostgreSQL's words when the column
    /// is an integer of the statement's table: `integer out of range` (`smallint`, `bigint`).
    async fn name_out_of_range(&mut self, e: ProxyError, part: &Rewritten) -> ProxyError {
        let ProxyError::Backend { code, detail, .. } = &e else {
            return e;
        };
        let Some(column) = super::errors::mysql_out_of_range_column(code, detail.as_deref()) else {
            return e;
        };
        let Some(table) = part.tables.first() else {
            return e;
        };
        let ty = match self.engine() {
            Ok(engine) => match engine.table_columns(table).await {
                Ok(cols) => cols.get(&column.to_lowercase()).copied(),
                Err(_) => None,
            },
            Err(_) => None,
        };
        match ty {
            Some(ty @ (PgType::Int2 | PgType::Int4 | PgType::Int8)) => ProxyError::Backend {
                code: code.clone(),
                message: format!("{} out of range", ty.name()),
                detail: detail.clone(),
            },
            _ => e,
        }
    }

    /// The rows of an internal catalog query, as text.
    async fn catalog_rows(&mut self, sql: &str) -> Result<Vec<Vec<String>>, ProxyError> {
        let mut scratch = BytesMut::new();
        let mut sink = RowSink::collector(&mut scratch);
        self.engine()?
            .run(sql, vec![], Protocol::Text { rerun: true }, &mut sink)
            .await?;
        Ok(sink
            .collected
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Value::Text(t) => t,
                        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        Value::Int(n) => n.to_string(),
                        Value::UInt(n) => n.to_string(),
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect())
    }

    /// How to run a statement without parameters. MySQL: the text protocol (one round trip, where
    /// prepare + execute costs two and a statement per literal thrashes the statement cache) once
    /// the column types of the tables it reads are cached, since information_schema cannot be
    /// asked while a result streams. Not for RETURNING (MariaDB describes those rows only at
    /// prepare) nor where a FLOAT column may come back (its text form is rounded).
    async fn protocol_for(&mut self, part: &Rewritten) -> Result<Protocol, ProxyError> {
        if !self.engine()?.is_mysql() || part.returning.is_some() {
            return Ok(Protocol::Prepared);
        }
        if part.kind != Kind::Select {
            return Ok(Protocol::Text { rerun: false });
        }
        if part
            .sql
            .as_bytes()
            .windows(5)
            .any(|w| w.eq_ignore_ascii_case(b"float"))
        {
            return Ok(Protocol::Prepared);
        }
        let bind = self.bind.clone();
        for t in &part.tables {
            let cols = bind.table_columns(self.engine()?, t).await?;
            if cols.values().any(|ty| *ty == PgType::Float4) {
                return Ok(Protocol::Prepared);
            }
        }
        Ok(Protocol::Text { rerun: true })
    }

    /// MySQL `DROP INDEX name`: MySQL needs the table, found in information_schema.STATISTICS.
    async fn mysql_drop_index(
        &mut self,
        index: &str,
        if_exists: bool,
    ) -> Result<String, ProxyError> {
        let sql = format!(
            "SELECT TABLE_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = '{}' LIMIT 1",
            index.replace('\'', "''")
        );
        let mut scratch = BytesMut::new();
        let mut sink = RowSink::collector(&mut scratch);
        self.engine()?
            .run(&sql, vec![], Protocol::Text { rerun: true }, &mut sink)
            .await?;
        let tables: Vec<String> = sink
            .collected
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(Value::Text(t)) => Some(t),
                Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
                _ => None,
            })
            .collect();
        match tables.first() {
            Some(t) => {
                let drop = mysql_drop_index_sql(index, t);
                self.engine()?.batch(&drop).await?;
            }
            None if if_exists => {}
            None => {
                return Err(tx_error(
                    "42704",
                    format!("index \"{index}\" does not exist"),
                ))
            }
        }
        self.bind.columns.clear();
        self.bind.forget_rewrites();
        Ok("DROP INDEX".into())
    }

    /// Answers a statement that never reaches the engine. Returns the tag; writes rows only (the
    /// caller decides about RowDescription through `describe`).
    /// `SET TRANSACTION READ ONLY` inside a block: the rest of the transaction is read-only (on
    /// SQLite the engine refuses writes too). Outside a block PostgreSQL only warns: nothing.
    async fn read_only_now(&mut self, local: &Local) -> Result<(), ProxyError> {
        if *local == Local::SetTransactionReadOnly
            && matches!(self.tx, Tx::Block | Tx::Implicit)
            && self.access == Access::ReadWrite
        {
            if !self.bind.is_mysql() {
                self.batch(crate::translate::SQLITE_READ_ONLY).await?;
            }
            self.access = Access::ReadOnly;
        }
        Ok(())
    }

    fn run_local(
        &mut self,
        local: &Local,
        out: &mut BytesMut,
        describe: bool,
        binary: &[bool],
    ) -> Result<String, ProxyError> {
        if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) {
            return Err(ProxyError::InFailedTransaction);
        }
        let (columns, rows, tag): (Vec<&str>, Vec<Vec<String>>, String) = match local {
            Local::Set { name, value } => {
                if let Some(n) = name {
                    self.settings.set(n, value);
                }
                (vec![], vec![], "SET".into())
            }
            // `read_only_now` made the transaction read-only before this runs.
            Local::SetTransactionReadOnly => (vec![], vec![], "SET".into()),
            Local::Reset(name) => {
                self.settings.reset(name.as_deref());
                (vec![], vec![], "RESET".into())
            }
            Local::Show(name) if name == "all" => {
                let rows: Vec<Vec<String>> = self
                    .settings
                    .all()
                    .map(|(k, v)| vec![k.to_string(), v.to_string(), String::new()])
                    .collect();
                (vec!["name", "setting", "description"], rows, "SHOW".into())
            }
            Local::Show(name) => {
                let Some(v) = self.settings.get(name) else {
                    return Err(tx_error(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    ));
                };
                (
                    vec![name.as_str()],
                    vec![vec![v.to_string()]],
                    "SHOW".into(),
                )
            }
            Local::CurrentSetting(name) => {
                let Some(v) = self.settings.get(name) else {
                    return Err(tx_error(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    ));
                };
                (
                    vec!["current_setting"],
                    vec![vec![v.to_string()]],
                    "SELECT 1".into(),
                )
            }
            Local::Select { column, what } => {
                let v = match what {
                    LocalFn::Version => format!(
                        "PostgreSQL {} (bindproxy; bind \"{}\" on {})",
                        self.settings.get("server_version").unwrap_or("15.0"),
                        self.bind.name,
                        match self.bind.target() {
                            crate::translate::Target::MySql => "MySQL/MariaDB",
                            crate::translate::Target::Sqlite => "SQLite",
                        }
                    ),
                    f => match self
                        .identity
                        .value(*f, self.settings.get("search_path").unwrap_or("public"))
                    {
                        Some(v) => v.to_string(),
                        None => {
                            // current_schema with no existing schema on the search_path: NULL.
                            let cols = [Column::new(column.to_string(), Self::local_type(local))];
                            if describe {
                                row_description(out, &fields(&cols, binary));
                            }
                            write_row(out, &cols, binary, &[Value::Null])?;
                            return Ok("SELECT 1".into());
                        }
                    },
                };
                (vec![*column], vec![vec![v]], "SELECT 1".into())
            }
            Local::Discard => {
                self.settings = Settings::default();
                (vec![], vec![], "DISCARD ALL".into())
            }
            Local::Deallocate(None) => {
                self.stmts.clear();
                (vec![], vec![], "DEALLOCATE ALL".into())
            }
            Local::Deallocate(Some(n)) => {
                if self.stmts.remove(n.as_str()).is_none() {
                    return Err(ProxyError::UnknownStatement(n.clone()));
                }
                (vec![], vec![], "DEALLOCATE".into())
            }
        };
        let cols: Vec<Column> = columns
            .iter()
            .map(|n| Column::new(n.to_string(), Self::local_type(local)))
            .collect();
        if describe && !cols.is_empty() {
            row_description(out, &fields(&cols, binary));
        }
        for r in rows {
            let vals: Vec<Value> = r.into_iter().map(Value::Text).collect();
            write_row(out, &cols, binary, &vals)?;
        }
        Ok(tag)
    }

    /// The columns a local statement returns.
    fn local_columns(local: &Local) -> Vec<Column> {
        let names: Vec<String> = match local {
            Local::Show(n) if n == "all" => {
                vec!["name".into(), "setting".into(), "description".into()]
            }
            Local::Show(n) => vec![n.clone()],
            Local::CurrentSetting(_) => vec!["current_setting".into()],
            Local::Select { column, .. } => vec![column.to_string()],
            _ => vec![],
        };
        names
            .into_iter()
            .map(|name| Column::new(name, Self::local_type(local)))
            .collect()
    }

    /// The type of a local statement's columns: `name` for the identity functions, else text.
    fn local_type(local: &Local) -> PgType {
        match local {
            Local::Select { what, .. } => result_type(*what),
            _ => PgType::Text,
        }
    }

    /// Simple query (may hold several statements): for each, RowDescription/DataRow*/CommandComplete
    /// (or EmptyQueryResponse). Not ReadyForQuery. On error: stops and returns it (the session writes
    /// the ErrorResponse); what the earlier statements wrote stays in `out`.
    pub async fn query(&mut self, sql: &str, out: &mut BytesMut) -> Result<(), ProxyError> {
        // The routing's splitter (PostgreSQL's scanner): the engine runs exactly the statements
        // routing saw. A large plain multi-row INSERT is one statement by construction and is not
        // scanned again (the scanner costs about 11 bytes per byte of text).
        let statements = if crate::translate::is_large_plain_insert(sql) {
            vec![sql]
        } else {
            crate::sql::split_statements(sql).map_err(|e| tx_error("42601", e.to_string()))?
        };
        if statements.is_empty() {
            if let Some(e) = crate::translate::not_a_statement(sql) {
                return Err(translate_error(&self.bind, e));
            }
            empty(out, b'I');
            return Ok(());
        }
        let implicit = statements.len() > 1;
        for (i, s) in statements.iter().enumerate() {
            if self.copy_in.is_some() {
                // COPY FROM STDIN must be the last statement: its data comes after this Query.
                self.copy_in = None;
                self.on_error(true).await;
                return Err(super::copy::CopyError::Unsupported(format!(
                    "COPY FROM STDIN must be the last statement of a query string on bind \"{}\"; statement {} follows it",
                    self.bind.name,
                    i + 1
                ))
                .into());
            }
            if let Err(e) = self.simple_one(s, out, implicit).await {
                self.on_error(true).await;
                return Err(e);
            }
        }
        if self.tx == Tx::Implicit && self.copy_in.is_none() {
            self.end_transaction(true).await?;
        }
        Ok(())
    }

    async fn simple_one(
        &mut self,
        sql: &str,
        out: &mut BytesMut,
        implicit: bool,
    ) -> Result<(), ProxyError> {
        if let Some(local) = classify(sql) {
            self.read_only_now(&local).await?;
            let tag = self.run_local(&local, out, true, &[])?;
            command_complete(out, &tag);
            return Ok(());
        }
        if let Some(c) = self.copy_statement(sql) {
            if let Some(tag) = self.copy_start(&c?, out, CopyVia::Query).await? {
                command_complete(out, &tag);
            }
            return Ok(());
        }
        let parts = match self.schema_plan(sql).transpose()? {
            Some(crate::translate::sequence::Plan::Engine(parts)) => Arc::new(parts),
            Some(crate::translate::sequence::Plan::SequenceState { sequence }) => {
                Arc::new(self.sequence_state(&sequence).await?)
            }
            Some(crate::translate::sequence::Plan::MysqlNullability {
                table,
                column,
                nullability,
            }) => Arc::new(self.mysql_nullability(&table, &column, nullability).await?),
            Some(crate::translate::sequence::Plan::AlterType(a))
                if self.bind.target() == crate::translate::Target::MySql =>
            {
                Arc::new(self.mysql_alter_type(&a).await?)
            }
            Some(plan) => {
                let tag = self.run_schema(&plan, out).await?;
                command_complete(out, &tag);
                return Ok(());
            }
            None => self.rewrite(sql).await?,
        };
        if parts.is_empty() {
            empty(out, b'I');
            return Ok(());
        }
        let mut sink = RowSink::simple(out);
        let tag = self
            .exec_parts(sql, &parts, &[], &mut sink, implicit)
            .await?;
        sink.finish();
        command_complete(out, &tag);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Extended protocol

    async fn prepare_stmt(&mut self, sql: &str, declared: &[u32]) -> Result<Stmt, ProxyError> {
        // The routing's splitter (PostgreSQL's scanner): the engine runs exactly the statements
        // routing saw.
        let statements =
            crate::sql::split_statements(sql).map_err(|e| tx_error("42601", e.to_string()))?;
        if statements.len() > 1 {
            return Err(tx_error(
                "42601",
                "cannot insert multiple commands into a prepared statement".into(),
            ));
        }
        let mk = |body, columns, n: usize| {
            let param_oids: Vec<u32> = (0..n)
                .map(|i| {
                    declared
                        .get(i)
                        .copied()
                        .filter(|o| *o != 0)
                        .unwrap_or(oid::TEXT)
                })
                .collect();
            Stmt {
                sql: sql.to_string(),
                body,
                param_types: param_oids.iter().map(|o| PgType::from_oid(*o)).collect(),
                param_oids,
                columns,
            }
        };
        if statements.is_empty() {
            if let Some(e) = crate::translate::not_a_statement(sql) {
                return Err(translate_error(&self.bind, e));
            }
            return Ok(mk(Body::Empty, vec![], declared.len()));
        }
        if let Some(local) = classify(sql) {
            if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) {
                return Err(ProxyError::InFailedTransaction);
            }
            let cols = Self::local_columns(&local);
            return Ok(mk(Body::Local(local), cols, declared.len()));
        }
        if let Some(c) = self.copy_statement(sql) {
            return Ok(mk(Body::Copy(c?), vec![], declared.len()));
        }
        let parts = match self.schema_plan(sql).transpose()? {
            Some(crate::translate::sequence::Plan::Engine(parts)) => Arc::new(parts),
            Some(crate::translate::sequence::Plan::SequenceState { sequence }) => {
                Arc::new(self.sequence_state(&sequence).await?)
            }
            Some(crate::translate::sequence::Plan::MysqlNullability {
                table,
                column,
                nullability,
            }) => Arc::new(self.mysql_nullability(&table, &column, nullability).await?),
            Some(crate::translate::sequence::Plan::AlterType(a))
                if self.bind.target() == crate::translate::Target::MySql =>
            {
                Arc::new(self.mysql_alter_type(&a).await?)
            }
            Some(plan) => return Ok(mk(Body::Schema(plan), vec![], declared.len())),
            None => self.rewrite(sql).await?,
        };
        let exits = parts
            .iter()
            .all(|p| matches!(p.kind, Kind::Commit | Kind::Rollback | Kind::RollbackTo(_)));
        if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) && !exits {
            return Err(ProxyError::InFailedTransaction);
        }
        // Result columns: prepare on the engine (statements that can return rows).
        let mut columns = vec![];
        for p in parts.iter() {
            if matches!(
                p.kind,
                Kind::Select | Kind::Insert | Kind::Update | Kind::Delete | Kind::Other
            ) {
                let prepared = self.engine()?.prepare(&p.sql).await?;
                if !prepared.columns.is_empty() {
                    columns = prepared.columns;
                } else if let Some(probe) = returning_probe(p) {
                    // MariaDB does not describe RETURNING at prepare: ask for the same list
                    // from the table.
                    columns = self.engine()?.prepare(&probe).await?.columns;
                }
                // Expressions the engine gives no type: PostgreSQL's, as the statement tells it.
                super::restype::apply(self.engine()?, &p.result_types, &mut columns).await;
            }
        }
        // Parameters: declared by the client, else a cast in the SQL, else the column they meet.
        let n = parts
            .iter()
            .flat_map(|p| p.params.iter().map(|i| i + 1))
            .chain(parts.iter().map(|p| p.param_hints.len()))
            .chain(std::iter::once(declared.len()))
            .max()
            .unwrap_or(0);
        let mut oids = vec![0u32; n];
        let mut types = vec![PgType::Text; n];
        for i in 0..n {
            if let Some(&o) = declared.get(i).filter(|o| **o != 0) {
                oids[i] = o;
                types[i] = PgType::from_oid(o);
                continue;
            }
            let cast = parts
                .iter()
                .flat_map(|p| p.pg_types.iter())
                .find(|(idx, _)| *idx == i)
                .and_then(|(_, name)| pg_type_by_name(name).map(|t| (t, name.as_str())));
            if let Some((t, name)) = cast {
                oids[i] = match name {
                    "bpchar" => oid::BPCHAR,
                    _ => t.oid(),
                };
                types[i] = t;
                continue;
            }
            let hint = parts
                .iter()
                .find_map(|p| p.param_hints.get(i).cloned().flatten());
            let mut ty = PgType::Text;
            if let Some(h) = hint {
                let bind = self.bind.clone();
                if let Ok(cols) = bind.table_columns(self.engine()?, &h.table).await {
                    if let Some(t) = cols.get(&h.column.to_lowercase()) {
                        ty = *t;
                    }
                }
            }
            if ty == PgType::Unknown {
                ty = PgType::Text;
            }
            oids[i] = ty.oid();
            types[i] = ty;
        }
        Ok(Stmt {
            sql: sql.to_string(),
            body: Body::Engine(parts.as_ref().clone()),
            param_oids: oids,
            param_types: types,
            columns,
        })
    }

    /// Parse: rewrites and prepares on the engine now (result columns and parameter types are known
    /// for Describe); writes ParseComplete.
    pub async fn parse(&mut self, p: &Parse<'_>, out: &mut BytesMut) -> Result<(), ProxyError> {
        if !p.name.is_empty() && self.stmts.contains_key(p.name) {
            return Err(ProxyError::DuplicateStatement(p.name.to_string()));
        }
        if p.name.is_empty() {
            self.stmts.remove("");
        }
        let stmt = match self.prepare_stmt(p.query, &p.param_types).await {
            Ok(s) => s,
            Err(e) => {
                self.on_error(false).await;
                return Err(e);
            }
        };
        self.stmts.insert(p.name.to_string(), Arc::new(stmt));
        empty(out, b'1');
        Ok(())
    }

    /// Bind: decodes the parameters (text or binary, by the statement's parameter types) and
    /// creates the portal; writes BindComplete.
    pub async fn bind(&mut self, b: &Bind<'_>, out: &mut BytesMut) -> Result<(), ProxyError> {
        let r = self.bind_inner(b);
        if r.is_err() {
            self.on_error(false).await;
        }
        r?;
        empty(out, b'2');
        Ok(())
    }

    fn bind_inner(&mut self, b: &Bind<'_>) -> Result<(), ProxyError> {
        let stmt = self
            .stmts
            .get(b.statement)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownStatement(b.statement.to_string()))?;
        if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) && !stmt.exits_transaction() {
            return Err(ProxyError::InFailedTransaction);
        }
        if b.params.len() != stmt.param_types.len() {
            return Err(ProxyError::Protocol(format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                b.params.len(),
                b.statement,
                stmt.param_types.len()
            )));
        }
        let mut params = Vec::with_capacity(b.params.len());
        for (i, raw) in b.params.iter().enumerate() {
            let v = decode_param(stmt.param_types[i], format_of(&b.param_formats, i), *raw)
                .map_err(|e| match e {
                    ProxyError::Backend {
                        code,
                        message,
                        detail,
                    } => ProxyError::Backend {
                        code,
                        // PostgreSQL's words as the message; which parameter, in the detail.
                        message,
                        detail: Some(match detail {
                            Some(d) => format!("{d} (parameter ${})", i + 1),
                            None => format!("in parameter ${}", i + 1),
                        }),
                    },
                    other => other,
                })?;
            params.push(v);
        }
        let mut binary = Vec::with_capacity(stmt.columns.len());
        for i in 0..stmt.columns.len() {
            match format_of(&b.result_formats, i) {
                0 => binary.push(false),
                1 => binary.push(true),
                f => {
                    return Err(ProxyError::Protocol(format!(
                        "unsupported format code: {f}"
                    )))
                }
            }
        }
        if !b.portal.is_empty() && self.portals.contains_key(b.portal) {
            return Err(tx_error(
                "42P03",
                format!("cursor \"{}\" already exists", b.portal),
            ));
        }
        self.portals.insert(
            b.portal.to_string(),
            Portal {
                stmt,
                params,
                binary,
                state: PortalState::Fresh,
            },
        );
        Ok(())
    }

    /// Describe: 'S' → ParameterDescription + RowDescription|NoData; 'P' → RowDescription|NoData
    /// with the portal's result formats.
    pub async fn describe(
        &mut self,
        kind: u8,
        name: &str,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        if kind == b'S' {
            let Some(stmt) = self.stmts.get(name) else {
                self.on_error(false).await;
                return Err(ProxyError::UnknownStatement(name.to_string()));
            };
            parameter_description(out, &stmt.param_oids);
            if stmt.columns.is_empty() {
                empty(out, b'n');
            } else {
                row_description(out, &fields(&stmt.columns, &[]));
            }
            return Ok(());
        }
        let Some(p) = self.portals.get(name) else {
            self.on_error(false).await;
            return Err(ProxyError::UnknownPortal(name.to_string()));
        };
        if p.stmt.columns.is_empty() {
            empty(out, b'n');
        } else {
            row_description(out, &fields(&p.stmt.columns, &p.binary));
        }
        Ok(())
    }

    /// Execute: DataRow* then CommandComplete, or PortalSuspended after `max_rows` rows (the rest is
    /// kept for the next Execute).
    pub async fn execute(
        &mut self,
        portal: &str,
        max_rows: i32,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let Some(mut p) = self.portals.remove(portal) else {
            self.on_error(false).await;
            return Err(ProxyError::UnknownPortal(portal.to_string()));
        };
        let r = self.execute_portal(&mut p, max_rows, out).await;
        if r.is_err() {
            self.on_error(false).await;
        }
        self.portals.insert(portal.to_string(), p);
        r
    }

    async fn execute_portal(
        &mut self,
        p: &mut Portal,
        max_rows: i32,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let limit = if max_rows > 0 { max_rows as u64 } else { 0 };
        match std::mem::replace(&mut p.state, PortalState::Fresh) {
            PortalState::Done(tag) => {
                p.state = PortalState::Done(tag.clone());
                command_complete(out, &tag);
                return Ok(());
            }
            PortalState::Suspended(mut rows) => {
                if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) {
                    p.state = PortalState::Suspended(rows);
                    return Err(ProxyError::InFailedTransaction);
                }
                let mut n = 0u64;
                while limit == 0 || n < limit {
                    let Some(r) = rows.pop_front() else { break };
                    write_row(out, &p.stmt.columns, &p.binary, &r)?;
                    n += 1;
                }
                if rows.is_empty() {
                    let tag = format!("SELECT {n}");
                    command_complete(out, &tag);
                    p.state = PortalState::Done("SELECT 0".into());
                } else {
                    empty(out, b's');
                    p.state = PortalState::Suspended(rows);
                }
                return Ok(());
            }
            PortalState::Fresh => {}
        }
        let stmt = p.stmt.clone();
        match &stmt.body {
            Body::Empty => {
                empty(out, b'I');
                p.state = PortalState::Done(String::new());
                Ok(())
            }
            Body::Local(local) => {
                self.read_only_now(local).await?;
                let tag = self.run_local(local, out, false, &p.binary)?;
                command_complete(out, &tag);
                p.state = PortalState::Done(tag);
                Ok(())
            }
            Body::Schema(plan) => {
                let tag = self.run_schema(plan, out).await?;
                command_complete(out, &tag);
                p.state = PortalState::Done(tag);
                Ok(())
            }
            Body::Copy(c) => {
                if let Some(tag) = self.copy_start(c, out, CopyVia::Extended).await? {
                    command_complete(out, &tag);
                    p.state = PortalState::Done(tag);
                } else {
                    p.state = PortalState::Done("COPY 0".into());
                }
                Ok(())
            }
            Body::Engine(parts) => {
                let mut sink = RowSink::portal(out, stmt.columns.clone(), p.binary.clone(), limit);
                let tag = self
                    .exec_parts(&stmt.sql, parts, &p.params, &mut sink, true)
                    .await?;
                let overflow = std::mem::take(&mut sink.overflow);
                let hit_limit = limit > 0 && sink.count >= limit && !overflow.is_empty();
                if hit_limit {
                    empty(out, b's');
                    p.state = PortalState::Suspended(overflow);
                } else {
                    command_complete(out, &tag);
                    p.state = PortalState::Done(tag);
                }
                Ok(())
            }
        }
    }

    /// Close: CloseComplete (closing something that does not exist is not an error).
    pub fn close(&mut self, kind: u8, name: &str, out: &mut BytesMut) {
        if kind == b'S' {
            self.stmts.remove(name);
        } else {
            self.portals.remove(name);
        }
        empty(out, b'3');
    }

    /// End of an extended pipeline: commits the implicit transaction (or rolls it back after an
    /// error), drops the unnamed portal; returns the transaction status for ReadyForQuery.
    /// A failed implicit COMMIT is kept for [`TranslatedConn::take_sync_error`].
    pub async fn sync(&mut self) -> u8 {
        self.portals.remove("");
        match self.tx {
            Tx::Implicit => {
                if let Err(e) = self.end_transaction(true).await {
                    self.sync_error = Some(e);
                }
            }
            Tx::ImplicitFailed => {
                let _ = self.end_transaction(false).await;
            }
            _ => {}
        }
        if self.tx == Tx::Idle {
            // Portals do not outlive their transaction.
            self.portals.clear();
        }
        self.status()
    }

    /// The error of the implicit COMMIT done by the last [`TranslatedConn::sync`], if it failed:
    /// the session writes it as an ErrorResponse before ReadyForQuery.
    pub fn take_sync_error(&mut self) -> Option<ProxyError> {
        self.sync_error.take()
    }

    /// Rolls back anything open and returns the connection to the pool (or drops it if broken).
    ///
    /// A prepared XA branch is not decided here (that is phase 2, the coordinator's): the
    /// connection is closed instead, and the server keeps the branch for `XA RECOVER`.
    pub async fn release(mut self) {
        if self.tx == Tx::Prepared {
            if let Some(e) = self.engine.take() {
                e.close().await;
            }
            return;
        }
        if self.tx != Tx::Idle {
            let _ = self.end_transaction(false).await;
        }
        if let Some(e) = self.engine.take() {
            e.give_back(self.dirty).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{rewrite_sql, Target};

    fn commits(sql: &str) -> bool {
        rewrite_sql(sql, Target::MySql)
            .unwrap()
            .iter()
            .any(mysql_implicit_commit)
    }

    #[test]
    fn mysql_statements_that_commit_implicitly() {
        for sql in [
            "CREATE TABLE a (x INTEGER)",
            "DROP TABLE a",
            "ALTER TABLE a ADD COLUMN y INTEGER",
            "CREATE INDEX i ON a (x)",
            "DROP INDEX i",
            "DROP TABLE IF EXISTS a",
            "ALTER TABLE a RENAME TO b",
        ] {
            assert!(commits(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO a VALUES (1)",
            "UPDATE a SET x = 2",
            "DELETE FROM a",
            "SELECT x FROM a",
            "CREATE TEMPORARY TABLE tmp (x INTEGER)",
            "SAVEPOINT s",
        ] {
            assert!(!commits(sql), "{sql}");
        }
    }

    #[test]
    fn xa_ids_are_checked_not_quoted() {
        assert_eq!(xa_literal("bp_a1_ff_2").unwrap(), "'bp_a1_ff_2'");
        assert_eq!(xa_literal("a-b.c:d").unwrap(), "'a-b.c:d'");
        for bad in ["", "a'b", "a b", "a\\b", "é", &"x".repeat(XA_ID_MAX + 1)] {
            assert!(xa_literal(bad).is_err(), "{bad:?}");
        }
        assert!(xa_literal(&"x".repeat(XA_ID_MAX)).is_ok());
    }
}
