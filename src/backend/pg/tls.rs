//! TLS from bindproxy to a PostgreSQL bind, as libpq does it: `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` from the bind's URL.
//!
//! Owns: the meaning of each `sslmode` (which attempts a connection makes, in which order, and how
//! far the server's certificate is checked), and the rustls client configuration built once per
//! bind from the URL's files (rustls-pki-types' PEM parser). The connection itself (SSLRequest,
//! handshake, startup) is `conn.rs`'s.
//!
//! libpq's rules, kept here: `disable` never uses TLS; `allow` tries plaintext first and TLS if the
//! server refuses that; `prefer` (the default) uses TLS when the server offers it and falls back
//! to plaintext when it does not or the handshake fails; `require` insists on TLS; `verify-ca`
//! checks the chain against `sslrootcert`; `verify-full` also checks that the certificate names the
//! host. As in libpq, giving `sslrootcert` makes every TLS attempt check the chain (so `require`
//! with a root certificate is `verify-ca`). `sslrootcert=system` uses Mozilla's roots (webpki-roots).
//!
//! Must never: accept a certificate that does not chain to the root when a root is given, nor
//! connect in plaintext under `require`, `verify-ca` or `verify-full`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;

use crate::frontend::tls::{provider, read_certs, read_key};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `sslrootcert`: a PEM file, or `system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    System,
}

/// How far the server's certificate is checked on a TLS attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Encryption only (libpq's `require` without a root certificate).
    Nothing,
    /// The chain, up to the root certificate.
    Chain,
    /// The chain, and the host name (or IP address) in the certificate.
    ChainAndName,
}

/// Which connection attempts a mode makes (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// Plaintext only.
    Plain,
    /// Plaintext; TLS if the server refuses the plaintext startup.
    PlainThenTls,
    /// TLS if the server offers it; plaintext if it does not or the handshake fails.
    TlsThenPlain,
    /// TLS or nothing.
    TlsOnly,
}

/// A PostgreSQL bind's TLS settings and the client configuration built from them.
#[derive(Clone)]
pub struct PgTls {
    pub mode: SslMode,
    pub rootcert: Option<RootCert>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// None for `disable`.
    connector: Option<TlsConnector>,
}

impl PartialEq for PgTls {
    /// The connector is built from the other fields.
    fn eq(&self, other: &Self) -> bool {
        (self.mode, &self.rootcert, &self.cert, &self.key)
            == (other.mode, &other.rootcert, &other.cert, &other.key)
    }
}
impl Eq for PgTls {}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .field("rootcert", &self.rootcert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PgTls {
    /// Checks the combination and loads the files. The message names the option and the file.
    pub fn new(
        mode: SslMode,
        rootcert: Option<RootCert>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<PgTls, String> {
        let check = match (mode, &rootcert) {
            (SslMode::VerifyFull, Some(_)) => Check::ChainAndName,
            (SslMode::VerifyCa, Some(_)) => Check::Chain,
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                "sslmode={} needs sslrootcert (a PEM file with the CA certificate, or `system`)",
                mode.as_str()
            ))
            }
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let connector = match mode {
            SslMode::Disable => None,
            _ => Some(connector(
                check,
                rootcert.as_ref(),
                cert.as_ref(),
                key.as_ref(),
            )?),
        };
        Ok(PgTls {
            mode,
            rootcert,
            cert,
            key,
            connector,
        })
    }

    pub fn attempts(&self) -> Attempts {
        match self.mode {
            SslMode::Disable => Attempts::Plain,
            SslMode::Allow => Attempts::PlainThenTls,
            SslMode::Prefer => Attempts::TlsThenPlain,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Attempts::TlsOnly,
        }
    }

    /// The rustls connector (None only for `disable`, which never makes a TLS attempt).
    pub fn connector(&self) -> Option<&TlsConnector> {
        self.connector.as_ref()
    }
}

fn connector(
    check: Check,
    rootcert: Option<&RootCert>,
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
) -> Result<TlsConnector, String> {
    let provider = provider();
    let verifier = Arc::new(PgVerifier {
        webpki: match rootcert {
            None => None,
            Some(root) => Some(webpki_verifier(root, provider.clone())?),
        },
        check,
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (cert, key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(c), Some(k)) => {
            let chain = read_certs(c).map_err(|e| format!("sslcert {e}"))?;
            let private = read_key(k).map_err(|e| format!("sslkey {e}"))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| format!("sslcert {} with sslkey {}: {e}", c.display(), k.display()))?
        }
        _ => return Err("sslcert and sslkey go together: give both or neither".into()),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn webpki_verifier(
    root: &RootCert,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootCert::File(path) => {
            for c in read_certs(path).map_err(|e| format!("sslrootcert {e}"))? {
                store
                    .add(c)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| format!("sslrootcert: {e}"))
}

/// The server certificate check of one [`Check`] level. The handshake's signatures are always
/// verified (that is what makes the connection encrypted to the holder of the certificate's key).
#[derive(Debug)]
struct PgVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let webpki = match (&self.webpki, self.check) {
            (Some(w), Check::Chain | Check::ChainAndName) => w,
            _ => return Ok(ServerCertVerified::assertion()),
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the chain first: a name error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
