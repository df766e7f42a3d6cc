#![allow(clippy::unwrap_used)]
//! Every outcome of every mode, produced over real sockets, counted once
//! (issue 17.1): for each, exactly that counter of `Stats` moved by one,
//! nothing else ended, and `StatsSnapshot::imbalance()` is all zero once
//! quiet. The phase gauges are read while a request is in its phase.
//!
//! Servers are `axum::serve` on `127.0.0.1:0` (and `axum_longpoll::serve`
//! for the write-stall cut); clients are raw HTTP/1.1 (`RawConn`, for FIN,
//! RST and half-close), an HTTP/2 client where a stream reset matters,
//! tokio-tungstenite and raw frames for WebSockets. The outage of a Redis
//! log is a `redis-server` started and killed by the test (reported
//! `ignored` without one, a failure under `CI=true`: `support/harness.rs`).
//!
//! Every time limit is a hang guard, never a performance assertion.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;

use std::collections::BTreeMap;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::Message as AxumMessage;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_longpoll::event_log::{Backend, EventLog, Memory, Resume};
use axum_longpoll::net::DeadPeer;
use axum_longpoll::serve::ServeConfig;
use axum_longpoll::wire::{Frame, Framing, JsonItem};
use axum_longpoll::ws::{CloseReason, LiveSocket, WsConfig};
use axum_longpoll::{
    Cursor, DisconnectLayer, LongPoll, LongPollConfig, Stats, StatsSnapshot, StreamConfig,
    Streaming,
};
use bytes::{BufMut as _, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use common::opcode::TEXT;
use common::{
    small_recv_buffer_conn, small_send_buffer_listener, spawn_on, upgrade_request, wait_for_stats,
    PublishNow as _, RawConn, RawWs, Server, H2, IO_GUARD,
};

/// Hang guard for counters to reach what a test expects.
const SETTLE: Duration = Duration::from_secs(10);

/// After the expected counts are reached: how long nothing else may end.
const NOTHING_ELSE: Duration = Duration::from_millis(150);

type Log<B = Memory> = EventLog<Arc<str>, B>;

// ---------------------------------------------------------------------------
// The counters, flattened, and what must hold of them
// ---------------------------------------------------------------------------

const MODES: [&str; 5] = ["long_poll", "ndjson", "sse", "framed", "ws"];

/// Every figure of a snapshot by its JSON path: `parked`,
/// `long_poll.waiting`, `ws.ended.client_left`, …
fn flat(s: &StatsSnapshot) -> BTreeMap<String, u64> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, u64>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Number(n) => {
                out.insert(prefix.to_owned(), n.as_u64().unwrap());
            }
            other => panic!("{prefix}: not a number: {other}"),
        }
    }
    let mut out = BTreeMap::new();
    walk("", &serde_json::to_value(s).unwrap(), &mut out);
    out
}

/// What is wrong with `now`, given the snapshot `seen` before and what was
/// expected to end in between (`"mode.outcome"` → count) and to be in
/// flight now (`"mode"` → count, every other mode 0).
fn check(
    seen: &StatsSnapshot,
    now: &StatsSnapshot,
    ends: &BTreeMap<String, u64>,
    in_flight: &BTreeMap<&str, u64>,
) -> Result<(), String> {
    let (before, after) = (flat(seen), flat(now));
    let ended: BTreeMap<String, u64> = after
        .iter()
        .filter(|(k, _)| k.contains(".ended."))
        .filter_map(|(k, &n)| {
            let moved = n - before.get(k).copied().unwrap_or(0);
            (moved != 0).then(|| (k.replace(".ended.", "."), moved))
        })
        .collect();
    if &ended != ends {
        return Err(format!("ended {ended:?}, expected {ends:?}"));
    }
    for mode in MODES {
        let got = after[&format!("{mode}.in_flight")];
        let want = in_flight.get(mode).copied().unwrap_or(0);
        if got != want {
            return Err(format!("{mode}.in_flight is {got}, expected {want}"));
        }
    }
    let off: Vec<_> = now
        .imbalance()
        .into_iter()
        .filter(|&(_, ended, phases)| ended != 0 || phases != 0)
        .collect();
    if !off.is_empty() {
        return Err(format!("imbalance {off:?}"));
    }
    // The flat keys say what the per-mode ones say.
    let lp = &now.long_poll;
    let flat_ok = now.parked == lp.waiting
        && now.websockets == now.ws.in_flight
        && now.streaming == now.ndjson.in_flight + now.sse.in_flight + now.framed.in_flight
        && now.ready == lp.ended.ready
        && now.timeout == lp.ended.timeout
        && now.shutdown == lp.ended.shutdown
        && now.disconnected == lp.ended.disconnected
        && now.too_large == lp.ended.too_large
        && now.rejected
            == lp.ended.rejected
                + now.ndjson.ended.rejected
                + now.sse.ended.rejected
                + now.framed.ended.rejected
                + now.ws.ended.rejected;
    if !flat_ok {
        return Err("the flat keys disagree with the per-mode ones".to_owned());
    }
    Ok(())
}

/// The counters of one server, compared with what they were at the last
/// expectation.
struct Tally {
    stats: Stats,
    seen: StatsSnapshot,
}

impl Tally {
    fn new(stats: &Stats) -> Self {
        let seen = stats.snapshot();
        assert_eq!(
            seen,
            StatsSnapshot::default(),
            "a new server counts nothing"
        );
        Self {
            stats: stats.clone(),
            seen,
        }
    }

    /// Waits until exactly `ends` (`"mode.outcome"`, count) ended since
    /// the last expectation, nothing is in flight, and the figures add up;
    /// then checks that nothing else ends for a moment.
    async fn expect(&mut self, what: &str, ends: &[(&str, u64)]) {
        self.expect_in_flight(what, ends, &[]).await;
    }

    /// As [`expect`](Self::expect), with `in_flight` requests of these
    /// modes still in flight.
    async fn expect_in_flight(
        &mut self,
        what: &str,
        ends: &[(&str, u64)],
        in_flight: &[(&str, u64)],
    ) {
        let ends: BTreeMap<String, u64> = ends.iter().map(|&(k, n)| (k.to_owned(), n)).collect();
        let in_flight: BTreeMap<&str, u64> = in_flight.iter().copied().collect();
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = self.stats.snapshot();
            match check(&self.seen, &now, &ends, &in_flight) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    panic!("{what}: the counters never got there: {e}\n{now:#?}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        tokio::time::sleep(NOTHING_ELSE).await;
        let now = self.stats.snapshot();
        if let Err(e) = check(&self.seen, &now, &ends, &in_flight) {
            panic!("{what}: something else moved afterwards: {e}\n{now:#?}");
        }
        self.seen = now;
    }
}

// ---------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------

/// A framing of our own (mode `framed`): one line per frame.
struct Lines;

impl Framing<JsonItem> for Lines {
    fn content_type(&self) -> http::HeaderValue {
        http::HeaderValue::from_static("text/plain")
    }

