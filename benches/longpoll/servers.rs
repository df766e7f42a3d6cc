//! The two Rust bench servers, each run as its own process
//! (`longpoll server crate|bare`), with the same HTTP interface as the Go
//! peer (`benches/peers/go/main.go`):
//!
//! | route | what |
//! |---|---|
//! | `GET /poll?id=N` | long-poll: `200` JSON event, `204` timeout, `503` shutdown |
//! | `GET /poll?id=N&cursor=C` | the events after `C` at once, else the next ones (the publish storm) |
//! | `POST /publish` | wake every parked poll with one event |
//! | `GET /plain` | `ok` |
//! | `GET /stream?n=N` | N NDJSON events to one client |
//! | `GET /stats` | `parked=N` |
//! | `GET /detections` | `id unix_nanos` per disconnect seen since the last call |
//! | `GET /fanout` | `publish_ns last_answer_ns answered` since the last publish |
//! | `POST /fanout/reset` | (`crate-redis` only) start that count without publishing |
//! | `POST /shutdown` | answer parked polls `503`, stop, exit |
//! | `GET /ws` | (`crate-serve` and `bare`) an idle WebSocket |
//! | `GET /idle/ndjson`, `GET /idle/sse` | a stream with nothing to send (the crate: the log's events from now on; bare: a stream that never yields) |
//!
//! - `crate`: [`DisconnectLayer`] + [`LongPoll`] + [`EventLog`] +
//!   [`Streaming`], with `Router::layer` under `axum::serve`.
//! - `crate-serve`: the same routes under `axum_longpoll::serve`, which puts
//!   the layer around the whole router, as the crate's docs recommend; its
//!   `/shutdown` cancels the layer's token, which starts `serve`'s
//!   shutdown. `/ws` is a [`LiveSocket`] with the default `WsConfig`.
//! - `crate-outer`: the layer around the whole router under `axum::serve`.
//! - `crate-redis`: the same on a Redis log (`REDIS_URL`, `REDIS_KEY`), for
//!   two instances on one key; `/poll?cursor=C` resumes after `C`.
//! - `crate-redis-streams`: a `Streams` collection on Redis (`REDIS_URL`,
//!   `REDIS_KEY` as the key prefix, `REDIS_NAME` for its connections'
//!   names): `POST /streams/{name}/publish`, `GET /streams/{name}/poll`,
//!   `GET /stats`, `POST /shutdown` (the `redis` phase's connection count).
//! - `bare`: hand-written axum: a drop guard for the disconnect, a
//!   `tokio::sync::watch` for the wake-up, a `select!` with a timer and the
//!   shutdown token, `Body::from_stream` for streaming, axum's
//!   `WebSocketUpgrade` with its defaults for `/ws`. Nothing from this
//!   crate.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::disconnect::DisconnectBody;
use axum_longpoll::event_log::{Backend, Event, Memory, Resume};
use axum_longpoll::serve::ServeConfig;
use axum_longpoll::ws::LiveSocket;
use axum_longpoll::{
    DisconnectLayer, EventLog, LongPoll, LongPollConfig, Stats, StreamConfig, Streaming,
};
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::unix_nanos;

/// The wait every poll asks for (and the bare and Go servers use).
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// The events a `/stream` response cycles through.
const STREAM_EVENTS: usize = 1024;

/// What every server records for the harness.
#[derive(Default)]
struct Probe {
    detections: Mutex<Vec<(u64, u64)>>,
    publish_ns: AtomicU64,
    last_ns: AtomicU64,
    answered: AtomicU64,
}

impl Probe {
    fn detected(&self, id: u64) {
        let at = unix_nanos();
        self.detections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((id, at));
    }

    fn published(&self) {
        self.last_ns.store(0, Ordering::SeqCst);
        self.answered.store(0, Ordering::SeqCst);
        self.publish_ns.store(unix_nanos(), Ordering::SeqCst);
    }

    fn answered(&self) {
        self.last_ns.fetch_max(unix_nanos(), Ordering::SeqCst);
        self.answered.fetch_add(1, Ordering::SeqCst);
    }

