//! Reading a PostgreSQL bind's catalog into the model, exactly: PostgreSQL prints every piece
//! itself (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`).
//!
//! Owns: the pg_catalog queries and their decoding. Lists (key columns, enum labels) travel as
//! JSON arrays (`json_agg`), so no PostgreSQL array text is parsed here.
//!
//! Choices: partitioned tables and their partitions are all read as plain tables (partitioning
//! is not reproduced); exclusion constraints, INCLUDE columns of an index, non-default operator
//! classes and collations of index keys, MATCH FULL, and the options of an identity column's
//! sequence are not in the model and are left out; sequences owned by an identity column are
//! implied by it and skipped.
//!
//! Must never: write to the bind; use a pooled connection (a fresh one is opened and closed, so no
//! client's session state can leak into a read and no read into a client's session).

use std::collections::HashMap;

use super::{cell, is_internal, need, ReadError, Row};
use crate::backend::pg::{PgConn, PgPool};
use crate::catalog::ddl::{qualified, quote_literal};
use crate::catalog::model::{
    BindSchema, Column, Constraint, ConstraintKind, Deferrable, EnumType, ForeignKey, Identity,
    Index, RelationKind, Sequence, Table,
};
use crate::sql::TableName;

struct Reader<'a> {
    bind: &'a str,
    conn: PgConn,
}

impl Reader<'_> {
    async fn rows(&mut self, what: &'static str, sql: &str) -> Result<Vec<Row>, ReadError> {
        match self.conn.query_text(sql).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(message)) => Err(ReadError::Query {
                bind: self.bind.into(),
                what,
                message,
            }),
            Err(source) => Err(ReadError::Lost {
                bind: self.bind.into(),
                source,
            }),
        }
    }
}

/// Schemas that are never a client's.
const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

fn json_strings(
    bind: &str,
    what: &'static str,
    text: Option<&str>,
) -> Result<Vec<String>, ReadError> {
    match text {
        None => Ok(vec![]),
        Some(t) => serde_json::from_str(t).map_err(|e| ReadError::Unexpected {
            bind: bind.into(),
            what,
            detail: e.to_string(),
        }),
    }
}

fn json_ints(bind: &str, what: &'static str, text: Option<&str>) -> Result<Vec<i64>, ReadError> {
    match text {
        None => Ok(vec![]),
        Some(t) => serde_json::from_str(t).map_err(|e| ReadError::Unexpected {
            bind: bind.into(),
            what,
            detail: e.to_string(),
        }),
    }
}

fn number(bind: &str, what: &'static str, s: &str) -> Result<i64, ReadError> {
    s.parse().map_err(|_| ReadError::Unexpected {
        bind: bind.into(),
        what,
        detail: format!("`{s}` is not a number"),
    })
}

