#![allow(clippy::unwrap_used)]
//! Caps (issue "Reliability: limits"): parked long-polls
//! (`LongPollConfig::max_in_flight`), streams (`StreamConfig::max_in_flight`)
//! and the long-poll request body (`LongPollConfig::max_body`). Over a cap
//! a request gets `503` + `Retry-After` (or `413`), it is counted in
//! `Stats`, and what is already parked or streaming is not disturbed.
//! Real sockets, raw HTTP/1.1.

mod common;

use common::PublishNow as _;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use axum_longpoll::{DisconnectLayer, LongPollConfig, Stats, StreamConfig};
use serde_json::Value;

use common::handlers::{ndjson as stream, poll, Log};
use common::{raw_get, spawn, wait_for_stats, RawConn};

const GUARD: Duration = Duration::from_secs(5);

fn app(log: &Log, layer: DisconnectLayer) -> (Router, Stats) {
    let stats = layer.stats();
    let router = Router::new()
        .route("/poll", get(poll).post(poll))
        .route("/stream", get(stream))
        .with_state(log.clone())
        .layer(layer);
    (router, stats)
}

async fn park(addr: std::net::SocketAddr) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.get("/poll?timeout=60").await;
    conn
}

#[tokio::test]
async fn over_max_in_flight_polls_gets_503_and_parked_polls_are_not_disturbed() {
    let log = Log::new(64);
    let layer = DisconnectLayer::new().config(LongPollConfig::new().max_in_flight(3));
    let (router, stats) = app(&log, layer);
    let server = spawn(router).await;

    let mut parked = Vec::new();
    for _ in 0..3 {
        parked.push(park(server.addr).await);
    }
    wait_for_stats(&stats, "three parked", |s| s.parked == 3).await;

    for _ in 0..2 {
        let res = raw_get(server.addr, "/poll?timeout=60").await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let text = res.text();
        assert!(text.contains("3 long-polls are in flight"), "{text}");
    }
    let snap = stats.snapshot();
    assert_eq!((snap.parked, snap.rejected), (3, 2));

    // The parked ones still get the next event.
    let cursor = log.publish_now(7);
    for conn in &mut parked {
        let res = tokio::time::timeout(GUARD, conn.read_response())
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = serde_json::from_str(&res.text()).unwrap();
        assert_eq!(body["events"][0]["id"], cursor.to_string());
    }
    wait_for_stats(&stats, "all answered", |s| s.parked == 0).await;

    // Places are free again.
    let res = raw_get(server.addr, "/poll?timeout=0").await;
    assert_eq!(res.status(), 204);
    assert_eq!(stats.snapshot().rejected, 2);
}

/// A place is held from extraction, not only while waiting, and a
/// disconnect frees it like an answer does.
#[tokio::test]
async fn a_disconnected_poll_frees_its_place() {
    let log = Log::new(64);
    let layer = DisconnectLayer::new().config(LongPollConfig::new().max_in_flight(1));
    let (router, stats) = app(&log, layer);
    let server = spawn(router).await;

    let conn = park(server.addr).await;
    wait_for_stats(&stats, "one parked", |s| s.parked == 1).await;
    assert_eq!(raw_get(server.addr, "/poll?timeout=60").await.status(), 503);
    conn.rst();
    wait_for_stats(&stats, "the RST poll is gone", |s| {
        s.parked == 0 && s.disconnected == 1
    })
    .await;
    let _conn = park(server.addr).await;
    wait_for_stats(&stats, "a new poll parks", |s| s.parked == 1).await;
    assert_eq!(stats.snapshot().rejected, 1);
}

#[tokio::test]
async fn over_max_in_flight_streams_gets_503_and_open_streams_keep_flowing() {
    let log = Log::new(64);
    let config = StreamConfig::new()
        .heartbeat(None)
        .max_in_flight(2)
        .retry_after(Duration::from_millis(2500));
    let (router, stats) = app(&log, DisconnectLayer::new().config(config));
    let server = spawn(router).await;

    let mut open = Vec::new();
    for _ in 0..2 {
        let mut conn = RawConn::connect(server.addr).await;
        conn.get("/stream").await;
        let head = conn.read_head().await;
        assert_eq!(head.status, 200);
        conn.read_chunk().await.unwrap(); // the open frame
        open.push(conn);
    }
    assert_eq!(stats.snapshot().streaming, 2);

    let res = raw_get(server.addr, "/stream").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.header("retry-after"), Some("3"), "2.5 s rounds up");
    assert!(
        res.text().contains("2 streams are in flight"),
        "{}",
        res.text()
    );
    assert_eq!(stats.snapshot().rejected, 1);

    let cursor = log.publish_now(1);
    for conn in &mut open {
        let chunk = tokio::time::timeout(GUARD, conn.read_chunk())
            .await
            .unwrap()
            .unwrap();
        let line: Value = serde_json::from_slice(&chunk).unwrap();
        assert_eq!(line["id"], cursor.to_string());
    }

    // Closing one frees a place.
    open.pop().unwrap().fin();
    wait_for_stats(&stats, "one stream left", |s| s.streaming == 1).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/stream").await;
    assert_eq!(conn.read_head().await.status, 200);
}

#[tokio::test]
async fn over_max_body_gets_413_and_is_counted() {
    let log = Log::new(64);
    let layer = DisconnectLayer::new().config(LongPollConfig::new().max_body(1024));
    let (router, stats) = app(&log, layer);
    let server = spawn(router).await;
    let _parked = park(server.addr).await;
    wait_for_stats(&stats, "one parked", |s| s.parked == 1).await;

    // Announced by Content-Length.
    let mut conn = RawConn::connect(server.addr).await;
    let body = vec![b'x'; 2000];
    conn.request(
        "POST",
        "/poll?timeout=1",
        &["Content-Length: 2000", "Content-Type: text/plain"],
    )
    .await;
    conn.send(&body).await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 413);
    assert!(res.text().contains("at most 1024 bytes"), "{}", res.text());

    // Streamed (chunked): found out while reading.
    let mut conn = RawConn::connect(server.addr).await;
    conn.request("POST", "/poll?timeout=1", &["Transfer-Encoding: chunked"])
        .await;
    conn.send(b"7d0\r\n").await;
    conn.send(&body).await;
    conn.send(b"\r\n0\r\n\r\n").await;
    assert_eq!(conn.read_response().await.status(), 413);

    let snap = stats.snapshot();
    assert_eq!((snap.too_large, snap.parked, snap.rejected), (2, 1, 0));
}
