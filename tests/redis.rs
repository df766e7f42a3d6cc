#![allow(clippy::unwrap_used)]
//! The Redis backend against a real `redis-server` (Debian's), started by
//! the test on a free port with a temporary directory: two instances of the
//! demo app, each with its own Redis log on the same key, served by
//! `axum::serve` on `127.0.0.1:0`, and clients that speak raw HTTP/1.1.
//!
//! Each instance runs in a Tokio runtime of its own on a thread of its own,
//! so "kill instance A" drops everything A had (its listener, connections,
//! handlers, log and reader task) as a crashed process would.
//!
//! Without `redis-server` the tests that need it are not run and are
//! reported `ignored (redis-server is not installed …)`, except under
//! `CI=true`, where that is a failure (`.ci/run` installs it): see
//! `tests/support/harness.rs`.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_longpoll::event_log::{EventLog, Redis};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Hang guard for one HTTP exchange.
const IO_GUARD: Duration = Duration::from_secs(15);
/// The reader's `XREAD BLOCK` in these tests: short, so `410 ahead` and
/// reconnects are quick.
const BLOCK: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// redis-server
// ---------------------------------------------------------------------------

/// What these tests ask of a server besides starting and stopping it.
impl RedisServer {
    /// Connections Redis has open now (`CLIENT LIST`, less the one asking).
    async fn clients(&self) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        list.lines().count() - 1
    }

    /// Closes every connection whose last command was `XREAD` (the readers
    /// of all logs), as a network cut between the readers and Redis would;
    /// returns how many.
    async fn cut_readers(&self) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        let readers: Vec<&str> = list
            .lines()
            .filter(|l| l.contains("cmd=xread"))
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .collect();
        for id in &readers {
            let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(*id)
                .query_async(&mut conn)
                .await;
        }
        readers.len()
    }

    async fn xlen(&self, key: &str) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------
// Instances of the demo app
// ---------------------------------------------------------------------------

