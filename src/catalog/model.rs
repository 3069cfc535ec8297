//! The catalog model: what bindproxy knows about the tables of every bind, in PostgreSQL's terms.
//!
//! Owns: the plain data types that readers (`catalog/read`) fill from each engine's own catalog and
//! that the renderer (`catalog/ddl`) turns into PostgreSQL DDL for the shadow catalog, and that the
//! router's catalog view (`DROP INDEX name`, `discover`) and the embedded catalog (no PostgreSQL
//! server) read.
//!
//! Must never: talk to a database, or hold engine syntax. Every type name, default expression and
//! constraint definition here is PostgreSQL text, as PostgreSQL's own `format_type`,
//! `pg_get_expr` and `pg_get_constraintdef` print it.

/// Everything one bind holds that a client may see through the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindSchema {
    pub tables: Vec<Table>,
    pub sequences: Vec<Sequence>,
    /// Enum types the tables use (PostgreSQL binds; MySQL `ENUM(…)` columns map to text + CHECK).
    pub enums: Vec<EnumType>,
}

/// A table (or a view, on a PostgreSQL bind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The schema the client sees it in. Readers of PostgreSQL binds fill it in; readers of
    /// MySQL/SQLite binds leave it `None` and the caller places the table (by the table map).
    pub schema: Option<String>,
    pub name: String,
    pub kind: RelationKind,
    /// In the table's column order (attnum order).
    pub columns: Vec<Column>,
    /// Primary key, unique, check and foreign-key constraints.
    pub constraints: Vec<Constraint>,
    /// Indexes that do not back a constraint (those come with their constraint).
    pub indexes: Vec<Index>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    /// A view and its defining query (PostgreSQL's `pg_get_viewdef`), over the client's names.
    View {
        definition: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The PostgreSQL type as `format_type(atttypid, atttypmod)` prints it: `integer`,
    /// `character varying(50)`, `numeric(10,2)`, `timestamp without time zone`, `text[]`.
    pub type_sql: String,
    pub not_null: bool,
    /// The default as a PostgreSQL expression (`now()`, `'x'::text`,
    /// `nextval('t_id_seq'::regclass)`); `None` when there is none. Never set together with
    /// `identity`.
    pub default: Option<String>,
    pub identity: Option<Identity>,
    /// `GENERATED ALWAYS AS (expr) STORED`: the expression.
    pub generated: Option<String>,
    pub comment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Always,
    ByDefault,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// As `pg_get_constraintdef` prints it, without the name: `PRIMARY KEY (id)`,
    /// `UNIQUE (email)`, `CHECK ((price > 0))`. Foreign keys are rendered from `kind` instead,
    /// because the referenced table's schema is known only once every bind is placed.
    pub definition: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Check,
    ForeignKey(ForeignKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    /// The referenced table; its schema is `None` when the engine has no schemas (the caller
    /// places it like any table of that bind).
    pub ref_schema: Option<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL`, `SET DEFAULT`.
    pub on_delete: String,
    pub on_update: String,
    pub deferrable: Deferrable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferrable {
    No,
    InitiallyImmediate,
    InitiallyDeferred,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    /// Key parts as PostgreSQL prints them in `pg_get_indexdef` (column names, quoted where
    /// needed, or expressions in parentheses), each with its `DESC`/`NULLS FIRST` if any.
    pub keys: Vec<String>,
    /// `btree`, `hash`, `gin`, `gist`, … (engines other than PostgreSQL: `btree`).
    pub method: String,
    /// A partial index's predicate (PostgreSQL text), if any.
    pub predicate: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub schema: Option<String>,
    pub name: String,
    /// `smallint`, `integer` or `bigint`.
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    /// `OWNED BY table.column` (the table in the same schema as the sequence).
    pub owned_by: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumType {
    pub schema: String,
    pub name: String,
    pub labels: Vec<String>,
}
