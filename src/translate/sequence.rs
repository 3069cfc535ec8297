//! Sequences and the ALTER TABLE forms pg_dump writes, for MySQL/MariaDB and SQLite binds.
//!
//! Owns: [`plan`], which reads these statements with PostgreSQL's own parser (libpg_query: pg_dump's
//! `CREATE SEQUENCE … AS integer START WITH … NO MINVALUE …` is outside the general translator's
//! grammar) and says what the bind runs:
//! - `CREATE SEQUENCE` / `DROP SEQUENCE`: MariaDB's own sequences (10.3+); on SQLite a row of the
//!   table `bindproxy_sequences` (created on first use);
//! - `SELECT nextval('s')`, `currval('s')`, `setval('s', n[, is_called])` as a whole statement
//!   (pg_dump's `SELECT pg_catalog.setval(…)`): MariaDB's NEXTVAL/LASTVAL/SETVAL; on SQLite an
//!   `UPDATE … RETURNING` of that row;
//! - `ALTER TABLE [ONLY] t ADD CONSTRAINT … PRIMARY KEY / UNIQUE / FOREIGN KEY` and `ALTER COLUMN c
//!   SET DEFAULT nextval('s')`: MariaDB's ALTER TABLE; on SQLite a [`Rebuild`] of the table (run by
//!   `backend/translated/rebuild.rs`), SQLite having no ALTER TABLE for them;
//! - `ALTER TABLE … ADD CONSTRAINT … CHECK` (SQLite: a rebuild; MySQL: the general translator)
//!   and `ALTER COLUMN c {SET|DROP} NOT NULL` (MySQL: [`Plan::MysqlNullability`]; SQLite: a rebuild);
//! - `ALTER TABLE … ALTER COLUMN c TYPE ty` ([`Plan::AlterType`], rules in `alter_type.rs`);
//! - `ALTER … OWNER TO` and `ALTER SEQUENCE … OWNED BY`: accepted and ignored ([`Plan::Ignored`]);
//! - `LOCK … IN ACCESS SHARE MODE`: planned by [`super::lock`].
//!
//! Everything else is `None`: the general translator decides. Names are quoted for the target and
//! literals are integers parsed here, and every rendering is re-lexed by [`super::safety`].
//!
//! Must never: run anything, or accept a form it does not render faithfully (those are `None` or
//! Unsupported).

use pg_query::protobuf::node::Node as NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, Node, ObjectType};

use super::error::TranslateError;
use super::names::{quote, string_literal};
use super::{Kind, ResultType, Rewritten, TagHint, Target};

type Result<T> = std::result::Result<T, TranslateError>;

/// The SQLite table holding the emulated sequences: one row per sequence.
pub const SQLITE_SEQUENCES: &str = "bindproxy_sequences";

/// Its definition. `owner_table`: the table whose key the sequence numbers (a column made the
/// rowid key by `ALTER COLUMN … SET DEFAULT nextval(…)`), kept in step by a trigger.
pub const SQLITE_SEQUENCES_DDL: &str = "CREATE TABLE IF NOT EXISTS \"bindproxy_sequences\" (\"name\" TEXT PRIMARY KEY, \"last_value\" INTEGER NOT NULL, \"start_value\" INTEGER NOT NULL, \"increment\" INTEGER NOT NULL, \"min_value\" INTEGER NOT NULL, \"max_value\" INTEGER NOT NULL, \"cycle\" INTEGER NOT NULL, \"is_called\" INTEGER NOT NULL, \"owner_table\" TEXT)";

