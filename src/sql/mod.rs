//! SQL analysis: which relations each statement of a query string touches.
//!
//! `name` (relation names and PostgreSQL folding), `tables` (relations from a parsed statement),
//! `fallback` (token scan for what sqlparser rejects), `kind` (statement kinds), `analysis`
//! (putting them together per query string), `normalize` and `cache` (the analysis cache).
pub mod analysis;
pub mod cache;
pub(crate) mod fallback;
pub mod kind;
pub mod name;
pub(crate) mod normalize;
pub(crate) mod tables;

pub use analysis::{analyze_uncached, Analysis, StatementInfo};
pub use cache::AnalysisCache;
pub use kind::StatementKind;
pub use name::TableName;
