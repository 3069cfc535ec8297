//! The embedded catalog's contents: the catalog model turned into rows of PostgreSQL's catalog
//! relations, as one SQLite script (drop, create, insert, in one transaction).
//!
//! Owns: oids (stable for the same model: assigned in model order from 16384, the first oid
//! PostgreSQL gives user objects; built-in types, `pg_catalog` (11), `public` (2200), access
//! methods and the bootstrap role (10) keep PostgreSQL's own), what each catalog column holds for
//! a table, column, constraint, index and sequence, and the `bindproxy_*` side tables holding what
//! PostgreSQL's functions would print (`format_type`, `pg_get_expr`, `pg_get_indexdef`,
//! `pg_get_constraintdef`, a `regclass` as text).
//!
//! Must never: put client text into the script other than as a quoted literal ([`lit`]), or invent
//! a type: a column type the table of built-in types does not know (and no enum of the model
//! names) is an error, not text.

use std::collections::HashMap;
use std::fmt::Write;

use super::schema::RELATIONS;
use crate::backend::translated::types::CatalogType;
use crate::catalog::model::{
    BindSchema, ConstraintKind, Deferrable, ForeignKey, Identity, RelationKind, Table,
};
use crate::error::ProxyError;

/// PostgreSQL's oid of `pg_catalog`, `public`, and the bootstrap superuser.
const PG_CATALOG: i64 = 11;
const PUBLIC: i64 = 2200;
const INFORMATION_SCHEMA: i64 = 13207;
const BOOTSTRAP_ROLE: i64 = 10;
const PG_DATABASE_OWNER: i64 = 6171;
/// The name the embedded catalog gives the owner of every object (PostgreSQL's conventional
/// bootstrap superuser).
pub(super) const OWNER: &str = "postgres";
const HEAP: i64 = 2;
const BTREE: i64 = 403;
/// `pg_class` and `pg_constraint`, as `regclass` (pg_description.classoid).
const PG_CLASS_OID: i64 = 1259;
const PG_CONSTRAINT_OID: i64 = 2606;
const FIRST_USER_OID: i64 = 16384;
const DEFAULT_COLLATION: i64 = 100;

/// A built-in type: (format_type prefix, oid, typname, typlen, typbyval, typcategory,
/// typcollation, typarray, default btree operator class, typalign, typstorage).
struct BuiltinType {
    formatted: &'static str,
    oid: i64,
    typname: &'static str,
    len: i64,
    byval: bool,
    category: &'static str,
    collation: i64,
    array: i64,
    opclass: i64,
    align: &'static str,
    storage: &'static str,
}

/// One row of [`BUILTIN_TYPES`] (positional, to keep the table one line per type).
#[allow(clippy::too_many_arguments)]
const fn bt(
    formatted: &'static str,
    oid: i64,
    typname: &'static str,
    len: i64,
    byval: bool,
    category: &'static str,
    collation: i64,
    array: i64,
    opclass: i64,
    align: &'static str,
    storage: &'static str,
) -> BuiltinType {
    BuiltinType {
        formatted,
        oid,
        typname,
        len,
        byval,
        category,
        collation,
        array,
        opclass,
        align,
        storage,
    }
}

/// PostgreSQL 15's rows for the types a bind's columns use (read from its `pg_type` and
/// `pg_opclass`).
const BUILTIN_TYPES: &[BuiltinType] = &[
    bt(
        "boolean", 16, "bool", 1, true, "B", 0, 1000, 10003, "c", "p",
    ),
    bt(
        "bytea", 17, "bytea", -1, false, "U", 0, 1001, 10006, "i", "x",
    ),
    bt("bigint", 20, "int8", 8, true, "N", 0, 1016, 3124, "d", "p"),
    bt(
        "smallint", 21, "int2", 2, true, "N", 0, 1005, 1979, "s", "p",
    ),
    bt("integer", 23, "int4", 4, true, "N", 0, 1007, 1978, "i", "p"),
    bt(
        "text", 25, "text", -1, false, "S", 100, 1009, 3126, "i", "x",
    ),
    bt("json", 114, "json", -1, false, "U", 0, 199, 0, "i", "x"),
    bt(
        "real", 700, "float4", 4, true, "N", 0, 1021, 10012, "i", "p",
    ),
    bt(
        "double precision",
        701,
        "float8",
        8,
        true,
        "N",
        0,
        1022,
        3123,
        "d",
        "p",
    ),
    bt(
        "character",
        1042,
        "bpchar",
        -1,
        false,
        "S",
        100,
        1014,
        10004,
        "i",
        "x",
    ),
    bt(
        "character varying",
        1043,
        "varchar",
        -1,
        false,
        "S",
        100,
        1015,
        3126,
        "i",
        "x",
    ),
    bt("date", 1082, "date", 4, true, "D", 0, 1182, 3122, "i", "p"),
    bt(
        "time without time zone",
        1083,
        "time",
        8,
        true,
        "D",
        0,
        1183,
        10038,
        "d",
        "p",
    ),
    bt(
        "timestamp without time zone",
        1114,
        "timestamp",
        8,
        true,
        "D",
        0,
        1115,
        3128,
        "d",
        "p",
    ),
    bt(
        "timestamp with time zone",
        1184,
        "timestamptz",
        8,
        true,
        "D",
        0,
        1185,
        3127,
        "d",
        "p",
    ),
    bt(
        "interval", 1186, "interval", 16, false, "T", 0, 1187, 10022, "d", "p",
    ),
    bt(
        "numeric", 1700, "numeric", -1, false, "N", 0, 1231, 3125, "i", "m",
    ),
    bt(
        "uuid", 2950, "uuid", 16, false, "U", 0, 2951, 10065, "c", "p",
    ),
    bt(
        "jsonb", 3802, "jsonb", -1, false, "U", 0, 3807, 10088, "i", "x",
    ),
];

/// A column type resolved: the type's oid and PostgreSQL's typmod.
#[derive(Clone, Copy)]
struct Resolved {
    oid: i64,
    typmod: i64,
    len: i64,
    byval: bool,
    align: &'static str,
    storage: &'static str,
    collation: i64,
    opclass: i64,
}

