#![allow(clippy::unwrap_used)]
//! The streaming mode composed with tower-http (`CompressionLayer`,
//! `CorsLayer` with credentials) and fed by plain `Stream`s, over real
//! sockets: `axum::serve` on `127.0.0.1:0`, raw HTTP/1.1 clients that read
//! the body chunk by chunk (and gunzip it incrementally), and HTTP/2 with
//! prior knowledge.
//!
//! Every timeout is a hang guard, never a performance assertion.

mod common;

use common::PublishNow as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_longpoll::event_log::{EventLog, Resume, LAST_EVENT_ID};
use axum_longpoll::long_poll::CURSOR;
use axum_longpoll::{DisconnectLayer, LongPoll, StreamConfig, Streaming};
use flate2::write::GzDecoder;
use futures_util::stream;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;

use common::{
    assert_cancelled, assert_not_cancelled, probe, probe_middleware, spawn, spawn_with_shutdown,
    Head, RawConn, H2,
};

/// Hang guard for one frame.
const FRAME_GUARD: Duration = Duration::from_secs(5);

const ORIGIN: &str = "http://app.example";

type Log = EventLog<u64>;

/// A plain source for `/items`: the test pushes, the handler streams.
#[derive(Clone, Default)]
struct Items(Arc<Mutex<Option<mpsc::UnboundedReceiver<u64>>>>);

impl Items {
    fn channel() -> (Self, mpsc::UnboundedSender<u64>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(Arc::new(Mutex::new(Some(rx)))), tx)
    }

    fn take(&self) -> impl futures_util::Stream<Item = u64> {
        let rx = self.0.lock().unwrap().take().expect("one /items request");
        stream::unfold(rx, |mut rx| async { rx.recv().await.map(|v| (v, rx)) })
    }
}

#[derive(Clone)]
struct AppState {
    log: Log,
    items: Items,
}

async fn ndjson(State(app): State<AppState>, resume: Resume, s: Streaming) -> Response {
    s.ndjson(app.log.reader(resume))
}

async fn sse(State(app): State<AppState>, resume: Resume, s: Streaming) -> Response {
    s.sse(app.log.reader(resume))
}

async fn poll(State(app): State<AppState>, resume: Resume, lp: LongPoll) -> Response {
    lp.serve(app.log.reader(resume)).await
}

async fn items(State(app): State<AppState>, s: Streaming) -> Response {
    s.ndjson(app.items.take())
}

async fn sse_items(State(app): State<AppState>, s: Streaming) -> Response {
    s.sse(app.items.take())
}

/// The routes, inside `DisconnectLayer` (no heartbeats unless `config` says).
fn routes(log: &Log, source: Items, config: StreamConfig) -> Router {
    Router::new()
        .route("/stream", get(ndjson))
        .route("/sse", get(sse))
        .route("/poll", get(poll))
        .route("/items", get(items))
        .route("/sse_items", get(sse_items))
        .with_state(AppState {
            log: log.clone(),
            items: source,
        })
        .layer(DisconnectLayer::new().config(config))
}

fn quiet() -> StreamConfig {
    StreamConfig::new().heartbeat(None)
}

/// The predicate the crate docs recommend: tower-http's default, plus NDJSON.
fn streaming_aware() -> impl Predicate {
    DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson"))
}

// ---------------------------------------------------------------------------
// A body reader that gunzips incrementally
// ---------------------------------------------------------------------------

/// Reads a chunked HTTP/1.1 body chunk by chunk; if the response is gzip,
/// inflates what has arrived so far (a chunk that completes no deflate
/// block yields no text: exactly what a browser would see).
struct Text {
    conn: RawConn,
    gzip: Option<GzDecoder<Vec<u8>>>,
    text: Vec<u8>,
}

impl Text {
    async fn get(conn: RawConn, target: &str, headers: &[&str]) -> (Head, Self) {
        let mut conn = conn;
        conn.request("GET", target, headers).await;
        let head = tokio::time::timeout(FRAME_GUARD, conn.read_head())
            .await
            .expect("response head");
        let gzip =
            (head.header("content-encoding") == Some("gzip")).then(|| GzDecoder::new(Vec::new()));
        (
            head,
            Self {
                conn,
                gzip,
                text: Vec::new(),
            },
        )
    }

    /// Reads one more chunk; false at the end of the body.
    async fn more(&mut self) -> bool {
        let Some(chunk) = self.conn.read_chunk().await else {
            return false;
        };
        match &mut self.gzip {
            Some(decoder) => {
                decoder.write_all(&chunk).unwrap();
                decoder.flush().unwrap();
                self.text.append(decoder.get_mut());
            }
            None => self.text.extend_from_slice(&chunk),
        }
        true
    }

