//! Errors of the translator.
//!
//! Owns: the error type every translation step returns. Must never: carry anything but text (no AST, no
//! engine handles), so the caller can turn it into an ErrorResponse (`Parse` → 42601, `Unsupported` → 0A000,
//! `UnsafeRendering` → 0A000, `TooDeep` → 54001, `TooLarge` → 54000, `StatementCount` → 42601, `InvalidText` → 22P02,
//! `OutOfRange` → 22003, `ValueTooLong` → 22001, `CannotCast` → 42804).

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
    /// The rendered text would not be read back by the engine as the translated statement (a comment,
    /// a second statement, a literal that does not come out whole): refused before it runs
    /// (SQLSTATE 0A000). The text says what was found.
    #[error("the statement could not be rendered safely ({0})")]
    UnsafeRendering(String),
    /// A literal PostgreSQL would refuse as input for its type (`'abc'::int`: SQLSTATE 22P02), found
    /// while translating, before anything runs.
    #[error("{0}")]
    InvalidText(String),
    /// A literal outside its type's range (`'99999999999'::int`: SQLSTATE 22003).
    #[error("{0}")]
    OutOfRange(String),
    /// A relation the statement names is not on the bind (SQLSTATE 42P01).
    #[error("relation \"{0}\" does not exist")]
    NoSuchRelation(String),
    /// A column the statement names is not in its table (SQLSTATE 42703).
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    NoSuchColumn { table: String, column: String },
    /// A value longer than the column's new `varchar(n)` (SQLSTATE 22001).
    #[error("{0}")]
    ValueTooLong(String),
    /// `ALTER COLUMN … TYPE` without `USING` where PostgreSQL has no assignment cast (SQLSTATE 42804).
    #[error("column \"{column}\" cannot be cast automatically to type {ty}")]
    CannotCast { column: String, ty: String },
    /// `DROP NOT NULL` of a primary-key column (SQLSTATE 42P16).
    #[error("column \"{0}\" is in a primary key")]
    InPrimaryKey(String),
    /// The statement nests deeper than the translator allows (SQLSTATE 54001). `depth` is the
    /// estimate of [`crate::translate::nesting`], `limit` the bound.
    #[error("statement too deeply nested (about {depth} levels of operators and parentheses; the limit is {limit})")]
    TooDeep { depth: usize, limit: usize },
    /// The statement text is longer than the translator takes in one piece (SQLSTATE 54000).
    #[error("statement too large ({bytes} bytes; the limit is {limit} bytes)")]
    TooLarge { bytes: usize, limit: usize },
    /// The parser of the translator reads a different number of statements than PostgreSQL's scanner
    /// found in the text (SQLSTATE 42601).
    #[error("the statement reads as {found} statements to the translator's parser, where PostgreSQL sees one")]
    StatementCount { found: usize },
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
            TranslateError::Unsupported { .. } | TranslateError::UnsafeRendering(_) => "0A000",
            TranslateError::TooDeep { .. } => "54001",
            TranslateError::TooLarge { .. } => "54000",
            TranslateError::StatementCount { .. } => "42601",
            TranslateError::InvalidText(_) => "22P02",
            TranslateError::OutOfRange(_) => "22003",
            TranslateError::NoSuchColumn { .. } => "42703",
            TranslateError::NoSuchRelation(_) => "42P01",
            TranslateError::InPrimaryKey(_) => "42P16",
            TranslateError::ValueTooLong(_) => "22001",
            TranslateError::CannotCast { .. } => "42804",
        }
    }
}

/// Result alias used throughout the translator.
pub type Result<T> = std::result::Result<T, TranslateError>;
