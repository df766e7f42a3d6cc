//! The demo's router and handlers, shared by `main.rs` and by the tests,
//! benchmarks and browser test that drive the same HTTP interface
//! (`#[path = "../examples/demo/app.rs"] mod demo;`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::ws::Message;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::durable::{Chunk, DurableConfig, DurableStreams};
use axum_longpoll::event_log::{
    Backend, EventLog, Memory, PublishError, Redis, Resume, Streams, StreamsBuilder, LAST_EVENT_ID,
};
use axum_longpoll::long_poll::CURSOR;
use axum_longpoll::ws::{CloseReason, LiveSocket, WsConfig};
use axum_longpoll::{DisconnectLayer, LongPoll, LongPollConfig, Stats, Streaming};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest message `/publish` accepts.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The demo's state: the root log (`/publish`, `/poll`, …) and the named
/// streams (`/streams/{name}/…`), each in memory or on Redis.
struct App<B = Memory, S: Backend = Memory> {
    log: EventLog<Arc<str>, B>,
    streams: Streams<Arc<str>, S>,
    stats: Stats,
    /// `"memory"` or `"redis"`, for `/stats`.
    backend: &'static str,
}

impl<B, S: Backend> Clone for App<B, S> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            streams: self.streams.clone(),
            stats: self.stats.clone(),
            backend: self.backend,
        }
    }
}

impl<B, S: Named> App<B, S> {
    /// The stream `name`, created on first use; `400` for a bad name,
    /// `503` + `Retry-After` beyond `MAX_STREAMS`.
    async fn stream(&self, name: &str) -> Result<EventLog<Arc<str>, S>, Response> {
        self.streams
            .get_or_create(name)
            .await
            .map_err(IntoResponse::into_response)
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("publish body too large: allowed at most {MAX_MESSAGE} bytes of UTF-8 text"),
    )
        .into_response()
}

/// The body of a publish: UTF-8 text of at most 64 KiB.
async fn message(req: Request) -> Result<Arc<str>, Response> {
    // A body announced too large is refused before it is read: the client
    // uploads nothing (with `Expect: 100-continue`, no `100 Continue`).
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_MESSAGE as u64) {
        return Err(too_large());
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_MESSAGE).await else {
        return Err(too_large());
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Arc::from(text)),
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            "invalid publish body: allowed UTF-8 text only",
        )
            .into_response()),
    }
}

/// Publishes `body` on `log`: `200 {"id":…}`; `409` naming a closed stream;
/// on Redis `503` + `Retry-After` while Redis is unreachable.
async fn publish_to<X: Named>(log: &EventLog<Arc<str>, X>, req: Request) -> Response {
    let text = match message(req).await {
        Ok(text) => text,
        Err(res) => return res,
    };
    match log.publish(text).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(err) => refused(err),
    }
}

/// A refused publish or close: a closed stream is `409` with a JSON body
/// naming it; the rest as the crate answers them.
fn refused(err: PublishError) -> Response {
    match &err {
        PublishError::Closed { name, end } => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "stream_closed",
                "stream": name.as_deref().unwrap_or(""),
                "cursor": end,
                "message": err.to_string(),
            })),
        )
            .into_response(),
        _ => err.into_response(),
    }
}

async fn publish<B: Named, S: Named>(State(app): State<App<B, S>>, req: Request) -> Response {
    publish_to(&app.log, req).await
}

async fn named_publish<S: Named>(NamedLog(log): NamedLog<S>, req: Request) -> Response {
    publish_to(&log, req).await
}

/// `POST /streams/{name}/close`: ends the stream, after the body as its
/// last event if there is one. `200 {"cursor":"<end>"}`; closing again is
/// harmless (the same end), unless it brings a last event (`409`).
async fn named_close<S: Named>(NamedLog(log): NamedLog<S>, req: Request) -> Response {
    let last = match message(req).await {
        Ok(text) if text.is_empty() => None,
        Ok(text) => Some(text),
        Err(res) => return res,
    };
    match log.close(last).await {
        Ok(end) => Json(json!({ "cursor": end })).into_response(),
        Err(err) => refused(err),
    }
}

