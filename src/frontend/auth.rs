//! Authenticating a client against the `users:` of the configuration.
//!
//! Owns: trust (no `users:` configured), SCRAM-SHA-256 and MD5 password checks. On success it has
//! sent AuthenticationOk, the ParameterStatus set, BackendKeyData and ReadyForQuery: the session
//! starts right after.
//!
//! With users, pgwire's startup handlers (`SASLAuthStartupHandler` + `ScramAuth`, or
//! `Md5PasswordAuthStartupHandler`) run the exchange; this module feeds them the client's messages
//! and makes them send our greeting (a [`ServerParameterProvider`] with the session's parameters and
//! a [`PidSecretKeyGenerator`] with the session's cancel key), so the client sees exactly one
//! AuthenticationOk … ReadyForQuery.
//!
//! An unknown user gets the same exchange as a known one (a mock SCRAM verifier with a stable salt,
//! an MD5 challenge nothing can answer) and the same error, 28P01
//! `password authentication failed for user "x"`, as PostgreSQL does.
//!
//! Must never: log or echo a password.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use base64::Engine;
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use pgwire::api::auth::md5pass::{hash_md5_password, Md5PasswordAuthStartupHandler};
use pgwire::api::auth::sasl::scram::{
    gen_salted_password, ScramAuth, ScramSecret, SCRAM_ITERATIONS,
};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{SecretKey, Startup};
use pgwire::messages::PgWireFrontendMessage;
use tokio::io::AsyncWriteExt;

use super::startup::{ClientSocket, Greeting, StartupError};
use crate::config::{AuthMethod, UserConfig, UserSecret};
use crate::protocol::messages;

/// Checks the client's credentials and sends the greeting (AuthenticationOk … ReadyForQuery).
pub async fn authenticate(
    socket: &mut ClientSocket,
    startup: &Startup,
    users: &[UserConfig],
    method: AuthMethod,
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
    let user = startup.parameters.get("user").cloned().unwrap_or_default();
    // The protocol version was negotiated down to 3.0 by the caller: hand pgwire a 3.0 startup so
    // it neither negotiates again nor picks 3.2-sized cancel keys.
    let mut first = Startup::new();
    first.parameters = startup.parameters.clone();
    let params = Arc::new(GreetingParams(greeting.params.clone()));
    let key: Arc<dyn PidSecretKeyGenerator> = Arc::new(GreetingKey {
        pid: greeting.pid,
        secret: greeting.secret,
    });
    let source = Arc::new(UserSource {
        users: users.to_vec(),
    });
    let outcome = match method {
        AuthMethod::ScramSha256 => {
            let handler = SASLAuthStartupHandler::new(params)
                .with_scram(ScramAuth::new(source))
                .with_pid_secret_key_generator(key);
            drive(socket, &handler, first).await
        }
        AuthMethod::Md5 => {
            let handler = Md5PasswordAuthStartupHandler::new(source, params)
                .with_pid_secret_key_generator(key);
            drive(socket, &handler, first).await
        }
    };
    outcome.map_err(|e| match e {
        Drive::Closed => StartupError::Closed,
        Drive::Protocol(message) => StartupError::Fatal {
            code: "08P01",
            message,
        },
        Drive::Pg(PgWireError::IoError(e)) => StartupError::Io(e.to_string()),
        Drive::Pg(PgWireError::InvalidPassword(_)) => StartupError::Fatal {
            code: "28P01",
            message: format!("password authentication failed for user \"{user}\""),
        },
        Drive::Pg(e) => StartupError::Fatal {
            code: "08P01",
            message: format!("malformed authentication message: {e}"),
        },
    })
}

enum Drive {
    Closed,
    Protocol(String),
    Pg(PgWireError),
}

impl From<PgWireError> for Drive {
    fn from(e: PgWireError) -> Self {
        Drive::Pg(e)
    }
}

