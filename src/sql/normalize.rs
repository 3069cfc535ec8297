//! The cache key of a query string: its text with literal values replaced.
//!
//! Owns: one fast single pass over the bytes that replaces numeric literals with `\x01` and
//! string literals (`'…'`, `E'…'`, `U&'…'`, `B'…'`, `X'…'`) with `\x02`, so that
//! `… WHERE aid = 12345` and `… WHERE aid = 678` share a key. Everything else is copied
//! verbatim: identifiers (also those containing digits, `t1`), quoted identifiers, comments,
//! dollar-quoted strings (a `DO $$ … $$` body can name tables), parameters (`$1`).
//!
//! Keys start with `N` (normalised) or `X` (the exact text, used when the text itself holds a
//! `\x01`/`\x02` byte, or when an analysis read a relation name out of a string literal).
//!
//! Must never: allocate beyond the output buffer, look at anything but bytes, or map two texts
//! that differ outside literals to one key.

/// Prefix of a normalised key.
pub(crate) const NORMALISED: char = 'N';
/// Prefix of an exact-text key.
pub(crate) const EXACT: char = 'X';

const NUMBER: char = '\x01';
const STRING: char = '\x02';

#[inline]
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Writes the exact-text key of `sql` into `out`.
pub(crate) fn exact_into(sql: &str, out: &mut String) {
    out.clear();
    out.reserve(sql.len() + 1);
    out.push(EXACT);
    out.push_str(sql);
}

/// Writes the key of `sql` into `out`: normalised when possible, else exact.
pub(crate) fn key_into(sql: &str, out: &mut String) {
    if !normalize_into(sql, out) {
        exact_into(sql, out);
    }
}

