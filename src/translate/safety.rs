//! The last look at rendered SQL before it may reach an engine.
//!
//! Owns: lexing a rendered statement the way the target engine will (SQLite; MySQL/MariaDB under
//! the session's `NO_BACKSLASH_ESCAPES`, without `ANSI_QUOTES`), and refusing it unless it is one
//! statement without comments or engine-side variables whose string and number literals are the ones
//! the translated tree holds. A renderer bug that lets text out of a literal (`- -5` printed as
//! `--5`, a comment to end of line in SQLite) then becomes [`TranslateError::UnsafeRendering`]
//! instead of SQL the client never wrote.
//!
//! Must never: recurse (the input may be megabytes), allocate per character, or accept text it
//! cannot lex: when in doubt it refuses. It relies on MySQL sessions running with
//! `NO_BACKSLASH_ESCAPES` (see [`super::MYSQL_SESSION_SETUP`]): a backslash inside a literal is an
//! ordinary character for both engines.
//!
//! Cost: one pass over the text plus counting the literals: 0.9 µs for a 173-byte SELECT in a
//! release build, 2–3% of its 38 µs rewrite (`rendering_check_cost` below). It runs once per rewrite;
//! cached rewrites (and template fills) are not checked again.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{Statement, Value, ValueWithSpan, Visit, Visitor};

use super::error::{Result, TranslateError};
use super::Target;

/// How the literals of the rendered text must relate to the tree's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiteralMatch {
    /// The text's string literals are exactly the tree's (as a multiset): statements rendered by
    /// Display from that tree (SELECT/INSERT/UPDATE/DELETE).
    Exact,
    /// Each of the tree's string literals appears in the text; the renderer may add its own (DDL:
    /// type comments, table options).
    Contains,
}

/// The string and number literals of a translated tree, as the engine should read them back.
#[derive(Debug, Default)]
pub(crate) struct Literals {
    strings: Vec<String>,
    numbers: Vec<String>,
}

struct Collect<'a>(&'a mut Literals);

