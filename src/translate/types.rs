//! PostgreSQL type names → MySQL / SQLite type names.
//!
//! Owns: classifying a parsed PostgreSQL `DataType` into the supported set, and naming that type for
//! each target (column DDL and CAST targets), plus the reverse lookup the executor uses to map a stored
//! column back to its PostgreSQL type. Must never: guess for a type outside the set (it returns
//! `Unsupported`), or touch expressions.

use sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};

use super::error::{Result, TranslateError};

/// A PostgreSQL type the translator supports, with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Int2,
    Int4,
    Int8,
    /// NUMERIC / DECIMAL with optional (precision, scale).
    Numeric(Option<(u64, u64)>),
    Float4,
    Float8,
    Bool,
    Text,
    Varchar(Option<u64>),
    /// CHAR(n) / CHARACTER(n) (PostgreSQL `bpchar`).
    Char(Option<u64>),
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
    Uuid,
}

/// A column type as declared: the type plus whether it was a SERIAL pseudo-type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub ty: PgType,
    /// SERIAL / BIGSERIAL / SMALLSERIAL (an auto-increment column).
    pub serial: bool,
}

fn char_len(l: &Option<CharacterLength>) -> Result<Option<u64>> {
    match l {
        None => Ok(None),
        Some(CharacterLength::IntegerLength { length, unit: None }) => Ok(Some(*length)),
        Some(_) => Err(TranslateError::unsupported("character length unit or MAX")),
    }
}

fn numeric(info: &ExactNumberInfo) -> Result<PgType> {
    Ok(match info {
        ExactNumberInfo::None => PgType::Numeric(None),
        ExactNumberInfo::Precision(p) => PgType::Numeric(Some((*p, 0))),
        ExactNumberInfo::PrecisionAndScale(p, s) if *s >= 0 => {
            PgType::Numeric(Some((*p, *s as u64)))
        }
        ExactNumberInfo::PrecisionAndScale(..) => {
            return Err(TranslateError::unsupported("NUMERIC with a negative scale"))
        }
    })
}

/// Classify a parsed PostgreSQL type. Anything outside the supported set is `Unsupported`.
pub fn classify(dt: &DataType) -> Result<Declared> {
    let plain = |ty| Ok(Declared { ty, serial: false });
    match dt {
        DataType::Int2(None) | DataType::SmallInt(None) => plain(PgType::Int2),
        DataType::Int4(None) | DataType::Int(None) | DataType::Integer(None) => plain(PgType::Int4),
        DataType::Int8(None) | DataType::BigInt(None) => plain(PgType::Int8),
        DataType::Numeric(i) | DataType::Decimal(i) | DataType::Dec(i) => plain(numeric(i)?),
        DataType::Real | DataType::Float4 => plain(PgType::Float4),
        DataType::DoublePrecision | DataType::Float8 => plain(PgType::Float8),
        DataType::Float(ExactNumberInfo::None) => plain(PgType::Float8),
        DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => plain(PgType::Float4),
        DataType::Float(ExactNumberInfo::Precision(_)) => plain(PgType::Float8),
        DataType::Boolean | DataType::Bool => plain(PgType::Bool),
        DataType::Text => plain(PgType::Text),
        DataType::Varchar(l) | DataType::CharacterVarying(l) => {
            plain(PgType::Varchar(char_len(l)?))
        }
        DataType::Char(l) | DataType::Character(l) => {
            plain(PgType::Char(Some(char_len(l)?.unwrap_or(1))))
        }
        DataType::Bytea => plain(PgType::Bytea),
        DataType::Date => plain(PgType::Date),
        DataType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            plain(PgType::Time)
        }
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            plain(PgType::Timestamp)
        }
        DataType::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => {
            plain(PgType::Timestamptz)
        }
        DataType::JSON => plain(PgType::Json),
        DataType::JSONB => plain(PgType::Jsonb),
        DataType::Uuid => plain(PgType::Uuid),
        DataType::Custom(name, mods) if mods.is_empty() && name.0.len() == 1 => {
            let n = name.to_string().trim_matches('"').to_ascii_lowercase();
            let serial = |ty| Ok(Declared { ty, serial: true });
            match n.as_str() {
                "serial" | "serial4" => serial(PgType::Int4),
                "bigserial" | "serial8" => serial(PgType::Int8),
                "smallserial" | "serial2" => serial(PgType::Int2),
                "timestamptz" => plain(PgType::Timestamptz),
                "bpchar" => plain(PgType::Char(Some(1))),
                _ => Err(TranslateError::unsupported(format!("type {n}"))),
            }
        }
        DataType::Array(_) => Err(TranslateError::unsupported("array type")),
        DataType::Interval { .. } => Err(TranslateError::unsupported("interval type")),
        DataType::Time(_, _) => Err(TranslateError::unsupported("time with time zone")),
        other => Err(TranslateError::unsupported(format!(
            "type {}",
            other.to_string().to_lowercase()
        ))),
    }
}

