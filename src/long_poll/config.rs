use std::time::Duration;

use http::StatusCode;

/// Settings of [`LongPoll`](super::LongPoll).
///
/// Set defaults for the whole application with
/// [`DisconnectLayer::config`](crate::DisconnectLayer::config); override
/// them for one route with `.layer(Extension(config))`.
///
/// | setting | default |
/// |---|---|
/// | [`default_timeout`](Self::default_timeout) | 30 s |
/// | [`max_timeout`](Self::max_timeout) | 120 s |
/// | [`jitter`](Self::jitter) | on (shortens each wait by up to wait/16) |
/// | [`max_body`](Self::max_body) | 16 KiB |
/// | [`timeout_status`](Self::timeout_status) | `204 No Content` |
/// | [`shutdown_status`](Self::shutdown_status) | `503 Service Unavailable` |
/// | [`retry_after`](Self::retry_after) | 1 s |
/// | [`max_in_flight`](Self::max_in_flight) | 50,000 long-polls per layer |
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct LongPollConfig {
    pub(crate) default_timeout: Duration,
    pub(crate) max_timeout: Duration,
    pub(crate) jitter: bool,
    pub(crate) max_body: usize,
    pub(crate) timeout_status: StatusCode,
    pub(crate) shutdown_status: StatusCode,
    pub(crate) retry_after: Duration,
    pub(crate) max_in_flight: usize,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(120),
            jitter: true,
            max_body: 16 * 1024,
            timeout_status: StatusCode::NO_CONTENT,
            shutdown_status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Duration::from_secs(1),
            max_in_flight: 50_000,
        }
    }
}

impl LongPollConfig {
    /// Creates the default configuration (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// How long to wait when the client does not say (default 30 s). Clamped
    /// to [`max_timeout`](Self::max_timeout) when used.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// The longest wait a client may ask for (default 120 s). Larger
    /// requests are clamped to it, not rejected.
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = timeout;
        self
    }

    /// Whether to shorten each wait by a random amount of up to wait/16
    /// (default on), so that clients that all started together do not all
    /// come back together. The wait is shortened, never lengthened, so a
    /// client whose own timeout equals the value it asked for always gets an
    /// answer first.
    pub fn jitter(mut self, enabled: bool) -> Self {
        self.jitter = enabled;
        self
    }

    /// The largest request body the extractor reads (default 16 KiB).
    ///
    /// The extractor reads the whole body before the handler waits, because
    /// hyper does not watch an HTTP/1.1 connection for a disconnect while
    /// body bytes are owed to the handler. A body announced or found to be
    /// larger is answered with `413 Payload Too Large` before the handler
    /// runs.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Status of the keepalive answer sent when the wait times out (default
    /// `204 No Content`).
    pub fn timeout_status(mut self, status: StatusCode) -> Self {
        self.timeout_status = status;
        self
    }

    /// Status of the answer sent when the server shuts down (default
    /// `503 Service Unavailable`).
    pub fn shutdown_status(mut self, status: StatusCode) -> Self {
        self.shutdown_status = status;
        self
    }

    /// `Retry-After` of the shutdown answer and of the answer at
    /// [`max_in_flight`](Self::max_in_flight), rounded up to whole seconds, at
    /// least 1 (default 1 s).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// At most this many long-polls in flight at once through one
    /// [`DisconnectLayer`](crate::DisconnectLayer) (default 50,000): the
    /// gauge [`LongPollStats::in_flight`](crate::stats::LongPollStats::in_flight).
    /// The [`LongPoll`](super::LongPoll) extractor of one more request is
    /// rejected with `503 Service Unavailable` and `Retry-After`
    /// ([`retry_after`](Self::retry_after)), counted in
    /// `long_poll.ended.rejected`; the polls in flight are not disturbed. A
    /// long-poll is in flight from its extractor until it is dropped
    /// (normally when the handler returns): while its body is read, while
    /// the handler runs and while it waits. Each one holds a connection:
    /// size the cap to the file descriptors the process may open.
    pub fn max_in_flight(mut self, polls: usize) -> Self {
        self.max_in_flight = polls;
        self
    }

    /// The former name of [`max_in_flight`](Self::max_in_flight): it caps
    /// every long-poll in flight, not only the parked ones.
    #[deprecated(since = "0.2.0", note = "renamed `max_in_flight`, the gauge it caps")]
    pub fn max_parked(self, polls: usize) -> Self {
        self.max_in_flight(polls)
    }
}