    fn encode(&mut self, frame: Frame<'_, JsonItem>, out: &mut BytesMut) {
        match frame {
            Frame::Item(item) => out.put_slice(item.json().unwrap_or(b"null")),
            Frame::Control(control) => out.put_slice(format!("{control:?}").as_bytes()),
            _ => return,
        }
        out.put_u8(b'\n');
    }
}

/// A streaming mode, and where the app serves it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ndjson,
    Sse,
    Framed,
}

impl Kind {
    const ALL: [Self; 3] = [Self::Ndjson, Self::Sse, Self::Framed];

    fn mode(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Sse => "sse",
            Self::Framed => "framed",
        }
    }

    fn end(self, outcome: &str) -> String {
        format!("{}.{outcome}", self.mode())
    }
}

fn stream_from<B: Backend>(kind: &str, s: Streaming, log: &Log<B>, resume: Resume) -> Response {
    match kind {
        "ndjson" => s.ndjson(log.reader(resume)),
        "sse" => s.sse(log.reader(resume)),
        _ => s.framed(Lines, log.reader(resume)),
    }
}

async fn poll<B: Backend>(State(log): State<Log<B>>, resume: Resume, lp: LongPoll) -> Response {
    lp.serve(log.reader(resume)).await
}

async fn ndjson<B: Backend>(State(log): State<Log<B>>, resume: Resume, s: Streaming) -> Response {
    stream_from("ndjson", s, &log, resume)
}

async fn sse<B: Backend>(State(log): State<Log<B>>, resume: Resume, s: Streaming) -> Response {
    stream_from("sse", s, &log, resume)
}

async fn framed<B: Backend>(State(log): State<Log<B>>, resume: Resume, s: Streaming) -> Response {
    stream_from("framed", s, &log, resume)
}

/// A plain stream of three items: it ends with the source.
async fn plain(axum::extract::Path(kind): axum::extract::Path<String>, s: Streaming) -> Response {
    let items = futures_util::stream::iter([1u64, 2, 3]);
    match kind.as_str() {
        "ndjson" => s.ndjson(items),
        "sse" => s.sse(items),
        _ => s.framed(Lines, items),
    }
}

/// The log from the client's position; a text message is accepted, any
/// other ends the socket with `1003` (an application error).
async fn ws<B: Backend>(State(log): State<Log<B>>, resume: Resume, ws: LiveSocket) -> Response {
    ws.serve(log.reader(resume), |msg| match msg {
        AxumMessage::Text(_) => Ok(()),
        _ => Err(CloseReason::server(1003, "text only")),
    })
}

/// A plain source of three items: the socket ends with it (`1000`).
async fn ws_plain(ws: LiveSocket) -> Response {
    ws.serve(futures_util::stream::iter([1u64, 2, 3]), |_| Ok(()))
}

/// Takes the extractor and does not upgrade.
async fn ws_refuse(ws: LiveSocket) -> &'static str {
    drop(ws);
    "not upgrading"
}

/// Upgrades, then drops the connection without running it.
async fn ws_drop(ws: LiveSocket) -> Response {
    ws.on_upgrade(|conn| async move { drop(conn) })
}

/// Takes `LongPoll` and answers without waiting.
async fn answer(_lp: LongPoll) -> &'static str {
    "answered"
}

/// Every route over `log`, without the layer.
fn routes<B: Backend>(log: &Log<B>) -> Router
where
    Log<B>: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/poll", get(poll::<B>).post(poll::<B>))
        .route("/ndjson", get(ndjson::<B>))
        .route("/sse", get(sse::<B>))
        .route("/framed", get(framed::<B>))
        .route("/ws", get(ws::<B>))
        .with_state(log.clone())
        .route("/plain/{kind}", get(plain))
        .route("/ws/plain", get(ws_plain))
        .route("/ws/refuse", get(ws_refuse))
        .route("/ws/drop", get(ws_drop))
        .route("/answer", get(answer).post(answer))
}

/// A server of `router` behind `layer` (whose shutdown is the server's),
/// on `axum::serve`, and the tally of its counters.
struct Harness {
    server: Server,
    shutdown: CancellationToken,
    stats: Stats,
    tally: Tally,
}

impl Harness {
    async fn new(router: Router, layer: DisconnectLayer) -> Self {
        Self::on(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            router,
            layer,
        )
    }

    fn on(listener: TcpListener, router: Router, layer: DisconnectLayer) -> Self {
        let shutdown = CancellationToken::new();
        let layer = layer.shutdown(shutdown.clone());
        let stats = layer.stats();
        let server = spawn_on(listener, router.layer(layer), shutdown.clone());
        Self {
            server,
            shutdown,
            tally: Tally::new(&stats),
            stats,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    async fn expect(&mut self, what: &str, ends: &[(&str, u64)]) {
        self.tally.expect(what, ends).await;
    }

    async fn expect_in_flight(
        &mut self,
        what: &str,
        ends: &[(&str, u64)],
        in_flight: &[(&str, u64)],
    ) {
        self.tally.expect_in_flight(what, ends, in_flight).await;
    }

    /// Waits (hang guard) until `pred` holds of the counters.
    async fn until(&self, what: &str, pred: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        wait_for_stats(&self.stats, what, pred).await
    }
}

fn log(capacity: usize) -> Log {
    EventLog::builder().capacity(capacity).build()
}

/// No heartbeats: nothing arrives on an idle stream that the test did not
/// cause (so a FIN is not turned into an RST by unread bytes).
fn quiet_streams() -> StreamConfig {
    StreamConfig::new().heartbeat(None)
}

fn quiet_ws() -> WsConfig {
    WsConfig::new()
        .ping_interval(None)
        .close_timeout(Duration::from_secs(1))
}

fn quiet_layer() -> DisconnectLayer {
    DisconnectLayer::new()
        .config(quiet_streams())
        .config(quiet_ws())
}

// ---------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------

/// Takes what is readable now (after a moment for it to arrive), then
/// closes with a FIN: with unread bytes the kernel would send an RST.
async fn fin(conn: RawConn) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut sink = [0u8; 8192];
    while matches!(conn.stream.try_read(&mut sink), Ok(n) if n > 0) {}
    conn.fin();
}

/// `GET target` whose head is read; the body is left to the caller.
async fn open_stream(addr: SocketAddr, target: &str) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.get(target).await;
    let head = conn.read_head().await;
    assert_eq!(head.status, 200, "{target}: {head:?}");
    // The first frame (the position, or an item) has been written.
    conn.read_chunk().await.expect("a first frame");
    conn
}

