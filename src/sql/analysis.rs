//! The analysis of one query string: its statements, the relations each touches, their kinds.
//!
//! Owns: [`Analysis`], [`StatementInfo`] and [`analyze_uncached`]: tokenize once, split into
//! statements, parse each with sqlparser (PostgreSqlDialect) and collect its relations, or fall
//! back to the token scan when sqlparser rejects or mis-parses it.
//!
//! Must never: cache (that is `cache.rs`), decide a bind (that is the router), or panic on input.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::fallback;
use super::kind::{kind_of, StatementKind};
use super::name::TableName;
use super::tables;

/// Everything the router and the session need to know about one query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// One entry per statement, in order; empty for an empty query (only whitespace/comments).
    pub statements: Vec<StatementInfo>,
    /// False when at least one statement went through the token-scan fallback.
    pub parsed: bool,
}

/// One statement of a query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInfo {
    /// Relations named (tables, views, sequences, indexes), folded, sorted and deduplicated.
    pub tables: Vec<TableName>,
    /// What kind of statement it is.
    pub kind: StatementKind,
}

impl Analysis {
    /// Every relation of every statement, sorted and deduplicated.
    pub fn all_tables(&self) -> Vec<TableName> {
        let mut v: Vec<TableName> = self
            .statements
            .iter()
            .flat_map(|s| s.tables.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Analyses a query string without the cache. Never fails: what sqlparser cannot parse is
/// token-scanned and reported with `parsed: false`.
pub fn analyze_uncached(sql: &str) -> Analysis {
    analyze_inner(sql).0
}

/// The analysis, and whether it read a string literal as a relation name (so it must not be
/// shared between texts that differ in literal values).
pub(crate) fn analyze_inner(sql: &str) -> (Analysis, bool) {
    let dialect = PostgreSqlDialect {};
    let (tokens, crude) = fallback::tokenize(sql);
    let mut statements = Vec::new();
    let mut parsed = !crude;
    let mut literal_names = crude;
    for range in fallback::split(&tokens) {
        let chunk = &tokens[range];
        let sig = fallback::significant(chunk);
        if sig.is_empty() {
            continue;
        }
        let kind = kind_of(&sig);
        let from_parser = Parser::new(&dialect)
            .with_tokens(chunk.to_vec())
            .parse_statements()
            .ok()
            .and_then(|stmts| {
                let mut acc = tables::Collected::default();
                for s in &stmts {
                    let mut c = tables::collect(s);
                    if c.needs_fallback {
                        return None;
                    }
                    acc.tables.append(&mut c.tables);
                    acc.literal_names |= c.literal_names;
                }
                Some(acc)
            });
        let collected = match from_parser {
            Some(c) => c,
            None => {
                parsed = false;
                fallback::scan(&sig)
            }
        };
        literal_names |= collected.literal_names;
        let mut tables = collected.tables;
        tables.sort();
        tables.dedup();
        statements.push(StatementInfo { tables, kind });
    }
    (Analysis { statements, parsed }, literal_names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(a: &Analysis) -> Vec<Vec<String>> {
        a.statements
            .iter()
            .map(|s| s.tables.iter().map(|t| t.to_string()).collect())
            .collect()
    }

    #[test]
    fn empty_and_comments() {
        for sql in ["", "   ", "-- just a comment", "/* x */", ";", " ; ; "] {
            let a = analyze_uncached(sql);
            assert!(a.statements.is_empty(), "{sql:?}");
            assert!(a.parsed);
        }
    }

    #[test]
    fn multi_statement() {
        let a =
            analyze_uncached("SELECT * FROM users WHERE id = 1; SELECT * FROM orders WHERE id = 2");
        assert_eq!(names(&a), [vec!["users"], vec!["orders"]]);
        assert!(a.parsed);
        let a = analyze_uncached("BEGIN; CLUSTER users; COMMIT;");
        assert_eq!(names(&a), [vec![], vec!["users"], vec![]]);
        assert_eq!(
            a.statements.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [
                StatementKind::Begin,
                StatementKind::Other,
                StatementKind::Commit
            ]
        );
        assert!(!a.parsed);
    }

    #[test]
    fn only_goes_to_fallback() {
        let a = analyze_uncached("SELECT * FROM ONLY users");
        assert_eq!(names(&a), [vec!["users"]]);
        assert!(!a.parsed);
    }

    #[test]
    fn literal_flag() {
        assert!(analyze_inner("SELECT nextval('s')").1);
        assert!(analyze_inner("ALTER SEQUENCE s RESTART; SELECT 'x'::regclass").1);
        assert!(!analyze_inner("SELECT * FROM t WHERE a = 'x'").1);
    }

    #[test]
    fn garbage_does_not_panic() {
        for sql in [
            "SELECT 'abc",
            "\"",
            "$$",
            "$1$",
            "/*",
            "\\restrict x",
            "SELECT (((",
            ")))",
            "é",
            "\0",
        ] {
            let _ = analyze_uncached(sql);
        }
        let deep = format!("SELECT {}1{} FROM t", "(".repeat(200), ")".repeat(200));
        let a = analyze_uncached(&deep);
        assert_eq!(names(&a), [vec!["t"]]);
    }
}
