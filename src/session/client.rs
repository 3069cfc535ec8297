//! Client → backend: deciding where each client message goes, and forwarding it.
//!
//! The bind of a statement is chosen at Parse (or Query) from its tables; Bind, Describe, Execute
//! and Close follow the statement or portal name. Statements without tables follow the open
//! transaction (its first participant). BEGIN is answered by bindproxy and sent to each bind when
//! a statement first goes there (`txn.rs`), so `BEGIN; INSERT INTO users …` runs on the users
//! bind, and a second bind joins the same transaction.

use bytes::BytesMut;

use super::conn::Conn;
use super::prepared::{self, SqlPrepared};
use super::settings::SettingKey;
use super::{
    ControlStmt, Join, OwnErrors, Pending, Portal, Request, Reroute, Session, SessionError, Stmt,
};
use crate::config::CrossBind;
use crate::error::ProxyError;
use crate::protocol::messages::{self, decode_query, Bind, Execute, Parse, Target};
use crate::protocol::Frame;
use crate::proxy::BindId;
use crate::router::{CatalogFollow, RouteError, SessionView};
use crate::sql::{split_object_list, Analysis, SettingChange, SettingScope, StatementKind};

/// Where a statement runs.
pub(super) struct Destination {
    pub(super) bind: BindId,
    /// It has no tables of its own (SET, SELECT 1, catalog queries): it follows the transaction.
    floating: bool,
    /// It runs outside a BEGIN that has not been sent to a bind yet.
    outside_tx: bool,
}

/// What became of one client message.
pub(super) enum Step {
    Done,
    /// It must wait for responses from another bind.
    Blocked,
    Stop,
}

pub(super) fn single_kind(a: &Analysis) -> Option<StatementKind> {
    match a.statements.as_slice() {
        [s] => Some(s.kind),
        _ => None,
    }
}

/// Transaction control that bindproxy answers itself while no transaction is open on a bind.
pub(super) fn is_control(kind: Option<StatementKind>) -> bool {
    matches!(
        kind,
        Some(
            StatementKind::Begin
                | StatementKind::Commit
                | StatementKind::Rollback
                | StatementKind::Savepoint
                | StatementKind::Release
                | StatementKind::RollbackTo
        )
    )
}

/// A transaction-control statement of this analysis, as bindproxy answers it.
pub(super) fn control_stmt(kind: StatementKind, sql: &str, analysis: &Analysis) -> ControlStmt {
    ControlStmt {
        kind,
        sql: sql.to_owned(),
        savepoint: analysis
            .statements
            .first()
            .and_then(|s| s.object_name.clone()),
    }
}

/// A SET (or RESET) statement without tables: a setting of the session or transaction.
fn is_plain_set(analysis: &Analysis) -> bool {
    single_kind(analysis) == Some(StatementKind::Set)
        && analysis.statements.iter().all(|s| s.tables.is_empty())
}

fn join_of(outside_tx: bool) -> Join {
    if outside_tx {
        Join::Outside
    } else {
        Join::Transaction
    }
}

fn malformed(e: messages::Malformed) -> SessionError {
    SessionError::Protocol(e.to_string())
}

impl Session {
    /// Handles buffered client messages until one must wait or none is left. Returns false when
    /// the client ended the session.
    pub(super) async fn dispatch_client(&mut self) -> Result<bool, SessionError> {
        loop {
            // set again by the frame below if it waits for a paused bind
            self.paused_on = None;
            if self.held.is_none() && self.pending_full() {
                // Backpressure: the rest waits in the client's buffer (and socket).
                self.nudge_head();
                return Ok(true);
            }
            let frame = match self.held.take() {
                Some(f) => f,
                None => match self.client.try_next() {
                    Ok(Some(f)) => f,
                    Ok(None) => return Ok(true),
                    Err(e) => return Err(SessionError::Protocol(e.to_string())),
                },
            };
            match self.on_client_frame(&frame).await? {
                Step::Done => {}
                Step::Blocked => {
                    self.held = Some(frame);
                    self.nudge_head();
                    return Ok(true);
                }
                Step::Stop => return Ok(false),
            }
        }
    }

    /// A bind holds back its extended-protocol answers until Sync or Flush: when a message for
    /// another bind is waiting on them, ask for them with a Flush.
    fn nudge_head(&mut self) {
        if self.flush_sent {
            return;
        }
        if let Some(Pending::Extended { bind, .. }) =
            self.pending.iter().find(|p| p.bind().is_some())
        {
            let bind = *bind;
            self.send(bind, Frame::new(b'H', b"").raw());
            self.flush_sent = true;
        }
    }

