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
//! The suite needs Node.js and npm (`.ci/run` installs them and runs
//! `npm ci` in `tests/conformance`). Without them the suite's test is
//! skipped with a message, except under `CI=true`, where it fails.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;

use std::path::Path;
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
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (spawn_on(listener, router, shutdown.clone()), handle)
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes_outside_forks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let npx = which("npx");
    let installed = dir
        .join("node_modules/@durable-streams/server-conformance-tests")
        .is_dir();
    let (Some(npx), true) = (npx, installed) else {
        let why = "Node.js with the suite installed is needed \
                   (apt-get install nodejs npm; cd tests/conformance && npm ci)";
        assert!(!required(), "conformance suite: {why}; CI=true requires it");
        eprintln!("SKIPPED the_official_conformance_suite_passes_outside_forks: {why}");
        return;
    };
    // The suite runs two tests that wait a whole long-poll under Vitest's
    // 5 s per-test limit: a short wait, as DS_LONG_POLL=0.5 gives the demo.
    let shutdown = CancellationToken::new();
    let (server, _) = demo(Duration::from_millis(500), &shutdown).await;
    let base = format!("http://{}", server.addr);
    let run = tokio::process::Command::new(npx)
        .args(["vitest", "run", "-t", "^(?!Fork|Reserved)"])
        .current_dir(&dir)
        .env("DS_BASE_URL", &base)
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
    eprintln!("conformance suite 0.3.6 against the demo: {summary}");
    assert!(
        out.status.success(),
        "the conformance suite failed: {summary}\n{stdout}\n{stderr}"
    );
    // 221 core tests and 29 idempotent-producer tests; the fork groups and
    // the opt-in subscription group are filtered out.
    assert!(summary.contains("250 passed"), "{summary}");
    assert!(!summary.contains("failed"), "{summary}");
    shutdown.cancel();
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

async fn send(addr: std::net::SocketAddr, request: &str) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request.as_bytes()).await;
    conn
}

/// What none of the protocol's peers do: on shutdown a parked long-poll is
/// answered at once (`503` + `Retry-After`, the client retries) and an SSE
/// stream ends, so the server exits without waiting out the waits.
#[tokio::test]
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
#[tokio::test]
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
