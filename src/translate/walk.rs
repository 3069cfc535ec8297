//! The allowlist walk over queries and expressions.
//!
//! Owns: deciding, node by node, whether a query/expression shape is in the supported subset, rewriting
//! it in place into a form whose Display is valid for the target (casts, ILIKE, `||`, booleans,
//! functions, LIMIT/OFFSET, NULL ordering), and recording parameter hints (which column each `$n` meets)
//! with table aliases resolved. Must never: quote identifiers or number placeholders (that is
//! [`super::names`]), or let an unknown variant through: every `match` ends in an explicit rejection.

use std::collections::BTreeMap;

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Distinct, Expr, Fetch, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, Join,
    JoinConstraint, JoinOperator, LimitClause, ObjectName, ObjectNamePart, OffsetRows, OrderBy,
    OrderByExpr, OrderByKind, OrderByOptions, OrderBySort, Query, Select, SelectFlavor, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, SetOperator, TableAlias, TableFactor, TableWithJoins,
    UnaryOperator, Value, ValueWithSpan, WildcardAdditionalOptions, WindowType,
};
use sqlparser::tokenizer::Span;

use super::error::{Result, TranslateError};
use super::names::{fold, placeholder_index, raw};
use super::optype::{self, Plan};
use super::types::{classify, PgType};
use super::{ColumnRef, Target};

/// One FROM-clause entry visible to column references: the name it is referred to by, and the real
/// table behind it (`None` for derived tables and CTEs).
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    table: Option<String>,
}

/// State of one translation: target, scopes for column resolution, collected parameter facts.
pub(crate) struct Ctx<'a> {
    pub target: Target,
    /// The bind's column types, when the caller knows them (the executor). `None` (unit tests,
    /// `bindproxy route`): operands of unknown type are left to the engine.
    types: Option<&'a (dyn super::ColumnTypes + Sync)>,
    scopes: Vec<Vec<Entry>>,
    ctes: Vec<String>,
    pub hints: BTreeMap<usize, ColumnRef>,
    pub pg_types: BTreeMap<usize, String>,
    pub max_param: Option<usize>,
    /// PostgreSQL types of the output columns (see [`super::Rewritten::result_types`]).
    pub result_types: Vec<Option<super::ResultType>>,
    /// Current nesting of `expr`/`query`/`set_expr` calls, bounded by [`MAX_WALK_DEPTH`].
    depth: usize,
    /// Wrap divisors so a zero raises 22012 (statements; not DDL, whose expressions are stored in
    /// the schema and must not name bindproxy's own SQLite function).
    pub guard_division: bool,
    /// Inside the operands of integer arithmetic: the range check goes around the outermost
    /// operation only (nesting a check per operator would double the depth of long chains).
    in_int_arith: bool,
}

/// The deepest the walk recurses before it refuses with [`TranslateError::TooDeep`]. The token
/// pre-check ([`super::depth`]) refuses deeper statements before they are parsed; this bound is the
/// walk's own guard should an AST ever be deeper than that estimate.
pub(crate) const MAX_WALK_DEPTH: usize = super::depth::MAX_NESTING;

fn unsupported<T>(what: impl Into<String>) -> Result<T> {
    Err(TranslateError::unsupported(what))
}

fn on_target(t: Target) -> &'static str {
    match t {
        Target::MySql => "MySQL",
        Target::Sqlite => "SQLite",
    }
}

pub(crate) fn expr_value(value: Value) -> Expr {
    Expr::Value(ValueWithSpan {
        value,
        span: Span::empty(),
    })
}

pub(crate) fn string_lit(s: &str) -> Expr {
    expr_value(Value::SingleQuotedString(s.to_string()))
}

pub(crate) fn number_lit(s: &str) -> Expr {
    expr_value(Value::Number(s.to_string(), false))
}

/// A function call `name(args…)` with a verbatim (unquoted) name.
pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(raw(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        within_group: vec![],
        filter: None,
        null_treatment: None,
        over: None,
    })
}

/// A keyword-like niladic function (`CURRENT_DATE`).
fn keyword_fn(name: &str) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(raw(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::None,
        within_group: vec![],
        filter: None,
        null_treatment: None,
        over: None,
    })
}

/// `$n` (possibly parenthesised): its 0-based index.
pub(crate) fn param_of(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) => placeholder_index(p).ok(),
        Expr::Nested(inner) => param_of(inner),
        Expr::Cast { expr, .. } => param_of(expr),
        _ => None,
    }
}

/// Drop a leading `public` schema; any other schema is outside the subset.
pub(crate) fn table_name(name: &mut ObjectName) -> Result<String> {
    let parts: Vec<Ident> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i.clone()),
            ObjectNamePart::Function(_) => unsupported("function in an object name"),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok(fold(t)),
        [s, t] if fold(s) == "public" => {
            name.0.remove(0);
            Ok(fold(t))
        }
        [s, _] if matches!(fold(s).as_str(), "pg_catalog" | "information_schema") => {
            unsupported(format!("a catalog query ({}.{})", fold(s), fold(&parts[1])))
        }
        [s, _] => unsupported(format!(
            "schema-qualified name outside public ({})",
            fold(s)
        )),
        _ => unsupported("name with a database or catalog qualifier"),
    }
}

/// The PostgreSQL type name of a cast target (for `pg_types`).
fn cast_type_name(dt: &DataType) -> Result<String> {
    Ok(classify(dt)?.ty.pg_name().to_string())
}

impl<'a> Ctx<'a> {
    pub fn new(target: Target, types: Option<&'a (dyn super::ColumnTypes + Sync)>) -> Self {
        Ctx {
            target,
            types,
            scopes: Vec::new(),
            ctes: Vec::new(),
            hints: BTreeMap::new(),
            pg_types: BTreeMap::new(),
            max_param: None,
            result_types: Vec::new(),
            depth: 0,
            guard_division: true,
            in_int_arith: false,
        }
    }

    /// Runs `f` one level deeper, refusing beyond [`MAX_WALK_DEPTH`].
    fn nested<T: ?Sized>(
        &mut self,
        node: &mut T,
        f: impl FnOnce(&mut Self, &mut T) -> Result<()>,
    ) -> Result<()> {
        if self.depth >= MAX_WALK_DEPTH {
            return Err(TranslateError::TooDeep {
                depth: self.depth + 1,
                limit: MAX_WALK_DEPTH,
            });
        }
        self.depth += 1;
        let r = f(self, node);
        self.depth -= 1;
        r
    }

    fn see_param(&mut self, i: usize) {
        self.max_param = Some(self.max_param.map_or(i, |m| m.max(i)));
    }

    /// Open a scope whose single table is `table` (INSERT/UPDATE/DELETE target).
    pub fn push_table_scope(&mut self, table: &str, alias: Option<&str>) {
        self.scopes.push(vec![Entry {
            name: alias.unwrap_or(table).to_string(),
            table: Some(table.to_string()),
        }]);
    }