    fn detections(&self) -> String {
        let taken = std::mem::take(
            &mut *self
                .detections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut out = String::with_capacity(taken.len() * 32);
        for (id, at) in taken {
            out.push_str(&format!("{id} {at}\n"));
        }
        out
    }

    fn fanout(&self) -> String {
        format!(
            "{} {} {}",
            self.publish_ns.load(Ordering::SeqCst),
            self.last_ns.load(Ordering::SeqCst),
            self.answered.load(Ordering::SeqCst)
        )
    }
}

fn poll_id(query: Option<&str>) -> u64 {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn stream_len(query: Option<&str>) -> usize {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("n="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The events `/stream` cycles through, the same for both servers.
fn stream_events() -> Arc<Vec<Event<Arc<str>>>> {
    let log = EventLog::builder()
        .capacity(STREAM_EVENTS)
        .max_batch(STREAM_EVENTS)
        .epoch(0x00be_ec4a_11fe_ed00)
        .build::<Arc<str>>();
    let start = log.head();
    for i in 0..STREAM_EVENTS {
        let text = Arc::from(format!("event {i:05} of the streaming benchmark").as_str());
        futures_util::FutureExt::now_or_never(log.publish(text))
            .expect("a memory publish is ready at once")
            .expect("a memory publish does not fail");
    }
    Arc::new(log.read(start).expect("fresh log").events)
}

// ---------------------------------------------------------------------------
// The crate's server
// ---------------------------------------------------------------------------

/// The crate's state, for either backend of the log (`crate`: memory,
/// `crate-redis`: Redis).
struct CrateApp<B = Memory> {
    log: EventLog<Arc<str>, B>,
    stats: Stats,
    probe: Arc<Probe>,
    stream: Arc<Vec<Event<Arc<str>>>>,
}

impl<B> Clone for CrateApp<B> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            stats: self.stats.clone(),
            probe: Arc::clone(&self.probe),
            stream: Arc::clone(&self.stream),
        }
    }
}

/// Records the disconnect when the handler is dropped with its token
/// cancelled (the layer cancels it just before hyper drops the handler).
struct CrateWatch<'a> {
    probe: &'a Probe,
    id: u64,
    token: &'a CancellationToken,
}

impl Drop for CrateWatch<'_> {
    fn drop(&mut self) {
        if self.token.is_cancelled() {
            self.probe.detected(self.id);
        }
    }
}

async fn crate_poll<B: Backend>(
    State(app): State<CrateApp<B>>,
    RawQuery(query): RawQuery,
    resume: Resume,
    lp: LongPoll,
) -> Response {
    let _watch = CrateWatch {
        probe: &app.probe,
        id: poll_id(query.as_deref()),
        token: lp.token(),
    };
    let res = lp.serve(app.log.reader(resume)).await;
    if res.status() == StatusCode::OK {
        app.probe.answered();
    }
    res
}

