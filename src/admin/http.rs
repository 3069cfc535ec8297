//! The `admin_http` listener: `/healthz`, `/readyz`, `/metrics` over HTTP/1.1 (hyper).
//!
//! Owns: the routes and their answers. `/healthz` is 200 while the process serves HTTP at all;
//! `/readyz` is 200 when every bind is reachable and the process is not shutting down, 503
//! otherwise, with a JSON body per bind ([`super::ready`]); `/metrics` is the Prometheus text
//! exposition of the `metrics` recorder ([`crate::metrics`]), rendered here from its handle, with
//! the pools' gauges refreshed just before.
//!
//! Must never: let a slow or idle HTTP client hold a task forever (header and connection
//! timeouts), or answer anything but GET/HEAD.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::ready::ReadyCache;
use crate::proxy::Proxy;
use crate::shutdown::Shutdown;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one HTTP connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers read.
pub struct Admin {
    pub proxy: Arc<Proxy>,
    pub shutdown: Arc<Shutdown>,
    pub metrics: PrometheusHandle,
    ready: ReadyCache,
}

impl Admin {
    /// Client sessions (not the admin console's) by [`crate::metrics::ClientStateLabel`].
    fn client_states(&self) -> [usize; 4] {
        use crate::clients::ClientState;
        use crate::metrics::ClientStateLabel as L;
        let mut counts = [0; 4];
        for c in self.proxy.clients.list() {
            if c.identity.console {
                continue;
            }
            let label = match c.state() {
                ClientState::Idle => L::Idle,
                ClientState::InTransaction => L::IdleInTransaction,
                ClientState::Active => L::Active,
                ClientState::Waiting => L::Paused,
            };
            counts[label as usize] += 1;
        }
        counts
    }

    pub fn new(proxy: Arc<Proxy>, shutdown: Arc<Shutdown>, metrics: PrometheusHandle) -> Admin {
        Admin {
            proxy,
            shutdown,
            metrics,
            ready: ReadyCache::default(),
        }
    }

    async fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => {
                let r = self.ready.readiness(&self.proxy, &self.shutdown).await;
                let status = if r.ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = serde_json::to_string(&r).unwrap_or_else(|e| {
                    serde_json::json!({ "ready": false, "error": e.to_string() }).to_string()
                });
                with_type(status, body, "application/json")
            }
            "/metrics" => {
                // per bind name: its serving pool plus the pools a reload retired, while they
                // drain (they share the name's series)
                let mut by_name: std::collections::HashMap<_, (usize, usize, Option<usize>)> =
                    std::collections::HashMap::new();
                for slot in self.proxy.binds.all().iter() {
                    let (in_use, idle) = slot.bind.pool_usage();
                    let e = by_name
                        .entry(slot.name.clone())
                        .or_insert((slot.id, 0, None));
                    if slot.standing() == crate::registry::Standing::Serving {
                        e.0 = slot.id;
                    }
                    e.1 += in_use;
                    e.2 = match (e.2, idle) {
                        (a, None) => a,
                        (a, Some(i)) => Some(a.unwrap_or(0) + i),
                    };
                }
                for (id, in_use, idle) in by_name.into_values() {
                    crate::metrics::pool_state(id, in_use, idle);
                }
                crate::metrics::client_states(self.client_states());
                with_type(StatusCode::OK, self.metrics.render(), PROMETHEUS_TEXT)
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /healthz, /readyz, /metrics\n",
            ),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, body.to_owned(), "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(admin: Arc<Admin>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("admin_http: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.answer(&req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                tracing::debug!("admin_http: {e}");
            }
        });
    }
}