    pub fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    /// The real column behind a column reference, if it can be resolved.
    pub fn resolve(&self, e: &Expr) -> Option<ColumnRef> {
        match e {
            Expr::Identifier(c) => {
                let scope = self.scopes.last()?;
                match scope.as_slice() {
                    [Entry { table: Some(t), .. }] => Some(ColumnRef {
                        table: t.clone(),
                        column: fold(c),
                    }),
                    _ => None,
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let n = parts.len();
                let qual = fold(&parts[n - 2]);
                let column = fold(&parts[n - 1]);
                for scope in self.scopes.iter().rev() {
                    if let Some(e) = scope.iter().find(|e| e.name == qual) {
                        return e.table.clone().map(|table| ColumnRef { table, column });
                    }
                }
                None
            }
            Expr::Nested(inner) => self.resolve(inner),
            _ => None,
        }
    }

    /// Record that parameter `other` meets column `col`.
    pub fn hint(&mut self, col: &Expr, other: &Expr) {
        if let (Some(i), Some(c)) = (param_of(other), self.resolve(col)) {
            self.hints.entry(i).or_insert(c);
        }
    }

    pub fn hint_column(&mut self, param: &Expr, col: ColumnRef) {
        if let Some(i) = param_of(param) {
            self.hints.entry(i).or_insert(col);
        }
    }

    /// The PostgreSQL type name of a column reference: qualified through the scopes, unqualified in
    /// the one table of the innermost scope that has such a column.
    fn column_type(&self, e: &Expr) -> Option<String> {
        let types = self.types?;
        if let Some(c) = self.resolve(e) {
            return types.column_type(&c.table, &c.column);
        }
        let Expr::Identifier(c) = e else {
            return None;
        };
        let column = fold(c);
        for scope in self.scopes.iter().rev() {
            let found: Vec<String> = scope
                .iter()
                .filter_map(|en| en.table.as_ref())
                .filter_map(|t| types.column_type(t, &column))
                .collect();
            match found.as_slice() {
                [] if scope.iter().all(|en| en.table.is_some()) => continue,
                [t] if scope.iter().all(|en| en.table.is_some()) => return Some(t.clone()),
                _ => return None,
            }
        }
        None
    }

    /// Refuses `CASE`/`coalesce` branches the engines would not answer as PostgreSQL does (see
    /// [`optype::branches_agree`]).
    fn branches_agree(&self, branches: &[&Expr]) -> Result<()> {
        let lookup = |x: &Expr| self.column_type(x);
        let column: &dyn Fn(&Expr) -> Option<String> = &lookup;
        let agree = self.types.is_none() || optype::branches_agree(branches, column);
        if agree {
            Ok(())
        } else {
            unsupported("CASE/coalesce branches of different types or numeric scales (PostgreSQL resolves them differently from the engines)")
        }
    }

    /// The class of an arithmetic operand; with the bind's column types known, an operand they do
    /// not type is Unknown, and without them it is left to the engine (a number).
    fn operand(&self, e: &Expr) -> optype::Operand {
        let lookup = |x: &Expr| self.column_type(x);
        let o = optype::of_expr(e, &lookup);
        match (o, self.types) {
            (optype::Operand::Unknown, None) => optype::Operand::Unchecked,
            (o, _) => o,
        }
    }

    // ---------------------------------------------------------------- queries

    pub fn query(&mut self, q: &mut Query) -> Result<()> {
        self.nested(q, Self::query_inner)
    }

    fn query_inner(&mut self, q: &mut Query) -> Result<()> {
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
            ..
        } = q;
        if for_clause.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || !pipe_operators.is_empty()
        {
            return unsupported("non-PostgreSQL query clause");
        }
        let ctes_before = self.ctes.len();
        if let Some(w) = with {
            for cte in &mut w.cte_tables {
                if cte.materialized.is_some() || cte.from.is_some() {
                    return unsupported("MATERIALIZED CTE");
                }
                self.alias(&cte.alias, true)?;
                // A recursive CTE sees itself.
                self.ctes.push(fold(&cte.alias.name));
                self.query(&mut cte.query)?;
            }
        }
        // The ORDER BY of a query sees the FROM of its (simple) SELECT body.
        let simple_select = matches!(body.as_ref(), SetExpr::Select(_));
        if simple_select {
            if let SetExpr::Select(s) = body.as_mut() {
                self.select(s, order_by.as_mut())?;
            }
        } else {
            self.set_expr(body)?;
            if let Some(ob) = order_by {
                self.order_by(ob, None)?;
            }
        }
        if let Some(f) = fetch.take() {
            self.fetch_to_limit(f, limit_clause)?;
        }
        if let Some(lc) = limit_clause {
            self.limit(lc)?;
        }
        for l in locks.iter() {
            if self.target == Target::Sqlite {
                return unsupported("FOR UPDATE/FOR SHARE on SQLite");
            }
            if l.of.is_some() {
                return unsupported("FOR UPDATE OF");
            }
            if l.lock_type != sqlparser::ast::LockType::Update {
                return unsupported("FOR SHARE on MySQL");
            }
        }
        self.ctes.truncate(ctes_before);
        Ok(())
    }

    fn fetch_to_limit(&mut self, f: Fetch, lc: &mut Option<LimitClause>) -> Result<()> {
        if f.with_ties || f.percent {
            return unsupported("FETCH … WITH TIES / PERCENT");
        }
        let quantity = f.quantity.unwrap_or_else(|| number_lit("1"));
        match lc {
            None => {
                *lc = Some(LimitClause::LimitOffset {
                    limit: Some(quantity),
                    offset: None,
                    limit_by: vec![],
                })
            }
            Some(LimitClause::LimitOffset {
                limit: limit @ None,
                ..
            }) => *limit = Some(quantity),
            Some(_) => return unsupported("LIMIT together with FETCH"),
        }
        Ok(())
    }