async fn crate_publish<B: Backend>(State(app): State<CrateApp<B>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    app.probe.published();
    // On a memory log this is ready at once; on Redis it returns once this
    // instance's mirror has the entry.
    match app.log.publish(Arc::from(text.as_ref())).await {
        Ok(_) => "ok".into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

async fn crate_stream<B: Backend>(
    State(app): State<CrateApp<B>>,
    RawQuery(query): RawQuery,
    s: Streaming,
) -> Response {
    let n = stream_len(query.as_deref());
    let events = Arc::clone(&app.stream);
    // The same events as the raw baseline, each a `{"id":…,"data":…}` line
    // serialized per stream as the baseline does.
    let source = futures_util::stream::iter(0..n).map(move |i| events[i % events.len()].clone());
    s.ndjson(source)
}

/// An NDJSON stream of the log's events from now on: idle while nothing
/// is published (its heartbeat apart).
async fn crate_idle_ndjson<B: Backend>(
    State(app): State<CrateApp<B>>,
    resume: Resume,
    s: Streaming,
) -> Response {
    s.ndjson(app.log.reader(resume))
}

/// The same as SSE.
async fn crate_idle_sse<B: Backend>(
    State(app): State<CrateApp<B>>,
    resume: Resume,
    s: Streaming,
) -> Response {
    s.sse(app.log.reader(resume))
}

type RedisStreams = axum_longpoll::event_log::Streams<Arc<str>, axum_longpoll::event_log::Redis>;

/// Publishes the body on stream `name` (made on first use).
async fn streams_publish(
    State(streams): State<RedisStreams>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: String,
) -> Response {
    let log = match streams.get_or_create(&name).await {
        Ok(log) => log,
        Err(err) => return err.into_response(),
    };
    match log.publish(Arc::from(body)).await {
        Ok(cursor) => cursor.to_string().into_response(),
        Err(err) => err.into_response(),
    }
}

/// Long-polls stream `name` (made on first use).
async fn streams_poll(
    State(streams): State<RedisStreams>,
    axum::extract::Path(name): axum::extract::Path<String>,
    resume: Resume,
    lp: LongPoll,
) -> Response {
    match streams.get_or_create(&name).await {
        Ok(log) => lp.serve(log.reader(resume)).await,
        Err(err) => err.into_response(),
    }
}

/// An idle WebSocket: nothing to send, incoming messages ignored.
async fn crate_ws(ws: LiveSocket) -> Response {
    ws.on_upgrade(|conn| async move {
        conn.run(futures_util::stream::pending(), |_| Ok(())).await;
    })
}

/// The crate's routes on a memory log and its layer, not yet applied.
fn crate_routes(shutdown: CancellationToken) -> (Router, DisconnectLayer) {
    crate_routes_on(shutdown, EventLog::new(1024), false)
}

/// The crate's routes on `log` and its layer, not yet applied.
/// `fanout_reset`: also `POST /fanout/reset`, for an instance that answers a
/// fan-out another one publishes. Only then: `Router::layer` clones every
/// route's layered service per connection, so one more route is more memory
/// per parked poll in the memory figures.
fn crate_routes_on<B: Backend>(
    shutdown: CancellationToken,
    log: EventLog<Arc<str>, B>,
    fanout_reset: bool,
) -> (Router, DisconnectLayer) {
    let layer = DisconnectLayer::new()
        .shutdown(shutdown.clone())
        // Room for the 100,000 parked HTTP/2 streams of the `h2big` phase
        // (the default cap is 50,000 per layer).
        .config(
            LongPollConfig::new()
                .max_timeout(POLL_TIMEOUT)
                .max_in_flight(200_000),
        )
        .config(
            StreamConfig::new()
                .max_bytes(usize::MAX)
                .max_lifetime(Duration::from_secs(3600)),
        );
    let app = CrateApp {
        log,
        stats: layer.stats(),
        probe: Arc::default(),
        stream: stream_events(),
    };
    let mut router = Router::new()
        .route("/poll", get(crate_poll::<B>))
        .route("/publish", post(crate_publish::<B>))
        .route("/plain", get(|| async { "ok" }))
        .route("/stream", get(crate_stream::<B>))
        .route("/idle/ndjson", get(crate_idle_ndjson::<B>))
        .route("/idle/sse", get(crate_idle_sse::<B>))
        .route(
            "/stats",
            get(|State(app): State<CrateApp<B>>| async move {
                format!("parked={}", app.stats.snapshot().parked)
            }),
        )
        .route(
            "/detections",
            get(|State(app): State<CrateApp<B>>| async move { app.probe.detections() }),
        )
        .route(
            "/fanout",
            get(|State(app): State<CrateApp<B>>| async move { app.probe.fanout() }),
        )
        .route("/shutdown", post(move || stop(shutdown.clone())));
    if fanout_reset {
        // Starts a fan-out count without publishing here: the other
        // instance publishes, this one only answers.
        router = router.route(
            "/fanout/reset",
            post(|State(app): State<CrateApp<B>>| async move {
                app.probe.published();
                "ok"
            }),
        );
    }
    (router.with_state(app), layer)
}

// ---------------------------------------------------------------------------
// The bare axum baseline: nothing from this crate
// ---------------------------------------------------------------------------

/// The bare server's retained events: (sequence number, data).
type Ring = std::collections::VecDeque<(u64, Arc<str>)>;

#[derive(Clone)]
struct BareApp {
    events: watch::Sender<(u64, Arc<str>)>,
    /// The last [`BARE_RETAINED`] events, for polls with a cursor (the
    /// publish storm): what a hand-written server keeps to lose no event.
    ring: Arc<std::sync::RwLock<Ring>>,
    shutdown: CancellationToken,
    parked: Arc<AtomicI64>,
    probe: Arc<Probe>,
    stream: Arc<Vec<Event<Arc<str>>>>,
}

/// The hand-written drop guard: hyper dropped the handler before it
/// answered, so the client is gone.
struct BareGuard<'a> {
    app: &'a BareApp,
    id: u64,
    armed: bool,
}

impl Drop for BareGuard<'_> {
    fn drop(&mut self) {
        self.app.parked.fetch_sub(1, Ordering::Relaxed);
        if self.armed {
            self.app.probe.detected(self.id);
        }
    }
}

