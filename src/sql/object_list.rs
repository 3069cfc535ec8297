//! A statement that only lists independent objects, split into one statement per bind.
//!
//! Owns: [`split_object_list`] — `TRUNCATE a, b`, `DROP TABLE a, b` (also views, sequences,
//! indexes, materialized views) and `LOCK a, b` name objects that do not depend on each other
//! within the statement, so each bind can run its own share: Django's `flush` sends
//! `TRUNCATE a, b, c`, SQLAlchemy's `drop_all` and migration tools drop lists. The pieces are
//! PostgreSQL's own deparse of the statement's tree with the other binds' objects removed, so every
//! option (`CASCADE`, `IF EXISTS`, `RESTART IDENTITY`, lock mode, `NOWAIT`) is kept.
//!
//! Must never: split anything else (a statement whose objects interact, such as a join or a
//! foreign key, is not a list), or produce a piece that names an object of another bind; an
//! object whose bind the caller cannot tell makes the whole statement unsplittable.

use pg_query::protobuf::node::Node as NodeEnum;
use pg_query::protobuf::{Node, ObjectType};

use super::name::TableName;

/// One bind's share of a list statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPiece {
    /// What the caller's `bind_of` said for these objects.
    pub bind: String,
    /// The statement with only these objects, as PostgreSQL's deparser writes it.
    pub sql: String,
}

/// Splits `sql` when it is one TRUNCATE, DROP (of relations) or LOCK statement whose objects go to
/// two or more binds. `bind_of` names the bind of each object (None: unknown, no split). Returns
/// None when the statement is not such a list, or its objects are all on one bind.
pub fn split_object_list(
    sql: &str,
    bind_of: impl Fn(&TableName) -> Option<String>,
) -> Option<Vec<ListPiece>> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let node = raw.stmt.as_ref()?.node.as_ref()?;
    let objects: Vec<TableName> = match node {
        NodeEnum::TruncateStmt(t) => t
            .relations
            .iter()
            .map(range_var_name)
            .collect::<Option<_>>()?,
        NodeEnum::LockStmt(l) => l
            .relations
            .iter()
            .map(range_var_name)
            .collect::<Option<_>>()?,
        NodeEnum::DropStmt(d) if drops_relations(d.remove_type) => {
            d.objects.iter().map(list_name).collect::<Option<_>>()?
        }
        _ => return None,
    };
    // group by bind, in order of first appearance
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, name) in objects.iter().enumerate() {
        let bind = bind_of(name)?;
        match groups.iter_mut().find(|(b, _)| *b == bind) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((bind, vec![i])),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    let mut pieces = Vec::with_capacity(groups.len());
    for (bind, keep) in groups {
        let mut tree = parsed.protobuf.clone();
        let stmt = tree.stmts.first_mut()?.stmt.as_mut()?.node.as_mut()?;
        let list = match stmt {
            NodeEnum::TruncateStmt(t) => &mut t.relations,
            NodeEnum::LockStmt(l) => &mut l.relations,
            NodeEnum::DropStmt(d) => &mut d.objects,
            _ => return None,
        };
        let all = std::mem::take(list);
        *list = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, n)| n)
            .collect();
        let sql = pg_query::deparse(&tree, Default::default()).ok()?;
        pieces.push(ListPiece { bind, sql });
    }
    Some(pieces)
}

fn drops_relations(remove_type: i32) -> bool {
    [
        ObjectType::ObjectTable,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
        ObjectType::ObjectSequence,
        ObjectType::ObjectIndex,
        ObjectType::ObjectForeignTable,
    ]
    .iter()
    .any(|t| *t as i32 == remove_type)
}

/// `RangeVar` → its name, as the parser folded it.
fn range_var_name(node: &Node) -> Option<TableName> {
    match node.node.as_ref()? {
        NodeEnum::RangeVar(r) => Some(TableName::new(
            (!r.schemaname.is_empty()).then_some(r.schemaname.as_str()),
            &r.relname,
        )),
        _ => None,
    }
}

/// A DROP object: a list of name parts (`schema.name` or `name`).
fn list_name(node: &Node) -> Option<TableName> {
    let NodeEnum::List(list) = node.node.as_ref()? else {
        return None;
    };
    let parts: Vec<&str> = list
        .items
        .iter()
        .map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [name] => Some(TableName::new(None, name)),
        [.., schema, name] => Some(TableName::new(Some(schema), name)),
        [] => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(t: &TableName) -> Option<String> {
        match t.name.as_str() {
            "a" | "a2" => Some("one".into()),
            "b" => Some("two".into()),
            _ => None,
        }
    }

    fn split(sql: &str) -> Option<Vec<(String, String)>> {
        split_object_list(sql, bind).map(|v| v.into_iter().map(|p| (p.bind, p.sql)).collect())
    }

    #[test]
    fn lists_split_by_bind_keeping_options() {
        assert_eq!(
            split("TRUNCATE a, b, a2 RESTART IDENTITY CASCADE"),
            Some(vec![
                (
                    "one".into(),
                    "TRUNCATE a, a2 RESTART IDENTITY CASCADE".into()
                ),
                ("two".into(), "TRUNCATE b RESTART IDENTITY CASCADE".into()),
            ])
        );
        let drop = split("DROP TABLE IF EXISTS public.b, a").expect("split");
        assert_eq!(drop[0].0, "two");
        assert!(
            drop[0].1.contains("IF EXISTS") && drop[0].1.contains("public.b"),
            "{drop:?}"
        );
        assert!(!drop[0].1.contains(" a"), "{drop:?}");
        let lock = split("LOCK TABLE a, b IN SHARE MODE NOWAIT").expect("split");
        assert!(
            lock[1].1.contains("SHARE MODE") && lock[1].1.contains("NOWAIT"),
            "{lock:?}"
        );
    }

    #[test]
    fn not_lists_or_not_split() {
        // one bind only
        assert_eq!(split("TRUNCATE a, a2"), None);
        // an object of unknown bind
        assert_eq!(split("TRUNCATE a, zzz"), None);
        // not a list statement
        assert_eq!(split("SELECT * FROM a, b"), None);
        assert_eq!(split("DROP FUNCTION a(), b()"), None);
        // two statements
        assert_eq!(split("TRUNCATE a; TRUNCATE b"), None);
    }
}
