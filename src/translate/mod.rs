//! Re-rendering PostgreSQL statements for MySQL/MariaDB and SQLite binds.
//!
//! Owns: turning one parsed PostgreSQL statement into one statement of the target dialect, plus what the
//! executor needs around it (parameter order, parameter type hints, RETURNING handling, the
//! CommandComplete tag). The supported subset is an allowlist of AST shapes (see docs/sql-subset.md);
//! everything else is [`TranslateError::Unsupported`].
//!
//! Must never: run anything, alter what goes to PostgreSQL binds, or emit SQL whose meaning differs
//! from the PostgreSQL statement in a way the docs do not state.
//!
//! Pipeline (`rewrite`): clone the AST → [`walk`] validates and rewrites it in place (casts, ILIKE, `||`,
//! functions, ON CONFLICT, ORDER BY null placement, …) and collects parameter hints → [`names`] (a
//! `VisitorMut`) quotes every identifier for the target and marks `$n` placeholders → Display (or
//! [`ddl`]'s own renderer) → markers become `?` and the `params` order is read off the text →
//! [`safety`] lexes the result as the engine will and refuses it unless it is one statement, without
//! comments, whose literals are the tree's.
//!
//! Before any of that, [`rewrite_sql`] bounds the input: its tokens' [`depth::nesting`] estimate must
//! stay within [`depth::MAX_NESTING`] (54001), deeper-than-trivial statements are translated on a thread
//! with a large stack, and the text must hold exactly one statement (the caller splits with
//! PostgreSQL's own scanner; a different count here means the two disagree, 42601).

pub mod alter_type;
mod bulk;
pub mod catalog;
mod colname;
mod ddl;
pub mod depth;
mod dml;
mod error;
mod interval;
mod lock;
mod names;
mod optype;
mod restype;
mod safety;
pub mod sequence;
mod series;
mod trunc;
mod txn;
pub use txn::SQLITE_READ_ONLY;
mod types;
mod unnest;
mod walk;

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Tokenizer;

pub use ddl::{bindproxy_check, CheckKind, MYSQL_TABLE_OPTIONS};
pub use error::TranslateError;
pub use types::{pg_type_from_mysql_comment, pg_type_from_sqlite_decltype, MYSQL_COMMENT_PREFIX};

/// The engine a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// MySQL 8 / MariaDB ≥ 10.5 (RETURNING is rendered natively, as MariaDB has it; see [`Returning`]).
    MySql,
    /// SQLite ≥ 3.35.
    Sqlite,
}

/// Statements each new MySQL/MariaDB session must run before any translated SQL: the translation
/// relies on these settings (string literals are rendered verbatim, so backslashes must not escape;
/// literals compare byte-wise, as columns created through bindproxy and PostgreSQL's C collation do;
/// strict mode makes bad data an error as in PostgreSQL; TIMESTAMPTZ is stored as UTC DATETIME(6);
/// GROUP_CONCAT does not cut string_agg's result short).
pub const MYSQL_SESSION_SETUP: &[&str] = &[
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION time_zone = '+00:00'",
    // MariaDB stops a recursive CTE silently after max_recursive_iterations (1000 by default);
    // generate_series() is one (`translate/series.rs`). MySQL has no such variable (it fails at
    // cte_max_recursion_depth instead): the MariaDB-only comment keeps the statement valid there.
    "SET NAMES utf8mb4 COLLATE utf8mb4_bin /*M!, max_recursive_iterations = 4294967295 */",
    // string_agg → GROUP_CONCAT, whose result is cut at this length (1 MiB by default; 1 GiB is
    // PostgreSQL's own limit for a text value and MariaDB's largest setting)
    "SET SESSION group_concat_max_len = 1073741824",
];

/// Statements each new SQLite connection must run before any translated SQL: PostgreSQL's LIKE is
/// case-sensitive, and foreign keys are enforced.
pub const SQLITE_SESSION_SETUP: &[&str] = &[
    "PRAGMA case_sensitive_like = ON",
    "PRAGMA foreign_keys = ON",
];

/// The function every SQLite connection of bindproxy registers (`backend/translated/sqlite.rs`):
/// `bindproxy_divisor(x)` is `x`, or the error [`SQLITE_DIVISION_BY_ZERO`] when `x` is zero.
/// Divisors of `/` and `%` in statements go through it (`walk.rs`).
pub const SQLITE_DIVISOR_FUNCTION: &str = "bindproxy_divisor";

