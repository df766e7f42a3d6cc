#![allow(clippy::unwrap_used)]
//! The demo's `GET /metrics` (Prometheus text, through the `metrics` facade
//! and `metrics-exporter-prometheus`) against its `GET /stats`: after a mix
//! of requests in every mode, ending in many different ways, every mode's
//! `started`, `in_flight` and each `ended` outcome are the same number in
//! both.
//!
//! Its own test binary: the Prometheus recorder is one per process, and
//! this binary serves one demo. Also: the `tracing` event of each request
//! that ends.

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum_longpoll::EventLog;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use common::{raw_get, RawConn};

/// Hang guard for the figures to settle.
const GUARD: Duration = Duration::from_secs(10);

const MODES: [&str; 5] = ["long_poll", "ndjson", "sse", "framed", "ws"];

/// A series: its name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// `name{labels} value` lines of the Prometheus text, by series.
fn parse(text: &str) -> HashMap<Series, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let mut labels: Vec<(String, String)> = rest
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                labels.sort();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), Vec::new()),
        };
        out.insert((name, labels), value.parse().unwrap());
    }
    out
}

fn get(metrics: &HashMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    // A series never recorded is 0.
    metrics
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0) as u64
}

/// Compares every mode's figures in `/metrics` with `/stats`; returns the
/// differences (none when they agree).
async fn differences(addr: std::net::SocketAddr) -> Vec<String> {
    let stats: Value = serde_json::from_slice(&raw_get(addr, "/stats").await.body).unwrap();
    let res = raw_get(addr, "/metrics").await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        res.header("content-type")
    );
    let metrics = parse(&res.text());
    let mut diffs = Vec::new();
    for mode in MODES {
        let s = &stats[mode];
        let pairs = [
            (
                "started",
                get(
                    &metrics,
                    "axum_longpoll_requests_started_total",
                    &[("mode", mode)],
                ),
                s["started"].as_u64().unwrap(),
            ),
            (
                "in_flight",
                get(
                    &metrics,
                    "axum_longpoll_requests_in_flight",
                    &[("mode", mode)],
                ),
                s["in_flight"].as_u64().unwrap(),
            ),
        ];
        for (what, m, st) in pairs {
            if m != st {
                diffs.push(format!("{mode}.{what}: /metrics {m}, /stats {st}"));
            }
        }
        for (outcome, count) in s["ended"].as_object().unwrap() {
            let m = get(
                &metrics,
                "axum_longpoll_requests_ended_total",
                &[("mode", mode), ("outcome", outcome)],
            );
            let st = count.as_u64().unwrap();
            if m != st {
                diffs.push(format!("{mode}.ended.{outcome}: /metrics {m}, /stats {st}"));
            }
        }
    }
    diffs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_stats_agree_mode_by_mode() {
    // As main.rs: the recorder first, then the router.
    demo::install_metrics().unwrap();
    let log = EventLog::<Arc<str>>::new(64);
    let shutdown = CancellationToken::new();
    let (router, layer) = demo::durable_routes(
        log.clone(),
        demo::memory_streams(),
        demo::memory_durable(Duration::from_secs(1)),
        &demo::Origins::Loopback,
        &demo::TrustedProxies::default(),
        CancellationToken::new(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = axum_longpoll::serve(listener, router)
        .layer(layer)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = tokio::spawn(async move { serve.await.map(drop) });

    // Long-polls: a timeout, a bad parameter, an answer with events, a
    // client that leaves while parked, a body that breaks off.
    assert_eq!(raw_get(addr, "/poll?timeout=0.2").await.status(), 204);
    assert_eq!(raw_get(addr, "/poll?timeout=abc").await.status(), 400);
    let mut conn = RawConn::connect(addr).await;
    conn.request("POST", "/publish", &["content-length: 5"])
        .await;
    conn.send(b"hello").await;
    assert_eq!(conn.read_response().await.status(), 200);
    let res = raw_get(addr, "/poll?timeout=5&from=oldest").await;
    assert_eq!(res.status(), 200, "{}", res.text());
    // A poll that waits, woken by a publish: publish-to-wake is measured.
    let mut waiter = RawConn::connect(addr).await;
    waiter
        .get(&format!("/poll?timeout=30&cursor={}", log.head()))
        .await;
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let stats: Value = serde_json::from_slice(&raw_get(addr, "/stats").await.body).unwrap();
        if stats["long_poll"]["waiting"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut conn = RawConn::connect(addr).await;
    conn.request("POST", "/publish", &["content-length: 5"])
        .await;
    conn.send(b"again").await;
    assert_eq!(conn.read_response().await.status(), 200);
    assert_eq!(waiter.read_response().await.status(), 200);
    let mut parked = RawConn::connect(addr).await;
    parked
        .get(&format!("/poll?timeout=30&cursor={}", log.head()))
        .await;
    let mut half = RawConn::connect(addr).await;
    half.request("GET", "/poll?timeout=30", &["content-length: 10"])
        .await;
    half.send(b"12345").await;
    // Streams: NDJSON and SSE readers that leave.
    let mut ndjson = RawConn::connect(addr).await;
    ndjson.get("/stream").await;
    assert_eq!(ndjson.read_head().await.status, 200);
    let mut sse = RawConn::connect(addr).await;
    sse.get("/sse").await;
    assert_eq!(sse.read_head().await.status, 200);
    // A WebSocket that closes.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(matches!(first, Message::Text(_)), "{first:?}");

    // While all of them are in flight, the figures agree.
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let stats: Value = serde_json::from_slice(&raw_get(addr, "/stats").await.body).unwrap();
        let settled = stats["long_poll"]["waiting"] == 1
            && stats["long_poll"]["reading_body"] == 1
            && stats["ws"]["open"] == 1
            && stats["streaming"] == 2;
        let diffs = differences(addr).await;
        if settled && diffs.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "in flight: {diffs:?}; /stats {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Then they all end.
    parked.rst();
    half.fin();
    ndjson.fin();
    sse.rst();
    ws.send(Message::Close(None)).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let stats: Value = serde_json::from_slice(&raw_get(addr, "/stats").await.body).unwrap();
        let quiet = MODES.iter().all(|m| stats[m]["in_flight"] == 0);
        let ended = stats["long_poll"]["ended"]["disconnected"] == 2
            && stats["ndjson"]["ended"]["client_left"] == 1
            && stats["sse"]["ended"]["client_left"] == 1
            && stats["ws"]["ended"]["client_left"] == 1;
        let diffs = differences(addr).await;
        if quiet && ended && diffs.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ended: {diffs:?}; /stats {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The histograms are there too, with the mode label.
    let text = raw_get(addr, "/metrics").await.text();
    for series in [
        "axum_longpoll_request_duration_seconds_bucket{mode=\"long_poll\",outcome=\"timeout\"",
        "axum_longpoll_wait_seconds_count{outcome=\"timeout\"}",
        "axum_longpoll_events_per_answer_count{mode=\"long_poll\"}",
        "axum_longpoll_disconnected_after_seconds_count{mode=\"ndjson\"}",
        "# HELP axum_longpoll_requests_ended_total",
        "axum_longpoll_publish_to_wake_seconds_count 1",
        "axum_longpoll_published_total 2",
    ] {
        assert!(text.contains(series), "{series} missing in:\n{text}");
    }

    shutdown.cancel();
    tokio::time::timeout(GUARD, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A collection's streams get a `stream` label only when it asks
/// (`StreamsBuilder::metrics_per_stream`): a label per stream is a series
/// per stream.
#[test]
fn a_collection_labels_its_streams_only_when_asked() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        // A runtime on this thread: the local recorder is this thread's.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let labelled = EventLog::builder()
                .streams()
                .metrics_per_stream(true)
                .build::<u32>();
            let plain = EventLog::builder().streams().build::<u32>();
            for _ in 0..2 {
                let room = labelled.get_or_create("room-1").await.unwrap();
                room.publish(1).await.unwrap();
            }
            let other = plain.get_or_create("room-2").await.unwrap();
            other.publish(1).await.unwrap();
        });
    });
    let metrics = parse(&handle.render());
    assert_eq!(
        get(
            &metrics,
            "axum_longpoll_published_total",
            &[("stream", "room-1")]
        ),
        2,
        "{metrics:?}"
    );
    assert_eq!(
        get(&metrics, "axum_longpoll_published_total", &[]),
        1,
        "{metrics:?}"
    );
    assert!(
        !metrics
            .keys()
            .any(|(_, labels)| labels.iter().any(|(_, v)| v == "room-2")),
        "{metrics:?}"
    );
}

/// A `tracing` subscriber that keeps the fields of every event.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(tracing::Level, HashMap<String, String>)>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// The subscriber: a handle on the events.
struct Recorder(Arc<Events>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "axum_longpoll" {
            return;
        }
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        self.0
             .0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Each request that ends is one `tracing` event with its mode, outcome
/// and duration: `INFO` when something went wrong (a client that left, a
/// bad request is not one of those: `DEBUG`).
#[test]
fn each_request_that_ends_is_one_tracing_event() {
    let events = Arc::new(Events::default());
    // A recorder of its own (this thread's, the runtime's too): the demo's
    // test in this binary compares the process's recorder with its /stats.
    let noop = metrics::NoopRecorder;
    let _local = metrics::set_default_local_recorder(&noop);
    tracing::subscriber::with_default(Recorder(events.clone()), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let log = EventLog::<u64>::new(16);
            let app = axum::Router::new()
                .route("/poll", axum::routing::get(common::handlers::poll))
                .with_state(log)
                .layer(axum_longpoll::DisconnectLayer::new());
            let server = common::spawn(app).await;
            assert_eq!(raw_get(server.addr, "/poll?timeout=0").await.status(), 204);
            assert_eq!(raw_get(server.addr, "/poll?timeout=x").await.status(), 400);
            let mut gone = RawConn::connect(server.addr).await;
            gone.get("/poll?timeout=30").await;
            let deadline = tokio::time::Instant::now() + GUARD;
            while events.0.lock().unwrap().len() < 2 {
                assert!(tokio::time::Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            gone.rst();
            while events.0.lock().unwrap().len() < 3 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no event for the RST"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    });
    let events = events.0.lock().unwrap();
    let seen: Vec<(tracing::Level, &str, &str)> = events
        .iter()
        .map(|(level, f)| (*level, f["mode"].as_str(), f["outcome"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (tracing::Level::DEBUG, "long_poll", "timeout"),
            (tracing::Level::DEBUG, "long_poll", "bad_request"),
            (tracing::Level::INFO, "long_poll", "disconnected"),
        ],
        "{events:?}"
    );
    for (_, fields) in events.iter() {
        assert_eq!(fields["message"], "request ended", "{fields:?}");
    }
    // The requests that ran (not the refused one) say how long they lasted.
    assert!(events[0].1.contains_key("lasted_ms"), "{events:?}");
    assert!(events[2].1.contains_key("lasted_ms"), "{events:?}");
}
