//! The one interface to a bind's connection inside a session, whatever the engine.
//!
//! Owns: [`Conn`] — a leased PostgreSQL connection (whose statements the session relays as raw
//! frames) or a MySQL/SQLite connection (which answers as PostgreSQL would) — and the transaction
//! control bindproxy runs on it itself ([`Control`]): BEGIN with the client's modes, savepoints,
//! phase 1 and 2 of two-phase commit, one-phase COMMIT and ROLLBACK. The transaction logic in
//! `session/txn.rs` drives participants through this interface only, never by engine.
//!
//! Must never: run a control statement on a PostgreSQL connection that still owes the client
//! answers (the caller waits until the session is quiet), or send anything but bindproxy's own
//! fixed statements with names it made (branch ids, folded savepoint names, quoted).

use bytes::BytesMut;

use crate::backend::pg::PgLease;
use crate::backend::translated::session::{Committed, Prepared};
use crate::backend::translated::TranslatedConn;
use crate::error::ProxyError;
use crate::protocol::messages::error_fields;

/// A backend connection leased to this session (one per bind it uses, so size matters little).
#[allow(clippy::large_enum_variant)]
pub(super) enum Conn {
    /// A PostgreSQL bind: frames are relayed.
    Pg(PgLease),
    /// A MySQL/MariaDB or SQLite bind: bindproxy runs each message itself.
    Translated(Box<TranslatedConn>),
}

/// A transaction-control step bindproxy runs on a participant.
#[derive(Debug, Clone, Copy)]
pub(super) enum Control<'a> {
    /// Open the transaction with the client's BEGIN text; `xa` is the branch id a MySQL bind
    /// starts its XA transaction with (two-phase commit).
    Begin {
        sql: &'a str,
        xa: Option<&'a str>,
    },
    /// A statement of the transaction's preamble (SET TRANSACTION …, SET LOCAL …).
    Run(&'a str),
    Savepoint(&'a str),
    Release(&'a str),
    RollbackTo(&'a str),
    /// Phase 1 under this branch id.
    Prepare(&'a str),
    CommitPrepared(&'a str),
    RollbackPrepared(&'a str),
    Commit,
    Rollback,
}

/// What a control step did, when that matters to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    /// COMMIT of a failed transaction: the server rolled it back.
    RolledBack,
    /// Phase 1 of a participant that had nothing to prepare (a MySQL bind that never started its
    /// XA branch): it is finished.
    NothingPrepared,
}

impl Conn {
    pub(super) fn pg(&mut self) -> Option<&mut PgLease> {
        match self {
            Conn::Pg(l) => Some(l),
            Conn::Translated(_) => None,
        }
    }

    /// Transaction status: b'I', b'T' or b'E'.
    pub(super) fn status(&self) -> u8 {
        match self {
            Conn::Pg(l) => l.conn.status,
            Conn::Translated(t) => t.status(),
        }
    }

    /// Runs one control step. Notices the server sends meanwhile go to `notices` (for the
    /// client). `bind` names the bind in errors.
    pub(super) async fn control(
        &mut self,
        step: Control<'_>,
        bind: &str,
        notices: &mut BytesMut,
    ) -> Result<Outcome, ProxyError> {
        match self {
            Conn::Pg(lease) => pg_control(lease, step, bind, notices).await,
            Conn::Translated(t) => translated_control(t, step, notices).await,
        }
    }
}

/// A savepoint name as an identifier (the name is already folded as PostgreSQL folds it).
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn pg_control(
    lease: &mut PgLease,
    step: Control<'_>,
    bind: &str,
    notices: &mut BytesMut,
) -> Result<Outcome, ProxyError> {
    let sql = match step {
        Control::Begin { sql, .. } | Control::Run(sql) => sql.to_owned(),
        Control::Savepoint(n) => format!("SAVEPOINT {}", ident(n)),
        Control::Release(n) => format!("RELEASE SAVEPOINT {}", ident(n)),
        Control::RollbackTo(n) => format!("ROLLBACK TO SAVEPOINT {}", ident(n)),
        Control::Prepare(b) => format!("PREPARE TRANSACTION '{b}'"),
        Control::CommitPrepared(b) => format!("COMMIT PREPARED '{b}'"),
        Control::RollbackPrepared(b) => format!("ROLLBACK PREPARED '{b}'"),
        Control::Commit => "COMMIT".into(),
        Control::Rollback => "ROLLBACK".into(),
    };
    let tag = pg_run(lease, &sql, bind, notices).await?;
    Ok(match step {
        Control::Commit if tag == "ROLLBACK" => Outcome::RolledBack,
        _ => Outcome::Done,
    })
}

/// Runs one simple query on a PostgreSQL connection that owes nothing, and waits for its
/// ReadyForQuery. Returns the last CommandComplete tag, or the first error.
pub(super) async fn pg_run(
    lease: &mut PgLease,
    sql: &str,
    bind: &str,
    notices: &mut BytesMut,
) -> Result<String, ProxyError> {
    let lost = |reason: String| ProxyError::BackendLost {
        bind: bind.to_owned(),
        reason,
    };
    lease
        .conn
        .wbuf
        .extend_from_slice(super::query_frame(sql).raw());
    if let Err(e) = lease.conn.flush().await {
        lease.broken = true;
        return Err(lost(e.to_string()));
    }
    let mut error = None;
    let mut tag = String::new();
    loop {
        let f = match lease.conn.reader.next().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                lease.broken = true;
                return Err(lost("server closed the connection".into()));
            }
            Err(e) => {
                lease.broken = true;
                return Err(lost(e.to_string()));
            }
        };
        match f.tag() {
            b'E' if error.is_none() => {
                let (code, message, detail) = error_fields(f.body());
                error = Some(ProxyError::Backend {
                    code,
                    message,
                    detail,
                });
            }
            b'N' => notices.extend_from_slice(f.raw()),
            b'C' => {
                tag = String::from_utf8_lossy(f.body())
                    .trim_end_matches('\0')
                    .to_owned();
            }
            b'Z' => {
                lease.conn.status = f.body().first().copied().unwrap_or(b'I');
                return match error {
                    Some(e) => Err(e),
                    None => Ok(tag),
                };
            }
            _ => {}
        }
    }
}

async fn translated_control(
    t: &mut TranslatedConn,
    step: Control<'_>,
    _notices: &mut BytesMut,
) -> Result<Outcome, ProxyError> {
    match step {
        Control::Begin { sql, xa } => t.begin(sql, xa).await?,
        Control::Run(sql) => {
            // the statement's own answer (its tag) is not for the client
            t.query(sql, &mut BytesMut::new()).await?;
        }
        Control::Savepoint(n) => t.savepoint(n).await?,
        Control::Release(n) => t.release_savepoint(n).await?,
        Control::RollbackTo(n) => t.rollback_to_savepoint(n).await?,
        Control::Prepare(_) => {
            return Ok(match t.prepare().await? {
                Prepared::Branch => Outcome::Done,
                Prepared::Nothing => Outcome::NothingPrepared,
            })
        }
        Control::CommitPrepared(_) => t.commit_prepared().await?,
        Control::RollbackPrepared(_) => t.rollback_prepared().await?,
        Control::Commit => {
            return Ok(match t.commit().await? {
                Committed::Committed => Outcome::Done,
                Committed::RolledBack => Outcome::RolledBack,
            })
        }
        Control::Rollback => t.rollback().await?,
    }
    Ok(Outcome::Done)
}
