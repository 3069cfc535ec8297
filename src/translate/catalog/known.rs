//! The catalog queries the embedded catalog answers by shape: each PostgreSQL query (as psql 15
//! and SQLAlchemy 2 send it, kept verbatim under `queries/`) with its SQLite equivalent over the
//! embedded catalog's tables and PostgreSQL's result columns.
//!
//! Owns: the templates. In a template, `$N` is the query's N-th value ([`super::shape`]), put back
//! as a literal or a `?` parameter; a list slot becomes its values separated by commas. Every
//! value that changes the answer is used where PostgreSQL uses it; values that cannot change it
//! with the embedded catalog's contents are named in a comment (`pretty` flags of `pg_get_*`,
//! array dimensions). What PostgreSQL's functions print comes from the `bindproxy_*` side tables
//! (`catalog/embedded/rows.rs`). `pg_table_is_visible` is "in `pg_catalog` or `public`" (the
//! default search path), and relations that cannot exist in the embedded catalog (policies,
//! statistics objects, publications, triggers, inheritance) are read from their empty tables.
//!
//! Must never: answer a shape with SQL that can differ from PostgreSQL's answer over the same
//! catalog contents.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::shape::{Shape, Slot, Value};
use crate::translate::{Rewritten, TranslateError};

/// The catalog relations the embedded catalog holds (besides `information_schema.tables` and
/// `information_schema.columns`).
pub(super) const RELATIONS: &[&str] = &[
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_description",
    "pg_index",
    "pg_indexes",
    "pg_inherits",
    "pg_namespace",
    "pg_opclass",
    "pg_policy",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_roles",
    "pg_sequence",
    "pg_sequences",
    "pg_statistic_ext",
    "pg_tables",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
];

pub(super) struct Known {
    /// For messages and tests.
    pub name: &'static str,
    /// The PostgreSQL query, as the client sends it.
    pub pg: &'static str,
    pub sqlite: &'static str,
    /// PostgreSQL's result type of each output column (`typname`).
    pub columns: &'static [&'static str],
}

/// `pg_get_userbyid(x)` over the embedded roles.
macro_rules! owner {
    ($x:literal) => {
        concat!("(SELECT r.rolname FROM pg_roles r WHERE r.oid = ", $x, ")")
    };
}

/// psql's relation-kind CASE of `\dt`, `\di`, `\ds` (its 18 values are `$1`…`$18`).
macro_rules! relkind_case {
    () => {
        "CASE c.relkind WHEN $1 THEN $2 WHEN $3 THEN $4 WHEN $5 THEN $6 WHEN $7 THEN $8 WHEN $9 THEN $10 WHEN $11 THEN $12 WHEN $13 THEN $14 WHEN $15 THEN $16 WHEN $17 THEN $18 END"
    };
}

