//! Backend → client: relaying the frames of PostgreSQL binds in request order.
//!
//! Frames are looked at only by tag; their bytes reach the client unchanged, except
//! NotificationResponse, whose sender pid is the proxy's when the notification came from this
//! session's own connection (so clients can tell their own notifications apart).

use bytes::{BufMut, BytesMut};

use super::conn::Conn;
use super::{OwnErrors, Pending, Request, Session, SessionError, CLIENT_FLUSH_BYTES};
use crate::error::ProxyError;
use crate::frontend::logsafe::Escaped;
use crate::protocol::messages::{self, error_code_and_severity};
use crate::protocol::Frame;
use crate::proxy::BindId;

impl Session {
    /// Handles every backend frame already buffered, and every local answer that has come to
    /// the head of the queue.
    pub(super) async fn drain_backends(&mut self) -> Result<(), SessionError> {
        loop {
            if self.out.len() >= CLIENT_FLUSH_BYTES {
                self.write_client().await?;
            }
            if let Some(Pending::Local { .. }) = self.pending.front() {
                if let Some(Pending::Local { bytes, ready }) = self.pending.pop_front() {
                    self.out.extend_from_slice(&bytes);
                    if ready {
                        let status = self.client_status();
                        messages::ready_for_query(&mut self.out, status);
                    }
                }
                continue;
            }
            let Some(bind) = self.head_bind() else {
                self.drain_idle();
                return Ok(());
            };
            let next = match self.conns[bind].as_mut() {
                Some(Conn::Pg(l)) => l.conn.reader.try_next(),
                _ => {
                    self.backend_lost(bind, "no connection".into());
                    continue;
                }
            };
            match next {
                Ok(Some(frame)) => self.on_backend_frame(bind, frame),
                Ok(None) => return Ok(()),
                Err(e) => self.backend_lost(bind, e.to_string()),
            }
        }
    }

    /// With no responses due, a backend may still send notices, notifications and parameter
    /// changes; anything else means the connection is broken.
    fn drain_idle(&mut self) {
        for bind in self.conns.keys() {
            while let Some(l) = self.conns[bind].as_mut().and_then(Conn::pg) {
                match l.conn.reader.try_next() {
                    Ok(Some(f)) => match f.tag() {
                        b'N' | b'A' | b'S' => self.relay_async(bind, f),
                        // An idle connection only errors when the server ends it (shutdown,
                        // idle timeout): the client hears of it only if its transaction was there.
                        b'E' => {
                            let reason = crate::backend::pg::conn::error_message(f.body());
                            self.backend_lost(bind, reason);
                        }
                        other => self.backend_lost(
                            bind,
                            format!("unexpected message '{}' while idle", other as char),
                        ),
                    },
                    Ok(None) => break,
                    Err(e) => self.backend_lost(bind, e.to_string()),
                }
            }
        }
    }

    /// NoticeResponse, NotificationResponse, ParameterStatus: may come at any time.
    pub(super) fn relay_async(&mut self, bind: BindId, f: Frame) {
        match f.tag() {
            b'S' => {
                let mut parts = f.body().split(|&b| b == 0);
                let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                if self.shown.get(&name) != Some(&value) {
                    self.out.extend_from_slice(f.raw());
                    self.shown.insert(name, value);
                }
            }
            b'A' => {
                let body = f.body();
                let backend_pid = match &self.conns[bind] {
                    Some(Conn::Pg(l)) => l.conn.backend_pid,
                    _ => 0,
                };
                let sender = body
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                if sender == backend_pid && body.len() >= 4 {
                    let mut rewritten = BytesMut::with_capacity(f.raw().len());
                    rewritten.put_u8(b'A');
                    rewritten.put_u32(body.len() as u32 + 4);
                    rewritten.put_i32(self.registration.pid);
                    rewritten.put_slice(&body[4..]);
                    self.out.extend_from_slice(&rewritten);
                } else {
                    self.out.extend_from_slice(f.raw());
                }
            }
            _ => self.out.extend_from_slice(f.raw()),
        }
    }

