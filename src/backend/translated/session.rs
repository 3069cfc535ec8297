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
//! Must never: let an engine carry on inside a transaction PostgreSQL would consider aborted, write
//! a message for a statement that failed before it produced output, or leave an engine transaction
//! open when the lease ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::OwnedSemaphorePermit;

use super::local::{classify, with_identity, Identity, Local, LocalFn, Settings};
use super::types::{decode_param, encode_typmod, oid, pg_type_by_name, PgType, Value};
use super::{Column, EngineConn, Protocol, RunOutcome, TranslatedBind};
use crate::error::ProxyError;
use crate::protocol::messages::{
    command_complete, data_row_begin, data_row_end, empty, format_of, parameter_description,
    row_description, Bind, FieldDescription, Parse,
};
use crate::translate::{mysql_drop_index_sql, Kind, Rewritten, TagHint, TranslateError};

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
}

#[derive(Debug)]
enum Body {
    /// Empty query text: EmptyQueryResponse.
    Empty,
    Local(Local),
    Engine(Vec<Rewritten>),
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
    savepoints: Vec<String>,
    settings: Settings,
    /// The client's login user and database, for `current_user`, `current_database()`, ….
    identity: Identity,
    sync_error: Option<ProxyError>,
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
    pub(crate) result_types: Vec<Option<(PgType, i32)>>,
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
        }
    }

    /// The engine's result columns (simple query only: a prepared statement's are fixed at Parse).
    pub(crate) fn columns(&mut self, cols: &[Column]) {
        if self.describe && !self.described && !cols.is_empty() {
            self.columns = cols.to_vec();
            self.binary = vec![false; cols.len()];
            if self.result_types.len() == cols.len() {
                for (c, t) in self.columns.iter_mut().zip(&self.result_types) {
                    if let (false, Some((ty, typmod))) = (c.declared, t) {
                        (c.ty, c.typmod) = (*ty, *typmod);
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
        write_row(self.out, &self.columns, &self.binary, &row)?;
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
        if let Err(e) = encode_typmod(columns[i].ty, columns[i].typmod, v, bin, out) {
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
            savepoints: vec![],
            settings: Settings::default(),
            identity: Identity::default(),
            sync_error: None,
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
    fn rewrite(&self, sql: &str) -> Result<Arc<Vec<Rewritten>>, ProxyError> {
        let with_values = with_identity(sql, &self.identity);
        self.bind
            .rewrite(with_values.as_deref().unwrap_or(sql))
            .map_err(|e| translate_error(&self.bind, e))
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

    /// `'I'` idle, `'T'` in a transaction, `'E'` in a failed transaction.
    pub fn status(&self) -> u8 {
        match self.tx {
            Tx::Idle => b'I',
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
        };
    }

    /// An error happened in a statement. `simple`: the implicit transaction of a simple query ends
    /// now (rolled back); in a pipeline it is rolled back at Sync.
    async fn on_error(&mut self, simple: bool) {
        match self.tx {
            Tx::Block => self.tx = Tx::Failed,
            Tx::Implicit if simple => {
                let _ = self.end_transaction("ROLLBACK").await;
            }
            Tx::Implicit => self.tx = Tx::ImplicitFailed,
            _ => {}
        }
    }

    /// COMMIT or ROLLBACK on the engine, back to Idle; named portals end with the transaction.
    async fn end_transaction(&mut self, sql: &str) -> Result<(), ProxyError> {
        self.tx = Tx::Idle;
        self.savepoints.clear();
        let r = match self.engine() {
            Ok(e) => e.batch(sql).await,
            Err(e) => Err(e),
        };
        if r.is_err() && sql != "ROLLBACK" {
            // A failed COMMIT leaves nothing committed: make sure the engine agrees.
            if let Ok(e) = self.engine() {
                let _ = e.batch("ROLLBACK").await;
            }
        }
        r
    }

    async fn begin_engine(&mut self) -> Result<(), ProxyError> {
        let e = self.engine()?;
        let sql = e.begin_sql();
        e.batch(sql).await
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
        let failed = matches!(self.tx, Tx::Failed | Tx::ImplicitFailed);
        match &part.kind {
            Kind::Begin => {
                if failed {
                    return Err(ProxyError::InFailedTransaction);
                }
                match self.tx {
                    Tx::Idle => {
                        for sql in &part.before {
                            self.engine()?.batch(sql).await?;
                        }
                        self.begin_engine().await?;
                        self.tx = Tx::Block;
                    }
                    // An implicit transaction becomes the explicit block (as in PostgreSQL);
                    // BEGIN inside a block is a warning there, nothing here.
                    _ => self.tx = Tx::Block,
                }
                return Ok(part.tag_hint.tag(0));
            }
            Kind::Commit => {
                return match self.tx {
                    Tx::Failed | Tx::ImplicitFailed => {
                        self.end_transaction("ROLLBACK").await?;
                        Ok("ROLLBACK".into())
                    }
                    Tx::Block | Tx::Implicit => {
                        self.end_transaction("COMMIT").await?;
                        Ok("COMMIT".into())
                    }
                    Tx::Idle => Ok("COMMIT".into()),
                };
            }
            Kind::Rollback => {
                if self.tx != Tx::Idle {
                    self.end_transaction("ROLLBACK").await?;
                }
                return Ok("ROLLBACK".into());
            }
            Kind::Savepoint(name) => {
                if failed {
                    return Err(ProxyError::InFailedTransaction);
                }
                if self.tx != Tx::Block {
                    return Err(tx_error(
                        "25P01",
                        "SAVEPOINT can only be used in transaction blocks".into(),
                    ));
                }
                let e = self.engine()?;
                let sql = format!("SAVEPOINT {}", e.quote_ident(name));
                e.batch(&sql).await?;
                self.savepoints.push(name.clone());
                return Ok("SAVEPOINT".into());
            }
            Kind::Release(name) => {
                if failed {
                    return Err(ProxyError::InFailedTransaction);
                }
                if self.tx != Tx::Block {
                    return Err(tx_error(
                        "25P01",
                        "RELEASE SAVEPOINT can only be used in transaction blocks".into(),
                    ));
                }
                let Some(pos) = self.savepoints.iter().rposition(|s| s == name) else {
                    return Err(tx_error(
                        "3B001",
                        format!("savepoint \"{name}\" does not exist"),
                    ));
                };
                let e = self.engine()?;
                let sql = format!("RELEASE SAVEPOINT {}", e.quote_ident(name));
                e.batch(&sql).await?;
                self.savepoints.truncate(pos);
                return Ok("RELEASE".into());
            }
            Kind::RollbackTo(name) => {
                if !matches!(self.tx, Tx::Block | Tx::Failed) {
                    return Err(tx_error(
                        "25P01",
                        "ROLLBACK TO SAVEPOINT can only be used in transaction blocks".into(),
                    ));
                }
                let Some(pos) = self.savepoints.iter().rposition(|s| s == name) else {
                    return Err(tx_error(
                        "3B001",
                        format!("savepoint \"{name}\" does not exist"),
                    ));
                };
                let e = self.engine()?;
                let sql = format!("ROLLBACK TO SAVEPOINT {}", e.quote_ident(name));
                e.batch(&sql).await?;
                self.savepoints.truncate(pos + 1);
                self.tx = Tx::Block;
                return Ok("ROLLBACK".into());
            }
            _ => {}
        }
        if let Some(lookup) = &part.drop_index_lookup {
            self.enter_part(part, implicit).await?;
            return self.mysql_drop_index(&lookup.index, lookup.if_exists).await;
        }
        let outcome = self.run_part(part, params, sink, implicit).await?;
        let _ = client_sql;
        Ok(tag_for(part, outcome))
    }

    /// Before a part runs: refused in an aborted transaction; opens the implicit transaction
    /// (`implicit`, not for SELECT); runs the part's `before` statements.
    async fn enter_part(&mut self, part: &Rewritten, implicit: bool) -> Result<(), ProxyError> {
        if matches!(self.tx, Tx::Failed | Tx::ImplicitFailed) {
            return Err(ProxyError::InFailedTransaction);
        }
        // A MySQL DELETE whose WHERE divides: a division by zero there is only a warning, turned
        // into 22012 after the statement ran (mysql.rs), so it runs in a transaction that the error
        // rolls back, as PostgreSQL deletes nothing.
        let implicit = implicit
            || (part.kind == Kind::Delete
                && self.bind.target() == crate::translate::Target::MySql
                && part.sql.contains(['/', '%']));
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
        Ok("DROP INDEX".into())
    }

    /// Answers a statement that never reaches the engine. Returns the tag; writes rows only (the
    /// caller decides about RowDescription through `describe`).
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
                    f => self.identity.value(*f).unwrap_or_default().to_string(),
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
            .map(|n| Column::new(n.to_string(), PgType::Text))
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
            .map(|name| Column::new(name, PgType::Text))
            .collect()
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
        for s in &statements {
            if let Err(e) = self.simple_one(s, out, implicit).await {
                self.on_error(true).await;
                return Err(e);
            }
        }
        if self.tx == Tx::Implicit {
            self.end_transaction("COMMIT").await?;
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
            let tag = self.run_local(&local, out, true, &[])?;
            command_complete(out, &tag);
            return Ok(());
        }
        let parts = self.rewrite(sql)?;
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
        let parts = self.rewrite(sql)?;
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
                let tag = self.run_local(local, out, false, &p.binary)?;
                command_complete(out, &tag);
                p.state = PortalState::Done(tag);
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
                if let Err(e) = self.end_transaction("COMMIT").await {
                    self.sync_error = Some(e);
                }
            }
            Tx::ImplicitFailed => {
                let _ = self.end_transaction("ROLLBACK").await;
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
    pub async fn release(mut self) {
        let mut dirty = false;
        if self.tx != Tx::Idle {
            dirty = self.end_transaction("ROLLBACK").await.is_err();
        }
        if let Some(e) = self.engine.take() {
            e.give_back(dirty).await;
        }
    }
}
