use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;

use super::CloseReason;
use crate::event_log::{Backend, Cursor, CursorGone, Event, EventLog, Memory, Subscription};

/// The outgoing messages of [`Connection::serve_log`](super::Connection::serve_log),
/// as a stream for [`Connection::run`](super::Connection::run): to merge
/// the log with messages of your own (see `examples/chat.rs`).
///
/// | message | text frame |
/// |---|---|
/// | first | `{"control":"open","cursor":"<start>"}`: where this socket starts; a client that connected without a cursor resumes from here |
/// | each event | `{"id":"<cursor>","data":<json>}` |
/// | an event that cannot be serialized | `{"control":"skipped","id":"<cursor>","message":"…"}` |
/// | the cursor cannot be served (last) | `{"control":"gone", …the 410 body…}`, then the stream yields [`CloseReason::CursorGone`]: close code `4410` |
///
/// The log is read only when the socket can take more (see
/// [`Subscription`]).
pub fn log_messages<T, B>(
    log: &EventLog<T, B>,
    start: Result<Cursor, CursorGone>,
) -> LogMessages<T, B>
where
    T: Clone + Send + Sync + 'static,
    B: Backend,
{
    let state = match start {
        Ok(cursor) => State::Open(cursor),
        Err(gone) => State::Gone(gone),
    };
    let subscription = match &state {
        State::Open(cursor) => Some(log.subscribe(*cursor)),
        _ => None,
    };
    LogMessages {
        subscription,
        state,
    }
}

/// The stream returned by [`log_messages`].
pub struct LogMessages<T, B = Memory> {
    subscription: Option<Subscription<T, B>>,
    state: State,
}

enum State {
    /// Send the `open` control message first.
    Open(Cursor),
    Events,
    /// Send the `gone` control message, then end with the reason.
    Gone(CursorGone),
    Close(CursorGone),
    Done,
}

impl<T, B> std::fmt::Debug for LogMessages<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMessages")
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

// Nothing is structurally pinned (`Subscription` is `Unpin`).
impl<T, B> Unpin for LogMessages<T, B> {}

fn text(value: &impl Serialize) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(value).unwrap_or_default(),
    ))
}

fn event<T: Serialize>(event: &Event<T>) -> Message {
    match serde_json::to_string(event) {
        Ok(s) => Message::Text(Utf8Bytes::from(s)),
        Err(err) => text(&json!({
            "control": "skipped",
            "id": event.cursor,
            "message": format!("event could not be serialized: {err}"),
        })),
    }
}

fn gone(gone: &CursorGone) -> Message {
    let mut value = serde_json::to_value(gone).unwrap_or_default();
    value["control"] = json!("gone");
    text(&value)
}

impl<T, B> Stream for LogMessages<T, B>
where
    T: Clone + Serialize + Send + Sync + 'static,
    B: Backend,
{
    type Item = Result<Message, CloseReason>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Done) {
            State::Open(cursor) => {
                this.state = State::Events;
                Poll::Ready(Some(Ok(text(&json!({
                    "control": "open",
                    "cursor": cursor,
                })))))
            }
            State::Gone(cursor_gone) => {
                let msg = gone(&cursor_gone);
                this.state = State::Close(cursor_gone);
                Poll::Ready(Some(Ok(msg)))
            }
            State::Close(cursor_gone) => {
                Poll::Ready(Some(Err(CloseReason::CursorGone(cursor_gone))))
            }
            State::Done => Poll::Ready(None),
            State::Events => {
                this.state = State::Events;
                let Some(subscription) = this.subscription.as_mut() else {
                    return Poll::Ready(None);
                };
                match Pin::new(subscription).poll_next(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(e))) => Poll::Ready(Some(Ok(event(&e)))),
                    Poll::Ready(Some(Err(cursor_gone))) => {
                        let msg = gone(&cursor_gone);
                        this.state = State::Close(cursor_gone);
                        Poll::Ready(Some(Ok(msg)))
                    }
                    Poll::Ready(None) => {
                        this.state = State::Done;
                        Poll::Ready(None)
                    }
                }
            }
        }
    }
}
