//! Catalog queries for the embedded catalog (no PostgreSQL server): PostgreSQL statements over
//! `pg_catalog` and `information_schema` re-rendered for the SQLite database that
//! `catalog/embedded` fills.
//!
//! Owns: two ways a catalog statement is answered, and nothing else.
//! - **Known statements** ([`known`]): the exact catalog queries psql 15 (`\dt`, `\d NAME`, `\dn`,
//!   `\l`, `\di`) and SQLAlchemy 2's PostgreSQL inspector send (both psycopg and psycopg2). A query
//!   text is reduced to its *shape* ([`shape`]: tokens from the PostgreSQL tokenizer, every literal
//!   and `$n` replaced by a slot, lists of slots collapsed), and a shape in the table is rendered
//!   as its hand-written SQLite equivalent with the query's own values put back in (literals
//!   re-quoted by bindproxy, `$n` as `?`), and PostgreSQL's result types.
//! - **Plain reads** of the catalog relations the embedded catalog holds (`SELECT … FROM
//!   pg_tables`, `information_schema.tables`, `pg_class`, …): the relation names are moved to the
//!   SQLite tables' names and the statement goes through the ordinary translator (its allowlist).
//!
//! Must never: answer a statement it cannot answer as PostgreSQL would. Anything else is
//! [`TranslateError::Unsupported`] (0A000) naming the `catalog:` setting, never a guess.

mod known;
mod shape;

use sqlparser::ast::{visit_relations_mut, Ident, ObjectName, ObjectNamePart, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Tokenizer;

use super::{Kind, ResultType, Rewritten, TagHint, Target, TranslateError};

/// The text every refusal carries: where the full catalog comes from.
pub const NEEDS_CATALOG_DATABASE: &str =
    "without a PostgreSQL catalog database; set `catalog:` to a PostgreSQL database for the full catalog";

/// The SQLite function the embedded catalog registers for PostgreSQL's `~` (regular expression
/// match, `regex` crate syntax, which agrees with PostgreSQL's ARE for the anchored name patterns
/// psql sends): `bindproxy_regex(text, pattern)` → 1/0, NULL when either is NULL.
pub const REGEX_FUNCTION: &str = "bindproxy_regex";

/// The catalog relations the embedded catalog holds: PostgreSQL name (schema, relation) → its
/// SQLite table.
pub fn sqlite_table(schema: Option<&str>, relation: &str) -> Option<String> {
    let known = known::RELATIONS;
    match schema {
        None | Some("pg_catalog") if known.contains(&relation) && relation.starts_with("pg_") => {
            Some(relation.to_string())
        }
        Some("information_schema") if matches!(relation, "tables" | "columns") => {
            Some(format!("information_schema_{relation}"))
        }
        _ => None,
    }
}

/// Re-renders one catalog statement (the caller's text holds exactly one) for the embedded
/// catalog's SQLite database.
pub fn rewrite_sql(sql: &str) -> Result<Vec<Rewritten>, TranslateError> {
    let shape = shape::Shape::of(sql)?;
    if let Some(entry) = known::find(&shape.key) {
        return Ok(vec![entry.render(&shape)?]);
    }
    plain(sql)
}

/// A statement outside the known table: a SELECT whose relations are all catalog relations the
/// embedded catalog holds, through the ordinary translator. Bounded as [`super::rewrite_sql`]
/// bounds statements: size, then nesting before the parser runs.
fn plain(sql: &str) -> Result<Vec<Rewritten>, TranslateError> {
    if sql.len() > super::MAX_STATEMENT_BYTES {
        return Err(TranslateError::TooLarge {
            bytes: sql.len(),
            limit: super::MAX_STATEMENT_BYTES,
        });
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| TranslateError::Parse(e.to_string()))?;
    let nesting = super::depth::nesting(&tokens);
    super::depth::check(nesting)?;
    super::depth::on_deep_stack(nesting, move || {
        let stmts = Parser::new(&PostgreSqlDialect {})
            .with_recursion_limit(super::depth::PARSER_RECURSION_LIMIT)
            .with_tokens_with_locations(tokens)
            .parse_statements()
            .map_err(|_| refuse("this catalog query"))?;
        let [stmt] = <[Statement; 1]>::try_from(stmts).map_err(|_| refuse("this catalog query"))?;
        plain_statement(stmt).map(|r| vec![r])
    })
}

fn refuse(what: &str) -> TranslateError {
    TranslateError::unsupported(format!("{what} {NEEDS_CATALOG_DATABASE}"))
}

fn plain_statement(mut stmt: Statement) -> Result<Rewritten, TranslateError> {
    let Statement::Query(q) = &stmt else {
        return Err(refuse("this catalog statement"));
    };
    if !matches!(*q.body, SetExpr::Select(_)) {
        return Err(refuse("this catalog query"));
    }
    let mut unknown: Option<String> = None;
    let _ = visit_relations_mut(&mut stmt, |name: &mut ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => super::names::fold(i),
                other => other.to_string(),
            })
            .collect();
        let table = match parts.as_slice() {
            [r] => sqlite_table(None, r),
            [s, r] => sqlite_table(Some(s), r),
            _ => None,
        };
        match table {
            Some(t) => *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(t))]),
            None => {
                if unknown.is_none() {
                    unknown = Some(parts.join("."));
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if let Some(u) = unknown {
        return Err(refuse(&format!(
            "the catalog relation \"{u}\" is not known here; it is answered only"
        )));
    }
    super::rewrite(&stmt, Target::Sqlite).map_err(|e| match e {
        TranslateError::Unsupported { construct } => {
            refuse(&format!("{construct} in a catalog query is answered only"))
        }
        other => other,
    })
}

/// What a known statement renders to.
pub(crate) fn select(
    sql: String,
    params: Vec<usize>,
    n_params: usize,
    pg_types: Vec<(usize, String)>,
    result: &[&str],
) -> Rewritten {
    Rewritten {
        sql,
        before: vec![],
        params,
        kind: Kind::Select,
        returning: None,
        param_hints: vec![None; n_params],
        pg_types,
        tag_hint: TagHint::Select,
        result_types: result
            .iter()
            .map(|t| {
                Some(ResultType::Known {
                    typname: (*t).to_string(),
                    typmod: -1,
                })
            })
            .collect(),
        drop_index_lookup: None,
        tables: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_relations_map_to_sqlite_tables() {
        assert_eq!(
            sqlite_table(Some("pg_catalog"), "pg_class").as_deref(),
            Some("pg_class")
        );
        assert_eq!(
            sqlite_table(None, "pg_tables").as_deref(),
            Some("pg_tables")
        );
        assert_eq!(
            sqlite_table(Some("information_schema"), "tables").as_deref(),
            Some("information_schema_tables")
        );
        assert_eq!(sqlite_table(Some("public"), "pg_class"), None);
        assert_eq!(sqlite_table(None, "pg_stat_activity"), None);
    }

    #[test]
    fn unknown_catalog_queries_name_the_catalog_setting() {
        let e = rewrite_sql("SELECT * FROM pg_stat_activity").unwrap_err();
        assert_eq!(e.sqlstate(), "0A000");
        assert!(e.to_string().contains("catalog:"), "{e}");
    }
}
