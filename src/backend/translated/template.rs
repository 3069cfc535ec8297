//! Rewrite templates: one rewrite serves every statement that differs only in the numbers it
//! compares with.
//!
//! Parsing and re-rendering a statement for MySQL/SQLite costs tens of microseconds, and clients
//! that inline their values (psql, psycopg2, pgbench's simple protocol) send a new text for every
//! `WHERE id = 4711`. So integer literals right after a comparison operator are swapped for
//! sentinels (`2147000001`, …) that keep the literal's class (int4 or int8, which decides
//! PostgreSQL's types), the sentinel text is rewritten once and cached, and each use puts the
//! client's literals back into the rendered SQL.
//!
//! Must never: produce SQL that differs from rewriting the original text. A template is only
//! kept when every sentinel comes out exactly once, in the rendered SQL and nowhere else in the
//! rewrite (types, hints, emulation); otherwise the statement is rewritten as it is.

use crate::translate::Rewritten;

/// First sentinel for literals that fit int4, and for those that need int8.
const INT4_BASE: i64 = 2_147_000_000;
const INT8_BASE: i64 = 9_223_000_000_000_000_000;
/// At most this many literals are lifted from one statement.
const MAX_LITERALS: usize = 64;

/// A statement with its comparison literals replaced by sentinels.
pub struct Lifted<'a> {
    /// The text with sentinels: the cache key, and what is rewritten.
    pub key: String,
    /// (sentinel, the client's literal), in order.
    pub literals: Vec<(String, &'a str)>,
}

/// Lifts the integer literals that follow `=`, `<>`, `!=`, `<`, `>`, `<=`, `>=`. `None` when there
/// is nothing to lift or the text has constructs the scan does not follow (backslashes, dollar
/// quotes).
pub fn lift(sql: &str) -> Option<Lifted<'_>> {
    if sql.contains('\\') || sql.contains('$') {
        return None;
    }
    let b = sql.as_bytes();
    let mut key = String::with_capacity(sql.len() + 16);
    let mut literals = Vec::new();
    let mut last_sig: u8 = b' '; // last significant byte outside strings/comments
    let mut copied = 0; // bytes of `sql` already in `key`
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                // Quoted string or identifier; a doubled quote stays inside.
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => return None,
                        Some(&q) if q == c => {
                            if b.get(j + 1) == Some(&c) {
                                j += 2;
                                continue;
                            }
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                last_sig = c;
                i = j + 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/")?;
                i += end + 4;
            }
            b'0'..=b'9'
                if matches!(last_sig, b'=' | b'<' | b'>')
                    && !b
                        .get(i.wrapping_sub(1))
                        .is_some_and(|p| p.is_ascii_alphanumeric() || *p == b'_') =>
            {
                let mut j = i;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                // Only plain integers: a decimal point, exponent or identifier char after the
                // digits means something else.
                let next = b.get(j).copied().unwrap_or(b' ');
                if next == b'.' || next.is_ascii_alphanumeric() || next == b'_' {
                    last_sig = b'0';
                    i = j;
                    continue;
                }
                let text = &sql[i..j];
                let base = match text.parse::<i64>() {
                    Ok(v) if v <= i32::MAX as i64 => INT4_BASE,
                    Ok(_) => INT8_BASE,
                    Err(_) => {
                        last_sig = b'0';
                        i = j;
                        continue;
                    }
                };
                if literals.len() >= MAX_LITERALS {
                    return None;
                }
                let sentinel = (base + literals.len() as i64 + 1).to_string();
                key.push_str(&sql[copied..i]);
                key.push_str(&sentinel);
                copied = j;
                literals.push((sentinel, text));
                last_sig = b'0';
                i = j;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                last_sig = c;
                i += 1;
            }
        }
    }
    if literals.is_empty() {
        return None;
    }
    key.push_str(&sql[copied..]);
    Some(Lifted { key, literals })
}

/// True when every sentinel occurs exactly once in the whole rewrite, and that once is in a
/// rendered `sql`: then putting the literals back into `sql` gives the rewrite of the original.
pub fn is_template(parts: &[Rewritten], literals: &[(String, &str)]) -> bool {
    let everything = format!("{parts:?}");
    literals.iter().all(|(sentinel, _)| {
        occurrences(&everything, sentinel) == 1
            && parts
                .iter()
                .map(|p| occurrences(&p.sql, sentinel))
                .sum::<usize>()
                == 1
    })
}

/// The rewrite of the original statement, from a template.
pub fn fill(template: &[Rewritten], literals: &[(String, &str)]) -> Vec<Rewritten> {
    let mut parts = template.to_vec();
    for p in &mut parts {
        for (sentinel, literal) in literals {
            if let Some(at) = find_number(&p.sql, sentinel) {
                p.sql.replace_range(at..at + sentinel.len(), literal);
            }
        }
    }
    parts
}

/// Occurrences of `number` in `text` not inside a longer run of digits.
fn occurrences(text: &str, number: &str) -> usize {
    let mut n = 0;
    let mut from = 0;
    while let Some(at) = find_number(&text[from..], number) {
        n += 1;
        from += at + number.len();
    }
    n
}

fn find_number(text: &str, number: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(number) {
        let at = from + pos;
        let end = at + number.len();
        let before = at > 0 && b[at - 1].is_ascii_digit();
        let after = b.get(end).is_some_and(u8::is_ascii_digit);
        if !before && !after {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{rewrite_sql, Target};

    #[test]
    fn lifts_comparison_integers_only() {
        let l = lift("SELECT v FROM kv WHERE id = 4711 AND x >= 3000000000 ORDER BY 1 LIMIT 5")
            .expect("lifted");
        assert_eq!(
            l.key,
            "SELECT v FROM kv WHERE id = 2147000001 AND x >= 9223000000000000002 ORDER BY 1 LIMIT 5"
        );
        assert_eq!(l.literals.len(), 2);
        assert!(lift("SELECT 'a = 1', \"b\" FROM t WHERE x = 1.5").is_none());
        assert!(lift("SELECT * FROM t WHERE a = $1").is_none());
        assert!(lift("SELECT * FROM t WHERE a = col2").is_none());
        let l = lift("SELECT * FROM t -- x = 1\nWHERE a = 12 /* = 3 */").expect("lifted");
        assert_eq!(l.literals, vec![("2147000001".to_string(), "12")]);
    }

    #[test]
    fn a_filled_template_equals_the_direct_rewrite() {
        for target in [Target::MySql, Target::Sqlite] {
            let mut templates = 0;
            for sql in [
                "SELECT v FROM kv WHERE id = 4711",
                "SELECT count(*) FROM kv WHERE id > 10 AND id <= 99999999999",
                "UPDATE kv SET v = 'x' WHERE id = 5",
                "DELETE FROM kv WHERE id <> 0 RETURNING id",
                "SELECT id = 3 AS three FROM kv WHERE id = 3",
            ] {
                let direct = rewrite_sql(sql, target).expect("rewrites");
                let l = lift(sql).expect("lifts");
                let template = rewrite_sql(&l.key, target).expect("rewrites");
                if is_template(&template, &l.literals) {
                    templates += 1;
                    assert_eq!(fill(&template, &l.literals), direct, "{sql}");
                }
            }
            assert!(templates >= 4, "{target:?}: only {templates} templates");
        }
        // The point-select shape must be a usable template.
        let l = lift("SELECT v FROM kv WHERE id = 4711").expect("lifts");
        let t = rewrite_sql(&l.key, Target::MySql).expect("rewrites");
        assert!(is_template(&t, &l.literals));
    }
}