/// What a statement of this module becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Statements the engine runs, as any translated statement.
    Engine(Vec<Rewritten>),
    /// Accepted and ignored: the tag, and the NOTICE the client gets (if any).
    Ignored {
        tag: &'static str,
        notice: Option<&'static str>,
    },
    /// A SQLite table rebuilt with a change.
    Rebuild(Rebuild),
    /// `LOCK … IN ACCESS SHARE MODE` (`super::lock`): these reads, inside the client's
    /// transaction, rows discarded; tag `LOCK TABLE`.
    Lock { probes: Vec<String> },
    /// `SELECT last_value, is_called FROM s` (how pg_dump reads a sequence): the executor finds
    /// what `s` is on the engine — a sequence of this module, or the counter of the
    /// auto-increment column `<table>_<column>_seq` names — and reads it (`session/schema.rs`).
    SequenceState { sequence: String },
    /// `ALTER TABLE t ALTER COLUMN c {SET|DROP} NOT NULL` on MySQL: `MODIFY` needs the column's
    /// whole definition, which the executor reads from information_schema (`session/schema.rs`).
    MysqlNullability {
        table: String,
        column: String,
        nullability: Nullability,
    },
    /// `ALTER TABLE t ALTER COLUMN c TYPE ty`: the executor reads the column's current type, then
    /// probes the rows and runs MariaDB's `MODIFY` or SQLite's rebuild (`session/schema.rs`).
    AlterType(super::alter_type::AlterType),
}

/// Whether a column accepts NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nullability {
    NotNull,
    Nullable,
}

/// A change SQLite can only make by rebuilding the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    pub table: String,
    pub change: Change,
    /// The CommandComplete tag.
    pub tag: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `ALTER COLUMN c SET DEFAULT nextval('s')`: on SQLite the column becomes the rowid key
    /// (`INTEGER PRIMARY KEY AUTOINCREMENT`), which numbers rows as a serial column does.
    SerialKey { column: String, sequence: String },
    /// A table constraint, rendered for SQLite (`CONSTRAINT "n" PRIMARY KEY ("id")`), and for a
    /// primary key its columns (a key already there as the rowid alias is not added twice).
    Constraint {
        sql: String,
        primary_key: Option<Vec<String>>,
    },
    /// `ALTER COLUMN c SET NOT NULL` / `DROP NOT NULL`.
    Nullability {
        column: String,
        nullability: Nullability,
    },
    /// `ALTER COLUMN c TYPE …`: the column's declared type `from` (as `PRAGMA table_info` shows
    /// it) becomes `to` with its range check `check` (or none); rows are copied with `copy`.
    ColumnType {
        column: String,
        from: String,
        to: String,
        check: String,
        copy: String,
    },
}

/// A cheap test before parsing: the statements this module takes all start like this.
fn candidate(sql: &str) -> bool {
    let s = sql.trim_start();
    let head: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match head.as_str() {
        "alter" | "lock" => true,
        "create" | "drop" => s.len() < 64 * 1024 && s.to_ascii_lowercase().contains("sequence"),
        "select" => {
            s.len() < 4096 && {
                let l = s.to_ascii_lowercase();
                l.contains("nextval")
                    || l.contains("setval")
                    || l.contains("currval")
                    || l.contains("last_value")
            }
        }
        _ => false,
    }
}

/// The plan for `sql` when it is one of this module's statements.
pub fn plan(sql: &str, target: Target) -> Option<Result<Plan>> {
    if !candidate(sql) {
        return None;
    }
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let node = raw.stmt.as_ref()?.node.as_ref()?;
    let r = match node {
        NodeEnum::CreateSeqStmt(c) => create_sequence(c, target),
        NodeEnum::AlterSeqStmt(a) => alter_sequence(a),
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectSequence as i32 => {
            drop_sequence(d, target)
        }
        NodeEnum::SelectStmt(s) => match sequence_state(s) {
            Some(p) => Ok(p),
            None => select_function(s, target)?,
        },
        NodeEnum::AlterTableStmt(a) => alter_table(a, target, sql)?,
        NodeEnum::LockStmt(l) => super::lock::plan(l, target),
        _ => return None,
    };
    Some(r.and_then(|p| checked(p, target)))
}

/// Every rendering is lexed as the engine reads it (one statement, no comments).
fn checked(p: Plan, target: Target) -> Result<Plan> {
    match &p {
        Plan::Engine(parts) => {
            for part in parts {
                super::safety::check_plain(&part.sql, target)?;
                for b in &part.before {
                    super::safety::check_plain(b, target)?;
                }
            }
        }
        Plan::Lock { probes } => {
            for sql in probes {
                super::safety::check_plain(sql, target)?;
            }
        }
        Plan::Ignored { .. }
        | Plan::Rebuild(_)
        | Plan::SequenceState { .. }
        | Plan::MysqlNullability { .. }
        | Plan::AlterType(_) => {}
    }
    Ok(p)
}

