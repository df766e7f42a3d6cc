//! The framing-independent part of a streamed response: events, heartbeats,
//! caps, shutdown, in-band 410; produced inside the body, no task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::event_log::{Cursor, CursorGone, Event};
use crate::stats::Held;

/// Why a stream ended (the `reason` of its final frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// The response reached [`max_bytes`](super::StreamConfig::max_bytes).
    MaxBytes,
    /// The response reached [`max_lifetime`](super::StreamConfig::max_lifetime).
    MaxLifetime,
    /// The server is shutting down.
    Shutdown,
    /// The event source ended.
    End,
}

/// What a stream carries: an event of a log (it has a cursor) or a plain
/// item of any `Stream` (it has none).
pub(crate) trait Item {
    /// The cursor to resume after this item, if it has one.
    fn cursor(&self) -> Option<Cursor>;
    /// The whole NDJSON line, without its newline.
    fn ndjson(&self) -> serde_json::Result<Vec<u8>>;
    /// The SSE `data:` field.
    fn sse_data(&self) -> serde_json::Result<String>;
}

impl<T: serde::Serialize> Item for Event<T> {
    fn cursor(&self) -> Option<Cursor> {
        Some(self.cursor)
    }
    fn ndjson(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
    fn sse_data(&self) -> serde_json::Result<String> {
        serde_json::to_string(&self.data)
    }
}

/// An item of a plain `Stream`, without a cursor.
#[derive(Debug)]
pub(crate) struct Plain<T>(pub(crate) T);

impl<T: serde::Serialize> Item for Plain<T> {
    fn cursor(&self) -> Option<Cursor> {
        None
    }
    fn ndjson(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&self.0)
    }
    fn sse_data(&self) -> serde_json::Result<String> {
        serde_json::to_string(&self.0)
    }
}

/// One piece of a streamed response, before framing.
#[derive(Debug)]
pub(crate) enum Piece<X> {
    /// First frame of a cursor stream: where it starts.
    Open(Cursor),
    Item(X),
    Heartbeat,
    /// Last frame: reconnect (with this cursor, for a cursor stream).
    Reconnect(EndReason, Option<Cursor>),
    /// Last frame: the cursor fell out of retention.
    Gone(CursorGone),
}

/// Settings the framing needs, fixed per response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Framing {
    /// SSE `retry:` (the reconnection delay EventSource uses), sent with
    /// the first and the last frame.
    pub(crate) retry: Option<Duration>,
}

/// Frames a piece: the output and how many bytes it takes on the wire.
pub(crate) type Encode<X, O> = fn(Piece<X>, Framing) -> (O, usize);

