#![allow(clippy::unwrap_used)]
//! The demo behind nginx, with the recipe of `docs/nginx.md`.
//!
//! Each test starts Debian's nginx (1.22) on `127.0.0.1` with a fresh
//! prefix directory and free ports, configured with the `nginx` block of
//! `docs/nginx.md` (only its addresses and, where a test says so, its
//! `proxy_read_timeout` or `error_page` line changed), in front of the
//! demo's router served in-process as `examples/demo/main.rs` serves it
//! (`DeadPeer`'s listener, `ConnectInfo`). nginx is killed when the test
//! drops it. The tests show:
//!
//! - every mode works through nginx: long-poll, NDJSON, SSE, WebSocket,
//!   a Durable Streams long-poll and `live=sse`, each event arriving while
//!   its stream stays open;
//! - a client's FIN, RST and half-close mid-long-poll and mid-stream, and
//!   an HTTP/2 stream reset, reach the demo: `/stats`' gauges go back;
//! - the restart: with the recipe a spec-following `EventSource` reader
//!   (written here, after the HTML standard) keeps reconnecting through
//!   `@retry`'s answer and resumes with `Last-Event-ID`, no event lost;
//!   without the `error_page` line it gets `502 text/html` and stops;
//! - long-poll limits (scaled down): the longest wait answers `204` under
//!   a read timeout above it, and a read timeout below it gives nginx's
//!   `504` (`@retry`'s `503` with the recipe);
//! - the WebSocket origin check behind nginx with and without
//!   `TRUSTED_PROXIES`, and forwarded headers from an untrusted peer.
//!
//! Without nginx the tests that need it are not run and are reported
//! `ignored (<why>)`, except under `CI=true`, where they fail (`.ci/run`
//! installs it; `tests/support/harness.rs`). `NGINX` overrides the binary.
//! Every wait is a hang guard, never a timing assertion.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::{Cursor, EventLog};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use common::{RawConn, RawResponse, H2, IO_GUARD};

type Log = EventLog<Arc<str>>;

/// Hang guard for a state the demo or a reader must reach.
const GUARD: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// nginx with the recipe
// ---------------------------------------------------------------------------

/// nginx, found by `nginx`.
const NGINX: harness::Need = harness::Need {
    tool: "nginx",
    check: || nginx().map(drop),
};

/// The nginx binary: `NGINX`, else `nginx` in `/usr/sbin` or on `PATH`;
/// else what is missing and how to install it.
fn nginx() -> Result<PathBuf, String> {
    let found = match std::env::var_os("NGINX") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::iter::once(PathBuf::from("/usr/sbin"))
                .chain(std::env::split_paths(&path))
                .map(|dir| dir.join("nginx"))
                .find(|candidate| candidate.is_file())
        }
    };
    found.ok_or_else(|| "nginx not found (apt-get install nginx, or set NGINX)".to_owned())
}

/// The `nginx` block of `docs/nginx.md`, as the reader copies it.
fn recipe() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/nginx.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/nginx.md");
    let open = "```nginx\n";
    let start = doc.find(open).expect("docs/nginx.md has an ```nginx block") + open.len();
    let len = doc[start..].find("```").expect("the nginx block ends");
    doc[start..start + len].to_owned()
}

/// `text` with its one `from` replaced: the test fails loudly when the
/// recipe no longer has the line it changes.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "docs/nginx.md's nginx block must contain {from:?} exactly once"
    );
    text.replacen(from, to, 1)
}

/// What a test changes in the recipe.
#[derive(Clone, Copy, Debug)]
struct Variant {
    /// `proxy_read_timeout` instead of the recipe's.
    read_timeout: Option<&'static str>,
    /// Keep the `error_page … = @retry` line.
    retry: bool,
}

/// The recipe as written.
const RECIPE: Variant = Variant {
    read_timeout: None,
    retry: true,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// nginx in the foreground, one process (`master_process off`), in a
/// fresh prefix directory; killed and the directory removed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    /// HTTP/1.1 (the recipe's `listen`).
    addr: SocketAddr,
    /// HTTP/2 with prior knowledge (a second `listen`, for the reset test).
    h2: SocketAddr,
}

impl Nginx {
    fn start(binary: &Path, upstream: SocketAddr, variant: Variant) -> Self {
        // A free port may be taken between the probe and nginx's bind:
        // then try again with others.
        for _ in 0..3 {
            if let Some(nginx) = Self::try_start(binary, upstream, variant) {
                return nginx;
            }
        }
        panic!("nginx did not start three times (ports taken?)");
    }

