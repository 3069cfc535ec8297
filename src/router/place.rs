//! Where one query string runs, given what the session knows: the one code path the daemon and
//! `bindproxy route` share.
//!
//! Owns: [`Router::place`]: the route of the statement (`route.rs`), then, for statements that
//! touch no user relation, the bind that answers them: the catalog bind for a catalog query when
//! there is one (`catalog:`), else the open transaction's, else — for a catalog query — the
//! PostgreSQL bind of a mapped table named in its string literals (psql's
//! `\d users`), or for a follow-up that names only an OID the bind the last such query went to,
//! else the default bind.
//!
//! Must never: touch connections or session state (the caller passes a [`SessionView`] in and
//! applies the returned [`CatalogFollow`]), or let a catalog hint pick a MySQL/SQLite bind, which
//! has no PostgreSQL catalog to ask.

use super::{Route, RouteError, Router, SearchPathView};
use crate::sql::{string_literals, Analysis, TableName};

/// What the session knows that placement depends on.
#[derive(Clone, Copy, Debug)]
pub struct SessionView<'a> {
    /// The session's `search_path`.
    pub path: SearchPathView<'a>,
    /// The bind of the open transaction, if one is open on a bind.
    pub open_transaction: Option<&'a str>,
    /// Where the last catalog query that named a mapped table went.
    pub last_catalog: Option<&'a str>,
}

/// How the session's memory of the last catalog bind changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogFollow {
    /// Leave it.
    Keep,
    /// This query named a mapped table: remember its bind.
    Set(String),
    /// Forget it.
    Clear,
}

/// Where a query string runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The relations and their binds (see [`Route`]).
    pub route: Route,
    /// The bind it runs on.
    pub bind: String,
    /// It touches no user relation: it runs wherever the session is (the open transaction).
    pub floating: bool,
    /// What to remember for follow-up catalog queries.
    pub catalog: CatalogFollow,
}

impl Router {
    /// Places an analysed query string. `sql` is its text (catalog hints are read from its
    /// literals).
    pub fn place(
        &self,
        analysis: &Analysis,
        sql: &str,
        session: SessionView<'_>,
    ) -> Result<Placement, RouteError> {
        let route = self.route(analysis, session.path)?;
        let default = self.default_bind().to_owned();
        let (bind, floating, catalog) = match (&route.bind, session.open_transaction) {
            (Some(b), _) => (b.clone(), false, CatalogFollow::Clear),
            (None, _)
                if !route.tables.is_empty() && self.catalog().is_some() && reads(analysis) =>
            {
                (
                    self.catalog().unwrap_or(&default).to_owned(),
                    false,
                    CatalogFollow::Keep,
                )
            }
            (None, Some(open)) => (open.to_owned(), true, CatalogFollow::Keep),
            (None, None) if route.tables.is_empty() => (default, true, CatalogFollow::Keep),
            (None, None) => match self.catalog_hint(sql) {
                Some(b) => (b.to_owned(), true, CatalogFollow::Set(b.to_owned())),
                None if names_an_oid(sql) => (
                    session.last_catalog.map(str::to_owned).unwrap_or(default),
                    true,
                    CatalogFollow::Keep,
                ),
                None => (default, true, CatalogFollow::Clear),
            },
        };
        Ok(Placement {
            route,
            bind,
            floating,
            catalog,
        })
    }

    /// The one PostgreSQL bind that the mapped table names in a statement's string literals
    /// point to.
    fn catalog_hint(&self, sql: &str) -> Option<&str> {
        let mut found: Option<&str> = None;
        for literal in string_literals(sql) {
            for word in literal.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
                if word.is_empty() {
                    continue;
                }
                let name = match word.rsplit_once('.') {
                    Some((schema, name)) => TableName::new(Some(schema), name),
                    None => TableName::new(None, word),
                };
                if let Some(bind) = self.bind_for_table(&name) {
                    match found {
                        Some(b) if b != bind => return None,
                        _ => found = Some(bind),
                    }
                }
            }
        }
        found.filter(|b| self.has_catalog(b))
    }
}

/// Only queries read the shadow catalog: anything else naming a catalog relation (`CREATE TABLE
/// pg_x`, `EXPLAIN`, `COPY`) keeps going where it went without one.
fn reads(analysis: &Analysis) -> bool {
    analysis
        .statements
        .iter()
        .all(|s| s.kind == crate::sql::StatementKind::Select)
}