    async fn on_client_frame(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let tag = f.tag();
        if self.skipping && !matches!(tag, b'S' | b'X') {
            return Ok(Step::Done);
        }
        match tag {
            b'Q' => self.on_query(f).await,
            b'P' => self.on_parse(f).await,
            b'B' => self.on_bind(f).await,
            b'D' => self.on_describe(f).await,
            b'E' => self.on_execute(f).await,
            b'C' => self.on_close(f),
            // Ignored while a MySQL/SQLite bind waits for COPY data, as PostgreSQL does.
            b'H' | b'S' if self.translated_copy().is_some() => Ok(Step::Done),
            b'H' => {
                for b in self.touched.clone() {
                    self.send(b, f.raw());
                }
                Ok(Step::Done)
            }
            b'S' => {
                if self.in_pipeline_tx() {
                    if self.blocked(None) {
                        return Ok(Step::Blocked);
                    }
                    self.finish_pipeline().await?;
                    return Ok(Step::Done);
                }
                self.on_sync().await;
                Ok(Step::Done)
            }
            b'd' | b'c' | b'f' => {
                if self.translated_copy_frame(f).await {
                    return Ok(Step::Done);
                }
                if let Some(b) = self.copy_bind {
                    self.send(b, f.raw());
                }
                Ok(Step::Done)
            }
            b'X' => Ok(Step::Stop),
            b'F' => {
                if self.blocked(None) {
                    return Ok(Step::Blocked);
                }
                self.refuse(
                    ProxyError::FeatureNotSupported(
                        "the FunctionCall message is not supported by bindproxy; call the function with SELECT".into(),
                    ),
                    true,
                );
                Ok(Step::Done)
            }
            other => Err(SessionError::Protocol(format!(
                "unknown message type {:?} (0x{other:02x})",
                other as char
            ))),
        }
    }

