//! SELECT, INSERT, UPDATE and DELETE statements.
//!
//! Owns: the statement-level allowlist of the DML shapes (target table, column lists, VALUES, ON
//! CONFLICT, RETURNING, UPDATE … FROM, DELETE), their rewriting for the target (ON CONFLICT → ON
//! DUPLICATE KEY UPDATE on MySQL, RETURNING handling, the batched-insert shapes of SQLAlchemy and of
//! Django ([`super::unnest`]) made multi-row VALUES), parameter hints from column lists and SET
//! clauses, and rendering through sqlparser's Display. Must never: accept a clause it does not check,
//! or render RETURNING where the target cannot evaluate it.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Delete, Expr, FromTable, Ident, Insert,
    ObjectName, ObjectNamePart, OnConflictAction, OnInsert, SelectItem, SetExpr, Statement,
    TableFactor, TableObject, Update, UpdateTableFromKind, VisitMut, VisitorMut,
};

use super::colname;
use super::error::{Result, TranslateError};
use super::names::{self, fold};
use super::restype;
use super::walk::{call, table_name, Ctx};
use super::{ColumnRef, Kind, LastInsertIdEmulation, Returning, Rewritten, TagHint, Target};

fn unsupported<T>(what: impl Into<String>) -> Result<T> {
    Err(TranslateError::unsupported(what))
}

pub(crate) fn rewrite_dml(ctx: &mut Ctx, stmt: &mut Statement) -> Result<Rewritten> {
    match stmt {
        Statement::Query(q) => {
            let plan = colname::plan(q);
            ctx.result_types = restype::of_query(q);
            ctx.query(q)?;
            colname::apply(q, &plan);
            finish(ctx, stmt, Kind::Select, TagHint::Select, None)
        }
        Statement::Insert(ins) => insert(ctx, ins).and_then(|ret| {
            let r = finish(ctx, stmt, Kind::Insert, TagHint::Insert, ret)?;
            mysql_insert_emulation(ctx.target, stmt, r)
        }),
        Statement::Update(u) => {
            let ret = update(ctx, u)?;
            finish(ctx, stmt, Kind::Update, TagHint::Update, ret)
        }
        Statement::Delete(d) => {
            let ret = delete(ctx, d)?;
            finish(ctx, stmt, Kind::Delete, TagHint::Delete, ret)
        }
        _ => unsupported("this statement"),
    }
}

/// Quote, render, number the placeholders, and assemble the result.
pub(crate) fn finish(
    ctx: &Ctx,
    stmt: &mut Statement,
    kind: Kind,
    tag_hint: TagHint,
    returning: Option<Returning>,
) -> Result<Rewritten> {
    names::normalize(stmt, ctx.target)?;
    let (sql, params) = names::finish(&stmt.to_string());
    Ok(assemble(ctx, sql, params, kind, tag_hint, returning))
}

pub(crate) fn assemble(
    ctx: &Ctx,
    sql: String,
    params: Vec<usize>,
    kind: Kind,
    tag_hint: TagHint,
    returning: Option<Returning>,
) -> Rewritten {
    let n = params
        .iter()
        .copied()
        .chain(ctx.max_param)
        .max()
        .map_or(0, |m| m + 1);
    let mut param_hints = vec![None; n];
    for (i, c) in &ctx.hints {
        if let Some(slot) = param_hints.get_mut(*i) {
            *slot = Some(c.clone());
        }
    }
    Rewritten {
        sql,
        before: vec![],
        params,
        kind,
        returning,
        param_hints,
        pg_types: ctx.pg_types.iter().map(|(i, t)| (*i, t.clone())).collect(),
        tag_hint,
        drop_index_lookup: None,
        tables: vec![],
        result_types: ctx.result_types.clone(),
    }
}

