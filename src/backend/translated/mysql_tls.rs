//! TLS to a MySQL/MariaDB bind, as its URL asks: MySQL's `ssl_mode` (DISABLED, PREFERRED, REQUIRED,
//! VERIFY_CA, VERIFY_IDENTITY) and `ssl_ca`, and the forms SQLAlchemy users write for PyMySQL and
//! mysqlclient (`ssl=true`, `ssl_ca=…` alone, `ssl_check_hostname=false`, `ssl_cert`/`ssl_key`).
//!
//! Owns: [`MyTls`] (read from the URL's query by `config`, which removes these keys before the URL
//! reaches mysql_async), and the mysql_async options it means ([`MyTls::ssl_opts`]: rustls, the
//! same stack as the rest of bindproxy). mysql_async's own keys (`require_ssl`, `verify_ca`,
//! `verify_identity`, `built_in_roots`) still work, but not together with these.
//!
//! | mode | bindproxy to the bind |
//! |---|---|
//! | `DISABLED` (no TLS key: PyMySQL's default) | plaintext |
//! | `PREFERRED` | TLS, unverified, when the server offers it; plaintext otherwise |
//! | `REQUIRED` (`ssl=true`) | TLS or an error; unverified unless `ssl_ca` is given (then as `VERIFY_CA`) |
//! | `VERIFY_CA` | TLS, the certificate must chain to `ssl_ca` |
//! | `VERIFY_IDENTITY` (`ssl_ca` alone, as PyMySQL) | as `VERIFY_CA`, and the certificate must name the host |
//!
//! Must never: connect (the pool does), or fall back to plaintext in any mode but `PREFERRED`.

use std::path::PathBuf;

use mysql_async::{ClientIdentity, SslOpts};