pub(super) const KNOWN: &[Known] = &[
    Known {
        name: "psql \\dt",
        pg: include_str!("queries/psql_dt.sql"),
        sqlite: concat!(
            "SELECT n.nspname AS \"Schema\", c.relname AS \"Name\", ",
            relkind_case!(),
            " AS \"Type\", ",
            owner!("c.relowner"),
            " AS \"Owner\" FROM pg_class c LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_am am ON am.oid = c.relam \
             WHERE c.relkind IN ($19) AND n.nspname <> $20 AND NOT bindproxy_regex(n.nspname, $21) \
             AND n.nspname <> $22 AND c.relnamespace IN (11, 2200) ORDER BY $23, $24"
        ),
        columns: &["name", "name", "text", "name"],
    },
    Known {
        name: "psql \\di",
        pg: include_str!("queries/psql_di.sql"),
        sqlite: concat!(
            "SELECT n.nspname AS \"Schema\", c.relname AS \"Name\", ",
            relkind_case!(),
            " AS \"Type\", ",
            owner!("c.relowner"),
            " AS \"Owner\", c2.relname AS \"Table\" FROM pg_class c \
             LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_am am ON am.oid = c.relam \
             LEFT JOIN pg_index i ON i.indexrelid = c.oid \
             LEFT JOIN pg_class c2 ON i.indrelid = c2.oid \
             WHERE c.relkind IN ($19) AND n.nspname <> $20 AND NOT bindproxy_regex(n.nspname, $21) \
             AND n.nspname <> $22 AND c.relnamespace IN (11, 2200) ORDER BY $23, $24"
        ),
        columns: &["name", "name", "text", "name", "name"],
    },
    Known {
        name: "psql \\ds",
        pg: include_str!("queries/psql_ds.sql"),
        sqlite: concat!(
            "SELECT n.nspname AS \"Schema\", c.relname AS \"Name\", ",
            relkind_case!(),
            " AS \"Type\", ",
            owner!("c.relowner"),
            " AS \"Owner\" FROM pg_class c LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ($19) AND n.nspname <> $20 AND NOT bindproxy_regex(n.nspname, $21) \
             AND n.nspname <> $22 AND c.relnamespace IN (11, 2200) ORDER BY $23, $24"
        ),
        columns: &["name", "name", "text", "name"],
    },
    Known {
        name: "psql \\dn",
        pg: include_str!("queries/psql_dn.sql"),
        sqlite: concat!(
            "SELECT n.nspname AS \"Name\", ",
            owner!("n.nspowner"),
            " AS \"Owner\" FROM pg_namespace n WHERE NOT bindproxy_regex(n.nspname, $1) \
             AND n.nspname <> $2 ORDER BY $3"
        ),
        columns: &["name", "name"],
    },
    Known {
        name: "psql \\l",
        // array_to_string(datacl, $5): datacl is NULL (no grants in the embedded catalog)
        pg: include_str!("queries/psql_l.sql"),
        sqlite: concat!(
            "SELECT d.datname AS \"Name\", ",
            owner!("d.datdba"),
            " AS \"Owner\", CASE d.encoding WHEN 6 THEN 'UTF8' END AS \"Encoding\", \
             d.datcollate AS \"Collate\", d.datctype AS \"Ctype\", d.daticulocale AS \"ICU Locale\", \
             CASE d.datlocprovider WHEN $1 THEN $2 WHEN $3 THEN $4 END AS \"Locale Provider\", \
             CASE WHEN d.datacl IS NOT NULL THEN $5 END AS \"Access privileges\" \
             FROM pg_database d ORDER BY $6"
        ),
        columns: &["name", "name", "name", "text", "text", "text", "text", "text"],
    },
    Known {
        name: "psql \\d: the relation",
        pg: include_str!("queries/psql_d_01.sql"),
        sqlite: "SELECT c.oid, n.nspname, c.relname FROM pg_class c \
                 LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE bindproxy_regex(c.relname, $1) AND c.relnamespace IN (11, 2200) ORDER BY $2, $3",
        columns: &["oid", "name", "name"],
    },
    Known {
        name: "psql \\d: the relation's flags",
        // reloftype is always 0 here (no typed tables)
        pg: include_str!("queries/psql_d_02.sql"),
        sqlite: "SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, \
                 c.relrowsecurity, c.relforcerowsecurity, $1 AS relhasoids, c.relispartition, \
                 $2 AS \"?column?\", c.reltablespace, \
                 CASE WHEN c.reloftype = $3 THEN $4 END AS reloftype, \
                 c.relpersistence, c.relreplident, am.amname \
                 FROM pg_class c LEFT JOIN pg_class tc ON (c.reltoastrelid = tc.oid) \
                 LEFT JOIN pg_am am ON (c.relam = am.oid) WHERE c.oid = $5",
        columns: &[
            "int2", "char", "bool", "bool", "bool", "bool", "bool", "bool", "bool", "text", "oid",
            "text", "char", "char", "name",
        ],
    },
    Known {
        name: "psql \\d: columns",
        // $1: pretty (the same text)
        pg: include_str!("queries/psql_d_03.sql"),
        sqlite: "SELECT a.attname, b.format_type AS format_type, \
                 (SELECT b2.default_expr FROM pg_attrdef d JOIN bindproxy_attr b2 \
                  ON b2.attrelid = d.adrelid AND b2.attnum = d.adnum \
                  WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) AS pg_get_expr, \
                 a.attnotnull, \
                 (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation \
                  AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation, \
                 a.attidentity, a.attgenerated \
                 FROM pg_attribute a LEFT JOIN bindproxy_attr b \
                 ON b.attrelid = a.attrelid AND b.attnum = a.attnum \
                 WHERE a.attrelid = $2 AND a.attnum > $3 AND NOT a.attisdropped ORDER BY a.attnum",
        columns: &["name", "text", "text", "bool", "name", "char", "char"],
    },
    Known {
        name: "psql \\d: indexes",
        // $2, $3: pretty (the same text)
        pg: include_str!("queries/psql_d_04.sql"),
        sqlite: "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, \
                 (SELECT k.def FROM bindproxy_index_key k WHERE k.indexrelid = i.indexrelid \
                  AND k.ord = $1) AS pg_get_indexdef, \
                 bc.def AS pg_get_constraintdef, con.contype, con.condeferrable, con.condeferred, \
                 i.indisreplident, c2.reltablespace \
                 FROM pg_class c, pg_class c2, pg_index i \
                 LEFT JOIN pg_constraint con ON (con.conrelid = i.indrelid \
                  AND con.conindid = i.indexrelid AND con.contype IN ($4)) \
                 LEFT JOIN bindproxy_constraint bc ON bc.oid = con.oid \
                 WHERE c.oid = $5 AND c.oid = i.indrelid AND i.indexrelid = c2.oid \
                 ORDER BY i.indisprimary DESC, c2.relname",
        columns: &[
            "name", "bool", "bool", "bool", "bool", "text", "text", "char", "bool", "bool", "bool",
            "oid",
        ],
    },
    Known {
        name: "psql \\d: check constraints",
        // $1: pretty (bindproxy_constraint holds the pretty text)
        pg: include_str!("queries/psql_d_checks.sql"),
        sqlite: "SELECT r.conname, bc.def AS pg_get_constraintdef FROM pg_constraint r \
                 LEFT JOIN bindproxy_constraint bc ON bc.oid = r.oid \
                 WHERE r.conrelid = $2 AND r.contype = $3 ORDER BY $4",
        columns: &["name", "text"],
    },
    Known {
        name: "psql \\d: foreign keys",
        pg: include_str!("queries/psql_d_05.sql"),
        sqlite: "SELECT $1 AS sametable, r.conname, bc.def AS condef, \
                 (SELECT x.name FROM bindproxy_regclass x WHERE x.oid = r.conrelid) AS ontable \
                 FROM pg_constraint r LEFT JOIN bindproxy_constraint bc ON bc.oid = r.oid \
                 WHERE r.conrelid = $3 AND r.contype = $4 AND r.conparentid = $5 ORDER BY r.conname",
        columns: &["bool", "name", "text", "regclass"],
    },
    Known {
        name: "psql \\d: referenced by",
        // pg_partition_ancestors($2) is empty: no partitions here
        pg: include_str!("queries/psql_d_06.sql"),
        sqlite: "SELECT c.conname, \
                 (SELECT x.name FROM bindproxy_regclass x WHERE x.oid = c.conrelid) AS ontable, \
                 bc.def AS condef FROM pg_constraint c \
                 LEFT JOIN bindproxy_constraint bc ON bc.oid = c.oid \
                 WHERE c.confrelid IN (SELECT CAST($3 AS INTEGER)) AND c.contype = $4 \
                 AND c.conparentid = $5 ORDER BY c.conname",
        columns: &["name", "regclass", "text"],
    },
    Known {
        name: "psql \\d: policies",
        // pg_policy is empty here
        pg: include_str!("queries/psql_d_07.sql"),
        sqlite: "SELECT pol.polname, pol.polpermissive, NULL AS array_to_string, NULL AS pg_get_expr, \
                 NULL AS pg_get_expr, NULL AS cmd FROM pg_policy pol WHERE pol.polrelid = $12 ORDER BY $13",
        columns: &["name", "bool", "text", "text", "text", "text"],
    },
    Known {
        name: "psql \\d: statistics objects",
        // pg_statistic_ext is empty here
        pg: include_str!("queries/psql_d_08.sql"),
        sqlite: "SELECT s.oid, NULL AS stxrelid, NULL AS nsp, s.stxname, NULL AS columns, \
                 NULL AS ndist_enabled, NULL AS deps_enabled, NULL AS mcv_enabled, s.stxstattarget \
                 FROM pg_statistic_ext s WHERE s.stxrelid = $4",
        columns: &["oid", "regclass", "text", "name", "text", "bool", "bool", "bool", "int4"],
    },
    Known {
        name: "psql \\d: publications",
        // every branch reads pg_publication, empty here
        pg: include_str!("queries/psql_d_09.sql"),
        sqlite: "SELECT p.pubname, NULL AS \"?column?\", NULL AS \"?column?\" FROM pg_publication p \
                 WHERE p.oid IS NULL AND $1 IS NOT NULL",
        columns: &["name", "text", "text"],
    },
    Known {
        name: "psql \\d: triggers",
        // pg_trigger is empty here
        pg: include_str!("queries/psql_d_10.sql"),
        sqlite: "SELECT t.tgname, NULL AS pg_get_triggerdef, t.tgenabled, t.tgisinternal, NULL AS parent \
                 FROM pg_trigger t WHERE t.tgrelid = $5 ORDER BY $7",
        columns: &["name", "text", "char", "bool", "regclass"],
    },
    Known {
        name: "psql \\d: inherits from",
        // pg_inherits is empty here
        pg: include_str!("queries/psql_d_11.sql"),
        sqlite: "SELECT NULL AS oid FROM pg_inherits i WHERE i.inhrelid = $1",
        columns: &["regclass"],
    },
    Known {
        name: "psql \\d: partitions and children",
        // pg_inherits is empty here
        pg: include_str!("queries/psql_d_12.sql"),
        sqlite: "SELECT NULL AS oid, NULL AS relkind, i.inhdetachpending, NULL AS pg_get_expr \
                 FROM pg_inherits i WHERE i.inhparent = $1",
        columns: &["regclass", "char", "bool", "text"],
    },
    Known {
        name: "psycopg's type lookup",
        pg: include_str!("queries/sa_psycopg_types.sql"),
        sqlite: "SELECT t.typname AS name, t.oid, t.typarray AS array_oid, bt.regtype AS regtype, \
                 t.typdelim AS delimiter FROM pg_type t JOIN bindproxy_type bt ON bt.oid = t.oid \
                 WHERE t.typname = $1 OR bt.regtype = $1 ORDER BY t.oid",
        columns: &["name", "oid", "oid", "text", "char"],
    },
    Known {
        name: "psycopg2's type lookup",
        pg: include_str!("queries/sa_psycopg2_types.sql"),
        sqlite: "SELECT t.oid, t.typarray FROM pg_type t JOIN pg_namespace ns \
                 ON t.typnamespace = ns.oid WHERE t.typname = $1",
        columns: &["oid", "oid"],
    },
    Known {
        name: "SQLAlchemy has_table",
        pg: include_str!("queries/sa_has_table.sql"),
        sqlite: "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname IN ($1) AND c.relkind IN ($2) AND c.relnamespace IN (11, 2200) \
                 AND n.nspname != $3",
        columns: &["name"],
    },
    Known {
        name: "SQLAlchemy get_table_names",
        pg: include_str!("queries/sa_table_names.sql"),
        sqlite: "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ($1) AND c.relpersistence != $2 AND c.relnamespace IN (11, 2200) \
                 AND n.nspname != $3",
        columns: &["name"],
    },
    Known {
        name: "SQLAlchemy get_columns",
        // json_build_object printed as PostgreSQL prints it (`{"k" : v, …}`)
        pg: include_str!("queries/sa_columns.sql"),
        sqlite: "SELECT a.attname AS name, b.format_type AS format_type, \
                 CASE WHEN a.atthasdef THEN (SELECT b2.default_expr FROM pg_attrdef d \
                  JOIN bindproxy_attr b2 ON b2.attrelid = d.adrelid AND b2.attnum = d.adnum \
                  WHERE a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum) END AS \"default\", \
                 a.attnotnull AS not_null, c.relname AS table_name, ds.description AS comment, \
                 a.attgenerated AS generated, \
                 CASE WHEN (a.attidentity != $1) THEN (SELECT '{' || json_quote($2) || ' : ' \
                  || CASE WHEN a.attidentity = $3 THEN 'true' ELSE 'false' END \
                  || ', ' || json_quote($4) || ' : ' || s.seqstart \
                  || ', ' || json_quote($5) || ' : ' || s.seqincrement \
                  || ', ' || json_quote($6) || ' : ' || s.seqmin \
                  || ', ' || json_quote($7) || ' : ' || s.seqmax \
                  || ', ' || json_quote($8) || ' : ' || s.seqcache \
                  || ', ' || json_quote($9) || ' : ' || CASE WHEN s.seqcycle THEN 'true' ELSE 'false' END \
                  || '}' FROM pg_sequence s WHERE a.attidentity != $10 AND s.seqrelid = b.identity_seq) \
                 END AS identity_options, \
                 CASE WHEN (a.attcollation != $11 AND (SELECT t.typcollation FROM pg_type t \
                  WHERE t.oid = a.atttypid) != a.attcollation) THEN (SELECT '{' || json_quote($12) \
                  || ' : ' || json_quote(co.collname) || ', ' || json_quote($13) || ' : null}' \
                  FROM pg_collation co WHERE co.oid = a.attcollation) END AS collation \
                 FROM pg_class c LEFT JOIN pg_attribute a ON c.oid = a.attrelid AND a.attnum > $14 \
                  AND NOT a.attisdropped \
                 LEFT JOIN bindproxy_attr b ON b.attrelid = a.attrelid AND b.attnum = a.attnum \
                 LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.objsubid = a.attnum \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ($15) AND c.relnamespace IN (11, 2200) AND n.nspname != $16 \
                 AND c.relname IN ($17) ORDER BY c.relname, a.attnum NULLS LAST",
        columns: &[
            "name", "text", "text", "bool", "name", "text", "char", "json", "json",
        ],
    },
    Known {
        name: "SQLAlchemy table oids",
        pg: include_str!("queries/sa_table_oids.sql"),
        sqlite: "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ($1) AND c.relnamespace IN (11, 2200) AND n.nspname != $2 \
                 AND c.relname IN ($3)",
        columns: &["oid", "name"],
    },
    Known {
        name: "SQLAlchemy get_pk_constraint / get_unique_constraints",
        pg: include_str!("queries/sa_key_constraints.sql"),
        sqlite: "SELECT x.conrelid AS conrelid, '{' || group_concat(x.elem, ',' ORDER BY x.ord) || '}' AS cols, \
                 x.conname AS conname, min(x.description) AS description, \
                 min(x.indnkeyatts) AS indnkeyatts, min(x.indnullsnotdistinct) AS indnullsnotdistinct \
                 FROM (SELECT con.conrelid AS conrelid, con.conname AS conname, \
                  ds.description AS description, e.ord AS ord, i.indnkeyatts AS indnkeyatts, \
                  i.indnullsnotdistinct AS indnullsnotdistinct, b.attname_elem AS elem \
                  FROM pg_constraint con JOIN pg_index i ON con.conindid = i.indexrelid \
                  JOIN bindproxy_index_elem e ON e.indexrelid = i.indexrelid AND CAST($1 AS INTEGER) = 1 \
                  JOIN bindproxy_attr b ON b.attrelid = con.conrelid AND b.attnum = e.attnum \
                  LEFT JOIN pg_description ds ON ds.objoid = con.oid AND ds.classoid = \
                   (SELECT r.oid FROM bindproxy_regclass_names r WHERE r.name = $2) \
                  WHERE con.contype = $3 AND con.conrelid IN ($4) AND con.conrelid IN ($5)) AS x \
                 GROUP BY x.conrelid, x.conname ORDER BY x.conrelid, x.conname",
        columns: &["oid", "_text", "name", "text", "int2", "bool"],
    },
    Known {
        name: "SQLAlchemy access method",
        pg: include_str!("queries/sa_am.sql"),
        sqlite: "SELECT a.oid, a.amname FROM pg_am a WHERE a.amname = $1",
        columns: &["oid", "name"],
    },
    Known {
        name: "SQLAlchemy operator classes",
        pg: include_str!("queries/sa_opclass.sql"),
        sqlite: "SELECT o.oid, o.opcname FROM pg_opclass o WHERE NOT o.opcdefault",
        columns: &["oid", "name"],
    },
    Known {
        name: "SQLAlchemy get_indexes",
        // $3: pretty (the same text); $5: the array dimension of indkey (1)
        pg: include_str!("queries/sa_indexes.sql"),
        sqlite: "SELECT i.indrelid, c.relname, i.indisunique, i.indisvalid, \
                 con.conrelid IS NOT NULL AS has_constraint, i.indoption, c.reloptions, c.relam, \
                 CASE WHEN (i.indpred IS NOT NULL) THEN bi.predicate END AS filter_definition, \
                 i.indnkeyatts, i.indnullsnotdistinct, ic.elements, ic.elements_is_expr, \
                 ic.elements_opclass \
                 FROM pg_index i JOIN pg_class c ON i.indexrelid = c.oid \
                 LEFT JOIN bindproxy_index bi ON bi.indexrelid = i.indexrelid \
                 LEFT JOIN (SELECT e.indexrelid AS indexrelid, \
                  '{' || group_concat(CASE WHEN e.attnum = $1 THEN (SELECT k.def_elem \
                   FROM bindproxy_index_key k WHERE k.indexrelid = e.indexrelid AND k.ord = e.ord + $2) \
                   ELSE b.attname_elem END, ',' ORDER BY e.ord) || '}' AS elements, \
                  '{' || group_concat(CASE WHEN e.attnum = $4 THEN 't' ELSE 'f' END, ',' ORDER BY e.ord) \
                   || '}' AS elements_is_expr, \
                  '{' || group_concat(e.opclass, ',' ORDER BY e.ord) || '}' AS elements_opclass \
                  FROM bindproxy_index_elem e JOIN pg_index i2 ON i2.indexrelid = e.indexrelid \
                  LEFT JOIN bindproxy_attr b ON b.attnum = e.attnum AND b.attrelid = e.indrelid \
                  WHERE NOT i2.indisprimary AND e.indrelid IN ($6) AND e.indrelid IN ($7) AND CAST($5 AS INTEGER) = 1 \
                  GROUP BY e.indexrelid) AS ic ON i.indexrelid = ic.indexrelid \
                 LEFT JOIN pg_constraint con ON i.indrelid = con.conrelid \
                  AND i.indexrelid = con.conindid AND con.contype IN ($8) \
                 WHERE i.indrelid IN ($9) AND NOT i.indisprimary ORDER BY i.indrelid, c.relname",
        columns: &[
            "oid", "name", "bool", "bool", "bool", "int2vector", "_text", "oid", "text", "int2",
            "bool", "_text", "_bool", "_int8",
        ],
    },
    Known {
        name: "SQLAlchemy get_foreign_keys",
        // $1: pretty (the same text for foreign keys)
        pg: include_str!("queries/sa_foreign_keys.sql"),
        sqlite: "SELECT c.relname, con.conname, CASE WHEN (con.oid IS NOT NULL) THEN bc.def END AS anon_1, \
                 nsp_ref.nspname, ds.description \
                 FROM pg_class c LEFT JOIN pg_constraint con ON c.oid = con.conrelid AND con.contype = $2 \
                 LEFT JOIN bindproxy_constraint bc ON bc.oid = con.oid \
                 LEFT JOIN pg_class cls_ref ON cls_ref.oid = con.confrelid \
                 LEFT JOIN pg_namespace nsp_ref ON cls_ref.relnamespace = nsp_ref.oid \
                 LEFT JOIN pg_description ds ON ds.objoid = con.oid AND ds.classoid = \
                  (SELECT r.oid FROM bindproxy_regclass_names r WHERE r.name = $3) \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ($4) AND c.relnamespace IN (11, 2200) AND n.nspname != $5 \
                 AND c.relname IN ($6) ORDER BY c.relname, con.conname NULLS LAST",
        columns: &["name", "name", "text", "name", "text"],
    },
];

