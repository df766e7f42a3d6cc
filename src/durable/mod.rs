//! The [Durable Streams](https://github.com/durable-streams/durable-streams)
//! protocol (feature `durable`), served from the crate's own parts.
//!
//! Durable Streams is an open HTTP protocol for exactly what this crate
//! does: append-only streams per URL with opaque, sortable offsets,
//! catch-up reads, `live=long-poll` and `live=sse`, resume from the last
//! offset, closure. It has maintained clients (`@durable-streams/client`
//! for TypeScript, `durable-streams` on PyPI) and an official conformance
//! suite, which `.ci/run` runs against the demo.
//!
//! ```no_run
//! use axum::Router;
//! use axum_longpoll::durable::{self, Chunk};
//! use axum_longpoll::{DisconnectLayer, EventLog, Streams};
//!
//! # async fn run() -> std::io::Result<()> {
//! let streams: Streams<Chunk> = EventLog::builder()
//!     .capacity(1_000_000)   // appends kept per stream
//!     .max_batch(1_000)      // appends per read
//!     .streams()
//!     .idle(None)            // durable: only DELETE, a TTL or an expiry remove one
//!     .build();
//! let app = Router::new()
//!     .nest("/v1/stream", durable::router(durable::DurableStreams::new(streams)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4437").await?;
//! // The layer around the whole router; `serve` answers parked long-polls
//! // and ends SSE streams first at shutdown, and bounds every connection.
//! axum_longpoll::serve(listener, app)
//!     .layer(DisconnectLayer::new())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # On the crate's parts
//!
//! No second engine sits beside the crate's: a durable stream is a named
//! stream of a [`Streams`] collection (in memory, or on Redis so that many
//! instances serve one stream), each append one event ([`Chunk`]);
//! `live=long-poll` is the [`LongPoll`](crate::LongPoll) extractor (its
//! clamp, jitter, cap, shutdown answer and disconnect token) and
//! `live=sse` is the [stream engine](crate::stream) with the protocol's
//! framing (its heartbeats, byte and lifetime caps, shutdown and the client
//! leaving). What the protocol needs of the core is general there: offsets
//! are the crate's cursors ([`Cursor`], sortable as strings), `-1`
//! and `now` are the oldest and the head, "up to date" and "closed" are
//! the log's, closure is [`EventLog::close`](crate::EventLog::close), TTL
//! and expiry are [`StreamOptions`](crate::event_log::StreamOptions), the
//! content type is a stream attribute, `Stream-Seq` is
//! [`Append::seq`](crate::event_log::Append::seq). The protocol's own
//! details (its headers, the JSON flattening, the SSE `data` + `control`
//! pair, base64, ETags, the CDN cursor, idempotent producers) live here.
//!
//! # What is served
//!
//! | request | answer |
//! |---|---|
//! | `PUT /{name}` (`Content-Type`, `Stream-TTL` or `Stream-Expires-At`, `Stream-Closed`, an optional body) | `201` + `Location`; the same settings again `200`, others `409` |
//! | `POST /{name}` (a body, `Stream-Closed`, `Stream-Seq`, producer headers) | `204` + `Stream-Next-Offset` (a producer's append `200`; a retry `204`); closed `409`; wrong content type `409`; `Stream-Seq` not after the last `409` |
//! | `GET /{name}?offset=…` | the data after `offset` (`-1`: from the start, `now`: none), `Stream-Next-Offset`, `Stream-Up-To-Date`, `Stream-Closed`, `ETag` (`304` for `If-None-Match`) |
//! | `GET …&live=long-poll&cursor=…` | data at once, or after waiting (`200`), or `204` at the timeout or at the end of a closed stream; `Stream-Cursor` |
//! | `GET …&live=sse&cursor=…` | `event: data` + `event: control` per batch, base64 for binary streams; ends after `streamClosed` |
//! | `HEAD /{name}` | the metadata, without renewing a TTL |
//! | `DELETE /{name}` | `204`; readers and waiters are told at once |
//!
//! Every answer carries `X-Content-Type-Options: nosniff` and
//! `Cross-Origin-Resource-Policy: cross-origin`; CORS allows any origin
//! and exposes the protocol's headers. Forks (`Stream-Forked-From`) are
//! not supported (`501`).
//!
//! # On Redis
//!
//! `DurableStreams<Redis>` serves a collection made by
//! [`StreamsBuilder::redis`](crate::event_log::StreamsBuilder)`(client,
//! prefix)`: every instance on the prefix serves every stream. A `PUT` on
//! one instance is a `200` (same settings) or a `409` (others) on every
//! other: the content type and the TTL or expiry as given are stream
//! attributes, kept in the stream's meta hash in Redis. Each request looks
//! the stream up in Redis once (a stream only another instance used is
//! loaded here), and is served from this instance's mirror brought up to
//! the newest append: a read on B right after an append on A has it, a
//! long-poll parked on B is woken by an append on A (one `XREAD` round
//! trip later), a close on A ends B's readers. `Stream-Seq` is checked by
//! the append script in Redis, so it holds across instances; the TTL and
//! the expiry are key expiries in Redis, renewed by the reads and appends
//! of every instance, never by a `HEAD`. The demo serves its Durable
//! Streams this way with `REDIS_URL`, and the conformance suite passes
//! against it as it does in memory.
//!
//! Idempotent producers (`Producer-Id`, `Producer-Epoch`, `Producer-Seq`)
//! are served with their state kept by the instance that serves the
//! stream's appends: behind a load balancer, route a stream's writes to one
//! instance (or use `Stream-Seq`, which the log itself checks on every
//! backend).

