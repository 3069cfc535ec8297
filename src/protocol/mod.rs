//! The PostgreSQL wire format after startup: framing and the few messages bindproxy reads or writes itself.
//!
//! Owns: splitting a byte stream into whole messages ([`frame`]), decoding the frontend messages the
//! session must look inside (Parse, Bind, Describe, Execute, Close), and encoding the backend messages
//! bindproxy writes on its own (errors, ReadyForQuery, results of MySQL/SQLite binds) ([`messages`]).
//!
//! Must never: decode a message it only relays. Backend messages of a PostgreSQL bind travel as
//! [`Frame`]s, byte for byte.

pub mod frame;
pub mod messages;

pub use frame::{Frame, FrameError, FrameReader};