pin_project! {
    /// Turns a source of items into pieces: heartbeats when idle, a final
    /// frame at a cap, on shutdown or at the source's end.
    pub(crate) struct Pieces<S, X, O> {
        #[pin]
        source: S,
        // Checked (an atomic load) before each item; its future is polled,
        // to be woken, only when the source waits.
        shutdown_token: CancellationToken,
        #[pin]
        shutdown: WaitForCancellationFutureOwned,
        // Likewise: compared before each item, polled when the source waits.
        end_of_life: Instant,
        #[pin]
        lifetime: Sleep,
        #[pin]
        heartbeat: Sleep,
        every: Option<Duration>,
        // When the last frame went out: the heartbeat is due `every` after.
        last_frame: Instant,
        sent: usize,
        max_bytes: usize,
        // The last cursor sent (`None` for a plain stream).
        cursor: Option<Cursor>,
        state: State,
        encode: Encode<X, O>,
        framing: Framing,
        // This stream's place in the `streaming` gauge.
        gauge: Held,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A cursor stream announces where it starts; a plain stream has no
    /// position and begins `Open`.
    Start(Cursor),
    Open,
    /// The next piece is the final one.
    Closing(EndReason),
    Done,
}

pub(crate) struct Limits {
    pub(crate) every: Option<Duration>,
    pub(crate) max_bytes: usize,
    pub(crate) max_lifetime: Duration,
    pub(crate) framing: Framing,
}

impl<S, X, O> Pieces<S, X, O> {
    pub(crate) fn new(
        source: S,
        start: Option<Cursor>,
        shutdown: CancellationToken,
        limits: &Limits,
        encode: Encode<X, O>,
        gauge: Held,
    ) -> Self {
        let now = Instant::now();
        // "No heartbeat": a deadline that saturates far ahead.
        let idle = limits.every.unwrap_or(Duration::MAX);
        let end_of_life = crate::deadline::after(now, limits.max_lifetime);
        Self {
            source,
            shutdown: shutdown.clone().cancelled_owned(),
            shutdown_token: shutdown,
            end_of_life,
            lifetime: tokio::time::sleep_until(end_of_life),
            heartbeat: tokio::time::sleep_until(crate::deadline::after(now, idle)),
            every: limits.every,
            last_frame: now,
            sent: 0,
            max_bytes: limits.max_bytes,
            cursor: start,
            state: start.map_or(State::Open, State::Start),
            encode,
            framing: limits.framing,
            gauge,
        }
    }
}

impl<S, X, O> Stream for Pieces<S, X, O>
where
    S: Stream<Item = Result<X, CursorGone>>,
    X: Item,
{
    type Item = O;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<O>> {
        let mut this = self.project();
        // One clock read per frame: for the lifetime cap and as the time the
        // frame goes out (the heartbeat's reference).
        let now = Instant::now();
        let piece = match *this.state {
            State::Done => return Poll::Ready(None),
            State::Start(cursor) => {
                *this.state = State::Open;
                Piece::Open(cursor)
            }
            State::Closing(reason) => {
                *this.state = State::Done;
                Piece::Reconnect(reason, *this.cursor)
            }
            State::Open => {
                // The fast path (the source has an item) costs two cheap
                // checks; the wakers are registered only when it waits.
                if this.shutdown_token.is_cancelled() {
                    *this.state = State::Done;
                    Piece::Reconnect(EndReason::Shutdown, *this.cursor)
                } else if now >= *this.end_of_life {
                    *this.state = State::Done;
                    Piece::Reconnect(EndReason::MaxLifetime, *this.cursor)
                } else {
                    match this.source.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(item))) => {
                            if let Some(cursor) = item.cursor() {
                                *this.cursor = Some(cursor);
                            }
                            Piece::Item(item)
                        }
                        Poll::Ready(Some(Err(gone))) => {
                            *this.state = State::Done;
                            Piece::Gone(gone)
                        }
                        Poll::Ready(None) => {
                            *this.state = State::Done;
                            Piece::Reconnect(EndReason::End, *this.cursor)
                        }
                        Poll::Pending => {
                            if this.shutdown.as_mut().poll(cx).is_ready() {
                                *this.state = State::Done;
                                Piece::Reconnect(EndReason::Shutdown, *this.cursor)
                            } else if this.lifetime.as_mut().poll(cx).is_ready() {
                                *this.state = State::Done;
                                Piece::Reconnect(EndReason::MaxLifetime, *this.cursor)
                            } else {
                                let Some(every) = *this.every else {
                                    return Poll::Pending;
                                };
                                // The timer is not moved per frame (that takes
                                // the timer driver's lock each time): when it
                                // fires, it is a heartbeat only if nothing went
                                // out for `every`; otherwise it is pushed there.
                                loop {
                                    if this.heartbeat.as_mut().poll(cx).is_pending() {
                                        return Poll::Pending;
                                    }
                                    let due = crate::deadline::after(*this.last_frame, every);
                                    if Instant::now() >= due {
                                        break;
                                    }
                                    this.heartbeat.as_mut().reset(due);
                                }
                                Piece::Heartbeat
                            }
                        }
                    }
                }
            }
        };
        let heartbeat = matches!(piece, Piece::Heartbeat);
        let (out, len) = (this.encode)(piece, *this.framing);
        *this.sent += len;
        if *this.state == State::Open && *this.sent >= *this.max_bytes {
            *this.state = State::Closing(EndReason::MaxBytes);
        }
        *this.last_frame = now;
        if let (Some(every), true) = (*this.every, heartbeat) {
            this.heartbeat
                .as_mut()
                .reset(crate::deadline::after(now, every));
        }
        Poll::Ready(Some(out))
    }
}
