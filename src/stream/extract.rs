use std::convert::Infallible;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::encode;
use super::frames::{Encode, Framing, Item, Limits, Pieces, Plain};
use super::StreamConfig;
use crate::context::RequestContext;
use crate::disconnect::MissingDisconnectLayer;
use crate::event_log::{Backend, Cursor, CursorGone, Event, EventLog, StartRefusal};
use crate::stats::{Gauge, Held};

/// `X-Accel-Buffering: no` tells nginx not to buffer the response.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Extractor that turns an event source into a streamed response: NDJSON or
/// SSE, flushed per event, with heartbeats, caps and a final frame.
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
    config: StreamConfig,
    gauge: Held,
}

impl<S: Sync> FromRequestParts<S> for Streaming {
    type Rejection = StreamRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = crate::disconnect::context(parts)
            .cloned()
            .ok_or(StreamRejection::MissingLayer(MissingDisconnectLayer))?;
        let config = parts
            .extensions
            .get::<StreamConfig>()
            .unwrap_or(&ctx.shared.stream)
            .clone();
        let gauge = Held::try_take(
            ctx.shared.stats.counters_arc(),
            Gauge::Streams,
            config.max_open,
        )
        .ok_or(StreamRejection::Overloaded {
            limit: config.max_open,
            retry_after: config.retry_after,
        })?;
        Ok(Self { ctx, config, gauge })
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
    Overloaded {
        /// The cap.
        limit: usize,
        /// The `Retry-After` sent.
        retry_after: std::time::Duration,
    },
}

impl StreamRejection {
    /// The response status.
    #[must_use]
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::MissingLayer(missing) => missing.status(),
            Self::Overloaded { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The response text.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for StreamRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer(missing) => missing.fmt(f),
            Self::Overloaded { limit, .. } => write!(
                f,
                "server busy: {limit} streams are open, the most allowed; \
                 retry after the time in `Retry-After`"
            ),
        }
    }
}

impl std::error::Error for StreamRejection {}

impl IntoResponse for StreamRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingLayer(missing) => missing.into_response(),
            Self::Overloaded { retry_after, .. } => {
                crate::overload::retry_later(self.status(), self.body_text(), retry_after)
            }
        }
    }
}

fn headers(mut res: Response, content_type: &'static str) -> Response {
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    res
}

