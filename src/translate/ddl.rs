//! CREATE TABLE, CREATE INDEX, DROP TABLE/INDEX and ALTER TABLE.
//!
//! Owns: the DDL allowlist and its rendering (written here, not through Display, because the target
//! syntax differs: auto-increment, key placement, type names, MySQL column comments that record the
//! PostgreSQL type, table options). Must never: map a type or constraint it does not know, or drop a
//! constraint silently.
//!
//! Type recording: on MySQL every column gets `COMMENT 'pg:<typname>'` (readable from
//! information_schema.COLUMNS.COLUMN_COMMENT); on SQLite the declared type keeps the PostgreSQL spelling
//! (`TIMESTAMPTZ`, `BOOLEAN`, `UUID`, `JSONB`, `BYTEA`, `NUMERIC(10,2)`), readable with
//! `sqlite3_column_decltype` / `PRAGMA table_info`.

use std::collections::HashSet;

use sqlparser::ast::{
    AlterTable, AlterTableOperation, ColumnDef, ColumnOption, CreateIndex, CreateTable, Expr,
    ForeignKeyConstraint, GeneratedAs, Ident, IndexColumn, NullsDistinctOption, ObjectName,
    ObjectType, OrderBySort, ReferentialAction, RenameTableNameKind, Statement, TableConstraint,
};

use sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;

use super::dml::assemble;
use super::error::{Result, TranslateError};
use super::names::{self, fold, quote};
use super::types::{classify, PgType};
use super::walk::{table_name, Ctx};
use super::{DropIndexLookup, Kind, Rewritten, TagHint, Target};

fn unsupported<T>(what: impl Into<String>) -> Result<T> {
    Err(TranslateError::unsupported(what))
}

/// Table options for tables created on MySQL: InnoDB (foreign keys, transactions) and a binary
/// collation so `=`, LIKE and UNIQUE compare strings case-sensitively, as PostgreSQL does.
pub const MYSQL_TABLE_OPTIONS: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

pub(crate) fn rewrite_ddl(ctx: &mut Ctx, stmt: &mut Statement) -> Result<Rewritten> {
    let (sql, kind, tag, lookup) = match stmt {
        Statement::CreateTable(ct) => (
            create_table(ctx, ct)?,
            Kind::CreateTable,
            "CREATE TABLE",
            None,
        ),
        Statement::CreateIndex(ci) => (
            create_index(ctx, ci)?,
            Kind::CreateIndex,
            "CREATE INDEX",
            None,
        ),
        Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade: _,
            restrict: _,
            purge,
            temporary,
            table,
        } => {
            if *purge || *temporary || table.is_some() {
                return unsupported("non-PostgreSQL DROP clause");
            }
            let mut list = Vec::new();
            for n in names.iter_mut() {
                list.push(quote(&table_name(n)?, ctx.target));
            }
            let ie = if *if_exists { "IF EXISTS " } else { "" };
            match object_type {
                ObjectType::Table => {
                    if ctx.target == Target::Sqlite && list.len() != 1 {
                        return unsupported("DROP TABLE of several tables on SQLite");
                    }
                    // CASCADE/RESTRICT: neither engine drops dependent objects; a dependent foreign
                    // key makes the DROP fail (MySQL) or is checked row by row (SQLite).
                    (
                        format!("DROP TABLE {ie}{}", list.join(", ")),
                        Kind::DropTable,
                        "DROP TABLE",
                        None,
                    )
                }
                ObjectType::Index => {
                    if list.len() != 1 {
                        return unsupported("DROP INDEX of several indexes");
                    }
                    match ctx.target {
                        Target::Sqlite => (
                            format!("DROP INDEX {ie}{}", list[0]),
                            Kind::DropIndex,
                            "DROP INDEX",
                            None,
                        ),
                        Target::MySql => {
                            let index = names
                                .first()
                                .and_then(|n| n.0.last().and_then(|p| p.as_ident()).map(fold));
                            (
                                String::new(),
                                Kind::DropIndex,
                                "DROP INDEX",
                                Some(DropIndexLookup {
                                    index: index.unwrap_or_default(),
                                    if_exists: *if_exists,
                                }),
                            )
                        }
                    }
                }
                other => return unsupported(format!("DROP {other}")),
            }
        }
        Statement::AlterTable(at) => (alter_table(ctx, at)?, Kind::AlterTable, "ALTER TABLE", None),
        _ => return unsupported("this DDL statement"),
    };
    let mut r = assemble(ctx, sql, vec![], kind, TagHint::Fixed(tag), None);
    r.drop_index_lookup = lookup;
    Ok(r)
}

