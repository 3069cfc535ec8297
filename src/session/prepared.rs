//! SQL-level prepared statements (`PREPARE name AS …`, `EXECUTE name`, `DEALLOCATE name`): reading
//! the name a statement refers to, so that the session can send `EXECUTE` and `DEALLOCATE` to the
//! bind that holds the statement.
//!
//! Owns: recognising these three statements from their leading words and folding the name as
//! PostgreSQL does (unquoted: lower case; quoted: as written, `""` for a quote).
//!
//! Must never: decide a bind (the session does), or look past the name (the rest of the statement
//! is the backend's business).

/// A statement about a SQL-level prepared statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SqlPrepared {
    Prepare(String),
    Execute(String),
    Deallocate(String),
    DeallocateAll,
}

/// What `sql` (one statement) does to a SQL-level prepared statement, if anything.
pub(super) fn classify(sql: &str) -> Option<SqlPrepared> {
    let mut words = Words {
        rest: sql,
        last_was_plain: false,
    };
    let first = words.next()?;
    match first.as_str() {
        "prepare" => {
            let name = words.next()?;
            // `PREPARE TRANSACTION 'id'` is two-phase commit, not a statement name.
            if name == "transaction" && words.rest.trim_start().starts_with(['\'', 'E', 'e']) {
                return None;
            }
            Some(SqlPrepared::Prepare(name))
        }
        "execute" => Some(SqlPrepared::Execute(words.next()?)),
        "deallocate" => {
            let mut name = words.next()?;
            if name == "prepare" {
                name = words.next()?;
            }
            if name == "all" && words.last_was_plain {
                Some(SqlPrepared::DeallocateAll)
            } else {
                Some(SqlPrepared::Deallocate(name))
            }
        }
        _ => None,
    }
}

/// The leading identifiers of a statement, folded as PostgreSQL folds them.
struct Words<'a> {
    rest: &'a str,
    last_was_plain: bool,
}

impl Words<'_> {
    fn next(&mut self) -> Option<String> {
        self.skip_blanks();
        let s = self.rest;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                        continue;
                    }
                    self.rest = &quoted[i + 1..];
                    self.last_was_plain = false;
                    return Some(name);
                }
                name.push(c);
            }
            return None;
        }
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        self.rest = &s[end..];
        self.last_was_plain = true;
        Some(s[..end].to_ascii_lowercase())
    }

    /// Skips whitespace and comments (`-- …` and `/* … */`, nested as PostgreSQL nests them).
    fn skip_blanks(&mut self) {
        loop {
            let s = self.rest.trim_start();
            if let Some(line) = s.strip_prefix("--") {
                self.rest = line.find('\n').map_or("", |i| &line[i + 1..]);
            } else if s.starts_with("/*") {
                self.rest = skip_block_comment(s);
            } else {
                self.rest = s;
                return;
            }
        }
    }
}

/// The text after the block comment that `s` starts with (all of it consumed if unterminated).
fn skip_block_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return &s[i..];
                }
            }
            _ => i += 1,
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folded_like_postgresql() {
        assert_eq!(
            classify("PREPARE Q1 AS SELECT 1"),
            Some(SqlPrepared::Prepare("q1".into()))
        );
        assert_eq!(
            classify("prepare \"Q\"\"1\"(int) as select $1"),
            Some(SqlPrepared::Prepare("Q\"1".into()))
        );
        assert_eq!(
            classify("/* c /* nested */ */ -- x\n EXECUTE q1(2)"),
            Some(SqlPrepared::Execute("q1".into()))
        );
        assert_eq!(
            classify("DEALLOCATE PREPARE q1"),
            Some(SqlPrepared::Deallocate("q1".into()))
        );
        assert_eq!(classify("deallocate all"), Some(SqlPrepared::DeallocateAll));
        assert_eq!(
            classify("deallocate \"all\""),
            Some(SqlPrepared::Deallocate("all".into()))
        );
        assert_eq!(classify("PREPARE TRANSACTION 'x'"), None);
        assert_eq!(classify("SELECT 1"), None);
        assert_eq!(classify("EXECUTE"), None);
        assert_eq!(classify("/* unterminated"), None);
    }
}
