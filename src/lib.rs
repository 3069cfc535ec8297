//! bindproxy: a PostgreSQL-wire proxy that routes every statement to the database (bind) holding its tables.
pub mod translate;
