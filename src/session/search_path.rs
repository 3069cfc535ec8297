//! The session's `search_path`, as typed state, for resolving unqualified names.
//!
//! Owns: [`SearchPath`]: the default (startup `search_path` or `options=-c search_path=…`, else
//! PostgreSQL's `"$user", public`), the session value, and the values set inside the open
//! transaction (`SET` and `SET LOCAL`, with a snapshot per savepoint), moved along by the
//! statements the session routes: `COMMIT` keeps a transaction's `SET` unless the transaction
//! failed, `ROLLBACK` and `ROLLBACK TO` undo what they undo in PostgreSQL.
//!
//! Must never: parse SQL (it reads [`StatementInfo`]), or decide a bind (the router does, with
//! [`SearchPath::view`]).

use crate::router::{default_search_path, SearchPathView};
use crate::sql::settings::split_path;
use crate::sql::{PathValue, SettingChange, SettingScope, StatementInfo, StatementKind};

/// Values set inside the open transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct InTransaction {
    /// `SET` (kept at COMMIT).
    session: Option<Vec<String>>,
    /// `SET LOCAL` (gone at the end of the transaction).
    local: Option<Vec<String>>,
}

/// One client's `search_path`.
#[derive(Clone, Debug)]
pub(crate) struct SearchPath {
    default: Vec<String>,
    session: Vec<String>,
    tx: InTransaction,
    in_tx: bool,
    failed: bool,
    savepoints: Vec<(String, InTransaction)>,
    user: String,
}

impl SearchPath {
    /// From the client's startup settings (`search_path`, also from `options`) and user.
    pub(crate) fn from_startup(settings: &[(String, String)], user: &str) -> SearchPath {
        let default = settings
            .iter()
            .rev()
            .find(|(k, _)| k == "search_path")
            .map(|(_, v)| split_path(v))
            .unwrap_or_else(default_search_path);
        SearchPath {
            session: default.clone(),
            default,
            tx: InTransaction::default(),
            in_tx: false,
            failed: false,
            savepoints: Vec::new(),
            user: user.to_owned(),
        }
    }

    /// The path in force now, for the router.
    pub(crate) fn view(&self) -> SearchPathView<'_> {
        let schemas = self
            .tx
            .local
            .as_ref()
            .or(self.tx.session.as_ref())
            .unwrap_or(&self.session);
        SearchPathView {
            schemas,
            default: &self.default,
            user: &self.user,
        }
    }

    /// The schemas in force now, as set (`"$user"` kept as written).
    pub(crate) fn resolved(&self) -> Vec<String> {
        self.view().schemas.to_vec()
    }

    /// The transaction failed (a backend said so): its `SET`s will not be kept.
    pub(crate) fn transaction_failed(&mut self) {
        if self.in_tx {
            self.failed = true;
        }
    }

    /// Moves along with a statement the session has routed.
    pub(crate) fn follow(&mut self, stmt: &StatementInfo) {
        match stmt.kind {
            StatementKind::Begin => {
                self.in_tx = true;
                self.failed = false;
            }
            StatementKind::Commit | StatementKind::PrepareTransaction => self.end(!self.failed),
            StatementKind::Rollback => self.end(false),
            StatementKind::Savepoint => {
                let name = stmt.object_name.clone().unwrap_or_default();
                self.savepoints.push((name, self.tx.clone()));
            }
            StatementKind::RollbackTo => {
                if let Some(i) = self.find_savepoint(stmt) {
                    self.tx = self.savepoints[i].1.clone();
                    self.savepoints.truncate(i + 1);
                    self.failed = false;
                }
            }
            StatementKind::Release => {
                if let Some(i) = self.find_savepoint(stmt) {
                    self.savepoints.truncate(i);
                }
            }
            _ => {}
        }
        for change in &stmt.settings {
            let (scope, value) = match change {
                SettingChange::SearchPath { scope, value } => (*scope, value.clone()),
                SettingChange::ResetAll => (SettingScope::Session, PathValue::Default),
            };
            let value = match value {
                PathValue::Schemas(s) => s,
                PathValue::Default => self.default.clone(),
            };
            match (scope, self.in_tx) {
                (SettingScope::Session, false) => self.session = value,
                (SettingScope::Session, true) => {
                    self.tx.session = Some(value);
                    self.tx.local = None;
                }
                (SettingScope::Transaction, true) => self.tx.local = Some(value),
                // SET LOCAL outside a transaction block has no effect (PostgreSQL warns)
                (SettingScope::Transaction, false) => {}
            }
        }
    }

    fn find_savepoint(&self, stmt: &StatementInfo) -> Option<usize> {
        let name = stmt.object_name.as_deref().unwrap_or_default();
        self.savepoints.iter().rposition(|(n, _)| n == name)
    }

    fn end(&mut self, keep: bool) {
        if keep {
            if let Some(s) = self.tx.session.take() {
                self.session = s;
            }
        }
        self.tx = InTransaction::default();
        self.savepoints.clear();
        self.in_tx = false;
        self.failed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached;

    fn run(p: &mut SearchPath, sql: &str) {
        for s in &analyze_uncached(sql).statements {
            p.follow(s);
        }
    }

    fn now(p: &SearchPath) -> Vec<String> {
        p.view().schemas.to_vec()
    }

    #[test]
    fn follows_postgres() {
        let mut p = SearchPath::from_startup(&[("search_path".into(), "s3, public".into())], "app");
        assert_eq!(now(&p), ["s3", "public"]);
        run(&mut p, "SET search_path TO s2");
        assert_eq!(now(&p), ["s2"]);
        run(&mut p, "RESET search_path");
        assert_eq!(now(&p), ["s3", "public"]);
        run(&mut p, "BEGIN; SET LOCAL search_path TO x");
        assert_eq!(now(&p), ["x"]);
        run(&mut p, "COMMIT");
        assert_eq!(now(&p), ["s3", "public"]);
        run(&mut p, "BEGIN; SET search_path TO y; COMMIT");
        assert_eq!(now(&p), ["y"]);
        run(&mut p, "BEGIN; SET search_path TO z; ROLLBACK");
        assert_eq!(now(&p), ["y"]);
        run(
            &mut p,
            "BEGIN; SAVEPOINT a; SET search_path TO z; ROLLBACK TO a",
        );
        assert_eq!(now(&p), ["y"]);
        p.transaction_failed();
        run(&mut p, "SET search_path TO w; COMMIT");
        assert_eq!(now(&p), ["y"]);
        run(&mut p, "DISCARD ALL");
        assert_eq!(now(&p), ["s3", "public"]);
    }
}