    /// The next text up to `sep` (exclusive), reading as needed; `None` at
    /// the end of the body.
    async fn until(&mut self, sep: &[u8]) -> Option<String> {
        loop {
            if let Some(i) = self.text.windows(sep.len()).position(|w| w == sep) {
                let piece: Vec<u8> = self.text.drain(..i + sep.len()).take(i).collect();
                return Some(String::from_utf8(piece).unwrap());
            }
            if !self.more().await {
                return None;
            }
        }
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(FRAME_GUARD, self.until(b"\n"))
            .await
            .expect("no line within the guard")
            .expect("body ended before a line")
    }

    async fn json_line(&mut self) -> Value {
        serde_json::from_str(&self.line().await).unwrap()
    }

    /// One SSE block (up to the blank line), comments dropped.
    async fn sse_block(&mut self) -> Vec<String> {
        let block = tokio::time::timeout(FRAME_GUARD, self.until(b"\n\n"))
            .await
            .expect("no SSE block within the guard")
            .expect("body ended before an SSE block");
        block
            .lines()
            .filter(|l| !l.starts_with(':'))
            .map(str::to_owned)
            .collect()
    }
}

/// Publishes five events one at a time and reads each (one NDJSON line)
/// before the next is published.
async fn ndjson_one_by_one(body: &mut Text, log: &Log) {
    assert_eq!(body.json_line().await["control"], "open");
    for i in 0..5u64 {
        let cursor = log.publish_now(i);
        let line = body.json_line().await;
        assert_eq!(
            line,
            json!({ "id": cursor.to_string(), "data": i }),
            "event {i}"
        );
    }
}

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ndjson_behind_compression_with_the_documented_predicate_flushes_per_event() {
    let log = Log::new(64);
    let app = routes(&log, Items::default(), quiet())
        .layer(CompressionLayer::new().compress_when(streaming_aware()));
    let server = spawn(app).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/stream", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), None);
    ndjson_one_by_one(&mut body, &log).await;
}

/// tower-http's default predicate compresses NDJSON. Since async-compression
/// 0.4.40 its encoder flushes whenever our body waits, so each event still
/// arrives (compressed) before the next is published.
#[tokio::test]
async fn ndjson_behind_default_compression_is_gzipped_and_flushed_per_event() {
    let log = Log::new(64);
    let app = routes(&log, Items::default(), quiet()).layer(CompressionLayer::new());
    let server = spawn(app).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/stream", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    ndjson_one_by_one(&mut body, &log).await;
}

#[tokio::test]
async fn sse_behind_default_compression_flushes_per_event() {
    let log = Log::new(64);
    let app = routes(&log, Items::default(), quiet()).layer(CompressionLayer::new());
    let server = spawn(app).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/sse", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), None);
    assert!(body.sse_block().await.contains(&"event: cursor".to_owned()));
    for i in 0..5u64 {
        let cursor = log.publish_now(i);
        let block = body.sse_block().await;
        assert_eq!(
            block,
            vec![format!("id: {cursor}"), format!("data: {i}")],
            "event {i}"
        );
    }
}

#[tokio::test]
async fn long_poll_answers_stay_compressed() {
    let log = Log::new(64);
    for i in 0..50u64 {
        log.publish_now(i);
    }
    let app = routes(&log, Items::default(), quiet())
        .layer(CompressionLayer::new().compress_when(streaming_aware()));
    let server = spawn(app).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/poll?from=oldest", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert!(head.header("cursor").is_some());
    while body.more().await {}
    let answer: Value = serde_json::from_slice(&body.text).unwrap();
    assert_eq!(answer["events"].as_array().unwrap().len(), 50);
}

/// The token still fires when the client leaves a compressed stream, and
/// still does not when a compressed stream is read to its end: tower-http's
/// body reads ours to `None`, which disarms it.
#[tokio::test]
async fn token_through_compression() {
    let log = Log::new(64);
    let (items_src, tx) = Items::channel();
    let (p, mut tokens) = probe();
    let app = Router::new()
        .route("/stream", get(ndjson))
        .route("/items", get(items))
        .with_state(AppState {
            log: log.clone(),
            items: items_src,
        })
        .layer(from_fn_with_state(p, probe_middleware))
        .layer(DisconnectLayer::new().config(quiet()))
        .layer(CompressionLayer::new());
    let server = spawn(app).await;

    // Compressed NDJSON, abandoned mid-stream.
    let conn = RawConn::connect(server.addr).await;
    let (head, body) = Text::get(conn, "/stream", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    let token = tokens.next().await;
    log.publish_now(1);
    body.conn.fin();
    assert_cancelled(&token, "client left a compressed stream").await;

    // Compressed plain stream read to its end.
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/items", &["Accept-Encoding: gzip"]).await;
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    let token = tokens.next().await;
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut lines = Vec::new();
    while let Some(line) = tokio::time::timeout(FRAME_GUARD, body.until(b"\n"))
        .await
        .unwrap()
    {
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(
        lines,
        vec![
            json!(0),
            json!(1),
            json!(2),
            json!({"control": "reconnect", "reason": "end"})
        ]
    );
    assert_not_cancelled(&token, "compressed stream read to its end").await;
}

// ---------------------------------------------------------------------------
// CORS with credentials
// ---------------------------------------------------------------------------

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin([HeaderValue::from_static(ORIGIN)])
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            LAST_EVENT_ID,
            axum::http::HeaderName::from_static("prefer"),
            axum::http::header::CONTENT_TYPE,
        ])
        .expose_headers([CURSOR, axum::http::header::RETRY_AFTER])
}

