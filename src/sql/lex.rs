//! The small lexical pieces of PostgreSQL's scanner that the fast paths (`normalize.rs`,
//! `bulk.rs`) read by hand: quoted strings and identifiers, plain numbers.
//!
//! Owns: exactly PostgreSQL's rules for these pieces with `standard_conforming_strings = on`, and
//! `None` for anything near them that PostgreSQL might read otherwise, so that a caller declines.
//!
//! Must never: accept a form it is not sure of (a prefixed string, a hex or underscored number).

/// Bytes that continue an identifier (PostgreSQL: letters, digits, `_`, `$`, any non-ASCII byte).
pub(crate) fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The end (one past the closing quote) of the `'…'` string or `"…"` identifier whose opening
/// quote is at `i`; a doubled quote stands for itself. `None` when it is not closed.
pub(crate) fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    let q = *b.get(i)?;
    i += 1;
    loop {
        match b.get(i) {
            None => return None,
            Some(&c) if c == q && b.get(i + 1) == Some(&q) => i += 2,
            Some(&c) if c == q => return Some(i + 1),
            Some(_) => i += 1,
        }
    }
}

/// End of a plain number (`12`, `1.5`, `.5`, `1e-3`, `2.`) starting at `i`, or `None` for anything
/// PostgreSQL's scanner may read otherwise (`0x1F`, `1_000`, `1abc`, `1..2`, `1e`).
pub(crate) fn plain_number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    let int = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        if b.get(i + 1) == Some(&b'.') {
            return None;
        }
        i += 1;
        if !digits(&mut i) && !int {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if b.get(i).is_some_and(|&c| is_ident(c) || c == b'.') {
        return None;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces() {
        assert_eq!(quoted_end(b"'a''b' x", 0), Some(6));
        assert_eq!(quoted_end(b"\"a\"\"b\"", 0), Some(6));
        assert_eq!(quoted_end(b"'open", 0), None);
        assert_eq!(plain_number_end(b"1.5e-3)", 0), Some(6));
        assert_eq!(plain_number_end(b".5,", 0), Some(2));
        for junk in ["0x1F", "1_000", "1abc", "1..2", "1e", "1e+"] {
            assert_eq!(plain_number_end(junk.as_bytes(), 0), None, "{junk}");
        }
    }
}