/// True when a string literal of the statement is a number: an OID, as in `WHERE c.oid = '16385'`.
fn names_an_oid(sql: &str) -> bool {
    string_literals(sql)
        .iter()
        .any(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::default_search_path;
    use crate::sql::analyze_uncached;

    #[test]
    fn catalog_queries_follow_the_named_table() {
        let rules = vec![
            ("users".to_owned(), "users".to_owned()),
            ("logs".to_owned(), "lite".to_owned()),
        ];
        let names = ["main".to_owned(), "users".to_owned(), "lite".to_owned()];
        let r = Router::new(&rules, "main", "public")
            .expect("rules")
            .with_binds(names.iter())
            .with_catalog_binds(["main", "users"]);
        let path = default_search_path();
        let view = SessionView {
            path: SearchPathView {
                schemas: &path,
                default: &path,
                user: "app",
            },
            open_transaction: None,
            last_catalog: None,
        };
        let place = |sql: &str, view: SessionView<'_>| {
            r.place(&analyze_uncached(sql), sql, view).expect("placed")
        };
        let p = place("SELECT oid FROM pg_class WHERE relname = 'users'", view);
        assert_eq!(
            (p.bind.as_str(), p.catalog),
            ("users", CatalogFollow::Set("users".into()))
        );
        let p = place(
            "SELECT * FROM pg_attribute WHERE attrelid = '16385'",
            SessionView {
                last_catalog: Some("users"),
                ..view
            },
        );
        assert_eq!(p.bind, "users");
        // no PostgreSQL catalog on a translated bind: the default bind answers
        let p = place("SELECT oid FROM pg_class WHERE relname = 'logs'", view);
        assert_eq!(p.bind, "main");
        // inside a transaction, where the transaction is
        let p = place(
            "SELECT oid FROM pg_class WHERE relname = 'users'",
            SessionView {
                open_transaction: Some("main"),
                ..view
            },
        );
        assert_eq!((p.bind.as_str(), p.floating), ("main", true));
        // an E'…' literal is read as PostgreSQL reads it
        let p = place(
            "SELECT oid FROM pg_class WHERE relname = E'us\\'ers' OR relname = 'users'",
            view,
        );
        assert_eq!(p.bind, "users");
    }

    #[test]
    fn with_a_catalog_bind_catalog_queries_go_there() {
        let rules = vec![
            ("users".to_owned(), "users".to_owned()),
            ("logs".to_owned(), "lite".to_owned()),
        ];
        let names = ["main".to_owned(), "users".to_owned(), "lite".to_owned()];
        let r = Router::new(&rules, "main", "public")
            .expect("rules")
            .with_binds(names.iter())
            .with_catalog_binds(["main", "users"])
            .with_catalog(Some("cat"));
        let path = default_search_path();
        let view = SessionView {
            path: SearchPathView {
                schemas: &path,
                default: &path,
                user: "app",
            },
            open_transaction: Some("users"),
            last_catalog: None,
        };
        let place = |sql: &str| r.place(&analyze_uncached(sql), sql, view);
        // catalog-only, even inside a transaction; lookups by name too
        for sql in [
            "SELECT oid FROM pg_class WHERE relname = 'logs'",
            "SELECT * FROM information_schema.columns WHERE table_name = $1",
            "SELECT 'logs'::regclass::oid",
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'users'::regclass",
            "SELECT pg_get_serial_sequence('users', 'id')",
            "SELECT to_regclass($1)::text",
            "SELECT $1::regclass::oid",
        ] {
            let p = place(sql).expect("placed");
            assert_eq!((p.bind.as_str(), p.floating), ("cat", false), "{sql}");
        }
        // data: where the data is
        for (sql, bind) in [
            ("SELECT nextval('users_id_seq')", "users"),
            (
                "SELECT setval(pg_get_serial_sequence('users', 'id'), 5)",
                "users",
            ),
            ("SELECT pg_relation_size('logs')", "lite"),
            (
                "SELECT * FROM logs WHERE id = 'logs'::regclass::int",
                "lite",
            ),
            ("SELECT 1", "users"),
        ] {
            assert_eq!(place(sql).expect("placed").bind, bind, "{sql}");
        }
        // not a query: not the catalog's
        assert_ne!(
            place("CREATE TABLE pg_x (a int)").expect("placed").bind,
            "cat"
        );
        // catalog relations with user tables: refused
        let e = place("SELECT * FROM logs JOIN pg_class ON true").expect_err("mixed");
        assert!(matches!(e, RouteError::CatalogMixed { .. }), "{e}");
    }
}
