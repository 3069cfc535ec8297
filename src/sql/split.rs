//! Statement boundaries, as PostgreSQL's own scanner sees them.
//!
//! Owns: [`split_statements`], the one splitter every bind uses, so that routing (which reads the
//! spans PostgreSQL's parser gives) and execution on MySQL/SQLite binds always agree on what one
//! statement is: `1E'\'; UPDATE …; '` or `$é$; UPDATE …; $é$` can never be one statement for the
//! router and three for an engine.
//!
//! Must never: split where PostgreSQL would not, or return a statement that is only whitespace
//! and comments.

use super::parse::AnalysisError;

/// The statements of a query string, as slices of it, without their `;`. Empty statements
/// (only whitespace or comments) are left out.
pub fn split_statements(sql: &str) -> Result<Vec<&str>, AnalysisError> {
    if sql.as_bytes().contains(&0) {
        return Err(AnalysisError::NulByte);
    }
    let parts = pg_query::split_with_scanner(sql).map_err(|e| AnalysisError::Syntax {
        message: match e {
            pg_query::Error::Split(m) | pg_query::Error::Scan(m) | pg_query::Error::Parse(m) => m,
            other => other.to_string(),
        },
    })?;
    Ok(parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .filter(|p| {
            // only a piece with a comment in it can be nothing but comments: scan just those
            if !p.contains("--") && !p.contains("/*") {
                return true;
            }
            pg_query::scan(p)
                .map(|s| {
                    s.tokens.iter().any(|t| {
                        t.token != pg_query::protobuf::Token::CComment as i32
                            && t.token != pg_query::protobuf::Token::SqlComment as i32
                    })
                })
                .unwrap_or(true)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_postgres() {
        assert_eq!(
            split_statements("SELECT 1; SELECT ';'; -- c\n").ok(),
            Some(vec!["SELECT 1", " SELECT ';'"])
        );
        // one statement for PostgreSQL: the E'…' string runs to the end
        // PostgreSQL 18's scanner rejects `1E` before a quote outright: no statement runs
        let s =
            "SET application_name = 1E'\\'; UPDATE w_b SET who = 'hit'; SET application_name = '";
        assert!(split_statements(s).is_err());
        let s = "SET application_name = $é$; UPDATE w_b SET who='hit'; $é$";
        assert_eq!(split_statements(s).map(|v| v.len()).ok(), Some(1));
        assert_eq!(split_statements("/* x */ ; ;").ok(), Some(vec![]));
    }
}
