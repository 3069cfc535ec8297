//! PostgreSQL's own parser, through libpg_query (the `pg_query` crate).
//!
//! Owns: turning one query string into its statements (byte spans, as PostgreSQL's parser splits
//! them) with a parse tree each, and the typed [`AnalysisError`] for what cannot be analysed: a
//! syntax error (PostgreSQL's own message), a statement nested too deeply, one too large, a NUL
//! byte.
//!
//! The tree is handed on as JSON (`serde_json::Value`, from the crate's protobuf structs) so that
//! the relation walk in `relations.rs` can visit every node generically, whatever its type: a node
//! type nobody listed is still searched for relations.
//!
//! Bounds: libpg_query checks its own C stack depth; the protobuf decoding of its output stops at
//! 100 levels of nesting (prost's recursion limit), which is reported as [`AnalysisError::TooDeep`]
//! before anything recursive runs in Rust. Texts longer than [`MAX_PARSE_BYTES`] are not parsed
//! (see `bulk.rs` for the one shape that is routed without a full parse).
//!
//! Must never: decide a bind, or panic on any input.

use std::ops::Range;

use serde_json::Value;

/// The largest text given to the full parser (after `reduce.rs` collapsed its lists of
/// literals). A parse tree, with its protobuf and JSON forms, costs about 600 bytes of memory per
/// byte of text (3.9 MB of IN list took 2.2 GB): this bounds one analysis to about 150 MB.
pub const MAX_PARSE_BYTES: usize = 256 * 1024;

/// Why a query string could not be analysed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    /// PostgreSQL's parser rejects the text; nothing may run.
    #[error("{message}")]
    Syntax {
        /// PostgreSQL's own message (`syntax error at or near "…"`).
        message: String,
    },
    /// The statement nests deeper than the analysis allows.
    #[error("statement is nested too deeply for bindproxy to analyse (at most about 45 chained operators or 20 nested subqueries in one expression)")]
    TooDeep,
    /// The statement is longer than the analysis allows.
    #[error("statement of {bytes} bytes is too large for bindproxy to analyse (limit {limit} bytes once lists of literals are collapsed; IN lists and multi-row VALUES of literals may be of any size)")]
    TooLarge {
        /// The statement's length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A NUL byte in the text, which PostgreSQL never accepts in a query.
    #[error("invalid byte sequence for encoding \"UTF8\": 0x00")]
    NulByte,
    /// `standard_conforming_strings = off` would change how every later string literal is read.
    #[error("standard_conforming_strings = off is not supported by bindproxy")]
    EscapeStringsOff,
    /// A `/* bindproxy: … */` comment that cannot be read.
    #[error("routing hint {hint:?} is not understood: {reason}")]
    BadHint {
        /// The comment's text.
        hint: String,
        /// What is wrong.
        reason: String,
    },
}

/// One statement of a query string as PostgreSQL's parser sees it.
pub(crate) struct ParsedStatement {
    /// Byte range of the statement in the query string (without the `;`).
    pub span: Range<usize>,
    /// The statement node: a one-key object such as `{"SelectStmt": {…}}`.
    pub node: Value,
}

/// Parses a query string into its statements.
pub(crate) fn parse(sql: &str) -> Result<Vec<ParsedStatement>, AnalysisError> {
    parse_mode(sql, pg_query::ParserOptions::DEFAULT)
}

/// Parses with one of libpg_query's modes (PL/pgSQL expressions and assignments).
pub(crate) fn parse_mode(
    sql: &str,
    mode: pg_query::ParserOptions,
) -> Result<Vec<ParsedStatement>, AnalysisError> {
    if sql.len() > MAX_PARSE_BYTES {
        return Err(AnalysisError::TooLarge {
            bytes: sql.len(),
            limit: MAX_PARSE_BYTES,
        });
    }
    if sql.as_bytes().contains(&0) {
        return Err(AnalysisError::NulByte);
    }
    let result = pg_query::parse(sql, mode).map_err(map_error)?;
    let mut out = Vec::with_capacity(result.protobuf.stmts.len());
    for raw in &result.protobuf.stmts {
        let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        let start = usize::try_from(raw.stmt_location)
            .unwrap_or(0)
            .min(sql.len());
        let end = match usize::try_from(raw.stmt_len) {
            Ok(0) | Err(_) => sql.len(),
            Ok(n) => (start + n).min(sql.len()),
        };
        let node = serde_json::to_value(stmt).map_err(|_| AnalysisError::TooDeep)?;
        out.push(ParsedStatement {
            span: start..end,
            node,
        });
    }
    Ok(out)
}