    /// One frame from the bind at the head of the queue.
    pub(super) fn on_backend_frame(&mut self, bind: BindId, f: Frame) {
        let tag = f.tag();
        if matches!(tag, b'N' | b'A' | b'S') {
            if !matches!(self.pending.front(), Some(Pending::Quiet { .. })) || tag == b'S' {
                self.relay_async(bind, f);
            }
            return;
        }
        if tag == b'Z' {
            let status = f.body().first().copied().unwrap_or(b'I');
            // bindproxy's own statements (session parameters, a joining BEGIN, a forced failure)
            // do not move the client's transaction: the session already knows what they do.
            let own = matches!(
                self.pending.iter().find(|p| p.bind().is_some()),
                Some(Pending::Quiet { .. })
            );
            if own {
                if let Some(l) = self.conns[bind].as_mut().and_then(Conn::pg) {
                    l.conn.status = status;
                }
            } else {
                self.set_status(bind, status);
            }
        }
        if tag == b'E' {
            // FATAL or PANIC: the server is closing this connection. The client's own connection
            // lives on, so it gets bindproxy's "connection lost" error instead of a FATAL.
            if let (_, Some("FATAL" | "PANIC")) = error_code_and_severity(f.body()) {
                let reason = crate::backend::pg::conn::error_message(f.body());
                self.backend_lost(bind, reason);
                return;
            }
            let own = matches!(
                self.pending.iter().find(|p| p.bind().is_some()),
                Some(Pending::Quiet { .. })
            );
            if !own {
                self.observe_backend_error(bind, f.body());
            }
        }
        let Some(head) = self.pending.iter_mut().find(|p| p.bind().is_some()) else {
            return;
        };
        match head {
            Pending::Extended { due, relay, .. } => {
                if *relay || tag == b'E' {
                    self.out.extend_from_slice(f.raw());
                }
                match tag {
                    b'E' => {
                        self.pop_head_entry();
                        self.after_extended_error(bind);
                    }
                    b'1' | b'2' | b'3' | b't' | b'T' | b'n' | b'C' | b'I' | b's' => {
                        *due = due.saturating_sub(1);
                        if *due == 0 {
                            self.pop_head_entry();
                        }
                    }
                    b'G' | b'W' => self.copy_bind = Some(bind),
                    b'c' => self.copy_finished(bind),
                    b'Z' => {
                        // A ReadyForQuery nobody asked for: the connection is out of step.
                        self.backend_lost(bind, "unexpected ReadyForQuery".into());
                    }
                    _ => {}
                }
            }
            Pending::UntilReady { emit, .. } => {
                let emit = *emit;
                match tag {
                    b'Z' => {
                        self.pop_head_entry();
                        self.copy_finished(bind);
                        if emit {
                            let status = self.client_status();
                            messages::ready_for_query(&mut self.out, status);
                        }
                    }
                    b'G' | b'W' => {
                        self.copy_bind = Some(bind);
                        self.out.extend_from_slice(f.raw());
                    }
                    b'C' => {
                        // The client's own DISCARD ALL / DEALLOCATE ALL dropped every prepared
                        // statement of that connection: forget where they lived.
                        if matches!(f.body(), b"DISCARD ALL\0" | b"DEALLOCATE ALL\0") {
                            self.forget_statements_on(bind);
                        }
                        self.out.extend_from_slice(f.raw());
                    }
                    _ => self.out.extend_from_slice(f.raw()),
                }
            }
            Pending::Quiet { ready, errors, .. } => {
                if tag == b'Z' {
                    *ready -= 1;
                    if *ready == 0 {
                        self.pop_head_entry();
                    }
                } else if tag == b'E' {
                    let errors = *errors;
                    let name = &self.proxy.bind_name(bind);
                    let message = crate::backend::pg::conn::error_message(f.body());
                    tracing::debug!(bind = %name, "bindproxy's own statement failed: {}", Escaped(&message));
                    if errors == OwnErrors::Warn {
                        let (code, message, _) = messages::error_fields(f.body());
                        let e = ProxyError::Backend {
                            code,
                            message,
                            detail: None,
                        };
                        super::replay_warning(&mut self.out, name, &e);
                    }
                }
            }
            Pending::Local { .. } => {}
        }
    }

