//! `DisconnectLayer` over real sockets: every test observes the request's
//! token from the server side and checks when it is (and is not) cancelled.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::future::pending;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_longpoll::{DisconnectLayer, DisconnectToken, LongPoll, LongPollConfig, Stats};
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;

use common::{
    assert_cancelled, assert_not_cancelled, probe, probe_middleware, spawn, wait_for_stats, Probe,
    RawConn, Server, Tokens, H2, IO_GUARD,
};

/// Chunks the streaming route sends, one every [`CHUNK_EVERY`].
const CHUNKS: usize = 50;
const CHUNK_EVERY: Duration = Duration::from_millis(20);

fn chunk(i: usize) -> String {
    format!("chunk {i:02}\n")
}

fn whole_stream() -> String {
    (0..CHUNKS).map(chunk).collect()
}

// ---------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------

async fn pending_handler(State(probe): State<Probe>, token: DisconnectToken) -> &'static str {
    probe.send(&token);
    pending::<()>().await;
    "never"
}

async fn ok_handler(State(probe): State<Probe>, token: DisconnectToken) -> &'static str {
    probe.send(&token);
    "ok"
}

async fn body_handler(State(probe): State<Probe>, token: DisconnectToken) -> &'static str {
    probe.send(&token);
    "a body that a HEAD response leaves out"
}

/// A 204 with a (non-empty) body: the server drops the body unpolled.
async fn no_content_handler(State(probe): State<Probe>, token: DisconnectToken) -> Response {
    probe.send(&token);
    (StatusCode::NO_CONTENT, "dropped by the server").into_response()
}

/// A 200 with an empty body (ended before it was ever polled).
async fn empty_handler(State(probe): State<Probe>, token: DisconnectToken) -> StatusCode {
    probe.send(&token);
    StatusCode::OK
}

async fn stream_handler(State(probe): State<Probe>, token: DisconnectToken) -> Body {
    probe.send(&token);
    let chunks = futures_util::stream::unfold(0, |i| async move {
        if i == CHUNKS {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(CHUNK_EVERY).await;
        }
        Some((Ok::<_, Infallible>(Bytes::from(chunk(i))), i + 1))
    });
    Body::from_stream(chunks)
}

/// Plain `DisconnectToken` routes.
async fn token_server() -> (Server, Tokens) {
    let (probe, tokens) = probe();
    let app = Router::new()
        .route("/pending", get(pending_handler))
        .route("/ok", get(ok_handler))
        .route("/body", get(body_handler))
        .route("/no-content", get(no_content_handler))
        .route("/empty", get(empty_handler))
        .route("/stream", get(stream_handler))
        .with_state(probe)
        .layer(DisconnectLayer::new());
    (spawn(app).await, tokens)
}

async fn long_poll_forever(lp: LongPoll) -> Response {
    let outcome = lp.wait(pending::<()>()).await;
    lp.respond(outcome)
}

/// A `LongPoll` route (which reads the body first) with the probe middleware
/// inside the layer, so the token reaches the test before the body is read.
async fn long_poll_server(config: LongPollConfig) -> (Server, Tokens, Stats) {
    let (probe, tokens) = probe();
    let layer = DisconnectLayer::new().config(config);
    let stats = layer.stats();
    let app = Router::new()
        .route("/lp", post(long_poll_forever))
        .layer(from_fn_with_state(probe, probe_middleware))
        .layer(layer);
    (spawn(app).await, tokens, stats)
}

// ---------------------------------------------------------------------------
// HTTP/1.1, handler pending
// ---------------------------------------------------------------------------

