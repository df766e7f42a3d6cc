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
//! | [`keepalive`](DeadPeer::keepalive) | probes after 30 s idle (each connection draws its own idle: a whole number of seconds from 15 to 30), every 10 s, 3 of them | a vanished peer on an idle connection (parked long-poll, idle stream): gone idle + 3 × interval after its last packet, 45 to 60 s |
//! | [`tcp_user_timeout`](DeadPeer::tcp_user_timeout) (Linux) | each connection's idle + interval × probes: 45 to 60 s | a vanished peer with unacknowledged data in flight (a heartbeat, an answer): gone that long after the first unacknowledged byte |
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
//! # Keepalive and the user timeout
//!
//! Both are kernel timers, and on Linux they interact (tcp(7)): once a
//! keepalive probe is out, a non-zero `TCP_USER_TIMEOUT` replaces the probe
//! count. The kernel's keepalive timer fires after *idle* without a packet
//! from the peer and then every *interval*; at each firing after the first
//! it ends the connection if a probe is unanswered and the time since the
//! peer's last packet has reached the user timeout, and otherwise sends
//! the next probe. So the firings come at idle + k × interval, and:
//!
//! - a user timeout below idle + interval × probes ends the connection
//!   before all probes are out. At or below idle + interval, one lost probe
//!   (or its answer) resets a healthy peer: with thousands of connections
//!   probed in the same instant, a loopback or NIC queue drops some, and
//!   their connections are reset;
//! - at exactly idle + interval × probes, the firing that ends the
//!   connection is the one after the last probe, the moment keepalive
//!   alone would end it;
//! - above it, the firing at that moment sends one more probe: the peer
//!   is found at the first firing at or after the user timeout.
//!
//! Hence the rule: each connection's user timeout is at least its idle +
//! interval × probes, and by default exactly that, no margin: more would
//! only add probes. (Kernel timers fire late by up to an eighth of their
//! period. The lateness of the first probe and of the intervals adds up;
//! it could make the firing before the last one reach the bound, and cost
//! one probe, only with idle ≥ (9 − probes) × interval.) A smaller
//! [`tcp_user_timeout`](DeadPeer::tcp_user_timeout) is raised to the rule.
//!
//! Each connection also draws its own idle, at random, between the
//! configured idle and half of it (whole seconds, the kernel's unit):
//! connections accepted in one burst, or answered and re-polled together,
//! are then probed over half an idle period, not in one timer tick. Drawing
//! below the configured idle, not above, keeps the bound what you
//! configured: a vanished peer on an idle connection is found between
//! ⌈idle ∕ 2⌉ + interval × probes and idle + interval × probes after its
//! last packet (plus the timers' lateness), and one with data in flight as
//! long after the first unacknowledged byte. The price is at most one more
//! probe and answer (two empty segments) per connection per idle period.
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
//!
//! # Behind a reverse proxy
//!
//! Behind nginx, a load balancer or a CDN every socket the app accepts is
//! the proxy's, and that is all `DeadPeer` acts on:
//!
//! - keepalive and the user timeout probe the proxy, which answers: a
//!   *client* that vanishes without FIN or RST is not found here. The proxy
//!   must find it on its side (nginx: `listen … so_keepalive=30s:10s:3`);
//!   when it gives up on the client it closes the upstream connection and
//!   the request's token fires as for a FIN. A client's FIN, RST,
//!   half-close or HTTP/2 stream reset reaches the app that way at once
//!   (nginx 1.22, tested in `tests/proxy.rs`).
//! - the write-stall bound sees the proxy stop reading. nginx with
//!   `proxy_buffering off` reads from the app no faster than the client
//!   takes the bytes, so a client that stops reading stalls the app's
//!   writes once the buffers between are full; with buffering, nginx takes
//!   the backlog into memory and a temporary file instead.
//! - a proxy host that vanishes, or a network cut between proxy and app,
//!   is found as any peer is.
//!
//! `docs/nginx.md` in the repository has the nginx settings and timeouts
//! for that (a recipe that `tests/proxy.rs` runs). A check that trusts a
//! proxy by its address needs the peer address: axum's
//! `ConnectInfo<SocketAddr>` works with this listener under
//! `axum::serve::ListenerExt::tap_io` (axum implements it for a plain
//! `TcpListener` and for any listener under `tap_io`):
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::serve::ListenerExt as _;
//! use axum::{extract::ConnectInfo, routing::get, Router};
//! use axum_longpoll::{net::DeadPeer, DisconnectLayer};
//!
//! async fn peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
//!     peer.to_string()
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/peer", get(peer))
//!     .layer(DisconnectLayer::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let listener = DeadPeer::new().listen(listener).tap_io(|_| {});
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```

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
/// unanswered probes mean the peer is gone. Held as the kernel takes it:
/// whole seconds, within Linux's ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Keepalive {
    idle: Duration,
    interval: Duration,
    probes: u32,
}

impl Keepalive {
    fn new(idle: Duration, interval: Duration, probes: u32) -> Self {
        // `TCP_KEEPIDLE` and `TCP_KEEPINTVL` take 1..=32767 s, `TCP_KEEPCNT`
        // 1..=127; a value outside is refused with `EINVAL`.
        let secs = |d: Duration| Duration::from_secs(d.as_secs().clamp(1, 32_767));
        Self {
            idle: secs(idle),
            interval: secs(interval),
            probes: probes.clamp(1, 127),
        }
    }

    /// The most that one connection's idle is drawn below the configured
    /// one, in whole seconds.
    fn max_cut(&self) -> u64 {
        self.idle.as_secs() / 2
    }

    /// When keepalive gives up on a peer that answers nothing, counted
    /// from its last packet: idle + interval × probes.
    fn gives_up(&self) -> Duration {
        self.idle + self.interval * self.probes
    }
}

/// The largest `TCP_USER_TIMEOUT` Linux takes (milliseconds in a C `int`).
const MAX_USER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// What one accepted socket gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SocketSettings {
    keepalive: Option<Keepalive>,
    /// `None`: the kernel's default (no user timeout).
    user_timeout: Option<Duration>,
}

/// Dead-peer settings for accepted connections; see the
/// [module docs](self) for what each finds, the defaults, and how the user
/// timeout follows keepalive.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct DeadPeer {
    keepalive: Option<Keepalive>,
    /// The least user timeout; each socket's is raised to its keepalive's
    /// [`Keepalive::gives_up`]. Zero (the default): exactly that.
    min_user_timeout: Option<Duration>,
    write_stall: Option<Duration>,
    nodelay: bool,
}

impl Default for DeadPeer {
    fn default() -> Self {
        Self {
            keepalive: Some(Keepalive::new(
                Duration::from_secs(30),
                Duration::from_secs(10),
                3,
            )),
            min_user_timeout: Some(Duration::ZERO),
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
    /// `interval`, and give up after `probes` unanswered probes (default
    /// 30 s, 10 s, 3). `None` leaves the socket's keepalive off.
    ///
    /// Each connection draws its own idle, a whole number of seconds
    /// between `idle` and half of it, so that connections accepted together
    /// are not probed together: a vanished idle peer is found between
    /// ⌈idle ∕ 2⌉ + interval × probes and idle + interval × probes after
    /// its last packet (see the [module docs](self#keepalive-and-the-user-timeout)).
    ///
    /// The kernel counts in whole seconds: `idle` and `interval` lose their
    /// fraction of a second and are clamped to 1..=32767 s, `probes` to
    /// 1..=127 (Linux's ranges; outside them it refuses the option).
    pub fn keepalive(mut self, probes: Option<(Duration, Duration, u32)>) -> Self {
        self.keepalive =
            probes.map(|(idle, interval, probes)| Keepalive::new(idle, interval, probes));
        self
    }

    /// `TCP_USER_TIMEOUT` (Linux, Android, Fuchsia; ignored elsewhere): how
    /// long sent data may stay unacknowledged before the kernel ends the
    /// connection. Once a keepalive probe is out it also replaces
    /// keepalive's probe count.
    ///
    /// `Some(timeout)`: at least `timeout`, and on each connection at least
    /// its keepalive's idle + interval × probes: a smaller value is raised
    /// to that, because below it the kernel would end the connection before
    /// all probes are out, and one lost probe could end a healthy one (see
    /// the [module docs](self#keepalive-and-the-user-timeout)). A larger
    /// value gives keepalive more probes: an idle vanished peer is then
    /// found at the first probe time at or after `timeout`. With keepalive
    /// off, `timeout` is used as given. At most 24.8 days (`i32::MAX` ms,
    /// the kernel's limit); zero means no user timeout.
    ///
    /// The default, `Some(Duration::ZERO)`, is therefore exactly each
    /// connection's idle + interval × probes (45 to 60 s with the default
    /// keepalive). `None` sets no user timeout: keepalive ends an idle
    /// connection after its probe count, and unacknowledged data is
    /// retransmitted for about 15 minutes (Linux `tcp_retries2`).
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.min_user_timeout = timeout;
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

    /// The write-stall bound, for a server that wraps its sockets itself.
    pub(crate) fn write_stall_limit(&self) -> Option<Duration> {
        self.write_stall
    }

    /// Wraps `listener`; pass the result to `axum::serve`.
    pub fn listen(self, listener: TcpListener) -> DeadPeerListener {
        DeadPeerListener {
            listener,
            config: self,
        }
    }

    /// Sets the socket options on one accepted connection: `TCP_NODELAY`,
    /// keepalive with an idle drawn for this connection, and the user
    /// timeout derived from it. [`listen`](Self::listen) calls it for every
    /// connection; call it yourself if you accept connections yourself.
    ///
    /// The write-stall bound is not a socket option: wrap the stream in
    /// [`StallTimeout`] for it.
    ///
    /// # Errors
    ///
    /// The first option the socket refuses. The options before it are set.
    pub fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.nodelay)?;
        let settings = self.socket_settings(|max_cut| fastrand::u64(0..=max_cut));
        let socket = SockRef::from(stream);
        if let Some(k) = settings.keepalive {
            let params = TcpKeepalive::new()
                .with_time(k.idle)
                .with_interval(k.interval)
                .with_retries(k.probes);
            socket.set_tcp_keepalive(&params)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        socket.set_tcp_user_timeout(settings.user_timeout)?;
        Ok(())
    }

    /// The settings of one connection whose idle is `cut(max)` seconds
    /// (`0..=max`) below the configured one.
    fn socket_settings(&self, cut: impl FnOnce(u64) -> u64) -> SocketSettings {
        let keepalive = self.keepalive.map(|k| {
            let cut = cut(k.max_cut()).min(k.max_cut());
            Keepalive {
                idle: k.idle - Duration::from_secs(cut),
                ..k
            }
        });
        let user_timeout = self
            .min_user_timeout
            .map(|least| keepalive.map_or(least, |k| least.max(k.gives_up())))
            .map(|timeout| timeout.min(MAX_USER_TIMEOUT))
            .filter(|timeout| !timeout.is_zero());
        SocketSettings {
            keepalive,
            user_timeout,
        }
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
        let _ = self.config.configure(&stream);
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

/// What is inside the `TimedOut` error of a write that stalled past the
/// limit: the peer stopped reading (a kernel `ETIMEDOUT` says the peer
/// vanished).
#[derive(Debug)]
struct WriteStalled(Duration);

impl std::fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "write stalled: the peer took no bytes for {:?}", self.0)
    }
}

impl std::error::Error for WriteStalled {}

/// Whether `err` is a write that stalled past
/// [`DeadPeer::write_stall`]: the peer stopped reading.
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
pub(crate) fn is_write_stall(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<WriteStalled>())
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
            WriteStalled(limit),
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

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `(idle, user timeout)` of a socket whose idle is cut by `cut` seconds.
    fn drawn(config: &DeadPeer, cut: u64) -> (Option<Duration>, Option<Duration>) {
        let s = config.socket_settings(|_| cut);
        (s.keepalive.map(|k| k.idle), s.user_timeout)
    }

    #[test]
    fn user_timeout_is_each_sockets_idle_plus_interval_times_probes() {
        let config = DeadPeer::new();
        // Defaults 30 s, 10 s, 3: idle drawn from 15..=30 s.
        assert_eq!(drawn(&config, 0), (Some(secs(30)), Some(secs(60))));
        assert_eq!(drawn(&config, 7), (Some(secs(23)), Some(secs(53))));
        assert_eq!(drawn(&config, 15), (Some(secs(15)), Some(secs(45))));
        // A draw beyond half the idle is held at half.
        assert_eq!(drawn(&config, 40), (Some(secs(15)), Some(secs(45))));
        let s = config.socket_settings(|_| 0);
        let k = s.keepalive.expect("keepalive on");
        assert_eq!((k.interval, k.probes), (secs(10), 3));

        // The draw's range is half the idle in whole seconds.
        let short = DeadPeer::new().keepalive(Some((secs(3), secs(1), 3)));
        let mut max_cut = None;
        short.socket_settings(|max| {
            max_cut = Some(max);
            max
        });
        assert_eq!(max_cut, Some(1));
        assert_eq!(drawn(&short, 1), (Some(secs(2)), Some(secs(5))));
        let one = DeadPeer::new().keepalive(Some((secs(1), secs(1), 2)));
        assert_eq!(drawn(&one, 1), (Some(secs(1)), Some(secs(3))));
    }

    #[test]
    fn a_smaller_user_timeout_is_raised_and_a_larger_one_kept() {
        let raised = DeadPeer::new().tcp_user_timeout(Some(secs(30)));
        assert_eq!(drawn(&raised, 0).1, Some(secs(60)));
        assert_eq!(drawn(&raised, 15).1, Some(secs(45)));
        let kept = DeadPeer::new().tcp_user_timeout(Some(secs(50)));
        assert_eq!(drawn(&kept, 0).1, Some(secs(60)));
        assert_eq!(drawn(&kept, 15).1, Some(secs(50)));
        let larger = DeadPeer::new().tcp_user_timeout(Some(secs(600)));
        assert_eq!(drawn(&larger, 0).1, Some(secs(600)));
        // Explicitly none: the kernel's default, whatever keepalive does.
        let none = DeadPeer::new().tcp_user_timeout(None);
        assert_eq!(drawn(&none, 0), (Some(secs(30)), None));
    }

    #[test]
    fn without_keepalive_the_user_timeout_is_taken_as_given() {
        let off = DeadPeer::new().keepalive(None);
        assert_eq!(drawn(&off, 0), (None, None));
        let given = off.tcp_user_timeout(Some(secs(5)));
        assert_eq!(drawn(&given, 0), (None, Some(secs(5))));
        let huge = DeadPeer::new()
            .keepalive(None)
            .tcp_user_timeout(Some(Duration::MAX));
        assert_eq!(drawn(&huge, 0).1, Some(MAX_USER_TIMEOUT));
    }

    #[test]
    fn keepalive_is_held_in_the_kernels_units_and_ranges() {
        let k = Keepalive::new(Duration::from_millis(2_900), Duration::ZERO, 0);
        assert_eq!((k.idle, k.interval, k.probes), (secs(2), secs(1), 1));
        let k = Keepalive::new(Duration::MAX, Duration::MAX, u32::MAX);
        assert_eq!(
            (k.idle, k.interval, k.probes),
            (secs(32_767), secs(32_767), 127)
        );
        // The largest rule exceeds the kernel's limit: capped.
        let most = DeadPeer::new().keepalive(Some((Duration::MAX, Duration::MAX, u32::MAX)));
        assert_eq!(drawn(&most, 0).1, Some(MAX_USER_TIMEOUT));
    }
}