/// The known query with this shape.
pub(super) fn find(key: &str) -> Option<&'static Known> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, k) in KNOWN.iter().enumerate() {
            if let Ok(s) = Shape::of(k.pg) {
                m.insert(s.key, i);
            }
        }
        m
    });
    index.get(key).map(|i| &KNOWN[*i])
}

impl Known {
    /// The template with the query's values put back.
    pub(super) fn render(&self, shape: &Shape) -> Result<Rewritten, TranslateError> {
        let mut sql = String::with_capacity(self.sqlite.len() + 64);
        let mut params: Vec<usize> = Vec::new();
        let mut pg_types: Vec<(usize, String)> = Vec::new();
        let bytes = self.sqlite.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let digits: String = self.sqlite[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                let n: usize = digits.parse().map_err(|_| self.broken())?;
                let slot = shape
                    .slots
                    .get(n.wrapping_sub(1))
                    .ok_or_else(|| self.broken())?;
                let values: &[Value] = match slot {
                    Slot::One(v) => std::slice::from_ref(v),
                    Slot::List(l) => l,
                };
                for (k, v) in values.iter().enumerate() {
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    match v {
                        Value::Text(s) => sql.push_str(&super::super::names::string_literal(s)),
                        Value::Number(s) => {
                            if !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
                                return Err(self.broken());
                            }
                            sql.push_str(s);
                        }
                        Value::Bool(b) => sql.push_str(if *b { "1" } else { "0" }),
                        Value::Param(p, ty) => {
                            sql.push('?');
                            params.push(*p);
                            if let Some(t) = ty {
                                if !pg_types.iter().any(|(q, _)| q == p) {
                                    pg_types.push((*p, (*t).to_string()));
                                }
                            }
                        }
                    }
                }
                i += 1 + digits.len();
                continue;
            }
            let ch = self.sqlite[i..]
                .chars()
                .next()
                .ok_or_else(|| self.broken())?;
            sql.push(ch);
            i += ch.len_utf8();
        }
        pg_types.sort();
        super::super::safety::check_plain(&sql, crate::translate::Target::Sqlite)?;
        Ok(super::select(
            sql,
            params,
            shape.n_params,
            pg_types,
            self.columns,
        ))
    }

    fn broken(&self) -> TranslateError {
        TranslateError::UnsafeRendering(format!(
            "the embedded catalog's rendering of {} does not fit the query",
            self.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_query_has_its_own_shape_and_renders() {
        let mut keys = std::collections::HashSet::new();
        for k in KNOWN {
            let s = Shape::of(k.pg).unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert!(keys.insert(s.key.clone()), "{}: shape shared", k.name);
            assert_eq!(find(&s.key).map(|f| f.name), Some(k.name));
            let r = k.render(&s).unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert_eq!(r.result_types.len(), k.columns.len(), "{}", k.name);
        }
    }
}
