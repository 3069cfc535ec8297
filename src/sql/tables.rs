//! Tables named by a statement that sqlparser parsed.
//!
//! Owns: walking a parsed [`Statement`] (PostgreSqlDialect) and collecting every relation it
//! names — FROM/JOIN items, subqueries, CTE bodies, set operations, DML targets and sources, DDL
//! subjects, foreign-key targets, `COPY`, `COMMENT ON`, `LOCK`, `GRANT … ON`, triggers, and
//! sequences or tables named inside string literals (`nextval('orders_id_seq')`,
//! `'users'::regclass`). A CTE's own name is not a table inside its scope; a table function
//! (`generate_series(…)`, anything with arguments in FROM) is not a table.
//!
//! Must never: decide a bind, or trust a mis-parse: a relation called `only` (unquoted) is how
//! sqlparser 0.63 mis-reads `FROM ONLY t`, so it is reported as `needs_fallback` and the caller
//! re-scans the statement's tokens.

use std::ops::ControlFlow;

use sqlparser::ast::{
    ColumnOption, CommentObject, CreateTableLikeKind, DataType, Expr, FromTable, FunctionArg,
    FunctionArgExpr, FunctionArguments, GrantObjects, ObjectName, ObjectNamePart, ObjectType,
    Query, Select, Statement, TableConstraint, TableFactor, TableObject, Value, Visit, Visitor,
};

use super::name::{fold_ident, TableName};

/// What [`collect`] found in one statement.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Relations named, unsorted, possibly repeated.
    pub tables: Vec<TableName>,
    /// A string literal was read as a relation name (or looked at as one): the result depends on
    /// literal values, so the cache must not share it across literals.
    pub literal_names: bool,
    /// The parse is not trustworthy (`FROM ONLY t` mis-parse): use the token fallback instead.
    pub needs_fallback: bool,
}

/// Functions whose first argument is a `regclass` that clients pass as a string literal (the token
/// fallback uses the same list).
pub(crate) const REGCLASS_FUNCTIONS: &[&str] = &[
    "nextval",
    "setval",
    "currval",
    "pg_get_serial_sequence",
    "to_regclass",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_relation_filepath",
    "pg_relation_filenode",
];

/// Collects the relations of one parsed statement.
pub(crate) fn collect(statement: &Statement) -> Collected {
    let mut c = Collector::default();
    // The visitor never breaks, so the result carries no information.
    let _ = statement.visit(&mut c);
    Collected {
        tables: c.tables,
        literal_names: c.literal_names,
        needs_fallback: c.needs_fallback,
    }
}

/// The CTE names of one `WITH` clause and how many of them are visible right now.
struct CteScope {
    names: Vec<String>,
    /// Addresses of the CTE body queries, to notice when the walk enters one.
    bodies: Vec<usize>,
    /// Non-recursive WITH: inside body `i` only CTEs `0..i` are visible; in the main body all.
    visible: usize,
    recursive: bool,
}

#[derive(Default)]
struct Collector {
    tables: Vec<TableName>,
    literal_names: bool,
    needs_fallback: bool,
    /// Set by a table factor with arguments (a table function): its name is not a relation.
    skip_next_relation: bool,
    scopes: Vec<CteScope>,
}

fn query_addr(q: &Query) -> usize {
    q as *const Query as usize
}

/// Folded parts of an object name, or `None` when a part is not a plain identifier.
fn name_parts(name: &ObjectName) -> Option<Vec<(&str, bool)>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some((i.value.as_str(), i.quote_style.is_some())),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

fn table_name(name: &ObjectName) -> Option<TableName> {
    TableName::from_parts(name_parts(name)?)
}

/// `table.column` / `schema.table.column` → the table.
fn table_of_column(name: &ObjectName) -> Option<TableName> {
    let mut parts = name_parts(name)?;
    if parts.len() < 2 {
        return None;
    }
    parts.pop();
    TableName::from_parts(parts)
}

/// The text of a string literal, looking through casts and parentheses.
fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => Some(s.as_str()),
            Value::DollarQuotedString(d) => Some(d.value.as_str()),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => string_literal(expr),
        _ => None,
    }
}

