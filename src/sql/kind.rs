//! What kind of statement a token stream starts: transaction control, session commands, COPY.
//!
//! Owns: [`StatementKind`] and its detection from the leading keywords of one statement's
//! tokens, the same way for statements sqlparser parses and for those it rejects.
//!
//! Must never: look past the first few keywords, or at tables.

use sqlparser::tokenizer::Token;

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
    /// Everything else.
    Other,
}

fn word(t: &Token) -> Option<&str> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.as_str()),
        _ => None,
    }
}

/// Kind of a statement from its significant tokens (whitespace and comments removed).
pub(crate) fn kind_of(sig: &[&Token]) -> StatementKind {
    let w = |i: usize| sig.get(i).and_then(|t| word(t)).unwrap_or("");
    let is = |i: usize, k: &str| w(i).eq_ignore_ascii_case(k);
    let head = w(0);
    let h = |k: &str| head.eq_ignore_ascii_case(k);
    if h("BEGIN") || (h("START") && is(1, "TRANSACTION")) {
        StatementKind::Begin
    } else if h("COMMIT") || h("END") {
        if is(1, "PREPARED") {
            StatementKind::Other
        } else {
            StatementKind::Commit
        }
    } else if h("ROLLBACK") || h("ABORT") {
        let mut i = 1;
        if is(i, "WORK") || is(i, "TRANSACTION") {
            i += 1;
        }
        if is(1, "PREPARED") {
            StatementKind::Other
        } else if h("ROLLBACK") && is(i, "TO") {
            StatementKind::RollbackTo
        } else {
            StatementKind::Rollback
        }
    } else if h("SAVEPOINT") {
        StatementKind::Savepoint
    } else if h("RELEASE") {
        StatementKind::Release
    } else if h("PREPARE") && is(1, "TRANSACTION") {
        StatementKind::PrepareTransaction
    } else if h("SET") || h("RESET") {
        StatementKind::Set
    } else if h("SHOW") {
        StatementKind::Show
    } else if h("DISCARD") {
        StatementKind::Discard
    } else if h("LISTEN") || h("UNLISTEN") {
        StatementKind::Listen
    } else if h("NOTIFY") {
        StatementKind::Notify
    } else if h("COPY") {
        StatementKind::Copy
    } else {
        StatementKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn k(sql: &str) -> StatementKind {
        let toks = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .expect("tokenizes");
        let sig: Vec<&Token> = toks
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        kind_of(&sig)
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
            ("PREPARE p AS SELECT 1", Other),
            ("SET search_path = a", Set),
            ("RESET ALL", Set),
            ("SHOW ALL", Show),
            ("DISCARD ALL", Discard),
            ("LISTEN c", Listen),
            ("UNLISTEN *", Listen),
            ("NOTIFY c, 'x'", Notify),
            ("COPY t FROM STDIN", Copy),
            ("/* c */ SELECT 1", Other),
            ("", Other),
        ] {
            assert_eq!(k(sql), want, "{sql}");
        }
    }
}