/// Runs a pgwire startup handler: the startup packet, then the client's password messages until
/// the handler has sent ReadyForQuery.
async fn drive<H: StartupHandler>(
    socket: &mut ClientSocket,
    handler: &H,
    first: Startup,
) -> Result<(), Drive> {
    handler
        .on_startup(socket, PgWireFrontendMessage::Startup(first))
        .await?;
    while !matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
        match socket.next().await {
            None | Some(Ok(PgWireFrontendMessage::Terminate(_))) => return Err(Drive::Closed),
            Some(Err(PgWireError::IoError(e))) => return Err(Drive::Pg(PgWireError::IoError(e))),
            Some(Err(e)) => return Err(Drive::Protocol(format!("invalid message: {e}"))),
            Some(Ok(m @ PgWireFrontendMessage::PasswordMessageFamily(_))) => {
                handler.on_startup(socket, m).await?
            }
            Some(Ok(_)) => {
                return Err(Drive::Protocol(
                    "expected a password response during authentication".into(),
                ))
            }
        }
    }
    Ok(())
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

/// The session's ParameterStatus set, sent by pgwire after AuthenticationOk.
struct GreetingParams(Vec<(String, String)>);

impl ServerParameterProvider for GreetingParams {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.iter().cloned().collect())
    }
}

/// The session's cancel key, sent by pgwire as BackendKeyData.
struct GreetingKey {
    pid: i32,
    secret: i32,
}

impl PidSecretKeyGenerator for GreetingKey {
    fn generate(&self, _client: &dyn ClientInfo) -> (i32, SecretKey) {
        (self.pid, SecretKey::I32(self.secret))
    }
}

/// A parsed `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
#[derive(Clone)]
pub struct ScramVerifier {
    pub iterations: usize,
    pub salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    fn secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }

    /// The verifier PostgreSQL would store for `password` with this salt and iteration count.
    fn derive(password: &str, salt: Vec<u8>, iterations: usize) -> ScramVerifier {
        let salted = gen_salted_password(password, &salt, iterations);
        match ScramSecret::verifier_from_salted_password(salt.clone(), salted, iterations) {
            ScramSecret::Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            } => ScramVerifier {
                iterations,
                salt,
                stored_key,
                server_key,
            },
            // verifier_from_salted_password always builds a Verifier; never accept anything.
            ScramSecret::SaltedPassword { .. } => ScramVerifier::mock(""),
        }
    }

    /// A verifier no proof matches, with a salt that is stable per user name within the process,
    /// so probing cannot tell an unknown user from a known one.
    fn mock(user: &str) -> ScramVerifier {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        let state = KEY.get_or_init(RandomState::new);
        let mut salt = Vec::with_capacity(16);
        for i in 0u8..2 {
            salt.extend_from_slice(&state.hash_one((user, i)).to_be_bytes());
        }
        ScramVerifier {
            iterations: SCRAM_ITERATIONS,
            salt,
            stored_key: rand::random::<[u8; 32]>().to_vec(),
            server_key: rand::random::<[u8; 32]>().to_vec(),
        }
    }
}

/// Parses a SCRAM-SHA-256 verifier as stored in `pg_authid.rolpassword`. The error never contains
/// the verifier.
pub fn parse_scram_verifier(v: &str) -> Result<ScramVerifier, String> {
    const SHAPE: &str = "must look like SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>";
    let b64 = base64::engine::general_purpose::STANDARD;
    let rest = v
        .strip_prefix("SCRAM-SHA-256$")
        .ok_or_else(|| SHAPE.to_string())?;
    let (iter_salt, keys) = rest.split_once('$').ok_or_else(|| SHAPE.to_string())?;
    let (iterations, salt) = iter_salt.split_once(':').ok_or_else(|| SHAPE.to_string())?;
    let (stored, server) = keys.split_once(':').ok_or_else(|| SHAPE.to_string())?;
    let iterations: usize = iterations
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{SHAPE}: the iteration count is not a positive number"))?;
    let salt = b64
        .decode(salt)
        .map_err(|_| format!("{SHAPE}: the salt is not base64"))?;
    let stored_key = b64
        .decode(stored)
        .map_err(|_| format!("{SHAPE}: StoredKey is not base64"))?;
    let server_key = b64
        .decode(server)
        .map_err(|_| format!("{SHAPE}: ServerKey is not base64"))?;
    if salt.is_empty() || stored_key.len() != 32 || server_key.len() != 32 {
        return Err(format!(
            "{SHAPE}: the salt must not be empty and both keys must be 32 bytes (SHA-256)"
        ));
    }
    Ok(ScramVerifier {
        iterations,
        salt,
        stored_key,
        server_key,
    })
}

