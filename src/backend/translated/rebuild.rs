//! SQLite's table-rebuild procedure, for the ALTER TABLE changes SQLite has no statement for
//! (a constraint added to an existing table, a column becoming the serial key, a column's NOT NULL
//! set or dropped, a column's type changed).
//!
//! Owns: [`rebuilt_definition`] — the table's new column and constraint list, made from its
//! `CREATE TABLE` text in `sqlite_master` — and [`steps`], the statements that move the rows: create
//! the new table under a scratch name, copy every row, drop the old table, rename the new one,
//! recreate the old table's indexes and triggers. The connection (`session/schema.rs`) runs them
//! inside one transaction, so the data survives or nothing changes.
//!
//! Must never: lose or reorder columns (the new table keeps the old column list and order, rows
//! are copied with `SELECT *`, or with every column named in order when one is converted), or run
//! anything itself.

use crate::translate::sequence::{Change, Nullability};
use crate::translate::TranslateError;

/// The scratch name of the table being built.
pub const SCRATCH: &str = "bindproxy_rebuild";

/// The top-level items of a `CREATE TABLE name (…)` text: columns and table constraints, and the
/// text after the closing parenthesis (`STRICT`, `WITHOUT ROWID`).
pub(crate) fn items(create: &str) -> Option<(Vec<String>, String)> {
    let b = create.as_bytes();
    let open = create.find('(')?;
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut start = open + 1;
    let mut out = Vec::new();
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'[' => quote = Some(b']'),
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    out.push(create[start..i].trim().to_string());
                    return Some((out, create[i + 1..].to_string()));
                }
            }
            b',' if depth == 1 => {
                out.push(create[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The first word of an item, unquoted: a column name, or CONSTRAINT/PRIMARY/UNIQUE/….
pub(crate) fn head(item: &str) -> String {
    let t = item.trim_start();
    if let Some(rest) = t.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                    continue;
                }
                break;
            }
            name.push(c);
        }
        return name;
    }
    t.split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_string()
}

