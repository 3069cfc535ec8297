//! Statements a MySQL/SQLite bind answers without its engine.
//!
//! Owns: recognising PostgreSQL session statements (`SET`, `RESET`, `SHOW`, `DISCARD`, `DEALLOCATE`)
//! and table-less catalog functions (`SELECT version()`, `current_schema()`, `current_database()`,
//! `current_user`) and the per-client settings they read and write. Simple queries are split into
//! statements by `crate::sql::split_statements` (PostgreSQL's scanner, the one splitter routing uses).
//!
//! Must never: send any of these to an engine as PostgreSQL syntax. `SET` values are remembered
//! for `SHOW` only; they do not change what the engine does.

use std::collections::BTreeMap;

/// A statement answered locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// `SET [SESSION|LOCAL] name {TO|=} value` (name lower-cased); `SET TRANSACTION …` and other
    /// forms without a plain name are accepted and ignored (name `None`).
    Set {
        name: Option<String>,
        value: String,
    },
    /// `RESET name`, `RESET ALL` (None).
    Reset(Option<String>),
    /// `SHOW name`, `SHOW ALL` ("all").
    Show(String),
    /// `SELECT current_setting('name')`.
    CurrentSetting(String),
    /// A table-less SELECT with one text column.
    Select {
        column: &'static str,
        what: LocalFn,
    },
    Discard,
    /// `DEALLOCATE [PREPARE] name | ALL` (None = all).
    Deallocate(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFn {
    Version,
    CurrentSchema,
    CurrentDatabase,
    CurrentUser,
}

/// Words of a statement, outside quotes: identifiers/keywords lower-cased, literals kept.
fn words(sql: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let mut lit = String::new();
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            lit.push(c);
                            continue;
                        }
                        break;
                    }
                    lit.push(d);
                }
                out.push(lit);
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '+' => {
                cur.push(c.to_ascii_lowercase())
            }
            '=' | ',' | '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The local answer for a statement, if it is one of those.
pub fn classify(sql: &str) -> Option<Local> {
    let s = strip_comments(sql);
    let t = s.trim().trim_end_matches(';').trim();
    let first = t.split_whitespace().next()?.to_ascii_lowercase();
    match first.as_str() {
        "set" => {
            let w = words(t);
            let mut i = 1;
            if matches!(w.get(i).map(String::as_str), Some("session" | "local")) {
                i += 1;
            }
            let name = w.get(i)?.clone();
            match name.as_str() {
                "transaction" | "characteristics" | "constraints" | "role" | "session" => {
                    return Some(Local::Set {
                        name: None,
                        value: String::new(),
                    })
                }
                "names" => {
                    return Some(Local::Set {
                        name: Some("client_encoding".into()),
                        value: w.get(i + 1).cloned().unwrap_or_default(),
                    })
                }
                "time" if w.get(i + 1).map(String::as_str) == Some("zone") => {
                    return Some(Local::Set {
                        name: Some("timezone".into()),
                        value: w.get(i + 2..).map(|v| v.join(" ")).unwrap_or_default(),
                    })
                }
                _ => {}
            }
            let mut j = i + 1;
            if matches!(w.get(j).map(String::as_str), Some("to" | "=")) {
                j += 1;
            }
            let value = w.get(j..).map(|v| v.join(" ")).unwrap_or_default();
            let value = value.replace(" , ", ", ");
            Some(Local::Set {
                name: Some(name),
                value,
            })
        }
        "reset" => {
            let w = words(t);
            match w.get(1).map(String::as_str) {
                Some("all") | None => Some(Local::Reset(None)),
                Some(n) => Some(Local::Reset(Some(n.to_string()))),
            }
        }
        "show" => {
            let w = words(t);
            let name = match (w.get(1).map(String::as_str), w.get(2).map(String::as_str)) {
                (Some("time"), Some("zone")) => "timezone".to_string(),
                (Some("transaction"), Some("isolation")) => "transaction_isolation".to_string(),
                (Some(n), _) => n.to_string(),
                (None, _) => return None,
            };
            Some(Local::Show(name))
        }
        "discard" => Some(Local::Discard),
        "deallocate" => {
            let w = words(t);
            let mut i = 1;
            if w.get(i).map(String::as_str) == Some("prepare") {
                i += 1;
            }
            match w.get(i).map(String::as_str) {
                Some("all") => Some(Local::Deallocate(None)),
                Some(n) => Some(Local::Deallocate(Some(n.to_string()))),
                None => None,
            }
        }
        "select" => {
            let compact: String = t
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            let body = compact.strip_prefix("select")?;
            let body = body.strip_prefix("pg_catalog.").unwrap_or(body);
            if let Some(arg) = body
                .strip_prefix("current_setting('")
                .and_then(|r| r.strip_suffix("')"))
            {
                if !arg.is_empty()
                    && arg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    return Some(Local::CurrentSetting(arg.to_string()));
                }
                return None;
            }
            let (column, what) = match body {
                "version()" => ("version", LocalFn::Version),
                "current_schema()" | "current_schema" => ("current_schema", LocalFn::CurrentSchema),
                "current_database()" => ("current_database", LocalFn::CurrentDatabase),
                "current_user" | "session_user" | "user" => ("current_user", LocalFn::CurrentUser),
                _ => return None,
            };
            Some(Local::Select { column, what })
        }
        _ => None,
    }
}

