//! PostgreSQL result types of output expressions.
//!
//! Owns: working out, from the PostgreSQL AST before it is rewritten, the type PostgreSQL would give
//! each output column of a query (its leftmost select list) or RETURNING list: `count(*)` → int8,
//! `x::numeric(10,2)` → numeric(10,2), `a || b` → text, comparisons → bool, `max(x)` → the type of
//! `x`, … Types that depend on a table column are left as [`ResultType::Column`] and friends for the
//! executor, which knows the tables. Must never: guess. An expression whose PostgreSQL type is not
//! certain from the AST gets `None` (the executor then uses what the engine reports).

use sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName,
    ObjectNamePart, Query, SelectItem, SetExpr, TableFactor, UnaryOperator, Value,
};

use super::names::fold;
use super::types::{classify, PgType};
use super::walk::table_name;
use super::{ColumnRef, ResultType};

/// FROM entries of one select: visible name → real table (`None`: derived table or CTE).
struct Scope {
    entries: Vec<(String, Option<String>)>,
}

impl Scope {
    fn of_from(from: &[sqlparser::ast::TableWithJoins], ctes: &[String]) -> Scope {
        let mut entries = Vec::new();
        let mut add = |f: &TableFactor| match f {
            TableFactor::Table { name, alias, .. } => {
                let mut n = name.clone();
                let table = table_name(&mut n).ok().filter(|t| !ctes.contains(t));
                let visible = alias
                    .as_ref()
                    .map(|a| fold(&a.name))
                    .or_else(|| table_name(&mut name.clone()).ok());
                if let Some(v) = visible {
                    entries.push((v, table));
                }
            }
            TableFactor::Derived { alias: Some(a), .. } => entries.push((fold(&a.name), None)),
            // Anything else (nested joins, …): columns cannot be resolved unqualified.
            _ => entries.push((String::new(), None)),
        };
        for twj in from {
            add(&twj.relation);
            for j in &twj.joins {
                add(&j.relation);
            }
        }
        Scope { entries }
    }

    fn table(table: &str, alias: Option<&str>) -> Scope {
        Scope {
            entries: vec![(alias.unwrap_or(table).to_string(), Some(table.to_string()))],
        }
    }

    fn resolve(&self, e: &Expr) -> Option<ColumnRef> {
        match e {
            Expr::Identifier(c) => match self.entries.as_slice() {
                [(_, Some(t))] => Some(ColumnRef {
                    table: t.clone(),
                    column: fold(c),
                }),
                _ => None,
            },
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let n = parts.len();
                let qual = fold(&parts[n - 2]);
                let (_, table) = self.entries.iter().find(|(name, _)| *name == qual)?;
                table.clone().map(|table| ColumnRef {
                    table,
                    column: fold(&parts[n - 1]),
                })
            }
            _ => None,
        }
    }
}

fn known(ty: &PgType) -> ResultType {
    let typmod = match ty {
        PgType::Numeric(Some((p, s))) => (((*p as i32) << 16) | *s as i32) + 4,
        PgType::Varchar(Some(n)) | PgType::Char(Some(n)) => *n as i32 + 4,
        _ => -1,
    };
    ResultType::Known {
        typname: ty.pg_name().to_string(),
        typmod,
    }
}

fn named(typname: &str) -> ResultType {
    ResultType::Known {
        typname: typname.to_string(),
        typmod: -1,
    }
}

fn cast_type(dt: &DataType) -> Option<ResultType> {
    classify(dt).ok().map(|d| known(&d.ty))
}

fn func_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => Some(fold(i)),
        [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(i)]
            if fold(s) == "pg_catalog" =>
        {
            Some(fold(i))
        }
        _ => None,
    }
}

