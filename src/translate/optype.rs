//! Operand types of arithmetic, and what each engine must be given so `a + b`, `a / b`, … answer as
//! PostgreSQL's operators do.
//!
//! Owns: the PostgreSQL type class of an expression as far as the statement and the bind's column
//! types ([`super::ColumnTypes`]) tell it ([`Operand`]), and the decision for one arithmetic operator
//! over two classes ([`plan`]): keep the operator, integer division (`DIV` on MySQL), a date shifted
//! by days, a difference of dates in days, an integer result checked against its type's range, or a
//! refusal where the engines would answer differently (numeric division, interval-less date/time
//! arithmetic, text or boolean operands, operands of unknown type). Must never: guess a type — an
//! operand it cannot type is [`Operand::Unknown`], and arithmetic on it is refused.

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart,
    UnaryOperator, Value,
};

use super::names::fold;
use super::types::{classify, PgType};

/// Width of a PostgreSQL integer type, in the order of its implicit casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IntWidth {
    Int2,
    Int4,
    Int8,
}

impl IntWidth {
    pub(crate) fn typname(self) -> &'static str {
        match self {
            IntWidth::Int2 => "int2",
            IntWidth::Int4 => "int4",
            IntWidth::Int8 => "int8",
        }
    }
}

/// The type class of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    Int(IntWidth),
    Numeric,
    Float,
    Date,
    /// `timestamp`, `timestamptz`, `time`.
    DateTime,
    Text,
    Bool,
    /// A quoted literal without a cast: PostgreSQL types it from the other operand.
    UntypedLiteral,
    /// A parameter `$n` without a cast: PostgreSQL gives it the other operand's type.
    Param,
    Null,
    /// Any other type (bytea, json, uuid, …).
    Other,
    /// Not known from the statement and the column types.
    Unknown,
    /// Not typed because the caller gave no column types (unit tests, `bindproxy route`): left to
    /// the engine.
    Unchecked,
}

/// The class of a PostgreSQL type name (`int4`, `date`, …).
pub(crate) fn of_typname(t: &str) -> Operand {
    match t {
        "int2" => Operand::Int(IntWidth::Int2),
        "int4" => Operand::Int(IntWidth::Int4),
        "int8" => Operand::Int(IntWidth::Int8),
        "numeric" => Operand::Numeric,
        "float4" | "float8" => Operand::Float,
        "date" => Operand::Date,
        "timestamp" | "timestamptz" | "time" => Operand::DateTime,
        "text" | "varchar" | "bpchar" => Operand::Text,
        "bool" => Operand::Bool,
        _ => Operand::Other,
    }
}

fn of_pg(t: &PgType) -> Operand {
    of_typname(t.pg_name())
}

/// The class of a number literal as PostgreSQL reads it.
pub(crate) fn of_number(n: &str) -> Operand {
    let digits = n.strip_prefix('-').unwrap_or(n);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if n.parse::<i32>().is_ok() {
            Operand::Int(IntWidth::Int4)
        } else if n.parse::<i64>().is_ok() {
            Operand::Int(IntWidth::Int8)
        } else {
            Operand::Numeric
        }
    } else {
        Operand::Numeric
    }
}

/// What an arithmetic operator over two classes becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The engine's operator answers as PostgreSQL's.
    Keep,
    /// Integer division (truncating): `DIV` on MySQL; SQLite's `/` already truncates integers.
    IntegerDivision,
    /// `date + int`, `int + date`, `date - int`: the date shifted by days (`negate`: subtract).
    DateShift { date_left: bool, negate: bool },
    /// `date - date`: days between them (int4).
    DateDiff,
    /// Refused: the engines would answer differently. The text names the construct.
    Refuse(&'static str),
}

/// The class of `a op b` (for typing enclosing expressions).
pub(crate) fn result_class(op: &BinaryOperator, a: Operand, b: Operand) -> Operand {
    use Operand::*;
    let (a, b) = with_params_typed(a, b);
    match (a, b) {
        (Int(x), Int(y)) => Int(x.max(y)),
        (Date, Int(_)) | (Int(_), Date) if *op != BinaryOperator::Divide => Date,
        (Date, Date) if *op == BinaryOperator::Minus => Int(IntWidth::Int4),
        (Float, Int(_) | Numeric | Float) | (Int(_) | Numeric, Float) => Float,
        (Numeric, Int(_) | Numeric) | (Int(_), Numeric) => Numeric,
        (Null, x) | (x, Null) => x,
        _ => Unknown,
    }
}

