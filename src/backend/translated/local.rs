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
    /// `SET TRANSACTION … READ ONLY …`: the open transaction becomes read-only.
    SetTransactionReadOnly,
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
    /// `current_database()`, `current_catalog`: the database name the client connected with.
    CurrentDatabase,
    /// `current_user`, `session_user`, `user`, `current_role`: the client's login user.
    CurrentUser,
}

/// Who the client is, as PostgreSQL's identity functions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The login user of the client's startup packet.
    pub user: String,
    /// The database name of the client's startup packet.
    pub database: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            user: "postgres".into(),
            database: "postgres".into(),
        }
    }
}

impl Identity {
    /// The value of an identity function (`None`: SQL NULL, or `version()`, which is not one).
    /// `search_path`: the session's setting, for `current_schema`.
    pub fn value<'a>(&'a self, f: LocalFn, search_path: &'a str) -> Option<&'a str> {
        match f {
            LocalFn::CurrentUser => Some(&self.user),
            LocalFn::CurrentDatabase => Some(&self.database),
            LocalFn::CurrentSchema => current_schema(search_path, &self.user),
            LocalFn::Version => None,
        }
    }
}

/// Schemas that exist for a MySQL/SQLite bind's client: its tables are in `public` (any other
/// schema is refused by the translator), and PostgreSQL's own two.
const SCHEMAS: &[&str] = &["public", "pg_catalog", "information_schema"];

/// PostgreSQL's `current_schema()`: the first schema of the search_path that exists (`$user`
/// stands for the login user), or NULL when none does.
fn current_schema<'a>(search_path: &'a str, user: &'a str) -> Option<&'a str> {
    search_path.split(',').find_map(|entry| {
        let e = entry.trim();
        let name = match e.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(quoted) => quoted,
            None => e,
        };
        let name = if name == "$user" { user } else { name };
        SCHEMAS.iter().copied().find(|s| *s == name)
    })
}

/// PostgreSQL's type of the identity functions' results (`current_user`, `current_database()`,
/// `current_schema`, …); `version()` is text.
pub fn result_type(f: LocalFn) -> super::types::PgType {
    use super::types::{CatalogType, PgType};
    match f {
        LocalFn::Version => PgType::Text,
        _ => PgType::Catalog(CatalogType::Name),
    }
}

/// An identity function of a parse tree (`current_user`, `current_database()`, …): its value and
/// PostgreSQL's output column name.
fn identity_node(kind: &str, node: &serde_json::Value) -> Option<(LocalFn, &'static str)> {
    use pg_query::protobuf::SqlValueFunctionOp as Op;
    match kind {
        "SqlvalueFunction" => {
            let op = i32::try_from(node.get("op")?.as_i64()?).ok()?;
            Some(match Op::try_from(op).ok()? {
                Op::SvfopCurrentUser => (LocalFn::CurrentUser, "current_user"),
                Op::SvfopSessionUser => (LocalFn::CurrentUser, "session_user"),
                Op::SvfopUser => (LocalFn::CurrentUser, "user"),
                Op::SvfopCurrentRole => (LocalFn::CurrentUser, "current_role"),
                Op::SvfopCurrentCatalog => (LocalFn::CurrentDatabase, "current_catalog"),
                Op::SvfopCurrentSchema => (LocalFn::CurrentSchema, "current_schema"),
                _ => return None,
            })
        }
        "FuncCall" => {
            let empty = |k: &str| {
                node.get(k)
                    .is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
            };
            let flag = |k: &str| node.get(k).and_then(serde_json::Value::as_bool) == Some(true);
            if !empty("args")
                || !empty("agg_order")
                || !empty("agg_filter")
                || !empty("over")
                || flag("agg_star")
                || flag("agg_distinct")
                || flag("func_variadic")
            {
                return None;
            }
            let names: Vec<&str> = node
                .get("funcname")?
                .as_array()?
                .iter()
                .map(|n| n.get("node")?.get("String")?.get("sval")?.as_str())
                .collect::<Option<_>>()?;
            let name = match names.as_slice() {
                [n] | ["pg_catalog", n] => *n,
                _ => return None,
            };
            Some(match name {
                "current_database" => (LocalFn::CurrentDatabase, "current_database"),
                "current_schema" => (LocalFn::CurrentSchema, "current_schema"),
                _ => return None,
            })
        }
        _ => None,
    }
}