/// Validate and rewrite a RETURNING list against its single target table; returns the output names.
fn returning_list(
    ctx: &mut Ctx,
    items: &mut [SelectItem],
    table: &str,
    alias: Option<&str>,
) -> Result<Vec<String>> {
    ctx.result_types = restype::of_returning(items, table, alias);
    let mut names_out = Vec::new();
    for item in items.iter_mut() {
        // `RETURNING t.id` / `public.t.id` → `id`: the list can only name the target table's columns.
        let unqualify = |e: &mut Expr| {
            if let Expr::CompoundIdentifier(parts) = e {
                let n = parts.len();
                let qual_ok = n >= 2 && {
                    let q = fold(&parts[n - 2]);
                    q == table || Some(q.as_str()) == alias
                };
                if qual_ok && (n == 2 || (n == 3 && fold(&parts[0]) == "public")) {
                    if let Some(last) = parts.pop() {
                        *e = Expr::Identifier(last);
                    }
                }
            }
        };
        match item {
            SelectItem::UnnamedExpr(e) => {
                unqualify(e);
                names_out.push(match e {
                    Expr::Identifier(i) => fold(i),
                    Expr::Function(f) => f
                        .name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map_or("?column?".into(), |i| i.value.to_lowercase()),
                    _ => "?column?".into(),
                });
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                unqualify(expr);
                names_out.push(fold(alias));
            }
            SelectItem::Wildcard(_) => names_out.push("*".into()),
            SelectItem::QualifiedWildcard(..) => {
                *item = SelectItem::Wildcard(sqlparser::ast::WildcardAdditionalOptions::default());
                names_out.push("*".into());
            }
            _ => {}
        }
        ctx.select_item(item)?;
    }
    Ok(names_out)
}

