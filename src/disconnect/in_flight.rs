use tokio_util::task::TaskTracker;

/// The requests in flight through one [`DisconnectLayer`](super::DisconnectLayer)
/// ([`DisconnectLayer::in_flight`](super::DisconnectLayer::in_flight)).
///
/// A request counts from the moment it reaches the layer until its response
/// has ended (its body sent, or dropped because the client left); an
/// upgraded connection (a WebSocket of the `ws` mode) counts until its task
/// ends. After the shutdown token is cancelled these are the answers still
/// being written: [`wait`](Self::wait) for them before the process exits.
/// (`axum::serve` does not wait for upgraded connections;
/// `axum_longpoll::serve` waits for these in the first phase of its
/// shutdown.)
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    pub(crate) tracker: TaskTracker,
}

impl InFlight {
    /// How many are in flight now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Waits until none is in flight. Meant for shutdown: bound it with a
    /// deadline, since a request that never ends (a handler that ignores
    /// the shutdown token) keeps it waiting.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