fn is_regclass(t: &DataType) -> bool {
    match t {
        DataType::Regclass => true,
        DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("regclass")),
        _ => false,
    }
}

impl Collector {
    fn push(&mut self, name: &ObjectName) {
        if let Some(t) = table_name(name) {
            self.tables.push(t);
        }
    }

    fn push_opt(&mut self, t: Option<TableName>) {
        if let Some(t) = t {
            self.tables.push(t);
        }
    }

    /// A string literal in a place where PostgreSQL reads a relation name.
    fn literal(&mut self, text: &str) {
        self.literal_names = true;
        self.push_opt(TableName::parse_regclass(text));
    }

    fn is_cte(&self, name: &ObjectName) -> bool {
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return false;
        };
        let folded = fold_ident(&ident.value, ident.quote_style.is_some());
        self.scopes.iter().any(|s| {
            let visible = if s.recursive {
                s.names.len()
            } else {
                s.visible
            };
            s.names[..visible.min(s.names.len())].contains(&folded)
        })
    }

    fn table_factor_target(&mut self, tf: &TableFactor) {
        if let TableFactor::Table {
            name, args: None, ..
        } = tf
        {
            self.push(name);
        }
    }

    fn constraint(&mut self, c: &TableConstraint) {
        if let TableConstraint::ForeignKey(fk) = c {
            self.push(&fk.foreign_table);
        }
    }

    fn column_options<'a>(&mut self, options: impl IntoIterator<Item = &'a ColumnOption>) {
        for o in options {
            if let ColumnOption::ForeignKey(fk) = o {
                self.push(&fk.foreign_table);
            }
        }
    }

    fn statement(&mut self, s: &Statement) {
        match s {
            // DML targets are added directly: PostgreSQL never resolves them to a CTE.
            Statement::Insert(ins) => {
                if let TableObject::TableName(name) = &ins.table {
                    self.push(name);
                }
            }
            Statement::Update(u) => self.table_factor_target(&u.table.relation),
            Statement::Delete(d) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
                for twj in from {
                    self.table_factor_target(&twj.relation);
                }
                for name in &d.tables {
                    self.push(name);
                }
            }
            Statement::Merge(m) => self.table_factor_target(&m.table),
            Statement::Copy {
                source: sqlparser::ast::CopySource::Table { table_name, .. },
                ..
            } => self.push(table_name),
            Statement::Comment {
                object_type,
                object_name,
                ..
            } => match object_type {
                CommentObject::Table
                | CommentObject::View
                | CommentObject::MaterializedView
                | CommentObject::Sequence
                | CommentObject::Index => self.push(object_name),
                CommentObject::Column => self.push_opt(table_of_column(object_name)),
                _ => {}
            },
            Statement::Drop {
                object_type,
                names,
                table,
                ..
            } => {
                if matches!(
                    object_type,
                    ObjectType::Table
                        | ObjectType::View
                        | ObjectType::MaterializedView
                        | ObjectType::Index
                        | ObjectType::Sequence
                ) {
                    for n in names {
                        self.push(n);
                    }
                }
                if let Some(t) = table {
                    self.push(t);
                }
            }
            Statement::CreateTrigger(ct) => {
                self.push(&ct.table_name);
                if let Some(r) = &ct.referenced_table_name {
                    self.push(r);
                }
            }
            Statement::DropTrigger(dt) => {
                if let Some(t) = &dt.table_name {
                    self.push(t);
                }
            }
            Statement::Grant(g) => self.grant_objects(g.objects.as_ref()),
            Statement::Revoke(r) => self.grant_objects(r.objects.as_ref()),
            Statement::CreateTable(ct) => {
                for c in &ct.constraints {
                    self.constraint(c);
                }
                for col in &ct.columns {
                    self.column_options(col.options.iter().map(|o| &o.option));
                }
                match &ct.like {
                    Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) => {
                        self.push(&l.name)
                    }
                    None => {}
                }
                if let Some(c) = &ct.clone {
                    self.push(c);
                }
                for i in ct.inherits.iter().flatten() {
                    self.push(i);
                }
            }
            Statement::AlterTable(at) => {
                for op in &at.operations {
                    match op {
                        sqlparser::ast::AlterTableOperation::AddConstraint {
                            constraint, ..
                        } => self.constraint(constraint),
                        sqlparser::ast::AlterTableOperation::AddColumn { column_def, .. } => {
                            self.column_options(column_def.options.iter().map(|o| &o.option))
                        }
                        _ => {}
                    }
                }
            }
            Statement::CreateSequence { name, owned_by, .. } => {
                self.push(name);
                if let Some(o) = owned_by {
                    self.push_opt(table_of_column(o));
                }
            }
            Statement::AlterIndex { name, .. } => self.push(name),
            Statement::Vacuum(v) => {
                if let Some(t) = &v.table_name {
                    self.push(t);
                }
            }
            _ => {}
        }
    }

    fn grant_objects(&mut self, objects: Option<&GrantObjects>) {
        if let Some(GrantObjects::Tables(v) | GrantObjects::Sequences(v) | GrantObjects::Views(v)) =
            objects
        {
            for n in v {
                self.push(n);
            }
        }
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let addr = query_addr(q);
        if let Some(top) = self.scopes.last_mut() {
            if let Some(i) = top.bodies.iter().position(|&a| a == addr) {
                top.visible = i;
            }
        }
        if let Some(with) = &q.with {
            self.scopes.push(CteScope {
                names: with
                    .cte_tables
                    .iter()
                    .map(|c| fold_ident(&c.alias.name.value, c.alias.name.quote_style.is_some()))
                    .collect(),
                bodies: with
                    .cte_tables
                    .iter()
                    .map(|c| query_addr(&c.query))
                    .collect(),
                visible: 0,
                recursive: with.recursive,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if q.with.is_some() {
            self.scopes.pop();
        }
        let addr = query_addr(q);
        if let Some(top) = self.scopes.last_mut() {
            if let Some(i) = top.bodies.iter().position(|&a| a == addr) {
                top.visible = i + 1;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // SELECT … INTO new_table creates a table
        for target in select.into.iter().flat_map(|i| &i.targets) {
            let t = match target {
                Expr::Identifier(i) => {
                    TableName::from_parts([(i.value.as_str(), i.quote_style.is_some())])
                }
                Expr::CompoundIdentifier(v) => TableName::from_parts(
                    v.iter()
                        .map(|i| (i.value.as_str(), i.quote_style.is_some())),
                ),
                _ => None,
            };
            self.push_opt(t);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { args: Some(_), .. } = tf {
            self.skip_next_relation = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
        if std::mem::take(&mut self.skip_next_relation) {
            return ControlFlow::Continue(());
        }
        if let [ObjectNamePart::Identifier(i)] = name.0.as_slice() {
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("only") {
                self.needs_fallback = true;
            }
        }
        if !self.is_cte(name) {
            self.push(name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Cast {
                expr, data_type, ..
            } if is_regclass(data_type) => {
                if let Some(s) = string_literal(expr) {
                    self.literal(s);
                }
            }
            Expr::Function(f) => {
                let is_regclass_fn = f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                    REGCLASS_FUNCTIONS
                        .iter()
                        .any(|n| i.value.eq_ignore_ascii_case(n))
                });
                if is_regclass_fn {
                    if let FunctionArguments::List(list) = &f.args {
                        if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) =
                            list.args.first()
                        {
                            if let Some(s) = string_literal(arg) {
                                self.literal(s);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        self.statement(s);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn tables(sql: &str) -> Vec<String> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        let mut out: Vec<String> = stmts
            .iter()
            .flat_map(|s| collect(s).tables)
            .map(|t| t.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn literal(sql: &str) -> bool {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        stmts.iter().any(|s| collect(s).literal_names)
    }

    #[test]
    fn select_shapes() {
        assert_eq!(
            tables("SELECT * FROM a JOIN b ON a.x = b.x LEFT JOIN s.c USING (x)"),
            ["a", "b", "s.c"]
        );
        assert_eq!(
            tables("SELECT (SELECT 1 FROM a) FROM b WHERE EXISTS (SELECT 1 FROM c)"),
            ["a", "b", "c"]
        );
        assert_eq!(
            tables("SELECT 1 FROM a UNION SELECT 2 FROM b EXCEPT SELECT 3 FROM c"),
            ["a", "b", "c"]
        );
        assert_eq!(
            tables("SELECT * FROM Users JOIN \"Users\" ON true"),
            ["\"Users\"", "users"]
        );
        assert_eq!(
            tables("SELECT * FROM (SELECT * FROM a) x, LATERAL (SELECT * FROM b) y"),
            ["a", "b"]
        );
        assert_eq!(tables("SELECT 1"), Vec::<String>::new());
    }

    #[test]
    fn table_functions_are_not_tables() {
        assert_eq!(
            tables("SELECT * FROM generate_series(1, 3) g(i)"),
            Vec::<String>::new()
        );
        assert_eq!(
            tables("SELECT * FROM unnest($1::int[]) AS x(n)"),
            Vec::<String>::new()
        );
        assert_eq!(
            tables("SELECT * FROM a, pg_catalog.generate_series(1,2) s"),
            ["a"]
        );
        assert_eq!(
            tables("SELECT * FROM json_to_record('{}') AS x(a int) JOIN t ON true"),
            ["t"]
        );
    }

    #[test]
    fn cte_scopes() {
        assert_eq!(tables("WITH t AS (SELECT * FROM a) SELECT * FROM t"), ["a"]);
        // inside its own (non-recursive) body, t is the real table
        assert_eq!(tables("WITH t AS (SELECT * FROM t) SELECT * FROM t"), ["t"]);
        // a later CTE sees an earlier one
        assert_eq!(
            tables("WITH x AS (SELECT 1 FROM a), y AS (SELECT * FROM x) SELECT * FROM y"),
            ["a"]
        );
        // an earlier CTE does not see a later one
        assert_eq!(
            tables("WITH x AS (SELECT * FROM y), y AS (SELECT 1 FROM a) SELECT * FROM x"),
            ["a", "y"]
        );
        assert_eq!(
            tables(
                "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM t) SELECT * FROM t"
            ),
            Vec::<String>::new()
        );
        // a qualified name is never a CTE
        assert_eq!(
            tables("WITH t AS (SELECT 1) SELECT * FROM public.t, t"),
            ["public.t"]
        );
        // the scope ends with its query
        assert_eq!(
            tables("SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) x, t"),
            ["t"]
        );
        // DML targets are never CTEs
        assert_eq!(
            tables("WITH t AS (SELECT 1 FROM a) INSERT INTO t SELECT * FROM t"),
            ["a", "t"]
        );
        assert_eq!(
            tables("WITH u AS (UPDATE o SET x = 1 RETURNING *) INSERT INTO log SELECT * FROM u"),
            ["log", "o"]
        );
    }

    #[test]
    fn dml() {
        assert_eq!(tables("INSERT INTO a (x) SELECT x FROM b"), ["a", "b"]);
        assert_eq!(
            tables("UPDATE t SET a = s.a FROM s WHERE t.id = s.id"),
            ["s", "t"]
        );
        assert_eq!(
            tables("DELETE FROM t USING s WHERE t.id = s.id"),
            ["s", "t"]
        );
        assert_eq!(
            tables("MERGE INTO i t USING s ON t.k = s.k WHEN MATCHED THEN DELETE"),
            ["i", "s"]
        );
        assert_eq!(
            tables("INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET x = (SELECT 1 FROM b)"),
            ["a", "b"]
        );
    }

    #[test]
    fn ddl_and_utility() {
        assert_eq!(tables("DROP TABLE IF EXISTS a, s.b CASCADE"), ["a", "s.b"]);
        assert_eq!(tables("DROP VIEW v"), ["v"]);
        assert_eq!(tables("DROP SCHEMA x"), Vec::<String>::new());
        assert_eq!(
            tables(
                "CREATE TABLE c (id int REFERENCES p(id), q int, FOREIGN KEY (q) REFERENCES s.q)"
            ),
            ["c", "p", "s.q"]
        );
        assert_eq!(
            tables("ALTER TABLE ONLY c ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES p(id)"),
            ["c", "p"]
        );
        assert_eq!(
            tables("ALTER TABLE c ADD COLUMN pid int REFERENCES p"),
            ["c", "p"]
        );
        assert_eq!(tables("CREATE INDEX i ON s.t (x)"), ["s.t"]);
        assert_eq!(tables("TRUNCATE a, b"), ["a", "b"]);
        assert_eq!(tables("COPY t (a) FROM STDIN"), ["t"]);
        assert_eq!(tables("COPY (SELECT * FROM t) TO STDOUT"), ["t"]);
        assert_eq!(tables("COMMENT ON TABLE t IS 'x'"), ["t"]);
        assert_eq!(tables("COMMENT ON COLUMN s.t.c IS 'x'"), ["s.t"]);
        assert_eq!(tables("COMMENT ON SCHEMA s IS 'x'"), Vec::<String>::new());
        assert_eq!(tables("LOCK TABLE a, b IN SHARE MODE"), ["a", "b"]);
        assert_eq!(tables("EXPLAIN ANALYZE SELECT * FROM t"), ["t"]);
        assert_eq!(
            tables("PREPARE p(int) AS SELECT * FROM t WHERE id = $1"),
            ["t"]
        );
        assert_eq!(
            tables("CREATE TRIGGER g BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()"),
            ["t"]
        );
        assert_eq!(tables("GRANT SELECT ON a, b TO r"), ["a", "b"]);
        assert_eq!(tables("REVOKE ALL ON TABLE a FROM r"), ["a"]);
        assert_eq!(tables("CREATE VIEW v AS SELECT * FROM t"), ["t", "v"]);
        assert_eq!(tables("CREATE SEQUENCE s OWNED BY t.id"), ["s", "t"]);
        assert_eq!(
            tables("ALTER INDEX users_name_idx RENAME TO x"),
            ["users_name_idx"]
        );
        assert_eq!(tables("DROP INDEX users_name_idx"), ["users_name_idx"]);
        assert_eq!(tables("DECLARE c CURSOR FOR SELECT * FROM t"), ["t"]);
        assert_eq!(tables("SELECT * INTO newt FROM t"), ["newt", "t"]);
    }

    #[test]
    fn names_in_literals() {
        assert_eq!(tables("SELECT nextval('orders_id_seq')"), ["orders_id_seq"]);
        assert_eq!(
            tables("SELECT pg_catalog.setval('public.s', 1, false)"),
            ["public.s"]
        );
        assert_eq!(tables("SELECT currval('\"Odd\"')"), ["\"Odd\""]);
        assert_eq!(tables("SELECT 'users'::regclass"), ["users"]);
        assert_eq!(tables("SELECT CAST('users' AS REGCLASS)"), ["users"]);
        assert_eq!(tables("SELECT 'users'::pg_catalog.regclass"), ["users"]);
        assert_eq!(
            tables("SELECT pg_get_serial_sequence('orders', 'id')"),
            ["orders"]
        );
        assert_eq!(
            tables("ALTER TABLE t ALTER COLUMN id SET DEFAULT nextval('t_id_seq'::regclass)"),
            ["t", "t_id_seq"]
        );
        assert_eq!(tables("SELECT '16385'::regclass"), Vec::<String>::new());
        assert!(literal("SELECT '16385'::regclass"));
        assert!(literal("SELECT nextval('x')"));
        assert!(!literal("SELECT * FROM t WHERE name = 'x'"));
        assert!(!literal("SELECT 'x'::text"));
    }

    #[test]
    fn only_misparse_is_flagged() {
        let stmts =
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT * FROM ONLY users").expect("parses");
        assert!(collect(&stmts[0]).needs_fallback);
        let stmts =
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT * FROM \"only\"").expect("parses");
        assert!(!collect(&stmts[0]).needs_fallback);
    }
}
