use std::fmt;

use super::{Backend, Cursor, EventLog, Memory};

/// A client's position in an [`EventLog`], ready for a mode to serve.
///
/// Made by [`EventLog::reader`] from the client's [`Resume`](super::Resume);
/// every mode takes one and answers a position the log cannot serve in its
/// own way:
///
/// | mode | serves it with | a gone position | the log unreachable (Redis) |
/// |---|---|---|---|
/// | long-poll | [`LongPoll::serve`](crate::LongPoll::serve) | `410` + JSON | `503` + `Retry-After` |
/// | NDJSON | [`Streaming::ndjson`](crate::Streaming::ndjson) | in-band `gone` line | `503` |
/// | SSE | [`Streaming::sse`](crate::Streaming::sse) | in-band `gone` event | `503` |
/// | WebSocket | `LiveSocket::serve` (feature `ws`) | `gone` frame, close `4410` | `503` before the upgrade |
pub struct LogReader<T, B: Backend = Memory> {
    pub(crate) log: EventLog<T, B>,
    pub(crate) start: Result<Cursor, B::StartError>,
    /// The start is the end of a closed log: there is nothing to read.
    pub(crate) finished: bool,
}

impl<T, B: Backend> LogReader<T, B> {
    /// Where the client starts (after this cursor), or why it cannot.
    ///
    /// # Errors
    ///
    /// The backend's refusal, as [`Resume::start`](super::Resume::start)
    /// gives it.
    pub fn position(&self) -> Result<Cursor, &B::StartError> {
        self.start.as_ref().copied()
    }

    /// Whether the position is the end of a [closed](EventLog::close) log:
    /// the client has every event there will ever be.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl<T, B: Backend> fmt::Debug for LogReader<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("log", &self.log)
            .field("start", &self.start)
            .field("finished", &self.finished)
            .finish()
    }
}