/// The message of [`SQLITE_DIVISOR_FUNCTION`]'s error, mapped to 22012 `division by zero`.
pub const SQLITE_DIVISION_BY_ZERO: &str = "bindproxy: division by zero";

/// `a ^ b` (float8) on SQLite: `bindproxy_pow(a, b)`, a function every SQLite connection of bindproxy
/// registers (`backend/translated/sqlite.rs`), with PostgreSQL's `dpow` errors
/// ([`SqliteFunctionError`]).
pub const SQLITE_POW_FUNCTION: &str = "bindproxy_pow";

/// `|/ x` (float8) on SQLite: `bindproxy_sqrt(x)`, registered like [`SQLITE_POW_FUNCTION`].
pub const SQLITE_SQRT_FUNCTION: &str = "bindproxy_sqrt";

/// The errors of bindproxy's SQLite functions ([`SQLITE_POW_FUNCTION`], [`SQLITE_SQRT_FUNCTION`],
/// [`SQLITE_TS_SHIFT_FUNCTION`], [`SQLITE_TS_DIFF_FUNCTION`], [`SQLITE_DATE_TRUNC_FUNCTION`]), raised
/// with [`Self::message`] and mapped to PostgreSQL's SQLSTATE and message by
/// `backend/translated/errors.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteFunctionError {
    ZeroToNegativePower,
    NegativeToFractionalPower,
    SquareRootOfNegative,
    Overflow,
    Underflow,
    /// `bindproxy_ts_shift` of a text that is no timestamp, or out of range.
    TimestampOutOfRange,
}

impl SqliteFunctionError {
    pub const ALL: [SqliteFunctionError; 6] = [
        SqliteFunctionError::ZeroToNegativePower,
        SqliteFunctionError::NegativeToFractionalPower,
        SqliteFunctionError::SquareRootOfNegative,
        SqliteFunctionError::Overflow,
        SqliteFunctionError::Underflow,
        SqliteFunctionError::TimestampOutOfRange,
    ];

    /// PostgreSQL's message for the error.
    pub fn pg_message(self) -> &'static str {
        match self {
            SqliteFunctionError::ZeroToNegativePower => {
                "zero raised to a negative power is undefined"
            }
            SqliteFunctionError::NegativeToFractionalPower => {
                "a negative number raised to a non-integer power yields a complex result"
            }
            SqliteFunctionError::SquareRootOfNegative => {
                "cannot take square root of a negative number"
            }
            SqliteFunctionError::Overflow => "value out of range: overflow",
            SqliteFunctionError::Underflow => "value out of range: underflow",
            SqliteFunctionError::TimestampOutOfRange => "timestamp out of range",
        }
    }

    /// The message the SQLite function raises.
    pub fn message(self) -> String {
        format!("bindproxy: {}", self.pg_message())
    }
}

/// `timestamp + interval` on SQLite: `bindproxy_ts_shift(ts, months, days, microseconds)`, a
/// function every SQLite connection of bindproxy registers (`backend/translated/sqlite.rs`): the
/// timestamp text moved as PostgreSQL moves it (months with the day clamped, then days, then
/// microseconds), NULL for a NULL timestamp.
pub const SQLITE_TS_SHIFT_FUNCTION: &str = "bindproxy_ts_shift";

/// `timestamp - timestamp` on SQLite: `bindproxy_ts_diff(a, b)`, the difference in microseconds (the
/// executor prints it as PostgreSQL's interval), registered like [`SQLITE_TS_SHIFT_FUNCTION`].
pub const SQLITE_TS_DIFF_FUNCTION: &str = "bindproxy_ts_diff";

/// `date_trunc(field, ts)` on SQLite: `bindproxy_date_trunc(field, ts)`, registered like
/// [`SQLITE_TS_SHIFT_FUNCTION`] (`translate/trunc.rs` lists the fields).
pub const SQLITE_DATE_TRUNC_FUNCTION: &str = "bindproxy_date_trunc";

/// The integer types whose range SQLite connections check with a function of bindproxy's
/// (`bindproxy_int4(x)` is `x`, or an error when `x` is outside int4 or not an integer): integer
/// arithmetic in statements is wrapped in it, as PostgreSQL raises 22003 where SQLite would widen.
pub const SQLITE_RANGE_TYPES: &[&str] = &["int2", "int4", "int8"];

