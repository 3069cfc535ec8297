//! Whether a statement may run on a read replica: a plain read, decided on PostgreSQL's own parse
//! tree.
//!
//! Owns: [`replica_safe`], [`creates_temporary`] (a statement whose effect only the primary's
//! session sees), and the list of functions known to have no side effect
//! ([`SAFE_FUNCTIONS`]). A statement is replica-safe when it is a `SELECT` (or `VALUES`, `TABLE t`)
//! with, at any depth, no locking clause (`FOR UPDATE`/`FOR SHARE`/…), no `INTO`, no
//! data-modifying CTE (`INSERT`/`UPDATE`/`DELETE`/`MERGE` anywhere in the tree) and no call of a
//! function that is not on the list (`nextval`, `setval`, `currval`, `set_config`,
//! `pg_advisory_lock`, user functions, … are not: what is not known to be safe is not).
//!
//! Must never: decide a bind (the session does, with the bind's replicas and its own state),
//! read the SQL text, or recurse on the tree (an explicit stack).

use serde_json::Value;

use super::parse::{node, string_node};

/// Functions of `pg_catalog` that read only: aggregates, window functions, arithmetic, text,
/// date/time, JSON and array functions, type conversions, and the server information functions
/// (`pg_is_in_recovery`, `inet_server_port`, …). Sorted, for a binary search.
const SAFE_FUNCTIONS: &[&str] = &[
    "abs",
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_dims",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "avg",
    "bit_and",
    "bit_length",
    "bit_or",
    "bool",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "chr",
    "clock_timestamp",
    "coalesce",
    "col_description",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_database",
    "current_schema",
    "current_schemas",
    "current_setting",
    "date",
    "date_bin",
    "date_part",
    "date_trunc",
    "decode",
    "degrees",
    "dense_rank",
    "div",
    "encode",
    "every",
    "exp",
    "extract",
    "first_value",
    "float4",
    "float8",
    "floor",
    "format",
    "format_type",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "greatest",
    "inet_server_addr",
    "inet_server_port",
    "initcap",
    "int2",
    "int4",
    "int8",
    "interval",
    "isfinite",
    "json",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object_agg",
    "json_object_keys",
    "json_strip_nulls",
    "json_typeof",
    "jsonb",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "log",
    "log10",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "numeric",
    "obj_description",
    "octet_length",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_backend_pid",
    "pg_is_in_recovery",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_postmaster_start_time",
    "pg_typeof",
    "pi",
    "position",
    "pow",
    "power",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "radians",
    "random",
    "rank",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "sha256",
    "sign",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "strpos",
    "substr",
    "substring",
    "sum",
    "text",
    "timestamp",
    "timestamptz",
    "timezone",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "translate",
    "trim",
    "trunc",
    "unnest",
    "upper",
    "uuid",
    "var_pop",
    "var_samp",
    "varchar",
    "variance",
    "version",
    "width_bucket",
];

/// Statements nested anywhere in a tree that change data (a data-modifying CTE).
const WRITING_NODES: &[&str] = &["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"];

/// True when the statement (one top node of libpg_query's tree) is a plain read that a replica
/// can answer exactly as the primary would (see the module's doc).
pub(crate) fn replica_safe(stmt: &Value) -> bool {
    if !matches!(node(stmt), Some(("SelectStmt", _))) {
        return false;
    }
    let mut stack = vec![stmt];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, child) in map {
                    match key.as_str() {
                        "locking_clause" | "into_clause" if !is_empty(child) => return false,
                        k if WRITING_NODES.contains(&k) => return false,
                        "FuncCall" if !safe_call(child) => return false,
                        _ => {}
                    }
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
    true
}

