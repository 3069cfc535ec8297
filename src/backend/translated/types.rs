//! PostgreSQL types as MySQL/SQLite binds present them: the engine column type → PostgreSQL type map,
//! value encoding into PostgreSQL's text and binary formats, and decoding of client parameters.
//!
//! Owns: [`PgType`] (the closed set of PostgreSQL types these binds speak), [`Value`] (an engine value,
//! whichever engine it came from), the mapping of MySQL column metadata and SQLite declared types to
//! [`PgType`], [`encode`] (one value, one column, text or binary) and [`decode_param`].
//!
//! Must never: talk to an engine, or guess silently. A value that cannot be shown as its column's type
//! is an error (22P02/22003/22008), not a wrong number.

use bytes::{BufMut, BytesMut};

use crate::error::ProxyError;

/// A value as an engine returned it, or as it will be sent to an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// MySQL DATE / DATETIME / TIMESTAMP (binary protocol); all zero = MySQL's zero date.
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    /// MySQL TIME (may be negative or beyond 24 hours).
    Time {
        negative: bool,
        days: u32,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
}

impl Value {
    /// A rough size in bytes, for memory caps.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Text(s) => s.len() + 24,
            Value::Bytes(b) => b.len() + 24,
            _ => 24,
        }
    }
}

/// The PostgreSQL types a MySQL/SQLite bind reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Text,
    Varchar,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
    Uuid,
    /// Not known before a value is seen (SQLite expressions); described as text.
    Unknown,
    /// A type of PostgreSQL's system catalogs (the embedded catalog, `catalog/embedded`): values are
    /// stored as their PostgreSQL text form.
    Catalog(CatalogType),
}

/// The system-catalog types the embedded catalog answers with (`name`, `"char"`, `oid`, arrays…).
/// In text format a value is the engine's text as it is; in binary format only the scalar ones
/// (`name`, `"char"`, `oid`) are encoded, arrays are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogType {
    Name,
    Char,
    Oid,
    Regclass,
    Int2Vector,
    OidVector,
    TextArray,
    NameArray,
    BoolArray,
    Int2Array,
    Int8Array,
    AclitemArray,
    Regproc,
    Regtype,
    Xid,
    PgNodeTree,
    OidArray,
    CharArray,
    AnyArray,
}

impl CatalogType {
    pub fn oid(self) -> u32 {
        match self {
            CatalogType::Name => oid::NAME,
            CatalogType::Char => oid::CHAR,
            CatalogType::Oid => oid::OID,
            CatalogType::Regclass => 2205,
            CatalogType::Int2Vector => 22,
            CatalogType::OidVector => 30,
            CatalogType::TextArray => 1009,
            CatalogType::NameArray => 1003,
            CatalogType::BoolArray => 1000,
            CatalogType::Int2Array => 1005,
            CatalogType::Int8Array => 1016,
            CatalogType::AclitemArray => 1034,
            CatalogType::Regproc => 24,
            CatalogType::Regtype => 2206,
            CatalogType::Xid => 28,
            CatalogType::PgNodeTree => 194,
            CatalogType::OidArray => 1028,
            CatalogType::CharArray => 1002,
            CatalogType::AnyArray => 2277,
        }
    }

    /// `pg_type.typname`.
    pub fn typname(self) -> &'static str {
        match self {
            CatalogType::Name => "name",
            CatalogType::Char => "char",
            CatalogType::Oid => "oid",
            CatalogType::Regclass => "regclass",
            CatalogType::Int2Vector => "int2vector",
            CatalogType::OidVector => "oidvector",
            CatalogType::TextArray => "_text",
            CatalogType::NameArray => "_name",
            CatalogType::BoolArray => "_bool",
            CatalogType::Int2Array => "_int2",
            CatalogType::Int8Array => "_int8",
            CatalogType::AclitemArray => "_aclitem",
            CatalogType::Regproc => "regproc",
            CatalogType::Regtype => "regtype",
            CatalogType::Xid => "xid",
            CatalogType::PgNodeTree => "pg_node_tree",
            CatalogType::OidArray => "_oid",
            CatalogType::CharArray => "_char",
            CatalogType::AnyArray => "anyarray",
        }
    }

    pub fn typlen(self) -> i16 {
        match self {
            CatalogType::Name => 64,
            CatalogType::Char => 1,
            CatalogType::Oid
            | CatalogType::Regclass
            | CatalogType::Regproc
            | CatalogType::Regtype
            | CatalogType::Xid => 4,
            _ => -1,
        }
    }

    /// The declared SQLite column type the embedded catalog writes for this type (read back by
    /// [`sqlite_decl_type`]): `BINDPROXY_INT_…` for the oid-like types, `BINDPROXY_TEXT_…` for the
    /// rest, so SQLite's affinity rules store them as integers and as text.
    pub fn sqlite_decl(self) -> String {
        let affinity = match self {
            CatalogType::Oid | CatalogType::Xid => "INT",
            _ => "TEXT",
        };
        format!(
            "BINDPROXY_{affinity}_{}",
            self.typname().to_ascii_uppercase()
        )
    }

    /// The catalog type of a `pg_type.typname`.
    pub fn by_typname(name: &str) -> Option<CatalogType> {
        const ALL: [CatalogType; 19] = [
            CatalogType::Name,
            CatalogType::Char,
            CatalogType::Oid,
            CatalogType::Regclass,
            CatalogType::Int2Vector,
            CatalogType::OidVector,
            CatalogType::TextArray,
            CatalogType::NameArray,
            CatalogType::BoolArray,
            CatalogType::Int2Array,
            CatalogType::Int8Array,
            CatalogType::AclitemArray,
            CatalogType::Regproc,
            CatalogType::Regtype,
            CatalogType::Xid,
            CatalogType::PgNodeTree,
            CatalogType::OidArray,
            CatalogType::CharArray,
            CatalogType::AnyArray,
        ];
        ALL.into_iter().find(|c| c.typname() == name)
    }
}

pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

impl PgType {
    pub fn oid(self) -> u32 {
        match self {
            PgType::Bool => oid::BOOL,
            PgType::Int2 => oid::INT2,
            PgType::Int4 => oid::INT4,
            PgType::Int8 => oid::INT8,
            PgType::Numeric => oid::NUMERIC,
            PgType::Float4 => oid::FLOAT4,
            PgType::Float8 => oid::FLOAT8,
            PgType::Text | PgType::Unknown => oid::TEXT,
            PgType::Varchar => oid::VARCHAR,
            PgType::Bytea => oid::BYTEA,
            PgType::Date => oid::DATE,
            PgType::Time => oid::TIME,
            PgType::Timestamp => oid::TIMESTAMP,
            PgType::Timestamptz => oid::TIMESTAMPTZ,
            PgType::Json => oid::JSON,
            PgType::Jsonb => oid::JSONB,
            PgType::Uuid => oid::UUID,
            PgType::Catalog(c) => c.oid(),
        }
    }

    /// pg_type.typlen.
    pub fn typlen(self) -> i16 {
        match self {
            PgType::Bool => 1,
            PgType::Int2 => 2,
            PgType::Int4 | PgType::Float4 | PgType::Date => 4,
            PgType::Int8
            | PgType::Float8
            | PgType::Time
            | PgType::Timestamp
            | PgType::Timestamptz => 8,
            PgType::Uuid => 16,
            PgType::Catalog(c) => c.typlen(),
            _ => -1,
        }
    }

