//! Settings that change how bindproxy must read later statements.
//!
//! Owns: recognising, in a parsed statement, a change of `search_path` (`SET`, `SET LOCAL`,
//! `RESET`, `SET … TO DEFAULT`, `RESET ALL`, `DISCARD ALL`, `set_config('search_path', …)`) as a
//! typed [`SettingChange`], and refusing `standard_conforming_strings = off`, under which
//! backslashes in ordinary string literals would change where a literal ends (bindproxy reads
//! every statement with PostgreSQL's default, `on`).
//!
//! Must never: keep state (the session does, see `session/search_path.rs`), or guess a value it
//! cannot read: such a change is reported as [`Dynamic`].

use serde_json::Value;

use super::parse::{int_field, node, str_field, string_const, string_list, AnalysisError};
use super::relations::Dynamic;

/// Whether a setting lasts for the session or only for the current transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingScope {
    /// `SET`, `set_config(…, false)`.
    Session,
    /// `SET LOCAL`, `set_config(…, true)`.
    Transaction,
}

/// A new value of `search_path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathValue {
    /// The schemas, in order, folded as PostgreSQL folds them (`"$user"` kept as written).
    Schemas(Vec<String>),
    /// Back to the session's default (`RESET`, `TO DEFAULT`).
    Default,
}

/// A statement's effect on what bindproxy tracks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingChange {
    /// `search_path` changes.
    SearchPath {
        /// For how long.
        scope: SettingScope,
        /// To what.
        value: PathValue,
    },
    /// `RESET ALL` or `DISCARD ALL`: every setting back to its default.
    ResetAll,
}

const VAR_SET_VALUE: i64 = 1;
const VAR_SET_DEFAULT: i64 = 2;
const VAR_RESET: i64 = 5;
const VAR_RESET_ALL: i64 = 6;
const DISCARD_ALL: i64 = 1;

/// The setting change of a top-level statement node, if any.
pub(crate) fn change_of(stmt: &Value) -> Result<Option<SettingChange>, AnalysisError> {
    match node(stmt) {
        Some(("VariableSetStmt", v)) => variable_set(v),
        Some(("DiscardStmt", d)) if int_field(d, "target") == DISCARD_ALL => {
            Ok(Some(SettingChange::ResetAll))
        }
        _ => Ok(None),
    }
}

