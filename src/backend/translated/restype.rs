//! Result types the translator worked out ([`ResultType`]) → the PostgreSQL type and typmod of an
//! output column.
//!
//! Owns: PostgreSQL's result-type rules for aggregates and arithmetic over the types of the operands
//! (`sum(int4)` → int8, `avg(float8)` → float8, `int4 + numeric` → numeric, …), with table columns
//! looked up by the caller. Must never: answer when an operand type is not known (`None`: the
//! engine's own report stands).

use crate::translate::{ColumnRef, ResultType};

use super::types::{pg_type_by_name, PgType};

/// `(type, typmod)`.
pub(crate) type Typed = (PgType, i32);

/// The columns a result type needs looked up, in order, without repeats.
pub(crate) fn columns_needed<'a>(rt: &'a ResultType, out: &mut Vec<&'a ColumnRef>) {
    match rt {
        ResultType::Known { .. } | ResultType::NumericLiteral { .. } => {}
        ResultType::Column(c) => {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        ResultType::Sum(x)
        | ResultType::Avg(x)
        | ResultType::Shifted(x)
        | ResultType::Truncated(x) => columns_needed(x, out),
        ResultType::Arith(a, b) | ResultType::Product(a, b) => {
            columns_needed(a, out);
            columns_needed(b, out);
        }
    }
}

/// The scale a numeric result is printed with where PostgreSQL's rules fix it from the operands
/// (`1.50` → 2, `n + 1` → n's scale, `n * 1.5` → n's scale + 1, `sum(n)` → n's scale, integers 0);
/// `None` when they do not (division, avg, unknown operands).
pub(crate) fn scale(
    rt: &ResultType,
    column: &dyn Fn(&ColumnRef) -> Option<Typed>,
) -> Option<usize> {
    let of_typed = |(t, typmod): Typed| match t {
        PgType::Int2 | PgType::Int4 | PgType::Int8 => Some(0),
        PgType::Numeric => super::types::numeric_scale(typmod),
        _ => None,
    };
    match rt {
        ResultType::NumericLiteral { scale } => Some(*scale as usize),
        ResultType::Known { .. } | ResultType::Column(_) => of_typed(resolve(rt, column)?),
        ResultType::Sum(x) => scale(x, column),
        ResultType::Avg(_) | ResultType::Shifted(_) | ResultType::Truncated(_) => None,
        ResultType::Arith(a, b) => Some(scale(a, column)?.max(scale(b, column)?)),
        ResultType::Product(a, b) => Some(scale(a, column)? + scale(b, column)?),
    }
}

fn int_rank(t: PgType) -> Option<u8> {
    match t {
        PgType::Int2 => Some(1),
        PgType::Int4 => Some(2),
        PgType::Int8 => Some(3),
        _ => None,
    }
}

/// Resolves `rt`, with `column` giving the type of a table column.
pub(crate) fn resolve(
    rt: &ResultType,
    column: &dyn Fn(&ColumnRef) -> Option<Typed>,
) -> Option<Typed> {
    let t = match rt {
        ResultType::Known { typname, typmod } => {
            let t = if typname == "bpchar" {
                PgType::Varchar
            } else {
                pg_type_by_name(typname)?
            };
            return Some((t, *typmod));
        }
        ResultType::Column(c) => return column(c).filter(|(t, _)| *t != PgType::Unknown),
        ResultType::Sum(x) => match resolve(x, column)?.0 {
            PgType::Int2 | PgType::Int4 => PgType::Int8,
            PgType::Int8 | PgType::Numeric => PgType::Numeric,
            PgType::Float4 => PgType::Float4,
            PgType::Float8 => PgType::Float8,
            _ => return None,
        },
        ResultType::Avg(x) => match resolve(x, column)?.0 {
            PgType::Int2 | PgType::Int4 | PgType::Int8 | PgType::Numeric => PgType::Numeric,
            PgType::Float4 | PgType::Float8 => PgType::Float8,
            _ => return None,
        },
        ResultType::NumericLiteral { .. } => PgType::Numeric,
        ResultType::Truncated(x) => match resolve(x, column)?.0 {
            PgType::Timestamp => PgType::Timestamp,
            PgType::Date | PgType::Timestamptz => PgType::Timestamptz,
            _ => return None,
        },
        ResultType::Shifted(x) => match resolve(x, column)?.0 {
            PgType::Date | PgType::Timestamp => PgType::Timestamp,
            PgType::Timestamptz => PgType::Timestamptz,
            _ => return None,
        },
        ResultType::Arith(a, b) | ResultType::Product(a, b) => {
            let (a, b) = (resolve(a, column)?.0, resolve(b, column)?.0);
            // date ± integer is a date; date - date a number of days (other date/time arithmetic
            // is refused by the translator).
            match (a, b) {
                (PgType::Date, x) | (x, PgType::Date) if int_rank(x).is_some() => {
                    return Some((PgType::Date, -1))
                }
                (PgType::Date, PgType::Date) => return Some((PgType::Int4, -1)),
                // timestamp - timestamp (the translator allows no other operator between them)
                (PgType::Timestamp, PgType::Timestamp)
                | (PgType::Timestamptz, PgType::Timestamptz) => {
                    return Some((PgType::Interval, -1))
                }
                _ => {}
            }
            match (int_rank(a), int_rank(b)) {
                (Some(x), Some(y)) => {
                    if x >= y {
                        a
                    } else {
                        b
                    }
                }
                _ => match (a, b) {
                    (PgType::Float4, PgType::Float4) => PgType::Float4,
                    (PgType::Float4 | PgType::Float8, x) | (x, PgType::Float4 | PgType::Float8)
                        if int_rank(x).is_some()
                            || matches!(x, PgType::Numeric | PgType::Float4 | PgType::Float8) =>
                    {
                        PgType::Float8
                    }
                    (PgType::Numeric, x) | (x, PgType::Numeric)
                        if int_rank(x).is_some() || x == PgType::Numeric =>
                    {
                        PgType::Numeric
                    }
                    _ => return None,
                },
            }
        }
    };
    Some((t, -1))
}

