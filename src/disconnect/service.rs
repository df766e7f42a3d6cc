use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::context::{RequestContext, Shared};
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

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The one allocation the layer makes per request: the token's node
        // (and the extension's entry).
        let token = CancellationToken::new();
        let head = req.method() == Method::HEAD;
        let armed = Armed::new(&token, self.shared.in_flight.token());
        req.extensions_mut().insert(RequestContext {
            token,
            shared: Arc::clone(&self.shared),
        });
        ResponseFuture::new(self.inner.call(req), armed, head)
    }
}
