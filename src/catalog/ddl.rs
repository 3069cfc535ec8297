//! The catalog model rendered as PostgreSQL DDL, for the shadow catalog database.
//!
//! Owns: turning a [`BindSchema`] (or one [`Table`]) into the PostgreSQL statements that recreate
//! it as empty stubs, in dependency order (schemas, enum types, sequences, tables, sequence
//! ownership, primary/unique/check constraints, indexes, views, foreign keys, comments), and
//! PostgreSQL's identifier quoting (`quote_ident`: keywords from PostgreSQL's own scanner through
//! `pg_query`) and literal escaping.
//!
//! Must never: talk to a database, or emit a name or a literal that is not quoted/escaped here.
//! Type names, defaults, constraint definitions and view queries are PostgreSQL text already (the
//! model's contract) and are emitted as they are.

use crate::catalog::model::{
    BindSchema, Column, Constraint, ConstraintKind, Deferrable, EnumType, ForeignKey, Identity,
    Index, RelationKind, Sequence, Table,
};

/// PostgreSQL's `quote_ident`: the name as it is when it is a plain lower-case identifier that is
/// not a keyword (unreserved keywords excepted), double-quoted otherwise.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_keyword_needing_quotes(name);
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Whether PostgreSQL's scanner reads `name` as a keyword other than an unreserved one.
fn is_keyword_needing_quotes(name: &str) -> bool {
    use pg_query::protobuf::KeywordKind;
    match pg_query::scan(name) {
        Ok(scan) => match scan.tokens.as_slice() {
            [t] => !matches!(
                KeywordKind::try_from(t.keyword_kind),
                Ok(KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword)
            ),
            // Not one token: quoting is the safe answer.
            _ => true,
        },
        Err(_) => true,
    }
}

/// A string literal, as `quote_literal` writes it with `standard_conforming_strings` on.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `schema.name`, each part quoted where needed; the bare name when there is no schema.
pub fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
        None => quote_ident(name),
    }
}

fn table_ref(t: &Table) -> String {
    qualified(t.schema.as_deref(), &t.name)
}

/// PostgreSQL DDL that recreates `schema` in dependency order. See the module documentation.
pub fn render(schema: &BindSchema) -> Vec<String> {
    let mut out = Vec::new();
    let mut schemas: Vec<&str> = Vec::new();
    let names = schema
        .tables
        .iter()
        .filter_map(|t| t.schema.as_deref())
        .chain(schema.sequences.iter().filter_map(|s| s.schema.as_deref()))
        .chain(schema.enums.iter().map(|e| e.schema.as_str()));
    for s in names {
        if !schemas.contains(&s) {
            schemas.push(s);
        }
    }
    for s in schemas {
        out.push(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s)));
    }
    out.extend(schema.enums.iter().map(create_enum));
    out.extend(schema.sequences.iter().map(create_sequence));
    let (tables, views): (Vec<&Table>, Vec<&Table>) = schema
        .tables
        .iter()
        .partition(|t| matches!(t.kind, RelationKind::Table));
    for t in &tables {
        out.push(create_table(t));
    }
    for s in &schema.sequences {
        if let Some((table, column)) = &s.owned_by {
            out.push(format!(
                "ALTER SEQUENCE {} OWNED BY {}.{}",
                qualified(s.schema.as_deref(), &s.name),
                qualified(s.schema.as_deref(), table),
                quote_ident(column)
            ));
        }
    }
    for t in &tables {
        out.extend(plain_constraints(t));
    }
    for t in &tables {
        out.extend(t.indexes.iter().map(|i| create_index(t, i)));
    }
    for v in &views {
        out.extend(create_view(v));
    }
    for t in &tables {
        out.extend(foreign_keys(t));
    }
    for t in schema.tables.iter() {
        out.extend(comments(t));
    }
    out
}

/// The statements for one table (or view) alone: its CREATE through its comments, its own foreign
/// keys included. The caller drops the old stub first.
pub fn render_table(table: &Table) -> Vec<String> {
    let mut out = Vec::new();
    match table.kind {
        RelationKind::Table => {
            out.push(create_table(table));
            out.extend(plain_constraints(table));
            out.extend(table.indexes.iter().map(|i| create_index(table, i)));
            out.extend(foreign_keys(table));
        }
        RelationKind::View { .. } => out.extend(create_view(table)),
    }
    out.extend(comments(table));
    out
}