/// An output column's PostgreSQL type as the translator worked it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub ty: PgType,
    pub typmod: i32,
    /// See [`scale`].
    pub scale: Option<usize>,
}

impl Resolved {
    /// Gives an undeclared column this type.
    pub(crate) fn apply_to(&self, c: &mut super::Column) {
        if !c.declared {
            c.ty = self.ty;
            c.typmod = self.typmod;
            c.scale = self.scale.filter(|_| self.ty == PgType::Numeric);
        }
    }
}

/// Gives the output columns the engine reported without a declared type (`!declared`) the PostgreSQL
/// type the translator worked out for them. Table columns are read by preparing
/// `SELECT <column> FROM <table> LIMIT 0` (the engine's declared type and modifier).
pub(crate) async fn apply(
    engine: &mut super::EngineConn,
    rts: &[Option<ResultType>],
    columns: &mut [super::Column],
) {
    if rts.len() != columns.len() || columns.iter().all(|c| c.declared) {
        return;
    }
    let typed = resolve_all(engine, rts).await;
    for (c, t) in columns.iter_mut().zip(typed) {
        if let Some(r) = t {
            r.apply_to(c);
        }
    }
}

/// [`resolve`] for each output column, looking table columns up on the engine.
pub(crate) async fn resolve_all(
    engine: &mut super::EngineConn,
    rts: &[Option<ResultType>],
) -> Vec<Option<Resolved>> {
    let mut needed = Vec::new();
    for rt in rts.iter().flatten() {
        columns_needed(rt, &mut needed);
    }
    let mut found: Vec<(ColumnRef, Typed)> = Vec::new();
    for c in needed {
        let sql = format!(
            "SELECT {} FROM {} LIMIT 0",
            engine.quote_ident(&c.column),
            engine.quote_ident(&c.table)
        );
        if let Ok(p) = engine.prepare(&sql).await {
            if let [col] = p.columns.as_slice() {
                found.push((c.clone(), (col.ty, col.typmod)));
            }
        }
    }
    let lookup = |c: &ColumnRef| found.iter().find(|(k, _)| k == c).map(|(_, t)| *t);
    rts.iter()
        .map(|rt| {
            let rt = rt.as_ref()?;
            let (ty, typmod) = resolve(rt, &lookup)?;
            Some(Resolved {
                ty,
                typmod,
                scale: scale(rt, &lookup),
            })
        })
        .collect()
}

/// For a simple query (columns learnt from the run): the types to give the columns the engine does
/// not take from a table (SQLite expressions have no type; MySQL types expressions its own way,
/// `1 + 1` as BIGINT, `sum(int)` as DECIMAL).
pub(crate) async fn for_simple(
    engine: &mut super::EngineConn,
    part: &crate::translate::Rewritten,
) -> Vec<Option<Resolved>> {
    if part.result_types.iter().all(Option::is_none) {
        return vec![];
    }
    resolve_all(engine, &part.result_types).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(t: &str) -> ResultType {
        ResultType::Known {
            typname: t.into(),
            typmod: -1,
        }
    }

    #[test]
    fn postgres_rules() {
        let col = |c: &ColumnRef| match c.column.as_str() {
            "i" => Some((PgType::Int4, -1)),
            "b" => Some((PgType::Int8, -1)),
            "n" => Some((PgType::Numeric, (10 << 16 | 2) + 4)),
            "f" => Some((PgType::Float8, -1)),
            _ => None,
        };
        let c = |n: &str| {
            ResultType::Column(ColumnRef {
                table: "t".into(),
                column: n.into(),
            })
        };
        let r = |rt: ResultType| resolve(&rt, &col);
        assert_eq!(r(k("int8")), Some((PgType::Int8, -1)));
        assert_eq!(r(c("n")), Some((PgType::Numeric, (10 << 16 | 2) + 4)));
        assert_eq!(r(c("zz")), None);
        assert_eq!(
            r(ResultType::Sum(Box::new(c("i")))),
            Some((PgType::Int8, -1))
        );
        assert_eq!(
            r(ResultType::Sum(Box::new(c("b")))),
            Some((PgType::Numeric, -1))
        );
        assert_eq!(
            r(ResultType::Sum(Box::new(c("n")))),
            Some((PgType::Numeric, -1))
        );
        assert_eq!(
            r(ResultType::Avg(Box::new(c("i")))),
            Some((PgType::Numeric, -1))
        );
        assert_eq!(
            r(ResultType::Avg(Box::new(c("f")))),
            Some((PgType::Float8, -1))
        );
        let ar = |a, b| r(ResultType::Arith(Box::new(a), Box::new(b)));
        assert_eq!(ar(c("i"), k("int4")), Some((PgType::Int4, -1)));
        assert_eq!(ar(c("i"), c("b")), Some((PgType::Int8, -1)));
        assert_eq!(ar(c("i"), k("numeric")), Some((PgType::Numeric, -1)));
        assert_eq!(ar(c("n"), c("f")), Some((PgType::Float8, -1)));
        assert_eq!(ar(c("i"), k("text")), None);
        assert_eq!(ar(k("date"), k("int4")), Some((PgType::Date, -1)));
        assert_eq!(ar(k("date"), k("date")), Some((PgType::Int4, -1)));
    }
}
