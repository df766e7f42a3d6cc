//! Server push over plain HTTP, correct in [axum]: know when the client is
//! gone, long-poll in an ordinary handler, stream NDJSON and server-sent
//! events, run WebSockets with the same semantics, answer at once on
//! shutdown, and lose no event across disconnects, reconnects and restarts.
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use axum_longpoll::{serve, DisconnectLayer, EventLog, LongPoll, Resume};
//!
//! async fn poll(State(log): State<EventLog<Arc<str>>>, resume: Resume, lp: LongPoll) -> Response {
//!     lp.serve(log.reader(resume)).await // 200 events / 204 + Cursor / 410 / 503
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let log = EventLog::<Arc<str>>::new(1024);
//! let app = Router::new()
//!     .route("/poll", get(poll))
//!     .route("/ready", get(serve::ready)) // 503 once shutting down
//!     .with_state(log.clone());
//! log.publish("hello".into()).await.ok();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let report = axum_longpoll::serve(listener, app)
//!     .layer(DisconnectLayer::new()) // its shutdown token is cancelled by `serve`
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
//!     .await?;
//! eprintln!("{report}");
//! # Ok(()) }
//! ```
//!
//! [`serve()`] takes the place of `axum::serve`: it bounds every phase of a
//! connection (request head, idle keep-alive, request body, a silent HTTP/2
//! peer), refuses connections with `503` at its cap or out of file
//! descriptors, and shuts down in order: the answers first, then `GOAWAY`,
//! then a hard deadline ([`serve`](mod@serve) module). Every mode also works
//! under `axum::serve` with `Router::layer(DisconnectLayer)`, without those
//! bounds.
//!
//! # The four modes, side by side
//!
//! Every mode serves the same thing the same way: the client's position
//! ([`Resume`]) in a log ([`EventLog::reader`]), answered in the mode's own
//! way when the position is gone (the log evicted it, or it is from another
//! run) and with `503` + `Retry-After` when the log cannot be read (Redis
//! down). Every extractor has the same two tokens: `token()` (the client is
//! gone) and `shutdown()` (the server is stopping).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{extract::State, response::Response};
//! use axum_longpoll::ws::{CloseReason, LiveSocket};
//! use axum_longpoll::{EventLog, LongPoll, Resume, Streaming};
//!
//! type Log = EventLog<Arc<str>>;
//!
//! // 200 {"events":[…],"cursor":…} · 204 + Cursor on timeout · gone: 410
//! async fn poll(State(log): State<Log>, resume: Resume, lp: LongPoll) -> Response {
//!     lp.serve(log.reader(resume)).await
//! }
//! // one JSON line per event · gone: an in-band {"control":"gone",…} line
//! async fn ndjson(State(log): State<Log>, resume: Resume, s: Streaming) -> Response {
//!     s.ndjson(log.reader(resume))
//! }
//! // id: = cursor · gone: an in-band `event: gone` (EventSource cannot read a 410)
//! async fn sse(State(log): State<Log>, resume: Resume, s: Streaming) -> Response {
//!     s.sse(log.reader(resume))
//! }
//! // a text frame per event · gone: a `gone` frame, then close 4410
//! async fn ws(State(log): State<Log>, resume: Resume, ws: LiveSocket) -> Response {
//!     ws.serve(log.reader(resume), |_msg| Err(CloseReason::server(1003, "read only")))
//! }
//! ```
//!
//! Publishing is one call on every backend: `log.publish(event).await`
//! returns the event's [`Cursor`] (a `Result`, since a shared backend can be
//! unreachable).
//!
//! # What is here
//!
//! | module | what it gives |
//! |---|---|
//! | [`disconnect`] | [`DisconnectLayer`]: a per-request `CancellationToken` cancelled when the client is gone (FIN, RST, half-close, HTTP/2 reset, mid-stream), never on a normal completion; the shutdown token, the [`Stats`] and the requests in flight every request shares |
//! | [`event_log`] | [`EventLog`]: retained events with [`Cursor`]s, so no event is lost across disconnects, timeouts and restarts; [`Resume`] reads the client's position; [`Streams`]: many named logs, created on demand, evicted when idle, that can end ([`EventLog::close`]); in memory or on Redis |
//! | [`long_poll`] | [`LongPoll`]: the client's clamped timeout, shutdown and disconnect, [`LongPoll::wait`] over any event, [`LongPoll::serve`] over a log |
//! | [`stream`] | [`Streaming`]: NDJSON, SSE or a framing of your own from a log or any `Stream`, flushed per event, heartbeats, byte and lifetime caps, in-band `gone`, ends on shutdown |
//! | `ws` | [`LiveSocket`](ws::LiveSocket): WebSocket with a lifetime token, close reasons, heartbeats, shutdown (`1001`), slow-consumer limit, resume by cursor (feature `ws`) |
//! | [`wire`] | the one vocabulary of control frames ([`wire::Control`]) and its framings: NDJSON, SSE, WebSocket text |
//! | [`stats`] | [`Stats`]: per mode, requests started, in flight by phase and ended by outcome, adding up; the same through `metrics` and `tracing` (features) |
//! | `net` | [`DeadPeer`](net::DeadPeer): a listener that finds vanished peers and peers that stop reading (feature `net`) |
//! | `serve` | [`serve()`]: a server for real traffic: deadlines on every phase of a connection, a connection cap that answers `503`, a shutdown that answers first, then closes, and always finishes; [`serve::ready`] for a readiness probe (feature `net`) |
//!
//! # Architecture
//!
//! Every dependency points down: a module uses only modules on lower rows,
//! and no two use each other (`.ci/run` checks it with `module-graph`).
//!
//! ```text
//!              durable              a protocol (Durable Streams) on the modes
//!                 │
//!  long_poll    stream    ws        modes: extractors, settings, caps, answers
//!       └─────────┼────────┘
//!              source               what a stream carries: a LogReader or any Stream, as steps
//!                 │
//!               wire                one vocabulary (Control frames); NDJSON, SSE, WS text
//!                 │
//!             event_log             storage: EventLog, Cursor, Resume; Memory or Redis
//!                 │
//!  disconnect · stats · observe · response · params · deadline   the bottom · net, serve (beside it)
//! ```
//!
//! - [`disconnect`] is the bottom: a tower layer that gives each request a
//!   token and carries what all requests share. It knows no mode: a mode
//!   reads its own settings by type (a route's `Extension(config)`, else
//!   [`DisconnectLayer::config`], else the default).
//! - [`event_log`] stores events and knows nothing of HTTP answers: reads
//!   happen through one generic read that each mode shapes.
//! - `source` (private) turns a [`LogReader`] or any `Stream` into steps
//!   (open, items, up to date, gone); [`wire`] writes those steps as bytes,
//!   one vocabulary in several framings.
//! - The modes on top each own their extractor, settings, caps and answers.
//!   `response` (private) is the one place for the shape every rejection
//!   shares and for the `503` + `Retry-After` answer.
//! - [`stats`] counts every request of every mode; `observe` (private)
//!   hands the same figures to `metrics` and `tracing` (features).
//! - [`durable`] (feature) speaks a whole protocol with the modes, the log
//!   and the wire framings below it; nothing below knows it.
//! - [`serve`](mod@serve) runs the connections: it uses the layer's shutdown
//!   token and requests in flight, and `net`'s socket settings, and knows no
//!   mode: a parked long-poll, a stream and a WebSocket are all requests in
//!   flight to it.
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
//! use axum_longpoll::{event_log, long_poll, DisconnectLayer};
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
//!     .expose_headers([long_poll::CURSOR, header::RETRY_AFTER]);
//! let app: Router = Router::new() // your routes
//!     .layer(DisconnectLayer::new())
//!     .layer(compression)
//!     .layer(cors);
//! ```
//!
//! # Behind a reverse proxy
//!
//! Every mode works behind nginx, a load balancer or a CDN, and a client
//! that leaves reaches the app through it. Three settings matter:
//! the longest long-poll wait below the proxy's read timeout
//! ([`long_poll`](long_poll#behind-a-reverse-proxy)), an `EventSource`
//! kept alive while the app restarts ([`stream`]), and what `DeadPeer`
//! sees of a client it only knows through the proxy (`net`, "Behind a
//! reverse proxy"). `docs/nginx.md` in the repository is an nginx recipe
//! with every line explained and a table of common load balancers'
//! timeouts; `tests/proxy.rs` runs it in front of the demo.
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `net` | [`serve()`], the server on hyper-util's connection builder; [`net::DeadPeer`]: vanished peers (TCP keepalive, `TCP_USER_TIMEOUT`) and peers that stop reading (write-stall timeout), on every socket `serve` accepts or as a listener for `axum::serve` | yes |
//! | `tracing` | `serve` reports accept errors (out of file descriptors) and refused connections through `tracing` when a subscriber is installed, instead of a line on stderr (both at most once a second) | no |
//! | `ws` | the `ws` module (WebSocket mode), on axum's `ws` feature | no |
//! | `redis` | the cursor log on Redis Streams, shared by many instances ([the Redis backend](event_log#the-redis-backend)); re-exports the `redis` client crate | no |
//!
//! [axum]: https://docs.rs/axum/0.8

#![cfg_attr(docsrs, feature(doc_cfg))]

mod deadline;
pub mod disconnect;
#[cfg(feature = "durable")]
#[cfg_attr(docsrs, doc(cfg(feature = "durable")))]
pub mod durable;
pub mod event_log;
pub mod long_poll;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub mod net;
mod observe;
mod params;
mod response;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub mod serve;
mod source;
pub mod stats;
pub mod stream;
pub mod wire;
#[cfg(feature = "ws")]
#[cfg_attr(docsrs, doc(cfg(feature = "ws")))]
pub mod ws;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis;

pub use crate::disconnect::{DisconnectLayer, DisconnectToken};
pub use crate::event_log::{Cursor, CursorGone, EventLog, LogReader, Resume, Streams};
pub use crate::long_poll::{LongPoll, LongPollConfig, Outcome};
pub use crate::response::Overloaded;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub use crate::serve::serve;
pub use crate::source::Source;
pub use crate::stats::{Stats, StatsSnapshot};
pub use crate::stream::{StreamConfig, Streaming};
