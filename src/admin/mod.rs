//! bindproxy's administration surface: the admin console on database `bindproxy` ([`console`]),
//! the HTTP listener of `admin_http` ([`http`]: `/healthz`,
//! `/readyz`, `/metrics`), the readiness of the binds behind `/readyz` ([`ready`]) and the probe
//! `bindproxy ready` sends to it ([`probe`]).
//!
//! Owns: everything an operator or an orchestrator asks the daemon about itself. Must never: touch
//! a client's session (the console only sets flags sessions look at), or let a probe reach the databases more than once a second.

pub mod console;
pub mod http;
pub mod probe;
pub mod ready;

pub use http::{serve, Admin};