    fn limit(&mut self, lc: &mut LimitClause) -> Result<()> {
        match lc {
            LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                if !limit_by.is_empty() {
                    return unsupported("LIMIT BY");
                }
                // LIMIT ALL / LIMIT NULL mean no limit.
                if matches!(
                    limit,
                    Some(Expr::Value(ValueWithSpan {
                        value: Value::Null,
                        ..
                    }))
                ) {
                    *limit = None;
                }
                if let Some(l) = limit {
                    self.limit_expr(l)?;
                }
                if let Some(o) = offset {
                    o.rows = OffsetRows::None;
                    self.limit_expr(&mut o.value)?;
                    if limit.is_none() {
                        *limit = Some(match self.target {
                            Target::MySql => number_lit("18446744073709551615"),
                            Target::Sqlite => number_lit("-1"),
                        });
                    }
                }
                Ok(())
            }
            LimitClause::OffsetCommaLimit { .. } => unsupported("LIMIT offset, count"),
        }
    }

    fn limit_expr(&mut self, e: &mut Expr) -> Result<()> {
        if let Some(i) = param_of(e) {
            self.pg_types.entry(i).or_insert_with(|| "int8".into());
            self.see_param(i);
            *e = strip_to_param(e.clone());
            return Ok(());
        }
        match e {
            Expr::Value(ValueWithSpan {
                value: Value::Number(..),
                ..
            }) => Ok(()),
            _ => unsupported("LIMIT/OFFSET with an expression other than a number or parameter"),
        }
    }

    pub fn set_expr(&mut self, s: &mut SetExpr) -> Result<()> {
        self.nested(s, Self::set_expr_inner)
    }

    fn set_expr_inner(&mut self, s: &mut SetExpr) -> Result<()> {
        match s {
            SetExpr::Select(sel) => self.select(sel, None),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation {
                left, op, right, ..
            } => {
                match op {
                    SetOperator::Union | SetOperator::Intersect | SetOperator::Except => {}
                    _ => return unsupported(format!("set operator {op}")),
                }
                self.set_expr(left)?;
                self.set_expr(right)
            }
            SetExpr::Values(v) => {
                if v.explicit_row {
                    return unsupported("VALUES ROW(…)");
                }
                for row in &mut v.rows {
                    for e in row.content.iter_mut() {
                        self.value_expr(e)?;
                    }
                }
                Ok(())
            }
            SetExpr::Table(_) => unsupported("TABLE name query"),
            _ => unsupported("data-modifying statement inside a query"),
        }
    }

    /// An expression in a VALUES row: `DEFAULT` is the keyword, not a column.
    pub fn value_expr(&mut self, e: &mut Expr) -> Result<()> {
        if let Expr::Identifier(i) = e {
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") {
                *e = Expr::Identifier(raw("DEFAULT"));
                return Ok(());
            }
        }
        self.expr(e)
    }

    fn alias(&mut self, a: &TableAlias, allow_columns: bool) -> Result<()> {
        if a.at.is_some() {
            return unsupported("alias AT");
        }
        if !a.columns.is_empty() && !allow_columns {
            return unsupported("column list in a table alias");
        }
        for c in &a.columns {
            if c.data_type.is_some() {
                return unsupported("typed column alias");
            }
        }
        Ok(())
    }

    /// Collect FROM entries (names only) before walking, so every clause can resolve columns.
    fn collect_entries(&self, twj: &TableWithJoins, out: &mut Vec<Entry>) {
        fn factor(ctx: &Ctx, f: &TableFactor, out: &mut Vec<Entry>) {
            match f {
                TableFactor::Table { name, alias, .. } => {
                    let mut n = name.clone();
                    let table = table_name(&mut n).ok();
                    let is_cte = table.as_ref().is_some_and(|t| ctx.ctes.contains(t));
                    let visible = alias.as_ref().map(|a| fold(&a.name)).or(table.clone());
                    if let Some(visible) = visible {
                        out.push(Entry {
                            name: visible,
                            table: if is_cte { None } else { table },
                        });
                    }
                }
                TableFactor::Derived { alias: Some(a), .. } => out.push(Entry {
                    name: fold(&a.name),
                    table: None,
                }),
                TableFactor::NestedJoin {
                    table_with_joins, ..
                } => ctx.collect_entries(table_with_joins, out),
                _ => {}
            }
        }
        factor(self, &twj.relation, out);
        for j in &twj.joins {
            factor(self, &j.relation, out);
        }
    }

    /// Enter a scope for these FROM items (used by SELECT, and by UPDATE … FROM).
    pub fn push_from_scope(&mut self, from: &[TableWithJoins]) {
        let mut entries = Vec::new();
        for twj in from {
            self.collect_entries(twj, &mut entries);
        }
        self.scopes.push(entries);
    }

    pub fn extend_scope(&mut self, from: &[TableWithJoins]) {
        let mut entries = Vec::new();
        for twj in from {
            self.collect_entries(twj, &mut entries);
        }
        if let Some(s) = self.scopes.last_mut() {
            s.extend(entries);
        }
    }

    fn select(&mut self, s: &mut Select, order_by: Option<&mut OrderBy>) -> Result<()> {
        let Select {
            distinct,
            select_modifiers,
            top,
            projection,
            exclude,
            into,
            from,
            lateral_views,
            prewhere,
            selection,
            connect_by,
            group_by,
            cluster_by,
            distribute_by,
            sort_by,
            having,
            named_window,
            qualify,
            value_table_mode,
            flavor,
            optimizer_hints,
            ..
        } = s;
        match distinct {
            None | Some(Distinct::Distinct) => {}
            Some(Distinct::All) => *distinct = None,
            Some(Distinct::On(_)) => return unsupported("DISTINCT ON"),
        }
        if into.is_some() {
            return unsupported("SELECT INTO");
        }
        if select_modifiers.is_some()
            || top.is_some()
            || exclude.is_some()
            || !lateral_views.is_empty()
            || prewhere.is_some()
            || !connect_by.is_empty()
            || !cluster_by.is_empty()
            || !distribute_by.is_empty()
            || !sort_by.is_empty()
            || qualify.is_some()
            || value_table_mode.is_some()
            || !optimizer_hints.is_empty()
            || !matches!(flavor, SelectFlavor::Standard)
        {
            return unsupported("non-PostgreSQL SELECT clause");
        }
        if !named_window.is_empty() {
            return unsupported("WINDOW clause");
        }
        self.push_from_scope(from);
        let r = (|| {
            for twj in from.iter_mut() {
                self.table_with_joins(twj)?;
            }
            for item in projection.iter_mut() {
                self.select_item(item)?;
            }
            if let Some(w) = selection {
                self.expr(w)?;
            }
            match group_by {
                GroupByExpr::Expressions(exprs, mods) => {
                    if !mods.is_empty() {
                        return unsupported("GROUP BY modifiers (ROLLUP/CUBE)");
                    }
                    for e in exprs {
                        self.expr(e)?;
                    }
                }
                GroupByExpr::All(_) => return unsupported("GROUP BY ALL"),
            }
            if let Some(h) = having {
                self.expr(h)?;
            }
            if let Some(ob) = order_by {
                self.order_by(ob, Some(projection.as_slice()))?;
            }
            Ok(())
        })();
        self.pop_scope();
        r
    }

    pub fn select_item(&mut self, item: &mut SelectItem) -> Result<()> {
        match item {
            SelectItem::UnnamedExpr(e) => self.expr(e),
            SelectItem::ExprWithAlias { expr, .. } => self.expr(expr),
            SelectItem::Wildcard(opts) => wildcard_opts(opts),
            SelectItem::QualifiedWildcard(kind, opts) => {
                wildcard_opts(opts)?;
                match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        table_name(n)?;
                        Ok(())
                    }
                    SelectItemQualifiedWildcardKind::Expr(_) => unsupported("expression.*"),
                }
            }
            SelectItem::ExprWithAliases { .. } => unsupported("multiple aliases"),
        }
    }

    fn table_with_joins(&mut self, twj: &mut TableWithJoins) -> Result<()> {
        self.table_factor(&mut twj.relation)?;
        for j in &mut twj.joins {
            self.join(j)?;
        }
        Ok(())
    }

    fn join(&mut self, j: &mut Join) -> Result<()> {
        if j.global {
            return unsupported("GLOBAL JOIN");
        }
        self.table_factor(&mut j.relation)?;
        let c = match &mut j.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::CrossJoin(c) => c,
            JoinOperator::FullOuter(c) => {
                if self.target == Target::MySql {
                    return unsupported("FULL OUTER JOIN on MySQL");
                }
                c
            }
            _ => return unsupported("this kind of JOIN"),
        };
        match c {
            JoinConstraint::On(e) => self.expr(e),
            JoinConstraint::Using(cols) => {
                for c in cols {
                    if c.0.len() != 1 {
                        return unsupported("qualified USING column");
                    }
                }
                Ok(())
            }
            JoinConstraint::Natural | JoinConstraint::None => Ok(()),
        }
    }

    pub fn table_factor(&mut self, f: &mut TableFactor) -> Result<()> {
        match f {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_hints,
            } => {
                if args.is_some() {
                    return unsupported("table function in FROM");
                }
                if !with_hints.is_empty()
                    || version.is_some()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || sample.is_some()
                    || !index_hints.is_empty()
                {
                    return unsupported("table modifier (TABLESAMPLE, WITH ORDINALITY, hints)");
                }
                // sqlparser reads PostgreSQL's `FROM ONLY t` as table `only` aliased `t`.
                let only = matches!(name.0.as_slice(), [ObjectNamePart::Identifier(i)]
                    if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("only"));
                if only && alias.is_some() {
                    return unsupported("FROM ONLY");
                }
                table_name(name)?;
                if let Some(a) = alias {
                    self.alias(a, false)?;
                }
                Ok(())
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if *lateral {
                    return unsupported("LATERAL");
                }
                if sample.is_some() {
                    return unsupported("TABLESAMPLE");
                }
                match alias {
                    Some(a) => self.alias(a, false)?,
                    None if self.target == Target::MySql => {
                        return unsupported("subquery in FROM without an alias on MySQL")
                    }
                    None => {}
                }
                self.query(subquery)
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                if alias.is_some() {
                    return unsupported("alias on a parenthesised join");
                }
                self.table_with_joins(table_with_joins)
            }
            TableFactor::UNNEST { .. } => unsupported("UNNEST"),
            TableFactor::Function { .. } | TableFactor::TableFunction { .. } => {
                unsupported("table function in FROM")
            }
            _ => unsupported("this FROM item"),
        }
    }

    /// ORDER BY with PostgreSQL's NULL placement (NULLs sort as larger than any value: last for ASC,
    /// first for DESC), made explicit for the target.
    ///
    /// A positional key (`ORDER BY 1`) cannot be wrapped on MySQL: it is replaced by the select-list
    /// expression it names (already translated), or refused when there is none (a wildcard, a set
    /// operation).
    pub fn order_by(&mut self, ob: &mut OrderBy, projection: Option<&[SelectItem]>) -> Result<()> {
        if ob.interpolate.is_some() {
            return unsupported("INTERPOLATE");
        }
        match &mut ob.kind {
            OrderByKind::Expressions(list) => {
                let mut out = Vec::with_capacity(list.len());
                for mut o in std::mem::take(list) {
                    if o.with_fill.is_some() {
                        return unsupported("WITH FILL");
                    }
                    let position = match &o.expr {
                        Expr::Value(ValueWithSpan {
                            value: Value::Number(n, _),
                            ..
                        }) => Some(n.parse::<usize>().unwrap_or(0)),
                        _ => None,
                    };
                    match (position, self.target) {
                        (Some(k), Target::MySql) => {
                            let item = projection.and_then(|p| {
                                if p.iter().any(|i| {
                                    matches!(
                                        i,
                                        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                                    )
                                }) {
                                    None
                                } else {
                                    k.checked_sub(1).and_then(|k| p.get(k))
                                }
                            });
                            match item {
                                Some(SelectItem::UnnamedExpr(x))
                                | Some(SelectItem::ExprWithAlias { expr: x, .. }) => {
                                    o.expr = x.clone();
                                }
                                _ => {
                                    return unsupported(
                                        "ORDER BY a position over a wildcard or a set operation on MySQL (write the column)",
                                    )
                                }
                            }
                        }
                        _ => self.expr(&mut o.expr)?,
                    }
                    let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
                    let nulls_first = o.options.nulls_first.unwrap_or(desc);
                    let positional = matches!(
                        o.expr,
                        Expr::Value(ValueWithSpan {
                            value: Value::Number(..),
                            ..
                        })
                    );
                    match self.target {
                        Target::Sqlite => o.options.nulls_first = Some(nulls_first),
                        Target::MySql => {
                            o.options.nulls_first = None;
                            // MySQL puts NULLs first for ASC, last for DESC.
                            if nulls_first == desc && !positional {
                                out.push(OrderByExpr {
                                    expr: Expr::IsNull(Box::new(o.expr.clone())),
                                    options: OrderByOptions {
                                        sort: Some(if nulls_first {
                                            OrderBySort::Desc
                                        } else {
                                            OrderBySort::Asc
                                        }),
                                        nulls_first: None,
                                    },
                                    with_fill: None,
                                });
                            }
                        }
                    }
                    out.push(o);
                }
                *list = out;
                Ok(())
            }
            OrderByKind::All(_) => unsupported("ORDER BY ALL"),
        }
    }

    // ---------------------------------------------------------------- expressions

    /// Walk an expression: validate, record hints, rewrite in place.
    pub fn expr(&mut self, e: &mut Expr) -> Result<()> {
        self.nested(e, Self::expr_inner)
    }

    fn expr_inner(&mut self, e: &mut Expr) -> Result<()> {
        let t = self.target;
        match e {
            Expr::Identifier(_) => Ok(()),
            Expr::CompoundIdentifier(parts) => {
                match parts.len() {
                    2 => {}
                    3 if fold(&parts[0]) == "public" => {
                        parts.remove(0);
                    }
                    _ => return unsupported("column reference with schema or catalog"),
                }
                Ok(())
            }
            Expr::Value(v) => self.value(v),
            Expr::Nested(inner) => self.expr(inner),
            Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNotFalse(x) => self.expr(x),
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.hint(a, b);
                self.hint(b, a);
                self.expr(a)?;
                self.expr(b)?;
                if t == Target::MySql {
                    let spaceship = |left, right| Expr::BinaryOp {
                        left,
                        op: BinaryOperator::Spaceship,
                        right,
                    };
                    *e = match std::mem::replace(e, Expr::Value(Value::Null.into())) {
                        Expr::IsDistinctFrom(a, b) => Expr::UnaryOp {
                            op: UnaryOperator::Not,
                            expr: Box::new(Expr::Nested(Box::new(spaceship(a, b)))),
                        },
                        Expr::IsNotDistinctFrom(a, b) => spaceship(a, b),
                        other => other,
                    };
                }
                Ok(())
            }
            Expr::InList { expr, list, .. } => {
                for item in list.iter() {
                    self.hint(expr, item);
                }
                self.expr(expr)?;
                for item in list.iter_mut() {
                    self.expr(item)?;
                }
                Ok(())
            }
            Expr::InSubquery { expr, subquery, .. } => {
                self.expr(expr)?;
                self.query(subquery)
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.hint(expr, low);
                self.hint(expr, high);
                self.expr(expr)?;
                self.expr(low)?;
                self.expr(high)
            }
            Expr::BinaryOp {
                left,
                op: op_slot,
                right,
            } => {
                let op = op_slot.clone();
                match op {
                    BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo
                    | BinaryOperator::Gt
                    | BinaryOperator::Lt
                    | BinaryOperator::GtEq
                    | BinaryOperator::LtEq
                    | BinaryOperator::Eq
                    | BinaryOperator::NotEq => {
                        self.hint(left, right);
                        self.hint(right, left);
                    }
                    BinaryOperator::And | BinaryOperator::Or | BinaryOperator::StringConcat => {}
                    other => return unsupported(format!("operator {other}")),
                }
                // PostgreSQL's operator for the operand types, and the engine's equivalent
                // (statements only: DDL expressions are stored as written).
                let arith = self.guard_division
                    && matches!(
                        op,
                        BinaryOperator::Plus
                            | BinaryOperator::Minus
                            | BinaryOperator::Multiply
                            | BinaryOperator::Divide
                            | BinaryOperator::Modulo
                    );
                let planned = if arith {
                    let (a, b) = (self.operand(left), self.operand(right));
                    Some((
                        optype::plan(&op, a, b, t == Target::MySql),
                        optype::result_class(&op, a, b),
                    ))
                } else {
                    None
                };
                if let Some((Plan::Refuse(what), _)) = planned {
                    return unsupported(what);
                }
                let outer_int = !self.in_int_arith;
                // `/` and `%` bring values back into range: their operands are checked on their own.
                let int_chain = matches!(planned, Some((_, optype::Operand::Int(_))))
                    && matches!(
                        op,
                        BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply
                    );
                self.in_int_arith = int_chain;
                let walked = self.expr(left).and_then(|()| self.expr(right));
                self.in_int_arith = !outer_int;
                walked?;
                match planned {
                    Some((Plan::DateShift { date_left, negate }, _)) => {
                        let (l, r) = (
                            std::mem::replace(&mut **left, Expr::Value(Value::Null.into())),
                            std::mem::replace(&mut **right, Expr::Value(Value::Null.into())),
                        );
                        let (date, days) = if date_left { (l, r) } else { (r, l) };
                        *e = date_shift(t, date, days, negate);
                        return Ok(());
                    }
                    Some((Plan::DateDiff, _)) => {
                        let (l, r) = (
                            std::mem::replace(&mut **left, Expr::Value(Value::Null.into())),
                            std::mem::replace(&mut **right, Expr::Value(Value::Null.into())),
                        );
                        *e = date_diff(t, l, r);
                        return Ok(());
                    }
                    Some((Plan::IntegerDivision, _)) => *op_slot = BinaryOperator::MyIntegerDivide,
                    _ => {}
                }
                if matches!(op, BinaryOperator::Divide | BinaryOperator::Modulo)
                    && t == Target::Sqlite
                    && self.guard_division
                {
                    // SQLite answers NULL for `x / 0` and `x % 0`; PostgreSQL raises 22012. The
                    // divisor goes through a function of bindproxy's that raises on zero and
                    // otherwise returns its argument unchanged (so results and integer truncation
                    // stay SQLite's). MySQL raises in writes (strict mode) and warns in reads; the
                    // executor turns that warning into the error.
                    let d = std::mem::replace(&mut **right, Expr::Value(Value::Null.into()));
                    **right = call(super::SQLITE_DIVISOR_FUNCTION, vec![d]);
                }
                if op == BinaryOperator::StringConcat && t == Target::MySql {
                    // PostgreSQL `a || b` is NULL if either is NULL, like MySQL CONCAT.
                    let mut args = Vec::new();
                    flatten_concat(
                        std::mem::replace(e, Expr::Value(Value::Null.into())),
                        &mut args,
                    );
                    *e = call("CONCAT", args);
                }
                if let (Some((_, optype::Operand::Int(w))), true) = (planned, outer_int) {
                    // PostgreSQL raises 22003 when integer arithmetic leaves its type's range.
                    let inner = std::mem::replace(e, Expr::Value(Value::Null.into()));
                    *e = range_checked(t, inner, w);
                }
                Ok(())
            }
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => self.expr(expr),
                UnaryOperator::Minus | UnaryOperator::Plus => {
                    self.expr(expr)?;
                    // `- -5` must not come out as `--5` (a comment to end of line in SQLite and
                    // PostgreSQL): a signed operand is parenthesised, `-(-5)`.
                    if signed(expr) {
                        let inner = std::mem::replace(&mut **expr, Expr::Value(Value::Null.into()));
                        **expr = Expr::Nested(Box::new(inner));
                    }
                    Ok(())
                }
                other => unsupported(format!("operator {other}")),
            },
            Expr::Like {
                negated: _,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return unsupported("LIKE ANY");
                }
                self.hint(expr, pattern);
                self.expr(expr)?;
                self.expr(pattern)?;
                default_escape(escape_char)
            }
            Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return unsupported("ILIKE ANY");
                }
                self.hint(expr, pattern);
                self.expr(expr)?;
                self.expr(pattern)?;
                default_escape(escape_char)?;
                // Case-insensitive on both engines whatever the collation / case_sensitive_like.
                *e = Expr::Like {
                    negated: *negated,
                    any: false,
                    expr: Box::new(call("LOWER", vec![(**expr).clone()])),
                    pattern: Box::new(call("LOWER", vec![(**pattern).clone()])),
                    escape_char: escape_char.clone(),
                };
                Ok(())
            }
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return unsupported("CAST … FORMAT");
                }
                if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) {
                    return unsupported("TRY_CAST/SAFE_CAST");
                }
                if let Some(i) = param_of(expr) {
                    // `$1::type`: the executor binds the value as `type`; the cast is dropped.
                    let name = cast_type_name(data_type)?;
                    self.pg_types.entry(i).or_insert(name);
                    self.see_param(i);
                    *e = strip_to_param((**expr).clone());
                    return Ok(());
                }
                if super::types::is_name(data_type) {
                    // `'value'::name` (an identity function's value): the literal itself; its
                    // result type is `name` (restype.rs).
                    let literal = matches!(
                        &**expr,
                        Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::Null)
                    );
                    if !literal {
                        return unsupported("a cast to type name");
                    }
                    self.expr(expr)?;
                    *e = (**expr).clone();
                    return Ok(());
                }
                let source = self.operand(expr);
                self.expr(expr)?;
                let ty = classify(data_type)?.ty;
                *e = match literal_cast(t, expr, &ty)? {
                    Some(lit) => lit,
                    None => cast_checked(t, (**expr).clone(), &ty, source)?,
                };
                Ok(())
            }
            Expr::TypedString(ts) => {
                if ts.uses_odbc_syntax {
                    return unsupported("ODBC literal");
                }
                let ty = classify(&ts.data_type)?.ty;
                let mut lit = Expr::Value(ts.value.clone());
                self.expr(&mut lit)?;
                *e = cast_for(t, lit, &ty)?;
                Ok(())
            }
            Expr::Function(f) => {
                if let Some(new) = self.function(f, t)? {
                    *e = new;
                }
                Ok(())
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if self.guard_division {
                    let branches: Vec<&Expr> = conditions
                        .iter()
                        .map(|c| &c.result)
                        .chain(else_result.as_deref())
                        .collect();
                    self.branches_agree(&branches)?;
                }
                if let Some(o) = operand {
                    self.expr(o)?;
                }
                for cw in conditions {
                    self.expr(&mut cw.condition)?;
                    self.expr(&mut cw.result)?;
                }
                if let Some(el) = else_result {
                    self.expr(el)?;
                }
                Ok(())
            }
            Expr::Exists { subquery, .. } => self.query(subquery),
            Expr::Subquery(q) => self.query(q),
            Expr::Tuple(items) => {
                for i in items {
                    self.expr(i)?;
                }
                Ok(())
            }
            Expr::AnyOp { .. } | Expr::AllOp { .. } => unsupported("ANY/ALL (arrays)"),
            Expr::Array(_) => unsupported("array"),
            Expr::Interval(_) => unsupported("interval"),
            Expr::AtTimeZone { .. } => unsupported("AT TIME ZONE"),
            Expr::Collate { .. } => unsupported("COLLATE"),
            Expr::JsonAccess { .. } | Expr::CompoundFieldAccess { .. } => {
                unsupported("JSON/array access operators")
            }
            Expr::SimilarTo { .. } => unsupported("SIMILAR TO"),
            Expr::RLike { .. } => unsupported("regular expression match"),
            Expr::Extract { .. } => unsupported("EXTRACT"),
            Expr::Substring { .. } => unsupported("SUBSTRING"),
            Expr::Trim { .. } => unsupported("TRIM"),
            Expr::Position { .. } => unsupported("POSITION"),
            Expr::Overlay { .. } => unsupported("OVERLAY"),
            Expr::Ceil { .. } | Expr::Floor { .. } => unsupported("CEIL/FLOOR"),
            Expr::IsUnknown(_) | Expr::IsNotUnknown(_) => unsupported("IS UNKNOWN"),
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => {
                unsupported("wildcard in an expression")
            }
            Expr::GroupingSets(_) | Expr::Cube(_) | Expr::Rollup(_) => {
                unsupported("GROUPING SETS/CUBE/ROLLUP")
            }
            _ => unsupported(format!("expression `{e}`")),
        }
    }

    fn value(&mut self, v: &mut ValueWithSpan) -> Result<()> {
        match &mut v.value {
            Value::Number(n, _) if self.target == Target::Sqlite && !sqlite_exact(n) => {
                unsupported(format!(
                    "the number {n} on SQLite (it holds integers of 64 bits and 15 significant digits otherwise)"
                ))
            }
            Value::Number(..) | Value::Null => Ok(()),
            Value::SingleQuotedString(s) => {
                if s.contains('\0') {
                    return Err(TranslateError::Invalid(
                        "string literal with a NUL character".into(),
                    ));
                }
                Ok(())
            }
            Value::DollarQuotedString(d) => {
                let s = d.value.clone();
                if s.contains('\0') {
                    return Err(TranslateError::Invalid(
                        "string literal with a NUL character".into(),
                    ));
                }
                v.value = Value::SingleQuotedString(s);
                Ok(())
            }
            Value::Boolean(b) => {
                if self.target == Target::Sqlite {
                    v.value = Value::Number(if *b { "1" } else { "0" }.into(), false);
                }
                Ok(())
            }
            Value::Placeholder(p) => {
                let i = placeholder_index(p)?;
                self.see_param(i);
                Ok(())
            }
            Value::EscapedStringLiteral(s) => {
                // E'…' is stored unescaped: render it as a plain literal.
                let s = s.clone();
                if s.contains('\0') {
                    return Err(TranslateError::Invalid(
                        "string literal with a NUL character".into(),
                    ));
                }
                v.value = Value::SingleQuotedString(s);
                Ok(())
            }
            other => unsupported(format!("literal {other}")),
        }
    }

    /// Allowlisted functions. Returns a replacement expression when the call is rewritten.
    fn function(&mut self, f: &mut Function, t: Target) -> Result<Option<Expr>> {
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => fold(i),
            [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(i)]
                if fold(s) == "pg_catalog" =>
            {
                fold(i)
            }
            _ => return unsupported(format!("function {}", f.name)),
        };
        if f.uses_odbc_syntax || !matches!(f.parameters, FunctionArguments::None) {
            return unsupported(format!("function {name} syntax"));
        }
        if f.filter.is_some() {
            return unsupported("aggregate FILTER");
        }
        if !f.within_group.is_empty() {
            return unsupported("WITHIN GROUP");
        }
        if f.null_treatment.is_some() {
            return unsupported("IGNORE/RESPECT NULLS");
        }
        // Arguments.
        let mut distinct = false;
        let mut star = false;
        let mut args: Vec<&mut Expr> = Vec::new();
        match &mut f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => {
                return unsupported(format!("function {name} over a subquery"))
            }
            FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return unsupported(format!("ORDER BY/LIMIT inside {name}()"));
                }
                match l.duplicate_treatment {
                    None => {}
                    Some(sqlparser::ast::DuplicateTreatment::Distinct) => distinct = true,
                    Some(sqlparser::ast::DuplicateTreatment::All) => l.duplicate_treatment = None,
                }
                for a in &mut l.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(x),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return unsupported(format!("named or wildcard argument of {name}()")),
                    }
                }
            }
        }
        let arg_types: Vec<optype::Operand> = args.iter().map(|a| self.operand(a)).collect();
        let arg_originals: Vec<Expr> = args.iter().map(|a| (**a).clone()).collect();
        for a in args.iter_mut() {
            self.expr(a)?;
        }
        let argc = args.len();
        let arg_clones: Vec<Expr> = args.iter().map(|a| (**a).clone()).collect();
        if let Some(w) = &mut f.over {
            match w {
                WindowType::WindowSpec(spec) => {
                    if spec.window_name.is_some() {
                        return unsupported("named window");
                    }
                    for p in &mut spec.partition_by {
                        self.expr(p)?;
                    }
                    for o in &mut spec.order_by {
                        self.expr(&mut o.expr)?;
                    }
                }
                WindowType::NamedWindow(_) => return unsupported("named window"),
            }
        }
        let windowed = f.over.is_some();
        if star && name != "count" {
            return unsupported(format!("{name}(*)"));
        }
        if distinct && !matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max") {
            return unsupported(format!("DISTINCT in {name}()"));
        }
        let set_name = |f: &mut Function, n: &str| {
            f.name = ObjectName(vec![ObjectNamePart::Identifier(raw(n))]);
        };
        let ts_now = || match t {
            Target::MySql => call("CURRENT_TIMESTAMP", vec![number_lit("6")]),
            Target::Sqlite => call(
                "strftime",
                vec![string_lit("%Y-%m-%d %H:%M:%f"), string_lit("now")],
            ),
        };
        match name.as_str() {
            "avg" if self.types.is_some()
                && !matches!(arg_types.first(), Some(optype::Operand::Float)) =>
            {
                unsupported("avg() of integers or numerics (the engines' result scale differs from PostgreSQL's)")
            }
            "count" | "sum" | "avg" | "min" | "max" => {
                set_name(f, &name.to_uppercase());
                Ok(None)
            }
            "bool_and" | "bool_or" | "every" if argc == 1 && !distinct => {
                // over booleans (1/0 on both engines), the least / greatest value
                set_name(f, if name == "bool_or" { "MAX" } else { "MIN" });
                Ok(None)
            }
            "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" | "ntile"
            | "lag" | "lead" | "first_value" | "last_value" => {
                if !windowed {
                    return unsupported(format!("{name}() without OVER"));
                }
                set_name(f, &name.to_uppercase());
                Ok(None)
            }
            _ if windowed => unsupported(format!("window function {name}")),
            "coalesce" => {
                if self.guard_division {
                    let a: Vec<&Expr> = arg_originals.iter().collect();
                    self.branches_agree(&a)?;
                }
                set_name(f, "COALESCE");
                Ok(None)
            }
            "abs" if argc == 1 => {
                set_name(f, "ABS");
                // abs(-2147483648) leaves int4 in PostgreSQL (22003)
                match arg_types.first() {
                    Some(optype::Operand::Int(w)) if self.guard_division && !self.in_int_arith => Ok(Some(
                        range_checked(t, Expr::Function(f.clone()), *w),
                    )),
                    _ => Ok(None),
                }
            }
            "replace" if argc == 3 => {
                // The engines' replace(s, '', NULL) is s; PostgreSQL's is NULL on any NULL.
                let third = arg_clones.get(2).cloned().unwrap_or(Expr::Value(Value::Null.into()));
                if !matches!(third, Expr::Value(_) | Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    return unsupported("replace() with a computed third argument");
                }
                set_name(f, "REPLACE");
                Ok(Some(Expr::Case {
                    case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    operand: None,
                    conditions: vec![sqlparser::ast::CaseWhen {
                        condition: Expr::IsNull(Box::new(third)),
                        result: Expr::Value(Value::Null.into()),
                    }],
                    else_result: Some(Box::new(Expr::Function(f.clone()))),
                }))
            }
            "lower" | "upper" | "nullif" | "replace" => {
                set_name(f, &name.to_uppercase());
                Ok(None)
            }
            "round" if argc <= 2 => {
                set_name(f, "ROUND");
                Ok(None)
            }
            "length" | "char_length" | "character_length" if argc == 1 => {
                set_name(
                    f,
                    match t {
                        Target::MySql => "CHAR_LENGTH",
                        Target::Sqlite => "LENGTH",
                    },
                );
                Ok(None)
            }
            "concat" => Ok(Some(match t {
                // PostgreSQL concat() skips NULLs.
                Target::MySql => {
                    let mut a = vec![string_lit("")];
                    a.extend(arg_clones);
                    call("CONCAT_WS", a)
                }
                Target::Sqlite => {
                    let mut it = arg_clones
                        .into_iter()
                        .map(|x| call("COALESCE", vec![x, string_lit("")]));
                    let first = it.next().unwrap_or_else(|| string_lit(""));
                    it.fold(first, |acc, x| Expr::BinaryOp {
                        left: Box::new(acc),
                        op: BinaryOperator::StringConcat,
                        right: Box::new(x),
                    })
                }
            })),
            "now" | "transaction_timestamp" | "statement_timestamp" if argc == 0 => {
                Ok(Some(ts_now()))
            }
            "current_timestamp" | "localtimestamp" => Ok(Some(ts_now())),
            "current_date" if argc == 0 => Ok(Some(keyword_fn("CURRENT_DATE"))),
            "gen_random_uuid" if argc == 0 && t == Target::MySql => Ok(Some(call("UUID", vec![]))),
            _ => unsupported(format!("function {name}() on {}", on_target(t))),
        }
    }
}

