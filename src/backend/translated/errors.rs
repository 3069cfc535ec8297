//! MySQL/MariaDB and SQLite errors → PostgreSQL errors.
//!
//! Owns: the one table from a MySQL error number or an SQLite (extended) result code to the SQLSTATE a
//! PostgreSQL client expects, with PostgreSQL's own primary message (`relation "x" does not exist`,
//! `duplicate key value violates unique constraint "t_pkey"`, …); the engine's own message always goes
//! to the detail, with the bind's name. Integrity violations whose PostgreSQL message needs more than
//! the engine says (MariaDB does not name the table of a duplicate key, SQLite does not name a foreign
//! key) are completed by [`violation`] + [`Violation::catalog_query`] + [`Violation::resolve`] with the
//! statement's table and the engine's catalog, and constraint names are given as PostgreSQL would
//! have chosen them ([`pg_object_name`]). Also decides which engine errors mean the connection is gone.
//!
//! Must never: drop the engine's message, or report a lost connection as a statement error.

use crate::error::ProxyError;
use crate::translate::{Kind, Target};

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier.
const MAX_IDENT: usize = 63;

/// The name PostgreSQL chooses for an implicit object (`makeObjectName`): `name1_name2_label`,
/// the longer of the two names shortened until it fits in 63 bytes.
pub fn pg_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = MAX_IDENT.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let clip = |s: &str, mut n: usize| {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_string()
    };
    let mut out = clip(name1, n1);
    if let Some(n) = name2 {
        out.push('_');
        out.push_str(&clip(n, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// The columns part of an implicit index or constraint name (`ChooseIndexNameAddition`).
fn columns_addition(columns: &[String]) -> String {
    let mut out = String::new();
    for c in columns {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(c);
        if out.len() > MAX_IDENT {
            break;
        }
    }
    out
}

/// PostgreSQL's name for an unnamed constraint of `table` on `columns` (`key`, `fkey`).
fn implicit_name(table: &str, columns: &[String], label: &str) -> String {
    if columns.is_empty() {
        return pg_object_name(table, None, label);
    }
    pg_object_name(table, Some(&columns_addition(columns)), label)
}

/// The text between the first pair of `open`/`close` after `after` (MySQL quotes names in its
/// messages with `'…'` or `` `…` ``).
fn between(s: &str, open: char, close: char) -> Option<(&str, &str)> {
    let a = s.find(open)? + open.len_utf8();
    let rest = &s[a..];
    let z = rest.find(close)?;
    Some((&rest[..z], &rest[z + close.len_utf8()..]))
}

/// `'x'` quoted name of a MySQL message, after `prefix`.
fn quoted_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.get(msg.find(prefix)? + prefix.len()..)?;
    between(rest, '\'', '\'').map(|(x, _)| x)
}

/// The last part of a possibly qualified name (`db.t` → `t`).
fn unqualified(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// An integrity violation, as far as the engine's message tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// 23505. MySQL names the key (`PRIMARY`, or the index name), SQLite the table and columns.
    Unique {
        table: Option<String>,
        primary: bool,
        key: Option<String>,
        columns: Vec<String>,
    },
    /// 23502.
    NotNull {
        table: Option<String>,
        column: String,
    },
    /// 23503: a row of `child` refers to no parent row (`on_parent` false), or a referenced parent
    /// row was deleted or changed (`on_parent` true); `None` when the engine does not say which.
    ForeignKey {
        on_parent: Option<bool>,
        child: Option<String>,
        parent: Option<String>,
        constraint: Option<String>,
        columns: Vec<String>,
    },
}

impl Violation {
    fn sqlstate(&self) -> &'static str {
        match self {
            Violation::Unique { .. } => "23505",
            Violation::NotNull { .. } => "23502",
            Violation::ForeignKey { .. } => "23503",
        }
    }

    /// PostgreSQL's primary message, with the names known so far.
    pub fn message(&self) -> String {
        match self {
            Violation::Unique {
                table,
                primary,
                key,
                columns,
            } => {
                let name = match (table, primary, key) {
                    (Some(t), true, _) => pg_object_name(t, None, "pkey"),
                    (_, false, Some(k)) => k.clone(),
                    (Some(t), false, None) => implicit_name(t, columns, "key"),
                    (None, _, Some(k)) => k.clone(),
                    (None, _, None) => String::new(),
                };
                format!("duplicate key value violates unique constraint \"{name}\"")
            }
            Violation::NotNull {
                table: Some(t),
                column,
            } => format!(
                "null value in column \"{column}\" of relation \"{t}\" violates not-null constraint"
            ),
            Violation::NotNull {
                table: None,
                column,
            } => format!("null value in column \"{column}\" violates not-null constraint"),
            Violation::ForeignKey {
                on_parent,
                child,
                parent,
                constraint,
                columns,
            } => {
                let name = match (constraint, child) {
                    (Some(c), _) => c.clone(),
                    (None, Some(ch)) if !columns.is_empty() => implicit_name(ch, columns, "fkey"),
                    _ => String::new(),
                };
                match (on_parent, parent, child) {
                    (Some(true), Some(p), Some(c)) => format!(
                        "update or delete on table \"{p}\" violates foreign key constraint \"{name}\" on table \"{c}\""
                    ),
                    (_, _, Some(c)) if *on_parent != Some(true) => format!(
                        "insert or update on table \"{c}\" violates foreign key constraint \"{name}\""
                    ),
                    (_, Some(p), _) => format!(
                        "update or delete on table \"{p}\" violates foreign key constraint \"{name}\""
                    ),
                    _ => format!("foreign key constraint \"{name}\" is violated"),
                }
            }
        }
    }

    /// Fills in what the statement tells: the table it writes and what it does.
    pub fn in_statement(mut self, kind: &Kind, table: Option<&str>) -> Violation {
        let Some(t) = table else { return self };
        match &mut self {
            Violation::Unique { table, .. } | Violation::NotNull { table, .. } => {
                if table.is_none() {
                    *table = Some(t.to_string());
                }
            }
            Violation::ForeignKey {
                on_parent,
                child,
                parent,
                ..
            } => {
                if on_parent.is_none() {
                    *on_parent = match kind {
                        Kind::Insert => Some(false),
                        Kind::Delete => Some(true),
                        _ => None,
                    };
                }
                match on_parent {
                    Some(true) if parent.is_none() => *parent = Some(t.to_string()),
                    Some(false) if child.is_none() => *child = Some(t.to_string()),
                    _ => {}
                }
            }
        }
        self
    }

    /// A catalog query whose rows [`Violation::resolve`] reads to name the constraint as
    /// PostgreSQL would; `None` when the name is already known.
    pub fn catalog_query(&self, target: Target) -> Option<String> {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match (self, target) {
            (
                Violation::Unique {
                    table: Some(t),
                    primary: false,
                    key: Some(k),
                    ..
                },
                Target::MySql,
            ) => Some(format!(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} AND INDEX_NAME = {} ORDER BY SEQ_IN_INDEX",
                lit(t),
                lit(k)
            )),
            (
                Violation::Unique {
                    table: Some(t),
                    primary: false,
                    key: None,
                    ..
                },
                Target::Sqlite,
            ) => Some(format!(
                "SELECT il.name, il.origin, ii.name FROM pragma_index_list({0}) il JOIN pragma_index_info(il.name) ii WHERE il.\"unique\" ORDER BY il.seq, ii.seqno",
                lit(t)
            )),
            (
                Violation::ForeignKey {
                    on_parent: Some(false),
                    child: Some(c),
                    constraint: None,
                    ..
                },
                Target::Sqlite,
            ) => Some(format!(
                "SELECT {0}, f.id, f.\"from\" FROM pragma_foreign_key_list({0}) f ORDER BY f.id, f.seq",
                lit(c)
            )),
            (
                Violation::ForeignKey {
                    on_parent: Some(true),
                    parent: Some(p),
                    constraint: None,
                    ..
                },
                Target::Sqlite,
            ) => Some(format!(
                "SELECT m.name, f.id, f.\"from\" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND lower(f.\"table\") = lower({}) ORDER BY m.name, f.id, f.seq",
                lit(p)
            )),
            _ => None,
        }
    }

    /// Names the constraint from the rows of [`Violation::catalog_query`] (text columns).
    pub fn resolve(mut self, rows: &[Vec<String>]) -> Violation {
        match &mut self {
            Violation::Unique {
                table: Some(t),
                primary,
                key,
                columns,
            } => match key {
                // MySQL: a key MySQL named after its first column (`v`, `v_2`) was unnamed in
                // PostgreSQL's terms.
                Some(k) => {
                    let cols: Vec<String> =
                        rows.iter().filter_map(|r| r.first().cloned()).collect();
                    if let Some(first) = cols.first() {
                        let auto = k == first
                            || k.strip_prefix(first.as_str())
                                .and_then(|r| r.strip_prefix('_'))
                                .is_some_and(|n| {
                                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                                });
                        if auto {
                            *key = Some(implicit_name(t, &cols, "key"));
                        }
                    }
                }
                // SQLite: the index on exactly these columns.
                None => {
                    let mut indexes: Vec<(String, String, Vec<String>)> = vec![];
                    for r in rows {
                        let [name, origin, col] = r.as_slice() else {
                            continue;
                        };
                        match indexes.last_mut() {
                            Some((n, _, cols)) if n == name => cols.push(col.clone()),
                            _ => indexes.push((name.clone(), origin.clone(), vec![col.clone()])),
                        }
                    }
                    let same = |cols: &[String]| {
                        cols.len() == columns.len()
                            && cols
                                .iter()
                                .zip(columns.iter())
                                .all(|(a, b)| a.eq_ignore_ascii_case(b))
                    };
                    if let Some((name, origin, _)) = indexes.iter().find(|(_, _, c)| same(c)) {
                        match origin.as_str() {
                            "pk" => *primary = true,
                            "c" => *key = Some(name.clone()),
                            _ => {}
                        }
                    }
                }
            },
            Violation::ForeignKey {
                child,
                constraint,
                columns,
                ..
            } => {
                // Rows: (child table, constraint id, column), one constraint only can be named.
                let mut fks: Vec<(String, String, Vec<String>)> = vec![];
                for r in rows {
                    let [table, id, col] = r.as_slice() else {
                        continue;
                    };
                    match fks.last_mut() {
                        Some((t, i, cols)) if t == table && i == id => cols.push(col.clone()),
                        _ => fks.push((table.clone(), id.clone(), vec![col.clone()])),
                    }
                }
                if let [(t, _, cols)] = fks.as_slice() {
                    *child = Some(t.clone());
                    *columns = cols.clone();
                } else if fks.len() > 1 {
                    let names: Vec<String> = fks
                        .iter()
                        .map(|(t, _, cols)| implicit_name(t, cols, "fkey"))
                        .collect();
                    // PostgreSQL would name the one that failed; the engine does not tell which.
                    *constraint = Some(names.join("\" or \""));
                    if child.is_none() {
                        let tables: Vec<&str> = fks.iter().map(|(t, _, _)| t.as_str()).collect();
                        if tables.iter().all(|t| *t == tables[0]) {
                            *child = Some(tables[0].to_string());
                        }
                    }
                }
            }
            _ => {}
        }
        self
    }
}