#[derive(serde::Serialize)]
struct BareEvent<'a> {
    id: String,
    data: &'a str,
}

#[derive(serde::Serialize)]
struct BareBatch<'a> {
    events: [BareEvent<'a>; 1],
    cursor: String,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Events a bare server keeps for polls with a cursor (as the crate's log).
const BARE_RETAINED: usize = 1024;
/// The most events in one bare answer (as the crate's `max_batch`).
const BARE_MAX_BATCH: usize = 100;

fn poll_cursor(query: Option<&str>) -> Option<u64> {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .and_then(|v| v.parse().ok())
}

#[derive(serde::Serialize)]
struct BareEvents<'a> {
    events: Vec<BareEvent<'a>>,
    cursor: String,
}

/// `GET /poll?cursor=N`: the events after `N` at once, else the next ones
/// (the publish storm's pollers resume with their cursor).
async fn bare_poll_cursor(app: BareApp, id: u64, cursor: u64) -> Response {
    let mut rx = app.events.subscribe();
    app.parked.fetch_add(1, Ordering::Relaxed);
    let mut guard = BareGuard {
        app: &app,
        id,
        armed: true,
    };
    let deadline = tokio::time::Instant::now() + POLL_TIMEOUT;
    let res = loop {
        rx.borrow_and_update();
        let batch: Vec<(u64, Arc<str>)> = {
            let ring = app
                .ring
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let from = ring.partition_point(|(seq, _)| *seq <= cursor);
            ring.iter()
                .skip(from)
                .take(BARE_MAX_BATCH)
                .cloned()
                .collect()
        };
        if let Some((last, _)) = batch.last() {
            let body = BareEvents {
                events: batch
                    .iter()
                    .map(|(seq, data)| BareEvent {
                        id: seq.to_string(),
                        data,
                    })
                    .collect(),
                cursor: last.to_string(),
            };
            let res = no_store(Json(body).into_response());
            app.probe.answered();
            break res;
        }
        tokio::select! {
            biased;
            () = app.shutdown.cancelled() => {
                break no_store(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    break StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                break no_store(StatusCode::NO_CONTENT.into_response());
            }
        }
    };
    guard.armed = false;
    res
}

async fn bare_poll(State(app): State<BareApp>, RawQuery(query): RawQuery) -> Response {
    if let Some(cursor) = poll_cursor(query.as_deref()) {
        return bare_poll_cursor(app, poll_id(query.as_deref()), cursor).await;
    }
    let mut rx = app.events.subscribe();
    app.parked.fetch_add(1, Ordering::Relaxed);
    let mut guard = BareGuard {
        app: &app,
        id: poll_id(query.as_deref()),
        armed: true,
    };
    let res = tokio::select! {
        biased;
        () = app.shutdown.cancelled() => {
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down; retry")
                .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            no_store(res)
        }
        changed = rx.changed() => match changed {
            Ok(()) => {
                let (seq, data) = rx.borrow_and_update().clone();
                let res = no_store(Json(BareBatch {
                    events: [BareEvent { id: seq.to_string(), data: &data }],
                    cursor: seq.to_string(),
                }).into_response());
                app.probe.answered();
                res
            }
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        () = tokio::time::sleep(POLL_TIMEOUT) => no_store(StatusCode::NO_CONTENT.into_response()),
    };
    guard.armed = false;
    res
}

async fn bare_publish(State(app): State<BareApp>, body: Bytes) -> &'static str {
    let text = String::from_utf8_lossy(&body);
    app.probe.published();
    let data: Arc<str> = Arc::from(text.as_ref());
    app.events.send_modify(|(seq, last)| {
        *seq += 1;
        *last = Arc::clone(&data);
        let mut ring = app
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.len() == BARE_RETAINED {
            ring.pop_front();
        }
        ring.push_back((*seq, data));
    });
    "ok"
}

async fn bare_stream(State(app): State<BareApp>, RawQuery(query): RawQuery) -> Response {
    let n = stream_len(query.as_deref());
    let events = Arc::clone(&app.stream);
    let body = Body::from_stream(futures_util::stream::iter(0..n).map(move |i| {
        let mut line = serde_json::to_vec(&events[i % events.len()]).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    }));
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res
}

fn bare_router(shutdown: CancellationToken) -> Router {
    let app = BareApp {
        events: watch::Sender::new((0, Arc::from(""))),
        ring: Arc::default(),
        shutdown: shutdown.clone(),
        parked: Arc::default(),
        probe: Arc::default(),
        stream: stream_events(),
    };
    Router::new()
        .route("/poll", get(bare_poll))
        .route("/publish", post(bare_publish))
        .route("/plain", get(|| async { "ok" }))
        .route("/stream", get(bare_stream))
        .route("/ws", get(bare_ws))
        .route("/idle/ndjson", get(bare_idle_ndjson))
        .route("/idle/sse", get(bare_idle_sse))
        .route(
            "/stats",
            get(|State(app): State<BareApp>| async move {
                format!("parked={}", app.parked.load(Ordering::Relaxed))
            }),
        )
        .route(
            "/detections",
            get(|State(app): State<BareApp>| async move { app.probe.detections() }),
        )
        .route(
            "/fanout",
            get(|State(app): State<BareApp>| async move { app.probe.fanout() }),
        )
        .route("/shutdown", post(move || stop(shutdown.clone())))
        .with_state(app)
}

/// An NDJSON response whose stream never yields: the least a hand-written
/// streaming handler holds.
async fn bare_idle_ndjson() -> Response {
    let body = Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>());
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res
}

/// axum's `Sse` over a stream that never yields, with axum's keep-alive
/// (the crate's SSE has its heartbeat too).
async fn bare_idle_sse() -> Response {
    let events = futures_util::stream::pending::<Result<axum::response::sse::Event, Infallible>>();
    axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response()
}

/// An idle WebSocket with axum's defaults, read until it ends.
async fn bare_ws(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move { while let Some(Ok(_)) = socket.recv().await {} })
}

