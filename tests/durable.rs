#![allow(clippy::unwrap_used)]
//! The Durable Streams protocol (`durable`), served by the demo's router:
//!
//! - the official conformance suite, `@durable-streams/server-conformance-tests`
//!   0.3.6 (pinned in `tests/conformance/package-lock.json`), run with
//!   Vitest against the demo on a real socket: every test outside the
//!   `Fork -` groups and the opt-in subscription group must pass (250: the
//!   221 core tests and the 29 idempotent-producer tests);
//! - over real sockets, what the crate adds to the protocol: a shutdown
//!   answers a parked long-poll at once and ends an SSE stream; a client
//!   that leaves a long-poll or an SSE stream is no longer counted on the
//!   stream.
//!
//! - on Redis (`REDIS_URL`, a `redis-server` started per test): two demo
//!   instances serve one stream (created on A, appended on both, read on B
//!   by catch-up, long-poll and SSE, a `Stream-Seq` conflict across them, a
//!   close and a TTL seen by both), and the same conformance suite passes
//!   against the demo on Redis.
//!
//! The suite needs Node.js and npm (`.ci/run` installs them and runs
//! `npm ci` in `tests/conformance`), the Redis tests `redis-server`. A test
//! whose tool is missing is not run and is reported `ignored (<why>)`,
//! except under `CI=true`, where it fails (`tests/support/harness.rs`).

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;
#[allow(dead_code, unreachable_pub)]
#[path = "support/redis_demo.rs"]
mod redis_demo;

#[path = "support/redis_server.rs"]
mod redis_server;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum_longpoll::EventLog;
use tokio_util::sync::CancellationToken;

use common::{spawn_on, wait_for, RawConn, Server};

/// The demo as `main.rs` serves it, with Durable Streams long-polls of
/// `long_poll`.
async fn demo(long_poll: Duration, shutdown: &CancellationToken) -> (Server, demo::DurableHandle) {
    let durable = demo::memory_durable(long_poll);
    let handle = durable.clone();
    let (router, _) = demo::router_with_durable(
        EventLog::<Arc<str>>::new(64),
        demo::memory_streams(),
        durable,
        &demo::Origins::Loopback,
        &demo::TrustedProxies::default(),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (spawn_on(listener, router, shutdown.clone()), handle)
}

/// Node.js with the pinned suite installed in `tests/conformance`.
const SUITE: harness::Need = harness::Need {
    tool: "Node.js with the conformance suite",
    check: || suite().map(drop),
};

/// `npx` and the suite's directory, or what is missing and how to install
/// it.
fn suite() -> Result<(PathBuf, PathBuf), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let npx = harness::which("npx");
    let installed = dir
        .join("node_modules/@durable-streams/server-conformance-tests")
        .is_dir();
    match (npx, installed) {
        (Some(npx), true) => Ok((npx, dir)),
        _ => Err("Node.js with the suite installed is needed \
                  (apt-get install nodejs npm; cd tests/conformance && npm ci)"
            .to_owned()),
    }
}

/// Runs the pinned suite (outside forks) against `base` with a long-poll
/// timeout of 500 ms (the harness checked for `SUITE`). Returns Vitest's
/// summary line.
async fn run_suite(base: &str, test: &str) -> String {
    let (npx, dir) = suite().unwrap_or_else(|why| panic!("{why}"));
    let run = tokio::process::Command::new(npx)
        .args(["vitest", "run", "-t", "^(?!Fork|Reserved)"])
        .current_dir(&dir)
        .env("DS_BASE_URL", base)
        .env("LONG_POLL_TIMEOUT_MS", "500")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the suite finished within 5 minutes")
        .expect("run npx vitest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Tests "))
        .unwrap_or("(no summary)")
        .trim()
        .to_owned();
    eprintln!("conformance suite 0.3.6 against {base} ({test}): {summary}");
    assert!(
        out.status.success(),
        "the conformance suite failed: {summary}\n{stdout}\n{stderr}"
    );
    // 221 core tests and 29 idempotent-producer tests; the fork groups and
    // the opt-in subscription group are filtered out.
    assert!(summary.contains("250 passed"), "{summary}");
    assert!(!summary.contains("failed"), "{summary}");
    summary
}