/// `x` (an integer expression of PostgreSQL type `w`), failing with 22003 where PostgreSQL's would
/// overflow. SQLite: `bindproxy_int4(x)` (a function of bindproxy's). MySQL computes in BIGINT:
/// `x * 2^32 DIV 2^32` is `x`, and overflows BIGINT (error 1690, 22003) exactly when `x` is outside
/// int4 (`2^48` for int2); int8 overflows BIGINT itself.
fn range_checked(t: Target, x: Expr, w: optype::IntWidth) -> Expr {
    match (t, w) {
        (Target::Sqlite, w) => call(&super::sqlite_range_function(w.typname()), vec![x]),
        (Target::MySql, optype::IntWidth::Int8) => x,
        (Target::MySql, w) => {
            let factor = if w == optype::IntWidth::Int2 {
                "281474976710656"
            } else {
                "4294967296"
            };
            Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(x))),
                    op: BinaryOperator::Multiply,
                    right: Box::new(number_lit(factor)),
                }),
                op: BinaryOperator::MyIntegerDivide,
                right: Box::new(number_lit(factor)),
            }))
        }
    }
}

/// `date ± days` for the target: MySQL `ADDDATE`/`SUBDATE`, SQLite `date(julianday(d) ± n)`.
fn date_shift(t: Target, date: Expr, days: Expr, negate: bool) -> Expr {
    match t {
        Target::MySql => call(if negate { "SUBDATE" } else { "ADDDATE" }, vec![date, days]),
        Target::Sqlite => call(
            "date",
            vec![Expr::BinaryOp {
                left: Box::new(call("julianday", vec![date])),
                op: if negate {
                    BinaryOperator::Minus
                } else {
                    BinaryOperator::Plus
                },
                right: Box::new(Expr::Nested(Box::new(days))),
            }],
        ),
    }
}