/// A value of a catalog column.
#[derive(Clone, Debug)]
enum V {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for V {
    fn from(i: i64) -> V {
        V::Int(i)
    }
}
impl From<i32> for V {
    fn from(i: i32) -> V {
        V::Int(i as i64)
    }
}
impl From<bool> for V {
    fn from(b: bool) -> V {
        V::Int(b as i64)
    }
}
impl From<&str> for V {
    fn from(s: &str) -> V {
        V::Text(s.to_string())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::Text(s)
    }
}
impl From<Option<String>> for V {
    fn from(s: Option<String>) -> V {
        s.map(V::Text).unwrap_or(V::Null)
    }
}

/// One row of one relation: the columns set; the others get their type's default.
struct Row {
    relation: &'static str,
    values: HashMap<&'static str, V>,
}

impl Row {
    fn new(relation: &'static str) -> Row {
        Row {
            relation,
            values: HashMap::new(),
        }
    }
    fn set(mut self, column: &'static str, v: impl Into<V>) -> Row {
        self.values.insert(column, v.into());
        self
    }
}

/// The SQLite declared type of a catalog column of PostgreSQL type `typname`.
pub(super) fn sqlite_decl(typname: &str) -> String {
    match typname {
        "bool" => "BOOLEAN".into(),
        "int2" => "SMALLINT".into(),
        "int4" => "INT".into(),
        "int8" => "BIGINT".into(),
        "float4" => "REAL".into(),
        "text" => "TEXT".into(),
        "varchar" => "VARCHAR".into(),
        "bytea" => "BYTEA".into(),
        "timestamptz" => "TIMESTAMPTZ".into(),
        other => CatalogType::by_typname(other)
            .map(CatalogType::sqlite_decl)
            .unwrap_or_else(|| "TEXT".into()),
    }
}

/// The value a catalog column holds when a row does not say.
fn default_of(typname: &str) -> V {
    match typname {
        "bool" | "int2" | "int4" | "int8" | "float4" | "oid" | "xid" => V::Int(0),
        "regproc" | "regtype" => V::Text("-".into()),
        "name" | "char" => V::Text(String::new()),
        "int2vector" | "oidvector" => V::Text(String::new()),
        _ => V::Null,
    }
}

/// A SQLite string literal. Refuses NUL, which no PostgreSQL text can hold.
fn lit(s: &str) -> Result<String, ProxyError> {
    if s.contains('\0') {
        return Err(ProxyError::Protocol(
            "a catalog name holds a NUL character".into(),
        ));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

fn value_sql(v: &V) -> Result<String, ProxyError> {
    Ok(match v {
        V::Null => "NULL".into(),
        V::Int(i) => i.to_string(),
        V::Text(s) => lit(s)?,
    })
}

/// The side tables: what PostgreSQL's functions print, per object.
const SIDE_TABLES: &[(&str, &str)] = &[
    (
        "bindproxy_attr",
        "attrelid BINDPROXY_INT_OID, attnum SMALLINT, format_type TEXT, default_expr TEXT, attname_elem TEXT, identity_seq BINDPROXY_INT_OID",
    ),
    ("bindproxy_constraint", "oid BINDPROXY_INT_OID, def TEXT"),
    (
        "bindproxy_index_key",
        "indexrelid BINDPROXY_INT_OID, ord INT, def TEXT, def_elem TEXT",
    ),
    (
        "bindproxy_index_elem",
        "indexrelid BINDPROXY_INT_OID, indrelid BINDPROXY_INT_OID, ord INT, attnum SMALLINT, opclass BIGINT",
    ),
    ("bindproxy_index", "indexrelid BINDPROXY_INT_OID, predicate TEXT"),
    ("bindproxy_regclass", "oid BINDPROXY_INT_OID, name BINDPROXY_TEXT_REGCLASS"),
    ("bindproxy_regclass_names", "name TEXT, oid BINDPROXY_INT_OID"),
    ("bindproxy_type", "oid BINDPROXY_INT_OID, regtype TEXT"),
];

/// PostgreSQL's `quote_ident`: bare when all lower-case letters, digits and underscores, not
/// starting with a digit, and not a keyword PostgreSQL reserves in any way.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain && !is_reserved_keyword(name) {
        return name.to_string();
    }
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether PostgreSQL's scanner reads `word` as a keyword other than an unreserved one.
fn is_reserved_keyword(word: &str) -> bool {
    use pg_query::protobuf::KeywordKind;
    match pg_query::scan(word) {
        Ok(s) => s.tokens.iter().any(|t| {
            !matches!(
                KeywordKind::try_from(t.keyword_kind),
                Ok(KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword)
            )
        }),
        Err(_) => true,
    }
}

/// A text array element as PostgreSQL's array output writes it.
fn array_elem(s: &str) -> String {
    let needs = s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !needs {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn array_text(items: &[String]) -> String {
    format!(
        "{{{}}}",
        items
            .iter()
            .map(|s| array_elem(s))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The relation's name as `regclass` prints it: qualified unless its schema is on the default
/// search path.
fn regclass_text(schema: &str, name: &str) -> String {
    if schema == "public" || schema == "pg_catalog" {
        quote_ident(name)
    } else {
        format!("{}.{}", quote_ident(schema), quote_ident(name))
    }
}

/// Resolves a `format_type` text to the type (built-in, or an enum of the model, or an array of
/// either).
fn resolve_type(
    type_sql: &str,
    enums: &HashMap<String, i64>,
    table: &str,
    column: &str,
) -> Result<(Resolved, String), ProxyError> {
    let t = type_sql.trim();
    let unknown = || {
        ProxyError::Protocol(format!(
        "the embedded catalog does not know the type \"{t}\" of column \"{column}\" of table \"{table}\""
    ))
    };
    if let Some(elem) = t.strip_suffix("[]") {
        let (e, _) = resolve_type(elem, enums, table, column)?;
        let array = BUILTIN_TYPES
            .iter()
            .find(|b| b.oid == e.oid)
            .map(|b| b.array)
            .ok_or_else(unknown)?;
        let r = Resolved {
            oid: array,
            typmod: e.typmod,
            len: -1,
            byval: false,
            align: e.align,
            storage: "x",
            collation: e.collation,
            opclass: 0,
        };
        return Ok((r, t.to_string()));
    }
    let (base, args) = match t.find('(') {
        Some(i) => {
            // `timestamp(3) without time zone`: the modifier sits inside the name
            let close = t[i..].find(')').map(|j| i + j).ok_or_else(unknown)?;
            let base = format!("{}{}", t[..i].trim_end(), &t[close + 1..]);
            (base, Some(t[i + 1..close].to_string()))
        }
        None => (t.to_string(), None),
    };
    if let Some(b) = BUILTIN_TYPES.iter().find(|b| b.formatted == base) {
        let nums: Vec<i64> = match &args {
            Some(a) => a
                .split(',')
                .map(|x| x.trim().parse::<i64>().map_err(|_| unknown()))
                .collect::<Result<_, _>>()?,
            None => vec![],
        };
        let typmod = match (b.typname, nums.as_slice()) {
            (_, []) => -1,
            ("varchar" | "bpchar", [n]) => n + 4,
            ("numeric", [p]) => (p << 16) + 4,
            ("numeric", [p, s]) => ((p << 16) | s) + 4,
            ("time" | "timestamp" | "timestamptz", [p]) => *p,
            _ => return Err(unknown()),
        };
        let r = Resolved {
            oid: b.oid,
            typmod,
            len: b.len,
            byval: b.byval,
            align: b.align,
            storage: b.storage,
            collation: b.collation,
            opclass: b.opclass,
        };
        return Ok((r, t.to_string()));
    }
    if let Some(oid) = enums.get(&base) {
        let r = Resolved {
            oid: *oid,
            typmod: -1,
            len: 4,
            byval: true,
            align: "i",
            storage: "p",
            collation: 0,
            opclass: 0,
        };
        return Ok((r, t.to_string()));
    }
    Err(unknown())
}

/// Strips a key part's ordering options: (expression or column, indoption bits).
fn split_key(key: &str) -> (String, i64) {
    let mut k = key.trim().to_string();
    let mut desc = false;
    let mut nulls_first: Option<bool> = None;
    loop {
        let up = k.to_ascii_uppercase();
        if up.ends_with(" NULLS FIRST") {
            nulls_first = Some(true);
            k.truncate(k.len() - " NULLS FIRST".len());
        } else if up.ends_with(" NULLS LAST") {
            nulls_first = Some(false);
            k.truncate(k.len() - " NULLS LAST".len());
        } else if up.ends_with(" DESC") {
            desc = true;
            k.truncate(k.len() - " DESC".len());
        } else if up.ends_with(" ASC") {
            k.truncate(k.len() - " ASC".len());
        } else {
            break;
        }
        k = k.trim_end().to_string();
    }
    let nf = nulls_first.unwrap_or(desc);
    (k, (desc as i64) | ((nf as i64) << 1))
}

/// The column a key part names, if it is a bare (possibly quoted) column name.
fn key_column(key: &str) -> Option<String> {
    if let Some(inner) = key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
        if !inner.replace("\"\"", "").contains('"') {
            return Some(inner.replace("\"\"", "\""));
        }
        return None;
    }
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Some(key.to_string());
    }
    None
}

/// `CHECK ((expr))` as `pg_get_constraintdef(oid, true)` prints it: without the redundant outer
/// parentheses, and `(0)::numeric` casts of plain numbers without theirs.
fn pretty_check(def: &str) -> String {
    let d = def.trim();
    let mut out = match d
        .strip_prefix("CHECK ((")
        .and_then(|r| r.strip_suffix("))"))
        .filter(|inner| balanced(inner))
    {
        Some(inner) => format!("CHECK ({inner})"),
        None => d.to_string(),
    };
    // `(123)::type` → `123::type`
    let mut i = 0;
    while let Some(p) = out[i..].find('(').map(|p| p + i) {
        let rest = &out[p + 1..];
        let digits: usize = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .count();
        if digits > 0 && rest[digits..].starts_with(")::") {
            let num = rest[..digits].to_string();
            out.replace_range(p..p + digits + 2, &num);
        }
        i = p + 1;
        if i >= out.len() {
            break;
        }
    }
    out
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i64;
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn fk_action(a: &str) -> &'static str {
    match a.to_ascii_uppercase().as_str() {
        "RESTRICT" => "r",
        "CASCADE" => "c",
        "SET NULL" => "n",
        "SET DEFAULT" => "d",
        _ => "a",
    }
}

/// `pg_get_constraintdef` of a foreign key.
fn fk_def(fk: &ForeignKey, ref_schema: &str) -> String {
    let cols = |c: &[String]| {
        c.iter()
            .map(|x| quote_ident(x))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "FOREIGN KEY ({}) REFERENCES {}({})",
        cols(&fk.columns),
        regclass_text(ref_schema, &fk.ref_table),
        cols(&fk.ref_columns)
    );
    for (what, action) in [("UPDATE", &fk.on_update), ("DELETE", &fk.on_delete)] {
        let a = action.to_ascii_uppercase();
        if a != "NO ACTION" && !a.is_empty() {
            let _ = write!(s, " ON {what} {a}");
        }
    }
    match fk.deferrable {
        Deferrable::No => {}
        Deferrable::InitiallyImmediate => s.push_str(" DEFERRABLE"),
        Deferrable::InitiallyDeferred => s.push_str(" DEFERRABLE INITIALLY DEFERRED"),
    }
    s
}

struct Oids(i64);
impl Oids {
    fn next(&mut self) -> i64 {
        let o = self.0;
        self.0 += 1;
        o
    }
}

/// The whole script: drop and re-create every catalog table, then insert the rows.
pub(super) fn script(schema: &BindSchema, database_name: &str) -> Result<String, ProxyError> {
    let rows = build(schema, database_name)?;
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for (rel, cols) in RELATIONS {
        let defs: Vec<String> = cols
            .iter()
            .map(|(c, t)| format!("\"{c}\" {}", sqlite_decl(t)))
            .collect();
        let _ = writeln!(
            sql,
            "DROP TABLE IF EXISTS {rel};\nCREATE TABLE {rel} ({});",
            defs.join(", ")
        );
    }
    for (rel, cols) in SIDE_TABLES {
        let _ = writeln!(
            sql,
            "DROP TABLE IF EXISTS {rel};\nCREATE TABLE {rel} ({cols});"
        );
    }
    for row in rows {
        let (names, values): (Vec<String>, Vec<String>) = if row.relation.starts_with("bindproxy_")
        {
            let mut cols: Vec<(&&str, &V)> = row.values.iter().collect();
            cols.sort_by_key(|(c, _)| **c);
            let mut names = vec![];
            let mut values = vec![];
            for (c, v) in cols {
                names.push(format!("\"{c}\""));
                values.push(value_sql(v)?);
            }
            (names, values)
        } else {
            let Some((_, cols)) = RELATIONS.iter().find(|(r, _)| *r == row.relation) else {
                return Err(ProxyError::Protocol(format!(
                    "embedded catalog: no relation {}",
                    row.relation
                )));
            };
            let mut names = vec![];
            let mut values = vec![];
            for (c, t) in cols.iter() {
                names.push(format!("\"{c}\""));
                let v = row.values.get(c).cloned().unwrap_or_else(|| default_of(t));
                values.push(value_sql(&v)?);
            }
            (names, values)
        };
        let _ = writeln!(
            sql,
            "INSERT INTO {} ({}) VALUES ({});",
            row.relation,
            names.join(", "),
            values.join(", ")
        );
    }
    sql.push_str("COMMIT;\n");
    Ok(sql)
}

fn build(schema: &BindSchema, database_name: &str) -> Result<Vec<Row>, ProxyError> {
    let mut rows: Vec<Row> = Vec::new();
    let mut oids = Oids(FIRST_USER_OID);

    // roles, database, access methods
    for (oid, name, sup) in [
        (BOOTSTRAP_ROLE, OWNER, true),
        (PG_DATABASE_OWNER, "pg_database_owner", false),
    ] {
        rows.push(
            Row::new("pg_roles")
                .set("oid", oid)
                .set("rolname", name)
                .set("rolsuper", sup)
                .set("rolinherit", true)
                .set("rolcreaterole", sup)
                .set("rolcreatedb", sup)
                .set("rolcanlogin", sup)
                .set("rolreplication", sup)
                .set("rolbypassrls", sup)
                .set("rolconnlimit", -1)
                .set("rolpassword", "********"),
        );
    }
    rows.push(
        Row::new("pg_user")
            .set("usename", OWNER)
            .set("usesysid", BOOTSTRAP_ROLE)
            .set("usecreatedb", true)
            .set("usesuper", true)
            .set("userepl", true)
            .set("usebypassrls", true)
            .set("passwd", "********"),
    );
    let db_oid = oids.next();
    rows.push(
        Row::new("pg_database")
            .set("oid", db_oid)
            .set("datname", database_name)
            .set("datdba", BOOTSTRAP_ROLE)
            .set("encoding", 6)
            .set("datlocprovider", "c")
            .set("datallowconn", true)
            .set("datconnlimit", -1)
            .set("dattablespace", 1663)
            .set("datcollate", "C")
            .set("datctype", "C"),
    );
    for (oid, name, ty) in [
        (HEAP, "heap", "t"),
        (BTREE, "btree", "i"),
        (405, "hash", "i"),
        (783, "gist", "i"),
        (2742, "gin", "i"),
        (3580, "brin", "i"),
        (4000, "spgist", "i"),
    ] {
        rows.push(
            Row::new("pg_am")
                .set("oid", oid)
                .set("amname", name)
                .set("amtype", ty),
        );
    }
    for (oid, method, name, family, intype, default, keytype) in super::opclass::OPCLASSES {
        rows.push(
            Row::new("pg_opclass")
                .set("oid", *oid)
                .set("opcmethod", *method)
                .set("opcname", *name)
                .set("opcnamespace", PG_CATALOG)
                .set("opcowner", BOOTSTRAP_ROLE)
                .set("opcfamily", *family)
                .set("opcintype", *intype)
                .set("opcdefault", *default)
                .set("opckeytype", *keytype),
        );
    }
    rows.push(
        Row::new("pg_collation")
            .set("oid", DEFAULT_COLLATION)
            .set("collname", "default")
            .set("collnamespace", PG_CATALOG)
            .set("collowner", BOOTSTRAP_ROLE)
            .set("collprovider", "d")
            .set("collisdeterministic", true)
            .set("collencoding", -1),
    );
    for (name, oid) in [
        ("pg_class", PG_CLASS_OID),
        ("pg_catalog.pg_class", PG_CLASS_OID),
        ("pg_constraint", PG_CONSTRAINT_OID),
        ("pg_catalog.pg_constraint", PG_CONSTRAINT_OID),
    ] {
        rows.push(
            Row::new("bindproxy_regclass_names")
                .set("name", name)
                .set("oid", oid),
        );
    }

    // namespaces: the built-in ones, then each schema of the model in order of appearance
    let mut namespaces: Vec<(String, i64)> = vec![
        ("pg_catalog".into(), PG_CATALOG),
        ("public".into(), PUBLIC),
        ("information_schema".into(), INFORMATION_SCHEMA),
    ];
    let schema_names = schema
        .tables
        .iter()
        .filter_map(|t| t.schema.clone())
        .chain(schema.sequences.iter().filter_map(|s| s.schema.clone()))
        .chain(schema.enums.iter().map(|e| e.schema.clone()));
    for s in schema_names {
        if !namespaces.iter().any(|(n, _)| *n == s) {
            let o = oids.next();
            namespaces.push((s, o));
        }
    }
    for (name, oid) in &namespaces {
        let owner = if *oid == PUBLIC {
            PG_DATABASE_OWNER
        } else {
            BOOTSTRAP_ROLE
        };
        rows.push(
            Row::new("pg_namespace")
                .set("oid", *oid)
                .set("nspname", name.as_str())
                .set("nspowner", owner),
        );
    }
    let nsp = |s: &str| -> i64 {
        namespaces
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, o)| *o)
            .unwrap_or(PUBLIC)
    };

    // built-in types
    for b in BUILTIN_TYPES {
        rows.push(
            type_row(
                b.oid, b.typname, PG_CATALOG, b.len, b.byval, "b", b.category,
            )
            .set("typarray", b.array)
            .set("typcollation", b.collation)
            .set("typalign", b.align)
            .set("typstorage", b.storage),
        );
        rows.push(
            Row::new("bindproxy_type")
                .set("oid", b.oid)
                .set("regtype", b.formatted),
        );
    }
    // enums
    let mut enums: HashMap<String, i64> = HashMap::new();
    for e in &schema.enums {
        let oid = oids.next();
        let array = oids.next();
        let formatted = regclass_text(&e.schema, &e.name);
        enums.insert(formatted.clone(), oid);
        rows.push(type_row(oid, &e.name, nsp(&e.schema), 4, true, "e", "E").set("typarray", array));
        rows.push(
            type_row(
                array,
                &format!("_{}", e.name),
                nsp(&e.schema),
                -1,
                false,
                "b",
                "A",
            )
            .set("typelem", oid),
        );
        rows.push(
            Row::new("bindproxy_type")
                .set("oid", oid)
                .set("regtype", formatted),
        );
    }

    // relations: oids first, so foreign keys can name tables that come later
    let placed: Vec<(&Table, String, i64)> = schema
        .tables
        .iter()
        .map(|t| {
            let s = t.schema.clone().unwrap_or_else(|| "public".into());
            let o = oids.next();
            (t, s, o)
        })
        .collect();
    let table_oid = |s: &str, n: &str| -> Option<i64> {
        placed
            .iter()
            .find(|(t, ts, _)| ts == s && t.name == n)
            .map(|(_, _, o)| *o)
    };
    // the index oid backing each primary key / unique constraint, by (table oid, columns)
    let mut key_indexes: Vec<(i64, Vec<String>, i64)> = Vec::new();
    let mut referenced: Vec<i64> = Vec::new();
    for (t, s, _) in &placed {
        for c in &t.constraints {
            if let ConstraintKind::ForeignKey(fk) = &c.kind {
                let rs = fk.ref_schema.clone().unwrap_or_else(|| s.clone());
                if let Some(o) = table_oid(&rs, &fk.ref_table) {
                    referenced.push(o);
                }
            }
        }
    }

    let mut pending_fks: Vec<(i64, i64, String, ForeignKey, String)> = Vec::new();
    for (t, s, rel_oid) in &placed {
        let ns = nsp(s);
        let is_view = matches!(t.kind, RelationKind::View { .. });
        let has_fk = t
            .constraints
            .iter()
            .any(|c| matches!(c.kind, ConstraintKind::ForeignKey(_)));
        let checks = t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::Check)
            .count() as i64;
        let has_index = !is_view
            && (!t.indexes.is_empty()
                || t.constraints.iter().any(|c| {
                    matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique)
                }));
        rows.push(
            Row::new("pg_class")
                .set("oid", *rel_oid)
                .set("relname", t.name.as_str())
                .set("relnamespace", ns)
                .set("relowner", BOOTSTRAP_ROLE)
                .set("relam", if is_view { 0 } else { HEAP })
                .set("relfilenode", if is_view { 0 } else { *rel_oid })
                .set("reltuples", -1)
                .set("relhasindex", has_index)
                .set("relpersistence", "p")
                .set("relkind", if is_view { "v" } else { "r" })
                .set("relnatts", t.columns.len() as i64)
                .set("relchecks", checks)
                .set("relhasrules", is_view)
                .set("relhastriggers", has_fk || referenced.contains(rel_oid))
                .set("relispopulated", true)
                .set("relreplident", if is_view { "n" } else { "d" }),
        );
        rows.push(
            Row::new("bindproxy_regclass")
                .set("oid", *rel_oid)
                .set("name", regclass_text(s, &t.name)),
        );
        if let Some(c) = &t.comment {
            rows.push(description(*rel_oid, 0, c));
        }
        let kind = if is_view { "VIEW" } else { "BASE TABLE" };
        rows.push(
            Row::new("information_schema_tables")
                .set("table_catalog", database_name)
                .set("table_schema", s.as_str())
                .set("table_name", t.name.as_str())
                .set("table_type", kind)
                .set("is_insertable_into", "YES")
                .set("is_typed", "NO"),
        );
        if !is_view {
            rows.push(
                Row::new("pg_tables")
                    .set("schemaname", s.as_str())
                    .set("tablename", t.name.as_str())
                    .set("tableowner", OWNER)
                    .set("tablespace", V::Null)
                    .set("hasindexes", has_index)
                    .set("hasrules", false)
                    .set("hastriggers", has_fk || referenced.contains(rel_oid))
                    .set("rowsecurity", false),
            );
        } else if let RelationKind::View { definition } = &t.kind {
            rows.push(
                Row::new("pg_views")
                    .set("schemaname", s.as_str())
                    .set("viewname", t.name.as_str())
                    .set("viewowner", OWNER)
                    .set("definition", definition.as_str()),
            );
        }

        // columns
        let mut col_types: Vec<Resolved> = Vec::new();
        for (i, c) in t.columns.iter().enumerate() {
            let attnum = i as i64 + 1;
            let (ty, formatted) = resolve_type(&c.type_sql, &enums, &t.name, &c.name)?;
            col_types.push(ty);
            let identity = match c.identity {
                Some(Identity::Always) => "a",
                Some(Identity::ByDefault) => "d",
                None => "",
            };
            let ndims = formatted.matches("[]").count() as i64;
            rows.push(
                Row::new("pg_attribute")
                    .set("attrelid", *rel_oid)
                    .set("attname", c.name.as_str())
                    .set("atttypid", ty.oid)
                    .set("attlen", ty.len)
                    .set("attnum", attnum)
                    .set("attcacheoff", -1)
                    .set("atttypmod", ty.typmod)
                    .set("attndims", ndims)
                    .set("attbyval", ty.byval)
                    .set("attalign", ty.align)
                    .set("attstorage", ty.storage)
                    .set("attnotnull", c.not_null)
                    .set("atthasdef", c.default.is_some() || c.generated.is_some())
                    .set("attidentity", identity)
                    .set("attgenerated", if c.generated.is_some() { "s" } else { "" })
                    .set("attislocal", true)
                    .set("attstattarget", -1)
                    .set("attcollation", ty.collation),
            );
            let expr = c.default.clone().or_else(|| c.generated.clone());
            let mut identity_seq: Option<i64> = None;
            if let Some(kind) = c.identity {
                // the sequence PostgreSQL makes for an identity column
                let seq_oid = oids.next();
                identity_seq = Some(seq_oid);
                let (max, ty_oid) = match ty.oid {
                    21 => (i16::MAX as i64, 21),
                    20 => (i64::MAX, 20),
                    _ => (i32::MAX as i64, 23),
                };
                let _ = kind;
                let seq_name = format!("{}_{}_seq", t.name, c.name);
                rows.push(
                    Row::new("pg_class")
                        .set("oid", seq_oid)
                        .set("relname", seq_name.as_str())
                        .set("relnamespace", ns)
                        .set("relowner", BOOTSTRAP_ROLE)
                        .set("relfilenode", seq_oid)
                        .set("relpages", 1)
                        .set("reltuples", 1)
                        .set("relpersistence", "p")
                        .set("relkind", "S")
                        .set("relnatts", 3)
                        .set("relispopulated", true)
                        .set("relreplident", "n"),
                );
                rows.push(
                    Row::new("pg_sequence")
                        .set("seqrelid", seq_oid)
                        .set("seqtypid", ty_oid)
                        .set("seqstart", 1)
                        .set("seqincrement", 1)
                        .set("seqmax", max)
                        .set("seqmin", 1)
                        .set("seqcache", 1)
                        .set("seqcycle", false),
                );
                rows.push(
                    Row::new("bindproxy_regclass")
                        .set("oid", seq_oid)
                        .set("name", regclass_text(s, &seq_name)),
                );
            }
            if let Some(e) = &expr {
                let def_oid = oids.next();
                rows.push(
                    Row::new("pg_attrdef")
                        .set("oid", def_oid)
                        .set("adrelid", *rel_oid)
                        .set("adnum", attnum)
                        .set("adbin", "bindproxy"),
                );
                let _ = e;
            }
            rows.push(
                Row::new("bindproxy_attr")
                    .set("attrelid", *rel_oid)
                    .set("attnum", attnum)
                    .set("format_type", formatted.as_str())
                    .set("default_expr", expr.clone())
                    .set("attname_elem", array_elem(&c.name))
                    .set("identity_seq", identity_seq.map(V::Int).unwrap_or(V::Null)),
            );
            if let Some(cm) = &c.comment {
                rows.push(description(*rel_oid, attnum, cm));
            }
            rows.push(info_column(
                database_name,
                s,
                &t.name,
                attnum,
                c,
                &formatted,
                &ty,
                expr,
            ));
        }
        let attnum_of = |name: &str| -> Option<i64> {
            t.columns
                .iter()
                .position(|c| c.name == name)
                .map(|i| i as i64 + 1)
        };

        // constraints (and the indexes behind primary keys and unique constraints)
        for con in &t.constraints {
            let con_oid = oids.next();
            let (contype, def) = match &con.kind {
                ConstraintKind::PrimaryKey => ("p", con.definition.clone()),
                ConstraintKind::Unique => ("u", con.definition.clone()),
                ConstraintKind::Check => ("c", pretty_check(&con.definition)),
                ConstraintKind::ForeignKey(fk) => {
                    let rs = fk.ref_schema.clone().unwrap_or_else(|| s.clone());
                    pending_fks.push((con_oid, *rel_oid, con.name.clone(), fk.clone(), rs.clone()));
                    rows.push(
                        Row::new("bindproxy_constraint")
                            .set("oid", con_oid)
                            .set("def", fk_def(fk, &rs)),
                    );
                    continue;
                }
            };
            rows.push(
                Row::new("bindproxy_constraint")
                    .set("oid", con_oid)
                    .set("def", def.clone()),
            );
            let cols = constraint_columns(&def);
            let attnums: Vec<i64> = cols.iter().filter_map(|c| attnum_of(c)).collect();
            let mut index_oid = 0;
            if matches!(contype, "p" | "u") {
                index_oid = oids.next();
                key_indexes.push((*rel_oid, cols.clone(), index_oid));
                let keys: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
                index_rows(
                    &mut rows,
                    IndexSpec {
                        index_oid,
                        rel_oid: *rel_oid,
                        ns,
                        schema: s,
                        table: &t.name,
                        name: &con.name,
                        unique: true,
                        primary: contype == "p",
                        method: "btree",
                        keys: &keys,
                        predicate: None,
                    },
                    &attnum_of,
                    &col_types,
                );
            }
            rows.push(
                Row::new("pg_constraint")
                    .set("oid", con_oid)
                    .set("conname", con.name.as_str())
                    .set("connamespace", ns)
                    .set("contype", contype)
                    .set("convalidated", true)
                    .set("conrelid", *rel_oid)
                    .set("conindid", index_oid)
                    .set("conislocal", true)
                    .set("connoinherit", contype == "p")
                    .set(
                        "conkey",
                        array_text(&attnums.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
                    ),
            );
        }
        for ix in &t.indexes {
            let index_oid = oids.next();
            index_rows(
                &mut rows,
                IndexSpec {
                    index_oid,
                    rel_oid: *rel_oid,
                    ns,
                    schema: s,
                    table: &t.name,
                    name: &ix.name,
                    unique: ix.unique,
                    primary: false,
                    method: &ix.method,
                    keys: &ix.keys,
                    predicate: ix.predicate.as_deref(),
                },
                &attnum_of,
                &col_types,
            );
        }
    }
    // foreign keys last: their index is the referenced table's key
    for (con_oid, rel_oid, name, fk, rs) in pending_fks {
        let ref_oid = table_oid(&rs, &fk.ref_table).unwrap_or(0);
        let ref_index = key_indexes
            .iter()
            .find(|(o, cols, _)| *o == ref_oid && *cols == fk.ref_columns)
            .map(|(_, _, i)| *i)
            .unwrap_or(0);
        let attnums_in = |oid: i64, cols: &[String]| -> Vec<String> {
            let t = placed
                .iter()
                .find(|(_, _, o)| *o == oid)
                .map(|(t, _, _)| *t);
            cols.iter()
                .map(|c| {
                    t.and_then(|t| t.columns.iter().position(|x| x.name == *c))
                        .map(|i| (i + 1).to_string())
                        .unwrap_or_else(|| "0".into())
                })
                .collect()
        };
        let ns = placed
            .iter()
            .find(|(_, _, o)| *o == rel_oid)
            .map(|(_, s, _)| nsp(s))
            .unwrap_or(PUBLIC);
        rows.push(
            Row::new("pg_constraint")
                .set("oid", con_oid)
                .set("conname", name.as_str())
                .set("connamespace", ns)
                .set("contype", "f")
                .set("condeferrable", fk.deferrable != Deferrable::No)
                .set(
                    "condeferred",
                    fk.deferrable == Deferrable::InitiallyDeferred,
                )
                .set("convalidated", true)
                .set("conrelid", rel_oid)
                .set("conindid", ref_index)
                .set("confrelid", ref_oid)
                .set("confupdtype", fk_action(&fk.on_update))
                .set("confdeltype", fk_action(&fk.on_delete))
                .set("confmatchtype", "s")
                .set("conislocal", true)
                .set("conkey", array_text(&attnums_in(rel_oid, &fk.columns)))
                .set("confkey", array_text(&attnums_in(ref_oid, &fk.ref_columns))),
        );
    }
    Ok(rows)
}

/// The columns a `PRIMARY KEY (a, b)` / `UNIQUE (a)` definition lists, unquoted.
fn constraint_columns(def: &str) -> Vec<String> {
    let Some(open) = def.find('(') else {
        return vec![];
    };
    let Some(close) = def.rfind(')') else {
        return vec![];
    };
    if close <= open {
        return vec![];
    }
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let inner: Vec<char> = def[open + 1..close].chars().collect();
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if quoted {
            if c == '"' {
                if inner.get(i + 1) == Some(&'"') {
                    cur.push('"');
                    i += 1;
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else if !c.is_whitespace() {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn type_row(
    oid: i64,
    typname: &str,
    ns: i64,
    len: i64,
    byval: bool,
    typtype: &str,
    category: &str,
) -> Row {
    Row::new("pg_type")
        .set("oid", oid)
        .set("typname", typname)
        .set("typnamespace", ns)
        .set("typowner", BOOTSTRAP_ROLE)
        .set("typlen", len)
        .set("typbyval", byval)
        .set("typtype", typtype)
        .set("typcategory", category)
        .set("typisdefined", true)
        .set("typdelim", ",")
        .set("typalign", "i")
        .set("typstorage", "p")
        .set("typtypmod", -1)
}

fn description(objoid: i64, objsubid: i64, text: &str) -> Row {
    Row::new("pg_description")
        .set("objoid", objoid)
        .set("classoid", PG_CLASS_OID)
        .set("objsubid", objsubid)
        .set("description", text)
}

struct IndexSpec<'a> {
    index_oid: i64,
    rel_oid: i64,
    ns: i64,
    schema: &'a str,
    table: &'a str,
    name: &'a str,
    unique: bool,
    primary: bool,
    method: &'a str,
    keys: &'a [String],
    predicate: Option<&'a str>,
}

fn index_rows(
    rows: &mut Vec<Row>,
    ix: IndexSpec<'_>,
    attnum_of: &dyn Fn(&str) -> Option<i64>,
    col_types: &[Resolved],
) {
    let am = match ix.method {
        "hash" => 405,
        "gist" => 783,
        "gin" => 2742,
        "brin" => 3580,
        "spgist" => 4000,
        _ => BTREE,
    };
    let mut indkey = vec![];
    let mut indoption = vec![];
    let mut indclass = vec![];
    let mut indcollation = vec![];
    for (ord, key) in ix.keys.iter().enumerate() {
        let (expr, option) = split_key(key);
        let attnum = key_column(&expr).and_then(|c| attnum_of(&c)).unwrap_or(0);
        let ty = (attnum > 0)
            .then(|| col_types.get(attnum as usize - 1).copied())
            .flatten();
        let opclass = ty.map(|t| t.opclass).unwrap_or(0);
        indkey.push(attnum.to_string());
        indoption.push(option.to_string());
        indclass.push(opclass.to_string());
        indcollation.push(ty.map(|t| t.collation).unwrap_or(0).to_string());
        // pg_get_indexdef(oid, n, true): the key part alone (an expression without its parentheses)
        let bare = if attnum == 0 {
            expr.strip_prefix('(')
                .and_then(|e| e.strip_suffix(')'))
                .filter(|e| balanced(e))
                .unwrap_or(&expr)
                .to_string()
        } else {
            expr.clone()
        };
        rows.push(
            Row::new("bindproxy_index_key")
                .set("indexrelid", ix.index_oid)
                .set("ord", ord as i64 + 1)
                .set("def", bare.as_str())
                .set("def_elem", array_elem(&bare)),
        );
        rows.push(
            Row::new("bindproxy_index_elem")
                .set("indexrelid", ix.index_oid)
                .set("indrelid", ix.rel_oid)
                .set("ord", ord as i64)
                .set("attnum", attnum)
                .set("opclass", opclass),
        );
    }
    // pg_get_indexdef(oid): the table qualified; pretty (psql's): qualified only when not visible
    let def_of = |table: String| {
        let mut def = format!(
            "CREATE {}INDEX {} ON {} USING {} ({})",
            if ix.unique { "UNIQUE " } else { "" },
            quote_ident(ix.name),
            table,
            ix.method,
            ix.keys.join(", ")
        );
        if let Some(p) = ix.predicate {
            let _ = write!(def, " WHERE {p}");
        }
        def
    };
    let def = def_of(format!(
        "{}.{}",
        quote_ident(ix.schema),
        quote_ident(ix.table)
    ));
    let pretty = def_of(regclass_text(ix.schema, ix.table));
    rows.push(
        Row::new("bindproxy_index_key")
            .set("indexrelid", ix.index_oid)
            .set("ord", 0)
            .set("def", pretty.as_str())
            .set("def_elem", array_elem(&pretty)),
    );
    rows.push(
        Row::new("bindproxy_index")
            .set("indexrelid", ix.index_oid)
            .set("predicate", ix.predicate.map(str::to_string)),
    );
    rows.push(
        Row::new("bindproxy_regclass")
            .set("oid", ix.index_oid)
            .set("name", regclass_text(ix.schema, ix.name)),
    );
    rows.push(
        Row::new("pg_class")
            .set("oid", ix.index_oid)
            .set("relname", ix.name)
            .set("relnamespace", ix.ns)
            .set("relowner", BOOTSTRAP_ROLE)
            .set("relam", am)
            .set("relfilenode", ix.index_oid)
            .set("relpages", 1)
            .set("reltuples", 0)
            .set("relpersistence", "p")
            .set("relkind", "i")
            .set("relnatts", ix.keys.len() as i64)
            .set("relispopulated", true)
            .set("relreplident", "n"),
    );
    rows.push(
        Row::new("pg_index")
            .set("indexrelid", ix.index_oid)
            .set("indrelid", ix.rel_oid)
            .set("indnatts", ix.keys.len() as i64)
            .set("indnkeyatts", ix.keys.len() as i64)
            .set("indisunique", ix.unique)
            .set("indisprimary", ix.primary)
            .set("indimmediate", true)
            .set("indisvalid", true)
            .set("indisready", true)
            .set("indislive", true)
            .set("indkey", indkey.join(" "))
            .set("indcollation", indcollation.join(" "))
            .set("indclass", indclass.join(" "))
            .set("indoption", indoption.join(" "))
            .set("indpred", ix.predicate.map(|_| "bindproxy".to_string())),
    );
    rows.push(
        Row::new("pg_indexes")
            .set("schemaname", ix.schema)
            .set("tablename", ix.table)
            .set("indexname", ix.name)
            .set("tablespace", V::Null)
            .set("indexdef", def),
    );
}

/// `information_schema.columns` for one column.
#[allow(clippy::too_many_arguments)]
fn info_column(
    db: &str,
    schema: &str,
    table: &str,
    attnum: i64,
    c: &crate::catalog::model::Column,
    formatted: &str,
    ty: &Resolved,
    expr: Option<String>,
) -> Row {
    let base = BUILTIN_TYPES.iter().find(|b| b.oid == ty.oid);
    let is_array = formatted.ends_with("[]");
    let data_type = if is_array {
        "ARRAY".to_string()
    } else if base.is_some() {
        base.map(|b| b.formatted.to_string()).unwrap_or_default()
    } else {
        "USER-DEFINED".to_string()
    };
    let udt_name = if is_array {
        base.map(|b| b.typname.to_string()).unwrap_or_default()
    } else {
        base.map(|b| b.typname.to_string())
            .unwrap_or_else(|| formatted.to_string())
    };
    let mut r = Row::new("information_schema_columns")
        .set("table_catalog", db)
        .set("table_schema", schema)
        .set("table_name", table)
        .set("column_name", c.name.as_str())
        .set("ordinal_position", attnum)
        .set(
            "column_default",
            if c.generated.is_some() { None } else { expr },
        )
        .set("is_nullable", if c.not_null { "NO" } else { "YES" })
        .set("data_type", data_type)
        .set("udt_catalog", db)
        .set(
            "udt_schema",
            if base.is_some() { "pg_catalog" } else { schema },
        )
        .set("udt_name", udt_name)
        .set("dtd_identifier", attnum.to_string())
        .set("is_self_referencing", "NO")
        .set(
            "is_identity",
            if c.identity.is_some() { "YES" } else { "NO" },
        )
        .set(
            "is_generated",
            if c.generated.is_some() {
                "ALWAYS"
            } else {
                "NEVER"
            },
        )
        .set("generation_expression", c.generated.clone())
        .set("is_updatable", "YES");
    r.values.insert("character_maximum_length", V::Null);
    r.values.insert("character_octet_length", V::Null);
    r.values.insert("numeric_precision", V::Null);
    r.values.insert("numeric_precision_radix", V::Null);
    r.values.insert("numeric_scale", V::Null);
    r.values.insert("datetime_precision", V::Null);
    r.values.insert("maximum_cardinality", V::Null);
    if let Some(b) = base.filter(|_| !is_array) {
        match b.typname {
            "varchar" | "bpchar" => {
                if ty.typmod > 0 {
                    r.values
                        .insert("character_maximum_length", V::Int(ty.typmod - 4));
                    r.values
                        .insert("character_octet_length", V::Int((ty.typmod - 4) * 4));
                } else {
                    r.values
                        .insert("character_octet_length", V::Int(1073741824));
                }
            }
            "text" => {
                r.values
                    .insert("character_octet_length", V::Int(1073741824));
            }
            "int2" | "int4" | "int8" => {
                let p = match b.typname {
                    "int2" => 16,
                    "int4" => 32,
                    _ => 64,
                };
                r.values.insert("numeric_precision", V::Int(p));
                r.values.insert("numeric_precision_radix", V::Int(2));
                r.values.insert("numeric_scale", V::Int(0));
            }
            "float4" | "float8" => {
                r.values.insert(
                    "numeric_precision",
                    V::Int(if b.typname == "float4" { 24 } else { 53 }),
                );
                r.values.insert("numeric_precision_radix", V::Int(2));
            }
            "numeric" => {
                r.values.insert("numeric_precision_radix", V::Int(10));
                if ty.typmod >= 4 {
                    let m = ty.typmod - 4;
                    r.values
                        .insert("numeric_precision", V::Int((m >> 16) & 0xffff));
                    r.values.insert("numeric_scale", V::Int(m & 0xffff));
                }
            }
            "date" => {
                r.values.insert("datetime_precision", V::Int(0));
            }
            "time" | "timestamp" | "timestamptz" => {
                r.values.insert(
                    "datetime_precision",
                    V::Int(if ty.typmod >= 0 { ty.typmod } else { 6 }),
                );
            }
            _ => {}
        }
    }
    if let Some(id) = c.identity {
        r = r.set(
            "identity_generation",
            match id {
                Identity::Always => "ALWAYS",
                Identity::ByDefault => "BY DEFAULT",
            },
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_as_postgresql_quotes_them() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("name"), "name");
        assert_eq!(quote_ident("1a"), "\"1a\"");
    }

    #[test]
    fn check_definitions_print_as_pretty_constraintdef() {
        assert_eq!(
            pretty_check("CHECK ((total > (0)::numeric))"),
            "CHECK (total > 0::numeric)"
        );
        assert_eq!(pretty_check("CHECK ((a > 0))"), "CHECK (a > 0)");
        assert_eq!(
            pretty_check("CHECK (((a > 0) AND (b > 0)))"),
            "CHECK ((a > 0) AND (b > 0))"
        );
    }

    #[test]
    fn key_parts_split_into_column_and_options() {
        assert_eq!(split_key("id"), ("id".into(), 0));
        assert_eq!(split_key("id DESC"), ("id".into(), 3));
        assert_eq!(split_key("id DESC NULLS LAST"), ("id".into(), 1));
        assert_eq!(split_key("(lower(email))"), ("(lower(email))".into(), 0));
        assert_eq!(key_column("\"Name\"").as_deref(), Some("Name"));
        assert_eq!(key_column("(lower(email))"), None);
    }

    #[test]
    fn array_elements_quote_like_postgresql() {
        assert_eq!(
            array_text(&["id".into(), "my col".into()]),
            "{id,\"my col\"}"
        );
        assert_eq!(array_elem("a\"b"), "\"a\\\"b\"");
        assert_eq!(array_elem("NULL"), "\"NULL\"");
    }

    #[test]
    fn constraint_columns_are_read_back() {
        assert_eq!(constraint_columns("PRIMARY KEY (id)"), vec!["id"]);
        assert_eq!(
            constraint_columns("UNIQUE (a, \"B c\")"),
            vec!["a".to_string(), "B c".to_string()]
        );
    }
}