pub(crate) fn is_constraint(item: &str) -> bool {
    let h = head(item).to_ascii_uppercase();
    !item.trim_start().starts_with('"')
        && matches!(
            h.as_str(),
            "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN"
        )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The new `(…)` definition of the table, or None when the change is there already (a primary key
/// that is the rowid key).
pub fn rebuilt_definition(create: &str, change: &Change) -> Result<Option<String>, TranslateError> {
    let (mut items, tail) = items(create).ok_or_else(|| {
        TranslateError::unsupported("rebuilding a table whose definition SQLite does not show")
    })?;
    let upper = |s: &str| s.to_ascii_uppercase();
    match change {
        Change::SerialKey { column, .. } => {
            let Some(pos) = items
                .iter()
                .position(|i| !is_constraint(i) && head(i) == *column)
            else {
                return Err(TranslateError::Invalid(format!(
                    "column \"{column}\" does not exist"
                )));
            };
            if upper(&items[pos]).contains("PRIMARY KEY") {
                return Ok(None);
            }
            let other_key = items.iter().enumerate().any(|(k, i)| {
                k != pos
                    && upper(i).contains("PRIMARY KEY")
                    && !(is_constraint(i) && key_is(i, column))
            });
            if other_key {
                return Err(TranslateError::unsupported(
                    "a nextval() default on SQLite for a column that is not the table's only key column",
                ));
            }
            // The column's declared width stays readable (`types::sqlite_rowid_type`): an int4 or
            // int2 column keeps its range check.
            let range = if items[pos].contains("CONSTRAINT \"bindproxy_int4\"") {
                format!(
                    " CONSTRAINT \"bindproxy_int4\" CHECK ({} BETWEEN -2147483648 AND 2147483647)",
                    quote(column)
                )
            } else if items[pos].contains("CONSTRAINT \"bindproxy_int2\"") {
                format!(
                    " CONSTRAINT \"bindproxy_int2\" CHECK ({} BETWEEN -32768 AND 32767)",
                    quote(column)
                )
            } else {
                String::new()
            };
            // A table-level key on this column alone becomes the inline rowid key.
            items.retain(|i| !(is_constraint(i) && upper(i).contains("PRIMARY KEY")));
            let pos = items
                .iter()
                .position(|i| !is_constraint(i) && head(i) == *column)
                .unwrap_or(0);
            items[pos] = format!(
                "{} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL{range}",
                quote(column)
            );
        }
        Change::Nullability {
            column,
            nullability,
        } => {
            let Some(pos) = items
                .iter()
                .position(|i| !is_constraint(i) && head(i) == *column)
            else {
                return Err(TranslateError::NoSuchColumn {
                    table: String::new(),
                    column: column.clone(),
                });
            };
            let spans = top_level_not_null(&items[pos]);
            match nullability {
                Nullability::NotNull if !spans.is_empty() => return Ok(None),
                Nullability::NotNull => items[pos].push_str(" NOT NULL"),
                Nullability::Nullable => {
                    let in_key = upper(&items[pos]).contains("PRIMARY KEY")
                        || items.iter().any(|i| {
                            is_constraint(i)
                                && upper(i).contains("PRIMARY KEY")
                                && key_columns(i).iter().any(|c| c == column)
                        });
                    if in_key {
                        return Err(TranslateError::InPrimaryKey(column.clone()));
                    }
                    if spans.is_empty() {
                        return Ok(None);
                    }
                    for (a, z) in spans.into_iter().rev() {
                        items[pos].replace_range(a..z, "");
                    }
                    items[pos] = items[pos].split_whitespace().collect::<Vec<_>>().join(" ");
                }
            }
        }
        Change::ColumnType {
            column,
            from,
            to,
            check,
            ..
        } => {
            let Some(pos) = items
                .iter()
                .position(|i| !is_constraint(i) && head(i) == *column)
            else {
                return Err(TranslateError::NoSuchColumn {
                    table: String::new(),
                    column: column.clone(),
                });
            };
            items[pos] = retyped(&items[pos], column, from, to, check)?;
        }
        Change::Constraint { sql, primary_key } => {
            if let Some(cols) = primary_key {
                if let [only] = cols.as_slice() {
                    let inline = items.iter().any(|i| {
                        !is_constraint(i) && head(i) == *only && upper(i).contains("PRIMARY KEY")
                    });
                    if inline {
                        return Ok(None);
                    }
                }
                if items.iter().any(|i| upper(i).contains("PRIMARY KEY")) {
                    return Err(TranslateError::Invalid(
                        "multiple primary keys for table are not allowed".into(),
                    ));
                }
            }
            items.push(sql.clone());
        }
    }
    Ok(Some(format!("({}){}", items.join(", "), tail)))
}

/// A column item with its declared type `from` replaced by `to`, the range or calendar checks
/// bindproxy added for the old type (`CONSTRAINT "bindproxy_…" CHECK (…)`) replaced by `check`;
/// NOT NULL, the default and every other constraint stay.
fn retyped(
    item: &str,
    column: &str,
    from: &str,
    to: &str,
    check: &str,
) -> Result<String, TranslateError> {
    let t = item.trim_start();
    let name_len = if t.starts_with('"') {
        // the quoted name: up to the closing quote that is not doubled
        let b = t.as_bytes();
        let mut i = 1;
        loop {
            match b.get(i) {
                Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                Some(b'"') => break i + 1,
                Some(_) => i += 1,
                None => break b.len(),
            }
        }
    } else {
        head(t).len()
    };
    let rest = t[name_len..].trim_start();
    let rest = match rest.get(..from.len()) {
        Some(decl) if decl.eq_ignore_ascii_case(from) => &rest[from.len()..],
        _ => {
            return Err(TranslateError::unsupported(
                "changing the type of a column whose declaration SQLite does not show plainly",
            ))
        }
    };
    let mut rest = rest.to_string();
    while let Some(at) = rest.find("CONSTRAINT \"bindproxy_") {
        let Some(check_at) = rest[at..].find("CHECK").map(|k| at + k) else {
            break;
        };
        let Some(open) = rest[check_at..].find('(').map(|k| check_at + k) else {
            break;
        };
        let mut depth = 0usize;
        let mut end = None;
        let mut quote: Option<char> = None;
        for (k, c) in rest[open..].char_indices() {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + k + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        rest.replace_range(at..end, "");
    }
    let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = if rest.is_empty() {
        rest
    } else {
        format!(" {rest}")
    };
    Ok(format!("{} {to}{rest}{check}", quote(column)))
}

/// The select list that copies the rows into the rebuilt table: every column in order, `column`
/// as `expr` (the conversion of `ALTER COLUMN … TYPE`).
pub fn select_list(create: &str, column: &str, expr: &str) -> Option<String> {
    let (items, _) = items(create)?;
    Some(
        items
            .iter()
            .filter(|i| !is_constraint(i))
            .map(|i| {
                let name = head(i);
                if name == column {
                    expr.to_string()
                } else {
                    quote(&name)
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Byte ranges of the `NOT NULL` words of a column item outside quotes and parentheses (a CHECK's
/// `IS NOT NULL` is inside its parentheses).
fn top_level_not_null(item: &str) -> Vec<(usize, usize)> {
    let b = item.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'[' => quote = Some(b']'),
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth == 0
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_') =>
            {
                let rest = &item[i..];
                let words: Vec<&str> = rest.split_whitespace().take(2).collect();
                if words.len() == 2
                    && words[0].eq_ignore_ascii_case("NOT")
                    && words[1]
                        .get(..4)
                        .is_some_and(|w| w.eq_ignore_ascii_case("NULL"))
                    && words[1][4..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                {
                    let null_at = rest.find(words[1]).unwrap_or(0);
                    let end = i + null_at + 4;
                    out.push((i, end));
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The columns of a table-level `… KEY ("a", "b")` constraint.
fn key_columns(item: &str) -> Vec<String> {
    let Some(open) = item.rfind('(') else {
        return vec![];
    };
    item[open + 1..]
        .trim_end_matches(')')
        .split(',')
        .map(head)
        .collect()
}

/// Whether a table-level `PRIMARY KEY ("c")` constraint is on exactly this column.
fn key_is(item: &str, column: &str) -> bool {
    let Some(open) = item.rfind('(') else {
        return false;
    };
    let inner = item[open + 1..].trim_end_matches(')').trim();
    head(inner) == column && !inner.contains(',')
}

/// The statements of the rebuild, in order: the new table, the rows, the swap, the old table's
/// indexes and triggers (`extra`: their SQL from `sqlite_master`).
/// `counter`: both tables are AUTOINCREMENT tables, whose counter in `sqlite_sequence` (where
/// `setval` may have put it past the highest key) carries over.
/// `select`: the select list of the copy (`*`, or [`select_list`]).
pub fn steps(
    table: &str,
    definition: &str,
    extra: &[String],
    counter: Counter,
    select: &str,
) -> Vec<String> {
    let mut s = vec![
        format!("DROP TABLE IF EXISTS {}", quote(SCRATCH)),
        format!("CREATE TABLE {} {definition}", quote(SCRATCH)),
        format!(
            "INSERT INTO {} SELECT {select} FROM {}",
            quote(SCRATCH),
            quote(table)
        ),
    ];
    if counter == Counter::Keep {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        s.push(format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {}, seq FROM sqlite_sequence WHERE name = {}",
            lit(SCRATCH),
            lit(table)
        ));
        s.push(format!(
            "DELETE FROM sqlite_sequence WHERE name = {} AND rowid NOT IN (SELECT max(rowid) FROM sqlite_sequence WHERE name = {})",
            lit(SCRATCH),
            lit(SCRATCH)
        ));
    }
    s.extend([
        format!("DROP TABLE {}", quote(table)),
        format!("ALTER TABLE {} RENAME TO {}", quote(SCRATCH), quote(table)),
    ]);
    s.extend(extra.iter().cloned());
    s
}

/// Whether a rebuild carries the table's AUTOINCREMENT counter over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Keep,
    None,
}

impl Counter {
    /// From the old `CREATE TABLE` text and the new definition.
    pub fn of(old: &str, new: &str) -> Counter {
        let auto = |s: &str| s.to_ascii_uppercase().contains("AUTOINCREMENT");
        if auto(old) && auto(new) {
            Counter::Keep
        } else {
            Counter::None
        }
    }
}

/// After a column became the rowid key for sequence `sequence`: the sequence records its table,
/// and a trigger keeps SQLite's counter of that table (`sqlite_sequence`) where the sequence is,
/// so `setval` decides the next key as it does in PostgreSQL. (The trigger is made once an
/// AUTOINCREMENT table exists, hence `sqlite_sequence`.)
pub fn serial_steps(table: &str, sequence: &str) -> Vec<String> {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    vec![
        crate::translate::sequence::SQLITE_SEQUENCES_DDL.to_string(),
        format!(
            "UPDATE \"bindproxy_sequences\" SET \"owner_table\" = {} WHERE \"name\" = {}",
            lit(table),
            lit(sequence)
        ),
        "CREATE TRIGGER IF NOT EXISTS \"bindproxy_sequences_sync\" AFTER UPDATE OF \"last_value\", \"is_called\" ON \"bindproxy_sequences\" WHEN NEW.\"owner_table\" IS NOT NULL BEGIN INSERT INTO sqlite_sequence (name, seq) SELECT NEW.\"owner_table\", 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = NEW.\"owner_table\"); UPDATE sqlite_sequence SET seq = NEW.\"last_value\" - (1 - NEW.\"is_called\") * NEW.\"increment\" WHERE name = NEW.\"owner_table\"; END".to_string(),
        // the key continues after the rows already there, or after the sequence, whichever is later
        format!(
            "UPDATE \"bindproxy_sequences\" SET \"last_value\" = max(\"last_value\", coalesce((SELECT seq FROM sqlite_sequence WHERE name = {}), 0)), \"is_called\" = CASE WHEN \"last_value\" < coalesce((SELECT seq FROM sqlite_sequence WHERE name = {}), 0) THEN 1 ELSE \"is_called\" END WHERE \"name\" = {}",
            lit(table),
            lit(table),
            lit(sequence)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "CREATE TABLE \"a\" (\"id\" INT NOT NULL CHECK (typeof(\"id\") = 'integer'), \"name\" TEXT NOT NULL, \"r\" NUMERIC(4,1) DEFAULT 0, CONSTRAINT \"a_r_check\" CHECK ((\"r\" >= 0)))";

    #[test]
    fn serial_key() {
        let c = Change::SerialKey {
            column: "id".into(),
            sequence: "a_id_seq".into(),
        };
        let d = rebuilt_definition(T, &c).unwrap().unwrap();
        assert_eq!(
            d,
            "(\"id\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \"name\" TEXT NOT NULL, \"r\" NUMERIC(4,1) DEFAULT 0, CONSTRAINT \"a_r_check\" CHECK ((\"r\" >= 0)))"
        );
        let again = format!("CREATE TABLE \"a\" {d}");
        assert_eq!(rebuilt_definition(&again, &c).unwrap(), None);
        // the primary key pg_dump adds afterwards is there already
        let pk = Change::Constraint {
            sql: "CONSTRAINT \"a_pkey\" PRIMARY KEY (\"id\")".into(),
            primary_key: Some(vec!["id".into()]),
        };
        assert_eq!(rebuilt_definition(&again, &pk).unwrap(), None);
    }

    #[test]
    fn nullability() {
        let t = "CREATE TABLE \"a\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \"v\" TEXT NOT NULL DEFAULT 'not null', \"t\" TIMESTAMP CONSTRAINT \"bindproxy_timestamp\" CHECK (\"t\" IS NULL OR (datetime(\"t\") IS NOT NULL)), \"w\" INT)";
        let change = |column: &str, nullability| Change::Nullability {
            column: column.into(),
            nullability,
        };
        let d = rebuilt_definition(t, &change("v", Nullability::Nullable))
            .unwrap()
            .unwrap();
        assert!(d.contains("\"v\" TEXT DEFAULT 'not null',"), "{d}");
        let d = rebuilt_definition(t, &change("t", Nullability::NotNull))
            .unwrap()
            .unwrap();
        assert!(
            d.contains("(datetime(\"t\") IS NOT NULL)) NOT NULL, \"w\" INT)"),
            "{d}"
        );
        assert_eq!(
            rebuilt_definition(t, &change("v", Nullability::NotNull)).unwrap(),
            None
        );
        assert_eq!(
            rebuilt_definition(t, &change("w", Nullability::Nullable)).unwrap(),
            None
        );
        assert_eq!(
            rebuilt_definition(t, &change("id", Nullability::Nullable)),
            Err(TranslateError::InPrimaryKey("id".into()))
        );
        assert!(matches!(
            rebuilt_definition(t, &change("zz", Nullability::NotNull)),
            Err(TranslateError::NoSuchColumn { .. })
        ));
    }

    #[test]
    fn column_type() {
        let t = "CREATE TABLE \"a\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \"v\" BIGINT NOT NULL DEFAULT 7 CONSTRAINT \"bindproxy_int8\" CHECK (\"v\" BETWEEN -9223372036854775808 AND 9223372036854775807) CHECK (\"v\" > 0), \"w\" TEXT)";
        let change = Change::ColumnType {
            column: "v".into(),
            from: "BIGINT".into(),
            to: "INT".into(),
            check:
                " CONSTRAINT \"bindproxy_int4\" CHECK (\"v\" BETWEEN -2147483648 AND 2147483647)"
                    .into(),
            copy: "\"v\"".into(),
        };
        let d = rebuilt_definition(t, &change).unwrap().unwrap();
        assert!(
            d.contains("\"v\" INT NOT NULL DEFAULT 7 CHECK (\"v\" > 0) CONSTRAINT \"bindproxy_int4\" CHECK (\"v\" BETWEEN -2147483648 AND 2147483647), \"w\" TEXT)"),
            "{d}"
        );
        assert!(!d.contains("bindproxy_int8"), "{d}");
        assert_eq!(
            select_list(t, "w", "CAST(\"w\" AS TEXT)").unwrap(),
            "\"id\", \"v\", CAST(\"w\" AS TEXT)"
        );
        let mut other = change.clone();
        if let Change::ColumnType { from, .. } = &mut other {
            *from = "TEXT".into();
        }
        assert!(rebuilt_definition(t, &other).is_err());
    }

    #[test]
    fn constraints_are_appended() {
        let u = Change::Constraint {
            sql: "CONSTRAINT \"a_name_key\" UNIQUE (\"name\")".into(),
            primary_key: None,
        };
        let d = rebuilt_definition(T, &u).unwrap().unwrap();
        assert!(
            d.ends_with(", CONSTRAINT \"a_name_key\" UNIQUE (\"name\"))"),
            "{d}"
        );
        let s = steps(
            "a",
            &d,
            &["CREATE INDEX \"i\" ON \"a\" (\"name\")".into()],
            Counter::of(T, &d),
            "*",
        );
        assert_eq!(s.len(), 6);
        assert_eq!(
            s[2],
            "INSERT INTO \"bindproxy_rebuild\" SELECT * FROM \"a\""
        );
    }
}