    /// Forgets the prepared statements and portals that lived on `bind`.
    pub(super) fn forget_statements_on(&mut self, bind: BindId) {
        self.statements.retain(|_, s| {
            s.prepared_on.retain(|&b| b != bind);
            !s.prepared_on.is_empty()
                || s.control.is_some()
                || s.floating.is_some()
                || s.reparse.is_some()
        });
        self.portals
            .retain(|_, p| !matches!(p, super::Portal::Bind(b) if *b == bind));
        self.sql_prepared.retain(|_, b| *b != bind);
    }

    /// A COPY on `bind` ended. CopyData the client already pipelined for a later statement of the
    /// same bind must still go there, so the COPY target is kept while that bind owes answers.
    fn copy_finished(&mut self, bind: BindId) {
        if !self.pending.iter().any(|p| p.bind() == Some(bind)) {
            self.copy_bind = None;
        }
    }

    /// Removes the first entry that waits on a backend (local answers before it were written).
    fn pop_head_entry(&mut self) {
        if let Some(i) = self.pending.iter().position(|p| p.bind().is_some()) {
            self.pending.remove(i);
        }
    }

    /// After an ErrorResponse in a pipeline the backend skips to Sync, and so does the session:
    /// answers for the skipped messages will not come. That includes a simple Query sent before
    /// the Sync (PostgreSQL ignores it too, so it gets no ReadyForQuery). What comes after the
    /// client's Sync is answered normally.
    fn after_extended_error(&mut self, bind: BindId) {
        self.skip_until_sync();
        self.pipeline_failed();
        let mut before_sync = true;
        self.pending.retain(|p| {
            if !before_sync {
                return true;
            }
            match p {
                Pending::Extended { bind: b, .. } => *b != bind,
                Pending::UntilReady {
                    bind: b,
                    answers: Request::Query,
                    ..
                } => *b != bind,
                Pending::UntilReady {
                    bind: b,
                    answers: Request::Sync,
                    ..
                } => {
                    before_sync = *b != bind;
                    true
                }
                Pending::Local { ready, .. } => *ready,
                Pending::Quiet { .. } => true,
            }
        });
    }

    /// Skips the client's messages up to its next Sync, unless that Sync has already been read
    /// (its ReadyForQuery is queued).
    pub(super) fn skip_until_sync(&mut self) {
        let sync_read = self.pending.iter().any(|p| {
            matches!(
                p,
                Pending::UntilReady {
                    answers: Request::Sync,
                    ..
                } | Pending::Local { ready: true, .. }
            )
        });
        if !sync_read {
            self.skipping = true;
        }
    }

    /// Tracks the transaction from a bind's ReadyForQuery.
    fn set_status(&mut self, bind: BindId, status: u8) {
        if let Some(l) = self.conns[bind].as_mut().and_then(Conn::pg) {
            l.conn.status = status;
        }
        self.follow_status(bind, status);
    }

    /// Moves the session's transaction along with a bind's status (from its ReadyForQuery, or
    /// a MySQL/SQLite connection's after a Query or Sync): a bind that opened a transaction the
    /// client began itself joins the session's; one that ended it leaves. With no participant
    /// left, the transaction is over.
    pub(super) fn follow_status(&mut self, bind: BindId, status: u8) {
        if status == b'E' {
            self.search_path.transaction_failed();
        }
        match status {
            b'T' | b'E' => {
                if !self.tx.as_ref().is_some_and(|t| t.has(bind)) {
                    self.adopt_transaction(bind);
                }
            }
            _ => {
                let Some(t) = &mut self.tx else { return };
                if !t.has(bind) {
                    return;
                }
                t.participants.retain(|p| p.bind != bind);
                if t.participants.is_empty() {
                    self.tx = None;
                    // the client's own COMMIT/ROLLBACK, relayed to the only participant
                    crate::metrics::transaction_ended(crate::metrics::Participants::One);
                }
            }
        }
    }
}