/// True when the statement creates a temporary relation (`CREATE TEMP TABLE`, `SELECT … INTO
/// TEMP`, `CREATE TEMP VIEW`, …): it exists in that session of the primary only, so the session's
/// later reads of the bind must stay there.
pub(crate) fn creates_temporary(stmt: &Value) -> bool {
    if matches!(node(stmt), Some(("SelectStmt", _))) && !has_key(stmt, "into_clause") {
        return false;
    }
    let mut stack = vec![stmt];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.get("relpersistence").and_then(Value::as_str) == Some("t") {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// True when the top node has `key` set (not null, not empty).
fn has_key(stmt: &Value, key: &str) -> bool {
    node(stmt)
        .and_then(|(_, v)| v.get(key))
        .is_some_and(|v| !is_empty(v))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// A function call on the list: unqualified, or qualified by `pg_catalog`.
fn safe_call(call: &Value) -> bool {
    let Some(parts) = call.get("funcname").and_then(Value::as_array) else {
        return false;
    };
    let names: Vec<&str> = parts.iter().filter_map(string_node).collect();
    if names.len() != parts.len() {
        return false;
    }
    let name = match names.as_slice() {
        [name] => name,
        ["pg_catalog", name] => name,
        _ => return false,
    };
    SAFE_FUNCTIONS.binary_search(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(sql: &str) -> bool {
        let parsed = crate::sql::parse::parse(sql).unwrap();
        assert_eq!(parsed.len(), 1, "{sql}");
        replica_safe(&parsed[0].node)
    }

    #[test]
    fn the_list_is_sorted() {
        assert!(SAFE_FUNCTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn plain_reads_are_safe() {
        for sql in [
            "SELECT * FROM t WHERE id = $1",
            "SELECT pg_is_in_recovery(), inet_server_port() FROM t LIMIT 1",
            "SELECT count(*), max(x) FROM t JOIN u USING (id) GROUP BY y",
            "WITH a AS (SELECT * FROM t) SELECT * FROM a",
            "SELECT * FROM t WHERE x IN (SELECT y FROM u)",
            "VALUES (1), (2)",
            "TABLE t",
            "SELECT pg_catalog.lower(name) FROM t",
            "SELECT now(), CURRENT_TIMESTAMP, coalesce(a, b) FROM t",
        ] {
            assert!(safe(sql), "{sql}");
        }
    }

    #[test]
    fn temporary_relations() {
        let temp = |sql: &str| {
            let parsed = crate::sql::parse::parse(sql).unwrap();
            creates_temporary(&parsed[0].node)
        };
        for sql in [
            "CREATE TEMP TABLE t (id int)",
            "CREATE TEMPORARY TABLE t AS SELECT 1",
            "SELECT * INTO TEMP t2 FROM t",
            "CREATE TEMP VIEW v AS SELECT * FROM t",
            "CREATE TEMP SEQUENCE s",
        ] {
            assert!(temp(sql), "{sql}");
        }
        for sql in [
            "CREATE TABLE t (id int)",
            "SELECT * FROM t",
            "INSERT INTO t VALUES (1)",
            "SELECT * INTO t2 FROM t",
        ] {
            assert!(!temp(sql), "{sql}");
        }
    }

    #[test]
    fn writes_locks_and_unknown_functions_are_not() {
        for sql in [
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED",
            "SELECT * FROM (SELECT * FROM t FOR UPDATE) s",
            "SELECT nextval('s')",
            "SELECT id, currval('s') FROM t",
            "SELECT setval('s', 1)",
            "SELECT set_config('a.b', 'c', false) FROM t",
            "SELECT pg_advisory_lock(1)",
            "SELECT my_function(x) FROM t",
            "SELECT public.lower(x) FROM t",
            "SELECT * FROM t WHERE x = (SELECT nextval('s'))",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i",
            "SELECT * INTO t2 FROM t",
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET x = 1",
            "COPY t TO STDOUT",
            "SET search_path = a",
            "EXPLAIN ANALYZE DELETE FROM t",
            "SELECT * FROM generate_series(1, 3), pg_sleep(1)",
        ] {
            assert!(!safe(sql), "{sql}");
        }
    }
}