/// A parameter takes the type of the other operand (two parameters: unknown).
fn with_params_typed(a: Operand, b: Operand) -> (Operand, Operand) {
    match (a, b) {
        (Operand::Param, Operand::Param) => (Operand::Unknown, Operand::Unknown),
        (Operand::Param, x) => (x, x),
        (x, Operand::Param) => (x, x),
        other => other,
    }
}

fn is_number(o: Operand) -> bool {
    matches!(o, Operand::Int(_) | Operand::Numeric | Operand::Float)
}

/// The plan for `a op b` on `mysql` (true) or SQLite.
pub(crate) fn plan(op: &BinaryOperator, a: Operand, b: Operand, mysql: bool) -> Plan {
    use Operand::*;
    let (a, b) = with_params_typed(a, b);
    if a == Unchecked || b == Unchecked {
        return Plan::Keep;
    }
    let (plus, minus, div) = (
        *op == BinaryOperator::Plus,
        *op == BinaryOperator::Minus,
        *op == BinaryOperator::Divide,
    );
    match (a, b) {
        (Date, Int(_)) if plus || minus => Plan::DateShift {
            date_left: true,
            negate: minus,
        },
        (Int(_), Date) if plus => Plan::DateShift {
            date_left: false,
            negate: false,
        },
        (Date, Date) if minus => Plan::DateDiff,
        (Date | DateTime, _) | (_, Date | DateTime) => Plan::Refuse(
            "date/time arithmetic other than date ± integer and date - date (use an explicit function)",
        ),
        (Text | Bool | Other, _) | (_, Text | Bool | Other) => {
            Plan::Refuse("arithmetic on a text, boolean or other non-numeric operand")
        }
        (UntypedLiteral, _) | (_, UntypedLiteral) => {
            Plan::Refuse("arithmetic on a quoted literal without a cast")
        }
        (Unknown, _) | (_, Unknown) => {
            Plan::Refuse("arithmetic on an operand whose type bindproxy cannot tell")
        }
        (Int(_), Int(_)) if div && mysql => Plan::IntegerDivision,
        (Float, _) | (_, Float) if *op == BinaryOperator::Modulo => {
            Plan::Refuse("% of a float (PostgreSQL has no such operator)")
        }
        (Numeric, _) | (_, Numeric) if *op == BinaryOperator::Modulo && !mysql => {
            Plan::Refuse("% of a numeric on SQLite (it takes integers)")
        }
        (Numeric, Int(_) | Numeric) | (Int(_), Numeric) if div => {
            Plan::Refuse("numeric division (the engines' result scale differs from PostgreSQL's)")
        }
        (Null, _) | (_, Null) => Plan::Keep,
        (x, y) if is_number(x) && is_number(y) => Plan::Keep,
        _ => Plan::Refuse("this arithmetic"),
    }
}

/// The class of `e`, with `column` giving the type name of a column reference (already resolved
/// against the statement's scopes by the caller).
pub(crate) fn of_expr(e: &Expr, column: &dyn Fn(&Expr) -> Option<String>) -> Operand {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => column(e)
            .map(|t| of_typname(&t))
            .unwrap_or(Operand::Unknown),
        Expr::Nested(inner) => of_expr(inner, column),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => of_number(n),
            Value::SingleQuotedString(_)
            | Value::EscapedStringLiteral(_)
            | Value::DollarQuotedString(_) => Operand::UntypedLiteral,
            Value::Boolean(_) => Operand::Bool,
            Value::Null => Operand::Null,
            Value::Placeholder(_) => Operand::Param,
            _ => Operand::Unknown,
        },
        Expr::Cast { data_type, .. } if super::types::is_name(data_type) => Operand::Text,
        Expr::Cast { data_type, .. } => classify(data_type)
            .map(|d| of_pg(&d.ty))
            .unwrap_or(Operand::Unknown),
        Expr::TypedString(ts) => classify(&ts.data_type)
            .map(|d| of_pg(&d.ty))
            .unwrap_or(Operand::Unknown),
        Expr::UnaryOp { op, expr } => match (op, expr.as_ref()) {
            // PostgreSQL folds the sign into a constant: `-2147483648` is an int4.
            (UnaryOperator::Minus, Expr::Value(v)) if matches!(v.value, Value::Number(..)) => {
                match &v.value {
                    Value::Number(n, _) => of_number(&format!("-{n}")),
                    _ => Operand::Unknown,
                }
            }
            (UnaryOperator::Minus | UnaryOperator::Plus, _) => of_expr(expr, column),
            (UnaryOperator::Not, _) => Operand::Bool,
            _ => Operand::Unknown,
        },
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo => {
                result_class(op, of_expr(left, column), of_expr(right, column))
            }
            BinaryOperator::StringConcat => Operand::Text,
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::And
            | BinaryOperator::Or => Operand::Bool,
            _ => Operand::Unknown,
        },
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
        | Expr::Exists { .. } => Operand::Bool,
        Expr::Case {
            conditions,
            else_result,
            ..
        } => common(
            conditions
                .iter()
                .map(|c| &c.result)
                .chain(else_result.as_deref()),
            column,
        ),
        Expr::Function(f) => function(f, column),
        _ => Operand::Unknown,
    }
}

