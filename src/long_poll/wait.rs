use crate::stats::LongPollEnd;

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

    pub(crate) fn end(&self) -> LongPollEnd {
        match self {
            Self::Ready(_) => LongPollEnd::Ready,
            Self::Timeout => LongPollEnd::Timeout,
            Self::Shutdown => LongPollEnd::Shutdown,
            Self::Disconnected => LongPollEnd::Disconnected,
        }
    }
}
