//! `generate_series(start, stop[, step])` of integers, or of timestamps by an interval literal, as a
//! FROM item, for MySQL/MariaDB and SQLite.
//!
//! Owns: the derived table that stands for the call on both engines, a recursive CTE counting from
//! `start` by `step` while within `stop` (`(WITH RECURSIVE … SELECT v AS col FROM …) AS alias`), and
//! the output column's name as PostgreSQL gives it (the alias's column, else the alias, else
//! `generate_series`). The walk ([`super::walk`]) decides whether a call qualifies (int4 bounds free
//! of column references, a non-zero integer literal step) and walks the bounds first.
//!
//! Must never: evaluate anything, or produce rows PostgreSQL would not (MariaDB stops a recursive CTE
//! silently after `max_recursive_iterations`: the session setup raises it, see
//! [`super::MYSQL_SESSION_SETUP`]).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
    TableAlias, TableFactor, VisitMut, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::error::{Result, TranslateError};
use super::interval::{signed_lit, IntervalValue};
use super::names::fold;
use super::Target;

/// The function's name as PostgreSQL reads it in FROM (`generate_series`, `pg_catalog.…`).
pub(crate) fn is_series(name: &ObjectName) -> bool {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => fold(i) == "generate_series",
        [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(i)] => {
            fold(s) == "pg_catalog" && fold(i) == "generate_series"
        }
        _ => false,
    }
}

/// The output column's name: `AS g(i)` → `i`, `AS g` → `g`, none → `generate_series`.
pub(crate) fn column_name(alias: Option<&TableAlias>) -> String {
    match alias {
        Some(a) => match a.columns.first() {
            Some(c) => fold(&c.name),
            None => fold(&a.name),
        },
        None => "generate_series".into(),
    }
}

/// The step of a series.
pub(crate) enum Step {
    /// An integer (int4 bounds).
    Int(i32),
    /// An interval whose fields are all ≥ 0 (`up`) or all ≤ 0 (timestamp bounds).
    Interval { iv: IntervalValue, up: bool },
}

/// The derived table for `generate_series(start, stop, step)` (bounds already translated).
pub(crate) fn derived(
    target: Target,
    start: Expr,
    stop: Expr,
    step: Step,
    alias: Option<TableAlias>,
) -> Result<TableFactor> {
    let column = column_name(alias.as_ref());
    let up = match step {
        Step::Int(n) => n > 0,
        Step::Interval { up, .. } => up,
    };
    let cmp = if up { "<=" } else { ">=" };
    // Integers are computed in 64 bits (the anchor's type is the CTE column's on MySQL): `v + step`
    // of the last row may leave int4 without an error, as PostgreSQL's own loop stops there too.
    // Timestamps on SQLite are compared as text: start and stop are normalised to the form
    // bindproxy_ts_shift writes.
    let template = format!(
        "WITH RECURSIVE bindproxy_series (bindproxy_v) AS (\
           SELECT bindproxy_start \
           UNION ALL SELECT bindproxy_next FROM bindproxy_series \
           WHERE bindproxy_next {cmp} bindproxy_stop) \
         SELECT bindproxy_v AS bindproxy_column FROM bindproxy_series WHERE bindproxy_v {cmp} bindproxy_stop"
    );
    let v = Expr::Identifier(Ident::new("bindproxy_v"));
    let zero = IntervalValue::default();
    let (anchor, stop, next) = match step {
        Step::Int(n) => (
            super::walk::cast_to_bigint(target, start),
            stop,
            Expr::BinaryOp {
                left: Box::new(v),
                op: BinaryOperator::Plus,
                right: Box::new(Expr::Nested(Box::new(signed_lit(i64::from(n))))),
            },
        ),
        Step::Interval { iv, .. } => match target {
            Target::MySql => (
                super::walk::cast_expr(start, "DATETIME(6)"),
                stop,
                super::interval::shift(target, v, iv, false),
            ),
            Target::Sqlite => (
                super::interval::shift(target, start, zero, false),
                super::interval::shift(target, stop, zero, false),
                super::interval::shift(target, v, iv, false),
            ),
        },
    };
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &template)
        .map_err(|e| TranslateError::Parse(e.to_string()))?;
    let mut query: Query = match parsed.into_iter().next() {
        Some(Statement::Query(q)) => *q,
        _ => return Err(TranslateError::unsupported("generate_series()")),
    };
    let mut fill = Fill {
        start: Some(anchor),
        stop,
        next,
    };
    let _ = query.visit(&mut fill);
    if let SetExpr::Select(s) = query.body.as_mut() {
        for item in &mut s.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                *alias = Ident::with_quote('"', column.clone());
            }
        }
    }
    let alias = match alias {
        Some(mut a) => {
            a.columns.clear();
            a
        }
        None => TableAlias {
            explicit: true,
            name: Ident::with_quote('"', "generate_series"),
            columns: vec![],
            at: None,
        },
    };
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias),
        sample: None,
    })
}

/// Puts the bounds in place of the template's `bindproxy_start` (once) and `bindproxy_stop`.
struct Fill {
    start: Option<Expr>,
    stop: Expr,
    next: Expr,
}

impl VisitorMut for Fill {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(i) = e {
            match i.value.as_str() {
                "bindproxy_start" => {
                    if let Some(s) = self.start.take() {
                        *e = s;
                    }
                }
                "bindproxy_stop" => *e = self.stop.clone(),
                "bindproxy_next" => *e = self.next.clone(),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let q = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT * FROM generate_series(1, 3) AS g(i), generate_series(1, 2) AS h, generate_series(1, 2)",
        )
        .unwrap();
        let Statement::Query(q) = &q[0] else { panic!() };
        let SetExpr::Select(s) = q.body.as_ref() else {
            panic!()
        };
        let aliases: Vec<String> = s
            .from
            .iter()
            .map(|f| match &f.relation {
                TableFactor::Table { name, alias, .. } => {
                    assert!(is_series(name));
                    column_name(alias.as_ref())
                }
                _ => panic!(),
            })
            .collect();
        assert_eq!(aliases, ["i", "h", "generate_series"]);
    }
}
