//! Large multi-row `INSERT … VALUES`, translated a slice of rows at a time.
//!
//! Owns: finding, without parsing, the header (`INSERT INTO t (cols) VALUES`), the rows and the tail
//! (`ON CONFLICT …`, `RETURNING …`) of a statement too large to parse whole, and translating it as
//! consecutive INSERTs of about [`CHUNK_BYTES`] of rows each. sqlparser's tree costs about 210 bytes
//! per byte of a VALUES list, so a 50 MB INSERT parsed whole would need some 10 GB; in slices the
//! peak is one slice's tree (a few MB) plus the rendered SQL (about the size of the input).
//!
//! The executor runs the slices in one transaction and reports one `INSERT 0 n`, so the client
//! sees one atomic statement.
//!
//! Must never: guess. The scan accepts only plain quoting (`'…'` and `"…"` with doubled quotes,
//! no `E'…'`, no dollar quotes, no `$n`, no comments); anything else makes the statement
//! not sliceable, and the caller refuses it as too large. Each slice is then parsed and translated
//! as a statement of its own, with every check of the normal path (depth, one statement, the
//! rendering check), and must come out as an INSERT of the same shape as the first.

use std::ops::Range;

use super::error::{Result, TranslateError};
use super::{Kind, Rewritten, Target};

/// Rows are grouped into slices of about this many bytes of text.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// A multi-row INSERT cut into its parts (byte ranges of the text).
#[derive(Debug)]
pub(crate) struct Sliced<'a> {
    sql: &'a str,
    /// Up to and including `VALUES`.
    head: Range<usize>,
    /// Each `( … )` row.
    rows: Vec<Range<usize>>,
    /// After the last row.
    tail: Range<usize>,
}

/// Cuts `sql` into header, rows and tail when it is `INSERT INTO … VALUES (…), (…) …` in the plain
/// form this scan follows; `None` otherwise.
pub(crate) fn slice(sql: &str) -> Option<Sliced<'_>> {
    let b = sql.as_bytes();
    let mut i = skip_space(b, 0);
    i = keyword(b, i, "INSERT")?;
    i = keyword(b, skip_space(b, i), "INTO")?;
    // Find the top-level VALUES keyword.
    let mut depth = 0usize;
    let values_end = loop {
        let c = *b.get(i)?;
        match c {
            b'\'' | b'"' => i = plain_quoted(b, i)?,
            b'$' | b'\\' | b';' => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &sql[start..i];
                if word.eq_ignore_ascii_case("SELECT") || word.eq_ignore_ascii_case("DEFAULT") {
                    return None;
                }
                if depth == 0 && word.eq_ignore_ascii_case("VALUES") {
                    break i;
                }
            }
            _ => i += 1,
        }
    };
    let mut rows = Vec::new();
    let mut i = skip_space(b, values_end);
    loop {
        if b.get(i) != Some(&b'(') {
            return None;
        }
        let start = i;
        let mut depth = 0usize;
        loop {
            let c = *b.get(i)?;
            match c {
                b'\'' | b'"' => {
                    // E'…' / U&'…' read backslashes or escapes: not followed here.
                    if c == b'\''
                        && i > 0
                        && matches!(b[i - 1], b'e' | b'E' | b'&')
                        && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'))
                    {
                        return None;
                    }
                    i = plain_quoted(b, i)?;
                    continue;
                }
                b'$' | b';' => return None,
                b'-' if b.get(i + 1) == Some(&b'-') => return None,
                b'/' if b.get(i + 1) == Some(&b'*') => return None,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        rows.push(start..i);
        let j = skip_space(b, i);
        if b.get(j) == Some(&b',') {
            i = skip_space(b, j + 1);
        } else {
            i = j;
            break;
        }
    }
    // The tail: ON CONFLICT … / RETURNING … — no quotes to follow there but plain ones.
    let tail_start = i;
    let mut k = i;
    while k < b.len() {
        match b[k] {
            b'\'' | b'"' => k = plain_quoted(b, k)?,
            b'$' | b';' | b'\\' => return None,
            b'-' if b.get(k + 1) == Some(&b'-') => return None,
            b'/' if b.get(k + 1) == Some(&b'*') => return None,
            _ => k += 1,
        }
    }
    Some(Sliced {
        sql,
        head: 0..values_end,
        rows,
        tail: tail_start..b.len(),
    })
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// `word` (case-insensitive) at `i`, followed by a non-identifier byte: the index after it.
fn keyword(b: &[u8], i: usize, word: &str) -> Option<usize> {
    let end = i + word.len();
    let w = b.get(i..end)?;
    let next_ok = b
        .get(end)
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
    (w.eq_ignore_ascii_case(word.as_bytes()) && next_ok).then_some(end)
}

/// A quoted run with doubled quotes inside: the index after its closing quote.
fn plain_quoted(b: &[u8], start: usize) -> Option<usize> {
    let q = b[start];
    let mut j = start + 1;
    loop {
        match b.get(j) {
            None => return None,
            Some(&x) if x == q => {
                if b.get(j + 1) == Some(&q) {
                    j += 2;
                } else {
                    return Some(j + 1);
                }
            }
            Some(_) => j += 1,
        }
    }
}

impl Sliced<'_> {
    /// Number of rows.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// The statement texts of the slices, each `head rows tail`.
    fn chunks(&self) -> impl Iterator<Item = String> + '_ {
        let head = &self.sql[self.head.clone()];
        let tail = &self.sql[self.tail.clone()];
        let mut next = 0;
        std::iter::from_fn(move || {
            if next >= self.rows.len() {
                return None;
            }
            let mut text = String::with_capacity(CHUNK_BYTES + head.len() + tail.len() + 64);
            text.push_str(head);
            text.push(' ');
            let mut first = true;
            while let Some(r) = self.rows.get(next) {
                if !first && text.len() + (r.end - r.start) > CHUNK_BYTES {
                    break;
                }
                if !first {
                    text.push_str(", ");
                }
                text.push_str(&self.sql[r.clone()]);
                first = false;
                next += 1;
            }
            text.push(' ');
            text.push_str(tail);
            Some(text)
        })
    }
}