/// Walk and render an expression used in DDL (DEFAULT, CHECK, index predicate). No parameters.
fn ddl_expr(ctx: &mut Ctx, e: &Expr) -> Result<String> {
    let mut e = e.clone();
    let guard = std::mem::replace(&mut ctx.guard_division, false);
    let walked = ctx.expr(&mut e);
    ctx.guard_division = guard;
    walked?;
    names::normalize(&mut e, ctx.target)?;
    let (s, params) = names::finish(&e.to_string());
    if !params.is_empty() {
        return unsupported("parameter in DDL");
    }
    Ok(s)
}

fn is_literal(e: &str) -> bool {
    let e = e.trim();
    e.starts_with('\'')
        || e.parse::<f64>().is_ok()
        || matches!(
            e.to_ascii_uppercase().as_str(),
            "NULL" | "TRUE" | "FALSE" | "CURRENT_TIMESTAMP(6)" | "CURRENT_DATE"
        )
}

fn render_default(ctx: &mut Ctx, e: &Expr) -> Result<String> {
    let s = ddl_expr(ctx, e)?;
    let literal = is_literal(&s) && !(ctx.target == Target::MySql && s == "CURRENT_DATE");
    Ok(if literal {
        format!("DEFAULT {s}")
    } else {
        format!("DEFAULT ({s})")
    })
}

fn action(a: &ReferentialAction, t: Target) -> Result<&'static str> {
    Ok(match a {
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::NoAction => "NO ACTION",
        ReferentialAction::SetDefault if t == Target::Sqlite => "SET DEFAULT",
        ReferentialAction::SetDefault => {
            return unsupported("ON DELETE/UPDATE SET DEFAULT on MySQL")
        }
    })
}

fn references(ctx: &Ctx, fk: &mut ForeignKeyConstraint) -> Result<String> {
    if fk.match_kind.is_some() {
        return unsupported("MATCH FULL/PARTIAL");
    }
    if fk.characteristics.is_some() {
        return unsupported("DEFERRABLE constraint");
    }
    let t = ctx.target;
    let mut s = format!(
        "REFERENCES {}",
        quote(&table_name(&mut fk.foreign_table)?, t)
    );
    if fk.referred_columns.is_empty() {
        if t == Target::MySql {
            return unsupported("REFERENCES without a column list on MySQL");
        }
    } else {
        s.push_str(&format!(" ({})", ident_list(&fk.referred_columns, t)));
    }
    if let Some(a) = &fk.on_delete {
        s.push_str(&format!(" ON DELETE {}", action(a, t)?));
    }
    if let Some(a) = &fk.on_update {
        s.push_str(&format!(" ON UPDATE {}", action(a, t)?));
    }
    Ok(s)
}

