//! The accept loop: one task per client connection.
//!
//! Owns: accepting, the one log line per connection, dispatching CancelRequests, `max_client_conn`
//! (client sessions past it get FATAL 53300 at startup; CancelRequests are always served), and
//! making sure a failing client never takes anything else down with it. Once shutdown has begun
//! (`crate::shutdown`), a new session is refused with FATAL 57P03, as PostgreSQL refuses it;
//! CancelRequests are still served.
//!
//! The admin console: with `admin_users`, a startup for database `bindproxy` by one of them runs
//! the console (`admin::console`) instead of a session, after the same authentication; anyone else
//! asking for that database is refused with FATAL 28000 before authentication. Every session is
//! entered in the registry of live sessions (`crate::clients`) for as long as it runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::logsafe::Escaped;
use super::startup::{self, Greeting, Opening};
use crate::admin::console;
use crate::clients::ClientIdentity;
use crate::error::ProxyError;
use crate::net::Encryption;
use crate::proxy::Proxy;
use crate::session::{self, Session};
use crate::shutdown::{Shutdown, Stage};

/// The client sessions counted against `max_client_conn`.
struct ClientSlots {
    max: Option<usize>,
    used: AtomicUsize,
}

/// One client session's place; given back when dropped.
struct Slot(Arc<ClientSlots>);

impl ClientSlots {
    /// A place for one more session, or None when `max_client_conn` are open.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let max = self.max.unwrap_or(usize::MAX);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts clients until the task is dropped.
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    shutdown: Arc<Shutdown>,
) -> std::io::Result<()> {
    session::warm_up(&proxy);
    let slots = Arc::new(ClientSlots {
        max: proxy.config.max_client_conn,
        used: AtomicUsize::new(0),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let proxy = proxy.clone();
        let slots = slots.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { handle(proxy, slots, stream, peer, shutdown).await });
    }
}

async fn handle(
    proxy: Arc<Proxy>,
    slots: Arc<ClientSlots>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: Arc<Shutdown>,
) {
    let _ = stream.set_nodelay(true);
    let opening = match startup::open(stream, proxy.config.tls.as_ref()).await {
        Ok(o) => o,
        Err(e) => {
            debug!(%peer, "connection dropped during startup: {}", Escaped(&e.to_string()));
            return;
        }
    };
    match opening {
        Opening::Cancel { pid, secret } => {
            if let Some(target) = proxy.cancels.lookup(pid, secret) {
                debug!(%peer, pid, "cancel request");
                if let Err(e) = target.cancel().await {
                    warn!("cancel request failed: {e}");
                }
            }
        }
        Opening::Startup(boxed) => {
            let (mut socket, params, startup_msg) = *boxed;
            if shutdown.stage() != Stage::Running {
                info!(%peer, "connection refused: shutting down");
                let mut out = bytes::BytesMut::new();
                ProxyError::ShuttingDown.write_with_severity(&mut out, "FATAL");
                let _ = tokio::io::AsyncWriteExt::write_all(socket.get_mut(), &out).await;
                return;
            }
            let user = params.get("user").cloned().unwrap_or_default();
            let database = params
                .get("database")
                .cloned()
                .unwrap_or_else(|| user.clone());
            let admission = console::admission(&proxy.config.admin_users, &user, &database);
            if admission == Some(false) {
                let e = ProxyError::NotAdmin { user };
                info!(%peer, "connection refused: {}", Escaped(&e.to_string()));
                let mut out = bytes::BytesMut::new();
                e.write_with_severity(&mut out, "FATAL");
                let _ = tokio::io::AsyncWriteExt::write_all(socket.get_mut(), &out).await;
                return;
            }
            // Held for the whole session.
            let Some(_slot) = slots.take() else {
                let max = slots.max.unwrap_or_default();
                let e = startup::refuse_too_many(socket, max).await;
                info!(%peer, "connection refused: {e}");
                return;
            };
            let registration = proxy.cancels.register();
            let (pid, secret) = (registration.pid, registration.secret);
            let p = proxy.clone();
            // users and auth_method as the last reload left them
            let config = proxy.live_full().config.clone();
            let hello = startup::accept(
                socket,
                params,
                startup_msg,
                &config.users,
                config.auth_method,
                |info| Greeting {
                    params: session::initial_parameters(&p, &info.params),
                    pid,
                    secret,
                },
            )
            .await;
            let hello = match hello {
                Ok(h) => h,
                Err(e) => {
                    info!(%peer, "connection refused: {}", Escaped(&e.to_string()));
                    return;
                }
            };
            let tls = hello.stream.encryption() == Encryption::Tls;
            info!(
                %peer,
                user = %Escaped(&hello.user),
                database = %Escaped(&hello.database),
                tls,
                "client connected"
            );
            let started = std::time::Instant::now();
            let _counted = crate::metrics::client_connected();
            let signal = shutdown.session();
            let me = proxy.clients.register(
                pid,
                ClientIdentity {
                    user: hello.user.clone(),
                    database: hello.database.clone(),
                    application_name: hello
                        .params
                        .iter()
                        .find(|(k, _)| k == "application_name")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                    peer: Some(peer),
                    tls,
                    console: admission == Some(true),
                },
            );
            let outcome = if admission == Some(true) {
                drop(registration);
                console::run(proxy, hello, signal, me).await
            } else {
                Session::new(proxy, hello, registration, signal, me)
                    .run()
                    .await
            };
            match outcome {
                Ok(()) => {
                    info!(%peer, secs = started.elapsed().as_secs_f32(), "client disconnected")
                }
                Err(e) => {
                    let e = e.to_string();
                    info!(%peer, secs = started.elapsed().as_secs_f32(), "client session ended: {}", Escaped(&e))
                }
            }
        }
    }
}