    /// The bind a statement with these tables runs on, or why it cannot run.
    pub(super) fn target(
        &mut self,
        analysis: &Analysis,
        sql: &str,
    ) -> Result<Destination, ProxyError> {
        self.last_table = None;
        if let Some(e) = &analysis.error {
            return Err(ProxyError::Analysis(e.clone()));
        }
        self.follow_reloads();
        let open = self.tx_home().map(|b| self.proxy.bind_name(b));
        let last_catalog = self.catalog_bind.map(|b| self.proxy.bind_name(b));
        let placed = self.live.router.place(
            analysis,
            sql,
            SessionView {
                path: self.search_path.view(),
                open_transaction: open.as_deref(),
                last_catalog: last_catalog.as_deref(),
            },
        )?;
        match &placed.catalog {
            CatalogFollow::Keep => {}
            CatalogFollow::Set(b) => self.catalog_bind = self.live.bind_id(b),
            CatalogFollow::Clear => self.catalog_bind = None,
        }
        let (route, floating) = (placed.route, placed.floating);
        // A name the map does not know is a bind a reload removed (the router remembers its
        // tables, `reload.rs`): refused, never sent to another bind.
        let bind = match self.live.bind_id(&placed.bind) {
            Some(b) => self.serving(b)?,
            None => {
                return Err(ProxyError::BindRetired {
                    bind: placed.bind.clone(),
                    why: crate::registry::Retired::Removed,
                })
            }
        };
        self.observe_routed(analysis, bind);
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                bind = %self.proxy.bind_name(bind),
                tables = ?route.tables.iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>(),
                method = ?analysis.method,
                "route"
            );
        }
        // The shadow catalog answers outside any transaction: it holds no data to be consistent
        // with, and it is never a participant.
        if Some(bind) == self.proxy.catalog_bind() {
            return Ok(Destination {
                bind,
                floating: false,
                outside_tx: true,
            });
        }
        if self.proxy.syncer().is_some() {
            self.note_ddl(analysis, sql, bind, &route.tables);
        }
        // Inside a BEGIN not yet sent anywhere, a catalog query (an ORM's has_table) or SHOW runs
        // outside the transaction, so that it does not tie the transaction to its bind.
        let catalog_only = route.bind.is_none() && !route.tables.is_empty();
        let kind = single_kind(analysis);
        let outside_tx = self.tx_deferred()
            && ((catalog_only && kind == Some(StatementKind::Select))
                || kind == Some(StatementKind::Show));
        Ok(Destination {
            bind,
            floating,
            outside_tx,
        })
    }

    /// Remembers the DDL statements of a query string going to `bind`, for the shadow catalog.
    fn note_ddl(
        &mut self,
        analysis: &Analysis,
        sql: &str,
        bind: BindId,
        tables: &[(crate::sql::TableName, String)],
    ) {
        if !analysis.statements.iter().any(|s| s.changes_catalog) {
            return;
        }
        let pieces = match analysis.statements.len() {
            1 => vec![sql],
            _ => crate::sql::split_statements(sql).unwrap_or_default(),
        };
        let path = self.search_path.resolved();
        for (stmt, piece) in analysis.statements.iter().zip(pieces) {
            if !stmt.changes_catalog {
                continue;
            }
            let ddl = crate::catalog::shadow::Ddl {
                bind,
                sql: piece.to_owned(),
                tables: tables.iter().map(|(t, _)| t.clone()).collect(),
                search_path: path.clone(),
                outcome: crate::catalog::shadow::DdlOutcome::Replay,
            };
            let setbacks = self.setbacks.load(std::sync::atomic::Ordering::Relaxed);
            self.catalog_ddl.push((setbacks, ddl));
        }
    }

    /// Moves the session's `search_path` along with statements about to run.
    pub(super) fn follow_search_path(&mut self, analysis: &Analysis) {
        for s in &analysis.statements {
            self.search_path.follow(s);
            if matches!(s.kind, StatementKind::Rollback | StatementKind::RollbackTo) {
                // DDL noted before it may be undone: the catalog reads it from the bind
                self.setbacks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    async fn on_query(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let sql = decode_query(f.body()).map_err(malformed)?;
        let analysis = self.proxy.cache.analyze(sql);
        if let Some(e) = &analysis.error {
            return Ok(self.refuse_in_order(ProxyError::Analysis(e.clone()), true));
        }
        let kind = single_kind(&analysis);
        // A SET (or SET LOCAL) before a transaction's first statement travels with its BEGIN.
        let deferred_set = kind == Some(StatementKind::Set)
            && self.tx_deferred()
            && analysis.statements.iter().all(|s| s.tables.is_empty());
        let control = (is_control(kind) && self.sole_participant().is_none()) || deferred_set;
        if analysis.statements.is_empty() || control {
            if self.blocked(None) {
                return Ok(Step::Blocked);
            }
            if let (true, Some(k)) = (control, kind) {
                let c = control_stmt(k, sql, &analysis);
                match self.control_stmt(&c, true).await {
                    Ok(()) => self.follow_search_path(&analysis),
                    Err(e) => self.refuse(e, true),
                }
            } else {
                let mut bytes = BytesMut::new();
                messages::empty(&mut bytes, b'I');
                self.local(bytes, true);
            }
            return Ok(Step::Done);
        }
        let placed = self.target(&analysis, sql);
        if let Err(ProxyError::Route(RouteError::CrossBind(cross))) = &placed {
            // TRUNCATE a, b / DROP TABLE a, b / LOCK a, b: each bind its share, in one transaction
            let split = (analysis.statements.len() == 1 && self.proxy.tx.mode != CrossBind::Reject)
                .then(|| {
                    split_object_list(sql, |t| {
                        cross
                            .tables
                            .iter()
                            .find(|(n, _)| n == t)
                            .map(|(_, b)| b.clone())
                    })
                })
                .flatten();
            if let Some(pieces) = split {
                if self.blocked(None) {
                    return Ok(Step::Blocked);
                }
                if let Some(step) = self.gate(None, true) {
                    return Ok(step);
                }
                self.run_object_list(pieces.into_iter().map(|p| p.sql).collect())
                    .await?;
                return Ok(Step::Done);
            }
        }
        if self.spans_binds(&analysis, placed.as_ref().map(|d| d.bind)) {
            if self.blocked(None) {
                return Ok(Step::Blocked);
            }
            if let Some(step) = self.gate(None, true) {
                return Ok(step);
            }
            self.run_spanning(sql).await?;
            return Ok(Step::Done);
        }
        let (bind, outside_tx, floating) = match placed {
            Ok(p) => {
                self.follow_search_path(&analysis);
                (p.bind, p.outside_tx, p.floating)
            }
            Err(e) => {
                return Ok(self.refuse_in_order(e, true));
            }
        };
        let named = prepared::classify(&analysis);
        let bind = match self.sql_prepared_bind(named.as_ref(), bind) {
            Ok(b) => b,
            Err(e) => return Ok(self.refuse_in_order(e, true)),
        };
        if self.refused_by_failure(bind) && !is_control(kind) {
            return Ok(self.refuse_in_order(ProxyError::InFailedTransaction, true));
        }
        // a plain read may go to a read replica of its bind (`replica.rs`); anything else is a write
        let bind = if analysis.replica_safe() && !floating {
            self.read_target(bind).await
        } else {
            // SET and SHOW change or read no data: no read-your-writes window for them
            if !matches!(kind, Some(StatementKind::Set | StatementKind::Show)) {
                self.note_write(bind);
            }
            if analysis.creates_temporary() {
                self.pin_to_primary(bind);
            }
            bind
        };
        let spreads_set = is_plain_set(&analysis) && self.spreads_settings();
        if self.blocked(Some(bind)) || (spreads_set && self.blocked(None)) {
            return Ok(Step::Blocked);
        }
        // transaction control is never held back: it lets open transactions end
        if !is_control(kind) {
            if let Some(step) = self.gate(Some(bind), true) {
                return Ok(step);
            }
        }
        if spreads_set {
            if let Err(e) = self.spread_set(sql, bind).await {
                self.refuse(e, true);
                return Ok(Step::Done);
            }
        }
        if let Err(e) = self.ensure_conn(bind, join_of(outside_tx)).await {
            self.refuse(e, true);
            return Ok(Step::Done);
        }
        self.count_statement(bind);
        // `SELECT set_config('search_path', …, false)` changes the session as a SET does
        let sets_path = analysis.statements.iter().all(|s| s.tables.is_empty())
            && analysis.statements.iter().any(|s| {
                s.settings.iter().any(|c| {
                    matches!(
                        c,
                        SettingChange::SearchPath {
                            scope: SettingScope::Session,
                            ..
                        }
                    )
                })
            });
        let session_set = (kind == Some(StatementKind::Set) || sets_path)
            && self.tx.is_none()
            && !sql
                .trim_start()
                .get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("set local"));
        if let Some(named) = &named {
            self.track_sql_prepared(named, bind).await;
        }
        if let (true, Some(k)) = (is_control(kind), kind) {
            // relayed to the transaction's only participant: its savepoints are the session's
            self.follow_relayed_control(&control_stmt(k, sql, &analysis));
        }
        if let Some(t) = self.cancellable(bind) {
            crate::metrics::bytes_sent(bind, sql.len());
            let mut out = BytesMut::new();
            let r = t.query(sql, &mut out).await;
            let copying = t.copy_in_progress().is_some();
            self.cancel_done();
            if copying {
                // COPY FROM STDIN: CopyInResponse now; the rest at CopyDone (session/copy.rs).
                self.copy_bind = Some(bind);
                self.local(out, false);
                return Ok(Step::Done);
            }
            let ok = r.is_ok();
            self.translated_answer(bind, out, r, true);
            if ok && session_set {
                self.replay_set(bind, sql, SettingKey::of(&analysis)).await;
            }
            return Ok(Step::Done);
        }
        self.send(bind, f.raw());
        if analysis
            .statements
            .iter()
            .any(|s| s.kind == StatementKind::Copy)
        {
            // A client may pipeline its CopyData and CopyDone right behind the COPY, before the
            // server's CopyInResponse: they go to the same bind (PostgreSQL ignores CopyData
            // outside a COPY, e.g. after the COPY failed).
            self.copy_bind = Some(bind);
        }
        self.pending.push_back(Pending::UntilReady {
            bind,
            emit: true,
            answers: Request::Query,
        });
        if session_set {
            self.replay_set(bind, sql, SettingKey::of(&analysis)).await;
        }
        Ok(Step::Done)
    }

    /// The bind that holds the SQL-level prepared statement an `EXECUTE` or `DEALLOCATE` names
    /// (`routed` when the session does not know the name: the bind then answers 26000 itself).
    fn sql_prepared_bind(
        &self,
        named: Option<&SqlPrepared>,
        routed: BindId,
    ) -> Result<BindId, ProxyError> {
        let Some(SqlPrepared::Execute(name) | SqlPrepared::Deallocate(name)) = named else {
            return Ok(routed);
        };
        Ok(self.sql_prepared.get(name).copied().unwrap_or(routed))
    }

    /// Follows SQL-level PREPARE and DEALLOCATE sent to `bind`. `DEALLOCATE ALL` means every
    /// statement of the session: the other binds it holds get it too, quietly.
    async fn track_sql_prepared(&mut self, named: &SqlPrepared, bind: BindId) {
        match named {
            SqlPrepared::Prepare(name) => {
                // Bounded like the client's own names: one entry per name it prepared.
                self.sql_prepared.insert(name.clone(), bind);
            }
            SqlPrepared::Execute(_) => {}
            SqlPrepared::Deallocate(name) => {
                self.sql_prepared.remove(name);
            }
            SqlPrepared::DeallocateAll => {
                self.sql_prepared.clear();
                let frame = super::query_frame("DEALLOCATE ALL");
                for other in self.conns.keys() {
                    if other == bind {
                        continue;
                    }
                    match &mut self.conns[other] {
                        Some(Conn::Translated(t)) => {
                            let _ = t.query("DEALLOCATE ALL", &mut BytesMut::new()).await;
                        }
                        Some(Conn::Pg(_)) => {
                            self.send(other, frame.raw());
                            self.pending.push_back(Pending::Quiet {
                                bind: other,
                                ready: 1,
                                errors: OwnErrors::Ignore,
                            });
                        }
                        None => continue,
                    }
                    self.forget_statements_on(other);
                }
            }
        }
    }

    /// A session-level SET (or RESET) went to `bind`: the client means it for its whole session,
    /// so every other connection it holds gets it too, quietly, and so will those it opens later.
    async fn replay_set(&mut self, bind: BindId, sql: &str, key: Option<SettingKey>) {
        let frame = super::query_frame(sql);
        for other in self.conns.keys() {
            if other == bind {
                continue;
            }
            match &mut self.conns[other] {
                Some(Conn::Translated(t)) => {
                    if let Err(e) = t.query(sql, &mut BytesMut::new()).await {
                        let mut warning = BytesMut::new();
                        super::replay_warning(&mut warning, &self.proxy.bind_name(other), &e);
                        self.local(warning, false);
                    }
                }
                Some(Conn::Pg(_)) => {
                    self.send(other, frame.raw());
                    self.pending.push_back(Pending::Quiet {
                        bind: other,
                        ready: 1,
                        errors: OwnErrors::Warn,
                    });
                }
                None => {}
            }
        }
        if let Some(key) = key {
            self.session_sets.record(key, sql);
        }
    }

    /// Records that an extended-protocol message was sent to `bind`, owing `due` answers.
    fn expect(&mut self, bind: BindId, due: u32) {
        if !self.touched.contains(&bind) {
            self.touched.push(bind);
        }
        if let Some(Pending::Extended {
            bind: b,
            due: d,
            relay: true,
        }) = self.pending.back_mut()
        {
            if *b == bind {
                *d += due;
                return;
            }
        }
        self.pending.push_back(Pending::Extended {
            bind,
            due,
            relay: true,
        });
    }

    /// Refuses a message, once every answer due before it has been given.
    fn refuse_in_order(&mut self, err: ProxyError, simple: bool) -> Step {
        if self.blocked(None) {
            return Step::Blocked;
        }
        self.refuse(err, simple);
        Step::Done
    }

    /// Refuses a Parse in order; like any failed Parse, it destroys the unnamed statement.
    fn refuse_parse(&mut self, err: ProxyError) -> Step {
        if self.blocked(None) {
            return Step::Blocked;
        }
        self.statements.remove("");
        self.refuse(err, false);
        Step::Done
    }

    /// Records that `bind` takes part in the current pipeline (its Sync must reach it).
    fn touch(&mut self, bind: BindId) {
        if !self.touched.contains(&bind) {
            self.touched.push(bind);
        }
    }

    fn local_ext(&mut self, tags: &[u8]) {
        let mut bytes = BytesMut::new();
        for &t in tags {
            messages::empty(&mut bytes, t);
        }
        self.local(bytes, false);
    }

    async fn on_parse(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let p = Parse::decode(f.body()).map_err(malformed)?;
        let name = p.name.to_owned();
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Ok(self.refuse_in_order(ProxyError::DuplicateStatement(name), false));
        }
        let analysis = self.proxy.cache.analyze(p.query);
        if let Some(e) = &analysis.error {
            return Ok(self.refuse_parse(ProxyError::Analysis(e.clone())));
        }
        let kind = single_kind(&analysis);
        let control = match kind {
            Some(k) if is_control(kind) => Some(control_stmt(k, p.query, &analysis)),
            _ => None,
        };
        if control.is_some() && self.sole_participant().is_none() || analysis.statements.is_empty()
        {
            // Answered locally now; prepared on a bind only if it is used inside a transaction.
            if self.blocked(None) {
                return Ok(Step::Blocked);
            }
            self.statements.insert(
                name,
                Stmt {
                    prepared_on: Vec::new(),
                    floating: Some(f.clone()),
                    control,
                    outside_tx: false,
                    set_sql: None,
                    reroute: None,
                    reparse: None,
                },
            );
            self.local_ext(b"1");
            return Ok(Step::Done);
        }
        let Destination {
            bind,
            floating,
            outside_tx,
        } = match self.target(&analysis, p.query) {
            Ok(t) => {
                self.follow_search_path(&analysis);
                t
            }
            Err(e) => return Ok(self.refuse_parse(e)),
        };
        // `EXECUTE name` / `DEALLOCATE name` prepared with the extended protocol: on the bind
        // that holds the name, not floating with the transaction. (DEALLOCATE ALL goes to one
        // bind here: it is fanned out only as a simple Query.)
        let named = prepared::classify(&analysis);
        let held_by_name = matches!(
            &named,
            Some(SqlPrepared::Execute(n) | SqlPrepared::Deallocate(n)) if self.sql_prepared.contains_key(n)
        );
        let (bind, floating) = match self.sql_prepared_bind(named.as_ref(), bind) {
            Ok(b) => (b, floating && !held_by_name),
            Err(e) => return Ok(self.refuse_parse(e)),
        };
        let set_sql = is_plain_set(&analysis).then(|| p.query.to_owned());
        // (named statements only: an unnamed one is parsed again for each use, so the copy of its
        // Parse would be made on every statement of the extended protocol for nothing)
        let reroute = (!name.is_empty()
            && !floating
            && !outside_tx
            && !held_by_name
            && matches!(kind, Some(StatementKind::Select | StatementKind::Other))
            && !analysis.statements.iter().any(|s| s.changes_catalog))
        .then(|| Reroute {
            parse: Frame::from_raw(bytes::Bytes::copy_from_slice(f.raw())),
            generation: self.live.generation,
        });
        // a plain read of a bind with replicas: parsed where it would run now, kept to be parsed
        // again where a later Bind runs it (`replica.rs`)
        let reparse =
            (analysis.replica_safe() && !floating && self.proxy.replica_slot(bind).is_some())
                .then(|| (bind, f.clone()));
        if analysis.creates_temporary() {
            self.pin_to_primary(bind);
        }
        let bind = match reparse {
            Some(_) => self.read_target(bind).await,
            None => bind,
        };
        if !outside_tx {
            if let Err(e) = self.join_pipeline(bind).await {
                self.refuse(e, false);
                return Ok(Step::Done);
            }
        }
        if self.blocked(Some(bind)) {
            return Ok(Step::Blocked);
        }
        if let Err(e) = self.ensure_conn(bind, join_of(outside_tx)).await {
            self.refuse(e, false);
            return Ok(Step::Done);
        }
        if let Some(SqlPrepared::Prepare(sql_name)) = &named {
            self.sql_prepared.insert(sql_name.clone(), bind);
        }
        if let Some(t) = self.translated(bind) {
            let mut out = BytesMut::new();
            let r = t.parse(&p, &mut out).await;
            self.touch(bind);
            if r.is_ok() {
                self.statements.insert(
                    name,
                    Stmt {
                        prepared_on: vec![bind],
                        floating: floating.then(|| f.clone()),
                        control,
                        outside_tx,
                        set_sql: set_sql.clone(),
                        reroute,
                        reparse: None,
                    },
                );
            } else {
                self.statements.remove("");
            }
            self.translated_answer(bind, out, r, false);
            return Ok(Step::Done);
        }
        self.send(bind, f.raw());
        self.expect(bind, 1);
        self.statements.insert(
            name,
            Stmt {
                prepared_on: vec![bind],
                floating: floating.then(|| f.clone()),
                control,
                outside_tx,
                set_sql,
                reroute,
                reparse,
            },
        );
        Ok(Step::Done)
    }

    async fn on_bind(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let (portal, stmt_name) = Bind::names(f.body()).map_err(malformed)?;
        let (portal, stmt_name) = (portal.to_owned(), stmt_name.to_owned());
        let rerouted = match self.reroute(&stmt_name) {
            Ok(b) => b,
            Err(e) => return Ok(self.refuse_in_order(e, false)),
        };
        let Some(stmt) = self.statements.get(&stmt_name) else {
            return Ok(self.refuse_in_order(ProxyError::UnknownStatement(stmt_name), false));
        };
        let in_tx = self.tx_home();
        if let (Some(c), None) = (&stmt.control, self.sole_participant()) {
            if self.blocked(None) {
                return Ok(Step::Blocked);
            }
            self.portals.insert(portal, Portal::Local(c.clone()));
            self.local_ext(b"2");
            return Ok(Step::Done);
        }
        // A statement without tables runs where the transaction is; others where they were parsed.
        let stmt_outside_tx = stmt.outside_tx;
        let relayed_control = stmt.control.clone();
        // a SET inside a multi-bind transaction (cloned only then: nothing on the hot path)
        let spread = match &stmt.set_sql {
            Some(sql) if self.spreads_settings() => Some(sql.clone()),
            _ => None,
        };
        let spreads_set = spread.is_some();
        let is_control = relayed_control.is_some();
        let mut read_of = stmt.reparse.as_ref().map(|(b, _)| *b);
        if rerouted.is_some() && read_of.is_some() {
            // a read whose table a reload moved: its primary is where the map sends it now
            read_of = rerouted;
        }
        let bind = match (&stmt.floating, in_tx, rerouted, stmt.prepared_on.last()) {
            (Some(_), Some(b), _, _) => b,
            (_, _, Some(b), _) => b,
            (_, _, _, Some(&b)) => b,
            (_, _, _, None) => read_of.unwrap_or_else(|| self.default_bind()),
        };
        // a plain read chooses between its bind's primary and replica lease at each Bind; the
        // primary it was parsed for may have been replaced by a reload since (its Parse is kept,
        // so it is prepared again on the slot serving the name now)
        let bind = match read_of {
            Some(primary) => {
                let primary = self.serving(primary).unwrap_or(primary);
                self.read_target(primary).await
            }
            None => {
                self.note_write(bind);
                bind
            }
        };
        if self.refused_by_failure(bind) && !is_control {
            return Ok(self.refuse_in_order(ProxyError::InFailedTransaction, false));
        }
        if !stmt_outside_tx {
            if let Err(e) = self.join_pipeline(bind).await {
                self.refuse(e, false);
                return Ok(Step::Done);
            }
        }
        if self.blocked(Some(bind)) || (spreads_set && self.blocked(None)) {
            return Ok(Step::Blocked);
        }
        if let Err(e) = self.ensure_conn(bind, join_of(stmt_outside_tx)).await {
            self.refuse(e, false);
            return Ok(Step::Done);
        }
        if let Some(c) = &relayed_control {
            self.follow_relayed_control(c);
        }
        if let Some(sql) = &spread {
            if let Err(e) = self.spread_set(sql, bind).await {
                self.refuse(e, false);
                return Ok(Step::Done);
            }
        }
        let generation = self.live.generation;
        let Some(stmt) = self.statements.get_mut(&stmt_name) else {
            return Ok(Step::Done);
        };
        if let (Some(to), Some(r)) = (rerouted, stmt.reroute.as_mut()) {
            r.generation = generation;
            if let Some((primary, _)) = stmt.reparse.as_mut() {
                *primary = to;
            }
            // the last bind it is prepared on is where it runs from now on; pools a reload retired
            // no longer count (their lease can go back once nothing else holds it)
            let registry = &self.proxy.binds;
            let prepared_there = stmt.prepared_on.contains(&bind);
            stmt.prepared_on.retain(|&b| {
                b != bind
                    && registry
                        .get(crate::registry::primary_of(b))
                        .is_some_and(|s| s.standing() == crate::registry::Standing::Serving)
            });
            if prepared_there {
                stmt.prepared_on.push(bind);
            }
        }
        if let Some(Conn::Translated(t)) = &mut self.conns[bind] {
            let mut out = BytesMut::new();
            let mut r = Ok(());
            if !stmt.prepared_on.contains(&bind) {
                if let Some(parse) = stmt.requeue_parse() {
                    stmt.prepared_on.push(bind);
                    let p = Parse::decode(parse.body()).map_err(malformed)?;
                    r = t.parse(&p, &mut BytesMut::new()).await;
                }
            }
            if r.is_ok() {
                let b = Bind::decode(f.body()).map_err(malformed)?;
                r = t.bind(&b, &mut out).await;
            }
            self.touch(bind);
            if r.is_ok() {
                self.portals.insert(portal, Portal::Bind(bind));
            }
            self.translated_answer(bind, out, r, false);
            return Ok(Step::Done);
        }
        if !stmt.prepared_on.contains(&bind) {
            // Prepare it here too, quietly: the client already had its ParseComplete.
            if let Some(parse) = stmt.requeue_parse() {
                stmt.prepared_on.push(bind);
                self.send(bind, parse.raw());
                if !self.touched.contains(&bind) {
                    self.touched.push(bind);
                }
                self.pending.push_back(Pending::Extended {
                    bind,
                    due: 1,
                    relay: false,
                });
            }
        }
        self.send(bind, f.raw());
        self.expect(bind, 1);
        self.portals.insert(portal, Portal::Bind(bind));
        Ok(Step::Done)
    }

    async fn on_describe(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let t = Target::decode(f.body(), "Describe").map_err(malformed)?;
        let (bind, due) = if t.kind == b'S' {
            match self.statements.get(t.name) {
                Some(s) => match (s.prepared_on.last(), &s.reparse) {
                    (Some(&b), _) => (b, 2),
                    // a read whose replica lease went away: prepared again on its primary first
                    (None, Some((primary, parse))) => {
                        let (primary, parse) = (*primary, parse.clone());
                        if self.blocked(Some(primary)) {
                            return Ok(Step::Blocked);
                        }
                        if let Err(e) = self.ensure_conn(primary, Join::Outside).await {
                            self.refuse(e, false);
                            return Ok(Step::Done);
                        }
                        self.send(primary, parse.raw());
                        self.touch(primary);
                        self.pending.push_back(Pending::Extended {
                            bind: primary,
                            due: 1,
                            relay: false,
                        });
                        if let Some(s) = self.statements.get_mut(t.name) {
                            s.prepared_on.push(primary);
                        }
                        (primary, 2)
                    }
                    (None, None) => {
                        if self.blocked(None) {
                            return Ok(Step::Blocked);
                        }
                        let mut bytes = BytesMut::new();
                        messages::parameter_description(&mut bytes, &[]);
                        messages::empty(&mut bytes, b'n');
                        self.local(bytes, false);
                        return Ok(Step::Done);
                    }
                },
                None => {
                    return Ok(self
                        .refuse_in_order(ProxyError::UnknownStatement(t.name.to_owned()), false));
                }
            }
        } else {
            match self.portals.get(t.name) {
                Some(Portal::Bind(b)) => (*b, 1),
                Some(Portal::Local(..)) => {
                    if self.blocked(None) {
                        return Ok(Step::Blocked);
                    }
                    self.local_ext(b"n");
                    return Ok(Step::Done);
                }
                // Not made by Bind: a cursor from SQL DECLARE, which lives where the
                // transaction is.
                None => (self.sql_cursor_bind(), 1),
            }
        };
        if self.blocked(Some(bind)) {
            return Ok(Step::Blocked);
        }
        if let Err(e) = self.ensure_conn(bind, Join::Outside).await {
            self.refuse(e, false);
            return Ok(Step::Done);
        }
        if let Some(tc) = self.translated(bind) {
            let mut out = BytesMut::new();
            let r = tc.describe(t.kind, t.name, &mut out).await;
            self.touch(bind);
            self.translated_answer(bind, out, r, false);
            return Ok(Step::Done);
        }
        self.send(bind, f.raw());
        self.expect(bind, due);
        Ok(Step::Done)
    }

    async fn on_execute(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let e = Execute::decode(f.body()).map_err(malformed)?;
        match self.portals.get(e.portal) {
            Some(Portal::Bind(b)) => {
                let b = *b;
                if self.blocked(Some(b)) {
                    return Ok(Step::Blocked);
                }
                if let Some(step) = self.gate(Some(b), false) {
                    return Ok(step);
                }
                if self.conns[b].is_none() {
                    self.refuse(ProxyError::UnknownPortal(e.portal.to_owned()), false);
                    return Ok(Step::Done);
                }
                self.count_statement(b);
                if let Some(t) = self.cancellable(b) {
                    let mut out = BytesMut::new();
                    let r = t.execute(e.portal, e.max_rows, &mut out).await;
                    if t.copy_in_progress().is_some() {
                        self.copy_bind = Some(b);
                    }
                    self.cancel_done();
                    self.touch(b);
                    self.translated_answer(b, out, r, false);
                    return Ok(Step::Done);
                }
                self.send(b, f.raw());
                self.expect(b, 1);
                // The portal may be a COPY: CopyData pipelined behind it goes to its bind.
                self.copy_bind = Some(b);
            }
            Some(Portal::Local(c)) => {
                if self.blocked(None) {
                    return Ok(Step::Blocked);
                }
                let c = c.clone();
                if let Err(e) = self.control_stmt(&c, false).await {
                    self.refuse(e, false);
                }
            }
            None => {
                let b = self.sql_cursor_bind();
                if self.blocked(Some(b)) {
                    return Ok(Step::Blocked);
                }
                if self.conns[b].is_none() {
                    self.refuse(ProxyError::UnknownPortal(e.portal.to_owned()), false);
                    return Ok(Step::Done);
                }
                self.send(b, f.raw());
                self.expect(b, 1);
            }
        }
        Ok(Step::Done)
    }

    /// Where a portal that no Bind made (a cursor from SQL DECLARE) lives.
    fn sql_cursor_bind(&self) -> BindId {
        self.tx_home().unwrap_or_else(|| self.default_bind())
    }

    fn on_close(&mut self, f: &Frame) -> Result<Step, SessionError> {
        let t = Target::decode(f.body(), "Close").map_err(malformed)?;
        let binds: Vec<BindId> = if t.kind == b'S' {
            self.statements
                .get(t.name)
                .map(|s| s.prepared_on.clone())
                .unwrap_or_default()
        } else {
            match self.portals.get(t.name) {
                Some(Portal::Bind(b)) => vec![*b],
                _ => Vec::new(),
            }
        };
        let live: Vec<BindId> = binds
            .into_iter()
            .filter(|&b| self.conns[b].is_some())
            .collect();
        let ok = match live.as_slice() {
            [] => !self.blocked(None),
            [b] => !self.blocked(Some(*b)),
            _ => !self.blocked(None),
        };
        if !ok {
            return Ok(Step::Blocked);
        }
        if t.kind == b'S' {
            self.statements.remove(t.name);
        } else {
            self.portals.remove(t.name);
        }
        if live.is_empty() {
            // PostgreSQL answers CloseComplete for a name that does not exist, too.
            self.local_ext(b"3");
            return Ok(Step::Done);
        }
        let last = live.len() - 1;
        for (i, b) in live.into_iter().enumerate() {
            if let Some(tc) = self.translated(b) {
                let mut out = BytesMut::new();
                tc.close(t.kind, t.name, &mut out);
                if i == last {
                    self.local(out, false);
                }
                continue;
            }
            self.send(b, f.raw());
            if i == last {
                self.expect(b, 1);
            } else {
                self.pending.push_back(Pending::Extended {
                    bind: b,
                    due: 1,
                    relay: false,
                });
                if !self.touched.contains(&b) {
                    self.touched.push(b);
                }
            }
        }
        Ok(Step::Done)
    }

    async fn on_sync(&mut self) {
        self.skipping = false;
        self.portals.remove("");
        let touched = std::mem::take(&mut self.touched);
        let live: Vec<BindId> = touched
            .into_iter()
            .filter(|&b| self.conns[b].is_some())
            .collect();
        if live.is_empty() {
            self.local(BytesMut::new(), true);
            return;
        }
        let last = live.len() - 1;
        for (i, b) in live.into_iter().enumerate() {
            if let Some(t) = self.translated(b) {
                // The end of the pipeline: commits its implicit transaction.
                t.sync().await;
                let err = t.take_sync_error();
                let status = t.status();
                let mut out = BytesMut::new();
                if let Some(e) = err {
                    e.write_to(&mut out);
                }
                self.follow_status(b, status);
                self.local(out, i == last);
                continue;
            }
            self.send(b, Frame::new(b'S', b"").raw());
            self.pending.push_back(Pending::UntilReady {
                bind: b,
                emit: i == last,
                answers: Request::Sync,
            });
        }
    }
}
