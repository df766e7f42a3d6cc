//! What the layer puts into each request's extensions for the extractors of
//! the modes above it. It names no mode: a mode finds its settings by type
//! ([`RequestContext::config`]).

use std::sync::Arc;

use http::request::Parts;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::Stats;

/// Inserted by [`Disconnect`](super::Disconnect) into every request; read by
/// the extractors. Cloning costs two reference-count increments.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    /// Cancelled when the client is gone (see the module docs).
    pub(crate) token: CancellationToken,
    pub(crate) shared: Arc<Shared>,
}

/// Per-layer state, shared by all requests.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) shutdown: CancellationToken,
    pub(crate) stats: Stats,
    pub(crate) in_flight: TaskTracker,
    /// Settings by type, from [`DisconnectLayer::config`](super::DisconnectLayer::config).
    pub(crate) configs: http::Extensions,
}

impl RequestContext {
    /// The context the layer inserted, if it is installed.
    pub(crate) fn of(parts: &Parts) -> Option<&Self> {
        parts.extensions.get::<Self>()
    }

    /// The settings of type `C` in force for this request: a route's
    /// `Extension(C)`, else the layer's [`config`](super::DisconnectLayer::config),
    /// else `C::default()`.
    pub(crate) fn config<C>(&self, parts: &Parts) -> C
    where
        C: Clone + Default + Send + Sync + 'static,
    {
        parts
            .extensions
            .get::<C>()
            .or_else(|| self.shared.configs.get::<C>())
            .cloned()
            .unwrap_or_default()
    }
}
