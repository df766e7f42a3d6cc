//! Server push over plain HTTP, correct in [axum]: know when the client is
//! gone, long-poll in an ordinary handler, answer at once on shutdown.
//!
//! # Quick start
//!
//! ```no_run
//! use axum::{response::Response, routing::get, Router};
//! use axum_longpoll::{DisconnectLayer, LongPoll};
//! use tokio_util::sync::CancellationToken;
//!
//! async fn poll(lp: LongPoll) -> Response {
//!     let event = std::future::pending::<&'static str>(); // your event source
//!     let outcome = lp.wait(event).await;
//!     lp.respond(outcome)
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let shutdown = CancellationToken::new();
//! let app = Router::new()
//!     .route("/poll", get(poll))
//!     .layer(DisconnectLayer::new().shutdown(shutdown.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(shutdown.cancelled_owned())
//!     .await
//! # }
//! ```
//!
//! # What is here
//!
//! | module | what it gives |
//! |---|---|
//! | [`disconnect`] | [`DisconnectLayer`]: a per-request `CancellationToken` cancelled when the client is gone (FIN, RST, half-close, HTTP/2 reset, mid-stream), never on a normal completion |
//! | [`event_log`] | [`EventLog`]: retained events with [`Cursor`]s, so no event is lost across disconnects, timeouts and restarts; `410 Gone` when a cursor is too old |
//! | [`long_poll`] | [`LongPoll`]: the client's clamped timeout, shutdown and disconnect, and [`LongPoll::wait`] over your event |
//! | [`stream`] | [`Streaming`]: NDJSON and SSE responses from the log or any `Stream`, flushed per event, heartbeats, byte and lifetime caps, in-band 410, ends on shutdown |
//! | [`stats`] | [`Stats`]: parked long-polls, open streams and WebSockets now, and outcomes since start |
//! | `ws` | [`LiveSocket`](ws::LiveSocket): WebSocket with a lifetime token, close reasons, heartbeats, shutdown (`1001`), slow-consumer limit, resume by cursor (feature `ws`) |
//!
//! # With tower-http: compression and CORS
//!
//! Both compose with every mode; two settings matter.
//!
//! - **Compression** and streams: tower-http's `CompressionLayer` compresses
//!   NDJSON by default (it skips only `text/event-stream`). Its encoder
//!   (async-compression) flushes whenever the body waits only since
//!   async-compression 0.4.40; with an older one in your lock file, NDJSON
//!   events sit in the encoder until kilobytes pile up. Check with
//!   `cargo tree -i async-compression`, or exclude NDJSON as below, which
//!   works with every version. Long-poll answers are ordinary bodies and
//!   stay compressed.
//! - **CORS** with credentials (cookies, `EventSource` with
//!   `withCredentials`) needs an explicit origin list, not `Any`; allow the
//!   request headers the modes read (`Last-Event-ID`, `Prefer`) and expose
//!   the ones a script must see (`Cursor`, `Retry-After`).
//!
//! ```
//! use axum::http::{header, HeaderValue, Method};
//! use axum::Router;
//! use axum_longpoll::{event_log, DisconnectLayer};
//! use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
//! use tower_http::compression::CompressionLayer;
//! use tower_http::cors::CorsLayer;
//!
//! let compression = CompressionLayer::new().compress_when(
//!     DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson")),
//! );
//! let cors = CorsLayer::new()
//!     .allow_origin([HeaderValue::from_static("https://app.example")])
//!     .allow_credentials(true)
//!     .allow_methods([Method::GET, Method::POST])
//!     .allow_headers([
//!         event_log::LAST_EVENT_ID,
//!         header::HeaderName::from_static("prefer"),
//!         header::CONTENT_TYPE,
//!     ])
//!     .expose_headers([event_log::CURSOR, header::RETRY_AFTER]);
//! let app: Router = Router::new() // your routes
//!     .layer(DisconnectLayer::new())
//!     .layer(compression)
//!     .layer(cors);
//! ```
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `net` | [`net::DeadPeer`]: a listener for `axum::serve` that finds vanished peers (TCP keepalive, `TCP_USER_TIMEOUT`) and peers that stop reading (write-stall timeout) | yes |
//! | `ws` | the `ws` module (WebSocket mode), on axum's `ws` feature | no |
//! | `redis` | the cursor log on Redis Streams, shared by many instances ([the Redis backend](event_log#the-redis-backend)); re-exports the `redis` client crate | no |
//!
//! [axum]: https://docs.rs/axum/0.8

#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod deadline;
pub mod disconnect;
pub mod event_log;
pub mod long_poll;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub mod net;
mod overload;
mod params;
pub mod stats;
pub mod stream;
#[cfg(feature = "ws")]
pub mod ws;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis;

pub use crate::disconnect::{DisconnectLayer, DisconnectToken};
pub use crate::event_log::{Cursor, CursorGone, EventLog, Resume};
pub use crate::long_poll::{LongPoll, LongPollConfig, Outcome};
pub use crate::stats::{Stats, StatsSnapshot};
pub use crate::stream::{StreamConfig, Streaming};
