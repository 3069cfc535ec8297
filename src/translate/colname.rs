//! Output column names as PostgreSQL chooses them.
//!
//! Owns: PostgreSQL's `FigureColname` rules (parser/parse_target.c) applied to the select list of a
//! query before it is rewritten, so that `SELECT count(*)` answers with a column `count`, not the
//! engine's `COUNT(*)`. The names become aliases in the rendered SQL.
//! Must never: rename a column the client named (`AS x`), or a plain column reference (the engine
//! already names it as PostgreSQL does).

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};

use super::names::fold;
use super::types::classify;

/// `(name, strength)`: 2 = a real name (column, function), 1 = a fallback (type name, `case`),
/// 0 = none (`?column?`).
fn figure(e: &Expr) -> (Option<String>, u8) {
    match e {
        Expr::Identifier(i) => (Some(fold(i)), 2),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => (Some(fold(i)), 2),
            None => (None, 0),
        },
        Expr::Nested(inner) => figure(inner),
        Expr::Function(f) => match f.name.0.last().and_then(|p| p.as_ident()) {
            Some(i) => (Some(fold(i)), 2),
            None => (None, 0),
        },
        Expr::Cast {
            expr, data_type, ..
        } => {
            let (n, s) = figure(expr);
            if s > 1 {
                return (n, s);
            }
            match classify(data_type) {
                Ok(c) => (Some(c.ty.pg_name().to_string()), 1),
                Err(_) => (n, s),
            }
        }
        Expr::TypedString(ts) => match classify(&ts.data_type) {
            Ok(c) => (Some(c.ty.pg_name().to_string()), 1),
            Err(_) => (None, 0),
        },
        Expr::Case { else_result, .. } => {
            let (n, s) = else_result.as_deref().map_or((None, 0), figure);
            if s > 1 {
                (n, s)
            } else {
                (Some("case".into()), 1)
            }
        }
        Expr::Exists { .. } => (Some("exists".into()), 2),
        Expr::Subquery(q) => match first_item_name(q) {
            Some(n) => (Some(n), 2),
            None => (None, 0),
        },
        Expr::Array(_) => (Some("array".into()), 2),
        Expr::Tuple(_) => (Some("row".into()), 2),
        Expr::Extract { .. } => (Some("extract".into()), 2),
        Expr::Substring { .. } => (Some("substring".into()), 2),
        Expr::Trim { .. } => (Some("btrim".into()), 2),
        Expr::Position { .. } => (Some("position".into()), 2),
        Expr::Overlay { .. } => (Some("overlay".into()), 2),
        Expr::Collate { expr, .. } => figure(expr),
        _ => (None, 0),
    }
}

/// The name PostgreSQL gives an unnamed select-list expression.
pub(crate) fn figure_colname(e: &Expr) -> String {
    figure(e).0.unwrap_or_else(|| "?column?".into())
}

fn leftmost_select(body: &SetExpr) -> Option<&sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::Query(q) => leftmost_select(&q.body),
        SetExpr::SetOperation { left, .. } => leftmost_select(left),
        _ => None,
    }
}

fn first_item_name(q: &Query) -> Option<String> {
    let s = leftmost_select(&q.body)?;
    match s.projection.first()? {
        SelectItem::UnnamedExpr(e) => figure(e).0,
        SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
        _ => None,
    }
}

/// For each item of the query's (leftmost) select list: the PostgreSQL name to give it as an alias,
/// or `None` when it needs none (a column reference, an alias, a wildcard).
pub(crate) fn plan(q: &Query) -> Vec<Option<String>> {
    let Some(s) = leftmost_select(&q.body) else {
        return vec![];
    };
    s.projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => None,
            SelectItem::UnnamedExpr(e) => Some(figure_colname(e)),
            _ => None,
        })
        .collect()
}

fn leftmost_select_mut(body: &mut SetExpr) -> Option<&mut sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::Query(q) => leftmost_select_mut(&mut q.body),
        SetExpr::SetOperation { left, .. } => leftmost_select_mut(left),
        _ => None,
    }
}

/// Gives the (rewritten) select list the aliases computed by [`plan`] on the original.
pub(crate) fn apply(q: &mut Query, plan: &[Option<String>]) {
    let Some(s) = leftmost_select_mut(&mut q.body) else {
        return;
    };
    if s.projection.len() != plan.len() {
        return;
    }
    for (item, name) in s.projection.iter_mut().zip(plan) {
        let Some(name) = name else { continue };
        if let SelectItem::UnnamedExpr(e) = item {
            let expr = std::mem::replace(e, Expr::Value(sqlparser::ast::Value::Null.into()));
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name.clone()),
            };
        }
    }
}
