#![allow(clippy::unwrap_used)]
//! Extreme but valid settings meet extreme but valid client input: no
//! panic. Found by the `timeout` fuzz target (`fuzz/run`).
//!
//! Deadlines saturate (`crate::deadline::after`) instead of overflowing.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_longpoll::event_log::{EventLog, Resume};
use axum_longpoll::{DisconnectLayer, LongPoll, LongPollConfig, StreamConfig, Streaming};
use http::{Request, StatusCode};
use tower::ServiceExt;

/// The status of `GET uri`, or the panic. The handler runs in a task so
/// that a panic is a failed request, as with `axum::serve`.
async fn status(app: Router, uri: &str) -> Result<StatusCode, String> {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    tokio::spawn(async move { app.oneshot(req).await.unwrap() })
        .await
        .map(|res| res.status())
        .map_err(|e| format!("GET {uri}: the handler panicked: {e}"))
}

/// `max_timeout(Duration::MAX)` reads as "no cap". A client that then asks
/// for `u64::MAX` seconds (a well-formed value) makes `LongPoll` compute
/// `Instant::now() + wait`, which overflows and panics
/// (src/long_poll/extract.rs, `let deadline = Instant::now() + wait;`, and
/// the body deadline below it). Expected: the deadline saturates (or the
/// wait is capped at some far bound) and the request is served.
#[tokio::test]
async fn huge_max_timeout_and_huge_client_timeout_do_not_panic() {
    async fn handler(lp: LongPoll) -> String {
        format!("{:?}", lp.wait_duration())
    }
    let config = LongPollConfig::new().max_timeout(Duration::MAX);
    let app = Router::new()
        .route("/poll", get(handler))
        .layer(DisconnectLayer::new().config(config));
    let mut results = Vec::new();
    for uri in [
        "/poll?timeout=18446744073709551615",
        "/poll?timeout=10000000000000000000",
    ] {
        results.push(status(app.clone(), uri).await);
    }
    assert!(
        results.iter().all(|r| *r == Ok(StatusCode::OK)),
        "{results:#?}"
    );
}

/// `StreamConfig::max_lifetime(Duration::MAX)` (or a heartbeat of
/// `Duration::MAX`) reads as "no limit", but every stream then panics in
/// the engine on `now + limits.max_lifetime` (src/stream/engine.rs).
/// Expected: the deadline saturates and the stream is served.
#[tokio::test]
async fn unlimited_stream_lifetime_and_heartbeat_do_not_panic() {
    async fn ndjson(State(log): State<EventLog<u8>>, resume: Resume, s: Streaming) -> Response {
        s.ndjson(log.reader(resume))
    }
    let log = EventLog::<u8>::new(4);
    let mut results = Vec::new();
    for config in [
        StreamConfig::new().max_lifetime(Duration::MAX),
        StreamConfig::new().heartbeat(Some(Duration::MAX)),
    ] {
        let app = Router::new()
            .route("/stream", get(ndjson))
            .with_state(log.clone())
            .layer(DisconnectLayer::new().config(config.clone()));
        results.push((config, status(app, "/stream").await));
    }
    assert!(
        results.iter().all(|(_, r)| *r == Ok(StatusCode::OK)),
        "{results:#?}"
    );
}
