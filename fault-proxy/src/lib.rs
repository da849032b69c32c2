//! A TCP proxy that cuts one link on demand.
//!
//! A [`Proxy`] listens on a loopback port and forwards every connection to one upstream
//! address. Pointing one client (a replica's `REDIS_URL`, say) at it instead of at the server
//! puts that single link under the caller's control, while every other client of the same
//! server keeps its own, untouched: [`Proxy::cut`] breaks the link the way a network does —
//! with a reset ([`Cut::Reset`]: the peer is told at once) or silently ([`Cut::Blackhole`]:
//! bytes stop passing and only the client's timeouts tell) — and [`Proxy::heal`] brings it
//! back.
//!
//! It needs no privileges and nothing but tokio, so `make chaos` and the tests can run it
//! in-process next to what they exercise (docs/chaos.md explains why the campaign uses it
//! rather than network namespaces).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

/// How [`Proxy::cut`] breaks the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Every live connection is closed with a TCP RST on both sides (the client and the
    /// upstream server each see "connection reset"), and every new connection is accepted and
    /// reset at once: a crashed middlebox, a peer that rebooted, a proxy that dropped its state.
    Reset,
    /// Live connections stay open but no byte passes either way; new connections are accepted
    /// (the client's connect succeeds) and never forwarded: a route that disappeared, a
    /// partition, a half-open connection. Only the client's own timeouts tell.
    Blackhole,
}

/// The state every connection task watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    /// The cut in force, `None` while the link is healthy.
    cut: Option<Cut>,
    /// How many cuts there have been. A connection remembers the count it was forwarded under,
    /// so one that lived through a cut is never forwarded again even when a cut and a heal come
    /// too close together for its task to see the cut itself (a watch only keeps the latest
    /// value).
    cuts: u64,
}

/// A running fault proxy: one loopback listener forwarding to one upstream address.
///
/// Clones are handles to the same proxy; dropping the last one stops it (the listener closes
/// and every connection it holds is closed).
#[derive(Clone, Debug)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    state: watch::Sender<State>,
    accepted: Arc<AtomicU64>,
    /// The accept loop, which owns every connection task: aborting it drops them all.
    accept_loop: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    ///
    /// The upstream is connected to once per accepted connection; if that connect fails the
    /// client's connection is reset, as a refused connection would be. Must be called within
    /// a tokio runtime, which runs the proxy's tasks.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (state, watcher) = watch::channel(State { cut: None, cuts: 0 });
        let accepted = Arc::new(AtomicU64::new(0));
        let accept_loop =
            tokio::spawn(accept_loop(listener, upstream, watcher, accepted.clone())).abort_handle();
        Ok(Proxy {
            inner: Arc::new(Inner {
                addr,
                state,
                accepted,
                accept_loop,
            }),
        })
    }

    /// The address it listens on: give this to the client instead of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Cuts the link, the way `how` says, until [`Proxy::heal`].
    ///
    /// [`Cut::Reset`]: every live connection is closed with a TCP RST (`SO_LINGER` 0) on both
    /// sides, and new connections are accepted and reset at once. [`Cut::Blackhole`]: live
    /// connections stay open but no byte passes either way; new connections are accepted and
    /// never forwarded. Cutting a cut link again applies the new mode: a blackholed connection
    /// is reset by a later `Reset`.
    ///
    /// The cut is applied by each connection's task as soon as it runs: bytes a task is already
    /// writing on another thread when this returns may still arrive, as bytes already on the
    /// wire would.
    pub fn cut(&self, how: Cut) {
        self.inner.state.send_modify(|state| {
            state.cut = Some(how);
            state.cuts += 1;
        });
    }

    /// Heals the link: new connections are forwarded again.
    ///
    /// Connections that were blackholed are reset now, not resumed — a real link coming back
    /// would show them broken too (their bytes were lost, the peers' TCP state no longer
    /// matches), and a reset makes their clients reconnect instead of waiting for a reply that
    /// will never come. Healing a link that is not cut does nothing.
    pub fn heal(&self) {
        self.inner
            .state
            .send_if_modified(|state| state.cut.take().is_some());
    }

    /// Whether the link is cut (between [`Proxy::cut`] and [`Proxy::heal`]).
    pub fn is_cut(&self) -> bool {
        self.inner.state.borrow().cut.is_some()
    }

    /// How many connections it has accepted since it started, whether forwarded, reset or
    /// blackholed: lets a test prove its client's traffic went through the proxy.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Receiver<State>,
    accepted: Arc<AtomicU64>,
) {
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accept = listener.accept() => match accept {
                Ok((client, _)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let now = *state.borrow();
                    match now.cut {
                        Some(Cut::Reset) => reset(client),
                        Some(Cut::Blackhole) => {
                            links.spawn(end_cut(client, None, state.clone()));
                        }
                        None => {
                            links.spawn(forward(client, upstream, state.clone(), now.cuts));
                        }
                    }
                }
                // Out of file descriptors and the like: the listener stays usable, so try
                // again shortly rather than spinning on the error.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow with every one ever made.
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// Forwards one connection, accepted while `cuts` cuts had happened, until either side closes
/// it or a cut comes.
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<State>,
    cuts: u64,
) {
    // `biased`: once a cut is announced it wins over bytes that are ready in the same poll, so
    // nothing passes after `cut` has returned.
    let server = tokio::select! {
        biased;
        _ = state.wait_for(|now| now.cuts != cuts) => None,
        server = TcpStream::connect(upstream) => match server {
            Ok(server) => Some(server),
            Err(_) => return reset(client),
        },
    };
    let Some(mut server) = server else {
        return end_cut(client, None, state).await;
    };
    // The clients proxied are request/response protocols; Nagle would add latency the real
    // link does not have.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let ended = tokio::select! {
        biased;
        _ = state.wait_for(|now| now.cuts != cuts) => None,
        copied = tokio::io::copy_bidirectional(&mut client, &mut server) => Some(copied),
    };
    match ended {
        None => end_cut(client, Some(server), state).await,
        // Both sides closed their writing halves: dropping both closes them normally.
        Some(Ok(_)) => {}
        // One side failed (a reset, usually): pass the failure on to the other as a reset too.
        Some(Err(_)) => {
            reset(client);
            reset(server);
        }
    }
}

