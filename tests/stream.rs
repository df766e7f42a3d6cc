#![allow(clippy::unwrap_used)]
//! Streamed responses (`Streaming::ndjson` / `sse` of a log) over real
//! sockets: a router with `GET /stream` (NDJSON) and `GET /sse` behind
//! `DisconnectLayer`, served by `axum::serve` on `127.0.0.1:0`; clients speak
//! raw HTTP/1.1 (`RawConn`, chunked bodies) or HTTP/2 with prior knowledge
//! (hyper's client, body read frame by frame). Events are published through
//! the `EventLog` handle from the test.
//!
//! Every timeout is a hang guard, never a performance assertion.

mod common;

use common::PublishNow as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use axum_longpoll::event_log::{Cursor, EventLog, Resume};
use axum_longpoll::{DisconnectLayer, Stats, StreamConfig, Streaming};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::handlers::{ndjson, sse, Log};
use common::{
    assert_cancelled, assert_not_cancelled, small_recv_buffer_conn, small_send_buffer_listener,
    spawn, spawn_on, spawn_with_shutdown, wait_for_stats, RawConn, Server, H2,
};

/// Hang guard for one frame (an event line, a heartbeat, a final frame).
const FRAME_GUARD: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// `GET /stream` (NDJSON) and `GET /sse` over `log`, behind `layer`.
fn app(log: &Log, layer: DisconnectLayer) -> Router {
    Router::new()
        .route("/stream", get(ndjson))
        .route("/sse", get(sse))
        .with_state(log.clone())
        .layer(layer)
}

/// [`app`] plus `GET /stream_tok`: NDJSON whose handler sends its
/// `Streaming::token()` to the test before returning the response.
fn app_with_tokens(
    log: &Log,
    layer: DisconnectLayer,
) -> (Router, mpsc::UnboundedReceiver<CancellationToken>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |State(log): State<Log>, resume: Resume, s: Streaming| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(s.token().clone());
            s.ndjson(log.reader(resume))
        }
    };
    let router = Router::new()
        .route("/stream", get(ndjson))
        .route("/sse", get(sse))
        .route("/stream_tok", get(handler))
        .with_state(log.clone())
        .layer(layer);
    (router, rx)
}

/// A log whose epoch is fixed (cursors are reproducible in failure output).
fn log(capacity: usize) -> Log {
    EventLog::builder()
        .capacity(capacity)
        .epoch(0x5eed_0000_0000_0001)
        .build()
}

/// A layer with the given stream configuration; returns its stats too.
fn layer(config: StreamConfig) -> (DisconnectLayer, Stats) {
    let layer = DisconnectLayer::new().config(config);
    let stats = layer.stats();
    (layer, stats)
}

/// No heartbeats, default caps: nothing but events and control frames.
fn quiet() -> StreamConfig {
    StreamConfig::new().heartbeat(None)
}

async fn next_token(rx: &mut mpsc::UnboundedReceiver<CancellationToken>) -> CancellationToken {
    tokio::time::timeout(FRAME_GUARD, rx.recv())
        .await
        .expect("the handler did not send its token")
        .expect("token channel closed")
}

// ---------------------------------------------------------------------------
// Client: a streamed body, read line by line
// ---------------------------------------------------------------------------

enum Source {
    H1(RawConn),
    H2(Incoming),
}

/// A response body being streamed, split into lines as it arrives.
struct Body {
    source: Source,
    buf: Vec<u8>,
    /// Body bytes returned as lines so far.
    consumed: usize,
}

impl Body {
    /// `GET target` over a fresh HTTP/1.1 connection; asserts a chunked `200`.
    async fn h1(addr: SocketAddr, target: &str, headers: &[&str]) -> Self {
        Self::h1_on(RawConn::connect(addr).await, target, headers).await
    }

    async fn h1_on(mut conn: RawConn, target: &str, headers: &[&str]) -> Self {
        conn.request("GET", target, headers).await;
        let head = conn.read_head().await;
        assert_eq!(head.status, 200, "GET {target}: {head:?}");
        assert_eq!(
            head.header("transfer-encoding"),
            Some("chunked"),
            "GET {target}: {head:?}"
        );
        Self {
            source: Source::H1(conn),
            buf: Vec::new(),
            consumed: 0,
        }
    }

    /// `GET path` as a new stream of an HTTP/2 connection; asserts `200`.
    async fn h2(h2: &mut H2, path: &str) -> Self {
        let res = tokio::time::timeout(FRAME_GUARD, h2.get(path))
            .await
            .expect("h2 response head hung")
            .expect("h2 request");
        assert_eq!(res.status(), 200, "GET {path}: {res:?}");
        Self {
            source: Source::H2(res.into_body()),
            buf: Vec::new(),
            consumed: 0,
        }
    }

