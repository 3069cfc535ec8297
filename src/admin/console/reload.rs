//! `RELOAD`: the one reload entry point SIGHUP uses too (`crate::reload::reload`); answers with its
//! report, or its error (the running configuration is then kept).

use std::sync::Arc;

use super::answer::{Answer, ColType, Column};
use super::ConsoleError;
use crate::error::ProxyError;
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[("reload", ColType::Text)];

pub async fn answer(proxy: &Arc<Proxy>) -> Result<Answer, ProxyError> {
    match crate::reload::reload(proxy).await {
        Ok(report) => {
            tracing::info!("reload from the admin console: {report}");
            Ok(Answer::message(COLUMNS, report.to_string(), "RELOAD"))
        }
        Err(e) => {
            tracing::warn!("reload from the admin console failed: {e}");
            Err(ConsoleError::Reload(e.to_string()).into())
        }
    }
}
