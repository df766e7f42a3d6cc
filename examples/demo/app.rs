//! The demo's router and handlers, shared by `main.rs` and by the tests,
//! benchmarks and browser test that drive the same HTTP interface
//! (`#[path = "../examples/demo/app.rs"] mod demo;`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::Message;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::event_log::{EventLog, Resume};
use axum_longpoll::ws::{CloseReason, LiveSocket, OpenSockets, WsConfig};
use axum_longpoll::{DisconnectLayer, LongPoll, Stats, Streaming};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Largest message `/publish` accepts.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Clone)]
struct App {
    log: EventLog<Arc<str>>,
    stats: Stats,
}

async fn publish(State(app): State<App>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_MESSAGE).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "publish body too large: allowed at most {MAX_MESSAGE} bytes of UTF-8 text"
                ),
            )
                .into_response()
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return (
            StatusCode::BAD_REQUEST,
            "invalid publish body: allowed UTF-8 text only",
        )
            .into_response();
    };
    let id = app.log.publish(Arc::from(text));
    Json(json!({ "id": id })).into_response()
}

async fn poll(State(app): State<App>, resume: Resume, lp: LongPoll) -> Response {
    match resume.start(&app.log) {
        Ok(after) => lp.respond_with_log(&app.log, after).await,
        Err(gone) => gone.into_response(),
    }
}

async fn stream(State(app): State<App>, resume: Resume, s: Streaming) -> Response {
    match resume.start(&app.log) {
        Ok(start) => s.ndjson_log(&app.log, start),
        Err(gone) => gone.into_response(),
    }
}

async fn sse(State(app): State<App>, resume: Resume, s: Streaming) -> Response {
    match resume.start(&app.log) {
        Ok(start) => s.sse_log(&app.log, start),
        Err(gone) => gone.into_response(),
    }
}

/// Events of the log as text frames; a text frame from the client is
/// published like `POST /publish` (a binary one closes with `1003`).
async fn ws(State(app): State<App>, resume: Resume, ws: LiveSocket) -> Response {
    let start = resume.start(&app.log);
    let log = app.log.clone();
    ws.serve_log(app.log, start, move |msg| match msg {
        Message::Text(text) => {
            log.publish(Arc::from(text.as_str()));
            Ok(())
        }
        _ => Err(CloseReason::server(1003, "text messages only")),
    })
}

async fn stats(State(app): State<App>) -> Response {
    let mut body = serde_json::to_value(app.stats.snapshot()).unwrap_or_default();
    body["retained"] = json!(app.log.len());
    body["head"] = json!(app.log.head());
    Json(body).into_response()
}

/// The demo's router, for a given log and shutdown token.
#[allow(dead_code)] // each user of app.rs calls one of the two
pub(crate) fn router(log: EventLog<Arc<str>>, shutdown: CancellationToken) -> Router {
    router_with_sockets(log, shutdown).0
}

/// The demo's router and its WebSocket connections (to wait for them after
/// a graceful shutdown).
pub(crate) fn router_with_sockets(
    log: EventLog<Arc<str>>,
    shutdown: CancellationToken,
) -> (Router, OpenSockets) {
    let layer = DisconnectLayer::new()
        .shutdown(shutdown)
        .websocket(WsConfig::new().max_message_size(MAX_MESSAGE));
    let sockets = layer.websockets();
    let state = App {
        log,
        stats: layer.stats(),
    };
    let router = Router::new()
        .route("/publish", post(publish))
        .route("/poll", get(poll))
        .route("/stream", get(stream))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/stats", get(stats))
        .with_state(state)
        .layer(layer);
    (router, sockets)
}
