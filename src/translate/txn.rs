//! Transaction control statements.
//!
//! Owns: BEGIN / START TRANSACTION (with isolation level and access mode), COMMIT, ROLLBACK, SAVEPOINT,
//! RELEASE and ROLLBACK TO, rendered in each target's syntax, and their CommandComplete tags (READ
//! ONLY on SQLite: [`SQLITE_READ_ONLY`] before the BEGIN). Must
//! never: emulate PostgreSQL's aborted-transaction state (that is the session's job).

use sqlparser::ast::{
    Statement, TransactionAccessMode, TransactionIsolationLevel, TransactionMode,
};

use super::error::{Result, TranslateError};
use super::names::{fold, quote};
use super::{Kind, Rewritten, TagHint, Target};

/// What a SQLite connection runs before a READ ONLY transaction (its `before`): every write then
/// fails with SQLITE_READONLY until `PRAGMA query_only = OFF` at the transaction's end.
pub const SQLITE_READ_ONLY: &str = "PRAGMA query_only = ON";

fn out(sql: String, before: Vec<String>, kind: Kind, tag: &'static str) -> Rewritten {
    Rewritten {
        sql,
        before,
        params: vec![],
        kind,
        returning: None,
        param_hints: vec![],
        pg_types: vec![],
        tag_hint: TagHint::Fixed(tag),
        drop_index_lookup: None,
        tables: vec![],
        result_types: vec![],
    }
}

pub(crate) fn rewrite_txn(target: Target, stmt: &Statement) -> Result<Rewritten> {
    let unsupported = |w: &str| Err(TranslateError::unsupported(w));
    match stmt {
        Statement::StartTransaction {
            modes,
            begin,
            modifier,
            statements,
            exception,
            ..
        } => {
            if modifier.is_some() || !statements.is_empty() || exception.is_some() {
                return unsupported("transaction modifier or block");
            }
            let tag = if *begin { "BEGIN" } else { "START TRANSACTION" };
            let mut isolation = None;
            let mut read_only = None;
            for m in modes {
                match m {
                    TransactionMode::IsolationLevel(l) => isolation = Some(*l),
                    TransactionMode::AccessMode(a) => {
                        read_only = Some(*a == TransactionAccessMode::ReadOnly)
                    }
                }
            }
            match target {
                Target::Sqlite => {
                    // SQLite transactions are serializable, at least as strong as any level asked
                    // for. READ ONLY: the connection refuses writes until the transaction ends.
                    let before = if read_only == Some(true) {
                        vec![SQLITE_READ_ONLY.to_string()]
                    } else {
                        vec![]
                    };
                    Ok(out("BEGIN".into(), before, Kind::Begin, tag))
                }
                Target::MySql => {
                    let mut before = vec![];
                    if let Some(l) = isolation {
                        let level = match l {
                            // PostgreSQL runs READ UNCOMMITTED as READ COMMITTED.
                            TransactionIsolationLevel::ReadUncommitted
                            | TransactionIsolationLevel::ReadCommitted => "READ COMMITTED",
                            TransactionIsolationLevel::RepeatableRead => "REPEATABLE READ",
                            TransactionIsolationLevel::Serializable => "SERIALIZABLE",
                            TransactionIsolationLevel::Snapshot => {
                                return unsupported("ISOLATION LEVEL SNAPSHOT")
                            }
                        };
                        before.push(format!("SET TRANSACTION ISOLATION LEVEL {level}"));
                    }
                    let sql = match read_only {
                        Some(true) => "START TRANSACTION READ ONLY",
                        Some(false) => "START TRANSACTION READ WRITE",
                        None => "START TRANSACTION",
                    };
                    Ok(out(sql.into(), before, Kind::Begin, tag))
                }
            }
        }
        Statement::Commit {
            chain, modifier, ..
        } => {
            if *chain || modifier.is_some() {
                return unsupported("COMMIT AND CHAIN");
            }
            Ok(out("COMMIT".into(), vec![], Kind::Commit, "COMMIT"))
        }
        Statement::Rollback { chain, savepoint } => {
            if *chain {
                return unsupported("ROLLBACK AND CHAIN");
            }
            match savepoint {
                None => Ok(out("ROLLBACK".into(), vec![], Kind::Rollback, "ROLLBACK")),
                Some(s) => {
                    let name = fold(s);
                    let sql = match target {
                        Target::MySql => format!("ROLLBACK TO SAVEPOINT {}", quote(&name, target)),
                        Target::Sqlite => format!("ROLLBACK TO {}", quote(&name, target)),
                    };
                    Ok(out(sql, vec![], Kind::RollbackTo(name), "ROLLBACK"))
                }
            }
        }
        Statement::Savepoint { name } => {
            let name = fold(name);
            Ok(out(
                format!("SAVEPOINT {}", quote(&name, target)),
                vec![],
                Kind::Savepoint(name),
                "SAVEPOINT",
            ))
        }
        Statement::ReleaseSavepoint { name } => {
            let name = fold(name);
            let sql = match target {
                Target::MySql => format!("RELEASE SAVEPOINT {}", quote(&name, target)),
                Target::Sqlite => format!("RELEASE {}", quote(&name, target)),
            };
            Ok(out(sql, vec![], Kind::Release(name), "RELEASE"))
        }
        _ => unsupported("this transaction statement"),
    }
}

/// `BEGIN` / `START TRANSACTION` with `[NOT] DEFERRABLE` (pg_dump's `SERIALIZABLE, READ ONLY,
/// DEFERRABLE`) without it, as PostgreSQL's deparser writes the rest; `None` for any other text.
/// DEFERRABLE only makes a SERIALIZABLE READ ONLY transaction wait for a snapshot that can raise
/// no serialization failure; neither engine raises those for a reader, so it changes nothing there.
pub(crate) fn without_deferrable(sql: &str) -> Option<String> {
    use pg_query::protobuf::node::Node as NodeEnum;
    use pg_query::protobuf::TransactionStmtKind;
    let head = sql.trim_start().get(..5)?.to_ascii_lowercase();
    if !(head == "begin" || head == "start") || !sql.to_ascii_lowercase().contains("deferrable") {
        return None;
    }
    let mut parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let [raw] = parsed.protobuf.stmts.as_mut_slice() else {
        return None;
    };
    let Some(NodeEnum::TransactionStmt(t)) = raw.stmt.as_mut()?.node.as_mut() else {
        return None;
    };
    if !matches!(
        TransactionStmtKind::try_from(t.kind).ok()?,
        TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart
    ) {
        return None;
    }
    let before = t.options.len();
    t.options.retain(|o| {
        !matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "transaction_deferrable")
    });
    if t.options.len() == before {
        return None;
    }
    parsed.deparse(Default::default()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferrable_is_dropped() {
        assert_eq!(
            without_deferrable("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE")
                .as_deref(),
            Some("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY")
        );
        assert_eq!(
            without_deferrable("start transaction not deferrable").as_deref(),
            Some("START TRANSACTION")
        );
        assert_eq!(without_deferrable("BEGIN READ ONLY"), None);
        assert_eq!(without_deferrable("SELECT 'deferrable'"), None);
    }
}
