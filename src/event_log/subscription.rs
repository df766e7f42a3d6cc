use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::Stream;
use tokio_util::sync::ReusableBoxFuture;

use super::log::{Found, Make, Read};
use super::presence::Kind;
use super::{Backend, Cursor, CursorGone, Event, EventLog, Memory};

/// What a reader of a stream sees, in order: where it starts, the items, a
/// mark each time it has caught up with the newest event, and how it ends.
/// A [`Source`](crate::Source) produces these; each mode turns them into its
/// own frames ([`wire`](crate::wire)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Step<X> {
    /// The reader starts after this cursor.
    Open(Cursor),
    /// An item, with its cursor (`None` for an item of a plain stream).
    Item(X, Option<Cursor>),
    /// The reader has every event there is now.
    UpToDate(Cursor),
    /// The reader's position cannot be served; nothing follows.
    Gone(CursorGone),
    /// The log is closed and the reader has every event, up to this end;
    /// nothing follows.
    Closed(Cursor),
}

/// The steps of a reader of `log` from `cursor`, each event made into an
/// `X`. It reads the log only when polled, at most `max_batch` events at a
/// time, so a reader that stops polling holds at most one batch: nothing
/// queues up for a slow reader.
pub(crate) struct Steps<T, B, X> {
    log: EventLog<T, B>,
    make: Make<T, X>,
    /// After the last event handed out.
    cursor: Cursor,
    buffered: VecDeque<(Cursor, X)>,
    /// Once the buffered events are out: the reader has caught up.
    caught_up: bool,
    /// Once the buffered events are out: the log is closed and this is its
    /// end.
    closed: bool,
    /// Waits for an event after `cursor`; `armed` says it was set for the
    /// current cursor.
    wait: Option<ReusableBoxFuture<'static, Result<Read<X>, CursorGone>>>,
    armed: bool,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The `Open` step is next.
    Start,
    /// Read the log now, without waiting.
    Read,
    /// Wait for an event after the cursor.
    Wait,
    Done,
}

// Nothing in it is structurally pinned (the wait future is boxed).
impl<T, B, X> Unpin for Steps<T, B, X> {}

impl<T, B, X> Drop for Steps<T, B, X> {
    fn drop(&mut self) {
        self.log.inner.presence.leave(Kind::Reader);
    }
}

impl<T, B, X> Steps<T, B, X> {
    /// Steps from `cursor`; with `open` the first is `Step::Open`.
    pub(crate) fn new(log: EventLog<T, B>, cursor: Cursor, make: Make<T, X>, open: bool) -> Self {
        log.inner.presence.enter(Kind::Reader);
        Self {
            log,
            make,
            cursor,
            buffered: VecDeque::new(),
            caught_up: false,
            closed: false,
            wait: None,
            armed: false,
            state: if open { State::Start } else { State::Read },
        }
    }

    /// After the last event handed out (or the start).
    pub(crate) fn cursor(&self) -> Cursor {
        self.cursor
    }
}

impl<T, B, X> Stream for Steps<T, B, X>
where
    T: Send + Sync + 'static,
    B: Backend,
    X: Send + 'static,
{
    type Item = Step<X>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Step<X>>> {
        let this = &mut *self;
        loop {
            if let Some((cursor, item)) = this.buffered.pop_front() {
                this.cursor = cursor;
                return Poll::Ready(Some(Step::Item(item, Some(cursor))));
            }
            if this.closed {
                this.closed = false;
                this.state = State::Done;
                return Poll::Ready(Some(Step::Closed(this.cursor)));
            }
            if std::mem::take(&mut this.caught_up) {
                return Poll::Ready(Some(Step::UpToDate(this.cursor)));
            }
            let read = match this.state {
                State::Done => return Poll::Ready(None),
                State::Start => {
                    this.state = State::Read;
                    return Poll::Ready(Some(Step::Open(this.cursor)));
                }
                State::Read => match this.log.find(this.cursor, this.make) {
                    Ok(Found::Batch(read)) => Ok(read),
                    // Ahead of a lagging log: wait for it to catch up.
                    Ok(Found::Ahead) => {
                        this.state = State::Wait;
                        continue;
                    }
                    Err(gone) => Err(gone),
                },
                State::Wait => {
                    if !this.armed {
                        let (log, cursor, make) = (this.log.clone(), this.cursor, this.make);
                        let wait = async move { log.wait_with(cursor, make).await };
                        match &mut this.wait {
                            Some(slot) => slot.set(wait),
                            None => this.wait = Some(ReusableBoxFuture::new(wait)),
                        }
                        this.armed = true;
                    }
                    let Some(wait) = this.wait.as_mut() else {
                        unreachable!("armed above")
                    };
                    let read = ready!(wait.poll(cx));
                    this.armed = false;
                    read
                }
            };
            match read {
                Ok(read) => {
                    this.state = if read.caught_up {
                        State::Wait
                    } else {
                        State::Read
                    };
                    this.caught_up = read.caught_up && !read.closed;
                    this.closed = read.closed;
                    this.buffered.extend(read.events);
                }
                Err(gone) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Step::Gone(gone)));
                }
            }
        }
    }
}

/// The events of an [`EventLog`] after a cursor, as a [`Stream`].
///
/// Created by [`EventLog::subscribe`]. It reads the log only when polled,
/// at most [`max_batch`](super::EventLogBuilder::max_batch) events at a
/// time, so a consumer that stops polling holds at most one batch: nothing
/// queues up for a slow reader. When its cursor is evicted (the reader fell
/// behind retention) it yields one `Err(CursorGone)` and ends; when it
/// reaches the end of a [closed](EventLog::close) log it ends.
pub struct Subscription<T, B = Memory> {
    steps: Steps<T, B, T>,
}

impl<T, B> std::fmt::Debug for Subscription<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.steps.cursor)
            .field("buffered", &self.steps.buffered.len())
            .field("done", &(self.steps.state == State::Done))
            .finish_non_exhaustive()
    }
}

fn data<T: Clone>(entry: &super::state::Entry<T>, _: Cursor) -> T {
    entry.data.clone()
}

impl<T: Clone + Send + Sync + 'static, B: Backend> EventLog<T, B> {
    /// The events after `cursor`, as a stream. See [`Subscription`].
    #[must_use]
    pub fn subscribe(&self, cursor: Cursor) -> Subscription<T, B> {
        Subscription {
            steps: Steps::new(self.clone(), cursor, data, false),
        }
    }
}

impl<T, B> Subscription<T, B> {
    /// The cursor after the last event this stream has yielded (or the one it
    /// started from).
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        self.steps.cursor
    }
}

impl<T: Clone + Send + Sync + 'static, B: Backend> Stream for Subscription<T, B> {
    type Item = Result<Event<T>, CursorGone>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return Poll::Ready(match ready!(Pin::new(&mut self.steps).poll_next(cx)) {
                Some(Step::Item(data, cursor)) => Some(Ok(Event {
                    cursor: cursor.unwrap_or(self.steps.cursor),
                    data,
                })),
                Some(Step::Gone(gone)) => Some(Err(gone)),
                Some(Step::Open(_) | Step::UpToDate(_)) => continue,
                Some(Step::Closed(_)) | None => None,
            });
        }
    }
}
