//! Interval literals and `timestamp/date ± interval` for MySQL/MariaDB and SQLite.
//!
//! Owns: reading an interval literal (`interval '1 day'`, `'2 hours'::interval`) in PostgreSQL's
//! common forms — `N unit` pairs (years, months, weeks, days, hours, minutes, seconds, milliseconds,
//! microseconds, with their abbreviations) and a `[-]H:MM[:SS[.f]]` time — into PostgreSQL's three
//! fields (months, days, microseconds), and the engine expression that adds it to a timestamp the way
//! PostgreSQL's `timestamp + interval` does: months first (the day clamped to the month's last: a
//! month after Jan 31 is Feb 29), then days, then microseconds. MySQL: a `DATE_ADD` per field;
//! SQLite: bindproxy's own function ([`super::SQLITE_TS_SHIFT_FUNCTION`], microsecond-exact, where
//! SQLite's date functions round to milliseconds and roll a month after Jan 31 over to March).
//!
//! Must never: read a form it does not know (fractional months or days, `ago`, ISO 8601, a bare
//! number, field qualifiers such as `INTERVAL '1' DAY`) — those are refused, not approximated.

use sqlparser::ast::{
    BinaryOperator, DataType, DateTimeField, Expr, Interval, Value, ValueWithSpan,
};

use super::error::{Result, TranslateError};
use super::walk::{call, number_lit};
use super::Target;

/// An interval as PostgreSQL holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IntervalValue {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl IntervalValue {
    fn negated(self) -> IntervalValue {
        IntervalValue {
            months: -self.months,
            days: -self.days,
            micros: -self.micros,
        }
    }
}

/// The interval literal `e` stands for: `Some(Ok)` for a literal read, `Some(Err)` for an interval
/// literal outside the forms read here, `None` when `e` is not an interval literal.
pub(crate) fn literal(e: &Expr) -> Option<Result<IntervalValue>> {
    let text = |v: &Expr| match v {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    };
    match e {
        Expr::Nested(inner) => literal(inner),
        // `interval '1 day' * 3`, `3 * interval '1 day'`: each field times an integer literal
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Multiply,
            right,
        } => {
            let (iv, n) = match (literal(left), literal(right)) {
                (Some(iv), None) => (iv, integer(right)?),
                (None, Some(iv)) => (iv, integer(left)?),
                _ => return None,
            };
            Some(iv.and_then(|iv| {
                let scaled = (
                    i64::from(iv.months).checked_mul(n),
                    i64::from(iv.days).checked_mul(n),
                    iv.micros.checked_mul(n),
                );
                match scaled {
                    (Some(m), Some(d), Some(us)) => Ok(IntervalValue {
                        months: i32::try_from(m).map_err(|_| out_of_range())?,
                        days: i32::try_from(d).map_err(|_| out_of_range())?,
                        micros: us,
                    }),
                    _ => Err(out_of_range()),
                }
            }))
        }
        Expr::Interval(iv) => Some(
            if iv.leading_field.is_some()
                || iv.last_field.is_some()
                || iv.leading_precision.is_some()
                || iv.fractional_seconds_precision.is_some()
            {
                Err(TranslateError::unsupported(
                    "an interval with field qualifiers (INTERVAL '1' DAY)",
                ))
            } else {
                match text(&iv.value) {
                    Some(s) => parse(&s),
                    None => Err(TranslateError::unsupported(
                        "an interval of other than a string literal",
                    )),
                }
            },
        ),
        Expr::Cast {
            expr,
            data_type: DataType::Interval { fields, precision },
            ..
        } => Some(match (text(expr), fields, precision) {
            (Some(s), None, None) => parse(&s),
            _ => Err(TranslateError::unsupported(
                "a cast to interval of other than a string literal",
            )),
        }),
        Expr::TypedString(ts) if matches!(ts.data_type, DataType::Interval { .. }) => {
            Some(match &ts.value.value {
                Value::SingleQuotedString(s) => parse(s),
                _ => Err(TranslateError::unsupported("this interval literal")),
            })
        }
        _ => None,
    }
}

fn out_of_range() -> TranslateError {
    TranslateError::OutOfRange("interval out of range".into())
}

/// An integer literal (`3`, `-2`).
fn integer(e: &Expr) -> Option<i64> {
    match e {
        Expr::Nested(inner) => integer(inner),
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            ..
        }) => n.parse().ok(),
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => integer(expr).map(|n| -n),
        _ => None,
    }
}