/// MySQL's `--ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MySslMode {
    #[default]
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl MySslMode {
    fn parse(v: &str) -> Option<MySslMode> {
        Some(match v.to_ascii_uppercase().as_str() {
            "DISABLED" => MySslMode::Disabled,
            "PREFERRED" => MySslMode::Preferred,
            "REQUIRED" => MySslMode::Required,
            "VERIFY_CA" => MySslMode::VerifyCa,
            "VERIFY_IDENTITY" => MySslMode::VerifyIdentity,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MySslMode::Disabled => "DISABLED",
            MySslMode::Preferred => "PREFERRED",
            MySslMode::Required => "REQUIRED",
            MySslMode::VerifyCa => "VERIFY_CA",
            MySslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// What a MySQL bind URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MyTls {
    pub mode: MySslMode,
    /// PEM file of the CA certificates the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), both or neither.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// True for the query keys [`MyTls::from_query`] reads.
pub fn is_tls_key(key: &str) -> bool {
    matches!(
        key,
        "ssl_mode" | "ssl-mode" | "ssl" | "ssl_ca" | "ssl_cert" | "ssl_key" | "ssl_check_hostname"
    )
}

/// mysql_async's own TLS keys.
const MYSQL_ASYNC_KEYS: &[&str] = &[
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];

fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{key}={v}` is not true or false")),
    }
}

impl MyTls {
    /// The TLS settings of a URL's query pairs (all of them: other keys are left alone). Files
    /// named must be readable now, so that a wrong path stops bindproxy at startup.
    pub fn from_query(pairs: &[(String, String)]) -> Result<MyTls, String> {
        let mut mode = None;
        let mut ssl = None;
        let mut ca = None;
        let mut cert = None;
        let mut key = None;
        let mut check_hostname = None;
        let mut own = false;
        for (k, v) in pairs {
            match k.as_str() {
                "ssl_mode" | "ssl-mode" => {
                    mode = Some(MySslMode::parse(v).ok_or_else(|| {
                        format!("bad ssl_mode `{v}` (use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)")
                    })?)
                }
                "ssl" => ssl = Some(boolean(k, v)?),
                "ssl_ca" => ca = Some(readable(k, v)?),
                "ssl_cert" => cert = Some(readable(k, v)?),
                "ssl_key" => key = Some(readable(k, v)?),
                "ssl_check_hostname" => check_hostname = Some(boolean(k, v)?),
                k if MYSQL_ASYNC_KEYS.contains(&k) => own = true,
                k if k.starts_with("ssl") => {
                    return Err(format!(
                        "`{k}` is not supported on a MySQL bind URL (supported: ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl, ssl_check_hostname)"
                    ))
                }
                _ => {}
            }
        }
        let mode = match (mode, ssl) {
            (Some(m), _) => m,
            (None, Some(false)) => MySslMode::Disabled,
            (None, Some(true)) => MySslMode::Required,
            // PyMySQL: a CA means a verified certificate, and its host name unless told otherwise
            (None, None) if ca.is_some() => match check_hostname {
                Some(false) => MySslMode::VerifyCa,
                _ => MySslMode::VerifyIdentity,
            },
            (None, None) if cert.is_some() => MySslMode::Required,
            (None, None) => MySslMode::Disabled,
        };
        // as libpq's sslmode=require with a root certificate: the CA is checked
        let mode = match (mode, &ca) {
            (MySslMode::Required, Some(_)) => MySslMode::VerifyCa,
            (m, _) => m,
        };
        if own && (mode != MySslMode::Disabled || ca.is_some()) {
            return Err("use ssl_mode/ssl_ca or mysql_async's require_ssl/verify_ca/verify_identity, not both".into());
        }
        if matches!(mode, MySslMode::VerifyCa | MySslMode::VerifyIdentity) && ca.is_none() {
            return Err(format!("ssl_mode={} needs ssl_ca", mode.as_str()));
        }
        if mode == MySslMode::Disabled && (ca.is_some() || cert.is_some()) {
            return Err("ssl_mode=DISABLED with ssl_ca or ssl_cert: remove one".into());
        }
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("ssl_cert and ssl_key go together".into()),
        };
        Ok(MyTls { mode, ca, identity })
    }

    /// mysql_async's TLS options for this mode (None: plaintext). `PREFERRED` gets the TLS
    /// options; its fallback to plaintext is the caller's (`mysql.rs`).
    pub fn ssl_opts(&self) -> Option<SslOpts> {
        let (accept_invalid, skip_domain) = match self.mode {
            MySslMode::Disabled => return None,
            MySslMode::Preferred | MySslMode::Required => (true, true),
            MySslMode::VerifyCa => (false, true),
            MySslMode::VerifyIdentity => (false, false),
        };
        let mut opts = SslOpts::default()
            .with_danger_accept_invalid_certs(accept_invalid)
            .with_danger_skip_domain_validation(skip_domain);
        if let Some(ca) = &self.ca {
            opts = opts
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
        }
        if let Some((cert, key)) = &self.identity {
            opts = opts.with_client_identity(Some(ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        Some(opts)
    }
}

fn readable(key: &str, v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    std::fs::metadata(&p)
        .and_then(|m| {
            if m.is_file() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a file"))
            }
        })
        .map_err(|e| format!("{key}: {}: {e}", p.display()))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<MyTls, String> {
        let pairs: Vec<(String, String)> = s
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        MyTls::from_query(&pairs)
    }

    #[test]
    fn modes_as_users_write_them() {
        let ca = std::env::temp_dir().join("bindproxy-mysql-tls-test-ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let ca = ca.display().to_string();
        for (query, mode) in [
            ("", MySslMode::Disabled),
            ("charset=utf8mb4", MySslMode::Disabled),
            ("ssl_mode=preferred", MySslMode::Preferred),
            ("ssl_mode=REQUIRED", MySslMode::Required),
            ("ssl=true", MySslMode::Required),
            ("ssl=false", MySslMode::Disabled),
            (
                &format!("ssl_mode=REQUIRED&ssl_ca={ca}"),
                MySslMode::VerifyCa,
            ),
            (
                &format!("ssl_mode=VERIFY_CA&ssl_ca={ca}"),
                MySslMode::VerifyCa,
            ),
            (&format!("ssl_ca={ca}"), MySslMode::VerifyIdentity),
            (
                &format!("ssl_ca={ca}&ssl_check_hostname=false"),
                MySslMode::VerifyCa,
            ),
            ("require_ssl=true", MySslMode::Disabled),
        ] {
            assert_eq!(q(query).unwrap().mode, mode, "{query}");
        }
        assert!(q("ssl_mode=DISABLED").unwrap().ssl_opts().is_none());
        assert!(q("ssl_mode=REQUIRED").unwrap().ssl_opts().is_some());
        for (query, problem) in [
            ("ssl_mode=VERIFY_CA", "needs ssl_ca"),
            ("ssl_mode=sometimes", "bad ssl_mode"),
            ("ssl_ca=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
            ("ssl_capath=/etc/ssl", "not supported"),
            (&format!("ssl_cert={ca}"), "go together"),
            (&format!("require_ssl=true&ssl_ca={ca}"), "not both"),
            ("ssl=maybe", "not true or false"),
        ] {
            let e = q(query).unwrap_err();
            assert!(e.contains(problem), "{query}: {e}");
        }
    }
}