/// MySQL message → violation.
fn mysql_violation(code: u16, msg: &str) -> Option<Violation> {
    Some(match code {
        1062 | 1586 | 1169 => {
            // "Duplicate entry '1-1' for key 'a'" (MariaDB), "… for key 't.a'" (MySQL 8).
            let key = msg
                .rfind(" for key '")
                .and_then(|i| msg.get(i + " for key '".len()..))
                .and_then(|r| r.strip_suffix('\''))
                .map(str::to_string);
            let (table, key) = match key {
                Some(k) if k.contains('.') && !k.ends_with('.') => {
                    let (t, k) = k.rsplit_once('.').unwrap_or(("", &k));
                    (Some(t.to_string()), Some(k.to_string()))
                }
                k => (None, k),
            };
            Violation::Unique {
                table,
                primary: key.as_deref() == Some("PRIMARY"),
                key: key.filter(|k| k != "PRIMARY"),
                columns: vec![],
            }
        }
        1048 => Violation::NotNull {
            table: None,
            column: quoted_after(msg, "Column ")?.to_string(),
        },
        1364 => Violation::NotNull {
            table: None,
            column: quoted_after(msg, "Field ")?.to_string(),
        },
        1451 | 1452 | 1216 | 1217 => {
            let on_parent = matches!(code, 1451 | 1217);
            // "… fails (`db`.`child`, CONSTRAINT `c_ibfk_1` FOREIGN KEY (`a`, `b`) REFERENCES `p` (`id`))"
            let mut child = None;
            let mut constraint = None;
            let mut columns = vec![];
            let mut parent = None;
            if let Some(i) = msg.find("fails (") {
                let rest = &msg[i + "fails (".len()..];
                if let Some(c) = rest.find(", CONSTRAINT ") {
                    let qualified = &rest[..c];
                    child = qualified
                        .rsplit('.')
                        .next()
                        .map(|s| s.trim_matches('`').to_string());
                    let after = &rest[c + ", CONSTRAINT ".len()..];
                    if let Some((name, after)) = between(after, '`', '`') {
                        constraint = Some(name.to_string());
                        if let Some((cols, after)) = between(after, '(', ')') {
                            columns = cols
                                .split(',')
                                .map(|s| s.trim().trim_matches('`').to_string())
                                .collect();
                            if let Some(r) = after.find("REFERENCES ") {
                                parent = between(&after[r..], '`', '`').map(|(p, _)| p.to_string());
                            }
                        }
                    }
                }
            }
            // MySQL names an unnamed foreign key `<table>_ibfk_<n>`.
            if let (Some(c), Some(name)) = (&child, &constraint) {
                let auto = name
                    .strip_prefix(c.as_str())
                    .and_then(|r| r.strip_prefix("_ibfk_"))
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
                if auto && !columns.is_empty() {
                    constraint = Some(implicit_name(c, &columns, "fkey"));
                }
            }
            Violation::ForeignKey {
                on_parent: Some(on_parent),
                child,
                parent,
                constraint,
                columns,
            }
        }
        _ => return None,
    })
}