/// Writes the normalised key of `sql` into `out`; false when the text holds a placeholder byte
/// (then only an exact key is safe).
pub(crate) fn normalize_into(sql: &str, out: &mut String) -> bool {
    let b = sql.as_bytes();
    if b.iter().any(|&c| c == 0x01 || c == 0x02) {
        return false;
    }
    out.clear();
    out.reserve(sql.len() + 1);
    out.push(NORMALISED);
    let n = b.len();
    let mut i = 0;
    // start of the pending verbatim run
    let mut run = 0;
    // the byte before `i` belongs to an identifier, keyword, parameter or number
    let mut prev_ident = false;
    while i < n {
        let c = b[i];
        match c {
            b'\'' => {
                // E'…' (the E a token of its own) takes backslash escapes
                let escapes = i >= 1 && (b[i - 1] | 0x20) == b'e' && (i < 2 || !is_ident(b[i - 2]));
                out.push_str(&sql[run..i]);
                i += 1;
                while i < n {
                    match b[i] {
                        b'\\' if escapes => i += 2,
                        b'\'' if i + 1 < n && b[i + 1] == b'\'' => i += 2,
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                i = i.min(n);
                out.push(STRING);
                run = i;
                prev_ident = false;
            }
            b'"' => {
                i += 1;
                while i < n {
                    if b[i] == b'"' {
                        if i + 1 < n && b[i + 1] == b'"' {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                prev_ident = true;
            }
            b'-' if i + 1 < n && b[i + 1] == b'-' => {
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                prev_ident = false;
            }
            b'/' if i + 1 < n && b[i + 1] == b'*' => {
                let mut depth = 0usize;
                while i < n {
                    if b[i] == b'/' && i + 1 < n && b[i + 1] == b'*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && i + 1 < n && b[i + 1] == b'/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                prev_ident = false;
            }
            b'$' if !prev_ident => {
                // $1 parameter, or $tag$ … $tag$ dollar quote (kept verbatim)
                let mut j = i + 1;
                if j < n && b[j].is_ascii_digit() {
                    while j < n && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                    prev_ident = true;
                    continue;
                }
                while j < n
                    && b[j] != b'$'
                    && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80)
                {
                    j += 1;
                }
                if j < n && b[j] == b'$' && !(j > i + 1 && b[i + 1].is_ascii_digit()) {
                    let tag = &b[i..=j];
                    let mut k = j + 1;
                    let mut end = n;
                    while k + tag.len() <= n {
                        if b[k] == b'$' && &b[k..k + tag.len()] == tag {
                            end = k + tag.len();
                            break;
                        }
                        k += 1;
                    }
                    i = end;
                    prev_ident = false;
                } else {
                    i += 1;
                    prev_ident = false;
                }
            }
            b'0'..=b'9' if !prev_ident => {
                out.push_str(&sql[run..i]);
                i = skip_number(b, i);
                out.push(NUMBER);
                run = i;
                prev_ident = false;
            }
            b'.' if !prev_ident && i + 1 < n && b[i + 1].is_ascii_digit() => {
                out.push_str(&sql[run..i]);
                i = skip_number(b, i);
                out.push(NUMBER);
                run = i;
                prev_ident = false;
            }
            _ => {
                prev_ident = is_ident(c);
                i += 1;
            }
        }
    }
    out.push_str(&sql[run..n]);
    true
}

/// End of the numeric literal starting at `i`: `123`, `1_000`, `1.5`, `.5`, `1e-3`, `0x1F`.
fn skip_number(b: &[u8], mut i: usize) -> usize {
    let n = b.len();
    if b[i] == b'0'
        && i + 2 < n
        && matches!(b[i + 1] | 0x20, b'x' | b'o' | b'b')
        && b[i + 2].is_ascii_alphanumeric()
    {
        i += 2;
        while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < n && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < n && b[i] == b'.' && !(i + 1 < n && b[i + 1] == b'.') {
        i += 1;
        while i < n && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < n && (b[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < n && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < n && b[j].is_ascii_digit() {
            i = j;
            while i < n && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> String {
        let mut s = String::new();
        key_into(sql, &mut s);
        s
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"),
            "NSELECT abalance FROM pgbench_accounts WHERE aid = \x01;"
        );
        assert_eq!(
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"),
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 7;")
        );
        assert_eq!(
            key("SELECT 1.5, .5, 1e-3, 0x1F, 1_000"),
            "NSELECT \x01, \x01, \x01, \x01, \x01"
        );
        assert_eq!(key("SELECT 'a''b', 'c'"), "NSELECT \x02, \x02");
        assert_eq!(key("SELECT E'a\\'b', 'x'"), "NSELECT E\x02, \x02");
        assert_eq!(key("SELECT e'\\\\', 1"), "NSELECT e\x02, \x01");
        // standard strings have no backslash escapes
        assert_eq!(key("SELECT 'a\\', 2"), "NSELECT \x02, \x01");
        assert_eq!(
            key("SELECT U&'\\0041', B'101', X'1F'"),
            "NSELECT U&\x02, B\x02, X\x02"
        );
        assert_eq!(key("SELECT 'unterminated"), "NSELECT \x02");
    }

    #[test]
    fn verbatim_parts() {
        assert_eq!(
            key("SELECT * FROM t1 JOIN t2 ON t1.c2 = t2.c3"),
            "NSELECT * FROM t1 JOIN t2 ON t1.c2 = t2.c3"
        );
        assert_eq!(
            key("SELECT \"a'1\" FROM \"T 2\""),
            "NSELECT \"a'1\" FROM \"T 2\""
        );
        assert_eq!(key("SELECT $1, $23 FROM t"), "NSELECT $1, $23 FROM t");
        assert_eq!(key("SELECT 1 -- it's 2\n"), "NSELECT \x01 -- it's 2\n");
        assert_eq!(
            key("/* 'x' /* 1 */ 2 */ SELECT 3"),
            "N/* 'x' /* 1 */ 2 */ SELECT \x01"
        );
        assert_eq!(
            key("DO $$ UPDATE a SET x = 1 $$"),
            "NDO $$ UPDATE a SET x = 1 $$"
        );
        assert_eq!(key("DO $f$ 'x' $$ 1 $f$, 2"), "NDO $f$ 'x' $$ 1 $f$, \x01");
        assert_eq!(key("SELECT a$1 FROM x$"), "NSELECT a$1 FROM x$");
        assert_eq!(key("SELECT 1from users"), "NSELECT \x01from users");
        assert_ne!(key("SELECT 1from users"), key("SELECT 1xyz users"));
        assert_eq!(key("SELECT 'é', ü1"), "NSELECT \x02, ü1");
    }

    #[test]
    fn placeholder_bytes_force_exact() {
        assert_eq!(key("SELECT '\x01'"), "XSELECT '\x01'");
        assert_eq!(key("SELECT 1 /* \x02 */"), "XSELECT 1 /* \x02 */");
        assert_ne!(key("SELECT \x02"), key("SELECT 'a'"));
    }

    #[test]
    fn texts_differing_outside_literals_differ() {
        let pairs = [
            ("SELECT * FROM a WHERE x = 1", "SELECT * FROM b WHERE x = 1"),
            ("SELECT \"1\" FROM a", "SELECT \"2\" FROM a"),
            ("SELECT $1 FROM a", "SELECT $2 FROM a"),
            ("DO $$ INSERT INTO a $$", "DO $$ INSERT INTO b $$"),
            ("SELECT 1 /* a */", "SELECT 1 /* b */"),
            ("SELECT t1.x FROM t1", "SELECT t2.x FROM t2"),
        ];
        for (a, b) in pairs {
            assert_ne!(key(a), key(b), "{a} / {b}");
        }
    }
}
