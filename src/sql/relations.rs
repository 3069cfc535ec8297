//! The relations one parsed statement touches, read from PostgreSQL's own parse tree.
//!
//! Owns: [`collect`], a walk over every node of the tree (whatever its type) that gathers
//!
//! - every `RangeVar` (FROM items of any depth, `ONLY (t)`, DML targets, DDL subjects,
//!   foreign-key targets, `LIKE t`, `PARTITION OF`, `CREATE TABLE … AS`, `SELECT … INTO`,
//!   `TABLE t`, cursors, rules, `COPY`, `LOCK`, `TRUNCATE`, `VACUUM`, `GRANT`, …), except names
//!   that refer to a common table expression in scope;
//! - relations named as lists of strings (`DROP TABLE/VIEW/INDEX/SEQUENCE`, `COMMENT ON`,
//!   `DROP TRIGGER … ON t`, `OWNED BY t.c`);
//! - schemas acted on as a whole (`CREATE/DROP/ALTER SCHEMA`, `COMMENT ON SCHEMA`,
//!   `GRANT … ON ALL TABLES IN SCHEMA`, `ALTER DEFAULT PRIVILEGES IN SCHEMA`);
//! - relations named inside string literals: `'t'::regclass` and the arguments of functions
//!   whose parameter is a `regclass` (`nextval('s')`, `table_to_xml('t', …)`, …);
//! - the tables used by PL/pgSQL and SQL bodies of `DO` and `CREATE FUNCTION` (`plpgsql.rs`);
//! - and, typed as [`Dynamic`], whatever makes the set of relations unknowable from the text
//!   (`EXECUTE` of a string, functions that run SQL text, a relation passed as a parameter).
//!
//! CTE scoping follows PostgreSQL: a CTE of a plain `WITH` is visible to the main query and to
//! later CTEs; with `WITH RECURSIVE` to every CTE body too. A DML target is never a CTE.
//!
//! Must never: recurse on the tree (the walk uses an explicit stack), decide a bind, or drop a
//! relation it is not sure is a CTE reference: collecting too much leads to a refusal, too little
//! to a wrong bind.

use std::fmt;

use serde_json::{Map, Value};

use super::name::TableName;
use super::parse::AnalysisError;
use super::parse::{def_elems, int_field, node, str_field, string_const, string_list, string_node};
use super::plpgsql;
use super::settings::{self, SettingChange};
use pg_query::protobuf::ObjectType;

/// Functions with a `regclass` parameter, and the 0-based positions of those parameters
/// (PostgreSQL 15–18 `pg_proc`), plus those that take a relation name as text.
const RELATION_ARGUMENTS: &[(&str, &[usize])] = &[
    ("brin_desummarize_range", &[0]),
    ("brin_summarize_new_values", &[0]),
    ("brin_summarize_range", &[0]),
    ("currval", &[0]),
    ("gin_clean_pending_list", &[0]),
    ("has_any_column_privilege", &[0, 1]),
    ("has_column_privilege", &[0, 1]),
    ("has_sequence_privilege", &[0, 1]),
    ("has_table_privilege", &[0, 1]),
    ("nextval", &[0]),
    ("pg_column_is_updatable", &[0]),
    ("pg_extension_config_dump", &[0]),
    ("pg_get_replica_identity_index", &[0]),
    ("pg_get_serial_sequence", &[0]),
    ("pg_index_column_has_property", &[0]),
    ("pg_index_has_property", &[0]),
    ("pg_indexes_size", &[0]),
    ("pg_nextoid", &[0, 2]),
    ("pg_partition_ancestors", &[0]),
    ("pg_partition_root", &[0]),
    ("pg_partition_tree", &[0]),
    ("pg_relation_filenode", &[0]),
    ("pg_relation_filepath", &[0]),
    ("pg_relation_is_publishable", &[0]),
    ("pg_relation_is_updatable", &[0]),
    ("pg_relation_size", &[0]),
    ("pg_sequence_last_value", &[0]),
    ("pg_table_size", &[0]),
    ("pg_total_relation_size", &[0]),
    ("setval", &[0]),
    ("table_to_xml", &[0]),
    ("table_to_xml_and_xmlschema", &[0]),
    ("table_to_xmlschema", &[0]),
    ("to_regclass", &[0]),
];