/// The name of the range function for `typname` (one of [`SQLITE_RANGE_TYPES`]).
pub fn sqlite_range_function(typname: &str) -> String {
    format!("bindproxy_{typname}")
}

/// The message of a range function's error for `typname`, mapped to 22003.
pub fn sqlite_out_of_range(typname: &str) -> String {
    format!("bindproxy: {typname} out of range")
}

/// The PostgreSQL types of a bind's table columns, for the operators whose engine equivalent depends
/// on them (`date + 1`, `a / b`, …; see `optype.rs`). Names as PostgreSQL folds them; the answer is a
/// `typname` (`int4`, `date`, …), `None` when the column is not known.
pub trait ColumnTypes {
    fn column_type(&self, table: &str, column: &str) -> Option<String>;
}

/// What kind of statement was translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    CreateTable,
    DropTable,
    CreateIndex,
    DropIndex,
    AlterTable,
    Begin,
    Commit,
    Rollback,
    /// `SAVEPOINT name` (name as PostgreSQL folds it).
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(String),
    Other,
}

/// A column of a table, for parameter type inference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnRef {
    /// Real table name (aliases resolved, `public.` dropped, unquoted names lower-cased).
    pub table: String,
    pub column: String,
}

/// How the caller produces the rows of a PostgreSQL `RETURNING` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returning {
    /// Output column names, in order (`*` when the list has a wildcard: take names from the result).
    pub columns: Vec<String>,
    /// `true`: `Rewritten::sql` ends in a RETURNING clause the server evaluates (SQLite, MariaDB ≥ 10.5
    /// for INSERT/DELETE). Run it as a query.
    pub native: bool,
    /// For MySQL servers without RETURNING (MySQL 8): a single-row INSERT can be emulated.
    pub emulation: Option<LastInsertIdEmulation>,
}

/// Emulation of single-row `INSERT … RETURNING` via the generated key: run `insert_sql` (no
/// RETURNING), then `SELECT {select_list} FROM {table} WHERE {auto-increment column} = LAST_INSERT_ID()`
/// (the executor knows the auto-increment column from information_schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastInsertIdEmulation {
    pub insert_sql: String,
    /// Table name, quoted for MySQL.
    pub table: String,
    /// The RETURNING list rendered for MySQL (no parameters).
    pub select_list: String,
}

/// What the caller needs to write PostgreSQL's CommandComplete tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagHint {
    /// `SELECT n` (rows returned).
    Select,
    /// `INSERT 0 n` (rows affected, or rows returned with RETURNING).
    Insert,
    /// `UPDATE n`.
    Update,
    /// `DELETE n`.
    Delete,
    /// A fixed tag such as `CREATE TABLE`, `BEGIN`, `RELEASE`.
    Fixed(&'static str),
}

impl TagHint {
    /// The tag for `rows` rows (ignored for fixed tags).
    pub fn tag(&self, rows: u64) -> String {
        match self {
            TagHint::Select => format!("SELECT {rows}"),
            TagHint::Insert => format!("INSERT 0 {rows}"),
            TagHint::Update => format!("UPDATE {rows}"),
            TagHint::Delete => format!("DELETE {rows}"),
            TagHint::Fixed(t) => (*t).to_string(),
        }
    }
}