/// `a - b` of two dates, in days: MySQL `DATEDIFF`, SQLite the difference of the Julian days.
fn date_diff(t: Target, a: Expr, b: Expr) -> Expr {
    match t {
        Target::MySql => call("DATEDIFF", vec![a, b]),
        Target::Sqlite => cast_expr(
            Expr::BinaryOp {
                left: Box::new(call("julianday", vec![a])),
                op: BinaryOperator::Minus,
                right: Box::new(call("julianday", vec![b])),
            },
            "INTEGER",
        ),
    }
}

/// Whether the rendering of `e` starts with a sign (`-x`, `+x`, a negative number literal).
fn signed(e: &Expr) -> bool {
    match e {
        Expr::UnaryOp { .. } => true,
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            ..
        }) => n.starts_with(['-', '+']),
        _ => false,
    }
}

fn wildcard_opts(o: &WildcardAdditionalOptions) -> Result<()> {
    if o.opt_ilike.is_some()
        || o.opt_exclude.is_some()
        || o.opt_except.is_some()
        || o.opt_replace.is_some()
        || o.opt_rename.is_some()
        || o.opt_alias.is_some()
    {
        return unsupported("wildcard options");
    }
    Ok(())
}

/// PostgreSQL's LIKE escapes with backslash by default; MySQL (NO_BACKSLASH_ESCAPES) and SQLite have no
/// default escape, so make it explicit.
fn default_escape(escape_char: &mut Option<Box<Expr>>) -> Result<()> {
    match escape_char {
        None => {
            *escape_char = Some(Box::new(string_lit("\\")));
            Ok(())
        }
        Some(e) => match e.as_ref() {
            Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(s),
                ..
            }) if s.chars().count() <= 1 => Ok(()),
            _ => unsupported("ESCAPE other than a one-character literal"),
        },
    }
}

