//! Routing hints: `/* bindproxy: bind=orders */` or `-- bindproxy: bind=orders` in a comment.
//!
//! Owns: finding such comments with PostgreSQL's own scanner (a hint-like text inside a string
//! literal is not a hint) and reading the bind name out of them.
//!
//! The router honours a hint only where the tables of a statement cannot be determined (dynamic
//! SQL, bodies in other languages) or where there are none; a hint that contradicts the tables is
//! an error. This module only reads hints.
//!
//! Must never: look inside literals, or accept a hint it does not fully understand.

use pg_query::protobuf::Token;

use super::parse::AnalysisError;

const MARKER: &str = "bindproxy:";

/// The bind named by the query string's routing hint, if it has one. Two hints naming different
/// binds, or a hint that is not `bind=NAME`, are errors.
pub(crate) fn hint_of(sql: &str) -> Result<Option<String>, AnalysisError> {
    if !sql.contains(MARKER) {
        return Ok(None);
    }
    let Ok(scan) = pg_query::scan(sql) else {
        return Ok(None);
    };
    let mut found: Option<String> = None;
    for t in &scan.tokens {
        if t.token != Token::CComment as i32 && t.token != Token::SqlComment as i32 {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        let Some(comment) = sql.get(start..end) else {
            continue;
        };
        let Some(at) = comment.find(MARKER) else {
            continue;
        };
        let body = comment[at + MARKER.len()..].trim_end_matches("*/").trim();
        let bad = |reason: &str| AnalysisError::BadHint {
            hint: comment.to_owned(),
            reason: reason.to_owned(),
        };
        let bind = match body.split_once('=') {
            Some((key, value)) if key.trim() == "bind" => value.trim(),
            _ => return Err(bad("expected `bindproxy: bind=NAME`")),
        };
        if bind.is_empty()
            || !bind
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("the bind name must be letters, digits, `_` or `-`"));
        }
        match &found {
            Some(other) if other != bind => {
                return Err(bad(&format!("another hint names bind {other:?}")))
            }
            _ => found = Some(bind.to_owned()),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert_eq!(hint_of("SELECT 1").ok(), Some(None));
        assert_eq!(
            hint_of("/* bindproxy: bind=orders */ DO $$ BEGIN END $$").ok(),
            Some(Some("orders".into()))
        );
        assert_eq!(
            hint_of("SELECT 1 -- bindproxy: bind=b\n").ok(),
            Some(Some("b".into()))
        );
        assert_eq!(hint_of("SELECT '/* bindproxy: bind=b */'").ok(), Some(None));
        assert!(hint_of("/* bindproxy: route=b */ SELECT 1").is_err());
        assert!(hint_of("/* bindproxy: bind=a */ /* bindproxy: bind=b */ SELECT 1").is_err());
    }
}