fn infer(scope: &Scope, e: &Expr) -> Option<ResultType> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            scope.resolve(e).map(ResultType::Column)
        }
        Expr::Nested(inner) => infer(scope, inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    if n.parse::<i32>().is_ok() {
                        Some(named("int4"))
                    } else if n.parse::<i64>().is_ok() {
                        Some(named("int8"))
                    } else {
                        Some(ResultType::NumericLiteral { scale: 0 })
                    }
                } else {
                    match n.split_once('.') {
                        Some((_, frac)) if frac.bytes().all(|b| b.is_ascii_digit()) => {
                            Some(ResultType::NumericLiteral {
                                scale: frac.len() as u32,
                            })
                        }
                        _ => Some(named("numeric")),
                    }
                }
            }
            // An unknown-type literal in a select list resolves to text.
            Value::SingleQuotedString(_)
            | Value::EscapedStringLiteral(_)
            | Value::DollarQuotedString(_) => Some(named("text")),
            Value::Boolean(_) => Some(named("bool")),
            _ => None,
        },
        Expr::Cast { data_type, .. } if super::types::is_name(data_type) => Some(named("name")),
        Expr::Cast { data_type, .. } => match (cast_type(data_type), by_class(e)) {
            (
                Some(ResultType::Known {
                    typname,
                    typmod: -1,
                }),
                Some(r @ ResultType::NumericLiteral { .. }),
            ) if typname == "numeric" => Some(r),
            (t, _) => t,
        },
        Expr::TypedString(ts) => cast_type(&ts.data_type),
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::Exists { .. } => Some(named("bool")),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::And
            | BinaryOperator::Or => Some(named("bool")),
            BinaryOperator::StringConcat => Some(named("text")),
            BinaryOperator::Multiply => Some(ResultType::Product(
                Box::new(infer(scope, left)?),
                Box::new(infer(scope, right)?),
            )),
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Divide
            | BinaryOperator::Modulo => Some(ResultType::Arith(
                Box::new(infer(scope, left)?),
                Box::new(infer(scope, right)?),
            )),
            _ => None,
        },
        // PostgreSQL folds the sign into a constant: `-2147483648` is an int4.
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } if matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..))) => {
            by_class(e)
        }
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => Some(named("bool")),
            UnaryOperator::Minus | UnaryOperator::Plus => infer(scope, expr),
            _ => None,
        },
        Expr::Function(f) => {
            if f.filter.is_some() {
                return None;
            }
            let name = func_name(&f.name)?;
            let args: Vec<&Expr> = match &f.args {
                FunctionArguments::List(l) => l
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            let first = || args.first().and_then(|a| infer(scope, a));
            match name.as_str() {
                "count" | "row_number" | "rank" | "dense_rank" => Some(named("int8")),
                "ntile" => Some(named("int4")),
                "percent_rank" | "cume_dist" => Some(named("float8")),
                "sum" => first().map(|t| ResultType::Sum(Box::new(t))),
                "avg" => first().map(|t| ResultType::Avg(Box::new(t))),
                "min" | "max" | "abs" | "lag" | "lead" | "first_value" | "last_value"
                | "nullif" => first(),
                "coalesce" => common(scope, args.iter().copied()),
                "lower" | "upper" | "replace" | "concat" => Some(named("text")),
                "bool_and" | "bool_or" | "every" => Some(named("bool")),
                // round(numeric, d) has scale d; round(x) of a float or integer is a float8
                "round" => match (args.len(), first()) {
                    (2, _) => match args.get(1).map(|a| &**a) {
                        Some(Expr::Value(v)) => match &v.value {
                            Value::Number(n, _) => n
                                .parse()
                                .ok()
                                .map(|scale| ResultType::NumericLiteral { scale }),
                            _ => None,
                        },
                        _ => None,
                    },
                    (1, Some(ResultType::NumericLiteral { .. })) => {
                        Some(ResultType::NumericLiteral { scale: 0 })
                    }
                    (1, Some(ResultType::Known { typname, .. })) => match typname.as_str() {
                        "numeric" => Some(ResultType::NumericLiteral { scale: 0 }),
                        "int2" | "int4" | "int8" | "float4" | "float8" => Some(named("float8")),
                        _ => None,
                    },
                    _ => None,
                },
                "length" | "char_length" | "character_length" => Some(named("int4")),
                "now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" => {
                    Some(named("timestamptz"))
                }
                "localtimestamp" => Some(named("timestamp")),
                "current_date" => Some(named("date")),
                "gen_random_uuid" => Some(named("uuid")),
                _ => None,
            }
        }
        Expr::Case {
            conditions,
            else_result,
            ..
        } => common(
            scope,
            conditions
                .iter()
                .map(|c| &c.result)
                .chain(else_result.as_deref()),
        ),
        _ => None,
    }
}

