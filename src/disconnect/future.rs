use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::DisconnectBody;

/// What a request holds until its response has ended: the guard that
/// cancels its token if dropped armed, and its place among the requests in
/// flight.
pub(crate) struct Armed {
    guard: DropGuard,
    _in_flight: TaskTrackerToken,
}

impl Armed {
    pub(crate) fn new(token: &CancellationToken, in_flight: TaskTrackerToken) -> Self {
        Self {
            guard: token.clone().drop_guard(),
            _in_flight: in_flight,
        }
    }

    /// The response completed: the token stays uncancelled. (Disarm, never
    /// just drop: dropping a `DropGuard` cancels.)
    pub(crate) fn disarm(self) {
        self.guard.disarm();
    }
}

pin_project! {
    /// Response future of [`Disconnect`](super::Disconnect).
    ///
    /// Dropping it before it completes cancels the request's token.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // Declared before `inner` so that it drops first: code that runs
        // while the handler future is dropped already sees the token
        // cancelled (the long-poll counters rely on this).
        armed: Option<Armed>,
        #[pin]
        inner: F,
        head: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, armed: Armed, head: bool) -> Self {
        Self {
            armed: Some(armed),
            inner,
            head,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("armed", &self.armed.is_some())
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
        let armed = this.armed.take();
        Poll::Ready(match result {
            Ok(res) => {
                // No body will be sent: the response is complete now.
                let armed = if has_no_body(*this.head, res.status()) {
                    if let Some(armed) = armed {
                        armed.disarm();
                    }
                    None
                } else {
                    armed
                };
                Ok(res.map(|body| DisconnectBody::new(body, armed)))
            }
            // The service finished, with an error: that is not the client
            // leaving.
            Err(err) => {
                if let Some(armed) = armed {
                    armed.disarm();
                }
                Err(err)
            }
        })
    }
}
