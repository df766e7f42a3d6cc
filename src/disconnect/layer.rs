use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;

use super::context::Shared;
use super::{Disconnect, InFlight};
use crate::stats::Stats;

/// Gives every request a client-disconnect [`CancellationToken`].
///
/// See the [module docs](crate::disconnect) for when the token is cancelled.
///
/// Besides the per-request token, the layer carries what every request
/// through it shares: the server's [shutdown token](Self::shutdown), the
/// [`Stats`], the [requests in flight](Self::in_flight) and, by type, the
/// settings of the modes built on it ([`config`](Self::config)). It knows
/// no mode: a mode looks up its own settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct DisconnectLayer {
    shutdown: CancellationToken,
    stats: Stats,
    in_flight: TaskTracker,
    configs: http::Extensions,
}

impl Default for DisconnectLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DisconnectLayer {
    /// Creates the layer with a fresh (never cancelled) shutdown token, new
    /// [`Stats`] and every mode at its default settings.
    pub fn new() -> Self {
        crate::observe::describe();
        Self {
            shutdown: CancellationToken::new(),
            stats: Stats::new(),
            in_flight: TaskTracker::new(),
            configs: http::Extensions::new(),
        }
    }

    /// Sets the server's shutdown token.
    ///
    /// When it is cancelled every parked [`LongPoll`](crate::LongPoll)
    /// answers `503` at once, every stream sends its final frame and every
    /// WebSocket closes with `1001`. Pass the same token to the server's
    /// graceful shutdown.
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// Sets the default settings of a mode, by type: a
    /// [`LongPollConfig`](crate::LongPollConfig), a
    /// [`StreamConfig`](crate::StreamConfig), a `WsConfig`. A route
    /// overrides them with `.layer(Extension(config))`; a mode whose type is
    /// set nowhere uses its `Default`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_longpoll::{DisconnectLayer, LongPollConfig, StreamConfig};
    ///
    /// let layer = DisconnectLayer::new()
    ///     .config(LongPollConfig::new().max_timeout(Duration::from_secs(55)))
    ///     .config(StreamConfig::new().heartbeat(Some(Duration::from_secs(10))));
    /// ```
    pub fn config<C: Clone + Send + Sync + 'static>(mut self, config: C) -> Self {
        self.configs.insert(config);
        self
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

    /// The requests in flight through this layer, and the connections
    /// upgraded from them (WebSockets): to wait, after a shutdown, until
    /// every answer is written.
    #[must_use]
    pub fn in_flight(&self) -> InFlight {
        InFlight {
            tracker: self.in_flight.clone(),
        }
    }
}

impl<S> Layer<S> for DisconnectLayer {
    type Service = Disconnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Disconnect::new(
            inner,
            Arc::new(Shared {
                shutdown: self.shutdown.clone(),
                stats: self.stats.clone(),
                in_flight: self.in_flight.clone(),
                configs: self.configs.clone(),
            }),
        )
    }
}
