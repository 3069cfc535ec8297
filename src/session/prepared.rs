//! SQL-level prepared statements (`PREPARE name AS …`, `EXECUTE name`, `DEALLOCATE name`): the
//! name a statement refers to, so that the session can send `EXECUTE` and `DEALLOCATE` to the bind
//! that holds the statement.
//!
//! Owns: [`SqlPrepared`], read from the analysis (PostgreSQL's parser gives the kind and the
//! folded name, comments and quoting included).
//!
//! Must never: decide a bind (the session does), or read SQL text itself.

use crate::sql::{Analysis, StatementKind};

/// A statement about a SQL-level prepared statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SqlPrepared {
    Prepare(String),
    Execute(String),
    Deallocate(String),
    DeallocateAll,
}

/// What a one-statement query string does to a SQL-level prepared statement, if anything.
pub(super) fn classify(analysis: &Analysis) -> Option<SqlPrepared> {
    let [stmt] = analysis.statements.as_slice() else {
        return None;
    };
    let name = stmt.object_name.clone();
    match (stmt.kind, name) {
        (StatementKind::PrepareStatement, Some(n)) => Some(SqlPrepared::Prepare(n)),
        (StatementKind::ExecuteStatement, Some(n)) => Some(SqlPrepared::Execute(n)),
        (StatementKind::Deallocate, Some(n)) => Some(SqlPrepared::Deallocate(n)),
        (StatementKind::Deallocate, None) => Some(SqlPrepared::DeallocateAll),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached;

    fn of(sql: &str) -> Option<SqlPrepared> {
        classify(&analyze_uncached(sql))
    }

    #[test]
    fn names_are_folded_like_postgresql() {
        assert_eq!(
            of("PREPARE Q1 AS SELECT 1"),
            Some(SqlPrepared::Prepare("q1".into()))
        );
        assert_eq!(
            of("prepare \"Q\"\"1\"(int) as select $1"),
            Some(SqlPrepared::Prepare("Q\"1".into()))
        );
        assert_eq!(
            of("/* c /* nested */ */ -- x\n EXECUTE q1(2)"),
            Some(SqlPrepared::Execute("q1".into()))
        );
        assert_eq!(
            of("DEALLOCATE PREPARE q1"),
            Some(SqlPrepared::Deallocate("q1".into()))
        );
        assert_eq!(of("deallocate all"), Some(SqlPrepared::DeallocateAll));
        assert_eq!(
            of("deallocate \"all\""),
            Some(SqlPrepared::Deallocate("all".into()))
        );
        assert_eq!(of("PREPARE TRANSACTION 'x'"), None);
        assert_eq!(of("SELECT 1"), None);
        assert_eq!(of("EXECUTE"), None);
        assert_eq!(of("EXECUTE a; EXECUTE b"), None);
    }
}