    /// The type a client's parameter OID names; unknown OIDs are treated as text.
    pub fn from_oid(o: u32) -> PgType {
        match o {
            oid::BOOL => PgType::Bool,
            oid::INT2 => PgType::Int2,
            oid::INT4 | oid::OID => PgType::Int4,
            oid::INT8 => PgType::Int8,
            oid::NUMERIC => PgType::Numeric,
            oid::FLOAT4 => PgType::Float4,
            oid::FLOAT8 => PgType::Float8,
            oid::VARCHAR | oid::BPCHAR => PgType::Varchar,
            oid::BYTEA => PgType::Bytea,
            oid::DATE => PgType::Date,
            oid::TIME => PgType::Time,
            oid::TIMESTAMP => PgType::Timestamp,
            oid::TIMESTAMPTZ => PgType::Timestamptz,
            oid::JSON => PgType::Json,
            oid::JSONB => PgType::Jsonb,
            oid::UUID => PgType::Uuid,
            _ => PgType::Text,
        }
    }

    /// `pg_type.typname` (`int4`, `date`, …; `unknown` for an untyped SQLite expression).
    pub fn typname(self) -> &'static str {
        match self {
            PgType::Bool => "bool",
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Numeric => "numeric",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Text => "text",
            PgType::Varchar => "varchar",
            PgType::Bytea => "bytea",
            PgType::Date => "date",
            PgType::Time => "time",
            PgType::Timestamp => "timestamp",
            PgType::Timestamptz => "timestamptz",
            PgType::Json => "json",
            PgType::Jsonb => "jsonb",
            PgType::Uuid => "uuid",
            PgType::Unknown => "unknown",
            PgType::Catalog(c) => c.typname(),
        }
    }

    /// PostgreSQL's name of the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            PgType::Bool => "boolean",
            PgType::Int2 => "smallint",
            PgType::Int4 => "integer",
            PgType::Int8 => "bigint",
            PgType::Numeric => "numeric",
            PgType::Float4 => "real",
            PgType::Float8 => "double precision",
            PgType::Text | PgType::Unknown => "text",
            PgType::Varchar => "character varying",
            PgType::Bytea => "bytea",
            PgType::Date => "date",
            PgType::Time => "time without time zone",
            PgType::Timestamp => "timestamp without time zone",
            PgType::Timestamptz => "timestamp with time zone",
            PgType::Json => "json",
            PgType::Jsonb => "jsonb",
            PgType::Uuid => "uuid",
            PgType::Catalog(c) => c.typname(),
        }
    }

    /// The type of a value whose column type is not known (SQLite expressions): its storage class.
    pub fn of_value(v: &Value) -> PgType {
        match v {
            Value::Int(_) => PgType::Int8,
            Value::UInt(_) => PgType::Numeric,
            Value::Float(_) => PgType::Float8,
            Value::Bytes(_) => PgType::Bytea,
            Value::DateTime { .. } => PgType::Timestamp,
            Value::Time { .. } => PgType::Time,
            Value::Text(_) | Value::Null => PgType::Text,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engine column types → PgType

/// The text of a string literal as information_schema.COLUMNS.COLUMN_DEFAULT writes it (MariaDB
/// quotes with backslash escapes, which the session's NO_BACKSLASH_ESCAPES would misread); `None`
/// for any other default (a number, an expression).
pub fn mariadb_string(default: &str) -> Option<String> {
    let inner = default.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                'Z' => '\x1a',
                'b' => '\x08',
                other => other,
            }),
            '\'' => {
                // a doubled quote; a lone one means this was not one literal
                if chars.next()? != '\'' {
                    return None;
                }
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// SQLite: the declared type of a column (as written in CREATE TABLE) → PostgreSQL type.
/// `None` (an expression) → [`PgType::Unknown`], resolved from the first value's storage class.
pub fn sqlite_decl_type(decl: Option<&str>) -> PgType {
    let Some(decl) = decl else {
        return PgType::Unknown;
    };
    let up = decl.trim().to_ascii_uppercase();
    let base = up.split('(').next().unwrap_or("").trim();
    let base: String = base.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(c) = base
        .strip_prefix("BINDPROXY_")
        .and_then(|t| t.strip_prefix("INT_").or_else(|| t.strip_prefix("TEXT_")))
        .and_then(|t| CatalogType::by_typname(&t.to_ascii_lowercase()))
    {
        return PgType::Catalog(c);
    }
    match base.as_str() {
        "" => PgType::Unknown,
        "INTEGER" | "INT8" | "BIGINT" | "BIGSERIAL" | "SERIAL8" => PgType::Int8,
        "INT" | "INT4" | "MEDIUMINT" | "SERIAL" | "SERIAL4" => PgType::Int4,
        "SMALLINT" | "INT2" | "TINYINT" | "SMALLSERIAL" => PgType::Int2,
        "BOOLEAN" | "BOOL" => PgType::Bool,
        "REAL" | "FLOAT4" => PgType::Float4,
        "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT" => PgType::Float8,
        "NUMERIC" | "DECIMAL" => PgType::Numeric,
        "TEXT" | "CLOB" | "STRING" => PgType::Text,
        "VARCHAR" | "CHARACTER VARYING" | "NVARCHAR" | "CHAR" | "CHARACTER" | "NCHAR"
        | "BPCHAR" | "VARYING CHARACTER" => PgType::Varchar,
        "BLOB" | "BYTEA" => PgType::Bytea,
        "DATE" => PgType::Date,
        "TIME" | "TIME WITHOUT TIME ZONE" => PgType::Time,
        "TIMESTAMP" | "DATETIME" | "TIMESTAMP WITHOUT TIME ZONE" => PgType::Timestamp,
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => PgType::Timestamptz,
        "JSON" => PgType::Json,
        "JSONB" => PgType::Jsonb,
        "UUID" => PgType::Uuid,
        other => {
            // SQLite's affinity rules (section 3.1 of "Datatypes In SQLite").
            if other.contains("INT") {
                PgType::Int8
            } else if other.contains("CHAR") || other.contains("CLOB") || other.contains("TEXT") {
                PgType::Text
            } else if other.contains("BLOB") {
                PgType::Bytea
            } else if other.contains("REAL") || other.contains("FLOA") || other.contains("DOUB") {
                PgType::Float8
            } else {
                PgType::Numeric
            }
        }
    }
}

/// SQLite: the PostgreSQL type of a rowid alias column (declared `INTEGER`, which
/// [`sqlite_decl_type`] reads as int8), from its table's `CREATE TABLE` text: a serial or
/// smallserial key made by bindproxy carries its range check (`CONSTRAINT "bindproxy_int4"` /
/// `"bindproxy_int2"`), which gives int4 / int2, as PostgreSQL types the column; anything else
/// (bigserial, identity bigint, a table made outside bindproxy) stays int8.
pub fn sqlite_rowid_type(create_sql: &str, column: &str) -> PgType {
    use super::rebuild::{head, is_constraint, items};
    let Some((items, _)) = items(create_sql) else {
        return PgType::Int8;
    };
    let Some(item) = items
        .iter()
        .find(|i| !is_constraint(i) && head(i).eq_ignore_ascii_case(column))
    else {
        return PgType::Int8;
    };
    if item.contains("CONSTRAINT \"bindproxy_int4\"") {
        PgType::Int4
    } else if item.contains("CONSTRAINT \"bindproxy_int2\"") {
        PgType::Int2
    } else {
        PgType::Int8
    }
}

/// Whether a SQLite declared type makes a rowid alias of a single-column primary key.
pub fn sqlite_is_rowid_decl(decl: Option<&str>) -> bool {
    decl.is_some_and(|d| d.trim().eq_ignore_ascii_case("integer"))
}

/// SQLite: PostgreSQL's atttypmod from a declared type: `NUMERIC(10,2)` → `((10 << 16) | 2) + 4`,
/// `VARCHAR(20)` → 24; -1 when the declaration has no modifier.
pub fn sqlite_decl_typmod(decl: Option<&str>) -> i32 {
    let Some(decl) = decl else { return -1 };
    let Some((base, rest)) = decl.split_once('(') else {
        return -1;
    };
    let Some(args) = rest.split(')').next() else {
        return -1;
    };
    let nums: Vec<Option<i32>> = args.split(',').map(|a| a.trim().parse().ok()).collect();
    match sqlite_decl_type(Some(base)) {
        PgType::Numeric => match nums.as_slice() {
            [Some(p)] if (1..=1000).contains(p) => (p << 16) + 4,
            [Some(p), Some(s)] if (1..=1000).contains(p) && (0..=*p).contains(s) => {
                ((p << 16) | s) + 4
            }
            _ => -1,
        },
        PgType::Varchar => match nums.as_slice() {
            [Some(n)] if *n > 0 => n + 4,
            _ => -1,
        },
        _ => -1,
    }
}

/// The scale a numeric typmod declares.
pub fn numeric_scale(typmod: i32) -> Option<usize> {
    (typmod >= 4).then(|| ((typmod - 4) & 0xffff) as usize)
}

/// Decimal text rounded (half away from zero) or padded to `scale` digits after the point, as
/// PostgreSQL stores a value in a `numeric(p,s)` column: `12.5` → `12.50`.
pub fn numeric_rescale(s: &str, scale: usize) -> String {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.to_string();
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let int_len = int.len();
    let keep = int_len + scale;
    if digits.len() > keep {
        let round_up = digits[keep] >= 5;
        digits.truncate(keep);
        if round_up {
            let mut i = keep;
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    } else {
        digits.resize(keep, 0);
    }
    let int_len = digits.len() - scale;
    let mut out = String::with_capacity(digits.len() + 2);
    let int_part: String = digits[..int_len]
        .iter()
        .map(|d| (b'0' + d) as char)
        .collect();
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part: String = digits[int_len..]
        .iter()
        .map(|d| (b'0' + d) as char)
        .collect();
    if neg && (int_part != "0" || frac_part.bytes().any(|b| b != b'0')) {
        out.push('-');
    }
    out.push_str(int_part);
    if scale > 0 {
        out.push('.');
        out.push_str(&frac_part);
    }
    out
}

/// What MySQL/MariaDB metadata says about a result column.
#[derive(Debug, Clone, Copy)]
pub struct MySqlColumnType {
    pub column_type: mysql_async::consts::ColumnType,
    pub unsigned: bool,
    pub binary_charset: bool,
    pub column_length: u32,
}

/// MySQL column metadata → PostgreSQL type. JSON and UUID stored as text are refined by the caller
/// from information_schema ([`mysql_refine`]).
pub fn mysql_column_type(c: MySqlColumnType) -> PgType {
    use mysql_async::consts::ColumnType as T;
    match c.column_type {
        T::MYSQL_TYPE_TINY if c.column_length == 1 => PgType::Bool,
        T::MYSQL_TYPE_TINY => PgType::Int2,
        T::MYSQL_TYPE_SHORT if c.unsigned => PgType::Int4,
        T::MYSQL_TYPE_SHORT | T::MYSQL_TYPE_YEAR => PgType::Int2,
        T::MYSQL_TYPE_INT24 => PgType::Int4,
        T::MYSQL_TYPE_LONG if c.unsigned => PgType::Int8,
        T::MYSQL_TYPE_LONG => PgType::Int4,
        // BIGINT UNSIGNED does not fit int8: numeric, so that values beyond 2^63 never wrap.
        T::MYSQL_TYPE_LONGLONG if c.unsigned => PgType::Numeric,
        T::MYSQL_TYPE_LONGLONG => PgType::Int8,
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => PgType::Numeric,
        T::MYSQL_TYPE_FLOAT => PgType::Float4,
        T::MYSQL_TYPE_DOUBLE => PgType::Float8,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => PgType::Date,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => PgType::Timestamp,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => PgType::Timestamptz,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => PgType::Time,
        T::MYSQL_TYPE_JSON => PgType::Json,
        T::MYSQL_TYPE_BIT if c.column_length == 1 => PgType::Bool,
        T::MYSQL_TYPE_BIT => PgType::Int8,
        T::MYSQL_TYPE_GEOMETRY => PgType::Bytea,
        T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_VARCHAR
            if c.binary_charset =>
        {
            PgType::Bytea
        }
        T::MYSQL_TYPE_VAR_STRING | T::MYSQL_TYPE_VARCHAR => PgType::Varchar,
        _ => PgType::Text,
    }
}

/// A column as information_schema.COLUMNS describes it, refined to a PostgreSQL type:
/// `DATA_TYPE`, `COLUMN_TYPE`, `COLUMN_COMMENT` and whether a `json_valid(col)` check exists.
///
/// Markers: a column comment `pg:<type>` (written by the DDL rewrite, e.g. `pg:jsonb`, `pg:uuid`)
/// wins; then MariaDB's JSON (LONGTEXT + json_valid check) → json; `tinyint(1)` → bool.
pub fn mysql_info_schema_type(
    data_type: &str,
    column_type: &str,
    comment: &str,
    json_check: bool,
) -> PgType {
    if let Some(t) = comment.trim().strip_prefix("pg:") {
        if let Some(t) = pg_type_by_name(t.split_whitespace().next().unwrap_or("")) {
            return t;
        }
    }
    let dt = data_type.to_ascii_lowercase();
    let ct = column_type.to_ascii_lowercase();
    let unsigned = ct.contains("unsigned");
    match dt.as_str() {
        "json" => PgType::Json,
        "longtext" | "text" | "mediumtext" if json_check => PgType::Json,
        "tinyint" if ct.starts_with("tinyint(1)") => PgType::Bool,
        "tinyint" => PgType::Int2,
        "smallint" if unsigned => PgType::Int4,
        "smallint" | "year" => PgType::Int2,
        "mediumint" => PgType::Int4,
        "int" | "integer" if unsigned => PgType::Int8,
        "int" | "integer" => PgType::Int4,
        "bigint" if unsigned => PgType::Numeric,
        "bigint" => PgType::Int8,
        "decimal" | "numeric" => PgType::Numeric,
        "float" => PgType::Float4,
        "double" | "real" => PgType::Float8,
        "date" => PgType::Date,
        "datetime" => PgType::Timestamp,
        "timestamp" => PgType::Timestamptz,
        "time" => PgType::Time,
        "varchar" => PgType::Varchar,
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" => PgType::Bytea,
        "bit" if ct == "bit(1)" => PgType::Bool,
        "bit" => PgType::Int8,
        "uuid" => PgType::Uuid,
        _ => PgType::Text,
    }
}

/// A PostgreSQL type name (as in a `pg:` marker or a cast) → type.
pub fn pg_type_by_name(name: &str) -> Option<PgType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "bool" | "boolean" => PgType::Bool,
        "int2" | "smallint" => PgType::Int2,
        "int4" | "int" | "integer" => PgType::Int4,
        "int8" | "bigint" => PgType::Int8,
        "numeric" | "decimal" => PgType::Numeric,
        "float4" | "real" => PgType::Float4,
        "float8" | "double" => PgType::Float8,
        "text" => PgType::Text,
        "varchar" => PgType::Varchar,
        "bytea" => PgType::Bytea,
        "date" => PgType::Date,
        "time" => PgType::Time,
        "timestamp" => PgType::Timestamp,
        "timestamptz" => PgType::Timestamptz,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "uuid" => PgType::Uuid,
        other => return CatalogType::by_typname(other).map(PgType::Catalog),
    })
}

