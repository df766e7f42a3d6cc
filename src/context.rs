//! What the layer puts into each request's extensions for the extractors.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::long_poll::LongPollConfig;
use crate::stats::Stats;
use crate::stream::StreamConfig;

/// Inserted by [`Disconnect`](crate::disconnect::Disconnect) into every
/// request; read by the extractors. Cloning costs two reference-count
/// increments.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    /// Cancelled when the client is gone (see the `disconnect` module docs).
    pub(crate) token: CancellationToken,
    pub(crate) shared: Arc<Shared>,
}

/// Per-layer state, shared by all requests.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) shutdown: CancellationToken,
    pub(crate) long_poll: LongPollConfig,
    pub(crate) stream: StreamConfig,
    pub(crate) stats: Stats,
    #[cfg(feature = "ws")]
    pub(crate) websocket: crate::ws::WsConfig,
    #[cfg(feature = "ws")]
    pub(crate) sockets: crate::ws::OpenSockets,
}
