//! `INSERT INTO t (cols) SELECT * FROM unnest(<array>::type[], …)`, as Django 5's `bulk_create` sends
//! it to PostgreSQL, turned into the equivalent multi-row `INSERT … VALUES` for MySQL/MariaDB and
//! SQLite.
//!
//! Owns: recognising that shape, reading each array — PostgreSQL's array text format in a string
//! literal (`'{1,2,NULL}'::int2[]`, as psycopg 3's client-side binding writes it, quoting and
//! backslash escapes included) or an `ARRAY[…]` constructor (psycopg 2) — and building row `k` of
//! the VALUES from element `k` of every array, each element cast as its array was
//! (`('{1}'::int2[])::integer[]` → `'1'::int2::integer`), so the usual literal rules type it. Arrays
//! of different lengths are padded with NULLs, as PostgreSQL's multi-argument `unnest` does.
//!
//! Must never: accept what it cannot read exactly — multi-dimensional arrays, dimension decorations,
//! parameters (`$1::int[]`: their elements are only known at Bind), an empty result — those stay
//! refused (0A000) by the walk.

use sqlparser::ast::{
    ArrayElemTypeDef, CastKind, DataType, Expr, Parens, Query, SelectItem, SetExpr, TableFactor,
    Value, ValueWithSpan, Values,
};

use super::error::{Result, TranslateError};

/// Rewrites `src` (an INSERT's source) when it is `SELECT * FROM unnest(…)` of literal arrays.
/// Returns whether it did; an unnest of something else is refused.
pub(crate) fn to_values(src: &mut Query) -> Result<bool> {
    if src.order_by.is_some() {
        return Ok(false);
    }
    let Some(sel) = super::dml::projection_only(src) else {
        return Ok(false);
    };
    let plain = matches!(sel.projection.as_slice(), [SelectItem::Wildcard(_)]);
    let [from] = sel.from.as_slice() else {
        return Ok(false);
    };
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset,
        with_offset_alias,
        with_ordinality,
    } = &from.relation
    else {
        return Ok(false);
    };
    if !plain
        || !from.joins.is_empty()
        || alias.is_some()
        || *with_offset
        || with_offset_alias.is_some()
        || *with_ordinality
    {
        return Ok(false);
    }
    let mut columns = Vec::with_capacity(array_exprs.len());
    for a in array_exprs {
        columns.push(column(a)?);
    }
    let rows = columns.iter().map(|c| c.elements.len()).max().unwrap_or(0);
    if rows == 0 {
        return Err(TranslateError::unsupported(
            "INSERT … SELECT * FROM unnest() of empty arrays",
        ));
    }
    let null = || Expr::Value(Value::Null.into());
    let values: Vec<Vec<Expr>> = (0..rows)
        .map(|k| {
            columns
                .iter()
                .map(|c| {
                    let element = c.elements.get(k).cloned().unwrap_or_else(null);
                    c.casts.iter().rev().fold(element, |x, ty| Expr::Cast {
                        kind: CastKind::DoubleColon,
                        expr: Box::new(x),
                        data_type: ty.clone(),
                        format: None,
                    })
                })
                .collect()
        })
        .collect();
    *src.body = SetExpr::Values(Values {
        explicit_row: false,
        value_keyword: false,
        rows: values.into_iter().map(Parens::with_empty_span).collect(),
    });
    Ok(true)
}

/// One argument of `unnest`: its elements as expressions, and the element types of the array casts
/// around them, outermost first.
struct Column {
    elements: Vec<Expr>,
    casts: Vec<DataType>,
}

fn column(e: &Expr) -> Result<Column> {
    let mut casts = Vec::new();
    let mut e = e;
    loop {
        match e {
            Expr::Nested(inner) => e = inner,
            Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type: DataType::Array(elem),
                format: None,
            } => {
                let ty = match elem {
                    ArrayElemTypeDef::SquareBracket(t, None) => (**t).clone(),
                    _ => return Err(TranslateError::unsupported("this array type in unnest()")),
                };
                // `('{1}'::int2[])::integer[]`: each element gets both casts, innermost last
                if casts.last() != Some(&ty) {
                    casts.push(ty);
                }
                e = expr;
            }
            Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s),
                ..
            }) => {
                if casts.is_empty() {
                    break;
                }
                let elements = parse_array_text(s)?
                    .into_iter()
                    .map(|x| match x {
                        Some(v) => Expr::Value(Value::SingleQuotedString(v).into()),
                        None => Expr::Value(Value::Null.into()),
                    })
                    .collect();
                return Ok(Column { elements, casts });
            }
            Expr::Array(a) if !casts.is_empty() => {
                if a.elem.iter().any(|x| matches!(x, Expr::Array(_))) {
                    break;
                }
                return Ok(Column {
                    elements: a.elem.clone(),
                    casts,
                });
            }
            _ => break,
        }
    }
    Err(TranslateError::unsupported(
        "unnest() of other than a literal array with a cast to its type (a parameter array's elements are known only at Bind)",
    ))
}

/// The elements of a one-dimensional array in PostgreSQL's text format (`{a,"b c",NULL,"NULL"}`):
/// `None` for an unquoted NULL. Double quotes and backslashes escape; unquoted elements are trimmed.
pub(crate) fn parse_array_text(s: &str) -> Result<Vec<Option<String>>> {
    let bad = || TranslateError::InvalidText(format!("malformed array literal: \"{s}\""));
    let body = s.trim();
    if body.starts_with('[') {
        return Err(TranslateError::unsupported(
            "an array literal with dimension decorations in unnest()",
        ));
    }
    let inner = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let mut quoted = false;
        let mut escaped = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            loop {
                match chars.next() {
                    None => return Err(bad()),
                    Some('"') => break,
                    Some('\\') => value.push(chars.next().ok_or_else(bad)?),
                    Some(c) => value.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
        } else {
            // unquoted: up to the next comma; trailing whitespace that was not escaped is dropped
            let mut kept = 0;
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' | '}' | '"' => {
                        return Err(TranslateError::unsupported(
                            "a multi-dimensional or malformed array in unnest()",
                        ))
                    }
                    '\\' => {
                        chars.next();
                        value.push(chars.next().ok_or_else(bad)?);
                        escaped = true;
                        kept = value.len();
                    }
                    c => {
                        chars.next();
                        value.push(c);
                        if !c.is_ascii_whitespace() {
                            kept = value.len();
                        }
                    }
                }
            }
            value.truncate(kept);
            if value.is_empty() && !escaped {
                return Err(bad());
            }
        }
        let null = !quoted && !escaped && value.eq_ignore_ascii_case("null");
        out.push((!null).then_some(value));
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(_) => return Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_text() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            parse_array_text(r#"{a,b'c,NULL,"x,y","\"q\"","NULL","{}","a\\b", spaced out ,null}"#)
                .unwrap(),
            vec![
                s("a"),
                s("b'c"),
                None,
                s("x,y"),
                s("\"q\""),
                s("NULL"),
                s("{}"),
                s("a\\b"),
                s("spaced out"),
                None
            ]
        );
        assert_eq!(parse_array_text("{}").unwrap(), vec![]);
        assert_eq!(
            parse_array_text(" { 1 , 2 } ").unwrap(),
            vec![s("1"), s("2")]
        );
        assert!(parse_array_text("{1,{2}}").is_err());
        assert!(parse_array_text("{1,").is_err());
        assert!(parse_array_text("{\"a}").is_err());
        assert!(parse_array_text("[1:2]={1,2}").is_err());
        assert!(parse_array_text("{,}").is_err());
    }
}