fn flatten_concat(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => {
            flatten_concat(*left, out);
            flatten_concat(*right, out);
        }
        Expr::Function(f)
            if matches!(f.name.0.as_slice(), [ObjectNamePart::Identifier(i)]
                if i.value == "CONCAT" && i.quote_style == Some(super::names::RAW)) =>
        {
            if let FunctionArguments::List(l) = f.args {
                for a in l.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                        out.push(x);
                    }
                }
            }
        }
        other => out.push(other),
    }
}

/// `($1)` / `$1::t` → `$1`.
pub(crate) fn strip_to_param(e: Expr) -> Expr {
    match e {
        Expr::Nested(inner) => strip_to_param(*inner),
        Expr::Cast { expr, .. } => strip_to_param(*expr),
        other => other,
    }
}

fn cast_expr(e: Expr, ty: &str) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(e),
        data_type: DataType::Custom(
            ObjectName(vec![ObjectNamePart::Identifier(raw(ty))]),
            vec![],
        ),
        format: None,
    }
}

fn string_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s),
        Expr::Nested(i) => string_of(i),
        _ => None,
    }
}

/// Whether SQLite holds the number literal `n` exactly: an integer of 64 bits (the magnitude of
/// i64::MIN included, for a negated literal), or at most 15 significant digits.
fn sqlite_exact(n: &str) -> bool {
    if n.bytes().all(|b| b.is_ascii_digit()) {
        return n.parse::<u64>().is_ok_and(|v| v <= 1 << 63);
    }
    let mantissa = n.split(['e', 'E']).next().unwrap_or(n);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len() <= 15
}