async fn the_official_conformance_suite_passes_outside_forks() {
    // The suite runs two tests that wait a whole long-poll under Vitest's
    // 5 s per-test limit: a short wait, as DS_LONG_POLL=0.5 gives the demo.
    let shutdown = CancellationToken::new();
    let (server, _) = demo(Duration::from_millis(500), &shutdown).await;
    let base = format!("http://{}", server.addr);
    run_suite(&base, "the_official_conformance_suite_passes_outside_forks").await;
    shutdown.cancel();
}

/// The same suite against the demo with `REDIS_URL`: every durable stream
/// in Redis, read from this instance's mirrors.
async fn the_official_conformance_suite_passes_on_redis() {
    let redis = redis_demo::RedisServer::start(false).await;
    let a = redis_demo::Instance::start(&redis.url(), "conf", Duration::from_millis(500), 0).await;
    let base = format!("http://{}", a.addr);
    run_suite(&base, "the_official_conformance_suite_passes_on_redis").await;
}

async fn send(addr: std::net::SocketAddr, request: &str) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request.as_bytes()).await;
    conn
}

/// What none of the protocol's peers do: on shutdown a parked long-poll is
/// answered at once (`503` + `Retry-After`, the client retries) and an SSE
/// stream ends, so the server exits without waiting out the waits.
async fn shutdown_answers_durable_long_polls_and_ends_sse_at_once() {
    let shutdown = CancellationToken::new();
    let (mut server, durable) = demo(Duration::from_secs(60), &shutdown).await;
    let addr = server.addr;
    let put = "PUT /v1/stream/s HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(send(addr, put).await.read_response().await.status(), 201);

    let mut poll = send(
        addr,
        "GET /v1/stream/s?offset=now&live=long-poll HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    let mut sse = send(
        addr,
        "GET /v1/stream/s?offset=-1&live=sse HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    assert_eq!(sse.read_head().await.status, 200);
    let log = durable.streams().get("s").unwrap();
    wait_for(|| {
        let f = log.figures();
        f.waiters == 1 && f.readers == 1
    })
    .await;

    shutdown.cancel();
    let res = poll.read_response().await;
    assert_eq!(res.status(), 503, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    // The SSE body ends (the client reconnects with its offset).
    while sse.read_chunk().await.is_some() {}
    server.join(Duration::from_secs(5)).await.unwrap();
}

/// A client that leaves a parked long-poll or an SSE stream is gone from
/// the stream's figures at once (hyper drops the request, the crate's
/// token and counts follow).
async fn a_client_that_leaves_is_no_longer_counted() {
    let shutdown = CancellationToken::new();
    let (_server, durable) = demo(Duration::from_secs(60), &shutdown).await;
    let addr = _server.addr;
    let put = "PUT /v1/stream/t HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(send(addr, put).await.read_response().await.status(), 201);
    let poll = send(
        addr,
        "GET /v1/stream/t?offset=now&live=long-poll HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    let mut sse = send(
        addr,
        "GET /v1/stream/t?offset=now&live=sse HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    assert_eq!(sse.read_head().await.status, 200);
    let log = durable.streams().get("t").unwrap();
    wait_for(|| log.figures().waiters == 1 && log.figures().readers == 1).await;
    drop(poll);
    drop(sse);
    wait_for(|| log.figures().waiters == 0 && log.figures().readers == 0).await;
}

// ---------------------------------------------------------------------------
// Two instances on one Redis
// ---------------------------------------------------------------------------

/// One request with `headers` and `body`; the whole response (the head
/// only for `HEAD`).
async fn ds(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> common::RawResponse {
    let mut conn = RawConn::connect(addr).await;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    conn.send(head.as_bytes()).await;
    conn.send(body).await;
    let head = conn.read_head().await;
    let body = conn.read_body(&head, method == "HEAD").await;
    common::RawResponse { head, body }
}

fn offset(res: &common::RawResponse) -> String {
    res.header("stream-next-offset")
        .unwrap_or_else(|| panic!("no Stream-Next-Offset: {res:?}"))
        .to_owned()
}

const TEXT: &str = "content-type: text/plain";

/// The protocol across two instances: whatever A does, B serves, and the
/// other way round; what a client sees does not depend on the instance it
/// lands on.
async fn two_instances_on_redis_serve_one_durable_stream() {
    let redis = redis_demo::RedisServer::start(false).await;
    let url = redis.url();
    let wait = Duration::from_secs(10);
    let a = redis_demo::Instance::start(&url, "two", wait, 0).await;
    let b = redis_demo::Instance::start(&url, "two", wait, 0).await;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let s = "/v1/stream/notes";

    // Created on A; B knows it, with its content type, and answers a PUT
    // with the same settings 200 and with others 409.
    let created = ds(a_addr, "PUT", s, &[TEXT], b"").await;
    assert_eq!(created.status(), 201, "{created:?}");
    let head = ds(b_addr, "HEAD", s, &[], b"").await;
    assert_eq!(head.status(), 200, "{head:?}");
    assert_eq!(head.header("content-type"), Some("text/plain"));
    assert_eq!(offset(&head), offset(&created));
    assert_eq!(ds(b_addr, "PUT", s, &[TEXT], b"").await.status(), 200);
    let other = ds(b_addr, "PUT", s, &["content-type: application/json"], b"").await;
    assert_eq!(other.status(), 409, "{other:?}");
    // Created once: a PUT on B of a new name is 201 there, 200 on A.
    assert_eq!(
        ds(b_addr, "PUT", "/v1/stream/other", &[TEXT], b"")
            .await
            .status(),
        201
    );
    assert_eq!(
        ds(a_addr, "PUT", "/v1/stream/other", &[TEXT], b"")
            .await
            .status(),
        200
    );

    // Appends on both, one writer's Stream-Seq checked across them.
    let seq = |n: &str| format!("stream-seq: {n}");
    let r = ds(a_addr, "POST", s, &[TEXT, &seq("0001")], b"a").await;
    assert_eq!(r.status(), 204, "{r:?}");
    let r = ds(b_addr, "POST", s, &[TEXT, &seq("0001")], b"dup").await;
    assert_eq!(
        r.status(),
        409,
        "the same Stream-Seq on the other instance: {r:?}"
    );
    assert!(r.text().contains("0001"), "{}", r.text());
    let r = ds(b_addr, "POST", s, &[TEXT, &seq("0002")], b"b").await;
    assert_eq!(r.status(), 204, "{r:?}");
    let after_b = offset(&r);

    // A catch-up read on A right after B's append has it.
    let read = ds(a_addr, "GET", &format!("{s}?offset=-1"), &[], b"").await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.text(), "ab");
    assert_eq!(read.header("content-type"), Some("text/plain"));
    assert_eq!(read.header("stream-up-to-date"), Some("true"));
    assert_eq!(offset(&read), after_b);

    // A long-poll parked on B is woken by an append on A.
    let poll = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let res = ds(
            b_addr,
            "GET",
            &format!("/v1/stream/notes?offset={after_b}&live=long-poll"),
            &[],
            b"",
        )
        .await;
        (res, started.elapsed())
    });
    let on_b = {
        let durable = b.durable.clone();
        move || durable.streams().figures("notes").map_or(0, |f| f.waiters)
    };
    wait_for(|| on_b() == 1).await;
    let appended = ds(a_addr, "POST", s, &[TEXT], b"c").await;
    assert_eq!(appended.status(), 204);
    let (res, took) = poll.await.unwrap();
    assert_eq!(res.status(), 200, "{res:?}");
    assert_eq!(res.text(), "c");
    assert_eq!(offset(&res), offset(&appended));
    assert!(
        took < Duration::from_secs(5),
        "woken at once, not at the timeout: {took:?}"
    );

    // SSE on B from the start: the events so far, then what A appends, then
    // A's close, and the stream ends.
    let mut sse = RawConn::connect(b_addr).await;
    sse.get("/v1/stream/notes?offset=-1&live=sse").await;
    let head = sse.read_head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let mut seen = String::new();
    let mut read_until = async |sse: &mut RawConn, needle: &str| {
        while !seen.contains(needle) {
            let chunk = sse.read_chunk().await.expect("the SSE stream ended early");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until(&mut sse, "data:abc").await;
    let last = ds(a_addr, "POST", s, &[TEXT, "stream-closed: true"], b"d").await;
    assert_eq!(last.status(), 204, "{last:?}");
    assert_eq!(last.header("stream-closed"), Some("true"));
    read_until(&mut sse, "\"streamClosed\":true").await;
    assert!(seen.contains("data:d"), "{seen}");
    assert!(
        sse.read_chunk().await.is_none(),
        "the stream ends after the close"
    );

    // Closed for B too: a long-poll at the end answers at once, an append
    // is 409 with the end, a HEAD says closed.
    let end = offset(&last);
    let started = std::time::Instant::now();
    let res = ds(
        b_addr,
        "GET",
        &format!("{s}?offset={end}&live=long-poll"),
        &[],
        b"",
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.header("stream-closed"), Some("true"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let refused = ds(b_addr, "POST", s, &[TEXT], b"late").await;
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.header("stream-closed"), Some("true"));
    assert_eq!(offset(&refused), end);
    let head = ds(b_addr, "HEAD", s, &[], b"").await;
    assert_eq!(head.header("stream-closed"), Some("true"));
    let all = ds(b_addr, "GET", &format!("{s}?offset=-1"), &[], b"").await;
    assert_eq!(all.text(), "abcd");

    // Deleted on B: gone on A.
    assert_eq!(ds(b_addr, "DELETE", s, &[], b"").await.status(), 204);
    assert_eq!(
        ds(a_addr, "GET", &format!("{s}?offset=-1"), &[], b"")
            .await
            .status(),
        404
    );
    assert_eq!(ds(a_addr, "HEAD", s, &[], b"").await.status(), 404);
}

/// `Stream-TTL` and `Stream-Expires-At` count in Redis for every instance:
/// reads on B renew a TTL set on A, `HEAD`s do not, and an expired stream
/// is `404` on both.
async fn ttl_and_expiry_on_redis_count_for_every_instance_and_head_renews_nothing() {
    let redis = redis_demo::RedisServer::start(false).await;
    let url = redis.url();
    let wait = Duration::from_secs(1);
    let a = redis_demo::Instance::start(&url, "ttl", wait, 0).await;
    let b = redis_demo::Instance::start(&url, "ttl", wait, 0).await;
    for name in ["read", "looked"] {
        let path = format!("/v1/stream/{name}");
        let r = ds(a.addr, "PUT", &path, &[TEXT, "stream-ttl: 2"], b"x").await;
        assert_eq!(r.status(), 201, "{r:?}");
    }
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let at = humantime_rfc3339(at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    let expires = format!("stream-expires-at: {at}");
    let r = ds(a.addr, "PUT", "/v1/stream/dated", &[TEXT, &expires], b"").await;
    assert_eq!(r.status(), 201, "{r:?}");
    // B sees the settings as given.
    let head = ds(b.addr, "HEAD", "/v1/stream/looked", &[], b"").await;
    assert_eq!(head.header("stream-ttl"), Some("2"));
    let head = ds(b.addr, "HEAD", "/v1/stream/dated", &[], b"").await;
    assert_eq!(head.header("stream-expires-at"), Some(at.as_str()));

    // For 3.5 s B reads one stream and only looks at the other.
    let until = std::time::Instant::now() + Duration::from_millis(3500);
    while std::time::Instant::now() < until {
        let r = ds(b.addr, "GET", "/v1/stream/read?offset=-1", &[], b"").await;
        assert_eq!(r.status(), 200, "a stream read within its TTL lives");
        let _ = ds(b.addr, "HEAD", "/v1/stream/looked", &[], b"").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for addr in [a.addr, b.addr] {
        for (name, status) in [("read", 200), ("looked", 404), ("dated", 404)] {
            let r = ds(
                addr,
                "GET",
                &format!("/v1/stream/{name}?offset=-1"),
                &[],
                b"",
            )
            .await;
            assert_eq!(r.status(), status, "{name} on {addr}: {r:?}");
        }
    }
    // The names are free again: created anew, empty.
    let r = ds(b.addr, "PUT", "/v1/stream/looked", &[TEXT], b"").await;
    assert_eq!(r.status(), 201);
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (civil from days, UTC).
fn humantime_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::{test, REDIS_SERVER};
    harness::run(vec![
        test!(
            the_official_conformance_suite_passes_outside_forks,
            multi_thread(2)
        )
        .needs(SUITE),
        test!(
            the_official_conformance_suite_passes_on_redis,
            multi_thread(2)
        )
        .needs(REDIS_SERVER)
        .needs(SUITE),
        test!(
            shutdown_answers_durable_long_polls_and_ends_sse_at_once,
            current_thread
        ),
        test!(a_client_that_leaves_is_no_longer_counted, current_thread),
        test!(
            two_instances_on_redis_serve_one_durable_stream,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
        test!(
            ttl_and_expiry_on_redis_count_for_every_instance_and_head_renews_nothing,
            multi_thread(2)
        )
        .needs(REDIS_SERVER),
    ])
}