    fn try_start(binary: &Path, upstream: SocketAddr, variant: Variant) -> Option<Self> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "axum-longpoll-nginx-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx prefix directory");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let h2 = SocketAddr::from(([127, 0, 0, 1], free_port()));

        let mut site = recipe();
        site = replace_once(
            &site,
            "    server 127.0.0.1:3000;",
            &format!("    server {upstream};"),
        );
        site = replace_once(
            &site,
            "    listen 80;",
            &format!("    listen {addr};\n    listen {h2} http2;"),
        );
        if let Some(timeout) = variant.read_timeout {
            site = replace_once(
                &site,
                "    proxy_read_timeout 130s;",
                &format!("    proxy_read_timeout {timeout};"),
            );
        }
        if !variant.retry {
            site = replace_once(&site, "    error_page 502 503 504 = @retry;\n", "");
        }
        std::fs::write(dir.join("site.conf"), site).expect("write site.conf");
        // What a distribution's nginx.conf around the recipe provides,
        // with every path in the prefix directory.
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log {d}/access.log;\n\
             client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n    include {d}/site.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx");
        let mut nginx = Self {
            child,
            dir,
            addr,
            h2,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = nginx.logs();
                if log.contains("Address already in use") {
                    return None;
                }
                panic!("nginx exited ({status}):\n{log}");
            }
            let ready = [nginx.addr, nginx.h2]
                .iter()
                .all(|a| std::net::TcpStream::connect(a).is_ok());
            if ready {
                return Some(nginx);
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s:\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// nginx's stderr and error log, for failure messages.
    fn logs(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// The demo, served as main.rs serves it, restartable on the same port
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Settings {
    origins: demo::Origins,
    proxies: demo::TrustedProxies,
    long_poll_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            origins: demo::Origins::Loopback,
            proxies: demo::TrustedProxies::default(),
            long_poll_max: Duration::from_secs(120),
        }
    }
}

struct Demo {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
    in_flight: InFlight,
}

