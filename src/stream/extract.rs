use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, Limits};
use super::StreamConfig;
use crate::disconnect::{MissingDisconnectLayer, RequestContext};
use crate::response::{no_store, rejection, Overloaded, Reject};
use crate::source::Source;
use crate::stats::{StreamEnd, Tracked};
use crate::wire::{Framing, JsonItem, Ndjson, Sse, STREAM_CLOSED};

/// `X-Accel-Buffering: no` tells nginx not to buffer the response.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Extractor that turns a [`Source`] into a streamed response: NDJSON, SSE
/// or a framing of your own, flushed per event, with heartbeats, caps and a
/// final frame.
///
/// See the [module docs](crate::stream). Requires
/// [`DisconnectLayer`](crate::DisconnectLayer).
///
/// Its response is counted in [`Stats`](crate::Stats) under its framing's
/// mode (`ndjson`, `sse`, `framed`) and takes one of the
/// [`max_in_flight`](StreamConfig::max_in_flight) places until the stream
/// ends; over the cap it is `503` with `Retry-After`.
#[derive(Debug)]
pub struct Streaming {
    ctx: RequestContext,
    limits: StreamLimits,
}

/// What a stream needs of [`StreamConfig`].
#[derive(Clone, Copy, Debug)]
struct StreamLimits {
    heartbeat: Option<Duration>,
    max_bytes: usize,
    max_lifetime: Duration,
    sse_retry: Option<Duration>,
    max_in_flight: usize,
    retry_after: Duration,
}

impl<S: Sync> FromRequestParts<S> for Streaming {
    type Rejection = StreamRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = MissingDisconnectLayer::check(parts)
            .map_err(StreamRejection::MissingLayer)?
            .clone();
        let config: StreamConfig = ctx.config(parts);
        Ok(Self {
            ctx,
            limits: StreamLimits {
                heartbeat: config.heartbeat,
                max_bytes: config.max_bytes,
                max_lifetime: config.max_lifetime,
                sse_retry: config.sse_retry,
                max_in_flight: config.max_in_flight,
                retry_after: config.retry_after,
            },
        })
    }
}

/// Rejection of [`Streaming`]: a missing layer (`500`).
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamRejection {
    /// [`DisconnectLayer`](crate::DisconnectLayer) is not installed.
    MissingLayer(MissingDisconnectLayer),
}

impl Reject for StreamRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer(missing) => missing.status(),
        }
    }

    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer(missing) => write!(f, "{missing} to use `Streaming`"),
        }
    }
}

rejection!(StreamRejection);

impl Streaming {
    /// The client-disconnect token: cancelled when the client leaves
    /// mid-stream. A producer task can stop on it.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.ctx.token
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.ctx.shared.shutdown
    }

    /// Streams `source` as NDJSON (`application/x-ndjson`): one JSON object
    /// per line (see [`wire`](crate::wire) for every line).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{extract::State, response::Response};
    /// use axum_longpoll::{EventLog, Resume, Streaming};
    /// use futures_util::stream;
    ///
    /// // The events after the client's position; a position that is gone is
    /// // told in-band (`{"control":"gone",…}`).
    /// async fn events(State(log): State<EventLog<Arc<str>>>, resume: Resume, s: Streaming) -> Response {
    ///     s.ndjson(log.reader(resume))
    /// }
    ///
    /// // Any stream of serializable items (no cursors, so no resume).
    /// async fn progress(s: Streaming) -> Response {
    ///     s.ndjson(stream::iter([10, 50, 100]))
    /// }
    /// ```
    pub fn ndjson(self, source: impl Source<JsonItem>) -> Response {
        self.framed(Ndjson, source)
    }

    /// Streams `source` as server-sent events (`text/event-stream`), `id:` =
    /// cursor; the first and the last frame carry `retry:`
    /// ([`StreamConfig::sse_retry`], with up to 50 % jitter).
    ///
    /// A position that is gone is answered in-band too (a `200` whose only
    /// event is `gone`, with `id:` = the restart cursor), never with a
    /// `410`: `EventSource` cannot read a failed response and closes for
    /// good on one.
    pub fn sse(self, source: impl Source<JsonItem>) -> Response {
        let retry = self
            .limits
            .sse_retry
            .map(|retry| retry + retry.mul_f64(fastrand::f64() / 2.0));
        self.framed(Sse::new().retry(retry), source)
    }

    /// Streams `source` written by `framing`: the engine of
    /// [`ndjson`](Self::ndjson) and [`sse`](Self::sse) (heartbeats, caps,
    /// shutdown, the disconnect token) for another event format.
    ///
    /// A position at the end of a closed log is answered `204 No Content`
    /// with `Stream-Closed: true` and no stream: nothing will ever follow,
    /// and a `204` is what stops `EventSource` from reconnecting.
    pub fn framed<X, F>(self, framing: F, source: impl Source<X>) -> Response
    where
        X: Send + 'static,
        F: Framing<X>,
    {
        let mode = framing.mode();
        let counters = self.ctx.shared.stats.counters_arc();
        if source.finished() {
            Tracked::refuse(&counters, mode, StreamEnd::Closed);
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut()
                .insert(STREAM_CLOSED, HeaderValue::from_static("true"));
            return no_store(res);
        }
        let limits = self.limits;
        let Some(tracked) = Tracked::start(
            counters,
            mode,
            limits.max_in_flight,
            StreamEnd::Rejected,
            None,
        ) else {
            return Overloaded {
                what: "streams are in flight",
                setting: "StreamConfig::max_in_flight",
                limit: limits.max_in_flight,
                retry_after: limits.retry_after,
            }
            .into_response();
        };
        let steps = match source.into_steps() {
            Ok(steps) => steps,
            Err(response) => {
                tracked.set(StreamEnd::Error);
                return response;
            }
        };
        let content_type = framing.content_type();
        let engine = Engine::new(
            steps,
            framing,
            self.ctx.shared.shutdown.clone(),
            &Limits {
                heartbeat: limits.heartbeat,
                max_bytes: limits.max_bytes,
                max_lifetime: limits.max_lifetime,
            },
            tracked,
            self.ctx.token,
        );
        let mut res = Body::from_stream(engine.map(Ok::<Bytes, Infallible>)).into_response();
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, content_type);
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
        res
    }
}
