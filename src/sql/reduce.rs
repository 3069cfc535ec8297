//! Large statements made small before the full parse: long lists of literals collapsed.
//!
//! A parse tree costs hundreds of times its text in memory, and nearly all of a large statement
//! is usually one list of literals: `WHERE id IN (1, 2, …)` or the rows of `VALUES (…), (…)`.
//! Literals name no relation, so a list of them can be cut to its first item (`IN (1)`) and
//! literal-only rows after the first dropped, and the small text routes exactly as the large one.
//!
//! Owns: [`reduce`], done on PostgreSQL's own tokens (libpg_query's scanner, a few bytes of memory
//! per byte of text), so what is a literal and where a list ends is PostgreSQL's reading.
//!
//! Must never: collapse anything but bare literals, parameters, `NULL`/`TRUE`/`FALSE`/`DEFAULT`
//! and signs (a cast, `'t'::regclass`, or a function call keeps the whole list), or touch an
//! argument list of a function.

use pg_query::protobuf::{ScanToken, Token};

/// Texts at least this long are reduced before they are parsed.
pub(crate) const REDUCE_MIN_BYTES: usize = 64 * 1024;
/// Texts longer than this are not scanned for reduction (the scan itself would cost too much).
pub(crate) const MAX_REDUCE_BYTES: usize = 32 * 1024 * 1024;

const OPEN: i32 = b'(' as i32;
const CLOSE: i32 = b')' as i32;
const COMMA: i32 = b',' as i32;

fn is_literal(t: &ScanToken) -> bool {
    [
        Token::Iconst,
        Token::Fconst,
        Token::Sconst,
        Token::Bconst,
        Token::Xconst,
        Token::Param,
        Token::NullP,
        Token::TrueP,
        Token::FalseP,
        Token::Default,
    ]
    .iter()
    .any(|k| *k as i32 == t.token)
}

fn is_sign(t: &ScanToken) -> bool {
    t.token == b'-' as i32 || t.token == b'+' as i32
}

/// For a `(` at `open`: when the list holds only literals, the index of its `)` and the index of
/// the last token of its first item.
fn literal_list(toks: &[ScanToken], open: usize) -> Option<(usize, usize)> {
    let mut j = open + 1;
    let mut first_end = None;
    loop {
        while toks.get(j).is_some_and(is_sign) {
            j += 1;
        }
        if !toks.get(j).is_some_and(is_literal) {
            return None;
        }
        first_end.get_or_insert(j);
        j += 1;
        match toks.get(j)?.token {
            COMMA => j += 1,
            CLOSE => return Some((j, first_end?)),
            _ => return None,
        }
    }
}

/// The index of the `)` that closes the `(` at `open`.
fn matching_close(toks: &[ScanToken], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.token {
            OPEN => depth += 1,
            CLOSE => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

fn span(t: &ScanToken) -> Option<(usize, usize)> {
    Some((usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?))
}

/// The text with its literal lists collapsed, or `None` when there is nothing to collapse or the
/// scanner rejects the text.
pub(crate) fn reduce(sql: &str) -> Option<String> {
    let scan = pg_query::scan(sql).ok()?;
    let toks = &scan.tokens;
    // byte ranges to cut out
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let next_is_open = toks.get(i + 1).is_some_and(|t| t.token == OPEN);
        if toks[i].token == Token::InP as i32 && next_is_open {
            // IN (a, b, c) → IN (a)
            if let Some((close, first)) = literal_list(toks, i + 1) {
                if close > first + 1 {
                    cuts.push((span(&toks[first])?.1, span(&toks[close])?.0));
                }
                i = close + 1;
                continue;
            }
        } else if toks[i].token == Token::Values as i32 && next_is_open {
            // VALUES (first row), (literal row), … → VALUES (first row)
            let first_close = matching_close(toks, i + 1)?;
            let mut k = first_close;
            while toks.get(k + 1).is_some_and(|t| t.token == COMMA)
                && toks.get(k + 2).is_some_and(|t| t.token == OPEN)
            {
                match literal_list(toks, k + 2) {
                    Some((close, _)) => k = close,
                    None => break,
                }
            }
            if k > first_close {
                cuts.push((span(&toks[first_close])?.1, span(&toks[k])?.1));
            }
            i = k + 1;
            continue;
        }
        i += 1;
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() / 8);
    let mut copied = 0;
    for (from, to) in cuts {
        out.push_str(sql.get(copied..from)?);
        copied = to;
    }
    out.push_str(sql.get(copied..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_literal_lists_only() {
        assert_eq!(
            reduce("SELECT * FROM t WHERE id IN (1, -2, 'x', $1, NULL) AND b IN (3)").as_deref(),
            Some("SELECT * FROM t WHERE id IN (1) AND b IN (3)")
        );
        assert_eq!(
            reduce(
                "INSERT INTO t VALUES (now(), 1), (1, 2), (DEFAULT, 'a''b') ON CONFLICT DO NOTHING"
            )
            .as_deref(),
            Some("INSERT INTO t VALUES (now(), 1) ON CONFLICT DO NOTHING")
        );
        // a row that is not only literals stops the cut; the rest stays
        assert_eq!(
            reduce("INSERT INTO t VALUES (1), (2), ((SELECT x FROM t_b)), (3)").as_deref(),
            Some("INSERT INTO t VALUES (1), ((SELECT x FROM t_b)), (3)")
        );
        for kept in [
            "SELECT * FROM t WHERE id IN (SELECT id FROM t_b)",
            "SELECT * FROM t WHERE c IN ('t_b'::regclass, 'x')",
            "SELECT f(1, 2, 3) FROM t",
            "SELECT * FROM t WHERE id IN (1)",
            "SELECT E'IN (1,2)' FROM t",
        ] {
            assert_eq!(reduce(kept), None, "{kept}");
        }
    }
}
