//! Dead peers: a listener for `axum::serve` that finds clients which vanish
//! without FIN or RST, and clients which stop reading (feature `net`).
//!
//! hyper sees a client leave when the socket says so: FIN, RST, or an error
//! on a read or write ([`crate::disconnect`]). Two kinds of client never
//! make the socket say anything:
//!
//! - **a vanished peer** (cable pulled, laptop closed, NAT entry dropped):
//!   no packet ever comes back. A parked long-poll reads nothing and writes
//!   nothing, so it waits its whole timeout; a stream's heartbeat goes into
//!   the kernel's send buffer and is retransmitted for about 15 minutes
//!   (Linux `tcp_retries2`) before the kernel gives up.
//! - **a peer that stops reading** but keeps its socket open: the kernel
//!   buffers fill, hyper's write waits, and nothing times out at all.
//!
//! [`DeadPeer`] sets what bounds both, on every accepted socket:
//!
//! | setting | default | finds |
//! |---|---|---|
//! | [`keepalive`](DeadPeer::keepalive) | probes after 30 s idle, every 10 s, 3 of them | a vanished peer on an idle connection (parked long-poll, idle stream): gone within idle + 3 × interval = 60 s |
//! | [`tcp_user_timeout`](DeadPeer::tcp_user_timeout) (Linux) | 30 s | a vanished peer with unacknowledged data in flight (a heartbeat, an answer): gone 30 s after the first unacknowledged byte |
//! | [`write_stall`](DeadPeer::write_stall) | 30 s | a peer that stops reading: a write that cannot make progress for this long fails |
//!
//! Each ends in an I/O error that makes hyper drop the connection, so the
//! request's [token](crate::DisconnectToken) is cancelled and its counters
//! see a disconnect, exactly as for an RST. Nothing is lost: a client that
//! comes back resumes from its [cursor](crate::event_log). An answer that
//! was already handed to the kernel when the peer vanished counts as sent
//! (the token does not fire for a finished response); the client never saw
//! it, so it polls again from its old cursor and gets the events again.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_longpoll::{net::DeadPeer, DisconnectLayer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app: Router = Router::new().layer(DisconnectLayer::new());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(DeadPeer::new().listen(listener), app).await
//! # }
//! ```
//!
//! # What it cannot see
//!
//! - On HTTP/2 one connection carries many requests. A client that stops
//!   reading one stream exhausts that stream's flow-control window; hyper
//!   then stops polling the body and nothing is written, so no write
//!   stalls. The stream's byte and lifetime caps
//!   ([`StreamConfig`](crate::StreamConfig)) still end it. `axum::serve`
//!   does not expose hyper's HTTP/2 keep-alive PING either.
//! - The write-stall clock runs only while a write is waiting, so it adds
//!   nothing to an idle connection: no timer, no task. The keepalive and
//!   user timeout are kernel socket options.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// TCP keepalive: when to probe an idle connection, how often, how many
/// unanswered probes mean the peer is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Keepalive {
    idle: Duration,
    interval: Duration,
    retries: u32,
}

/// Dead-peer settings for accepted connections; see the
/// [module docs](self) for what each finds and the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct DeadPeer {
    keepalive: Option<Keepalive>,
    user_timeout: Option<Duration>,
    write_stall: Option<Duration>,
    nodelay: bool,
}

impl Default for DeadPeer {
    fn default() -> Self {
        Self {
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(30),
                interval: Duration::from_secs(10),
                retries: 3,
            }),
            user_timeout: Some(Duration::from_secs(30)),
            write_stall: Some(Duration::from_secs(30)),
            nodelay: true,
        }
    }
}

impl DeadPeer {
    /// The defaults (see the [module docs](self)).
    pub fn new() -> Self {
        Self::default()
    }

    /// TCP keepalive: probe after `idle` without traffic, then every
    /// `interval`, and give up after `retries` unanswered probes (default
    /// 30 s, 10 s, 3). `None` leaves the socket's keepalive off.
    pub fn keepalive(mut self, probes: Option<(Duration, Duration, u32)>) -> Self {
        self.keepalive = probes.map(|(idle, interval, retries)| Keepalive {
            idle,
            interval,
            retries,
        });
        self
    }

