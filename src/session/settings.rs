//! The session-level settings a client changed with SET, as typed state.
//!
//! Owns: [`SessionSettings`] — for each setting the client SET (or RESET) for its session, the
//! statement that did it last. A bind the session reaches later gets these statements, so it
//! sees the same settings as the binds the session already used: `SET application_name = 'x1'`,
//! then `'x2'`, then `'x1'` leaves `x1` everywhere. `RESET ALL` / `DISCARD ALL` forget them.
//!
//! Must never: grow without bound (one entry per setting name), or hold SET LOCAL (that belongs
//! to the transaction, `tx::Transaction::preamble`).

use indexmap::IndexMap;

use crate::sql::{Analysis, SettingChange};

/// At most this many distinct settings are remembered (PostgreSQL has about 350, plus
/// extensions' own); beyond it a new name is not replayed on binds joined later.
const MAX_SETTINGS: usize = 1024;

/// Which setting a session-level SET changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SettingKey {
    Name(String),
    /// RESET ALL / DISCARD ALL.
    All,
}

impl SettingKey {
    /// The setting a SET, RESET or `set_config(name, …, false)` statement string changes.
    pub(super) fn of(analysis: &Analysis) -> Option<SettingKey> {
        let s = analysis.statements.last()?;
        if s.settings.contains(&SettingChange::ResetAll) {
            return Some(SettingKey::All);
        }
        if let Some(name) = &s.object_name {
            return Some(SettingKey::Name(name.to_ascii_lowercase()));
        }
        s.settings
            .iter()
            .any(|c| matches!(c, SettingChange::SearchPath { .. }))
            .then(|| SettingKey::Name("search_path".into()))
    }
}

#[derive(Debug, Default)]
pub(super) struct SessionSettings {
    /// Setting name → the client's last statement about it, in first-set order.
    last: IndexMap<String, String>,
}

impl SessionSettings {
    /// Records a session-level SET/RESET that ran.
    pub(super) fn record(&mut self, key: SettingKey, sql: &str) {
        match key {
            SettingKey::All => self.last.clear(),
            SettingKey::Name(name) => {
                if let Some(v) = self.last.get_mut(&name) {
                    sql.clone_into(v);
                } else if self.last.len() < MAX_SETTINGS {
                    self.last.insert(name, sql.to_owned());
                }
            }
        }
    }

    /// The statements that give a new connection the session's settings.
    pub(super) fn statements(&self) -> impl Iterator<Item = &str> {
        self.last.values().map(String::as_str)
    }

    pub(super) fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached;

    fn run(s: &mut SessionSettings, sql: &str) {
        let a = analyze_uncached(sql);
        s.record(SettingKey::of(&a).expect("a setting"), sql);
    }

    #[test]
    fn last_statement_per_setting_wins() {
        let mut s = SessionSettings::default();
        run(&mut s, "SET application_name = 'x1'");
        run(&mut s, "SET statement_timeout = 5000");
        run(&mut s, "SET application_name = 'x2'");
        run(&mut s, "SET Application_Name = 'x1'");
        let v: Vec<&str> = s.statements().collect();
        assert_eq!(
            v,
            [
                "SET Application_Name = 'x1'",
                "SET statement_timeout = 5000"
            ]
        );
        run(&mut s, "RESET statement_timeout");
        assert_eq!(s.statements().nth(1), Some("RESET statement_timeout"));
        run(&mut s, "SELECT set_config('search_path', 'a', false)");
        assert_eq!(s.len(), 3);
        run(&mut s, "RESET ALL");
        assert_eq!(s.len(), 0);
        run(&mut s, "SET search_path TO b");
        run(&mut s, "DISCARD ALL");
        assert_eq!(s.len(), 0);
    }
}