impl Streaming {
    /// The client-disconnect token: cancelled when the client leaves
    /// mid-stream. A producer task can stop on it.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.ctx.token
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.ctx.shared.shutdown
    }

    /// The configuration in force for this request.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    fn pieces<S, X, O>(
        self,
        source: S,
        start: Option<Cursor>,
        encode: Encode<X, O>,
    ) -> Pieces<S, X, O> {
        Pieces::new(
            source,
            start,
            self.ctx.shared.shutdown.clone(),
            &Limits {
                every: self.config.heartbeat,
                max_bytes: self.config.max_bytes,
                max_lifetime: self.config.max_lifetime,
                framing: Framing {
                    retry: self
                        .config
                        .sse_retry
                        .map(|retry| retry + retry.mul_f64(fastrand::f64() / 2.0)),
                },
            },
            encode,
            self.gauge,
        )
    }

    fn ndjson_body<S, X>(self, source: S, start: Option<Cursor>) -> Response
    where
        S: Stream<Item = Result<X, CursorGone>> + Send + 'static,
        X: Item + Send + 'static,
    {
        let pieces = self.pieces(source, start, encode::ndjson::<X>);
        let body = Body::from_stream(pieces.map(Ok::<Bytes, Infallible>));
        headers(body.into_response(), "application/x-ndjson")
    }

    fn sse_body<S, X>(self, source: S, start: Option<Cursor>) -> Response
    where
        S: Stream<Item = Result<X, CursorGone>> + Send + 'static,
        X: Item + Send + 'static,
    {
        let pieces = self.pieces(source, start, encode::sse::<X>);
        let res = Sse::new(pieces.map(Ok::<_, Infallible>)).into_response();
        headers(res, "text/event-stream")
    }

    /// Streams `source` (events after `start`) as NDJSON
    /// (`application/x-ndjson`), one JSON object per line.
    pub fn ndjson<S, T>(self, source: S, start: Cursor) -> Response
    where
        S: Stream<Item = Result<Event<T>, CursorGone>> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        self.ndjson_body(source, Some(start))
    }

    /// Streams `source` (events after `start`) as server-sent events
    /// (`text/event-stream`), `id:` = cursor.
    pub fn sse<S, T>(self, source: S, start: Cursor) -> Response
    where
        S: Stream<Item = Result<Event<T>, CursorGone>> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        self.sse_body(source, Some(start))
    }

    /// Streams the items of any `Stream` as NDJSON, one item's JSON per
    /// line, with the same heartbeats, caps, shutdown and final frame as a
    /// cursor stream, but without cursors: no `open` frame, and the final
    /// `reconnect` frame has no `cursor` field.
    ///
    /// Use it for sources that cannot resume (a `broadcast` receiver, a
    /// computation's progress); an item missed while the client was away is
    /// gone. For delivery without loss, publish into an
    /// [`EventLog`](crate::EventLog) and use [`ndjson_log`](Self::ndjson_log).
    ///
    /// ```
    /// use axum::response::Response;
    /// use axum_longpoll::Streaming;
    /// use futures_util::stream;
    ///
    /// async fn progress(s: Streaming) -> Response {
    ///     s.ndjson_items(stream::iter([10, 50, 100]))
    /// }
    /// ```
    pub fn ndjson_items<S>(self, source: S) -> Response
    where
        S: Stream + Send + 'static,
        S::Item: Serialize + Send + 'static,
    {
        self.ndjson_body(source.map(|item| Ok(Plain(item))), None)
    }

    /// Streams the items of any `Stream` as server-sent events, one item's
    /// JSON as `data:`, without `id:`; heartbeats, caps, shutdown and the
    /// final `reconnect` event as for a cursor stream (see
    /// [`ndjson_items`](Self::ndjson_items) for what a plain stream gives up).
    pub fn sse_items<S>(self, source: S) -> Response
    where
        S: Stream + Send + 'static,
        S::Item: Serialize + Send + 'static,
    {
        self.sse_body(source.map(|item| Ok(Plain(item))), None)
    }

    /// [`ndjson`](Self::ndjson) of the events of `log` after `start`.
    pub fn ndjson_log<T, B>(self, log: &EventLog<T, B>, start: Cursor) -> Response
    where
        T: Clone + Serialize + Send + Sync + 'static,
        B: Backend,
    {
        self.ndjson(log.subscribe(start), start)
    }

    /// [`sse`](Self::sse) of the events of `log` after `start`.
    pub fn sse_log<T, B>(self, log: &EventLog<T, B>, start: Cursor) -> Response
    where
        T: Clone + Serialize + Send + Sync + 'static,
        B: Backend,
    {
        self.sse(log.subscribe(start), start)
    }

    /// Answers a request whose cursor is too old with a server-sent-events
    /// response that carries the `410` in-band: one `gone` event (the
    /// [`CursorGone`] body as `data`, `id:` = the restart cursor), then the
    /// end of the stream.
    ///
    /// Use it instead of `gone.into_response()` in an SSE handler.
    /// `EventSource` cannot read the status or body of a failed request: a
    /// `410` just closes it for good (`readyState` 2), so a browser whose
    /// `Last-Event-ID` predates a restart would never reconnect. With this
    /// answer the page sees why, and `EventSource` reconnects by itself
    /// (after `retry:`) from the restart cursor.
    ///
    /// ```
    /// use axum::{extract::State, response::Response};
    /// use axum_longpoll::{EventLog, Resume, Streaming};
    ///
    /// async fn sse(State(log): State<EventLog<String>>, resume: Resume, s: Streaming) -> Response {
    ///     match resume.start(&log) {
    ///         Ok(start) => s.sse_log(&log, start),
    ///         Err(gone) => s.sse_gone(gone),
    ///     }
    /// }
    /// ```
    ///
    /// It takes what [`Resume::start`](crate::Resume::start) refused with,
    /// for either backend: a [`CursorGone`] goes in-band; an outage of a
    /// Redis log is answered `503` over HTTP (`EventSource` then retries).
    pub fn sse_gone(self, refused: impl StartRefusal) -> Response {
        match refused.into_gone() {
            Ok(gone) => {
                let once = futures_util::stream::iter([Err::<Event<()>, _>(gone)]);
                self.sse_body(once, None)
            }
            Err(response) => response,
        }
    }
}