/// Functions that touch data through a relation argument: a parameter there cannot be allowed.
const DATA_FUNCTIONS: &[&str] = &[
    "currval",
    "nextval",
    "setval",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "pg_sequence_last_value",
];

/// Functions that measure a relation's storage: the stub in a shadow catalog would answer 0.
const SIZE_FUNCTIONS: &[&str] = &[
    "pg_indexes_size",
    "pg_relation_filenode",
    "pg_relation_filepath",
    "pg_relation_size",
    "pg_table_size",
    "pg_total_relation_size",
];

/// Functions that run SQL text or read every table of a schema or database.
const SQL_TEXT_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
];

/// Why the relations of a statement cannot be known from its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dynamic {
    /// `EXECUTE` of a string (or `FOR … IN EXECUTE`, `OPEN … FOR EXECUTE`) in a PL/pgSQL body.
    ExecuteInBody,
    /// A function that runs SQL text or reads a whole schema or database.
    SqlTextFunction(String),
    /// A relation given as a parameter to a function that reads or writes it (`nextval($1)`).
    RelationParameter(String),
    /// A function or DO body in a language bindproxy cannot read.
    Language(String),
    /// A PL/pgSQL or SQL body that could not be analysed.
    UnreadableBody(String),
    /// Bodies nested inside bodies too deeply.
    NestedBodies,
    /// A setting that changes how names resolve, set to a value that is not a literal.
    UnknownSetting(String),
}

impl fmt::Display for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dynamic::ExecuteInBody => f.write_str("it runs dynamic SQL (EXECUTE of a string)"),
            Dynamic::SqlTextFunction(name) => {
                write!(f, "{name}() runs SQL text or reads tables it is not told")
            }
            Dynamic::RelationParameter(name) => {
                write!(f, "the relation of {name}() is a parameter")
            }
            Dynamic::Language(lang) => {
                write!(
                    f,
                    "its body is in language {lang}, which bindproxy cannot read"
                )
            }
            Dynamic::UnreadableBody(why) => write!(f, "its body could not be analysed ({why})"),
            Dynamic::NestedBodies => f.write_str("its bodies nest too deeply"),
            Dynamic::UnknownSetting(name) => {
                write!(f, "it sets {name} to a value that is not a literal")
            }
        }
    }
}

/// What [`collect`] found in one statement.
#[derive(Clone, Debug, Default)]
pub(crate) struct Collected {
    /// Relations, unsorted, possibly repeated.
    pub tables: Vec<TableName>,
    /// Relations named only to look them up in the catalog (`'t'::regclass`,
    /// `pg_get_serial_sequence('t', 'id')`), also listed in `tables`, once per mention.
    pub references: Vec<TableName>,
    /// It calls a function that reads or writes a relation's data (`nextval`, `setval`), whatever
    /// its argument: such a statement is never a mere catalog lookup.
    pub data_function: bool,
    /// A relation is looked up in the catalog by a name given as a parameter
    /// (`to_regclass($1)`, `$1::regclass`).
    pub parameter_lookup: bool,
    /// The one row of `pg_settings` the statement reads (`WHERE name = 'x'`), for
    /// `set_config(name, …)` over it.
    pub settings_row: Option<String>,
    /// Schemas acted on as a whole (`CREATE/DROP/ALTER SCHEMA`, `GRANT … ON ALL TABLES IN SCHEMA`).
    pub schemas: Vec<String>,
    /// A relation name (or a body) was read out of a string literal: the analysis must not be
    /// shared between texts that differ in literal values.
    pub literal_names: bool,
    /// Why the relations are not all known, if they are not.
    pub dynamic: Option<Dynamic>,
    /// `set_config('search_path', …)` calls, in tree order.
    pub settings: Vec<SettingChange>,
    /// A construct bindproxy refuses outright (`set_config('standard_conforming_strings', 'off')`).
    pub refused: Option<AnalysisError>,
}

impl Collected {
    pub(crate) fn dynamic(&mut self, d: Dynamic) {
        self.dynamic.get_or_insert(d);
    }
}

