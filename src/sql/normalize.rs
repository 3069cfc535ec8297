//! The cache key of a query string: its text with literal values replaced.
//!
//! Owns: building the key from PostgreSQL's own scanner (libpg_query's `scan`), so that
//! `… WHERE aid = 12345` and `… WHERE aid = 678` share a key, and nothing that PostgreSQL reads
//! as code, an identifier or a comment is ever taken for a literal. Every literal token (numbers,
//! `'…'`, `E'…'`, `U&'…'`, `B'…'`, `X'…'`, dollar-quoted strings) becomes one placeholder byte;
//! everything else, comments included (they carry routing hints), is copied verbatim.
//!
//! Most statements take a fast path: a single pass over the bytes that handles exactly the subset
//! of PostgreSQL's lexical rules where it cannot differ from the scanner (standard `'…'` strings,
//! `"…"` identifiers, `--` comments, `$n` parameters, plain numbers). A text with anything else in
//! it (`/*`, `E'…'`, `U&…`, dollar quotes, a carriage return, a number glued to a letter) goes to
//! the scanner. The unit tests check that both give the same key wherever the fast path answers.
//!
//! Keys start with `N` (normalised) or `X` (the exact text: when the text holds the placeholder
//! byte itself, when the scanner rejects it, or when an analysis read a relation name or a body
//! out of a string literal).
//!
//! Must never: map two texts that differ outside literal tokens to one key.

use pg_query::protobuf::Token;

use super::lex::{is_ident, plain_number_end, quoted_end};

/// Prefix of a normalised key.
pub(crate) const NORMALISED: char = 'N';
/// Prefix of an exact-text key.
pub(crate) const EXACT: char = 'X';

const LITERAL: char = '\x01';

/// Writes the exact-text key of `sql` into `out`.
pub(crate) fn exact_into(sql: &str, out: &mut String) {
    out.clear();
    out.reserve(sql.len() + 1);
    out.push(EXACT);
    out.push_str(sql);
}

/// Writes the normalised key of `sql` into `out`. Returns false, leaving `out` unspecified, when
/// only the exact key is safe or nothing would be replaced (the exact key is then the key).
pub(crate) fn normalize_into(sql: &str, out: &mut String) -> bool {
    if sql.contains(LITERAL) {
        return false;
    }
    match fast_into(sql, out) {
        Some(replaced) => replaced,
        None => scanner_into(sql, out),
    }
}

/// The fast path: `None` when the text leaves the subset it reads exactly as PostgreSQL does.
fn fast_into(sql: &str, out: &mut String) -> Option<bool> {
    let b = sql.as_bytes();
    let n = b.len();
    out.clear();
    out.reserve(n + 1);
    out.push(NORMALISED);
    let (mut i, mut run, mut replaced) = (0, 0, false);
    // the byte before `i` belongs to an identifier, keyword or parameter
    let mut prev_ident = false;
    while i < n {
        let c = b[i];
        match c {
            b'\r' => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'&' if matches!(b.get(i + 1), Some(b'\'' | b'"')) => return None,
            b'\'' => {
                // a letter or digit right before the quote makes a prefixed string (E'', B'', …)
                if prev_ident {
                    return None;
                }
                out.push_str(&sql[run..i]);
                i = quoted_end(b, i)?;
                out.push(LITERAL);
                replaced = true;
                run = i;
                prev_ident = false;
            }
            b'"' => {
                i = quoted_end(b, i)?;
                prev_ident = true;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                prev_ident = false;
            }
            b'$' if !prev_ident => {
                // only `$n` parameters; a dollar quote goes to the scanner
                let mut j = i + 1;
                while j < n && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j == i + 1 || b.get(j).is_some_and(|&c| is_ident(c)) {
                    return None;
                }
                i = j;
                prev_ident = true;
            }
            b'0'..=b'9' | b'.'
                if !prev_ident && (c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                out.push_str(&sql[run..i]);
                i = plain_number_end(b, i)?;
                out.push(LITERAL);
                replaced = true;
                run = i;
                prev_ident = false;
            }
            _ => {
                prev_ident = is_ident(c);
                i += 1;
            }
        }
    }
    out.push_str(&sql[run..]);
    Some(replaced)
}

