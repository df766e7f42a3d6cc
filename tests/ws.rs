#![allow(clippy::unwrap_used)]
//! The WebSocket mode (`axum_longpoll::ws`) over real sockets: a router
//! behind `DisconnectLayer`, served by `axum::serve` on `127.0.0.1:0`.
//! Well-kept clients are tokio-tungstenite; misbehaving peers (that never
//! read, never answer a ping, vanish with FIN or RST) are raw TCP with the
//! handshake written by hand. Events are published through the `EventLog`
//! handle from the test.
//!
//! Every timeout is a hang guard or a generous upper bound for correctness,
//! never a performance assertion.

mod common;

#[allow(dead_code)]
#[path = "../examples/demo/app.rs"]
mod demo;

use common::PublishNow as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message as AxumMessage;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::event_log::{Cursor, EventLog, GoneReason, Resume};
use axum_longpoll::ws::{self, close_code, CloseReason, Connection, LiveSocket, WsConfig};
use axum_longpoll::{DisconnectLayer, Stats};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use common::opcode::{CLOSE, PING, TEXT};
use common::{
    assert_cancelled, raw_get, spawn_on, spawn_with_shutdown, wait_for_stats, RawWs, Server,
};

/// Hang guard for one message or one close.
const GUARD: Duration = Duration::from_secs(10);

type Log = EventLog<Arc<str>>;
type Client = WebSocketStream<TcpStream>;

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// What each connection reports to the test: its token as soon as it
/// starts, its close reason when it ended.
#[derive(Clone)]
struct Probe {
    log: Log,
    tokens: mpsc::UnboundedSender<CancellationToken>,
    reasons: mpsc::UnboundedSender<CloseReason>,
    /// Messages taken from the outgoing source, by all connections.
    pulled: Arc<AtomicUsize>,
}

struct Reports {
    tokens: mpsc::UnboundedReceiver<CancellationToken>,
    reasons: mpsc::UnboundedReceiver<CloseReason>,
    pulled: Arc<AtomicUsize>,
}

impl Reports {
    async fn token(&mut self) -> CancellationToken {
        tokio::time::timeout(GUARD, self.tokens.recv())
            .await
            .expect("no connection started")
            .unwrap()
    }

    async fn reason(&mut self) -> CloseReason {
        tokio::time::timeout(GUARD, self.reasons.recv())
            .await
            .expect("no connection ended")
            .unwrap()
    }
}

/// Counts the messages a connection pulls from its source.
struct Counting<S> {
    inner: S,
    pulled: Arc<AtomicUsize>,
}

impl<S: Stream + Unpin> Stream for Counting<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let item = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(Some(_)) = &item {
            self.pulled.fetch_add(1, Ordering::SeqCst);
        }
        item
    }
}

/// `GET /ws`: the log from the client's cursor, counted; a text message is
/// published, a binary one closes with 1003.
async fn ws(State(probe): State<Probe>, resume: Resume, ws: LiveSocket) -> Response {
    let messages = match ws::messages(probe.log.reader(resume)) {
        Ok(messages) => messages,
        Err(unavailable) => return unavailable,
    };
    ws.on_upgrade(move |conn: Connection| async move {
        let _ = probe.tokens.send(conn.token().clone());
        let outgoing = Counting {
            inner: messages,
            pulled: Arc::clone(&probe.pulled),
        };
        let log = probe.log.clone();
        let reason = conn
            .run(outgoing, move |msg| match msg {
                AxumMessage::Text(text) => {
                    log.publish_now(Arc::from(text.as_str()));
                    Ok(())
                }
                _ => Err(CloseReason::server(1003, "text only")),
            })
            .await;
        let _ = probe.reasons.send(reason);
    })
}

struct TestServer {
    server: Server,
    stats: Stats,
    sockets: InFlight,
    reports: Reports,
}

