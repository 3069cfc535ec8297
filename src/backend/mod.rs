//! The databases behind bindproxy, one [`Bind`] per configured bind.
//!
//! A PostgreSQL bind is a raw relay ([`pg`]); MySQL/MariaDB and SQLite binds translate (issue 3).
//! The session talks to a bind only through the types here, so a new kind of bind plugs in without
//! touching routing.

pub mod pg;

use std::sync::Arc;

use crate::config::{BindConfig, BindUrl};
use crate::error::ProxyError;

/// One configured bind and its pool.
pub enum Bind {
    Pg(Arc<pg::PgPool>),
}

impl Bind {
    pub fn open(cfg: &BindConfig) -> Result<Bind, ProxyError> {
        match &cfg.url {
            BindUrl::Postgres(t) => Ok(Bind::Pg(pg::PgPool::new(cfg, t.clone()))),
            other => Err(ProxyError::FeatureNotSupported(format!(
                "bind \"{}\": {} binds are not supported yet",
                cfg.name, other
            ))),
        }
    }

    /// Connects once, for `bindproxy check`: the server's version.
    pub async fn check(&self) -> Result<String, ProxyError> {
        match self {
            Bind::Pg(p) => {
                let conn = p.connect().await?;
                Ok(conn
                    .params
                    .iter()
                    .find(|(k, _)| k == "server_version")
                    .map(|(_, v)| format!("PostgreSQL {v}"))
                    .unwrap_or_else(|| "PostgreSQL".into()))
            }
        }
    }
}