/// `GrantTargetType::AclTargetAllInSchema`.
const ALL_IN_SCHEMA: i64 = 2;

/// How deep bodies (`DO` inside a function body inside …) may nest.
pub(crate) const MAX_BODY_DEPTH: usize = 4;

/// A CTE scope: the names it defines and the enclosing scope.
struct Scope {
    parent: Option<usize>,
    names: Vec<String>,
}

/// Where a node sits, as far as name resolution cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Anywhere.
    Any,
    /// The target relation of INSERT/UPDATE/DELETE/MERGE: never a CTE reference.
    DmlTarget,
    /// A `SelectStmt` written without its type tag (a set operation's `larg`/`rarg`).
    SelectBranch,
}

/// Collects the relations of one statement node (`{"SelectStmt": …}`). `text` is the statement's
/// own text (PL/pgSQL bodies are parsed from it); `depth` counts enclosing bodies.
pub(crate) fn collect(stmt: &Value, text: &str, depth: usize, out: &mut Collected) {
    out.settings_row = settings::pg_settings_row(stmt).map(str::to_owned);
    let mut scopes = vec![Scope {
        parent: None,
        names: Vec::new(),
    }];
    let mut stack: Vec<(&Value, usize, Position)> = vec![(stmt, 0, Position::Any)];
    while let Some((v, scope, pos)) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, scope, Position::Any))),
            Value::Object(map) if pos == Position::SelectBranch => {
                statement(map, "SelectStmt", scope, &mut scopes, &mut stack)
            }
            Value::Object(map) if is_range_var(map) => range_var(map, scope, pos, &scopes, out),
            Value::Object(map) => {
                visit_object(map, scope, text, depth, &mut scopes, &mut stack, out)
            }
            _ => {}
        }
    }
}

/// A `RangeVar`: fields typed as one (`InsertStmt.relation`) carry no type tag, so it is known by
/// its shape.
fn is_range_var(map: &Map<String, Value>) -> bool {
    map.contains_key("relname") && map.contains_key("relpersistence")
}

fn range_var(
    map: &Map<String, Value>,
    scope: usize,
    pos: Position,
    scopes: &[Scope],
    out: &mut Collected,
) {
    let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("");
    let (schema, name) = (field("schemaname"), field("relname"));
    let is_cte = pos != Position::DmlTarget && schema.is_empty() && in_scope(scopes, scope, name);
    if !is_cte && !name.is_empty() {
        out.tables
            .push(TableName::new((!schema.is_empty()).then_some(schema), name));
    }
}

/// A statement that may carry a WITH clause: its CTE scopes, then its fields.
fn statement<'a>(
    inner: &'a Map<String, Value>,
    kind: &str,
    scope: usize,
    scopes: &mut Vec<Scope>,
    stack: &mut Vec<(&'a Value, usize, Position)>,
) {
    let with = inner.get("with_clause").filter(|w| w.is_object());
    let scope = match with {
        Some(w) => push_with(w, scope, scopes, stack),
        None => scope,
    };
    for (field, child) in inner {
        let pos = match field.as_str() {
            "with_clause" => continue,
            "relation" if kind != "SelectStmt" => Position::DmlTarget,
            "larg" | "rarg" => Position::SelectBranch,
            _ => Position::Any,
        };
        stack.push((child, scope, pos));
    }
}

