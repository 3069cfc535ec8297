//! bindproxy: a PostgreSQL-wire proxy that routes every statement to the database (bind) holding its
//! tables. See ARCHITECTURE.md for the map of modules and the path of a message.

pub mod admin;
pub mod backend;
pub mod catalog;
pub mod clients;
pub mod config;
pub mod error;
pub mod frontend;
pub mod metrics;
pub mod net;
pub mod pause;
pub mod protocol;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod router;
pub mod session;
pub mod shutdown;
pub mod sql;
pub mod translate;
pub mod tx;
