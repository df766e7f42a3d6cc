use std::time::Duration;

/// Settings of a streamed response ([`Streaming`](super::Streaming)).
///
/// | setting | default |
/// |---|---|
/// | [`heartbeat`](Self::heartbeat) | 15 s |
/// | [`max_bytes`](Self::max_bytes) | 8 MiB |
/// | [`max_lifetime`](Self::max_lifetime) | 5 min |
/// | [`max_in_flight`](Self::max_in_flight) | 10,000 streams per layer |
/// | [`sse_retry`](Self::sse_retry) | 2 s, plus up to 50 % jitter |
/// | [`retry_after`](Self::retry_after) | 1 s |
///
/// Set them for the application with
/// [`DisconnectLayer::config`](crate::DisconnectLayer::config), for one route
/// with `.layer(Extension(config))`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct StreamConfig {
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) max_bytes: usize,
    pub(crate) max_lifetime: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) retry_after: Duration,
    pub(crate) sse_retry: Option<Duration>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            heartbeat: Some(Duration::from_secs(15)),
            max_bytes: 8 * 1024 * 1024,
            max_lifetime: Duration::from_secs(5 * 60),
            max_in_flight: 10_000,
            retry_after: Duration::from_secs(1),
            sse_retry: Some(Duration::from_secs(2)),
        }
    }
}

impl StreamConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Send a heartbeat after this long without an event (default 15 s):
    /// an SSE comment line, or an empty NDJSON line. Keeps proxies from
    /// timing the stream out, and makes a write that fails reveal a dead
    /// peer. `None` turns heartbeats off.
    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.heartbeat = every;
        self
    }

    /// End the response cleanly once it has sent this many bytes (default
    /// 8 MiB), after a final frame that tells the client to reconnect with
    /// its cursor: one response does not grow without bound in a browser.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// End the response cleanly after this long (default 5 minutes), with
    /// the same final frame.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// At most this many streams in flight at once through one
    /// [`DisconnectLayer`](crate::DisconnectLayer), all framings together
    /// (default 10,000): the gauge
    /// [`StatsSnapshot::streaming`](crate::StatsSnapshot::streaming). The
    /// response of one more ([`Streaming::ndjson`](super::Streaming::ndjson),
    /// [`sse`](super::Streaming::sse), [`framed`](super::Streaming::framed))
    /// is `503 Service Unavailable` with `Retry-After`, counted in its
    /// mode's `ended.rejected`; the streams in flight are not disturbed. A
    /// stream is in flight from its response until the end of its body.
    /// Size it to the file descriptors and memory the process may use (each
    /// stream holds a connection and up to one batch of events).
    pub fn max_in_flight(mut self, streams: usize) -> Self {
        self.max_in_flight = streams;
        self
    }

    /// The former name of [`max_in_flight`](Self::max_in_flight).
    #[deprecated(since = "0.2.0", note = "renamed `max_in_flight`, the gauge it caps")]
    pub fn max_open(self, streams: usize) -> Self {
        self.max_in_flight(streams)
    }

    /// The `Retry-After` of the `503` at [`max_in_flight`](Self::max_in_flight)
    /// (default 1 s; sent in whole seconds, at least 1).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// The SSE `retry:` field: how long `EventSource` waits before it
    /// reconnects after the stream ends (default 2 s). Each response adds
    /// up to 50 % at random, so the clients of a restarted server do not
    /// all come back in the same millisecond (browsers otherwise use a
    /// fixed 3 s). Sent with the first frame and the final one. `None`
    /// sends no `retry:`.
    pub fn sse_retry(mut self, delay: Option<Duration>) -> Self {
        self.sse_retry = delay;
        self
    }
}
