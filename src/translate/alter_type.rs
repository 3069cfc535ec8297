//! `ALTER TABLE t ALTER COLUMN c [SET DATA] TYPE newtype` for MySQL and SQLite binds: which
//! conversions are taken, and PostgreSQL's answer for the rows that do not fit.
//!
//! Owns: reading the statement ([`parse`]), the conversion rule ([`conversion`]: PostgreSQL converts
//! without `USING` only along assignment casts, 42804 otherwise), the probe that finds a value the
//! new type cannot hold before anything changes ([`probe`]: 22003 / 22001 as PostgreSQL), the SQLite
//! copy expression of the rebuilt column ([`sqlite_copy`]) and PostgreSQL's name of the new type
//! ([`sql_name`]). The executor (`backend/translated/session/schema.rs`) reads the column's current
//! type and runs the probe and the change (MariaDB `MODIFY`, SQLite rebuild).
//!
//! Must never: take a conversion whose stored result would differ from PostgreSQL's (a boolean or a
//! timestamp turned into text, a time zone shift): those are refused (0A000); nor run anything.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, Expr, Statement};

use super::error::{Result, TranslateError};
use super::names::{fold, quote};
use super::types::{classify, PgType};
use super::Target;

/// The parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterType {
    pub table: String,
    pub column: String,
    pub to: PgType,
}

/// What the stored column holds, as far as a conversion cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Integer,
    /// numeric / decimal.
    Exact,
    Float,
    /// text, varchar, char.
    Text,
    Bool,
    /// date, time, timestamp, timestamptz.
    Calendar,
    /// bytea, json, jsonb, uuid, anything else.
    Other,
}

impl Family {
    pub fn of(ty: &PgType) -> Family {
        match ty {
            PgType::Int2 | PgType::Int4 | PgType::Int8 => Family::Integer,
            PgType::Numeric(_) => Family::Exact,
            PgType::Float4 | PgType::Float8 => Family::Float,
            PgType::Text | PgType::Varchar(_) | PgType::Char(_) => Family::Text,
            PgType::Bool => Family::Bool,
            PgType::Date | PgType::Time | PgType::Timestamp | PgType::Timestamptz => {
                Family::Calendar
            }
            PgType::Bytea | PgType::Json | PgType::Jsonb | PgType::Uuid => Family::Other,
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Family::Integer | Family::Exact | Family::Float)
    }
}

/// How a column of family `from` becomes `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Numbers between numeric types, text between text types, integers to text: taken.
    Taken,
    /// PostgreSQL has no assignment cast: 42804 (`USING` needed).
    NeedsUsing,
    /// PostgreSQL converts, but the engines would store something else: 0A000.
    Refused,
}

/// PostgreSQL's rule (an assignment cast, or any type to a text type) narrowed to what both
/// engines store as PostgreSQL would.
pub fn conversion(from: Family, to: &PgType) -> Conversion {
    let into = Family::of(to);
    if matches!(to, PgType::Char(_)) {
        // bpchar pads with blanks, MariaDB's CHAR strips them.
        return Conversion::Refused;
    }
    match (from, into) {
        (f, t) if f.numeric() && t.numeric() => Conversion::Taken,
        (Family::Text, Family::Text) | (Family::Integer, Family::Text) => Conversion::Taken,
        (Family::Bool, Family::Bool) => Conversion::Taken,
        // any type → text is an assignment cast in PostgreSQL, but its text here would differ
        // (`true` vs `1`, float and timestamp spellings).
        (_, Family::Text) => Conversion::Refused,
        (Family::Calendar, Family::Calendar) => Conversion::Refused,
        (a, b) if a == b => Conversion::Refused,
        _ => Conversion::NeedsUsing,
    }
}

/// PostgreSQL's `format_type` of a type, as in its messages.
pub fn sql_name(ty: &PgType) -> String {
    match ty {
        PgType::Int2 => "smallint".into(),
        PgType::Int4 => "integer".into(),
        PgType::Int8 => "bigint".into(),
        PgType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
        PgType::Numeric(None) => "numeric".into(),
        PgType::Float4 => "real".into(),
        PgType::Float8 => "double precision".into(),
        PgType::Bool => "boolean".into(),
        PgType::Text => "text".into(),
        PgType::Varchar(Some(n)) => format!("character varying({n})"),
        PgType::Varchar(None) => "character varying".into(),
        PgType::Char(n) => format!("character({})", n.unwrap_or(1)),
        PgType::Bytea => "bytea".into(),
        PgType::Date => "date".into(),
        PgType::Time => "time without time zone".into(),
        PgType::Timestamp => "timestamp without time zone".into(),
        PgType::Timestamptz => "timestamp with time zone".into(),
        PgType::Json => "json".into(),
        PgType::Jsonb => "jsonb".into(),
        PgType::Uuid => "uuid".into(),
    }
}

