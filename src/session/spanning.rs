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
use crate::router::RouteError;
use crate::sql::{split_statements, Analysis, StatementKind};
use crate::proxy::BindId;
use crate::tx::Origin;

/// What became of one piece.
enum Piece {
    Done,
    Failed,
}

impl Session {
    /// True when a multi-statement Query must run piece by piece: its statements go to several
    /// binds, or it ends or starts transactions while binds other than its own take part.
    pub(super) fn spans_binds(&self, analysis: &Analysis, routed: Result<BindId, &ProxyError>) -> bool {
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
                let controls = analysis.statements.iter().any(|s| {
                    matches!(
                        s.kind,
                        StatementKind::Begin
                            | StatementKind::Commit
                            | StatementKind::Rollback
                            | StatementKind::Savepoint
                            | StatementKind::Release
                            | StatementKind::RollbackTo
                    )
                });
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
            Ok(p) => p,
            Err(e) => {
                self.refuse(ProxyError::Analysis(e), true);
                return Ok(());
            }
        };
        self.out_locals();
        if self.tx.is_none() {
            self.open_implicit();
        }
        let mut failed = false;
        for piece in pieces {
            if self.tx.is_none() {
                // after a COMMIT or ROLLBACK inside the string, the rest is a new implicit one
                self.open_implicit();
            }
            match self.run_piece(piece).await? {
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
    async fn run_piece(&mut self, piece: &str) -> Result<Piece, SessionError> {
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
        let name = self.proxy.bind_names[bind].clone();
        match &mut self.conns[bind] {
            Some(Conn::Translated(t)) => {
                let mut out = BytesMut::new();
                let r = t.query(piece, &mut out).await;
                self.out.extend_from_slice(&out);
                match r {
                    Ok(()) => Ok(Piece::Done),
                    Err(e) => failed(self, e),
                }
            }
            Some(Conn::Pg(lease)) => {
                let mut body = Vec::with_capacity(piece.len() + 1);
                body.extend_from_slice(piece.as_bytes());
                body.push(0);
                lease
                    .conn
                    .wbuf
                    .extend_from_slice(Frame::new(b'Q', &body).raw());
                if let Err(e) = lease.conn.flush().await {
                    let reason = e.to_string();
                    self.backend_lost(bind, reason);
                    self.out_locals();
                    return Ok(Piece::Failed);
                }
                self.relay_piece(bind).await
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
    async fn relay_piece(&mut self, bind: BindId) -> Result<Piece, SessionError> {
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
