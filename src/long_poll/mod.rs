//! Long-polling in an ordinary handler: wait for an event, the client's
//! timeout, the server's shutdown or the client's disconnect.
//!
//! [`LongPoll`] is an extractor. It reads how long the client is willing to
//! wait, from `?timeout=<seconds>` or RFC 7240 `Prefer: wait=<seconds>`
//! (the query parameter wins), clamps it, and hands the handler the futures
//! to `select!` over, or one call, [`LongPoll::wait`], that does it with the
//! right priority and counts the outcome.
//!
//! ```
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use axum_longpoll::{DisconnectLayer, LongPoll};
//! use tokio::sync::watch;
//!
//! async fn poll(State(rx): State<watch::Receiver<String>>, lp: LongPoll) -> Response {
//!     let mut rx = rx.clone();
//!     let outcome = lp.wait(async move {
//!         let _ = rx.changed().await;
//!         rx.borrow_and_update().clone()
//!     }).await;
//!     lp.respond(outcome)
//! }
//!
//! let (_tx, rx) = watch::channel(String::new());
//! let app: Router = Router::new()
//!     .route("/poll", get(poll))
//!     .with_state(rx)
//!     .layer(DisconnectLayer::new());
//! ```
//!
//! # The wait
//!
//! | input | result |
//! |---|---|
//! | none | [`default_timeout`](LongPollConfig::default_timeout) (30 s) |
//! | `?timeout=10`, `?timeout=0.5`, `Prefer: wait=10` | that many seconds |
//! | above [`max_timeout`](LongPollConfig::max_timeout) (120 s) | clamped to it |
//! | `0` | no waiting: answer with what is there now |
//! | empty, negative, `NaN`, `inf`, exponent, non-ASCII digits, more than `u64` seconds, given twice | `400` naming the parameter, the value and the allowed range |
//!
//! With [`jitter`](LongPollConfig::jitter) (on by default) each wait is
//! shortened by a random amount of up to 1/16 of it, so a herd of clients
//! started together spreads out. Shortened, never lengthened: a client that
//! set its own timeout to what it asked for gets an answer in time.
//!
//! # Behind a reverse proxy
//!
//! A proxy cuts a request whose upstream sends nothing for its read
//! timeout (nginx: `proxy_read_timeout`, 60 s by default; an AWS ALB: its
//! idle timeout, 60 s; Heroku: 30 s to the first byte). A long-poll parked
//! longer gets the proxy's `504`, not `204` + `Cursor`, and the app sees
//! its client leave. So the longest wait,
//! [`max_timeout`](LongPollConfig::max_timeout) itself (the jitter only
//! shortens a wait), plus a margin (10 s is plenty) must be below the
//! proxy's timeout: the defaults (120 s) need `proxy_read_timeout 130s`,
//! or set `max_timeout` to 50 s behind nginx's default. `docs/nginx.md` in
//! the repository has a tested nginx recipe and a table for common load
//! balancers and CDNs.
//!
//! # Outcomes and answers
//!
//! | [`Outcome`] | default answer ([`LongPoll::respond`]) |
//! |---|---|
//! | `Ready(v)` | `v`, with `Cache-Control: no-store` |
//! | `Timeout` | `204 No Content` (keepalive), `Cache-Control: no-store` |
//! | `Shutdown` | `503 Service Unavailable`, `Retry-After: 1` |
//! | `Disconnected` | `499` (nobody reads it; for access logs) |
//!
//! Shutdown is answered at once: wire the same token into the layer and into
//! `axum::serve(..).with_graceful_shutdown(..)` and the server returns as
//! soon as the parked polls have answered, not after their timeouts:
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! use axum_longpoll::DisconnectLayer;
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let app = app.layer(DisconnectLayer::new().shutdown(shutdown.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // cancel `shutdown` from a signal handler
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(shutdown.cancelled_owned())
//!     .await
//! # }
//! ```
//!
//! # Request bodies
//!
//! On HTTP/1.1 hyper does not watch a connection for a disconnect while
//! request-body bytes are owed to the handler (the same hole as Go's
//! golang/go#23262). So the extractor reads the whole body first, up to
//! [`max_body`](LongPollConfig::max_body) (16 KiB): larger bodies are answered
//! `413` before the handler runs; a body that does not arrive within the wait
//! (at least 5 s) gets `408`; a client that leaves mid-body is seen at once.
//! Read it with [`LongPoll::body`]. Because it reads the body, `LongPoll` is
//! the last argument of a handler.
//!
//! # Losing no event
//!
//! [`LongPoll::wait`] never takes an event for a client that is already gone
//! or a server that is stopping. It cannot help with a client that leaves
//! after the event was taken and before the response reached it: with a
//! queue that hands each event out once, that event is lost. Deliver from a
//! log with cursors instead, where delivery consumes nothing.

mod answer;
mod config;
mod extract;
mod rejection;
mod timeout;
mod wait;

pub use self::answer::CURSOR;
pub use self::config::LongPollConfig;
pub use self::extract::LongPoll;
pub use self::rejection::{InvalidTimeout, LongPollRejection, TimeoutSource};
pub use self::wait::Outcome;