fn variable_set(v: &Value) -> Result<Option<SettingChange>, AnalysisError> {
    let kind = int_field(v, "kind");
    if kind == VAR_RESET_ALL {
        return Ok(Some(SettingChange::ResetAll));
    }
    let scope = if v.get("is_local").and_then(Value::as_bool) == Some(true) {
        SettingScope::Transaction
    } else {
        SettingScope::Session
    };
    let args: Vec<&str> = v
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(string_const).collect())
        .unwrap_or_default();
    match str_field(v, "name") {
        "search_path" => {
            let value = match kind {
                VAR_SET_VALUE => PathValue::Schemas(args.iter().map(|s| s.to_string()).collect()),
                VAR_SET_DEFAULT | VAR_RESET => PathValue::Default,
                _ => return Ok(None),
            };
            Ok(Some(SettingChange::SearchPath { scope, value }))
        }
        "standard_conforming_strings" if kind == VAR_SET_VALUE => {
            check_escape_strings(args.first().copied().unwrap_or("on"))?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// `set_config(name, value, is_local)` anywhere in a statement: `FuncCall` nodes are handed here
/// by the caller's walk. Returns the change, or the reason it cannot be known.
pub(crate) fn set_config(
    call: &Value,
    named_row: Option<&str>,
) -> Result<Option<Result<SettingChange, Dynamic>>, AnalysisError> {
    let name = call
        .get("funcname")
        .and_then(string_list)
        .and_then(|p| p.last().map(|s| s.to_string()))
        .unwrap_or_default();
    if name != "set_config" {
        return Ok(None);
    }
    let args = call.get("args").and_then(Value::as_array);
    let arg = |i: usize| args.and_then(|a| a.get(i));
    // pg_dump's `SELECT set_config(name, …) FROM pg_settings WHERE name = '…'`
    let by_column = arg(0)
        .and_then(node)
        .filter(|(tag, c)| {
            *tag == "ColumnRef"
                && c.get("fields")
                    .and_then(string_list)
                    .is_some_and(|f| f.last() == Some(&"name"))
        })
        .and(named_row);
    let setting = arg(0)
        .and_then(string_const)
        .or(by_column)
        .map(str::to_ascii_lowercase);
    let value = arg(1).and_then(string_const);
    let local = arg(2).and_then(bool_const);
    match setting.as_deref() {
        Some("search_path") => match (value, local) {
            (Some(value), Some(local)) => Ok(Some(Ok(SettingChange::SearchPath {
                scope: if local {
                    SettingScope::Transaction
                } else {
                    SettingScope::Session
                },
                value: PathValue::Schemas(split_path(value)),
            }))),
            _ => Ok(Some(Err(Dynamic::UnknownSetting("search_path".into())))),
        },
        Some("standard_conforming_strings") => match value {
            Some(v) => check_escape_strings(v).map(|_| None),
            None => Ok(Some(Err(Dynamic::UnknownSetting(
                "standard_conforming_strings".into(),
            )))),
        },
        Some(_) => Ok(None),
        None => Ok(Some(Err(Dynamic::UnknownSetting("a setting".into())))),
    }
}

/// The setting a `SELECT … FROM pg_settings WHERE name = 'x'` reads (one row: `x`), if the
/// statement is one.
pub(crate) fn pg_settings_row(stmt: &Value) -> Option<&str> {
    let (tag, s) = node(stmt)?;
    if tag != "SelectStmt" {
        return None;
    }
    let from = s.get("from_clause")?.as_array()?;
    let [only] = from.as_slice() else {
        return None;
    };
    let (rtag, rv) = node(only)?;
    if rtag != "RangeVar" || rv.get("relname")?.as_str()? != "pg_settings" {
        return None;
    }
    let (etag, e) = node(s.get("where_clause")?)?;
    let op = e.get("name").and_then(string_list)?;
    if etag != "AExpr" || op.as_slice() != ["="] {
        return None;
    }
    let (ctag, c) = node(e.get("lexpr")?)?;
    let column = c.get("fields").and_then(string_list)?;
    if ctag != "ColumnRef" || column.last() != Some(&"name") {
        return None;
    }
    string_const(e.get("rexpr")?)
}

fn bool_const(v: &Value) -> Option<bool> {
    match node(v)? {
        ("AConst", c) => {
            if let Some(b) = c.get("val").and_then(|v| v.get("Boolval")) {
                return Some(b.get("boolval").and_then(Value::as_bool).unwrap_or(false));
            }
            let s = c.get("val")?.get("Sval")?.get("sval")?.as_str()?;
            parse_bool(s)
        }
        ("TypeCast", c) => bool_const(c.get("arg")?),
        _ => None,
    }
}

/// PostgreSQL's boolean input (`on`, `t`, `yes`, `1`, … and their opposites), or `None`.
fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    let prefix = |full: &str| !s.is_empty() && full.starts_with(s.as_str());
    if prefix("true") || prefix("yes") || s == "on" || s == "1" {
        Some(true)
    } else if prefix("false") || prefix("no") || s == "off" || s == "of" || s == "0" {
        Some(false)
    } else {
        None
    }
}

/// `Ok` when `standard_conforming_strings` may take this value (on, or its default).
pub fn check_escape_strings(value: &str) -> Result<(), AnalysisError> {
    if value.eq_ignore_ascii_case("default") || parse_bool(value) == Some(true) {
        Ok(())
    } else {
        Err(AnalysisError::EscapeStringsOff)
    }
}

/// Splits a `search_path` string value (`'s2, "My Schema", public'`) as PostgreSQL does: on
/// commas outside double quotes; unquoted names fold to lower case.
pub fn split_path(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                push_elem(&mut out, &mut cur, was_quoted);
                was_quoted = false;
            }
            c if !quoted && c.is_whitespace() => {}
            c if quoted => cur.push(c),
            c => cur.extend(c.to_lowercase()),
        }
    }
    push_elem(&mut out, &mut cur, was_quoted);
    out
}

fn push_elem(out: &mut Vec<String>, cur: &mut String, was_quoted: bool) {
    if !cur.is_empty() || was_quoted {
        out.push(std::mem::take(cur));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(split_path("s2, public"), ["s2", "public"]);
        assert_eq!(split_path("\"$user\", Public"), ["$user", "public"]);
        assert_eq!(split_path("\"My \"\"S\"\"\",x"), ["My \"S\"", "x"]);
        assert_eq!(split_path(""), Vec::<String>::new());
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool("t"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
        assert!(check_escape_strings("on").is_ok());
        assert!(check_escape_strings("off").is_err());
        assert!(check_escape_strings("0").is_err());
        assert!(check_escape_strings("bogus").is_err());
    }

    #[test]
    fn set_config_over_one_pg_settings_row() {
        use crate::sql::analyze_uncached;
        // pg_dump 15.8+: a setting that does not move routing
        let a = analyze_uncached(
            "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
             WHERE name = 'restrict_nonsystem_relation_kind'",
        );
        assert!(
            a.error.is_none() && a.statements[0].dynamic.is_none(),
            "{a:?}"
        );
        // the same idiom on search_path is a search_path change
        let a = analyze_uncached(
            "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'search_path'",
        );
        assert!(matches!(
            a.statements[0].settings.as_slice(),
            [SettingChange::SearchPath { .. }]
        ));
        // any other column: unknowable
        let a = analyze_uncached("SELECT set_config(name, 'x', false) FROM pg_settings");
        assert!(a.statements[0].dynamic.is_some());
    }
}