/// PostgreSQL's reading of an interval text, in the forms listed in the module doc.
pub(crate) fn parse(s: &str) -> Result<IntervalValue> {
    let refuse = || {
        TranslateError::unsupported(format!(
            "the interval '{s}' (bindproxy reads `N unit` pairs and a H:MM:SS time)"
        ))
    };
    let invalid =
        || TranslateError::InvalidText(format!("invalid input syntax for type interval: \"{s}\""));
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: i128 = 0;
    let mut tokens = s.split_whitespace().peekable();
    if tokens.peek().is_none() {
        return Err(invalid());
    }
    while let Some(tok) = tokens.next() {
        if tok.contains(':') {
            micros += time_micros(tok).ok_or_else(invalid)?;
            continue;
        }
        let (number, unit) = match tok.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) if i > 0 => (&tok[..i], tok[i..].to_string()),
            Some(_) => return Err(refuse()),
            None => match tokens.next() {
                Some(u) => (tok, u.to_string()),
                None => return Err(refuse()),
            },
        };
        let unit = unit.to_ascii_lowercase();
        let whole = number.parse::<i64>().ok();
        let field = |n: Option<i64>| n.ok_or_else(refuse);
        match unit.as_str() {
            "year" | "years" | "yr" | "yrs" | "y" => months += field(whole)? * 12,
            "month" | "months" | "mon" | "mons" => months += field(whole)?,
            "week" | "weeks" | "w" => days += field(whole)? * 7,
            "day" | "days" | "d" => days += field(whole)?,
            "hour" | "hours" | "hr" | "hrs" | "h" => {
                micros += i128::from(field(whole)?) * 3_600_000_000
            }
            "minute" | "minutes" | "min" | "mins" | "m" => {
                micros += i128::from(field(whole)?) * 60_000_000
            }
            "second" | "seconds" | "sec" | "secs" | "s" => {
                micros += seconds_micros(number, 1_000_000).ok_or_else(refuse)?
            }
            "millisecond" | "milliseconds" | "msec" | "msecs" | "ms" => {
                micros += seconds_micros(number, 1_000).ok_or_else(refuse)?
            }
            "microsecond" | "microseconds" | "usec" | "usecs" | "us" => {
                micros += i128::from(field(whole)?)
            }
            _ => return Err(refuse()),
        }
        if months.abs() > i32::MAX as i64
            || days.abs() > i32::MAX as i64
            || micros.abs() > i64::MAX as i128
        {
            return Err(TranslateError::OutOfRange(format!(
                "interval out of range: \"{s}\""
            )));
        }
    }
    Ok(IntervalValue {
        months: months as i32,
        days: days as i32,
        micros: micros as i64,
    })
}

/// `[-]H:MM[:SS[.f]]` in microseconds.
fn time_micros(t: &str) -> Option<i128> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let num = |p: &str| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<i128>().ok())
            .flatten()
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, seconds_micros(s, 1_000_000)?),
        _ => return None,
    };
    if m > 59 || sec >= 60_000_000 {
        return None;
    }
    let v = (h * 3600 + m * 60) * 1_000_000 + sec;
    Some(if neg { -v } else { v })
}

/// A decimal number of units of `scale` microseconds each (`1.5` seconds → 1500000), rounded to the
/// microsecond as PostgreSQL does (half away from zero).
fn seconds_micros(n: &str, scale: i128) -> Option<i128> {
    let (neg, body) = match n.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, n.strip_prefix('+').unwrap_or(n)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 18
    {
        return None;
    }
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    // the fraction in units of 1/10^9 of a unit, then scaled, rounded to the microsecond
    let mut nanos: i128 = 0;
    for (k, d) in frac.bytes().take(9).enumerate() {
        nanos += i128::from(d - b'0') * 10i128.pow(8 - k as u32);
    }
    let mut v = whole * scale + (nanos * scale + 500_000_000) / 1_000_000_000;
    if neg {
        v = -v;
    }
    Some(v)
}

/// `x ± iv` on the target, `x` a timestamp (a date is made one first by the caller).
pub(crate) fn shift(t: Target, x: Expr, iv: IntervalValue, negate: bool) -> Expr {
    let iv = if negate { iv.negated() } else { iv };
    match t {
        Target::MySql => {
            let mut e = x;
            for (n, unit) in [
                (i64::from(iv.months), DateTimeField::Month),
                (i64::from(iv.days), DateTimeField::Day),
                (iv.micros, DateTimeField::Microsecond),
            ] {
                if n != 0 {
                    let amount = Expr::Interval(Interval {
                        value: Box::new(signed_lit(n)),
                        leading_field: Some(unit),
                        leading_precision: None,
                        last_field: None,
                        fractional_seconds_precision: None,
                    });
                    e = call("DATE_ADD", vec![e, amount]);
                }
            }
            e
        }
        Target::Sqlite => call(
            super::SQLITE_TS_SHIFT_FUNCTION,
            vec![
                x,
                signed_lit(i64::from(iv.months)),
                signed_lit(i64::from(iv.days)),
                signed_lit(iv.micros),
            ],
        ),
    }
}

/// An integer literal, a negative one as `-n` (the form the engines' lexers read back).
pub(crate) fn signed_lit(n: i64) -> Expr {
    if n < 0 {
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr: Box::new(number_lit(&n.unsigned_abs().to_string())),
        }
    } else {
        number_lit(&n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, micros: i64) -> IntervalValue {
        IntervalValue {
            months,
            days,
            micros,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse("1 day").unwrap(), iv(0, 1, 0));
        assert_eq!(parse("2 hours").unwrap(), iv(0, 0, 7_200_000_000));
        assert_eq!(parse("3 months").unwrap(), iv(3, 0, 0));
        assert_eq!(parse("1 year 2 mons").unwrap(), iv(14, 0, 0));
        assert_eq!(parse("90 minutes").unwrap(), iv(0, 0, 5_400_000_000));
        assert_eq!(parse("1 day 02:00:00").unwrap(), iv(0, 1, 7_200_000_000));
        assert_eq!(parse("-1 day -02:30").unwrap(), iv(0, -1, -9_000_000_000));
        assert_eq!(parse("1.5 seconds").unwrap(), iv(0, 0, 1_500_000));
        assert_eq!(parse("2 weeks").unwrap(), iv(0, 14, 0));
        assert_eq!(parse("10ms").unwrap(), iv(0, 0, 10_000));
        assert!(parse("1.5 months").is_err());
        assert!(parse("1 day ago").is_err());
        assert!(parse("P1D").is_err());
        assert!(parse("10").is_err());
        assert!(parse("").is_err());
        assert!(parse("1 fortnight").is_err());
    }
}