/// Whether a cast target is PostgreSQL's `name` (the type of `current_user`, `current_database()`,
/// …, which `backend/translated/local.rs` writes as `'value'::name`). Not a column type: only a
/// string literal or NULL may be cast to it (`walk.rs`).
pub fn is_name(dt: &DataType) -> bool {
    match dt {
        DataType::Custom(name, mods) if mods.is_empty() => {
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
                .collect();
            matches!(
                parts
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice(),
                ["name"] | ["pg_catalog", "name"]
            )
        }
        _ => false,
    }
}

impl PgType {
    /// The PostgreSQL `pg_type.typname` of this type (what `param_hints`/`pg_types` and the MySQL
    /// column COMMENT carry).
    pub fn pg_name(&self) -> &'static str {
        match self {
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Numeric(_) => "numeric",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Bool => "bool",
            PgType::Text => "text",
            PgType::Varchar(_) => "varchar",
            PgType::Char(_) => "bpchar",
            PgType::Bytea => "bytea",
            PgType::Date => "date",
            PgType::Time => "time",
            PgType::Timestamp => "timestamp",
            PgType::Timestamptz => "timestamptz",
            PgType::Json => "json",
            PgType::Jsonb => "jsonb",
            PgType::Uuid => "uuid",
        }
    }

    /// MySQL/MariaDB column type. `in_key`: the column is part of a PRIMARY KEY/UNIQUE/index in the
    /// same CREATE TABLE, where MySQL cannot use TEXT (unbounded text then becomes VARCHAR(255)).
    pub fn mysql_column(&self, in_key: bool) -> String {
        match self {
            PgType::Int2 => "SMALLINT".into(),
            PgType::Int4 => "INT".into(),
            PgType::Int8 => "BIGINT".into(),
            PgType::Numeric(Some((p, s))) => format!("DECIMAL({p},{s})"),
            PgType::Numeric(None) => "DECIMAL(65,30)".into(),
            PgType::Float4 => "FLOAT".into(),
            PgType::Float8 => "DOUBLE".into(),
            PgType::Bool => "BOOLEAN".into(),
            PgType::Text | PgType::Varchar(None) if in_key => "VARCHAR(255)".into(),
            PgType::Text | PgType::Varchar(None) => "LONGTEXT".into(),
            PgType::Varchar(Some(n)) => format!("VARCHAR({n})"),
            PgType::Char(n) => format!("CHAR({})", n.unwrap_or(1)),
            PgType::Bytea if in_key => "VARBINARY(255)".into(),
            PgType::Bytea => "LONGBLOB".into(),
            PgType::Date => "DATE".into(),
            PgType::Time => "TIME(6)".into(),
            PgType::Timestamp | PgType::Timestamptz => "DATETIME(6)".into(),
            PgType::Json | PgType::Jsonb => "JSON".into(),
            PgType::Uuid => "CHAR(36)".into(),
        }
    }

    /// SQLite declared column type: the PostgreSQL spelling, so the executor can map
    /// `sqlite3_column_decltype` back with [`pg_type_from_sqlite_decltype`].
    pub fn sqlite_column(&self) -> String {
        match self {
            PgType::Int2 => "SMALLINT".into(),
            // `INT`, not `INTEGER`: the executor reads `INTEGER` (a rowid key, or a table made outside
            // bindproxy, which may hold any 64-bit value) as int8.
            PgType::Int4 => "INT".into(),
            PgType::Int8 => "BIGINT".into(),
            PgType::Numeric(Some((p, s))) => format!("NUMERIC({p},{s})"),
            PgType::Numeric(None) => "NUMERIC".into(),
            PgType::Float4 => "REAL".into(),
            PgType::Float8 => "DOUBLE PRECISION".into(),
            PgType::Bool => "BOOLEAN".into(),
            PgType::Text => "TEXT".into(),
            PgType::Varchar(Some(n)) => format!("VARCHAR({n})"),
            PgType::Varchar(None) => "VARCHAR".into(),
            PgType::Char(n) => format!("CHAR({})", n.unwrap_or(1)),
            PgType::Bytea => "BYTEA".into(),
            PgType::Date => "DATE".into(),
            PgType::Time => "TIME".into(),
            PgType::Timestamp => "TIMESTAMP".into(),
            PgType::Timestamptz => "TIMESTAMPTZ".into(),
            PgType::Json => "JSON".into(),
            PgType::Jsonb => "JSONB".into(),
            PgType::Uuid => "UUID".into(),
        }
    }
}

