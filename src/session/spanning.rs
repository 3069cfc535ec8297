//! A simple Query whose statements go to several binds, run statement by statement.
//!
//! Owns: deciding that a query string must be split ([`Session::spans_binds`]), and running its
//! pieces in order on their binds inside one transaction, as PostgreSQL runs a multi-statement
//! Query: outside BEGIN the whole string is one implicit transaction (committed at its end,
//! across binds by the commit protocol of `txn.rs`, rolled back at its first error); a BEGIN,
//! COMMIT or ROLLBACK inside it acts where it stands.
//!
//! Each piece waits for the previous one's answers, so a statement never runs after an earlier
//! one failed. Answers are streamed to the client as they come.
//!
//! Must never: send a piece to a bind before the earlier pieces have finished, or let a COPY run
//! here (its data would have no bind to go to).

use bytes::BytesMut;

use super::conn::Conn;
use super::{Join, Pending, Session, SessionError, CLIENT_FLUSH_BYTES};
use crate::error::ProxyError;
use crate::protocol::messages;
use crate::protocol::Frame;
use crate::proxy::BindId;
use crate::router::RouteError;
use crate::sql::{split_statements, Analysis, StatementKind};
use crate::tx::Origin;

/// Which pieces' command tags the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tags {
    /// Every statement of a Query has its own.
    Each,
    /// One statement split per bind: one tag, the last piece's.
    Last,
}

/// Whether one piece's command tag reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Keep,
    Drop,
}

/// The messages of `bytes` (PostgreSQL's framing) without CommandComplete.
fn without_command_complete(bytes: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(bytes.len());
    for (_, raw) in crate::protocol::frame::messages(bytes).filter(|(tag, _)| *tag != b'C') {
        out.extend_from_slice(raw);
    }
    out
}

/// What became of one piece.
enum Piece {
    Done,
    Failed,
}

impl Session {
    /// True when a multi-statement Query must run piece by piece: its statements go to several
    /// binds, or it ends or starts transactions while binds other than its own take part.
    pub(super) fn spans_binds(
        &self,
        analysis: &Analysis,
        routed: Result<BindId, &ProxyError>,
    ) -> bool {
        if analysis.statements.len() < 2 {
            return false;
        }
        match routed {
            Err(ProxyError::Route(RouteError::CrossBind(_))) => {
                // One of its statements may span binds by itself: that one is refused when its
                // turn comes, after the earlier ones ran (as PostgreSQL reports a failing
                // statement of a Query).
                true
            }
            Err(_) => false,
            Ok(bind) => {
                let bind = &bind;
                let controls = analysis
                    .statements
                    .iter()
                    .any(|s| super::client::is_control(Some(s.kind)));
                let others = self
                    .tx
                    .as_ref()
                    .is_some_and(|t| t.participants.iter().any(|p| p.bind != *bind));
                controls && others
            }
        }
    }

    /// Runs a multi-statement Query piece by piece. The caller has checked that no answers are
    /// due (`blocked(None)`).
    pub(super) async fn run_spanning(&mut self, sql: &str) -> Result<(), SessionError> {
        let pieces = match split_statements(sql) {
            Ok(p) => p.into_iter().map(str::to_owned).collect(),
            Err(e) => {
                self.refuse(ProxyError::Analysis(e), true);
                return Ok(());
            }
        };
        self.run_pieces(pieces, Tags::Each).await
    }

    /// A statement that only lists objects of several binds (`TRUNCATE a, b`), already split into
    /// one statement per bind (`sql::split_object_list`): run like a Query across binds, answered
    /// with one command tag, as the client's one statement.
    pub(super) async fn run_object_list(
        &mut self,
        pieces: Vec<String>,
    ) -> Result<(), SessionError> {
        self.run_pieces(pieces, Tags::Last).await
    }

