//! A server for real traffic (feature `net`): every phase of a connection
//! has a deadline, the connection count has a cap that answers, and
//! shutdown answers first, then closes, and always finishes.
//!
//! [`serve()`] takes the place of `axum::serve`: same listener, same router,
//! a builder that is awaited. It runs hyper-util's own connection builder
//! (`server::conn::auto`: HTTP/1.1 with upgrades and HTTP/2 on one port)
//! with deadlines on every phase (hyper's HTTP/2 keep-alive timer, and
//! one timer per connection of its own for the waits between requests),
//! and puts the
//! [`DisconnectLayer`](crate::DisconnectLayer) around the whole router.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use axum_longpoll::{serve, DisconnectLayer, EventLog, LongPoll, LongPollConfig, Resume};
//!
//! async fn poll(State(log): State<EventLog<Arc<str>>>, resume: Resume, lp: LongPoll) -> Response {
//!     lp.serve(log.reader(resume)).await
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/poll", get(poll))
//!     .route("/ready", get(serve::ready)) // the load balancer's readiness probe
//!     .with_state(EventLog::<Arc<str>>::new(1024));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! let report = axum_longpoll::serve(listener, app)
//!     // The layer's own shutdown token: `serve` cancels it.
//!     .layer(DisconnectLayer::new().config(LongPollConfig::new()))
//!     // Ctrl-C here; SIGTERM too in `examples/demo/main.rs`.
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
//!     .await?;
//! eprintln!("{report}"); // what was answered, what was cut
//! # Ok(()) }
//! ```
//!
//! # What `axum::serve` leaves open, and what this does
//!
//! | | `axum::serve` (0.8) | [`serve()`] |
//! |---|---|---|
//! | a slow request head (slowloris) | no timer is set, so hyper's header timeout is off: open for ever | closed after [`header_read_timeout`](ServeConfig::header_read_timeout) |
//! | an idle keep-alive connection | open for ever | HTTP/1.1: closed when no request head arrives in time; HTTP/2: `GOAWAY` after [`idle_timeout`](ServeConfig::idle_timeout) |
//! | a client that connects and sends nothing | open for ever | closed after the shorter of the two |
//! | a request body that stalls | waited for by the handler, for ever | an error after [`body_read_timeout`](ServeConfig::body_read_timeout), also for a handler that reads its own body |
//! | `Content-Length` over the limit, `Expect: 100-continue` | `100 Continue`, then the handler decides | `413` before any `100 Continue`, nothing uploaded |
//! | an HTTP/2 peer that stopped answering | open for ever | keep-alive `PING`s ([`http2_keep_alive`](ServeConfig::http2_keep_alive)) close it |
//! | a peer that vanished or stopped reading | open until the kernel gives up (15 min) or for ever | [`DeadPeer`](crate::net::DeadPeer) on every socket |
//! | out of file descriptors | logs through `tracing` only, sleeps; new clients wait in the backlog | each waiting client is refused with `503` at once; a line on stderr (or `tracing`), at most one a second |
//! | shutdown | `GOAWAY` first, then waits for every connection with no deadline | answers first, then closes, then a hard deadline; returns a [`ShutdownReport`] |
//! | upgraded WebSockets at shutdown | not waited for | waited for in phase (a) (their `1001` closing handshake) |
//!
//! # Shutdown in three phases
//!
//! It starts when the [signal](Serve::with_graceful_shutdown) completes or
//! the layer's shutdown token is cancelled. Let `serve` cancel the token
//! (give it a signal, and the layer a token of its own): then the
//! [`ShutdownReport`] counts the answers from the moment they start.
//!
//! 1. **Answer first.** The shutdown token is cancelled: every parked
//!    [`LongPoll`](crate::LongPoll) answers `503` + `Retry-After`, every
//!    stream sends its final frame, every WebSocket closes with `1001`, and
//!    [`ready`] answers `503` so that a load balancer stops sending.
//!    HTTP/1.x answers now carry `Connection: close`. New connections are
//!    still accepted meanwhile (a load balancer may send some until its
//!    probe fails) and get the same answers. This phase ends when every
//!    request in flight has been answered (the layer's
//!    [`InFlight`](crate::disconnect::InFlight), WebSockets included) or at
//!    [`drain_timeout`](ServeConfig::drain_timeout) (10 s).
//! 2. **Close.** The listener is closed (new connections are refused by the
//!    kernel) and every connection is asked to close: an idle HTTP/1.1
//!    connection closes at once, a busy one after its answer; an HTTP/2
//!    connection gets `GOAWAY` and closes when its streams are done. A
//!    connection with no request in progress that is still open a second
//!    later (an HTTP/2 peer that never acknowledges the `GOAWAY`'s `PING`,
//!    half a request head) is dropped then.
//! 3. **Cut.** At [`shutdown_timeout`](ServeConfig::shutdown_timeout)
//!    (25 s after the signal; Kubernetes' default grace period is 30 s)
//!    every connection still open is dropped, upgraded ones included, and
//!    the future returns: a handler that ignores the shutdown, a peer that
//!    never reads, a WebSocket that never answers the close cannot hold the
//!    process.
//!
//! **Why this order matters for HTTP/2.** hyper's graceful shutdown of an
//! HTTP/2 connection sends `GOAWAY` and a `PING` at once; the `503`s of the
//! streams parked on it are written after them. A client such as Python's
//! `h2` (httpx) treats frames after `GOAWAY` as a protocol error and never
//! sees those answers. Answering in phase (a), before any `GOAWAY`, gives
//! every client its answer, whatever it does with `GOAWAY`.
//! (`tests/serve.rs` reads the frames in order.)
//!
//! The future returns a [`ShutdownReport`]: how many requests were in flight
//! at the signal, whether they were all answered in time, how many
//! connections were closed and how many were cut.
//!
//! # Deadlines on every phase of a connection
//!
//! | phase | bound | what happens |
//! |---|---|---|
//! | first bytes, request head | [`header_read_timeout`](ServeConfig::header_read_timeout) (30 s) | the connection is closed |
//! | waiting for the next request | HTTP/1.1: the same bound, counted from the end of the last response (the connection's own timer, one per connection, checked when it fires: no timer per request), at most [`idle_timeout`](ServeConfig::idle_timeout); HTTP/2: [`idle_timeout`](ServeConfig::idle_timeout) (60 s) with no open stream | closed; HTTP/2: `GOAWAY`, dropped if still idle after as long again |
//! | request body | [`body_read_timeout`](ServeConfig::body_read_timeout) (30 s) between its bytes, while the handler waits | the body ends in a [`BodyTimeout`] error: axum's extractors answer `400` |
//! | request body size | [`max_request_body`](ServeConfig::max_request_body) (2 MiB) | `413`: before the body is read when `Content-Length` says so; else an error axum's extractors answer `413` |
//! | writing | [`DeadPeer::write_stall`](crate::net::DeadPeer::write_stall) (30 s) | the connection is dropped |
//! | a silent peer | TCP keepalive and `TCP_USER_TIMEOUT` ([`DeadPeer`](crate::net::DeadPeer)); HTTP/2 `PING`s | the connection is dropped |
//! | shutdown | [`drain_timeout`](ServeConfig::drain_timeout), [`shutdown_timeout`](ServeConfig::shutdown_timeout) | see above |
//!
//! The defaults are no longer than nginx's (`client_header_timeout` and
//! `client_body_timeout` 60 s, `keepalive_timeout` 75 s). A parked
//! long-poll or an open stream is a request in progress: no idle deadline
//! applies to it (its own timeout and heartbeat do).
//!
//! # File descriptors
//!
//! At [`max_connections`](ServeConfig::max_connections) (by default 90 % of
//! the soft open-file limit, so that the application keeps descriptors for
//! its files and its own clients), a new connection is answered at once
//! with `503` + `Retry-After` + `Connection: close` and closed. When the
//! process runs out of descriptors anyway, `accept` fails; the server then
//! closes a spare descriptor it keeps for this, accepts one waiting
//! connection with it, answers it the same way, and takes the spare again,
//! until none waits. Either way the client learns at once, and the server
//! says so on stderr (or through `tracing` with the feature `tracing` and a
//! subscriber), at most once a second with the count of what it did not
//! repeat.
//!
//! It refuses the newcomer rather than closing the oldest idle
//! connection: that would need every connection in one ordered list,
//! updated on every request, where refusing costs nothing until the cap;
//! and idle connections are already bounded by their deadline.
//!
//! # And `DeadPeer`
//!
//! [`DeadPeer`](crate::net::DeadPeer) is on by default
//! ([`ServeConfig::dead_peer`]): every accepted socket gets its keepalive,
//! user timeout and write-stall bound, as with `DeadPeer::listen` under
//! `axum::serve`. The deadlines here bound what a client sends (or does not
//! send); `DeadPeer` finds the client that is gone.
//!
//! # Why hyper-util's builder and not `axum::serve`
//!
//! `axum::serve` sets no timer on hyper's builder (so no header timeout and
//! no HTTP/2 keep-alive), exposes none of its settings, calls every
//! connection's graceful shutdown (`GOAWAY`) at the signal, before any
//! answer, waits for connections without a deadline, and sleeps silently at
//! the file-descriptor limit. None of this can be changed from outside, so
//! this server accepts the connections itself and hands each to
//! hyper-util's `auto::Builder`, as `axum::serve` does inside.

mod accept;
mod body;
mod config;
mod conn;
mod server;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

pub use self::body::BodyTimeout;
pub use self::config::ServeConfig;
pub use self::server::{serve, Serve, ServeFuture, ShutdownReport};

use crate::disconnect::DisconnectToken;

/// A readiness handler for a load balancer's probe: `200 ready` until the
/// shutdown token of the [`DisconnectLayer`](crate::DisconnectLayer) is
/// cancelled, then `503` + `Retry-After`. Mount it on a route
/// (`.route("/ready", get(serve::ready))`).
///
/// During phase (a) of a [shutdown](self#shutdown-in-three-phases) the
/// server still accepts connections; this answer is what tells a load
/// balancer (Kubernetes' readiness probe) to send no more.
///
/// Without the layer it answers `500`
/// ([`MissingDisconnectLayer`](crate::disconnect::MissingDisconnectLayer)).
pub async fn ready(token: DisconnectToken) -> Response {
    if token.shutdown().is_cancelled() {
        crate::response::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down: send requests to another instance\n".to_owned(),
            std::time::Duration::from_secs(1),
        )
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}