mod handlers;
mod producer;
mod protocol;
mod sse;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use axum::routing::put;
use axum::{Extension, Router};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event_log::{Backend, Cursor, CursorGone, EventLog, Found, Memory, Streams};
use crate::long_poll::LongPollConfig;

/// One append to a durable stream, as stored: its bytes (for a JSON
/// stream, its messages as compact JSON, comma-joined).
///
/// Reads hand the bytes out as they are; on Redis a chunk is kept as
/// base64 JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk(pub(crate) Bytes);

impl Chunk {
    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|bytes| Self(Bytes::from(bytes)))
            .map_err(serde::de::Error::custom)
    }
}

/// Settings of the protocol's server.
#[derive(Clone, Debug)]
#[must_use]
pub struct DurableConfig {
    long_poll: Duration,
    max_append: usize,
    max_batch: usize,
    prefix: String,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            long_poll: Duration::from_secs(30),
            max_append: 2 * 1024 * 1024,
            max_batch: 1000,
            prefix: "/v1/stream".to_owned(),
        }
    }
}

impl DurableConfig {
    /// The defaults: long-polls wait 30 s, appends of at most 2 MiB, SSE
    /// batches of at most 1000 appends, mounted at `/v1/stream`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a `live=long-poll` request waits when nothing comes
    /// (default 30 s; clamped to at least 1 ms).
    pub fn long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait.max(Duration::from_millis(1));
        self
    }

    /// The largest append (`POST` or `PUT` body, default 2 MiB): `413`
    /// beyond it, before the body is read.
    pub fn max_append(mut self, bytes: usize) -> Self {
        self.max_append = bytes;
        self
    }

    /// The most appends one SSE `data` event carries (default 1000).
    pub fn max_batch(mut self, appends: usize) -> Self {
        self.max_batch = appends.max(1);
        self
    }

    /// Where the router is mounted (default `/v1/stream`): the `Location`
    /// of a created stream.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }
}

/// The protocol's server state: the streams and the settings. Cloning is
/// cheap.
pub struct DurableStreams<B: Backend = Memory> {
    streams: Streams<Chunk, B>,
    config: Arc<DurableConfig>,
    producers: Arc<producer::Table>,
}

impl<B: Backend> Clone for DurableStreams<B> {
    fn clone(&self) -> Self {
        Self {
            streams: self.streams.clone(),
            config: Arc::clone(&self.config),
            producers: Arc::clone(&self.producers),
        }
    }
}