fn create_enum(e: &EnumType) -> String {
    format!(
        "CREATE TYPE {} AS ENUM ({})",
        qualified(Some(&e.schema), &e.name),
        e.labels
            .iter()
            .map(|l| quote_literal(l))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn create_sequence(s: &Sequence) -> String {
    format!(
        "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} {}",
        qualified(s.schema.as_deref(), &s.name),
        s.data_type,
        s.increment,
        s.min,
        s.max,
        s.start,
        if s.cycle { "CYCLE" } else { "NO CYCLE" }
    )
}

fn column_def(c: &Column) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
    match c.identity {
        Some(Identity::Always) => s.push_str(" GENERATED ALWAYS AS IDENTITY"),
        Some(Identity::ByDefault) => s.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
        None => {}
    }
    if let Some(d) = &c.default {
        s.push_str(" DEFAULT ");
        s.push_str(d);
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    }
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    s
}

fn create_table(t: &Table) -> String {
    let cols = t
        .columns
        .iter()
        .map(column_def)
        .collect::<Vec<_>>()
        .join(", ");
    format!("CREATE TABLE {} ({cols})", table_ref(t))
}

fn add_constraint(t: &Table, c: &Constraint, definition: &str) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {definition}",
        table_ref(t),
        quote_ident(&c.name)
    )
}

/// Primary key first (foreign keys of other tables may need it), then unique and check.
fn plain_constraints(t: &Table) -> Vec<String> {
    let rank = |c: &&Constraint| match c.kind {
        ConstraintKind::PrimaryKey => 0,
        ConstraintKind::Unique => 1,
        _ => 2,
    };
    let mut cs: Vec<&Constraint> = t
        .constraints
        .iter()
        .filter(|c| !matches!(c.kind, ConstraintKind::ForeignKey(_)))
        .collect();
    cs.sort_by_key(rank);
    cs.into_iter()
        .map(|c| add_constraint(t, c, &c.definition))
        .collect()
}

fn create_index(t: &Table, i: &Index) -> String {
    let mut s = format!(
        "CREATE {}INDEX {} ON {} USING {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        quote_ident(&i.name),
        table_ref(t),
        quote_ident(&i.method),
        i.keys.join(", ")
    );
    if let Some(p) = &i.predicate {
        s.push_str(&format!(" WHERE {p}"));
    }
    s
}

fn create_view(v: &Table) -> Vec<String> {
    match &v.kind {
        RelationKind::View { definition } => {
            let def = definition.trim().trim_end_matches(';').trim_end();
            vec![format!("CREATE VIEW {} AS {def}", table_ref(v))]
        }
        RelationKind::Table => vec![],
    }
}