impl Demo {
    /// Serves the demo's router over `log` on `addr` (port 0 for any).
    async fn start(addr: SocketAddr, log: Log, settings: &Settings) -> Self {
        // The port of a stopped server may take a moment to be free.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) if Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {err}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("bind {addr}: {err}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let (router, layer) = demo::durable_routes(
            log,
            demo::memory_streams(),
            demo::memory_durable(Duration::from_secs(30)),
            &settings.origins,
            &settings.proxies,
            CancellationToken::new(),
        );
        let in_flight = layer.in_flight();
        let router = demo::long_poll_max(router, settings.long_poll_max);
        // As main.rs serves it (DeadPeer on every socket, the peer's address
        // for TRUSTED_PROXIES).
        let serve = axum_longpoll::serve(listener, router)
            .layer(layer)
            .with_connect_info()
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let task = tokio::spawn(async move { serve.await.map(drop) });
        Self {
            addr,
            shutdown,
            task: Some(task),
            in_flight,
        }
    }

    /// Graceful shutdown, as main.rs on SIGTERM: parked polls answer `503`,
    /// streams end with their `reconnect` frame, the listener is gone.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(GUARD, task)
            .await
            .expect("graceful shutdown in time")
            .expect("server task")
            .expect("server");
        tokio::time::timeout(GUARD, self.in_flight.wait())
            .await
            .expect("every request finished after the shutdown");
    }

    /// `GET /stats`, straight from the demo.
    async fn stats(&self) -> Value {
        let res = common::raw_get(self.addr, "/stats").await;
        assert_eq!(res.status(), 200, "{}", res.text());
        serde_json::from_slice(&res.body).unwrap()
    }

    /// Polls `/stats` until `pred` holds (a hang guard).
    async fn wait_stats(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + GUARD;
        loop {
            let stats = self.stats().await;
            if pred(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: /stats is {stats}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ---------------------------------------------------------------------------
// Raw HTTP through nginx
// ---------------------------------------------------------------------------

async fn open(addr: SocketAddr, request: &str) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request.as_bytes()).await;
    conn
}

async fn get(addr: SocketAddr, target: &str) -> RawResponse {
    open(
        addr,
        &format!("GET {target} HTTP/1.1\r\nhost: test\r\n\r\n"),
    )
    .await
    .read_response()
    .await
}

async fn send_body(addr: SocketAddr, method: &str, target: &str, body: &str) -> RawResponse {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: test\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    open(addr, &request).await.read_response().await
}

/// `POST /publish` through `addr`: the event's id.
async fn publish(addr: SocketAddr, text: &str) -> String {
    let res = send_body(addr, "POST", "/publish", text).await;
    assert_eq!(res.status(), 200, "{}", res.text());
    let body: Value = serde_json::from_slice(&res.body).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Reads chunks of a streamed body until `needle` has arrived; the
/// stream must still be open then.
async fn read_until(conn: &mut RawConn, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = conn
            .read_chunk()
            .await
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; got {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

fn parked(n: u64) -> impl Fn(&Value) -> bool {
    move |s| s["parked"] == n
}

fn streaming(n: u64) -> impl Fn(&Value) -> bool {
    move |s| s["streaming"] == n
}

// ---------------------------------------------------------------------------
// (a) every mode through nginx
// ---------------------------------------------------------------------------

async fn every_mode_works_through_nginx() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    let app = Demo::start(any_port(), Log::new(1024), &Settings::default()).await;
    let nginx = Nginx::start(&bin, app.addr, RECIPE);
    let via = nginx.addr;

    // Long-poll: what is there at once, 204 + Cursor at the timeout, and a
    // parked poll answered by a publish.
    let first = publish(via, "one").await;
    let res = get(via, "/poll?from=oldest").await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert!(res.text().contains("\"one\""), "{}", res.text());
    let res = get(via, &format!("/poll?cursor={first}&timeout=0.2")).await;
    assert_eq!(res.status(), 204, "{}", res.text());
    assert_eq!(res.header("cursor"), Some(first.as_str()));
    let mut poll = open(
        via,
        &format!("GET /poll?cursor={first}&timeout=30 HTTP/1.1\r\nhost: test\r\n\r\n"),
    )
    .await;
    app.wait_stats("the poll parks", parked(1)).await;
    let second = publish(via, "two").await;
    let res = poll.read_response().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert!(res.text().contains(&second), "{}", res.text());

    // NDJSON and SSE: each event arrives while the stream stays open (nginx
    // does not buffer it).
    let mut ndjson = open(
        via,
        &format!("GET /stream?cursor={second} HTTP/1.1\r\nhost: test\r\n\r\n"),
    )
    .await;
    let head = ndjson.read_head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    let mut sse = open(
        via,
        &format!(
            "GET /sse HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\
             last-event-id: {second}\r\n\r\n"
        ),
    )
    .await;
    let head = sse.read_head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    app.wait_stats("both streams open", streaming(2)).await;
    let third = publish(via, "three").await;
    read_until(
        &mut ndjson,
        &format!("{{\"id\":\"{third}\",\"data\":\"three\"}}"),
    )
    .await;
    read_until(&mut sse, &format!("id: {third}\ndata: \"three\"\n\n")).await;

    // WebSocket both ways: events as text frames, a text frame published.
    let (mut ws, res) = tokio::time::timeout(
        IO_GUARD,
        tokio_tungstenite::connect_async(format!("ws://{via}/ws?cursor={third}")),
    )
    .await
    .expect("handshake hung")
    .expect("WebSocket handshake through nginx");
    assert_eq!(res.status(), 101);
    let open_frame = next_text(&mut ws).await;
    assert!(open_frame.contains("\"control\":\"open\""), "{open_frame}");
    ws.send(Message::Text("four".into())).await.unwrap();
    let echoed = next_text(&mut ws).await;
    assert!(echoed.contains("\"data\":\"four\""), "{echoed}");
    read_until(&mut ndjson, "\"data\":\"four\"").await;

    // Durable Streams: a long-poll answered by an append, then live=sse.
    let res = send_body(via, "PUT", "/v1/stream/proxy", "").await;
    assert_eq!(res.status(), 201, "{}", res.text());
    let res = send_body(via, "POST", "/v1/stream/proxy", "a").await;
    assert_eq!(res.status(), 204, "{}", res.text());
    let offset = res.header("stream-next-offset").unwrap().to_owned();
    let mut ds_poll = open(
        via,
        &format!(
            "GET /v1/stream/proxy?offset={offset}&live=long-poll HTTP/1.1\r\nhost: test\r\n\r\n"
        ),
    )
    .await;
    app.wait_stats("the Durable Streams long-poll parks", parked(1))
        .await;
    let res = send_body(via, "POST", "/v1/stream/proxy", "b").await;
    assert_eq!(res.status(), 204, "{}", res.text());
    let offset = res.header("stream-next-offset").unwrap().to_owned();
    let res = ds_poll.read_response().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(res.text(), "b");
    let mut ds_sse = open(
        via,
        &format!("GET /v1/stream/proxy?offset={offset}&live=sse HTTP/1.1\r\nhost: test\r\n\r\n"),
    )
    .await;
    let head = ds_sse.read_head().await;
    assert_eq!(head.status, 200);
    app.wait_stats("the Durable Streams SSE is open", streaming(3))
        .await;
    let res = send_body(via, "POST", "/v1/stream/proxy", "c").await;
    assert_eq!(res.status(), 204, "{}", res.text());
    read_until(&mut ds_sse, "event: data\ndata:c\n").await;
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The next text frame (pings and pongs skipped).
async fn next_text(ws: &mut WebSocket) -> String {
    let next = async {
        loop {
            match ws.next().await.expect("socket open").expect("frame") {
                Message::Text(text) => return text.to_string(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(IO_GUARD, next)
        .await
        .expect("no text frame in time")
}

// ---------------------------------------------------------------------------
// (b) a client's disconnect reaches the demo through nginx
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Leave {
    Fin,
    Rst,
    HalfClose,
}

async fn a_client_that_leaves_reaches_the_demo_through_nginx() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    let app = Demo::start(any_port(), Log::new(1024), &Settings::default()).await;
    let nginx = Nginx::start(&bin, app.addr, RECIPE);

    for leave in [Leave::Fin, Leave::Rst, Leave::HalfClose] {
        for (target, gauge) in [
            ("/poll?timeout=30", "parked"),
            ("/stream", "streaming"),
            ("/sse", "streaming"),
        ] {
            let what = format!("{leave:?} mid-{target}");
            let before = app.stats().await["disconnected"].as_u64().unwrap();
            let mut conn = open(
                nginx.addr,
                &format!("GET {target} HTTP/1.1\r\nhost: test\r\naccept: */*\r\n\r\n"),
            )
            .await;
            if gauge == "streaming" {
                // Mid-stream: the head and the opening frame are read, so a
                // FIN leaves nothing unread (which would make it an RST).
                assert_eq!(conn.read_head().await.status, 200, "{what}");
                conn.read_chunk().await.expect("the opening frame");
            }
            app.wait_stats(&what, |s| s[gauge] == 1).await;
            let kept = match leave {
                Leave::Fin => {
                    conn.fin();
                    None
                }
                Leave::Rst => {
                    conn.rst();
                    None
                }
                Leave::HalfClose => {
                    conn.half_close().await;
                    Some(conn)
                }
            };
            let stats = app.wait_stats(&what, |s| s[gauge] == 0).await;
            if gauge == "parked" {
                assert_eq!(stats["disconnected"], before + 1, "{what}: {stats}");
            }
            drop(kept);
        }
    }

    // HTTP/2 at the front: a stream reset (RST_STREAM) of a parked poll
    // and of an open stream; the connection itself stays.
    let mut h2 = H2::connect(nginx.h2).await;
    let poll = h2.get("/poll?timeout=30");
    app.wait_stats("an HTTP/2 poll parks", parked(1)).await;
    drop(poll);
    app.wait_stats("the HTTP/2 reset reaches the demo", parked(0))
        .await;
    let res = tokio::time::timeout(IO_GUARD, h2.get("/stream"))
        .await
        .expect("the stream's head in time")
        .expect("an HTTP/2 stream through nginx");
    assert_eq!(res.status(), 200);
    app.wait_stats("an HTTP/2 stream is open", streaming(1))
        .await;
    drop(res);
    app.wait_stats(
        "the HTTP/2 reset of a stream reaches the demo",
        streaming(0),
    )
    .await;
    h2.close().await;
}

// ---------------------------------------------------------------------------
// (c) the restart: EventSource through @retry
// ---------------------------------------------------------------------------

/// What a spec-following `EventSource` reader did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A response `200 text/event-stream` ("announce the connection"),
    /// to a request that carried this `Last-Event-ID`.
    Open { last_event_id: Option<String> },
    /// A dispatched event: its type, the last event ID, its data.
    Event {
        kind: String,
        id: String,
        data: String,
    },
    /// The body ended (or broke) after this many dispatched events: the
    /// reader waits its reconnection time and reconnects.
    Ended { events: usize, retry: Duration },
    /// No response at all (a network error): it reconnects too.
    NetworkError(String),
    /// "Fail the connection": any other answer. The reader is closed and
    /// never reconnects.
    Failed { status: u16, content_type: String },
}

/// An `EventSource` as the HTML standard specifies it ("Server-sent
/// events"), over one HTTP/1.1 connection per attempt: `Accept:
/// text/event-stream`, `Last-Event-ID` on reconnection, `retry:` as the
/// reconnection time (3 s until the server sets one), the
/// event-stream line parser; a network error or the end of a body
/// reestablishes the connection, any answer other than `200
/// text/event-stream` fails it for good.
async fn event_source(addr: SocketAddr, target: &'static str, seen: mpsc::UnboundedSender<Seen>) {
    let mut last_event_id = String::new();
    let mut retry = Duration::from_secs(3);
    loop {
        let attempt = connect_once(addr, target, &mut last_event_id, &mut retry, &seen).await;
        if let Err(failed) = attempt {
            let _ = seen.send(failed);
            return;
        }
        tokio::time::sleep(retry).await;
    }
}

/// One connection; `Err(Seen::Failed)` when the reader must stop.
async fn connect_once(
    addr: SocketAddr,
    target: &str,
    last_event_id: &mut String,
    retry: &mut Duration,
    seen: &mpsc::UnboundedSender<Seen>,
) -> Result<(), Seen> {
    let network_error = |err: String| {
        let _ = seen.send(Seen::NetworkError(err));
        Ok(())
    };
    let tcp = match TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(err) => return network_error(err.to_string()),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(pair) => pair,
        Err(err) => return network_error(err.to_string()),
    };
    tokio::spawn(conn);
    let mut request = hyper::Request::get(target)
        .header("host", "sse.test")
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    let sent_id = (!last_event_id.is_empty()).then(|| last_event_id.clone());
    if let Some(id) = &sent_id {
        request = request.header("last-event-id", id.as_str());
    }
    let response = match sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
    {
        Ok(response) => response,
        Err(err) => return network_error(err.to_string()),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if status != 200 || !essence.eq_ignore_ascii_case("text/event-stream") {
        return Err(Seen::Failed {
            status,
            content_type,
        });
    }
    let _ = seen.send(Seen::Open {
        last_event_id: sent_id,
    });
    let mut parser = EventStreamParser::new(last_event_id.clone());
    let mut body = response.into_body();
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(bytes) = frame.data_ref() {
            for event in parser.feed(bytes, retry) {
                let _ = seen.send(event);
            }
        }
    }
    // Any event not yet ended by a blank line is discarded (the spec).
    *last_event_id = parser.last_event_id.clone();
    let _ = seen.send(Seen::Ended {
        events: parser.dispatched,
        retry: *retry,
    });
    Ok(())
}

/// The event-stream interpretation of the HTML standard: lines end with
/// CRLF, LF or CR; `:` comments; `event`, `data`, `id` (without NUL) and
/// `retry` (ASCII digits only) fields; a blank line dispatches.
struct EventStreamParser {
    line: Vec<u8>,
    after_cr: bool,
    first: bool,
    data: String,
    kind: String,
    id_buffer: String,
    /// The reader's last event ID string, set at each dispatch.
    last_event_id: String,
    dispatched: usize,
}

impl EventStreamParser {
    fn new(last_event_id: String) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            first: true,
            data: String::new(),
            kind: String::new(),
            id_buffer: last_event_id.clone(),
            last_event_id,
            dispatched: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8], retry: &mut Duration) -> Vec<Seen> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr && b == b'\n' {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            if b == b'\r' || b == b'\n' {
                let line = std::mem::take(&mut self.line);
                let mut line = String::from_utf8_lossy(&line).into_owned();
                if std::mem::replace(&mut self.first, false) {
                    line = line.trim_start_matches('\u{feff}').to_owned();
                }
                out.extend(self.process(&line, retry));
            } else {
                self.line.push(b);
            }
        }
        out
    }

    fn process(&mut self, line: &str, retry: &mut Duration) -> Option<Seen> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.kind = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    *retry = Duration::from_millis(ms);
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Seen> {
        self.last_event_id = self.id_buffer.clone();
        if self.data.is_empty() {
            self.kind.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let kind = std::mem::take(&mut self.kind);
        self.dispatched += 1;
        Some(Seen::Event {
            kind: if kind.is_empty() {
                "message".to_owned()
            } else {
                kind
            },
            id: self.last_event_id.clone(),
            data,
        })
    }
}

/// The test's end of a running `event_source`.
struct Reader {
    rx: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
    history: Vec<Seen>,
}

impl Reader {
    fn spawn(addr: SocketAddr, target: &'static str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            rx,
            task: tokio::spawn(event_source(addr, target, tx)),
            history: Vec::new(),
        }
    }

    /// Reads what the reader does until `pred` holds (a hang guard).
    async fn until(&mut self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let next = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(Some(seen)) = next else {
                panic!("{what}: not reached; the reader did {:#?}", self.history);
            };
            self.history.push(seen.clone());
            if pred(&seen) {
                return seen;
            }
        }
    }

    /// The `message` events so far: (id, data).
    fn messages(&self) -> Vec<(String, String)> {
        self.history
            .iter()
            .filter_map(|seen| match seen {
                Seen::Event { kind, id, data } if kind == "message" => {
                    Some((id.clone(), data.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

fn message(data: &str) -> impl Fn(&Seen) -> bool + '_ {
    move |seen| matches!(seen, Seen::Event { kind, data: d, .. } if kind == "message" && d == data)
}

/// Publishes `texts` on `log` in-process (as another instance on the same
/// Redis stream would); the events as the demo's SSE sends them.
async fn publish_all(log: &Log, texts: &[String]) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    for text in texts {
        let cursor: Cursor = log.publish(Arc::from(text.as_str())).await.unwrap();
        sent.push((cursor.to_string(), serde_json::to_string(text).unwrap()));
    }
    sent
}

fn texts(prefix: &str) -> Vec<String> {
    (1..=3).map(|i| format!("{prefix} {i}")).collect()
}

/// With the recipe, an `EventSource` outlives a restart of the app: nginx
/// answers each reconnect while the app is down through `@retry` (`200
/// text/event-stream`, `retry:`), and once the app is back the reader
/// resumes from `Last-Event-ID` with every event once, in order. The log
/// outlives the restart (in production: Redis).
async fn an_eventsource_outlives_a_restart_through_retry() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    let log = Log::new(1024);
    let settings = Settings::default();
    let app = Demo::start(any_port(), log.clone(), &settings).await;
    let addr = app.addr;
    let nginx = Nginx::start(&bin, addr, RECIPE);
    let mut reader = Reader::spawn(nginx.addr, "/sse");
    reader
        .until("the stream opens", |s| matches!(s, Seen::Open { .. }))
        .await;

    let mut sent = publish_all(&log, &texts("before")).await;
    reader.until("events arrive", message("\"before 3\"")).await;
    app.stop().await;
    sent.extend(publish_all(&log, &texts("while down")).await);
    // nginx's answer while the app is down: opened, no event, ended.
    reader
        .until("@retry answers a reconnect", |s| {
            matches!(s, Seen::Ended { events: 0, .. })
        })
        .await;
    let retry_open = reader.history.iter().rev().nth(1).cloned();
    assert!(
        matches!(&retry_open, Some(Seen::Open { last_event_id: Some(id) }) if *id == sent[2].0),
        "the reconnect carried the last id: {retry_open:?}"
    );
    let app = Demo::start(addr, log.clone(), &settings).await;
    reader
        .until("the reader resumes", message("\"while down 3\""))
        .await;
    sent.extend(publish_all(&log, &texts("after")).await);
    reader.until("live again", message("\"after 3\"")).await;

    assert_eq!(reader.messages(), sent, "every event once, in order");
    assert!(
        !reader
            .history
            .iter()
            .any(|s| matches!(s, Seen::Failed { .. })),
        "{:#?}",
        reader.history
    );
    reader.task.abort();
    app.stop().await;
}

/// The same restart without the `error_page` line: nginx's `502
/// text/html` fails the `EventSource` for good; it never comes back.
async fn without_retry_an_eventsource_stops_at_the_first_502() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    let log = Log::new(1024);
    let settings = Settings::default();
    let app = Demo::start(any_port(), log.clone(), &settings).await;
    let addr = app.addr;
    let no_retry = Variant {
        retry: false,
        ..RECIPE
    };
    let nginx = Nginx::start(&bin, addr, no_retry);
    let mut reader = Reader::spawn(nginx.addr, "/sse");
    reader
        .until("the stream opens", |s| matches!(s, Seen::Open { .. }))
        .await;
    publish_all(&log, &texts("before")).await;
    reader.until("events arrive", message("\"before 3\"")).await;
    app.stop().await;
    let failed = reader
        .until("the reconnect fails", |s| matches!(s, Seen::Failed { .. }))
        .await;
    assert_eq!(
        failed,
        Seen::Failed {
            status: 502,
            content_type: "text/html".to_owned()
        }
    );
    // Closed: the reader has returned, and the app coming back changes
    // nothing.
    let app = Demo::start(addr, log.clone(), &settings).await;
    tokio::time::timeout(GUARD, &mut reader.task)
        .await
        .expect("the reader stopped")
        .unwrap();
    app.stop().await;
}

// ---------------------------------------------------------------------------
// (d) long-poll limits against the proxy's read timeout
// ---------------------------------------------------------------------------

/// The rule of docs/nginx.md, scaled down: the longest wait (here 2 s)
/// plus a margin below `proxy_read_timeout` answers `204`; a read timeout
/// below the wait cuts it: nginx's `504`, or with the recipe `@retry`'s
/// `503` + `Retry-After`, and the demo sees its client leave.
async fn the_longest_wait_fits_below_the_proxy_timeout() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    let settings = Settings {
        long_poll_max: Duration::from_secs(2),
        ..Settings::default()
    };
    let app = Demo::start(any_port(), Log::new(1024), &settings).await;
    let fits = Nginx::start(
        &bin,
        app.addr,
        Variant {
            read_timeout: Some("3s"),
            ..RECIPE
        },
    );
    let short = Variant {
        read_timeout: Some("1s"),
        retry: false,
    };
    let too_short = Nginx::start(&bin, app.addr, short);
    let too_short_recipe = Nginx::start(
        &bin,
        app.addr,
        Variant {
            retry: true,
            ..short
        },
    );

    // `?timeout=90` is clamped to the longest wait, 2 s.
    let res = get(fits.addr, "/poll?timeout=90").await;
    assert_eq!(res.status(), 204, "{}", res.text());
    assert!(res.header("cursor").is_some());

    let before = app.stats().await;
    let (plain, recipe) = tokio::join!(
        get(too_short.addr, "/poll?timeout=90"),
        get(too_short_recipe.addr, "/poll?timeout=90"),
    );
    assert_eq!(plain.status(), 504, "{}", plain.text());
    assert!(
        plain.text().contains("504 Gateway Time-out"),
        "{}",
        plain.text()
    );
    assert_eq!(recipe.status(), 503, "{}", recipe.text());
    assert_eq!(recipe.header("retry-after"), Some("2"));
    // nginx closed both upstream connections: the demo counts two
    // clients gone, no timeout.
    let disconnected = before["disconnected"].as_u64().unwrap() + 2;
    let after = app
        .wait_stats("the demo sees nginx give up", |s| {
            s["disconnected"] == disconnected && s["parked"] == 0
        })
        .await;
    assert_eq!(after["timeout"], before["timeout"], "{after}");
}

// ---------------------------------------------------------------------------
// (e) the WebSocket origin check behind nginx
// ---------------------------------------------------------------------------

/// A WebSocket handshake to `to`, from `from` (an address of this machine)
/// if given: the response's status and body.
async fn handshake(
    to: SocketAddr,
    from: Option<Ipv4Addr>,
    host: &str,
    origin: &str,
    extra: &[&str],
) -> (u16, String) {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(ip) = from {
        socket.bind(SocketAddr::from((ip, 0))).unwrap();
    }
    let mut tcp = socket.connect(to).await.unwrap();
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nhost: {host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         origin: {origin}\r\n"
    );
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    // By hand: `RawConn::read_head` skips `1xx` heads, `101` among them.
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tokio::time::timeout(IO_GUARD, tcp.read(&mut chunk))
            .await
            .expect("the handshake's answer in time")
            .unwrap();
        assert!(n > 0, "EOF before the answer's head: {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while status != 101 && answer.len() < head_end + length {
        let n = tokio::time::timeout(IO_GUARD, tcp.read(&mut chunk))
            .await
            .expect("the refusal's body in time")
            .unwrap();
        assert!(n > 0, "EOF in the body");
        answer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&answer[head_end..]).into_owned();
    (status, body)
}

async fn the_websocket_origin_check_believes_trusted_proxies_only() {
    let bin = nginx().unwrap_or_else(|why| panic!("{why}"));
    // Pages of `http://app.example` are the demo's own (served through
    // nginx); ORIGINS lists another site, so loopback pages do not pass by
    // that rule.
    let listed = "http://listed.example";
    let origins = demo::Origins::List(vec![HeaderValue::from_static(listed)]);
    let default = Settings {
        origins: origins.clone(),
        ..Settings::default()
    };
    let trusting = Settings {
        origins,
        // nginx connects from 127.0.0.1; 127.0.0.2 stands for any other
        // peer.
        proxies: "127.0.0.1".parse().unwrap(),
        ..Settings::default()
    };
    let plain = Demo::start(any_port(), Log::new(16), &default).await;
    let behind = Demo::start(any_port(), Log::new(16), &trusting).await;
    let plain_nginx = Nginx::start(&bin, plain.addr, RECIPE);
    let trusted_nginx = Nginx::start(&bin, behind.addr, RECIPE);
    let own = "http://app.example";
    let spoof = [
        "x-forwarded-host: app.example",
        "x-forwarded-proto: http",
        "forwarded: host=app.example;proto=http",
    ];
    let other = Ipv4Addr::new(127, 0, 0, 2);

    for (what, to, from, host, origin, extra, expected) in [
        // Through nginx, which names the demo `demo` in Host.
        (
            "same origin, untrusted proxy",
            plain_nginx.addr,
            None,
            "app.example",
            own,
            &[][..],
            403,
        ),
        (
            "same origin, trusted proxy",
            trusted_nginx.addr,
            None,
            "app.example",
            own,
            &[],
            101,
        ),
        (
            "listed origin, untrusted proxy",
            plain_nginx.addr,
            None,
            "app.example",
            listed,
            &[],
            101,
        ),
        (
            "another site, trusted proxy",
            trusted_nginx.addr,
            None,
            "app.example",
            "http://evil.example",
            &[],
            403,
        ),
        // The client's own forwarded headers: nginx replaces them.
        (
            "another site naming itself, through nginx",
            trusted_nginx.addr,
            None,
            "app.example",
            "http://evil.example",
            &[
                "x-forwarded-host: evil.example",
                "forwarded: host=evil.example",
            ],
            403,
        ),
        // Straight to the demo, with forwarded headers of its own.
        (
            "forwarded headers from an untrusted peer",
            behind.addr,
            Some(other),
            "127.0.0.1",
            own,
            &spoof,
            403,
        ),
        (
            "forwarded headers from the trusted peer",
            behind.addr,
            None,
            "127.0.0.1",
            own,
            &spoof,
            101,
        ),
        (
            "forwarded headers, TRUSTED_PROXIES unset",
            plain.addr,
            None,
            "127.0.0.1",
            own,
            &spoof,
            403,
        ),
        // The default rule, unchanged: Origin's host is Host.
        (
            "Host and Origin agree, no proxy",
            plain.addr,
            Some(other),
            "app.example",
            own,
            &[],
            101,
        ),
    ] {
        let (status, body) = handshake(to, from, host, origin, extra).await;
        assert_eq!(status, expected, "{what}: {body}");
        if status == 403 {
            assert!(
                body.contains("TRUSTED_PROXIES"),
                "{what}: the refusal says why: {body}"
            );
        }
    }

    // TRUSTED_PROXIES needs the peer's address: a router served without
    // `ConnectInfo` answers 500 naming what is missing, and lets nothing
    // through on a forwarded host.
    let shutdown = CancellationToken::new();
    let (router, _) = demo::router_with_durable(
        Log::new(16),
        demo::memory_streams(),
        demo::memory_durable(Duration::from_secs(30)),
        &demo::Origins::Loopback,
        &"loopback".parse().unwrap(),
        shutdown.clone(),
    );
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let bare = common::spawn_on(listener, router, shutdown);
    let (status, body) = handshake(bare.addr, None, "127.0.0.1", own, &spoof).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("into_make_service_with_connect_info"),
        "{body}"
    );
}

/// `TRUSTED_PROXIES` values, and what the check reads from the forwarded
/// headers.
fn trusted_proxies_setting_and_forwarded_headers() {
    let loopback: demo::TrustedProxies = "loopback".parse().unwrap();
    for (ip, trusted) in [
        ("127.0.0.1", true),
        ("127.9.9.9", true),
        ("::1", true),
        ("::ffff:127.0.0.1", true),
        ("10.0.0.1", false),
        ("::2", false),
    ] {
        assert_eq!(loopback.contains(ip.parse().unwrap()), trusted, "{ip}");
    }
    let list: demo::TrustedProxies = " 10.0.0.0/8, 192.168.1.5 ,fd00::/8,loopback"
        .parse()
        .unwrap();
    for (ip, trusted) in [
        ("10.200.3.4", true),
        ("192.168.1.5", true),
        ("::ffff:10.1.1.1", true),
        ("fd12::1", true),
        ("127.0.0.1", true),
        ("192.168.1.6", false),
        ("11.0.0.1", false),
        ("fe80::1", false),
    ] {
        assert_eq!(list.contains(ip.parse().unwrap()), trusted, "{ip}");
    }
    let none: demo::TrustedProxies = "none".parse().unwrap();
    assert_eq!(none, demo::TrustedProxies::default());
    assert!(!none.contains(IpAddr::from([127, 0, 0, 1])));
    for bad in [
        "",
        "bogus",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/a",
        "loopback,,",
        "127.0.0.1:80",
        "[::1]",
        "*",
    ] {
        let err = bad.parse::<demo::TrustedProxies>().unwrap_err();
        assert!(!err.is_empty(), "{bad:?}");
    }

    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    };
    let host = |h: &str, p: Option<&str>| Some((h.to_owned(), p.map(str::to_owned)));
    // The last element: the one the proxy next to the app added.
    assert_eq!(
        demo::forwarded_host(&headers(&[
            ("forwarded", "for=1.2.3.4;host=evil.example"),
            (
                "forwarded",
                "for=5.6.7.8;host=\"app.example:8443\";proto=https"
            ),
        ])),
        host("app.example:8443", Some("https"))
    );
    assert_eq!(
        demo::forwarded_host(&headers(&[(
            "forwarded",
            "host=\"a,b\";proto=http, proto=https;host=\"c\\\"d\""
        )])),
        host("c\"d", Some("https"))
    );
    // `Forwarded` wins over `X-Forwarded-*`, even without a host.
    assert_eq!(
        demo::forwarded_host(&headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-host", "app.example"),
        ])),
        None
    );
    assert_eq!(
        demo::forwarded_host(&headers(&[
            ("x-forwarded-host", "evil.example, app.example"),
            ("x-forwarded-proto", "https"),
        ])),
        host("app.example", Some("https"))
    );
    assert_eq!(demo::forwarded_host(&headers(&[])), None);

    for (origin, served, scheme, same) in [
        ("https://app.example", "app.example", Some("https"), true),
        (
            "https://app.example",
            "APP.example:443",
            Some("https"),
            true,
        ),
        ("http://app.example:8080", "app.example:8080", None, true),
        ("http://app.example", "app.example", Some("https"), false),
        ("http://app.example:8080", "app.example", None, false),
        ("http://[::1]:8080", "[::1]:8080", Some("http"), true),
        ("http://evil.example", "app.example", None, false),
        ("null", "app.example", None, false),
    ] {
        assert_eq!(
            demo::same_origin(origin, served, scheme),
            same,
            "{origin} at {served} over {scheme:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::test;
    harness::run(vec![
        test!(every_mode_works_through_nginx, current_thread).needs(NGINX),
        test!(
            a_client_that_leaves_reaches_the_demo_through_nginx,
            current_thread
        )
        .needs(NGINX),
        test!(
            an_eventsource_outlives_a_restart_through_retry,
            current_thread
        )
        .needs(NGINX),
        test!(
            without_retry_an_eventsource_stops_at_the_first_502,
            current_thread
        )
        .needs(NGINX),
        test!(
            the_longest_wait_fits_below_the_proxy_timeout,
            current_thread
        )
        .needs(NGINX),
        test!(
            the_websocket_origin_check_believes_trusted_proxies_only,
            current_thread
        )
        .needs(NGINX),
        test!(trusted_proxies_setting_and_forwarded_headers),
    ])
}
