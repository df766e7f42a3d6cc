//! What a stream carries: the steps of a reader of a log, or the items of
//! any `Stream`. The streaming and WebSocket modes take a [`Source`]; the
//! steps are the same for both, only the framing differs.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use futures_util::stream::StreamExt;
use futures_util::Stream;
use serde::Serialize;

use crate::event_log::backend::sealed::StartRefusal as _;
use crate::event_log::{Backend, Cursor, CursorGone, Entry, LogReader, Step, Steps};
use crate::wire::JsonItem;

/// Something a stream can carry, as items of type `X`: a
/// [`LogReader`] (the events after the client's position in a log, with
/// cursors, an `open` frame first and an in-band `gone` when the position
/// cannot be served), or any [`Stream`] of serializable items (no cursors:
/// a client that reconnects cannot resume).
///
/// Sealed: the crate's modes drive the steps.
pub trait Source<X>: sealed::IntoSteps<X> {}

impl<X, S: sealed::IntoSteps<X>> Source<X> for S {}

/// The steps of a source, boxed (one allocation per stream).
pub(crate) type BoxSteps<X> = Pin<Box<dyn Stream<Item = Step<X>> + Send>>;

pub(crate) mod sealed {
    use super::{BoxSteps, Response};

    // `pub` in a private module: nameable by no one outside the crate.
    #[allow(unreachable_pub)]
    pub trait IntoSteps<X> {
        /// Whether there is nothing to send: the position is the end of a
        /// closed log.
        fn finished(&self) -> bool {
            false
        }

        /// The steps, or the answer for a source that cannot be read now
        /// (`503` while a Redis log is unreachable).
        #[allow(clippy::result_large_err)] // once per request, never `?`-propagated
        fn into_steps(self) -> Result<BoxSteps<X>, Response>;
    }
}

/// An event of a log with its shared JSON (made once per event).
pub(crate) fn json_item<T: Serialize>(entry: &Entry<T>, cursor: Cursor) -> JsonItem {
    JsonItem {
        id: Some(cursor),
        json: entry.encoded(cursor).map(crate::wire::Json::Event),
    }
}

/// The steps of a [`LogReader`]: the live steps from its position, or one
/// `gone` step for a position the log cannot serve.
pub(crate) enum ReaderSteps<T, B, X> {
    /// Reading from the position.
    Live(Steps<T, B, X>),
    /// The position is gone: one step.
    Gone(Option<CursorGone>),
}

impl<T, B, X> std::fmt::Debug for ReaderSteps<T, B, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Live(steps) => f.debug_tuple("Live").field(&steps.cursor()).finish(),
            Self::Gone(gone) => f.debug_tuple("Gone").field(gone).finish(),
        }
    }
}

impl<T, B, X> Stream for ReaderSteps<T, B, X>
where
    T: Send + Sync + 'static,
    B: Backend,
    X: Send + 'static,
{
    type Item = Step<X>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Step<X>>> {
        match &mut *self {
            Self::Live(steps) => Pin::new(steps).poll_next(cx),
            Self::Gone(gone) => Poll::Ready(gone.take().map(Step::Gone)),
        }
    }
}

impl<T, B: Backend> LogReader<T, B> {
    /// The steps of this reader, each event made by `make`.
    #[allow(clippy::result_large_err)] // once per request, never `?`-propagated
    pub(crate) fn steps<X>(
        self,
        make: crate::event_log::Make<T, X>,
    ) -> Result<ReaderSteps<T, B, X>, Response> {
        match self.start {
            Ok(cursor) => Ok(ReaderSteps::Live(Steps::new(self.log, cursor, make, true))),
            Err(refused) => refused
                .into_gone()
                .map(|gone| ReaderSteps::Gone(Some(gone))),
        }
    }
}

impl<T, B> sealed::IntoSteps<JsonItem> for LogReader<T, B>
where
    T: Serialize + Send + Sync + 'static,
    B: Backend,
{
    fn finished(&self) -> bool {
        self.finished
    }

    fn into_steps(self) -> Result<BoxSteps<JsonItem>, Response> {
        Ok(Box::pin(self.steps(json_item::<T>)?))
    }
}

/// An item of a plain stream, serialized.
fn plain<I: Serialize>(item: I) -> Step<JsonItem> {
    Step::Item(JsonItem::plain(&item), None)
}

impl<S> sealed::IntoSteps<JsonItem> for S
where
    S: Stream + Send + 'static,
    S::Item: Serialize,
{
    fn into_steps(self) -> Result<BoxSteps<JsonItem>, Response> {
        Ok(Box::pin(self.map(plain::<S::Item>)))
    }
}