/// `DELETE /streams/{name}`: `204`; the stream's old cursors are refused
/// afterwards (`410`), whether or not it lived; on Redis `503` +
/// `Retry-After` while Redis is unreachable.
async fn named_delete<B: Named, S: Named>(
    State(app): State<App<B, S>>,
    Path(name): Path<String>,
) -> Response {
    if let Err(err) = axum_longpoll::event_log::check_name(&name) {
        return err.into_response();
    }
    match app.streams.delete(&name).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

// The four modes, the same shape: the client's position in the log, served
// in the mode's own way (a gone position: 410, in-band `gone`, 4410; the end
// of a closed stream: `"closed":true`, a `closed` frame, close 1000).

async fn poll<B: Named, S: Named>(
    State(app): State<App<B, S>>,
    resume: Resume,
    lp: LongPoll,
) -> Response {
    lp.serve(app.log.reader(resume)).await
}

async fn stream<B: Named, S: Named>(
    State(app): State<App<B, S>>,
    resume: Resume,
    s: Streaming,
) -> Response {
    s.ndjson(app.log.reader(resume))
}

async fn sse<B: Named, S: Named>(
    State(app): State<App<B, S>>,
    resume: Resume,
    s: Streaming,
) -> Response {
    s.sse(app.log.reader(resume))
}

// The same on a named stream (created on its first read).

/// Extractor: the stream named in the path, created on first use (`400`
/// for a bad name, `503` + `Retry-After` beyond `MAX_STREAMS`).
struct NamedLog<S: Backend>(EventLog<Arc<str>, S>);

impl<B: Named, S: Named> axum::extract::FromRequestParts<App<B, S>> for NamedLog<S> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App<B, S>,
    ) -> Result<Self, Response> {
        let Path(name) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        app.stream(&name).await.map(Self)
    }
}

async fn named_poll<S: Named>(
    NamedLog(log): NamedLog<S>,
    resume: Resume,
    lp: LongPoll,
) -> Response {
    lp.serve(log.reader(resume)).await
}

async fn named_stream<S: Named>(
    NamedLog(log): NamedLog<S>,
    resume: Resume,
    s: Streaming,
) -> Response {
    s.ndjson(log.reader(resume))
}

async fn named_sse<S: Named>(NamedLog(log): NamedLog<S>, resume: Resume, s: Streaming) -> Response {
    s.sse(log.reader(resume))
}

/// Events of `log` as text frames; a text frame from the client is
/// published like `POST …/publish` (a binary one closes with `1003`).
fn socket<X: Named>(log: EventLog<Arc<str>, X>, resume: Resume, ws: LiveSocket) -> Response {
    // The socket's callback must not wait (on Redis a publish is a round
    // trip): one task per socket appends its messages in order and stops
    // when the socket is gone.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Arc<str>>();
    let publisher = log.clone();
    tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if let Err(err) = publisher.publish(text).await {
                eprintln!("publish from a WebSocket failed: {err}");
            }
        }
    });
    ws.serve(log.reader(resume), move |msg| match msg {
        Message::Text(text) => {
            let _ = tx.send(Arc::from(text.as_str()));
            Ok(())
        }
        _ => Err(CloseReason::server(1003, "text messages only")),
    })
}

async fn ws<B: Named, S: Named>(
    State(app): State<App<B, S>>,
    resume: Resume,
    ws: LiveSocket,
) -> Response {
    socket(app.log, resume, ws)
}

async fn named_ws<S: Named>(
    NamedLog(log): NamedLog<S>,
    resume: Resume,
    ws: LiveSocket,
) -> Response {
    socket(log, resume, ws)
}

async fn stats<B: Named, S: Named>(State(app): State<App<B, S>>) -> Response {
    let mut body = serde_json::to_value(app.stats.snapshot()).unwrap_or_default();
    body["retained"] = json!(app.log.len());
    body["head"] = json!(app.log.head());
    body["backend"] = json!(app.backend);
    body["streams"] = json!(app.streams.len());
    Json(body).into_response()
}

