use std::time::Duration;

/// Settings of a WebSocket connection ([`LiveSocket`](super::LiveSocket)).
///
/// | setting | default |
/// |---|---|
/// | [`ping_interval`](Self::ping_interval) | 15 s |
/// | [`pong_timeout`](Self::pong_timeout) | 10 s |
/// | [`send_timeout`](Self::send_timeout) | 30 s |
/// | [`close_timeout`](Self::close_timeout) | 5 s |
/// | [`max_message_size`](Self::max_message_size) | 64 KiB (also sizes the read buffer: at most 4 KiB) |
/// | [`write_buffer_size`](Self::write_buffer_size) | 128 KiB |
/// | [`max_write_buffer_size`](Self::max_write_buffer_size) | 1 MiB |
/// | [`max_in_flight`](Self::max_in_flight) | 10,000 WebSockets per layer |
/// | [`retry_after`](Self::retry_after) | 1 s |
///
/// Set them for the application with
/// [`DisconnectLayer::config`](crate::DisconnectLayer::config), for
/// one route with `.layer(Extension(config))`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct WsConfig {
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) max_write_buffer_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) retry_after: Duration,
}

/// The read buffer is allocated (and zeroed) for every socket when it
/// first reads: at most this much, whatever the message limit.
const MAX_READ_BUFFER: usize = 4 * 1024;

/// The longest frame header (RFC 6455: 2 bytes, 8 of length, 4 of mask).
const MAX_FRAME_HEADER: usize = 14;

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Some(Duration::from_secs(15)),
            pong_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            max_message_size: 64 * 1024,
            write_buffer_size: 128 * 1024,
            max_write_buffer_size: 1024 * 1024,
            max_in_flight: 10_000,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl WsConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Ping the client after this long without a frame from it (default
    /// 15 s). `None` turns heartbeats off: a peer that vanished without FIN
    /// or RST is then only noticed when a write fails.
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every;
        self
    }

    /// After a ping, end the socket with
    /// [`HeartbeatTimeout`](super::CloseReason::HeartbeatTimeout) (close code
    /// [`HEARTBEAT_TIMEOUT`](super::close_code::HEARTBEAT_TIMEOUT)) when
    /// nothing at all (a pong or any other frame) arrived within this long
    /// (default 10 s). A dead peer is therefore noticed at most
    /// `ping_interval + pong_timeout` after its last frame. While nothing
    /// can be written to the client (it does not read) nothing is read from
    /// it either, so its answer may be waiting unread: then
    /// [`send_timeout`](Self::send_timeout) ends the socket instead.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// End the socket with [`SlowConsumer`](super::CloseReason::SlowConsumer)
    /// (close code [`SLOW_CONSUMER`](super::close_code::SLOW_CONSUMER)) when
    /// outgoing data could not be written for this long (default 30 s): the
    /// socket's buffers are full and the client does not read. A client that
    /// reads, however slowly, is not cut off by this; with the cursor log it
    /// falls behind the log's retention instead and gets
    /// [`CURSOR_GONE`](super::close_code::CURSOR_GONE).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// How long the closing handshake may take (default 5 s): sending the
    /// server's close frame and waiting for the client's. After it the
    /// connection is dropped.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The largest message (and frame) the client may send (default 64 KiB;
    /// axum's own default is 64 MiB). A larger one ends the socket with
    /// close code `1009`.
    ///
    /// It also sizes the socket's read buffer: the message limit and a frame
    /// header, at most 4 KiB (tungstenite allocates and zeroes 128 KiB per
    /// socket by default). A message larger than the buffer grows it while
    /// it arrives.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Outgoing bytes collected before they are written to the socket
    /// (default 128 KiB, axum's default). With the socket's kernel buffers it
    /// bounds what one slow client holds on the server: nothing more is
    /// taken from the outgoing source while it is full.
    ///
    /// # Panics
    ///
    /// The upgrade panics (in tungstenite) if this is `usize::MAX`.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// The most outgoing bytes one socket may hold before the kernel takes
    /// them (default 1 MiB; tungstenite's default is unlimited): what is
    /// queued and not yet written, the answers to the client's pings
    /// included. It is also the largest message the server can send: one
    /// that does not fit ends the socket. Messages up to
    /// `max_write_buffer_size - write_buffer_size` always fit (896 KiB by
    /// default). A value not above
    /// [`write_buffer_size`](Self::write_buffer_size) is raised to one byte
    /// more.
    ///
    /// A client that sends pings and does not read their pongs is bounded
    /// by this and by the socket's read side: while nothing can be written,
    /// the server reads nothing from it either, and ends it after
    /// [`send_timeout`](Self::send_timeout) like any other client that does
    /// not read.
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.max_write_buffer_size = bytes;
        self
    }

    /// At most this many WebSockets in flight at once through one
    /// [`DisconnectLayer`](crate::DisconnectLayer) (default 10,000): the
    /// gauge [`WsStats::in_flight`](crate::stats::WsStats::in_flight). The
    /// [`LiveSocket`](super::LiveSocket) extractor of one more upgrade is
    /// rejected with `503 Service Unavailable` and `Retry-After`
    /// ([`LiveSocketRejection::Overloaded`](super::LiveSocketRejection::Overloaded)),
    /// counted in `ws.ended.rejected`; the sockets in flight are not
    /// disturbed. A socket is in flight from its extractor until its task
    /// ends. Size it to the file descriptors and memory the process may
    /// use.
    pub fn max_in_flight(mut self, sockets: usize) -> Self {
        self.max_in_flight = sockets;
        self
    }

    /// The `Retry-After` of the `503` at [`max_in_flight`](Self::max_in_flight)
    /// (default 1 s; sent in whole seconds, at least 1).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// The read buffer for the message limit: the limit and a frame header,
    /// at most [`MAX_READ_BUFFER`].
    pub(crate) fn read_buffer_size(&self) -> usize {
        self.max_message_size
            .saturating_add(MAX_FRAME_HEADER)
            .min(MAX_READ_BUFFER)
    }

    /// The write-buffer cap as tungstenite takes it: above the write
    /// buffer's size (else it panics).
    pub(crate) fn write_buffer_cap(&self) -> usize {
        self.max_write_buffer_size
            .max(self.write_buffer_size.saturating_add(1))
    }
}
