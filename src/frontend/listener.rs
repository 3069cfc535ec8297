//! The accept loop: one task per client connection.
//!
//! Owns: accepting, the one log line per connection, dispatching CancelRequests, and making sure a
//! failing client never takes anything else down with it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::logsafe::Escaped;
use super::startup::{self, Greeting, Opening};
use crate::net::Encryption;
use crate::proxy::Proxy;
use crate::session::{self, Session};

/// Accepts clients forever.
pub async fn serve(proxy: Arc<Proxy>, listener: TcpListener) -> std::io::Result<()> {
    session::warm_up(&proxy);
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
        tokio::spawn(async move { handle(proxy, stream, peer).await });
    }
}

async fn handle(proxy: Arc<Proxy>, stream: TcpStream, peer: SocketAddr) {
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
            let (socket, params, startup_msg) = *boxed;
            let registration = proxy.cancels.register();
            let (pid, secret) = (registration.pid, registration.secret);
            let p = proxy.clone();
            let config = &proxy.config;
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
            let outcome = Session::new(proxy, hello, registration).run().await;
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