/// The process's Prometheus recorder, once [`install_metrics`] ran.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for the process (every `metrics` call
/// of the crate, feature `metrics`, lands in it; `GET /metrics` renders
/// it) and a task that drains its histograms every 5 s (else their samples
/// pile up between scrapes). Call it inside the runtime, before the router
/// is made: the layer describes the metrics to the recorder. A second call
/// does nothing.
pub(crate) fn install_metrics() -> Result<(), String> {
    if PROMETHEUS.get().is_some() {
        return Ok(());
    }
    const SECONDS: &[f64] = &[
        0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0,
        300.0,
    ];
    const EVENTS: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_per_answer".into()), EVENTS))
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|err| format!("cannot install the Prometheus recorder: {err}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = PROMETHEUS.set(handle);
    Ok(())
}

/// `GET /metrics`: the crate's counters, gauges and histograms in the
/// Prometheus text format (the same figures as `/stats`, by mode and
/// outcome).
async fn metrics() -> Response {
    match PROMETHEUS.get() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics: the Prometheus recorder is not installed in this process \
             (`main.rs` installs it)",
        )
            .into_response(),
    }
}

/// The backends the demo runs on, by name (for `/stats`).
pub(crate) trait Named: Backend {
    const NAME: &'static str;
}

impl Named for Memory {
    const NAME: &'static str = "memory";
}

impl Named for Redis {
    const NAME: &'static str = "redis";
}

/// Named streams in memory with the demo's defaults (`MAX_STREAMS`
/// 10,000, `STREAM_IDLE` 300 s, `RETAIN` 1024 events each).
pub(crate) fn memory_streams() -> Streams<Arc<str>> {
    EventLog::builder().capacity(1024).streams().build()
}

/// The demo's router, for a given root log (in memory or on Redis) with
/// named streams in memory, and a shutdown token.
#[allow(dead_code)] // each user of app.rs calls one of them
pub(crate) fn router<B: Named>(log: EventLog<Arc<str>, B>, shutdown: CancellationToken) -> Router {
    router_with_in_flight(log, memory_streams(), shutdown).0
}

/// The demo's router and its requests in flight (to wait for them, the
/// WebSockets among them, after a graceful shutdown).
pub(crate) fn router_with_in_flight<B: Named, S: Named>(
    log: EventLog<Arc<str>, B>,
    streams: Streams<Arc<str>, S>,
    shutdown: CancellationToken,
) -> (Router, InFlight) {
    let (routes, layer) = routes(log, streams, shutdown);
    let in_flight = layer.in_flight();
    (routes.layer(layer), in_flight)
}

/// The demo's Durable Streams in memory (a handle on its streams).
#[allow(dead_code)] // for the tests
pub(crate) type DurableHandle = DurableStreams;

/// The demo's named streams (`/streams/{name}/…`): `RETAIN` events each,
/// at most `MAX_STREAMS`, evicted after `STREAM_IDLE` (`None`: never). On
/// Redis every instance on the same prefix shares them, and the idle time
/// counts in Redis.
pub(crate) fn streams_builder(
    retain: usize,
    max_streams: usize,
    idle: Option<Duration>,
) -> StreamsBuilder {
    EventLog::builder()
        .capacity(retain)
        .streams()
        .max_streams(max_streams)
        .idle(idle)
}

/// The demo's Durable Streams collection: a million appends kept per
/// stream, at most a thousand per read, never idle-evicted (durable
/// streams go by `DELETE`, a TTL or an expiry), at most 10,000 (on Redis:
/// mirrored on one instance).
pub(crate) fn durable_builder() -> StreamsBuilder {
    EventLog::builder()
        .capacity(1_000_000)
        .max_batch(1_000)
        .streams()
        .max_streams(10_000)
        .idle(None)
}

/// The protocol's server over `streams`, long-polls of `long_poll`
/// (`DS_LONG_POLL`).
pub(crate) fn durable<D: Backend>(
    streams: Streams<Chunk, D>,
    long_poll: Duration,
) -> DurableStreams<D> {
    DurableStreams::with_config(streams, DurableConfig::new().long_poll(long_poll))
}

/// Durable Streams in memory with the demo's defaults (10,000 streams),
/// long-polls of `long_poll` (`DS_LONG_POLL`).
pub(crate) fn memory_durable(long_poll: Duration) -> DurableStreams {
    durable(durable_builder().build(), long_poll)
}