/// (SQLSTATE, PostgreSQL's message) for MySQL errors whose message names what PostgreSQL names.
fn mysql_pg_message(code: u16, msg: &str) -> Option<(&'static str, String)> {
    let q = |prefix: &str| quoted_after(msg, prefix).map(str::to_string);
    Some(match code {
        // BIGINT overflow: of the engine, or of bindproxy's int4/int2 range check (`x * 2^32 DIV
        // 2^32`, translate/walk.rs), whose factor the message quotes.
        1690 => (
            "22003",
            if msg.contains("* 4294967296") {
                "integer out of range"
            } else if msg.contains("* 281474976710656") {
                "smallint out of range"
            } else {
                "bigint out of range"
            }
            .to_string(),
        ),
        1146 => (
            "42P01",
            format!("relation \"{}\" does not exist", unqualified(&q("Table ")?)),
        ),
        1051 => (
            "42P01",
            format!("table \"{}\" does not exist", unqualified(&q("table ")?)),
        ),
        1050 => (
            "42P07",
            format!("relation \"{}\" already exists", q("Table ")?),
        ),
        1061 => (
            "42P07",
            format!("relation \"{}\" already exists", q("key name ")?),
        ),
        1054 => {
            let c = q("column ")?;
            match c.split_once('.') {
                Some(_) => ("42703", format!("column {c} does not exist")),
                None => ("42703", format!("column \"{c}\" does not exist")),
            }
        }
        1060 => (
            "42701",
            format!("column \"{}\" specified more than once", q("column name ")?),
        ),
        1049 => (
            "3D000",
            format!("database \"{}\" does not exist", q("database ")?),
        ),
        1365 => ("22012", "division by zero".into()),
        // `Incorrect date value: '2024-02-30' for column …`: PostgreSQL's 22008 when the value is
        // written as a date whose fields are out of range; other text stays 22007 below.
        1292 => {
            let v = q("value: ")?;
            let e = super::types::fields_in_range(&v).err()?;
            match e {
                ProxyError::Backend { code, message, .. } if code == "22008" => ("22008", message),
                _ => return None,
            }
        }
        1213 => ("40P01", "deadlock detected".into()),
        1205 => ("55P03", "canceling statement due to lock timeout".into()),
        // KILL QUERY (bindproxy's answer to a CancelRequest)
        1317 => ("57014", "canceling statement due to user request".into()),
        _ => return None,
    })
}