/// Reads a stream to its last chunk; returns its text.
async fn rest_of_stream(conn: &mut RawConn) -> String {
    let mut text = Vec::new();
    while let Some(chunk) = conn.read_chunk().await {
        text.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&text).into_owned()
}

type Client = WebSocketStream<TcpStream>;

async fn ws_connect(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (client, res) = tokio::time::timeout(
        IO_GUARD,
        tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream),
    )
    .await
    .expect("handshake hung")
    .expect("handshake");
    assert_eq!(res.status(), 101);
    client
}

/// The next message that is not a ping or pong.
async fn ws_next(client: &mut Client) -> Message {
    loop {
        let msg = tokio::time::timeout(IO_GUARD, client.next())
            .await
            .expect("no message from the server")
            .expect("the connection ended without a close frame")
            .expect("read error");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

/// Reads to the server's close frame, lets tungstenite answer it, and
/// waits for the server to close TCP; returns the close code.
async fn ws_until_close(client: &mut Client) -> u16 {
    let code = loop {
        match ws_next(client).await {
            Message::Close(Some(frame)) => break u16::from(frame.code),
            Message::Close(None) => break 1005,
            _ => {}
        }
    };
    let drain = async { while let Some(Ok(_)) = client.next().await {} };
    tokio::time::timeout(IO_GUARD, drain)
        .await
        .expect("the server did not close TCP after the closing handshake");
    code
}

// ---------------------------------------------------------------------------
// Long-poll
// ---------------------------------------------------------------------------

/// The case: `Content-Length: 10`, 5 bytes, then FIN. The poll
/// was reading its body meanwhile, and ends `disconnected`. The same with
/// a chunked body that never gets its last chunk, and with an RST.
async fn long_poll_a_body_cut_short_is_disconnected_after_reading_body() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let bodies: [(&str, &[u8]); 2] = [
        ("content-length: 10", b"hello"),
        ("transfer-encoding: chunked", b"5\r\nhello\r\n"),
    ];
    for (framing, partial) in bodies {
        for rst in [false, true] {
            let what = format!(
                "{framing}, part of the body, then {}",
                if rst { "RST" } else { "FIN" }
            );
            let mut conn = RawConn::connect(h.addr()).await;
            conn.send(
                format!("POST /poll?timeout=60 HTTP/1.1\r\nhost: t\r\n{framing}\r\n\r\n")
                    .as_bytes(),
            )
            .await;
            conn.send(partial).await;
            let s = h.until(&what, |s| s.long_poll.reading_body == 1).await;
            assert_eq!(
                (
                    s.long_poll.in_flight,
                    s.long_poll.handling,
                    s.long_poll.waiting,
                    s.parked
                ),
                (1, 0, 0, 0),
                "{what}: {s:?}"
            );
            if rst {
                conn.rst();
            } else {
                conn.fin();
            }
            h.expect(&what, &[("long_poll.disconnected", 1)]).await;
        }
    }
}

/// A client that goes while its poll waits: FIN, RST, half-close, and an
/// HTTP/2 stream reset. `waiting` (and the flat `parked`) is 1 meanwhile.
async fn long_poll_a_client_that_leaves_while_waiting_is_disconnected() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    for how in ["FIN", "RST", "half-close"] {
        let mut conn = RawConn::connect(h.addr()).await;
        conn.get("/poll?timeout=60").await;
        let s = h.until(how, |s| s.long_poll.waiting == 1).await;
        assert_eq!(
            (
                s.parked,
                s.long_poll.in_flight,
                s.long_poll.handling,
                s.long_poll.reading_body
            ),
            (1, 1, 0, 0),
            "{how}: {s:?}"
        );
        match how {
            "FIN" => conn.fin(),
            "RST" => conn.rst(),
            _ => conn.half_close().await,
        }
        h.expect(how, &[("long_poll.disconnected", 1)]).await;
    }

    let mut h2 = H2::connect(h.addr()).await;
    let res = h2.get("/poll?timeout=60");
    h.until("HTTP/2 poll waiting", |s| s.long_poll.waiting == 1)
        .await;
    drop(res); // RST_STREAM(CANCEL)
    h.expect("HTTP/2 stream reset", &[("long_poll.disconnected", 1)])
        .await;
    // The connection itself is fine: the next poll on it is answered.
    let res = tokio::time::timeout(IO_GUARD, h2.get("/poll?timeout=0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 204);
    h.expect("HTTP/2 poll after the reset", &[("long_poll.timeout", 1)])
        .await;
    h2.close().await;
}

/// A body that stops arriving: `408` at the body deadline (the wait, or
/// 5 s when the wait is shorter: here the wait is 0, so 5 s).
async fn long_poll_a_body_that_stalls_is_stalled_body() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let mut conn = RawConn::connect(h.addr()).await;
    conn.send(b"POST /poll?timeout=0 HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nhello")
        .await;
    h.until("reading the body", |s| s.long_poll.reading_body == 1)
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 408, "{}", res.text());
    h.expect("stalled body", &[("long_poll.stalled_body", 1)])
        .await;
}

/// A bad wait (`?timeout=`, `Prefer: wait=`): `400`, started and ended
/// at once.
async fn long_poll_a_bad_timeout_is_bad_request() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    for headers in [&[][..], &["prefer: wait=soon"][..]] {
        let target = if headers.is_empty() {
            "/poll?timeout=abc"
        } else {
            "/poll"
        };
        let res = common::raw_request(h.addr(), "GET", target, headers).await;
        assert_eq!(res.status(), 400, "{}", res.text());
        h.expect(target, &[("long_poll.bad_request", 1)]).await;
    }
}

