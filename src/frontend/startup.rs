//! The startup phase of a client connection, up to the first ReadyForQuery.
//!
//! Owns: the encryption negotiation (through [`super::tls`]: TLS when `tls:` is configured, else
//! 'N'; `tls.mode: require` refuses a plaintext startup packet), reading the startup packet or a
//! CancelRequest with pgwire's codec, protocol version negotiation (3.0; newer minors are
//! negotiated down), the checks PostgreSQL makes on a startup packet (user present, UTF8
//! client_encoding, no replication), and handing the stream (plain or TLS) to the session.
//!
//! Must never: block other clients; a slow or broken client only times out itself.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::PgWireFrontendMessage;
use pgwire::tokio::server::{MaybeTls, PgWireMessageServerCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::tls::{self, NegotiateError, Negotiated, ServerTls, TlsMode};
use crate::config::{AuthMethod, UserConfig};
use crate::net::{Encryption, Stream};
use crate::protocol::messages::{error_response, ErrorFields};

/// The client socket during startup: pgwire's codec over the stream (plain or TLS).
pub type ClientSocket = Framed<MaybeTls, PgWireMessageServerCodec<()>>;

/// How long a client may take to finish startup.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the session sends a client after authentication.
pub struct Greeting {
    pub params: Vec<(String, String)>,
    pub pid: i32,
    pub secret: i32,
}

/// A client that has completed startup.
pub struct ClientHello {
    pub stream: Stream,
    /// Bytes the client sent after its startup packet (pipelined queries).
    pub read_buf: BytesMut,
    pub user: String,
    pub database: String,
    /// Every startup parameter except user and database, in the order received.
    pub params: Vec<(String, String)>,
}

/// The first message of a connection.
pub enum Opening {
    Cancel {
        pid: i32,
        secret: i32,
    },
    Startup(
        Box<(
            ClientSocket,
            BTreeMap<String, String>,
            pgwire::messages::startup::Startup,
        )>,
    ),
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{message}")]
    Fatal { code: &'static str, message: String },
    #[error("i/o: {0}")]
    Io(String),
    #[error("{0}")]
    Encryption(#[from] NegotiateError),
    #[error("client closed the connection during startup")]
    Closed,
}

/// Reads the opening message: a startup packet or a CancelRequest, after the encryption
/// negotiation (SSLRequest, GSSENCRequest, direct TLS: see [`super::tls`]).
pub async fn open(stream: TcpStream, tls: Option<&ServerTls>) -> Result<Opening, StartupError> {
    let fut = async {
        let addr = stream
            .peer_addr()
            .map_err(|e| StartupError::Io(e.to_string()))?;
        let (io, head, encryption) = match tls::negotiate(stream, tls).await? {
            Negotiated::Plain { stream, head } => {
                (MaybeTls::Plain(stream), head, Encryption::Plain)
            }
            Negotiated::Tls(s) => (MaybeTls::Tls(s), BytesMut::new(), Encryption::Tls),
        };
        let client = DefaultClient::new(addr, encryption == Encryption::Tls);
        let mut parts = FramedParts::new(io, PgWireMessageServerCodec::new(client));
        parts.read_buf = head;
        let mut socket: ClientSocket = Framed::from_parts(parts);
        socket.set_state(PgWireConnectionState::AwaitingStartup);
        match socket.next().await {
            None => Err(StartupError::Closed),
            Some(Err(e)) => {
                let err = StartupError::Fatal {
                    code: "08P01",
                    message: format!("invalid startup packet: {e}"),
                };
                let _ = send_fatal(&mut socket, &err).await;
                Err(err)
            }
            Some(Ok(PgWireFrontendMessage::CancelRequest(c))) => Ok(Opening::Cancel {
                pid: c.pid,
                secret: match c.secret_key {
                    SecretKey::I32(s) => s,
                    SecretKey::Bytes(b) if b.len() == 4 => {
                        i32::from_be_bytes([b[0], b[1], b[2], b[3]])
                    }
                    SecretKey::Bytes(_) => 0,
                },
            }),
            Some(Ok(PgWireFrontendMessage::Startup(_)))
                if encryption == Encryption::Plain
                    && tls.is_some_and(|t| t.mode == TlsMode::Require) =>
            {
                let err = StartupError::Fatal {
                    code: "28000",
                    message: "TLS is required: bindproxy refuses unencrypted connections (tls.mode: require); connect with sslmode=require".into(),
                };
                let _ = send_fatal(&mut socket, &err).await;
                Err(err)
            }
            Some(Ok(PgWireFrontendMessage::Startup(s))) => {
                let params = s.parameters.clone();
                Ok(Opening::Startup(Box::new((socket, params, s))))
            }
            Some(Ok(_)) => {
                let err = StartupError::Fatal {
                    code: "08P01",
                    message: "expected a startup packet".into(),
                };
                let _ = send_fatal(&mut socket, &err).await;
                Err(err)
            }
        }
    };
    tokio::time::timeout(STARTUP_TIMEOUT, fut)
        .await
        .map_err(|_| StartupError::Io("startup timed out".into()))?
}

/// Checks the startup packet, authenticates, greets, and hands over the raw socket.
pub async fn accept(
    mut socket: ClientSocket,
    params: BTreeMap<String, String>,
    startup: pgwire::messages::startup::Startup,
    users: &[UserConfig],
    auth_method: AuthMethod,
    greeting: impl FnOnce(&ClientHelloInfo) -> Greeting,
) -> Result<ClientHello, StartupError> {
    let result = async {
        check_startup(&startup, &params)?;
        if startup.protocol_number_minor > 0 {
            negotiate_down(&mut socket, &params).await?;
        }
        let info = ClientHelloInfo {
            user: params.get("user").cloned().unwrap_or_default(),
            database: params
                .get("database")
                .cloned()
                .unwrap_or_else(|| params.get("user").cloned().unwrap_or_default()),
            params: params
                .iter()
                .filter(|(k, _)| {
                    k.as_str() != "user" && k.as_str() != "database" && !k.starts_with("_pq_.")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let g = greeting(&info);
        tokio::time::timeout(
            STARTUP_TIMEOUT,
            super::auth::authenticate(&mut socket, &startup, users, auth_method, &g),
        )
        .await
        .map_err(|_| StartupError::Io("authentication timed out".into()))??;
        Ok(info)
    }
    .await;
    match result {
        Ok(info) => {
            let parts = socket.into_parts();
            let stream = match parts.io {
                MaybeTls::Plain(s) => Stream::Plain(s),
                MaybeTls::Tls(s) => Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(*s))),
                _ => {
                    return Err(StartupError::Io("unexpected stream kind".into()));
                }
            };
            Ok(ClientHello {
                stream,
                read_buf: parts.read_buf,
                user: info.user,
                database: info.database,
                params: info.params,
            })
        }
        Err(e) => {
            let _ = send_fatal(&mut socket, &e).await;
            Err(e)
        }
    }
}

/// Refuses a client past `max_client_conn`, as PostgreSQL refuses one past `max_connections`
/// (FATAL 53300), after its startup packet.
pub async fn refuse_too_many(mut socket: ClientSocket, max: usize) -> StartupError {
    let err = StartupError::Fatal {
        code: "53300",
        message: format!("sorry, too many clients already (max_client_conn is {max})"),
    };
    let _ = tokio::time::timeout(STARTUP_TIMEOUT, send_fatal(&mut socket, &err)).await;
    err
}

/// What is known of a client when its greeting is built.
pub struct ClientHelloInfo {
    pub user: String,
    pub database: String,
    pub params: Vec<(String, String)>,
}

fn check_startup(
    startup: &pgwire::messages::startup::Startup,
    params: &BTreeMap<String, String>,
) -> Result<(), StartupError> {
    if startup.protocol_number_major != 3 {
        return Err(StartupError::Fatal {
            code: "0A000",
            message: format!(
                "unsupported frontend protocol {}.{}: server supports 3.0",
                startup.protocol_number_major, startup.protocol_number_minor
            ),
        });
    }
    if params.get("user").is_none_or(|u| u.is_empty()) {
        return Err(StartupError::Fatal {
            code: "28000",
            message: "no PostgreSQL user name specified in startup packet".into(),
        });
    }
    if let Some(r) = params.get("replication") {
        if !matches!(
            r.to_ascii_lowercase().as_str(),
            "false" | "off" | "no" | "0"
        ) {
            return Err(StartupError::Fatal {
                code: "0A000",
                message: "replication connections are not supported by bindproxy".into(),
            });
        }
    }
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, value) in crate::session::params::client_settings(&pairs) {
        if name == "standard_conforming_strings"
            && crate::sql::settings::check_escape_strings(&value).is_err()
        {
            return Err(StartupError::Fatal {
                code: "0A000",
                message: format!(
                    "{}: bindproxy reads every statement with standard_conforming_strings on",
                    crate::sql::AnalysisError::EscapeStringsOff
                ),
            });
        }
    }
    if let Some(enc) = params.get("client_encoding") {
        let e = enc.to_ascii_uppercase().replace(['-', '_', '\''], "");
        if e != "UTF8" && e != "UNICODE" {
            return Err(StartupError::Fatal {
                code: "22023",
                message: format!(
                    "client_encoding \"{enc}\" is not supported: bindproxy requires UTF8"
                ),
            });
        }
    }
    Ok(())
}

/// NegotiateProtocolVersion: we speak 3.0, and no `_pq_.` options.
async fn negotiate_down(
    socket: &mut ClientSocket,
    params: &BTreeMap<String, String>,
) -> Result<(), StartupError> {
    let options: Vec<&String> = params.keys().filter(|k| k.starts_with("_pq_.")).collect();
    let mut body = BytesMut::new();
    body.put_i32(196_608);
    body.put_i32(options.len() as i32);
    for o in options {
        body.put_slice(o.as_bytes());
        body.put_u8(0);
    }
    let frame = crate::protocol::Frame::new(b'v', &body);
    let io = socket.get_mut();
    io.write_all(frame.raw())
        .await
        .map_err(|e| StartupError::Io(e.to_string()))?;
    io.flush()
        .await
        .map_err(|e| StartupError::Io(e.to_string()))
}

async fn send_fatal(socket: &mut ClientSocket, err: &StartupError) -> std::io::Result<()> {
    if let StartupError::Fatal { code, message } = err {
        let mut out = BytesMut::new();
        error_response(
            &mut out,
            &ErrorFields {
                severity: "FATAL",
                code,
                message,
                detail: None,
                hint: None,
            },
        );
        let io = socket.get_mut();
        io.write_all(&out).await?;
        io.flush().await?;
    }
    Ok(())
}