/// SQLite's message without the statement it quotes (`… in CREATE TABLE … at offset 13`).
fn sqlite_core(msg: &str) -> &str {
    match msg.rfind(" at offset ") {
        Some(at) => match msg[..at].find(" in ") {
            Some(i) => &msg[..i],
            None => msg,
        },
        None => msg,
    }
}

/// `t.a, t.b` (SQLite's list of constrained columns) → table, columns.
fn sqlite_columns(list: &str) -> (Option<String>, Vec<String>) {
    let mut table = None;
    let mut columns = vec![];
    for item in list.split(", ") {
        match item.rsplit_once('.') {
            Some((t, c)) => {
                table.get_or_insert_with(|| t.to_string());
                columns.push(c.to_string());
            }
            None => columns.push(item.to_string()),
        }
    }
    (table, columns)
}

/// SQLite (extended code, message) → violation.
fn sqlite_violation(extended: i32, msg: &str) -> Option<Violation> {
    use rusqlite::ffi;
    Some(match extended {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            let list = msg.strip_prefix("UNIQUE constraint failed: ").unwrap_or("");
            let (table, columns) = sqlite_columns(list);
            // An expression index: "UNIQUE constraint failed: index 'name'".
            let key = list
                .strip_prefix("index '")
                .and_then(|r| r.strip_suffix('\''))
                .map(str::to_string);
            Violation::Unique {
                table: if key.is_some() { None } else { table },
                primary: extended == ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
                columns: if key.is_some() { vec![] } else { columns },
                key,
            }
        }
        ffi::SQLITE_CONSTRAINT_NOTNULL => {
            let (table, columns) =
                sqlite_columns(msg.strip_prefix("NOT NULL constraint failed: ")?);
            Violation::NotNull {
                table,
                column: columns.into_iter().next()?,
            }
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Violation::ForeignKey {
            on_parent: None,
            child: None,
            parent: None,
            constraint: None,
            columns: vec![],
        },
        _ => return None,
    })
}

