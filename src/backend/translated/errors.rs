//! MySQL/MariaDB and SQLite errors → PostgreSQL errors.
//!
//! Owns: the one table from a MySQL error number or an SQLite (extended) result code to the SQLSTATE a
//! PostgreSQL client expects, with a PostgreSQL-like message; the engine's own message always goes
//! to the detail, with the bind's name. Also decides which engine errors mean the connection is gone.
//!
//! Must never: drop the engine's message, or report a lost connection as a statement error.

use crate::error::ProxyError;

/// (SQLSTATE, PostgreSQL-like message) for a MySQL server error number; `None` = unmapped.
fn mysql_code(code: u16) -> Option<(&'static str, &'static str)> {
    Some(match code {
        1062 | 1586 | 1169 => ("23505", "duplicate key value violates unique constraint"),
        1451 | 1452 | 1216 | 1217 => ("23503", "insert or update violates foreign key constraint"),
        1048 | 1364 | 1138 => ("23502", "null value violates not-null constraint"),
        3819 | 4025 => ("23514", "new row violates check constraint"),
        1146 => ("42P01", "relation does not exist"),
        1051 => ("42P01", "table does not exist"),
        1050 => ("42P07", "relation already exists"),
        1061 => ("42P07", "index already exists"),
        1064 | 1149 => ("42601", "syntax error"),
        1136 => (
            "42601",
            "INSERT has a different number of expressions than target columns",
        ),
        1054 => ("42703", "column does not exist"),
        1060 => ("42701", "column specified more than once"),
        1091 => ("42704", "object does not exist"),
        1305 => ("42883", "function does not exist"),
        1049 => ("3D000", "database does not exist"),
        1044 | 1045 | 1142 | 1143 => ("42501", "permission denied"),
        1213 => ("40P01", "deadlock detected"),
        1205 => ("55P03", "lock wait timeout exceeded"),
        1406 => ("22001", "value too long for type"),
        1264 | 1690 => ("22003", "numeric value out of range"),
        1366 | 1367 => ("22P02", "invalid input syntax"),
        1292 => ("22007", "invalid datetime format"),
        1365 => ("22012", "division by zero"),
        1295 => (
            "0A000",
            "statement not supported in the prepared statement protocol",
        ),
        1040 => ("53300", "too many connections"),
        _ => return None,
    })
}

/// A MySQL/MariaDB error → [`ProxyError`]. Connection-level errors become `BackendLost`.
pub fn from_mysql(bind: &str, e: &mysql_async::Error) -> ProxyError {
    match e {
        mysql_async::Error::Server(s) => {
            let original = format!(
                "MySQL error {} ({}): {} [bind \"{bind}\"]",
                s.code, s.state, s.message
            );
            match mysql_code(s.code) {
                Some((code, msg)) => ProxyError::Backend {
                    code: code.into(),
                    message: format!("{msg}: {}", s.message),
                    detail: Some(original),
                },
                None => ProxyError::Backend {
                    // MySQL's SQLSTATE when it is a specific one, else internal_error.
                    code: if s.state.len() == 5 && !s.state.starts_with("HY") {
                        s.state.clone()
                    } else {
                        "XX000".into()
                    },
                    message: s.message.clone(),
                    detail: Some(original),
                },
            }
        }
        other => ProxyError::BackendLost {
            bind: bind.into(),
            reason: other.to_string(),
        },
    }
}

/// Whether a MySQL error means the connection cannot be used again.
pub fn mysql_is_fatal(e: &mysql_async::Error) -> bool {
    !matches!(e, mysql_async::Error::Server(_))
}

/// An SQLite error → [`ProxyError`].
pub fn from_sqlite(bind: &str, e: &rusqlite::Error) -> ProxyError {
    use rusqlite::ffi;
    let (extended, message) = match e {
        rusqlite::Error::SqliteFailure(f, msg) => (
            Some(f.extended_code),
            msg.clone().unwrap_or_else(|| f.to_string()),
        ),
        other => (None, other.to_string()),
    };
    let detail = Some(format!("SQLite: {message} [bind \"{bind}\"]"));
    let lower = message.to_ascii_lowercase();
    let (code, msg): (&str, String) = match extended {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) | Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            ("23505", "duplicate key value violates unique constraint".into())
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            ("23503", "insert or update violates foreign key constraint".into())
        }
        Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => ("23502", "null value violates not-null constraint".into()),
        Some(ffi::SQLITE_CONSTRAINT_CHECK) => ("23514", "new row violates check constraint".into()),
        Some(c) if c & 0xff == ffi::SQLITE_CONSTRAINT => ("23000", "integrity constraint violation".into()),
        Some(ffi::SQLITE_BUSY_SNAPSHOT) => (
            "40001",
            "could not serialize access: the SQLite database was changed by another connection since this transaction read it".into(),
        ),
        Some(c) if c & 0xff == ffi::SQLITE_BUSY || c & 0xff == ffi::SQLITE_LOCKED => (
            "55P03",
            "could not obtain the SQLite database lock: another connection held it longer than the busy timeout".into(),
        ),
        Some(c) if c & 0xff == ffi::SQLITE_READONLY => ("25006", "the SQLite database is read-only".into()),
        Some(c) if c & 0xff == ffi::SQLITE_FULL => ("53100", "the SQLite database or disk is full".into()),
        Some(c) if c & 0xff == ffi::SQLITE_TOOBIG => ("54000", "value too large".into()),
        Some(c) if c & 0xff == ffi::SQLITE_MISMATCH => ("42804", "datatype mismatch".into()),
        Some(c) if c & 0xff == ffi::SQLITE_CANTOPEN => ("58P01", "cannot open the SQLite database file".into()),
        // SQLITE_MAX_EXPR_DEPTH (1000): a long chain of AND/OR or operators.
        _ if lower.contains("expression tree is too large") => (
            "54001",
            "statement too deeply nested for SQLite (expression depth above 1000); write long OR chains of one column as IN (…)".into(),
        ),
        _ if lower.contains("no such table") => ("42P01", "relation does not exist".into()),
        _ if lower.contains("no such column") => ("42703", "column does not exist".into()),
        _ if lower.contains("no such function") => ("42883", "function does not exist".into()),
        _ if lower.contains("no such savepoint") => ("3B001", "savepoint does not exist".into()),
        _ if lower.contains("already exists") => ("42P07", "relation already exists".into()),
        _ if lower.contains("syntax error") || lower.contains("incomplete input") => {
            ("42601", "syntax error".into())
        }
        _ if lower.contains("values for") && lower.contains("columns") => (
            "42601",
            "INSERT has a different number of expressions than target columns".into(),
        ),
        _ => ("XX000", String::new()),
    };
    ProxyError::Backend {
        code: code.into(),
        message: if msg.is_empty() {
            message.clone()
        } else {
            format!("{msg}: {message}")
        },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .unwrap();
        c.execute_batch("INSERT INTO t VALUES (1, 'a')").unwrap();
        let code = |sql: &str| {
            from_sqlite("b", &c.execute_batch(sql).unwrap_err())
                .sqlstate()
                .to_string()
        };
        assert_eq!(code("INSERT INTO t VALUES (1, 'b')"), "23505");
        assert_eq!(code("INSERT INTO t VALUES (2, 'a')"), "23505");
        assert_eq!(code("INSERT INTO t VALUES (3, NULL)"), "23502");
        assert_eq!(code("SELECT * FROM nope"), "42P01");
        assert_eq!(code("SELECT nope FROM t"), "42703");
        assert_eq!(code("SELEC 1"), "42601");
    }
}