/// The configured users, as pgwire's credential source.
#[derive(Debug)]
struct UserSource {
    users: Vec<UserConfig>,
}

impl UserSource {
    fn find(&self, login: &LoginInfo) -> Option<&UserConfig> {
        let name = login.user()?;
        self.users.iter().find(|u| u.name == name)
    }
}

/// Verifiers derived from `password_env` passwords, computed once per process (PBKDF2 with 4096
/// iterations is too slow to repeat for every connection). Keyed by name and password, so a
/// reloaded configuration with a new password derives a new one.
fn password_verifier(name: &str, password: &str) -> ScramVerifier {
    type Cache = Mutex<HashMap<(String, String), ScramVerifier>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (name.to_owned(), password.to_owned());
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return v;
    }
    let v = ScramVerifier::derive(
        password,
        rand::random::<[u8; 16]>().to_vec(),
        SCRAM_ITERATIONS,
    );
    if let Ok(mut c) = cache.lock() {
        c.entry(key).or_insert_with(|| v.clone());
    }
    v
}

#[async_trait]
impl AuthSource for UserSource {
    /// MD5: the expected response to a fresh random salt.
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt = rand::random::<[u8; 4]>().to_vec();
        let expected = match self.find(login).map(|u| &u.secret) {
            Some(UserSecret::Password(p)) => {
                hash_md5_password(login.user().unwrap_or_default(), p, &salt).into_bytes()
            }
            // A password message cannot contain NUL: nothing matches this.
            _ => vec![0],
        };
        Ok(Password::new(Some(salt), expected))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let verifier = match self.find(login) {
            Some(u) => match &u.secret {
                UserSecret::ScramVerifier(v) => {
                    parse_scram_verifier(v).unwrap_or_else(|_| ScramVerifier::mock(&u.name))
                }
                UserSecret::Password(p) => password_verifier(&u.name, p),
            },
            None => ScramVerifier::mock(login.user().unwrap_or_default()),
        };
        Ok((verifier.secret(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_postgres_verifier() {
        let v = ScramVerifier::derive("pw", b"0123456789abcdef".to_vec(), 4096);
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            v.iterations,
            b64.encode(&v.salt),
            b64.encode(&v.stored_key),
            b64.encode(&v.server_key)
        );
        let p = parse_scram_verifier(&text).expect("parses");
        assert_eq!(p.iterations, 4096);
        assert_eq!(p.salt, v.salt);
        assert_eq!(p.stored_key, v.stored_key);
        assert_eq!(p.server_key, v.server_key);
        for bad in [
            "SCRAM-SHA-256$x:c2FsdA==$a:b",
            "SCRAM-SHA-256$4096:c2FsdA==",
            "md5abc",
            "SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:c2FsdA==",
        ] {
            let e = parse_scram_verifier(bad).expect_err(bad);
            assert!(!e.contains("c2FsdA"), "{e}");
        }
    }

    #[test]
    fn mock_salt_is_stable_per_user() {
        assert_eq!(ScramVerifier::mock("a").salt, ScramVerifier::mock("a").salt);
        assert_ne!(ScramVerifier::mock("a").salt, ScramVerifier::mock("b").salt);
    }
}
