//! Authenticating a client against the `users:` of the configuration.
//!
//! Owns: trust (no `users:` configured), SCRAM-SHA-256 and MD5 password checks. On success it has
//! sent AuthenticationOk, the ParameterStatus set, BackendKeyData and ReadyForQuery: the session
//! starts right after.
//!
//! Must never: log or echo a password.

use bytes::BytesMut;
use futures::SinkExt;
use pgwire::messages::startup::Startup;
use tokio::io::AsyncWriteExt;

use super::startup::{ClientSocket, Greeting, StartupError};
use crate::config::UserConfig;
use crate::protocol::messages;

/// Checks the client's credentials and sends the greeting (AuthenticationOk … ReadyForQuery).
pub async fn authenticate(
    socket: &mut ClientSocket,
    _startup: &Startup,
    users: &[UserConfig],
    greeting: &Greeting,
) -> Result<(), StartupError> {
    if users.is_empty() {
        let mut out = BytesMut::new();
        out.extend_from_slice(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
        greeting.write_to(&mut out);
        socket
            .flush()
            .await
            .map_err(|e| StartupError::Io(e.to_string()))?;
        socket
            .get_mut()
            .write_all(&out)
            .await
            .map_err(|e| StartupError::Io(e.to_string()))?;
        return Ok(());
    }
    Err(StartupError::Fatal {
        code: "28000",
        message: "password authentication is not available yet".into(),
    })
}

impl Greeting {
    /// ParameterStatus*, BackendKeyData, ReadyForQuery.
    pub fn write_to(&self, out: &mut BytesMut) {
        for (k, v) in &self.params {
            messages::parameter_status(out, k, v);
        }
        messages::backend_key_data(out, self.pid, self.secret);
        messages::ready_for_query(out, b'I');
    }
}