fn insert(ctx: &mut Ctx, ins: &mut Insert) -> Result<Option<Returning>> {
    let Insert {
        optimizer_hints,
        or,
        ignore,
        into,
        table,
        table_alias,
        columns,
        overwrite,
        source,
        assignments,
        partitioned,
        after_columns,
        has_table_keyword,
        on,
        returning,
        output,
        replace_into,
        priority,
        insert_alias,
        settings,
        format_clause,
        multi_table_insert_type,
        multi_table_into_clauses,
        multi_table_when_clauses,
        ..
    } = ins;
    if or.is_some()
        || *ignore
        || !*into
        || *overwrite
        || !assignments.is_empty()
        || partitioned.is_some()
        || !after_columns.is_empty()
        || *has_table_keyword
        || output.is_some()
        || *replace_into
        || priority.is_some()
        || insert_alias.is_some()
        || settings.is_some()
        || format_clause.is_some()
        || multi_table_insert_type.is_some()
        || !multi_table_into_clauses.is_empty()
        || !multi_table_when_clauses.is_empty()
        || !optimizer_hints.is_empty()
    {
        return unsupported("non-PostgreSQL INSERT clause");
    }
    if table_alias.is_some() {
        return unsupported("INSERT INTO … AS alias");
    }
    let tname = match table {
        TableObject::TableName(n) => table_name(n)?,
        _ => return unsupported("INSERT INTO a table function"),
    };
    let mut cols = Vec::new();
    for c in columns.iter() {
        match c.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => cols.push(fold(i)),
            _ => return unsupported("qualified column in INSERT column list"),
        }
    }
    let Some(src) = source else {
        return unsupported("INSERT … DEFAULT VALUES");
    };
    if !cols.is_empty() && !insertmanyvalues_to_values(src)? {
        super::unnest::to_values(src)?;
    }
    // Hints: VALUES rows line up with the column list, or without one with the table's columns
    // in order (`#1`, `#2`, … are resolved by the executor).
    if let SetExpr::Values(v) = src.body.as_ref() {
        for row in &v.rows {
            if !cols.is_empty() && row.content.len() != cols.len() {
                return Err(TranslateError::Invalid(
                    "INSERT has more or fewer expressions than target columns".into(),
                ));
            }
            for (i, e) in row.content.iter().enumerate() {
                let column = match cols.get(i) {
                    Some(c) => c.clone(),
                    None if cols.is_empty() => format!("#{}", i + 1),
                    None => continue,
                };
                ctx.hint_column(
                    e,
                    ColumnRef {
                        table: tname.clone(),
                        column,
                    },
                );
            }
        }
    }
    // A literal takes the type of its column, as PostgreSQL assigns it (`1.5` into an integer is
    // 2, `'yes'` into a boolean is true).
    if let SetExpr::Values(v) = src.body.as_mut() {
        for row in &mut v.rows {
            for (i, e) in row.content.iter_mut().enumerate() {
                let column = match cols.get(i) {
                    Some(c) => c.clone(),
                    None => format!("#{}", i + 1),
                };
                ctx.coerce_literal(e, &tname, &column)?;
            }
        }
    }
    if ctx.target == Target::Sqlite {
        sqlite_values_default(src, columns)?;
    }
    let single_row = matches!(src.body.as_ref(), SetExpr::Values(v) if v.rows.len() == 1);
    let is_values = matches!(src.body.as_ref(), SetExpr::Values(_));
    ctx.query(src)?;

    ctx.push_table_scope(&tname, None);
    let r = (|| {
        match on {
            None => {}
            Some(OnInsert::DuplicateKeyUpdate(_)) => return unsupported("ON DUPLICATE KEY UPDATE"),
            Some(OnInsert::OnConflict(oc)) => {
                let mut target_cols = Vec::new();
                match &oc.conflict_target {
                    None => {}
                    Some(ConflictTarget::Columns(cs)) => target_cols = cs.clone(),
                    Some(ConflictTarget::OnConstraint(_)) => {
                        return unsupported("ON CONFLICT ON CONSTRAINT")
                    }
                }
                if let OnConflictAction::DoUpdate(du) = &mut oc.action {
                    if target_cols.is_empty() {
                        return Err(TranslateError::Invalid(
                            "ON CONFLICT DO UPDATE requires inference specification".into(),
                        ));
                    }
                    ctx.extend_excluded(&tname);
                    for a in &mut du.assignments {
                        assignment(ctx, a, &tname)?;
                    }
                    if let Some(w) = &mut du.selection {
                        if ctx.target == Target::MySql {
                            return unsupported("ON CONFLICT DO UPDATE … WHERE on MySQL");
                        }
                        ctx.expr(w)?;
                    }
                }
                match ctx.target {
                    Target::Sqlite => {
                        if !is_values {
                            return unsupported("INSERT … SELECT … ON CONFLICT on SQLite");
                        }
                    }
                    Target::MySql => {
                        if returning.is_some() {
                            // MariaDB would return a row for a conflicting row too; PostgreSQL does not
                            // for DO NOTHING.
                            return unsupported("ON CONFLICT with RETURNING on MySQL");
                        }
                        let assignments = match &mut oc.action {
                            OnConflictAction::DoNothing => {
                                // A no-op update: unlike INSERT IGNORE it suppresses only key conflicts.
                                let col = target_cols.first().cloned().or_else(|| {
                                    columns
                                        .first()
                                        .and_then(|c| c.0.first())
                                        .and_then(|p| p.as_ident().cloned())
                                });
                                let Some(col) = col else {
                                    return unsupported(
                                        "ON CONFLICT DO NOTHING without a column list on MySQL",
                                    );
                                };
                                vec![Assignment {
                                    target: AssignmentTarget::ColumnName(ObjectName(vec![
                                        ObjectNamePart::Identifier(col.clone()),
                                    ])),
                                    value: Expr::Identifier(col),
                                }]
                            }
                            OnConflictAction::DoUpdate(du) => {
                                let mut v = ExcludedToValues {
                                    table: tname.clone(),
                                };
                                for a in &mut du.assignments {
                                    let _ = a.value.visit(&mut v);
                                }
                                std::mem::take(&mut du.assignments)
                            }
                        };
                        *on = Some(OnInsert::DuplicateKeyUpdate(assignments));
                    }
                }
            }
            Some(_) => return unsupported("this ON clause"),
        }
        match returning {
            None => Ok(None),
            Some(items) => {
                let columns = returning_list(ctx, items, &tname, None)?;
                Ok(Some(Returning {
                    columns,
                    native: true,
                    emulation: None,
                }))
            }
        }
    })();
    ctx.pop_scope();
    let ret = r?;
    // The emulation is only valid for one VALUES row without ON CONFLICT; the caller fills it in.
    Ok(ret.map(|mut r| {
        if ctx.target == Target::MySql && single_row && on.is_none() {
            r.emulation = Some(LastInsertIdEmulation {
                insert_sql: String::new(),
                table: tname.clone(),
                select_list: String::new(),
            });
        }
        r
    }))
}