fn visit_object<'a>(
    map: &'a Map<String, Value>,
    scope: usize,
    text: &str,
    depth: usize,
    scopes: &mut Vec<Scope>,
    stack: &mut Vec<(&'a Value, usize, Position)>,
    out: &mut Collected,
) {
    for (key, v) in map {
        match key.as_str() {
            "RangeVar" => {
                if let Some(m) = v.as_object() {
                    range_var(m, scope, Position::Any, scopes, out);
                }
            }
            "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                if let Some(inner) = v.as_object() {
                    statement(inner, key, scope, scopes, stack);
                }
            }
            "DropStmt" => {
                let kind = int_field(v, "remove_type");
                if let Some(objects) = v.get("objects").and_then(Value::as_array) {
                    for o in objects {
                        named_object(kind, o, out);
                    }
                }
            }
            "CommentStmt" | "SecLabelStmt" => {
                if let Some(o) = v.get("object") {
                    named_object(int_field(v, "objtype"), o, out);
                }
            }
            "AlterOwnerStmt" => {
                if let Some(o) = v.get("object") {
                    named_object(int_field(v, "object_type"), o, out);
                }
                stack.push((v, scope, Position::Any));
            }
            "CreateSchemaStmt" => {
                out.schemas.push(str_field(v, "schemaname").to_owned());
                stack.push((v, scope, Position::Any));
            }
            "RenameStmt" if int_field(v, "rename_type") == ObjectType::ObjectSchema as i64 => {
                out.schemas.push(str_field(v, "subname").to_owned());
            }
            "GrantStmt" if int_field(v, "targtype") == ALL_IN_SCHEMA => {
                if let Some(objects) = v.get("objects").and_then(Value::as_array) {
                    out.schemas
                        .extend(objects.iter().filter_map(string_node).map(str::to_owned));
                }
            }
            "AlterDefaultPrivilegesStmt" => {
                for (name, arg) in def_elems(v, "options") {
                    if let (Some(names), "schemas") = (arg.and_then(string_list), name) {
                        out.schemas.extend(names.into_iter().map(str::to_owned));
                    }
                }
                stack.push((v, scope, Position::Any));
            }
            "DefElem" if str_field(v, "defname") == "sequence_name" => {
                if let Some(parts) = v.get("arg").and_then(string_list) {
                    push_parts(&parts, out);
                }
            }
            "DefElem" if str_field(v, "defname") == "owned_by" => {
                if let Some(parts) = v.get("arg").and_then(string_list) {
                    if parts.len() >= 2 {
                        push_parts(&parts[..parts.len() - 1], out);
                    }
                }
            }
            "TypeCast" => {
                if is_regclass(v.get("type_name")) {
                    if let Some(arg) = v.get("arg") {
                        relation_argument(arg, Use::Reference, out);
                    }
                }
                stack.push((v, scope, Position::Any));
            }
            "FuncCall" => {
                let name = v
                    .get("funcname")
                    .and_then(string_list)
                    .and_then(|p| p.last().map(|s| s.to_string()))
                    .unwrap_or_default();
                if DATA_FUNCTIONS.contains(&name.as_str()) {
                    out.data_function = true;
                }
                if let Some((_, positions)) = RELATION_ARGUMENTS.iter().find(|(f, _)| *f == name) {
                    let args = v.get("args").and_then(Value::as_array);
                    for &i in positions.iter() {
                        if let Some(arg) = args.and_then(|a| a.get(i)) {
                            let usage = if DATA_FUNCTIONS.contains(&name.as_str()) {
                                Use::Data(name.as_str())
                            } else if SIZE_FUNCTIONS.contains(&name.as_str()) {
                                Use::Size
                            } else {
                                Use::Reference
                            };
                            relation_argument(arg, usage, out);
                        }
                    }
                } else if SQL_TEXT_FUNCTIONS.contains(&name.as_str()) {
                    out.dynamic(Dynamic::SqlTextFunction(name));
                } else {
                    match settings::set_config(v, out.settings_row.as_deref()) {
                        Ok(Some(Ok(change))) => {
                            out.literal_names = true;
                            out.settings.push(change)
                        }
                        Ok(Some(Err(d))) => out.dynamic(d),
                        Ok(None) => {}
                        Err(e) => {
                            out.refused.get_or_insert(e);
                        }
                    }
                }
                stack.push((v, scope, Position::Any));
            }
            "DoStmt" => plpgsql::do_block(v, depth, out),
            "CreateFunctionStmt" => {
                plpgsql::function_body(v, text, depth, out);
                stack.push((v, scope, Position::Any));
            }
            _ => stack.push((v, scope, Position::Any)),
        }
    }
}

