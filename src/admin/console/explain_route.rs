//! `EXPLAIN ROUTE <sql>`: the tables of a query string, the bind it runs on and why, placed by
//! [`place_all`] — the one path the daemon's placement and `bindproxy route` share (a new
//! session, outside any transaction, default `search_path`).

use super::answer::{Answer, ColType, Column, Value};
use crate::config::CrossBind;
use crate::error::ProxyError;
use crate::proxy::Proxy;
use crate::router::{
    default_search_path, Placement, RouteError, Router, SearchPathView, SessionView,
};
use crate::sql::{analyze_uncached, split_object_list, split_statements, Analysis};

pub const COLUMNS: &[Column] = &[
    ("statement", ColType::Int8),
    ("tables", ColType::Text),
    ("bind", ColType::Text),
    ("why", ColType::Text),
];

/// The daemon's placement for a new session outside any transaction: one placement, or — for a
/// query string whose statements go to several binds, which the daemon runs statement by
/// statement in one transaction, or one statement listing objects of several binds, which it
/// splits per bind (`split_lists`: unless `transactions.cross_bind: reject`) — one per statement.
pub fn place_all(
    router: &Router,
    analysis: &Analysis,
    sql: &str,
    split_lists: bool,
) -> Result<Vec<Placement>, ProxyError> {
    if let Some(e) = &analysis.error {
        return Err(ProxyError::Analysis(e.clone()));
    }
    let path = default_search_path();
    let view = SessionView {
        path: SearchPathView {
            schemas: &path,
            default: &path,
            user: "",
        },
        open_transaction: None,
        last_catalog: None,
    };
    match router.place(analysis, sql, view) {
        Ok(p) => Ok(vec![p]),
        // TRUNCATE a, b / DROP TABLE a, b: each bind its share (`sql::split_object_list`)
        Err(RouteError::CrossBind(cross)) if analysis.statements.len() == 1 && split_lists => {
            let bind_of = |t: &crate::sql::TableName| {
                cross
                    .tables
                    .iter()
                    .find(|(n, _)| n == t)
                    .map(|(_, b)| b.clone())
            };
            let Some(pieces) = split_object_list(sql, bind_of) else {
                return Err(ProxyError::Route(RouteError::CrossBind(cross)));
            };
            pieces
                .into_iter()
                .map(|piece| {
                    let a = analyze_uncached(&piece.sql);
                    router
                        .place(&a, &piece.sql, view)
                        .map_err(ProxyError::Route)
                })
                .collect()
        }
        Err(RouteError::CrossBind(_)) if analysis.statements.len() > 1 => {
            let pieces = split_statements(sql).map_err(ProxyError::Analysis)?;
            pieces
                .into_iter()
                .map(|piece| {
                    let a = analyze_uncached(piece);
                    match &a.error {
                        Some(e) => Err(ProxyError::Analysis(e.clone())),
                        None => router.place(&a, piece, view).map_err(ProxyError::Route),
                    }
                })
                .collect()
        }
        Err(e) => Err(ProxyError::Route(e)),
    }
}

/// A relation as `route` prints it: schema-qualified (catalog relations in `pg_catalog`,
/// unqualified user relations in the default schema).
pub fn qualified(t: &crate::sql::TableName, default_schema: &str) -> String {
    match &t.schema {
        Some(_) => t.to_string(),
        None if t.is_catalog() => format!("pg_catalog.{t}"),
        None => format!("{default_schema}.{t}"),
    }
}

pub fn answer(proxy: &Proxy, sql: &str) -> Result<Answer, ProxyError> {
    let analysis = analyze_uncached(sql);
    let split = proxy.config.transactions.cross_bind != CrossBind::Reject;
    let live = proxy.live_full();
    let placed = place_all(&live.router, &analysis, sql, split)?;
    let several = placed.len() > 1;
    let rows = placed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let tables: Vec<String> = p
                .route
                .tables
                .iter()
                .map(|(t, _)| qualified(t, &live.config.default_schema))
                .collect();
            let mut why: Vec<String> = p
                .route
                .tables
                .iter()
                .filter(|(t, _)| !t.is_catalog())
                .map(|(t, _)| format!("{t}: {}", live.router.why(t).1))
                .collect();
            if p.floating {
                why.push(match p.route.tables.is_empty() {
                    true => "no table: runs where the session is (the open transaction's bind, else the default bind)".into(),
                    false => "catalog relations only: the catalog's bind, else where the session is".into(),
                });
            }
            if several {
                why.push(format!(
                    "statement {} of {}, all in one transaction",
                    i + 1,
                    placed.len()
                ));
            }
            vec![
                Value::from(i + 1),
                tables.join(", ").into(),
                p.bind.as_str().into(),
                why.join("; ").into(),
            ]
        })
        .collect();
    Ok(Answer::rows(COLUMNS, rows))
}