    /// Appends the next body frame to the buffer; `false` at the end of the
    /// body.
    async fn more(&mut self) -> bool {
        match &mut self.source {
            Source::H1(conn) => match conn.read_chunk().await {
                Some(chunk) => {
                    self.buf.extend_from_slice(&chunk);
                    true
                }
                None => false,
            },
            Source::H2(body) => loop {
                match body.frame().await {
                    None => return false,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buf.extend_from_slice(&data);
                            return true;
                        }
                    }
                    Some(Err(err)) => panic!("h2 body error: {err}"),
                }
            },
        }
    }

    /// The next line (without `\n`); `None` at the end of the body.
    async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(FRAME_GUARD, async {
            loop {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=pos).collect();
                    self.consumed += line.len();
                    return Some(String::from_utf8(line[..pos].to_vec()).unwrap());
                }
                if !self.more().await {
                    assert!(
                        self.buf.is_empty(),
                        "body ended in the middle of a line: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        })
        .await
        .expect("no line within the frame guard")
    }

    /// The next NDJSON frame; `None` at the end of the body.
    async fn nd(&mut self) -> Option<Nd> {
        let line = self.line().await?;
        Some(Nd::parse(&line))
    }

    /// The next NDJSON frame, which must exist.
    async fn nd_some(&mut self) -> Nd {
        self.nd().await.expect("the NDJSON body ended early")
    }

    /// The next SSE block (up to a blank line); `None` at the end of the
    /// body.
    async fn sse(&mut self) -> Option<SseBlock> {
        let mut block = SseBlock::default();
        let mut any = false;
        loop {
            let Some(line) = self.line().await else {
                assert!(!any, "SSE body ended inside a block: {block:?}");
                return None;
            };
            if line.is_empty() {
                if any {
                    return Some(block);
                }
                continue;
            }
            any = true;
            if line.starts_with(':') {
                block.comment = true;
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match name {
                "event" => block.event = Some(value),
                "id" => block.id = Some(value),
                "retry" => block.retry = Some(value.parse().expect("retry: milliseconds")),
                "data" => match &mut block.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(&value);
                    }
                    None => block.data = Some(value),
                },
                other => panic!("unexpected SSE field {other:?} in {line:?}"),
            }
        }
    }

    async fn sse_some(&mut self) -> SseBlock {
        self.sse().await.expect("the SSE body ended early")
    }

    /// Reads NDJSON frames to the end of the body; returns them.
    async fn nd_to_end(&mut self) -> Vec<Nd> {
        let mut frames = Vec::new();
        while let Some(frame) = self.nd().await {
            frames.push(frame);
        }
        frames
    }

    /// Closes an HTTP/1.1 connection with a FIN (nothing may be left unread
    /// in the socket, else the kernel sends RST).
    fn fin(self) {
        match self.source {
            Source::H1(conn) => conn.fin(),
            Source::H2(_) => panic!("fin() is for HTTP/1.1"),
        }
    }
}

/// One NDJSON line, classified.
#[derive(Debug, Clone, PartialEq)]
enum Nd {
    Heartbeat,
    Open(String),
    Event(String, Value),
    Reconnect { reason: String, cursor: String },
    Gone(Value),
}

impl Nd {
    fn parse(line: &str) -> Self {
        if line.is_empty() {
            return Self::Heartbeat;
        }
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("NDJSON line is not JSON ({e}): {line:?}"));
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        let string = |key: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no string {key:?} in {line}"))
                .to_owned()
        };
        match obj.get("control").and_then(Value::as_str) {
            None => {
                assert_eq!(obj.len(), 2, "an event has `id` and `data`: {line}");
                Self::Event(string("id"), obj["data"].clone())
            }
            Some("open") => Self::Open(string("cursor")),
            Some("reconnect") => Self::Reconnect {
                reason: string("reason"),
                cursor: string("cursor"),
            },
            Some("gone") => Self::Gone(value.clone()),
            Some(other) => panic!("unexpected control frame {other:?}: {line}"),
        }
    }

    fn event(self) -> (String, Value) {
        match self {
            Self::Event(id, data) => (id, data),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn open(self) -> String {
        match self {
            Self::Open(cursor) => cursor,
            other => panic!("expected the open frame, got {other:?}"),
        }
    }
}

/// One SSE event block.
#[derive(Debug, Default, Clone, PartialEq)]
struct SseBlock {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
    comment: bool,
}

impl SseBlock {
    fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("SSE block without data")).unwrap()
    }
}

