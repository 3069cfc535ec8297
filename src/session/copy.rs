//! COPY FROM STDIN on a MySQL/SQLite bind, as the pump sees it: the client's CopyData, CopyDone
//! and CopyFail go to the bind's connection (`backend::translated`), which loads the rows; Sync
//! and Flush are ignored while the COPY waits for data, as PostgreSQL ignores them in copy-in mode
//! (libpq sends a Sync right behind an extended-protocol COPY).
//!
//! Owns: the routing of copy-in messages to a translated connection and the answers they get
//! (nothing for CopyData that loads fine; CommandComplete, an ErrorResponse, and ReadyForQuery
//! when the COPY came as a simple Query).
//!
//! Must never: answer a copy-in message of a PostgreSQL bind (those are relayed raw by the pump).

use bytes::BytesMut;

use super::Session;
use crate::backend::translated::session::CopyVia;
use crate::protocol::Frame;

impl Session {
    /// The COPY FROM STDIN a MySQL/SQLite bind of this session waits data for, and how it was
    /// sent.
    pub(super) fn translated_copy(&self) -> Option<CopyVia> {
        let b = self.copy_bind?;
        match &self.conns[b] {
            Some(super::conn::Conn::Translated(t)) => t.copy_in_progress(),
            _ => None,
        }
    }

    /// A CopyData / CopyDone / CopyFail for a MySQL/SQLite bind. Returns false when the COPY
    /// target is not such a bind (the pump relays the message raw). With no COPY in progress
    /// there (it failed already) the message is dropped, as PostgreSQL drops it.
    pub(super) async fn translated_copy_frame(&mut self, f: &Frame) -> bool {
        let Some(b) = self.copy_bind else {
            return false;
        };
        let Some(t) = self.translated(b) else {
            return false;
        };
        let Some(via) = t.copy_in_progress() else {
            return true;
        };
        let simple = via == CopyVia::Query;
        let mut out = BytesMut::new();
        let r = match f.tag() {
            b'd' => match t.copy_data(f.body()).await {
                Ok(()) => return true,
                Err(e) => Err(e),
            },
            b'c' => t.copy_done(&mut out).await,
            _ => {
                let body = f.body();
                let end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
                let message = String::from_utf8_lossy(&body[..end]).into_owned();
                Err(t.copy_fail(&message).await)
            }
        };
        self.translated_answer(b, out, r, simple);
        true
    }
}
