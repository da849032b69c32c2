//! `<service> healthcheck`: asks the service's own `/readyz` whether it is ready and answers
//! with the exit code, so that a container healthcheck needs no shell and no HTTP client in
//! the image (docs/deploy.md, "Images").
//!
//! It uses hyper's HTTP/1 client, which tonic already brings into every binary, with one
//! deadline for the whole exchange: a service that accepts the connection but never answers
//! is as unhealthy as one that refuses it.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use http_body_util::Empty;
use hyper::{Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long the whole check may take; compose's `timeout` is set above it.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// Why the service is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// Nothing answered on the port.
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// The HTTP exchange failed.
    #[error("GET /readyz failed: {0}")]
    Http(#[from] hyper::Error),
    /// The service answered, but not ready.
    #[error("/readyz answered {0}")]
    NotReady(StatusCode),
    /// No answer within [`DEADLINE`].
    #[error("no answer from /readyz within {DEADLINE:?}")]
    Timeout,
}

/// The address to reach a server listening on `listen`: a wildcard address is reached on the
/// loopback interface of the same family.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `Ok` when `GET /readyz` on the server listening on `listen` answers 200 within [`DEADLINE`].
pub async fn check(listen: SocketAddr) -> Result<(), Unhealthy> {
    tokio::time::timeout(DEADLINE, ready(target(listen)))
        .await
        .map_err(|_| Unhealthy::Timeout)?
}

async fn ready(addr: SocketAddr) -> Result<(), Unhealthy> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Unhealthy::Connect(addr, e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends with the exchange (or with the deadline, when `check` returns).
    tokio::spawn(connection);
    let request = Request::get("/readyz")
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a constant request is valid");
    let status = sender.send_request(request).await?.status();
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(Unhealthy::NotReady(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8020".parse().expect("address");
        let v6: SocketAddr = "[::]:8010".parse().expect("address");
        let named: SocketAddr = "10.1.2.3:80".parse().expect("address");
        assert_eq!(target(v4), "127.0.0.1:8020".parse().expect("address"));
        assert_eq!(target(v6), "[::1]:8010".parse().expect("address"));
        assert_eq!(target(named), named);
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        assert!(matches!(check(addr).await, Err(Unhealthy::Connect(..))));
    }

    #[tokio::test]
    async fn a_server_that_is_not_ready_is_unhealthy() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let _server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("answer");
            std::future::pending::<()>().await
        });
        assert!(matches!(
            check(addr).await,
            Err(Unhealthy::NotReady(StatusCode::SERVICE_UNAVAILABLE))
        ));
    }

    #[tokio::test]
    async fn a_silent_server_is_unhealthy_after_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        // Accepts, then never answers.
        let _held = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.expect("accept");
            std::future::pending::<()>().await
        });
        assert!(matches!(check(addr).await, Err(Unhealthy::Timeout)));
    }
}
