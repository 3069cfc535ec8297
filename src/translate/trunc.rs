//! `date_trunc(field, x)`, and `extract(field FROM x)` / `date_part('field', x)` of the integer fields,
//! for MySQL/MariaDB and SQLite.
//!
//! `extract` of `year`, `quarter`, `month`, `day`, `dow`, `doy` (and `hour`, `minute` of a timestamp) is
//! the engine's own (`YEAR(x)`, `DAYOFWEEK(x) - 1`, …; SQLite `strftime`), typed numeric (PostgreSQL 14+)
//! or float8 for `date_part`; `epoch`, `second` and the others (fractions) are refused.
//!
//! Owns: the fields bindproxy truncates to (`year`, `quarter`, `month`, `week` — the Monday —, `day`,
//! `hour`, `minute`, `second`) and the engine expression for each: MySQL builds the truncated
//! DATETIME(6) from `DATE_FORMAT`/`DATE`/`WEEKDAY`/`QUARTER`; SQLite calls bindproxy's own function
//! ([`super::SQLITE_DATE_TRUNC_FUNCTION`]). The result type (timestamp for a timestamp, timestamptz for
//! a timestamptz or, as PostgreSQL converts it, for a date) is [`super::restype`]'s.
//!
//! Must never: truncate to a field it does not list (refused), or in a zone other than UTC, the one
//! translated binds store and print timestamptz in.

use sqlparser::ast::{BinaryOperator, DateTimeField, Expr, Interval};

use super::walk::{call, cast_expr, number_lit, string_lit};
use super::Target;

/// The fields `date_trunc` takes here.
pub(crate) const FIELDS: &[&str] = &[
    "year", "quarter", "month", "week", "day", "hour", "minute", "second",
];

/// The integer fields `extract` takes here: of a date, and of a timestamp only.
pub(crate) const EXTRACT_DATE_FIELDS: &[&str] = &["year", "quarter", "month", "day", "dow", "doy"];
pub(crate) const EXTRACT_TIME_FIELDS: &[&str] = &["hour", "minute"];

/// `extract(field FROM x)` on the target, `field` one of the lists above.
pub(crate) fn extract(t: Target, field: &str, x: Expr) -> Expr {
    match t {
        Target::MySql => match field {
            "year" => call("YEAR", vec![x]),
            "quarter" => call("QUARTER", vec![x]),
            "month" => call("MONTH", vec![x]),
            "day" => call("DAYOFMONTH", vec![x]),
            "dow" => Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(call("DAYOFWEEK", vec![x])),
                op: BinaryOperator::Minus,
                right: Box::new(number_lit("1")),
            })),
            "doy" => call("DAYOFYEAR", vec![x]),
            "hour" => call("HOUR", vec![x]),
            _ => call("MINUTE", vec![x]),
        },
        Target::Sqlite => {
            let part = |pattern: &str, x: Expr| {
                cast_expr(call("strftime", vec![string_lit(pattern), x]), "INTEGER")
            };
            match field {
                "year" => part("%Y", x),
                "quarter" => Expr::Nested(Box::new(Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(Expr::BinaryOp {
                        left: Box::new(part("%m", x)),
                        op: BinaryOperator::Plus,
                        right: Box::new(number_lit("2")),
                    }))),
                    op: BinaryOperator::Divide,
                    right: Box::new(number_lit("3")),
                })),
                "month" => part("%m", x),
                "day" => part("%d", x),
                "dow" => part("%w", x),
                "doy" => part("%j", x),
                "hour" => part("%H", x),
                _ => part("%M", x),
            }
        }
    }
}

/// `date_trunc(field, x)` on the target; `field` is one of [`FIELDS`], `x` a timestamp (a date is
/// made one here on MySQL).
pub(crate) fn render(t: Target, field: &str, x: Expr) -> Expr {
    match t {
        Target::Sqlite => call(
            super::SQLITE_DATE_TRUNC_FUNCTION,
            vec![string_lit(field), x],
        ),
        Target::MySql => {
            let formatted = |pattern: &str, x: Expr| {
                cast_expr(
                    call("DATE_FORMAT", vec![x, string_lit(pattern)]),
                    "DATETIME(6)",
                )
            };
            let add = |base: Expr, amount: Expr, unit: DateTimeField| {
                call(
                    "DATE_ADD",
                    vec![
                        base,
                        Expr::Interval(Interval {
                            value: Box::new(Expr::Nested(Box::new(amount))),
                            leading_field: Some(unit),
                            leading_precision: None,
                            last_field: None,
                            fractional_seconds_precision: None,
                        }),
                    ],
                )
            };
            match field {
                "year" => formatted("%Y-01-01", x),
                "quarter" => {
                    // the year's start plus 3 × (quarter - 1) months
                    let months = Expr::BinaryOp {
                        left: Box::new(Expr::Nested(Box::new(Expr::BinaryOp {
                            left: Box::new(call("QUARTER", vec![x.clone()])),
                            op: BinaryOperator::Minus,
                            right: Box::new(number_lit("1")),
                        }))),
                        op: BinaryOperator::Multiply,
                        right: Box::new(number_lit("3")),
                    };
                    add(formatted("%Y-01-01", x), months, DateTimeField::Month)
                }
                "month" => formatted("%Y-%m-01", x),
                "week" => {
                    // the Monday on or before: the day minus WEEKDAY (0 for Monday) days
                    let back = Expr::UnaryOp {
                        op: sqlparser::ast::UnaryOperator::Minus,
                        expr: Box::new(call("WEEKDAY", vec![x.clone()])),
                    };
                    add(
                        cast_expr(call("DATE", vec![x]), "DATETIME(6)"),
                        back,
                        DateTimeField::Day,
                    )
                }
                "day" => cast_expr(call("DATE", vec![x]), "DATETIME(6)"),
                "hour" => formatted("%Y-%m-%d %H:00:00", x),
                "minute" => formatted("%Y-%m-%d %H:%i:00", x),
                _ => formatted("%Y-%m-%d %H:%i:%s", x),
            }
        }
    }
}
