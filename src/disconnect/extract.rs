use std::convert::Infallible;
use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::context::RequestContext;
use crate::response::{rejection, Reject};

/// Extractor for the request's client-disconnect token.
///
/// Dereferences to the [`CancellationToken`], which is cancelled when the
/// client is gone (see the [module docs](crate::disconnect)). Clone it, or
/// take a [`child_token`](CancellationToken::child_token), to stop work
/// spawned for this request.
///
/// Requires [`DisconnectLayer`](super::DisconnectLayer); without it the
/// extractor rejects with [`MissingDisconnectLayer`] (500). Use
/// `Option<DisconnectToken>` to run without it.
#[derive(Clone, Debug)]
pub struct DisconnectToken {
    ctx: RequestContext,
}

impl DisconnectToken {
    /// The token cancelled when the client is gone.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.ctx.token
    }

    /// Consumes `self`, returning the client-disconnect token.
    #[must_use]
    pub fn into_token(self) -> CancellationToken {
        self.ctx.token
    }

    /// The server's shutdown token (from
    /// [`DisconnectLayer::shutdown`](super::DisconnectLayer::shutdown)).
    /// It is distinct from the disconnect token: a handler can tell the two
    /// apart.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.ctx.shared.shutdown
    }
}

impl Deref for DisconnectToken {
    type Target = CancellationToken;

    fn deref(&self) -> &CancellationToken {
        &self.ctx.token
    }
}

impl<S: Sync> FromRequestParts<S> for DisconnectToken {
    type Rejection = MissingDisconnectLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        RequestContext::of(parts)
            .cloned()
            .map(|ctx| Self { ctx })
            .ok_or(MissingDisconnectLayer)
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for DisconnectToken {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(RequestContext::of(parts).cloned().map(|ctx| Self { ctx }))
    }
}

/// Rejection used when [`DisconnectLayer`](super::DisconnectLayer) is not
/// installed: a developer error, answered with `500 Internal Server Error`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct MissingDisconnectLayer;

impl Reject for MissingDisconnectLayer {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "missing request extension: add `axum_longpoll::DisconnectLayer` to the router \
             (`Router::layer(DisconnectLayer::new())`)",
        )
    }
}

rejection!(MissingDisconnectLayer);

impl MissingDisconnectLayer {
    /// The context the layer inserted, or this rejection.
    pub(crate) fn check(parts: &Parts) -> Result<&RequestContext, Self> {
        RequestContext::of(parts).ok_or(Self)
    }
}
