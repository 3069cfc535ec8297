//! Reloading: what SIGHUP and the admin console's `RELOAD` do.
//!
//! Owns the one entry point both use, [`reload`]. Today a reload reads every bind into the catalog
//! again (DDL that bypassed bindproxy). It must never leave the daemon without a valid
//! configuration: whatever fails keeps what runs.

use std::sync::Arc;

use crate::proxy::Proxy;

/// What a reload changed, for the log line and the admin console's answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// True when a catalog sync was queued.
    pub catalog_resync: bool,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.catalog_resync {
            f.write_str("catalog sync queued")
        } else {
            f.write_str("nothing to do")
        }
    }
}

/// Why a reload kept the running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(String),
}

/// Reloads the running daemon (SIGHUP, `RELOAD`).
pub async fn reload(proxy: &Arc<Proxy>) -> Result<ReloadReport, ReloadError> {
    let mut report = ReloadReport::default();
    if let Some(s) = proxy.syncer() {
        s.full();
        report.catalog_resync = true;
    }
    Ok(report)
}
