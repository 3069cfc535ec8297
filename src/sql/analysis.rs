//! The analysis of one query string: its statements, the relations each touches, their kinds.
//!
//! Owns: [`Analysis`], [`StatementInfo`] and [`analyze_uncached`]: parse with PostgreSQL's own
//! parser (`parse.rs`), then per statement its kind (`kind.rs`), relations (`relations.rs`),
//! setting changes (`settings.rs`) and the query string's routing hint (`hint.rs`). A very large
//! multi-row INSERT is analysed from its head (`bulk.rs`); other large texts have their lists of
//! literals collapsed first (`reduce.rs`).
//!
//! What cannot be analysed is an [`AnalysisError`] for the whole query string; what can be parsed
//! but whose relations cannot all be known carries a [`Dynamic`] reason. Neither is ever turned
//! into a guess.
//!
//! Must never: cache (that is `cache.rs`), decide a bind (that is the router), or panic on input.

use super::bulk;
use super::hint;
use super::kind::{command_of, kind_of, Command, StatementKind};
use super::name::TableName;
use super::parse::{self, AnalysisError, MAX_PARSE_BYTES};
use super::reduce;
use super::relations::{self, Collected, Dynamic};
use super::settings::{self, SettingChange};

/// Everything the router and the session need to know about one query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// One entry per statement, in order; empty for an empty query (only whitespace/comments) and
    /// when `error` is set.
    pub statements: Vec<StatementInfo>,
    /// Why the query string cannot run at all, if it cannot.
    pub error: Option<AnalysisError>,
    /// The bind named by a `/* bindproxy: bind=NAME */` comment.
    pub hint: Option<String>,
    /// How the relations were found.
    pub method: Method,
}

/// How an analysis found its relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The whole text through PostgreSQL's parser.
    Parsed,
    /// A large `INSERT … VALUES` of literal rows, from its head (see `bulk.rs`).
    BulkHead,
    /// A large text with its lists of literals collapsed first (see `reduce.rs`).
    Reduced,
}

/// One statement of a query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInfo {
    /// Relations named (tables, views, sequences, indexes), sorted and deduplicated. Unqualified
    /// names have no schema: the router resolves them along the session's `search_path`.
    pub tables: Vec<TableName>,
    /// It calls `nextval`, `setval`, … (see `relations::DATA_FUNCTIONS`).
    pub data_function: bool,
    /// It looks a relation up in the catalog by a name given as a parameter (`to_regclass($1)`).
    pub parameter_lookup: bool,
    /// It is DDL that changes what the catalog shows (CREATE/ALTER/DROP TABLE, indexes, …).
    pub changes_catalog: bool,
    /// Those of `tables` named only to be looked up in the catalog (`'t'::regclass`): a shadow
    /// catalog can answer for them.
    pub references: Vec<TableName>,
    /// Schemas it acts on as a whole (`DROP SCHEMA s`), sorted and deduplicated.
    pub schemas: Vec<String>,
    /// What kind of statement it is.
    pub kind: StatementKind,
    /// A plain read a replica may answer (`readonly.rs`).
    pub replica_safe: bool,
    /// It creates a temporary relation, which only this session of the primary has (`readonly.rs`).
    pub creates_temporary: bool,
    /// What it does to its tables, for metrics.
    pub command: Command,
    /// Why its relations cannot all be known from the text, if so.
    pub dynamic: Option<Dynamic>,
    /// Changes to `search_path` (or every setting) it makes, in order.
    pub settings: Vec<SettingChange>,
    /// The name a statement acts on: the savepoint of `SAVEPOINT`/`RELEASE`/`ROLLBACK TO`, the
    /// prepared statement of `PREPARE`/`EXECUTE`/`DEALLOCATE` (`None` for `DEALLOCATE ALL`), the
    /// setting of `SET`/`RESET` (`None` for `RESET ALL`).
    pub object_name: Option<String>,
}

