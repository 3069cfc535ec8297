//! The client side of a connection before the session starts: accepting sockets ([`listener`]),
//! TLS ([`tls`]), the startup packet and authentication ([`startup`], [`auth`]), and routing
//! CancelRequests to the session they name ([`cancel`]).

pub mod auth;
pub mod cancel;
pub mod listener;
pub mod logsafe;
pub mod startup;
pub mod tls;