fn position(cursor: &str) -> u64 {
    cursor.parse::<Cursor>().unwrap().position()
}

// ---------------------------------------------------------------------------
// 1. Events arrive one by one while the stream is open
// ---------------------------------------------------------------------------

/// Reads the open frame, then publishes five events one at a time and
/// reads each before publishing the next.
async fn one_by_one(body: &mut Body, log: &Log) {
    assert_eq!(body.nd_some().await.open(), log.head().to_string());
    for i in 0..5u64 {
        let cursor = log.publish_now(i);
        let (id, data) = body.nd_some().await.event();
        assert_eq!(id, cursor.to_string(), "event {i}");
        assert_eq!(data, json!(i), "event {i}");
    }
}

#[tokio::test]
async fn events_arrive_one_by_one_h1() {
    let log = log(1024);
    log.publish_now(999); // before the stream: "from now" skips it
    let (layer, _) = layer(quiet());
    let server = spawn(app(&log, layer)).await;
    let mut body = Body::h1(server.addr, "/stream", &[]).await;
    one_by_one(&mut body, &log).await;
}

#[tokio::test]
async fn events_arrive_one_by_one_h2() {
    let log = log(1024);
    log.publish_now(999);
    let (layer, _) = layer(quiet());
    let server = spawn(app(&log, layer)).await;
    let mut h2 = H2::connect(server.addr).await;
    let mut body = Body::h2(&mut h2, "/stream").await;
    one_by_one(&mut body, &log).await;
    drop(body);
    h2.close().await;
}

// ---------------------------------------------------------------------------
// 2. Heartbeat when idle
// ---------------------------------------------------------------------------

#[tokio::test]
async fn heartbeat_when_idle() {
    let log = log(1024);
    let config = StreamConfig::new().heartbeat(Some(Duration::from_millis(100)));
    let (layer, _) = layer(config);
    let server = spawn(app(&log, layer)).await;

    // NDJSON: an empty line, twice (the timer re-arms), then events still flow.
    let mut body = Body::h1(server.addr, "/stream", &[]).await;
    body.nd_some().await.open();
    assert_eq!(body.nd_some().await, Nd::Heartbeat);
    assert_eq!(body.nd_some().await, Nd::Heartbeat);
    let cursor = log.publish_now(7);
    let event = loop {
        match body.nd_some().await {
            Nd::Heartbeat => {}
            other => break other.event(),
        }
    };
    assert_eq!(event, (cursor.to_string(), json!(7)));

    // SSE: a comment-only block.
    let mut sse = Body::h1(server.addr, "/sse", &[]).await;
    let open = sse.sse_some().await;
    assert_eq!(open.event.as_deref(), Some("cursor"), "{open:?}");
    for _ in 0..2 {
        let beat = sse.sse_some().await;
        assert_eq!(
            beat,
            SseBlock {
                comment: true,
                ..SseBlock::default()
            }
        );
    }
}

