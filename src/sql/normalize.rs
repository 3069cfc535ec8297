//! The cache key of a query string: its text with literal values replaced.
//!
//! Owns: building the key from PostgreSQL's own scanner (libpg_query's `scan`), so that
//! `… WHERE aid = 12345` and `… WHERE aid = 678` share a key, and nothing that PostgreSQL reads
//! as code, an identifier or a comment is ever taken for a literal. Every literal token (numbers,
//! `'…'`, `E'…'`, `U&'…'`, `B'…'`, `X'…'`, dollar-quoted strings) becomes one placeholder byte;
//! everything else, comments included (they carry routing hints), is copied verbatim.
//!
//! Keys start with `N` (normalised) or `X` (the exact text: when the text holds the placeholder
//! byte itself, when the scanner rejects it, or when an analysis read a relation name or a body
//! out of a string literal).
//!
//! Must never: map two texts that differ outside literal tokens to one key.

use pg_query::protobuf::Token;

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