/// Opens the scopes of a WITH clause; returns the scope of the main query.
fn push_with<'a>(
    with: &'a Value,
    scope: usize,
    scopes: &mut Vec<Scope>,
    stack: &mut Vec<(&'a Value, usize, Position)>,
) -> usize {
    let recursive = with.get("recursive").and_then(Value::as_bool) == Some(true);
    let ctes: Vec<(&str, Option<&Value>)> = with
        .get("ctes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| match node(c) {
                    Some(("CommonTableExpr", c)) => {
                        Some((str_field(c, "ctename"), c.get("ctequery")))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let all = scopes.len();
    scopes.push(Scope {
        parent: Some(scope),
        names: ctes.iter().map(|(n, _)| n.to_string()).collect(),
    });
    for (i, (_, body)) in ctes.iter().enumerate() {
        let Some(body) = body else { continue };
        let body_scope = if recursive {
            all
        } else {
            scopes.push(Scope {
                parent: Some(scope),
                names: ctes[..i].iter().map(|(n, _)| n.to_string()).collect(),
            });
            scopes.len() - 1
        };
        stack.push((body, body_scope, Position::Any));
    }
    // search/cycle clauses name columns only
    all
}

fn in_scope(scopes: &[Scope], mut scope: usize, name: &str) -> bool {
    loop {
        let Some(s) = scopes.get(scope) else {
            return false;
        };
        if s.names.iter().any(|n| n == name) {
            return true;
        }
        match s.parent {
            Some(p) => scope = p,
            None => return false,
        }
    }
}

/// A relation named as a list of strings by `DROP`, `COMMENT ON`, `SECURITY LABEL`.
fn named_object(kind: i64, object: &Value, out: &mut Collected) {
    let whole = [
        ObjectType::ObjectTable,
        ObjectType::ObjectSequence,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
        ObjectType::ObjectIndex,
        ObjectType::ObjectForeignTable,
    ];
    let owner = [
        ObjectType::ObjectColumn,
        ObjectType::ObjectTrigger,
        ObjectType::ObjectRule,
        ObjectType::ObjectPolicy,
        ObjectType::ObjectTabconstraint,
    ];
    if kind == ObjectType::ObjectSchema as i64 {
        if let Some(name) = string_node(object) {
            out.schemas.push(name.to_owned());
        }
        return;
    }
    let Some(parts) = string_list(object) else {
        return;
    };
    if whole.iter().any(|k| *k as i64 == kind) {
        push_parts(&parts, out);
    } else if owner.iter().any(|k| *k as i64 == kind) && parts.len() >= 2 {
        push_parts(&parts[..parts.len() - 1], out);
    }
}

/// Pushes a relation from already-folded name parts (`[schema,] name`, a leading database part
/// dropped).
fn push_parts(parts: &[&str], out: &mut Collected) {
    match parts {
        [] => {}
        [name] => out.tables.push(TableName::new(None, name)),
        [.., schema, name] => out.tables.push(TableName::new(Some(schema), name)),
    }
}

fn is_regclass(type_name: Option<&Value>) -> bool {
    type_name
        .and_then(|t| t.get("names"))
        .and_then(string_list)
        .and_then(|p| p.last().map(|s| *s == "regclass"))
        .unwrap_or(false)
}

/// How a statement uses a relation it names in a `regclass` argument.
#[derive(Clone, Copy)]
enum Use<'a> {
    /// The function reads or writes the relation's data (`nextval`): a parameter there is
    /// unknowable.
    Data(&'a str),
    /// The function measures the relation's storage: only its own bind knows.
    Size,
    /// A catalog lookup by name (`'t'::regclass`, `pg_get_serial_sequence`): any catalog that
    /// holds the relation answers it.
    Reference,
}

/// A `regclass` argument: a string literal names a relation; a parameter is unknowable when the
/// function reads or writes data through it.
fn relation_argument(arg: &Value, usage: Use<'_>, out: &mut Collected) {
    if let Some(text) = string_const(arg) {
        out.literal_names = true;
        if let Some(t) = TableName::parse_regclass(text) {
            if matches!(usage, Use::Reference) {
                out.references.push(t.clone());
            }
            out.tables.push(t);
        }
        return;
    }
    match node(arg) {
        Some(("ParamRef", _)) => match usage {
            Use::Data(f) => out.dynamic(Dynamic::RelationParameter(f.to_owned())),
            Use::Reference => out.parameter_lookup = true,
            Use::Size => {}
        },
        Some(("TypeCast", c)) => {
            if let Some(inner) = c.get("arg") {
                relation_argument(inner, usage, out)
            }
        }
        _ => {}
    }
}
