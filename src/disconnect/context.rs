//! What the layer hands the extractors of the modes above it, and how. It
//! names no mode: a mode finds its settings by type
//! ([`RequestContext::config`]).
//!
//! The layer inserts nothing into the request. While the layer's future
//! (and the service call under it) runs, its request's context is lent to
//! the thread ([`lend`]); an extractor that runs inside (axum runs every
//! extractor and the handler while the router's future is polled) takes
//! it with [`RequestContext::current`]. The request's token is made there,
//! on first use: a request that never asks for it costs neither the
//! token's node nor an extension entry (whose map would grow past axum's
//! own three entries and be rehashed, per request).

use std::cell::RefCell;
use std::sync::Arc;

use http::request::Parts;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::Stats;

/// What an extractor keeps of the layer: the request's token and the
/// layer's shared state. Cloning costs two reference-count increments.
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

/// One request's context while the layer holds it: the layer's state and
/// the token, once an extractor asked for it.
#[derive(Debug)]
pub(crate) struct Lent {
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: Option<CancellationToken>,
}

thread_local! {
    /// The context of the request whose future runs on this thread now.
    static CURRENT: RefCell<Option<Lent>> = const { RefCell::new(None) };
}

/// Runs `f` with `lent` as the current request's context, and takes it
/// back (with the token an extractor may have made) when `f` returns or
/// unwinds. Nests: an inner layer's context is current inside it, the
/// outer one's again after.
pub(crate) fn lend<R>(lent: &mut Option<Lent>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        lent: &'a mut Option<Lent>,
        outer: Option<Lent>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let outer = self.outer.take();
            // A thread being torn down has no context to give back.
            if let Ok(mine) = CURRENT.try_with(|c| c.replace(outer)) {
                *self.lent = mine;
            }
        }
    }
    let outer = CURRENT.with(|c| c.replace(lent.take()));
    let _restore = Restore { lent, outer };
    f()
}

impl RequestContext {
    /// The context of the request being handled on this thread, if a
    /// [`DisconnectLayer`](super::DisconnectLayer) is around it; makes the
    /// request's token on first use.
    pub(crate) fn current() -> Option<Self> {
        CURRENT.with(|c| {
            let mut current = c.borrow_mut();
            let lent = current.as_mut()?;
            Some(Self {
                token: lent
                    .token
                    .get_or_insert_with(CancellationToken::new)
                    .clone(),
                shared: Arc::clone(&lent.shared),
            })
        })
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