/// The scale of a numeric expression where the statement alone fixes it (literals, `+ - *` of
/// them, `round(x, d)`); `None` otherwise (columns: their typmod is not known here).
pub(crate) fn static_scale(e: &Expr) -> Option<u32> {
    match e {
        Expr::Nested(i) => static_scale(i),
        Expr::UnaryOp { expr, .. } => static_scale(expr),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => match n.split_once('.') {
                Some((_, f)) if f.bytes().all(|b| b.is_ascii_digit()) => Some(f.len() as u32),
                None if n.bytes().all(|b| b.is_ascii_digit()) => Some(0),
                _ => None,
            },
            _ => None,
        },
        Expr::Case {
            conditions,
            else_result,
            ..
        } => same_scale(
            conditions
                .iter()
                .map(|c| &c.result)
                .chain(else_result.as_deref()),
        ),
        Expr::Cast {
            expr, data_type, ..
        } if matches!(classify(data_type).map(|d| d.ty), Ok(PgType::Numeric(None))) => {
            static_scale(expr)
        }
        Expr::BinaryOp { left, op, right } => {
            let (a, b) = (static_scale(left)?, static_scale(right)?);
            match op {
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Modulo => {
                    Some(a.max(b))
                }
                BinaryOperator::Multiply => Some(a + b),
                _ => None,
            }
        }
        Expr::Function(f) => {
            let name = match f.name.0.as_slice() {
                [ObjectNamePart::Identifier(i)] => fold(i),
                _ => return None,
            };
            let FunctionArguments::List(l) = &f.args else {
                return None;
            };
            let arg = |k: usize| match l.args.get(k) {
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(x))) => Some(x),
                _ => None,
            };
            match (name.as_str(), l.args.len()) {
                ("round", 1) => Some(0),
                ("round", 2) => match arg(1)? {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => n.parse().ok(),
                        _ => None,
                    },
                    _ => None,
                },
                ("abs", 1) => static_scale(arg(0)?),
                ("coalesce", _) => same_scale((0..l.args.len()).filter_map(arg)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The one scale of several branches (NULLs aside), if they all have it.
fn same_scale<'a>(exprs: impl Iterator<Item = &'a Expr>) -> Option<u32> {
    let mut out = None;
    for e in exprs {
        if matches!(e, Expr::Value(v) if v.value == Value::Null) {
            continue;
        }
        let s = static_scale(e)?;
        match out {
            None => out = Some(s),
            Some(o) if o == s => {}
            Some(_) => return None,
        }
    }
    out
}

/// Whether the branches of a `CASE` / `coalesce` answer as PostgreSQL's on the engines: PostgreSQL
/// resolves them to one type and prints each numeric value with its own scale, where the engines
/// convert to one type with one scale. Allowed: one class (integers of any width), NULLs, and
/// numerics only when at most one branch is numeric or all have the same known scale.
pub(crate) fn branches_agree(exprs: &[&Expr], column: &dyn Fn(&Expr) -> Option<String>) -> bool {
    let classes: Vec<Operand> = exprs
        .iter()
        .map(|e| of_expr(e, column))
        .filter(|c| !matches!(c, Operand::Null | Operand::UntypedLiteral | Operand::Param))
        .collect();
    let Some(first) = classes.first() else {
        return true;
    };
    let same_class = classes.iter().all(|c| match (first, c) {
        (Operand::Int(_), Operand::Int(_)) => true,
        (a, b) => a == b,
    });
    if !same_class
        || classes
            .iter()
            .any(|c| matches!(c, Operand::Unknown | Operand::Unchecked))
    {
        return classes.iter().all(|c| *c == Operand::Unchecked);
    }
    if *first != Operand::Numeric {
        return true;
    }
    let numeric: Vec<&&Expr> = exprs
        .iter()
        .filter(|e| of_expr(e, column) == Operand::Numeric)
        .collect();
    if numeric.len() <= 1 {
        return true;
    }
    let scales: Vec<Option<u32>> = numeric.iter().map(|e| static_scale(e)).collect();
    scales[0].is_some() && scales.iter().all(|s| *s == scales[0])
}