/// The text of a number literal, with its sign (`-3.5`).
fn number_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            ..
        }) => Some(n.clone()),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number_of(expr).map(|n| match n.strip_prefix('-') {
            Some(p) => p.to_string(),
            None => format!("-{n}"),
        }),
        Expr::Nested(i) => number_of(i),
        _ => None,
    }
}

/// PostgreSQL's integer input (`int2in`, `int4in`, `int8in`) and numeric → integer rounding (half
/// away from zero) for a literal, checked against the type's range.
fn integer_literal(text: &str, ty: &PgType, quoted: bool) -> Result<String> {
    let (name, lo, hi) = match ty {
        PgType::Int2 => ("smallint", i16::MIN as i128, i16::MAX as i128),
        PgType::Int4 => ("integer", i32::MIN as i128, i32::MAX as i128),
        _ => ("bigint", i64::MIN as i128, i64::MAX as i128),
    };
    let s = text.trim();
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let valid = if quoted {
        digits(int) && frac.is_empty() && !body.contains('.')
    } else {
        (digits(int) || (int.is_empty() && digits(frac))) && (frac.is_empty() || digits(frac))
    };
    if !valid {
        return Err(TranslateError::InvalidText(format!(
            "invalid input syntax for type {name}: \"{text}\""
        )));
    }
    let out_of_range = || {
        if quoted {
            TranslateError::OutOfRange(format!("value \"{text}\" is out of range for type {name}"))
        } else {
            TranslateError::OutOfRange(format!("{name} out of range"))
        }
    };
    let mut v: i128 = if int.is_empty() {
        0
    } else if int.len() > 30 {
        return Err(out_of_range());
    } else {
        int.parse().map_err(|_| out_of_range())?
    };
    if frac.as_bytes().first().is_some_and(|d| *d >= b'5') {
        v += 1;
    }
    if neg {
        v = -v;
    }
    if v < lo || v > hi {
        return Err(out_of_range());
    }
    Ok(v.to_string())
}

/// A cast of a literal PostgreSQL evaluates at once, done here (`'42'::int` → `42`, `2.5::int` →
/// `3`, `'abc'::int` → 22P02, `1::boolean` → true, `4.50::text` → `'4.50'`, `NULL::t` → NULL).
/// `None`: not such a literal.
fn literal_cast(t: Target, x: &Expr, ty: &PgType) -> Result<Option<Expr>> {
    if matches!(
        x,
        Expr::Value(ValueWithSpan {
            value: Value::Null,
            ..
        })
    ) {
        return Ok(Some(x.clone()));
    }
    let (text, quoted) = match (string_of(x), number_of(x)) {
        (Some(s), _) => (s.to_string(), true),
        (None, Some(n)) => (n, false),
        _ => return Ok(None),
    };
    let num = |n: String| {
        if n.starts_with('-') {
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: Box::new(number_lit(n.trim_start_matches('-'))),
            }
        } else {
            number_lit(&n)
        }
    };
    Ok(match ty {
        PgType::Int2 | PgType::Int4 | PgType::Int8 => {
            Some(num(integer_literal(&text, ty, quoted)?))
        }
        PgType::Bool if !quoted => Some(match t {
            Target::MySql => expr_value(Value::Boolean(text.trim_start_matches('-') != "0")),
            Target::Sqlite => number_lit(if text.trim_start_matches('-') == "0" {
                "0"
            } else {
                "1"
            }),
        })
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit() || b == b'-')),
        PgType::Text | PgType::Varchar(None) if !quoted => Some(string_lit(&text)),
        PgType::Numeric(None) if !quoted => Some(x.clone()),
        PgType::Numeric(None) => {
            let s = text.trim();
            let body = s.strip_prefix('-').unwrap_or(s);
            let (i, f) = body.split_once('.').unwrap_or((body, ""));
            let ok = (!i.is_empty() || !f.is_empty())
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit());
            if !ok {
                return Err(TranslateError::InvalidText(format!(
                    "invalid input syntax for type numeric: \"{text}\""
                )));
            }
            // More digits than SQLite's REAL holds stay for the engine's own cast.
            (t == Target::MySql || i.len() + f.len() <= 15).then(|| num(s.to_string()))
        }
        _ => None,
    })
}

