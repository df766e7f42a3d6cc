#![allow(clippy::unwrap_used)]
//! The demo page (`GET /`, `examples/demo/page.html`) in a real browser:
//! Debian's headless Chromium, driven through chromedriver with fantoccini.
//!
//! The server is the demo's own router (`examples/demo/app.rs`) with the
//! CORS layer `main.rs` adds, served in-process on `127.0.0.1`; "restarting"
//! it is a graceful shutdown and a new server, with a new log (so a new
//! epoch), on the same port, after its WebSockets finished their `1001`
//! closing handshake (as `main.rs` waits for them). The page is served by a
//! second server, so every transport runs cross-origin (`?api=`) through the
//! documented CORS setup with credentials (a WebSocket is not subject to
//! CORS, and the demo's `/ws` checks no `Origin`).
//!
//! Scenarios, for each transport (long-poll, NDJSON stream, SSE,
//! WebSocket):
//!
//! 1. the page connects; 100 messages published through `POST /publish`
//!    show up in order, once each, under the ids `/publish` returned, and
//!    the page's cursor is the last of them;
//! 2. the server stops (the page sees the shutdown answer: `503` +
//!    `Retry-After`, the `reconnect` frame or close code `1001`, then a
//!    refused connection) and starts again on the same port: the page
//!    resyncs after the `410` of a poll (or the in-band `gone` frame of a
//!    stream, or, on a WebSocket, the `gone` frame and close code `4410`)
//!    for the old epoch and shows every message
//!    published since, in order;
//! 3. a burst of 1000 events into a log that retains 32, published
//!    in-process in one go (the test runs on a current-thread runtime, so no
//!    server task reads in between): the page's cursor is evicted, the
//!    server says so (`410` to the parked poll, an in-band `gone` frame on
//!    the streams and the WebSocket, which then closes with `4410`) and the
//!    page resyncs and shows exactly the 32 retained;
//! 4. the page is closed: `/stats` shows `parked`, `streaming` and
//!    `websockets` back to 0.
//!
//! Then the same-origin page: the publish form (through `POST /publish`,
//! then, on the WebSocket transport, as a text frame on the socket),
//! switching transports without losing or repeating a message, a restart
//! under the WebSocket transport, and the screenshot for
//! the README (`UPDATE_SCREENSHOT=1` writes `docs/demo.png`; otherwise it
//! goes to the target directory).
//!
//! Without chromium and chromedriver the browser test is not run and is
//! reported `ignored (<why>)`, unless `CI=true`: then it fails
//! (`tests/support/harness.rs`). `CHROME` and `CHROMEDRIVER` override the
//! binaries. Every wait polls a condition with a deadline.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;

use common::PublishNow as _;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::EventLog;
use bytes::Bytes;
use demo::Origins;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::util::MapRequestLayer;

/// Hang guard for one condition the page must reach.
const PAGE_GUARD: Duration = Duration::from_secs(15);
/// Hang guard for the server's stats to reach a value.
const STATS_GUARD: Duration = Duration::from_secs(10);
/// How often a condition is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Messages per transport before the restart.
const BEFORE: usize = 100;
/// Messages per transport after it (half before the page is back).
const AFTER: usize = 20;
/// Events the restarted server retains.
const RETAIN: usize = 32;
/// Events published at once to evict the page's cursor.
const BURST: usize = 1000;

const TRANSPORTS: [&str; 4] = ["poll", "stream", "sse", "ws"];

// ---------------------------------------------------------------------------
// The demo server, restartable on the same port
// ---------------------------------------------------------------------------

/// The demo as `main.rs` serves it, on a real socket.
struct Api {
    addr: SocketAddr,
    log: EventLog<Arc<str>>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    sockets: InFlight,
    /// `POST /publish` requests seen, to tell the page's form publishing
    /// over HTTP from publishing through its WebSocket.
    posts: Arc<AtomicUsize>,
    /// `GET /streams/{name}/sse` requests seen (an EventSource's connects).
    sse_gets: Arc<AtomicUsize>,
}