/// The key from PostgreSQL's scanner, for any text.
fn scanner_into(sql: &str, out: &mut String) -> bool {
    let Ok(scan) = pg_query::scan(sql) else {
        return false;
    };
    out.clear();
    out.reserve(sql.len() + 1);
    out.push(NORMALISED);
    let mut copied = 0;
    let mut replaced = false;
    for t in &scan.tokens {
        let literal = [
            Token::Iconst,
            Token::Fconst,
            Token::Sconst,
            Token::Usconst,
            Token::Bconst,
            Token::Xconst,
        ]
        .iter()
        .any(|k| *k as i32 == t.token);
        if !literal {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            return false;
        };
        let (Some(before), true) = (sql.get(copied..start), sql.is_char_boundary(end)) else {
            return false;
        };
        out.push_str(before);
        out.push(LITERAL);
        copied = end;
        replaced = true;
    }
    match sql.get(copied..) {
        Some(rest) => out.push_str(rest),
        None => return false,
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> Option<String> {
        let mut s = String::new();
        normalize_into(sql, &mut s).then_some(s)
    }

    /// Wherever the fast path answers, the scanner gives the same key.
    fn agree(sql: &str) -> bool {
        let (mut fast, mut slow) = (String::new(), String::new());
        let Some(r) = fast_into(sql, &mut fast) else {
            return false;
        };
        let s = scanner_into(sql, &mut slow);
        if s || r {
            assert_eq!((r, &fast), (s, &slow), "{sql:?}");
        }
        true
    }

    #[test]
    fn fast_path_agrees_with_the_scanner() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
            "SELECT 'a''b', \"x\"\"y\", 1.5, .5, 2., 1e-3, 3E+4 FROM t WHERE a = $1 -- c'\n",
            "SELECT a$1, $2, 'é' FROM \"t\" WHERE x = '--' AND y = 'it''s'",
            "SELECT 1e5x, 0x1F, 1_000, 1..2, E'a', U&'b', $$c$$, /* d */ 1",
            "INSERT INTO t VALUES (-1, +2, 3-4, 5*6, 'a\\b')",
        ] {
            agree(sql);
        }
        assert!(agree(
            "SELECT 'a''b', \"x\"\"y\", 1.5, 1e-3 FROM t WHERE a = $1 -- c'\n"
        ));
        // every corpus statement
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for chunk in text.split(";;;;") {
                agree(chunk);
            }
        }
        // random texts over the characters that matter
        let alphabet: Vec<char> = "ab1e.''\"-$/*\n\r&Ex_  00;;\\((".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut compared = 0;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let mut s = String::from("SELECT ");
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            compared += usize::from(agree(&s));
        }
        assert!(
            compared > 2_000,
            "the fast path answered only {compared} random texts"
        );
    }

    #[test]
    fn literals_only() {
        assert_eq!(
            key("SELECT * FROM t WHERE a = 1").as_deref(),
            Some("NSELECT * FROM t WHERE a = \x01")
        );
        assert_eq!(
            key("SELECT E'a\\'b', (SELECT 1 FROM t_b) --'").as_deref(),
            Some("NSELECT \x01, (SELECT \x01 FROM t_b) --'")
        );
        assert_eq!(key("SELECT * FROM t1"), None);
        assert_ne!(
            key("SELECT 1 FROM t_a /* ' */"),
            key("SELECT 1 FROM t_b /* ' */")
        );
        assert_eq!(key("SELECT $$x$$ FROM t"), key("SELECT $a$y$a$ FROM t"));
        assert_eq!(key("SELECT 'abc"), None);
    }
}