/// `CAST(x AS ty)` of an expression whose PostgreSQL type class is `source`, where the engines'
/// casts answer as PostgreSQL's: integer targets are range-checked and round numerics; casts the
/// engines do differently (float → integer, text → number, numeric → text on SQLite) are refused.
fn cast_checked(t: Target, x: Expr, ty: &PgType, source: optype::Operand) -> Result<Expr> {
    use optype::{IntWidth, Operand as O};
    let width = match ty {
        PgType::Int2 => Some(IntWidth::Int2),
        PgType::Int4 => Some(IntWidth::Int4),
        PgType::Int8 => Some(IntWidth::Int8),
        _ => None,
    };
    match (ty, source) {
        (_, O::Unchecked | O::UntypedLiteral) => cast_for(t, x, ty),
        (PgType::Int2 | PgType::Int4 | PgType::Int8, O::Int(_) | O::Null) => {
            let cast = cast_for(t, x, ty)?;
            Ok(match width {
                Some(w) => range_checked(t, cast, w),
                None => cast,
            })
        }
        (PgType::Int2 | PgType::Int4 | PgType::Int8, O::Numeric) => {
            // PostgreSQL rounds half away from zero, as ROUND does on both engines.
            let cast = cast_for(t, call("ROUND", vec![x]), ty)?;
            Ok(match width {
                Some(w) => range_checked(t, cast, w),
                None => cast,
            })
        }
        (PgType::Int2 | PgType::Int4 | PgType::Int8, _) => unsupported(
            "a cast to an integer type from this type (the engines convert differently)",
        ),
        (PgType::Numeric(None), O::Numeric | O::Null) => Ok(x),
        (PgType::Numeric(None), O::Int(_)) => match t {
            Target::MySql => Ok(cast_expr(x, "DECIMAL(65,0)")),
            Target::Sqlite => Ok(x),
        },
        (PgType::Numeric(_), O::Int(_) | O::Numeric | O::Null) => cast_for(t, x, ty),
        (PgType::Numeric(_), _) => {
            unsupported("a cast to numeric from this type (the engines convert differently)")
        }
        (PgType::Text | PgType::Varchar(_) | PgType::Char(_), O::Numeric | O::Float)
            if t == Target::Sqlite =>
        {
            unsupported("a cast of a number to text on SQLite (it prints numbers its own way)")
        }
        (PgType::Text | PgType::Varchar(_) | PgType::Char(_), O::Float) => {
            unsupported("a cast of a float to text (the engines print floats their own way)")
        }
        _ => cast_for(t, x, ty),
    }
}

/// `CAST(x AS ty)` for the target.
pub(crate) fn cast_for(t: Target, x: Expr, ty: &PgType) -> Result<Expr> {
    let lit = string_of(&x).map(str::to_string);
    Ok(match ty {
        PgType::Bool => match lit.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) => {
                let b = match s.as_str() {
                    "t" | "true" | "y" | "yes" | "on" | "1" => true,
                    "f" | "false" | "n" | "no" | "off" | "0" => false,
                    _ => {
                        return Err(TranslateError::Invalid(format!(
                            "invalid input syntax for type boolean: \"{s}\""
                        )))
                    }
                };
                match t {
                    Target::MySql => expr_value(Value::Boolean(b)),
                    Target::Sqlite => number_lit(if b { "1" } else { "0" }),
                }
            }
            None => return unsupported("cast of an expression to boolean"),
        },
        PgType::Int2 | PgType::Int4 | PgType::Int8 => match t {
            Target::MySql => cast_expr(x, "SIGNED"),
            Target::Sqlite => cast_expr(x, "INTEGER"),
        },
        PgType::Numeric(p) => match t {
            Target::MySql => cast_expr(
                x,
                &match p {
                    Some((p, s)) => format!("DECIMAL({p},{s})"),
                    None => "DECIMAL(65,30)".into(),
                },
            ),
            Target::Sqlite => cast_expr(x, "NUMERIC"),
        },
        PgType::Float4 | PgType::Float8 => match t {
            Target::MySql => cast_expr(x, "DOUBLE"),
            Target::Sqlite => cast_expr(x, "REAL"),
        },
        PgType::Text | PgType::Varchar(_) | PgType::Char(_) => match (t, lit) {
            (_, Some(_)) => x,
            (Target::MySql, None) => cast_expr(x, "CHAR"),
            (Target::Sqlite, None) => cast_expr(x, "TEXT"),
        },
        PgType::Date => match (t, lit) {
            (Target::MySql, _) => cast_expr(x, "DATE"),
            (Target::Sqlite, Some(_)) => x,
            (Target::Sqlite, None) => call("date", vec![x]),
        },
        PgType::Time => match (t, lit) {
            (Target::MySql, _) => cast_expr(x, "TIME(6)"),
            (Target::Sqlite, Some(_)) => x,
            (Target::Sqlite, None) => {
                unsupported::<Expr>("cast of an expression to time on SQLite")?
            }
        },
        PgType::Timestamptz if lit.is_some() => {
            // Stored as UTC without an offset (MySQL DATETIME cannot take one).
            let s = lit.unwrap_or_default();
            let utc = crate::backend::translated::types::timestamptz_literal_utc(&s).ok_or_else(
                || {
                    TranslateError::Invalid(format!(
                        "invalid input syntax for type timestamp with time zone: \"{s}\""
                    ))
                },
            )?;
            match t {
                Target::MySql => cast_expr(string_lit(&utc), "DATETIME(6)"),
                Target::Sqlite => string_lit(&utc),
            }
        }
        PgType::Timestamp | PgType::Timestamptz => match (t, lit) {
            (Target::MySql, _) => cast_expr(x, "DATETIME(6)"),
            (Target::Sqlite, Some(_)) => x,
            (Target::Sqlite, None) => {
                unsupported::<Expr>("cast of an expression to timestamp on SQLite")?
            }
        },
        PgType::Json | PgType::Jsonb | PgType::Uuid => match lit {
            Some(_) => x,
            None => unsupported::<Expr>(format!("cast of an expression to {}", ty.pg_name()))?,
        },
        PgType::Bytea if lit.is_some() => {
            // PostgreSQL's bytea input (`\\x…` hex or the escape format) → a hex literal.
            let s = lit.unwrap_or_default();
            let bytes =
                crate::backend::translated::types::decode_bytea_text(&s).ok_or_else(|| {
                    TranslateError::Invalid("invalid input syntax for type bytea".into())
                })?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            expr_value(Value::HexStringLiteral(hex))
        }
        PgType::Bytea => match t {
            Target::MySql => cast_expr(x, "BINARY"),
            Target::Sqlite => cast_expr(x, "BLOB"),
        },
    })
}

impl Ctx<'_> {
    /// Make `EXCLUDED` (ON CONFLICT DO UPDATE) resolve to the insert target.
    pub fn extend_excluded(&mut self, table: &str) {
        if let Some(s) = self.scopes.last_mut() {
            s.push(Entry {
                name: "excluded".into(),
                table: Some(table.to_string()),
            });
        }
    }

    /// A literal inserted into `table.column` gets an explicit cast to the column's type where the
    /// engines would convert it otherwise: numbers and quoted text into integer columns, quoted
    /// text into boolean ones (the cast is then done by [`literal_cast`]).
    ///
    /// Dates the engines cannot store (`infinity`, `epoch`, `today`, years BC) are refused here,
    /// before anything runs, rather than stored as something else or refused with another error.
    pub fn coerce_literal(&self, e: &mut Expr, table: &str, column: &str) -> Result<()> {
        let Some(ty) = self.types.and_then(|t| t.column_type(table, column)) else {
            return Ok(());
        };
        let literal = string_of(e).is_some() || number_of(e).is_some();
        let data_type = match ty.as_str() {
            "int2" => DataType::SmallInt(None),
            "int4" => DataType::Int(None),
            "int8" => DataType::BigInt(None),
            "bool" if string_of(e).is_some() => DataType::Boolean,
            "date" | "timestamp" | "timestamptz" => {
                if let Some(s) = string_of(e) {
                    let v = s.trim().to_ascii_lowercase();
                    let special = matches!(
                        v.trim_start_matches(['+', '-']),
                        "infinity" | "epoch" | "today" | "tomorrow" | "yesterday" | "now"
                    ) || v.ends_with(" bc")
                        || v.contains(" bc ");
                    if special {
                        return unsupported(format!(
                            "the {ty} value '{s}' (the engines store years 1 to 9999 only)"
                        ));
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        if literal {
            let x = std::mem::replace(e, Expr::Value(Value::Null.into()));
            *e = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(x),
                data_type,
                format: None,
            };
        }
        Ok(())
    }

    /// Walk a FROM item of UPDATE … FROM.
    pub fn table_with_joins_pub(&mut self, twj: &mut TableWithJoins) -> Result<()> {
        self.table_with_joins(twj)
    }
}
