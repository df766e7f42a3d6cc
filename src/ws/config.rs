use std::time::Duration;

/// Settings of a WebSocket connection ([`LiveSocket`](super::LiveSocket)).
///
/// | setting | default |
/// |---|---|
/// | [`ping_interval`](Self::ping_interval) | 15 s |
/// | [`pong_timeout`](Self::pong_timeout) | 10 s |
/// | [`send_timeout`](Self::send_timeout) | 30 s |
/// | [`close_timeout`](Self::close_timeout) | 5 s |
/// | [`max_message_size`](Self::max_message_size) | 64 KiB |
/// | [`write_buffer_size`](Self::write_buffer_size) | 128 KiB |
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
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Some(Duration::from_secs(15)),
            pong_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            max_message_size: 64 * 1024,
            write_buffer_size: 128 * 1024,
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
    /// `ping_interval + pong_timeout` after its last frame.
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
}