impl TestServer {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

fn app(
    log: &Log,
    config: WsConfig,
    shutdown: &CancellationToken,
) -> (Router, Stats, InFlight, Reports) {
    let layer = DisconnectLayer::new()
        .shutdown(shutdown.clone())
        .config(config);
    let (stats, sockets) = (layer.stats(), layer.in_flight());
    let (tokens_tx, tokens) = mpsc::unbounded_channel();
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    let pulled = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        log: log.clone(),
        tokens: tokens_tx,
        reasons: reasons_tx,
        pulled: Arc::clone(&pulled),
    };
    let router = Router::new()
        .route("/ws", get(ws))
        .with_state(probe)
        .layer(layer);
    let reports = Reports {
        tokens,
        reasons,
        pulled,
    };
    (router, stats, sockets, reports)
}

async fn serve(log: &Log, config: WsConfig) -> TestServer {
    let shutdown = CancellationToken::new();
    let (router, stats, sockets, reports) = app(log, config, &shutdown);
    TestServer {
        server: spawn_with_shutdown(router, shutdown).await,
        stats,
        sockets,
        reports,
    }
}

fn log(capacity: usize) -> Log {
    EventLog::builder().capacity(capacity).build()
}

/// Heartbeats off, so that only what a test is about can end a socket.
fn quiet() -> WsConfig {
    WsConfig::new().ping_interval(None)
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

async fn connect_on(stream: TcpStream, addr: SocketAddr, path: &str) -> Client {
    let (client, res) = tokio::time::timeout(
        GUARD,
        tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream),
    )
    .await
    .expect("handshake hung")
    .expect("handshake");
    assert_eq!(res.status(), 101);
    client
}

async fn connect(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    connect_on(stream, addr, path).await
}