/// Where the demo keeps what it keeps in Redis (`REDIS_URL`), all under
/// `REDIS_KEY` (default `axum-longpoll:demo`): the root log at the key,
/// the named streams at `<key>:streams:<name>`, the Durable Streams at
/// `<key>:ds:<name>` (each with its `:meta` hash).
#[derive(Clone, Debug)]
pub(crate) struct RedisPlace {
    pub(crate) client: axum_longpoll::redis::Client,
    pub(crate) key: String,
}

/// What `main.rs` serves: the root log, the named streams and the Durable
/// Streams, each in memory or on Redis.
pub(crate) struct Parts<B: Named, S: Named, D: Named> {
    pub(crate) log: EventLog<Arc<str>, B>,
    pub(crate) streams: Streams<Arc<str>, S>,
    pub(crate) durable: DurableStreams<D>,
}

/// The demo's three parts on Redis: every instance given the same
/// `REDIS_URL`, `REDIS_KEY` and `RETAIN` serves the same root log, the
/// same named streams and the same Durable Streams. Three hubs of two
/// connections each.
pub(crate) async fn redis_parts(
    place: &RedisPlace,
    retain: usize,
    max_streams: usize,
    idle: Option<Duration>,
    long_poll: Duration,
) -> Result<Parts<Redis, Redis, Redis>, axum_longpoll::redis::RedisError> {
    let log = EventLog::builder()
        .capacity(retain)
        .redis(place.client.clone(), place.key.as_str())
        .connect()
        .await?;
    let streams = streams_builder(retain, max_streams, idle)
        .redis(place.client.clone(), format!("{}:streams:", place.key))
        .connect()
        .await?;
    let ds = durable_builder()
        .redis(place.client.clone(), format!("{}:ds:", place.key))
        .connect()
        .await?;
    Ok(Parts {
        log,
        streams,
        durable: durable(ds, long_poll),
    })
}

/// The demo as `main.rs` serves it, with its layer applied (for
/// `axum::serve`, as the tests use it): see [`durable_routes`].
#[allow(dead_code)] // for the tests
pub(crate) fn router_with_durable<B: Named, S: Named, D: Named>(
    log: EventLog<Arc<str>, B>,
    streams: Streams<Arc<str>, S>,
    durable: DurableStreams<D>,
    origins: &Origins,
    proxies: &TrustedProxies,
    shutdown: CancellationToken,
) -> (Router, InFlight) {
    let (routes, layer) = durable_routes(log, streams, durable, origins, proxies, shutdown);
    let in_flight = layer.in_flight();
    (routes.layer(layer), in_flight)
}

/// The demo as `main.rs` serves it: the root log and the named streams
/// with the page's CORS for `origins` (and the WebSocket origin check,
/// which believes the forwarded host of `proxies` only), and the Durable
/// Streams protocol under `/v1/stream/` with its own CORS (any origin);
/// and, not yet applied, the one `DisconnectLayer` that goes around all of
/// it (`axum_longpoll::serve` puts it there).
///
/// With `proxies` set the router must be served with the peer's address
/// (`serve(..).with_connect_info()`, or
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub(crate) fn durable_routes<B: Named, S: Named, D: Named>(
    log: EventLog<Arc<str>, B>,
    streams: Streams<Arc<str>, S>,
    durable: DurableStreams<D>,
    origins: &Origins,
    proxies: &TrustedProxies,
    shutdown: CancellationToken,
) -> (Router, DisconnectLayer) {
    let (routes, layer) = routes(log, streams, shutdown);
    let router = cross_origin_behind(routes, origins, proxies)
        .nest("/v1/stream", axum_longpoll::durable::router(durable));
    (router, layer)
}

/// `router` with long-polls of at most `max` (`LONG_POLL_MAX`; the Durable
/// Streams routes keep their own wait, `DS_LONG_POLL`).
pub(crate) fn long_poll_max(router: Router, max: Duration) -> Router {
    router.layer(Extension(LongPollConfig::new().max_timeout(max)))
}

