//! Full duplex over plain HTTP, without a hijack: the handler reads the
//! request body chunk by chunk while it streams the response, here an
//! uppercase echo. (Seed 002 hijacked the connection to do this in Go.)
//!
//! ```text
//! cargo run --example duplex          # ADDR=127.0.0.1:3001
//! # type lines; each comes back uppercased as soon as you press Enter:
//! curl -sN -T - -H 'Content-Type: text/plain' localhost:3001/upper
//! # the same over HTTP/2 without TLS:
//! curl -sN --http2-prior-knowledge -T - localhost:3001/upper
//! ```
//!
//! # What hyper supports here (hyper 1.x under `axum::serve`)
//!
//! - **HTTP/2**: full duplex is native. Request DATA frames and response
//!   DATA frames are independent, each direction has its own flow-control
//!   window, and a client may send the next chunk only after it has read the
//!   previous answer (the tests do exactly that).
//! - **HTTP/1.1**: hyper's server reads the request body while it writes the
//!   response: one connection task polls both directions. Limits:
//!   - the request body reaches the handler through a one-chunk channel;
//!     while the handler does not take the next chunk, hyper stops reading
//!     the socket (back-pressure), and while it is not reading it cannot see
//!     a FIN or RST either; a write that fails still tells it;
//!   - if the handler ends the response and drops the request body before
//!     that body ended, hyper drains what has already arrived and otherwise
//!     closes the connection after the response (no keep-alive);
//!   - the response head is written as soon as the handler returns the
//!     response (here, at once), before the first body chunk;
//!   - many HTTP/1.1 intermediaries buffer request bodies (nginx does by
//!     default: `proxy_request_buffering off` turns that off), and
//!     browsers' `fetch` streams request bodies only as half duplex
//!     (`duplex: "half"`), so from a page this pattern needs HTTP/2 and even
//!     then answers come after the request body ends. Use WebSocket for
//!     browser duplex.
//! - **The token**: the route sits behind `DisconnectLayer`, so a client that
//!   leaves mid-exchange cancels the request's token like in any other mode;
//!   a normal end (request body done, response read) does not.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use axum_longpoll::{DisconnectLayer, DisconnectToken};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// `POST /upper`: each request chunk comes back uppercased as one response
/// chunk, as soon as it arrives. Ends when the request body ends, or on
/// shutdown.
async fn upper(token: DisconnectToken, body: Body) -> Response {
    let shutdown = token.shutdown().clone();
    let echo = body
        .into_data_stream()
        .map(|chunk| chunk.map(|bytes| Bytes::from(bytes.to_ascii_uppercase())))
        .take_until(shutdown.cancelled_owned());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        Body::from_stream(echo),
    )
        .into_response()
}

/// The example's routes, before the layer (the tests serve these very routes).
pub(crate) fn routes() -> Router {
    Router::new().route("/upper", post(upper))
}

/// The example's router: its routes behind `DisconnectLayer`.
pub(crate) fn router(shutdown: CancellationToken) -> Router {
    routes().layer(DisconnectLayer::new().shutdown(shutdown))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("invalid ADDR={v:?}: allowed an address like 127.0.0.1:3001"))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3001)),
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("duplex echo on http://{}/upper", listener.local_addr()?);
    axum::serve(listener, router(shutdown.clone()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
