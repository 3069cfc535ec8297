//! Reading one bind's tables into the catalog model.
//!
//! Owns: the entry points the catalog calls ([`read_bind`], [`read_tables`]), [`ReadError`], and what
//! the three engine readers share: cells of a text result, PostgreSQL's own naming of the
//! constraints it names itself (`<table>_pkey`, `<table>_<cols>_key`, `<table>_<col>_check`,
//! `<table>_<cols>_fkey`, 63-byte truncation as `makeObjectName` does), and the tables bindproxy
//! keeps for itself (never shown).
//!
//! Must never: write to a bind (every query here is a read of the engine's catalog), or keep a
//! connection: PostgreSQL reads run on a fresh connection that is closed afterwards, MySQL/SQLite
//! reads on a pooled connection given back clean.

pub mod mysql;
pub mod pg;
pub mod sqlite;

use crate::backend::Bind;
use crate::catalog::model::BindSchema;
use crate::error::ProxyError;
use crate::sql::TableName;

/// Why a bind's catalog could not be read. Each names the bind.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("bind \"{bind}\": cannot connect to read its catalog: {source}")]
    Connect {
        bind: String,
        #[source]
        source: ProxyError,
    },
    #[error("bind \"{bind}\": the connection failed while reading its catalog: {source}")]
    Lost {
        bind: String,
        #[source]
        source: crate::backend::pg::conn::ConnectError,
    },
    #[error("bind \"{bind}\": reading {what} failed: {message}")]
    Query {
        bind: String,
        what: &'static str,
        message: String,
    },
    #[error("bind \"{bind}\": unexpected answer while reading {what}: {detail}")]
    Unexpected {
        bind: String,
        what: &'static str,
        detail: String,
    },
}

/// Reads every user table (and view, sequence, enum) of one bind. PostgreSQL: every schema except
/// pg_catalog, information_schema, pg_toast*, pg_temp*; MySQL: the URL's database; SQLite: main.
pub async fn read_bind(bind: &Bind) -> Result<BindSchema, ReadError> {
    match bind {
        Bind::Pg(p) => pg::read(p, None).await,
        Bind::Translated(t) if t.is_mysql() => mysql::read(t, None).await,
        Bind::Translated(t) => sqlite::read(t, None).await,
    }
}

/// The same, for a subset of tables (after DDL on them): `names` are engine-level names
/// (PostgreSQL: schema-qualified `TableName`s, an unqualified one found through the default
/// `search_path`; MySQL/SQLite: bare names, a schema is ignored). Missing tables are simply absent
/// from the result.
pub async fn read_tables(bind: &Bind, names: &[TableName]) -> Result<BindSchema, ReadError> {
    if names.is_empty() {
        return Ok(BindSchema::default());
    }
    match bind {
        Bind::Pg(p) => pg::read(p, Some(names)).await,
        Bind::Translated(t) if t.is_mysql() => mysql::read(t, Some(names)).await,
        Bind::Translated(t) => sqlite::read(t, Some(names)).await,
    }
}

/// Tables bindproxy creates in a bind for itself (the two-phase commit's decision marker): not
/// the client's, never in the catalog.
pub(crate) fn is_internal(table: &str) -> bool {
    table == "bindproxy_decisions"
}

/// One result row of a text query.
pub(crate) type Row = Vec<Option<String>>;

/// The cell `i` of a row (NULL and a missing cell alike are `None`).
pub(crate) fn cell(row: &Row, i: usize) -> Option<&str> {
    row.get(i).and_then(|c| c.as_deref())
}

