//! `LOCK [TABLE] t, … IN ACCESS SHARE MODE` (what pg_dump takes on every table it dumps) on
//! MySQL/MariaDB and SQLite binds.
//!
//! Owns: which lock modes a translated bind can honour, and the statement that honours one.
//! ACCESS SHARE only conflicts with ACCESS EXCLUSIVE (DROP, ALTER, TRUNCATE): the table must not
//! change shape or vanish while the transaction reads it. Reading the table inside the transaction
//! gives that on both engines — MariaDB holds a table's metadata lock from the first read to the
//! end of the transaction (DDL from other sessions waits for it, as in PostgreSQL) and its
//! REPEATABLE READ snapshot starts there; a SQLite transaction reads one snapshot of the whole
//! database from its first read. So the lock is a read of each table ([`Plan::Lock`]), run by
//! `backend/translated/session/schema.rs` inside the client's transaction (25P01 outside one, as in
//! PostgreSQL).
//!
//! Must never: accept a mode it cannot honour (every stronger mode, and NOWAIT, is 0A000), or a
//! table outside schema `public`.

use pg_query::protobuf::node::Node as NodeEnum;
use pg_query::protobuf::LockStmt;

use super::error::TranslateError;
use super::names::quote;
use super::sequence::Plan;
use super::Target;

/// PostgreSQL's `AccessShareLock` (lockdefs.h), the mode of `LOCK … IN ACCESS SHARE MODE`.
const ACCESS_SHARE: i32 = 1;

/// The plan of a `LOCK` statement.
pub(crate) fn plan(l: &LockStmt, target: Target) -> Result<Plan, TranslateError> {
    if l.mode != ACCESS_SHARE {
        return Err(TranslateError::unsupported(
            "LOCK in a mode stronger than ACCESS SHARE",
        ));
    }
    if l.nowait {
        return Err(TranslateError::unsupported("LOCK … NOWAIT"));
    }
    let mut probes = Vec::with_capacity(l.relations.len());
    for r in &l.relations {
        let Some(NodeEnum::RangeVar(rv)) = r.node.as_ref() else {
            return Err(TranslateError::unsupported("LOCK of this object"));
        };
        if !(rv.schemaname.is_empty() || rv.schemaname == "public") || !rv.catalogname.is_empty() {
            return Err(TranslateError::unsupported(
                "name with a schema other than public",
            ));
        }
        probes.push(format!(
            "SELECT 1 FROM {} LIMIT 1",
            quote(&rv.relname, target)
        ));
    }
    Ok(Plan::Lock { probes })
}

#[cfg(test)]
mod tests {
    use super::super::sequence::plan as schema_plan;
    use super::*;

    #[test]
    fn access_share_is_a_read_of_each_table() {
        match schema_plan(
            "LOCK TABLE public.a, \"B\" IN ACCESS SHARE MODE",
            Target::MySql,
        ) {
            Some(Ok(Plan::Lock { probes })) => assert_eq!(
                probes,
                ["SELECT 1 FROM `a` LIMIT 1", "SELECT 1 FROM `B` LIMIT 1"]
            ),
            other => panic!("{other:?}"),
        }
        match schema_plan("lock a in access share mode", Target::Sqlite) {
            Some(Ok(Plan::Lock { probes })) => {
                assert_eq!(probes, ["SELECT 1 FROM \"a\" LIMIT 1"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_modes_are_refused() {
        for sql in [
            "LOCK TABLE a",
            "LOCK TABLE a IN SHARE MODE",
            "LOCK TABLE a IN ROW EXCLUSIVE MODE",
            "LOCK TABLE a IN ACCESS SHARE MODE NOWAIT",
            "LOCK TABLE other.a IN ACCESS SHARE MODE",
        ] {
            assert!(
                matches!(
                    schema_plan(sql, Target::Sqlite),
                    Some(Err(TranslateError::Unsupported { .. }))
                ),
                "{sql}"
            );
        }
    }
}