/// A body over `max_body`: announced (`413` before it is read) and
/// streamed (`413` when the limit is crossed).
async fn long_poll_a_body_over_max_body_is_too_large() {
    let log = log(16);
    let layer = quiet_layer().config(LongPollConfig::new().max_body(64));
    let mut h = Harness::new(routes(&log), layer).await;

    let mut conn = RawConn::connect(h.addr()).await;
    conn.send(b"POST /poll?timeout=60 HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 413, "{}", res.text());
    h.expect("announced", &[("long_poll.too_large", 1)]).await;

    let mut conn = RawConn::connect(h.addr()).await;
    let chunk = "x".repeat(40);
    conn.send(
        format!(
            "POST /poll?timeout=60 HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n\
             28\r\n{chunk}\r\n28\r\n{chunk}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 413, "{}", res.text());
    h.expect("streamed", &[("long_poll.too_large", 1)]).await;
}

/// One poll over `max_in_flight`: `503`, and the one in flight is not
/// disturbed.
async fn long_poll_over_max_in_flight_is_rejected() {
    let log = log(16);
    let layer = quiet_layer().config(LongPollConfig::new().max_in_flight(1));
    let mut h = Harness::new(routes(&log), layer).await;

    let mut parked = RawConn::connect(h.addr()).await;
    parked.get("/poll?timeout=60").await;
    h.until("one parked", |s| s.parked == 1).await;
    let res = common::raw_get(h.addr(), "/poll?timeout=60").await;
    assert_eq!(res.status(), 503, "{}", res.text());
    h.expect_in_flight(
        "over the cap",
        &[("long_poll.rejected", 1)],
        &[("long_poll", 1)],
    )
    .await;

    log.publish_now("e".into());
    assert_eq!(parked.read_response().await.status(), 200);
    h.expect("the parked one", &[("long_poll.ready", 1)]).await;
}

/// The answers from a log: events (`ready`), none in time (`timeout`), an
/// evicted cursor (`gone`, `410`), the end of a closed log (`closed`); and
/// a handler that answers without waiting (`answered`).
async fn long_poll_answers_ready_timeout_gone_closed_answered() {
    let log = log(2);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let first = log.publish_now("first".into());
    let res = common::raw_get(h.addr(), "/poll?from=oldest&timeout=60").await;
    assert_eq!(res.status(), 200);
    h.expect("events", &[("long_poll.ready", 1)]).await;

    let res = common::raw_get(h.addr(), &format!("/poll?cursor={first}&timeout=0")).await;
    assert_eq!(res.status(), 204);
    h.expect("no event in time", &[("long_poll.timeout", 1)])
        .await;

    for i in 0..4 {
        log.publish_now(format!("e{i}").into());
    }
    let res = common::raw_get(h.addr(), &format!("/poll?cursor={first}&timeout=60")).await;
    assert_eq!(res.status(), 410, "{}", res.text());
    h.expect("evicted cursor", &[("long_poll.gone", 1)]).await;

    let res = common::raw_get(h.addr(), "/answer").await;
    assert_eq!(res.status(), 200);
    h.expect("no wait", &[("long_poll.answered", 1)]).await;

    let end = log.close(None).await.unwrap();
    let res = common::raw_get(h.addr(), &format!("/poll?cursor={end}&timeout=60")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().contains("\"closed\":true"), "{}", res.text());
    h.expect("closed log", &[("long_poll.closed", 1)]).await;
}

/// `handling`: the handler runs outside `wait` (here: it awaits something
/// else first). A client that leaves then is `disconnected` too.
async fn long_poll_handling_phase_then_waiting() {
    let log = log(16);
    let gate = Arc::new(Notify::new());
    let g = Arc::clone(&gate);
    let router = routes(&log).route(
        "/gated",
        get(move |lp: LongPoll| {
            let gate = Arc::clone(&g);
            async move {
                gate.notified().await;
                let outcome = lp.wait(std::future::pending::<()>()).await;
                lp.respond(outcome)
            }
        }),
    );
    let mut h = Harness::new(router, quiet_layer()).await;

    let mut conn = RawConn::connect(h.addr()).await;
    conn.get("/gated?timeout=60").await;
    let s = h.until("handling", |s| s.long_poll.handling == 1).await;
    assert_eq!(
        (s.long_poll.waiting, s.parked, s.long_poll.in_flight),
        (0, 0, 1)
    );
    gate.notify_one();
    let s = h.until("waiting", |s| s.long_poll.waiting == 1).await;
    assert_eq!((s.long_poll.handling, s.parked), (0, 1));
    conn.fin();
    h.expect("left while waiting", &[("long_poll.disconnected", 1)])
        .await;

    // Gone before it waited: the handler is dropped in `handling`.
    let mut conn = RawConn::connect(h.addr()).await;
    conn.get("/gated?timeout=60").await;
    h.until("handling again", |s| s.long_poll.handling == 1)
        .await;
    conn.fin();
    h.expect("left while handling", &[("long_poll.disconnected", 1)])
        .await;
}

/// A client that leaves after its wait ended and before the handler made
/// its answer (it awaits something else first): `disconnected`, not the
/// wait's outcome, since no answer was made.
async fn long_poll_a_client_that_leaves_after_the_wait_before_the_answer_is_disconnected() {
    let log = log(16);
    let reached = Arc::new(Notify::new());
    let gate = Arc::new(Notify::new());
    let (r, g) = (Arc::clone(&reached), Arc::clone(&gate));
    let router = routes(&log).route(
        "/after",
        get(move |lp: LongPoll| {
            let (reached, gate) = (Arc::clone(&r), Arc::clone(&g));
            async move {
                let outcome = lp.wait(std::future::ready("event")).await;
                reached.notify_one();
                gate.notified().await;
                lp.respond(outcome)
            }
        }),
    );
    let mut h = Harness::new(router, quiet_layer()).await;

    // The answer is made: `ready`.
    let mut conn = RawConn::connect(h.addr()).await;
    conn.get("/after?timeout=60").await;
    tokio::time::timeout(IO_GUARD, reached.notified())
        .await
        .unwrap();
    gate.notify_one();
    assert_eq!(conn.read_response().await.status(), 200);
    h.expect("answered after the wait", &[("long_poll.ready", 1)])
        .await;

    // The client leaves before it is made.
    let mut conn = RawConn::connect(h.addr()).await;
    conn.get("/after?timeout=60").await;
    tokio::time::timeout(IO_GUARD, reached.notified())
        .await
        .unwrap();
    let s = h.stats.snapshot();
    assert_eq!((s.long_poll.handling, s.long_poll.waiting), (1, 0), "{s:?}");
    conn.fin();
    h.expect("left after the wait", &[("long_poll.disconnected", 1)])
        .await;
}

async fn long_poll_shutdown() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;
    let mut conn = RawConn::connect(h.addr()).await;
    conn.get("/poll?timeout=60").await;
    h.until("parked", |s| s.parked == 1).await;
    h.shutdown.cancel();
    assert_eq!(conn.read_response().await.status(), 503);
    h.expect("shutdown", &[("long_poll.shutdown", 1)]).await;
}

// ---------------------------------------------------------------------------
// Streams, in each framing
// ---------------------------------------------------------------------------

/// How a stream ends by itself: `max_bytes`, `max_lifetime`, the end of a
/// plain source (`end`), an evicted cursor (`gone`), a log closed while
/// it streams and a position at the end of a closed log (`closed`).
async fn a_stream_ends_by_itself(kind: Kind) {
    let mode = kind.mode();
    let log = log(4);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    // max_bytes, on a server of its own: the four events are more.
    let mut capped = Harness::new(
        routes(&log),
        quiet_layer().config(quiet_streams().max_bytes(200)),
    )
    .await;
    let first = log.publish_now("first".into());
    let padding = "x".repeat(100);
    for i in 0..3 {
        log.publish_now(format!("{i} {padding}").into());
    }
    let mut conn = open_stream(capped.addr(), &format!("/{mode}?from=oldest")).await;
    let text = rest_of_stream(&mut conn).await;
    capped
        .expect(
            &format!("{mode}: max_bytes: {text}"),
            &[(&kind.end("max_bytes"), 1)],
        )
        .await;
    drop(conn);

    let short = quiet_streams().max_lifetime(Duration::from_millis(300));
    let mut short_h = Harness::new(routes(&log), quiet_layer().config(short)).await;
    let mut conn = open_stream(short_h.addr(), &format!("/{mode}?from=now")).await;
    rest_of_stream(&mut conn).await;
    short_h
        .expect(
            &format!("{mode}: max_lifetime"),
            &[(&kind.end("max_lifetime"), 1)],
        )
        .await;

    let mut conn = open_stream(h.addr(), &format!("/plain/{mode}")).await;
    rest_of_stream(&mut conn).await;
    h.expect(&format!("{mode}: plain source"), &[(&kind.end("end"), 1)])
        .await;

    for i in 0..4 {
        log.publish_now(format!("e{i}").into());
    }
    let mut conn = RawConn::connect(h.addr()).await;
    conn.get(&format!("/{mode}?cursor={first}")).await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200, "{mode}: gone is told in-band");
    assert!(res.text().to_lowercase().contains("gone"), "{}", res.text());
    h.expect(
        &format!("{mode}: evicted cursor"),
        &[(&kind.end("gone"), 1)],
    )
    .await;

    let mut conn = open_stream(h.addr(), &format!("/{mode}?from=now")).await;
    h.until("streaming", |s| s.streaming == 1).await;
    let end: Cursor = log.close(None).await.unwrap();
    let text = rest_of_stream(&mut conn).await;
    assert!(text.to_lowercase().contains("closed"), "{text}");
    h.expect(&format!("{mode}: log closed"), &[(&kind.end("closed"), 1)])
        .await;

    let res = common::raw_get(h.addr(), &format!("/{mode}?cursor={end}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.header("stream-closed"), Some("true"));
    h.expect(
        &format!("{mode}: at the end of a closed log"),
        &[(&kind.end("closed"), 1)],
    )
    .await;
}

/// A client that leaves mid-stream: FIN, RST, half-close, an HTTP/2 reset.
async fn a_stream_whose_client_leaves(kind: Kind) {
    let mode = kind.mode();
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;
    let target = format!("/{mode}?from=now");

    for how in ["FIN", "RST", "half-close"] {
        let mut conn = open_stream(h.addr(), &target).await;
        let s = h.until("streaming", |s| s.streaming == 1).await;
        assert_eq!(flat(&s)[&format!("{mode}.in_flight")], 1);
        match how {
            "FIN" => fin(conn).await,
            "RST" => conn.rst(),
            _ => conn.half_close().await,
        }
        h.expect(&format!("{mode}: {how}"), &[(&kind.end("client_left"), 1)])
            .await;
    }

    let mut h2 = H2::connect(h.addr()).await;
    let res = tokio::time::timeout(IO_GUARD, h2.get(&target))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    tokio::time::timeout(IO_GUARD, body.frame())
        .await
        .unwrap()
        .expect("a first frame")
        .unwrap();
    drop(body); // RST_STREAM(CANCEL)
    h.expect(
        &format!("{mode}: HTTP/2 reset"),
        &[(&kind.end("client_left"), 1)],
    )
    .await;
    h2.close().await;
}

/// Over `StreamConfig::max_in_flight` (all framings together): `503`.
async fn a_stream_over_the_cap(kind: Kind) {
    let mode = kind.mode();
    let log = log(16);
    let layer = quiet_layer().config(quiet_streams().max_in_flight(1));
    let mut h = Harness::new(routes(&log), layer).await;

    let held = open_stream(h.addr(), "/ndjson?from=now").await;
    let res = common::raw_get(h.addr(), &format!("/{mode}?from=now")).await;
    assert_eq!(res.status(), 503, "{}", res.text());
    h.expect_in_flight(
        &format!("{mode}: over the cap"),
        &[(&kind.end("rejected"), 1)],
        &[("ndjson", 1)],
    )
    .await;
    fin(held).await;
    h.expect("the held one left", &[("ndjson.client_left", 1)])
        .await;
}

async fn a_stream_at_shutdown(kind: Kind) {
    let mode = kind.mode();
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;
    let mut conn = open_stream(h.addr(), &format!("/{mode}?from=now")).await;
    h.until("streaming", |s| s.streaming == 1).await;
    h.shutdown.cancel();
    let text = rest_of_stream(&mut conn).await;
    assert!(text.to_lowercase().contains("shutdown"), "{text}");
    h.expect(&format!("{mode}: shutdown"), &[(&kind.end("shutdown"), 1)])
        .await;
}

/// A layer inside `DisconnectLayer` that throws the response body away
/// (the client is still there): `dropped`.
async fn a_stream_discarded_by_a_layer(kind: Kind) {
    let mode = kind.mode();
    let log = log(16);
    let discard = axum::middleware::map_response(|res: Response| async move {
        res.map(|_| Body::from("discarded"))
    });
    let mut h = Harness::new(routes(&log).layer(discard), quiet_layer()).await;
    let res = common::raw_get(h.addr(), &format!("/{mode}?from=now")).await;
    assert_eq!((res.status(), res.text().as_str()), (200, "discarded"));
    h.expect(
        &format!("{mode}: body discarded"),
        &[(&kind.end("dropped"), 1)],
    )
    .await;
}

async fn stream_outcomes(kind: Kind) {
    a_stream_ends_by_itself(kind).await;
    a_stream_whose_client_leaves(kind).await;
    a_stream_over_the_cap(kind).await;
    a_stream_at_shutdown(kind).await;
    a_stream_discarded_by_a_layer(kind).await;
}

async fn ndjson_outcomes() {
    stream_outcomes(Kind::Ndjson).await;
}

async fn sse_outcomes() {
    stream_outcomes(Kind::Sse).await;
}

async fn framed_outcomes() {
    stream_outcomes(Kind::Framed).await;
}

/// Under `axum_longpoll::serve`, a client that stops reading is cut by the
/// write-stall bound: `slow_reader`, in each framing.
async fn a_stream_whose_client_stops_reading_under_serve_is_slow_reader() {
    for kind in Kind::ALL {
        let mode = kind.mode();
        let log = log(50_000);
        let layer = quiet_layer();
        let stats = layer.stats();
        let mut tally = Tally::new(&stats);
        let listener = small_send_buffer_listener();
        let addr = listener.local_addr().unwrap();
        let config = ServeConfig::new().dead_peer(Some(
            DeadPeer::new().write_stall(Some(Duration::from_millis(300))),
        ));
        let task = tokio::spawn(
            axum_longpoll::serve(listener, routes(&log))
                .layer(layer)
                .config(config)
                .into_future(),
        );

        let mut conn = small_recv_buffer_conn(addr).await;
        conn.get(&format!("/{mode}?from=now")).await;
        assert_eq!(conn.read_head().await.status, 200);
        conn.read_chunk().await.unwrap();
        // Far more than the socket buffers on both sides hold.
        let padding = "x".repeat(100);
        for i in 0..20_000 {
            log.publish_now(format!("{i} {padding}").into());
        }
        tally
            .expect(
                &format!("{mode}: stopped reading"),
                &[(&kind.end("slow_reader"), 1)],
            )
            .await;
        drop(conn);
        task.abort();
    }
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/// The client ends it: a close frame, FIN, RST.
async fn ws_client_left() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let mut client = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut client).await; // open
    let s = h.until("open", |s| s.ws.open == 1).await;
    assert_eq!((s.websockets, s.ws.upgrading, s.ws.closing), (1, 0, 0));
    client.close(None).await.unwrap();
    let drain = async { while let Some(Ok(_)) = client.next().await {} };
    tokio::time::timeout(IO_GUARD, drain).await.unwrap();
    h.expect("close frame", &[("ws.client_left", 1)]).await;

    for rst in [false, true] {
        let mut raw = RawWs::connect(h.addr(), "/ws").await;
        assert_eq!(raw.frame().await.0, TEXT); // open: nothing left unread
        h.until("open", |s| s.ws.open == 1).await;
        if rst {
            raw.rst();
        } else {
            raw.fin();
        }
        h.expect(if rst { "RST" } else { "FIN" }, &[("ws.client_left", 1)])
            .await;
    }
}

/// The server ends it: the log closed (`closed`), an evicted cursor
/// (`gone`), the end of a plain source (`end`), shutdown.
async fn ws_server_ends_closed_gone_end_shutdown() {
    let log = log(2);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let first = log.publish_now("first".into());
    for i in 0..4 {
        log.publish_now(format!("e{i}").into());
    }
    let mut client = ws_connect(h.addr(), &format!("/ws?cursor={first}")).await;
    assert_eq!(ws_until_close(&mut client).await, 4410);
    h.expect("evicted cursor", &[("ws.gone", 1)]).await;

    let mut client = ws_connect(h.addr(), "/ws/plain").await;
    assert_eq!(ws_until_close(&mut client).await, 1000);
    h.expect("plain source ended", &[("ws.end", 1)]).await;

    let mut client = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut client).await;
    h.until("open", |s| s.ws.open == 1).await;
    log.close(None).await.unwrap();
    assert_eq!(ws_until_close(&mut client).await, 1000);
    h.expect("log closed", &[("ws.closed", 1)]).await;

    // Shutdown, on a log still open.
    let log = self::log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;
    let mut client = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut client).await;
    h.until("open", |s| s.ws.open == 1).await;
    h.shutdown.cancel();
    assert_eq!(ws_until_close(&mut client).await, 1001);
    h.expect("shutdown", &[("ws.shutdown", 1)]).await;
}