/// A heartbeat is for an idle stream: while events go out more often than
/// the heartbeat interval, none is sent (the timer is pushed, not re-armed
/// per event). A stall of a whole second on the publishing side would be
/// needed to make this fail wrongly.
#[tokio::test]
async fn busy_stream_sends_no_heartbeat() {
    let log = log(1024);
    let config = StreamConfig::new().heartbeat(Some(Duration::from_secs(1)));
    let (layer, _) = layer(config);
    let server = spawn(app(&log, layer)).await;
    let mut body = Body::h1(server.addr, "/stream", &[]).await;
    body.nd_some().await.open();
    for i in 0..75u64 {
        let cursor = log.publish_now(i);
        assert_eq!(body.nd_some().await.event(), (cursor.to_string(), json!(i)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Idle now: the heartbeat comes.
    assert_eq!(body.nd_some().await, Nd::Heartbeat);
}

// ---------------------------------------------------------------------------
// 3. Caps: bytes and lifetime; resume without gap or duplicate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn byte_cap_ends_with_reconnect_and_resumes_without_gap() {
    let log = log(1024);
    let cursors: Vec<String> = (0..20u64).map(|i| log.publish_now(i).to_string()).collect();
    // 350 bytes: the open line and six ~56-byte event lines, so the 20
    // events take four responses and the last one stays open.
    let (layer, stats) = layer(quiet().max_bytes(350));
    let server = spawn(app(&log, layer)).await;

    let mut data = Vec::new();
    let mut target = "/stream?from=oldest".to_owned();
    let mut expected_open = log.oldest().to_string();
    let mut connections = 0;
    while data.len() < 20 {
        connections += 1;
        assert!(connections <= 20, "no progress: {data:?}");
        let mut body = Body::h1(server.addr, &target, &[]).await;
        assert_eq!(body.nd_some().await.open(), expected_open);
        let mut last = expected_open.clone();
        loop {
            match body.nd_some().await {
                Nd::Event(id, value) => {
                    let i = usize::try_from(value.as_u64().unwrap()).unwrap();
                    assert_eq!(id, cursors[i], "event {i}'s id is its cursor");
                    data.push(i);
                    last = id;
                    if data.len() == 20 {
                        break;
                    }
                }
                Nd::Reconnect { reason, cursor } => {
                    assert_eq!(reason, "max_bytes");
                    assert_eq!(cursor, last, "the reconnect cursor is the last event's");
                    assert_eq!(body.nd().await, None, "the reconnect frame is the last");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        target = format!("/stream?cursor={last}");
        expected_open = last;
    }
    assert_eq!(
        data,
        (0..20).collect::<Vec<_>>(),
        "complete, in order, once"
    );
    assert!(connections >= 3, "350 bytes hold a few events only");
    // The last stream is still open, waiting for more.
    assert_eq!(stats.snapshot().streaming, 1);
}

#[tokio::test]
async fn lifetime_cap_ends_with_reconnect_and_resumes_without_gap() {
    let log = log(1024);
    let lifetime = Duration::from_millis(300);
    let (layer, _) = layer(quiet().max_lifetime(lifetime));
    let server = spawn(app(&log, layer)).await;

    let mut body = Body::h1(server.addr, "/stream", &[]).await;
    body.nd_some().await.open();
    let mut last = String::new();
    for i in 0..3u64 {
        let cursor = log.publish_now(i).to_string();
        assert_eq!(body.nd_some().await.event(), (cursor.clone(), json!(i)));
        last = cursor;
    }
    assert_eq!(
        body.nd_some().await,
        Nd::Reconnect {
            reason: "max_lifetime".to_owned(),
            cursor: last.clone(),
        }
    );
    assert_eq!(body.nd().await, None);

    // Published while no stream is open: delivered after the resume.
    for i in 3..6u64 {
        log.publish_now(i);
    }
    let mut body = Body::h1(server.addr, &format!("/stream?cursor={last}"), &[]).await;
    assert_eq!(body.nd_some().await.open(), last);
    for i in 3..6u64 {
        let (id, data) = body.nd_some().await.event();
        assert_eq!(data, json!(i));
        assert_eq!(position(&id), i + 1);
    }
    let cursor = log.publish_now(6).to_string();
    assert_eq!(body.nd_some().await.event(), (cursor.clone(), json!(6)));
    // This one ends by lifetime too, at the last event.
    assert_eq!(
        body.nd_some().await,
        Nd::Reconnect {
            reason: "max_lifetime".to_owned(),
            cursor,
        }
    );
}

/// `max_bytes` counts what goes on the wire: heartbeats included. The stream
/// is idle, so only heartbeats fill the cap; the body bytes sent before the
/// final frame exceed `max_bytes` by less than one piece.
async fn heartbeats_count_towards_max_bytes(path: &str) {
    const MAX: usize = 200;
    let log = log(16);
    let config = StreamConfig::new()
        .heartbeat(Some(Duration::from_millis(5)))
        .max_bytes(MAX);
    let (layer, _) = layer(config);
    let server = spawn(app(&log, layer)).await;
    let mut body = Body::h1(server.addr, path, &[]).await;
    let mut beats = 0;
    let before_final = loop {
        let before = body.consumed;
        if path == "/sse" {
            let block = body.sse_some().await;
            if block.event.as_deref() == Some("reconnect") {
                assert_eq!(block.json()["reason"], "max_bytes", "{block:?}");
                break before;
            }
            beats += usize::from(block.comment);
        } else {
            match body.nd_some().await {
                Nd::Reconnect { reason, .. } => {
                    assert_eq!(reason, "max_bytes");
                    break before;
                }
                Nd::Heartbeat => beats += 1,
                Nd::Open(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    assert!(
        (MAX..MAX + 4).contains(&before_final),
        "{path}: {before_final} body bytes ({beats} heartbeats) were sent before the \
         final frame with max_bytes {MAX}"
    );
}

#[tokio::test]
async fn ndjson_heartbeats_count_towards_max_bytes() {
    heartbeats_count_towards_max_bytes("/stream").await;
}

/// SSE heartbeats (`": \n\n"`, 4 bytes on the wire) count towards
/// `max_bytes`: an idle stream cannot overshoot the cap.
#[tokio::test]
async fn sse_heartbeats_count_towards_max_bytes() {
    heartbeats_count_towards_max_bytes("/sse").await;
}

// ---------------------------------------------------------------------------
// 4. Client close mid-stream cancels the token; a capped end does not
// ---------------------------------------------------------------------------

#[tokio::test]
async fn client_close_mid_stream_cancels_token_h1() {
    let log = log(1024);
    let (layer, stats) = layer(quiet());
    let (router, mut tokens) = app_with_tokens(&log, layer);
    let server = spawn(router).await;

    let mut body = Body::h1(server.addr, "/stream_tok", &[]).await;
    let token = next_token(&mut tokens).await;
    body.nd_some().await.open();
    for i in 0..2u64 {
        log.publish_now(i);
        assert_eq!(body.nd_some().await.event().1, json!(i));
    }
    assert_eq!(stats.snapshot().streaming, 1);
    assert!(!token.is_cancelled());
    body.fin();
    assert_cancelled(&token, "h1 FIN mid-stream").await;
    wait_for_stats(&stats, "stream closed", |s| s.streaming == 0).await;
}

#[tokio::test]
async fn client_close_mid_stream_cancels_token_h2() {
    let log = log(1024);
    let (layer, stats) = layer(quiet());
    let (router, mut tokens) = app_with_tokens(&log, layer);
    let server = spawn(router).await;

    let mut h2 = H2::connect(server.addr).await;
    let mut body = Body::h2(&mut h2, "/stream_tok").await;
    let token = next_token(&mut tokens).await;
    body.nd_some().await.open();
    for i in 0..2u64 {
        log.publish_now(i);
        assert_eq!(body.nd_some().await.event().1, json!(i));
    }
    assert_eq!(stats.snapshot().streaming, 1);
    drop(body); // RST_STREAM(CANCEL); the connection stays open
    assert_cancelled(&token, "h2 body dropped mid-stream").await;
    wait_for_stats(&stats, "stream closed", |s| s.streaming == 0).await;
    h2.close().await;
}

#[tokio::test]
async fn capped_stream_read_to_end_does_not_cancel_token() {
    let log = log(1024);
    for i in 0..20u64 {
        log.publish_now(i);
    }
    let (layer, stats) = layer(quiet().max_bytes(300));
    let (router, mut tokens) = app_with_tokens(&log, layer);
    let server = spawn(router).await;

    let mut body = Body::h1(server.addr, "/stream_tok?from=oldest", &[]).await;
    let token = next_token(&mut tokens).await;
    let frames = body.nd_to_end().await;
    assert!(
        matches!(frames.last(), Some(Nd::Reconnect { reason, .. }) if reason == "max_bytes"),
        "{frames:?}"
    );
    wait_for_stats(&stats, "capped stream ended", |s| s.streaming == 0).await;
    assert_not_cancelled(&token, "stream ended at max_bytes").await;
    // Closing the keep-alive connection afterwards does not cancel it either.
    body.fin();
    assert_not_cancelled(&token, "connection closed after a complete stream").await;
}

// ---------------------------------------------------------------------------
// 5. Shutdown ends streams
// ---------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_ends_every_stream_with_reconnect() {
    let log = log(1024);
    let shutdown = CancellationToken::new();
    let layer = DisconnectLayer::new()
        .shutdown(shutdown.clone())
        .config(quiet());
    let stats = layer.stats();
    let mut server = spawn_with_shutdown(app(&log, layer), shutdown.clone()).await;

    let mut nd = Vec::new();
    for _ in 0..3 {
        let mut body = Body::h1(server.addr, "/stream", &[]).await;
        body.nd_some().await.open();
        nd.push(body);
    }
    let mut sse = Vec::new();
    for _ in 0..2 {
        let mut body = Body::h1(server.addr, "/sse", &[]).await;
        assert_eq!(body.sse_some().await.event.as_deref(), Some("cursor"));
        sse.push(body);
    }
    let cursor = log.publish_now(1).to_string();
    for body in &mut nd {
        assert_eq!(body.nd_some().await.event(), (cursor.clone(), json!(1)));
    }
    for body in &mut sse {
        assert_eq!(body.sse_some().await.id.as_deref(), Some(cursor.as_str()));
    }
    assert_eq!(stats.snapshot().streaming, 5);

    shutdown.cancel();
    for body in &mut nd {
        assert_eq!(
            body.nd_to_end().await,
            vec![Nd::Reconnect {
                reason: "shutdown".to_owned(),
                cursor: cursor.clone(),
            }]
        );
    }
    for body in &mut sse {
        let last = body.sse_some().await;
        assert_eq!(last.event.as_deref(), Some("reconnect"), "{last:?}");
        assert_eq!(last.id, None, "{last:?}");
        assert_eq!(last.json(), json!({"reason": "shutdown", "cursor": cursor}));
        assert_eq!(body.sse().await, None, "the reconnect event is the last");
    }
    server
        .join(Duration::from_secs(10))
        .await
        .expect("serve returned an error");
    assert_eq!(stats.snapshot().streaming, 0);
}

// ---------------------------------------------------------------------------
// 6. A reader that stops reading
// ---------------------------------------------------------------------------

/// A listener whose accepted sockets have a small send buffer (Linux copies
/// `SO_SNDBUF` from the listener), so a stalled reader stalls the server
/// after a few kilobytes instead of after the kernel's autotuned megabytes.
/// Waits until `counter` has not moved for 300 ms (5 s guard); returns it.
async fn settled(counter: &AtomicU64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut last = counter.load(Ordering::SeqCst);
    let mut still = 0;
    while still < 3 {
        assert!(tokio::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = counter.load(Ordering::SeqCst);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_holds_back_at_most_a_batch() {
    const N: u64 = 100_000;
    /// An event that counts each time it is serialized by a reader. The log
    /// serializes an event at publish; this one refuses the first time (at
    /// publish), so the log makes its JSON when a reader first pulls it,
    /// and with one reader the count is the events the response body
    /// pulled from the log.
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Pulled(u64, #[serde(skip)] AtomicBool);
    static PULLED: AtomicU64 = AtomicU64::new(0);
    impl Clone for Pulled {
        fn clone(&self) -> Self {
            Self(self.0, AtomicBool::new(self.1.load(Ordering::SeqCst)))
        }
    }
    impl serde::Serialize for Pulled {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if !self.1.swap(true, Ordering::SeqCst) {
                return Err(serde::ser::Error::custom("not at publish"));
            }
            PULLED.fetch_add(1, Ordering::SeqCst);
            self.0.serialize(s)
        }
    }
    let pulled = &PULLED;
    let log: EventLog<Pulled> = EventLog::builder()
        .capacity(200_000)
        .epoch(0x5eed_0000_0000_0001)
        .build();
    let (layer, stats) = layer(quiet());
    let counted = |State(log): State<EventLog<Pulled>>, resume: Resume, s: Streaming| async move {
        s.ndjson(log.reader(resume))
    };
    let router = Router::new()
        .route("/counted", get(counted))
        .with_state(log.clone())
        .layer(layer);
    let server: Server = spawn_on(
        small_send_buffer_listener(),
        router,
        CancellationToken::new(),
    );

    let conn = small_recv_buffer_conn(server.addr).await;
    let mut body = Body::h1_on(conn, "/counted", &[]).await;
    body.nd_some().await.open();
    // Stop reading; publish everything.
    for i in 0..N {
        log.publish_now(Pulled(i, AtomicBool::new(false)));
    }
    assert_eq!(log.len(), 100_000);
    let stalled_at = settled(pulled).await;
    assert_eq!(stats.snapshot().streaming, 1);
    // What was pulled is in the socket buffers (a few KiB each way), in
    // hyper's write queue (at most 16 frames) and in the subscription (one
    // batch of 100): some hundreds of ~50-byte lines. Far from all of them.
    assert!(
        stalled_at < N / 10,
        "a stalled reader made the server pull {stalled_at} of {N} events"
    );

    // Catching up delivers everything, in order.
    for i in 0..N {
        let (id, data) = body.nd_some().await.event();
        assert_eq!(data, json!(i));
        assert_eq!(position(&id), i + 1);
    }
    assert_eq!(pulled.load(Ordering::SeqCst), N);
    eprintln!("stalled after pulling {stalled_at} of {N} events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_past_retention_gets_in_band_410() {
    const N: u64 = 100_000;
    let log = log(1000);
    let (layer, stats) = layer(quiet());
    let server = spawn_on(
        small_send_buffer_listener(),
        app(&log, layer),
        CancellationToken::new(),
    );

    let conn = small_recv_buffer_conn(server.addr).await;
    let mut body = Body::h1_on(conn, "/stream", &[]).await;
    let open = body.nd_some().await.open();
    // Some events below capacity, until the first of them reached the
    // client's socket; then the rest while the reader still does not read.
    for i in 0..500 {
        log.publish_now(i);
    }
    match &body.source {
        Source::H1(conn) => tokio::time::timeout(FRAME_GUARD, conn.stream.readable())
            .await
            .expect("no event reached the client")
            .unwrap(),
        Source::H2(_) => unreachable!(),
    }
    for i in 500..N {
        log.publish_now(i);
    }

    // Events in order from the first, no gap, then the in-band 410.
    let mut last = open.clone();
    let mut delivered = 0u64;
    let gone = loop {
        match body.nd_some().await {
            Nd::Event(id, data) => {
                assert_eq!(data, json!(delivered), "no gap");
                assert_eq!(position(&id), delivered + 1);
                delivered += 1;
                last = id;
            }
            Nd::Gone(gone) => break gone,
            other => panic!("after {delivered} events: unexpected {other:?}"),
        }
    };
    assert!(
        (1..N - 1000).contains(&delivered),
        "{delivered} events delivered"
    );
    assert_eq!(gone["error"], "cursor_gone", "{gone}");
    assert_eq!(gone["reason"], "evicted", "{gone}");
    assert_eq!(gone["requested"], json!(last), "{gone}");
    let restart = position(gone["cursor"].as_str().unwrap());
    assert!(restart > delivered, "events were missed: {gone}");
    assert_eq!(body.nd().await, None, "the gone frame is the last");
    wait_for_stats(&stats, "stream ended", |s| s.streaming == 0).await;
    eprintln!("{delivered} events delivered before the 410: {gone}");
}

/// Deterministic: on the current-thread runtime the server cannot run while
/// the test publishes, so the stream's cursor is evicted before it reads.
#[tokio::test]
async fn sse_in_band_410_when_cursor_evicted_while_waiting() {
    let log = log(1000);
    let (layer, _) = layer(quiet());
    let server = spawn(app(&log, layer)).await;

    let mut body = Body::h1(server.addr, "/sse", &[]).await;
    let open = body.sse_some().await;
    assert_eq!(open.event.as_deref(), Some("cursor"));
    let start = open.id.clone().unwrap();
    for i in 0..2000u64 {
        log.publish_now(i);
    }
    let gone = body.sse_some().await;
    assert_eq!(gone.event.as_deref(), Some("gone"), "{gone:?}");
    let restart = log.oldest().to_string();
    assert_eq!(gone.id.as_deref(), Some(restart.as_str()), "{gone:?}");
    let value = gone.json();
    assert_eq!(value["reason"], "evicted");
    assert_eq!(value["requested"], json!(start));
    assert_eq!(value["cursor"], json!(restart));
    assert_eq!(body.sse().await, None, "the gone event is the last");

    // Resuming from the restart cursor continues with the oldest event.
    let mut body = Body::h1(server.addr, "/sse", &[&format!("Last-Event-ID: {restart}")]).await;
    assert_eq!(body.sse_some().await.id.as_deref(), Some(restart.as_str()));
    let first = body.sse_some().await;
    assert_eq!(first.json(), json!(1000));
    assert_eq!(position(first.id.as_deref().unwrap()), 1001);
}

// ---------------------------------------------------------------------------
// 7. Headers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn stream_headers() {
    let log = log(16);
    let (layer, _) = layer(quiet());
    let server = spawn(app(&log, layer)).await;
    for (path, content_type) in [
        ("/stream", "application/x-ndjson"),
        ("/sse", "text/event-stream"),
    ] {
        let mut conn = RawConn::connect(server.addr).await;
        conn.get(path).await;
        let head = conn.read_head().await;
        assert_eq!(head.status, 200, "{path}: {head:?}");
        assert_eq!(head.header("content-type"), Some(content_type), "{head:?}");
        assert_eq!(
            head.header("cache-control"),
            Some("no-cache, no-transform"),
            "{head:?}"
        );
        assert_eq!(head.header("x-accel-buffering"), Some("no"), "{head:?}");
        assert_eq!(
            head.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
                .count(),
            1,
            "{head:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 8. SSE resume with Last-Event-ID
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sse_resumes_after_last_event_id() {
    let log = log(1024);
    let cursors: Vec<String> = (0..5u64).map(|i| log.publish_now(i).to_string()).collect();
    let (layer, _) = layer(quiet());
    let server = spawn(app(&log, layer)).await;

    // From the oldest: `id:` of each event is its cursor.
    let mut body = Body::h1(server.addr, "/sse?from=oldest", &[]).await;
    let open = body.sse_some().await;
    assert_eq!(open.event.as_deref(), Some("cursor"));
    assert_eq!(open.id, Some(log.oldest().to_string()));
    assert_eq!(open.json(), json!({"cursor": log.oldest()}));
    for (i, cursor) in cursors.iter().enumerate() {
        let event = body.sse_some().await;
        assert_eq!(event.event, None, "{event:?}");
        assert_eq!(event.id.as_deref(), Some(cursor.as_str()), "{event:?}");
        assert_eq!(event.json(), json!(i));
    }

    // Resume after the second event; the header wins over `?cursor=`.
    let header = format!("Last-Event-ID: {}", cursors[1]);
    let target = format!("/sse?cursor={}", cursors[0]);
    let mut body = Body::h1(server.addr, &target, &[&header]).await;
    let open = body.sse_some().await;
    assert_eq!(open.event.as_deref(), Some("cursor"));
    assert_eq!(open.id.as_deref(), Some(cursors[1].as_str()));
    for (i, cursor) in cursors.iter().enumerate().skip(2) {
        let event = body.sse_some().await;
        assert_eq!(event.id.as_deref(), Some(cursor.as_str()), "{event:?}");
        assert_eq!(event.json(), json!(i));
    }
    // And live events follow.
    let cursor = log.publish_now(5).to_string();
    let event = body.sse_some().await;
    assert_eq!(event.id, Some(cursor));
    assert_eq!(event.json(), json!(5));
}

// ---------------------------------------------------------------------------
// SSE for browsers: `retry:` with jitter, a stale cursor answered in-band
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sse_first_and_last_frames_carry_a_jittered_retry() {
    let log = log(64);
    let config = quiet()
        .max_bytes(1)
        .sse_retry(Some(Duration::from_millis(1000)));
    let (jittered, _) = layer(config);
    let server = spawn(app(&log, jittered)).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..8 {
        let mut body = Body::h1(server.addr, "/sse", &[]).await;
        let open = body.sse_some().await;
        assert_eq!(open.event.as_deref(), Some("cursor"));
        let retry = open.retry.expect("retry: on the first frame");
        assert!((1000..=1500).contains(&retry), "retry {retry} ms");
        seen.insert(retry);
        // max_bytes(1): the open frame alone reaches the cap.
        let last = body.sse_some().await;
        assert_eq!(last.event.as_deref(), Some("reconnect"));
        assert_eq!(last.retry, Some(retry), "same retry on the last frame");
    }
    assert!(seen.len() > 1, "no jitter across 8 responses: {seen:?}");

    let (layer, _) = layer(quiet().sse_retry(None));
    let server = spawn(app(&log, layer)).await;
    let mut body = Body::h1(server.addr, "/sse", &[]).await;
    assert_eq!(body.sse_some().await.retry, None);
}

/// EventSource cannot read a 410: a cursor from before a restart is
/// answered with a 200 whose only event is `gone`, and the follow-up request
/// EventSource makes by itself (Last-Event-ID = the gone event's id)
/// streams again.
#[tokio::test]
async fn sse_stale_cursor_is_answered_in_band_and_eventsource_recovers() {
    let log = log(64);
    let (layer, stats) = layer(quiet());
    let server = spawn(app(&log, layer)).await;
    let stale = "0123456789abcdef-00000000000000000007";
    let header = format!("Last-Event-ID: {stale}");
    let mut body = Body::h1(server.addr, "/sse", &[&header]).await;
    let gone = body.sse_some().await;
    assert_eq!(gone.event.as_deref(), Some("gone"));
    assert_eq!(gone.json()["reason"], "epoch");
    assert_eq!(gone.json()["requested"], stale);
    let restart = gone.id.clone().expect("id: the restart cursor");
    assert_eq!(restart, gone.json()["cursor"]);
    assert!(gone.retry.is_some());
    assert!(body.sse().await.is_none(), "the gone event is the last");
    wait_for_stats(&stats, "the gone response closed", |s| s.streaming == 0).await;

    let header = format!("Last-Event-ID: {restart}");
    let mut body = Body::h1(server.addr, "/sse", &[&header]).await;
    assert_eq!(body.sse_some().await.event.as_deref(), Some("cursor"));
    let cursor = log.publish_now(1);
    let event = body.sse_some().await;
    assert_eq!(event.id, Some(cursor.to_string()));
}
