//! The framing-independent part of a streamed response: the source's steps,
//! heartbeats, caps and shutdown, produced inside the body when hyper polls
//! it (no task), each frame written by the framing as bytes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::event_log::{Cursor, Step};
use crate::stats::Held;
use crate::wire::{Control, EndReason, Frame, Framing};

/// A busy stream looks at shutdown and the lifetime cap once per this
/// many frames.
const CHECK_EVERY: u32 = 32;

/// The limits of one response.
pub(crate) struct Limits {
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) max_bytes: usize,
    pub(crate) max_lifetime: Duration,
}

pin_project! {
    /// Turns a source's steps into framed bytes: heartbeats when idle, a
    /// final frame at a cap, on shutdown or at the source's end.
    pub(crate) struct Engine<S, X, F> {
        #[pin]
        source: S,
        framing: F,
        // Checked (an atomic load) before each step; its future is polled,
        // to be woken, only when the source waits.
        shutdown_token: CancellationToken,
        #[pin]
        shutdown: WaitForCancellationFutureOwned,
        // Likewise: compared before each step, polled when the source waits.
        end_of_life: Instant,
        #[pin]
        lifetime: Sleep,
        #[pin]
        heartbeat: Sleep,
        every: Option<Duration>,
        // When the stream last went idle (the source waited after frames
        // went out): the heartbeat is due `every` after.
        last_frame: Instant,
        // Frames went out since the stream last went idle.
        busy: bool,
        // Frames produced: every `CHECK_EVERY`th one looks at shutdown and
        // the lifetime cap.
        ticks: u32,
        sent: usize,
        max_bytes: usize,
        // The last cursor sent (`None` for a plain stream).
        cursor: Option<Cursor>,
        state: State,
        // This stream's place in the `streaming` gauge.
        gauge: Held,
        _item: std::marker::PhantomData<fn() -> X>,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// The next frame is the final one.
    Closing(EndReason),
    Done,
}

/// A frame before framing.
enum Owned<X> {
    Item(X),
    Control(Control),
    Heartbeat,
}

impl<S, X, F> Engine<S, X, F> {
    pub(crate) fn new(
        source: S,
        framing: F,
        shutdown: CancellationToken,
        limits: &Limits,
        gauge: Held,
    ) -> Self {
        let now = Instant::now();
        // "No heartbeat": a deadline that saturates far ahead.
        let idle = limits.heartbeat.unwrap_or(Duration::MAX);
        let end_of_life = crate::deadline::after(now, limits.max_lifetime);
        Self {
            source,
            framing,
            shutdown: shutdown.clone().cancelled_owned(),
            shutdown_token: shutdown,
            end_of_life,
            lifetime: tokio::time::sleep_until(end_of_life),
            heartbeat: tokio::time::sleep_until(crate::deadline::after(now, idle)),
            every: limits.heartbeat,
            last_frame: now,
            busy: false,
            ticks: 0,
            sent: 0,
            max_bytes: limits.max_bytes,
            cursor: None,
            state: State::Open,
            gauge,
            _item: std::marker::PhantomData,
        }
    }
}

impl<S, X, F> Stream for Engine<S, X, F>
where
    S: Stream<Item = Step<X>>,
    F: Framing<X>,
{
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut this = self.project();
        loop {
            let reconnect = |reason, cursor| Owned::Control(Control::Reconnect { reason, cursor });
            // A busy stream (the source always has a step) looks at shutdown
            // (a lock in the token) and at the clock only every
            // `CHECK_EVERY` frames; a stream whose source waits is woken by
            // their futures instead.
            let check = *this.ticks % CHECK_EVERY == 0;
            *this.ticks = this.ticks.wrapping_add(1);
            let frame = match *this.state {
                State::Done => return Poll::Ready(None),
                State::Closing(reason) => {
                    *this.state = State::Done;
                    reconnect(reason, *this.cursor)
                }
                State::Open if check && this.shutdown_token.is_cancelled() => {
                    *this.state = State::Done;
                    reconnect(EndReason::Shutdown, *this.cursor)
                }
                State::Open if check && Instant::now() >= *this.end_of_life => {
                    *this.state = State::Done;
                    reconnect(EndReason::MaxLifetime, *this.cursor)
                }
                State::Open => match this.source.as_mut().poll_next(cx) {
                    Poll::Ready(Some(step)) => match step {
                        Step::Open(cursor) => {
                            *this.cursor = Some(cursor);
                            Owned::Control(Control::Open { cursor })
                        }
                        Step::Item(item, cursor) => {
                            if cursor.is_some() {
                                *this.cursor = cursor;
                            }
                            Owned::Item(item)
                        }
                        Step::UpToDate(cursor) => Owned::Control(Control::UpToDate { cursor }),
                        Step::Gone(gone) => {
                            *this.state = State::Done;
                            Owned::Control(Control::Gone(gone))
                        }
                        Step::Closed(cursor) => {
                            *this.state = State::Done;
                            *this.cursor = Some(cursor);
                            Owned::Control(Control::Closed { cursor })
                        }
                    },
                    Poll::Ready(None) => {
                        *this.state = State::Done;
                        reconnect(EndReason::End, *this.cursor)
                    }
                    Poll::Pending => {
                        // Going idle: the last frame went out just now.
                        if std::mem::take(this.busy) {
                            *this.last_frame = Instant::now();
                        }
                        if this.shutdown.as_mut().poll(cx).is_ready() {
                            *this.state = State::Done;
                            reconnect(EndReason::Shutdown, *this.cursor)
                        } else if this.lifetime.as_mut().poll(cx).is_ready() {
                            *this.state = State::Done;
                            reconnect(EndReason::MaxLifetime, *this.cursor)
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
                            Owned::Heartbeat
                        }
                    }
                },
            };
            let heartbeat = matches!(frame, Owned::Heartbeat);
            let out = match frame {
                Owned::Item(item) => this.framing.frame(Frame::Item(item)),
                Owned::Control(control) => this.framing.frame(Frame::Control(&control)),
                Owned::Heartbeat => this.framing.frame(Frame::Heartbeat),
            };
            if out.is_empty() {
                // Nothing to send for this one (an "up to date" mark in a
                // framing that does not tell it); an empty chunk would end
                // an HTTP/1.1 body.
                if heartbeat {
                    this.heartbeat
                        .as_mut()
                        .reset(crate::deadline::after(Instant::now(), Duration::MAX));
                }
                continue;
            }
            *this.sent += out.len();
            if *this.state == State::Open && *this.sent >= *this.max_bytes {
                *this.state = State::Closing(EndReason::MaxBytes);
            }
            *this.busy = true;
            if let (Some(every), true) = (*this.every, heartbeat) {
                let now = Instant::now();
                *this.last_frame = now;
                *this.busy = false;
                this.heartbeat
                    .as_mut()
                    .reset(crate::deadline::after(now, every));
            }
            return Poll::Ready(Some(out));
        }
    }
}
