#![allow(clippy::unwrap_used)]
//! End-to-end tests of the cursor loop over real sockets: a router like the
//! demo's (`POST /publish`, `GET /poll` with `Resume` + `LongPoll` +
//! `LongPoll::serve`, behind `DisconnectLayer`), served by `axum::serve` on
//! `127.0.0.1:0`, and clients that speak raw HTTP/1.1 over `TcpStream`.

mod common;

use common::PublishNow as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::event_log::{Cursor, EventLog, Resume};
use axum_longpoll::{DisconnectLayer, LongPoll, Stats};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

type Log = EventLog<Arc<str>>;

async fn publish(State(log): State<Log>, body: String) -> Json<Value> {
    let id = log.publish_now(Arc::from(body));
    Json(json!({ "id": id }))
}

async fn poll(State(log): State<Log>, resume: Resume, lp: LongPoll) -> Response {
    lp.serve(log.reader(resume)).await
}

struct Server {
    addr: SocketAddr,
    log: Log,
    stats: Stats,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(log: Log) -> Server {
    let layer = DisconnectLayer::new();
    let stats = layer.stats();
    let app = Router::new()
        .route("/publish", post(publish))
        .route("/poll", get(poll))
        .with_state(log.clone())
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        log,
        stats,
        task,
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The `data` of each event of a `200` long-poll answer.
    fn data(&self) -> Vec<String> {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        self.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status: u16 = parts.next().unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let body = raw[end + 4..].to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    if let Some(len) = reply.header("content-length") {
        assert_eq!(
            reply.body.len(),
            len.parse::<usize>().unwrap(),
            "body length vs content-length: {reply:?}"
        );
    } else {
        assert!(
            reply.header("transfer-encoding").is_none(),
            "this client does not decode chunked bodies: {reply:?}"
        );
    }
    reply
}

/// Sends one request on a fresh connection and reads the answer to EOF.
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let bytes = request_bytes(method, target, headers, body);
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_reply(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s to {method} {target}"))
}

async fn get_with(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", target, headers, b"").await
}

async fn get_path(addr: SocketAddr, target: &str) -> Reply {
    get_with(addr, target, &[]).await
}

/// Publishes over HTTP; returns the event's cursor.
async fn publish_http(addr: SocketAddr, text: &str) -> String {
    let reply = request(addr, "POST", "/publish", &[], text.as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn cursor_str(c: Cursor) -> String {
    c.to_string()
}

/// Asserts a `410` with the given reason; returns its JSON body.
fn assert_gone(reply: &Reply, reason: &str, requested: &str) -> Value {
    assert_eq!(reply.status, 410, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{reply:?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["error"], "cursor_gone", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    // The same cursor, whatever padding the request gave its position.
    let echoed = body["requested"]
        .as_str()
        .and_then(|c| c.parse::<Cursor>().ok());
    assert_eq!(echoed, requested.parse::<Cursor>().ok(), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

// ---------------------------------------------------------------------------
// 1. Zero loss under disconnects
// ---------------------------------------------------------------------------

const EVENTS: usize = 5_000;
const CLIENTS: u64 = 50;

#[derive(Default)]
struct ClientReport {
    seen: Vec<String>,
    normal: u32,
    fin: u32,
    rst: u32,
    /// Abandons made before any byte of the answer had arrived (mid-poll).
    fin_early: u32,
    rst_early: u32,
}

/// Sends a request and leaves before (or while) the answer comes: drops the
/// socket after `wait_ms`, with a FIN or (linger 0) an RST. Returns whether
/// no byte of the answer had arrived by then (the poll was still parked, or
/// not yet answered).
async fn abandon(addr: SocketAddr, target: &str, rst: bool, wait_ms: u64) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&request_bytes("GET", target, &[], b""))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let sock = socket2::SockRef::from(&stream);
    // Non-blocking (tokio's sockets are): WouldBlock means nothing arrived.
    let early = matches!(
        sock.peek(&mut [std::mem::MaybeUninit::uninit(); 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    if rst {
        sock.set_linger(Some(Duration::ZERO)).unwrap();
    }
    drop(stream);
    early
}

async fn lossy_client(addr: SocketAddr, seed: u64, epoch: u64) -> ClientReport {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = ClientReport::default();
    // None until the first answer: start with `?from=oldest`, so that even a
    // client whose first requests are all abandoned sees every event.
    let mut cursor: Option<String> = None;
    let last = (EVENTS - 1).to_string();
    while report.seen.last() != Some(&last) {
        let target = match &cursor {
            None => "/poll?timeout=1&from=oldest".to_owned(),
            Some(c) => format!("/poll?timeout=1&cursor={c}"),
        };
        match rng.u8(0..10) {
            0..=1 => {
                let early = abandon(addr, &target, false, rng.u64(0..=20)).await;
                report.fin += 1;
                report.fin_early += u32::from(early);
            }
            2..=3 => {
                let early = abandon(addr, &target, true, rng.u64(0..=20)).await;
                report.rst += 1;
                report.rst_early += u32::from(early);
            }
            _ => {
                let reply = get_path(addr, &target).await;
                report.normal += 1;
                match reply.status {
                    200 => {
                        let body = reply.json();
                        let next = body["cursor"].as_str().unwrap().to_owned();
                        assert_eq!(reply.header("cursor"), Some(next.as_str()), "{reply:?}");
                        let events = body["events"].as_array().unwrap();
                        assert!(!events.is_empty(), "200 without events: {body}");
                        for ev in events {
                            let data = ev["data"].as_str().unwrap();
                            // Event n has position n + 1 in a fresh log.
                            let n: u64 = data.parse().unwrap();
                            assert_eq!(ev["id"], format!("{epoch:016x}-{:020}", n + 1), "{ev}");
                            report.seen.push(data.to_owned());
                        }
                        assert_eq!(events.last().unwrap()["id"], next.as_str());
                        cursor = Some(next);
                    }
                    204 => {
                        let next = reply
                            .header("cursor")
                            .unwrap_or_else(|| panic!("204 without cursor: {reply:?}"));
                        cursor = Some(next.to_owned());
                    }
                    _ => panic!("client {seed}: unexpected answer {reply:?}"),
                }
            }
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_event_lost_or_duplicated_under_fin_and_rst_disconnects() {
    let server = serve(EventLog::new(8192)).await;
    let log = server.log.clone();
    let addr = server.addr;
    let epoch = log.head().epoch();

    let run = async {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| tokio::spawn(lossy_client(addr, 1000 + i, epoch)))
            .collect();
        let publisher = tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(7);
            let mut n = 0;
            while n < EVENTS {
                // Bursts with pauses long enough that clients catch up and
                // park, so that many abandons happen mid-poll.
                let burst = rng.usize(1..=50).min(EVENTS - n);
                for _ in 0..burst {
                    log.publish_now(Arc::from(n.to_string()));
                    n += 1;
                    if rng.u8(0..4) == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(2..=20))).await;
            }
        });
        publisher.await.unwrap();
        let mut reports = Vec::new();
        for c in clients {
            reports.push(c.await.unwrap());
        }
        reports
    };
    let reports = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("hang guard: clients did not finish within 120 s");

    let expected: Vec<String> = (0..EVENTS).map(|n| n.to_string()).collect();
    for (i, r) in reports.iter().enumerate() {
        if r.seen != expected {
            let at = r
                .seen
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(r.seen.len().min(expected.len()));
            panic!(
                "client {i}: {} events seen, first difference at index {at}: got {:?}, expected {:?}",
                r.seen.len(),
                r.seen.get(at.saturating_sub(2)..(at + 3).min(r.seen.len())),
                expected.get(at.saturating_sub(2)..(at + 3).min(expected.len())),
            );
        }
    }

    let normal: u32 = reports.iter().map(|r| r.normal).sum();
    let fin: u32 = reports.iter().map(|r| r.fin).sum();
    let rst: u32 = reports.iter().map(|r| r.rst).sum();
    let fin_early: u32 = reports.iter().map(|r| r.fin_early).sum();
    let rst_early: u32 = reports.iter().map(|r| r.rst_early).sum();

    // Every parked poll ends: by disconnect detection, or by its 1 s timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let snapshot = loop {
        let s = server.stats.snapshot();
        if s.parked == 0 || tokio::time::Instant::now() >= deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "{CLIENTS} clients x {EVENTS} events: {normal} requests read to the end, \
         abandoned {fin} with FIN ({fin_early} before any answer byte) and {rst} with RST \
         ({rst_early} before any answer byte); stats {snapshot:?}"
    );
    assert_eq!(snapshot.parked, 0, "long-polls still parked: {snapshot:?}");
    assert!(fin >= 10, "too few FIN abandons to mean anything: {fin}");
    assert!(rst >= 10, "too few RST abandons to mean anything: {rst}");
    assert!(
        fin_early >= 5 && rst_early >= 5,
        "too few mid-poll abandons: FIN {fin_early}, RST {rst_early}"
    );
    // The server saw clients leave while parked (the layer's claim), not
    // only answers written into closed sockets.
    assert!(
        snapshot.disconnected >= 5,
        "the server counted too few disconnected long-polls: {snapshot:?}"
    );
}

// ---------------------------------------------------------------------------
// 2–4. 410 Gone: evicted, epoch, ahead
// ---------------------------------------------------------------------------

#[tokio::test]
async fn evicted_cursor_is_410_with_a_restart_cursor_that_works() {
    let server = serve(EventLog::new(4)).await;
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(publish_http(server.addr, &n.to_string()).await);
    }
    // Retained: events 7..=10. The cursor of event 1 is evicted.
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={}", ids[0])).await;
    let body = assert_gone(&reply, "evicted", &ids[0]);
    // The restart cursor is the one before the oldest retained event (6).
    assert_eq!(body["cursor"], ids[5], "{body}");
    assert_eq!(body["cursor"], cursor_str(server.log.oldest()));

    let restart = body["cursor"].as_str().unwrap();
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={restart}")).await;
    assert_eq!(reply.data(), ["7", "8", "9", "10"]);
    assert_eq!(reply.json()["cursor"], ids[9]);

    // The cursor just before the oldest retained event is still served; the
    // one before it is not.
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={}", ids[6])).await;
    assert_eq!(reply.data(), ["8", "9", "10"]);
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={}", ids[4])).await;
    assert_gone(&reply, "evicted", &ids[4]);
}

#[tokio::test]
async fn cursor_from_before_a_restart_is_410_epoch() {
    let a = serve(EventLog::new(16)).await;
    let b = serve(EventLog::new(16)).await;
    assert_ne!(a.log.head().epoch(), b.log.head().epoch());

    let from_a = publish_http(a.addr, "a1").await;
    publish_http(a.addr, "a2").await;
    publish_http(b.addr, "b1").await;
    publish_http(b.addr, "b2").await;

    // Sanity: A serves it.
    let reply = get_path(a.addr, &format!("/poll?timeout=0&cursor={from_a}")).await;
    assert_eq!(reply.data(), ["a2"]);

    let reply = get_path(b.addr, &format!("/poll?timeout=0&cursor={from_a}")).await;
    let body = assert_gone(&reply, "epoch", &from_a);
    let restart = body["cursor"].as_str().unwrap();
    assert_eq!(restart, cursor_str(b.log.oldest()));
    let reply = get_path(b.addr, &format!("/poll?timeout=0&cursor={restart}")).await;
    assert_eq!(reply.data(), ["b1", "b2"]);
}

#[tokio::test]
async fn cursor_ahead_of_the_head_is_410_ahead() {
    let server = serve(EventLog::new(16)).await;
    let mut last = String::new();
    for n in 1..=3 {
        last = publish_http(server.addr, &n.to_string()).await;
    }
    assert_eq!(last, cursor_str(server.log.head()));
    let (epoch, position) = last.split_once('-').unwrap();
    let ahead = format!("{epoch}-{}", position.parse::<u64>().unwrap() + 5);

    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={ahead}")).await;
    let body = assert_gone(&reply, "ahead", &ahead);
    let restart = body["cursor"].as_str().unwrap();
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={restart}")).await;
    assert_eq!(reply.data(), ["1", "2", "3"]);

    // The head itself is not ahead: a timeout with the same cursor.
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={last}")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("cursor"), Some(last.as_str()));
}

// ---------------------------------------------------------------------------
// 5. Malformed cursors → 400
// ---------------------------------------------------------------------------

/// Asserts a `400` whose text contains every needle and echoes at most a
/// part of the value.
async fn expect_400(addr: SocketAddr, target: &str, headers: &[(&str, &str)], needles: &[&str]) {
    let shown = &target[..target.len().min(80)];
    let reply = get_with(addr, target, headers).await;
    assert_eq!(reply.status, 400, "{shown} {headers:?}: {reply:?}");
    let text = reply.text();
    for needle in needles {
        assert!(
            text.contains(needle),
            "{shown} {headers:?}: {text:?} lacks {needle:?}"
        );
    }
    assert!(text.len() < 1024, "{shown}: answer of {} bytes", text.len());
}

#[tokio::test]
async fn malformed_cursor_inputs_are_400_naming_the_parameter() {
    let server = serve(EventLog::new(16)).await;
    server.log.publish_now(Arc::from("x"));
    let valid = cursor_str(server.log.head());

    let addr = server.addr;
    let q = "/poll?timeout=0";
    expect_400(
        addr,
        &format!("{q}&cursor=garbage"),
        &[],
        &["`cursor`", "garbage"],
    )
    .await;
    expect_400(addr, &format!("{q}&cursor="), &[], &["`cursor`"]).await;
    let long = format!("{}-{}", &valid[..16], "1".repeat(10 * 1024));
    expect_400(addr, &format!("{q}&cursor={long}"), &[], &["`cursor`"]).await;
    expect_400(addr, &format!("{q}&cursor=%FF%FE"), &[], &["`cursor`"]).await;
    let needles = ["`last_event_id`", "zzz"];
    expect_400(addr, &format!("{q}&last_event_id=zzz"), &[], &needles).await;
    let nope = [("Last-Event-ID", "nope")];
    expect_400(addr, q, &nope, &["`Last-Event-ID`", "nope"]).await;
    // A malformed `Last-Event-ID` is not masked by a valid `?cursor=`.
    expect_400(
        addr,
        &format!("{q}&cursor={valid}"),
        &nope,
        &["`Last-Event-ID`"],
    )
    .await;
    let twice = ["`cursor`", "more than once"];
    expect_400(addr, &format!("{q}&cursor=a&cursor=b"), &[], &twice).await;
    expect_400(
        addr,
        &format!("{q}&cursor={valid}&cursor={valid}"),
        &[],
        &twice,
    )
    .await;
    let needles = ["`from`", "yesterday", "`now`", "`oldest`"];
    expect_400(addr, &format!("{q}&from=yesterday"), &[], &needles).await;

    // The server still serves a normal poll.
    let reply = get_path(server.addr, "/poll?timeout=0&from=oldest").await;
    assert_eq!(reply.data(), ["x"]);
    let reply = get_path(server.addr, &format!("/poll?timeout=0&cursor={valid}")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
}

// ---------------------------------------------------------------------------
// 6. Cursor sources and precedence
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cursor_sources_and_precedence() {
    let server = serve(EventLog::new(16)).await;
    let ids: Vec<String> = (1..=5)
        .map(|n| cursor_str(server.log.publish_now(Arc::from(n.to_string()))))
        .collect();
    let addr = server.addr;

    // `Last-Event-ID` beats `?cursor=` and `?last_event_id=`.
    let reply = get_with(
        addr,
        &format!("/poll?timeout=0&cursor={}&last_event_id={}", ids[0], ids[1]),
        &[("Last-Event-ID", &ids[2])],
    )
    .await;
    assert_eq!(reply.data(), ["4", "5"]);
    // `?cursor=` beats `?last_event_id=`.
    let reply = get_path(
        addr,
        &format!("/poll?timeout=0&cursor={}&last_event_id={}", ids[0], ids[1]),
    )
    .await;
    assert_eq!(reply.data(), ["2", "3", "4", "5"]);
    // `?last_event_id=` alone.
    let reply = get_path(addr, &format!("/poll?timeout=0&last_event_id={}", ids[1])).await;
    assert_eq!(reply.data(), ["3", "4", "5"]);
    // An empty `Last-Event-ID` counts as absent.
    let reply = get_with(
        addr,
        &format!("/poll?timeout=0&cursor={}", ids[3]),
        &[("Last-Event-ID", "")],
    )
    .await;
    assert_eq!(reply.data(), ["5"]);
    // A cursor beats `?from=`.
    let reply = get_path(
        addr,
        &format!("/poll?timeout=0&from=oldest&cursor={}", ids[3]),
    )
    .await;
    assert_eq!(reply.data(), ["5"]);

    // No cursor: from now.
    let head = cursor_str(server.log.head());
    assert_eq!(head, ids[4]);
    for target in ["/poll?timeout=0", "/poll?timeout=0&from=now"] {
        let reply = get_path(addr, target).await;
        assert_eq!(reply.status, 204, "{target}: {reply:?}");
        assert_eq!(reply.header("cursor"), Some(head.as_str()), "{target}");
    }
    // `?from=oldest`: everything retained.
    let reply = get_path(addr, "/poll?timeout=0&from=oldest").await;
    assert_eq!(reply.data(), ["1", "2", "3", "4", "5"]);
    assert_eq!(reply.json()["cursor"], head);

    // "From now" waits for the next event (a parked poll woken by a publish).
    let waiting = tokio::spawn(async move { get_path(addr, "/poll?timeout=10").await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.stats.snapshot().parked == 0 {
        assert!(tokio::time::Instant::now() < deadline, "poll never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let six = publish_http(addr, "6").await;
    let reply = waiting.await.unwrap();
    assert_eq!(reply.data(), ["6"]);
    assert_eq!(reply.json()["events"][0]["id"], six);
}

// ---------------------------------------------------------------------------
// 7. Every long-poll answer carries the next cursor
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_answer_carries_the_next_cursor() {
    let server = serve(EventLog::new(16)).await;
    let addr = server.addr;

    // 204 on an empty log: the header, with position 0.
    let reply = get_path(addr, "/poll?timeout=0").await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let c0 = reply.header("cursor").unwrap().to_owned();
    assert_eq!(c0, cursor_str(server.log.head()));
    assert!(c0.ends_with("-00000000000000000000"), "{c0}");

    // A short real wait that times out: 204 with the cursor it was given.
    let reply = get_path(addr, &format!("/poll?timeout=0.2&cursor={c0}")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("cursor"), Some(c0.as_str()));

    let first = publish_http(addr, "one").await;
    let second = publish_http(addr, "two").await;

    // 200: the cursor in the body and in the header, equal to the last id.
    let reply = get_path(addr, &format!("/poll?timeout=5&cursor={c0}")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(
        body,
        json!({
            "events": [{"id": first, "data": "one"}, {"id": second, "data": "two"}],
            "cursor": second,
        })
    );
    assert_eq!(reply.header("cursor"), Some(second.as_str()));

    // Following the cursor: 204 carrying it again.
    let reply = get_path(addr, &format!("/poll?timeout=0&cursor={second}")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("cursor"), Some(second.as_str()));

    // The cursor loop continues with it.
    let third = publish_http(addr, "three").await;
    let reply = get_path(addr, &format!("/poll?timeout=0&cursor={second}")).await;
    assert_eq!(reply.data(), ["three"]);
    assert_eq!(reply.header("cursor"), Some(third.as_str()));
    assert_eq!(reply.json()["cursor"], third);
}