fn rewritten(sql: String, before: Vec<String>, kind: Kind, tag: TagHint) -> Rewritten {
    Rewritten {
        sql,
        before,
        params: vec![],
        kind,
        returning: None,
        param_hints: vec![],
        pg_types: vec![],
        tag_hint: tag,
        drop_index_lookup: None,
        tables: vec![],
        result_types: vec![],
    }
}

fn unsupported<T>(what: &str) -> Result<T> {
    Err(TranslateError::unsupported(what))
}

fn string_of(n: &Node) -> Option<&str> {
    match n.node.as_ref()? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// An integer option value (`Integer`, or `Float` for values beyond int4).
fn int_of(n: Option<&Node>) -> Option<i64> {
    match n?.node.as_ref()? {
        NodeEnum::Integer(i) => Some(i64::from(i.ival)),
        NodeEnum::Float(f) => f.fval.parse().ok(),
        NodeEnum::AConst(a) => match a.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Ival(i) => Some(i64::from(i.ival)),
            pg_query::protobuf::a_const::Val::Fval(f) => f.fval.parse().ok(),
            _ => None,
        },
        NodeEnum::AExpr(e) if e.name.first().and_then(string_of) == Some("-") => {
            int_of(e.rexpr.as_deref()).map(|v| -v)
        }
        _ => None,
    }
}

/// Sequence options as PostgreSQL fills them in.
struct SeqOptions {
    start: i64,
    increment: i64,
    min: i64,
    max: i64,
    cycle: bool,
    cache: Option<i64>,
}

fn seq_options(options: &[Node]) -> Result<SeqOptions> {
    let (mut ty_max, mut ty_min) = (i64::MAX, i64::MIN);
    let (mut start, mut increment, mut min, mut max, mut cycle, mut cache) =
        (None, 1i64, None, None, false, None);
    for o in options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let arg = d.arg.as_deref();
        match d.defname.as_str() {
            "as" => {
                let name = match arg.and_then(|a| a.node.as_ref()) {
                    Some(NodeEnum::TypeName(t)) => {
                        t.names.last().and_then(string_of).unwrap_or("").to_string()
                    }
                    _ => String::new(),
                };
                (ty_min, ty_max) = match name.as_str() {
                    "int2" => (i64::from(i16::MIN), i64::from(i16::MAX)),
                    "int4" => (i64::from(i32::MIN), i64::from(i32::MAX)),
                    "int8" => (i64::MIN, i64::MAX),
                    _ => {
                        return unsupported(
                            "CREATE SEQUENCE AS a type other than smallint, integer or bigint",
                        )
                    }
                };
            }
            "start" => start = int_of(arg),
            "increment" => increment = int_of(arg).unwrap_or(1),
            "minvalue" => min = int_of(arg),
            "maxvalue" => max = int_of(arg),
            "cache" => cache = int_of(arg),
            "cycle" => {
                cycle = !matches!(arg.and_then(|a| a.node.as_ref()), Some(NodeEnum::Boolean(b)) if !b.boolval)
                    && !matches!(arg.and_then(|a| a.node.as_ref()), Some(NodeEnum::Integer(i)) if i.ival == 0)
            }
            "owned_by" => {}
            other => return unsupported(&format!("sequence option {}", other.to_uppercase())),
        }
    }
    if increment == 0 {
        return Err(TranslateError::Invalid("INCREMENT must not be zero".into()));
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { ty_min });
    let max = max.unwrap_or(if increment > 0 { ty_max } else { -1 });
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    Ok(SeqOptions {
        start,
        increment,
        min,
        max,
        cycle,
        cache,
    })
}

