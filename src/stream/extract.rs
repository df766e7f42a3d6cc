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
use crate::stats::{Gauge, Held};
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
/// It holds one of the [`max_open`](StreamConfig::max_open) places from
/// extraction on; the response body keeps it until the stream ends, and
/// dropping the extractor unused gives it back.
#[derive(Debug)]
pub struct Streaming {
    ctx: RequestContext,
    limits: StreamLimits,
    gauge: Held,
}

/// What a stream needs of [`StreamConfig`].
#[derive(Clone, Copy, Debug)]
struct StreamLimits {
    heartbeat: Option<Duration>,
    max_bytes: usize,
    max_lifetime: Duration,
    sse_retry: Option<Duration>,
}

impl<S: Sync> FromRequestParts<S> for Streaming {
    type Rejection = StreamRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = MissingDisconnectLayer::check(parts)
            .map_err(StreamRejection::MissingLayer)?
            .clone();
        let config: StreamConfig = ctx.config(parts);
        let gauge = Held::try_take(
            ctx.shared.stats.counters_arc(),
            Gauge::Streams,
            config.max_open,
        )
        .ok_or(StreamRejection::Overloaded(Overloaded {
            what: "streams are open",
            setting: "StreamConfig::max_open",
            limit: config.max_open,
            retry_after: config.retry_after,
        }))?;
        Ok(Self {
            ctx,
            limits: StreamLimits {
                heartbeat: config.heartbeat,
                max_bytes: config.max_bytes,
                max_lifetime: config.max_lifetime,
                sse_retry: config.sse_retry,
            },
            gauge,
        })
    }
}

/// Rejection of [`Streaming`]: a missing layer (`500`) or a reached cap
/// (`503` with `Retry-After`).
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamRejection {
    /// [`DisconnectLayer`](crate::DisconnectLayer) is not installed.
    MissingLayer(MissingDisconnectLayer),
    /// [`StreamConfig::max_open`] streams are open already.
    Overloaded(Overloaded),
}

impl Reject for StreamRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer(missing) => missing.status(),
            Self::Overloaded(overloaded) => overloaded.status(),
        }
    }

    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer(missing) => write!(f, "{missing} to use `Streaming`"),
            Self::Overloaded(overloaded) => write!(f, "{overloaded}"),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded(overloaded) => Some(overloaded.retry_after),
            Self::MissingLayer(_) => None,
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
        if source.finished() {
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut()
                .insert(STREAM_CLOSED, HeaderValue::from_static("true"));
            return no_store(res);
        }
        let steps = match source.into_steps() {
            Ok(steps) => steps,
            Err(response) => return response,
        };
        let content_type = framing.content_type();
        let engine = Engine::new(
            steps,
            framing,
            self.ctx.shared.shutdown.clone(),
            &Limits {
                heartbeat: self.limits.heartbeat,
                max_bytes: self.limits.max_bytes,
                max_lifetime: self.limits.max_lifetime,
            },
            self.gauge,
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
