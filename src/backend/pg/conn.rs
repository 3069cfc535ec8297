//! One raw connection to a PostgreSQL server: startup and authentication, then a pipe of frames.
//!
//! Owns: the SSLRequest and TLS handshake when the bind's `sslmode` asks for them (the attempts
//! and the certificate checks are `tls.rs`'s), the startup packet, password/MD5/SCRAM-SHA-256
//! authentication, the server's
//! ParameterStatus values and BackendKeyData (for cancelling), and the transaction status seen in the
//! last ReadyForQuery.
//!
//! Must never: interpret result messages. The session relays them. (The one exception is
//! [`PgConn::query_text`], bindproxy's own control queries on a connection no client uses.)

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::Attempts;
use crate::config::PgTarget;
use crate::net::{Encryption, ReadHalf, Stream, WriteHalf};
use crate::protocol::messages::error_code_and_severity;
use crate::protocol::{Frame, FrameError, FrameReader};

/// Largest message accepted from a backend (PostgreSQL's own limit on a row is 1 GB).
const MAX_BACKEND_MESSAGE: usize = 1 << 30;

/// A backend connection after a successful startup.
pub struct PgConn {
    pub reader: FrameReader<ReadHalf>,
    pub writer: WriteHalf,
    /// Bytes waiting to be written to the backend.
    pub wbuf: BytesMut,
    pub addr: SocketAddr,
    /// BackendKeyData: what a CancelRequest for this connection must carry.
    pub backend_pid: i32,
    pub backend_secret: Vec<u8>,
    /// ParameterStatus values sent at startup.
    pub params: Vec<(String, String)>,
    /// Transaction status from the last ReadyForQuery: b'I', b'T' or b'E'.
    pub status: u8,
    /// Whether the connection to the server is encrypted.
    pub encryption: Encryption,
}

/// What one connection attempt does about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Try {
    Plain,
    /// SSLRequest; plaintext on the same connection if the server answers 'N'.
    TlsIfOffered,
    /// SSLRequest; the server must answer 'S'.
    Tls,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("server refused the connection: {0}")]
    Refused(String),
    #[error("unsupported authentication request {0} from the server")]
    UnsupportedAuth(i32),
    #[error("the server needs a password and the bind's URL has none")]
    NoPassword,
    #[error("timed out")]
    Timeout,
    #[error("unexpected message '{0}' during startup")]
    Unexpected(char),
    #[error("server does not support SSL, but sslmode={0} was given")]
    TlsRefused(&'static str),
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS: the server answered the SSLRequest with '{0}'")]
    BadTlsAnswer(char),
}

/// SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Writes a whole message and flushes it (a TLS record may wait in the TLS layer otherwise).
async fn send(writer: &mut WriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

impl PgConn {
    /// Opens a connection and completes startup, with or without TLS as the bind's `sslmode`
    /// says (libpq's attempts and fallbacks, see `tls.rs`). `extra` startup parameters are sent
    /// as given.
    pub async fn connect(
        target: &PgTarget,
        extra: &[(String, String)],
    ) -> Result<PgConn, ConnectError> {
        match target.tls.attempts() {
            Attempts::Plain => Self::attempt(target, extra, Try::Plain).await,
            Attempts::TlsOnly => Self::attempt(target, extra, Try::Tls).await,
            Attempts::PlainThenTls => match Self::attempt(target, extra, Try::Plain).await {
                Err(ConnectError::Refused(_)) => Self::attempt(target, extra, Try::Tls).await,
                other => other,
            },
            Attempts::TlsThenPlain => match Self::attempt(target, extra, Try::TlsIfOffered).await {
                Err(ConnectError::Handshake(_) | ConnectError::BadTlsAnswer(_)) => {
                    Self::attempt(target, extra, Try::Plain).await
                }
                other => other,
            },
        }
    }

    /// Opens the TCP connection and negotiates TLS as `how` says.
    async fn open(target: &PgTarget, how: Try) -> Result<(Stream, SocketAddr), ConnectError> {
        let mut tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        tcp.set_nodelay(true)?;
        let addr = tcp.peer_addr()?;
        let connector = match (how, target.tls.connector()) {
            (Try::Plain, _) | (_, None) => return Ok((Stream::Plain(tcp), addr)),
            (_, Some(c)) => c,
        };
        tcp.write_all(&SSL_REQUEST).await?;
        // Exactly one byte: anything after it belongs to the handshake.
        let answer = tcp.read_u8().await?;
        match (answer, how) {
            (b'S', _) => {}
            (b'N', Try::TlsIfOffered) => return Ok((Stream::Plain(tcp), addr)),
            (b'N', _) => return Err(ConnectError::TlsRefused(target.tls.mode.as_str())),
            (other, _) => return Err(ConnectError::BadTlsAnswer(other as char)),
        }
        let name = rustls_pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
            ConnectError::Handshake(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("host {:?} is not a valid TLS server name: {e}", target.host),
            ))
        })?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Handshake)?;
        Ok((
            Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls))),
            addr,
        ))
    }

    /// One connection attempt: TCP, TLS as `how` says, startup, authentication.
    async fn attempt(
        target: &PgTarget,
        extra: &[(String, String)],
        how: Try,
    ) -> Result<PgConn, ConnectError> {
        let (stream, addr) = Self::open(target, how).await?;
        let encryption = stream.encryption();
        let (rd, mut writer) = stream.into_split();
        let mut reader =
            FrameReader::new(rd, BytesMut::with_capacity(16 * 1024), MAX_BACKEND_MESSAGE);

        let mut startup = BytesMut::new();
        startup.put_u32(0);
        startup.put_i32(196_608); // protocol 3.0
        let mut put = |k: &str, v: &str| {
            startup.put_slice(k.as_bytes());
            startup.put_u8(0);
            startup.put_slice(v.as_bytes());
            startup.put_u8(0);
        };
        put("user", &target.user);
        put("database", &target.database);
        put("client_encoding", "UTF8");
        for (k, v) in target.params.iter().chain(extra) {
            put(k, v);
        }
        startup.put_u8(0);
        let len = startup.len() as u32;
        startup[..4].copy_from_slice(&len.to_be_bytes());
        send(&mut writer, &startup).await?;

        let mut scram: Option<ScramSha256> = None;
        let mut conn_params = Vec::new();
        let (mut pid, mut secret) = (0, Vec::new());
        loop {
            let frame = reader.next().await?.ok_or(FrameError::Truncated)?;
            let body = frame.body();
            match frame.tag() {
                b'R' => {
                    let kind = read_i32(body);
                    match kind {
                        0 => {}
                        3 => {
                            let pw = target.password.as_deref().ok_or(ConnectError::NoPassword)?;
                            let mut m = pw.as_bytes().to_vec();
                            m.push(0);
                            send(&mut writer, Frame::new(b'p', &m).raw()).await?;
                        }
                        5 => {
                            let pw = target.password.as_deref().ok_or(ConnectError::NoPassword)?;
                            let salt = body.get(4..8).ok_or(ConnectError::Unexpected('R'))?;
                            let hash = postgres_protocol::authentication::md5_hash(
                                target.user.as_bytes(),
                                pw.as_bytes(),
                                [salt[0], salt[1], salt[2], salt[3]],
                            );
                            let mut m = hash.into_bytes();
                            m.push(0);
                            send(&mut writer, Frame::new(b'p', &m).raw()).await?;
                        }
                        10 => {
                            let pw = target.password.as_deref().ok_or(ConnectError::NoPassword)?;
                            let s = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                            let mut m = BytesMut::new();
                            m.put_slice(SCRAM_SHA_256.as_bytes());
                            m.put_u8(0);
                            m.put_i32(s.message().len() as i32);
                            m.put_slice(s.message());
                            send(&mut writer, Frame::new(b'p', &m).raw()).await?;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().ok_or(ConnectError::Unexpected('R'))?;
                            s.update(&body[4..])?;
                            send(&mut writer, Frame::new(b'p', s.message()).raw()).await?;
                        }
                        12 => {
                            let s = scram.as_mut().ok_or(ConnectError::Unexpected('R'))?;
                            s.finish(&body[4..])?;
                        }
                        other => return Err(ConnectError::UnsupportedAuth(other)),
                    }
                }
                b'S' => {
                    let mut parts = body.split(|&b| b == 0);
                    let k = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    let v = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    conn_params.push((k, v));
                }
                b'K' => {
                    pid = read_i32(body);
                    secret = body.get(4..).unwrap_or_default().to_vec();
                }
                b'N' | b'v' => {}
                b'E' => return Err(ConnectError::Refused(error_message(body))),
                b'Z' => {
                    return Ok(PgConn {
                        reader,
                        writer,
                        wbuf: BytesMut::with_capacity(4096),
                        addr,
                        backend_pid: pid,
                        backend_secret: secret,
                        params: conn_params,
                        status: body.first().copied().unwrap_or(b'I'),
                        encryption,
                    })
                }
                other => return Err(ConnectError::Unexpected(other as char)),
            }
        }
    }

    /// Writes out everything queued in `wbuf`.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.writer.write_all(&self.wbuf).await?;
            self.writer.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Closes the connection politely (Terminate, then the socket), in its own task: the server
    /// logs no "unexpected EOF". For a connection that will not be used again.
    pub fn terminate(mut self) {
        tokio::spawn(async move {
            let bye = async {
                self.writer.write_all(Frame::new(b'X', b"").raw()).await?;
                self.writer.shutdown().await
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bye).await;
        });
    }

    /// True when the idle connection has been closed by the server (or sent something unasked,
    /// such as a FATAL on shutdown). Never blocks.
    pub fn is_stale(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Pending: nothing to read (a partial TLS record stays in the TLS layer); anything else
        // (bytes, end of stream, an error) means the connection cannot be used.
        !self.reader.poll_fill(&mut cx).is_pending()
    }

    /// Runs simple queries, one Query message each (pipelined), and waits for every
    /// ReadyForQuery, discarding the results. Returns the first error's message, if any. For
    /// control work only (returning to the pool).
    pub async fn run_quiet(&mut self, queries: &[&str]) -> Result<Option<String>, ConnectError> {
        for sql in queries {
            let mut q = sql.as_bytes().to_vec();
            q.push(0);
            self.wbuf.extend_from_slice(Frame::new(b'Q', &q).raw());
        }
        self.flush().await?;
        let mut err = None;
        let mut ready_due = queries.len();
        while ready_due > 0 {
            let f = self.reader.next().await?.ok_or(FrameError::Truncated)?;
            match f.tag() {
                b'E' if err.is_none() => err = Some(error_message(f.body())),
                b'Z' => {
                    self.status = f.body().first().copied().unwrap_or(b'I');
                    ready_due -= 1;
                }
                _ => {}
            }
        }
        Ok(err)
    }

    /// Runs one simple query of bindproxy's own (control work: `SHOW`, `pg_prepared_xacts`) and
    /// returns its rows as text (NULL as None), or the server's error message. Never used on a
    /// connection that carries a client's statements.
    pub async fn query_text(
        &mut self,
        sql: &str,
    ) -> Result<Result<Vec<Vec<Option<String>>>, String>, ConnectError> {
        let mut q = sql.as_bytes().to_vec();
        q.push(0);
        self.wbuf.extend_from_slice(Frame::new(b'Q', &q).raw());
        self.flush().await?;
        let mut rows = Vec::new();
        let mut err = None;
        loop {
            let f = self.reader.next().await?.ok_or(FrameError::Truncated)?;
            match f.tag() {
                b'D' if err.is_none() => {
                    rows.push(data_row(f.body()).ok_or(ConnectError::Unexpected('D'))?)
                }
                b'E' if err.is_none() => err = Some(error_message(f.body())),
                b'Z' => {
                    self.status = f.body().first().copied().unwrap_or(b'I');
                    return Ok(match err {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    });
                }
                _ => {}
            }
        }
    }

    /// Sends a CancelRequest for whatever this connection is running.
    pub async fn cancel(addr: SocketAddr, pid: i32, secret: &[u8]) -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr).await?;
        let mut m = BytesMut::new();
        m.put_u32(12 + secret.len() as u32);
        m.put_i32(80_877_102);
        m.put_i32(pid);
        m.put_slice(secret);
        s.write_all(&m).await?;
        // The server closes the socket when done; wait for that so the cancel is delivered.
        let mut buf = [0u8; 16];
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await;
        Ok(())
    }
}

fn read_i32(body: &[u8]) -> i32 {
    body.get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-1)
}

/// The fields of a DataRow as text (text format); None when the message is malformed.
/// The columns of a DataRow body, as text (None: NULL).
pub(crate) fn data_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut at = 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = read_i32(body.get(at..at + 4)?);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = at.checked_add(len as usize)?;
        out.push(Some(
            String::from_utf8_lossy(body.get(at..end)?).into_owned(),
        ));
        at = end;
    }
    Some(out)
}

/// The human-readable message ('M') of an ErrorResponse, with its SQLSTATE.
pub fn error_message(body: &[u8]) -> String {
    let (code, _) = error_code_and_severity(body);
    let mut msg = String::new();
    for field in body.split(|&b| b == 0) {
        if let Some((&b'M', rest)) = field.split_first() {
            msg = String::from_utf8_lossy(rest).into_owned();
        }
    }
    match code {
        Some(c) => format!("{msg} (SQLSTATE {c})"),
        None => msg,
    }
}