/// The cell `i`, which must be there.
pub(crate) fn need<'r>(
    bind: &str,
    what: &'static str,
    row: &'r Row,
    i: usize,
) -> Result<&'r str, ReadError> {
    cell(row, i).ok_or_else(|| ReadError::Unexpected {
        bind: bind.into(),
        what,
        detail: format!("no value in column {}", i + 1),
    })
}

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`).
const MAX_NAME: usize = 63;

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// PostgreSQL's `makeObjectName(name1, name2, label)`: `name1_name2_label`, the longer of the
/// first two parts shortened until the whole fits in 63 bytes.
pub(crate) fn object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = MAX_NAME.saturating_sub(overhead);
    let (mut l1, mut l2) = (name1.len(), name2.map_or(0, str::len));
    while l1 + l2 > avail {
        if l1 > l2 {
            l1 -= 1;
        } else {
            l2 -= 1;
        }
    }
    let mut s = clip(name1, l1).to_owned();
    if let Some(n2) = name2 {
        s.push('_');
        s.push_str(clip(n2, l2));
    }
    s.push('_');
    s.push_str(label);
    s
}

/// The name PostgreSQL gives an unnamed constraint (`ChooseConstraintName`): `object_name` with the
/// columns joined by `_`, and a number appended to the label while the name is taken.
pub(crate) fn choose_name(
    table: &str,
    columns: &[&str],
    label: &str,
    taken: &mut Vec<String>,
) -> String {
    let cols = columns.join("_");
    let name2 = (!columns.is_empty()).then_some(cols.as_str());
    let mut n = 0u32;
    loop {
        let l = if n == 0 {
            label.to_owned()
        } else {
            format!("{label}{n}")
        };
        let name = object_name(table, name2, &l);
        if !taken.contains(&name) {
            taken.push(name.clone());
            return name;
        }
        n += 1;
    }
}

/// Double-quoted identifiers of an expression written by the translator (`"price" > 0`): the
/// distinct names, in order. PostgreSQL names an unnamed CHECK after its column when it
/// references exactly one.
/// A string literal for an engine's own catalog query (MySQL runs with `NO_BACKSLASH_ESCAPES`;
/// SQLite has no escapes): quotes doubled.
pub(crate) fn engine_literal(s: &str) -> String {
    crate::catalog::ddl::quote_literal(s)
}

pub(crate) fn quoted_identifiers(expr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => in_string = !in_string,
            '"' if !in_string => {
                let mut id = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            id.push('"');
                        }
                        Some('"') | None => break,
                        Some(ch) => id.push(ch),
                    }
                }
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            _ => {}
        }
    }
    out
}

/// The type without its modifiers (`character varying(20)` → `character varying`), as
/// PostgreSQL writes the cast of a literal default.
pub(crate) fn type_without_typmod(type_sql: &str) -> String {
    match type_sql.split_once('(') {
        Some((head, rest)) => {
            let tail = rest.split_once(')').map_or("", |(_, t)| t);
            format!("{}{}", head.trim_end(), tail)
        }
        None => type_sql.to_owned(),
    }
}

/// `((x))` → `x`: parentheses around the whole expression only (`f(a)` stays whole).
fn strip_outer_parens(mut s: &str) -> &str {
    loop {
        s = s.trim();
        let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
            return s;
        };
        // The opening parenthesis must close at the very end.
        let mut depth = 0i32;
        let mut in_string = false;
        for c in inner.chars() {
            match c {
                '\'' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth < 0 {
                        return s;
                    }
                }
                _ => {}
            }
        }
        if depth != 0 {
            return s;
        }
        s = inner;
    }
}

/// A default read from MySQL/SQLite as a PostgreSQL expression, for the common forms the
/// translator writes: the current time, quoted strings (cast to the column type, as PostgreSQL
/// prints them), booleans stored as numbers. Other expressions are kept as they are.
pub(crate) fn pg_default(raw: &str, type_sql: &str) -> Option<String> {
    let d = raw.trim();
    if d.is_empty() || d.eq_ignore_ascii_case("null") {
        return None;
    }
    let bare = strip_outer_parens(d);
    let lower = bare.to_ascii_lowercase();
    let now = lower.starts_with("current_timestamp")
        || lower.starts_with("now(")
        || lower == "strftime('%y-%m-%d %h:%m:%f', 'now')"
        || lower == "localtimestamp";
    if now {
        return Some("CURRENT_TIMESTAMP".into());
    }
    if lower == "curdate()" || lower.starts_with("current_date") {
        return Some("CURRENT_DATE".into());
    }
    if type_sql == "boolean" {
        match lower.as_str() {
            "1" | "true" | "'1'" | "'t'" | "'true'" => return Some("true".into()),
            "0" | "false" | "'0'" | "'f'" | "'false'" => return Some("false".into()),
            _ => {}
        }
    }
    if d.starts_with('\'') && d.ends_with('\'') && d.len() >= 2 {
        return Some(format!("{d}::{}", type_without_typmod(type_sql)));
    }
    Some(d.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_postgresql_chooses_them() {
        let mut taken = vec![];
        assert_eq!(
            choose_name("t", &["a", "b"], "key", &mut taken),
            "t_a_b_key"
        );
        assert_eq!(choose_name("t", &[], "check", &mut taken), "t_check");
        assert_eq!(choose_name("t", &[], "check", &mut taken), "t_check1");
        let long = "x".repeat(70);
        let n = object_name(&long, Some("col"), "fkey");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_col_fkey"));
    }

    #[test]
    fn quoted_identifiers_skip_strings() {
        assert_eq!(
            quoted_identifiers("\"a\" > 0 AND \"b\"\"c\" <> '\"x\"' AND \"a\" < 9"),
            vec!["a".to_string(), "b\"c".to_string()]
        );
    }

    #[test]
    fn defaults_map_to_postgresql_forms() {
        assert_eq!(
            pg_default("current_timestamp(6)", "timestamp without time zone").as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(
            pg_default("(strftime('%Y-%m-%d %H:%M:%f', 'now'))", "timestamp").as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(
            pg_default("'x'", "character varying(5)").as_deref(),
            Some("'x'::character varying")
        );
        assert_eq!(pg_default("1", "boolean").as_deref(), Some("true"));
        assert_eq!(pg_default("NULL", "text"), None);
        assert_eq!(pg_default("42", "integer").as_deref(), Some("42"));
        assert_eq!(
            pg_default("strftime('%Y-%m-%d %H:%M:%f', 'now')", "timestamp").as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(strip_outer_parens("((a) + (b))"), "(a) + (b)");
        assert_eq!(strip_outer_parens("(a) + (b)"), "(a) + (b)");
    }
}