fn cors_app(log: &Log) -> Router {
    routes(log, Items::default(), quiet()).layer(cors())
}

#[tokio::test]
async fn cors_preflight_allows_credentials_and_the_modes_headers() {
    let log = Log::new(64);
    let server = spawn(cors_app(&log)).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.request(
        "OPTIONS",
        "/sse",
        &[
            &format!("Origin: {ORIGIN}"),
            "Access-Control-Request-Method: GET",
            "Access-Control-Request-Headers: last-event-id, prefer",
        ],
    )
    .await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    let allowed = res
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("last-event-id") && allowed.contains("prefer"),
        "{allowed}"
    );
}

#[tokio::test]
async fn cors_sse_with_credentials_streams_per_event() {
    let log = Log::new(64);
    let server = spawn(cors_app(&log)).await;
    let conn = RawConn::connect(server.addr).await;
    let origin = format!("Origin: {ORIGIN}");
    let (head, mut body) = Text::get(conn, "/sse", &[&origin, "Cookie: session=abc"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        head.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    body.sse_block().await; // the cursor event
    for i in 0..5u64 {
        let cursor = log.publish_now(i);
        assert_eq!(
            body.sse_block().await,
            vec![format!("id: {cursor}"), format!("data: {i}")]
        );
    }
}

#[tokio::test]
async fn cors_long_poll_exposes_cursor_and_refuses_other_origins() {
    let log = Log::new(64);
    log.publish_now(7);
    let server = spawn(cors_app(&log)).await;

    let conn = RawConn::connect(server.addr).await;
    let origin = format!("Origin: {ORIGIN}");
    let (head, _) = Text::get(conn, "/poll?from=oldest", &[&origin]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("access-control-allow-origin"), Some(ORIGIN));
    let exposed = head
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("cursor") && exposed.contains("retry-after"),
        "{exposed}"
    );

    // Another origin: served (CORS is enforced by the browser), but without
    // the allow-origin header that would let a page read it.
    let conn = RawConn::connect(server.addr).await;
    let (head, _) = Text::get(conn, "/poll?from=oldest", &["Origin: http://evil.example"]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("access-control-allow-origin"), None);
}

// ---------------------------------------------------------------------------
// Plain Stream sources (no cursor)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ndjson_items_arrive_one_by_one_and_end_without_cursor() {
    let (items_src, tx) = Items::channel();
    let server = spawn(routes(&Log::new(8), items_src, quiet())).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/items", &[]).await;
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    for i in 0..5u64 {
        tx.send(i * 10).unwrap();
        assert_eq!(body.json_line().await, json!(i * 10), "item {i}");
    }
    drop(tx);
    assert_eq!(
        body.json_line().await,
        json!({"control": "reconnect", "reason": "end"})
    );
    assert_eq!(
        body.until(b"\n").await,
        None,
        "the body ends after the final frame"
    );
}

#[tokio::test]
async fn sse_items_have_no_id_and_get_heartbeats() {
    let (items_src, tx) = Items::channel();
    let config = StreamConfig::new().heartbeat(Some(Duration::from_millis(100)));
    let server = spawn(routes(&Log::new(8), items_src, config)).await;
    let conn = RawConn::connect(server.addr).await;
    let (head, mut body) = Text::get(conn, "/sse_items", &[]).await;
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    // Idle: heartbeats only (a comment block, which `sse_block` empties).
    assert_eq!(body.sse_block().await, Vec::<String>::new());
    tx.send(42).unwrap();
    let block = loop {
        let block = body.sse_block().await;
        if !block.is_empty() {
            break block;
        }
    };
    assert_eq!(block, vec!["data: 42".to_owned()]);
}

#[tokio::test]
async fn items_stream_ends_on_shutdown_h2() {
    let (items_src, tx) = Items::channel();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let app = Router::new()
        .route("/items", get(items))
        .with_state(AppState {
            log: Log::new(8),
            items: items_src,
        })
        .layer(
            DisconnectLayer::new()
                .config(quiet())
                .shutdown(shutdown.clone()),
        );
    let server = spawn_with_shutdown(app, shutdown.clone()).await;
    let mut h2 = H2::connect(server.addr).await;
    let res = h2.get("/items").await.unwrap();
    let mut body = res.into_body();
    tx.send(1).unwrap();
    let frame = tokio::time::timeout(FRAME_GUARD, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), "1\n");
    shutdown.cancel();
    let rest = tokio::time::timeout(FRAME_GUARD, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&rest).unwrap(),
        json!({"control": "reconnect", "reason": "shutdown"})
    );
    server.shutdown(FRAME_GUARD).await.unwrap();
}