impl Analysis {
    /// Every relation of every statement, sorted and deduplicated.
    pub fn all_tables(&self) -> Vec<TableName> {
        let mut v: Vec<TableName> = self
            .statements
            .iter()
            .flat_map(|s| s.tables.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// One statement, which a read replica may answer (see `readonly.rs`).
    pub fn replica_safe(&self) -> bool {
        self.error.is_none() && matches!(self.statements.as_slice(), [s] if s.replica_safe)
    }

    /// Some statement creates a temporary relation.
    pub fn creates_temporary(&self) -> bool {
        self.statements.iter().any(|s| s.creates_temporary)
    }

    fn failed(error: AnalysisError) -> Analysis {
        Analysis {
            statements: Vec::new(),
            error: Some(error),
            hint: None,
            method: Method::Parsed,
        }
    }
}

/// Analyses a query string without the cache.
pub fn analyze_uncached(sql: &str) -> Analysis {
    analyze_inner(sql).0
}

/// The analysis, and whether it read a string literal as a relation name, a body or a setting
/// (so it must not be shared between texts that differ in literal values).
pub(crate) fn analyze_inner(sql: &str) -> (Analysis, bool) {
    if sql.len() < bulk::BULK_MIN_BYTES.min(reduce::REDUCE_MIN_BYTES) {
        return analyze_parsed(sql);
    }
    if let Some(head) = bulk::head_statement(sql) {
        let (mut a, literal) = analyze_parsed(&head);
        a.method = Method::BulkHead;
        return (a, literal);
    }
    let reduced = match sql.len() <= reduce::MAX_REDUCE_BYTES {
        true => reduce::reduce(sql),
        false => None,
    };
    let text = reduced.as_deref().unwrap_or(sql);
    if text.len() > MAX_PARSE_BYTES {
        let error = AnalysisError::TooLarge {
            bytes: text.len(),
            limit: MAX_PARSE_BYTES,
        };
        return (Analysis::failed(error), true);
    }
    let (mut a, literal) = analyze_parsed(text);
    if reduced.is_some() {
        a.method = Method::Reduced;
    }
    (a, literal)
}

fn analyze_parsed(sql: &str) -> (Analysis, bool) {
    let (a, literal) = analyze_text(sql);
    // an error message quotes the text: never share it between texts
    let literal = literal || a.error.is_some();
    (a, literal)
}

fn analyze_text(sql: &str) -> (Analysis, bool) {
    let hint = match hint::hint_of(sql) {
        Ok(h) => h,
        Err(e) => return (Analysis::failed(e), false),
    };
    let parsed = match parse::parse(sql) {
        Ok(p) => p,
        Err(e) => return (Analysis::failed(e), false),
    };
    let mut literal_names = false;
    let mut statements = Vec::with_capacity(parsed.len());
    for p in parsed {
        let text = sql.get(p.span.clone()).unwrap_or(sql);
        let mut c = Collected::default();
        relations::collect(&p.node, text, 0, &mut c);
        let mut changes = match settings::change_of(&p.node) {
            Ok(change) => change.into_iter().collect::<Vec<_>>(),
            Err(e) => return (Analysis::failed(e), false),
        };
        if !changes.is_empty() {
            literal_names = true;
        }
        if let Some(e) = c.refused {
            return (Analysis::failed(e), false);
        }
        changes.append(&mut c.settings);
        literal_names |= c.literal_names;
        let references = references_only(&c.tables, &c.references);
        let mut tables = c.tables;
        tables.sort();
        tables.dedup();
        let mut schemas = c.schemas;
        schemas.sort();
        schemas.dedup();
        statements.push(StatementInfo {
            changes_catalog: super::kind::changes_catalog(&p.node),
            data_function: c.data_function,
            parameter_lookup: c.parameter_lookup,
            tables,
            references,
            schemas,
            kind: kind_of(&p.node),
            replica_safe: super::readonly::replica_safe(&p.node),
            creates_temporary: super::readonly::creates_temporary(&p.node),
            command: command_of(&p.node),
            dynamic: c.dynamic,
            settings: changes,
            object_name: object_name(&p.node),
        });
    }
    (
        Analysis {
            statements,
            error: None,
            hint,
            method: Method::Parsed,
        },
        literal_names,
    )
}

/// The relations every mention of which is a catalog lookup by name, sorted and deduplicated.
fn references_only(tables: &[TableName], references: &[TableName]) -> Vec<TableName> {
    let mut out: Vec<TableName> = references
        .iter()
        .filter(|r| {
            let mentions = tables.iter().filter(|t| t == r).count();
            let lookups = references.iter().filter(|x| x == r).count();
            mentions == lookups
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// See [`StatementInfo::object_name`].
fn object_name(stmt: &serde_json::Value) -> Option<String> {
    let (tag, v) = parse::node(stmt)?;
    let field = match tag {
        "TransactionStmt" => "savepoint_name",
        "PrepareStmt" | "ExecuteStmt" | "DeallocateStmt" => "name",
        // the setting of SET / RESET (none for RESET ALL)
        "VariableSetStmt" => "name",
        _ => return None,
    };
    Some(parse::str_field(v, field))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<Vec<String>> {
        let a = analyze_uncached(sql);
        assert_eq!(a.error, None, "{sql}");
        a.statements
            .iter()
            .map(|s| s.tables.iter().map(|t| t.to_string()).collect())
            .collect()
    }

    fn one(sql: &str) -> Vec<String> {
        names(sql).concat()
    }

    fn dynamic(sql: &str) -> Option<Dynamic> {
        analyze_uncached(sql)
            .statements
            .into_iter()
            .find_map(|s| s.dynamic)
    }

    #[test]
    fn empty_and_comments() {
        for sql in ["", "   ", "-- just a comment", "/* x */", ";", " ; ; "] {
            let a = analyze_uncached(sql);
            assert!(a.statements.is_empty(), "{sql:?}");
            assert_eq!(a.error, None);
        }
    }

    #[test]
    fn multi_statement() {
        assert_eq!(
            names("SELECT * FROM users WHERE id = 1; SELECT * FROM orders WHERE id = 2"),
            [vec!["users"], vec!["orders"]]
        );
        let a = analyze_uncached("BEGIN; CLUSTER users; COMMIT;");
        assert_eq!(
            a.statements.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [
                StatementKind::Begin,
                StatementKind::Other,
                StatementKind::Commit
            ]
        );
    }

    #[test]
    fn issue_6_wrong_bind_cases() {
        assert_eq!(one("SELECT who FROM ONLY (t_b)"), ["t_b"]);
        assert_eq!(one("TABLE ONLY (t_b)"), ["t_b"]);
        assert_eq!(one("DELETE FROM ONLY (w_b)"), ["w_b"]);
        assert_eq!(one("UPDATE ONLY (w_b) SET who = 'x'"), ["w_b"]);
        assert_eq!(one("TRUNCATE ONLY (w_b)"), ["w_b"]);
        assert_eq!(one("SELECT t_b.who FROM t_a, ONLY (t_b)"), ["t_a", "t_b"]);
        assert_eq!(one("SELECT * FROM U&\"t_b\""), ["t_b"]);
        assert_eq!(one("UPDATE U&\"\\0077_b\" SET who = 'x'"), ["w_b"]);
        assert_eq!(
            one("INSERT INTO U&\"w!005fb\" UESCAPE '!' (who) VALUES ('x')"),
            ["w_b"]
        );
        assert_eq!(
            one("SELECT E'\\xc3\\xa9', E'a\\'b', (SELECT who FROM t_b) --'"),
            ["t_b"]
        );
        assert_eq!(
            names("SELECT E'\\xc3\\xa9', E'a\\'b'; UPDATE w_b SET who = 'hit' --'"),
            [vec![], vec!["w_b"]]
        );
        assert_eq!(one("DECLARE c CURSOR FOR TABLE t_b"), ["t_b"]);
        assert_eq!(one("CREATE TABLE x AS TABLE t_b"), ["t_b", "x"]);
        assert_eq!(
            one("SELECT * FROM ONLY t_a TABLESAMPLE SYSTEM (100), t_b"),
            ["t_a", "t_b"]
        );
        assert_eq!(
            one("SELECT * FROM ONLY t_a, (t_b x CROSS JOIN t_a y)"),
            ["t_a", "t_b"]
        );
        for kw in [
            "domain",
            "type",
            "language",
            "key",
            "schema",
            "sequence",
            "partition",
        ] {
            assert_eq!(one(&format!("SELECT * FROM {kw}")), [kw]);
        }
        assert_eq!(
            one("DO $$BEGIN IF true THEN UPDATE w_b SET who = 'x'; END IF; END$$"),
            ["w_b"]
        );
        assert_eq!(one("DO 'BEGIN UPDATE w_b SET who = ''x''; END'"), ["w_b"]);
        assert_eq!(
            dynamic("DO $$BEGIN EXECUTE 'UPDATE w_b SET who = 1'; END$$"),
            Some(Dynamic::ExecuteInBody)
        );
        assert_eq!(
            one("CREATE RULE r AS ON INSERT TO t_a DO INSTEAD UPDATE w_b SET who = 'x'"),
            ["t_a", "w_b"]
        );
        assert_eq!(one("SELECT table_to_xml('t_b', true, false, '')"), ["t_b"]);
        assert!(matches!(
            dynamic("SELECT query_to_xml('select * from t_b', true, false, '')"),
            Some(Dynamic::SqlTextFunction(_))
        ));
        assert_eq!(one("DELETE FROM pg_stuff"), ["pg_stuff"]);
    }

    #[test]
    fn cte_scopes() {
        assert_eq!(
            one("WITH x AS (SELECT * FROM t_b) SELECT * FROM x"),
            ["t_b"]
        );
        // a plain WITH's CTE does not see itself: the inner t_b is the table
        assert_eq!(
            one("WITH t_b AS (SELECT * FROM t_b) SELECT * FROM t_b"),
            ["t_b"]
        );
        assert_eq!(
            one("WITH t_b AS (SELECT 1) SELECT * FROM t_b"),
            Vec::<String>::new()
        );
        // a DML target is never a CTE
        assert_eq!(
            one("WITH w_b AS (SELECT 1) INSERT INTO w_b SELECT * FROM w_b"),
            ["w_b"]
        );
        assert_eq!(
            one("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT * FROM r"),
            Vec::<String>::new()
        );
        assert_eq!(
            one("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) s, c"),
            ["c"]
        );
        assert_eq!(
            one("(WITH c AS (SELECT * FROM t_a) SELECT * FROM c) UNION SELECT * FROM c"),
            ["c", "t_a"]
        );
    }

    #[test]
    fn whole_schemas() {
        let schemas = |sql: &str| {
            analyze_uncached(sql)
                .statements
                .iter()
                .flat_map(|s| s.schemas.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(schemas("CREATE SCHEMA s2"), ["s2"]);
        assert_eq!(schemas("DROP SCHEMA s2, S3 CASCADE"), ["s2", "s3"]);
        assert_eq!(schemas("ALTER SCHEMA s2 RENAME TO x"), ["s2"]);
        assert_eq!(schemas("ALTER SCHEMA s2 OWNER TO app"), ["s2"]);
        assert_eq!(schemas("COMMENT ON SCHEMA s2 IS 'x'"), ["s2"]);
        assert_eq!(
            schemas("GRANT SELECT ON ALL TABLES IN SCHEMA s2 TO app"),
            ["s2"]
        );
        assert_eq!(
            schemas("ALTER DEFAULT PRIVILEGES IN SCHEMA s2 GRANT SELECT ON TABLES TO app"),
            ["s2"]
        );
    }

    #[test]
    fn ddl_names() {
        assert_eq!(one("DROP TABLE a, s.b"), ["a", "s.b"]);
        assert_eq!(one("DROP INDEX CONCURRENTLY orders_pkey"), ["orders_pkey"]);
        assert_eq!(one("COMMENT ON COLUMN users.name IS 'x'"), ["users"]);
        assert_eq!(one("DROP TRIGGER trg ON orders"), ["orders"]);
        assert_eq!(one("ALTER SEQUENCE s OWNED BY orders.id"), ["orders", "s"]);
        assert_eq!(
            one("CREATE TABLE o (id int REFERENCES users(id), LIKE t_b)"),
            ["o", "t_b", "users"]
        );
        assert_eq!(one("SELECT nextval('orders_id_seq')"), ["orders_id_seq"]);
        assert_eq!(one("SELECT 'public.users'::regclass"), ["public.users"]);
        assert_eq!(
            dynamic("SELECT nextval($1)"),
            Some(Dynamic::RelationParameter("nextval".into()))
        );
        assert_eq!(dynamic("SELECT pg_relation_size($1)"), None);
        assert_eq!(
            one("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT count(*) FROM t_b'"),
            ["t_b"]
        );
        assert!(matches!(
            dynamic("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'"),
            Some(Dynamic::Language(_))
        ));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            analyze_uncached("SELEC 1").error,
            Some(AnalysisError::Syntax { .. })
        ));
        assert_eq!(
            analyze_uncached("SET standard_conforming_strings = off").error,
            Some(AnalysisError::EscapeStringsOff)
        );
        assert_eq!(
            analyze_uncached("SELECT set_config('standard_conforming_strings', 'off', false)")
                .error,
            Some(AnalysisError::EscapeStringsOff)
        );
        let deep = format!("SELECT {} FROM t", vec!["1"; 2000].join("+"));
        assert_eq!(analyze_uncached(&deep).error, Some(AnalysisError::TooDeep));
        let wide = format!(
            "SELECT * FROM t WHERE {}",
            (0..1000)
                .map(|i| format!("id = {i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        assert_eq!(one(&wide), ["t"]);
    }

    #[test]
    fn bulk_insert_from_head() {
        let rows: Vec<String> = (0..20000).map(|i| format!("({i}, 'x{i}')")).collect();
        let sql = format!("INSERT INTO w_b (id, who) VALUES {}", rows.join(", "));
        let a = analyze_uncached(&sql);
        assert_eq!(a.method, Method::BulkHead);
        assert_eq!(a.statements.len(), 1);
        assert_eq!(one(&sql), ["w_b"]);
        // a 2 MiB IN list is collapsed to one item, then parsed
        let big = format!(
            "SELECT 1 FROM t_b WHERE x IN ({})",
            "1,".repeat(1024 * 1024) + "1"
        );
        let a = analyze_uncached(&big);
        assert_eq!((a.method, a.error.clone()), (Method::Reduced, None));
        assert_eq!(one(&big), ["t_b"]);
        // what cannot be collapsed is refused beyond the limit
        let big = format!(
            "SELECT 1 FROM t WHERE {}",
            "x = y OR ".repeat(40_000) + "true"
        );
        assert!(matches!(
            analyze_uncached(&big).error,
            Some(AnalysisError::TooLarge { .. })
        ));
    }

    #[test]
    fn search_path_changes() {
        use super::settings::{PathValue, SettingScope};
        let a = analyze_uncached("SET LOCAL search_path TO s2, public; RESET search_path");
        assert_eq!(
            a.statements[0].settings,
            [SettingChange::SearchPath {
                scope: SettingScope::Transaction,
                value: PathValue::Schemas(vec!["s2".into(), "public".into()])
            }]
        );
        assert_eq!(
            a.statements[1].settings,
            [SettingChange::SearchPath {
                scope: SettingScope::Session,
                value: PathValue::Default
            }]
        );
        let a = analyze_uncached("SELECT set_config('search_path', 's2, public', false)");
        assert_eq!(a.statements[0].settings.len(), 1);
        assert!(matches!(
            dynamic("SELECT set_config('search_path', $1, false)"),
            Some(Dynamic::UnknownSetting(_))
        ));
    }
}