/// `FOREIGN KEY (…) REFERENCES …`, the referenced table in the referencing table's schema when
/// the engine has none.
pub fn foreign_key_definition(t: &Table, fk: &ForeignKey) -> String {
    let list = |cols: &[String]| {
        cols.iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let schema = fk.ref_schema.as_deref().or(t.schema.as_deref());
    let mut s = format!(
        "FOREIGN KEY ({}) REFERENCES {}",
        list(&fk.columns),
        qualified(schema, &fk.ref_table)
    );
    if !fk.ref_columns.is_empty() {
        s.push_str(&format!("({})", list(&fk.ref_columns)));
    }
    if fk.on_update != "NO ACTION" && !fk.on_update.is_empty() {
        s.push_str(&format!(" ON UPDATE {}", fk.on_update));
    }
    if fk.on_delete != "NO ACTION" && !fk.on_delete.is_empty() {
        s.push_str(&format!(" ON DELETE {}", fk.on_delete));
    }
    match fk.deferrable {
        Deferrable::No => {}
        Deferrable::InitiallyImmediate => s.push_str(" DEFERRABLE"),
        Deferrable::InitiallyDeferred => s.push_str(" DEFERRABLE INITIALLY DEFERRED"),
    }
    s
}

fn foreign_keys(t: &Table) -> Vec<String> {
    t.constraints
        .iter()
        .filter_map(|c| match &c.kind {
            ConstraintKind::ForeignKey(fk) => {
                Some(add_constraint(t, c, &foreign_key_definition(t, fk)))
            }
            _ => None,
        })
        .collect()
}

fn comments(t: &Table) -> Vec<String> {
    let what = match t.kind {
        RelationKind::Table => "TABLE",
        RelationKind::View { .. } => "VIEW",
    };
    let mut out = Vec::new();
    if let Some(c) = &t.comment {
        out.push(format!(
            "COMMENT ON {what} {} IS {}",
            table_ref(t),
            quote_literal(c)
        ));
    }
    for col in &t.columns {
        if let Some(c) = &col.comment {
            out.push(format!(
                "COMMENT ON COLUMN {}.{} IS {}",
                table_ref(t),
                quote_ident(&col.name),
                quote_literal(c)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_bare() {
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("_x1"), "_x1");
        // Unreserved keywords need no quotes (PostgreSQL's quote_ident leaves them bare).
        assert_eq!(quote_ident("name"), "name");
        assert_eq!(quote_ident("comment"), "comment");
    }

    #[test]
    fn capitals_spaces_quotes_and_digits_are_quoted() {
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("order items"), "\"order items\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("naïve"), "\"naïve\"");
    }

    #[test]
    fn reserved_and_column_name_keywords_are_quoted() {
        for k in [
            "order", "user", "select", "table", "between", "left", "int", "time",
        ] {
            assert_eq!(quote_ident(k), format!("\"{k}\""), "{k}");
        }
    }

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "'a\\b'");
    }

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: ty.into(),
            not_null: false,
            default: None,
            identity: None,
            generated: None,
            comment: None,
        }
    }

    #[test]
    fn a_table_with_awkward_names_renders_quoted() {
        let t = Table {
            schema: Some("Sales".into()),
            name: "order".into(),
            kind: RelationKind::Table,
            columns: vec![
                Column {
                    identity: Some(Identity::ByDefault),
                    not_null: true,
                    ..col("id", "integer")
                },
                Column {
                    default: Some("'it''s'::text".into()),
                    comment: Some("the user's note".into()),
                    ..col("User Note", "text")
                },
            ],
            constraints: vec![
                Constraint {
                    name: "order_user_fkey".into(),
                    kind: ConstraintKind::ForeignKey(ForeignKey {
                        columns: vec!["id".into()],
                        ref_schema: None,
                        ref_table: "user".into(),
                        ref_columns: vec!["id".into()],
                        on_delete: "CASCADE".into(),
                        on_update: "NO ACTION".into(),
                        deferrable: Deferrable::InitiallyDeferred,
                    }),
                    definition: String::new(),
                },
                Constraint {
                    name: "order_pkey".into(),
                    kind: ConstraintKind::PrimaryKey,
                    definition: "PRIMARY KEY (id)".into(),
                },
            ],
            indexes: vec![Index {
                name: "Order Idx".into(),
                unique: false,
                keys: vec!["\"User Note\" DESC".into()],
                method: "btree".into(),
                predicate: Some("(id > 0)".into()),
            }],
            comment: Some("orders' table".into()),
        };
        assert_eq!(
            render_table(&t),
            vec![
                "CREATE TABLE \"Sales\".\"order\" (id integer GENERATED BY DEFAULT AS IDENTITY NOT NULL, \
                 \"User Note\" text DEFAULT 'it''s'::text)",
                "ALTER TABLE \"Sales\".\"order\" ADD CONSTRAINT order_pkey PRIMARY KEY (id)",
                "CREATE INDEX \"Order Idx\" ON \"Sales\".\"order\" USING btree (\"User Note\" DESC) WHERE (id > 0)",
                "ALTER TABLE \"Sales\".\"order\" ADD CONSTRAINT order_user_fkey FOREIGN KEY (id) \
                 REFERENCES \"Sales\".\"user\"(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
                "COMMENT ON TABLE \"Sales\".\"order\" IS 'orders'' table'",
                "COMMENT ON COLUMN \"Sales\".\"order\".\"User Note\" IS 'the user''s note'",
            ]
        );
    }

    #[test]
    fn render_orders_schemas_types_sequences_before_tables_and_fks_last() {
        let mut a = Table {
            schema: Some("public".into()),
            name: "a".into(),
            kind: RelationKind::Table,
            columns: vec![Column {
                default: Some("nextval('a_id_seq'::regclass)".into()),
                ..col("id", "integer")
            }],
            constraints: vec![],
            indexes: vec![],
            comment: None,
        };
        a.constraints.push(Constraint {
            name: "a_id_fkey".into(),
            kind: ConstraintKind::ForeignKey(ForeignKey {
                columns: vec!["id".into()],
                ref_schema: Some("other".into()),
                ref_table: "b".into(),
                ref_columns: vec![],
                on_delete: "NO ACTION".into(),
                on_update: "SET NULL".into(),
                deferrable: Deferrable::No,
            }),
            definition: String::new(),
        });
        let schema = BindSchema {
            tables: vec![a],
            sequences: vec![Sequence {
                schema: Some("public".into()),
                name: "a_id_seq".into(),
                data_type: "integer".into(),
                start: 1,
                increment: 1,
                min: 1,
                max: 2147483647,
                cycle: false,
                owned_by: Some(("a".into(), "id".into())),
            }],
            enums: vec![EnumType {
                schema: "other".into(),
                name: "mood".into(),
                labels: vec!["ok".into(), "don't".into()],
            }],
        };
        assert_eq!(
            render(&schema),
            vec![
                "CREATE SCHEMA IF NOT EXISTS public",
                "CREATE SCHEMA IF NOT EXISTS other",
                "CREATE TYPE other.mood AS ENUM ('ok', 'don''t')",
                "CREATE SEQUENCE public.a_id_seq AS integer INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 NO CYCLE",
                "CREATE TABLE public.a (id integer DEFAULT nextval('a_id_seq'::regclass))",
                "ALTER SEQUENCE public.a_id_seq OWNED BY public.a.id",
                "ALTER TABLE public.a ADD CONSTRAINT a_id_fkey FOREIGN KEY (id) REFERENCES other.b ON UPDATE SET NULL",
            ]
        );
    }
}