/// A statement re-rendered for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// SQL text for the target, one statement, `?` placeholders.
    pub sql: String,
    /// Statements to run, in order, right before `sql` (e.g. MySQL `SET TRANSACTION ISOLATION LEVEL …`
    /// before `START TRANSACTION`). Usually empty.
    pub before: Vec<String>,
    /// For each `?` in `sql`, in order, the 0-based index of the client's `$n` parameter.
    pub params: Vec<usize>,
    pub kind: Kind,
    pub returning: Option<Returning>,
    /// Per client parameter `$n` (index n-1, up to the highest `$n` seen): the column it is compared
    /// with, inserted into or assigned to.
    pub param_hints: Vec<Option<ColumnRef>>,
    /// Parameters whose type the statement states: an explicit cast (`$1::int4` → `(0, "int4")`, the
    /// cast itself is dropped from `sql` and the executor binds the value as that type) or a LIMIT/OFFSET
    /// (`int8`). Names are PostgreSQL `typname`s; sorted by index.
    pub pg_types: Vec<(usize, String)>,
    pub tag_hint: TagHint,
    /// Per output column (select list or RETURNING list, in order; empty when they do not line up, e.g.
    /// with a wildcard): the PostgreSQL type of the expression where the statement tells it. The
    /// executor uses it for columns the engine gives no declared type (SQLite expressions).
    pub result_types: Vec<Option<ResultType>>,
    /// MySQL `DROP INDEX name` needs the table: when set, `sql` is empty and the caller must look the
    /// table up (information_schema.STATISTICS) and use [`mysql_drop_index_sql`].
    pub drop_index_lookup: Option<DropIndexLookup>,
    /// The tables (and views) a SELECT/INSERT/UPDATE/DELETE reads or writes, as PostgreSQL folds
    /// their names, without CTE names; deduplicated. The executor uses them to learn the tables'
    /// column types before running the statement. Empty for other statements.
    pub tables: Vec<String>,
}

/// The PostgreSQL type of an output expression, as far as the statement determines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultType {
    /// A fixed type: `typname` as in `pg_type` (`int8`, `numeric`, `text`, …) and PostgreSQL's typmod
    /// (`numeric(10,2)` → `((10 << 16) | 2) + 4`; -1 when none).
    Known { typname: String, typmod: i32 },
    /// The type of a table column (`x`, `max(x)`, `min(x)`, `abs(x)`).
    Column(ColumnRef),
    /// `sum(x)`: int8 for int2/int4, numeric for int8/numeric, float4/float8 for floats.
    Sum(Box<ResultType>),
    /// `avg(x)`: numeric, float8 for float inputs.
    Avg(Box<ResultType>),
    /// `a + b` (and `- * / %`): by PostgreSQL's operator resolution of the two operand types.
    Arith(Box<ResultType>, Box<ResultType>),
    /// `a * b`: typed as [`ResultType::Arith`]; a numeric product's scale is the sum of the
    /// operands' scales (theirs is the larger one for `+ - %`).
    Product(Box<ResultType>, Box<ResultType>),
    /// A numeric literal (`1.50`): numeric, printed with the literal's scale (2).
    NumericLiteral { scale: u32 },
    /// `x ± interval`: timestamp for a date or timestamp `x`, timestamptz for a timestamptz.
    Shifted(Box<ResultType>),
    /// `date_trunc(field, x)`: timestamp for a timestamp `x`, timestamptz for a timestamptz or a date.
    Truncated(Box<ResultType>),
}

/// A MySQL `DROP INDEX` whose table the caller must find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIndexLookup {
    /// Index name as PostgreSQL folds it.
    pub index: String,
    /// `IF EXISTS` was given: if no table has the index, do nothing.
    pub if_exists: bool,
}

/// `DROP INDEX` for MySQL once the table holding `index` is known.
pub fn mysql_drop_index_sql(index: &str, table: &str) -> String {
    format!(
        "DROP INDEX {} ON {}",
        names::quote(index, Target::MySql),
        names::quote(table, Target::MySql)
    )
}

/// Translate one parsed PostgreSQL statement.
///
/// Callers must have bounded the statement's depth (as [`rewrite_sql`] does): the AST is cloned,
/// walked and rendered recursively.
pub fn rewrite(stmt: &Statement, target: Target) -> Result<Rewritten, TranslateError> {
    rewrite_typed(stmt, target, None)
}

/// [`rewrite`] with the bind's column types: arithmetic on an operand whose type they do not give
/// is refused (0A000) rather than left to the engine.
pub fn rewrite_typed(
    stmt: &Statement,
    target: Target,
    types: Option<&(dyn ColumnTypes + Sync)>,
) -> Result<Rewritten, TranslateError> {
    let tables = relation_names(stmt);
    let mut stmt = stmt.clone();
    let mut ctx = walk::Ctx::new(target, types);
    let mut out = match &mut stmt {
        Statement::Query(_)
        | Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_) => dml::rewrite_dml(&mut ctx, &mut stmt)?,
        Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::Drop { .. }
        | Statement::AlterTable(_) => ddl::rewrite_ddl(&mut ctx, &mut stmt)?,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => txn::rewrite_txn(target, &stmt)?,
        other => return Err(TranslateError::unsupported(statement_name(other))),
    };
    verify(&stmt, &out, target)?;
    if matches!(
        out.kind,
        Kind::Select | Kind::Insert | Kind::Update | Kind::Delete
    ) {
        out.tables = tables;
    }
    Ok(out)
}