async fn stop(shutdown: CancellationToken) -> Response {
    shutdown.cancel();
    let mut res = "stopping".into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// `127.0.0.1:0` with the listen backlog Go uses (`somaxconn`), not tokio's
/// 1024: with 10,000 clients connecting, a short accept queue overflows and
/// the kernel drops SYNs (a one-second retransmit each).
fn listen() -> std::io::Result<tokio::net::TcpListener> {
    let backlog = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(4096);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(backlog)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Runs server `kind` (`crate` or `bare`) until `/shutdown` or until the
/// harness closes our stdin. `WORKERS` sets the runtime's worker threads.
pub(crate) fn run(kind: &str) -> std::io::Result<()> {
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    std::thread::spawn(|| {
        // The harness holds our stdin; when it is gone, so are we.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(2);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    rt.block_on(async move {
        let listener = listen()?;
        let mut out = std::io::stdout();
        writeln!(out, "LISTEN {}", listener.local_addr()?)?;
        out.flush()?;
        let signal = shutdown.clone().cancelled_owned();
        match kind {
            // As the crate's docs show it: `Router::layer(DisconnectLayer)`.
            "crate" => {
                let (router, layer) = crate_routes(shutdown);
                axum::serve(listener, router.layer(layer))
                    .with_graceful_shutdown(signal)
                    .await
            }
            // As the crate's docs recommend: `serve`, the layer around the
            // whole router. The timeouts are far longer than a pass, so
            // that the connections the fan-out leaves idle stay open.
            "crate-serve" => {
                let (router, layer) = crate_routes(shutdown);
                let router = router.route("/ws", get(crate_ws));
                let config = ServeConfig::new()
                    .header_read_timeout(Duration::from_secs(3600))
                    .idle_timeout(Duration::from_secs(3600));
                axum_longpoll::serve(listener, router)
                    .layer(layer)
                    .config(config)
                    .await
                    .map(drop)
            }
            // The same layer around the whole router, for the memory figure:
            // `Router::layer` boxes every route's layered service (cloned
            // per connection) and its future (per request); around the
            // router, neither happens.
            "crate-outer" => {
                let (router, layer) = crate_routes(shutdown);
                let service = tower::ServiceExt::<axum::extract::Request>::map_response(
                    tower::Layer::layer(&layer, router),
                    |res: http::Response<DisconnectBody<Body>>| res.map(Body::new),
                );
                axum::serve(
                    listener,
                    axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
                )
                .with_graceful_shutdown(signal)
                .await
            }
            // The crate's server on a Redis log: `REDIS_URL`, `REDIS_KEY`;
            // every instance on the key serves the same events.
            "crate-redis" => {
                let url = std::env::var("REDIS_URL")
                    .map_err(|_| std::io::Error::other("REDIS_URL is not set"))?;
                let key = std::env::var("REDIS_KEY").unwrap_or_else(|_| "bench:events".into());
                let client =
                    axum_longpoll::redis::Client::open(url).map_err(std::io::Error::other)?;
                let log = EventLog::builder()
                    .capacity(1024)
                    .redis(client, key)
                    .connect::<Arc<str>>()
                    .await
                    .map_err(std::io::Error::other)?;
                let (router, layer) = crate_routes_on(shutdown, log, true);
                axum::serve(listener, router.layer(layer))
                    .with_graceful_shutdown(signal)
                    .await
            }
            "crate-redis-streams" => {
                let url = std::env::var("REDIS_URL")
                    .map_err(|_| std::io::Error::other("REDIS_URL is not set"))?;
                let prefix = std::env::var("REDIS_KEY").unwrap_or_else(|_| "bench:s:".into());
                let name = std::env::var("REDIS_NAME").unwrap_or_else(|_| "bench".into());
                let client =
                    axum_longpoll::redis::Client::open(url).map_err(std::io::Error::other)?;
                let streams = EventLog::builder()
                    .capacity(64)
                    .streams()
                    .max_streams(100_000)
                    .redis(client, prefix)
                    .client_name(name)
                    .connect::<Arc<str>>()
                    .await
                    .map_err(std::io::Error::other)?;
                let layer = DisconnectLayer::new()
                    .shutdown(shutdown.clone())
                    .config(LongPollConfig::new().max_timeout(POLL_TIMEOUT));
                let stats = layer.stats();
                let router = Router::new()
                    .route("/streams/{name}/publish", post(streams_publish))
                    .route("/streams/{name}/poll", get(streams_poll))
                    .route(
                        "/stats",
                        get(move || async move { format!("parked={}", stats.snapshot().parked) }),
                    )
                    .route("/shutdown", post(move || stop(shutdown.clone())))
                    .with_state(streams);
                axum::serve(listener, router.layer(layer))
                    .with_graceful_shutdown(signal)
                    .await
            }
            "bare" => {
                axum::serve(listener, bare_router(shutdown))
                    .with_graceful_shutdown(signal)
                    .await
            }
            other => Err(std::io::Error::other(format!(
                "unknown server {other:?}: allowed crate, crate-serve, crate-outer, crate-redis, \
                 crate-redis-streams, bare"
            ))),
        }
    })
}