fn action(code: Option<&str>) -> String {
    match code {
        Some("r") => "RESTRICT",
        Some("c") => "CASCADE",
        Some("n") => "SET NULL",
        Some("d") => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .into()
}

/// Reads the bind (every user schema), or only the relations `only` names.
pub async fn read(pool: &PgPool, only: Option<&[TableName]>) -> Result<BindSchema, ReadError> {
    let bind = pool.name.as_str();
    let conn = pool.connect().await.map_err(|source| ReadError::Connect {
        bind: bind.into(),
        source,
    })?;
    let mut r = Reader { bind, conn };
    // The reads see one snapshot; the connection is closed afterwards (never pooled).
    r.rows(
        "a snapshot",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    )
    .await?;
    let out = read_all(&mut r, only).await;
    let _ = r.conn.query_text("ROLLBACK").await;
    out
}

async fn read_all(r: &mut Reader<'_>, only: Option<&[TableName]>) -> Result<BindSchema, ReadError> {
    let bind = r.bind;
    let filter = match only {
        None => String::new(),
        Some(names) => {
            let list = names
                .iter()
                .map(|n| {
                    format!(
                        "to_regclass({})",
                        quote_literal(&qualified(n.schema.as_deref(), &n.name))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(" AND c.oid IN ({list})")
        }
    };
    let rels = r
        .rows(
            "tables",
            &format!(
                "SELECT c.oid, n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class'), \
                   CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v') AND {USER_SCHEMAS} \
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                     AND d.objid = c.oid AND d.deptype = 'e'){filter} \
                 ORDER BY c.oid"
            ),
        )
        .await?;
    let mut tables: Vec<Table> = Vec::new();
    let mut by_oid: HashMap<String, usize> = HashMap::new();
    for row in &rels {
        let name = need(bind, "tables", row, 2)?;
        if is_internal(name) {
            continue;
        }
        let kind = match cell(row, 3) {
            Some("v") => RelationKind::View {
                definition: need(bind, "views", row, 5)?.to_owned(),
            },
            _ => RelationKind::Table,
        };
        by_oid.insert(need(bind, "tables", row, 0)?.to_owned(), tables.len());
        tables.push(Table {
            schema: Some(need(bind, "tables", row, 1)?.to_owned()),
            name: name.to_owned(),
            kind,
            columns: vec![],
            constraints: vec![],
            indexes: vec![],
            comment: cell(row, 4).map(str::to_owned),
        });
    }
    if tables.is_empty() && only.is_some() {
        return Ok(BindSchema::default());
    }
    let oids = if by_oid.is_empty() {
        "0".to_owned()
    } else {
        by_oid.keys().cloned().collect::<Vec<_>>().join(", ")
    };

    for row in r
        .rows(
            "columns",
            &format!(
                "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, \
                   col_description(a.attrelid, a.attnum) \
                 FROM pg_attribute a LEFT JOIN pg_attrdef d \
                   ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid IN ({oids}) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attrelid, a.attnum"
            ),
        )
        .await?
    {
        let Some(&t) = by_oid.get(need(bind, "columns", &row, 0)?) else {
            continue;
        };
        let expr = cell(&row, 4).map(str::to_owned);
        let generated = matches!(cell(&row, 6), Some("s"));
        let col = Column {
            name: need(bind, "columns", &row, 1)?.to_owned(),
            type_sql: need(bind, "columns", &row, 2)?.to_owned(),
            not_null: cell(&row, 3) == Some("t"),
            identity: match cell(&row, 5) {
                Some("a") => Some(Identity::Always),
                Some("d") => Some(Identity::ByDefault),
                _ => None,
            },
            default: if generated { None } else { expr.clone() },
            generated: if generated { expr } else { None },
            comment: cell(&row, 7).map(str::to_owned),
        };
        tables[t].columns.push(col);
    }

    for row in r
        .rows(
            "constraints",
            &format!(
                "SELECT con.conrelid, con.conname, con.contype, pg_get_constraintdef(con.oid), \
                   (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) \
                      WITH ORDINALITY k(n, i) JOIN pg_attribute a \
                      ON a.attrelid = con.conrelid AND a.attnum = k.n), \
                   fn.nspname, fc.relname, \
                   (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) \
                      WITH ORDINALITY k(n, i) JOIN pg_attribute a \
                      ON a.attrelid = con.confrelid AND a.attnum = k.n), \
                   con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred \
                 FROM pg_constraint con \
                 LEFT JOIN pg_class fc ON fc.oid = con.confrelid \
                 LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
                 WHERE con.conrelid IN ({oids}) AND con.contype IN ('p', 'u', 'c', 'f') \
                 ORDER BY con.conrelid, con.conname"
            ),
        )
        .await?
    {
        let Some(&t) = by_oid.get(need(bind, "constraints", &row, 0)?) else {
            continue;
        };
        let definition = need(bind, "constraints", &row, 3)?.to_owned();
        let kind = match cell(&row, 2) {
            Some("p") => ConstraintKind::PrimaryKey,
            Some("u") => ConstraintKind::Unique,
            Some("c") => ConstraintKind::Check,
            _ => ConstraintKind::ForeignKey(ForeignKey {
                columns: json_strings(bind, "foreign keys", cell(&row, 4))?,
                ref_schema: cell(&row, 5).map(str::to_owned),
                ref_table: need(bind, "foreign keys", &row, 6)?.to_owned(),
                ref_columns: json_strings(bind, "foreign keys", cell(&row, 7))?,
                on_delete: action(cell(&row, 8)),
                on_update: action(cell(&row, 9)),
                deferrable: match (cell(&row, 10), cell(&row, 11)) {
                    (Some("t"), Some("t")) => Deferrable::InitiallyDeferred,
                    (Some("t"), _) => Deferrable::InitiallyImmediate,
                    _ => Deferrable::No,
                },
            }),
        };
        tables[t].constraints.push(Constraint {
            name: need(bind, "constraints", &row, 1)?.to_owned(),
            kind,
            definition,
        });
    }

    for row in r
        .rows(
            "indexes",
            &format!(
                "SELECT i.indrelid, ic.relname, i.indisunique, am.amname, \
                   pg_get_expr(i.indpred, i.indrelid), \
                   (SELECT json_agg(pg_get_indexdef(i.indexrelid, k, true) ORDER BY k) \
                      FROM generate_series(1, i.indnkeyatts) k), \
                   (SELECT json_agg(i.indoption[k - 1] ORDER BY k) \
                      FROM generate_series(1, i.indnkeyatts) k) \
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                 JOIN pg_am am ON am.oid = ic.relam \
                 WHERE i.indrelid IN ({oids}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                   WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid \
                     AND c.contype IN ('p', 'u', 'x')) \
                 ORDER BY i.indrelid, ic.relname"
            ),
        )
        .await?
    {
        let Some(&t) = by_oid.get(need(bind, "indexes", &row, 0)?) else {
            continue;
        };
        let keys = json_strings(bind, "indexes", cell(&row, 5))?;
        let options = json_ints(bind, "indexes", cell(&row, 6))?;
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(k, key)| {
                let opt = options.get(k).copied().unwrap_or(0);
                let (desc, nulls_first) = (opt & 1 != 0, opt & 2 != 0);
                match (desc, nulls_first) {
                    (false, false) => key,
                    (false, true) => format!("{key} NULLS FIRST"),
                    (true, true) => format!("{key} DESC"),
                    (true, false) => format!("{key} DESC NULLS LAST"),
                }
            })
            .collect();
        tables[t].indexes.push(Index {
            name: need(bind, "indexes", &row, 1)?.to_owned(),
            unique: cell(&row, 2) == Some("t"),
            keys,
            method: need(bind, "indexes", &row, 3)?.to_owned(),
            predicate: cell(&row, 4).map(str::to_owned),
        });
    }

    // Sequences: all of the user schemas (a whole bind), or those owned by the tables read.
    let seq_filter = match only {
        None => format!("AND {USER_SCHEMAS}"),
        Some(_) => format!("AND d.refobjid IN ({oids})"),
    };
    let mut sequences = Vec::new();
    for row in r
        .rows(
            "sequences",
            &format!(
                "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, \
                   s.seqincrement, s.seqmin, s.seqmax, s.seqcycle, tn.nspname, tc.relname, \
                   a.attname, d.deptype \
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
                 LEFT JOIN pg_class tc ON tc.oid = d.refobjid \
                 LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
                 LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass \
                   AND e.objid = c.oid AND e.deptype = 'e') {seq_filter} \
                 ORDER BY c.oid"
            ),
        )
        .await?
    {
        if cell(&row, 11) == Some("i") {
            continue;
        }
        let schema = need(bind, "sequences", &row, 0)?.to_owned();
        let owned_by = match (cell(&row, 8), cell(&row, 9), cell(&row, 10)) {
            (Some(ts), Some(t), Some(c)) if ts == schema => Some((t.to_owned(), c.to_owned())),
            _ => None,
        };
        let num = |i| -> Result<i64, ReadError> {
            number(bind, "sequences", need(bind, "sequences", &row, i)?)
        };
        sequences.push(Sequence {
            name: need(bind, "sequences", &row, 1)?.to_owned(),
            data_type: need(bind, "sequences", &row, 2)?.to_owned(),
            start: num(3)?,
            increment: num(4)?,
            min: num(5)?,
            max: num(6)?,
            cycle: cell(&row, 7) == Some("t"),
            owned_by,
            schema: Some(schema),
        });
    }

    let mut enums = Vec::new();
    for row in r
        .rows(
            "enum types",
            &format!(
                "SELECT n.nspname, t.typname, \
                   (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e \
                    WHERE e.enumtypid = t.oid) \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE t.typtype = 'e' AND t.oid IN ( \
                   SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid IN ({oids}) \
                   UNION SELECT et.typelem FROM pg_attribute a JOIN pg_type et \
                     ON et.oid = a.atttypid WHERE a.attrelid IN ({oids})) \
                 ORDER BY t.oid"
            ),
        )
        .await?
    {
        enums.push(EnumType {
            schema: need(bind, "enum types", &row, 0)?.to_owned(),
            name: need(bind, "enum types", &row, 1)?.to_owned(),
            labels: json_strings(bind, "enum types", cell(&row, 2))?,
        });
    }
    Ok(BindSchema {
        tables,
        sequences,
        enums,
    })
}
