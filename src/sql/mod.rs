//! SQL analysis: which relations each statement of a query string touches.
pub mod name;
pub(crate) mod tables;