async fn connect_log(url: &str, key: &str, capacity: usize) -> EventLog<Arc<str>, Redis> {
    EventLog::builder()
        .capacity(capacity)
        .redis(redis::Client::open(url).unwrap(), key)
        .block(BLOCK)
        .max_backoff(Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

/// The demo app on a Redis log, in a runtime and thread of its own.
struct Instance {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    async fn start(redis: &RedisServer, key: &str, capacity: usize) -> Self {
        let (url, key) = (redis.url(), key.to_owned());
        Self::spawn(move || async move {
            let log = connect_log(&url, &key, capacity).await;
            demo::router(log, CancellationToken::new())
        })
        .await
    }

    /// Serves the app `make` builds, in a runtime and thread of its own.
    async fn spawn<F, Fut>(make: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = axum::Router>,
    {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = make().await;
                // A backlog for a thousand clients connecting at once to a
                // one-thread server (the default 1024 overflows then).
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
                let listener = socket.listen(4096).unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                tokio::select! {
                    _ = axum::serve(listener, app) => {},
                    _ = stopped => {},
                }
            });
            // Dropping the runtime drops every task of this instance: the
            // connections, the handlers, the log and its reader.
            drop(rt);
        });
        let addr = ready_rx.await.expect("instance did not start");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Kills the instance: its runtime and everything in it is dropped.
    async fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 client (errors returned, not panicked: instances die here)
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// `(id, data)` of each event of a `200` long-poll answer.
    fn events(&self) -> Vec<(String, String)> {
        assert_eq!(self.status, 200, "{self:?}");
        self.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_owned(),
                    e["data"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn data(&self) -> Vec<String> {
        self.events().into_iter().map(|(_, d)| d).collect()
    }
}

async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> io::Result<Reply> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        parse(&raw)
    };
    tokio::time::timeout(IO_GUARD, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within {IO_GUARD:?} to {method} {target}"))
}

fn parse(raw: &[u8]) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head (connection closed early)"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

async fn get(addr: SocketAddr, target: &str) -> Reply {
    http(addr, "GET", target, b"").await.unwrap()
}

async fn publish_http(addr: SocketAddr, text: &str) -> Reply {
    http(addr, "POST", "/publish", text.as_bytes())
        .await
        .unwrap()
}

/// The head cursor of an instance: a `204` with a `Cursor` header.
async fn head(addr: SocketAddr) -> String {
    let reply = get(addr, "/poll?timeout=0").await;
    assert_eq!(reply.status, 204, "{reply:?}");
    reply.header("cursor").unwrap().to_owned()
}

async fn stats(addr: SocketAddr) -> Value {
    get(addr, "/stats").await.json()
}

/// Waits until `addr` serves new polls again (no `503`).
async fn until_ready(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = get(addr, "/poll?timeout=0").await;
        if reply.status != 503 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instance never recovered: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the instance has a parked long-poll.
async fn until_parked(addr: SocketAddr, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(addr).await["parked"].as_u64() != Some(n) {
        assert!(Instant::now() < deadline, "poll never parked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_gone(reply: &Reply, reason: &str) -> String {
    assert_eq!(reply.status, 410, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["reason"], reason, "{body}");
    body["cursor"].as_str().unwrap().to_owned()
}

fn epoch_of(cursor: &str) -> &str {
    cursor.split_once('-').unwrap().0
}

// ---------------------------------------------------------------------------
// A client of the cursor loop that survives outages
// ---------------------------------------------------------------------------

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    data: Vec<String>,
    ids: Vec<String>,
    unavailable: u32,
    failed: u32,
}

/// Long-polls with its cursor on an instance picked by `pick` until it has
/// seen `last`, asserting that event ids strictly increase. `503` and
/// connection errors are retried with the same cursor; a `410` is a
/// failure (these scenarios must lose nothing).
async fn follow(
    addrs: Arc<Mutex<Vec<SocketAddr>>>,
    mut cursor: String,
    last: String,
    seed: u64,
) -> Seen {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seen = Seen::default();
    while seen.data.last() != Some(&last) {
        let addr = {
            let addrs = addrs.lock().unwrap();
            addrs[rng.usize(..addrs.len())]
        };
        let target = format!("/poll?timeout=2&cursor={cursor}");
        let reply = match http(addr, "GET", &target, b"").await {
            Ok(reply) => reply,
            Err(_) => {
                seen.failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        match reply.status {
            200 => {
                for (id, data) in reply.events() {
                    if let Some(prev) = seen.ids.last() {
                        assert_eq!(epoch_of(prev), epoch_of(&id), "epoch changed: {id}");
                        let p: u64 = prev.split_once('-').unwrap().1.parse().unwrap();
                        let q: u64 = id.split_once('-').unwrap().1.parse().unwrap();
                        assert!(q > p, "ids not increasing: {prev} then {id}");
                    }
                    seen.ids.push(id);
                    seen.data.push(data);
                }
                cursor = reply.json()["cursor"].as_str().unwrap().to_owned();
            }
            204 => cursor = reply.header("cursor").unwrap().to_owned(),
            503 => {
                assert!(reply.header("retry-after").is_some(), "{reply:?}");
                seen.unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("client {seed} with cursor {cursor} on {addr}: {reply:?}"),
        }
    }
    seen
}

/// Asserts that `seen` is `0..n` in order, where a value whose publish
/// failed (and was retried) may appear twice in a row.
fn assert_gap_free(seen: &[String], n: usize, retried: &HashSet<usize>) {
    let mut expected = 0;
    for (i, v) in seen.iter().enumerate() {
        let v: usize = v.parse().unwrap();
        if v + 1 == expected && retried.contains(&v) {
            continue; // a retried publish that had reached Redis after all
        }
        assert_eq!(
            v,
            expected,
            "at index {i}: got {v}, expected {expected}; around: {:?}",
            &seen[i.saturating_sub(3)..(i + 3).min(seen.len())]
        );
        expected += 1;
    }
    assert_eq!(expected, n, "{} values seen", seen.len());
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

fn public_types_are_send_sync_clone() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn clone<T: Clone>() {}
    send_sync::<EventLog<Arc<str>, Redis>>();
    send_sync::<axum_longpoll::event_log::Subscription<Arc<str>, Redis>>();
    send_sync::<axum_longpoll::event_log::RedisLogBuilder>();
    send_sync::<axum_longpoll::event_log::RedisStreamsBuilder>();
    send_sync::<axum_longpoll::Streams<Arc<str>, Redis>>();
    clone::<axum_longpoll::Streams<Arc<str>, Redis>>();
    send_sync::<axum_longpoll::event_log::StartError>();
    send_sync::<axum_longpoll::event_log::Unavailable>();
    send_sync::<axum_longpoll::event_log::PublishError>();
    clone::<EventLog<Arc<str>, Redis>>();
    clone::<axum_longpoll::event_log::StartError>();
}

async fn publish_on_a_long_poll_on_b_with_a_cursor_from_a() {
    let redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:ab", 64).await;
    let b = Instance::start(&redis, "t:ab", 64).await;

    let c0 = head(a.addr).await;
    assert_eq!(c0, head(b.addr).await, "both instances on the same log");
    // Shared epochs have the top bit set.
    assert!(
        u64::from_str_radix(epoch_of(&c0), 16).unwrap() >> 63 == 1,
        "{c0}"
    );

    let parked =
        tokio::spawn(async move { get(b.addr, &format!("/poll?timeout=10&cursor={c0}")).await });
    until_parked(b.addr, 1).await;
    let published = publish_http(a.addr, "hello").await;
    assert_eq!(published.status, 200, "{published:?}");
    let id = published.json()["id"].as_str().unwrap().to_owned();

    let reply = parked.await.unwrap();
    assert_eq!(reply.events(), [(id.clone(), "hello".to_owned())]);
    assert_eq!(reply.header("cursor"), Some(id.as_str()));

    // A's cursor is served by B: not ahead, nothing new yet.
    let reply = get(b.addr, &format!("/poll?timeout=0&cursor={id}")).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("cursor"), Some(id.as_str()));

    let s = stats(b.addr).await;
    assert_eq!(s["backend"], "redis");
    assert_eq!(s["head"], id.as_str());

    // A cursor that no instance issued, ahead of every event: 410 ahead
    // once B has caught up with the stream (twice), not at once.
    let (epoch, position) = id.split_once('-').unwrap();
    let forged = format!("{epoch}-{}", position.parse::<u64>().unwrap() + (1 << 40));
    let started = Instant::now();
    let reply = get(b.addr, &format!("/poll?timeout=10&cursor={forged}")).await;
    assert_gone(&reply, "ahead");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Reads an NDJSON stream until a line containing `needle`.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &str) -> String {
    let deadline = Instant::now() + IO_GUARD;
    loop {
        let text = String::from_utf8_lossy(buf).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no line with {needle:?} in {text:?}"))
            .unwrap();
        assert!(n > 0, "stream ended without {needle:?}: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn ndjson_stream_on_b_carries_events_published_on_a() {
    let redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:ndjson", 64).await;
    let b = Instance::start(&redis, "t:ndjson", 64).await;
    let c0 = head(a.addr).await;
    let mut stream = TcpStream::connect(b.addr).await.unwrap();
    stream
        .write_all(format!("GET /stream?cursor={c0} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let open = read_until(&mut stream, &mut buf, "\"open\"").await;
    assert!(open.contains(&c0), "{open}");
    let id = publish_http(a.addr, "streamed").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = read_until(&mut stream, &mut buf, "streamed").await;
    let event: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["data"], "streamed");
}

async fn a_client_alternating_between_two_instances_sees_5000_events_gap_free() {
    const EVENTS: usize = 5_000;
    let redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:alt", 8192).await;
    let b = Instance::start(&redis, "t:alt", 8192).await;
    let publisher = connect_log(&redis.url(), "t:alt", 8192).await;
    let start = head(a.addr).await;
    let addrs = Arc::new(Mutex::new(vec![a.addr, b.addr]));

    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(follow(
                Arc::clone(&addrs),
                start.clone(),
                (EVENTS - 1).to_string(),
                100 + i,
            ))
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(9);
    for n in 0..EVENTS {
        publisher.publish(Arc::from(n.to_string())).await.unwrap();
        if rng.u8(..) < 8 {
            tokio::time::sleep(Duration::from_millis(rng.u64(1..=5))).await;
        }
    }
    for client in clients {
        let seen = tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("client did not finish")
            .unwrap();
        assert_gap_free(&seen.data, EVENTS, &HashSet::new());
        assert_eq!(seen.unavailable + seen.failed, 0, "{seen:?}");
    }
    eprintln!(
        "{EVENTS} events through Redis to 4 clients alternating between 2 instances in {:?}",
        started.elapsed()
    );
}

async fn clients_of_a_killed_instance_resume_on_the_other_with_their_cursor() {
    const EVENTS: usize = 2_000;
    let redis = RedisServer::start(false).await;
    let mut a = Instance::start(&redis, "t:kill", 4096).await;
    let b = Instance::start(&redis, "t:kill", 4096).await;
    let publisher = connect_log(&redis.url(), "t:kill", 4096).await;
    let start = head(a.addr).await;
    // The clients use A only, until it is gone; then B.
    let addrs = Arc::new(Mutex::new(vec![a.addr]));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(follow(
                Arc::clone(&addrs),
                start.clone(),
                (EVENTS - 1).to_string(),
                200 + i,
            ))
        })
        .collect();
    let before = redis.clients().await;
    for n in 0..EVENTS {
        if n == EVENTS / 3 {
            a.kill().await;
            *addrs.lock().unwrap() = vec![b.addr];
        }
        publisher.publish(Arc::from(n.to_string())).await.unwrap();
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut failed = 0;
    for client in clients {
        let seen = tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("client did not finish")
            .unwrap();
        assert_gap_free(&seen.data, EVENTS, &HashSet::new());
        failed += seen.failed;
    }
    // A's two connections (writer and reader) are closed: its reader task
    // did not outlive it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = redis.clients().await;
        if now + 2 <= before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{before} Redis clients before, {now} after"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("killed A mid-stream; {failed} requests failed and were retried on B");
}

async fn readers_cut_off_while_redis_stays_up_skip_nothing_published_meanwhile() {
    const EVENTS: usize = 2_000;
    let redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:cut", 4096).await;
    let b = Instance::start(&redis, "t:cut", 4096).await;
    let publisher = connect_log(&redis.url(), "t:cut", 4096).await;
    let run = Churn::start(&a, &b, publisher, EVENTS, 400).await;
    let progress = Arc::clone(&run.progress);
    // Cut every reader four times mid-run; the publisher's writer stays
    // connected, so events keep arriving while the readers are away.
    let mut cut = 0;
    for round in 1..=4 {
        while progress.load(Ordering::Relaxed) < round * EVENTS / 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cut += redis.cut_readers().await;
    }
    assert!(cut >= 8, "only {cut} reader connections were cut");
    run.finish().await;
}

/// Two instances, four clients following `events` events across both with
/// their cursors, and a publisher that retries what fails.
struct Churn {
    events: usize,
    start: String,
    progress: Arc<AtomicUsize>,
    clients: Vec<tokio::task::JoinHandle<Seen>>,
    publishing: tokio::task::JoinHandle<HashSet<usize>>,
}

impl Churn {
    async fn start(
        a: &Instance,
        b: &Instance,
        publisher: EventLog<Arc<str>, Redis>,
        events: usize,
        seed: u64,
    ) -> Self {
        let start = head(a.addr).await;
        let addrs = Arc::new(Mutex::new(vec![a.addr, b.addr]));
        let clients = (0..4)
            .map(|i| {
                tokio::spawn(follow(
                    Arc::clone(&addrs),
                    start.clone(),
                    (events - 1).to_string(),
                    seed + i,
                ))
            })
            .collect();
        let progress = Arc::new(AtomicUsize::new(0));
        let publishing = tokio::spawn(publish_retrying(
            publisher,
            0..events,
            Arc::clone(&progress),
        ));
        Self {
            events,
            start,
            progress,
            clients,
            publishing,
        }
    }

    /// Waits for the publisher and every client; asserts each client saw
    /// every event, in order; returns the retried publishes and what each
    /// client saw.
    async fn finish(self) -> (HashSet<usize>, Vec<Seen>) {
        let retried = tokio::time::timeout(Duration::from_secs(60), self.publishing)
            .await
            .expect("publisher did not finish")
            .unwrap();
        let mut seen_all = Vec::new();
        for client in self.clients {
            let seen = tokio::time::timeout(Duration::from_secs(60), client)
                .await
                .expect("client did not finish")
                .unwrap();
            assert_gap_free(&seen.data, self.events, &retried);
            seen_all.push(seen);
        }
        (retried, seen_all)
    }
}

/// Publishes `range` through `log` (about one event per millisecond),
/// retrying each failed publish until it succeeds; returns the values whose
/// publish failed at least once (those may have reached Redis anyway).
async fn publish_retrying(
    log: EventLog<Arc<str>, Redis>,
    range: std::ops::Range<usize>,
    progress: Arc<AtomicUsize>,
) -> HashSet<usize> {
    let mut retried = HashSet::new();
    for n in range {
        while let Err(err) = log.publish(Arc::from(n.to_string())).await {
            assert_eq!(err.status(), 503, "{err}");
            retried.insert(n);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        progress.store(n, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    retried
}

async fn redis_restarted_with_appendonly_loses_nothing() {
    const EVENTS: usize = 1_500;
    let mut redis = RedisServer::start(true).await;
    let a = Instance::start(&redis, "t:aof", 4096).await;
    let b = Instance::start(&redis, "t:aof", 4096).await;
    let publisher = connect_log(&redis.url(), "t:aof", 4096).await;
    let run = Churn::start(&a, &b, publisher, EVENTS, 300).await;
    let start = run.start.clone();
    while run.progress.load(Ordering::Relaxed) < EVENTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Down mid-run: publishes fail (and are retried), new polls get 503,
    // parked polls wait.
    redis.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    let (retried, seen_all) = run.finish().await;
    assert!(
        !retried.is_empty(),
        "no publish failed: the outage was not mid-run"
    );

    let mut unavailable = 0;
    for seen in seen_all {
        assert_eq!(
            epoch_of(&seen.ids[0]),
            epoch_of(&start),
            "the epoch survived"
        );
        unavailable += seen.unavailable;
    }
    eprintln!(
        "Redis restarted with appendonly: zero loss; {} publishes failed and were retried, \
         {unavailable} polls answered 503 meanwhile",
        retried.len()
    );
}

async fn redis_restarted_without_persistence_is_410_epoch_never_a_silent_gap() {
    let mut redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:nopersist", 64).await;
    let b = Instance::start(&redis, "t:nopersist", 64).await;
    let publisher = connect_log(&redis.url(), "t:nopersist", 64).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            publisher
                .publish(Arc::from(n.to_string()))
                .await
                .unwrap()
                .to_string(),
        );
    }
    // One client parked, caught up; another still behind (has seen 0..=4).
    let caught_up = ids[9].clone();
    let parked =
        tokio::spawn(
            async move { get(b.addr, &format!("/poll?timeout=20&cursor={caught_up}")).await },
        );
    until_parked(b.addr, 1).await;

    redis.stop().await;
    redis.restart().await;
    // After the restart Redis is empty: a publish claims a new epoch.
    let mut after = publisher.publish(Arc::from("after")).await;
    for _ in 0..50 {
        if after.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = publisher.publish(Arc::from("after")).await;
    }
    let after = after.unwrap().to_string();
    assert_ne!(epoch_of(&after), epoch_of(&ids[0]), "a new epoch");

    // The parked client is told, not fed the new epoch's events as if
    // nothing happened.
    let reply = parked.await.unwrap();
    let restart = assert_gone(&reply, "epoch");
    assert_eq!(epoch_of(&restart), epoch_of(&after));

    for addr in [a.addr, b.addr] {
        until_ready(addr).await;
        let reply = get(addr, &format!("/poll?timeout=5&cursor={}", ids[4])).await;
        let restart = assert_gone(&reply, "epoch");
        let reply = get(addr, &format!("/poll?timeout=5&cursor={restart}")).await;
        assert_eq!(reply.data(), ["after"]);
    }
}

async fn trimmed_cursor_is_410_evicted_on_every_instance() {
    let redis = RedisServer::start(false).await;
    let a = Instance::start(&redis, "t:trim", 4).await;
    let mut ids = Vec::new();
    for n in 1..=10 {
        let reply = publish_http(a.addr, &n.to_string()).await;
        ids.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    // Redis keeps at least capacity + 1 (approximate trimming may keep more).
    assert!(redis.xlen("t:trim").await >= 5);
    // B starts after the trimming: it must agree with A on what is gone.
    let b = Instance::start(&redis, "t:trim", 4).await;
    for addr in [a.addr, b.addr] {
        let reply = get(addr, &format!("/poll?timeout=0&cursor={}", ids[0])).await;
        let restart = assert_gone(&reply, "evicted");
        // Start over after the newest evicted event (the 6th).
        assert_eq!(restart, ids[5]);
        let reply = get(addr, &format!("/poll?timeout=0&cursor={restart}")).await;
        assert_eq!(reply.data(), ["7", "8", "9", "10"]);
        let reply = get(addr, &format!("/poll?timeout=0&cursor={}", ids[6])).await;
        assert_eq!(reply.data(), ["8", "9", "10"]);
        let reply = get(addr, &format!("/poll?timeout=0&cursor={}", ids[4])).await;
        assert_gone(&reply, "evicted");
        let reply = get(addr, "/poll?timeout=0&from=oldest").await;
        assert_eq!(reply.data(), ["7", "8", "9", "10"]);
    }
    // Malformed stays a 400.
    let reply = get(b.addr, "/poll?timeout=0&cursor=garbage").await;
    assert_eq!(reply.status, 400, "{reply:?}");
}

async fn redis_down_new_polls_503_publish_fails_parked_polls_get_events_after_recovery() {
    let mut redis = RedisServer::start(true).await;
    let a = Instance::start(&redis, "t:down", 64).await;
    let first = publish_http(a.addr, "before").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = a.addr;
    let parked = {
        let first = first.clone();
        tokio::spawn(async move { get(addr, &format!("/poll?timeout=30&cursor={first}")).await })
    };
    until_parked(addr, 1).await;

    redis.stop().await;
    // New requests: 503 + Retry-After once the reader has noticed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let reply = get(addr, &format!("/poll?timeout=0&cursor={first}")).await;
        if reply.status == 503 {
            break reply;
        }
        assert_eq!(reply.status, 204, "{reply:?}");
        assert!(Instant::now() < deadline, "never answered 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    let reply = get(addr, "/stream").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    // A publish fails visibly.
    let reply = publish_http(addr, "while down").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
    assert!(reply.text().contains("not published"), "{}", reply.text());
    // The parked poll is still waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !parked.is_finished(),
        "the parked poll was answered while Redis was down"
    );
    assert_eq!(stats(addr).await["parked"], 1);

    redis.restart().await;
    until_ready(addr).await;
    let reply = publish_http(addr, "after").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = parked.await.unwrap();
    assert_eq!(
        reply.data(),
        ["after"],
        "the parked poll gets what was published after"
    );
}

// ---------------------------------------------------------------------------
// Many named streams on Redis: `Streams<T, Redis>`
// ---------------------------------------------------------------------------

mod streams_app {
    //! An app over a `Streams` collection on Redis: each route names its
    //! stream, which `get_or_create` loads (or creates) on this instance.

    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use axum::extract::{Path, Query, State};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use axum_longpoll::event_log::{Redis, StreamOptions, Streams};
    use axum_longpoll::DisconnectLayer;

    use super::common::rooms::{self, Room};
    use serde_json::json;

    pub(crate) type RedisStreams = Streams<Arc<str>, Redis>;

    /// The settings each instance of a scenario shares.
    #[derive(Clone, Debug)]
    pub(crate) struct Setup {
        pub(crate) prefix: String,
        pub(crate) capacity: usize,
        pub(crate) idle: Option<Duration>,
        pub(crate) name: String,
    }

    pub(crate) async fn connect(url: &str, setup: &Setup) -> RedisStreams {
        axum_longpoll::EventLog::builder()
            .capacity(setup.capacity)
            .streams()
            .idle(setup.idle)
            .redis(redis::Client::open(url).unwrap(), setup.prefix.clone())
            .block(super::BLOCK)
            .max_backoff(Duration::from_millis(200))
            .client_name(setup.name.clone())
            .connect()
            .await
            .unwrap()
    }

    async fn publish(Room(log): Room<Arc<str>, Redis>, body: String) -> Response {
        match log.publish(Arc::from(body)).await {
            Ok(id) => Json(json!({ "id": id })).into_response(),
            Err(err) => err.into_response(),
        }
    }

    /// Closes the stream; the body, if any, is its last event.
    async fn close(Room(log): Room<Arc<str>, Redis>, body: String) -> Response {
        let last = (!body.is_empty()).then(|| Arc::from(body));
        match log.close(last).await {
            Ok(end) => Json(json!({ "end": end })).into_response(),
            Err(err) => err.into_response(),
        }
    }

    /// `?ttl=<ms>` and/or `?expires_in=<ms>`.
    async fn create(
        State(s): State<RedisStreams>,
        Path(name): Path<String>,
        Query(q): Query<HashMap<String, u64>>,
    ) -> Response {
        let mut options = StreamOptions::new();
        if let Some(ms) = q.get("ttl") {
            options = options.ttl(Duration::from_millis(*ms));
        }
        if let Some(ms) = q.get("expires_in") {
            options = options.expires_at(SystemTime::now() + Duration::from_millis(*ms));
        }
        match s.create(&name, options).await {
            Ok(log) => Json(json!({ "head": log.head() })).into_response(),
            Err(err) => err.into_response(),
        }
    }

    async fn delete(State(s): State<RedisStreams>, Path(name): Path<String>) -> Response {
        match s.delete(&name).await {
            Ok(existed) => Json(json!({ "existed": existed })).into_response(),
            Err(err) => err.into_response(),
        }
    }

    async fn stats(State(s): State<RedisStreams>) -> Response {
        Json(json!({ "streams": s.len() })).into_response()
    }

    /// The stream's figures on this instance (`null` if not mirrored here).
    async fn figures(State(s): State<RedisStreams>, Path(name): Path<String>) -> Response {
        let figures = s.figures(&name).map(|f| {
            json!({ "readers": f.readers, "waiters": f.waiters, "closed": f.closed, "head": f.head })
        });
        Json(figures).into_response()
    }

    pub(crate) fn router(streams: RedisStreams) -> Router {
        Router::new()
            .route("/s/{name}/poll", get(rooms::poll::<Arc<str>, Redis>))
            .route("/s/{name}/stream", get(rooms::ndjson::<Arc<str>, Redis>))
            .route("/s/{name}/publish", post(publish))
            .route("/s/{name}/close", post(close))
            .route("/s/{name}/create", post(create))
            .route("/s/{name}/delete", post(delete))
            .route("/s/{name}/figures", get(figures))
            .route("/stats", get(stats))
            .with_state(streams)
            .layer(DisconnectLayer::new())
    }
}

use streams_app::Setup;

impl Instance {
    /// An instance serving a `Streams` collection on Redis.
    async fn streams(redis: &RedisServer, setup: &Setup) -> Self {
        let (url, setup) = (redis.url(), setup.clone());
        Self::spawn(
            move || async move { streams_app::router(streams_app::connect(&url, &setup).await) },
        )
        .await
    }
}

fn setup(prefix: &str, name: &str) -> Setup {
    Setup {
        prefix: prefix.to_owned(),
        capacity: 64,
        idle: Some(Duration::from_secs(300)),
        name: name.to_owned(),
    }
}

impl RedisServer {
    /// `CLIENT LIST` lines whose connection name starts with `<name>:`.
    async fn clients_named(&self, name: &str) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        let needle = format!(" name={name}:");
        list.lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> bool {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let n: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        n == 1
    }
}

/// Publishes `text` on stream `name` of `addr`; its cursor.
async fn publish_on(addr: SocketAddr, name: &str, text: &str) -> String {
    let reply = http(addr, "POST", &format!("/s/{name}/publish"), text.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "publish {text:?} on {name}: {reply:?}");
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// Closes stream `name` of `addr` (with `last`, if not empty).
async fn close_on(addr: SocketAddr, name: &str, last: &str) -> Reply {
    http(addr, "POST", &format!("/s/{name}/close"), last.as_bytes())
        .await
        .unwrap()
}

/// Long-polls stream `name` of `addr`.
async fn poll_on(addr: SocketAddr, name: &str, query: &str) -> Reply {
    get(addr, &format!("/s/{name}/poll?{query}")).await
}

/// What one follower of one stream saw.
#[derive(Debug, Default)]
struct Followed {
    data: Vec<String>,
    polls: u32,
}

/// Follows stream `name` with its cursor, each poll on the next instance
/// of `addrs`, until it has seen `events` events; asserts that ids strictly
/// increase within one epoch. Any answer but `200` and `204` is a failure.
async fn follow_stream(
    addrs: [SocketAddr; 2],
    name: String,
    events: usize,
    first: usize,
) -> Followed {
    let mut seen = Followed::default();
    let mut cursor: Option<String> = None;
    let mut last_id: Option<String> = None;
    let mut turn = first;
    while seen.data.len() < events {
        let addr = addrs[turn % 2];
        turn += 1;
        seen.polls += 1;
        let query = match &cursor {
            Some(c) => format!("timeout=10&cursor={c}"),
            None => "timeout=10&from=oldest".to_owned(),
        };
        let reply = poll_on(addr, &name, &query).await;
        match reply.status {
            200 => {
                for (id, data) in reply.events() {
                    if let Some(prev) = &last_id {
                        assert_eq!(epoch_of(prev), epoch_of(&id), "{name}: epoch changed");
                        assert!(id > *prev, "{name}: ids not increasing: {prev} then {id}");
                    }
                    last_id = Some(id);
                    seen.data.push(data);
                }
                cursor = Some(reply.json()["cursor"].as_str().unwrap().to_owned());
            }
            204 => cursor = Some(reply.header("cursor").unwrap().to_owned()),
            _ => panic!("{name} on {addr} with {cursor:?}: {reply:?}"),
        }
    }
    seen
}

async fn a_thousand_streams_on_two_instances_a_client_alternating_per_poll_loses_nothing() {
    const STREAMS: usize = 1_000;
    const EVENTS: usize = 5;
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("alt:", "alt-a")).await;
    let b = Instance::streams(&redis, &setup("alt:", "alt-b")).await;
    let addrs = [a.addr, b.addr];
    let started = Instant::now();
    // One follower per stream, starting on A or B and switching at every
    // poll; a stream is created by whichever instance sees it first.
    let followers: Vec<_> = (0..STREAMS)
        .map(|i| tokio::spawn(follow_stream(addrs, format!("s{i}"), EVENTS, i)))
        .collect();
    // Publishers: event k of stream i goes through instance (i + k) % 2.
    let publishers: Vec<_> = (0..4)
        .map(|worker| {
            tokio::spawn(async move {
                for k in 0..EVENTS {
                    for i in (worker..STREAMS).step_by(4) {
                        publish_on(addrs[(i + k) % 2], &format!("s{i}"), &k.to_string()).await;
                    }
                }
            })
        })
        .collect();
    for publisher in publishers {
        tokio::time::timeout(Duration::from_secs(120), publisher)
            .await
            .expect("publishers did not finish")
            .unwrap();
    }
    let expected: Vec<String> = (0..EVENTS).map(|k| k.to_string()).collect();
    let mut polls = 0;
    for (i, follower) in followers.into_iter().enumerate() {
        let seen = tokio::time::timeout(Duration::from_secs(60), follower)
            .await
            .unwrap_or_else(|_| panic!("follower of s{i} did not finish"))
            .unwrap();
        assert_eq!(seen.data, expected, "stream s{i}");
        polls += seen.polls;
    }
    // Both instances mirror every stream, on their two connections each.
    for (name, addr) in [("alt-a", a.addr), ("alt-b", b.addr)] {
        assert_eq!(stats(addr).await["streams"], STREAMS, "{name}");
        assert_eq!(redis.clients_named(name).await.len(), 2, "{name}");
    }
    eprintln!(
        "{STREAMS} streams x {EVENTS} events through 2 instances, {polls} polls alternating \
         between them, in {:?}",
        started.elapsed()
    );
}

/// Waits until stream `name` on `addr` has `readers` readers and `waiters`
/// parked long-polls.
async fn until_present(addr: SocketAddr, name: &str, readers: u64, waiters: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let figures = get(addr, &format!("/s/{name}/figures")).await.json();
        if figures["readers"] == readers && figures["waiters"] == waiters {
            return;
        }
        assert!(Instant::now() < deadline, "{name} on {addr}: {figures}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens an NDJSON stream of `name` on `addr` after `cursor`.
async fn ndjson_on(addr: SocketAddr, name: &str, cursor: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET /s/{name}/stream?cursor={cursor} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut stream, &mut buf, "\"open\"").await;
    (stream, buf)
}

/// Polls `name` on `addr` from `cursor` until the stream says it is closed;
/// the data seen and the end.
async fn read_to_end(addr: SocketAddr, name: &str, cursor: &str) -> (Vec<String>, String) {
    let mut cursor = cursor.to_owned();
    let mut data = Vec::new();
    loop {
        let reply = poll_on(addr, name, &format!("timeout=10&cursor={cursor}")).await;
        assert_eq!(reply.status, 200, "{name} on {addr}: {reply:?}");
        data.extend(reply.data());
        let body = reply.json();
        cursor = body["cursor"].as_str().unwrap().to_owned();
        if body["closed"] == true {
            assert_eq!(reply.header("stream-closed"), Some("true"), "{reply:?}");
            return (data, cursor);
        }
    }
}

async fn a_stream_closed_on_a_is_closed_on_b_and_b_refuses_to_publish() {
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("close:", "close-a")).await;
    let b = Instance::streams(&redis, &setup("close:", "close-b")).await;
    let first = publish_on(a.addr, "room", "hello").await;
    // On B: a long-poll parked after the first event, and an NDJSON stream.
    let parked = {
        let (addr, first) = (b.addr, first.clone());
        tokio::spawn(
            async move { poll_on(addr, "room", &format!("timeout=10&cursor={first}")).await },
        )
    };
    let (mut ndjson, mut buf) = ndjson_on(b.addr, "room", &first).await;
    until_present(b.addr, "room", 1, 1).await;

    // Closed on A with a last event, in one step.
    let closed = close_on(a.addr, "room", "bye").await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let end = closed.json()["end"].as_str().unwrap().to_owned();

    let reply = parked.await.unwrap();
    assert_eq!(reply.events(), [(end.clone(), "bye".to_owned())]);
    assert_eq!(reply.json()["closed"], true, "{}", reply.text());
    assert_eq!(reply.header("stream-closed"), Some("true"));
    assert_eq!(reply.header("cursor"), Some(end.as_str()));
    let line = read_until(&mut ndjson, &mut buf, "bye").await;
    assert!(line.contains(&end), "{line}");
    let line = read_until(&mut ndjson, &mut buf, "\"closed\"").await;
    let frame: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        frame,
        serde_json::json!({"control": "closed", "cursor": end})
    );

    // Every instance refuses a publish now, whichever saw the close first.
    for addr in [b.addr, a.addr] {
        let reply = http(addr, "POST", "/s/room/publish", b"late")
            .await
            .unwrap();
        assert_eq!(reply.status, 409, "{reply:?}");
        assert!(reply.text().contains("closed"), "{}", reply.text());
        assert!(reply.text().contains(&end), "{}", reply.text());
        // A reader at the end learns at once that it has everything.
        let reply = poll_on(addr, "room", &format!("timeout=10&cursor={end}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.json()["events"], serde_json::json!([]));
        assert_eq!(reply.json()["closed"], true);
        assert_eq!(reply.header("stream-closed"), Some("true"));
    }
    // Closing again is harmless and answers the same end; with an event it
    // is refused.
    let again = close_on(b.addr, "room", "").await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["end"], end.as_str());
    assert_eq!(close_on(b.addr, "room", "more").await.status, 409);

    // An instance that starts now loads the stream closed.
    let c = Instance::streams(&redis, &setup("close:", "close-c")).await;
    let (data, last) = read_to_end(c.addr, "room", &first).await;
    assert_eq!((data, last), (vec!["bye".to_owned()], end));
}

async fn connections_per_instance_stay_two_from_one_to_a_thousand_streams() {
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("conn:", "conn-a")).await;
    let b = Instance::streams(&redis, &setup("conn:", "conn-b")).await;
    let mut created = 0;
    let mut figures = Vec::new();
    let mut all_parked = Vec::new();
    for streams in [1, 10, 1_000] {
        // Each new stream: created by a publish on A, read on B; and one
        // long-poll parked on each stream on B.
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let tasks: Vec<_> = (created..streams)
            .map(|i| {
                let (a, b, gate) = (a.addr, b.addr, Arc::clone(&gate));
                tokio::spawn(async move {
                    let _permit = gate.acquire().await.unwrap();
                    let name = format!("s{i}");
                    let id = publish_on(a, &name, "x").await;
                    let reply = poll_on(b, &name, "timeout=0&from=oldest").await;
                    assert_eq!(reply.data(), ["x"], "{name}");
                    (name, id)
                })
            })
            .collect();
        let mut parked = Vec::new();
        for task in tasks {
            let (name, id) = task.await.unwrap();
            let b = b.addr;
            parked.push(tokio::spawn(async move {
                poll_on(b, &name, &format!("timeout=60&cursor={id}")).await
            }));
        }
        created = streams;
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(b.addr, "/stats").await.json()["streams"] != streams {
            assert!(
                Instant::now() < deadline,
                "B does not mirror {streams} streams"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut counts = Vec::new();
        for name in ["conn-a", "conn-b"] {
            let lines = redis.clients_named(name).await;
            assert_eq!(lines.len(), 2, "{name} at {streams} streams: {lines:#?}");
            for role in ["writer", "reader"] {
                let needle = format!(" name={name}:{role} ");
                assert!(lines.iter().any(|l| l.contains(&needle)), "{lines:#?}");
            }
            counts.push(lines.len());
        }
        figures.push((streams, counts));
        // The parked polls stay parked (they are not what is counted).
        assert!(parked.iter().all(|poll| !poll.is_finished()));
        all_parked.extend(parked);
    }
    for poll in all_parked {
        poll.abort();
    }
    eprintln!("(streams, [Redis connections of A, of B]): {figures:?}");
}

async fn redis_restarted_with_appendonly_keeps_closure_and_events() {
    let mut redis = RedisServer::start(true).await;
    let a = Instance::streams(&redis, &setup("aofc:", "aofc-a")).await;
    let b = Instance::streams(&redis, &setup("aofc:", "aofc-b")).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let addr = if n % 2 == 0 { a.addr } else { b.addr };
        ids.push(publish_on(addr, "log", &n.to_string()).await);
    }
    let closed = close_on(b.addr, "log", "end").await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let end = closed.json()["end"].as_str().unwrap().to_owned();

    redis.stop().await;
    redis.restart().await;
    let expected: Vec<String> = (10..20)
        .map(|n| n.to_string())
        .chain(["end".into()])
        .collect();
    for addr in [a.addr, b.addr] {
        // Back in step (a 503 until then), then a reader that had read ten
        // events resumes with its cursor: the rest, and the end.
        let deadline = Instant::now() + Duration::from_secs(15);
        while poll_on(addr, "log", &format!("timeout=0&cursor={}", ids[9]))
            .await
            .status
            == 503
        {
            assert!(Instant::now() < deadline, "{addr} never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (data, last) = read_to_end(addr, "log", &ids[9]).await;
        assert_eq!((&data, &last), (&expected, &end), "on {addr}");
        assert_eq!(
            http(addr, "POST", "/s/log/publish", b"x")
                .await
                .unwrap()
                .status,
            409
        );
    }
    // An instance started after the restart loads it closed, same epoch.
    let c = Instance::streams(&redis, &setup("aofc:", "aofc-c")).await;
    let (data, last) = read_to_end(c.addr, "log", &ids[9]).await;
    assert_eq!((data, last), (expected, end));
    assert_eq!(
        http(c.addr, "POST", "/s/log/publish", b"x")
            .await
            .unwrap()
            .status,
        409
    );
}

async fn a_cursor_of_another_stream_is_410_epoch_on_every_instance() {
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("xy:", "xy-a")).await;
    let b = Instance::streams(&redis, &setup("xy:", "xy-b")).await;
    let x = publish_on(a.addr, "x", "x1").await;
    let y = publish_on(b.addr, "y", "y1").await;
    assert_ne!(epoch_of(&x), epoch_of(&y), "each stream has its own epoch");
    for addr in [a.addr, b.addr] {
        for (name, cursor, own) in [("y", &x, &y), ("x", &y, &x)] {
            let reply = poll_on(addr, name, &format!("timeout=0&cursor={cursor}")).await;
            let restart = assert_gone(&reply, "epoch");
            assert_eq!(epoch_of(&restart), epoch_of(own), "{name} on {addr}");
            // The stream's own cursor is served.
            let reply = poll_on(addr, name, &format!("timeout=0&cursor={own}")).await;
            assert_eq!(reply.status, 204, "{reply:?}");
        }
    }
}

async fn idle_streams_expire_in_redis_for_every_instance_but_not_while_read() {
    let redis = RedisServer::start(false).await;
    let short = |name: &str| Setup {
        idle: Some(Duration::from_secs(1)),
        ..setup("idle:", name)
    };
    let a = Instance::streams(&redis, &short("idle-a")).await;
    let b = Instance::streams(&redis, &short("idle-b")).await;

    // Used on A, read on B, then nobody: Redis deletes it after `idle`.
    let gone = publish_on(a.addr, "quiet", "1").await;
    let reply = poll_on(b.addr, "quiet", "timeout=0&from=oldest").await;
    assert_eq!(reply.data(), ["1"]);
    assert!(redis.exists("idle:quiet:meta").await);
    let deadline = Instant::now() + Duration::from_secs(15);
    while redis.exists("idle:quiet:meta").await || redis.exists("idle:quiet").await {
        assert!(Instant::now() < deadline, "the idle stream was not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its cursors are refused everywhere (the name is a new stream now).
    for addr in [b.addr, a.addr] {
        let reply = poll_on(addr, "quiet", &format!("timeout=0&cursor={gone}")).await;
        assert_gone(&reply, "epoch");
    }

    // A long-poll parked on B keeps the stream alive well past `idle`,
    // though nothing is published and nobody else asks.
    let kept = publish_on(a.addr, "read", "1").await;
    let parked = {
        let (addr, kept) = (b.addr, kept.clone());
        tokio::spawn(
            async move { poll_on(addr, "read", &format!("timeout=20&cursor={kept}")).await },
        )
    };
    until_present(b.addr, "read", 0, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(redis.exists("idle:read:meta").await, "deleted while read");
    let next = publish_on(a.addr, "read", "2").await;
    let reply = parked.await.unwrap();
    assert_eq!(reply.events(), [(next, "2".to_owned())]);
}

async fn ttl_expiry_and_delete_reach_the_readers_of_every_instance() {
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("ttl:", "ttl-a")).await;
    let b = Instance::streams(&redis, &setup("ttl:", "ttl-b")).await;

    // A TTL counts with readers too: unused for it, the stream goes, and a
    // long-poll parked on B is told (not left waiting on a stream that no
    // longer exists).
    for (name, query) in [("ttl", "ttl=1000"), ("at", "expires_in=1500")] {
        let reply = http(a.addr, "POST", &format!("/s/{name}/create?{query}"), b"")
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{reply:?}");
        let head = reply.json()["head"].as_str().unwrap().to_owned();
        // Created once, for every instance.
        let again = http(b.addr, "POST", &format!("/s/{name}/create"), b"")
            .await
            .unwrap();
        assert_eq!(again.status, 409, "{again:?}");
        let reply = poll_on(b.addr, name, &format!("timeout=20&cursor={head}")).await;
        assert_gone(&reply, "deleted");
        assert!(!redis.exists(&format!("ttl:{name}:meta")).await);
    }

    // Deleted on A: B's parked long-poll and open stream are told at once.
    let first = publish_on(a.addr, "doomed", "1").await;
    let parked = {
        let (addr, first) = (b.addr, first.clone());
        tokio::spawn(
            async move { poll_on(addr, "doomed", &format!("timeout=20&cursor={first}")).await },
        )
    };
    let (mut ndjson, mut buf) = ndjson_on(b.addr, "doomed", &first).await;
    until_present(b.addr, "doomed", 1, 1).await;
    let reply = http(a.addr, "POST", "/s/doomed/delete", b"").await.unwrap();
    assert_eq!(reply.json()["existed"], true, "{reply:?}");
    assert_gone(&parked.await.unwrap(), "deleted");
    let line = read_until(&mut ndjson, &mut buf, "\"gone\"").await;
    assert!(line.contains("\"deleted\""), "{line}");
    // The name is free: a new stream, whose cursors are not the old ones'.
    let reply = poll_on(b.addr, "doomed", &format!("timeout=0&cursor={first}")).await;
    assert_gone(&reply, "epoch");
    let renewed = publish_on(a.addr, "doomed", "again").await;
    assert_ne!(epoch_of(&renewed), epoch_of(&first));
}

impl RedisServer {
    /// The keys of the next `XREAD` the connection named `name` sends, as
    /// `MONITOR` shows it.
    async fn next_xread_keys(&self, name: &str) -> Vec<String> {
        let needle = format!(" name={name} ");
        let addr = self
            .clients_named(name.split(':').next().unwrap())
            .await
            .into_iter()
            .find(|l| l.contains(&needle))
            .and_then(|l| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix("addr=").map(str::to_owned))
            })
            .unwrap_or_else(|| panic!("no connection named {name}"));
        let mut monitor = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        monitor.write_all(b"MONITOR\r\n").await.unwrap();
        let mut buf = Vec::new();
        let from = format!(" {addr}] \"XREAD\" ");
        let deadline = Instant::now() + IO_GUARD;
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(line) = text.lines().find(|l| l.contains(&from)) {
                let args: Vec<&str> = line
                    .split(&from)
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .map(|a| a.trim_matches('"'))
                    .collect();
                let at = args.iter().position(|a| *a == "STREAMS").unwrap();
                let rest = &args[at + 1..];
                return rest[..rest.len() / 2]
                    .iter()
                    .map(|k| (*k).to_owned())
                    .collect();
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, monitor.read(&mut chunk))
                .await
                .expect("no XREAD seen")
                .unwrap();
            assert!(n > 0, "MONITOR closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn an_instance_reads_only_the_streams_in_use_there_and_resumes_the_others_exactly() {
    const STREAMS: usize = 50;
    let redis = RedisServer::start(false).await;
    let a = Instance::streams(&redis, &setup("use:", "use-a")).await;
    let b = Instance::streams(&redis, &setup("use:", "use-b")).await;
    let mut first = Vec::new();
    for i in 0..STREAMS {
        let name = format!("s{i}");
        first.push(publish_on(a.addr, &name, "1").await);
        let reply = poll_on(b.addr, &name, "timeout=0&from=oldest").await;
        assert_eq!(reply.data(), ["1"]);
    }
    // Long-polls wait on five streams of B; nobody uses the others there.
    let parked: Vec<_> = (0..5)
        .map(|i| {
            let (addr, cursor) = (b.addr, first[i].clone());
            tokio::spawn(async move {
                poll_on(
                    addr,
                    &format!("s{i}"),
                    &format!("timeout=12&cursor={cursor}"),
                )
                .await
            })
        })
        .collect();
    // After the linger time B's reader reads those five only, though it
    // still holds all fifty.
    let waited: HashSet<String> = (0..5).map(|i| format!("use:s{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys: HashSet<String> = redis
            .next_xread_keys("use-b:reader")
            .await
            .into_iter()
            .collect();
        if keys == waited {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still reads {} streams",
            keys.len()
        );
    }
    assert_eq!(get(b.addr, "/stats").await.json()["streams"], STREAMS);
    // The parked ones get what is published.
    let id = publish_on(a.addr, "s0", "2").await;
    let mut parked = parked.into_iter();
    let reply = parked.next().unwrap().await.unwrap();
    assert_eq!(reply.events(), [(id, "2".to_owned())]);
    parked.for_each(|poll| poll.abort());

    // A stream B stopped reading: what was published meanwhile is there
    // when it is asked for again, exactly.
    let id = publish_on(a.addr, "s10", "2").await;
    let reply = poll_on(b.addr, "s10", &format!("timeout=5&cursor={}", first[10])).await;
    assert_eq!(reply.events(), [(id, "2".to_owned())]);
    // One closed meanwhile: B refuses to publish, and its readers learn the
    // end.
    let end = close_on(a.addr, "s12", "bye").await.json()["end"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = http(b.addr, "POST", "/s/s12/publish", b"late")
        .await
        .unwrap();
    assert_eq!(reply.status, 409, "{reply:?}");
    let (data, last) = read_to_end(b.addr, "s12", &first[12]).await;
    assert_eq!((data, last), (vec!["bye".to_owned()], end));
    // And one trimmed past its capacity meanwhile: 410 evicted, never a gap.
    for n in 0..100 {
        publish_on(a.addr, "s11", &n.to_string()).await;
    }
    let reply = poll_on(b.addr, "s11", &format!("timeout=5&cursor={}", first[11])).await;
    let restart = assert_gone(&reply, "evicted");
    let reply = poll_on(b.addr, "s11", &format!("timeout=5&cursor={restart}")).await;
    let data = reply.data();
    assert_eq!(data.len(), 64, "{data:?}");
    assert_eq!(data.last().map(String::as_str), Some("99"));
}

async fn a_single_log_closed_by_one_instance_is_closed_for_the_other() {
    let redis = RedisServer::start(false).await;
    let a = connect_log(&redis.url(), "t:close", 64).await;
    let b = connect_log(&redis.url(), "t:close", 64).await;
    let first = a.publish(Arc::from("1")).await.unwrap();
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { b.wait(first).await })
    };
    let end = a.close(Some(Arc::from("end"))).await.unwrap();
    let batch = tokio::time::timeout(IO_GUARD, waiting)
        .await
        .expect("B never saw the close")
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!((batch.cursor, batch.closed), (end, true));
    assert!(b.is_closed());
    match b.publish(Arc::from("late")).await {
        Err(axum_longpoll::event_log::PublishError::Closed { end: at, .. }) => assert_eq!(at, end),
        other => panic!("{other:?}"),
    }
    // Closing again answers the end; with an event it is refused.
    assert_eq!(b.close(None).await.unwrap(), end);
    assert!(b.close(Some(Arc::from("more"))).await.is_err());
    // A third instance loads it closed.
    let c = connect_log(&redis.url(), "t:close", 64).await;
    assert!(c.is_closed());
    assert_eq!(c.head(), end);
}

// ---------------------------------------------------------------------------
// What the Durable Streams protocol needs of a Redis collection: sequence
// tokens, attributes, `find` and `peek`, a lookup that is up to date. Two
// collections on one Redis prefix are two instances (each its own hub).
// ---------------------------------------------------------------------------

/// Two collections ("instances" A and B) on one prefix.
async fn two_collections(
    redis: &RedisServer,
    prefix: &str,
) -> (streams_app::RedisStreams, streams_app::RedisStreams) {
    let a = streams_app::connect(&redis.url(), &setup(prefix, &format!("{prefix}a"))).await;
    let b = streams_app::connect(&redis.url(), &setup(prefix, &format!("{prefix}b"))).await;
    (a, b)
}

fn text(s: &str) -> Arc<str> {
    Arc::from(s)
}

async fn a_sequence_token_is_checked_in_redis_across_instances_and_with_the_close() {
    use axum_longpoll::event_log::{Append, PublishError};
    let redis = RedisServer::start(false).await;
    let (a, b) = two_collections(&redis, "seq:").await;
    let on_a = a.get_or_create("s").await.unwrap();
    let on_b = b.get_or_create("s").await.unwrap();

    on_a.append(Append::event(text("1")).seq("0001"))
        .await
        .unwrap();
    // The same token on the other instance: refused, naming the last one.
    match on_b.append(Append::event(text("dup")).seq("0001")).await {
        Err(PublishError::OutOfOrder { seq, last }) => {
            assert_eq!((seq.as_str(), last.as_str()), ("0001", "0001"));
        }
        other => panic!("expected OutOfOrder, got {other:?}"),
    }
    on_b.append(Append::event(text("2")).seq("0002"))
        .await
        .unwrap();
    // Byte-wise, not the server's locale: "0010" > "0002", "B" < "a".
    on_a.append(Append::event(text("3")).seq("0010"))
        .await
        .unwrap();
    assert!(matches!(
        on_b.append(Append::event(text("x")).seq("0009")).await,
        Err(PublishError::OutOfOrder { .. })
    ));
    on_b.append(Append::event(text("4")).seq("a"))
        .await
        .unwrap();
    let refused = on_a.append(Append::event(text("x")).seq("B")).await;
    assert!(
        matches!(&refused, Err(PublishError::OutOfOrder { last, .. }) if last == "a"),
        "{refused:?}"
    );
    // Without a token an append is not checked, and does not move it.
    on_a.publish(text("5")).await.unwrap();
    assert!(on_b
        .append(Append::event(text("x")).seq("a"))
        .await
        .is_err());

    // Concurrent appends with one token, from both instances: exactly one
    // is accepted.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let log = if i % 2 == 0 {
            on_a.clone()
        } else {
            on_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            log.append(Append::event(Arc::from(format!("race{i}"))).seq("b"))
                .await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(PublishError::OutOfOrder { .. }) => {}
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(accepted, 1, "one append per token");

    // A refused token closes nothing; an accepted one closes with its event.
    assert!(on_a
        .append(Append::event(text("end")).seq("b").and_close())
        .await
        .is_err());
    assert!(!on_a.is_closed());
    let end = on_b
        .append(Append::event(text("end")).seq("c").and_close())
        .await
        .unwrap();
    // Closed: refused as closed (before the token is looked at), everywhere.
    for log in [&on_a, &on_b] {
        let refused = log.append(Append::event(text("late")).seq("d")).await;
        assert!(
            matches!(refused, Err(PublishError::Closed { end: e, .. }) if e == end),
            "{refused:?}"
        );
    }
    let read = a.find("s").await.unwrap().unwrap();
    let batch = read.read(read.oldest()).unwrap();
    let data: Vec<&str> = batch.events.iter().map(|e| &*e.data).collect();
    assert_eq!(data.len(), 7, "{data:?}");
    assert_eq!(&data[..5], ["1", "2", "3", "4", "5"]);
    assert_eq!(data[6], "end");
    assert!(batch.closed);
}

async fn attributes_are_kept_in_redis_and_read_by_every_instance() {
    use axum_longpoll::event_log::{StreamOptions, StreamsError};
    let redis = RedisServer::start(false).await;
    let (a, b) = two_collections(&redis, "attr:").await;
    let options = StreamOptions::new()
        .attribute("content-type", "text/plain; charset=utf-8")
        .attribute("ttl", "3600")
        .attribute("ttl", "60");
    let created = a.create("doc", options).await.unwrap();
    assert_eq!(
        created.attribute("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(created.attribute("ttl"), Some("60"), "set again: replaced");
    assert_eq!(created.attribute("missing"), None);

    // B never saw it: `get` does not know it, `find` loads it with them.
    assert!(b.get("doc").is_none());
    let found = b.find("doc").await.unwrap().expect("created on A");
    assert_eq!(
        found.attribute("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(found.attribute("ttl"), Some("60"));
    assert_eq!(found.epoch(), created.epoch(), "one stream");
    // Created once, whichever instance asks again.
    for c in [&a, &b] {
        let err = c.create("doc", StreamOptions::new()).await.unwrap_err();
        assert!(matches!(err, StreamsError::Exists { .. }), "{err:?}");
    }
    // A stream created by `get_or_create` has none.
    let plain = b.get_or_create("plain").await.unwrap();
    assert_eq!(plain.attribute("content-type"), None);
    assert_eq!(
        a.find("plain")
            .await
            .unwrap()
            .unwrap()
            .attribute("content-type"),
        None
    );

    // Deleted on A and created again with other attributes: B sees the new
    // stream's, never the old one's.
    assert!(a.delete("doc").await.unwrap());
    let renewed = a
        .create(
            "doc",
            StreamOptions::new().attribute("content-type", "application/json"),
        )
        .await
        .unwrap();
    let found = b.find("doc").await.unwrap().unwrap();
    assert_eq!(found.epoch(), renewed.epoch());
    assert_eq!(found.attribute("content-type"), Some("application/json"));
    assert_eq!(found.attribute("ttl"), None);
    // In the meta hash, for any other reader of Redis.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ct: String = redis::cmd("HGET")
        .arg("attr:doc:meta")
        .arg("a:content-type")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ct, "application/json");
}

async fn find_creates_nothing_and_a_lookup_on_b_sees_what_a_published_just_before() {
    let redis = RedisServer::start(false).await;
    let (a, b) = two_collections(&redis, "find:").await;
    assert!(b.find("nobody").await.unwrap().is_none());
    assert!(!redis.exists("find:nobody:meta").await, "find created it");
    assert!(b.find("bad name").await.is_err(), "names are checked");

    let on_a = a.get_or_create("s").await.unwrap();
    on_a.publish(text("0")).await.unwrap();
    let on_b = b.find("s").await.unwrap().unwrap();
    assert_eq!(on_b.head(), on_a.head());
    // Mirrored on B and read there (B's reader names it), then idle on B
    // long enough that B's reader stops reading it (ten times `block`): in
    // both cases a lookup on B right after a publish on A has the event.
    for pause in [Duration::ZERO, BLOCK * 12] {
        tokio::time::sleep(pause).await;
        for i in 0..20 {
            let cursor = on_a.publish(Arc::from(format!("{i}"))).await.unwrap();
            let looked = if i % 2 == 0 {
                b.find("s").await.unwrap().unwrap()
            } else {
                b.get_or_create("s").await.unwrap()
            };
            assert_eq!(
                looked.head(),
                cursor,
                "after a pause of {pause:?}, event {i}"
            );
            let batch = looked.read(looked.oldest()).unwrap();
            assert_eq!(batch.events.last().unwrap().cursor, cursor);
        }
    }
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::{test, REDIS_SERVER};
    harness::run(vec![
        test!(public_types_are_send_sync_clone),
        test!(
            publish_on_a_long_poll_on_b_with_a_cursor_from_a,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            ndjson_stream_on_b_carries_events_published_on_a,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_client_alternating_between_two_instances_sees_5000_events_gap_free,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            clients_of_a_killed_instance_resume_on_the_other_with_their_cursor,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            readers_cut_off_while_redis_stays_up_skip_nothing_published_meanwhile,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            redis_restarted_with_appendonly_loses_nothing,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            redis_restarted_without_persistence_is_410_epoch_never_a_silent_gap,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            trimmed_cursor_is_410_evicted_on_every_instance,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            redis_down_new_polls_503_publish_fails_parked_polls_get_events_after_recovery,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_thousand_streams_on_two_instances_a_client_alternating_per_poll_loses_nothing,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_stream_closed_on_a_is_closed_on_b_and_b_refuses_to_publish,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            connections_per_instance_stay_two_from_one_to_a_thousand_streams,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            redis_restarted_with_appendonly_keeps_closure_and_events,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_cursor_of_another_stream_is_410_epoch_on_every_instance,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            idle_streams_expire_in_redis_for_every_instance_but_not_while_read,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            ttl_expiry_and_delete_reach_the_readers_of_every_instance,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            an_instance_reads_only_the_streams_in_use_there_and_resumes_the_others_exactly,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_single_log_closed_by_one_instance_is_closed_for_the_other,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            a_sequence_token_is_checked_in_redis_across_instances_and_with_the_close,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            attributes_are_kept_in_redis_and_read_by_every_instance,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            find_creates_nothing_and_a_lookup_on_b_sees_what_a_published_just_before,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
    ])
}