/// The rendered SQL must read back, on the engine, as the translated tree: see [`safety`].
fn verify(translated: &Statement, out: &Rewritten, target: Target) -> Result<(), TranslateError> {
    let matching = match out.kind {
        Kind::Select | Kind::Insert | Kind::Update | Kind::Delete => safety::LiteralMatch::Exact,
        _ => safety::LiteralMatch::Contains,
    };
    let mut expected = safety::Literals::of(translated);
    if let Some(emulation) = out.returning.as_ref().and_then(|r| r.emulation.as_ref()) {
        // the RETURNING list was taken out of the tree to be rendered on its own
        safety::add_literals_of(&emulation.select_list, target, &mut expected)?;
    }
    if !out.sql.is_empty() {
        safety::check(&out.sql, target, &expected, matching)?;
    }
    for extra in &out.before {
        safety::check_plain(extra, target)?;
    }
    if let Some(emulation) = out.returning.as_ref().and_then(|r| r.emulation.as_ref()) {
        safety::check_plain(&emulation.insert_sql, target)?;
        safety::check_plain(&emulation.select_list, target)?;
    }
    Ok(())
}

/// The last part of every table name the statement mentions, folded, minus the names of its CTEs.
fn relation_names(stmt: &Statement) -> Vec<String> {
    use sqlparser::ast::{visit_relations, ObjectNamePart, Visit};
    use std::ops::ControlFlow;
    let last = |n: &sqlparser::ast::ObjectName| match n.0.last() {
        Some(ObjectNamePart::Identifier(i)) => Some(names::fold(i)),
        _ => None,
    };
    let mut out: Vec<String> = Vec::new();
    let _ = visit_relations(stmt, |n| {
        if let Some(t) = last(n) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut ctes = Ctes(Vec::new());
    let _ = stmt.visit(&mut ctes);
    out.retain(|t| !ctes.0.contains(t));
    out
}

/// Collects the names of the CTEs of every query in a statement.
struct Ctes(Vec<String>);

impl sqlparser::ast::Visitor for Ctes {
    type Break = ();
    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> std::ops::ControlFlow<()> {
        if let Some(w) = &q.with {
            for cte in &w.cte_tables {
                self.0.push(names::fold(&cte.alias.name));
            }
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// Parse one PostgreSQL statement (the caller has split the query string with PostgreSQL's scanner)
/// and translate it. Empty text (only comments) gives no rewrite; text the parser reads as more than
/// one statement is [`TranslateError::StatementCount`].
///
/// Depth is bounded before parsing (see [`depth`]); deep statements are parsed, translated and dropped
/// on a thread with a large stack.
///
/// Text longer than [`MAX_STATEMENT_BYTES`] is translated only when it is a multi-row
/// `INSERT … VALUES` that [`bulk`] can take a slice of rows at a time (one rewrite per slice, to be
/// run in one transaction); anything else that long is [`TranslateError::TooLarge`].
pub fn rewrite_sql(sql: &str, target: Target) -> Result<Vec<Rewritten>, TranslateError> {
    rewrite_sql_typed(sql, target, None)
}

/// [`rewrite_sql`] with the bind's column types (see [`rewrite_typed`]).
pub fn rewrite_sql_typed(
    sql: &str,
    target: Target,
    types: Option<&(dyn ColumnTypes + Sync)>,
) -> Result<Vec<Rewritten>, TranslateError> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return match bulk::slice(sql) {
            Some(sliced) => bulk::rewrite_sliced(&sliced, target),
            None => Err(TranslateError::TooLarge {
                bytes: sql.len(),
                limit: MAX_STATEMENT_BYTES,
            }),
        };
    }
    rewrite_one(sql, target, types)
}

/// A syntax error for text that holds something besides whitespace and comments but no statement
/// (libpg_query's scanner-based splitter leaves out pieces without a keyword, such as `SELEC 1`,
/// where PostgreSQL reports a syntax error). `None` for blank text.
pub fn not_a_statement(sql: &str) -> Option<TranslateError> {
    use sqlparser::tokenizer::Token;
    let tokens = match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() {
        Ok(t) => t,
        Err(e) => return Some(TranslateError::Parse(e.to_string())),
    };
    let first = tokens
        .into_iter()
        .find(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF))?;
    Some(TranslateError::Parse(format!(
        "syntax error at or near \"{first}\""
    )))
}

/// The tables a statement text names, as [`Rewritten::tables`] gives them, for a caller that must
/// load their column types before translating ([`ColumnTypes`]); empty when the text is not one
/// statement the translator's parser reads.
pub fn table_names_of(sql: &str) -> Vec<String> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return vec![];
    }
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return vec![];
    };
    let nesting = depth::nesting(&tokens);
    if depth::check(nesting).is_err() {
        return vec![];
    }
    depth::on_deep_stack(nesting, move || {
        let dialect = PostgreSqlDialect {};
        let stmts = Parser::new(&dialect)
            .with_recursion_limit(depth::PARSER_RECURSION_LIMIT)
            .with_tokens_with_locations(tokens)
            .parse_statements()
            .map_err(|e| TranslateError::Parse(e.to_string()))?;
        Ok(match stmts.as_slice() {
            [one] => relation_names(one),
            _ => vec![],
        })
    })
    .unwrap_or_default()
}