/// The next message that is not a ping or pong.
async fn next(client: &mut Client) -> Message {
    loop {
        let msg = tokio::time::timeout(GUARD, client.next())
            .await
            .expect("no message from the server")
            .expect("the connection ended without a close frame")
            .expect("read error");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

fn json(msg: &Message) -> Value {
    match msg {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Reads the `open` control message; returns its cursor.
async fn open(client: &mut Client) -> String {
    let open = json(&next(client).await);
    assert_eq!(open["control"], "open", "{open}");
    open["cursor"].as_str().unwrap().to_owned()
}

/// Reads messages up to the close frame, then lets tungstenite answer it
/// and waits for the server to close TCP; returns the events and the close
/// frame's code and reason.
async fn until_close(client: &mut Client) -> (Vec<Value>, u16, String) {
    let mut events = Vec::new();
    let (code, reason) = loop {
        match next(client).await {
            Message::Close(Some(frame)) => {
                break (u16::from(frame.code), frame.reason.as_str().to_owned())
            }
            Message::Close(None) => break (1005, String::new()),
            msg => events.push(json(&msg)),
        }
    };
    let drain = async { while let Some(Ok(_)) = client.next().await {} };
    tokio::time::timeout(GUARD, drain)
        .await
        .expect("the server did not close TCP after the closing handshake");
    (events, code, reason)
}

fn close_code_of(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

// ---------------------------------------------------------------------------
// How a socket ends
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_close_frame_from_the_client_is_client_close_with_its_code() {
    let log = log(16);
    let mut s = serve(&log, quiet()).await;

    let mut client = connect(s.addr(), "/ws").await;
    let token = s.reports.token().await;
    open(&mut client).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    // The server answers the close frame, then ends the stream.
    let (events, code, _) = until_close(&mut client).await;
    assert!(events.is_empty());
    assert_eq!(code, 1000);
    let reason = s.reports.reason().await;
    assert_eq!(
        reason,
        CloseReason::ClientClose {
            code: 1000,
            reason: "bye".to_owned()
        }
    );
    assert!(!reason.is_unexpected());
    assert!(token.is_cancelled());

    // A close frame without a code (a browser's `ws.close()`): 1005.
    let mut client = connect(s.addr(), "/ws").await;
    open(&mut client).await;
    client.close(None).await.unwrap();
    let reason = s.reports.reason().await;
    assert_eq!(reason.code(), 1005);
    assert!(matches!(reason, CloseReason::ClientClose { .. }));
    assert!(!reason.is_unexpected());

    // An application code is passed on, and unexpected.
    let mut client = connect(s.addr(), "/ws").await;
    open(&mut client).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4321),
            reason: "".into(),
        }))
        .await
        .unwrap();
    let reason = s.reports.reason().await;
    assert_eq!(reason.code(), 4321);
    assert!(reason.is_unexpected());

    wait_for_stats(&s.stats, "websockets back to 0", |st| st.websockets == 0).await;
    assert!(s.sockets.is_empty());
}

#[tokio::test]
async fn tcp_closed_without_a_close_frame_is_abnormal() {
    let log = log(16);
    let mut s = serve(&log, quiet()).await;

    for rst in [false, true] {
        let mut client = RawWs::connect(s.addr(), "/ws").await;
        let token = s.reports.token().await;
        let (op, _) = client.frame().await; // `open`: nothing left unread
        assert_eq!(op, TEXT);
        if rst {
            client.rst();
        } else {
            client.fin();
        }
        assert_cancelled(&token, "socket token after FIN/RST").await;
        let reason = s.reports.reason().await;
        assert!(
            matches!(reason, CloseReason::Abnormal { .. }),
            "rst={rst}: {reason:?}"
        );
        assert_eq!(reason.code(), 1006);
        assert!(reason.is_unexpected());
    }
    wait_for_stats(&s.stats, "websockets back to 0", |st| st.websockets == 0).await;
}

#[tokio::test]
async fn a_client_that_never_answers_a_ping_times_out() {
    let interval = Duration::from_millis(200);
    let timeout = Duration::from_millis(300);
    let log = log(16);
    let config = WsConfig::new()
        .ping_interval(Some(interval))
        .pong_timeout(timeout)
        .close_timeout(Duration::from_secs(1));
    let mut s = serve(&log, config).await;

    let started = Instant::now();
    let mut client = RawWs::connect(s.addr(), "/ws").await;
    let reason = s.reports.reason().await;
    let elapsed = started.elapsed();
    assert_eq!(reason, CloseReason::HeartbeatTimeout);
    assert!(elapsed >= interval + timeout, "ended early: {elapsed:?}");
    assert!(
        elapsed < interval + timeout + Duration::from_secs(5),
        "ended late: {elapsed:?}"
    );

    // What the silent client was sent: `open`, one ping, the close frame.
    assert_eq!(client.frame().await.0, TEXT);
    assert_eq!(client.frame().await.0, PING);
    let (op, payload) = client.frame().await;
    assert_eq!(op, CLOSE);
    assert_eq!(close_code_of(&payload), close_code::HEARTBEAT_TIMEOUT);
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_open() {
    let log = log(16);
    let config = WsConfig::new()
        .ping_interval(Some(Duration::from_millis(50)))
        .pong_timeout(Duration::from_millis(250));
    let mut s = serve(&log, config).await;

    let mut client = connect(s.addr(), "/ws").await;
    let token = s.reports.token().await;
    open(&mut client).await;
    // tungstenite answers each ping while it reads. 20 pings take longer
    // than a pong timeout: a server that ignored the pongs would have
    // ended the socket.
    let mut pings = 0;
    while pings < 20 {
        match tokio::time::timeout(GUARD, client.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    assert!(!token.is_cancelled(), "a live client was timed out");
    client.close(None).await.unwrap();
    assert!(matches!(
        s.reports.reason().await,
        CloseReason::ClientClose { code: 1005, .. }
    ));
}

#[tokio::test]
async fn a_message_over_the_limit_is_closed_with_1009() {
    let log = log(16);
    let mut s = serve(&log, quiet().max_message_size(1024)).await;

    let mut client = connect(s.addr(), "/ws").await;
    open(&mut client).await;
    client.send(Message::text("x".repeat(2000))).await.unwrap();
    let (_, code, _) = until_close(&mut client).await;
    assert_eq!(code, 1009);
    let reason = s.reports.reason().await;
    assert!(
        matches!(reason, CloseReason::ProtocolError { code: 1009, .. }),
        "{reason:?}"
    );
    assert!(log.is_empty(), "the oversized message was published");
}

#[tokio::test]
async fn a_callback_error_closes_with_its_code() {
    let log = log(16);
    let mut s = serve(&log, quiet()).await;

    let mut client = connect(s.addr(), "/ws").await;
    open(&mut client).await;
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let (_, code, reason) = until_close(&mut client).await;
    assert_eq!((code, reason.as_str()), (1003, "text only"));
    assert_eq!(
        s.reports.reason().await,
        CloseReason::server(1003, "text only")
    );
}

#[tokio::test]
async fn missing_layer_is_a_500_naming_it() {
    let app = Router::new().route(
        "/ws",
        get(|ws: LiveSocket| async move { ws.on_upgrade(|_| async {}) }),
    );
    let server = common::spawn(app).await;
    let res = common::raw_request(
        server.addr,
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
    assert_eq!(res.status(), 500);
    assert!(res.text().contains("DisconnectLayer"), "{}", res.text());

    // With the layer, a request that is no upgrade gets axum's rejection.
    let log = log(4);
    let s = serve(&log, quiet()).await;
    let res = raw_get(s.addr(), "/ws").await;
    assert!(
        res.status() >= 400 && res.status() < 500,
        "{}",
        res.status()
    );
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_sends_going_away_to_every_client_and_serve_returns() {
    const CLIENTS: usize = 50;
    let log = log(16);
    let mut s = serve(&log, WsConfig::new()).await;

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = connect(s.addr(), "/ws").await;
        open(&mut client).await;
        clients.push(tokio::spawn(async move {
            let (_, code, _) = until_close(&mut client).await;
            code
        }));
    }
    wait_for_stats(&s.stats, "all sockets open", |st| {
        st.websockets == CLIENTS as u64
    })
    .await;
    assert_eq!(s.sockets.len(), CLIENTS);

    let sockets = s.sockets.clone();
    s.server.shutdown(GUARD).await.unwrap();
    tokio::time::timeout(GUARD, sockets.wait())
        .await
        .expect("the sockets did not close after shutdown");
    for client in clients {
        let code = tokio::time::timeout(GUARD, client).await.unwrap().unwrap();
        assert_eq!(code, close_code::GOING_AWAY);
    }
    for _ in 0..CLIENTS {
        assert_eq!(s.reports.reason().await, CloseReason::Shutdown);
    }
    assert_eq!(s.stats.snapshot().websockets, 0);
}

// ---------------------------------------------------------------------------
// Resume
// ---------------------------------------------------------------------------

#[tokio::test]
async fn reconnecting_with_the_cursor_loses_and_repeats_nothing() {
    const EVENTS: usize = 2000;
    let log = log(EVENTS + 1);
    let s = serve(&log, quiet()).await;
    let addr = s.addr();

    let publisher = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                log.publish_now(Arc::from(format!("e{i}")));
                if i % 8 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };

    let receive = async {
        let mut got: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut connections = 0;
        while got.len() < EVENTS {
            connections += 1;
            let path = match &cursor {
                Some(c) => format!("/ws?cursor={c}"),
                None => "/ws?from=oldest".to_owned(),
            };
            let mut client = connect(addr, &path).await;
            let start = open(&mut client).await;
            if let Some(c) = &cursor {
                assert_eq!(&start, c, "the socket did not start at the cursor sent");
            }
            cursor = Some(start);
            let take = fastrand::usize(1..80);
            for _ in 0..take {
                if got.len() == EVENTS {
                    break;
                }
                let event = json(&next(&mut client).await);
                got.push(event["data"].as_str().unwrap().to_owned());
                cursor = Some(event["id"].as_str().unwrap().to_owned());
            }
            // Leave at random: close frame, FIN or RST.
            match fastrand::u8(0..3) {
                0 => {
                    let _ = client.close(None).await;
                }
                1 => drop(client),
                _ => {
                    socket2::SockRef::from(client.get_ref())
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(client);
                }
            }
        }
        (got, connections)
    };
    let (got, connections) = tokio::time::timeout(Duration::from_secs(60), receive)
        .await
        .expect("the reconnecting client did not get every event");
    publisher.await.unwrap();
    let want: Vec<String> = (0..EVENTS).map(|i| format!("e{i}")).collect();
    assert_eq!(got, want, "lost or repeated events");
    assert!(connections > 10, "only {connections} connections");
    wait_for_stats(&s.stats, "websockets back to 0", |st| st.websockets == 0).await;
}

#[tokio::test]
async fn a_cursor_too_old_is_closed_with_4410() {
    let log = log(4);
    let mut s = serve(&log, quiet()).await;
    let first = log.publish_now(Arc::from("a"));
    for _ in 0..10 {
        log.publish_now(Arc::from("b"));
    }

    let mut client = connect(s.addr(), &format!("/ws?cursor={first}")).await;
    let (messages, code, reason) = until_close(&mut client).await;
    assert_eq!(code, close_code::CURSOR_GONE);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["control"], "gone");
    assert_eq!(messages[0]["reason"], "evicted");
    assert_eq!(messages[0]["cursor"], log.oldest().to_string());
    let reason: Value = serde_json::from_str(&reason).unwrap();
    assert_eq!(reason["reason"], "evicted");
    assert_eq!(reason["cursor"], log.oldest().to_string());
    match s.reports.reason().await {
        CloseReason::CursorGone(gone) => assert_eq!(gone.reason(), GoneReason::Evicted),
        other => panic!("{other:?}"),
    }

    // A cursor from another epoch (a restarted server).
    let other: Cursor = format!("{:016x}-3", log.epoch() ^ 1).parse().unwrap();
    let mut client = connect(s.addr(), &format!("/ws?cursor={other}")).await;
    let (messages, code, _) = until_close(&mut client).await;
    assert_eq!(code, close_code::CURSOR_GONE);
    assert_eq!(messages[0]["reason"], "epoch");
    assert!(matches!(
        s.reports.reason().await,
        CloseReason::CursorGone(_)
    ));
}

// ---------------------------------------------------------------------------
// A slow reader
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_reader_that_stops_is_closed_with_4008_holding_a_bounded_amount() {
    const EVENTS: usize = 100_000;
    // Small socket buffers, so that what the kernel holds is small too.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8192).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener: TcpListener = socket.listen(64).unwrap();
    let log = log(EVENTS + 1);
    let config = quiet()
        // Short for the reader that stopped; long enough that the one
        // which reads (below) is never taken for stalled on a busy machine.
        .send_timeout(Duration::from_secs(1))
        .write_buffer_size(16 * 1024);
    let shutdown = CancellationToken::new();
    let (router, stats, _sockets, mut reports) = app(&log, config, &shutdown);
    let server = spawn_on(listener, router, shutdown);

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8192).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut client = connect_on(stream, server.addr, "/ws?from=now").await;
    let token = reports.token().await;

    // The client reads nothing while all events are published.
    for i in 0..EVENTS {
        log.publish_now(Arc::from(format!("e{i}")));
    }
    assert_cancelled(&token, "socket token of a reader that stopped").await;
    let pulled = reports.pulled.load(Ordering::SeqCst);
    assert!(
        pulled < EVENTS / 10,
        "the server took {pulled} of {EVENTS} messages for a client that reads nothing"
    );

    // It reads again: exactly what was taken, then the close frame.
    let start = open(&mut client).await;
    let (events, code, _) = until_close(&mut client).await;
    assert_eq!(code, close_code::SLOW_CONSUMER);
    assert_eq!(
        events.len() + 1,
        pulled,
        "taken messages were not all delivered"
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["data"], format!("e{i}"));
    }
    assert_eq!(reports.reason().await, CloseReason::SlowConsumer);
    assert_eq!(reports.pulled.load(Ordering::SeqCst), pulled);

    // It resumes with its last cursor: the rest, without a gap.
    let cursor = events
        .last()
        .map_or(start, |e| e["id"].as_str().unwrap().to_owned());
    let mut client = connect(server.addr, &format!("/ws?cursor={cursor}")).await;
    open(&mut client).await;
    for i in events.len()..EVENTS {
        let event = json(&next(&mut client).await);
        assert_eq!(event["data"], format!("e{i}"));
    }
    client.close(None).await.unwrap();
    wait_for_stats(&stats, "websockets back to 0", |st| st.websockets == 0).await;
}

// ---------------------------------------------------------------------------
// The cap on open sockets
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_max_in_flight_an_upgrade_is_answered_503_and_open_sockets_stay() {
    let log = log(16);
    let s = serve(&log, quiet().max_in_flight(2)).await;
    let mut first = connect(s.addr(), "/ws").await;
    let mut second = connect(s.addr(), "/ws").await;
    open(&mut first).await;
    open(&mut second).await;

    let mut third = common::RawConn::connect(s.addr()).await;
    third
        .request(
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
    let res = third.read_response().await;
    assert_eq!(res.status(), 503, "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(
        res.text().contains("WsConfig::max_in_flight"),
        "{}",
        res.text()
    );
    let snap = s.stats.snapshot();
    assert_eq!((snap.websockets, snap.rejected), (2, 1));

    // The open ones are not disturbed; a place that comes free is taken.
    log.publish_now(Arc::from("still here"));
    assert_eq!(json(&next(&mut first).await)["data"], "still here");
    first.close(None).await.unwrap();
    wait_for_stats(&s.stats, "one socket closed", |st| st.websockets == 1).await;
    let mut fourth = connect(s.addr(), "/ws").await;
    open(&mut fourth).await;
    assert_eq!(json(&next(&mut second).await)["data"], "still here");
}

/// Memory per idle WebSocket, by hand (`--ignored --nocapture`): RSS of
/// this process with `IDLE_SOCKETS` (default 2,000) sockets open and idle,
/// server and clients together, minus the same number of plain idle TCP
/// connections. `benches/run` measures it per server process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn memory_per_idle_websocket() {
    fn rss() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap()
            * 1024
    }
    let n: usize = std::env::var("IDLE_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let log = log(16);
    let s = serve(&log, quiet()).await;
    let before = rss();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = connect(s.addr(), "/ws").await;
        open(&mut client).await;
        clients.push(client);
    }
    wait_for_stats(&s.stats, "all open", |st| st.websockets == n as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per = (rss() - before) / n as i64;
    eprintln!("{n} idle WebSockets (server and client in this process): {per} B each");
}

// ---------------------------------------------------------------------------
// The demo's /ws
// ---------------------------------------------------------------------------

async fn demo_stats(addr: SocketAddr) -> Value {
    serde_json::from_slice(&raw_get(addr, "/stats").await.body).unwrap()
}

#[tokio::test]
async fn demo_ws_round_trip_and_the_websockets_gauge() {
    let log: Log = EventLog::new(64);
    let shutdown = CancellationToken::new();
    let server = spawn_with_shutdown(demo::router(log.clone(), shutdown.clone()), shutdown).await;
    let addr = server.addr;

    let mut client = connect(addr, "/ws").await;
    let start = open(&mut client).await;
    assert_eq!(start, log.head().to_string());
    assert_eq!(demo_stats(addr).await["websockets"], 1);

    // A text frame is published like POST /publish, and comes back.
    client.send(Message::text("hello")).await.unwrap();
    let event = json(&next(&mut client).await);
    assert_eq!(event["data"], "hello");
    let hello = event["id"].as_str().unwrap().to_owned();
    let mut conn = common::RawConn::connect(addr).await;
    conn.send(b"POST /publish HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nworld")
        .await;
    let published: Value = serde_json::from_slice(&conn.read_response().await.body).unwrap();
    let event = json(&next(&mut client).await);
    assert_eq!(event["data"], "world");
    assert_eq!(event["id"], published["id"]);

    // Resume after the first: only the second.
    client.close(None).await.unwrap();
    let mut again = connect(addr, &format!("/ws?cursor={hello}")).await;
    open(&mut again).await;
    assert_eq!(json(&next(&mut again).await)["data"], "world");

    // A binary frame is not accepted.
    again.send(Message::binary(vec![0u8; 3])).await.unwrap();
    let (_, code, _) = until_close(&mut again).await;
    assert_eq!(code, 1003);

    let deadline = Instant::now() + GUARD;
    while demo_stats(addr).await["websockets"] != 0 {
        assert!(
            Instant::now() < deadline,
            "websockets gauge never back to 0"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

#[test]
fn public_types_are_send_sync_clone() {
    fn send<T: Send>() {}
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send::<LiveSocket>();
    send::<Connection>();
    send::<axum_longpoll::LogReader<Arc<str>>>();
    send_sync_clone::<CloseReason>();
    send_sync_clone::<WsConfig>();
    send_sync_clone::<InFlight>();
}
