//! Streaming responses, the second mode: one long response that carries
//! events as they are published, as NDJSON or server-sent events.
//!
//! [`Streaming`] is an extractor; it turns a [`Source`](crate::Source) (the
//! client's position in an [`EventLog`](crate::EventLog), from
//! [`EventLog::reader`](crate::EventLog::reader), or any plain `Stream` of
//! serializable items: same heartbeats, caps and shutdown, but no cursor to
//! resume from) into the response body, one method per framing:
//! [`ndjson`](Streaming::ndjson), [`sse`](Streaming::sse), and
//! [`framed`](Streaming::framed) for a framing of your own. Each event is
//! its own body frame (an HTTP/1.1 chunk, an HTTP/2 DATA frame), written as
//! soon as it is published. No hijack, no task per stream: heartbeats, caps
//! and shutdown are handled inside the body when hyper polls it.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use axum_longpoll::{event_log::Resume, stream::Streaming, DisconnectLayer, EventLog};
//!
//! async fn sse(State(log): State<EventLog<Arc<str>>>, resume: Resume, s: Streaming) -> Response {
//!     s.sse(log.reader(resume))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/sse", get(sse))
//!     .with_state(EventLog::<Arc<str>>::new(1024))
//!     .layer(DisconnectLayer::new());
//! ```
//!
//! # Framings
//!
//! Every frame of both framings, and of the WebSocket mode, is in the
//! [`wire`](crate::wire) module: the first frame carries the start cursor
//! (SSE: `event: cursor` with `id:`, so EventSource resumes from there even
//! before any event), each event carries its cursor, a heartbeat is an
//! empty line or an SSE comment, and the last frame says why the response
//! ends: `reconnect` (a cap, shutdown; with the cursor to resume from) or
//! `gone` (the position fell out of retention or is from another run; the
//! `410` body, in-band). Each frame is written as bytes by the crate, so
//! its size counts exactly towards [`max_bytes`](StreamConfig::max_bytes).
//!
//! A client reconnects with the last cursor it saw (`?cursor=` for
//! NDJSON; `Last-Event-ID` is sent by EventSource itself) and continues
//! without a gap.
//!
//! SSE has two browser-specific rules, both in the example above:
//! - a cursor that is already too old when the request arrives is answered
//!   in-band by [`Streaming::sse`] (a `200` whose only event is
//!   `gone`), not with a `410`: `EventSource` cannot read a failed
//!   response and closes for good on one;
//! - `retry:` ([`StreamConfig::sse_retry`], 2 s plus up to 50 % jitter)
//!   spreads the reconnects of many pages after a restart, which browsers
//!   otherwise make after a fixed 3 s. No control event is named `error`,
//!   because `EventSource` delivers such an event to `onerror`.
//!
//! Behind a reverse proxy the same first rule holds for the proxy's own
//! answers: while the app restarts nginx answers `502 text/html`, and
//! `EventSource` closes for good. `docs/nginx.md` in the repository has an
//! nginx `error_page` that answers it `200 text/event-stream` with a
//! `retry:` instead, so it keeps reconnecting and resumes with
//! `Last-Event-ID` (tested by `tests/proxy.rs`).
//!
//! # Limits and defaults ([`StreamConfig`])
//!
//! Heartbeat after 15 s idle, below the idle timeout of a proxy in front
//! (nginx 60 s, an AWS ALB 60 s, Cloudflare 100 s); at most 8 MiB and 5
//! minutes per response, after which the stream ends cleanly with the
//! reconnect frame. A reader that stops reading holds back at most one
//! batch of the log
//! ([`max_batch`](crate::event_log::EventLogBuilder::max_batch)): the body
//! is pulled by hyper and nothing queues. Headers: `Cache-Control:
//! no-cache, no-transform`, `X-Accel-Buffering: no`.
//!
//! # Compression
//!
//! tower-http's `CompressionLayer` skips `text/event-stream` by default and
//! compresses NDJSON. Its encoder emits what it has whenever our body waits
//! for the next event only from async-compression 0.4.40 on (before that it
//! held NDJSON events back until its buffer filled); the tests check each
//! gzipped event arrives before the next is published. To be independent of
//! that version, exclude NDJSON:
//! `DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson"))`
//! (see [the crate docs](crate#with-tower-http-compression-and-cors)).
//!
//! # Disconnect and shutdown
//!
//! When the client leaves mid-stream hyper drops the body and the request's
//! [token](Streaming::token) is cancelled ([`crate::disconnect`]). When the
//! server's shutdown token is cancelled every open stream sends its final
//! `reconnect` frame (`"reason":"shutdown"`) and ends, so a graceful
//! shutdown does not wait for streams.

mod config;
mod engine;
mod extract;

pub use self::config::StreamConfig;
pub use self::extract::{StreamRejection, Streaming};