impl<B: Backend> fmt::Debug for DurableStreams<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableStreams")
            .field("streams", &self.streams)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> DurableStreams<B> {
    /// Serves `streams` with the default [`DurableConfig`].
    #[must_use]
    pub fn new(streams: Streams<Chunk, B>) -> Self {
        Self::with_config(streams, DurableConfig::new())
    }

    /// Serves `streams` with `config`.
    #[must_use]
    pub fn with_config(streams: Streams<Chunk, B>, config: DurableConfig) -> Self {
        Self {
            streams,
            config: Arc::new(config),
            producers: Arc::default(),
        }
    }

    /// The streams served.
    #[must_use]
    pub fn streams(&self) -> &Streams<Chunk, B> {
        &self.streams
    }
}

/// The protocol's routes, `/{name}` with `PUT`, `POST`, `GET`, `HEAD` and
/// `DELETE`, to nest under the mount point (`/v1/stream` for the
/// conformance suite and the clients' defaults). Needs
/// [`DisconnectLayer`](crate::DisconnectLayer) outside it.
pub fn router<B: Backend>(ds: DurableStreams<B>) -> Router {
    let long_poll = LongPollConfig::new()
        .default_timeout(ds.config.long_poll)
        .max_timeout(ds.config.long_poll);
    Router::new()
        .route(
            "/{name}",
            put(handlers::put_handler::<B>)
                .post(handlers::post_handler::<B>)
                .get(handlers::get_handler::<B>)
                .head(handlers::head_handler::<B>)
                .delete(handlers::delete_handler::<B>),
        )
        .with_state(ds)
        .layer(Extension(long_poll))
        .layer(cors())
        .layer(axum::middleware::map_response(security_headers))
}

/// On every answer (errors and `404`s too): no sniffing, readable from
/// other origins.
async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    res
}

/// Any origin, any method and request header; the protocol's headers
/// exposed to scripts.
fn cors() -> tower_http::cors::CorsLayer {
    use protocol::*;
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([
            STREAM_NEXT_OFFSET,
            STREAM_CURSOR,
            STREAM_UP_TO_DATE,
            crate::wire::STREAM_CLOSED,
            STREAM_TTL,
            STREAM_EXPIRES_AT,
            STREAM_SSE_DATA_ENCODING,
            PRODUCER_EPOCH,
            PRODUCER_SEQ,
            PRODUCER_EXPECTED_SEQ,
            PRODUCER_RECEIVED_SEQ,
            http::header::ETAG,
            http::header::CONTENT_TYPE,
            http::header::LOCATION,
        ])
}

/// A read of a durable stream.
pub(crate) struct ChunkRead {
    chunks: Vec<Bytes>,
    /// After the last chunk.
    next: Cursor,
    up_to_date: bool,
    closed: bool,
}

fn chunk_bytes(entry: &crate::event_log::Entry<Chunk>, _: Cursor) -> Bytes {
    entry.data.0.clone()
}

impl<B: Backend> EventLog<Chunk, B> {
    /// The appends after `start` now (at most a batch).
    pub(crate) fn read_chunks(&self, start: Cursor) -> Result<ChunkRead, CursorGone> {
        Ok(match self.find(start, chunk_bytes)? {
            Found::Batch(read) => ChunkRead {
                next: read.cursor,
                up_to_date: read.caught_up,
                closed: read.closed,
                chunks: read.events.into_iter().map(|(_, chunk)| chunk).collect(),
            },
            Found::Ahead => ChunkRead {
                chunks: Vec::new(),
                next: start,
                up_to_date: true,
                closed: false,
            },
        })
    }

    /// The appends after `start` once there is one, or at once at the end
    /// of a closed stream.
    pub(crate) async fn wait_chunks(&self, start: Cursor) -> Result<ChunkRead, CursorGone> {
        let read = self.wait_with(start, chunk_bytes).await?;
        Ok(ChunkRead {
            next: read.cursor,
            up_to_date: read.caught_up,
            closed: read.closed,
            chunks: read.events.into_iter().map(|(_, chunk)| chunk).collect(),
        })
    }
}
