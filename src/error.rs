//! The errors a session can report to its client, and their one mapping to SQLSTATE.
//!
//! Every module returns typed errors; this is the edge where they become PostgreSQL ErrorResponses.
//! Messages name the bind and the table so that a human can act on them.

use bytes::BytesMut;

use crate::protocol::messages::{error_response, ErrorFields};
use crate::router::RouteError;
use crate::sql::AnalysisError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The router refused the statement (cross-bind, undeterminable, ambiguous, bad hint).
    #[error("{0}")]
    Route(#[from] RouteError),
    /// The statement could not be analysed (syntax, too deep, too large, escape strings off).
    #[error("{0}")]
    Analysis(#[from] AnalysisError),
    /// A transaction open on one bind met a statement for another.
    #[error("transaction is open on bind \"{open}\", but this statement goes to bind \"{wanted}\" ({tables}); a transaction cannot span binds")]
    CrossBindTransaction {
        open: String,
        wanted: String,
        tables: String,
    },
    /// `transactions.cross_bind: sequential`: a participant's COMMIT failed after others had
    /// committed.
    #[error("COMMIT failed on bind \"{failed}\": {cause}; committed on {}; rolled back on {}", list_or_none(.committed), list_or_none(.rolled_back))]
    PartialCommit {
        failed: String,
        cause: Box<ProxyError>,
        committed: Vec<String>,
        rolled_back: Vec<String>,
    },
    /// The decision to commit could not be made durable: every participant was rolled back.
    #[error(
        "could not record the commit decision ({0}); the transaction was rolled back on every bind"
    )]
    DecisionNotDurable(String),
    /// SAVEPOINT, RELEASE or ROLLBACK TO outside a transaction block (PostgreSQL's wording).
    #[error("{0} can only be used in transaction blocks")]
    NoTransactionBlock(&'static str),
    #[error("savepoint \"{0}\" does not exist")]
    NoSuchSavepoint(String),
    /// Emulated for binds that have no aborted-transaction state of their own.
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    #[error("cannot connect to bind \"{bind}\": {reason}")]
    BackendUnavailable { bind: String, reason: String },
    #[error("connection to bind \"{bind}\" was lost: {reason}")]
    BackendLost { bind: String, reason: String },
    #[error(
        "no connection to bind \"{bind}\" became free within {waited_ms} ms (pool_size {size})"
    )]
    PoolExhausted {
        bind: String,
        size: usize,
        waited_ms: u64,
    },
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The client kept sending while its next message had to wait for another bind's answers,
    /// beyond what a session may buffer.
    #[error("client sent more than {limit} bytes while its pipeline waited for bind \"{bind}\"; closing the session")]
    ClientFlood { bind: String, limit: usize },
    #[error("{0}")]
    FeatureNotSupported(String),
    #[error("prepared statement \"{0}\" already exists")]
    DuplicateStatement(String),
    #[error("prepared statement \"{0}\" does not exist")]
    UnknownStatement(String),
    #[error("portal \"{0}\" does not exist")]
    UnknownPortal(String),
    /// An error from a MySQL/SQLite bind, already mapped to a PostgreSQL SQLSTATE.
    #[error("{message}")]
    Backend {
        code: String,
        message: String,
        detail: Option<String>,
    },
    /// DDL on a MySQL bind inside a transaction that already ran statements there: MySQL would
    /// commit them implicitly (an XA branch refuses DDL outright). Nothing ran.
    #[error("cannot run DDL on bind \"{bind}\" inside this transaction: MySQL would implicitly commit the transaction's earlier statements on that bind")]
    DdlInMySqlTransaction { bind: String },
    /// bindproxy is shutting down: a session ends (PostgreSQL's words for a terminated backend).
    #[error("terminating connection due to administrator command")]
    AdminShutdown,
    /// A CancelRequest for a statement that waited for a paused bind (PostgreSQL's words).
    #[error("canceling statement due to user request")]
    QueryCanceled,
    /// The admin console's `KILL` ended this session.
    #[error("terminating connection due to administrator command (KILL from the bindproxy admin console)")]
    Killed,
    /// Database `bindproxy` is the admin console, and this user is not in `admin_users`.
    #[error("user \"{user}\" may not use the admin console: database \"bindproxy\" is bindproxy's admin console, open to the users of `admin_users` only")]
    NotAdmin { user: String },
    /// A console command that cannot be answered.
    #[error("{0}")]
    Console(#[from] crate::admin::console::ConsoleError),
    /// A reload dropped the bind this statement goes to (its tables are remembered: see
    /// `reload.rs`), or the connection a prepared statement lived on went with a bind a reload
    /// replaced.
    #[error("bind \"{bind}\" was {why} by a configuration reload")]
    BindRetired {
        bind: String,
        why: crate::registry::Retired,
    },
    /// bindproxy is shutting down: a new connection is refused (PostgreSQL's words).
    #[error("the database system is shutting down")]
    ShuttingDown,
    /// COPY on a MySQL/SQLite bind: a bad statement, bad data, or the client's CopyFail.
    #[error("{0}")]
    Copy(#[from] crate::backend::translated::copy::CopyError),
}

/// `"a", "b"`, or `no bind`.
fn list_or_none(binds: &[String]) -> String {
    if binds.is_empty() {
        "no bind".into()
    } else {
        binds
            .iter()
            .map(|b| format!("\"{b}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl ProxyError {
    pub fn sqlstate(&self) -> &str {
        match self {
            ProxyError::CrossBindTransaction { .. } | ProxyError::FeatureNotSupported(_) => "0A000",
            ProxyError::Route(RouteError::UnknownHintBind(_)) => "42704",
            ProxyError::Route(_) => "0A000",
            ProxyError::Analysis(e) => match e {
                AnalysisError::Syntax { .. } | AnalysisError::BadHint { .. } => "42601",
                AnalysisError::TooDeep => "54001",
                AnalysisError::TooLarge { .. } => "54000",
                AnalysisError::NulByte => "22021",
                AnalysisError::EscapeStringsOff => "0A000",
            },
            ProxyError::InFailedTransaction => "25P02",
            ProxyError::NoTransactionBlock(_) => "25P01",
            ProxyError::NoSuchSavepoint(_) => "3B001",
            ProxyError::PartialCommit { cause, .. } => cause.sqlstate(),
            ProxyError::DecisionNotDurable(_) => "58030",
            ProxyError::BackendUnavailable { .. } => "08001",
            ProxyError::BackendLost { .. } => "08006",
            ProxyError::PoolExhausted { .. } => "53300",
            ProxyError::Protocol(_) => "08P01",
            ProxyError::ClientFlood { .. } => "54000",
            ProxyError::DuplicateStatement(_) => "42P05",
            ProxyError::UnknownStatement(_) => "26000",
            ProxyError::UnknownPortal(_) => "34000",
            ProxyError::Backend { code, .. } => code,
            ProxyError::DdlInMySqlTransaction { .. } => "0A000",
            ProxyError::AdminShutdown => "57P01",
            ProxyError::ShuttingDown => "57P03",
            ProxyError::Killed => "57P01",
            ProxyError::QueryCanceled => "57014",
            ProxyError::NotAdmin { .. } => "28000",
            ProxyError::Console(e) => {
                use crate::admin::console::ConsoleError;
                match e {
                    ConsoleError::Unknown { .. } | ConsoleError::BadArgument(_) => "42601",
                    ConsoleError::UnknownBind(_) | ConsoleError::UnknownClient(_) => "42704",
                    ConsoleError::NoParameters => "08P01",
                    ConsoleError::Reload(_) => "F0000",
                    ConsoleError::DecisionLog(_) => "58030",
                }
            }
            // database_dropped: an operator took the database away; the session carries on
            ProxyError::BindRetired { .. } => "57P04",
            ProxyError::Copy(e) => {
                use crate::backend::translated::copy::CopyError;
                match e {
                    CopyError::FileNotSupported { .. } | CopyError::Unsupported(_) => "0A000",
                    CopyError::Option(_) => "42601",
                    CopyError::BadData { .. } => "22P04",
                    CopyError::Value { code, .. } => code,
                    CopyError::ClientFailed(_) => "57014",
                }
            }
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            ProxyError::Route(RouteError::CrossBind(_)) => Some(
                "Each statement must touch tables of one bind only; split it, or map the tables to the same bind in the config.",
            ),
            ProxyError::Route(RouteError::Ambiguous { .. }) => Some(
                "Qualify the name with its schema, or set a search_path on which only one of these schemas appears.",
            ),
            ProxyError::Route(RouteError::HintContradicts { .. }) => {
                Some("A routing hint is only for statements whose tables bindproxy cannot determine; remove it.")
            }
            ProxyError::Analysis(AnalysisError::EscapeStringsOff) => Some(
                "Keep standard_conforming_strings on (the default) and write backslash escapes as E'…' strings.",
            ),
            ProxyError::Analysis(AnalysisError::TooDeep) => Some(
                "Flatten the expression (IN (…), = ANY($1), or fewer nested subqueries).",
            ),
            ProxyError::Analysis(AnalysisError::TooLarge { .. }) => Some(
                "Split the statement, or load bulk data with COPY or multi-row INSERT … VALUES of literals.",
            ),
            ProxyError::CrossBindTransaction { .. } => {
                Some("Roll back, then run the statements of each bind in their own transaction.")
            }
            ProxyError::PoolExhausted { .. } => {
                Some("Raise the bind's pool_size or checkout_timeout_ms, or close idle sessions.")
            }
            ProxyError::Console(crate::admin::console::ConsoleError::Unknown { .. }) => {
                Some(crate::admin::console::COMMANDS_HINT)
            }
            ProxyError::NotAdmin { .. } => {
                Some("Connect to another database, or ask for the user to be added to admin_users.")
            }
            ProxyError::BindRetired {
                why: crate::registry::Retired::Removed,
                ..
            } => Some(
                "Map the tables to a bind of the configuration (then reload), or restart bindproxy.",
            ),
            ProxyError::BindRetired {
                why: crate::registry::Retired::Replaced,
                ..
            } => Some("Prepare the statement again: it runs on the bind's new connections."),
            ProxyError::DdlInMySqlTransaction { .. } => Some(
                "Run DDL before the transaction's other statements on that bind (it is then committed at once), or outside the transaction.",
            ),
            _ => None,
        }
    }

    /// Appends this error as an ErrorResponse.
    pub fn write_to(&self, out: &mut BytesMut) {
        self.write_with_severity(out, "ERROR")
    }

    pub fn write_with_severity(&self, out: &mut BytesMut, severity: &str) {
        let message = self.to_string();
        let detail = match self {
            ProxyError::Backend { detail, .. } => detail.as_deref(),
            ProxyError::Copy(e) => e.context(),
            _ => None,
        };
        error_response(
            out,
            &ErrorFields {
                severity,
                code: self.sqlstate(),
                message: &message,
                detail,
                hint: self.hint(),
            },
        );
    }
}
