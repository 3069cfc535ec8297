//! SQL analysis: which relations each statement of a query string touches, read with
//! PostgreSQL's own parser (libpg_query).
//!
//! `parse` (the parser and its errors), `relations` (relations from a parse tree, CTE scopes,
//! names in literals), `plpgsql` (DO and function bodies), `settings` (search_path changes, the
//! escape-string setting), `hint` (routing hint comments), `kind` (statement kinds), `readonly` (reads a replica may answer), `bulk` (large
//! INSERTs routed by their head), `reduce` (lists of literals collapsed), `split` (statement boundaries for every bind), `analysis`
//! (putting them together per query string), `name` (relation names), `normalize` and `cache`
//! (the analysis cache).
pub mod analysis;
pub(crate) mod bulk;
pub mod cache;
pub(crate) mod hint;
pub mod kind;
pub(crate) mod lex;
pub mod name;
pub(crate) mod normalize;
pub mod object_list;
pub mod parse;
pub(crate) mod plpgsql;
pub(crate) mod readonly;
pub(crate) mod reduce;
pub mod relations;
pub mod settings;
pub mod split;

pub use analysis::{analyze_uncached, Analysis, Method, StatementInfo};
pub use cache::AnalysisCache;
pub use kind::{Command, StatementKind};
pub use name::TableName;
pub use object_list::{split_object_list, ListPiece};
pub use parse::{string_literals, AnalysisError};
pub use relations::Dynamic;
pub use settings::{PathValue, SettingChange, SettingScope};
pub use split::split_statements;