    /// `TCP_USER_TIMEOUT` (Linux, Android, Fuchsia; ignored elsewhere): how
    /// long sent data may stay unacknowledged before the kernel ends the
    /// connection (default 30 s). Also bounds keepalive probing once data is
    /// in flight. `None` leaves the kernel's default (about 15 minutes of
    /// retransmissions).
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.user_timeout = timeout;
        self
    }

    /// How long one write may wait for the socket to take bytes before it
    /// fails with `TimedOut` (default 30 s): the bound for a peer that
    /// stops reading. `None` lets a write wait forever.
    pub fn write_stall(mut self, timeout: Option<Duration>) -> Self {
        self.write_stall = timeout;
        self
    }

    /// `TCP_NODELAY` on accepted sockets (default on: an event is one small
    /// write that should leave at once).
    pub fn nodelay(mut self, enabled: bool) -> Self {
        self.nodelay = enabled;
        self
    }

    /// Wraps `listener`; pass the result to `axum::serve`.
    pub fn listen(self, listener: TcpListener) -> DeadPeerListener {
        DeadPeerListener {
            listener,
            config: self,
        }
    }

    fn apply(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.nodelay)?;
        let socket = SockRef::from(stream);
        if let Some(k) = self.keepalive {
            let params = TcpKeepalive::new()
                .with_time(k.idle)
                .with_interval(k.interval)
                .with_retries(k.retries);
            socket.set_tcp_keepalive(&params)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        socket.set_tcp_user_timeout(self.user_timeout)?;
        Ok(())
    }
}

/// A [`TcpListener`] whose connections carry the [`DeadPeer`] settings;
/// implements `axum::serve::Listener`.
#[derive(Debug)]
pub struct DeadPeerListener {
    listener: TcpListener,
    config: DeadPeer,
}

impl DeadPeerListener {
    /// The wrapped listener.
    pub fn get_ref(&self) -> &TcpListener {
        &self.listener
    }

    /// The settings applied to each connection.
    pub fn config(&self) -> &DeadPeer {
        &self.config
    }
}

impl axum::serve::Listener for DeadPeerListener {
    type Io = StallTimeout<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        // A socket that refuses the options is served without them rather
        // than dropped: the client did nothing wrong.
        let _ = self.config.apply(&stream);
        (StallTimeout::new(stream, self.config.write_stall), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

pin_project! {
    /// An I/O object whose writes fail with `TimedOut` after waiting longer
    /// than a limit for the peer to take bytes
    /// ([`DeadPeer::write_stall`]). Reads pass through.
    #[derive(Debug)]
    pub struct StallTimeout<T> {
        #[pin]
        io: T,
        limit: Option<Duration>,
        // Created at the first stall only: an idle or healthy connection
        // carries no timer.
        stall: Option<Pin<Box<Sleep>>>,
        waiting: bool,
    }
}

impl<T> StallTimeout<T> {
    /// Wraps `io`; `None` never times out.
    pub fn new(io: T, limit: Option<Duration>) -> Self {
        Self {
            io,
            limit,
            stall: None,
            waiting: false,
        }
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The wrapped I/O object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Unwraps it.
    pub fn into_inner(self) -> T {
        self.io
    }
}

/// Runs one write-side poll under the stall clock.
fn under_stall_clock<R>(
    limit: Option<Duration>,
    stall: &mut Option<Pin<Box<Sleep>>>,
    waiting: &mut bool,
    cx: &mut Context<'_>,
    poll: Poll<io::Result<R>>,
) -> Poll<io::Result<R>> {
    let Some(limit) = limit else { return poll };
    if poll.is_ready() {
        *waiting = false;
        return poll;
    }
    if !*waiting {
        *waiting = true;
        let deadline = crate::deadline::after(Instant::now(), limit);
        match stall {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => *stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }
    let expired = stall
        .as_mut()
        .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
    if expired {
        *waiting = false;
        return Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("write stalled: the peer took no bytes for {limit:?}"),
        )));
    }
    Poll::Pending
}

impl<T: AsyncRead> AsyncRead for StallTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for StallTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write(cx, buf);
        under_stall_clock(*this.limit, this.stall, this.waiting, cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write_vectored(cx, bufs);
        under_stall_clock(*this.limit, this.stall, this.waiting, cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.io.poll_flush(cx);
        under_stall_clock(*this.limit, this.stall, this.waiting, cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.io.poll_shutdown(cx);
        under_stall_clock(*this.limit, this.stall, this.waiting, cx, poll)
    }
}