/// The type of `CASE` branches / `coalesce` arguments when it is certain: NULLs are ignored, string
/// literals alone give text, and otherwise every other branch must have the same type (PostgreSQL
/// would resolve mixed types to a common one; that is left to the engine).
fn common<'a>(scope: &Scope, exprs: impl Iterator<Item = &'a Expr>) -> Option<ResultType> {
    let mut strings = false;
    let mut ty: Option<ResultType> = None;
    for e in exprs {
        match e {
            Expr::Value(v) if matches!(v.value, Value::Null) => {}
            Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => strings = true,
            e => {
                let t = infer(scope, e)?;
                match &ty {
                    None => ty = Some(t),
                    Some(prev) if *prev == t => {}
                    Some(_) => return None,
                }
            }
        }
    }
    match ty {
        // An unknown literal next to a typed branch is coerced to that type.
        Some(t) => Some(t),
        None => strings.then(|| named("text")),
    }
}

/// The type of an expression from its operator classes alone (`coalesce(1 + 1, 2)` → int4), for
/// what [`infer`] leaves open; columns are not typed here.
fn by_class(e: &Expr) -> Option<ResultType> {
    use super::optype::{of_expr, static_scale, Operand};
    Some(match of_expr(e, &|_| None) {
        Operand::Int(w) => named(w.typname()),
        Operand::Numeric => match static_scale(e) {
            Some(scale) => ResultType::NumericLiteral { scale },
            None => named("numeric"),
        },
        Operand::Float => named("float8"),
        Operand::Date => named("date"),
        Operand::Text => named("text"),
        Operand::Bool => named("bool"),
        _ => return None,
    })
}

fn items(scope: &Scope, projection: &[SelectItem]) -> Vec<Option<ResultType>> {
    if projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        // Output columns do not line up with the list.
        return vec![];
    }
    projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                infer(scope, e).or_else(|| by_class(e))
            }
            _ => None,
        })
        .collect()
}

/// Result types of a query's output columns (its leftmost select list; empty when the list has a
/// wildcard or the body is not a SELECT).
pub(crate) fn of_query(q: &Query) -> Vec<Option<ResultType>> {
    // A UNION's column types are resolved across its branches: only a plain SELECT is typed here.
    let s = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        // VALUES: the types of its first row (when every row has the same ones).
        SetExpr::Values(v) => {
            let scope = Scope { entries: vec![] };
            let rows: Vec<Vec<Option<ResultType>>> = v
                .rows
                .iter()
                .map(|r| r.content.iter().map(|e| infer(&scope, e)).collect())
                .collect();
            return match rows.split_first() {
                Some((first, rest)) if rest.iter().all(|r| r == first) => first.clone(),
                _ => vec![],
            };
        }
        _ => return vec![],
    };
    let ctes: Vec<String> = q
        .with
        .as_ref()
        .map(|w| w.cte_tables.iter().map(|c| fold(&c.alias.name)).collect())
        .unwrap_or_default();
    items(&Scope::of_from(&s.from, &ctes), &s.projection)
}

/// Result types of a RETURNING list on `table`.
pub(crate) fn of_returning(
    items_: &[SelectItem],
    table: &str,
    alias: Option<&str>,
) -> Vec<Option<ResultType>> {
    items(&Scope::table(table, alias), items_)
}