fn create_sequence(c: &pg_query::protobuf::CreateSeqStmt, target: Target) -> Result<Plan> {
    let Some(rv) = &c.sequence else {
        return unsupported("CREATE SEQUENCE without a name");
    };
    if c.for_identity {
        return unsupported("identity sequence");
    }
    let o = seq_options(&c.options)?;
    let name = &rv.relname;
    let ine = c.if_not_exists;
    let part = match target {
        Target::MySql => {
            // MariaDB keeps one value off each end of bigint's range.
            let (min, max) = (o.min.max(i64::MIN + 1), o.max.min(i64::MAX - 1));
            let mut sql = format!(
                "CREATE SEQUENCE {}{} START WITH {} INCREMENT BY {} MINVALUE {min} MAXVALUE {max}",
                if ine { "IF NOT EXISTS " } else { "" },
                quote(name, target),
                o.start.clamp(min, max),
                o.increment,
            );
            match o.cache {
                Some(n) if n > 1 => sql.push_str(&format!(" CACHE {n}")),
                _ => sql.push_str(" NOCACHE"),
            }
            sql.push_str(if o.cycle { " CYCLE" } else { " NOCYCLE" });
            rewritten(sql, vec![], Kind::Other, TagHint::Fixed("CREATE SEQUENCE"))
        }
        Target::Sqlite => rewritten(
            format!(
                "INSERT {}INTO \"{SQLITE_SEQUENCES}\" VALUES ({}, {}, {}, {}, {}, {}, {}, 0, NULL)",
                if ine { "OR IGNORE " } else { "" },
                string_literal(name),
                o.start,
                o.start,
                o.increment,
                o.min,
                o.max,
                o.cycle as i32
            ),
            vec![SQLITE_SEQUENCES_DDL.into()],
            Kind::Other,
            TagHint::Fixed("CREATE SEQUENCE"),
        ),
    };
    Ok(Plan::Engine(vec![part]))
}

/// Only `OWNED BY`, which means nothing to the engine (dropping the table does not drop the
/// sequence on these binds).
fn alter_sequence(a: &pg_query::protobuf::AlterSeqStmt) -> Result<Plan> {
    let only_owned_by = a
        .options
        .iter()
        .all(|o| matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "owned_by"));
    if !only_owned_by || a.options.is_empty() {
        return unsupported("ALTER SEQUENCE other than OWNED BY");
    }
    Ok(Plan::Ignored {
        tag: "ALTER SEQUENCE",
        notice: None,
    })
}

fn drop_sequence(d: &pg_query::protobuf::DropStmt, target: Target) -> Result<Plan> {
    let mut parts = vec![];
    for o in &d.objects {
        let names: Vec<&str> = match o.node.as_ref() {
            Some(NodeEnum::List(l)) => l.items.iter().filter_map(string_of).collect(),
            _ => vec![],
        };
        let Some(name) = names.last() else {
            return unsupported("DROP SEQUENCE of this form");
        };
        let sql = match target {
            Target::MySql => format!(
                "DROP SEQUENCE {}{}",
                if d.missing_ok { "IF EXISTS " } else { "" },
                quote(name, target)
            ),
            Target::Sqlite => format!(
                "DELETE FROM \"{SQLITE_SEQUENCES}\" WHERE \"name\" = {}",
                string_literal(name)
            ),
        };
        let before = match target {
            Target::Sqlite => vec![SQLITE_SEQUENCES_DDL.to_string()],
            Target::MySql => vec![],
        };
        parts.push(rewritten(
            sql,
            before,
            Kind::Other,
            TagHint::Fixed("DROP SEQUENCE"),
        ));
    }
    Ok(Plan::Engine(parts))
}

/// The sequence a `'public.s'` / `'s'::regclass` argument names, folded as regclass input is.
fn sequence_arg(n: &Node) -> Option<String> {
    let text = match n.node.as_ref()? {
        NodeEnum::AConst(a) => match a.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => s.sval.clone(),
            _ => return None,
        },
        NodeEnum::TypeCast(t) => return sequence_arg(t.arg.as_deref()?),
        _ => return None,
    };
    let last = text.rsplit('.').next()?.trim();
    Some(
        match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(q) => q.replace("\"\"", "\""),
            None => last.to_lowercase(),
        },
    )
}

