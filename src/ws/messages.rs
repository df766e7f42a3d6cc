use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::Stream;
use pin_project_lite::pin_project;

use super::CloseReason;
use crate::event_log::Step;
use crate::wire::{json_text, Control, Frame, JsonItem};

pin_project! {
    /// The text frames of a [`Source`](crate::Source), for
    /// [`Connection::run`](super::Connection::run): made by [`messages`](super::messages).
    pub(crate) struct Messages<S> {
        #[pin]
        steps: S,
        // Sent after the `gone` or `closed` frame.
        close: Option<CloseReason>,
    }
}

impl<S> Messages<S> {
    pub(crate) fn new(steps: S) -> Self {
        Self { steps, close: None }
    }
}

fn text(frame: &Frame<'_, JsonItem>) -> Option<Message> {
    // JSON is UTF-8: the check cannot fail.
    json_text(frame)
        .and_then(|text| Utf8Bytes::try_from(text).ok())
        .map(Message::Text)
}

impl<S: Stream<Item = Step<JsonItem>>> Stream for Messages<S> {
    type Item = Result<Message, CloseReason>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if let Some(reason) = this.close.take() {
            return Poll::Ready(Some(Err(reason)));
        }
        loop {
            let message = match ready!(this.steps.as_mut().poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Step::Open(cursor)) => text(&Frame::Control(&Control::Open { cursor })),
                Some(Step::Item(item, _)) => text(&Frame::Item(item)),
                Some(Step::UpToDate(_)) => None,
                Some(Step::Gone(gone)) => {
                    let control = Control::Gone(gone);
                    let message = text(&Frame::Control(&control));
                    let Control::Gone(gone) = control else {
                        unreachable!("made above")
                    };
                    *this.close = Some(CloseReason::CursorGone(gone));
                    message
                }
                // The end of a closed log: the `closed` frame, then `1000`.
                Some(Step::Closed(cursor)) => {
                    *this.close = Some(CloseReason::server(
                        super::close_code::NORMAL,
                        super::close::STREAM_CLOSED,
                    ));
                    text(&Frame::Control(&Control::Closed { cursor }))
                }
            };
            if let Some(message) = message {
                return Poll::Ready(Some(Ok(message)));
            }
        }
    }
}