impl Api {
    /// Serves a fresh demo (new log, so a new epoch) on `addr` (port 0 for
    /// any). The port of a stopped server may take a moment to be free.
    async fn start(addr: SocketAddr, origins: &Origins) -> Self {
        Self::start_retaining(addr, origins, 1024).await
    }

    async fn start_retaining(addr: SocketAddr, origins: &Origins, retain: usize) -> Self {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) if Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {err}; retrying");
                    tokio::time::sleep(POLL_EVERY).await;
                }
                Err(err) => panic!("bind {addr}: {err}"),
            }
        };
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let log = EventLog::new(retain);
        let (router, sockets) =
            demo::router_with_in_flight(log.clone(), demo::memory_streams(), shutdown.clone());
        let posts = Arc::new(AtomicUsize::new(0));
        let sse_gets = Arc::new(AtomicUsize::new(0));
        let (counted, sse_counted) = (posts.clone(), sse_gets.clone());
        let app = demo::cross_origin(router, origins).layer(MapRequestLayer::new(
            move |req: Request<Body>| {
                let path = req.uri().path();
                if req.method() == Method::POST && path == "/publish" {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                if path.starts_with("/streams/") && path.ends_with("/sse") {
                    sse_counted.fetch_add(1, Ordering::SeqCst);
                }
                req
            },
        ));
        let signal = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
        });
        Self {
            addr,
            log,
            shutdown,
            task,
            sockets,
            posts,
            sse_gets,
        }
    }

    /// Graceful shutdown, as `main.rs` on SIGTERM: parked polls answer 503,
    /// streams send their final frame, WebSockets get `1001`; the listener
    /// is gone, and so (as `serve` does not wait for upgraded connections)
    /// is every WebSocket, its closing handshake done.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown within 10 s")
            .expect("server task")
            .expect("server");
        tokio::time::timeout(Duration::from_secs(10), self.sockets.wait())
            .await
            .expect("every WebSocket closed within 10 s of the shutdown");
    }

    fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

// ---------------------------------------------------------------------------
// The test's own HTTP client (publish, stats)
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Http(HttpClient<HttpConnector, Full<Bytes>>);

impl Http {
    fn new() -> Self {
        Self(HttpClient::builder(TokioExecutor::new()).build_http())
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
        let res = tokio::time::timeout(Duration::from_secs(10), self.0.request(req))
            .await
            .expect("answer within 10 s")
            .expect("request");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, body)
    }

    /// `POST /publish` → the event's id.
    async fn publish(&self, api: &Api, text: &str) -> String {
        let req = Request::post(format!("{}/publish", api.base()))
            .body(Full::new(Bytes::from(text.to_owned())))
            .unwrap();
        let (status, _, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "publish: {body:?}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        body["id"].as_str().expect("id").to_owned()
    }

    /// Publishes `texts` one after the other: `(id, text)` in order.
    async fn publish_all(&self, api: &Api, texts: &[String]) -> Vec<Item> {
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let id = self.publish(api, text).await;
            out.push(Item::Message {
                id,
                text: text.clone(),
            });
        }
        out
    }

    async fn stats(&self, api: &Api) -> Value {
        let req = Request::get(format!("{}/stats", api.base()))
            .body(Full::default())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    }

    /// Polls `/stats` until `done` holds.
    async fn wait_stats(&self, api: &Api, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STATS_GUARD;
        loop {
            let stats = self.stats(api).await;
            if done(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "stats: {what} within {STATS_GUARD:?}; last: {stats}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

fn texts(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i:03}")).collect()
}

// ---------------------------------------------------------------------------
// Reading the page through its test hooks
// ---------------------------------------------------------------------------

/// One entry of `#messages`: a message, or a resync marker.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    /// `via`: `"410"` (an HTTP answer) or `"frame"` (in-band, mid-stream).
    Resync {
        resync: String,
        via: String,
    },
}

/// What the page shows, from its `data-*` attributes.
#[derive(Debug, Deserialize)]
struct Page {
    state: String,
    cursor: String,
    transport: String,
    reconnects: u32,
    resyncs: u32,
    items: Vec<Item>,
    /// `data-kind` of the connection log, newest first.
    log: Vec<String>,
    /// The close codes of the WebSocket closes in the log, oldest first.
    closes: Vec<u16>,
}

impl Page {
    fn messages(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Message { .. }))
            .count()
    }
}

