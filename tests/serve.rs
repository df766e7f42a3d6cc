#![allow(clippy::unwrap_used)]
//! `axum_longpoll::serve` over real sockets on `127.0.0.1:0`: every phase of
//! a connection closed by its deadline while other clients are served, the
//! early `413`, the connection cap, readiness during the drain, the HTTP/2
//! frame order at shutdown (raw frames), and a shutdown that returns by its
//! hard deadline whatever the clients do.
//!
//! Deadlines are configured short; every wait is a hang guard, never a
//! timing assertion.
//!
//! `SERVE_TEST_BASELINE=axum cargo test --test serve` serves the same
//! router and layer with plain `axum::serve` instead: every test here is
//! meant to fail then (that is how they were checked).

mod common;

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use common::PublishNow as _;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::event_log::{EventLog, Resume};
use axum_longpoll::serve::{self, ServeConfig, ShutdownReport};
use axum_longpoll::ws::{LiveSocket, WsConfig};
use axum_longpoll::{DisconnectLayer, DisconnectToken, LongPoll, Stats, Streaming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use common::{raw_get, small_recv_buffer_conn, wait_for_stats, RawConn, IO_GUARD};

type Log = EventLog<u64>;

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// One server under test, and what the test needs of it.
struct Served {
    addr: SocketAddr,
    signal: CancellationToken,
    stats: Stats,
    in_flight: InFlight,
    task: Option<JoinHandle<std::io::Result<ShutdownReport>>>,
}

impl Served {
    /// Serves `app` with `layer` and `config` on `listener` (or with plain
    /// `axum::serve` under `SERVE_TEST_BASELINE=axum`).
    fn on(listener: TcpListener, app: Router, layer: DisconnectLayer, config: ServeConfig) -> Self {
        let addr = listener.local_addr().unwrap();
        let signal = CancellationToken::new();
        let stats = layer.stats();
        let in_flight = layer.in_flight();
        let stop = signal.clone().cancelled_owned();
        let task = if std::env::var("SERVE_TEST_BASELINE").as_deref() == Ok("axum") {
            // As the crate's docs recommended before `serve`: one token
            // for the layer and for `with_graceful_shutdown`.
            let token = layer.shutdown_token().clone();
            let stop = async move {
                stop.await;
                token.cancel();
            };
            tokio::spawn(async move {
                axum::serve(listener, app.layer(layer))
                    .with_graceful_shutdown(stop)
                    .await
                    .map(|()| ShutdownReport::default())
            })
        } else {
            tokio::spawn(
                axum_longpoll::serve(listener, app)
                    .layer(layer)
                    .config(config)
                    .with_graceful_shutdown(stop)
                    .into_future(),
            )
        };
        Self {
            addr,
            signal,
            stats,
            in_flight,
            task: Some(task),
        }
    }

    async fn new(app: Router, layer: DisconnectLayer, config: ServeConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, app, layer, config)
    }

    /// Sends the shutdown signal.
    fn shutdown(&self) {
        self.signal.cancel();
    }

    /// Waits (hang guard) for the serve future to return.
    async fn returned(&mut self) -> ShutdownReport {
        let task = self.task.take().expect("joined once");
        tokio::time::timeout(IO_GUARD, task)
            .await
            .expect("serving did not return: the shutdown hangs")
            .unwrap()
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn ok() -> &'static str {
    "ok"
}

/// A handler that reads its own body.
async fn echo(body: Bytes) -> Bytes {
    body
}

async fn poll(State(log): State<Log>, resume: Resume, lp: LongPoll) -> Response {
    lp.serve(log.reader(resume)).await
}

async fn stream(State(log): State<Log>, resume: Resume, s: Streaming) -> Response {
    s.ndjson(log.reader(resume))
}

async fn ws(State(log): State<Log>, resume: Resume, ws: LiveSocket) -> Response {
    ws.serve(log.reader(resume), |_| Ok(()))
}

/// A handler that ignores the shutdown: it holds phase (a) until the
/// drain deadline.
async fn stubborn(token: DisconnectToken) -> &'static str {
    token.cancelled().await;
    "gone"
}

fn app(log: &Log) -> Router {
    Router::new()
        .route("/ok", get(ok))
        .route("/echo", post(echo))
        .route("/poll", get(poll).post(poll))
        .route("/stream", get(stream))
        .route("/ws", get(ws))
        .route("/stubborn", get(stubborn))
        .route("/ready", get(serve::ready))
        .with_state(log.clone())
}