/// Whether `sql` is longer than [`MAX_STATEMENT_BYTES`] and a multi-row `INSERT … VALUES` in the
/// plain form [`bulk`] slices: plain quotes only, no `;`, comments, dollar quotes or `E'…'` outside
/// them — text PostgreSQL's scanner necessarily reads as that one statement. The executor may skip
/// the scanner-based split for it (libpg_query's splitter and scan cost about 11 bytes per byte of
/// text: 565 MB for a 50 MB INSERT).
pub fn is_large_plain_insert(sql: &str) -> bool {
    sql.len() > MAX_STATEMENT_BYTES && bulk::slice(sql).is_some()
}

/// The longest statement text parsed whole (sqlparser's tree costs about 210 bytes per byte of
/// text, so this bounds one translation to about 200 MB at worst). Larger multi-row INSERTs are
/// sliced ([`bulk::CHUNK_BYTES`] of rows per slice).
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// [`rewrite_sql`] for text parsed whole.
fn rewrite_one(
    sql: &str,
    target: Target,
    types: Option<&(dyn ColumnTypes + Sync)>,
) -> Result<Vec<Rewritten>, TranslateError> {
    if let Some(plain) = txn::without_deferrable(sql) {
        return rewrite_one(&plain, target, types);
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| TranslateError::Parse(e.to_string()))?;
    let nesting = depth::nesting(&tokens);
    depth::check(nesting)?;
    depth::on_deep_stack(nesting, move || {
        let dialect = PostgreSqlDialect {};
        let stmts = Parser::new(&dialect)
            .with_recursion_limit(depth::PARSER_RECURSION_LIMIT)
            .with_tokens_with_locations(tokens)
            .parse_statements()
            .map_err(|e| match e {
                ParserError::RecursionLimitExceeded => TranslateError::TooDeep {
                    depth: depth::PARSER_RECURSION_LIMIT + 1,
                    limit: depth::PARSER_RECURSION_LIMIT,
                },
                e => TranslateError::Parse(e.to_string()),
            })?;
        if stmts.len() > 1 {
            return Err(TranslateError::StatementCount { found: stmts.len() });
        }
        stmts
            .iter()
            .map(|s| rewrite_typed(s, target, types))
            .collect()
    })
}

/// A readable name for a statement outside the subset (its leading keywords, e.g. `COPY`,
/// `CREATE VIEW`, `SET`).
fn statement_name(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .filter(|w| {
            !matches!(
                w.as_str(),
                "OR" | "REPLACE" | "TEMPORARY" | "TEMP" | "UNLOGGED" | "IF" | "NOT" | "EXISTS"
            )
        })
        .collect();
    match words.first().map(String::as_str) {
        None => "this statement".into(),
        Some(w @ ("CREATE" | "DROP" | "ALTER" | "COMMENT")) => match words.get(1) {
            Some(n) if n.chars().all(|c| c.is_ascii_alphabetic()) => format!("{w} {n}"),
            _ => w.to_string(),
        },
        Some(w) => w
            .trim_matches(|c: char| !c.is_ascii_alphabetic())
            .to_string(),
    }
}

#[cfg(test)]
mod tests;