impl Visitor for Collect<'_> {
    type Break = ();
    fn pre_visit_value(&mut self, v: &ValueWithSpan) -> ControlFlow<()> {
        match &v.value {
            Value::SingleQuotedString(s) => self.0.strings.push(s.clone()),
            // A string literal already rendered by `names` (verbatim in Display).
            Value::Placeholder(p) => {
                if let Some(s) = super::names::literal_value(p) {
                    self.0.strings.push(s);
                }
            }
            Value::Number(n, _) => self.0.numbers.push(n.clone()),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Literals {
    /// The literals of `stmt` (callers bound its depth first: the visitor recurses).
    pub(crate) fn of(stmt: &Statement) -> Literals {
        let mut l = Literals::default();
        let _ = stmt.visit(&mut Collect(&mut l));
        l
    }
}

/// What the lexer found in rendered text.
#[derive(Debug, Default)]
struct Lexed {
    strings: Vec<String>,
    numbers: Vec<String>,
}

/// Why rendered text was refused (the message of [`TranslateError::UnsafeRendering`]).
fn refuse<T>(why: impl Into<String>) -> Result<T> {
    Err(TranslateError::UnsafeRendering(why.into()))
}

/// Lexes `sql` as `target` reads it. Refuses comments, statement separators, engine variables,
/// NUL characters and unterminated quotes.
fn lex(sql: &str, target: Target) -> Result<Lexed> {
    let b = sql.as_bytes();
    let mut out = Lexed::default();
    let mut i = 0;
    let ident_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            0 => return refuse("a NUL character"),
            b'\'' => {
                let (value, end) = quoted(sql, i, b'\'')?;
                out.strings.push(value);
                i = end;
            }
            // MySQL without ANSI_QUOTES reads "…" as a string; SQLite as an identifier.
            b'"' => {
                let (value, end) = quoted(sql, i, b'"')?;
                if target == Target::MySql {
                    out.strings.push(value);
                }
                i = end;
            }
            b'`' => i = quoted(sql, i, b'`')?.1,
            b'[' if target == Target::Sqlite => {
                i = match b[i..].iter().position(|&x| x == b']') {
                    Some(p) => i + p + 1,
                    None => return refuse("an unterminated [identifier]"),
                }
            }
            b'-' if next == Some(b'-') => return refuse("`--` (a comment) outside a literal"),
            b'/' if next == Some(b'*') => return refuse("`/*` (a comment) outside a literal"),
            b'*' if next == Some(b'/') => return refuse("`*/` outside a literal"),
            b'#' => return refuse("`#` outside a literal"),
            b';' => return refuse("a second statement (`;`)"),
            b'$' | b'@' => return refuse("an engine variable outside a literal"),
            b':' if next.is_some_and(ident_byte) => {
                return refuse("a named parameter outside a literal")
            }
            b'?' if next.is_some_and(|x| x.is_ascii_digit()) => {
                return refuse("a numbered parameter outside a literal")
            }
            b'0'..=b'9' => {
                let end = number_end(b, i);
                out.numbers.push(sql[i..end].to_string());
                i = end;
            }
            b'.' if next.is_some_and(|x| x.is_ascii_digit()) => {
                let end = number_end(b, i);
                out.numbers.push(sql[i..end].to_string());
                i = end;
            }
            // X'…' (hex) and B'…' (bits): byte literals, not strings.
            b'x' | b'X' | b'b' | b'B' if next == Some(b'\'') => i = quoted(sql, i + 1, b'\'')?.1,
            c if ident_byte(c) => {
                while i < b.len() && ident_byte(b[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// A quoted run starting at `start` (`q` doubled inside stands for itself): its value and the
/// index after the closing quote.
fn quoted(sql: &str, start: usize, q: u8) -> Result<(String, usize)> {
    let b = sql.as_bytes();
    let mut value = String::new();
    let mut from = start + 1;
    let mut j = start + 1;
    loop {
        match b.get(j) {
            None => return refuse("an unterminated quote"),
            Some(&x) if x == q => {
                value.push_str(&sql[from..j]);
                if b.get(j + 1) == Some(&q) {
                    j += 2;
                    from = j - 1;
                } else {
                    return Ok((value, j + 1));
                }
            }
            Some(_) => j += 1,
        }
    }
}

/// The end of a numeric literal starting at `i`: digits, one `.`, an exponent, hex digits.
fn number_end(b: &[u8], mut i: usize) -> usize {
    let start = i;
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i > start && matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(|x| x.is_ascii_digit()) {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// Refuses `sql` unless the engine will read it as one statement, without comments, whose literals
/// are `expected`'s (see [`LiteralMatch`]).
pub(crate) fn check(
    sql: &str,
    target: Target,
    expected: &Literals,
    matching: LiteralMatch,
) -> Result<()> {
    let lexed = lex(sql, target)?;
    let mut have: HashMap<&str, isize> = HashMap::new();
    for s in &lexed.strings {
        *have.entry(s.as_str()).or_default() += 1;
    }
    for s in &expected.strings {
        let n = have.entry(s.as_str()).or_default();
        *n -= 1;
        if *n < 0 {
            return refuse("a string literal does not come out whole");
        }
    }
    if matching == LiteralMatch::Exact && have.values().any(|n| *n != 0) {
        return refuse("a string literal that the statement does not hold");
    }
    let mut numbers: HashMap<&str, isize> = HashMap::new();
    for s in &lexed.numbers {
        *numbers.entry(s.as_str()).or_default() += 1;
    }
    for s in &expected.numbers {
        // A sign is a token of its own (`LIMIT -1`).
        let digits = s.trim_start_matches(['-', '+']);
        let n = numbers.entry(digits).or_default();
        *n -= 1;
        if *n < 0 {
            return refuse("a number literal does not come out whole");
        }
    }
    Ok(())
}

/// Adds the literals the engine reads in `sql` (one statement, no comments) to `literals`: for a
/// part of the rendering that was taken out of the translated tree (MySQL's RETURNING emulation
/// renders the RETURNING list on its own).
pub(crate) fn add_literals_of(sql: &str, target: Target, literals: &mut Literals) -> Result<()> {
    let lexed = lex(sql, target)?;
    literals.strings.extend(lexed.strings);
    literals.numbers.extend(lexed.numbers);
    Ok(())
}

/// Refuses `sql` unless it is one statement without comments (for text with no literals of the
/// client's, e.g. `SET TRANSACTION …` or `SAVEPOINT "x"`).
pub(crate) fn check_plain(sql: &str, target: Target) -> Result<()> {
    lex(sql, target).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(strings: &[&str], numbers: &[&str]) -> Literals {
        Literals {
            strings: strings.iter().map(|s| s.to_string()).collect(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn refuses_comment_from_doubled_minus() {
        let sql =
            "UPDATE \"s_t\" SET \"n\" = --5, \"v\" = '\n0, n = 0 WHERE 1=1 --' WHERE \"id\" = 2";
        let e = check(
            sql,
            Target::Sqlite,
            &lits(&["\n0, n = 0 WHERE 1=1 --"], &["5", "2"]),
            LiteralMatch::Exact,
        );
        assert!(
            matches!(e, Err(TranslateError::UnsafeRendering(_))),
            "{e:?}"
        );
    }

    #[test]
    fn accepts_comment_markers_inside_literals() {
        let sql = "SELECT 'a -- b /* c */ ; # $x', \"we\"\"ird\", - -5, 1.5e-3, ?";
        check(
            sql,
            Target::Sqlite,
            &lits(&["a -- b /* c */ ; # $x"], &["5", "1.5e-3"]),
            LiteralMatch::Exact,
        )
        .unwrap();
    }

    #[test]
    fn refuses_literal_that_broke_out() {
        // The tree held one literal `x' OR 'y`; unescaped it reads as two.
        let sql = "SELECT * FROM t WHERE a = 'x' OR 'y'";
        let e = check(
            sql,
            Target::Sqlite,
            &lits(&["x' OR 'y"], &[]),
            LiteralMatch::Exact,
        );
        assert!(e.is_err());
        // A literal the tree does not hold.
        let e = check(
            "SELECT 'a', 'b'",
            Target::MySql,
            &lits(&["a"], &[]),
            LiteralMatch::Exact,
        );
        assert!(e.is_err());
        assert!(check(
            "SELECT 'a', 'b'",
            Target::MySql,
            &lits(&["a"], &[]),
            LiteralMatch::Contains
        )
        .is_ok());
    }

    #[test]
    fn mysql_double_quotes_are_strings_and_hash_is_a_comment() {
        assert!(check(
            "SELECT \"a\"",
            Target::MySql,
            &lits(&[], &[]),
            LiteralMatch::Exact
        )
        .is_err());
        assert!(check(
            "SELECT \"a\"",
            Target::Sqlite,
            &lits(&[], &[]),
            LiteralMatch::Exact
        )
        .is_ok());
        assert!(check_plain("SELECT 1 # x", Target::MySql).is_err());
        assert!(check_plain("SELECT 1; SELECT 2", Target::Sqlite).is_err());
        assert!(check_plain("SELECT 'unterminated", Target::Sqlite).is_err());
        assert!(check_plain("SELECT :name", Target::Sqlite).is_err());
        assert!(check_plain("SELECT `a``b` FROM `t`", Target::MySql).is_ok());
    }
}

#[cfg(test)]
mod cost {
    /// The check against a whole rewrite, on a typical ORM statement. Run by hand:
    /// `cargo test --release --lib rendering_check_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn rendering_check_cost() {
        use super::super::{rewrite_sql, Target};
        let sql = "SELECT users.id, users.name, users.email FROM users \
                   WHERE users.name = 'ada' AND users.created_at > '2024-01-01' \
                   AND users.score BETWEEN 10 AND 20 ORDER BY users.id LIMIT 50";
        let n = 20_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(rewrite_sql(sql, Target::Sqlite).ok());
        }
        let whole = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let out = rewrite_sql(sql, Target::Sqlite).unwrap_or_default();
        let rendered = out.first().map(|r| r.sql.clone()).unwrap_or_default();
        let stmt =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
                .unwrap_or_default();
        let lits = stmt.first().map(super::Literals::of).unwrap_or_default();
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                super::check(
                    &rendered,
                    Target::Sqlite,
                    &lits,
                    super::LiteralMatch::Contains,
                )
                .ok(),
            );
        }
        let check = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "{} bytes: rewrite {whole:.1} µs, of which the rendering check {check:.2} µs",
            sql.len()
        );
    }
}