fn short_deadlines() -> ServeConfig {
    ServeConfig::new()
        .header_read_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_millis(400))
        .body_read_timeout(Some(Duration::from_millis(400)))
}

/// Reads until the server closes (EOF or reset); panics after the guard.
async fn closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("{what}: the server did not close the connection"),
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Checks that clients are served meanwhile.
async fn others_are_served(addr: SocketAddr) {
    for _ in 0..3 {
        let res = raw_get(addr, "/ok").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text(), "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first line the server sends, whatever it is (a `100 Continue`
/// included).
async fn first_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = tokio::time::timeout(IO_GUARD, stream.read(&mut byte))
            .await
            .expect("no answer")
            .unwrap();
        assert_eq!(n, 1, "closed before a whole line: {line:?}");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

// ---------------------------------------------------------------------------
// Deadlines on every phase of a connection
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_request_head_and_a_silent_connection_are_closed_while_others_are_served() {
    let log = Log::new(16);
    let server = Served::new(app(&log), DisconnectLayer::new(), short_deadlines()).await;

    // Slowloris: a head that never ends, one header line at a time.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let (mut slow_read, mut slow_write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow_write
                .write_all(format!("x-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    // And one that connects and sends nothing.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();

    others_are_served(server.addr).await;
    let mut buf = Vec::new();
    tokio::time::timeout(IO_GUARD, slow_read.read_to_end(&mut buf))
        .await
        .expect("slowloris: the server did not close the connection")
        .ok();
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "the slow head was answered: {buf:?}"
    );
    closed_by_server(&mut silent, "a connection that sends nothing").await;
    trickle.abort();
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_while_others_are_served() {
    let log = Log::new(16);
    let server = Served::new(app(&log), DisconnectLayer::new(), short_deadlines()).await;
    let mut idle = RawConn::connect(server.addr).await;
    idle.get("/ok").await;
    assert_eq!(idle.read_response().await.status(), 200);
    others_are_served(server.addr).await;
    closed_by_server(&mut idle.stream, "an idle keep-alive connection").await;
}

#[tokio::test]
async fn an_idle_http2_connection_gets_goaway_and_is_closed() {
    let log = Log::new(16);
    let server = Served::new(app(&log), DisconnectLayer::new(), short_deadlines()).await;
    let mut h2 = RawH2::connect(server.addr).await;
    h2.get(1, "/ok").await;
    let frames = h2.frames_until_eof().await;
    assert!(
        frames.iter().any(|f| f.kind == HEADERS && f.stream == 1),
        "the request was answered: {frames:?}"
    );
    assert!(
        frames.iter().any(|f| f.kind == GOAWAY),
        "the idle connection was closed with GOAWAY: {frames:?}"
    );
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_dropped_with_its_parked_request() {
    let log = Log::new(16);
    let config = ServeConfig::new().http2_keep_alive(Some((
        Duration::from_millis(200),
        Duration::from_millis(200),
    )));
    let server = Served::new(app(&log), DisconnectLayer::new(), config).await;
    // A parked long-poll on a connection whose client then reads nothing
    // and so acknowledges no PING: not idle (a request is in progress),
    // only the keep-alive PING finds it.
    let mut h2 = RawH2::connect(server.addr).await;
    h2.get(1, "/poll?timeout=60").await;
    wait_for_stats(&server.stats, "parked", |s| s.parked == 1).await;
    others_are_served(server.addr).await;
    wait_for_stats(&server.stats, "the parked poll dropped", |s| {
        s.parked == 0 && s.disconnected == 1
    })
    .await;
    closed_by_server(&mut h2.stream, "an HTTP/2 peer that acknowledges no PING").await;
}

#[tokio::test]
async fn a_stalled_body_is_ended_for_a_long_poll_and_for_a_handler_that_reads_it() {
    let log = Log::new(16);
    let server = Served::new(app(&log), DisconnectLayer::new(), short_deadlines()).await;

    // A long-poll with a long wait whose body stops after 10 of 100 bytes.
    let mut lp = RawConn::connect(server.addr).await;
    lp.send(
        b"POST /poll?timeout=60 HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789",
    )
    .await;
    // A handler that reads its own body (the `Bytes` extractor).
    let mut own = RawConn::connect(server.addr).await;
    own.send(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789")
        .await;

    others_are_served(server.addr).await;
    let res = lp.read_response().await;
    assert_eq!(res.status(), 400, "{}", res.text());
    assert!(res.text().contains("stalled"), "{}", res.text());
    let res = own.read_response().await;
    assert_eq!(res.status(), 400, "{}", res.text());
    assert!(res.text().contains("stalled"), "{}", res.text());
    closed_by_server(&mut lp.stream, "the long-poll with a stalled body").await;
    closed_by_server(&mut own.stream, "the handler's stalled body").await;
}

#[tokio::test]
async fn an_announced_oversized_body_gets_413_before_any_100_continue() {
    let log = Log::new(16);
    let config = ServeConfig::new().max_request_body(Some(64 * 1024));
    let server = Served::new(app(&log), DisconnectLayer::new(), config).await;

    let mut expect = TcpStream::connect(server.addr).await.unwrap();
    expect
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 1000000000\r\n\
              expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let line = first_line(&mut expect).await;
    assert!(line.starts_with("HTTP/1.1 413"), "first line: {line:?}");
    closed_by_server(&mut expect, "after the 413").await;

    // Without `Expect`: answered before the body is sent.
    let mut plain = RawConn::connect(server.addr).await;
    plain
        .send(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 1000000000\r\n\r\n")
        .await;
    let res = plain.read_response().await;
    assert_eq!(res.status(), 413);
    assert!(res.text().contains("1000000000"), "{}", res.text());

    // A body within the limit is read as usual.
    let mut fine = RawConn::connect(server.addr).await;
    fine.send(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello")
        .await;
    let res = fine.read_response().await;
    assert_eq!((res.status(), res.text().as_str()), (200, "hello"));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_from_the_extractor() {
    let log = Log::new(16);
    let config = ServeConfig::new().max_request_body(Some(16));
    let server = Served::new(app(&log), DisconnectLayer::new(), config).await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(
        b"POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n\
          20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(conn.read_response().await.status(), 413);
}

// ---------------------------------------------------------------------------
// The connection cap
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_the_connection_cap_a_client_gets_503_at_once() {
    let log = Log::new(16);
    let config = ServeConfig::new().max_connections(Some(2));
    let mut server = Served::new(app(&log), DisconnectLayer::new(), config).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = RawConn::connect(server.addr).await;
        conn.get("/ok").await;
        assert_eq!(conn.read_response().await.status(), 200);
        held.push(conn);
    }
    // The third is answered without sending anything.
    let mut third = RawConn::connect(server.addr).await;
    let res = third.read_response().await;
    assert_eq!(res.status(), 503, "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(res.header("connection"), Some("close"));

    // A place comes free: served again.
    held.pop().unwrap().close_and_wait_server().await;
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    loop {
        let res = raw_get(server.addr, "/ok").await;
        if res.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown();
    assert!(server.returned().await.refused >= 1);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn during_the_drain_readiness_is_503_and_new_connections_are_still_answered() {
    let log = Log::new(16);
    // Long enough that the requests below land in phase (a) on a busy
    // machine: a stubborn handler holds it open until the deadline.
    let config = ServeConfig::new()
        .drain_timeout(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(6));
    let mut server = Served::new(app(&log), DisconnectLayer::new(), config).await;
    assert_eq!(raw_get(server.addr, "/ready").await.status(), 200);

    // Holds phase (a) open until its deadline.
    let mut stubborn = RawConn::connect(server.addr).await;
    stubborn.get("/stubborn").await;
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    while server.in_flight.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.shutdown();
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    let ready = loop {
        let res = raw_get(server.addr, "/ready").await;
        if res.status() != 200 {
            break res;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness never turned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.header("retry-after"), Some("1"));
    assert_eq!(ready.header("connection"), Some("close"));
    // A new long-poll during the drain: answered at once.
    let res = raw_get(server.addr, "/poll?timeout=60").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.header("connection"), Some("close"));

    let report = server.returned().await;
    assert!(!report.drained, "{report}");
    assert_eq!(report.in_flight, 1, "{report}");
}

#[tokio::test]
async fn every_parked_http2_answer_arrives_before_the_goaway() {
    let log = Log::new(16);
    let mut server = Served::new(app(&log), DisconnectLayer::new(), ServeConfig::new()).await;
    let mut h2 = RawH2::connect(server.addr).await;
    let streams = [1, 3, 5, 7, 9];
    for id in streams {
        h2.get(id, "/poll?timeout=60").await;
    }
    wait_for_stats(&server.stats, "all parked", |s| s.parked == 5).await;

    server.shutdown();
    let frames = h2.frames_until_eof().await;
    let goaway = frames
        .iter()
        .position(|f| f.kind == GOAWAY)
        .unwrap_or_else(|| panic!("no GOAWAY: {frames:?}"));
    for id in streams {
        let answer = frames
            .iter()
            .position(|f| f.kind == HEADERS && f.stream == id)
            .unwrap_or_else(|| panic!("stream {id} was never answered: {frames:?}"));
        assert!(
            answer < goaway,
            "stream {id} was answered after the GOAWAY: {frames:?}"
        );
    }
    let report = server.returned().await;
    assert!(report.drained, "{report}");
    assert_eq!(report.in_flight, 5, "{report}");
}

#[tokio::test]
async fn shutdown_returns_by_its_hard_deadline_whatever_the_clients_do() {
    let log = Log::new(100_000);
    let layer = DisconnectLayer::new().config(WsConfig::new().ping_interval(None));
    let config = ServeConfig::new()
        .drain_timeout(Duration::from_millis(500))
        .shutdown_timeout(Duration::from_millis(1500))
        .http2_keep_alive(None);
    let mut server = Served::on(
        common::small_send_buffer_listener(),
        app(&log),
        layer,
        config,
    );

    // An idle HTTP/1.1 keep-alive connection.
    let mut idle = RawConn::connect(server.addr).await;
    idle.get("/ok").await;
    assert_eq!(idle.read_response().await.status(), 200);
    // An HTTP/2 connection silent after its preface: it will never
    // acknowledge the GOAWAY's PING.
    let mut silent_h2 = TcpStream::connect(server.addr).await.unwrap();
    silent_h2.write_all(PREFACE).await.unwrap();
    silent_h2
        .write_all(&frame(SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    // A reader that stopped in the middle of a stream.
    let mut stalled = small_recv_buffer_conn(server.addr).await;
    stalled.get("/stream").await;
    assert_eq!(stalled.read_head().await.status, 200);
    // A handler that ignores the shutdown.
    let mut stubborn = RawConn::connect(server.addr).await;
    stubborn.get("/stubborn").await;
    // A WebSocket peer that will never answer the close.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(
            b"GET /ws HTTP/1.1\r\nhost: test\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
              sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let line = first_line(&mut socket).await;
    assert!(line.starts_with("HTTP/1.1 101"), "{line:?}");
    wait_for_stats(&server.stats, "all in place", |s| {
        s.streaming == 1 && s.websockets == 1
    })
    .await;
    // Far more than the socket buffers of the stream and the WebSocket hold.
    for i in 0..20_000 {
        log.publish_now(i);
    }
    // A parked long-poll: answered 503 in phase (a).
    let mut parked = RawConn::connect(server.addr).await;
    parked.get("/poll?timeout=60").await;
    wait_for_stats(&server.stats, "parked", |s| s.parked == 1).await;

    server.shutdown();
    let res = parked.read_response().await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.header("connection"), Some("close"));
    let report = server.returned().await;
    assert!(!report.drained, "{report}");
    // At least the handler that ignores the shutdown and the WebSocket
    // whose close frame cannot be written (the stalled stream may still fit
    // its final frame into the socket buffers; the silent HTTP/2
    // connection is dropped a second after its GOAWAY).
    assert!(report.connections_cut >= 2, "{report}");
    assert!(report.in_flight_cut >= 2, "{report}");
    for (stream, what) in [
        (
            &mut stubborn.stream,
            "the handler that ignores the shutdown",
        ),
        (&mut idle.stream, "the idle connection"),
        (&mut silent_h2, "the silent HTTP/2 connection"),
        (&mut stalled.stream, "the stalled reader"),
        (&mut socket, "the WebSocket"),
    ] {
        closed_by_server(stream, what).await;
    }
}

#[tokio::test]
async fn a_silent_http2_connection_is_dropped_soon_after_its_goaway_not_at_the_hard_deadline() {
    let log = Log::new(16);
    let config = ServeConfig::new()
        .shutdown_timeout(Duration::from_secs(60))
        .http2_keep_alive(None);
    let mut server = Served::new(app(&log), DisconnectLayer::new(), config).await;
    // Silent after its preface: it will never acknowledge the PING that
    // follows the GOAWAY.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    silent.write_all(PREFACE).await.unwrap();
    silent.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // Served once, then silent.
    let mut served = RawH2::connect(server.addr).await;
    served.get(1, "/ok").await;
    let _ = served.read_frame().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.shutdown();
    let report = server.returned().await;
    assert_eq!(
        (report.connections, report.connections_cut),
        (2, 0),
        "{report}"
    );
    closed_by_server(&mut silent, "the silent HTTP/2 connection").await;
    closed_by_server(&mut served.stream, "the HTTP/2 connection served once").await;
}

// ---------------------------------------------------------------------------
// The demo, served as its main.rs serves it
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_demo_refuses_an_announced_oversized_publish_before_100_continue_and_turns_unready() {
    let log = EventLog::<std::sync::Arc<str>>::new(16);
    let (router, layer) = demo::durable_routes(
        log,
        demo::memory_streams(),
        demo::memory_durable(Duration::from_secs(1)),
        &demo::Origins::Loopback,
        &demo::TrustedProxies::default(),
        CancellationToken::new(),
    );
    let mut server = Served::new(router, layer, ServeConfig::new()).await;

    let mut publish = TcpStream::connect(server.addr).await.unwrap();
    publish
        .write_all(
            b"POST /publish HTTP/1.1\r\nhost: test\r\ncontent-length: 100000\r\n\
              expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // Over the demo's 64 KiB, under the server's 2 MiB: the handler's own
    // refusal, before it reads the body.
    let line = first_line(&mut publish).await;
    assert!(line.starts_with("HTTP/1.1 413"), "first line: {line:?}");
    let mut rest = Vec::new();
    tokio::time::timeout(IO_GUARD, publish.read_to_end(&mut rest))
        .await
        .expect("the connection stayed open after the 413")
        .unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("publish body too large"), "{rest}");
    // Within the limit: published.
    let mut fine = RawConn::connect(server.addr).await;
    fine.send(b"POST /publish HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello")
        .await;
    let res = fine.read_response().await;
    assert_eq!(res.status(), 200, "{}", res.text());

    assert_eq!(raw_get(server.addr, "/ready").await.status(), 200);
    let mut parked = RawConn::connect(server.addr).await;
    parked.get("/poll?timeout=60").await;
    wait_for_stats(&server.stats, "parked", |s| s.parked == 1).await;
    server.shutdown();
    let res = parked.read_response().await;
    assert_eq!(res.status(), 503);
    let report = server.returned().await;
    assert!(report.drained, "{report}");
}

// ---------------------------------------------------------------------------
// HTTP/2 by hand: frames in the order they arrive
// ---------------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;

struct RawFrame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl std::fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            0x0 => "DATA",
            HEADERS => "HEADERS",
            0x3 => "RST_STREAM",
            SETTINGS => "SETTINGS",
            PING => "PING",
            GOAWAY => "GOAWAY",
            0x8 => "WINDOW_UPDATE",
            _ => "other",
        };
        write!(f, "{kind}({})", self.stream)
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// An HTTP/2 client with prior knowledge that writes frames by hand and
/// reads them in order.
struct RawH2 {
    stream: TcpStream,
}

impl RawH2 {
    async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(PREFACE).await.unwrap();
        stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        Self { stream }
    }

    /// `GET path` on stream `id` (headers in HPACK literals, no Huffman).
    async fn get(&mut self, id: u32, path: &str) {
        let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
        for (index, value) in [(4u8, path), (1, "test")] {
            // Literal without indexing, indexed name (:path, :authority).
            block.push(index);
            block.push(u8::try_from(value.len()).unwrap());
            block.extend(value.as_bytes());
        }
        // END_STREAM | END_HEADERS
        let headers = frame(HEADERS, 0x5, id, &block);
        self.stream.write_all(&headers).await.unwrap();
    }

    async fn read_frame(&mut self) -> Option<RawFrame> {
        let mut head = [0u8; 9];
        let read = tokio::time::timeout(IO_GUARD, self.stream.read_exact(&mut head))
            .await
            .expect("HTTP/2: no frame and no close");
        if read.is_err() {
            return None;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some(RawFrame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// Every frame until the server closes, acknowledging its SETTINGS and
    /// PINGs as a well-behaved client does.
    async fn frames_until_eof(&mut self) -> Vec<RawFrame> {
        let mut frames = Vec::new();
        while let Some(f) = self.read_frame().await {
            let ack = match f.kind {
                SETTINGS if f.flags & 1 == 0 => Some(frame(SETTINGS, 1, 0, &[])),
                PING if f.flags & 1 == 0 => Some(frame(PING, 1, 0, &f.payload)),
                _ => None,
            };
            if let Some(ack) = ack {
                // The server may have closed already.
                let _ = self.stream.write_all(&ack).await;
            }
            frames.push(f);
        }
        frames
    }
}

#[test]
fn public_types_are_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync_clone::<ServeConfig>();
    send_sync_clone::<ShutdownReport>();
    send_sync_clone::<serve::BodyTimeout>();
    send::<serve::Serve>();
    send::<serve::ServeFuture>();
    send_sync::<serve::Serve>();
}
