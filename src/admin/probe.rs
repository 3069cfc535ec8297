//! `bindproxy ready`: the client side of `/readyz`, for container health checks.
//!
//! The container image has no curl, and a health check that needs one is a health check that
//! breaks. This is the smallest HTTP/1.1 client that can ask a running daemon's `admin_http`
//! whether it is ready: one GET, the status code and the body. It must never be used for anything
//! but bindproxy's own admin listener.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The answer of one probe.
#[derive(Debug)]
pub struct ProbeAnswer {
    pub status: u16,
    pub body: String,
}

/// Why a probe has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} answered something that is not HTTP")]
    NotHttp { addr: SocketAddr },
}

/// Where to reach a listener bound to `addr`: an unspecified address (0.0.0.0, ::) is reached on
/// loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// GET `path` from the admin listener at `addr`; answers of up to 64 KiB.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<ProbeAnswer, ProbeError> {
    let connect = |source| ProbeError::Connect { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(connect)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(connect)?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(connect)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or(ProbeError::NotHttp { addr })?;
    Ok(ProbeAnswer {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:9930".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:9930".parse().unwrap());
        let any6: SocketAddr = "[::]:9930".parse().unwrap();
        assert_eq!(reachable(any6), "[::1]:9930".parse().unwrap());
        let some: SocketAddr = "10.0.0.5:9930".parse().unwrap();
        assert_eq!(reachable(some), some);
    }
}