/// The name in `no such table: main.x`, `table "x" already exists`, `no such column: "x" - …`.
fn sqlite_name(s: &str) -> String {
    let s = s.split(" - ").next().unwrap_or(s).trim();
    let s = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s);
    s.to_string()
}

/// (SQLSTATE, PostgreSQL's message) for SQLite errors whose message names what PostgreSQL names.
fn sqlite_pg_message(msg: &str) -> Option<(&'static str, String)> {
    let msg = sqlite_core(msg);
    if msg == crate::translate::SQLITE_DIVISION_BY_ZERO {
        return Some(("22012", "division by zero".into()));
    }
    for e in crate::translate::SqliteFunctionError::ALL {
        if msg == e.message() {
            use crate::translate::SqliteFunctionError as M;
            let code = match e {
                M::ZeroToNegativePower | M::NegativeToFractionalPower | M::SquareRootOfNegative => {
                    "2201F"
                }
                M::Overflow | M::Underflow => "22003",
                M::TimestampOutOfRange => "22008",
            };
            return Some((code, e.pg_message().into()));
        }
    }
    for ty in crate::translate::SQLITE_RANGE_TYPES {
        if msg == crate::translate::sqlite_out_of_range(ty) {
            let name = match *ty {
                "int2" => "smallint",
                "int4" => "integer",
                _ => "bigint",
            };
            return Some(("22003", format!("{name} out of range")));
        }
    }
    if let Some(name) = msg.strip_prefix("CHECK constraint failed: ") {
        // The range and calendar checks bindproxy adds to the columns it creates (translate/ddl.rs).
        use crate::translate::{bindproxy_check, CheckKind};
        return Some(match bindproxy_check(name)? {
            CheckKind::Range(t) => ("22003", format!("{t} out of range")),
            CheckKind::Calendar => ("22008", "date/time field value out of range".into()),
        });
    }
    if let Some(t) = msg.strip_prefix("no such table: ") {
        let t = sqlite_name(t);
        return Some((
            "42P01",
            format!("relation \"{}\" does not exist", unqualified(&t)),
        ));
    }
    if let Some(c) = msg.strip_prefix("no such column: ") {
        let c = sqlite_name(c);
        return Some(if c.contains('.') {
            ("42703", format!("column {c} does not exist"))
        } else {
            ("42703", format!("column \"{c}\" does not exist"))
        });
    }
    for what in ["table ", "index ", "view "] {
        if let Some(n) = msg
            .strip_prefix(what)
            .and_then(|r| r.strip_suffix(" already exists"))
        {
            return Some((
                "42P07",
                format!("relation \"{}\" already exists", sqlite_name(n)),
            ));
        }
    }
    if let Some(s) = msg.strip_prefix("no such savepoint: ") {
        return Some((
            "3B001",
            format!("savepoint \"{}\" does not exist", sqlite_name(s)),
        ));
    }
    if let Some(c) = msg.strip_prefix("duplicate column name: ") {
        return Some((
            "42701",
            format!("column \"{}\" specified more than once", sqlite_name(c)),
        ));
    }
    None
}

/// (SQLSTATE, PostgreSQL-like message) for a MySQL server error number; `None` = unmapped. The
/// engine's message is appended (these have no PostgreSQL wording that the message could fill in).
fn mysql_code(code: u16) -> Option<(&'static str, &'static str)> {
    Some(match code {
        3819 | 4025 => ("23514", "new row violates check constraint"),
        1064 | 1149 => ("42601", "syntax error"),
        1136 => (
            "42601",
            "INSERT has a different number of expressions than target columns",
        ),
        1091 => ("42704", "object does not exist"),
        1305 => ("42883", "function does not exist"),
        1044 | 1045 | 1142 | 1143 => ("42501", "permission denied"),
        1406 => ("22001", "value too long for type"),
        1264 | 1690 => ("22003", "numeric value out of range"),
        1366 | 1367 => ("22P02", "invalid input syntax"),
        1292 => ("22007", "invalid datetime format"),
        1295 => (
            "0A000",
            "statement not supported in the prepared statement protocol",
        ),
        1040 => ("53300", "too many connections"),
        1048 | 1364 | 1138 => ("23502", "null value violates not-null constraint"),
        1062 | 1586 | 1169 => ("23505", "duplicate key value violates unique constraint"),
        1451 | 1452 | 1216 | 1217 => ("23503", "foreign key constraint violated"),
        _ => return None,
    })
}

