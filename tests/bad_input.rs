#![allow(clippy::unwrap_used)]
//! Malformed requests against the demo router (`examples/demo/app.rs`),
//! over a real socket in raw HTTP/1.1 so that odd bytes reach the server as
//! sent: every row gets the expected status, and its body names the
//! parameter and (for a `4xx`) what is allowed. After the table the same
//! server still serves a normal long-poll, a stream, and keep-alive
//! connections that carried bad requests.
//!
//! A row that answers `500`, hangs, or closes the connection fails the test
//! (the read has a hang guard).

mod common;

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use common::PublishNow as _;
use std::sync::Arc;
use std::time::Duration;

use axum_longpoll::EventLog;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use common::{spawn_with_shutdown, RawConn, RawResponse};

/// Every row must be answered within this (a hang guard, not a timing
/// assertion: no row should wait at all).
const ROW_GUARD: Duration = Duration::from_secs(5);

/// The demo's long-poll body limit (`LongPollConfig::max_body` default).
const LONG_POLL_MAX_BODY: usize = 16 * 1024;

/// One malformed request and what it must get.
#[derive(Debug, Clone)]
struct Row {
    name: &'static str,
    method: &'static str,
    /// Request target, as raw bytes.
    target: Vec<u8>,
    /// Extra header lines, as raw bytes, without CRLF.
    headers: Vec<Vec<u8>>,
    body: Vec<u8>,
    status: u16,
    /// Substrings the body must contain.
    needles: Vec<String>,
    /// For `410`: the `reason` of the JSON body.
    gone: Option<&'static str>,
}

fn get(name: &'static str, target: impl AsRef<[u8]>) -> Row {
    Row {
        name,
        method: "GET",
        target: target.as_ref().to_vec(),
        headers: Vec::new(),
        body: Vec::new(),
        status: 0,
        needles: Vec::new(),
        gone: None,
    }
}

fn post(name: &'static str, target: &str, body: Vec<u8>) -> Row {
    Row {
        method: "POST",
        body,
        ..get(name, target)
    }
}

impl Row {
    fn header(mut self, line: impl AsRef<[u8]>) -> Self {
        self.headers.push(line.as_ref().to_vec());
        self
    }