fn ident_list(ids: &[Ident], t: Target) -> String {
    ids.iter()
        .map(|i| quote(&fold(i), t))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns of a key: plain column names only.
fn key_columns(
    cols: &[IndexColumn],
    allow_sort: bool,
) -> Result<Vec<(String, Option<OrderBySort>)>> {
    cols.iter()
        .map(|c| {
            if c.operator_class.is_some() {
                return unsupported("operator class");
            }
            if c.column.options.nulls_first.is_some() {
                return unsupported("NULLS FIRST/LAST in an index");
            }
            if c.column.options.sort.is_some() && !allow_sort {
                return unsupported("ASC/DESC in a constraint");
            }
            match &c.column.expr {
                Expr::Identifier(i) => Ok((fold(i), c.column.options.sort.clone())),
                _ => unsupported("expression index"),
            }
        })
        .collect()
}

fn constraint_name(n: &Option<Ident>, t: Target) -> String {
    n.as_ref().map_or(String::new(), |n| {
        format!("CONSTRAINT {} ", quote(&fold(n), t))
    })
}

struct Col {
    name: String,
    ty: PgType,
    auto: bool,
    not_null: bool,
    inline_pk: bool,
    /// Inline UNIQUE / REFERENCES: the column is part of a key.
    keyed: bool,
    rest: Vec<String>,
}

fn create_table(ctx: &mut Ctx, ct: &mut CreateTable) -> Result<String> {
    let t = ctx.target;
    // Allowlist: apart from the fields handled here, the statement must equal a bare CREATE TABLE.
    let mut probe = ct.clone();
    probe.columns.clear();
    probe.constraints.clear();
    probe.if_not_exists = false;
    probe.temporary = false;
    if probe != CreateTableBuilder::new(ct.name.clone()).build() {
        if ct.query.is_some() {
            return unsupported("CREATE TABLE … AS");
        }
        if ct.inherits.is_some() || ct.partition_of.is_some() {
            return unsupported("INHERITS/PARTITION OF");
        }
        if ct.unlogged {
            return unsupported("UNLOGGED table");
        }
        return unsupported("CREATE TABLE option");
    }
    let tname = table_name(&mut ct.name)?;
    ctx.push_table_scope(&tname, None);
    let r = create_table_body(ctx, ct, &tname);
    ctx.pop_scope();
    let body = r?;
    let temp = match (ct.temporary, t) {
        (false, _) => "",
        (true, Target::MySql) => "TEMPORARY ",
        (true, Target::Sqlite) => "TEMP ",
    };
    let ine = if ct.if_not_exists {
        "IF NOT EXISTS "
    } else {
        ""
    };
    let mut sql = format!("CREATE {temp}TABLE {ine}{} ({})", quote(&tname, t), body);
    if t == Target::MySql {
        sql.push(' ');
        sql.push_str(MYSQL_TABLE_OPTIONS);
    }
    Ok(sql)
}

fn create_table_body(ctx: &mut Ctx, ct: &mut CreateTable, _table: &str) -> Result<String> {
    let t = ctx.target;
    // Columns that are part of a key (MySQL cannot key TEXT/BLOB).
    let mut keyed: HashSet<String> = HashSet::new();
    for c in &ct.constraints {
        match c {
            TableConstraint::PrimaryKey(pk) => {
                keyed.extend(key_columns(&pk.columns, false)?.into_iter().map(|x| x.0))
            }
            TableConstraint::Unique(u) => {
                keyed.extend(key_columns(&u.columns, false)?.into_iter().map(|x| x.0))
            }
            TableConstraint::ForeignKey(fk) => keyed.extend(fk.columns.iter().map(fold)),
            _ => {}
        }
    }
    let mut cols = Vec::new();
    let mut table_items: Vec<String> = Vec::new();
    for cd in ct.columns.iter_mut() {
        cols.push(column(ctx, cd, &keyed, &mut table_items)?);
    }
    // Table constraints.
    let mut constraints = Vec::new();
    let mut pk_cols: Option<Vec<String>> = None;
    for c in ct.constraints.iter_mut() {
        match c {
            TableConstraint::PrimaryKey(pk) => {
                if !pk.include.is_empty()
                    || !pk.index_options.is_empty()
                    || pk.characteristics.is_some()
                    || pk.index_type.is_some()
                {
                    return unsupported("PRIMARY KEY option");
                }
                let names: Vec<String> = key_columns(&pk.columns, false)?
                    .into_iter()
                    .map(|x| x.0)
                    .collect();
                pk_cols = Some(names.clone());
                constraints.push((
                    true,
                    format!(
                        "{}PRIMARY KEY ({})",
                        constraint_name(&pk.name, t),
                        names
                            .iter()
                            .map(|n| quote(n, t))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            TableConstraint::Unique(u) => {
                if !u.include.is_empty()
                    || !u.index_options.is_empty()
                    || u.characteristics.is_some()
                    || u.index_type.is_some()
                {
                    return unsupported("UNIQUE option");
                }
                if !matches!(
                    u.nulls_distinct,
                    NullsDistinctOption::None | NullsDistinctOption::Distinct
                ) {
                    return unsupported("UNIQUE NULLS NOT DISTINCT");
                }
                let names: Vec<String> = key_columns(&u.columns, false)?
                    .into_iter()
                    .map(|x| x.0)
                    .collect();
                constraints.push((
                    false,
                    format!(
                        "{}UNIQUE ({})",
                        constraint_name(&u.name, t),
                        names
                            .iter()
                            .map(|n| quote(n, t))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            TableConstraint::ForeignKey(fk) => {
                let cols_s = ident_list(&fk.columns, t);
                let name = constraint_name(&fk.name, t);
                let refs = references(ctx, fk)?;
                constraints.push((false, format!("{name}FOREIGN KEY ({cols_s}) {refs}")));
            }
            TableConstraint::Check(ch) => {
                if ch.no_inherit || ch.enforced.is_some() {
                    return unsupported("CHECK option");
                }
                let e = ddl_expr(ctx, &ch.expr)?;
                constraints.push((
                    false,
                    format!("{}CHECK ({e})", constraint_name(&ch.name, t)),
                ));
            }
            _ => return unsupported("this table constraint"),
        }
    }
    // Auto-increment columns.
    for c in cols.iter_mut().filter(|c| c.auto) {
        if t == Target::Sqlite {
            let single_pk =
                c.inline_pk || pk_cols.as_deref() == Some(std::slice::from_ref(&c.name));
            if !single_pk {
                return unsupported(
                    "SERIAL/IDENTITY column that is not the single-column PRIMARY KEY on SQLite",
                );
            }
            // Declared inline so it becomes the rowid alias; the table-level key is dropped below.
            c.inline_pk = true;
            constraints.retain(|(is_pk, _)| !is_pk);
        }
    }
    let mut items: Vec<String> = cols
        .iter()
        .map(|c| {
            let mut s = quote(&c.name, t);
            s.push(' ');
            match t {
                Target::MySql => {
                    s.push_str(
                        &c.ty
                            .mysql_column(keyed.contains(&c.name) || c.inline_pk || c.keyed),
                    );
                    if c.not_null || c.auto || c.inline_pk {
                        s.push_str(" NOT NULL");
                    }
                    if c.auto {
                        s.push_str(" AUTO_INCREMENT");
                    }
                    if c.inline_pk {
                        s.push_str(" PRIMARY KEY");
                    }
                }
                Target::Sqlite => {
                    if c.auto {
                        s.push_str("INTEGER PRIMARY KEY AUTOINCREMENT");
                    } else {
                        s.push_str(&c.ty.sqlite_column());
                        if c.inline_pk {
                            s.push_str(" PRIMARY KEY");
                        }
                    }
                    if c.not_null || c.inline_pk {
                        s.push_str(" NOT NULL");
                    }
                }
            }
            for r in &c.rest {
                s.push(' ');
                s.push_str(r);
            }
            if t == Target::MySql {
                s.push_str(&format!(
                    " COMMENT '{}{}'",
                    super::MYSQL_COMMENT_PREFIX,
                    c.ty.pg_name()
                ));
            } else if !c.auto || matches!(c.ty, PgType::Int2 | PgType::Int4) {
                // A serial/smallserial key is a rowid alias (declared `INTEGER`, which reads as
                // int8): its range check records the declared type (`types::sqlite_rowid_type`).
                s.push_str(&sqlite_type_check(&c.name, &c.ty));
            }
            s
        })
        .collect();
    items.extend(constraints.into_iter().map(|(_, s)| s));
    items.extend(table_items);
    Ok(items.join(", "))
}

/// What a check [`sqlite_type_check`] adds reports when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// An integer column's range: the PostgreSQL type name (`integer`) for `… out of range`.
    Range(&'static str),
    /// A date or timestamp column holding no valid date (`2024-02-30`, `10:61`).
    Calendar,
}

/// Prefix of the names of the checks bindproxy adds to SQLite columns.
const CHECK_PREFIX: &str = "bindproxy_";

/// The kind of a check of [`sqlite_type_check`], from the name SQLite reports
/// (`CHECK constraint failed: bindproxy_int4`).
pub fn bindproxy_check(name: &str) -> Option<CheckKind> {
    Some(match name.trim().strip_prefix(CHECK_PREFIX)? {
        "int2" => CheckKind::Range("smallint"),
        "int4" => CheckKind::Range("integer"),
        "int8" => CheckKind::Range("bigint"),
        "date" | "timestamp" => CheckKind::Calendar,
        _ => return None,
    })
}

/// SQLite stores whatever it is given; PostgreSQL refuses integers beyond the column's type
/// (22003) and dates that do not exist (22008). A named CHECK on each integer, date and timestamp
/// column created through bindproxy makes SQLite refuse them too: `99999999999999999999` (stored
/// as a REAL) and `2147483648` in an `integer` column, `2024-02-30` (which SQLite's `date()` reads
/// as `2024-03-01`) in a `date` column. `backend/translated/errors.rs` maps the names back.
pub(crate) fn sqlite_type_check(name: &str, ty: &PgType) -> String {
    let c = quote(name, Target::Sqlite);
    let (kind, expr) = match ty {
        PgType::Int2 => ("int2", format!("{c} BETWEEN -32768 AND 32767")),
        PgType::Int4 => ("int4", format!("{c} BETWEEN -2147483648 AND 2147483647")),
        PgType::Int8 => (
            "int8",
            format!("{c} BETWEEN -9223372036854775808 AND 9223372036854775807"),
        ),
        // date() normalises an impossible day (and is NULL for text that is no date).
        PgType::Date => ("date", format!("date({c}) IS {c}")),
        PgType::Timestamp | PgType::Timestamptz => (
            "timestamp",
            format!(
                "{c} IS NULL OR (datetime({c}) IS NOT NULL AND date({c}) IS substr({c}, 1, 10))"
            ),
        ),
        _ => return String::new(),
    };
    format!(" CONSTRAINT \"{CHECK_PREFIX}{kind}\" CHECK ({expr})")
}

fn column(
    ctx: &mut Ctx,
    cd: &mut ColumnDef,
    keyed: &HashSet<String>,
    table_items: &mut Vec<String>,
) -> Result<Col> {
    let t = ctx.target;
    let name = fold(&cd.name);
    let declared = classify(&cd.data_type)?;
    let mut col = Col {
        name: name.clone(),
        ty: declared.ty,
        auto: declared.serial,
        not_null: false,
        inline_pk: false,
        keyed: false,
        rest: vec![],
    };
    let _ = keyed;
    for o in cd.options.iter_mut() {
        let cname = o.name.clone();
        match &mut o.option {
            ColumnOption::Null => col.rest.push("NULL".into()),
            ColumnOption::NotNull => col.not_null = true,
            ColumnOption::Default(e) => {
                let d = render_default(ctx, e)?;
                col.rest.push(d);
            }
            ColumnOption::PrimaryKey(pk) => {
                if pk.characteristics.is_some() || !pk.index_options.is_empty() {
                    return unsupported("PRIMARY KEY option");
                }
                col.inline_pk = true;
            }
            ColumnOption::Unique(u) => {
                if u.characteristics.is_some() || !u.index_options.is_empty() {
                    return unsupported("UNIQUE option");
                }
                col.keyed = true;
                col.rest
                    .push(format!("{}UNIQUE", constraint_name(&cname, t)));
            }
            ColumnOption::ForeignKey(fk) => {
                let refs = references(ctx, fk)?;
                col.keyed = true;
                match t {
                    // MySQL ignores inline REFERENCES: make it a table-level constraint.
                    Target::MySql => table_items.push(format!(
                        "{}FOREIGN KEY ({}) {refs}",
                        constraint_name(&cname, t),
                        quote(&name, t)
                    )),
                    Target::Sqlite => col
                        .rest
                        .push(format!("{}{refs}", constraint_name(&cname, t))),
                }
            }
            ColumnOption::Check(ch) => {
                let e = ddl_expr(ctx, &ch.expr)?;
                col.rest
                    .push(format!("{}CHECK ({e})", constraint_name(&cname, t)));
            }
            ColumnOption::Generated {
                generated_as,
                generation_expr: None,
                generation_expr_mode: None,
                ..
            } => {
                if !matches!(generated_as, GeneratedAs::Always | GeneratedAs::ByDefault) {
                    return unsupported("GENERATED column");
                }
                if !matches!(col.ty, PgType::Int2 | PgType::Int4 | PgType::Int8) {
                    return unsupported("IDENTITY on a non-integer column");
                }
                col.auto = true;
            }
            ColumnOption::Generated { .. } => {
                return unsupported("GENERATED ALWAYS AS (expression) column")
            }
            ColumnOption::Collation(_) => return unsupported("COLLATE"),
            _ => return unsupported("this column option"),
        }
    }
    Ok(col)
}

fn create_index(ctx: &mut Ctx, ci: &mut CreateIndex) -> Result<String> {
    let t = ctx.target;
    let CreateIndex {
        name,
        table_name: tn,
        using,
        columns,
        unique,
        concurrently: _,
        r#async,
        if_not_exists,
        include,
        nulls_distinct,
        with,
        predicate,
        index_options,
        alter_options,
    } = ci;
    if *r#async || !with.is_empty() || !index_options.is_empty() || !alter_options.is_empty() {
        return unsupported("CREATE INDEX option");
    }
    if !include.is_empty() {
        return unsupported("INCLUDE columns");
    }
    if nulls_distinct.is_some() {
        return unsupported("NULLS [NOT] DISTINCT");
    }
    if let Some(u) = using {
        if !u.to_string().eq_ignore_ascii_case("btree") {
            return unsupported(format!("index method {}", u.to_string().to_lowercase()));
        }
    }
    let table = table_name(tn)?;
    let cols = key_columns(columns, true)?;
    let index = match name {
        Some(n) => {
            let n: &mut ObjectName = n;
            table_name(n)?
        }
        None => format!(
            "{}_{}_idx",
            table,
            cols.iter()
                .map(|c| c.0.as_str())
                .collect::<Vec<_>>()
                .join("_")
        ),
    };
    let col_sql = cols
        .iter()
        .map(|(c, s)| match s {
            Some(OrderBySort::Desc) => format!("{} DESC", quote(c, t)),
            _ => quote(c, t),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "CREATE {}INDEX {}{} ON {} ({col_sql})",
        if *unique { "UNIQUE " } else { "" },
        if *if_not_exists { "IF NOT EXISTS " } else { "" },
        quote(&index, t),
        quote(&table, t)
    );
    if let Some(p) = predicate {
        if t == Target::MySql {
            return unsupported("partial index (WHERE) on MySQL");
        }
        ctx.push_table_scope(&table, None);
        let e = ddl_expr(ctx, p);
        ctx.pop_scope();
        sql.push_str(&format!(" WHERE {}", e?));
    }
    Ok(sql)
}

/// `CONSTRAINT name CHECK (expr)` of `ALTER TABLE table ADD …`, the expression rendered for the
/// target; an unnamed one gets PostgreSQL's name (`<table>_<first column>_check`, or
/// `<table>_check`). (SQLite adds it by rebuilding the table: [`sqlite_added_check`].)
fn check_constraint(
    ctx: &mut Ctx,
    table: &str,
    ch: &sqlparser::ast::CheckConstraint,
) -> Result<String> {
    if ch.no_inherit || ch.enforced.is_some() {
        return unsupported("CHECK option");
    }
    let name = match &ch.name {
        Some(n) => fold(n),
        None => {
            let mut first = None;
            let _ = sqlparser::ast::visit_expressions(&*ch.expr, |e| {
                if let Expr::Identifier(i) = e {
                    first = Some(fold(i));
                    return std::ops::ControlFlow::Break(());
                }
                std::ops::ControlFlow::Continue(())
            });
            match first {
                Some(c) => format!("{table}_{c}_check"),
                None => format!("{table}_check"),
            }
        }
    };
    ctx.push_table_scope(table, None);
    let e = ddl_expr(ctx, &ch.expr);
    ctx.pop_scope();
    Ok(format!(
        "ADD CONSTRAINT {} CHECK ({})",
        quote(&name, ctx.target),
        e?
    ))
}

/// For SQLite's rebuild (`translate/sequence.rs`): the `CONSTRAINT name CHECK (expr)` item that
/// `ALTER TABLE t ADD [CONSTRAINT name] CHECK (expr)` adds to the table, rendered for SQLite.
/// `None` when `sql` is not that statement.
pub(crate) fn sqlite_added_check(sql: &str) -> Option<Result<String>> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let [Statement::AlterTable(at)] = stmts.as_mut_slice() else {
        return None;
    };
    let mut ctx = Ctx::new(Target::Sqlite, None);
    let table = match table_name(&mut at.name) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let [AlterTableOperation::AddConstraint {
        constraint: TableConstraint::Check(ch),
        not_valid,
    }] = at.operations.as_slice()
    else {
        return None;
    };
    if *not_valid {
        return Some(unsupported("NOT VALID"));
    }
    Some(
        check_constraint(&mut ctx, &table, ch)
            .map(|s| s.strip_prefix("ADD ").unwrap_or(&s).to_string()),
    )
}

fn alter_table(ctx: &mut Ctx, at: &mut AlterTable) -> Result<String> {
    let t = ctx.target;
    if at.only || at.location.is_some() || at.on_cluster.is_some() || at.table_type.is_some() {
        return unsupported("ALTER TABLE option");
    }
    let table = table_name(&mut at.name)?;
    let [op] = at.operations.as_mut_slice() else {
        return unsupported("ALTER TABLE with several actions");
    };
    let head = format!(
        "ALTER TABLE {}{}",
        if at.if_exists { "IF EXISTS " } else { "" },
        quote(&table, t)
    );
    if at.if_exists && t == Target::Sqlite {
        return unsupported("ALTER TABLE IF EXISTS on SQLite");
    }
    let action = match op {
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            column_position: None,
            ..
        } => {
            if *if_not_exists {
                return unsupported("ADD COLUMN IF NOT EXISTS");
            }
            let mut items = Vec::new();
            let keyed = HashSet::new();
            ctx.push_table_scope(&table, None);
            let c = column(ctx, column_def, &keyed, &mut items);
            ctx.pop_scope();
            let c = c?;
            if c.auto || c.inline_pk || !items.is_empty() {
                return unsupported("ADD COLUMN with SERIAL, PRIMARY KEY or REFERENCES");
            }
            let mut s = format!("ADD COLUMN {} ", quote(&c.name, t));
            s.push_str(&match t {
                Target::MySql => c.ty.mysql_column(false),
                Target::Sqlite => c.ty.sqlite_column(),
            });
            if c.not_null {
                s.push_str(" NOT NULL");
            }
            for r in &c.rest {
                s.push(' ');
                s.push_str(r);
            }
            if t == Target::Sqlite {
                s.push_str(&sqlite_type_check(&c.name, &c.ty));
            }
            if t == Target::MySql {
                s.push_str(&format!(
                    " COMMENT '{}{}'",
                    super::MYSQL_COMMENT_PREFIX,
                    c.ty.pg_name()
                ));
            }
            s
        }
        AlterTableOperation::AddConstraint {
            constraint: TableConstraint::Check(ch),
            not_valid: false,
        } if t == Target::MySql => check_constraint(ctx, &table, ch)?,
        AlterTableOperation::DropColumn {
            column_names,
            if_exists: false,
            drop_behavior: _,
            ..
        } if column_names.len() == 1 => {
            format!("DROP COLUMN {}", quote(&fold(&column_names[0]), t))
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => format!(
            "RENAME COLUMN {} TO {}",
            quote(&fold(old_column_name), t),
            quote(&fold(new_column_name), t)
        ),
        AlterTableOperation::RenameTable {
            table_name: RenameTableNameKind::To(n),
        } => format!("RENAME TO {}", quote(&table_name(n)?, t)),
        other => {
            return unsupported(format!(
                "ALTER TABLE {}",
                other
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or("action")
            ))
        }
    };
    Ok(format!("{head} {action}"))
}
