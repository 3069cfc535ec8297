//! The commit decision, kept inside the last resource's own transaction.
//!
//! A last resource (SQLite, or PostgreSQL without prepared transactions) commits before the
//! decision reaches the decision log. Its transaction therefore also inserts the transaction id
//! into a small table of its own database, `bindproxy_decisions`: after a crash between that
//! commit and the log write, recovery finds the row and commits the prepared branches; no row
//! means the last resource did not commit, and they roll back. The row is deleted once the
//! decision is in the log.
//!
//! Must never: put anything but a transaction id made by `tx::gid` (letters, digits, `_`) into
//! the SQL.

/// The table, created in the last resource's database on first use (SQL that both PostgreSQL
/// and the SQLite/MySQL translation accept).
pub const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS bindproxy_decisions (gid varchar(64) PRIMARY KEY)";

/// Rows of this table, for recovery.
pub const SELECT: &str = "SELECT gid FROM bindproxy_decisions";

/// The name of the table (recovery checks that it exists before reading it).
pub const TABLE: &str = "bindproxy_decisions";

pub fn insert_sql(gid: &str) -> String {
    format!(
        "INSERT INTO bindproxy_decisions (gid) VALUES ('{}')",
        safe(gid)
    )
}

pub fn delete_sql(gid: &str) -> String {
    format!(
        "DELETE FROM bindproxy_decisions WHERE gid = '{}'",
        safe(gid)
    )
}

/// A transaction id is letters, digits and `_` by construction (`tx::gid`); anything else is
/// dropped rather than quoted.
fn safe(gid: &str) -> String {
    gid.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_literal() {
        assert_eq!(
            insert_sql("bp_main_1_2"),
            "INSERT INTO bindproxy_decisions (gid) VALUES ('bp_main_1_2')"
        );
        assert_eq!(
            delete_sql("x'; DROP TABLE t; --"),
            "DELETE FROM bindproxy_decisions WHERE gid = 'xDROPTABLEt'"
        );
    }
}
