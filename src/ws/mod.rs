//! WebSocket, the third mode (feature `ws`): the same semantics as the HTTP
//! modes — a token for the connection's life, a reason when it ends,
//! heartbeats, an answer at once on shutdown, resume by cursor, a bound on
//! what a slow reader holds.
//!
//! [`LiveSocket`] is an extractor wrapping axum's
//! [`WebSocketUpgrade`](axum::extract::ws::WebSocketUpgrade). After the
//! `101` the socket runs in the task axum spawns for it; a [`Connection`]
//! runs there the read loop, the writes, the heartbeat, shutdown and the
//! slow-consumer limit, with one timer and no task of its own, and returns
//! the [`CloseReason`].
//!
//! ```
//! use std::sync::Arc;
//! use axum::extract::{ws::Message, State};
//! use axum::response::Response;
//! use axum::{routing::get, Router};
//! use axum_longpoll::event_log::{EventLog, Resume};
//! use axum_longpoll::ws::{CloseReason, LiveSocket};
//! use axum_longpoll::DisconnectLayer;
//! use futures_util::FutureExt;
//!
//! async fn ws(State(log): State<EventLog<Arc<str>>>, resume: Resume, ws: LiveSocket) -> Response {
//!     let reader = log.reader(resume);
//!     ws.on_upgrade(move |conn| async move {
//!         let reason = conn
//!             .serve(reader, move |msg| match msg {
//!                 // A memory log publishes at once: nothing to wait for in
//!                 // the callback (on Redis, hand it to a task instead).
//!                 Message::Text(text) => {
//!                     let _ = log.publish(Arc::from(text.as_str())).now_or_never();
//!                     Ok(())
//!                 }
//!                 _ => Err(CloseReason::server(1003, "text messages only")),
//!             })
//!             .await;
//!         if reason.is_unexpected() {
//!             eprintln!("websocket ended: {reason}");
//!         }
//!     })
//! }
//!
//! let app: Router = Router::new()
//!     .route("/ws", get(ws))
//!     .with_state(EventLog::<Arc<str>>::new(1024))
//!     .layer(DisconnectLayer::new());
//! ```
//!
//! # Messages ([`Connection::serve`], [`messages`])
//!
//! The client connects with `?cursor=<c>` (or `?last_event_id=`, or
//! `?from=oldest`; see [`Resume`](crate::Resume)). It gets
//! `{"control":"open","cursor":"<start>"}` first, then one text frame
//! `{"id":"<cursor>","data":…}` per event. It keeps the last `id` (or the
//! `open` cursor) and reconnects with it: nothing is lost, nothing repeats.
//! A cursor the log cannot serve gets `{"control":"gone",…}` (the `410`
//! body of the HTTP modes) and close code `4410`.
//!
//! # Close codes
//!
//! | [`CloseReason`] | code | when | the client should |
//! |---|---|---|---|
//! | `ClientClose` | the client's (`1005` if none) | the client sent a close frame; answered | — |
//! | `Abnormal` | `1006` (none is sent) | EOF (FIN) or RST without a close frame, or a failed write | — |
//! | `ProtocolError` | `1002`, `1007`, `1009` | bad frame, bad UTF-8, message over [`max_message_size`](WsConfig::max_message_size) | fix itself |
//! | `HeartbeatTimeout` | [`4408`](close_code::HEARTBEAT_TIMEOUT) | nothing within [`pong_timeout`](WsConfig::pong_timeout) of a ping | reconnect with its cursor |
//! | `Shutdown` | `1001 Going Away` | the server's shutdown token was cancelled | reconnect with its cursor, after a delay |
//! | `SlowConsumer` | [`4008`](close_code::SLOW_CONSUMER) | outgoing data (events, or the pongs of its pings) unwritable for [`send_timeout`](WsConfig::send_timeout) | reconnect with its cursor |
//! | `CursorGone` | [`4410`](close_code::CURSOR_GONE), reason `{"reason":…,"cursor":"<restart>"}` | its cursor was evicted, from another epoch or ahead | resynchronise, continue from `cursor` |
//! | `Server` | `1000`, or the application's | the outgoing source ended, or the application ended it | — |
//!
//! [`CloseReason::is_unexpected`] tells the ordinary ends from the others,
//! like gorilla/websocket's `IsUnexpectedCloseError`.
//!
//! # Heartbeat
//!
//! When nothing came from the client for
//! [`ping_interval`](WsConfig::ping_interval) (15 s) the server pings;
//! when then nothing at all (a pong or any frame) arrives within
//! [`pong_timeout`](WsConfig::pong_timeout) (10 s) the socket ends with
//! `HeartbeatTimeout`. A peer that vanished without FIN or RST is noticed
//! after at most the sum. Pings from the client are answered (by
//! tungstenite).
//!
//! # A slow reader, a flooding client, and the cap
//!
//! The outgoing source is pulled only when the socket can take more: a
//! client that does not read holds at most the write buffer
//! ([`write_buffer_size`](WsConfig::write_buffer_size), 128 KiB) and the
//! kernel's socket buffers, never a queue. When nothing could be written for
//! [`send_timeout`](WsConfig::send_timeout) (30 s) the socket ends with
//! `SlowConsumer` (`4008`); the client reconnects with its last cursor.
//! A client that reads, but more slowly than events are published, falls
//! behind the log's retention and gets `4410`, as in the HTTP modes (closing
//! it earlier would only make it reconnect at the same lag).
//!
//! While nothing can be written, nothing is read either. tungstenite answers
//! every ping with a pong queued in the write buffer; a client that floods
//! pings and never reads would otherwise grow that buffer without bound
//! (its default cap is none: 2,000,000 pings took a server from 6 to
//! 284 MB). Here its pings stay in the kernel's buffers, the write buffer is
//! capped anyway ([`max_write_buffer_size`](WsConfig::max_write_buffer_size),
//! 1 MiB), and the socket ends as a slow consumer after `send_timeout`,
//! with `4008` queued for a client that reads again in time
//! (`tests/ws_flood.rs`: the heap grows by under 200 KB for a flood of
//! 26 MB). The heartbeat does not time out meanwhile: the pong may be
//! waiting unread.
//!
//! Each socket's read buffer is sized for
//! [`max_message_size`](WsConfig::max_message_size), at most 4 KiB
//! (tungstenite allocates and zeroes 128 KiB for every socket by default);
//! a larger message grows it while it arrives.
//!
//! At most [`max_in_flight`](WsConfig::max_in_flight) (10,000) sockets are
//! in flight at once per layer: one more upgrade is answered `503` + `Retry-After`
//! ([`LiveSocketRejection::Overloaded`]), as a stream or a long-poll over
//! its cap.
//!
//! # Shutdown
//!
//! When the shutdown token of [`DisconnectLayer`](crate::DisconnectLayer)
//! is cancelled every open socket sends `1001 Going Away` and waits at most
//! [`close_timeout`](WsConfig::close_timeout) (5 s) for the client's close
//! frame.
//!
//! hyper hands an upgraded HTTP/1.1 connection over and forgets it: the
//! connection task of `axum::serve` ends with the `101`, so
//! `with_graceful_shutdown` returns without waiting for WebSockets (axum
//! `serve/mod.rs`, hyper `server/conn/http1.rs` `UpgradeableConnection`).
//! [`serve()`](crate::serve()) waits for them in the first phase of its
//! shutdown and cuts what is left at its hard deadline. Under `axum::serve`,
//! wait for them yourself, or the process drops the sockets without their
//! close frame:
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! use std::time::Duration;
//! use axum_longpoll::DisconnectLayer;
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let layer = DisconnectLayer::new().shutdown(shutdown.clone());
//! let in_flight = layer.in_flight(); // the requests, and the sockets upgraded from them
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.layer(layer))
//!     .with_graceful_shutdown(shutdown.cancelled_owned())
//!     .await?;
//! let _ = tokio::time::timeout(Duration::from_secs(10), in_flight.wait()).await;
//! # Ok(()) }
//! ```
//!
//! (A WebSocket over HTTP/2 — extended `CONNECT` — is a stream of the
//! HTTP/2 connection, which graceful shutdown does wait for.)
//!
//! # Origin
//!
//! Browsers apply no CORS to WebSocket: any page a user visits can open a
//! socket to your server, with the user's cookies. Neither axum's upgrade
//! nor [`LiveSocket`] checks the `Origin` header (Go's gorilla/websocket
//! upgrader refuses cross-origin upgrades by default). Check it in
//! a middleware before the upgrade, with the same list your CORS setup
//! allows, and refuse with `403`; `examples/demo/app.rs` (`ws_origin_guard`)
//! does this and `tests/browser.rs` proves it.
//!
//! # Compared with axum's `WebSocketUpgrade`
//!
//! axum gives a `WebSocket` to read and write. What it leaves to the
//! handler, and what [`Connection`] does: a token cancelled when the socket
//! ends; telling a client's close frame from EOF, RST, a protocol error
//! (axum reports them all as an error or `None`); server pings and a
//! timeout (axum only answers pings); shutdown (axum's sockets outlive
//! `serve`); a bound on a slow reader (axum's `send` waits for ever, and a
//! spawned writer with a channel queues without bound; its write buffer has
//! no cap, and a ping flood grows it); a cap on open sockets; resume by
//! cursor. Incoming messages are at most 64 KiB by default (axum: 64 MiB),
//! and the read buffer at most 4 KiB (axum: 128 KiB per socket).
//!
//! # Without a log: a hub
//!
//! [`Connection::run`] takes any stream of outgoing messages, so a
//! broadcast hub is a channel per client; `examples/chat.rs` merges the log
//! (fan-out and resume) with replies to one client.

