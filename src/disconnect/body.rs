use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::Armed;

pin_project! {
    /// Response body of [`Disconnect`](super::Disconnect).
    ///
    /// Dropping it before it has ended cancels the request's token. "Ended"
    /// means any of: it returned `None`; after a frame it reports
    /// [`is_end_stream`](Body::is_end_stream) or an exact size hint of 0
    /// (hyper stops polling there and drops it); or it was empty from the
    /// start. A body that returns an error is not ended: the response is
    /// incomplete, and the token is cancelled when the server drops it.
    pub struct DisconnectBody<B> {
        armed: Option<Armed>,
        #[pin]
        inner: B,
    }
}

impl<B: Body> DisconnectBody<B> {
    pub(crate) fn new(inner: B, armed: Option<Armed>) -> Self {
        let armed = if is_done(&inner) {
            if let Some(armed) = armed {
                armed.disarm();
            }
            None
        } else {
            armed
        };
        Self { armed, inner }
    }
}

impl<B> DisconnectBody<B> {
    /// Gets a reference to the inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Consumes `self`, returning the inner body.
    ///
    /// The token is then no longer tied to this body: it is cancelled now if
    /// the body had not ended.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> std::fmt::Debug for DisconnectBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisconnectBody")
            .field("armed", &self.armed.is_some())
            .finish_non_exhaustive()
    }
}

fn is_done<B: Body>(body: &B) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

impl<B: Body> Body for DisconnectBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        let ended = match &frame {
            None => true,
            Some(Ok(_)) => is_done(&*this.inner),
            Some(Err(_)) => false,
        };
        if ended {
            if let Some(armed) = this.armed.take() {
                armed.disarm();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
