//! Routing a very large multi-row `INSERT … VALUES` from its head.
//!
//! A parse tree costs far more memory than its text, and bulk loads of many megabytes are normal
//! traffic. Such a statement is routed by its head alone (`INSERT INTO name [(columns)]`) when,
//! and only when, everything after `VALUES` is rows of literals: numbers, standard strings,
//! parameters, `NULL`/`TRUE`/`FALSE`/`DEFAULT`, signs and casts to plain types. Nothing in such a
//! tail can name a relation or end the statement.
//!
//! Owns: [`head_statement`], a strict single-pass check of that shape in constant memory that
//! returns a small equivalent statement for PostgreSQL's parser to analyse (the head with one row
//! of `NULL`s). Anything it does not recognise (a comment, `E'…'`, a dollar quote, a function
//! call, `ON CONFLICT`, `RETURNING`, a second statement, a cast to `regclass`) makes it decline,
//! and the statement gets the full parse or, beyond its size limit, a clear error.
//!
//! Must never: accept a token it does not fully understand. Its lexing rules are PostgreSQL's
//! for the small subset it accepts (with `standard_conforming_strings = on`, which bindproxy
//! enforces); for everything else it declines.

use super::lex::{plain_number_end, quoted_end};

/// Statements at least this long are routed by their head when they have the shape.
pub(crate) const BULK_MIN_BYTES: usize = 64 * 1024;

/// Type names a value in the tail may be cast to.
const PLAIN_TYPES: &[&str] = &[
    "int",
    "integer",
    "int2",
    "int4",
    "int8",
    "smallint",
    "bigint",
    "numeric",
    "decimal",
    "real",
    "float",
    "float4",
    "float8",
    "double",
    "precision",
    "text",
    "varchar",
    "character",
    "varying",
    "char",
    "bool",
    "boolean",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "with",
    "without",
    "zone",
    "uuid",
    "json",
    "jsonb",
    "bytea",
    "interval",
    "inet",
    "cidr",
    "money",
    "bit",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok<'a> {
    Word(&'a str),
    QuotedIdent,
    Number,
    Str,
    Param,
    Punct(u8),
    Cast,
}

struct Lexer<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Lexer<'a> {
    /// The next token; `Ok(None)` at the end; `Err(())` for anything outside the subset.
    fn next(&mut self) -> Result<Option<(usize, Tok<'a>)>, ()> {
        let b = self.s.as_bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
            self.i += 1;
        }
        let start = self.i;
        let Some(&c) = b.get(self.i) else {
            return Ok(None);
        };
        // ASCII only: a non-ASCII byte anywhere outside a quoted piece makes the check decline
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
        let tok = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while self.i < b.len() && is_ident(b[self.i]) {
                    self.i += 1;
                }
                // E'…', U&'…', B'…', X'…', N'…' and U&"…" are outside the subset
                if matches!(b.get(self.i), Some(b'\'' | b'&' | b'"')) {
                    return Err(());
                }
                Tok::Word(&self.s[start..self.i])
            }
            b'"' => {
                self.i = quoted_end(b, self.i).ok_or(())?;
                Tok::QuotedIdent
            }
            b'\'' => {
                self.i = quoted_end(b, self.i).ok_or(())?;
                Tok::Str
            }
            b'0'..=b'9' | b'.'
                if c != b'.' || b.get(self.i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                self.i = plain_number_end(b, self.i).ok_or(())?;
                Tok::Number
            }
            b'$' => {
                self.i += 1;
                let from = self.i;
                while self.i < b.len() && b[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                if self.i == from || b.get(self.i).is_some_and(|&c| is_ident(c)) {
                    return Err(());
                }
                Tok::Param
            }
            b':' if b.get(self.i + 1) == Some(&b':') => {
                self.i += 2;
                Tok::Cast
            }
            b'(' | b')' | b',' | b'.' | b';' | b'[' | b']' => {
                self.i += 1;
                Tok::Punct(c)
            }
            b'+' | b'-' => {
                // a sign; `--` would be a comment and `+-`… an operator of its own
                let next = b.get(self.i + 1).copied().unwrap_or(b' ');
                if b"+-*/<>=~!@#%^&|`?".contains(&next) {
                    return Err(());
                }
                self.i += 1;
                Tok::Punct(c)
            }
            _ => return Err(()),
        };
        Ok(Some((start, tok)))
    }
}

fn is_word(t: Option<(usize, Tok)>, w: &str) -> bool {
    matches!(t, Some((_, Tok::Word(x))) if x.eq_ignore_ascii_case(w))
}

