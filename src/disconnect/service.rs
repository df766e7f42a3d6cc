use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower::Service;

use super::context::{Lent, Shared};
use super::future::Armed;
use super::{DisconnectBody, ResponseFuture};

/// Middleware that gives every request a client-disconnect token.
///
/// Created by [`DisconnectLayer`](super::DisconnectLayer); see the
/// [module docs](crate::disconnect).
#[derive(Clone, Debug)]
pub struct Disconnect<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Disconnect<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// Gets a reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Disconnect<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<DisconnectBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Nothing is allocated here: the request's context is lent to the
        // extractors while its future runs, and its token made only if one
        // asks for it.
        let head = req.method() == Method::HEAD;
        let armed = Armed::new(
            Lent {
                shared: Arc::clone(&self.shared),
                token: None,
            },
            self.shared.in_flight.token(),
        );
        let inner = &mut self.inner;
        ResponseFuture::new(|| inner.call(req), armed, head)
    }
}
