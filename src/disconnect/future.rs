use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::DisconnectBody;

pin_project! {
    /// Response future of [`Disconnect`](super::Disconnect).
    ///
    /// Dropping it before it completes cancels the request's token.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // Declared before `inner` so that it drops first: code that runs
        // while the handler future is dropped already sees the token
        // cancelled (the long-poll counters rely on this).
        guard: Option<DropGuard>,
        #[pin]
        inner: F,
        head: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, token: CancellationToken, head: bool) -> Self {
        Self {
            guard: Some(token.drop_guard()),
            inner,
            head,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("armed", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// True when the server will not send a body for this response at all, so
/// it drops the body without polling it (hyper `proto/h1/role.rs`).
fn has_no_body(head: bool, status: StatusCode) -> bool {
    head || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<DisconnectBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(match result {
            Ok(res) => {
                // No body will be sent: the response is complete now.
                let guard = if has_no_body(*this.head, res.status()) {
                    guard.map(DropGuard::disarm);
                    None
                } else {
                    guard
                };
                Ok(res.map(|body| DisconnectBody::new(body, guard)))
            }
            // The service finished, with an error: that is not the client
            // leaving. `guard` is disarmed here.
            Err(err) => {
                guard.map(DropGuard::disarm);
                Err(err)
            }
        })
    }
}