/// For a large `INSERT … VALUES` of literal rows: the statement's head with one row of `NULL`s,
/// which routes exactly as the whole does. `None` when the text does not have that shape.
pub(crate) fn head_statement(sql: &str) -> Option<String> {
    let mut lx = Lexer { s: sql, i: 0 };
    let mut next = || lx.next().ok();
    if !is_word(next()?, "insert") || !is_word(next()?, "into") {
        return None;
    }
    // the head: names, dots, AS alias, a column list, OVERRIDING … VALUE
    let values_at;
    let mut depth = 0usize;
    loop {
        let t = next()??;
        match t.1 {
            Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("values") => {
                values_at = t.0;
                break;
            }
            Tok::Word(w)
                if w.eq_ignore_ascii_case("select") || w.eq_ignore_ascii_case("default") =>
            {
                return None
            }
            Tok::Word(_) | Tok::QuotedIdent => {}
            Tok::Punct(b'.') | Tok::Punct(b',') => {}
            Tok::Punct(b'(') if depth == 0 => depth = 1,
            Tok::Punct(b')') if depth == 1 => depth = 0,
            _ => return None,
        }
    }
    // the tail: ( value, … ) [, ( … )]* [;]
    let mut columns = 0usize;
    let mut first_row = true;
    loop {
        match next()??.1 {
            Tok::Punct(b'(') => {}
            _ => return None,
        }
        let mut n = 0usize;
        loop {
            // a value: signs, then a literal, then casts
            let mut t = next()??;
            while matches!(t.1, Tok::Punct(b'+') | Tok::Punct(b'-')) {
                t = next()??;
            }
            match t.1 {
                Tok::Number | Tok::Str | Tok::Param => {}
                Tok::Word(w)
                    if ["null", "true", "false", "default"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k)) => {}
                _ => return None,
            }
            n += 1;
            let mut t = next()??;
            while t.1 == Tok::Cast {
                let mut words = 0;
                t = next()??;
                loop {
                    match t.1 {
                        Tok::Word(w) if PLAIN_TYPES.iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                            words += 1;
                            t = next()??;
                        }
                        Tok::Punct(b'(') if words > 0 => {
                            // a typmod: numbers and commas
                            loop {
                                t = next()??;
                                match t.1 {
                                    Tok::Number | Tok::Punct(b',') => {}
                                    Tok::Punct(b')') => break,
                                    _ => return None,
                                }
                            }
                            t = next()??;
                        }
                        Tok::Punct(b'[') if words > 0 => {
                            if next()??.1 != Tok::Punct(b']') {
                                return None;
                            }
                            t = next()??;
                        }
                        _ if words > 0 => break,
                        _ => return None,
                    }
                }
            }
            match t.1 {
                Tok::Punct(b',') => continue,
                Tok::Punct(b')') => break,
                _ => return None,
            }
        }
        if first_row {
            columns = n;
            first_row = false;
        }
        match lx_next_after_row(&mut next)? {
            RowEnd::More => {}
            RowEnd::End => break,
        }
    }
    let nulls = vec!["NULL"; columns.max(1)].join(", ");
    Some(format!("{} VALUES ({nulls})", sql[..values_at].trim_end()))
}

enum RowEnd {
    More,
    End,
}

fn lx_next_after_row<'a>(
    next: &mut impl FnMut() -> Option<Option<(usize, Tok<'a>)>>,
) -> Option<RowEnd> {
    match next()? {
        Some((_, Tok::Punct(b','))) => Some(RowEnd::More),
        None => Some(RowEnd::End),
        Some((_, Tok::Punct(b';'))) => match next()? {
            None => Some(RowEnd::End),
            Some(_) => None,
        },
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_literal_rows() {
        assert_eq!(
            head_statement("INSERT INTO s.t (a, \"B\") VALUES (1, 'x''y'), (-2.5e3, $1::varchar(10)), (NULL, DEFAULT);").as_deref(),
            Some("INSERT INTO s.t (a, \"B\") VALUES (NULL, NULL)")
        );
    }

    #[test]
    fn declines_everything_else() {
        for sql in [
            "INSERT INTO t VALUES (E'\\'')",
            "INSERT INTO t VALUES (1) RETURNING id",
            "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES ((SELECT 1 FROM t_b))",
            "INSERT INTO t VALUES ('t_b'::regclass)",
            "INSERT INTO t VALUES (1); UPDATE w_b SET x = 1",
            "INSERT INTO t VALUES (1 --\n)",
            "INSERT INTO t VALUES ($$x$$)",
            "INSERT INTO t VALUES (f(1))",
            "INSERT INTO t VALUES ('unterminated)",
            "INSERT INTO t SELECT 1",
            "INSERT INTO U&\"t\" VALUES (1)",
            "UPDATE t SET a = 1",
        ] {
            assert_eq!(head_statement(sql), None, "{sql}");
        }
    }
}
