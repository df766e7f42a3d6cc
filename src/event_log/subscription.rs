use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::Stream;
use tokio_util::sync::ReusableBoxFuture;

use super::{Backend, Batch, Cursor, CursorGone, Event, EventLog, Memory};

/// The events of an [`EventLog`] after a cursor, as a [`Stream`].
///
/// Created by [`EventLog::subscribe`]. It reads the log only when polled,
/// at most [`max_batch`](super::EventLogBuilder::max_batch) events at a
/// time, so a consumer that stops polling holds at most one batch: nothing
/// queues up for a slow reader. When its cursor is evicted (the reader fell
/// behind retention) it yields one `Err(CursorGone)` and ends.
pub struct Subscription<T, B = Memory> {
    log: EventLog<T, B>,
    cursor: Cursor,
    buffered: VecDeque<Event<T>>,
    wait: ReusableBoxFuture<'static, Result<Batch<T>, CursorGone>>,
    waiting: bool,
    done: bool,
}

// Nothing in it is structurally pinned (the wait future is boxed).
impl<T, B> Unpin for Subscription<T, B> {}

impl<T, B> std::fmt::Debug for Subscription<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.cursor)
            .field("buffered", &self.buffered.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static, B: Backend> EventLog<T, B> {
    /// The events after `cursor`, as a stream. See [`Subscription`].
    #[must_use]
    pub fn subscribe(&self, cursor: Cursor) -> Subscription<T, B> {
        let log = self.clone();
        Subscription {
            log: self.clone(),
            cursor,
            buffered: VecDeque::new(),
            wait: ReusableBoxFuture::new(async move { log.wait(cursor).await }),
            waiting: true,
            done: false,
        }
    }
}

impl<T, B> Subscription<T, B> {
    /// The cursor after the last event this stream has yielded (or the one it
    /// started from).
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }
}

impl<T: Clone + Send + Sync + 'static, B: Backend> Stream for Subscription<T, B> {
    type Item = Result<Event<T>, CursorGone>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.buffered.pop_front() {
                this.cursor = event.cursor;
                return Poll::Ready(Some(Ok(event)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if !this.waiting {
                let log = this.log.clone();
                let cursor = this.cursor;
                this.wait.set(async move { log.wait(cursor).await });
                this.waiting = true;
            }
            let result = ready!(this.wait.poll(cx));
            this.waiting = false;
            match result {
                Ok(batch) => this.buffered.extend(batch.events),
                Err(gone) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(gone)));
                }
            }
        }
    }
}