/// Translates a sliced INSERT: one [`Rewritten`] per slice, all INSERTs of the same shape.
pub(crate) fn rewrite_sliced(sliced: &Sliced<'_>, target: Target) -> Result<Vec<Rewritten>> {
    let mut out: Vec<Rewritten> = Vec::new();
    for text in sliced.chunks() {
        let mut parts = super::rewrite_one(&text, target, None)?;
        let part = match (parts.pop(), parts.is_empty()) {
            (Some(p), true) => p,
            _ => {
                return Err(TranslateError::StatementCount {
                    found: parts.len() + 1,
                })
            }
        };
        if part.kind != Kind::Insert || !part.params.is_empty() {
            return Err(TranslateError::Invalid(
                "a slice of a large INSERT did not translate to an INSERT".into(),
            ));
        }
        if let Some(first) = out.first() {
            if first.returning != part.returning || first.tables != part.tables {
                return Err(TranslateError::Invalid(
                    "the slices of a large INSERT translated differently".into(),
                ));
            }
        }
        out.push(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_plain_inserts_only() {
        let s =
            slice("INSERT INTO t (a, b) VALUES (1, 'x,(y'')'), (2, \"q\") RETURNING id").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(&s.sql[s.rows[0].clone()], "(1, 'x,(y'')')");
        assert_eq!(&s.sql[s.tail.clone()], "RETURNING id");
        for no in [
            "INSERT INTO t VALUES (E'\\'', 1)",
            "INSERT INTO t VALUES ($$a$$)",
            "INSERT INTO t VALUES ($1)",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t VALUES (1) -- c",
            "INSERT INTO t VALUES (1); DELETE FROM t",
            "UPDATE t SET a = 1",
            "INSERT INTO t VALUES (1, 'unterminated)",
        ] {
            assert!(slice(no).is_none(), "{no}");
        }
    }

    #[test]
    fn translates_in_slices() {
        let rows: Vec<String> = (0..20_000).map(|i| format!("({i}, 'v{i}')")).collect();
        let sql = format!("INSERT INTO t (a, b) VALUES {}", rows.join(", "));
        let s = slice(&sql).unwrap();
        let parts = rewrite_sliced(&s, Target::Sqlite).unwrap();
        assert!(parts.len() > 2, "{}", parts.len());
        let total: usize = parts.iter().map(|p| p.sql.matches("'v").count()).sum();
        assert_eq!(total, 20_000);
        assert!(parts[0]
            .sql
            .starts_with("INSERT INTO \"t\" (\"a\", \"b\") VALUES (0, 'v0')"));
    }
}