/// A MySQL/MariaDB error → [`ProxyError`]. Connection-level errors become `BackendLost`.
pub fn from_mysql(bind: &str, e: &mysql_async::Error) -> ProxyError {
    match e {
        mysql_async::Error::Server(s) => {
            let detail = Some(format!(
                "MySQL error {} ({}): {} [bind \"{bind}\"]",
                s.code, s.state, s.message
            ));
            if let Some(v) = mysql_violation(s.code, &s.message) {
                return ProxyError::Backend {
                    code: v.sqlstate().into(),
                    message: v.message(),
                    detail,
                };
            }
            if let Some((code, message)) = mysql_pg_message(s.code, &s.message) {
                return ProxyError::Backend {
                    code: code.into(),
                    message,
                    detail,
                };
            }
            match mysql_code(s.code) {
                Some((code, msg)) => ProxyError::Backend {
                    code: code.into(),
                    message: format!("{msg}: {}", s.message),
                    detail,
                },
                None => ProxyError::Backend {
                    // MySQL's SQLSTATE when it is a specific one, else internal_error.
                    code: if s.state.len() == 5 && !s.state.starts_with("HY") {
                        s.state.clone()
                    } else {
                        "XX000".into()
                    },
                    message: s.message.clone(),
                    detail,
                },
            }
        }
        other => ProxyError::BackendLost {
            bind: bind.into(),
            reason: other.to_string(),
        },
    }
}

/// The column of MySQL's error 1264 (`Out of range value for column 'a' at row 1`), read back
/// from the detail [`from_mysql`] writes, when `code` is the 22003 it was mapped to.
pub fn mysql_out_of_range_column(code: &str, detail: Option<&str>) -> Option<String> {
    if code != "22003" {
        return None;
    }
    let d = detail?.strip_prefix("MySQL error 1264 ")?;
    quoted_after(d, "for column ").map(str::to_string)
}

/// Whether a MySQL error means the connection cannot be used again.
pub fn mysql_is_fatal(e: &mysql_async::Error) -> bool {
    !matches!(e, mysql_async::Error::Server(_))
}

/// The integrity violation an error of [`from_mysql`] / [`from_sqlite`] reports, read back from
/// the engine's message in its detail (written above in a fixed form), for the executor to
/// complete with the statement and the catalog ([`with_violation`]).
pub fn violation(e: &ProxyError) -> Option<Violation> {
    let ProxyError::Backend {
        code,
        detail: Some(detail),
        ..
    } = e
    else {
        return None;
    };
    if !matches!(code.as_str(), "23505" | "23502" | "23503") {
        return None;
    }
    let body = detail
        .rsplit_once(" [bind \"")
        .map_or(detail.as_str(), |(b, _)| b);
    if let Some(rest) = body.strip_prefix("MySQL error ") {
        let (num, rest) = rest.split_once(' ')?;
        let (_, msg) = rest.split_once("): ")?;
        return mysql_violation(num.parse().ok()?, msg);
    }
    let rest = body.strip_prefix("SQLite error ")?;
    let (num, msg) = rest.split_once(": ")?;
    sqlite_violation(num.parse().ok()?, msg)
}

/// `e` with the message of `v` (same SQLSTATE, same detail).
pub fn with_violation(e: ProxyError, v: &Violation) -> ProxyError {
    match e {
        ProxyError::Backend { code, detail, .. } => ProxyError::Backend {
            code,
            message: v.message(),
            detail,
        },
        other => other,
    }
}

/// `e` as PostgreSQL words it for a statement of this kind (`DROP TABLE` of a missing table:
/// `table "x" does not exist`).
pub fn for_kind(e: ProxyError, kind: &Kind) -> ProxyError {
    match (e, kind) {
        (
            ProxyError::Backend {
                code,
                message,
                detail,
            },
            Kind::DropTable,
        ) if code == "42P01" => ProxyError::Backend {
            message: match message.strip_prefix("relation ") {
                Some(rest) => format!("table {rest}"),
                None => message,
            },
            code,
            detail,
        },
        (e, _) => e,
    }
}