/// The demo's routes and the layer that must wrap them.
fn routes<B: Named, S: Named>(
    log: EventLog<Arc<str>, B>,
    streams: Streams<Arc<str>, S>,
    shutdown: CancellationToken,
) -> (Router, DisconnectLayer) {
    let layer = DisconnectLayer::new()
        .shutdown(shutdown)
        .config(WsConfig::new().max_message_size(MAX_MESSAGE));
    let state = App {
        log,
        streams,
        stats: layer.stats(),
        backend: B::NAME,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/publish", post(publish::<B, S>))
        .route("/poll", get(poll::<B, S>))
        .route("/stream", get(stream::<B, S>))
        .route("/sse", get(sse::<B, S>))
        .route("/ws", get(ws::<B, S>))
        .route("/stats", get(stats::<B, S>))
        .route("/metrics", get(metrics))
        .route("/ready", get(axum_longpoll::serve::ready))
        .route("/streams/{name}", delete(named_delete::<B, S>))
        .route("/streams/{name}/publish", post(named_publish::<S>))
        .route("/streams/{name}/close", post(named_close::<S>))
        .route("/streams/{name}/poll", get(named_poll::<S>))
        .route("/streams/{name}/stream", get(named_stream::<S>))
        .route("/streams/{name}/sse", get(named_sse::<S>))
        .route("/streams/{name}/ws", get(named_ws::<S>))
        .with_state(state);
    (router, layer)
}

// ---------------------------------------------------------------------------
// The page at `/` and CORS for a page served from another origin
// ---------------------------------------------------------------------------

/// The demo page: one HTML file with plain JS, no build step.
const PAGE: &str = include_str!("page.html");

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Which origins may call the API from a page of their own (`ORIGINS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origins {
    /// Pages on this machine: `http(s)://localhost`, `127.0.0.1` or
    /// `[::1]`, any port. The default (`ORIGINS=loopback`).
    Loopback,
    /// Exactly these origins (`ORIGINS=https://a.example,http://localhost:8000`).
    List(Vec<HeaderValue>),
}

/// What `ORIGINS` allows, for error messages.
pub(crate) const ORIGINS_ALLOWED: &str = "`loopback`, or a comma-separated list of origins like \
     http://localhost:8000 (scheme://host[:port], no path or trailing slash)";

impl std::str::FromStr for Origins {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("loopback") {
            return Ok(Self::Loopback);
        }
        let mut list = Vec::new();
        for origin in value.split(',').map(str::trim) {
            let well_formed = split_origin(origin).is_some_and(|(_, host, _)| !host.is_empty());
            match HeaderValue::from_str(origin) {
                Ok(header) if well_formed => list.push(header),
                _ => return Err(format!("invalid origin {origin:?} in ORIGINS")),
            }
        }
        Ok(Self::List(list))
    }
}

/// `scheme://host[:port]` → (scheme, host, port); `None` for anything else
/// (a path, a trailing slash, userinfo, another scheme).
fn split_origin(origin: &str) -> Option<(&str, &str, Option<&str>)> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.contains(['/', '@', '?', '#']) {
        return None;
    }
    // An IPv6 host is bracketed: `[::1]:8000`.
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (inner, after) = v6.split_once(']')?;
            let host = &rest[..inner.len() + 2];
            match after {
                "" => (host, None),
                port => (host, Some(port.strip_prefix(':')?)),
            }
        }
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((scheme, host, port))
}

/// Whether a request's `Origin` is a page on this machine.
pub(crate) fn is_loopback(origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .ok()
        .and_then(split_origin)
        .is_some_and(|(_, host, _)| matches!(host, "localhost" | "127.0.0.1" | "[::1]"))
}

impl Origins {
    /// Whether a page of `origin` may use the API.
    pub(crate) fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::Loopback => is_loopback(origin),
            Self::List(list) => list.contains(origin),
        }
    }
}

/// The API for pages of other origins: [`cors`] for HTTP, and the same rule
/// for WebSocket upgrades, which browsers send from any page without CORS
/// (gorilla's upgrader, behind seeds 003/004, refuses them by default).
#[allow(dead_code)] // each user of app.rs calls one of them
pub(crate) fn cross_origin(router: Router, origins: &Origins) -> Router {
    cross_origin_behind(router, origins, &TrustedProxies::default())
}

