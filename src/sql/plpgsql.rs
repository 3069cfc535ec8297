//! The tables used inside `DO` blocks and function bodies.
//!
//! Owns: reading a PL/pgSQL body with libpg_query's PL/pgSQL parser (`parse_plpgsql`) and
//! analysing every SQL statement and expression in it with PostgreSQL's parser in the parse mode
//! PL/pgSQL itself uses; reading `LANGUAGE sql` bodies as SQL. `EXECUTE` of a string, bodies in
//! other languages and bodies that cannot be read are reported as [`Dynamic`], never ignored.
//!
//! Must never: recurse without bound (bodies inside bodies stop at `MAX_BODY_DEPTH`; the JSON
//! walk uses an explicit stack), or treat an unreadable body as touching no tables.

use serde_json::Value;

use super::parse::{def_elems, parse_mode, str_field, string_list, string_node, AnalysisError};
use super::relations::{collect, Collected, Dynamic, MAX_BODY_DEPTH};

/// Languages whose bodies name no tables bindproxy must know of.
const OPAQUE_SAFE: &[&str] = &["c", "internal"];

/// `DO [LANGUAGE l] 'body'`.
pub(crate) fn do_block(stmt: &Value, depth: usize, out: &mut Collected) {
    out.literal_names = true;
    let mut body = None;
    let mut language = "plpgsql".to_owned();
    for (name, arg) in def_elems(stmt, "args") {
        let value = arg.and_then(string_node);
        match name {
            "as" => body = value,
            "language" => language = value.unwrap_or_default().to_owned(),
            _ => {}
        }
    }
    let Some(body) = body else { return };
    if language != "plpgsql" {
        out.dynamic(Dynamic::Language(language));
        return;
    }
    plpgsql_function(&wrap(body, Wrapper::Do), depth, out);
}

/// How a bare PL/pgSQL body is made into a function libpg_query can read.
enum Wrapper {
    /// A `DO` block: a `void` function.
    Do,
    /// A trigger function's body. libpg_query's reader cannot print trigger functions, so the
    /// body becomes a block nested in an ordinary function that declares what a trigger has.
    Trigger,
}

/// A `CREATE FUNCTION` statement around `body`, quoted with a dollar tag not found in it.
fn wrap(body: &str, how: Wrapper) -> String {
    let mut tag = String::from("$bp$");
    let mut n = 0;
    while body.contains(tag.as_str()) {
        n += 1;
        tag = format!("$bp{n}$");
    }
    match how {
        Wrapper::Do => format!(
            "CREATE FUNCTION bindproxy_do() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
        ),
        Wrapper::Trigger => {
            let body = body.trim_end();
            let body = body.strip_suffix(';').unwrap_or(body);
            format!(
                "CREATE FUNCTION bindproxy_trigger() RETURNS record LANGUAGE plpgsql AS {tag}\
                 DECLARE new record; old record; tg_op text; tg_name text; tg_when text; \
                 tg_level text; tg_table_name text; tg_table_schema text; tg_relid oid; \
                 tg_nargs int; tg_argv text[]; tg_event text; tg_tag text; BEGIN\n{body}\n; END{tag}"
            )
        }
    }
}

/// `CREATE FUNCTION/PROCEDURE … LANGUAGE l AS 'body'` (a `BEGIN ATOMIC` body is part of the
/// tree and walked with it).
pub(crate) fn function_body(stmt: &Value, text: &str, depth: usize, out: &mut Collected) {
    let mut language = None;
    let mut body = None;
    for (name, arg) in def_elems(stmt, "options") {
        match name {
            "language" => language = arg.and_then(string_node).map(str::to_owned),
            "as" => {
                body = arg
                    .and_then(string_list)
                    .and_then(|l| l.first().map(|s| s.to_string()))
            }
            _ => {}
        }
    }
    let Some(body) = body else { return };
    out.literal_names = true;
    let language = language.unwrap_or_else(|| "sql".to_owned());
    let returns = stmt
        .get("return_type")
        .and_then(|t| t.get("names"))
        .and_then(string_list)
        .and_then(|n| n.last().map(|s| s.to_string()))
        .unwrap_or_default();
    match language.as_str() {
        "plpgsql" if returns == "trigger" || returns == "event_trigger" => {
            plpgsql_function(&wrap(&body, Wrapper::Trigger), depth, out)
        }
        "plpgsql" => plpgsql_function(text, depth, out),
        "sql" => sql_body(&body, depth, out),
        l if OPAQUE_SAFE.contains(&l) => {}
        _ => out.dynamic(Dynamic::Language(language)),
    }
}

/// SQL text found in a body: its statements' relations join `out`.
fn sql_body(sql: &str, depth: usize, out: &mut Collected) {
    sql_in_mode(sql, pg_query::ParserOptions::DEFAULT, depth, out)
}

fn sql_in_mode(sql: &str, mode: pg_query::ParserOptions, depth: usize, out: &mut Collected) {
    if depth + 1 > MAX_BODY_DEPTH {
        out.dynamic(Dynamic::NestedBodies);
        return;
    }
    match parse_mode(sql, mode) {
        Ok(stmts) => {
            for s in stmts {
                let text = sql.get(s.span.clone()).unwrap_or(sql);
                collect(&s.node, text, depth + 1, out);
            }
        }
        Err(AnalysisError::Syntax { message }) => out.dynamic(Dynamic::UnreadableBody(message)),
        Err(e) => out.dynamic(Dynamic::UnreadableBody(e.to_string())),
    }
}

/// A whole `CREATE FUNCTION … LANGUAGE plpgsql` statement.
fn plpgsql_function(text: &str, depth: usize, out: &mut Collected) {
    if depth + 1 > MAX_BODY_DEPTH {
        out.dynamic(Dynamic::NestedBodies);
        return;
    }
    let tree = match pg_query::parse_plpgsql(text) {
        Ok(t) => t,
        Err(e) => {
            let message = match e {
                pg_query::Error::Parse(m) => m,
                other => other.to_string(),
            };
            out.dynamic(Dynamic::UnreadableBody(message));
            return;
        }
    };
    let mut stack: Vec<&Value> = vec![&tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                for (key, child) in map {
                    match key.as_str() {
                        "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" => {
                            out.dynamic(Dynamic::ExecuteInBody)
                        }
                        "PLpgSQL_stmt_open" | "PLpgSQL_stmt_return_query"
                            if child.get("dynquery").is_some() =>
                        {
                            out.dynamic(Dynamic::ExecuteInBody)
                        }
                        "PLpgSQL_expr" => {
                            let query = str_field(child, "query");
                            let mode = child.get("parseMode").and_then(Value::as_i64).unwrap_or(0);
                            sql_in_mode(
                                query,
                                pg_query::ParserOptions::from(mode as i32),
                                depth,
                                out,
                            );
                        }
                        _ => {}
                    }
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
}