/// An SQLite error → [`ProxyError`].
pub fn from_sqlite(bind: &str, e: &rusqlite::Error) -> ProxyError {
    use rusqlite::ffi;
    let (extended, message) = match e {
        rusqlite::Error::SqliteFailure(f, msg) => (
            Some(f.extended_code),
            msg.clone().unwrap_or_else(|| f.to_string()),
        ),
        other => (None, other.to_string()),
    };
    let detail = Some(match extended {
        Some(c) => format!("SQLite error {c}: {message} [bind \"{bind}\"]"),
        None => format!("SQLite: {message} [bind \"{bind}\"]"),
    });
    if let Some(v) = extended.and_then(|c| sqlite_violation(c, &message)) {
        return ProxyError::Backend {
            code: v.sqlstate().into(),
            message: v.message(),
            detail,
        };
    }
    if extended.is_some_and(|c| c & 0xff == ffi::SQLITE_INTERRUPT) {
        // sqlite3_interrupt: bindproxy's answer to a CancelRequest
        return ProxyError::Backend {
            code: "57014".into(),
            message: "canceling statement due to user request".into(),
            detail,
        };
    }
    if extended == Some(ffi::SQLITE_CONSTRAINT_CHECK) {
        // bindproxy's own range/calendar checks read as PostgreSQL's error, without SQLite's.
        if let Some((code, message)) = sqlite_pg_message(&message) {
            return ProxyError::Backend {
                code: code.into(),
                message,
                detail,
            };
        }
    }
    let lower = message.to_ascii_lowercase();
    let (code, msg): (&str, String) = match extended {

        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) | Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            ("23505", "duplicate key value violates unique constraint".into())
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            ("23503", "foreign key constraint violated".into())
        }
        Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => ("23502", "null value violates not-null constraint".into()),
        Some(ffi::SQLITE_CONSTRAINT_CHECK) => ("23514", "new row violates check constraint".into()),
        Some(c) if c & 0xff == ffi::SQLITE_CONSTRAINT => ("23000", "integrity constraint violation".into()),
        Some(ffi::SQLITE_BUSY_SNAPSHOT) => (
            "40001",
            "could not serialize access: the SQLite database was changed by another connection since this transaction read it".into(),
        ),
        Some(c) if c & 0xff == ffi::SQLITE_BUSY || c & 0xff == ffi::SQLITE_LOCKED => (
            "55P03",
            "could not obtain the SQLite database lock: another connection held it longer than the busy timeout".into(),
        ),
        Some(c) if c & 0xff == ffi::SQLITE_READONLY => ("25006", "the SQLite database is read-only".into()),
        Some(c) if c & 0xff == ffi::SQLITE_FULL => ("53100", "the SQLite database or disk is full".into()),
        Some(c) if c & 0xff == ffi::SQLITE_TOOBIG => ("54000", "value too large".into()),
        Some(c) if c & 0xff == ffi::SQLITE_MISMATCH => ("42804", "datatype mismatch".into()),
        Some(c) if c & 0xff == ffi::SQLITE_CANTOPEN => ("58P01", "cannot open the SQLite database file".into()),
        // SQLITE_MAX_EXPR_DEPTH (1000): a long chain of AND/OR or operators.
        _ if lower.contains("expression tree is too large") => (
            "54001",
            "statement too deeply nested for SQLite (expression depth above 1000); write long OR chains of one column as IN (…)".into(),
        ),
        _ => match sqlite_pg_message(&message) {
            Some((code, message)) => {
                return ProxyError::Backend {
                    code: code.into(),
                    message,
                    detail,
                }
            }
            None if lower.contains("no such function") => ("42883", "function does not exist".into()),
            None if lower.contains("syntax error") || lower.contains("incomplete input") => {
                ("42601", "syntax error".into())
            }
            None if lower.contains("values for") && lower.contains("columns") => (
                "42601",
                "INSERT has a different number of expressions than target columns".into(),
            ),
            None => ("XX000", String::new()),
        },
    };
    ProxyError::Backend {
        code: code.into(),
        message: if msg.is_empty() {
            message.clone()
        } else {
            format!("{msg}: {message}")
        },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: &ProxyError) -> String {
        e.to_string()
    }

    #[test]
    fn object_names_as_postgresql_chooses_them() {
        assert_eq!(pg_object_name("t", None, "pkey"), "t_pkey");
        assert_eq!(
            implicit_name("t", &["a".into(), "b".into()], "key"),
            "t_a_b_key"
        );
        let long = "x".repeat(70);
        let n = pg_object_name(&long, Some("col"), "fkey");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_col_fkey"), "{n}");
    }

    #[test]
    fn interrupted_statements_are_cancelled_ones() {
        let lite = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
            Some("interrupted".into()),
        );
        let my = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1317,
            message: "Query execution was interrupted".into(),
            state: "70100".into(),
        });
        for e in [from_sqlite("b", &lite), from_mysql("b", &my)] {
            assert_eq!(e.sqlstate(), "57014");
            assert_eq!(msg(&e), "canceling statement due to user request");
        }
        assert!(!mysql_is_fatal(&my));
    }

    #[test]
    fn sqlite_codes_and_messages() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = ON; CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL UNIQUE, a INT, b INT, UNIQUE (a, b)); CREATE TABLE c (id INT, pid INT REFERENCES t (id))",
        )
        .unwrap();
        c.execute_batch("INSERT INTO t VALUES (1, 'a', 1, 1)")
            .unwrap();
        let err = |sql: &str| from_sqlite("b", &c.execute_batch(sql).unwrap_err());
        let cases = [
            (
                "INSERT INTO t VALUES (1, 'b', 2, 2)",
                "23505",
                "duplicate key value violates unique constraint \"t_pkey\"",
            ),
            (
                "INSERT INTO t VALUES (2, 'a', 3, 3)",
                "23505",
                "duplicate key value violates unique constraint \"t_v_key\"",
            ),
            (
                "INSERT INTO t VALUES (3, 'c', 1, 1)",
                "23505",
                "duplicate key value violates unique constraint \"t_a_b_key\"",
            ),
            (
                "INSERT INTO t VALUES (3, NULL, 1, 1)",
                "23502",
                "null value in column \"v\" of relation \"t\" violates not-null constraint",
            ),
            (
                "SELECT * FROM nope",
                "42P01",
                "relation \"nope\" does not exist",
            ),
            (
                "SELECT nope FROM t",
                "42703",
                "column \"nope\" does not exist",
            ),
            (
                "SELECT t.nope FROM t",
                "42703",
                "column t.nope does not exist",
            ),
            (
                "CREATE TABLE t (x INT)",
                "42P07",
                "relation \"t\" already exists",
            ),
        ];
        for (sql, code, text) in cases {
            let e = err(sql);
            assert_eq!((e.sqlstate(), msg(&e).as_str()), (code, text), "{sql}");
        }
        assert_eq!(err("SELEC 1").sqlstate(), "42601");
        // A foreign key: the statement and the catalog name it.
        let e = err("INSERT INTO c VALUES (1, 5)");
        assert_eq!(e.sqlstate(), "23503");
        let v = violation(&e)
            .unwrap()
            .in_statement(&Kind::Insert, Some("c"));
        let q = v.catalog_query(Target::Sqlite).unwrap();
        let rows: Vec<Vec<String>> = c
            .prepare(&q)
            .unwrap()
            .query_map([], |r| {
                (0..3)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                            rusqlite::types::Value::Text(s) => s,
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            _ => String::new(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            v.resolve(&rows).message(),
            "insert or update on table \"c\" violates foreign key constraint \"c_pid_fkey\""
        );
    }

    fn mysql(code: u16, m: &str) -> String {
        mysql_violation(code, m)
            .map(|v| v.message())
            .or_else(|| mysql_pg_message(code, m).map(|(_, s)| s))
            .unwrap_or_default()
    }

    #[test]
    fn mysql_messages() {
        assert_eq!(
            mysql(1146, "Table 'db.x' doesn't exist"),
            "relation \"x\" does not exist"
        );
        assert_eq!(
            mysql(1051, "Unknown table 'db.x'"),
            "table \"x\" does not exist"
        );
        assert_eq!(
            mysql(1054, "Unknown column 'nope' in 'SELECT'"),
            "column \"nope\" does not exist"
        );
        assert_eq!(
            mysql(1054, "Unknown column 't.nope' in 'SELECT'"),
            "column t.nope does not exist"
        );
        assert_eq!(
            mysql(1452, "Cannot add or update a child row: a foreign key constraint fails (`db`.`c2`, CONSTRAINT `c2_ibfk_1` FOREIGN KEY (`pid`) REFERENCES `p2` (`id`))"),
            "insert or update on table \"c2\" violates foreign key constraint \"c2_pid_fkey\""
        );
        assert_eq!(
            mysql(1451, "Cannot delete or update a parent row: a foreign key constraint fails (`db`.`c2`, CONSTRAINT `fk_x` FOREIGN KEY (`pid`) REFERENCES `p2` (`id`))"),
            "update or delete on table \"p2\" violates foreign key constraint \"fk_x\" on table \"c2\""
        );
        let v = mysql_violation(1062, "Duplicate entry '1-1' for key 'a'")
            .unwrap()
            .in_statement(&Kind::Insert, Some("p2"));
        assert!(v.catalog_query(Target::MySql).is_some());
        let v = v.resolve(&[vec!["a".into()], vec!["b".into()]]);
        assert_eq!(
            v.message(),
            "duplicate key value violates unique constraint \"p2_a_b_key\""
        );
        let v = mysql_violation(1062, "Duplicate entry '1' for key 'PRIMARY'")
            .unwrap()
            .in_statement(&Kind::Insert, Some("p2"));
        assert_eq!(
            v.message(),
            "duplicate key value violates unique constraint \"p2_pkey\""
        );
        let v = mysql_violation(1048, "Column 'v' cannot be null")
            .unwrap()
            .in_statement(&Kind::Update, Some("p2"));
        assert_eq!(
            v.message(),
            "null value in column \"v\" of relation \"p2\" violates not-null constraint"
        );
    }
}