/// Map a SQLite declared column type (as written by [`PgType::sqlite_column`], or by hand) back to the
/// PostgreSQL type name. Unknown names fall back on SQLite's affinity rules.
pub fn pg_type_from_sqlite_decltype(decl: &str) -> &'static str {
    let d = decl.trim().to_ascii_uppercase();
    let base = d.split('(').next().unwrap_or("").trim();
    match base {
        "SMALLINT" | "INT2" => "int2",
        "INTEGER" | "INT" | "INT4" | "MEDIUMINT" => "int4",
        "BIGINT" | "INT8" => "int8",
        "NUMERIC" | "DECIMAL" => "numeric",
        "REAL" | "FLOAT4" => "float4",
        "DOUBLE PRECISION" | "DOUBLE" | "FLOAT" | "FLOAT8" => "float8",
        "BOOLEAN" | "BOOL" => "bool",
        "TEXT" | "CLOB" => "text",
        "VARCHAR" | "CHARACTER VARYING" | "NVARCHAR" => "varchar",
        "CHAR" | "CHARACTER" | "NCHAR" => "bpchar",
        "BYTEA" | "BLOB" => "bytea",
        "DATE" => "date",
        "TIME" => "time",
        "TIMESTAMP" | "DATETIME" => "timestamp",
        "TIMESTAMPTZ" => "timestamptz",
        "JSON" => "json",
        "JSONB" => "jsonb",
        "UUID" => "uuid",
        _ if d.contains("INT") => "int8",
        _ if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") => "text",
        _ if d.is_empty() || d.contains("BLOB") => "bytea",
        _ if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") => "float8",
        _ => "numeric",
    }
}

/// Prefix of the MySQL column COMMENT that records the PostgreSQL type, e.g. `pg:uuid`.
pub const MYSQL_COMMENT_PREFIX: &str = "pg:";

/// Map a MySQL `information_schema.COLUMNS.COLUMN_COMMENT` written by the translator back to the
/// PostgreSQL type name (`None` if the comment was not written by the translator).
pub fn pg_type_from_mysql_comment(comment: &str) -> Option<&str> {
    comment
        .strip_prefix(MYSQL_COMMENT_PREFIX)
        .map(|s| s.split_whitespace().next().unwrap_or(s))
}
