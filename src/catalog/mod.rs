//! One catalog over every bind: what psql's `\d`, ORMs' reflection, migration tools and pg_dump
//! see.
//!
//! Owns: the catalog model of every bind's tables (`model`), reading it from each engine, rendering
//! it as PostgreSQL DDL, keeping the shadow catalog database in step with the binds, and answering
//! catalog queries when no PostgreSQL server is configured.
//!
//! Must never: route a user statement (the router decides; the catalog only informs it), or write
//! to a bind's own database.

pub mod ddl;
pub mod embedded;
pub mod model;
pub mod read;
pub mod shadow;
