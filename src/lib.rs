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
//! | [`stream`] | [`Streaming`]: NDJSON and SSE responses from the log, flushed per event, heartbeats, byte and lifetime caps, in-band 410, ends on shutdown |
//! | [`stats`] | [`Stats`]: parked long-polls, open streams and WebSockets now, and outcomes since start |
//! | `ws` | [`LiveSocket`](ws::LiveSocket): WebSocket with a lifetime token, close reasons, heartbeats, shutdown (`1001`), slow-consumer limit, resume by cursor (feature `ws`) |
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `ws` | the `ws` module (WebSocket mode), on axum's `ws` feature | no |
//!
//! [axum]: https://docs.rs/axum/0.8

mod context;
pub mod disconnect;
pub mod event_log;
pub mod long_poll;
mod params;
pub mod stats;
pub mod stream;
#[cfg(feature = "ws")]
pub mod ws;

pub use crate::disconnect::{DisconnectLayer, DisconnectToken};
pub use crate::event_log::{Cursor, CursorGone, EventLog, Resume};
pub use crate::long_poll::{LongPoll, LongPollConfig, Outcome};
pub use crate::stats::{Stats, StatsSnapshot};
pub use crate::stream::{StreamConfig, Streaming};