/// `error`: a malformed frame (unmasked, `1002`), a message over
/// `max_message_size` (`1009`), an application error code (`1003`).
async fn ws_errors() {
    let log = log(16);
    let layer = quiet_layer().config(quiet_ws().max_message_size(1024));
    let mut h = Harness::new(routes(&log), layer).await;

    let mut raw = RawWs::connect(h.addr(), "/ws").await;
    assert_eq!(raw.frame().await.0, TEXT);
    // A client frame must be masked.
    raw.stream
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap();
    assert_eq!(raw.until_close().await, 1002);
    raw.fin();
    h.expect("malformed frame", &[("ws.error", 1)]).await;

    let mut client = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut client).await;
    client.send(Message::text("x".repeat(2000))).await.unwrap();
    assert_eq!(ws_until_close(&mut client).await, 1009);
    h.expect("message too large", &[("ws.error", 1)]).await;

    let mut client = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut client).await;
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(ws_until_close(&mut client).await, 1003);
    h.expect("application error", &[("ws.error", 1)]).await;
}

/// A client that never answers a ping.
async fn ws_heartbeat_timeout() {
    let log = log(16);
    let config = WsConfig::new()
        .ping_interval(Some(Duration::from_millis(200)))
        .pong_timeout(Duration::from_millis(300))
        .close_timeout(Duration::from_secs(1));
    let mut h = Harness::new(routes(&log), quiet_layer().config(config)).await;
    let mut raw = RawWs::connect(h.addr(), "/ws").await;
    assert_eq!(raw.until_close().await, 4408);
    raw.fin();
    h.expect("no pong", &[("ws.heartbeat_timeout", 1)]).await;
}

