//! Errors of the translator.
//!
//! Owns: the error type every translation step returns. Must never: carry anything but text (no AST, no
//! engine handles), so the caller can turn it into an ErrorResponse (`Parse` → 42601, `Unsupported` → 0A000).

/// Why a PostgreSQL statement could not be re-rendered for a MySQL or SQLite bind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The text is not PostgreSQL SQL that the parser understands (SQLSTATE 42601).
    #[error("syntax error: {0}")]
    Parse(String),
    /// The statement is valid PostgreSQL but uses a construct outside the supported subset for the
    /// target (SQLSTATE 0A000). `construct` is human readable, e.g. "DISTINCT ON" or "FOR UPDATE on SQLite".
    #[error("{construct} is not supported on this bind")]
    Unsupported { construct: String },
    /// The statement is structurally invalid in a way PostgreSQL would also reject (e.g. `$0`, or an
    /// INSERT whose VALUES rows do not match its column list) (SQLSTATE 42601/42P02).
    #[error("invalid statement: {0}")]
    Invalid(String),
}

impl TranslateError {
    /// Shorthand for [`TranslateError::Unsupported`].
    pub fn unsupported(construct: impl Into<String>) -> Self {
        TranslateError::Unsupported {
            construct: construct.into(),
        }
    }

    /// The PostgreSQL SQLSTATE a client expects for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            TranslateError::Parse(_) | TranslateError::Invalid(_) => "42601",
            TranslateError::Unsupported { .. } => "0A000",
        }
    }
}

/// Result alias used throughout the translator.
pub type Result<T> = std::result::Result<T, TranslateError>;
