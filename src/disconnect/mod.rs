//! A per-request [`CancellationToken`](tokio_util::sync::CancellationToken)
//! that is cancelled when the client is gone.
//!
//! [`DisconnectLayer`] gives every request a fresh token; handlers extract it
//! with [`DisconnectToken`] (or use it through [`LongPoll`](crate::LongPoll)).
//!
//! # When the token is cancelled
//!
//! The token is cancelled when the request's work is abandoned before it
//! completed:
//!
//! - the response future is dropped before it returned. hyper does this when
//!   it sees the client go: FIN, RST or a half-close (`shutdown(SHUT_WR)`) on
//!   HTTP/1.1; `RST_STREAM` or the loss of the connection on HTTP/2;
//! - the response body is dropped before it ended: the client left while a
//!   streaming body was being sent (or the body failed with an error).
//!
//! It is **never** cancelled by a normal completion: the future returned and
//! the body ended. A body counts as ended when it returned `None`, when after
//! a frame it reports `is_end_stream()` or an exact remaining size of 0 (hyper
//! stops polling there and drops it), when it was empty from the start, and
//! when the server sends no body at all (`HEAD`, `1xx`, `204`, `304`). The
//! token stays uncancelled after that, also when the keep-alive connection
//! later closes.
//!
//! Work the handler spawns can stop on the token (or a `child_token()` of
//! it); the layer itself spawns nothing.
//!
//! # Caveats (hyper's, and what this crate does about them)
//!
//! On HTTP/1.1 hyper only watches the socket while no request-body bytes are
//! owed to the handler. A handler that does not read its body never learns
//! that a client which sent a partial (or a large) body went away.
//! [`LongPoll`](crate::LongPoll) therefore reads the request body, up to
//! [`LongPollConfig::max_body`](crate::LongPollConfig::max_body), before the
//! handler waits. A plain [`DisconnectToken`] handler should read (or
//! bound) its body itself.
//!
//! A peer that vanishes without FIN or RST (a pulled cable) is seen only when
//! a write fails; turn on TCP keepalive on accepted sockets to bound that
//! (`net::DeadPeer`, on by default under `axum_longpoll::serve`).
//!
//! # Cost
//!
//! Per request: one `CancellationToken` node and one request-extension entry
//! holding two reference-counted pointers. No task, no timer, no lock on the
//! normal path.
//!
//! Where the layer goes matters more than the layer for memory (measured in
//! `BENCHMARKS.md`): `Router::layer` makes axum box every route's layered
//! service (cloned for each connection by `axum::serve`) and each request's
//! future, about 1.6 KB per parked long-poll. Wrapping the whole router
//! avoids both. `axum_longpoll::serve` (feature `net`) does it for the layer
//! you pass to its `.layer(..)`; under `axum::serve` the response body then
//! has to be mapped back to axum's:
//!
//! ```no_run
//! use axum::{body::Body, extract::Request, Router};
//! use axum_longpoll::DisconnectLayer;
//! use tower::Layer as _;
//!
//! # async fn run(router: Router) -> std::io::Result<()> {
//! let app = tower::ServiceExt::<Request>::map_response(
//!     DisconnectLayer::new().layer(router),
//!     |res: http::Response<_>| res.map(Body::new),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(app)).await
//! # }
//! ```
//!
//! # Compared with tower-http's `on_early_drop`
//!
//! tower-http 0.7 calls a callback when the response future or body is
//! dropped early (`on_early_drop/body.rs`). Its rule for a finished body is
//! close to this one: `None`, or `is_end_stream()` at construction or after
//! a frame. Three cases differ. A body that fails with an error counts as
//! finished there; here the response is incomplete, so the token is
//! cancelled when the server drops it. A body whose size hint says 0 bytes
//! remain, which hyper also stops polling, is finished here. And a response
//! that carries no body at all (`HEAD`, `1xx`, `204`, `304`), whose body
//! hyper drops unpolled, is complete here whatever its body type; there it
//! counts as dropped early unless the body already reported the end. This
//! layer also hands out a token, which handlers and the tasks they spawn can
//! await, instead of calling a callback.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_longpoll::{DisconnectLayer, DisconnectToken};
//!
//! async fn report(token: DisconnectToken) -> String {
//!     // Stop the expensive part as soon as the client leaves; a normal
//!     // completion never cancels the token.
//!     let token = token.child_token();
//!     let job = tokio::spawn(async move {
//!         tokio::select! {
//!             () = token.cancelled() => None,
//!             rows = expensive_query() => Some(rows),
//!         }
//!     });
//!     match job.await {
//!         Ok(Some(rows)) => format!("{rows} rows"),
//!         _ => String::new(), // the client is gone: nobody reads this
//!     }
//! }
//! # async fn expensive_query() -> usize { 3 }
//!
//! let app: Router = Router::new()
//!     .route("/report", get(report))
//!     .layer(DisconnectLayer::new());
//! ```

mod body;
mod context;
pub(crate) mod cut;
mod extract;
mod future;
mod in_flight;
mod layer;
mod service;

pub use self::body::DisconnectBody;
pub use self::extract::{DisconnectToken, MissingDisconnectLayer};
pub use self::future::ResponseFuture;
pub use self::in_flight::InFlight;
pub use self::layer::DisconnectLayer;
pub use self::service::Disconnect;

pub(crate) use self::context::RequestContext;
