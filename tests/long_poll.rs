//! `LongPoll` over real sockets: outcomes and their answers, the requested
//! wait (query, `Prefer`, clamp, jitter), rejections, stats, and shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_longpoll::{DisconnectLayer, LongPoll, LongPollConfig, Stats};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use common::{raw_get, raw_request, spawn, spawn_with_shutdown, wait_for_stats, RawConn, Server};

/// Header carrying `lp.wait_duration()` in nanoseconds.
const WAIT_NANOS: &str = "x-wait-nanos";

/// Waits for the next value sent on the watch channel, answered with
/// `lp.respond`.
async fn poll(State(rx): State<watch::Receiver<String>>, lp: LongPoll) -> Response {
    let mut rx = rx.clone();
    rx.mark_unchanged();
    let outcome = lp
        .wait(async move {
            let _ = rx.changed().await;
            rx.borrow_and_update().clone()
        })
        .await;
    let mut res = lp.respond(outcome);
    res.headers_mut().insert(
        WAIT_NANOS,
        HeaderValue::from(lp.wait_duration().as_nanos() as u64),
    );
    res
}

/// Answers at once with `lp.wait_duration()` in nanoseconds.
async fn wait_duration(lp: LongPoll) -> String {
    lp.wait_duration().as_nanos().to_string()
}

struct App {
    server: Server,
    stats: Stats,
    events: watch::Sender<String>,
}

fn router(layer: DisconnectLayer) -> (Router, Stats, watch::Sender<String>) {
    let stats = layer.stats();
    let (events, rx) = watch::channel(String::new());
    let app = Router::new()
        .route("/poll", get(poll))
        .route("/wait", get(wait_duration))
        .with_state(rx)
        .layer(layer);
    (app, stats, events)
}

async fn app(layer: DisconnectLayer) -> App {
    let (router, stats, events) = router(layer);
    App {
        server: spawn(router).await,
        stats,
        events,
    }
}

fn nanos(res: &common::RawResponse) -> u128 {
    res.text().parse().expect("nanoseconds")
}