fn map_error(e: pg_query::Error) -> AnalysisError {
    match e {
        pg_query::Error::Decode(_) => AnalysisError::TooDeep,
        // libpg_query's own stack check, and bison's stack limit on deep parentheses
        pg_query::Error::Parse(message)
            if message.contains("stack depth limit exceeded")
                || message.contains("nested too deeply")
                || message.starts_with("memory exhausted") =>
        {
            AnalysisError::TooDeep
        }
        pg_query::Error::Parse(message) => AnalysisError::Syntax { message },
        pg_query::Error::Conversion(_) => AnalysisError::NulByte,
        // libpg_query's own bound on the tree it serializes
        other if other.to_string().contains("nested too deeply") => AnalysisError::TooDeep,
        other => AnalysisError::Syntax {
            message: other.to_string(),
        },
    }
}

/// The values of the string literals of a text, as PostgreSQL's scanner delimits them (`'…'`,
/// `E'…'`, `U&'…'`, dollar quotes); empty when the scanner rejects the text. Escapes are not
/// decoded beyond doubled quotes: the values are for reading names, not for data.
pub fn string_literals(sql: &str) -> Vec<String> {
    use pg_query::protobuf::Token;
    let Ok(scan) = pg_query::scan(sql) else {
        return Vec::new();
    };
    scan.tokens
        .iter()
        .filter(|t| t.token == Token::Sconst as i32 || t.token == Token::Usconst as i32)
        .filter_map(|t| {
            let text = sql.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?)?;
            Some(literal_value(text))
        })
        .collect()
}

fn literal_value(token: &str) -> String {
    if let Some(after) = token.strip_prefix('$') {
        // $tag$…$tag$
        let tag_end = after.find('$').map(|i| i + 2).unwrap_or(token.len());
        let tag = &token[..tag_end];
        return token[tag_end..]
            .strip_suffix(tag)
            .unwrap_or(&token[tag_end..])
            .to_owned();
    }
    let Some(open) = token.find('\'') else {
        return token.to_owned();
    };
    let inner = &token[open + 1..];
    inner.strip_suffix('\'').unwrap_or(inner).replace("''", "'")
}

/// The one-key object's key and value: `{"SelectStmt": {…}}` → `("SelectStmt", {…})`. A protobuf
/// `Node` wrapper (`{"node": {…}}`) is looked through.
pub(crate) fn node(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, inner) = map.iter().next()?;
    if k == "node" {
        return node(inner);
    }
    Some((k.as_str(), inner))
}

/// The text of a `String` node (`{"node": {"String": {"sval": "x"}}}`).
pub(crate) fn string_node(v: &Value) -> Option<&str> {
    match node(v)? {
        ("String", s) => s.get("sval")?.as_str(),
        _ => None,
    }
}

/// The string value of a constant (`{"AConst": {"val": {"Sval": {"sval": "x"}}}}`).
pub(crate) fn string_const(v: &Value) -> Option<&str> {
    match node(v)? {
        ("AConst", c) => c.get("val")?.get("Sval")?.get("sval")?.as_str(),
        _ => None,
    }
}

/// The strings of a `List` node's items, or of a JSON array of `String` nodes.
pub(crate) fn string_list(v: &Value) -> Option<Vec<&str>> {
    let items = match node(v) {
        Some(("List", l)) => l.get("items")?,
        _ => v,
    };
    items.as_array()?.iter().map(string_node).collect()
}

/// The `DefElem` options in the list field `key` (`args`, `options`), as `(defname, arg)`.
pub(crate) fn def_elems<'a>(
    v: &'a Value,
    key: &str,
) -> impl Iterator<Item = (&'a str, Option<&'a Value>)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| match node(o) {
            Some(("DefElem", d)) => Some((str_field(d, "defname"), d.get("arg"))),
            _ => None,
        })
}

/// An integer field (protobuf enums are numbers in the JSON form).
pub(crate) fn int_field(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// A string field, empty when absent.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(
            string_literals("SELECT 'a''b', E'c', $$d$$, $t$e$t$, U&'f' -- 'no'"),
            ["a'b", "c", "d", "e", "f"]
        );
        assert!(string_literals("SELECT 'open").is_empty());
    }

    #[test]
    fn spans_and_errors() {
        let p = parse("SELECT 1; SELECT 2 ;").expect("parses");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].span, 0..8);
        assert_eq!(node(&p[0].node).map(|n| n.0), Some("SelectStmt"));
        assert!(matches!(
            parse("SELEC 1"),
            Err(AnalysisError::Syntax { .. })
        ));
        assert_eq!(
            parse(&format!("SELECT {}", vec!["1"; 500].join("+"))).err(),
            Some(AnalysisError::TooDeep)
        );
        assert_eq!(parse("SELECT '\0'").err(), Some(AnalysisError::NulByte));
    }
}