    /// Expect `status` and a body that contains every needle.
    fn expect(mut self, status: u16, needles: &[&str]) -> Self {
        self.status = status;
        self.needles = needles.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Expect `410` with a `CursorGone` body of this reason.
    fn gone(mut self, reason: &'static str) -> Self {
        self.status = 410;
        self.gone = Some(reason);
        self
    }

    /// The streams answer a stale cursor in-band (EventSource cannot read a
    /// 410): `200` and one `event: gone` whose data is the 410 body (SSE),
    /// or one `{"control":"gone",…}` line (NDJSON).
    fn gone_in_band(self, reason: &'static str) -> Self {
        let mut row = self.gone(reason);
        row.status = 200;
        row
    }

    fn bytes(&self) -> Vec<u8> {
        let mut req = Vec::new();
        req.extend_from_slice(self.method.as_bytes());
        req.push(b' ');
        req.extend_from_slice(&self.target);
        req.extend_from_slice(b" HTTP/1.1\r\nhost: test\r\n");
        for h in &self.headers {
            req.extend_from_slice(h);
            req.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() {
            req.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(&self.body);
        req
    }
}

/// The `400` of the `timeout` query parameter: names it and the range.
const TIMEOUT_400: &[&str] = &["query parameter `timeout`", "allowed: 0 to 120"];
/// The `400` of `Prefer: wait`.
const PREFER_400: &[&str] = &["header `Prefer: wait`", "allowed: 0 to 120"];
/// The `400` of a parameter given twice.
const TWICE: &str = "is given more than once; allowed: at most once";
/// What a cursor `400` says is allowed.
const CURSOR_ALLOWED: &str = "allowed: the `id` or `cursor` of an earlier answer";

fn cursor_400(param: &str) -> [String; 2] {
    [format!("invalid `{param}`"), CURSOR_ALLOWED.to_owned()]
}

fn rows(epoch: u64) -> Vec<Row> {
    let other_epoch = format!("{:016x}-1", epoch ^ 1);
    let ahead = format!("{epoch:016x}-18446744073709551615");
    let valid = format!("{epoch:016x}-0");
    let thirty_digits = "9".repeat(30);
    let long_cursor = "a".repeat(10 * 1024);
    let c400 = cursor_400("cursor");
    let c400: Vec<&str> = c400.iter().map(String::as_str).collect();
    let l400 = cursor_400("Last-Event-ID");
    let l400: Vec<&str> = l400.iter().map(String::as_str).collect();
    let q400 = cursor_400("last_event_id");
    let q400: Vec<&str> = q400.iter().map(String::as_str).collect();
    let from_400 = ["query parameter `from`", "allowed: `now` or `oldest`"];

    vec![
        // --- ?timeout= -----------------------------------------------------
        get("timeout empty", "/poll?timeout=").expect(400, TIMEOUT_400),
        get("timeout -1", "/poll?timeout=-1")
            .expect(400, &[TIMEOUT_400[0], TIMEOUT_400[1], "\"-1\""]),
        get("timeout 1e400", "/poll?timeout=1e400").expect(400, TIMEOUT_400),
        get("timeout NaN", "/poll?timeout=NaN").expect(400, TIMEOUT_400),
        get("timeout inf", "/poll?timeout=inf").expect(400, TIMEOUT_400),
        get("timeout two points", "/poll?timeout=1.2.3").expect(400, TIMEOUT_400),
        get("timeout Arabic-Indic 3", "/poll?timeout=%D9%A3").expect(400, TIMEOUT_400),
        get("timeout fullwidth 5", "/poll?timeout=%EF%BC%95").expect(400, TIMEOUT_400),
        get("timeout hex", "/poll?timeout=0x10").expect(400, TIMEOUT_400),
        get("timeout +5 (a space once decoded)", "/poll?timeout=+5").expect(400, TIMEOUT_400),
        get("timeout %FF", "/poll?timeout=%FF").expect(400, TIMEOUT_400),
        get("timeout NUL", "/poll?timeout=%00").expect(400, TIMEOUT_400),
        get("timeout exponent after a fraction", "/poll?timeout=1.5e3").expect(400, TIMEOUT_400),
        get("timeout twice", "/poll?timeout=1&timeout=2").expect(400, &["`timeout`", TWICE]),
        get(
            "timeout twice, second encoded",
            "/poll?timeout=1&%74imeout=1",
        )
        .expect(400, &["`timeout`", TWICE]),
        // --- Prefer: wait= -------------------------------------------------
        get("prefer negative", "/poll")
            .header("Prefer: wait=-3")
            .expect(400, PREFER_400),
        get("prefer garbage", "/poll")
            .header("Prefer: wait=soon")
            .expect(400, PREFER_400),
        get("prefer quoted garbage", "/poll")
            .header("Prefer: wait=\"abc\"")
            .expect(400, &[PREFER_400[0], PREFER_400[1], "\"abc\""]),
        get("prefer quoted empty", "/poll")
            .header("Prefer: wait=\"\"")
            .expect(400, PREFER_400),
        get("prefer no value", "/poll")
            .header("Prefer: respond-async, wait")
            .expect(400, PREFER_400),
        get("prefer 30 digits and a letter", "/poll")
            .header(format!("Prefer: wait={thirty_digits}s"))
            .expect(400, PREFER_400),
        get("prefer obs-text", "/poll")
            .header(b"Prefer: wait=\xd9\xa3".as_slice())
            .expect(400, &[PREFER_400[0], "non-ASCII"]),
        get("prefer twice in one header", "/poll")
            .header("Prefer: wait=1, wait=2")
            .expect(400, &["`Prefer: wait`", TWICE]),
        get("prefer twice in two headers", "/poll")
            .header("Prefer: wait=1")
            .header("Prefer: WAIT=2")
            .expect(400, &["`Prefer: wait`", TWICE]),
        // --- ?cursor= ------------------------------------------------------
        get("cursor garbage", "/poll?cursor=garbage").expect(400, &c400),
        get("cursor empty", "/poll?cursor=").expect(400, &c400),
        get("cursor 10 KiB", format!("/poll?cursor={long_cursor}")).expect(400, &c400),
        get("cursor %FF", "/poll?cursor=%FF%FE").expect(400, &c400),
        get(
            "cursor upper-case hex",
            format!("/poll?cursor={}", valid.to_uppercase()),
        )
        .expect(400, &c400),
        get(
            "cursor position overflows u64",
            format!("/poll?cursor={epoch:016x}-18446744073709551616"),
        )
        .expect(400, &c400),
        get(
            "cursor negative position",
            format!("/poll?cursor={epoch:016x}--1"),
        )
        .expect(400, &c400),
        get(
            "cursor twice",
            format!("/poll?cursor={valid}&cursor={valid}"),
        )
        .expect(400, &["`cursor`", TWICE]),
        get("cursor wrong epoch", format!("/poll?cursor={other_epoch}")).gone("epoch"),
        get("cursor far future", format!("/poll?cursor={ahead}")).gone("ahead"),
        get("last_event_id garbage", "/poll?last_event_id=x-1").expect(400, &q400),
        get(
            "last_event_id twice",
            format!("/poll?last_event_id={valid}&last_event_id={valid}"),
        )
        .expect(400, &["`last_event_id`", TWICE]),
        // --- Last-Event-ID -------------------------------------------------
        get("Last-Event-ID obs-text", "/poll")
            .header(b"Last-Event-ID: \x80\xff".as_slice())
            .expect(400, &["`Last-Event-ID`", "non-ASCII", CURSOR_ALLOWED]),
        get("Last-Event-ID tab inside", "/poll")
            .header("Last-Event-ID: abc\tdef")
            .expect(400, &l400),
        get("Last-Event-ID garbage", "/poll")
            .header("Last-Event-ID: garbage")
            .expect(400, &l400),
        get("Last-Event-ID twice", "/poll")
            .header(format!("Last-Event-ID: {valid}"))
            .header(format!("Last-Event-ID: {valid}"))
            .expect(400, &["`Last-Event-ID`", TWICE]),
        get("Last-Event-ID wrong epoch", "/poll")
            .header(format!("Last-Event-ID: {other_epoch}"))
            .gone("epoch"),
        get(
            "Last-Event-ID beats a good ?cursor=",
            format!("/poll?cursor={valid}"),
        )
        .header("Last-Event-ID: nope")
        .expect(400, &l400),
        // --- ?from= --------------------------------------------------------
        get("from garbage", "/poll?from=yesterday").expect(400, &from_400),
        get("from empty", "/poll?from=").expect(400, &from_400),
        get("from upper-case", "/poll?from=NOW").expect(400, &from_400),
        get("from twice", "/poll?from=now&from=oldest").expect(400, &["`from`", TWICE]),
        // --- request bodies ------------------------------------------------
        post(
            "publish too large",
            "/publish",
            vec![b'x'; demo::MAX_MESSAGE + 1],
        )
        .expect(
            413,
            &["publish body", &format!("at most {}", demo::MAX_MESSAGE)],
        ),
        post("publish not UTF-8", "/publish", b"ok \xff\xfe".to_vec())
            .expect(400, &["publish body", "allowed UTF-8"]),
        Row {
            body: vec![b'x'; LONG_POLL_MAX_BODY + 1],
            ..get("long-poll body too large", "/poll?timeout=0")
        }
        .expect(
            413,
            &[
                "request body",
                &format!("at most {LONG_POLL_MAX_BODY} bytes"),
            ],
        ),
        // --- /stream and /sse ----------------------------------------------
        get("stream cursor garbage", "/stream?cursor=garbage").expect(400, &c400),
        get("stream cursor %FF", "/stream?cursor=%FF").expect(400, &c400),
        get("stream from garbage", "/stream?from=later").expect(400, &from_400),
        get(
            "stream cursor wrong epoch",
            format!("/stream?cursor={other_epoch}"),
        )
        .gone_in_band("epoch"),
        get(
            "stream cursor far future",
            format!("/stream?cursor={ahead}"),
        )
        .gone_in_band("ahead"),
        get("sse Last-Event-ID obs-text", "/sse")
            .header(b"Last-Event-ID: caf\xe9".as_slice())
            .expect(400, &["`Last-Event-ID`", "non-ASCII"]),
        get("sse Last-Event-ID garbage", "/sse")
            .header("Last-Event-ID: 42")
            .expect(400, &l400),
        get("sse last_event_id %FF", "/sse?last_event_id=%FF").expect(400, &q400),
        get(
            "sse last_event_id twice",
            "/sse?last_event_id=a&last_event_id=b",
        )
        .expect(400, &["`last_event_id`", TWICE]),
        get("sse Last-Event-ID wrong epoch", "/sse")
            .header(format!("Last-Event-ID: {other_epoch}"))
            .gone_in_band("epoch"),
        get("sse cursor far future", format!("/sse?cursor={ahead}")).gone_in_band("ahead"),
    ]
}

/// Sends one row on a fresh connection; returns the response.
async fn send(addr: std::net::SocketAddr, row: &Row) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.send(&row.bytes()).await;
    tokio::time::timeout(ROW_GUARD, conn.read_response())
        .await
        .unwrap_or_else(|_| panic!("row {:?}: no answer within {ROW_GUARD:?}", row.name))
}

/// The failures of one row (empty when it got what it must).
fn check(row: &Row, res: &RawResponse, epoch: u64) -> Vec<String> {
    let mut failures = Vec::new();
    let text = res.text();
    if res.status() != row.status {
        failures.push(format!("status {} (expected {})", res.status(), row.status));
    }
    for needle in &row.needles {
        if !text.contains(needle.as_str()) {
            failures.push(format!("body lacks {needle:?}"));
        }
    }
    // No amplification: at most 64 characters of the value are echoed.
    if text.len() > 1024 {
        failures.push(format!("body of {} bytes", text.len()));
    }
    if let Some(reason) = row.gone {
        let json = if row.status == 200 && text.contains("event: gone") {
            // `event: gone` then `data: <the 410 body>`.
            let data = text
                .lines()
                .skip_while(|l| *l != "event: gone")
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_default();
            serde_json::from_str::<Value>(data)
        } else if row.status == 200 {
            // The `gone` control line carries the 410 body.
            let line = text
                .lines()
                .find(|l| l.contains("\"control\":\"gone\""))
                .unwrap_or_default();
            serde_json::from_str::<Value>(line)
        } else {
            serde_json::from_slice::<Value>(&res.body)
        };
        match json {
            Err(e) => failures.push(format!("410 body is not JSON: {e}")),
            Ok(body) => {
                if body["error"] != "cursor_gone" || body["reason"] != reason {
                    failures.push(format!("410 body is not reason {reason:?}: {body}"));
                }
                // The restart cursor must be one of this log's.
                let restart = body["cursor"].as_str().unwrap_or_default();
                if !restart.starts_with(&format!("{epoch:016x}-")) {
                    failures.push(format!("410 restart cursor {restart:?} is not of this log"));
                }
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_naming_the_parameter_and_the_server_keeps_serving() {
    let log = EventLog::<Arc<str>>::new(1024);
    let epoch = log.epoch();
    let shutdown = CancellationToken::new();
    let server = spawn_with_shutdown(demo::router(log.clone(), shutdown.clone()), shutdown).await;
    let addr = server.addr;

    let rows = rows(epoch);
    assert!(rows.len() >= 30, "the table must have at least 30 rows");
    let mut failures = Vec::new();
    for row in &rows {
        let res = send(addr, row).await;
        let text = res.text();
        let shown: String = text.chars().take(160).collect();
        eprintln!("{:<40} {} {shown}", row.name, res.status());
        for f in check(row, &res, epoch) {
            failures.push(format!("row {:?}: {f}; body {shown:?}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Bad requests on one keep-alive connection, then a good one on it: a
    // rejection does not poison the connection.
    let mut conn = RawConn::connect(addr).await;
    for target in ["/poll?timeout=x", "/poll?cursor=x", "/stream?from=x"] {
        conn.get(target).await;
        let res = conn.read_response().await;
        assert_eq!(res.status(), 400, "{target}: {}", res.text());
        assert_eq!(
            res.header("connection"),
            None,
            "{target} closed the connection"
        );
    }
    log.publish_now(Arc::from("after the table"));
    conn.get("/poll?from=oldest&timeout=5").await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    let body: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(body["events"][0]["data"], "after the table", "{body}");

    // A real wait still parks and is woken by a publish.
    let cursor = body["cursor"].as_str().unwrap().to_owned();
    let waiter = tokio::spawn(async move {
        let mut conn = RawConn::connect(addr).await;
        conn.get(&format!("/poll?timeout=10&cursor={cursor}")).await;
        conn.read_response().await
    });
    let mut stats = RawConn::connect(addr).await;
    let deadline = tokio::time::Instant::now() + ROW_GUARD;
    loop {
        stats.get("/stats").await;
        let s: Value = serde_json::from_slice(&stats.read_response().await.body).unwrap();
        if s["parked"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poll never parked: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.publish_now(Arc::from("woken"));
    let res = waiter.await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text());
    assert!(res.text().contains("woken"), "{}", res.text());
}

/// Bytes that hyper itself refuses (control characters in a header value,
/// raw non-ASCII in the request target): hyper answers `400` with no body
/// before the app runs, and closes the connection. The app never sees them,
/// so no parameter can be named; the point is that nothing breaks.
#[tokio::test]
async fn bytes_hyper_refuses_get_400_and_the_server_keeps_serving() {
    let log = EventLog::<Arc<str>>::new(16);
    let shutdown = CancellationToken::new();
    let server = spawn_with_shutdown(demo::router(log.clone(), shutdown.clone()), shutdown).await;
    let addr = server.addr;
    let raw: &[(&str, &[u8])] = &[
        (
            "Last-Event-ID with SOH",
            b"GET /poll HTTP/1.1\r\nhost: t\r\nLast-Event-ID: a\x01b\r\n\r\n",
        ),
        (
            "Last-Event-ID with DEL",
            b"GET /poll HTTP/1.1\r\nhost: t\r\nLast-Event-ID: a\x7fb\r\n\r\n",
        ),
        (
            "Last-Event-ID with NUL",
            b"GET /poll HTTP/1.1\r\nhost: t\r\nLast-Event-ID: a\x00b\r\n\r\n",
        ),
        (
            "Prefer with a bare CR",
            b"GET /poll HTTP/1.1\r\nhost: t\r\nPrefer: wait=1\rx\r\n\r\n",
        ),
        (
            "raw non-ASCII in target",
            b"GET /poll?cursor=\xff HTTP/1.1\r\nhost: t\r\n\r\n",
        ),
        (
            "space in target",
            b"GET /poll?timeout=1 2 HTTP/1.1\r\nhost: t\r\n\r\n",
        ),
        (
            "header without colon",
            b"GET /poll HTTP/1.1\r\nhost: t\r\nLast-Event-ID\r\n\r\n",
        ),
        (
            "content-length overflows",
            b"POST /publish HTTP/1.1\r\nhost: t\r\ncontent-length: 99999999999999999999\r\n\r\n",
        ),
        (
            "two content-lengths",
            b"POST /publish HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx",
        ),
    ];
    for (name, bytes) in raw {
        let mut conn = RawConn::connect(addr).await;
        conn.send(bytes).await;
        let res = tokio::time::timeout(ROW_GUARD, conn.read_response())
            .await
            .unwrap_or_else(|_| panic!("{name}: no answer"));
        eprintln!("{name:<30} {} {:?}", res.status(), res.text());
        assert_eq!(res.status(), 400, "{name}: {}", res.text());
    }
    log.publish_now(Arc::from("still here"));
    let mut conn = RawConn::connect(addr).await;
    conn.get("/poll?from=oldest&timeout=1").await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert!(res.text().contains("still here"), "{}", res.text());
}

/// A well-formed value is never refused for its size: 30 digits (beyond
/// `u64` seconds) is clamped to `max_timeout` like any large value, in the
/// query and in `Prefer: wait`, and digits past the nanosecond are dropped.
#[tokio::test]
async fn huge_and_overprecise_timeouts_are_clamped_not_refused() {
    use axum::routing::get;
    use axum_longpoll::{DisconnectLayer, LongPollConfig};

    let config = LongPollConfig::new()
        .max_timeout(std::time::Duration::from_millis(200))
        .jitter(false);
    let app = axum::Router::new()
        .route("/poll", get(common::handlers::poll))
        .with_state(EventLog::<u64>::new(16))
        .layer(DisconnectLayer::new().config(config));
    let server = common::spawn(app).await;
    let thirty = "9".repeat(30);
    for (target, header) in [
        (format!("/poll?timeout={thirty}"), None),
        ("/poll".to_owned(), Some(format!("Prefer: wait={thirty}"))),
        ("/poll?timeout=1.0000000001".to_owned(), None),
    ] {
        let mut conn = RawConn::connect(server.addr).await;
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        conn.request("GET", &target, &headers).await;
        let res = tokio::time::timeout(ROW_GUARD, conn.read_response())
            .await
            .unwrap_or_else(|_| panic!("{target} {header:?}: not clamped to 200 ms"));
        assert_eq!(res.status(), 204, "{target} {header:?}: {}", res.text());
    }
}
