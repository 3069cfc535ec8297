//! The databases behind bindproxy, one [`Bind`] per configured bind.
//!
//! A PostgreSQL bind is a raw relay ([`pg`]); MySQL/MariaDB and SQLite binds translate
//! ([`translated`]): bindproxy speaks to them itself and answers the client as PostgreSQL would.
//! The session talks to a bind only through the types here, so a new kind of bind plugs in without
//! touching routing.

pub mod pg;
pub mod translated;

use std::sync::Arc;

use crate::config::{BindConfig, BindUrl};
use crate::error::ProxyError;
use crate::tx::Capability;

/// One configured bind and its pool.
pub enum Bind {
    Pg(Arc<pg::PgPool>),
    Translated(Arc<translated::TranslatedBind>),
}

impl Bind {
    pub fn open(cfg: &BindConfig) -> Result<Bind, ProxyError> {
        match &cfg.url {
            BindUrl::Postgres(t) => Ok(Bind::Pg(pg::PgPool::new(cfg, t.clone()))),
            BindUrl::MySql { .. } | BindUrl::Sqlite { .. } => {
                Ok(Bind::Translated(translated::TranslatedBind::new(cfg)?))
            }
        }
    }

    /// Whether this bind can prepare, when the kind of bind says so without asking the server:
    /// MySQL/MariaDB can (XA), SQLite cannot. A PostgreSQL bind depends on the server's
    /// `max_prepared_transactions` (None: ask it).
    pub fn known_capability(&self) -> Option<Capability> {
        match self {
            Bind::Pg(_) => None,
            Bind::Translated(t) if t.is_mysql() => Some(Capability::TwoPhase),
            Bind::Translated(_) => Some(Capability::LastResource),
        }
    }

    /// Drains the pool of a bind a reload replaced or removed: no connection is kept idle any
    /// more; leased ones close when they come back.
    pub fn retire(&self) {
        match self {
            Bind::Pg(p) => p.retire(),
            Bind::Translated(t) => t.retire(),
        }
    }

    /// The engine's name, for status pages.
    pub fn engine(&self) -> &'static str {
        match self {
            Bind::Pg(_) => "postgresql",
            Bind::Translated(t) if t.is_mysql() => "mysql",
            Bind::Translated(_) => "sqlite",
        }
    }

    /// Connections leased now, and connections open but idle when the pool knows it (PostgreSQL
    /// binds; mysql_async and the SQLite threads keep theirs out of sight).
    pub fn pool_usage(&self) -> (usize, Option<usize>) {
        match self {
            Bind::Pg(p) => {
                let (in_use, idle) = p.usage();
                (in_use, Some(idle))
            }
            Bind::Translated(t) => (t.in_use(), None),
        }
    }

    /// Connects once, for `bindproxy check`: the server's version (and `TLS` when encrypted).
    pub async fn check(&self) -> Result<String, ProxyError> {
        match self {
            Bind::Pg(p) => {
                let conn = p.connect().await?;
                let version = conn
                    .params
                    .iter()
                    .find(|(k, _)| k == "server_version")
                    .map(|(_, v)| format!("PostgreSQL {v}"))
                    .unwrap_or_else(|| "PostgreSQL".into());
                Ok(match conn.encryption {
                    crate::net::Encryption::Tls => format!("{version}, TLS"),
                    crate::net::Encryption::Plain => version,
                })
            }
            Bind::Translated(t) => t.check().await,
        }
    }
}
