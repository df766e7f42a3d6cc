//! The demo's router and handlers, shared by `main.rs` and by the tests,
//! benchmarks and browser test that drive the same HTTP interface
//! (`#[path = "../examples/demo/app.rs"] mod demo;`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::event_log::{Backend, EventLog, Memory, Resume};
use axum_longpoll::{DisconnectLayer, LongPoll, Stats, Streaming};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Largest message `/publish` accepts.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The demo's state, for either backend of the log.
struct App<B = Memory> {
    log: EventLog<Arc<str>, B>,
    stats: Stats,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            stats: self.stats.clone(),
        }
    }
}

async fn publish<B: Backend>(State(app): State<App<B>>, body: Body) -> Response {
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
    // On Redis a publish can fail (Redis unreachable): `503` + `Retry-After`.
    match app.log.append(Arc::from(text)).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn poll<B: Backend>(State(app): State<App<B>>, resume: Resume, lp: LongPoll) -> Response {
    match resume.start(&app.log) {
        Ok(after) => lp.respond_with_log(&app.log, after).await,
        Err(gone) => gone.into_response(),
    }
}

async fn stream<B: Backend>(State(app): State<App<B>>, resume: Resume, s: Streaming) -> Response {
    match resume.start(&app.log) {
        Ok(start) => s.ndjson_log(&app.log, start),
        Err(gone) => gone.into_response(),
    }
}

async fn sse<B: Backend>(State(app): State<App<B>>, resume: Resume, s: Streaming) -> Response {
    match resume.start(&app.log) {
        Ok(start) => s.sse_log(&app.log, start),
        Err(gone) => gone.into_response(),
    }
}

async fn stats<B: Backend>(State(app): State<App<B>>) -> Response {
    let mut body = serde_json::to_value(app.stats.snapshot()).unwrap_or_default();
    body["retained"] = json!(app.log.len());
    body["head"] = json!(app.log.head());
    body["backend"] = json!(B::NAME);
    Json(body).into_response()
}

/// The demo's router, for a given log (in memory or on Redis) and shutdown
/// token.
pub(crate) fn router<B: Backend>(
    log: EventLog<Arc<str>, B>,
    shutdown: CancellationToken,
) -> Router {
    let layer = DisconnectLayer::new().shutdown(shutdown);
    let state = App {
        log,
        stats: layer.stats(),
    };
    Router::new()
        .route("/publish", post(publish::<B>))
        .route("/poll", get(poll::<B>))
        .route("/stream", get(stream::<B>))
        .route("/sse", get(sse::<B>))
        .route("/stats", get(stats::<B>))
        .with_state(state)
        .layer(layer)
}