/// [`cross_origin`] behind reverse proxies: an upgrade from one of
/// `proxies` is checked against the page's host the proxy forwards, as well
/// as against `Host` (see [`TrustedProxies`]).
pub(crate) fn cross_origin_behind(
    router: Router,
    origins: &Origins,
    proxies: &TrustedProxies,
) -> Router {
    let check = OriginCheck {
        origins: origins.clone(),
        proxies: proxies.clone(),
    };
    router
        .layer(cors(origins))
        .layer(axum::middleware::from_fn_with_state(check, ws_origin_guard))
}

/// What the WebSocket origin check allows: this server's own pages,
/// `ORIGINS`, and what the trusted proxies say the own pages are.
#[derive(Clone, Debug)]
struct OriginCheck {
    origins: Origins,
    proxies: TrustedProxies,
}

/// Refuses (`403`) a WebSocket upgrade whose `Origin` is neither this
/// server's own nor allowed by `ORIGINS`; without this any site a user
/// visits could read the log and publish through `/ws`. Requests without an
/// `Origin` (not from a browser) pass.
///
/// "This server's own" is the `Host` the request names; and, only when
/// the peer is one of `TRUSTED_PROXIES`, the host (and scheme) that proxy
/// forwards in `Forwarded` or `X-Forwarded-Host` (`X-Forwarded-Proto`): a
/// proxy in front names the demo by its upstream address, not by the
/// page's host. From any other peer those headers are ignored, so a client
/// cannot talk its way past the check.
async fn ws_origin_guard(
    State(check): State<OriginCheck>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if let (true, Some(origin)) = (upgrade, headers.get(header::ORIGIN)) {
        let own_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .zip(headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .is_some_and(|((_, host), own)| host.eq_ignore_ascii_case(own));
        let own = own_host
            || match check.forwarded_own(&req, origin) {
                Ok(own) => own,
                Err(setup) => return (StatusCode::INTERNAL_SERVER_ERROR, setup).into_response(),
            };
        if !own && !check.origins.allows(origin) {
            let text = format!(
                "WebSocket upgrade refused for Origin {origin:?}: allowed are this server's own \
                 pages and ORIGINS ({ORIGINS_ALLOWED}); behind a reverse proxy, TRUSTED_PROXIES \
                 ({TRUSTED_PROXIES_ALLOWED})"
            );
            return (StatusCode::FORBIDDEN, text).into_response();
        }
    }
    next.run(req).await
}

impl OriginCheck {
    /// Whether `origin` is the page's own origin as a trusted proxy
    /// forwards it; `false` when the peer is not trusted or forwards
    /// nothing. `Err` (the text of a `500`) when proxies are trusted but
    /// the server gives no peer address: a setup error.
    fn forwarded_own(
        &self,
        req: &axum::extract::Request,
        origin: &HeaderValue,
    ) -> Result<bool, &'static str> {
        if self.proxies.is_empty() {
            return Ok(false);
        }
        let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return Err(
                "TRUSTED_PROXIES is set but the server gives no peer address: serve the \
                 router with `axum_longpoll::serve(..).with_connect_info()` or \
                 `into_make_service_with_connect_info::<SocketAddr>()`",
            );
        };
        if !self.proxies.contains(peer.ip()) {
            return Ok(false);
        }
        let Some((host, proto)) = forwarded_host(req.headers()) else {
            return Ok(false);
        };
        Ok(origin
            .to_str()
            .is_ok_and(|origin| same_origin(origin, &host, proto.as_deref())))
    }
}

/// The peers whose forwarded host the WebSocket origin check believes
/// (`TRUSTED_PROXIES`): none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies(Vec<IpRange>);

/// What `TRUSTED_PROXIES` allows, for error messages.
pub(crate) const TRUSTED_PROXIES_ALLOWED: &str = "`none` (the default), `loopback`, or a \
     comma-separated list of the proxies' addresses and CIDR ranges like \
     10.0.0.5,192.168.0.0/16,fd00::/8 (`loopback` may be one of them)";

