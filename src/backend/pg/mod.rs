//! PostgreSQL binds: raw backend connections ([`conn`]), TLS to the server as the URL's `sslmode`
//! says ([`tls`]), their pool ([`pool`]), and a bind's read replicas ([`replica`]).
//!
//! A PostgreSQL bind is a faithful relay: after startup, nothing here decodes what the backend sends;
//! the session moves its frames to the client unchanged.

pub mod conn;
pub mod pool;
pub mod replica;
pub mod tls;

pub use conn::PgConn;
pub use pool::{PgLease, PgPool};
pub use replica::ReplicaSet;
