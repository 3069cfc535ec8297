//! TLS between clients and bindproxy: the server certificate, and the encryption negotiation that
//! opens every client connection.
//!
//! Owns: loading `tls.cert`/`tls.key` (PEM, through rustls-pki-types' `PemObject`) into a rustls
//! server configuration (TLS 1.2 and 1.3, ALPN `postgresql`), and the negotiation PostgreSQL clients
//! start with: SSLRequest ('S' with `tls:` configured, else 'N'), GSSENCRequest (always 'N'), and
//! PostgreSQL 17's direct TLS (the connection opens with a TLS ClientHello; the client must offer
//! ALPN `postgresql`). A client that offers ALPN after an SSLRequest must offer `postgresql` too
//! (rustls refuses the handshake otherwise).
//!
//! Must never: read past an SSLRequest before the handshake. Bytes sent after it in plaintext would
//! otherwise be taken as if they had come encrypted (CVE-2021-23214); every negotiation message is
//! read with exactly its 8 bytes, so whatever follows 'S' goes to the TLS handshake.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol name of PostgreSQL (`postgresql`), as PostgreSQL 17 sends and requires.
pub const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// SSLRequest and GSSENCRequest codes (the second word of an 8-byte message).
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;

/// The first byte of a TLS handshake record: a connection opened with direct TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// `tls.mode`: whether clients may still connect without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS for clients that ask for it; plaintext clients are served too.
    #[default]
    Prefer,
    /// A client that does not use TLS is refused (FATAL 28000) once it sends its startup packet.
    /// CancelRequests are accepted in plaintext (libpq sends them so).
    Require,
}

/// The server side of TLS, loaded once at start.
#[derive(Clone)]
pub struct ServerTls {
    pub mode: TlsMode,
    pub cert: PathBuf,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("mode", &self.mode)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// Why the certificate or key could not be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{}: cannot read a PEM certificate: {err}", path.display())]
    Cert {
        path: PathBuf,
        err: rustls_pki_types::pem::Error,
    },
    #[error("{}: no certificate in the file", path.display())]
    NoCert { path: PathBuf },
    #[error("{}: cannot read a PEM private key: {err}", path.display())]
    Key {
        path: PathBuf,
        err: rustls_pki_types::pem::Error,
    },
    #[error("{} with {}: {err}", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        err: rustls::Error,
    },
}

impl TlsSetupError {
    /// The configuration key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsSetupError::Cert { .. } | TlsSetupError::NoCert { .. } => "tls.cert",
            TlsSetupError::Key { .. } => "tls.key",
            TlsSetupError::Rejected { .. } => "tls",
        }
    }
}

/// Reads every certificate of a PEM file (a chain: leaf first).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsSetupError::Cert {
            path: path.to_owned(),
            err,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCert {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| TlsSetupError::Key {
        path: path.to_owned(),
        err,
    })
}

/// The crypto provider of every TLS configuration of bindproxy (ring, as pgwire and mysql_async use).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTls {
    /// Loads the certificate chain and key; refuses a key that does not match the certificate.
    pub fn load(cert: &Path, key: &Path, mode: TlsMode) -> Result<ServerTls, TlsSetupError> {
        let chain = read_certs(cert)?;
        let private = read_key(key)?;
        let rejected = |err| TlsSetupError::Rejected {
            cert: cert.to_owned(),
            key: key.to_owned(),
            err,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(rejected)?;
        config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
        Ok(ServerTls {
            mode,
            cert: cert.to_owned(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// A connection after the encryption negotiation.
pub enum Negotiated {
    /// No TLS. `head` holds the bytes already read of the first message (startup or cancel).
    Plain {
        stream: TcpStream,
        head: BytesMut,
    },
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

#[derive(Debug, thiserror::Error)]
pub enum NegotiateError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("direct TLS connection, but bindproxy has no `tls:` configured; connect without SSL")]
    DirectWithoutTls,
    #[error("direct TLS connection without ALPN \"postgresql\"")]
    DirectWithoutAlpn,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("client sent more than two encryption requests")]
    TooManyRequests,
}

/// Answers SSLRequest/GSSENCRequest and runs the TLS handshake when there is one.
pub async fn negotiate(
    mut stream: TcpStream,
    tls: Option<&ServerTls>,
) -> Result<Negotiated, NegotiateError> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    if n == 1 && first[0] == TLS_HANDSHAKE_RECORD {
        let tls = tls.ok_or(NegotiateError::DirectWithoutTls)?;
        let s = tls
            .acceptor
            .accept(stream)
            .await
            .map_err(NegotiateError::Handshake)?;
        if s.get_ref().1.alpn_protocol() != Some(POSTGRESQL_ALPN) {
            return Err(NegotiateError::DirectWithoutAlpn);
        }
        return Ok(Negotiated::Tls(Box::new(s)));
    }
    // libpq may send GSSENCRequest, get 'N', then SSLRequest, get 'N', then its startup packet.
    for _ in 0..3 {
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (len, code) {
            (8, SSL_REQUEST_CODE) => match tls {
                Some(tls) => {
                    stream.write_all(b"S").await?;
                    let s = tls
                        .acceptor
                        .accept(stream)
                        .await
                        .map_err(NegotiateError::Handshake)?;
                    return Ok(Negotiated::Tls(Box::new(s)));
                }
                None => stream.write_all(b"N").await?,
            },
            (8, GSSENC_REQUEST_CODE) => stream.write_all(b"N").await?,
            _ => {
                return Ok(Negotiated::Plain {
                    stream,
                    head: BytesMut::from(&head[..]),
                })
            }
        }
    }
    Err(NegotiateError::TooManyRequests)
}
