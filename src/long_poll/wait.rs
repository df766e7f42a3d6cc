use tokio_util::sync::CancellationToken;

use crate::stats::{Counters, Ended};

/// How a [`LongPoll::wait`](super::LongPoll::wait) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome<T> {
    /// The event arrived; here it is.
    Ready(T),
    /// The wait ran out first: answer with a keepalive.
    Timeout,
    /// The server is shutting down: answer at once.
    Shutdown,
    /// The client is gone: nobody will read the answer.
    Disconnected,
}

impl<T> Outcome<T> {
    /// Maps the ready value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Self::Ready(v) => Outcome::Ready(f(v)),
            Self::Timeout => Outcome::Timeout,
            Self::Shutdown => Outcome::Shutdown,
            Self::Disconnected => Outcome::Disconnected,
        }
    }

    fn ended(&self) -> Ended {
        match self {
            Self::Ready(_) => Ended::Ready,
            Self::Timeout => Ended::Timeout,
            Self::Shutdown => Ended::Shutdown,
            Self::Disconnected => Ended::Disconnected,
        }
    }
}

/// Counts a wait in the `parked` gauge for as long as it lives. If it is
/// dropped unfinished while the client's token is cancelled (hyper dropped
/// the handler because the client left), it counts as disconnected.
pub(crate) struct Parked<'a> {
    counters: &'a Counters,
    token: &'a CancellationToken,
    ended: Option<Ended>,
}

impl<'a> Parked<'a> {
    pub(crate) fn new(counters: &'a Counters, token: &'a CancellationToken) -> Self {
        counters.park();
        Self {
            counters,
            token,
            ended: None,
        }
    }

    pub(crate) fn finish<T>(&mut self, outcome: &Outcome<T>) {
        self.ended = Some(outcome.ended());
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let ended = self
            .ended
            .or_else(|| self.token.is_cancelled().then_some(Ended::Disconnected));
        self.counters.unpark(ended);
    }
}
