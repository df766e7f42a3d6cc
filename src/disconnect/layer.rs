use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tower::Layer;

use super::Disconnect;
use crate::context::Shared;
use crate::long_poll::LongPollConfig;
use crate::stats::Stats;
use crate::stream::StreamConfig;

/// Gives every request a client-disconnect [`CancellationToken`].
///
/// See the [module docs](crate::disconnect) for when the token is cancelled.
///
/// The layer also carries the server's shutdown token, the default
/// [`LongPollConfig`] and the [`Stats`] that the extractors use, so one layer
/// at the outside of the router is all the set-up the crate needs.
#[derive(Clone, Debug)]
#[must_use]
pub struct DisconnectLayer {
    shutdown: CancellationToken,
    long_poll: LongPollConfig,
    stream: StreamConfig,
    stats: Stats,
    #[cfg(feature = "ws")]
    websocket: crate::ws::WsConfig,
    #[cfg(feature = "ws")]
    sockets: crate::ws::OpenSockets,
}

impl Default for DisconnectLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DisconnectLayer {
    /// Creates the layer with a fresh (never cancelled) shutdown token, the
    /// default [`LongPollConfig`] and new [`Stats`].
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            long_poll: LongPollConfig::default(),
            stream: StreamConfig::default(),
            stats: Stats::new(),
            #[cfg(feature = "ws")]
            websocket: crate::ws::WsConfig::default(),
            #[cfg(feature = "ws")]
            sockets: crate::ws::OpenSockets::new(),
        }
    }

    /// Sets the server's shutdown token.
    ///
    /// Pass the same token (or its `cancelled_owned()` future) to
    /// [`axum::serve(..).with_graceful_shutdown(..)`][serve]: when it is
    /// cancelled every parked [`LongPoll`](crate::LongPoll) answers at once and
    /// the server can return instead of waiting out the poll timeouts.
    ///
    /// [serve]: https://docs.rs/axum/0.8/axum/serve/struct.Serve.html#method.with_graceful_shutdown
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// Sets the long-poll configuration used by [`LongPoll`](crate::LongPoll)
    /// unless a route overrides it with `Extension(LongPollConfig)`.
    pub fn long_poll(mut self, config: LongPollConfig) -> Self {
        self.long_poll = config;
        self
    }

    /// Sets the streaming configuration used by
    /// [`Streaming`](crate::stream::Streaming) unless a route overrides it
    /// with `Extension(StreamConfig)`.
    pub fn stream(mut self, config: StreamConfig) -> Self {
        self.stream = config;
        self
    }

    /// Sets the WebSocket configuration used by
    /// [`LiveSocket`](crate::ws::LiveSocket) unless a route overrides it
    /// with `Extension(WsConfig)`.
    #[cfg(feature = "ws")]
    pub fn websocket(mut self, config: crate::ws::WsConfig) -> Self {
        self.websocket = config;
        self
    }

    /// The WebSocket connections opened through this layer: after a graceful
    /// shutdown, await [`OpenSockets::closed`](crate::ws::OpenSockets::closed)
    /// before the process exits, so that every socket has sent its
    /// `1001 Going Away` (see [`crate::ws`], "Shutdown").
    #[cfg(feature = "ws")]
    #[must_use]
    pub fn websockets(&self) -> crate::ws::OpenSockets {
        self.sockets.clone()
    }

    /// Uses `stats` instead of the layer's own counters (to share one set
    /// between several layers).
    pub fn with_stats(mut self, stats: Stats) -> Self {
        self.stats = stats;
        self
    }

    /// The counters every request through this layer records into.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// The shutdown token this layer watches.
    #[must_use]
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }
}

impl<S> Layer<S> for DisconnectLayer {
    type Service = Disconnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Disconnect::new(
            inner,
            Arc::new(Shared {
                shutdown: self.shutdown.clone(),
                long_poll: self.long_poll.clone(),
                stream: self.stream.clone(),
                stats: self.stats.clone(),
                #[cfg(feature = "ws")]
                websocket: self.websocket.clone(),
                #[cfg(feature = "ws")]
                sockets: self.sockets.clone(),
            }),
        )
    }
}