/// Refines a MySQL wire column type with what information_schema knows about its source column
/// (a `pg:` comment marker, MariaDB's JSON check, `tinyint(1)`, unsigned widths). The wire type
/// stays when the column is unknown.
pub fn mysql_refine(wire: PgType, schema: Option<PgType>) -> PgType {
    schema.unwrap_or(wire)
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, as PostgreSQL)

/// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10957;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// A point in time split as PostgreSQL stores it: days since 1970 and microseconds of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub days: i64,
    pub usecs: i64,
}

impl Stamp {
    fn pg_micros(self) -> i64 {
        (self.days - PG_EPOCH_DAYS) * USECS_PER_DAY + self.usecs
    }
    fn from_pg_micros(m: i64) -> Stamp {
        let days = m.div_euclid(USECS_PER_DAY);
        Stamp {
            days: days + PG_EPOCH_DAYS,
            usecs: m.rem_euclid(USECS_PER_DAY),
        }
    }
}

fn bad(ty: PgType, v: impl std::fmt::Display) -> ProxyError {
    ProxyError::Backend {
        code: "22P02".into(),
        message: format!("invalid input syntax for type {}: \"{v}\"", ty.name()),
        detail: None,
    }
}

fn out_of_range(ty: PgType, v: impl std::fmt::Display) -> ProxyError {
    ProxyError::Backend {
        code: "22003".into(),
        message: format!("value \"{v}\" is out of range for type {}", ty.name()),
        detail: None,
    }
}