/// PostgreSQL's 42804 for a conversion without an assignment cast.
pub fn needs_using(column: &str, to: &PgType) -> TranslateError {
    TranslateError::CannotCast {
        column: column.into(),
        ty: sql_name(to),
    }
}

/// `sql` read as `ALTER TABLE t ALTER COLUMN c [SET DATA] TYPE ty`; `None` when it is another
/// statement. `USING c` (the column itself) is no `USING`; any other `USING` is refused.
pub fn parse(sql: &str) -> Option<Result<AlterType>> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let [Statement::AlterTable(at)] = stmts.as_mut_slice() else {
        return None;
    };
    let [AlterTableOperation::AlterColumn {
        column_name,
        op: AlterColumnOperation::SetDataType {
            data_type, using, ..
        },
    }] = at.operations.as_slice()
    else {
        return None;
    };
    let column = fold(column_name);
    let data_type = data_type.clone();
    let using = using.clone();
    let table = match super::walk::table_name(&mut at.name) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    Some((|| {
        match &using {
            None => {}
            Some(Expr::Identifier(i)) if fold(i) == column => {}
            Some(_) => {
                return Err(TranslateError::unsupported(
                    "ALTER COLUMN … TYPE … USING an expression",
                ))
            }
        }
        let declared = classify(&data_type)?;
        if declared.serial {
            return Err(TranslateError::unsupported("ALTER COLUMN … TYPE serial"));
        }
        Ok(AlterType {
            table,
            column,
            to: declared.ty,
        })
    })())
}

/// A query that returns a row when some value of the column does not fit the new type, and the
/// error PostgreSQL gives then. `None`: every value fits.
pub fn probe(target: Target, a: &AlterType, from: Family) -> Option<(String, TranslateError)> {
    let c = quote(&a.column, target);
    let t = quote(&a.table, target);
    let (cond, error) = match (&a.to, from) {
        (PgType::Int2 | PgType::Int4 | PgType::Int8, _) => {
            let (lo, hi) = match a.to {
                PgType::Int2 => ("-32768", "32767"),
                PgType::Int4 => ("-2147483648", "2147483647"),
                _ => ("-9223372036854775808", "9223372036854775807"),
            };
            let v = if from == Family::Integer {
                c.clone()
            } else {
                format!("round({c})")
            };
            (
                format!("{v} NOT BETWEEN {lo} AND {hi}"),
                TranslateError::OutOfRange(format!("{} out of range", sql_name(&a.to))),
            )
        }
        (PgType::Numeric(Some((p, s))), _) => (
            format!("abs(round({c}, {s})) >= 1e{}", p.saturating_sub(*s)),
            TranslateError::OutOfRange("numeric field overflow".into()),
        ),
        (PgType::Varchar(Some(n)), _) => {
            let len = match target {
                Target::MySql => "CHAR_LENGTH",
                Target::Sqlite => "length",
            };
            (
                format!("{len}({c}) > {n}"),
                TranslateError::ValueTooLong(format!(
                    "value too long for type {}",
                    sql_name(&a.to)
                )),
            )
        }
        _ => return None,
    };
    Some((format!("SELECT 1 FROM {t} WHERE {cond} LIMIT 1"), error))
}