/// An address range: `net` with its first `prefix` bits significant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    fn new(net: IpAddr, prefix: u8) -> Self {
        // Keep the network bits only, so that equal ranges compare equal.
        let net = match net {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask128(prefix))),
        };
        Self { net, prefix }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                ip.to_bits() & mask32(self.prefix) == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                ip.to_bits() & mask128(self.prefix) == net.to_bits()
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl TrustedProxies {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a peer at `ip` is one of the trusted proxies.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// `none`, `loopback`, or a comma-separated list of addresses, CIDR
    /// ranges and `loopback`. The error names the item that is wrong.
    fn from_str(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("none") {
            return Ok(Self::default());
        }
        let mut ranges = Vec::new();
        for item in value.split(',').map(str::trim) {
            if item.eq_ignore_ascii_case("loopback") {
                ranges.push(IpRange::new(Ipv4Addr::LOCALHOST.into(), 8));
                ranges.push(IpRange::new(Ipv6Addr::LOCALHOST.into(), 128));
                continue;
            }
            let (addr, prefix) = match item.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (item, None),
            };
            let wrong = || {
                if item.is_empty() {
                    "an empty item".to_owned()
                } else {
                    format!("{item:?} is neither an IP address nor a CIDR range")
                }
            };
            let addr: IpAddr = addr.parse().map_err(|_| wrong())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix length is at most {max}"))?,
                Some(_) => return Err(wrong()),
            };
            ranges.push(IpRange::new(addr, prefix));
        }
        Ok(Self(ranges))
    }
}

/// The page's host and scheme as the proxy next to this server forwards
/// them: the last element of `Forwarded` (RFC 7239) when the request has
/// that header, else the last `X-Forwarded-Host` and `X-Forwarded-Proto`.
/// The last, because a proxy appends its own element to what it received:
/// earlier ones may come from the client.
pub(crate) fn forwarded_host(headers: &axum::http::HeaderMap) -> Option<(String, Option<String>)> {
    let joined = |name| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if headers.contains_key(FORWARDED) {
        let forwarded = joined(FORWARDED)?;
        let last = split_unquoted(&forwarded, ',')
            .into_iter()
            .rev()
            .find(|e| !e.trim().is_empty())?;
        let (mut host, mut proto) = (None, None);
        for pair in split_unquoted(last, ';') {
            let (name, value) = pair.split_once('=')?;
            let value = unquote(value.trim())?;
            match name.trim().to_ascii_lowercase().as_str() {
                "host" => host = Some(value),
                "proto" => proto = Some(value),
                _ => {}
            }
        }
        return host.map(|host| (host, proto));
    }
    let last = |list: String| {
        list.rsplit(',')
            .map(str::trim)
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let host = joined(X_FORWARDED_HOST).and_then(last)?;
    Some((host, joined(X_FORWARDED_PROTO).and_then(last)))
}

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// `text` split at each `sep` outside a quoted string.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// An RFC 7239 value: a token, or a quoted string with `\` escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty() && !value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// Whether `origin` (`scheme://host[:port]`) is a page served at `host`
/// (`host[:port]`, as in `Host`), over `scheme` when it is known. Default
/// ports are the same as none.
pub(crate) fn same_origin(origin: &str, host: &str, scheme: Option<&str>) -> bool {
    let Some((origin_scheme, origin_host, origin_port)) = split_origin(origin) else {
        return false;
    };
    let served = format!("{origin_scheme}://{host}");
    let Some((_, host, port)) = split_origin(&served) else {
        return false;
    };
    let default = if origin_scheme == "https" {
        "443"
    } else {
        "80"
    };
    scheme.is_none_or(|s| s.eq_ignore_ascii_case(origin_scheme))
        && host.eq_ignore_ascii_case(origin_host)
        && origin_port.unwrap_or(default) == port.unwrap_or(default)
}

/// CORS as the crate docs recommend ("With tower-http"): explicit origins
/// with credentials, the request headers the modes read, and the response
/// headers a script must see (`Cursor` on a 204, `Retry-After` on a 503).
pub(crate) fn cors(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Loopback => AllowOrigin::predicate(|origin, _| is_loopback(origin)),
        Origins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            LAST_EVENT_ID,
            HeaderName::from_static("prefer"),
            header::CONTENT_TYPE,
        ])
        .expose_headers([CURSOR, header::RETRY_AFTER])
}
