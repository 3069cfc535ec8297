//! The console's commands: the words an operator types, parsed into [`Command`].
//!
//! Owns: the grammar (case-insensitive keywords, an optional trailing `;`, the argument of
//! `EXPLAIN ROUTE`, `PAUSE`, `RESUME` and `KILL`) and the columns each command answers with, known
//! before it runs (an extended-protocol Describe of a statement). Must never: run anything.

use super::answer::Column;
use super::ConsoleError;

/// One console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ShowBinds,
    ShowPools,
    ShowClients,
    ShowTables,
    ShowStats,
    ShowTransactions,
    /// The query string after `EXPLAIN ROUTE`, as written.
    ExplainRoute(String),
    Reload,
    /// A bind's name, or every bind.
    Pause(Option<String>),
    Resume(Option<String>),
    /// A client's id (its BackendKeyData process id, as `SHOW CLIENTS` lists it).
    Kill(i32),
}

/// The command list, for `SHOW HELP` and unknown commands.
pub const COMMANDS: &str = "SHOW BINDS | SHOW POOLS | SHOW CLIENTS | SHOW TABLES | SHOW STATS | SHOW TRANSACTIONS | EXPLAIN ROUTE <sql> | RELOAD | PAUSE [bind] | RESUME [bind] | KILL <client id>";

/// The first word of `s` and the rest (leading whitespace removed).
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// A bind name, bare or double-quoted.
fn bind_name(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(
        match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => s.to_owned(),
        },
    )
}

impl Command {
    /// Parses one command; `None` for an empty query string.
    pub fn parse(text: &str) -> Result<Option<Command>, ConsoleError> {
        let trimmed = text.trim();
        let body = trimmed.strip_suffix(';').unwrap_or(trimmed).trim_end();
        if body.is_empty() {
            return Ok(None);
        }
        let unknown = || ConsoleError::Unknown {
            command: body.chars().take(80).collect(),
        };
        let (first, rest) = word(body);
        let cmd = match first.to_ascii_uppercase().as_str() {
            "SHOW" => {
                let (what, extra) = word(rest);
                if !extra.is_empty() {
                    return Err(unknown());
                }
                match what.to_ascii_uppercase().as_str() {
                    "BINDS" => Command::ShowBinds,
                    "POOLS" => Command::ShowPools,
                    "CLIENTS" => Command::ShowClients,
                    "TABLES" => Command::ShowTables,
                    "STATS" => Command::ShowStats,
                    "TRANSACTIONS" => Command::ShowTransactions,
                    _ => return Err(unknown()),
                }
            }
            "EXPLAIN" => {
                let (route, sql) = word(rest);
                if !route.eq_ignore_ascii_case("ROUTE") {
                    return Err(unknown());
                }
                if sql.is_empty() {
                    return Err(ConsoleError::BadArgument(
                        "EXPLAIN ROUTE needs a statement: EXPLAIN ROUTE SELECT * FROM users".into(),
                    ));
                }
                // the statement as written, its own trailing `;` included
                let at = trimmed.len() - word(word(trimmed).1).1.len();
                Command::ExplainRoute(trimmed[at..].to_owned())
            }
            "RELOAD" if rest.is_empty() => Command::Reload,
            "PAUSE" => Command::Pause(bind_name(rest)),
            "RESUME" => Command::Resume(bind_name(rest)),
            "KILL" => {
                let id = rest.trim().parse::<i32>().map_err(|_| {
                    ConsoleError::BadArgument(format!(
                        "KILL takes a client id (the `id` column of SHOW CLIENTS), not {:?}",
                        rest.trim()
                    ))
                })?;
                Command::Kill(id)
            }
            _ => return Err(unknown()),
        };
        Ok(Some(cmd))
    }

    /// The columns of its answer.
    pub fn columns(&self) -> &'static [Column] {
        match self {
            Command::ShowBinds => super::show_binds::COLUMNS,
            Command::ShowPools => super::show_pools::COLUMNS,
            Command::ShowClients => super::show_clients::COLUMNS,
            Command::ShowTables => super::show_tables::COLUMNS,
            Command::ShowStats => super::show_stats::COLUMNS,
            Command::ShowTransactions => super::show_transactions::COLUMNS,
            Command::ExplainRoute(_) => super::explain_route::COLUMNS,
            Command::Reload => super::reload::COLUMNS,
            Command::Pause(_) | Command::Resume(_) => super::pause::COLUMNS,
            Command::Kill(_) => super::kill::COLUMNS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Command>, ConsoleError> {
        Command::parse(s)
    }

    #[test]
    fn words_are_case_insensitive_with_an_optional_semicolon() {
        assert_eq!(p("show binds").unwrap(), Some(Command::ShowBinds));
        assert_eq!(p("  SHOW   Pools ;  ").unwrap(), Some(Command::ShowPools));
        assert_eq!(p("reload;").unwrap(), Some(Command::Reload));
        assert_eq!(p("PAUSE").unwrap(), Some(Command::Pause(None)));
        assert_eq!(
            p("pause \"Main\";").unwrap(),
            Some(Command::Pause(Some("Main".into())))
        );
        assert_eq!(
            p("RESUME users").unwrap(),
            Some(Command::Resume(Some("users".into())))
        );
        assert_eq!(p("kill 1001").unwrap(), Some(Command::Kill(1001)));
        assert_eq!(p(" ; ").unwrap(), None);
        assert_eq!(
            p("explain  route SELECT * FROM \"Users\" WHERE a = 'x;y';").unwrap(),
            Some(Command::ExplainRoute(
                "SELECT * FROM \"Users\" WHERE a = 'x;y';".into()
            ))
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_command_list() {
        for bad in [
            "SHOW HELP",
            "SHOW",
            "SELECT 1",
            "SHOW BINDS extra",
            "RELOAD now",
        ] {
            assert!(matches!(p(bad), Err(ConsoleError::Unknown { .. })), "{bad}");
        }
        assert!(matches!(p("KILL x"), Err(ConsoleError::BadArgument(_))));
        assert!(matches!(
            p("EXPLAIN ROUTE"),
            Err(ConsoleError::BadArgument(_))
        ));
    }
}