/// A text integer parameter of type `ty`, with PostgreSQL's range and its two errors: digits
/// beyond the type's range are 22003 (`value "…" is out of range for type integer`), anything
/// else that is no integer 22P02.
fn int_param(ty: PgType, s: &str) -> Result<i64, ProxyError> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let shaped = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !shaped {
        return Err(bad(ty, s));
    }
    let v = t.parse::<i64>().map_err(|_| out_of_range(ty, s))?;
    let fits = match ty {
        PgType::Int2 => i16::try_from(v).is_ok(),
        PgType::Int4 => i32::try_from(v).is_ok(),
        _ => true,
    };
    if fits {
        Ok(v)
    } else {
        Err(out_of_range(ty, s))
    }
}

/// `2024-01-02 03:04:05+02` → `2024-01-02 03:04:05` (also `Z`, `-0130`); a bare date as it is.
fn without_zone(s: &str) -> &str {
    let Some(sep) = s.find([' ', 'T']) else {
        return s;
    };
    let time = &s[sep + 1..];
    let cut = match time.strip_suffix('Z') {
        Some(t) => t.len(),
        None => time.rfind(['+', '-']).unwrap_or(time.len()),
    };
    s[..sep + 1 + cut].trim_end()
}

/// Days in month `m` of year `y` (proleptic Gregorian).
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// PostgreSQL's 22008 for a date or timestamp written in ISO form (`Y-M-D[ T]H:M[:S[.f]]…`) whose
/// fields do not make a date or time: `2024-02-30`, `0000-00-00`, `2024-13-01`, `10:61`. Text of
/// another shape is left to the parser (22P02/22007 there).
pub(crate) fn fields_in_range(s: &str) -> Result<(), ProxyError> {
    let t = s.trim();
    let (date, rest) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim_start()),
        None => (t, ""),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Ok(());
    };
    let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
        return Ok(());
    };
    let out = || ProxyError::Backend {
        code: "22008".into(),
        message: format!("date/time field value out of range: \"{t}\""),
        detail: None,
    };
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y as i64, m) {
        return Err(out());
    }
    // The time of day, up to a zone or the end.
    let time = rest
        .split(['+', '-', 'Z', ' '])
        .next()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("");
    if time.is_empty() {
        return Ok(());
    }
    let hms: Vec<Option<u32>> = time.split(':').map(num).collect();
    if hms.len() < 2 || hms.len() > 3 || hms.iter().any(Option::is_none) {
        return Ok(());
    }
    let v: Vec<u32> = hms.into_iter().flatten().collect();
    let (h, mi, sec) = (v[0], v[1], v.get(2).copied().unwrap_or(0));
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi > 0 || sec > 0)) {
        return Err(out());
    }
    Ok(())
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD`; `None` for MySQL's zero date parts (month or day 0).
fn parse_date(s: &str) -> Result<Option<i64>, ()> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next(), it.next(), it.next());
    let (Some(y), Some(m), Some(d)) = (y.and_then(num), m.and_then(num), d.and_then(num)) else {
        return Err(());
    };
    if m == 0 || d == 0 {
        return Ok(None);
    }
    if m > 12 || d > 31 {
        return Err(());
    }
    Ok(Some(days_from_civil(y as i64, m, d)))
}

/// Parses `HH:MM[:SS[.ffffff]]` → microseconds.
fn parse_time(s: &str) -> Result<i64, ()> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut it = hms.split(':');
    let h = it.next().and_then(num).ok_or(())? as i64;
    let m = it.next().and_then(num).ok_or(())? as i64;
    let sec = match it.next() {
        Some(x) => num(x).ok_or(())? as i64,
        None => 0,
    };
    if it.next().is_some() || m > 59 || sec > 60 || h > 24 {
        return Err(());
    }
    let mut us = 0i64;
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let mut digits: String = f.chars().take(6).collect();
        while digits.len() < 6 {
            digits.push('0');
        }
        us = digits.parse::<i64>().map_err(|_| ())?;
    }
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + us)
}

/// Parses `YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH[:MM]]` (or a bare date) → UTC stamp.
/// `Ok(None)` for MySQL's zero dates.
fn parse_timestamp(s: &str) -> Result<Option<Stamp>, ()> {
    let s = s.trim();
    match s {
        "infinity" | "-infinity" => return Err(()),
        _ => {}
    }
    let (date, rest) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let Some(days) = parse_date(date)? else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some(Stamp { days, usecs: 0 }));
    }
    // Split off a zone: Z, +HH, +HH:MM, +HHMM, -…
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = (&rest[..i], &rest[i..]);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = &z[1..];
        let (zh, zm) = match z.split_once(':') {
            Some((h, m)) => (num(h).ok_or(())?, num(m).ok_or(())?),
            None if z.len() == 4 => (num(&z[..2]).ok_or(())?, num(&z[2..]).ok_or(())?),
            None => (num(z).ok_or(())?, 0),
        };
        (t.trim_end(), sign * (zh as i64 * 3600 + zm as i64 * 60))
    } else {
        (rest, 0)
    };
    let us = parse_time(time)?;
    let total = days * USECS_PER_DAY + us - offset_secs * 1_000_000;
    Ok(Some(Stamp {
        days: total.div_euclid(USECS_PER_DAY),
        usecs: total.rem_euclid(USECS_PER_DAY),
    }))
}

/// A `timestamptz` literal as the engines store it: UTC, no offset (`2024-01-02 03:04:05+02` →
/// `2024-01-02 01:04:05`). `None` when it does not parse.
pub(crate) fn timestamptz_literal_utc(s: &str) -> Option<String> {
    match parse_timestamp(s) {
        Ok(Some(st)) => Some(stamp_text(st, true)),
        _ => None,
    }
}

fn fmt_date(out: &mut String, days: i64) {
    use std::fmt::Write;
    let (y, m, d) = civil_from_days(days);
    if y <= 0 {
        let _ = write!(out, "{:04}-{:02}-{:02} BC", 1 - y, m, d);
    } else {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    }
}

fn fmt_time(out: &mut String, usecs: i64) {
    use std::fmt::Write;
    let secs = usecs / 1_000_000;
    let frac = usecs % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

// ---------------------------------------------------------------------------------------------
// Value → PostgreSQL

fn as_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Text(s) => Some(s.as_str().into()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
        _ => None,
    }
}

fn to_i64(ty: PgType, v: &Value) -> Result<i64, ProxyError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::UInt(u) => i64::try_from(*u).map_err(|_| out_of_range(ty, u)),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                Ok(*f as i64)
            } else {
                Err(bad(ty, f))
            }
        }
        Value::Bytes(b)
            if ty == PgType::Int8 && b.len() <= 8 && std::str::from_utf8(b).is_err() =>
        {
            // MySQL BIT(n) arrives as big-endian bytes.
            Ok(b.iter().fold(0i64, |acc, x| (acc << 8) | *x as i64))
        }
        other => {
            let s = as_text(other).ok_or_else(|| bad(ty, format!("{other:?}")))?;
            s.trim().parse::<i64>().map_err(|_| bad(ty, &s))
        }
    }
}

fn to_f64(ty: PgType, v: &Value) -> Result<f64, ProxyError> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Float(f) => Ok(*f),
        other => {
            let s = as_text(other).ok_or_else(|| bad(ty, format!("{other:?}")))?;
            let t = s.trim();
            match t.to_ascii_lowercase().as_str() {
                "nan" => Ok(f64::NAN),
                "infinity" | "inf" => Ok(f64::INFINITY),
                "-infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                _ => t.parse::<f64>().map_err(|_| bad(ty, t)),
            }
        }
    }
}

fn to_bool(v: &Value) -> Result<bool, ProxyError> {
    match v {
        Value::Int(i) => Ok(*i != 0),
        Value::UInt(u) => Ok(*u != 0),
        Value::Float(f) => Ok(*f != 0.0),
        Value::Bytes(b) if b.len() == 1 && (b[0] == 0 || b[0] == 1) => Ok(b[0] == 1),
        other => {
            let s = as_text(other).ok_or_else(|| bad(PgType::Bool, format!("{other:?}")))?;
            parse_bool(&s).ok_or_else(|| bad(PgType::Bool, &s))
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "1" | "y" | "yes" | "on" => Some(true),
        "f" | "false" | "0" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// PostgreSQL's float text output (shortest round trip, as with extra_float_digits ≥ 1).
pub fn float_text(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    let limit = if single { 1e6 } else { 1e15 };
    let sci = a != 0.0 && !(1e-4..limit).contains(&a);
    if sci {
        let s = if single {
            format!("{:e}", f as f32)
        } else {
            format!("{f:e}")
        };
        // Rust: 1e20, 1.5e-5 → PostgreSQL: 1e+20, 1.5e-05
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else if single {
        format!("{}", f as f32)
    } else {
        format!("{f}")
    }
}

/// A decimal number as text, from any numeric engine value.
fn numeric_text(v: &Value) -> Result<String, ProxyError> {
    match v {
        Value::Int(i) => Ok(i.to_string()),
        Value::UInt(u) => Ok(u.to_string()),
        Value::Float(f) if f.is_finite() => Ok(format!("{f}")),
        Value::Float(f) if f.is_nan() => Ok("NaN".into()),
        Value::Float(f) => Err(bad(PgType::Numeric, f)),
        other => {
            let s = as_text(other).ok_or_else(|| bad(PgType::Numeric, format!("{other:?}")))?;
            let t = s.trim();
            if t.eq_ignore_ascii_case("nan") {
                return Ok("NaN".into());
            }
            // Normalise through the binary form so that "1e3" becomes "1000".
            let bin = numeric_to_binary(t).ok_or_else(|| bad(PgType::Numeric, t))?;
            numeric_from_binary(&bin).ok_or_else(|| bad(PgType::Numeric, t))
        }
    }
}

/// Decimal text → PostgreSQL binary numeric. Accepts `[+-]digits[.digits][e[+-]digits]` and NaN.
pub fn numeric_to_binary(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let mut out = Vec::new();
    if s.eq_ignore_ascii_case("nan") {
        out.extend_from_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]);
        return Some(out);
    }
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (ip, fp) = match mant.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mant, ""),
    };
    if (ip.is_empty() && fp.is_empty())
        || !ip.bytes().all(|b| b.is_ascii_digit())
        || !fp.bytes().all(|b| b.is_ascii_digit())
        || exp.abs() > 1000
    {
        return None;
    }
    // All digits, and the position of the decimal point within them.
    let mut digits: Vec<u8> = ip.bytes().chain(fp.bytes()).map(|b| b - b'0').collect();
    let mut point = ip.len() as i64 + exp as i64;
    let dscale = (fp.len() as i64 - exp as i64).max(0);
    // Pad so that the point falls on a multiple of 4 and the length is a multiple of 4.
    let lead = (4 - point.rem_euclid(4)) % 4;
    for _ in 0..lead {
        digits.insert(0, 0);
    }
    point += lead;
    if point < 0 {
        let pad = (-point) as usize;
        digits.splice(0..0, std::iter::repeat_n(0, pad));
        point = 0;
    }
    while (digits.len() as i64) < point || !digits.len().is_multiple_of(4) {
        digits.push(0);
    }
    let groups: Vec<i16> = digits
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |a, d| a * 10 + *d as i16))
        .collect();
    let mut weight = point / 4 - 1;
    let mut first = 0;
    while first < groups.len() && groups[first] == 0 {
        first += 1;
        weight -= 1;
    }
    let mut last = groups.len();
    while last > first && groups[last - 1] == 0 {
        last -= 1;
    }
    let g = &groups[first..last];
    if g.is_empty() {
        weight = 0;
    }
    let ndigits = i16::try_from(g.len()).ok()?;
    out.put_i16(ndigits);
    out.put_i16(i16::try_from(weight).ok()?);
    out.put_u16(if neg && !g.is_empty() { 0x4000 } else { 0 });
    out.put_u16(u16::try_from(dscale).ok()?);
    for d in g {
        out.put_i16(*d);
    }
    Some(out)
}

/// PostgreSQL binary numeric → decimal text.
pub fn numeric_from_binary(b: &[u8]) -> Option<String> {
    if b.len() < 8 {
        return None;
    }
    let rd = |i: usize| i16::from_be_bytes([b[i], b[i + 1]]);
    let ndigits = usize::try_from(rd(0)).ok()?;
    let weight = rd(2) as i64;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as i64;
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    if b.len() < 8 + 2 * ndigits {
        return None;
    }
    let groups: Vec<i64> = (0..ndigits).map(|i| rd(8 + 2 * i) as i64).collect();
    if groups.iter().any(|g| !(0..10000).contains(g)) {
        return None;
    }
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    // Integer part: groups with weight ≥ 0.
    if weight < 0 {
        s.push('0');
    } else {
        for w in 0..=weight {
            let g = groups.get(w as usize).copied().unwrap_or(0);
            if w == 0 {
                s.push_str(&g.to_string());
            } else {
                s.push_str(&format!("{g:04}"));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut idx = weight + 1; // group index of the first fractional group
        while (frac.len() as i64) < dscale {
            let g = if idx >= 0 {
                groups.get(idx as usize).copied().unwrap_or(0)
            } else {
                0
            };
            frac.push_str(&format!("{g:04}"));
            idx += 1;
        }
        frac.truncate(dscale as usize);
        s.push_str(&frac);
    }
    Some(s)
}

fn to_stamp(ty: PgType, v: &Value) -> Result<Option<Stamp>, ProxyError> {
    match v {
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => {
            if *month == 0 || *day == 0 {
                return Ok(None); // zero date → NULL
            }
            Ok(Some(Stamp {
                days: days_from_civil(*year as i64, *month as u32, *day as u32),
                usecs: ((*hour as i64 * 60 + *minute as i64) * 60 + *second as i64) * 1_000_000
                    + *micro as i64,
            }))
        }
        // SQLite: unix seconds in an INTEGER or REAL column.
        Value::Int(secs) => Ok(Some(Stamp::from_pg_micros(
            secs.saturating_mul(1_000_000) - PG_EPOCH_DAYS * USECS_PER_DAY,
        ))),
        Value::Float(secs) => Ok(Some(Stamp::from_pg_micros(
            (secs * 1e6) as i64 - PG_EPOCH_DAYS * USECS_PER_DAY,
        ))),
        other => {
            let s = as_text(other).ok_or_else(|| bad(ty, format!("{other:?}")))?;
            parse_timestamp(&s).map_err(|_| bad(ty, &s))
        }
    }
}

fn to_time(v: &Value) -> Result<i64, ProxyError> {
    match v {
        Value::Time {
            negative,
            days,
            hour,
            minute,
            second,
            micro,
        } => {
            let us = (((*days as i64 * 24 + *hour as i64) * 60 + *minute as i64) * 60
                + *second as i64)
                * 1_000_000
                + *micro as i64;
            if *negative || us > USECS_PER_DAY {
                let sign = if *negative { "-" } else { "" };
                return Err(ProxyError::Backend {
                    code: "22008".into(),
                    message: format!(
                        "time value {sign}{}:{minute:02}:{second:02} is out of range for type time",
                        *days as i64 * 24 + *hour as i64
                    ),
                    detail: Some(
                        "MySQL TIME holds durations; PostgreSQL time is a time of day.".into(),
                    ),
                });
            }
            Ok(us)
        }
        Value::DateTime {
            hour,
            minute,
            second,
            micro,
            ..
        } => Ok(
            ((*hour as i64 * 60 + *minute as i64) * 60 + *second as i64) * 1_000_000
                + *micro as i64,
        ),
        other => {
            let s = as_text(other).ok_or_else(|| bad(PgType::Time, format!("{other:?}")))?;
            parse_time(s.trim()).map_err(|_| bad(PgType::Time, &s))
        }
    }
}

fn to_uuid(v: &Value) -> Result<[u8; 16], ProxyError> {
    match v {
        Value::Bytes(b) if b.len() == 16 => {
            let mut u = [0u8; 16];
            u.copy_from_slice(b);
            Ok(u)
        }
        other => {
            let s = as_text(other).ok_or_else(|| bad(PgType::Uuid, format!("{other:?}")))?;
            parse_uuid(&s).ok_or_else(|| bad(PgType::Uuid, &s))
        }
    }
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut u = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        u[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(u)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn bytes_of(v: &Value) -> Vec<u8> {
    match v {
        Value::Bytes(b) => b.clone(),
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::UInt(u) => u.to_string().into_bytes(),
        Value::Float(f) => float_text(*f, false).into_bytes(),
        other => text_of_other(other).into_bytes(),
    }
}

fn text_of_other(v: &Value) -> String {
    let mut s = String::new();
    match v {
        Value::DateTime { .. } => {
            if let Ok(Some(st)) = to_stamp(PgType::Timestamp, v) {
                fmt_date(&mut s, st.days);
                s.push(' ');
                fmt_time(&mut s, st.usecs);
            }
        }
        Value::Time { .. } => {
            if let Ok(us) = to_time(v) {
                fmt_time(&mut s, us);
            }
        }
        _ => {}
    }
    s
}

/// Appends one DataRow value (length + bytes, or -1 for NULL) of type `ty` in `format` (0 text,
/// 1 binary).
pub fn encode(ty: PgType, v: &Value, binary: bool, out: &mut BytesMut) -> Result<(), ProxyError> {
    if matches!(v, Value::Null) {
        out.put_i32(-1);
        return Ok(());
    }
    let at = out.len();
    out.put_i32(0);
    let wrote = encode_body(ty, v, binary, out)?;
    if !wrote {
        out.truncate(at);
        out.put_i32(-1);
        return Ok(());
    }
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// [`encode`] for a column with a known typmod: a numeric column's values take its declared scale.
pub fn encode_typmod(
    ty: PgType,
    typmod: i32,
    v: &Value,
    binary: bool,
    out: &mut BytesMut,
) -> Result<(), ProxyError> {
    if ty == PgType::Numeric && !matches!(v, Value::Null) {
        if let Some(scale) = numeric_scale(typmod) {
            let s = numeric_text(v)?;
            if s != "NaN" {
                let t = Value::Text(numeric_rescale(&s, scale));
                return encode(ty, &t, binary, out);
            }
        }
    }
    encode(ty, v, binary, out)
}

/// Writes the value's bytes; returns false when the value is NULL after all (MySQL zero dates).
fn encode_body(
    ty: PgType,
    v: &Value,
    binary: bool,
    out: &mut BytesMut,
) -> Result<bool, ProxyError> {
    match ty {
        PgType::Bool => {
            let b = to_bool(v)?;
            if binary {
                out.put_u8(b as u8);
            } else {
                out.put_u8(if b { b't' } else { b'f' });
            }
        }
        PgType::Int2 | PgType::Int4 | PgType::Int8 => {
            let i = to_i64(ty, v)?;
            let range_ok = match ty {
                PgType::Int2 => i16::try_from(i).is_ok(),
                PgType::Int4 => i32::try_from(i).is_ok(),
                _ => true,
            };
            if !range_ok {
                return Err(out_of_range(ty, i));
            }
            if binary {
                match ty {
                    PgType::Int2 => out.put_i16(i as i16),
                    PgType::Int4 => out.put_i32(i as i32),
                    _ => out.put_i64(i),
                }
            } else {
                out.put_slice(i.to_string().as_bytes());
            }
        }
        PgType::Numeric => {
            let s = numeric_text(v)?;
            if binary {
                let b = numeric_to_binary(&s).ok_or_else(|| bad(ty, &s))?;
                out.put_slice(&b);
            } else {
                out.put_slice(s.as_bytes());
            }
        }
        PgType::Float4 | PgType::Float8 => {
            let f = to_f64(ty, v)?;
            if binary {
                if ty == PgType::Float4 {
                    out.put_f32(f as f32);
                } else {
                    out.put_f64(f);
                }
            } else {
                out.put_slice(float_text(f, ty == PgType::Float4).as_bytes());
            }
        }
        PgType::Text | PgType::Varchar | PgType::Unknown | PgType::Json => match v {
            Value::Text(s) => out.put_slice(s.as_bytes()),
            Value::Bytes(b) => out.put_slice(b),
            other => out.put_slice(&bytes_of(other)),
        },
        PgType::Jsonb => {
            if binary {
                out.put_u8(1);
            }
            out.put_slice(&bytes_of(v));
        }
        PgType::Bytea => {
            let b = bytes_of(v);
            if binary {
                out.put_slice(&b);
            } else {
                out.reserve(2 + b.len() * 2);
                out.put_slice(b"\\x");
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for x in b {
                    out.put_u8(HEX[(x >> 4) as usize]);
                    out.put_u8(HEX[(x & 15) as usize]);
                }
            }
        }
        PgType::Date => {
            let Some(st) = to_stamp(ty, v)? else {
                return Ok(false);
            };
            if binary {
                let d = i32::try_from(st.days - PG_EPOCH_DAYS)
                    .map_err(|_| out_of_range(ty, st.days))?;
                out.put_i32(d);
            } else {
                let mut s = String::with_capacity(10);
                fmt_date(&mut s, st.days);
                out.put_slice(s.as_bytes());
            }
        }
        PgType::Time => {
            let us = to_time(v)?;
            if binary {
                out.put_i64(us);
            } else {
                let mut s = String::with_capacity(15);
                fmt_time(&mut s, us);
                out.put_slice(s.as_bytes());
            }
        }
        PgType::Timestamp | PgType::Timestamptz => {
            let Some(st) = to_stamp(ty, v)? else {
                return Ok(false);
            };
            if binary {
                out.put_i64(st.pg_micros());
            } else {
                let mut s = String::with_capacity(32);
                fmt_date(&mut s, st.days);
                s.push(' ');
                fmt_time(&mut s, st.usecs);
                if ty == PgType::Timestamptz {
                    s.push_str("+00");
                }
                out.put_slice(s.as_bytes());
            }
        }
        PgType::Uuid => {
            let u = to_uuid(v)?;
            if binary {
                out.put_slice(&u);
            } else {
                out.put_slice(uuid_text(&u).as_bytes());
            }
        }
        PgType::Catalog(c) => match (c, binary) {
            (CatalogType::Oid | CatalogType::Xid, true) => {
                let i = to_i64(ty, v)?;
                out.put_u32(u32::try_from(i).map_err(|_| out_of_range(ty, i))?);
            }
            (CatalogType::Name | CatalogType::Char, _) | (_, false) => out.put_slice(&bytes_of(v)),
            (_, true) => {
                return Err(ProxyError::Backend {
                    code: "0A000".into(),
                    message: format!(
                        "binary output of type {} is not supported by the embedded catalog",
                        c.typname()
                    ),
                    detail: None,
                })
            }
        },
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Client parameters → engine values

fn utf8(ty: PgType, b: &[u8]) -> Result<String, ProxyError> {
    if b.contains(&0) {
        // PostgreSQL text cannot hold a NUL; the engines would store it.
        return Err(ProxyError::Backend {
            code: "22021".into(),
            message: "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
            detail: None,
        });
    }
    String::from_utf8(b.to_vec()).map_err(|_| ProxyError::Backend {
        code: "22021".into(),
        message: format!(
            "invalid byte sequence for encoding \"UTF8\" in a {} parameter",
            ty.name()
        ),
        detail: None,
    })
}

fn binary_len(ty: PgType, b: &[u8], n: usize) -> Result<(), ProxyError> {
    if b.len() == n {
        Ok(())
    } else {
        Err(ProxyError::Backend {
            code: "22P03".into(),
            message: format!(
                "incorrect binary data format in a {} parameter: {} bytes, expected {n}",
                ty.name(),
                b.len()
            ),
            detail: None,
        })
    }
}

fn stamp_text(st: Stamp, with_time: bool) -> String {
    let mut s = String::with_capacity(26);
    fmt_date(&mut s, st.days);
    if with_time {
        s.push(' ');
        fmt_time(&mut s, st.usecs);
    }
    s
}

/// Decodes one Bind parameter of type `ty` in format `format` (0 text, 1 binary) into the value
/// sent to the engine. Dates and times travel as ISO text (both engines parse it); timestamptz is
/// converted to UTC without an offset (MySQL sessions run with time_zone '+00:00').
pub fn decode_param(ty: PgType, format: i16, raw: Option<&[u8]>) -> Result<Value, ProxyError> {
    let Some(b) = raw else {
        return Ok(Value::Null);
    };
    if format == 0 {
        let s = utf8(ty, b)?;
        return Ok(match ty {
            PgType::Bool => Value::Int(parse_bool(&s).ok_or_else(|| bad(ty, &s))? as i64),
            PgType::Int2 | PgType::Int4 | PgType::Int8 => Value::Int(int_param(ty, &s)?),
            PgType::Float4 | PgType::Float8 => Value::Float(to_f64(ty, &Value::Text(s))?),
            PgType::Numeric => {
                numeric_to_binary(&s).ok_or_else(|| bad(ty, &s))?;
                Value::Text(s.trim().to_string())
            }
            PgType::Bytea => Value::Bytes(decode_bytea_text(&s).ok_or_else(|| bad(ty, &s))?),
            PgType::Timestamptz => match (fields_in_range(&s), parse_timestamp(&s)) {
                (Ok(()), Ok(Some(st))) => Value::Text(stamp_text(st, true)),
                (Err(e), _) => return Err(e),
                _ => return Err(bad(ty, &s)),
            },
            PgType::Timestamp => match (fields_in_range(&s), parse_timestamp(&s)) {
                // A timestamp parameter ignores a zone, as PostgreSQL does (and the text stored
                // keeps none: SQLite's date() would apply it).
                (Ok(()), Ok(Some(_))) => Value::Text(without_zone(s.trim()).to_string()),
                (Err(e), _) => return Err(e),
                _ => return Err(bad(ty, &s)),
            },
            PgType::Date => {
                fields_in_range(&s)?;
                let days = parse_date(s.trim())
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad(ty, &s))?;
                // ISO with two-digit fields (`2024-1-5` → `2024-01-05`), as the engines compare
                // and check it (SQLite's date() reads only that form).
                Value::Text(stamp_text(Stamp { days, usecs: 0 }, false))
            }
            PgType::Uuid => Value::Text(uuid_text(&parse_uuid(&s).ok_or_else(|| bad(ty, &s))?)),
            _ => Value::Text(s),
        });
    }
    Ok(match ty {
        PgType::Bool => {
            binary_len(ty, b, 1)?;
            Value::Int((b[0] != 0) as i64)
        }
        PgType::Int2 => {
            binary_len(ty, b, 2)?;
            Value::Int(i16::from_be_bytes([b[0], b[1]]) as i64)
        }
        PgType::Int4 => {
            binary_len(ty, b, 4)?;
            Value::Int(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64)
        }
        PgType::Int8 => {
            binary_len(ty, b, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Int(i64::from_be_bytes(a))
        }
        PgType::Float4 => {
            binary_len(ty, b, 4)?;
            Value::Float(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
        }
        PgType::Float8 => {
            binary_len(ty, b, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Float(f64::from_be_bytes(a))
        }
        PgType::Numeric => {
            Value::Text(numeric_from_binary(b).ok_or_else(|| ProxyError::Backend {
                code: "22P03".into(),
                message: "incorrect binary data format in a numeric parameter".into(),
                detail: None,
            })?)
        }
        PgType::Bytea => Value::Bytes(b.to_vec()),
        PgType::Date => {
            binary_len(ty, b, 4)?;
            let d = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64;
            Value::Text(stamp_text(
                Stamp {
                    days: d + PG_EPOCH_DAYS,
                    usecs: 0,
                },
                false,
            ))
        }
        PgType::Time => {
            binary_len(ty, b, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let mut s = String::new();
            fmt_time(&mut s, i64::from_be_bytes(a).rem_euclid(USECS_PER_DAY + 1));
            Value::Text(s)
        }
        PgType::Timestamp | PgType::Timestamptz => {
            binary_len(ty, b, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Text(stamp_text(
                Stamp::from_pg_micros(i64::from_be_bytes(a)),
                true,
            ))
        }
        PgType::Uuid => {
            binary_len(ty, b, 16)?;
            let mut u = [0u8; 16];
            u.copy_from_slice(b);
            Value::Text(uuid_text(&u))
        }
        PgType::Jsonb => {
            let body = b.strip_prefix(&[1u8]).unwrap_or(b);
            Value::Text(utf8(ty, body)?)
        }
        PgType::Text | PgType::Varchar | PgType::Json | PgType::Unknown | PgType::Catalog(_) => {
            Value::Text(utf8(ty, b)?)
        }
    })
}

/// bytea text input: `\x` hex, or the escape format (`\\`, `\ooo`).
pub(crate) fn decode_bytea_text(s: &str) -> Option<Vec<u8>> {
    if let Some(h) = s.strip_prefix("\\x") {
        let h: Vec<u8> = h.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !h.len().is_multiple_of(2) {
            return None;
        }
        return h
            .chunks(2)
            .map(|p| Some((hex_val(p[0])? << 4) | hex_val(p[1])?))
            .collect();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
            } else if i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (b[i + 1] - b'0') as u16 * 64
                    + (b[i + 2] - b'0') as u16 * 8
                    + (b[i + 3] - b'0') as u16;
                out.push(u8::try_from(v).ok()?);
                i += 4;
            } else {
                return None;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: PgType, v: Value, binary: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(ty, &v, binary, &mut out).unwrap();
        out[4..].to_vec()
    }

    #[test]
    fn numeric_binary_round_trips() {
        for s in [
            "0",
            "1",
            "-1",
            "12345.678",
            "0.0001",
            "100000000",
            "-0.5",
            "99999999999999999999.25",
            "18446744073709551615",
            "1.000",
            "0.00",
        ] {
            let b = numeric_to_binary(s).unwrap();
            assert_eq!(numeric_from_binary(&b).unwrap(), s, "{s}");
        }
        assert_eq!(
            numeric_from_binary(&numeric_to_binary("1e3").unwrap()).unwrap(),
            "1000"
        );
        assert_eq!(
            numeric_from_binary(&numeric_to_binary("1.5e-3").unwrap()).unwrap(),
            "0.0015"
        );
        // PostgreSQL's own encoding of 12345.678: ndigits 3, weight 1, dscale 3, [1, 2345, 6780]
        assert_eq!(
            numeric_to_binary("12345.678").unwrap(),
            vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(
            enc(PgType::Date, Value::Text("2000-01-02".into()), true),
            1i32.to_be_bytes()
        );
        assert_eq!(
            enc(
                PgType::Timestamptz,
                Value::Text("2024-01-01 12:00:00+02".into()),
                false
            ),
            b"2024-01-01 10:00:00+00"
        );
        assert_eq!(
            enc(
                PgType::Timestamp,
                Value::Text("2024-01-01T12:00:00.5".into()),
                false
            ),
            b"2024-01-01 12:00:00.5"
        );
        let mut out = BytesMut::new();
        encode(
            PgType::Date,
            &Value::DateTime {
                year: 0,
                month: 0,
                day: 0,
                hour: 0,
                minute: 0,
                second: 0,
                micro: 0,
            },
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..], &(-1i32).to_be_bytes());
    }

    #[test]
    fn floats_like_postgres() {
        assert_eq!(float_text(1.0, false), "1");
        assert_eq!(float_text(0.1, false), "0.1");
        assert_eq!(float_text(1e20, false), "1e+20");
        assert_eq!(float_text(1.5e-5, false), "1.5e-05");
        assert_eq!(float_text(f64::NAN, false), "NaN");
        assert_eq!(float_text(-f64::INFINITY, false), "-Infinity");
        assert_eq!(float_text(1.1f32 as f64, true), "1.1");
    }

    #[test]
    fn params_range_nul_and_calendar() {
        let text = |ty, s: &str| decode_param(ty, 0, Some(s.as_bytes()));
        let code = |r: Result<Value, ProxyError>| match r {
            Err(ProxyError::Backend { code, message, .. }) => format!("{code} {message}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            code(text(PgType::Int4, "2147483648")),
            "22003 value \"2147483648\" is out of range for type integer"
        );
        assert_eq!(
            code(text(PgType::Int2, "-32769")),
            "22003 value \"-32769\" is out of range for type smallint"
        );
        assert_eq!(
            code(text(PgType::Int8, "99999999999999999999")),
            "22003 value \"99999999999999999999\" is out of range for type bigint"
        );
        assert!(code(text(PgType::Int4, "12x")).starts_with("22P02 "));
        assert_eq!(
            text(PgType::Int2, " -32768 ").ok(),
            Some(Value::Int(-32768))
        );
        assert_eq!(
            code(decode_param(PgType::Text, 1, Some(b"a\0b"))),
            "22021 invalid byte sequence for encoding \"UTF8\": 0x00"
        );
        assert!(code(text(PgType::Varchar, "\0")).starts_with("22021 "));
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "0000-00-00",
            "2024-13-01",
            "2024-04-31",
        ] {
            assert_eq!(
                code(text(PgType::Date, bad)),
                format!("22008 date/time field value out of range: \"{bad}\"")
            );
        }
        assert!(code(text(PgType::Timestamp, "2024-01-01 10:61:00")).starts_with("22008 "));
        assert!(code(text(PgType::Timestamptz, "2023-02-29 00:00:00+00")).starts_with("22008 "));
        assert!(code(text(PgType::Date, "soon")).starts_with("22P02 "));
        assert_eq!(
            text(PgType::Date, "2024-2-9").ok(),
            Some(Value::Text("2024-02-09".into()))
        );
        assert_eq!(
            text(PgType::Timestamp, "2024-01-01 00:30:00+02").ok(),
            Some(Value::Text("2024-01-01 00:30:00".into()))
        );
        assert_eq!(
            text(PgType::Timestamp, "2024-02-29 24:00:00").ok(),
            Some(Value::Text("2024-02-29 24:00:00".into()))
        );
    }

    #[test]
    fn params_decode() {
        assert_eq!(
            decode_param(PgType::Int4, 1, Some(&7i32.to_be_bytes())).unwrap(),
            Value::Int(7)
        );
        assert!(decode_param(PgType::Int4, 1, Some(&[1, 2])).is_err());
        assert_eq!(
            decode_param(PgType::Bool, 0, Some(b"true")).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            decode_param(PgType::Bytea, 0, Some(b"\\x00ff")).unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            decode_param(PgType::Timestamp, 1, Some(&0i64.to_be_bytes())).unwrap(),
            Value::Text("2000-01-01 00:00:00".into())
        );
        assert!(decode_param(PgType::Int8, 0, Some(b"abc")).is_err());
        assert_eq!(decode_param(PgType::Int8, 0, None).unwrap(), Value::Null);
    }

    #[test]
    fn numeric_scale_kept() {
        assert_eq!(numeric_rescale("12.5", 2), "12.50");
        assert_eq!(numeric_rescale("3", 2), "3.00");
        assert_eq!(numeric_rescale("-0.005", 2), "-0.01");
        assert_eq!(numeric_rescale("9.995", 2), "10.00");
        assert_eq!(numeric_rescale("-0.001", 2), "0.00");
        assert_eq!(numeric_rescale("1.25", 0), "1");
        assert_eq!(
            sqlite_decl_typmod(Some("NUMERIC(10, 2)")),
            ((10 << 16) | 2) + 4
        );
        assert_eq!(sqlite_decl_typmod(Some("NUMERIC")), -1);
        assert_eq!(sqlite_decl_typmod(Some("VARCHAR(20)")), 24);
        let mut out = BytesMut::new();
        encode_typmod(
            PgType::Numeric,
            ((10 << 16) | 2) + 4,
            &Value::Float(12.5),
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[4..], b"12.50");
    }

    #[test]
    fn sqlite_types() {
        assert_eq!(sqlite_decl_type(Some("NUMERIC(10, 2)")), PgType::Numeric);
        assert_eq!(sqlite_decl_type(Some("double precision")), PgType::Float8);
        assert_eq!(sqlite_decl_type(Some("INTEGER")), PgType::Int8);
        assert_eq!(sqlite_decl_type(Some("VARCHAR(20)")), PgType::Varchar);
        assert_eq!(
            sqlite_decl_type(Some("TIMESTAMP WITH TIME ZONE")),
            PgType::Timestamptz
        );
        assert_eq!(sqlite_decl_type(None), PgType::Unknown);
    }
}

#[cfg(test)]
mod mariadb_default_tests {
    #[test]
    fn mariadb_defaults() {
        use super::mariadb_string as m;
        assert_eq!(m("'x\\'y'").as_deref(), Some("x'y"));
        assert_eq!(m("'a''b\\\\c'").as_deref(), Some("a'b\\c"));
        assert_eq!(m("'new'").as_deref(), Some("new"));
        assert_eq!(m("0"), None);
        assert_eq!(m("current_timestamp(6)"), None);
        assert_eq!(m("'a' + 'b'"), None);
    }
}
