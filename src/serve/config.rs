use std::time::Duration;

use crate::net::DeadPeer;

/// Settings of [`serve`](super::serve()): the deadline of every phase of a
/// connection, the shutdown's two deadlines, the connection cap and HTTP/2
/// keep-alive. See the [module docs](super) for what each bounds and why.
///
/// | setting | default | nginx's nearest |
/// |---|---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 30 s | `client_header_timeout` 60 s |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s | `keepalive_timeout` 75 s |
/// | [`body_read_timeout`](Self::body_read_timeout) | 30 s | `client_body_timeout` 60 s |
/// | [`max_request_body`](Self::max_request_body) | 2 MiB (axum's extractor limit) | `client_max_body_size` 1 MiB |
/// | [`max_connections`](Self::max_connections) | 90 % of the soft `RLIMIT_NOFILE` (Unix), else none | `worker_connections` |
/// | [`retry_after`](Self::retry_after) | 1 s | — |
/// | [`http2_keep_alive`](Self::http2_keep_alive) | a PING every 20 s, 10 s for its ack | — |
/// | [`http2_max_concurrent_streams`](Self::http2_max_concurrent_streams) | 200 (hyper's) | `http2_max_concurrent_streams` 128 |
/// | [`dead_peer`](Self::dead_peer) | [`DeadPeer::new()`]: keepalive, user timeout, 30 s write stall | — |
/// | [`drain_timeout`](Self::drain_timeout) | 10 s | — |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 25 s (Kubernetes kills after 30 s) | — |
#[derive(Clone, Debug)]
#[must_use]
pub struct ServeConfig {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) max_request_body: Option<u64>,
    pub(crate) max_connections: MaxConnections,
    pub(crate) retry_after: Duration,
    pub(crate) http2_keep_alive: Option<(Duration, Duration)>,
    pub(crate) http2_max_concurrent_streams: u32,
    pub(crate) dead_peer: Option<DeadPeer>,
    pub(crate) drain_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
}

/// The connection cap, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaxConnections {
    /// A share of the open-file limit, read when serving starts.
    FromFileLimit,
    Fixed(Option<usize>),
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Some(Duration::from_secs(30)),
            max_request_body: Some(2 * 1024 * 1024),
            max_connections: MaxConnections::FromFileLimit,
            retry_after: Duration::from_secs(1),
            http2_keep_alive: Some((Duration::from_secs(20), Duration::from_secs(10))),
            http2_max_concurrent_streams: 200,
            dead_peer: Some(DeadPeer::new()),
            drain_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(25),
        }
    }
}

impl ServeConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a client may take to send a request's head (default 30 s),
    /// counted from the moment the connection is ready for it: accepted,
    /// or done with the previous response. A connection that has not sent
    /// a whole head by then is closed (slowloris).
    ///
    /// On HTTP/1.1 one bound covers the idle wait and the head together
    /// (as hyper's header-read timeout does), so it also bounds an idle
    /// keep-alive connection: the
    /// shorter of this and [`idle_timeout`](Self::idle_timeout) is used for
    /// both. Before the first request, on any protocol, the shorter of the
    /// two bounds the wait for the first request.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a connection may stay open with no request in progress
    /// (default 60 s). HTTP/2: no open stream; the server then sends
    /// `GOAWAY`, and drops the connection if it is still idle after as
    /// long again. HTTP/1.1: see
    /// [`header_read_timeout`](Self::header_read_timeout).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a request body may stall: the longest wait for its next
    /// bytes while the handler reads it (default 30 s). Every request body
    /// is covered, also one a handler reads itself; the clock runs only
    /// while the handler waits for the body. A stalled body ends with a
    /// [`BodyTimeout`](super::BodyTimeout) error; axum's `Bytes`, `String`
    /// and `Json` extractors answer it `400 Bad Request` ("Failed to buffer
    /// the request body"). `None`: no limit.
    pub fn body_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// The largest request body (default 2 MiB, axum's `DefaultBodyLimit`).
    /// A request that announces more in `Content-Length` is answered `413`
    /// before its body is read, so an `Expect: 100-continue` client never
    /// gets `100 Continue` and uploads nothing; a body without a length
    /// that grows past it ends in an error that axum's extractors answer
    /// `413`. Raise it (or `None`: no limit) for an upload route; a route
    /// can always refuse less itself.
    pub fn max_request_body(mut self, bytes: Option<u64>) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// At most this many connections open at once, upgraded WebSockets
    /// included (default: 90 % of the process's soft open-file limit, read
    /// when serving starts, on Unix; no cap elsewhere). One more is
    /// answered `503` + [`Retry-After`](Self::retry_after) +
    /// `Connection: close` and closed at once. `None`: no cap of its own;
    /// at the open-file limit the same answer is given (see the
    /// [module docs](super#file-descriptors)).
    pub fn max_connections(mut self, connections: Option<usize>) -> Self {
        self.max_connections = MaxConnections::Fixed(connections);
        self
    }

    /// The `Retry-After` of a refused connection (default 1 s; whole
    /// seconds, at least 1).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// HTTP/2 keep-alive: send a `PING` after `interval` without a frame
    /// from the client, and close the connection when it is not
    /// acknowledged within `timeout` (default 20 s and 10 s). This finds a
    /// peer that stopped answering, even one that holds a stream open or
    /// never acknowledges a shutdown. `None`: no pings.
    pub fn http2_keep_alive(mut self, ping: Option<(Duration, Duration)>) -> Self {
        self.http2_keep_alive = ping;
        self
    }

    /// At most this many concurrent streams on one HTTP/2 connection
    /// (default 200, hyper's).
    pub fn http2_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.http2_max_concurrent_streams = streams;
        self
    }

    /// Dead-peer settings for every accepted connection (default
    /// [`DeadPeer::new()`]): TCP keepalive, `TCP_USER_TIMEOUT` and the
    /// write-stall bound. `None` leaves sockets as accepted.
    pub fn dead_peer(mut self, dead_peer: Option<DeadPeer>) -> Self {
        self.dead_peer = dead_peer;
        self
    }

    /// Shutdown, phase (a): how long to wait for the answers that the
    /// shutdown token starts (`503`s, final frames, WebSocket closes)
    /// before closing connections (default 10 s). Counted from the shutdown
    /// signal.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Shutdown, phase (c): the hard deadline, counted from the shutdown
    /// signal (default 25 s: below Kubernetes' default grace period of
    /// 30 s). What is still open then is dropped and serving returns. A
    /// value below [`drain_timeout`](Self::drain_timeout) cuts the drain
    /// short.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The wait for a request on a connection that has none in progress:
    /// the shorter of the two timeouts (on HTTP/1.1 one bound covers both).
    pub(crate) fn request_wait(&self) -> Duration {
        self.header_read_timeout.min(self.idle_timeout)
    }
}