    async fn run_pieces(&mut self, pieces: Vec<String>, tags: Tags) -> Result<(), SessionError> {
        self.out_locals();
        if self.tx.is_none() {
            self.open_implicit();
        }
        let mut failed = false;
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            if self.tx.is_none() {
                // after a COMMIT or ROLLBACK inside the string, the rest is a new implicit one
                self.open_implicit();
            }
            let tag = if tags == Tags::Last && i < last {
                Tag::Drop
            } else {
                Tag::Keep
            };
            match self.run_piece(piece, tag).await? {
                Piece::Done => {}
                Piece::Failed => {
                    failed = true;
                    break;
                }
            }
        }
        let implicit = self
            .tx
            .as_ref()
            .is_some_and(|t| t.origin == Origin::Implicit);
        let mut out = BytesMut::new();
        if implicit {
            if failed {
                self.rollback_all(&mut out).await;
            } else if let Err(e) = self.commit(&mut out).await {
                // the client sees no COMMIT of its own: only the commit's notices and errors
                e.write_to(&mut out);
            }
        } else if failed {
            self.fail_transaction();
        }
        self.local(out, true);
        Ok(())
    }

    fn open_implicit(&mut self) {
        let gid = self.proxy.tx.gids.next();
        self.tx = Some(crate::tx::Transaction::new(Origin::Implicit, gid));
    }

    /// Moves the answers bindproxy already queued into the client's buffer, in order.
    fn out_locals(&mut self) {
        while let Some(Pending::Local { .. }) = self.pending.front() {
            if let Some(Pending::Local { bytes, ready }) = self.pending.pop_front() {
                self.out.extend_from_slice(&bytes);
                if ready {
                    let status = self.client_status();
                    messages::ready_for_query(&mut self.out, status);
                }
            }
        }
    }

    /// One statement of the string, on its bind; its answers go straight to the client.
    async fn run_piece(&mut self, piece: &str, tag: Tag) -> Result<Piece, SessionError> {
        let analysis = self.proxy.cache.analyze(piece);
        let kind = match analysis.statements.as_slice() {
            [s] => s.kind,
            _ => StatementKind::Other,
        };
        let failed = |this: &mut Session, e: ProxyError| {
            e.write_to(&mut this.out);
            Ok(Piece::Failed)
        };
        if let Some(e) = &analysis.error {
            return failed(self, ProxyError::Analysis(e.clone()));
        }
        if super::client::is_control(Some(kind)) {
            let c = super::client::control_stmt(kind, piece, &analysis);
            let r = self.control_stmt(&c, false).await;
            self.out_locals();
            return match r {
                Ok(()) => {
                    self.follow_search_path(&analysis);
                    Ok(Piece::Done)
                }
                Err(e) => failed(self, e),
            };
        }
        if kind == StatementKind::Copy {
            return failed(
                self,
                ProxyError::FeatureNotSupported(
                    "COPY in a query string whose statements go to several binds is not supported; send the COPY as its own query".into(),
                ),
            );
        }
        if self.client_status() == b'E' {
            return failed(self, ProxyError::InFailedTransaction);
        }
        let bind = match self.target(&analysis, piece) {
            Ok(d) => d.bind,
            Err(e) => return failed(self, e),
        };
        self.follow_search_path(&analysis);
        if let Err(e) = self.ensure_conn(bind, Join::Transaction).await {
            self.out_locals();
            return failed(self, e);
        }
        // a new connection's session parameters and the joining BEGIN are answered quietly
        self.finish_quiet(bind).await?;
        self.out_locals();
        let name = self.proxy.bind_name(bind).to_string();
        match &mut self.conns[bind] {
            Some(Conn::Translated(_)) => {
                let mut out = BytesMut::new();
                let r = match self.cancellable(bind) {
                    Some(t) => t.query(piece, &mut out).await,
                    None => Ok(()),
                };
                self.cancel_done();
                match tag {
                    Tag::Keep => self.out.extend_from_slice(&out),
                    Tag::Drop => self.out.extend_from_slice(&without_command_complete(&out)),
                }
                match r {
                    Ok(()) => Ok(Piece::Done),
                    Err(e) => failed(self, e),
                }
            }
            Some(Conn::Pg(lease)) => {
                lease
                    .conn
                    .wbuf
                    .extend_from_slice(super::query_frame(piece).raw());
                if let Err(e) = lease.conn.flush().await {
                    let reason = e.to_string();
                    self.backend_lost(bind, reason);
                    self.out_locals();
                    return Ok(Piece::Failed);
                }
                // the client may cancel the piece while bindproxy waits for it
                self.publish_pg_cancel(bind);
                let r = self.relay_piece(bind, tag).await;
                self.cancel_done();
                r
            }
            None => failed(
                self,
                ProxyError::BackendLost {
                    bind: name,
                    reason: "no connection".into(),
                },
            ),
        }
    }

    /// Relays a PostgreSQL bind's answers to one piece, up to (not including) its
    /// ReadyForQuery.
    async fn relay_piece(&mut self, bind: BindId, tag: Tag) -> Result<Piece, SessionError> {
        let mut result = Piece::Done;
        loop {
            if self.out.len() >= CLIENT_FLUSH_BYTES {
                self.write_client().await?;
            }
            let Some(Conn::Pg(lease)) = &mut self.conns[bind] else {
                return Ok(Piece::Failed);
            };
            let frame = match lease.conn.reader.next().await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    self.backend_lost(bind, "server closed the connection".into());
                    self.out_locals();
                    return Ok(Piece::Failed);
                }
                Err(e) => {
                    self.backend_lost(bind, e.to_string());
                    self.out_locals();
                    return Ok(Piece::Failed);
                }
            };
            match frame.tag() {
                b'Z' => {
                    let status = frame.body().first().copied().unwrap_or(b'I');
                    lease.conn.status = status;
                    return Ok(result);
                }
                b'E' => {
                    result = Piece::Failed;
                    self.out.extend_from_slice(frame.raw());
                }
                b'N' | b'A' | b'S' => self.relay_async(bind, frame),
                b'C' if tag == Tag::Drop => {}
                _ => self.out.extend_from_slice(frame.raw()),
            }
        }
    }

    /// Waits for the quiet answers a bind owes (its new connection's settings, a joining BEGIN).
    async fn finish_quiet(&mut self, bind: BindId) -> Result<(), SessionError> {
        while self.pending.iter().any(|p| p.bind() == Some(bind)) {
            self.flush_backends().await;
            let Some(Conn::Pg(lease)) = &mut self.conns[bind] else {
                return Ok(());
            };
            match lease.conn.reader.next().await {
                Ok(Some(f)) => self.on_backend_frame(bind, f),
                Ok(None) => self.backend_lost(bind, "server closed the connection".into()),
                Err(e) => self.backend_lost(bind, e.to_string()),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A pipeline outside BEGIN that reaches a second bind.
//
// PostgreSQL runs everything up to a Sync as one implicit transaction. When such a pipeline
// reaches a second bind, the binds it already used are turned into explicit blocks where they
// stand (a BEGIN executed inside an implicit transaction keeps its work, as in PostgreSQL), the
// new bind joins with BEGIN, and at the client's Sync bindproxy commits them all together.

/// The name of bindproxy's own prepared statement and portal for that BEGIN: a name no client
/// makes by accident, and closed again right away.
const PIPELINE_BEGIN: &[u8] = b"bindproxy.pipeline_begin";

impl Session {
    /// Before a pipeline message for `bind`: if the pipeline (outside BEGIN) already used other
    /// binds, they and `bind` become one transaction, committed at the Sync.
    pub(super) async fn join_pipeline(&mut self, bind: BindId) -> Result<(), ProxyError> {
        // a read replica's lease is never part of a transaction: its reads end at the Sync
        let proxy = &self.proxy;
        if self.tx.is_some()
            || !self
                .touched
                .iter()
                .any(|&b| b != bind && !proxy.is_replica_slot(b))
        {
            return Ok(());
        }
        if self.proxy.tx.mode == crate::config::CrossBind::Reject {
            // each bind commits its own part at the Sync, as before transactions spanned binds
            return Ok(());
        }
        self.open_transaction(Origin::Pipeline);
        for b in self.touched.clone() {
            if self.conns[b].is_none() || self.proxy.is_replica_slot(b) {
                continue;
            }
            let in_implicit = self.conns[b].as_ref().is_some_and(|c| c.status() != b'I');
            if let Some(t) = &mut self.tx {
                t.join(b);
            }
            match &mut self.conns[b] {
                Some(Conn::Pg(_)) => {
                    let raw = pipeline_begin_messages();
                    self.send(b, &raw);
                    // ParseComplete, BindComplete, CommandComplete, CloseComplete x2: not the
                    // client's
                    self.pending.push_back(Pending::Extended {
                        bind: b,
                        due: 5,
                        relay: false,
                    });
                }
                Some(Conn::Translated(_)) => {
                    // A MySQL bind whose pipeline already began a plain transaction cannot become
                    // an XA branch: it commits in one phase, as a last resource.
                    let xa = !in_implicit
                        && self.proxy.tx.mode == crate::config::CrossBind::TwoPhase
                        && self.proxy.capability(b) == Some(crate::tx::Capability::TwoPhase);
                    let branch = self.tx.as_ref().and_then(|t| t.branch_id(b));
                    if !xa {
                        if let Some(t) = &mut self.tx {
                            t.one_phase.push(b);
                        }
                    }
                    let name = self.proxy.bind_name(b).to_string();
                    let mut notices = BytesMut::new();
                    if let Some(c) = &mut self.conns[b] {
                        c.control(
                            super::conn::Control::Begin {
                                sql: "BEGIN",
                                xa: if xa { branch.as_deref() } else { None },
                            },
                            &name,
                            &mut notices,
                        )
                        .await?;
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    /// True when the open transaction is a pipeline's, ended by the client's next Sync.
    pub(super) fn in_pipeline_tx(&self) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|t| t.origin == Origin::Pipeline)
    }

    /// A pipeline message failed: the pipeline's transaction rolls back at the Sync.
    pub(super) fn pipeline_failed(&mut self) {
        if let Some(t) = &mut self.tx {
            if t.origin == Origin::Pipeline {
                t.failed = true;
            }
        }
    }

    /// The client's Sync ends a pipeline's transaction: every bind gets its Sync (nothing commits
    /// inside the blocks), then the transaction commits on all of them, or rolls back after an
    /// error; one ReadyForQuery. The caller has made sure no answers are due.
    pub(super) async fn finish_pipeline(&mut self) -> Result<(), SessionError> {
        self.skipping = false;
        self.portals.remove("");
        self.out_locals();
        let touched = std::mem::take(&mut self.touched);
        let mut out = BytesMut::new();
        for b in touched {
            match &mut self.conns[b] {
                Some(Conn::Pg(lease)) => {
                    lease
                        .conn
                        .wbuf
                        .extend_from_slice(Frame::new(b'S', b"").raw());
                    if let Err(e) = lease.conn.flush().await {
                        self.backend_lost(b, e.to_string());
                        continue;
                    }
                    self.relay_piece(b, Tag::Keep).await?;
                }
                Some(Conn::Translated(t)) => {
                    t.sync().await;
                    if let Some(e) = t.take_sync_error() {
                        e.write_to(&mut out);
                        self.pipeline_failed();
                    }
                }
                None => {}
            }
        }
        self.out_locals();
        if self.client_status() == b'E' {
            self.rollback_all(&mut out).await;
        } else if let Err(e) = self.commit(&mut out).await {
            e.write_to(&mut out);
        }
        self.tx = None;
        self.local(out, true);
        Ok(())
    }
}

/// Parse, Bind, Execute of `BEGIN` under bindproxy's own names, then Close of both.
fn pipeline_begin_messages() -> BytesMut {
    let mut raw = BytesMut::new();
    let mut parse = Vec::new();
    parse.extend_from_slice(PIPELINE_BEGIN);
    parse.push(0);
    parse.extend_from_slice(b"BEGIN\0\0\0");
    raw.extend_from_slice(Frame::new(b'P', &parse).raw());
    let mut bind = Vec::new();
    bind.extend_from_slice(PIPELINE_BEGIN);
    bind.push(0);
    bind.extend_from_slice(PIPELINE_BEGIN);
    bind.push(0);
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // no formats, no parameters, no result formats
    raw.extend_from_slice(Frame::new(b'B', &bind).raw());
    let mut exec = Vec::new();
    exec.extend_from_slice(PIPELINE_BEGIN);
    exec.push(0);
    exec.extend_from_slice(&[0, 0, 0, 0]);
    raw.extend_from_slice(Frame::new(b'E', &exec).raw());
    for kind in [b'S', b'P'] {
        let mut close = vec![kind];
        close.extend_from_slice(PIPELINE_BEGIN);
        close.push(0);
        raw.extend_from_slice(Frame::new(b'C', &close).raw());
    }
    raw
}