/// Removes `--` and `/* */` comments outside quotes (for classification only).
fn strip_comments(sql: &str) -> String {
    if !sql.contains("--") && !sql.contains("/*") {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    for (kind, piece) in pieces(sql) {
        if kind != Piece::Comment {
            out.push_str(piece);
        } else {
            out.push(' ');
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Code,
    Quoted,
    Comment,
    Semicolon,
}

/// Cuts SQL into code, quoted text, comments and top-level semicolons.
fn pieces(sql: &str) -> Vec<(Piece, &str)> {
    fn push<'s>(out: &mut Vec<(Piece, &'s str)>, sql: &'s str, k: Piece, a: usize, z: usize) {
        if z > a {
            if let Some(s) = sql.get(a..z) {
                out.push((k, s));
            }
        }
    }
    let b = sql.as_bytes();
    let mut out = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let end = match c {
            b'\'' | b'"' => {
                // E'…' strings allow backslash escapes.
                let escapes = c == b'\''
                    && i > 0
                    && (b[i - 1] == b'e' || b[i - 1] == b'E')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                let mut j = i + 1;
                let end = loop {
                    match b.get(j) {
                        None => break b.len(),
                        Some(&x) if escapes && x == b'\\' => j += 2,
                        Some(&x) if x == c => {
                            if b.get(j + 1) == Some(&c) {
                                j += 2;
                            } else {
                                break j + 1;
                            }
                        }
                        Some(_) => j += 1,
                    }
                }
                .min(b.len());
                push(&mut out, sql, Piece::Code, start, i);
                push(&mut out, sql, Piece::Quoted, i, end);
                Some(end)
            }
            b'-' if next == Some(b'-') => {
                let j = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map(|p| i + p)
                    .unwrap_or(b.len());
                push(&mut out, sql, Piece::Code, start, i);
                push(&mut out, sql, Piece::Comment, i, j);
                Some(j)
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 0;
                let mut j = i;
                while j < b.len() {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                let j = j.min(b.len());
                push(&mut out, sql, Piece::Code, start, i);
                push(&mut out, sql, Piece::Comment, i, j);
                Some(j)
            }
            b'$' if i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') => {
                // $tag$ … $tag$
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(te)
                        if b[te] == b'$' && !b.get(i + 1).is_some_and(|x| x.is_ascii_digit()) =>
                    {
                        let tag = &sql[i..=te];
                        let body_start = te + 1;
                        let close = sql[body_start..]
                            .find(tag)
                            .map(|p| body_start + p + tag.len());
                        let j = close.unwrap_or(b.len());
                        push(&mut out, sql, Piece::Code, start, i);
                        push(&mut out, sql, Piece::Quoted, i, j);
                        Some(j)
                    }
                    _ => None,
                }
            }
            b';' => {
                push(&mut out, sql, Piece::Code, start, i);
                push(&mut out, sql, Piece::Semicolon, i, i + 1);
                Some(i + 1)
            }
            _ => None,
        };
        match end {
            Some(j) => {
                i = j;
                start = j;
            }
            None => i += 1,
        }
    }
    push(&mut out, sql, Piece::Code, start, b.len());
    out
}

/// One client's PostgreSQL settings, as `SET` left them, for `SHOW`.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

/// What `SHOW` answers before any `SET`.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "off"),
    ("lc_messages", "C"),
    ("max_identifier_length", "63"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: DEFAULTS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Settings {
    pub fn set(&mut self, name: &str, value: &str) {
        let value = if value.eq_ignore_ascii_case("default") {
            DEFAULTS
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        } else {
            value.to_string()
        };
        self.values.insert(name.to_string(), value);
    }

    pub fn reset(&mut self, name: Option<&str>) {
        match name {
            None => *self = Settings::default(),
            Some(n) => match DEFAULTS.iter().find(|(k, _)| *k == n) {
                Some((_, v)) => {
                    self.values.insert(n.to_string(), v.to_string());
                }
                None => {
                    self.values.remove(n);
                }
            },
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            classify("SET client_encoding TO 'UTF8'"),
            Some(Local::Set {
                name: Some("client_encoding".into()),
                value: "UTF8".into()
            })
        );
        assert_eq!(
            classify("set extra_float_digits = 3"),
            Some(Local::Set {
                name: Some("extra_float_digits".into()),
                value: "3".into()
            })
        );
        assert_eq!(
            classify("SHOW DateStyle"),
            Some(Local::Show("datestyle".into()))
        );
        assert_eq!(
            classify("select  version( ) ;"),
            Some(Local::Select {
                column: "version",
                what: LocalFn::Version
            })
        );
        assert_eq!(classify("SELECT 1"), None);
        assert_eq!(classify("SELECT * FROM t"), None);
        assert_eq!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Some(Local::Set {
                name: None,
                value: String::new()
            })
        );
    }
}