fn bool_arg(n: &Node) -> Option<bool> {
    match n.node.as_ref()? {
        NodeEnum::AConst(a) => match a.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Boolval(b) => Some(b.boolval),
            pg_query::protobuf::a_const::Val::Sval(s) => match s.sval.as_str() {
                "t" | "true" | "on" | "1" => Some(true),
                "f" | "false" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        },
        NodeEnum::TypeCast(t) => bool_arg(t.arg.as_deref()?),
        _ => None,
    }
}

/// `SELECT [pg_catalog.]nextval('s')` (currval, setval) as the whole statement.
/// `SELECT last_value, is_called FROM [public.]s`, exactly (pg_dump's read of a sequence).
fn sequence_state(s: &pg_query::protobuf::SelectStmt) -> Option<Plan> {
    let plain = s.where_clause.is_none()
        && s.values_lists.is_empty()
        && s.sort_clause.is_empty()
        && s.group_clause.is_empty()
        && s.limit_count.is_none()
        && s.with_clause.is_none()
        && s.larg.is_none()
        && s.into_clause.is_none()
        && s.distinct_clause.is_empty();
    if !plain {
        return None;
    }
    let columns: Vec<&str> = s
        .target_list
        .iter()
        .map(|t| match t.node.as_ref()? {
            NodeEnum::ResTarget(rt) if rt.name.is_empty() => {
                match rt.val.as_ref()?.node.as_ref()? {
                    NodeEnum::ColumnRef(c) => match c.fields.as_slice() {
                        [f] => string_of(f),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    if columns != ["last_value", "is_called"] {
        return None;
    }
    let [from] = s.from_clause.as_slice() else {
        return None;
    };
    let Some(NodeEnum::RangeVar(rv)) = from.node.as_ref() else {
        return None;
    };
    if !(rv.schemaname.is_empty() || rv.schemaname == "public") || rv.alias.is_some() {
        return None;
    }
    Some(Plan::SequenceState {
        sequence: rv.relname.clone(),
    })
}

fn select_function(s: &pg_query::protobuf::SelectStmt, target: Target) -> Option<Result<Plan>> {
    let plain = s.from_clause.is_empty()
        && s.where_clause.is_none()
        && s.values_lists.is_empty()
        && s.sort_clause.is_empty()
        && s.group_clause.is_empty()
        && s.limit_count.is_none()
        && s.with_clause.is_none()
        && s.larg.is_none()
        && s.into_clause.is_none();
    let [t] = s.target_list.as_slice() else {
        return None;
    };
    let Some(NodeEnum::ResTarget(rt)) = t.node.as_ref() else {
        return None;
    };
    let Some(NodeEnum::FuncCall(f)) = rt.val.as_ref()?.node.as_ref() else {
        return None;
    };
    let names: Vec<&str> = f.funcname.iter().filter_map(string_of).collect();
    let func = match names.as_slice() {
        [n] | ["pg_catalog", n] => *n,
        _ => return None,
    };
    if !matches!(func, "nextval" | "currval" | "setval") {
        return None;
    }
    if !plain {
        return Some(unsupported(&format!("{func}() inside a larger query")));
    }
    let column = if rt.name.is_empty() {
        func.to_string()
    } else {
        rt.name.clone()
    };
    let Some(seq) = f.args.first().and_then(sequence_arg) else {
        return Some(unsupported(&format!(
            "{func}() of a sequence name that is not a literal"
        )));
    };
    let value = match (func, f.args.get(1)) {
        ("setval", Some(n)) => match int_of(Some(n)) {
            Some(v) => Some(v),
            None => {
                return Some(unsupported(
                    "setval() of a value that is not an integer literal",
                ))
            }
        },
        ("setval", None) => return Some(unsupported("setval() without a value")),
        _ => None,
    };
    let is_called = match f.args.get(2) {
        Some(n) => match bool_arg(n) {
            Some(b) => b,
            None => return Some(unsupported("setval() with a non-literal is_called")),
        },
        None => true,
    };
    let expected = if func == "setval" { 2..=3 } else { 1..=1 };
    if !expected.contains(&f.args.len()) {
        return Some(unsupported(&format!("{func}() with these arguments")));
    }
    let col = quote(&column, target);
    let sql = match (target, func, value) {
        (Target::MySql, "nextval", _) => format!("SELECT NEXTVAL({}) AS {col}", quote(&seq, target)),
        (Target::MySql, "currval", _) => format!("SELECT LASTVAL({}) AS {col}", quote(&seq, target)),
        (Target::MySql, _, Some(v)) => format!(
            "SELECT SETVAL({}, {v}, {}) AS {col}",
            quote(&seq, target),
            is_called as i32
        ),
        (Target::Sqlite, "nextval", _) => format!(
            "UPDATE \"{SQLITE_SEQUENCES}\" SET \"last_value\" = CASE WHEN \"is_called\" = 0 THEN \"last_value\" ELSE \"last_value\" + \"increment\" END, \"is_called\" = 1 WHERE \"name\" = {} RETURNING \"last_value\" AS {col}",
            string_literal(&seq)
        ),
        (Target::Sqlite, "currval", _) => format!(
            "SELECT \"last_value\" AS {col} FROM \"{SQLITE_SEQUENCES}\" WHERE \"name\" = {} AND \"is_called\" = 1",
            string_literal(&seq)
        ),
        (Target::Sqlite, _, Some(v)) => format!(
            "UPDATE \"{SQLITE_SEQUENCES}\" SET \"last_value\" = {v}, \"is_called\" = {} WHERE \"name\" = {} RETURNING {v} AS {col}",
            is_called as i32,
            string_literal(&seq)
        ),
        _ => return None,
    };
    let before = match target {
        Target::Sqlite => vec![SQLITE_SEQUENCES_DDL.to_string()],
        Target::MySql => vec![],
    };
    let mut part = rewritten(sql, before, Kind::Select, TagHint::Select);
    part.result_types = vec![Some(ResultType::Known {
        typname: "int8".into(),
        typmod: -1,
    })];
    Some(Ok(Plan::Engine(vec![part])))
}

fn key_list(keys: &[Node], target: Target) -> (Vec<String>, String) {
    let names: Vec<String> = keys
        .iter()
        .filter_map(string_of)
        .map(str::to_owned)
        .collect();
    let sql = names
        .iter()
        .map(|n| quote(n, target))
        .collect::<Vec<_>>()
        .join(", ");
    (names, sql)
}

fn fk_action(a: &str) -> Option<&'static str> {
    Some(match a {
        "" | "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => return None,
    })
}

/// `ADD CONSTRAINT …` rendered for the target: the constraint text and, for a primary key, its
/// columns.
fn constraint(
    c: &pg_query::protobuf::Constraint,
    target: Target,
) -> Option<Result<(String, Option<Vec<String>>)>> {
    let name = if c.conname.is_empty() {
        String::new()
    } else {
        format!("CONSTRAINT {} ", quote(&c.conname, target))
    };
    if c.deferrable || c.initdeferred {
        return Some(unsupported("DEFERRABLE constraint"));
    }
    let r = match ConstrType::try_from(c.contype).ok()? {
        ConstrType::ConstrPrimary => {
            let (names, sql) = key_list(&c.keys, target);
            (format!("{name}PRIMARY KEY ({sql})"), Some(names))
        }
        ConstrType::ConstrUnique => {
            let (_, sql) = key_list(&c.keys, target);
            (format!("{name}UNIQUE ({sql})"), None)
        }
        ConstrType::ConstrForeign => {
            let Some(pk) = &c.pktable else {
                return Some(unsupported("FOREIGN KEY without a table"));
            };
            let (_, from) = key_list(&c.fk_attrs, target);
            let (_, to) = key_list(&c.pk_attrs, target);
            let to = if to.is_empty() {
                String::new()
            } else {
                format!(" ({to})")
            };
            let (Some(del), Some(upd)) = (fk_action(&c.fk_del_action), fk_action(&c.fk_upd_action))
            else {
                return Some(unsupported("this FOREIGN KEY action"));
            };
            (
                format!(
                    "{name}FOREIGN KEY ({from}) REFERENCES {}{to} ON DELETE {del} ON UPDATE {upd}",
                    quote(&pk.relname, target)
                ),
                None,
            )
        }
        // CHECK and the rest: the general translator's business (or unsupported there).
        _ => return None,
    };
    Some(Ok(r))
}

/// `nextval('s')` as a column default: the sequence.
fn nextval_default(n: &Node) -> Option<String> {
    let Some(NodeEnum::FuncCall(f)) = n.node.as_ref() else {
        return None;
    };
    let names: Vec<&str> = f.funcname.iter().filter_map(string_of).collect();
    match names.as_slice() {
        ["nextval"] | ["pg_catalog", "nextval"] => {}
        _ => return None,
    }
    match f.args.as_slice() {
        [a] => sequence_arg(a),
        _ => None,
    }
}

fn alter_table(
    a: &pg_query::protobuf::AlterTableStmt,
    target: Target,
    sql: &str,
) -> Option<Result<Plan>> {
    let rel = a.relation.as_ref()?;
    let [cmd] = a.cmds.as_slice() else {
        return None;
    };
    let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() else {
        return None;
    };
    let table = rel.relname.clone();
    let is_sequence = a.objtype == ObjectType::ObjectSequence as i32;
    let tag = if is_sequence {
        "ALTER SEQUENCE"
    } else {
        "ALTER TABLE"
    };
    let head = format!("ALTER TABLE {}", quote(&table, target));
    match AlterTableType::try_from(cmd.subtype).ok()? {
        AlterTableType::AtChangeOwner => Some(Ok(Plan::Ignored {
            tag,
            notice: Some(
                "bindproxy ignores OWNER TO on MySQL/SQLite binds: the bind's own user owns every object there",
            ),
        })),
        AlterTableType::AtColumnDefault => {
            let seq = cmd.def.as_deref().and_then(nextval_default)?;
            let column = cmd.name.clone();
            Some(Ok(match target {
                Target::MySql => Plan::Engine(vec![rewritten(
                    format!(
                        "{head} ALTER COLUMN {} SET DEFAULT (NEXTVAL({}))",
                        quote(&column, target),
                        quote(&seq, target)
                    ),
                    vec![],
                    Kind::AlterTable,
                    TagHint::Fixed("ALTER TABLE"),
                )]),
                Target::Sqlite => Plan::Rebuild(Rebuild {
                    table,
                    change: Change::SerialKey {
                        column,
                        sequence: seq,
                    },
                    tag: "ALTER TABLE",
                }),
            }))
        }
        AlterTableType::AtAlterColumnType => {
            Some(super::alter_type::parse(sql)?.map(Plan::AlterType))
        }
        AlterTableType::AtSetNotNull | AlterTableType::AtDropNotNull => {
            let nullability = if cmd.subtype == AlterTableType::AtSetNotNull as i32 {
                Nullability::NotNull
            } else {
                Nullability::Nullable
            };
            let column = cmd.name.clone();
            Some(Ok(match target {
                Target::MySql => Plan::MysqlNullability {
                    table,
                    column,
                    nullability,
                },
                Target::Sqlite => Plan::Rebuild(Rebuild {
                    table,
                    change: Change::Nullability {
                        column,
                        nullability,
                    },
                    tag: "ALTER TABLE",
                }),
            }))
        }
        AlterTableType::AtAddConstraint => {
            let Some(NodeEnum::Constraint(c)) = cmd.def.as_deref()?.node.as_ref() else {
                return None;
            };
            if c.contype == ConstrType::ConstrCheck as i32 {
                // MySQL: the general translator (`ddl.rs`). SQLite: a rebuild with the check.
                return match target {
                    Target::MySql => None,
                    Target::Sqlite => Some(super::ddl::sqlite_added_check(sql)?.map(|sql| {
                        Plan::Rebuild(Rebuild {
                            table,
                            change: Change::Constraint {
                                sql,
                                primary_key: None,
                            },
                            tag: "ALTER TABLE",
                        })
                    })),
                };
            }
            let (sql, primary_key) = match constraint(c, target)? {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            Some(Ok(match target {
                Target::MySql => Plan::Engine(vec![rewritten(
                    format!("{head} ADD {sql}"),
                    vec![],
                    Kind::AlterTable,
                    TagHint::Fixed("ALTER TABLE"),
                )]),
                Target::Sqlite => Plan::Rebuild(Rebuild {
                    table,
                    change: Change::Constraint { sql, primary_key },
                    tag: "ALTER TABLE",
                }),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_sql(sql: &str, t: Target) -> String {
        match plan(sql, t) {
            Some(Ok(Plan::Engine(p))) => p
                .iter()
                .map(|p| p.sql.clone())
                .collect::<Vec<_>>()
                .join("; "),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn pg_dump_sequences() {
        let create = "CREATE SEQUENCE public.a_id_seq\n    AS integer\n    START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1";
        assert_eq!(
            engine_sql(create, Target::MySql),
            "CREATE SEQUENCE `a_id_seq` START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 NOCACHE NOCYCLE"
        );
        assert!(engine_sql(create, Target::Sqlite)
            .contains("VALUES ('a_id_seq', 1, 1, 1, 1, 2147483647, 0, 0, NULL)"));
        assert_eq!(
            engine_sql(
                "SELECT pg_catalog.setval('public.a_id_seq', 3, true)",
                Target::MySql
            ),
            "SELECT SETVAL(`a_id_seq`, 3, 1) AS `setval`"
        );
        assert_eq!(
            engine_sql("select nextval('a_id_seq'::regclass)", Target::MySql),
            "SELECT NEXTVAL(`a_id_seq`) AS `nextval`"
        );
        assert!(matches!(
            plan(
                "ALTER SEQUENCE public.a_id_seq OWNED BY public.a.id",
                Target::Sqlite
            ),
            Some(Ok(Plan::Ignored {
                tag: "ALTER SEQUENCE",
                notice: None
            }))
        ));
        assert!(matches!(
            plan("ALTER TABLE public.a OWNER TO postgres", Target::MySql),
            Some(Ok(Plan::Ignored {
                tag: "ALTER TABLE",
                notice: Some(_)
            }))
        ));
        // injection through a name is quoted away
        assert!(
            engine_sql("SELECT nextval('x''; DROP TABLE t; --')", Target::Sqlite)
                .contains("'x''; drop table t; --'")
        );
        assert!(plan("SELECT nextval('s') FROM t", Target::MySql).is_some_and(|r| r.is_err()));
        assert!(plan("SELECT 1", Target::MySql).is_none());
    }

    #[test]
    fn pg_dump_alter_table() {
        assert_eq!(
            engine_sql("ALTER TABLE ONLY public.a ALTER COLUMN id SET DEFAULT nextval('public.a_id_seq'::regclass)", Target::MySql),
            "ALTER TABLE `a` ALTER COLUMN `id` SET DEFAULT (NEXTVAL(`a_id_seq`))"
        );
        assert_eq!(
            engine_sql("ALTER TABLE ONLY public.b\n    ADD CONSTRAINT b_a_fkey FOREIGN KEY (a_id) REFERENCES public.a(id)", Target::MySql),
            "ALTER TABLE `b` ADD CONSTRAINT `b_a_fkey` FOREIGN KEY (`a_id`) REFERENCES `a` (`id`) ON DELETE NO ACTION ON UPDATE NO ACTION"
        );
        match plan(
            "ALTER TABLE ONLY public.a ADD CONSTRAINT a_pkey PRIMARY KEY (id)",
            Target::Sqlite,
        ) {
            Some(Ok(Plan::Rebuild(r))) => {
                assert_eq!(r.table, "a");
                assert_eq!(
                    r.change,
                    Change::Constraint {
                        sql: "CONSTRAINT \"a_pkey\" PRIMARY KEY (\"id\")".into(),
                        primary_key: Some(vec!["id".into()])
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        // not ours: the general translator decides
        assert!(plan("ALTER TABLE a ADD COLUMN b int", Target::MySql).is_none());
    }
}
