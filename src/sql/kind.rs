//! What kind of statement a token stream starts: transaction control, session commands, COPY.
//!
//! Owns: [`StatementKind`] and its detection from the top node of a statement's parse tree.
//!
//! Must never: look below the top node, or at tables.

use serde_json::Value;

use super::parse::{int_field, node};

/// The kind of one statement, as far as a session needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END` (not `COMMIT PREPARED`).
    Commit,
    /// `ROLLBACK`, `ABORT` (not `ROLLBACK TO SAVEPOINT`, not `ROLLBACK PREPARED`).
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE [SAVEPOINT] name`.
    Release,
    /// `ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name`.
    RollbackTo,
    /// `PREPARE TRANSACTION 'id'` (two-phase commit; `COMMIT/ROLLBACK PREPARED` are `Other`).
    PrepareTransaction,
    /// `SET …`, `RESET …` (including `SET LOCAL`, `SET TRANSACTION`, `SET ROLE`).
    Set,
    /// `SHOW …`.
    Show,
    /// `DISCARD …`.
    Discard,
    /// `LISTEN channel`, `UNLISTEN channel|*`.
    Listen,
    /// `NOTIFY channel[, payload]`.
    Notify,
    /// `COPY …` (either direction).
    Copy,
    /// `SELECT`, `VALUES`, `TABLE t` (not `SELECT … INTO`).
    Select,
    /// `PREPARE name AS …` (SQL-level; its name is the statement's `object_name`).
    PrepareStatement,
    /// `EXECUTE name`.
    ExecuteStatement,
    /// `DEALLOCATE name` or `DEALLOCATE ALL` (no `object_name`).
    Deallocate,
    /// Everything else.
    Other,
}

/// Kind of a statement from its parse tree node (`{"TransactionStmt": …}`).
pub(crate) fn kind_of(stmt: &Value) -> StatementKind {
    use pg_query::protobuf::TransactionStmtKind as T;
    let Some((tag, v)) = node(stmt) else {
        return StatementKind::Other;
    };
    match tag {
        "TransactionStmt" => {
            let k = int_field(v, "kind");
            let is = |t: T| k == t as i64;
            if is(T::TransStmtBegin) || is(T::TransStmtStart) {
                StatementKind::Begin
            } else if is(T::TransStmtCommit) {
                StatementKind::Commit
            } else if is(T::TransStmtRollback) {
                StatementKind::Rollback
            } else if is(T::TransStmtSavepoint) {
                StatementKind::Savepoint
            } else if is(T::TransStmtRelease) {
                StatementKind::Release
            } else if is(T::TransStmtRollbackTo) {
                StatementKind::RollbackTo
            } else if is(T::TransStmtPrepare) {
                StatementKind::PrepareTransaction
            } else {
                StatementKind::Other
            }
        }
        "VariableSetStmt" => StatementKind::Set,
        "VariableShowStmt" => StatementKind::Show,
        "DiscardStmt" => StatementKind::Discard,
        "ListenStmt" | "UnlistenStmt" => StatementKind::Listen,
        "NotifyStmt" => StatementKind::Notify,
        "CopyStmt" => StatementKind::Copy,
        "PrepareStmt" => StatementKind::PrepareStatement,
        "ExecuteStmt" => StatementKind::ExecuteStatement,
        "DeallocateStmt" => StatementKind::Deallocate,
        "SelectStmt" if v.get("into_clause").is_none_or(Value::is_null) => StatementKind::Select,
        _ => StatementKind::Other,
    }
}

/// True for a statement that changes what the catalog shows about relations (tables, views,
/// indexes, sequences, types, schemas, comments): the shadow catalog replays it.
pub(crate) fn changes_catalog(stmt: &Value) -> bool {
    let Some((tag, _)) = node(stmt) else {
        return false;
    };
    matches!(
        tag,
        "CreateStmt"
            | "CreateTableAsStmt"
            | "AlterTableStmt"
            | "DropStmt"
            | "IndexStmt"
            | "CommentStmt"
            | "CreateSeqStmt"
            | "AlterSeqStmt"
            | "ViewStmt"
            | "RenameStmt"
            | "CreateEnumStmt"
            | "AlterEnumStmt"
            | "CreateSchemaStmt"
            | "AlterObjectSchemaStmt"
            | "CreateDomainStmt"
            | "CompositeTypeStmt"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(sql: &str) -> StatementKind {
        let stmts = crate::sql::parse::parse(sql).expect("parses");
        stmts
            .first()
            .map(|s| kind_of(&s.node))
            .unwrap_or(StatementKind::Other)
    }

    #[test]
    fn kinds() {
        use StatementKind::*;
        for (sql, want) in [
            ("BEGIN", Begin),
            ("begin isolation level serializable", Begin),
            ("START TRANSACTION READ WRITE", Begin),
            ("COMMIT", Commit),
            ("END", Commit),
            ("COMMIT PREPARED 'x'", Other),
            ("ROLLBACK", Rollback),
            ("ABORT", Rollback),
            ("ROLLBACK PREPARED 'x'", Other),
            ("ROLLBACK TO SAVEPOINT a", RollbackTo),
            ("ROLLBACK WORK TO a", RollbackTo),
            ("SAVEPOINT a", Savepoint),
            ("RELEASE SAVEPOINT a", Release),
            ("PREPARE TRANSACTION 'x'", PrepareTransaction),
            ("PREPARE p AS SELECT 1", PrepareStatement),
            ("EXECUTE p(1)", ExecuteStatement),
            ("DEALLOCATE ALL", Deallocate),
            ("SELECT 1", Select),
            ("TABLE t", Select),
            ("SELECT 1 INTO x", Other),
            ("SET search_path = a", Set),
            ("RESET ALL", Set),
            ("SHOW ALL", Show),
            ("DISCARD ALL", Discard),
            ("LISTEN c", Listen),
            ("UNLISTEN *", Listen),
            ("NOTIFY c, 'x'", Notify),
            ("COPY t FROM STDIN", Copy),
            ("/* c */ SELECT 1", Select),
            ("", Other),
        ] {
            assert_eq!(k(sql), want, "{sql}");
        }
    }
}
