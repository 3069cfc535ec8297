//! What a session reports about itself: the metrics of the statements it routes and sends and of
//! the errors its client gets (`crate::metrics`), and the one info line per such error (bind,
//! table, SQLSTATE, client).
//!
//! Must never: format or allocate per statement (the table label is a shared `Arc<str>` from the
//! metrics registry); log client text unescaped.

use std::sync::Arc;

use super::Session;
use crate::error::ProxyError;
use crate::frontend::logsafe::Escaped;
use crate::proxy::BindId;
use crate::router::RouteError;
use crate::sql::Analysis;

impl Session {
    /// The statements of `analysis` were routed to `bind`: count them per table, and remember the
    /// first table for the log line of an error that may follow.
    pub(super) fn observe_routed(&mut self, analysis: &Analysis, bind: BindId) {
        let mut first: Option<Arc<str>> = None;
        for s in &analysis.statements {
            for t in &s.tables {
                let label = crate::metrics::table_statement(bind, t, s.command);
                if first.is_none() {
                    first = label;
                }
            }
        }
        self.last_table = first;
    }

    /// An error bindproxy made itself goes to the client.
    pub(super) fn observe_refusal(&self, err: &ProxyError) {
        if matches!(
            err,
            ProxyError::Route(RouteError::CrossBind(_)) | ProxyError::CrossBindTransaction { .. }
        ) {
            crate::metrics::cross_bind_refused();
        }
        let bind = match err {
            ProxyError::BackendUnavailable { bind, .. }
            | ProxyError::BackendLost { bind, .. }
            | ProxyError::PoolExhausted { bind, .. }
            | ProxyError::DdlInMySqlTransaction { bind } => self.proxy.bind_id(bind),
            _ => None,
        };
        self.observe_error(bind, err.sqlstate(), &err.to_string());
    }

    /// A PostgreSQL bind's ErrorResponse (`body`) is relayed to the client.
    pub(super) fn observe_backend_error(&self, bind: BindId, body: &[u8]) {
        let (code, _) = crate::protocol::messages::error_code_and_severity(body);
        let code = code.unwrap_or("XX000");
        if tracing::enabled!(tracing::Level::INFO) {
            let message = crate::backend::pg::conn::error_message(body);
            self.observe_error(Some(bind), code, &message);
        } else {
            crate::metrics::error(Some(self.proxy.primary_of(bind)), code);
        }
    }

    /// An error from `bind` (None: from bindproxy, before any bind) goes to the client.
    /// A replica slot reports as its bind.
    pub(super) fn observe_error(&self, bind: Option<BindId>, sqlstate: &str, message: &str) {
        // (an atomic only because `&self` is shared across the pump's awaits; one session uses it)
        self.setbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bind = bind.map(|b| self.proxy.primary_of(b));
        crate::metrics::error(bind, sqlstate);
        tracing::info!(
            bind = bind
                .map(|b| self.proxy.bind_name(b))
                .as_deref()
                .unwrap_or(crate::metrics::NO_BIND),
            table = self
                .last_table
                .as_deref()
                .map(|t| tracing::field::display(Escaped(t))),
            sqlstate,
            client = self.peer.map(tracing::field::display),
            "statement failed: {}",
            Escaped(message)
        );
    }
}