/// Whether the text has a word that could be an identity function (cheap; false positives only
/// cost a parse).
fn mentions_identity(sql: &str) -> bool {
    const WORDS: &[&str] = &[
        "user",
        "current_user",
        "session_user",
        "current_role",
        "current_catalog",
        "current_schema",
        "current_database",
    ];
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .any(|w| WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

/// A SELECT/INSERT/UPDATE/DELETE with PostgreSQL's identity functions (`current_user`,
/// `session_user`, `user`, `current_role`, `current_database()`, `current_catalog`,
/// `current_schema[()]`) replaced by their values as string literals, read with PostgreSQL's parser
/// and scanner; a bare one in a target list keeps PostgreSQL's column name (`AS "current_user"`).
/// `None` when there is nothing to replace, or the statement is of another kind (a `DEFAULT
/// current_user` in DDL must not be frozen to one value): the engine then refuses it as before.
pub fn with_identity(sql: &str, id: &Identity, search_path: &str) -> Option<String> {
    if !mentions_identity(sql) || sql.len() > 1 << 20 {
        return None;
    }
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let mut stack: Vec<&serde_json::Value> = vec![];
    let tree: Vec<serde_json::Value> = parsed
        .protobuf
        .stmts
        .iter()
        .map(|raw| serde_json::to_value(raw.stmt.as_ref()?.node.as_ref()?).ok())
        .collect::<Option<_>>()?;
    for stmt in &tree {
        let kind = stmt.as_object()?.keys().next()?;
        if !matches!(
            kind.as_str(),
            "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt"
        ) {
            return None;
        }
        stack.push(stmt);
    }
    // (location, function, PostgreSQL's column name, a call with parentheses?).
    let mut found: Vec<(usize, LocalFn, &'static str, bool)> = vec![];
    let mut named: Vec<usize> = vec![];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => {
                for (k, inner) in map {
                    if k == "ResTarget"
                        && inner
                            .get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or("")
                            .is_empty()
                    {
                        // A bare identity function as an output column: keep PostgreSQL's name.
                        if let Some(val) = inner.get("val").and_then(|v| v.get("node")) {
                            if let Some((vk, vn)) = val.as_object().and_then(|o| o.iter().next()) {
                                if identity_node(vk, vn).is_some() {
                                    if let Some(l) = vn.get("location").and_then(|l| l.as_u64()) {
                                        named.push(usize::try_from(l).ok()?);
                                    }
                                }
                            }
                        }
                    }
                    if let Some((f, col)) = identity_node(k, inner) {
                        let l = inner.get("location")?.as_u64()?;
                        found.push((usize::try_from(l).ok()?, f, col, k == "FuncCall"));
                    }
                    stack.push(inner);
                }
            }
            _ => {}
        }
    }
    if found.is_empty() {
        return None;
    }
    let tokens = pg_query::scan(sql).ok()?.tokens;
    let mut edits: Vec<(usize, usize, String)> = vec![];
    let text_of = |t: &pg_query::protobuf::ScanToken| {
        sql.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?)
    };
    for (at, f, col, is_call) in found {
        let i = tokens
            .iter()
            .position(|t| usize::try_from(t.start).ok() == Some(at))?;
        // A keyword (`current_user`), or a call without arguments: up to its `)`.
        let end_tok = if is_call {
            tokens.get(i..)?.iter().find(|t| text_of(t) == Some(")"))?
        } else {
            tokens.get(i)?
        };
        let end = usize::try_from(end_tok.end).ok()?;
        // Typed `name`, as PostgreSQL types these results (the translator drops the cast and
        // gives the column that type).
        let mut text = match id.value(f, search_path) {
            Some(value) => format!("'{}'::name", value.replace('\'', "''")),
            None => "NULL::name".to_string(),
        };
        if named.contains(&at) {
            text.push_str(&format!(" AS \"{col}\""));
        }
        edits.push((at, end, text));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    edits.dedup_by_key(|e| e.0);
    let mut out = sql.to_string();
    for (a, z, text) in edits {
        if z < a || !out.is_char_boundary(a) || !out.is_char_boundary(z) {
            return None;
        }
        out.replace_range(a..z, &text);
    }
    Some(out)
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
                "transaction"
                    if w.get(i + 1..)
                        .is_some_and(|r| r.windows(2).any(|p| p == ["read", "only"])) =>
                {
                    return Some(Local::SetTransactionReadOnly)
                }
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
                "current_catalog" => ("current_catalog", LocalFn::CurrentDatabase),
                "current_user" => ("current_user", LocalFn::CurrentUser),
                "session_user" => ("session_user", LocalFn::CurrentUser),
                "user" => ("user", LocalFn::CurrentUser),
                "current_role" => ("current_role", LocalFn::CurrentUser),
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

#[cfg(test)]
mod identity_tests {
    use super::*;

    const SP: &str = "\"$user\", public";

    #[test]
    fn identity_functions_become_literals_with_postgresql_column_names() {
        let id = Identity {
            user: "o'app".into(),
            database: "db".into(),
        };
        assert_eq!(
            with_identity("SELECT current_database(), current_user, 1+1", &id, SP).as_deref(),
            Some("SELECT 'db'::name AS \"current_database\", 'o''app'::name AS \"current_user\", 1+1")
        );
        assert_eq!(
            with_identity(
                "SELECT id FROM t WHERE owner = session_user AND x = 'user'",
                &id,
                SP
            )
            .as_deref(),
            Some("SELECT id FROM t WHERE owner = 'o''app'::name AND x = 'user'")
        );
        assert_eq!(
            with_identity(
                "SELECT current_user AS u, pg_catalog.current_schema()",
                &id,
                SP
            )
            .as_deref(),
            Some("SELECT 'o''app'::name AS u, 'public'::name AS \"current_schema\"")
        );
        // DDL keeps them (a DEFAULT must not be frozen); nothing to replace: None.
        assert_eq!(
            with_identity("CREATE TABLE t (o text DEFAULT current_user)", &id, SP),
            None
        );
        assert_eq!(with_identity("SELECT * FROM users", &id, SP), None);
        assert_eq!(with_identity("SELECT \"user\" FROM t", &id, SP), None);
        // current_schema: the first schema of the search_path that exists, else NULL.
        assert_eq!(
            with_identity("SELECT current_schema", &id, "nope, \"$user\", pg_catalog").as_deref(),
            Some("SELECT 'pg_catalog'::name AS \"current_schema\"")
        );
        assert_eq!(
            with_identity("SELECT current_schema()", &id, "nope").as_deref(),
            Some("SELECT NULL::name AS \"current_schema\"")
        );
    }
}
