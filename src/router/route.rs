//! The route of a whole analysed query string.
//!
//! Owns: [`Router::route`]: every statement's relations resolved to binds, unqualified names
//! along the session's `search_path` (as changed by the statements themselves), statements whose
//! relations cannot be known, routing hints; and the typed [`RouteError`] for each refusal.
//!
//! Resolution of an unqualified name follows PostgreSQL's `search_path` as far as the table map
//! can know it: `pg_catalog` comes first for catalog names (unless the map names the relation);
//! for each schema on the path, a rule that places the name there (exact or glob) makes that
//! schema a candidate, and an exact rule ends the search (the table is declared to be there). The
//! default schema (`public`) is a candidate for unmapped names too: they live on the default bind.
//! A schema no rule mentions is taken to hold no tables (so `"$user"` costs nothing). Candidates
//! on different binds: PostgreSQL would pick the first schema that really holds the table, which
//! bindproxy cannot see, so the statement is refused, naming every candidate.
//!
//! Must never: guess. A statement whose relations are not all known goes to a hinted bind or is
//! refused; a hint never overrides known relations.

use std::borrow::Cow;
use std::fmt;

use super::Router;
use crate::sql::{Analysis, Dynamic, PathValue, SettingChange, TableName};

/// Where an analysed query string goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The bind, or `None` when no user relation is touched (`SELECT 1`, `SET`, catalog-only
    /// queries): the caller uses the open transaction's bind, else the default bind.
    pub bind: Option<String>,
    /// Every relation touched and the bind it resolved to, sorted by relation. Unqualified user
    /// relations carry the schema they resolved in; catalog relations carry the route's bind, or
    /// the default bind when the route has none.
    pub tables: Vec<(TableName, String)>,
}

/// A query string whose relations live on more than one bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossBind {
    /// The non-catalog relations and their binds, sorted by relation.
    pub tables: Vec<(TableName, String)>,
    /// Schemas acted on as a whole (`DROP SCHEMA s`) and their bind.
    pub schemas: Vec<(String, String)>,
}

impl fmt::Display for CrossBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("statement touches several binds: ")?;
        let schemas = self
            .schemas
            .iter()
            .map(|(s, b)| format!("schema {s} → {b}"));
        let all: Vec<String> = schemas
            .chain([list(&self.tables)])
            .filter(|s| !s.is_empty())
            .collect();
        f.write_str(&all.join(", "))?;
        f.write_str("; a single statement across binds (a cross-bind join) is not supported yet")
    }
}

