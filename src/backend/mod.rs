//! Backends that bindproxy speaks to itself rather than relaying bytes.
//!
//! Owns: [`translated`], the MySQL/MariaDB and SQLite binds that must look like PostgreSQL.

pub mod translated;