/// SQLite: the expression the rebuild copies into the new column (PostgreSQL rounds a number
/// into an integer or a numeric's scale, a float's half to even; SQLite would keep `2.5` in an INT
/// column).
pub fn sqlite_copy(column: &str, from: Family, to: &PgType) -> String {
    let c = quote(column, Target::Sqlite);
    match (to, from) {
        (PgType::Int2 | PgType::Int4 | PgType::Int8, Family::Exact) => {
            format!("CAST(round({c}) AS INTEGER)")
        }
        // float → integer is rint(): a half goes to the even neighbour (2.5 → 2, 3.5 → 4).
        (PgType::Int2 | PgType::Int4 | PgType::Int8, Family::Float) => format!(
            "CAST(CASE WHEN abs({c} - CAST({c} AS INTEGER)) = 0.5 THEN 2 * round({c} / 2.0) ELSE round({c}) END AS INTEGER)"
        ),
        (PgType::Numeric(Some((_, s))), Family::Exact | Family::Float) => {
            format!("round({c}, {s})")
        }
        (PgType::Float4 | PgType::Float8, _) => format!("CAST({c} AS REAL)"),
        (PgType::Text | PgType::Varchar(_), Family::Integer) => format!("CAST({c} AS TEXT)"),
        _ => c,
    }
}

/// SQLite: the declared type of the new column and its range or calendar check (or `""`).
pub fn sqlite_column(a: &AlterType) -> (String, String) {
    (
        a.to.sqlite_column(),
        super::ddl::sqlite_type_check(&a.column, &a.to),
    )
}

/// `text` or `varchar` without a length (MariaDB's LONGTEXT, which takes no index).
pub fn unbounded_text(ty: &PgType) -> bool {
    matches!(ty, PgType::Text | PgType::Varchar(None))
}

/// MySQL: the column type of `MODIFY` and the `pg:` comment naming the PostgreSQL type.
pub fn mysql_column(a: &AlterType) -> (String, String) {
    (
        a.to.mysql_column(false),
        format!("{}{}", super::types::MYSQL_COMMENT_PREFIX, a.to.pg_name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let a = parse("ALTER TABLE t ALTER COLUMN c TYPE varchar(5)")
            .unwrap()
            .unwrap();
        assert_eq!(a.to, PgType::Varchar(Some(5)));
        assert_eq!(a.column, "c");
        let a = parse("alter table \"T\" alter c set data type bigint using c")
            .unwrap()
            .unwrap();
        assert_eq!((a.table.as_str(), a.to), ("T", PgType::Int8));
        assert!(
            parse("ALTER TABLE t ALTER COLUMN c TYPE int USING c::int + 1")
                .unwrap()
                .is_err()
        );
        assert!(parse("ALTER TABLE t ALTER COLUMN c SET NOT NULL").is_none());
    }

    #[test]
    fn conversions_follow_postgres() {
        assert_eq!(
            conversion(Family::Integer, &PgType::Int2),
            Conversion::Taken
        );
        assert_eq!(
            conversion(Family::Float, &PgType::Numeric(Some((5, 2)))),
            Conversion::Taken
        );
        assert_eq!(
            conversion(Family::Text, &PgType::Int4),
            Conversion::NeedsUsing
        );
        assert_eq!(
            conversion(Family::Integer, &PgType::Bool),
            Conversion::NeedsUsing
        );
        assert_eq!(conversion(Family::Bool, &PgType::Text), Conversion::Refused);
        assert_eq!(
            conversion(Family::Integer, &PgType::Varchar(Some(3))),
            Conversion::Taken
        );
        assert_eq!(
            conversion(Family::Text, &PgType::Date),
            Conversion::NeedsUsing
        );
    }

    #[test]
    fn probes_name_postgres_errors() {
        let a = AlterType {
            table: "t".into(),
            column: "c".into(),
            to: PgType::Varchar(Some(3)),
        };
        let (sql, e) = probe(Target::MySql, &a, Family::Text).unwrap();
        assert_eq!(sql, "SELECT 1 FROM `t` WHERE CHAR_LENGTH(`c`) > 3 LIMIT 1");
        assert_eq!(e.sqlstate(), "22001");
        assert_eq!(
            e.to_string(),
            "value too long for type character varying(3)"
        );
        let a = AlterType {
            to: PgType::Int4,
            ..a
        };
        let (sql, e) = probe(Target::Sqlite, &a, Family::Float).unwrap();
        assert!(
            sql.contains("round(\"c\") NOT BETWEEN -2147483648"),
            "{sql}"
        );
        assert_eq!(e.to_string(), "integer out of range");
        assert!(probe(
            Target::Sqlite,
            &AlterType {
                to: PgType::Text,
                ..a
            },
            Family::Integer
        )
        .is_none());
    }
}