/// Fill in the MySQL 8 emulation: SQL without RETURNING and the rendered select list.
fn mysql_insert_emulation(
    target: Target,
    stmt: &mut Statement,
    mut r: Rewritten,
) -> Result<Rewritten> {
    let Some(ret) = &mut r.returning else {
        return Ok(r);
    };
    if target != Target::MySql || ret.emulation.is_none() {
        return Ok(r);
    }
    let Statement::Insert(ins) = stmt else {
        return Ok(r);
    };
    let list = ins
        .returning
        .take()
        .unwrap_or_default()
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (insert_sql, params) = names::finish(&stmt.to_string());
    if list.contains('\u{0}') || params != r.params {
        ret.emulation = None;
        return Ok(r);
    }
    ret.emulation = Some(LastInsertIdEmulation {
        insert_sql,
        table: names::quote(
            &ret.emulation.take().map(|e| e.table).unwrap_or_default(),
            target,
        ),
        select_list: list,
    });
    Ok(r)
}

/// MySQL ON DUPLICATE KEY UPDATE: `EXCLUDED.c` → `VALUES(c)`, `t.c` → `c`.
struct ExcludedToValues {
    table: String,
}

impl VisitorMut for ExcludedToValues {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = e {
            if parts.len() == 2 {
                let q = fold(&parts[0]);
                let col = parts[1].clone();
                if q == "excluded" {
                    *e = call("VALUES", vec![Expr::Identifier(col)]);
                } else if q == self.table {
                    *e = Expr::Identifier(col);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `SET col = expr`: unqualify the target, hint a parameter value, walk the value.
fn assignment(ctx: &mut Ctx, a: &mut Assignment, table: &str) -> Result<()> {
    let col: Ident = match &mut a.target {
        AssignmentTarget::ColumnName(n) => match n.0.last().and_then(|p| p.as_ident()) {
            Some(i) => {
                let i = i.clone();
                n.0 = vec![ObjectNamePart::Identifier(i.clone())];
                i
            }
            None => return unsupported("assignment target"),
        },
        AssignmentTarget::Tuple(_) => return unsupported("SET (a, b) = …"),
    };
    ctx.hint_column(
        &a.value,
        ColumnRef {
            table: table.to_string(),
            column: fold(&col),
        },
    );
    ctx.value_expr(&mut a.value)
}

fn single_table(
    twj: &mut sqlparser::ast::TableWithJoins,
    what: &str,
) -> Result<(String, Option<String>)> {
    if !twj.joins.is_empty() {
        return unsupported(format!("{what} with a JOIN"));
    }
    match &mut twj.relation {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return unsupported("column list in a table alias");
            }
            Ok((table_name(name)?, alias.as_ref().map(|a| fold(&a.name))))
        }
        _ => unsupported(format!("{what} target other than a table")),
    }
}

fn update(ctx: &mut Ctx, u: &mut Update) -> Result<Option<Returning>> {
    let Update {
        optimizer_hints,
        table,
        assignments,
        from,
        selection,
        returning,
        output,
        or,
        order_by,
        limit,
        ..
    } = u;
    if !optimizer_hints.is_empty()
        || output.is_some()
        || or.is_some()
        || !order_by.is_empty()
        || limit.is_some()
    {
        return unsupported("non-PostgreSQL UPDATE clause");
    }
    let (tname, alias) = single_table(table, "UPDATE")?;
    if returning.is_some() && ctx.target == Target::MySql {
        return unsupported("RETURNING on UPDATE (MySQL/MariaDB)");
    }
    ctx.push_table_scope(&tname, alias.as_deref());
    let r = (|| {
        if let Some(f) = from {
            if ctx.target == Target::MySql {
                return unsupported("UPDATE … FROM on MySQL");
            }
            let tables = match f {
                UpdateTableFromKind::AfterSet(t) => t,
                UpdateTableFromKind::BeforeSet(_) => return unsupported("UPDATE t FROM … SET"),
            };
            ctx.extend_scope(tables);
            for twj in tables.iter_mut() {
                ctx.table_with_joins_pub(twj)?;
            }
        }
        for a in assignments.iter_mut() {
            assignment(ctx, a, &tname)?;
        }
        if let Some(w) = selection {
            ctx.expr(w)?;
        }
        match returning {
            None => Ok(None),
            Some(items) => Ok(Some(Returning {
                columns: returning_list(ctx, items, &tname, alias.as_deref())?,
                native: true,
                emulation: None,
            })),
        }
    })();
    ctx.pop_scope();
    r
}

fn delete(ctx: &mut Ctx, d: &mut Delete) -> Result<Option<Returning>> {
    let Delete {
        optimizer_hints,
        tables,
        from,
        using,
        selection,
        returning,
        output,
        order_by,
        limit,
        ..
    } = d;
    if !optimizer_hints.is_empty()
        || !tables.is_empty()
        || output.is_some()
        || !order_by.is_empty()
        || limit.is_some()
    {
        return unsupported("non-PostgreSQL DELETE clause");
    }
    if using.is_some() {
        return unsupported("DELETE … USING");
    }
    let list = match from {
        FromTable::WithFromKeyword(l) => l,
        FromTable::WithoutKeyword(_) => return unsupported("DELETE without FROM"),
    };
    let [twj] = list.as_mut_slice() else {
        return unsupported("DELETE from several tables");
    };
    let (tname, alias) = single_table(twj, "DELETE")?;
    if alias.is_some() && ctx.target == Target::MySql && returning.is_some() {
        return unsupported("DELETE with an alias and RETURNING on MySQL");
    }
    ctx.push_table_scope(&tname, alias.as_deref());
    let r = (|| {
        if let Some(w) = selection {
            ctx.expr(w)?;
        }
        match returning {
            None => Ok(None),
            Some(items) => Ok(Some(Returning {
                columns: returning_list(ctx, items, &tname, alias.as_deref())?,
                native: true,
                emulation: None,
            })),
        }
    })();
    ctx.pop_scope();
    r
}

fn is_default_kw(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// SQLite has no `DEFAULT` inside VALUES: for a single row, leave those columns out of the list.
fn sqlite_values_default(
    src: &mut sqlparser::ast::Query,
    columns: &mut Vec<ObjectName>,
) -> Result<()> {
    let SetExpr::Values(v) = src.body.as_mut() else {
        return Ok(());
    };
    if !v.rows.iter().any(|r| r.content.iter().any(is_default_kw)) {
        return Ok(());
    }
    if v.rows.len() != 1 || columns.is_empty() {
        return unsupported("DEFAULT in a multi-row VALUES (or without a column list) on SQLite");
    }
    let row = &mut v.rows[0].content;
    if row.len() != columns.len() {
        return Err(TranslateError::Invalid(
            "INSERT has more or fewer expressions than target columns".into(),
        ));
    }
    let keep: Vec<bool> = row.iter().map(|e| !is_default_kw(e)).collect();
    if !keep.iter().any(|k| *k) {
        return unsupported("INSERT with only DEFAULT values on SQLite");
    }
    let mut i = 0;
    row.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let mut j = 0;
    columns.retain(|_| {
        j += 1;
        keep[j - 1]
    });
    Ok(())
}

/// The SELECT of a query that only projects its FROM (ORDER BY aside): no WITH, LIMIT, FETCH,
/// locking, DISTINCT, TOP, INTO, WHERE, GROUP BY, HAVING, WINDOW or QUALIFY. The `INSERT … SELECT`
/// sources rewritten to `INSERT … VALUES` (here and `translate/unnest`) start from this shape.
pub(crate) fn projection_only(q: &sqlparser::ast::Query) -> Option<&sqlparser::ast::Select> {
    if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let plain = sel.distinct.is_none()
        && sel.top.is_none()
        && sel.into.is_none()
        && sel.selection.is_none()
        && sel.having.is_none()
        && sel.named_window.is_empty()
        && sel.qualify.is_none()
        && matches!(&sel.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    plain.then_some(&**sel)
}

/// SQLAlchemy 2.x "insertmanyvalues" with a sentinel counter:
///
/// ```sql
/// INSERT INTO t (a, b) SELECT p0::VARCHAR, p1::INTEGER
///   FROM (VALUES ($1, $2, 0), ($3, $4, 1)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter
///   RETURNING t.id, t.id AS id__1
/// ```
///
/// becomes the equivalent multi-row `INSERT INTO t (a, b) VALUES ($1::VARCHAR, $2::INTEGER), …` with the
/// rows in counter order: both engines insert VALUES rows in order, so generated keys follow the counter
/// as they do in PostgreSQL. Each outer cast moves onto the values of its column (a cast on a parameter
/// then types the parameter; on a literal it is rendered by the usual rules). Any other
/// `INSERT … SELECT` is left alone. Returns whether the source was rewritten.
pub(crate) fn insertmanyvalues_to_values(src: &mut sqlparser::ast::Query) -> Result<bool> {
    use sqlparser::ast::{Query, Value, ValueWithSpan};
    let q: &Query = src;
    let Some(sel) = projection_only(q) else {
        return Ok(false);
    };
    let [from] = sel.from.as_slice() else {
        return Ok(false);
    };
    if !from.joins.is_empty() {
        return Ok(false);
    }
    let TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias),
        sample: None,
    } = &from.relation
    else {
        return Ok(false);
    };
    let SetExpr::Values(values) = subquery.body.as_ref() else {
        return Ok(false);
    };
    if subquery.with.is_some()
        || subquery.order_by.is_some()
        || subquery.limit_clause.is_some()
        || values.explicit_row
        || alias.columns.len() < 2
        || alias.columns.iter().any(|c| c.data_type.is_some())
    {
        return Ok(false);
    }
    let alias_cols: Vec<String> = alias.columns.iter().map(|c| fold(&c.name)).collect();
    let counter = alias_cols.len() - 1;
    // ORDER BY <counter column> [ASC]
    let Some(ob) = &q.order_by else {
        return Ok(false);
    };
    let sqlparser::ast::OrderByKind::Expressions(obs) = &ob.kind else {
        return Ok(false);
    };
    let [o] = obs.as_slice() else {
        return Ok(false);
    };
    let counter_ref = |e: &Expr| matches!(e, Expr::Identifier(i) if fold(i) == alias_cols[counter]);
    if !counter_ref(&o.expr)
        || matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc))
        || o.options.nulls_first.is_some()
        || o.with_fill.is_some()
        || ob.interpolate.is_some()
    {
        return Ok(false);
    }
    // Projection: `pN` or `pN::T`, each naming a non-counter column of the alias.
    let mut picks: Vec<(usize, Option<Expr>)> = Vec::new();
    for item in &sel.projection {
        let SelectItem::UnnamedExpr(e) = item else {
            return Ok(false);
        };
        let (inner, cast) = match e {
            Expr::Cast {
                kind: sqlparser::ast::CastKind::DoubleColon | sqlparser::ast::CastKind::Cast,
                expr,
                format: None,
                ..
            } => (expr.as_ref(), Some(e.clone())),
            other => (other, None),
        };
        let Expr::Identifier(id) = inner else {
            return Ok(false);
        };
        let Some(k) = alias_cols.iter().position(|c| *c == fold(id)) else {
            return Ok(false);
        };
        if k == counter {
            return Ok(false);
        }
        picks.push((k, cast));
    }
    // Rows, each ending in an integer counter literal.
    let mut rows: Vec<(i64, Vec<Expr>)> = Vec::new();
    for row in &values.rows {
        if row.content.len() != alias_cols.len() {
            return Ok(false);
        }
        let n = match &row.content[counter] {
            Expr::Value(ValueWithSpan {
                value: Value::Number(n, false),
                ..
            }) => match n.parse::<i64>() {
                Ok(n) => n,
                Err(_) => return Ok(false),
            },
            _ => return Ok(false),
        };
        let mut out = Vec::with_capacity(picks.len());
        for (k, cast) in &picks {
            let v = row.content[*k].clone();
            out.push(match cast {
                Some(c) if cast_applies(&v) => {
                    let Expr::Cast {
                        kind,
                        data_type,
                        format,
                        ..
                    } = c.clone()
                    else {
                        unreachable!("picked casts are casts")
                    };
                    Expr::Cast {
                        kind,
                        expr: Box::new(v),
                        data_type,
                        format,
                    }
                }
                _ => v,
            });
        }
        rows.push((n, out));
    }
    rows.sort_by_key(|(n, _)| *n);
    let body = SetExpr::Values(sqlparser::ast::Values {
        explicit_row: false,
        value_keyword: false,
        rows: rows
            .into_iter()
            .map(|(_, content)| sqlparser::ast::Parens::with_empty_span(content))
            .collect(),
    });
    *src.body = body;
    src.order_by = None;
    Ok(true)
}

/// Whether an outer `pN::T` should be moved onto this value: not onto NULL (NULL of any type), a
/// boolean literal (already typed), or a value with its own cast.
fn cast_applies(v: &Expr) -> bool {
    use sqlparser::ast::{Value, ValueWithSpan};
    match v {
        Expr::Value(ValueWithSpan {
            value: Value::Null | Value::Boolean(_),
            ..
        }) => false,
        Expr::Cast { .. } | Expr::TypedString(_) => false,
        Expr::Nested(i) => cast_applies(i),
        _ => true,
    }
}