/// Ends a connection caught by a cut: holds it, silent, while the link is blackholed, then
/// resets both sides.
async fn end_cut(client: TcpStream, server: Option<TcpStream>, mut state: watch::Receiver<State>) {
    // An error means the proxy is being dropped: the connection is simply closed.
    if state
        .wait_for(|now| now.cut != Some(Cut::Blackhole))
        .await
        .is_err()
    {
        return;
    }
    reset(client);
    if let Some(server) = server {
        reset(server);
    }
}

/// Closes a connection with a TCP RST instead of a FIN: with `SO_LINGER` 0 the kernel discards
/// what is unsent and resets the connection on close, as a crashed peer or middlebox would.
fn reset(stream: TcpStream) {
    // If the option cannot be set the connection still closes, with a FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;

    /// How long a test waits for something that must happen.
    const DEADLINE: Duration = Duration::from_secs(5);
    /// How long a read must stay unanswered to count as blackholed. Bytes through loopback take
    /// microseconds, so this is far beyond what a forwarded reply needs.
    const SILENCE: Duration = Duration::from_millis(300);

    /// A loopback server that echoes every byte back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = conn.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    /// Sends `ping` and expects it back within the deadline.
    async fn round_trip(conn: &mut TcpStream) {
        conn.write_all(b"ping").await.unwrap();
        let mut reply = [0; 4];
        timeout(DEADLINE, conn.read_exact(&mut reply))
            .await
            .expect("the echo came back in time")
            .unwrap();
        assert_eq!(&reply, b"ping");
    }

    /// Expects the connection to end (EOF or an error such as a reset) within the deadline,
    /// whatever it still delivers before that.
    async fn ends(conn: &mut TcpStream) {
        let read_all = async {
            let mut buf = [0; 64];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        timeout(DEADLINE, read_all)
            .await
            .expect("the connection ended in time");
    }

    /// Sends `ping` and expects nothing back for a while (the write itself may succeed: the
    /// bytes only reach the kernel's buffers).
    async fn silent(conn: &mut TcpStream) {
        let _ = conn.write_all(b"ping").await;
        let mut buf = [0; 4];
        let read = timeout(SILENCE, conn.read(&mut buf)).await;
        assert!(read.is_err(), "expected the read to time out, got {read:?}");
    }

    #[tokio::test]
    async fn forwards_every_connection() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        assert_eq!(proxy.accepted(), 0);
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut a).await;
        round_trip(&mut b).await;
        round_trip(&mut a).await;
        assert_eq!(proxy.accepted(), 2);
        assert!(!proxy.is_cut());
    }

    #[tokio::test]
    async fn reset_ends_live_and_new_connections_and_heal_restores() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut live).await;

        proxy.cut(Cut::Reset);
        assert!(proxy.is_cut());
        ends(&mut live).await;
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        ends(&mut new).await;

        proxy.heal();
        assert!(!proxy.is_cut());
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut healed).await;
        assert_eq!(proxy.accepted(), 3);
    }

    #[tokio::test]
    async fn reset_is_a_reset_not_a_close() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut live).await;
        proxy.cut(Cut::Reset);
        let mut buf = [0; 4];
        let read = timeout(DEADLINE, live.read(&mut buf)).await.unwrap();
        let err = read.expect_err("a reset, not an orderly end of stream");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[tokio::test]
    async fn blackhole_silences_live_and_new_connections_until_heal_resets_them() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut live).await;

        proxy.cut(Cut::Blackhole);
        assert!(proxy.is_cut());
        silent(&mut live).await;
        // The connect succeeds (the proxy accepts) but nothing is forwarded.
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        silent(&mut new).await;

        proxy.heal();
        ends(&mut live).await;
        ends(&mut new).await;
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut healed).await;
        assert_eq!(proxy.accepted(), 3);
    }

    #[tokio::test]
    async fn a_cut_and_heal_in_quick_succession_still_breaks_live_connections() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut live).await;
        // No await between the two: the connection's task only ever sees the healed state.
        proxy.cut(Cut::Blackhole);
        proxy.heal();
        ends(&mut live).await;
    }

    #[tokio::test]
    async fn an_unreachable_upstream_resets_the_client() {
        // A port that was free a moment ago: nothing listens there.
        let upstream = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let proxy = Proxy::start(upstream).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        ends(&mut conn).await;
    }

    #[tokio::test]
    async fn dropping_the_last_handle_stops_it() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let addr = proxy.addr();
        let mut live = TcpStream::connect(addr).await.unwrap();
        round_trip(&mut live).await;
        let clone = proxy.clone();
        drop(proxy);
        // Still running: a handle is left.
        round_trip(&mut live).await;
        drop(clone);
        ends(&mut live).await;
        // The listener closes once the aborted accept loop has been dropped, which the runtime
        // does at its next turn: wait for it rather than for a fixed time.
        timeout(DEADLINE, async {
            while TcpStream::connect(addr).await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the listener closed in time");
    }
}