mod close;
mod config;
mod connection;
mod extract;
mod messages;

pub use self::close::{close_code, CloseReason};
pub use self::config::WsConfig;
pub use self::connection::Connection;
pub use self::extract::{LiveSocket, LiveSocketRejection};

use self::messages::Messages;

/// The text frames [`Connection::serve`] sends for `source`, as a stream
/// for [`Connection::run`]: to merge them with messages of your own (see
/// `examples/chat.rs`).
///
/// | message | text frame |
/// |---|---|
/// | first (a log) | `{"control":"open","cursor":"<start>"}`: where this socket starts; a client that connected without a cursor resumes from here |
/// | each event | `{"id":"<cursor>","data":<json>}` (an item of a plain stream: its JSON) |
/// | an event that cannot be serialized | `{"control":"skipped","id":"<cursor>","message":"…"}` |
/// | the position cannot be served (last) | `{"control":"gone", …the 410 body…}`, then [`CloseReason::CursorGone`]: close code `4410` |
///
/// The source is read only when the socket can take more.
///
/// # Errors
///
/// The answer for a source that cannot be read now (`503` while a Redis
/// log is unreachable).
#[allow(clippy::result_large_err)] // once per request, never `?`-propagated
pub fn messages(
    source: impl Source<JsonItem>,
) -> Result<
    impl futures_util::Stream<Item = Result<axum::extract::ws::Message, CloseReason>> + Send,
    axum::response::Response,
> {
    source.into_steps().map(Messages::new)
}

use crate::source::Source;
use crate::wire::JsonItem;