const SNAPSHOT: &str = r##"
const app = document.getElementById("app");
if (!app) return null;
return {
  state: app.dataset.state,
  cursor: app.dataset.cursor,
  transport: app.dataset.transport,
  reconnects: Number(app.dataset.reconnects),
  resyncs: Number(app.dataset.resyncs),
  items: [...document.querySelectorAll("#messages > li")].map((li) => li.dataset.id
    ? { id: li.dataset.id, text: li.querySelector(".text").textContent }
    : { resync: li.dataset.resync, via: li.dataset.via }),
  log: [...document.querySelectorAll("#log > li")].map((li) => li.dataset.kind),
  closes: [...document.querySelectorAll("#log > li[data-kind=closed]")]
    .map((li) => Number(li.dataset.code)).reverse(),
};
"##;

async fn snapshot(client: &Client) -> Option<Page> {
    let value = client.execute(SNAPSHOT, vec![]).await.expect("execute");
    serde_json::from_value(value).ok()
}

/// Polls the page until `done` holds; panics with the last state.
async fn wait_page(client: &Client, what: &str, done: impl Fn(&Page) -> bool) -> Page {
    let deadline = Instant::now() + PAGE_GUARD;
    loop {
        let page = snapshot(client).await;
        match page {
            Some(page) if done(&page) => return page,
            _ if Instant::now() >= deadline => {
                panic!("page: {what} within {PAGE_GUARD:?}; last: {page:#?}")
            }
            _ => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// Closes the page's tab (a real close, not a navigation), keeping the
/// session in a fresh blank tab.
async fn close_page(client: &Client) {
    let fresh = client.new_window(true).await.expect("new tab");
    client.close_window().await.expect("close the page's tab");
    client
        .switch_to_window(fresh.handle)
        .await
        .expect("switch to the new tab");
}

/// What the server must count while the page of `transport` is open:
/// exactly its one connection.
fn open_at_server(transport: &str) -> impl Fn(&Value) -> bool + '_ {
    move |s| {
        let one = |gauge| if gauge == transport { 1 } else { 0 };
        s["parked"] == one("poll")
            && s["streaming"] == one("stream") + one("sse")
            && s["websockets"] == one("ws")
    }
}

fn all_closed(s: &Value) -> bool {
    s["parked"] == 0 && s["streaming"] == 0 && s["websockets"] == 0
}

/// How the page learns that its cursor is gone, after a restart (`restart`)
/// or mid-connection (an eviction): the `410` of an HTTP request, or the
/// in-band `gone` frame of a stream or a WebSocket (before its `4410`).
fn gone_via(transport: &str, _restart: bool) -> &'static str {
    match transport {
        // Both streams answer a stale cursor in-band (`Streaming::sse`,
        // `Streaming::ndjson`): EventSource cannot read a 410, and NDJSON
        // follows the same rule.
        "poll" => "410",
        _ => "frame",
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// One transport, cross-origin: 100 messages, a restart, a close.
async fn transport_scenario(client: &Client, http: &Http, page: &str, port: u16, t: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let origins = Origins::List(vec![HeaderValue::from_str(page).unwrap()]);
    let api = Api::start(addr, &origins).await;
    let url = format!("{page}/?api={}&transport={t}", api.base());
    client.goto(&url).await.expect("open the page");
    wait_page(client, "connected", |p| {
        p.transport == t && p.state == "connected"
    })
    .await;

    // 1. Live messages: all of them, in order, once each.
    let before = http
        .publish_all(&api, &texts(&format!("{t} before"), 0..BEFORE))
        .await;
    let shown = wait_page(client, "all messages shown", |p| p.messages() >= BEFORE).await;
    assert_eq!(
        shown.items, before,
        "{t}: the page shows the published messages, in order, once each, with their ids"
    );
    let last = |items: &[Item]| match items.last() {
        Some(Item::Message { id, .. }) => id.clone(),
        other => panic!("no last message: {other:?}"),
    };
    let last_before = last(&before);
    wait_page(client, "cursor at the last message", |p| {
        p.cursor == last_before
    })
    .await;
    http.wait_stats(&api, "the page's connection open", open_at_server(t))
        .await;

    // 2. Stop the server; the page sees it go, then sees it refuse.
    api.stop().await;
    let gone = wait_page(client, "reconnecting while the server is down", |p| {
        p.state == "reconnecting"
    })
    .await;
    let shutdown_seen = if t == "poll" { "waiting" } else { "reconnect" };
    assert!(
        gone.log.iter().any(|k| k == shutdown_seen),
        "{t}: the shutdown answer shows as `{shutdown_seen}` in the log: {:?}",
        gone.log
    );
    if t == "ws" {
        // 1001 Going Away, then the refused reconnects (1006).
        assert_eq!(
            gone.closes.first(),
            Some(&1001),
            "{t}: the socket's first close is the shutdown's: {:?}",
            gone.closes
        );
        assert!(
            gone.closes[1..].iter().all(|&c| c == 1006),
            "{t}: then the refused reconnects: {:?}",
            gone.closes
        );
    }

    // Start again on the same port, with a new log (new epoch). Half of the
    // new messages are published before the page is back.
    let api = Api::start_retaining(addr, &origins, RETAIN).await;
    let mut after = http
        .publish_all(&api, &texts(&format!("{t} after"), 0..AFTER / 2))
        .await;
    let back = wait_page(client, "resynced", |p| p.state == "resynced").await;
    assert_eq!(back.resyncs, 1, "{t}: one resync");
    assert!(back.reconnects >= 1, "{t}: counted as a reconnect");
    if t == "ws" {
        assert_eq!(
            back.closes.last(),
            Some(&4410),
            "{t}: the old epoch's cursor is closed with 4410: {:?}",
            back.closes
        );
    }
    after.extend(
        http.publish_all(&api, &texts(&format!("{t} after"), AFTER / 2..AFTER))
            .await,
    );
    let shown = wait_page(client, "messages after the restart", |p| {
        p.messages() >= BEFORE + AFTER
    })
    .await;
    let mut expected = before;
    expected.push(Item::Resync {
        resync: "epoch".into(),
        via: gone_via(t, true).into(),
    });
    expected.extend(after.iter().cloned());
    assert_eq!(
        shown.items, expected,
        "{t}: the old messages, one resync marker for the new epoch, then every new message in order"
    );
    let last_after = last(&after);
    wait_page(client, "cursor at the last new message", |p| {
        p.cursor == last_after
    })
    .await;
    http.wait_stats(&api, "the page's connection open", open_at_server(t))
        .await;

    // 3. A burst beyond retention, with no await in between: no reader runs
    // until the last event is in, so the page's cursor is evicted.
    let burst: Vec<Item> = texts(&format!("{t} burst"), 0..BURST)
        .into_iter()
        .map(|text| Item::Message {
            id: api.log.publish_now(Arc::from(text.as_str())).to_string(),
            text,
        })
        .collect();
    let last_burst = last(&burst);
    let shown = wait_page(client, "resynced after the burst", |p| {
        p.resyncs == 2 && p.state == "resynced" && p.cursor == last_burst
    })
    .await;
    expected.push(Item::Resync {
        resync: "evicted".into(),
        // The parked poll is answered 410; a stream or a WebSocket ends
        // with `gone`.
        via: gone_via(t, false).into(),
    });
    expected.extend(burst[BURST - RETAIN..].iter().cloned());
    assert_eq!(
        shown.items, expected,
        "{t}: after the eviction, one resync marker and exactly the retained events"
    );
    if t == "ws" {
        assert_eq!(
            shown.closes.last(),
            Some(&4410),
            "{t}: the evicted cursor is closed with 4410: {:?}",
            shown.closes
        );
    }

    // 4. Close the page: the server sees the browser go.
    http.wait_stats(&api, "the page's connection open", open_at_server(t))
        .await;
    close_page(client).await;
    http.wait_stats(&api, "parked and streaming back to 0", all_closed)
        .await;
    api.stop().await;
}

/// Types `text` into the page's form and presses Publish.
async fn send_from_form(client: &Client, text: &str) {
    let input = client.find(Locator::Css("#text")).await.expect("input");
    input.send_keys(text).await.expect("type");
    client
        .find(Locator::Css("#send"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
}

/// Clicks the button of transport `t` (unless it is the current one) and
/// waits until the page is connected over it.
async fn switch_to(client: &Client, t: &str) {
    if snapshot(client).await.is_some_and(|p| p.transport == t) {
        return;
    }
    client
        .find(Locator::XPath(&format!(
            "//label[input[@name='transport' and @value='{t}']]"
        )))
        .await
        .expect("transport button")
        .click()
        .await
        .expect("click");
    wait_page(client, "switched", |p| {
        p.transport == t && p.state == "connected"
    })
    .await;
}

/// The page from the server itself: the form (over HTTP, then through the
/// WebSocket), transport switches, a restart, and the screenshot.
async fn same_origin_scenario(client: &Client, http: &Http, port: u16) -> Vec<u8> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let api = Api::start(addr, &Origins::Loopback).await;
    client
        .goto(&format!("{}/", api.base()))
        .await
        .expect("open the page");
    wait_page(client, "connected (default transport: poll)", |p| {
        p.transport == "poll" && p.state == "connected"
    })
    .await;

    // The form publishes through POST /publish.
    let typed = "Hello from the page — grüße";
    send_from_form(client, typed).await;
    let page = wait_page(client, "the typed message", |p| p.messages() == 1).await;
    let head = http.stats(&api).await["head"].as_str().unwrap().to_owned();
    let mut expected = vec![Item::Message {
        id: head,
        text: typed.into(),
    }];
    assert_eq!(page.items, expected, "the form's message, with its id");
    assert_eq!(
        api.posts(),
        1,
        "the form's message went through POST /publish"
    );
    assert_eq!(page.log.first().map(String::as_str), Some("published"));

    // Switching transports resumes from the cursor: nothing lost or repeated.
    let lines = [
        ("stream", "curl -d 'hi' localhost:3000/publish works too"),
        ("stream", "switched to NDJSON: resumed from the cursor"),
        ("sse", "and now over server-sent events"),
    ];
    for (t, text) in lines {
        switch_to(client, t).await;
        expected.extend(http.publish_all(&api, &[text.to_owned()]).await);
        let page = wait_page(client, "message after a switch", |p| {
            p.messages() >= expected.len()
        })
        .await;
        assert_eq!(page.items, expected, "after switching to {t}");
    }

    // On the WebSocket the form sends a text frame, which the server
    // publishes: no POST /publish.
    switch_to(client, "ws").await;
    let posts = api.posts();
    let typed = "and this one through the WebSocket itself";
    send_from_form(client, typed).await;
    let page = wait_page(client, "the message sent over the socket", |p| {
        p.messages() > expected.len()
    })
    .await;
    let head = http.stats(&api).await["head"].as_str().unwrap().to_owned();
    expected.push(Item::Message {
        id: head,
        text: typed.into(),
    });
    assert_eq!(page.items, expected, "the socket's message, with its id");
    assert_eq!(
        api.posts(),
        posts,
        "sent over the socket, not POST /publish"
    );
    assert!(
        page.log.iter().any(|k| k == "sent"),
        "the log says it was sent over the socket: {:?}",
        page.log
    );

    // A restart, for the picture: stale messages, the resync marker, new
    // ones, and the WebSocket's closes (1001, 1006, 4410) in the log.
    api.stop().await;
    wait_page(client, "reconnecting", |p| p.state == "reconnecting").await;
    let api = Api::start(addr, &Origins::Loopback).await;
    wait_page(client, "resynced", |p| p.state == "resynced").await;
    expected.push(Item::Resync {
        resync: "epoch".into(),
        via: gone_via("ws", true).into(),
    });
    expected.extend(
        http.publish_all(
            &api,
            &[
                "The server restarted: new log, new epoch".to_owned(),
                "gone frame + 4410 for the old cursor → resynced from the restart cursor"
                    .to_owned(),
            ],
        )
        .await,
    );
    let page = wait_page(client, "messages after the restart", |p| {
        p.messages() >= expected.len() - 1
    })
    .await;
    assert_eq!(page.items, expected, "same-origin restart");
    assert_eq!(page.closes.first(), Some(&1001), "{:?}", page.closes);
    assert_eq!(page.closes.last(), Some(&4410), "{:?}", page.closes);

    // End the highlight of new messages, and the form's focus ring (the
    // socket's message left it focused), before the picture.
    client
        .execute(
            "document.activeElement?.blur(); \
             return document.getAnimations().forEach((a) => a.finish())",
            vec![],
        )
        .await
        .expect("finish animations");
    let png = client.screenshot().await.expect("screenshot");

    close_page(client).await;
    http.wait_stats(&api, "parked and streaming back to 0", all_closed)
        .await;
    api.stop().await;
    png
}

// ---------------------------------------------------------------------------
// Chromium and chromedriver
// ---------------------------------------------------------------------------

/// chromium and chromedriver, found by `browser`.
const CHROMIUM: harness::Need = harness::Need {
    tool: "chromium and chromedriver",
    check: || browser().map(drop),
};

/// The browser and its driver, or what is missing and how to install it.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chrome = find_binary("CHROME", &["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_binary("CHROMEDRIVER", &["chromedriver"]);
    match (chrome, chromedriver) {
        (Some(chrome), Some(chromedriver)) => Ok((chrome, chromedriver)),
        _ => Err("chromium and chromedriver not found \
                  (apt-get install chromium chromium-driver, or set CHROME and CHROMEDRIVER)"
            .to_owned()),
    }
}

/// `env` if set (and a file), else the first of `names` found in
/// `/usr/bin` or `PATH`.
fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// chromedriver (killed when dropped) and a fresh profile and log
/// directory (removed when dropped).
struct Driver {
    child: tokio::process::Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Driver {
    fn start(chromedriver: &Path) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("axum-longpoll-browser-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("profile dir");
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log file");
        let child = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Ends chromedriver and removes the directory (Chromium may still be
    /// writing its profile for a moment after the session ended).
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir_all(&self.dir).is_err()
            && self.dir.exists()
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// A session of headless Chromium, once chromedriver answers.
    async fn session(&self, chrome: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,1000",
                    "--force-device-scale-factor=1",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", self.dir.join("profile").display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&self.url).await {
                Ok(client) => return client,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => {
                    let log = self.dir.join("chromedriver.log");
                    panic!(
                        "no Chromium session within 20 s: {err}\nchromedriver log:\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    )
                }
            }
        }
    }
}

fn screenshot_path() -> PathBuf {
    if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo.png")
    }
}

/// A browser's own `EventSource` on a named stream that closes: it gets the
/// events and the `closed` event, reconnects once (its `Last-Event-ID` is
/// the end: `204`), and then stops for good (`readyState` 2, no more
/// requests), where before the stream's last frame said `reconnect` and the
/// browser came back for ever.
async fn closed_stream_scenario(client: &Client, http: &Http) {
    let api = Api::start(SocketAddr::from(([127, 0, 0, 1], 0)), &Origins::Loopback).await;
    client
        .goto(&format!("{}/", api.base()))
        .await
        .expect("open the page");
    client
        .execute(
            r#"
            const seen = { events: [], closed: null, errors: 0 };
            const es = new EventSource("/streams/answer/sse?from=oldest");
            es.onmessage = (e) => seen.events.push(JSON.parse(e.data));
            es.addEventListener("closed", (e) => { seen.closed = JSON.parse(e.data).cursor; });
            es.onerror = () => { seen.errors += 1; };
            window.__closedTest = { seen, es };
            "#,
            vec![],
        )
        .await
        .expect("open an EventSource");
    let post = |path: &str, body: &str| {
        Request::post(format!("{}{path}", api.base()))
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    // The page's EventSource is reading before anything is published.
    http.wait_stats(&api, "the EventSource connected", |s| s["streaming"] == 1)
        .await;
    for word in ["The", "answer", "is"] {
        let (status, _, _) = http.send(post("/streams/answer/publish", word)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, body) = http.send(post("/streams/answer/close", "42")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let end: Value = serde_json::from_slice(&body).unwrap();

    let read = || async {
        client
            .execute(
                "const t = window.__closedTest;                  return { events: t.seen.events, closed: t.seen.closed,                           errors: t.seen.errors, state: t.es.readyState };",
                vec![],
            )
            .await
            .expect("read the EventSource")
    };
    // Every event, then `closed`; then, after its `retry:`, the one
    // reconnect (answered 204) closes the EventSource for good.
    let deadline = Instant::now() + Duration::from_secs(15);
    let state = loop {
        let state = read().await;
        if state["state"] == 2 {
            break state;
        }
        assert!(Instant::now() < deadline, "EventSource still open: {state}");
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!(state["events"], json!(["The", "answer", "is", "42"]));
    assert_eq!(state["closed"], end["cursor"]);
    assert_eq!(
        api.sse_gets.load(Ordering::SeqCst),
        2,
        "one stream, one 204"
    );
    // Longer than the largest `retry:` (2 s + 50 %): it does not come back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(read().await["state"], 2);
    assert_eq!(
        api.sse_gets.load(Ordering::SeqCst),
        2,
        "EventSource reconnected after the 204"
    );
    api.stop().await;
}

// One thread on purpose (a current-thread runtime, in `main`): the burst in
// scenario 3 must not interleave with the server's readers. Needs
// `CHROMIUM`.
async fn demo_page_in_headless_chromium() {
    let (chrome, chromedriver) = browser().unwrap_or_else(|why| panic!("{why}"));
    let started = Instant::now();
    let driver = Driver::start(&chromedriver);
    let client = driver.session(&chrome).await;
    eprintln!("chromium session in {:?}", started.elapsed());

    let run = AssertUnwindSafe(async {
        let http = Http::new();
        // The page's own origin: another port, so every call is cross-origin.
        let pages = Api::start(SocketAddr::from(([127, 0, 0, 1], 0)), &Origins::Loopback).await;
        let page = pages.base();
        let port = free_port();
        for t in TRANSPORTS {
            let at = Instant::now();
            transport_scenario(&client, &http, &page, port, t).await;
            eprintln!("{t}: {:?}", at.elapsed());
        }
        let at = Instant::now();
        closed_stream_scenario(&client, &http).await;
        eprintln!("closed stream: {:?}", at.elapsed());
        let at = Instant::now();
        let png = same_origin_scenario(&client, &http, port).await;
        eprintln!("same origin: {:?}", at.elapsed());
        pages.stop().await;
        png
    })
    .catch_unwind()
    .await;
    // Always end the browser before reporting.
    let _ = client.close().await;
    driver.stop().await;
    let png = match run {
        Ok(png) => png,
        Err(panic) => std::panic::resume_unwind(panic),
    };

    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a PNG screenshot"
    );
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    eprintln!(
        "browser test in {:?}; screenshot: {}",
        started.elapsed(),
        path.display()
    );
}

// ---------------------------------------------------------------------------
// The CORS setup itself (no browser needed)
// ---------------------------------------------------------------------------

fn origins_setting() {
    assert_eq!("loopback".parse::<Origins>(), Ok(Origins::Loopback));
    assert_eq!(
        " https://app.example, http://localhost:8000,http://[::1]:5173 ".parse::<Origins>(),
        Ok(Origins::List(vec![
            HeaderValue::from_static("https://app.example"),
            HeaderValue::from_static("http://localhost:8000"),
            HeaderValue::from_static("http://[::1]:5173"),
        ]))
    );
    for bad in [
        "",
        "http://localhost:8000/",
        "localhost:8000",
        "ftp://example.com",
        "http://",
        "http://a:b",
        "http://user@host",
        "*",
        "https://a.example,,https://b.example",
    ] {
        assert!(bad.parse::<Origins>().is_err(), "{bad:?} must be rejected");
    }
    for (origin, loopback) in [
        ("http://localhost:5173", true),
        ("http://127.0.0.1", true),
        ("https://[::1]:8443", true),
        ("http://localhost.evil.example", false),
        ("http://127.0.0.1.nip.io:80", false),
        ("http://example.com", false),
        ("null", false),
    ] {
        assert_eq!(
            demo::is_loopback(&HeaderValue::from_static(origin)),
            loopback,
            "{origin}"
        );
    }
}

async fn cors_allows_the_configured_origins_only() {
    let http = Http::new();
    let listed = "http://app.example";
    for (origins, allowed, refused) in [
        (
            Origins::List(vec![HeaderValue::from_static(listed)]),
            listed,
            "http://localhost:8000",
        ),
        (
            Origins::Loopback,
            "http://localhost:8000",
            "http://evil.example",
        ),
    ] {
        let api = Api::start(SocketAddr::from(([127, 0, 0, 1], 0)), &origins).await;
        let get = |origin: &str| {
            Request::get(format!("{}/poll?timeout=0", api.base()))
                .header("origin", origin)
                .body(Full::default())
                .unwrap()
        };
        // 204 + Cursor: the script must be allowed to read the header.
        let (status, headers, _) = http.send(get(allowed)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers["access-control-allow-origin"], allowed);
        assert_eq!(headers["access-control-allow-credentials"], "true");
        let exposed = headers["access-control-expose-headers"].to_str().unwrap();
        assert!(
            exposed.contains("cursor") && exposed.contains("retry-after"),
            "{exposed}"
        );
        let (_, headers, _) = http.send(get(refused)).await;
        assert!(
            !headers.contains_key("access-control-allow-origin"),
            "{refused} must not be allowed: {headers:?}"
        );
        // A preflight for a resumed EventSource polyfill or a Prefer header.
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri(format!("{}/sse", api.base()))
            .header("origin", allowed)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "last-event-id,prefer")
            .body(Full::default())
            .unwrap();
        let (status, headers, _) = http.send(preflight).await;
        assert!(status.is_success(), "preflight: {status}");
        assert_eq!(headers["access-control-allow-origin"], allowed);
        let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed_headers.contains("last-event-id") && allowed_headers.contains("prefer"),
            "{allowed_headers}"
        );
        api.stop().await;
    }
}

/// Browsers apply no CORS to WebSocket: the demo refuses an upgrade whose
/// `Origin` is neither its own nor allowed by `ORIGINS` (cross-site
/// WebSocket hijacking), and lets through its own pages, listed origins and
/// clients that send no `Origin`.
async fn websocket_upgrades_obey_origins() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listed = "http://app.example";
    let origins = Origins::List(vec![HeaderValue::from_static(listed)]);
    let api = Api::start(SocketAddr::from(([127, 0, 0, 1], 0)), &origins).await;
    let host = api.base().trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    for (origin, expected) in [
        (Some("http://evil.example"), "403"),
        (Some("http://localhost:8000"), "403"),
        (Some(listed), "101"),
        (Some(own.as_str()), "101"),
        (None, "101"),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        let origin_line = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             {origin_line}\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {expected}")),
            "Origin {origin:?}: {head}"
        );
        if expected == "403" {
            assert!(head.contains("ORIGINS"), "the refusal says why: {head}");
        }
    }
    api.stop().await;
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::test;
    harness::run(vec![
        test!(demo_page_in_headless_chromium, current_thread).needs(CHROMIUM),
        test!(origins_setting),
        test!(cors_allows_the_configured_origins_only, current_thread),
        test!(websocket_upgrades_obey_origins, current_thread),
    ])
}