/// A `GET /pending` whose handler is waiting; its token, not yet cancelled.
async fn pending_request() -> (Server, RawConn, CancellationToken) {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/pending").await;
    let token = tokens.next().await;
    assert!(!token.is_cancelled());
    (server, conn, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_fin_while_pending_cancels() {
    let (_server, conn, token) = pending_request().await;
    conn.fin();
    assert_cancelled(&token, "FIN while the handler is pending").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_rst_while_pending_cancels() {
    let (_server, conn, token) = pending_request().await;
    conn.rst();
    assert_cancelled(&token, "RST while the handler is pending").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_half_close_while_pending_cancels() {
    let (_server, mut conn, token) = pending_request().await;
    conn.half_close().await;
    // The socket stays open for reading while the server reacts.
    assert_cancelled(&token, "half-close while the handler is pending").await;
    let rest = conn.read_to_eof().await;
    assert!(rest.is_empty(), "no response expected, got {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_normal_completion_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/ok").await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "ok");
    // hyper drops the `Full` body right after its only frame.
    assert_not_cancelled(&token, "after a normal completion").await;
    conn.close_and_wait_server().await;
    assert_not_cancelled(&token, "after the keep-alive connection closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_keep_alive_requests_have_independent_tokens() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;

    conn.get("/ok").await;
    let first = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!((res.status(), res.text().as_str()), (200, "ok"));

    conn.get("/pending").await;
    let second = tokens.next().await;
    assert!(!second.is_cancelled());
    assert_not_cancelled(&first, "first request, after completing").await;

    conn.fin();
    assert_cancelled(&second, "second (pending) request on close").await;
    assert_not_cancelled(&first, "first request, after the connection closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_head_request_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.request("HEAD", "/body", &[]).await;
    let token = tokens.next().await;
    let head = conn.read_head().await;
    assert_eq!(head.status, 200);
    // The connection is still usable: nothing but the head was sent.
    conn.get("/ok").await;
    let _ok_token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!((res.status(), res.text().as_str()), (200, "ok"));
    assert_not_cancelled(&token, "HEAD (the body is never sent)").await;
    conn.close_and_wait_server().await;
    assert_not_cancelled(&token, "HEAD, after the connection closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_no_content_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/no-content").await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 204);
    assert_not_cancelled(&token, "204 (the body is never sent)").await;
    conn.close_and_wait_server().await;
    assert_not_cancelled(&token, "204, after the connection closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_empty_body_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/empty").await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200);
    assert!(res.body.is_empty());
    assert_not_cancelled(&token, "200 with an empty body").await;
    conn.close_and_wait_server().await;
    assert_not_cancelled(&token, "empty body, after the connection closed").await;
}

// ---------------------------------------------------------------------------
// HTTP/1.1, request bodies (LongPoll reads them)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_partial_body_then_fin_cancels() {
    let (server, mut tokens, _stats) = long_poll_server(LongPollConfig::new()).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(b"POST /lp HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\n12345")
        .await;
    let token = tokens.next().await;
    conn.fin();
    assert_cancelled(&token, "Content-Length 10, 5 bytes sent, then FIN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_chunked_body_without_last_chunk_then_fin_cancels() {
    let (server, mut tokens, _stats) = long_poll_server(LongPollConfig::new()).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(
        b"POST /lp HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    let token = tokens.next().await;
    conn.fin();
    assert_cancelled(&token, "chunked body without its last chunk, then FIN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_large_complete_body_then_fin_while_parked_cancels() {
    let config = LongPollConfig::new().max_body(200 * 1024);
    let (server, mut tokens, stats) = long_poll_server(config).await;
    let mut conn = RawConn::connect(server.addr).await;
    let body = vec![b'x'; 100 * 1024];
    conn.send(
        format!(
            "POST /lp HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    conn.send(&body).await;
    let token = tokens.next().await;
    wait_for_stats(&stats, "100 KB body read, handler parked", |s| {
        s.parked == 1
    })
    .await;
    assert!(!token.is_cancelled());
    conn.fin();
    assert_cancelled(&token, "100 KB body, parked, then FIN").await;
    wait_for_stats(&stats, "counted as disconnected", |s| {
        s.parked == 0 && s.disconnected == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_small_complete_body_then_fin_cancels() {
    let (server, mut tokens, stats) = long_poll_server(LongPollConfig::new()).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(b"POST /lp HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello")
        .await;
    let token = tokens.next().await;
    wait_for_stats(&stats, "small body read, handler parked", |s| s.parked == 1).await;
    conn.fin();
    assert_cancelled(&token, "small complete body, parked, then FIN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_long_poll_keepalive_204_does_not_cancel() {
    let (server, mut tokens, stats) = long_poll_server(LongPollConfig::new()).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(b"POST /lp?timeout=0 HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n")
        .await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 204);
    assert_eq!(stats.snapshot().timeout, 1);
    assert_not_cancelled(&token, "long-poll keepalive (204)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_body_over_max_body_is_413_and_does_not_cancel() {
    let (server, mut tokens, stats) = long_poll_server(LongPollConfig::new().max_body(1024)).await;

    // Announced by Content-Length: rejected before any body byte is read.
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(b"POST /lp HTTP/1.1\r\nhost: test\r\ncontent-length: 4096\r\n\r\n")
        .await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert!(
        res.text().contains("1024"),
        "names the limit: {}",
        res.text()
    );
    assert_not_cancelled(&token, "413 (announced length)").await;

    // Chunked, found too large while reading.
    let mut conn = RawConn::connect(server.addr).await;
    let chunk = vec![b'y'; 2048];
    let mut req =
        b"POST /lp HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n800\r\n".to_vec();
    req.extend_from_slice(&chunk);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    conn.send(&req).await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 413, "{}", res.text());
    assert!(
        res.text().contains("1024"),
        "names the limit: {}",
        res.text()
    );
    assert_not_cancelled(&token, "413 (chunked)").await;

    assert_eq!(stats.snapshot().parked, 0);
}

// ---------------------------------------------------------------------------
// HTTP/2 (prior knowledge)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_reset_cancels_only_that_stream() {
    let (server, mut tokens) = token_server().await;
    let mut h2 = H2::connect(server.addr).await;

    let first = h2.get("/pending");
    let first_token = tokens.next().await;
    let second = h2.get("/pending");
    let second_token = tokens.next().await;

    drop(first); // RST_STREAM(CANCEL)
    assert_cancelled(&first_token, "h2 stream reset").await;
    assert_not_cancelled(&second_token, "sibling stream after a reset").await;

    // The sibling is still served: a new request on the same connection works.
    let res = tokio::time::timeout(IO_GUARD, h2.get("/ok"))
        .await
        .expect("h2 /ok hung")
        .expect("h2 /ok");
    let _ok_token = tokens.next().await;
    assert_eq!(res.status(), 200);
    assert!(!second_token.is_cancelled());

    drop(second);
    assert_cancelled(&second_token, "sibling, reset afterwards").await;
    h2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_connection_close_cancels_every_stream() {
    let (server, mut tokens) = token_server().await;
    let mut h2 = H2::connect(server.addr).await;

    let first = h2.get("/pending");
    let first_token = tokens.next().await;
    let second = h2.get("/pending");
    let second_token = tokens.next().await;
    assert_not_cancelled(&first_token, "pending h2 stream").await;
    assert!(!second_token.is_cancelled());

    h2.close().await;
    assert_cancelled(&first_token, "h2 connection closed (first)").await;
    assert_cancelled(&second_token, "h2 connection closed (second)").await;
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_normal_completion_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut h2 = H2::connect(server.addr).await;
    let res = tokio::time::timeout(IO_GUARD, h2.get("/ok"))
        .await
        .expect("h2 /ok hung")
        .expect("h2 /ok");
    let token = tokens.next().await;
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body, "ok");
    assert_not_cancelled(&token, "h2 normal completion").await;
    h2.close().await;
    assert_not_cancelled(&token, "h2 normal completion, connection closed").await;
}

// ---------------------------------------------------------------------------
// Streaming response bodies
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_client_leaves_mid_stream_cancels() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/stream").await;
    let token = tokens.next().await;
    let head = conn.read_head().await;
    assert_eq!(head.status, 200);
    assert_eq!(conn.read_chunk().await.unwrap(), chunk(0).as_bytes());
    assert_eq!(conn.read_chunk().await.unwrap(), chunk(1).as_bytes());
    assert!(!token.is_cancelled());
    conn.fin();
    assert_cancelled(&token, "h1 client left mid-stream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_stream_read_to_the_end_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.get("/stream").await;
    let token = tokens.next().await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), whole_stream());
    assert_not_cancelled(&token, "h1 stream read to the end").await;
    conn.close_and_wait_server().await;
    assert_not_cancelled(&token, "h1 stream read to the end, connection closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_resets_mid_stream_cancels() {
    let (server, mut tokens) = token_server().await;
    let mut h2 = H2::connect(server.addr).await;
    let res = tokio::time::timeout(IO_GUARD, h2.get("/stream"))
        .await
        .expect("h2 /stream hung")
        .expect("h2 /stream");
    let token = tokens.next().await;
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let mut received = Vec::new();
    while received.len() < 2 * chunk(0).len() {
        let frame = tokio::time::timeout(IO_GUARD, body.frame())
            .await
            .expect("frame hung")
            .expect("stream ended early")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    assert!(!token.is_cancelled());
    drop(body); // RST_STREAM(CANCEL)
    assert_cancelled(&token, "h2 client reset mid-stream").await;
    h2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_read_to_the_end_does_not_cancel() {
    let (server, mut tokens) = token_server().await;
    let mut h2 = H2::connect(server.addr).await;
    let res = tokio::time::timeout(IO_GUARD, h2.get("/stream"))
        .await
        .expect("h2 /stream hung")
        .expect("h2 /stream");
    let token = tokens.next().await;
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(IO_GUARD, res.into_body().collect())
        .await
        .expect("body hung")
        .expect("body")
        .to_bytes();
    assert_eq!(body, whole_stream());
    assert_not_cancelled(&token, "h2 stream read to the end").await;
    h2.close().await;
    assert_not_cancelled(&token, "h2 stream read to the end, connection closed").await;
}

// ---------------------------------------------------------------------------
// Auto traits
// ---------------------------------------------------------------------------

#[test]
fn public_types_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}

    send_sync::<DisconnectLayer>();
    send_sync::<DisconnectToken>();
    send_sync::<LongPoll>();
    send_sync::<LongPollConfig>();
    send_sync::<Stats>();

    clone::<DisconnectLayer>();
    clone::<DisconnectToken>();
    clone::<LongPollConfig>();
    clone::<Stats>();
}