/// A client that stops reading: `send_timeout`.
async fn ws_slow_reader() {
    let log = log(50_000);
    let config = quiet_ws()
        .send_timeout(Duration::from_millis(500))
        .close_timeout(Duration::from_millis(300))
        .write_buffer_size(16 * 1024);
    let mut h = Harness::on(
        small_send_buffer_listener(),
        routes(&log),
        quiet_layer().config(config),
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(h.addr()).await.unwrap();
    let raw = RawWs::handshake(stream, "/ws?from=now").await;
    h.until("open", |s| s.ws.open == 1).await;
    let padding = "x".repeat(100);
    for i in 0..20_000 {
        log.publish_now(format!("{i} {padding}").into());
    }
    h.expect("stopped reading", &[("ws.slow_reader", 1)]).await;
    drop(raw);
}

/// Under `axum_longpoll::serve`, a client that stops reading is cut by
/// the write-stall bound before `send_timeout` (30 s): `slow_reader` too,
/// not `client_left`.
async fn ws_slow_reader_cut_by_serve_write_stall() {
    let log = log(50_000);
    let config = quiet_ws()
        .close_timeout(Duration::from_millis(300))
        .write_buffer_size(16 * 1024);
    let layer = quiet_layer().config(config);
    let mut tally = Tally::new(&layer.stats());
    let listener = small_send_buffer_listener();
    let addr = listener.local_addr().unwrap();
    let serve_config = ServeConfig::new().dead_peer(Some(
        DeadPeer::new().write_stall(Some(Duration::from_millis(300))),
    ));
    let task = tokio::spawn(
        axum_longpoll::serve(listener, routes(&log))
            .layer(layer)
            .config(serve_config)
            .into_future(),
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let raw = RawWs::handshake(stream, "/ws?from=now").await;
    let padding = "x".repeat(100);
    for i in 0..20_000 {
        log.publish_now(format!("{i} {padding}").into());
    }
    tally
        .expect("cut by the write stall", &[("ws.slow_reader", 1)])
        .await;
    drop(raw);
    task.abort();
}

/// Over `WsConfig::max_in_flight`: `503` before the upgrade.
async fn ws_over_max_in_flight_is_rejected() {
    let log = log(16);
    let layer = quiet_layer().config(quiet_ws().max_in_flight(1));
    let mut h = Harness::new(routes(&log), layer).await;
    let mut first = ws_connect(h.addr(), "/ws").await;
    ws_next(&mut first).await;
    let res = common::raw_request(
        h.addr(),
        "GET",
        "/ws",
        &[
            "connection: upgrade",
            "upgrade: websocket",
            "sec-websocket-version: 13",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        ],
    )
    .await;
    assert_eq!(res.status(), 503, "{}", res.text());
    h.expect_in_flight("over the cap", &[("ws.rejected", 1)], &[("ws", 1)])
        .await;
    first.close(None).await.unwrap();
    h.expect("the first one closed", &[("ws.client_left", 1)])
        .await;
}

/// No upgrade: the handler drops `LiveSocket` (`not_upgraded`); the
/// handler upgrades and drops the connection unrun (`dropped`).
async fn ws_not_upgraded_and_dropped() {
    let log = log(16);
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    let mut conn = RawConn::connect(h.addr()).await;
    conn.send(upgrade_request("/ws/refuse").as_bytes()).await;
    let res = conn.read_response().await;
    assert_eq!((res.status(), res.text().as_str()), (200, "not upgrading"));
    h.expect("handler did not upgrade", &[("ws.not_upgraded", 1)])
        .await;

    let mut raw = RawWs::connect(h.addr(), "/ws/drop").await;
    let mut rest = Vec::new();
    tokio::time::timeout(IO_GUARD, raw.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "no frame, not even a close: {rest:?}");
    h.expect("connection dropped unrun", &[("ws.dropped", 1)])
        .await;
}

/// The phases: `upgrading` while a handler holds the extractor, `open`
/// once upgraded; a client that leaves while upgrading is `not_upgraded`;
/// `closing` while a client does not answer the server's close frame.
async fn ws_phases_upgrading_open_closing() {
    let log = log(16);
    let gate = Arc::new(Notify::new());
    let g = Arc::clone(&gate);
    let router = routes(&log).route(
        "/ws/gated",
        get(move |ws: LiveSocket| {
            let gate = Arc::clone(&g);
            async move {
                gate.notified().await;
                ws.serve(futures_util::stream::pending::<u64>(), |_| Ok(()))
            }
        }),
    );
    let config = quiet_ws().close_timeout(Duration::from_secs(3));
    let mut h = Harness::new(router, quiet_layer().config(config)).await;

    let addr = h.addr();
    let client = tokio::spawn(async move { ws_connect(addr, "/ws/gated").await });
    let s = h.until("upgrading", |s| s.ws.upgrading == 1).await;
    assert_eq!(
        (s.ws.in_flight, s.ws.open, s.ws.closing, s.websockets),
        (1, 0, 0, 1)
    );
    gate.notify_one();
    let mut client = client.await.unwrap();
    let s = h.until("open", |s| s.ws.open == 1).await;
    assert_eq!((s.ws.upgrading, s.ws.closing), (0, 0));
    client.close(None).await.unwrap();
    let drain = async { while let Some(Ok(_)) = client.next().await {} };
    tokio::time::timeout(IO_GUARD, drain).await.unwrap();
    h.expect("closed by the client", &[("ws.client_left", 1)])
        .await;

    // The client leaves while the handler holds the extractor.
    let mut conn = RawConn::connect(addr).await;
    conn.send(upgrade_request("/ws/gated").as_bytes()).await;
    h.until("upgrading again", |s| s.ws.upgrading == 1).await;
    conn.fin();
    // If the handler was not dropped, it upgrades into a closed
    // connection: not upgraded either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.notify_one();
    h.expect("left while upgrading", &[("ws.not_upgraded", 1)])
        .await;

    // The plain source ends at once: the server's close frame goes out and
    // the client never answers it, for `close_timeout`.
    let mut raw = RawWs::connect(addr, "/ws/plain").await;
    let s = h.until("closing", |s| s.ws.closing == 1).await;
    assert_eq!((s.ws.open, s.ws.upgrading, s.websockets), (0, 0, 1));
    assert_eq!(raw.until_close().await, 1000);
    h.expect("close_timeout", &[("ws.end", 1)]).await;
    raw.fin();
}

// ---------------------------------------------------------------------------
// A log that cannot be read: Redis down
// ---------------------------------------------------------------------------

/// Redis down: a long-poll is `unavailable`, a stream of each framing and
/// a WebSocket (`LiveSocket::serve`) end in `error`, all `503`.
async fn a_log_that_cannot_be_read_is_unavailable_or_error() {
    let mut redis = RedisServer::start(false).await;
    let client =
        axum_longpoll::redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
    let log = EventLog::builder()
        .capacity(16)
        .redis(client, "stats:test")
        .timeout(Duration::from_millis(500))
        .block(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(200))
        .connect::<Arc<str>>()
        .await
        .expect("connect to redis-server");
    let mut h = Harness::new(routes(&log), quiet_layer()).await;

    redis.kill();
    let deadline = Instant::now() + IO_GUARD;
    while log.backend().is_connected() {
        assert!(Instant::now() < deadline, "the log never saw Redis go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let res = common::raw_get(h.addr(), "/poll?timeout=60").await;
    assert_eq!(res.status(), 503, "{}", res.text());
    h.expect("long-poll", &[("long_poll.unavailable", 1)]).await;
    for kind in Kind::ALL {
        let mode = kind.mode();
        let res = common::raw_get(h.addr(), &format!("/{mode}")).await;
        assert_eq!(res.status(), 503, "{}", res.text());
        h.expect(mode, &[(&kind.end("error"), 1)]).await;
    }
    let mut conn = RawConn::connect(h.addr()).await;
    conn.send(upgrade_request("/ws").as_bytes()).await;
    assert_eq!(conn.read_response().await.status(), 503);
    h.expect("ws", &[("ws.error", 1)]).await;
}

// ---------------------------------------------------------------------------
// The demo's /stats: a contract
// ---------------------------------------------------------------------------

/// `/stats` of the demo keeps every key it had before the per-mode
/// figures, and has those too, every outcome of every mode.
async fn demo_stats_keeps_its_keys_and_has_the_modes() {
    let log: Log = EventLog::new(64);
    let shutdown = CancellationToken::new();
    let server =
        common::spawn_with_shutdown(demo::router(log.clone(), shutdown.clone()), shutdown).await;
    let res = common::raw_get(server.addr, "/poll?timeout=0").await;
    assert_eq!(res.status(), 204);

    let res = common::raw_get(server.addr, "/stats").await;
    assert_eq!(res.status(), 200);
    let stats: Value = serde_json::from_slice(&res.body).unwrap();
    let number = |v: &Value, key: &str| {
        assert!(v[key].is_u64(), "/stats: {key} is not a count: {stats}");
        v[key].as_u64().unwrap()
    };
    for key in [
        "parked",
        "streaming",
        "websockets",
        "ready",
        "timeout",
        "shutdown",
        "disconnected",
        "rejected",
        "too_large",
        "retained",
    ] {
        number(&stats, key);
    }
    assert!(stats["head"].is_string(), "/stats: head: {stats}");
    assert_eq!(stats["backend"], "memory");
    number(&stats, "streams");

    let long_poll_ends = [
        "ready",
        "timeout",
        "shutdown",
        "disconnected",
        "too_large",
        "bad_request",
        "stalled_body",
        "rejected",
        "gone",
        "closed",
        "unavailable",
        "answered",
    ];
    let stream_ends = [
        "client_left",
        "max_bytes",
        "max_lifetime",
        "shutdown",
        "slow_reader",
        "closed",
        "gone",
        "end",
        "error",
        "rejected",
        "dropped",
    ];
    let ws_ends = [
        "client_left",
        "heartbeat_timeout",
        "shutdown",
        "slow_reader",
        "closed",
        "gone",
        "end",
        "error",
        "rejected",
        "not_upgraded",
        "dropped",
    ];
    let modes: [(&str, &[&str], &[&str]); 5] = [
        (
            "long_poll",
            &["reading_body", "handling", "waiting"],
            &long_poll_ends,
        ),
        ("ndjson", &[], &stream_ends),
        ("sse", &[], &stream_ends),
        ("framed", &[], &stream_ends),
        ("ws", &["upgrading", "open", "closing"], &ws_ends),
    ];
    for (mode, phases, ends) in modes {
        let m = &stats[mode];
        for key in ["started", "in_flight"].iter().chain(phases) {
            number(m, key);
        }
        let ended = m["ended"].as_object().unwrap();
        let mut names: Vec<&str> = ended.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut want = ends.to_vec();
        want.sort_unstable();
        assert_eq!(names, want, "{mode}.ended");
        for end in ends.iter() {
            number(&m["ended"], end);
        }
    }
    // The poll above, in both.
    assert_eq!(stats["timeout"], 1);
    assert_eq!(stats["long_poll"]["started"], 1);
    assert_eq!(stats["long_poll"]["ended"]["timeout"], 1);
}

fn main() -> std::process::ExitCode {
    use harness::test;
    harness::run(vec![
        test!(
            long_poll_a_body_cut_short_is_disconnected_after_reading_body,
            current_thread
        ),
        test!(
            long_poll_a_client_that_leaves_while_waiting_is_disconnected,
            current_thread
        ),
        test!(long_poll_a_body_that_stalls_is_stalled_body, current_thread),
        test!(long_poll_a_bad_timeout_is_bad_request, current_thread),
        test!(long_poll_a_body_over_max_body_is_too_large, current_thread),
        test!(long_poll_over_max_in_flight_is_rejected, current_thread),
        test!(
            long_poll_answers_ready_timeout_gone_closed_answered,
            current_thread
        ),
        test!(long_poll_handling_phase_then_waiting, current_thread),
        test!(
            long_poll_a_client_that_leaves_after_the_wait_before_the_answer_is_disconnected,
            current_thread
        ),
        test!(long_poll_shutdown, current_thread),
        test!(ndjson_outcomes, current_thread),
        test!(sse_outcomes, current_thread),
        test!(framed_outcomes, current_thread),
        test!(
            a_stream_whose_client_stops_reading_under_serve_is_slow_reader,
            multi_thread(2)
        ),
        test!(ws_client_left, current_thread),
        test!(ws_server_ends_closed_gone_end_shutdown, current_thread),
        test!(ws_errors, current_thread),
        test!(ws_heartbeat_timeout, current_thread),
        test!(ws_slow_reader, multi_thread(2)),
        test!(ws_slow_reader_cut_by_serve_write_stall, multi_thread(2)),
        test!(ws_over_max_in_flight_is_rejected, current_thread),
        test!(ws_not_upgraded_and_dropped, current_thread),
        test!(ws_phases_upgrading_open_closing, current_thread),
        test!(
            a_log_that_cannot_be_read_is_unavailable_or_error,
            multi_thread(2)
        )
        .needs(harness::REDIS_SERVER),
        test!(demo_stats_keeps_its_keys_and_has_the_modes, current_thread),
    ])
}
