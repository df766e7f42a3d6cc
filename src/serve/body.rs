//! The request body as handlers see it: the time between its frames is
//! bounded while a handler waits for them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// The error a request body ends with when the client sent nothing for
/// [`ServeConfig::body_read_timeout`](super::ServeConfig::body_read_timeout)
/// while a handler waited for it.
///
/// axum's body extractors (`Bytes`, `String`, `Json`, `Form`) answer it
/// `400 Bad Request`; a handler that reads the body itself finds it as the
/// source of the `axum::Error` (`err.into_inner().downcast_ref::<BodyTimeout>()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodyTimeout {
    /// The configured limit.
    pub limit: Duration,
}

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request body stalled: no bytes from the client for {:?} (`ServeConfig::body_read_timeout`)",
            self.limit
        )
    }
}

impl std::error::Error for BodyTimeout {}

pin_project! {
    /// A request body whose next frame must come within a limit once the
    /// handler waits for it.
    pub(crate) struct StallBody<B> {
        #[pin]
        inner: B,
        limit: Option<Duration>,
        // Made at the first wait only: a body that arrives whole (most do)
        // carries no timer.
        stall: Option<Pin<Box<Sleep>>>,
        waiting: bool,
    }
}

impl<B> StallBody<B> {
    pub(crate) fn new(inner: B, limit: Option<Duration>) -> Self {
        Self {
            inner,
            limit,
            stall: None,
            waiting: false,
        }
    }
}

impl<B> Body for StallBody<B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(limit) = *this.limit else {
            return Poll::Pending;
        };
        if !*this.waiting {
            *this.waiting = true;
            let deadline = crate::deadline::after(Instant::now(), limit);
            match this.stall {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => *this.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let expired = this
            .stall
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if expired {
            *this.limit = None;
            return Poll::Ready(Some(Err(Box::new(BodyTimeout { limit }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