/// The one class of several branches (NULLs aside), or Unknown.
fn common<'a>(
    exprs: impl Iterator<Item = &'a Expr>,
    column: &dyn Fn(&Expr) -> Option<String>,
) -> Operand {
    let mut out = Operand::Null;
    for e in exprs {
        match (out, of_expr(e, column)) {
            (_, Operand::Null) => {}
            (Operand::Null, t) => out = t,
            (Operand::Int(x), Operand::Int(y)) => out = Operand::Int(x.max(y)),
            (a, b) if a == b => {}
            _ => return Operand::Unknown,
        }
    }
    out
}

fn function(f: &sqlparser::ast::Function, column: &dyn Fn(&Expr) -> Option<String>) -> Operand {
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => fold(i),
        _ => return Operand::Unknown,
    };
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
    let first = || {
        args.first()
            .map_or(Operand::Unknown, |a| of_expr(a, column))
    };
    match name.as_str() {
        "count" | "row_number" | "rank" | "dense_rank" => Operand::Int(IntWidth::Int8),
        "length" | "char_length" | "character_length" | "ntile" => Operand::Int(IntWidth::Int4),
        "sum" => match first() {
            Operand::Int(IntWidth::Int8) | Operand::Numeric => Operand::Numeric,
            Operand::Int(_) => Operand::Int(IntWidth::Int8),
            Operand::Float => Operand::Float,
            _ => Operand::Unknown,
        },
        "avg" => match first() {
            Operand::Int(_) | Operand::Numeric => Operand::Numeric,
            Operand::Float => Operand::Float,
            _ => Operand::Unknown,
        },
        "min" | "max" | "abs" | "nullif" => first(),
        "coalesce" => common(args.iter().copied(), column),
        "lower" | "upper" | "replace" | "concat" => Operand::Text,
        "round" => match first() {
            Operand::Numeric => Operand::Numeric,
            _ => Operand::Unknown,
        },
        "current_date" => Operand::Date,
        _ => Operand::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BinaryOperator::*;
    use Operand::*;

    const I4: Operand = Int(IntWidth::Int4);

    #[test]
    fn plans() {
        assert_eq!(plan(&Divide, I4, I4, true), Plan::IntegerDivision);
        assert_eq!(plan(&Divide, I4, I4, false), Plan::Keep);
        assert_eq!(plan(&Divide, Float, I4, true), Plan::Keep);
        assert!(matches!(plan(&Divide, Numeric, I4, false), Plan::Refuse(_)));
        assert_eq!(
            plan(&Minus, Date, I4, true),
            Plan::DateShift {
                date_left: true,
                negate: true
            }
        );
        assert_eq!(plan(&Minus, Date, Date, false), Plan::DateDiff);
        assert!(matches!(plan(&Plus, Date, Date, false), Plan::Refuse(_)));
        assert!(matches!(plan(&Plus, Unknown, I4, false), Plan::Refuse(_)));
        assert!(matches!(plan(&Plus, Text, I4, false), Plan::Refuse(_)));
        assert_eq!(plan(&Multiply, Numeric, I4, true), Plan::Keep);
        assert_eq!(result_class(&Minus, Date, Date), I4);
        assert_eq!(result_class(&Plus, Int(IntWidth::Int2), I4), I4);
    }

    #[test]
    fn numbers() {
        assert_eq!(of_number("1"), I4);
        assert_eq!(of_number("2147483648"), Int(IntWidth::Int8));
        assert_eq!(of_number("99999999999999999999"), Numeric);
        assert_eq!(of_number("1.5"), Numeric);
    }
}