fn list(tables: &[(TableName, String)]) -> String {
    tables
        .iter()
        .map(|(t, b)| format!("{t} → {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a query string cannot be routed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Its relations live on more than one bind.
    #[error("{0}")]
    CrossBind(CrossBind),
    /// Its relations cannot all be known from its text, and no hint names a bind.
    #[error("bindproxy cannot tell which bind this statement belongs to: {reason}")]
    Undetermined {
        /// Why (a [`Dynamic`] in words).
        reason: String,
    },
    /// A statement acts on a whole schema whose tables the map puts on several binds.
    #[error("schema \"{schema}\" has tables on several binds ({}); a statement on the whole schema cannot run on one of them", .binds.join(", "))]
    SchemaSpansBinds {
        /// The schema.
        schema: String,
        /// Its binds.
        binds: Vec<String>,
    },
    /// An unqualified name could be in schemas of different binds on the `search_path`.
    #[error("relation \"{name}\" is ambiguous on the search_path: it could be {}", list(.candidates))]
    Ambiguous {
        /// The name as written.
        name: String,
        /// Each schema-qualified candidate and its bind, in path order.
        candidates: Vec<(TableName, String)>,
    },
    /// A statement reads catalog relations together with user tables: the catalog bind holds
    /// only empty stubs of the tables and their bind has no catalog of the others.
    #[error("statement mixes catalog relations ({}) with tables ({}); query the catalog and the tables in separate statements", .catalog.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), list(.tables))]
    CatalogMixed {
        /// The catalog relations.
        catalog: Vec<TableName>,
        /// The user tables and their binds.
        tables: Vec<(TableName, String)>,
    },
    /// The routing hint names a bind that does not exist.
    #[error("routing hint names bind \"{0}\", which is not defined")]
    UnknownHintBind(String),
    /// The routing hint contradicts the statement's relations.
    #[error("routing hint names bind \"{hint}\", but the statement's relations are on bind \"{actual}\" ({})", list(.tables))]
    HintContradicts {
        /// The hinted bind.
        hint: String,
        /// Where the relations are.
        actual: String,
        /// The relations.
        tables: Vec<(TableName, String)>,
    },
}

/// The session's `search_path`, as the router needs it.
#[derive(Clone, Copy, Debug)]
pub struct SearchPathView<'a> {
    /// The schemas now in force, in order, as set (`"$user"` not yet expanded).
    pub schemas: &'a [String],
    /// What `RESET search_path` / `RESET ALL` / `DISCARD ALL` return to.
    pub default: &'a [String],
    /// The session's user, for `"$user"`.
    pub user: &'a str,
}

/// PostgreSQL's default `search_path`.
pub fn default_search_path() -> Vec<String> {
    vec!["$user".to_owned(), "public".to_owned()]
}

impl Router {
    /// Routes a whole analysed query string (all its statements) to one bind, or refuses it.
    pub fn route(
        &self,
        analysis: &Analysis,
        path: SearchPathView<'_>,
    ) -> Result<Route, RouteError> {
        let mut search: Cow<'_, [String]> = Cow::Borrowed(path.schemas);
        let mut resolved: Vec<(TableName, usize)> = Vec::new();
        let mut catalog: Vec<TableName> = Vec::new();
        let mut dynamic: Option<&Dynamic> = None;
        let mut schemas: Vec<(String, usize)> = Vec::new();
        for stmt in &analysis.statements {
            for schema in &stmt.schemas {
                match self.binds_of_schema(schema).as_slice() {
                    [b] => schemas.push((schema.clone(), *b)),
                    binds => {
                        return Err(RouteError::SchemaSpansBinds {
                            schema: schema.clone(),
                            binds: binds
                                .iter()
                                .map(|b| self.bind_name(*b).to_owned())
                                .collect(),
                        })
                    }
                }
            }
            // With a catalog bind, a name looked up in the catalog (`'t'::regclass`) by a statement
            // that touches no table's data is answered there, like any catalog relation.
            let lookups_only = self.catalog.is_some()
                && !stmt.data_function
                && (!stmt.references.is_empty() || stmt.parameter_lookup)
                && stmt.tables.iter().all(|t| {
                    stmt.references.contains(t) || (t.is_catalog() && !self.is_mapped_exactly(t))
                });
            if lookups_only && stmt.parameter_lookup {
                // `to_regclass($1)`: the name is in the catalog, whichever it is
                catalog.push(TableName::new(Some("pg_catalog"), "pg_class"));
            }
            for t in &stmt.tables {
                if lookups_only && stmt.references.contains(t) {
                    catalog.push(t.clone());
                    continue;
                }
                match self.resolve(t, &search, path.user)? {
                    Resolved::Catalog => catalog.push(t.clone()),
                    Resolved::Table(name, bind) => resolved.push((name, bind)),
                }
            }
            if dynamic.is_none() {
                dynamic = stmt.dynamic.as_ref();
            }
            for change in &stmt.settings {
                match change {
                    SettingChange::SearchPath { value, .. } => {
                        search = match value {
                            PathValue::Schemas(s) => Cow::Owned(s.clone()),
                            PathValue::Default => Cow::Borrowed(path.default),
                        }
                    }
                    SettingChange::ResetAll => search = Cow::Borrowed(path.default),
                }
            }
        }
        resolved.sort();
        resolved.dedup();
        schemas.sort();
        schemas.dedup();
        let mut bind: Option<usize> = None;
        let mut several = false;
        for b in resolved
            .iter()
            .map(|(_, b)| b)
            .chain(schemas.iter().map(|(_, b)| b))
        {
            match bind {
                None => bind = Some(*b),
                Some(x) if x != *b => several = true,
                Some(_) => {}
            }
        }
        let named = |v: &[(TableName, usize)]| -> Vec<(TableName, String)> {
            v.iter()
                .map(|(t, b)| (t.clone(), self.bind_name(*b).to_owned()))
                .collect()
        };
        if several {
            return Err(RouteError::CrossBind(CrossBind {
                tables: named(&resolved),
                schemas: schemas
                    .iter()
                    .map(|(s, b)| (s.clone(), self.bind_name(*b).to_owned()))
                    .collect(),
            }));
        }
        let hint = match &analysis.hint {
            Some(h) => Some(
                self.binds
                    .iter()
                    .position(|b| b == h)
                    .ok_or_else(|| RouteError::UnknownHintBind(h.clone()))?,
            ),
            None => None,
        };
        let bind = match (hint, bind, dynamic) {
            (Some(h), Some(b), _) if h != b => {
                return Err(RouteError::HintContradicts {
                    hint: self.bind_name(h).to_owned(),
                    actual: self.bind_name(b).to_owned(),
                    tables: named(&resolved),
                })
            }
            (Some(h), _, _) => Some(h),
            (None, _, Some(d)) => {
                return Err(RouteError::Undetermined {
                    reason: format!(
                        "{d}; add a comment /* bindproxy: bind=NAME */ to name its bind"
                    ),
                })
            }
            (None, b, _) => b,
        };
        if self.catalog.is_some() && !resolved.is_empty() && !catalog.is_empty() {
            return Err(RouteError::CatalogMixed {
                catalog,
                tables: named(&resolved),
            });
        }
        let catalog_bind = match (&self.catalog, bind) {
            (Some(c), None) => c.clone(),
            _ => self.bind_name(bind.unwrap_or(0)).to_owned(),
        };
        let mut tables = named(&resolved);
        tables.extend(catalog.into_iter().map(|t| (t, catalog_bind.clone())));
        tables.sort();
        tables.dedup();
        Ok(Route {
            bind: bind.map(|b| self.bind_name(b).to_owned()),
            tables,
        })
    }

    /// One relation's bind: catalog, a qualified name, or an unqualified name along the path.
    fn resolve(&self, t: &TableName, path: &[String], user: &str) -> Result<Resolved, RouteError> {
        if t.schema.is_some() {
            return Ok(match self.bind_for_table(t) {
                None if t.is_catalog() => Resolved::Catalog,
                b => Resolved::Table(t.clone(), self.index(b)),
            });
        }
        let mut candidates: Vec<(TableName, usize)> = Vec::new();
        for schema in path {
            let schema = if schema == "$user" {
                user
            } else {
                schema.as_str()
            };
            if schema == "pg_catalog" || !self.knows_schema(schema) {
                continue;
            }
            let q = TableName::new(Some(schema), &t.name);
            let exact = self.is_mapped_exactly(&q);
            if t.is_catalog() && !exact {
                // pg_catalog is searched first unless the map names the relation
                return Ok(Resolved::Catalog);
            }
            // a rule places the name in this schema; an unmapped name may be in the default schema
            // (on the default bind); other schemas are taken to hold only what rules say
            let b = match self.bind_for_table(&q) {
                Some(b) => self.index(Some(b)),
                None if schema == self.default_schema() => 0,
                None => continue,
            };
            if !candidates.iter().any(|(_, x)| *x == b) {
                candidates.push((q, b));
            }
            if exact {
                break;
            }
        }
        match candidates.len() {
            0 if t.is_catalog() => Ok(Resolved::Catalog),
            0 => {
                let q = TableName::new(Some(self.default_schema()), &t.name);
                let b = self.index(self.bind_for_table(&q));
                Ok(Resolved::Table(t.clone(), b))
            }
            1 => {
                let (_, b) = candidates.remove(0);
                Ok(Resolved::Table(t.clone(), b))
            }
            _ => Err(RouteError::Ambiguous {
                name: t.name.clone(),
                candidates: candidates
                    .into_iter()
                    .map(|(q, b)| (q, self.bind_name(b).to_owned()))
                    .collect(),
            }),
        }
    }

    fn index(&self, bind: Option<&str>) -> usize {
        bind.and_then(|b| self.binds.iter().position(|x| x == b))
            .unwrap_or(0)
    }
}

enum Resolved {
    Catalog,
    Table(TableName, usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached;

    fn router(r: &[(&str, &str)]) -> Router {
        let rules: Vec<(String, String)> = r
            .iter()
            .map(|(p, b)| (p.to_string(), b.to_string()))
            .collect();
        Router::new(&rules, "a", "public").expect("valid rules")
    }

    fn t(s: &str) -> TableName {
        TableName::parse_regclass(s).expect("name")
    }

    fn route_with(r: &Router, sql: &str, path: &[&str]) -> Result<Route, RouteError> {
        let schemas: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let default = default_search_path();
        r.route(
            &analyze_uncached(sql),
            SearchPathView {
                schemas: &schemas,
                default: &default,
                user: "app",
            },
        )
    }

    fn route(r: &Router, sql: &str) -> Result<Route, RouteError> {
        route_with(r, sql, &["$user", "public"])
    }

    fn bind_of(r: &Router, sql: &str) -> Option<String> {
        route(r, sql).expect("routes").bind
    }

    #[test]
    fn routes() {
        let r = router(&[
            ("users", "users_db"),
            ("orders", "orders_db"),
            ("sa_*", "sa"),
        ]);
        let ok = route(&r, "SELECT * FROM users u JOIN public.users x ON true").expect("one bind");
        assert_eq!(ok.bind.as_deref(), Some("users_db"));
        assert_eq!(ok.tables.len(), 2);
        assert_eq!(
            route(&r, "SELECT 1").expect("none"),
            Route {
                bind: None,
                tables: vec![]
            }
        );
        let cat = route(&r, "SELECT * FROM pg_catalog.pg_class").expect("catalog");
        assert_eq!(cat.bind, None);
        assert_eq!(cat.tables, vec![(t("pg_catalog.pg_class"), "a".to_owned())]);
        let mixed = route(
            &r,
            "SELECT c.oid FROM pg_class c WHERE c.oid = 'users'::regclass",
        )
        .expect("catalog follows");
        assert_eq!(mixed.bind.as_deref(), Some("users_db"));
        assert_eq!(bind_of(&r, "SELECT * FROM things").as_deref(), Some("a"));
        let err = route(&r, "SELECT * FROM orders JOIN users ON true").expect_err("cross");
        assert_eq!(
            err.to_string(),
            "statement touches several binds: orders → orders_db, users → users_db; a single statement across binds (a cross-bind join) is not supported yet"
        );
        let err = route(&r, "SELECT * FROM users; SELECT * FROM things").expect_err("cross");
        assert_eq!(
            err.to_string(),
            "statement touches several binds: things → a, users → users_db; a single statement across binds (a cross-bind join) is not supported yet"
        );
        let ok = route(
            &r,
            "BEGIN; INSERT INTO sa_author VALUES (1); SELECT nextval('sa_author_id_seq'); COMMIT",
        )
        .expect("one bind");
        assert_eq!(ok.bind.as_deref(), Some("sa"));
    }

    #[test]
    fn mapped_names_beat_the_catalog_heuristic() {
        let r = router(&[("pg_stuff", "b")]);
        assert_eq!(bind_of(&r, "DELETE FROM pg_stuff").as_deref(), Some("b"));
        assert_eq!(bind_of(&r, "SELECT * FROM pg_class"), None);
    }

    #[test]
    fn search_path() {
        let r = router(&[("t_a", "a"), ("t_b", "b"), ("s2.*", "b"), ("s3.x", "c")]);
        // s2 alone: its names go to b
        assert_eq!(
            route_with(&r, "SELECT * FROM t2", &["s2"])
                .expect("b")
                .bind
                .as_deref(),
            Some("b")
        );
        let on = |sql: &str, path: &[&str]| route_with(&r, sql, path).map(|x| x.bind);
        // s2 and public could both hold t2 (unmapped in public: the default bind): refused
        let err = route_with(&r, "SELECT * FROM t2", &["s2", "public"]).expect_err("ambiguous");
        let msg = err.to_string();
        assert!(
            msg.contains("s2.t2 → b") && msg.contains("public.t2 → a"),
            "{msg}"
        );
        // rules place t_a in s2 (b) and in public (a): refused, naming both
        let err = route_with(&r, "SELECT * FROM t_a", &["s2", "public"]).expect_err("ambiguous");
        let msg = err.to_string();
        assert!(
            msg.contains("s2.t_a → b") && msg.contains("public.t_a → a"),
            "{msg}"
        );
        // t_b is on b wherever it is
        assert_eq!(
            on("SELECT * FROM t_b", &["s2", "public"]),
            Ok(Some("b".into()))
        );
        // public first: its exact rule ends the search
        assert_eq!(
            on("SELECT * FROM t_a", &["public", "s2"]),
            Ok(Some("a".into()))
        );
        // an exact rule ends the search
        assert_eq!(
            route_with(&r, "SELECT * FROM x", &["s3", "public"])
                .expect("c")
                .bind
                .as_deref(),
            Some("c")
        );
        // a schema no rule names holds nothing
        assert_eq!(
            route_with(&r, "SELECT * FROM t_b", &["$user", "nowhere", "public"])
                .expect("b")
                .bind
                .as_deref(),
            Some("b")
        );
        // the statements' own SETs count, in order
        assert_eq!(
            route_with(&r, "SET search_path TO s2; SELECT * FROM t2", &["public"])
                .expect("b")
                .bind
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            route_with(&r, "SELECT * FROM t2; SET search_path TO s2", &["public"])
                .expect("a")
                .bind
                .as_deref(),
            Some("a")
        );
        // catalog names come from pg_catalog whatever the path
        assert_eq!(
            route_with(&r, "SELECT * FROM pg_class", &["s2"])
                .expect("catalog")
                .bind,
            None
        );
    }

    #[test]
    fn whole_schemas() {
        let r = router(&[("t_b", "b"), ("s2.*", "b"), ("s3.x", "c")]);
        let bind = |sql: &str| route(&r, sql).map(|x| x.bind);
        assert_eq!(bind("CREATE SCHEMA s2"), Ok(Some("b".into())));
        assert_eq!(bind("DROP SCHEMA s2 CASCADE"), Ok(Some("b".into())));
        assert_eq!(
            bind("GRANT SELECT ON ALL TABLES IN SCHEMA s2 TO app"),
            Ok(Some("b".into()))
        );
        assert_eq!(bind("CREATE SCHEMA other"), Ok(Some("a".into())));
        // s3 holds x on c, and anything else on the default bind
        assert!(matches!(
            route(&r, "DROP SCHEMA s3 CASCADE"),
            Err(RouteError::SchemaSpansBinds { .. })
        ));
        // public holds t_b on b and everything unmapped on a
        assert!(matches!(
            route(&r, "DROP SCHEMA public CASCADE"),
            Err(RouteError::SchemaSpansBinds { .. })
        ));
        let err = route(&r, "DROP SCHEMA s2; DROP TABLE other").expect_err("cross");
        assert_eq!(
            err.to_string(),
            "statement touches several binds: schema s2 → b, other → a; a single statement across binds (a cross-bind join) is not supported yet"
        );
    }

    #[test]
    fn dynamic_and_hints() {
        let r = router(&[("w_b", "b")]);
        let err =
            route(&r, "DO $$BEGIN EXECUTE 'UPDATE w_b SET x = 1'; END$$").expect_err("dynamic");
        assert!(matches!(err, RouteError::Undetermined { .. }), "{err}");
        assert_eq!(
            bind_of(
                &r,
                "/* bindproxy: bind=b */ DO $$BEGIN EXECUTE 'UPDATE w_b SET x = 1'; END$$"
            )
            .as_deref(),
            Some("b")
        );
        assert!(matches!(
            route(&r, "/* bindproxy: bind=a */ UPDATE w_b SET x = 1"),
            Err(RouteError::HintContradicts { .. })
        ));
        assert_eq!(
            bind_of(&r, "/* bindproxy: bind=b */ UPDATE w_b SET x = 1").as_deref(),
            Some("b")
        );
        assert!(matches!(
            route(&r, "/* bindproxy: bind=zz */ SELECT 1"),
            Err(RouteError::UnknownHintBind(_))
        ));
        assert!(matches!(
            route(&r, "SELECT nextval($1)"),
            Err(RouteError::Undetermined { .. })
        ));
    }
}