fn header_nanos(res: &common::RawResponse) -> u128 {
    res.header(WAIT_NANOS)
        .expect("x-wait-nanos header")
        .parse()
        .expect("nanoseconds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_timeout_and_stats() {
    let app = app(DisconnectLayer::new()).await;
    let addr = app.server.addr;

    // Ready: parked, then the event arrives.
    let mut conn = RawConn::connect(addr).await;
    conn.get("/poll?timeout=30").await;
    wait_for_stats(&app.stats, "parked", |s| s.parked == 1).await;
    app.events.send("hello".to_owned()).unwrap();
    let res = conn.read_response().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hello");
    assert_eq!(res.header("cache-control"), Some("no-store"));

    // Timeout from the query.
    let res = raw_get(addr, "/poll?timeout=0.2").await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.body.is_empty());

    // Timeout from `Prefer: wait`.
    let res = raw_request(addr, "GET", "/poll", &["prefer: wait=0.3"]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let waited = header_nanos(&res);
    assert!(
        waited <= 300_000_000 && waited > 300_000_000 * 15 / 16,
        "Prefer: wait=0.3 gave {waited} ns"
    );

    let snap = app.stats.snapshot();
    assert_eq!(snap.parked, 0, "{snap:?}");
    assert_eq!(snap.ready, 1, "{snap:?}");
    assert_eq!(snap.timeout, 2, "{snap:?}");
    assert_eq!(snap.shutdown, 0, "{snap:?}");
    assert_eq!(snap.disconnected, 0, "{snap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_wait_is_read_and_query_wins() {
    let config = LongPollConfig::new().jitter(false);
    let app = app(DisconnectLayer::new().config(config)).await;
    let addr = app.server.addr;

    let res = raw_request(addr, "GET", "/wait", &["prefer: wait=7"]).await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(nanos(&res), 7_000_000_000);

    let res = raw_request(addr, "GET", "/wait?timeout=2", &["prefer: wait=7"]).await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(nanos(&res), 2_000_000_000);

    let res = raw_get(addr, "/wait").await;
    assert_eq!(nanos(&res), 30_000_000_000, "default timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_wait_is_clamped_to_max() {
    let config = LongPollConfig::new()
        .max_timeout(Duration::from_millis(300))
        .jitter(false);
    let app = app(DisconnectLayer::new().config(config)).await;
    let addr = app.server.addr;

    let res = raw_get(addr, "/wait?timeout=100").await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(nanos(&res), 300_000_000);

    // A real poll with the clamped wait answers (keepalive), not after 100 s.
    let res = raw_get(addr, "/poll?timeout=100").await;
    assert_eq!(res.status(), 204);
    assert_eq!(header_nanos(&res), 300_000_000);
    assert_eq!(app.stats.snapshot().timeout, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_shortens_the_wait_by_at_most_a_sixteenth() {
    let app = app(DisconnectLayer::new()).await;
    let addr = app.server.addr;
    let requested: u128 = 100_000_000_000;
    let mut shortened = false;
    for _ in 0..20 {
        let res = raw_get(addr, "/wait?timeout=100").await;
        assert_eq!(res.status(), 200, "{}", res.text());
        let wait = nanos(&res);
        assert!(
            wait <= requested && wait > requested * 15 / 16,
            "jittered wait {wait} ns out of (15/16, 1] of {requested} ns"
        );
        shortened |= wait < requested;
    }
    assert!(shortened, "jitter on, yet 20 waits were all unshortened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_waits_are_400_naming_the_parameter() {
    let app = app(DisconnectLayer::new()).await;
    let addr = app.server.addr;

    let cases: &[(&str, &[&str], &str)] = &[
        ("/poll?timeout=", &[], "timeout"),
        ("/poll?timeout=-1", &[], "timeout"),
        ("/poll?timeout=NaN", &[], "timeout"),
        ("/poll?timeout=inf", &[], "timeout"),
        ("/poll?timeout=1e400", &[], "timeout"),
        ("/poll?timeout=abc", &[], "timeout"),
        // (30 digits is well formed: clamped, see tests/bad_input.rs.)
        ("/poll?timeout=1.2.3", &[], "timeout"),
        ("/poll?timeout=%D9%A3", &[], "timeout"),
        ("/poll?timeout=1&timeout=2", &[], "timeout"),
        ("/poll", &["prefer: wait=x"], "Prefer: wait"),
    ];
    for (target, headers, name) in cases {
        let res = raw_request(addr, "GET", target, headers).await;
        let text = res.text();
        assert_eq!(res.status(), 400, "{target} {headers:?}: {text}");
        assert!(text.contains(name), "{target} {headers:?}: {text}");
        assert!(text.contains("allowed"), "{target} {headers:?}: {text}");
    }
    let snap = app.stats.snapshot();
    let n = cases.len() as u64;
    assert_eq!(
        (
            snap.parked,
            snap.long_poll.started,
            snap.long_poll.in_flight
        ),
        (0, n, 0),
        "bad requests never park"
    );
    assert_eq!(snap.long_poll.ended.bad_request, n, "{snap:?}");
    assert_eq!(snap.long_poll.ended.total(), n, "{snap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_layer_is_500_naming_it() {
    let app = Router::new().route(
        "/poll",
        get(|lp: LongPoll| async move { lp.respond(lp.wait(std::future::pending::<()>()).await) }),
    );
    let server = spawn(app).await;
    let res = raw_get(server.addr, "/poll?timeout=1").await;
    assert_eq!(res.status(), 500);
    assert!(res.text().contains("DisconnectLayer"), "{}", res.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_while_parked_counts_as_disconnected() {
    let app = app(DisconnectLayer::new()).await;
    let mut conn = RawConn::connect(app.server.addr).await;
    conn.get("/poll?timeout=30").await;
    wait_for_stats(&app.stats, "parked", |s| s.parked == 1).await;
    conn.fin();
    let snap = wait_for_stats(&app.stats, "disconnected counted", |s| {
        s.disconnected == 1 && s.parked == 0
    })
    .await;
    assert_eq!((snap.ready, snap.timeout, snap.shutdown), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_answers_every_parked_poll_and_the_server_returns() {
    const CLIENTS: u64 = 100;
    let shutdown = CancellationToken::new();
    let (router, stats, _events) = router(DisconnectLayer::new().shutdown(shutdown.clone()));
    let mut server = spawn_with_shutdown(router, shutdown.clone()).await;

    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        let mut conn = RawConn::connect(server.addr).await;
        conn.get("/poll?timeout=60").await;
        conns.push(conn);
    }
    wait_for_stats(&stats, "all parked", |s| s.parked == CLIENTS).await;

    shutdown.cancel();
    for conn in &mut conns {
        let res = conn.read_response().await;
        assert_eq!(res.status(), 503, "{}", res.text());
        assert!(res.header("retry-after").is_some(), "{:?}", res.head);
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    // Far below the 60 s poll timeout: the server did not wait it out.
    server
        .join(Duration::from_secs(10))
        .await
        .expect("serve returned an error");

    let snap = stats.snapshot();
    assert_eq!(snap.parked, 0, "{snap:?}");
    assert_eq!(snap.shutdown, CLIENTS, "{snap:?}");
    assert_eq!(snap.disconnected, 0, "{snap:?}");
    drop(conns);
}
