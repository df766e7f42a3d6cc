//! The demo's router and handlers, shared by `main.rs` and by the tests,
//! benchmarks and browser test that drive the same HTTP interface
//! (`#[path = "../examples/demo/app.rs"] mod demo;`).

use std::sync::Arc;

use axum::extract::ws::Message;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::event_log::{Backend, EventLog, Memory, Resume, LAST_EVENT_ID};
use axum_longpoll::long_poll::CURSOR;
use axum_longpoll::ws::{CloseReason, LiveSocket, WsConfig};
use axum_longpoll::{DisconnectLayer, LongPoll, Stats, Streaming};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest message `/publish` accepts.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The demo's state, for either backend of the log.
struct App<B = Memory> {
    log: EventLog<Arc<str>, B>,
    stats: Stats,
    /// `"memory"` or `"redis"`, for `/stats`.
    backend: &'static str,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            stats: self.stats.clone(),
            backend: self.backend,
        }
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("publish body too large: allowed at most {MAX_MESSAGE} bytes of UTF-8 text"),
    )
        .into_response()
}

async fn publish<B: Named>(State(app): State<App<B>>, req: Request) -> Response {
    // A body announced too large is refused before it is read: the client
    // uploads nothing (with `Expect: 100-continue`, no `100 Continue`).
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_MESSAGE as u64) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_MESSAGE).await else {
        return too_large();
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return (
            StatusCode::BAD_REQUEST,
            "invalid publish body: allowed UTF-8 text only",
        )
            .into_response();
    };
    // On Redis a publish can fail (Redis unreachable): `503` + `Retry-After`.
    match app.log.publish(Arc::from(text)).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(err) => err.into_response(),
    }
}

// The four modes, the same shape: the client's position in the log, served
// in the mode's own way (a gone position: 410, in-band `gone`, 4410).

async fn poll<B: Named>(State(app): State<App<B>>, resume: Resume, lp: LongPoll) -> Response {
    lp.serve(app.log.reader(resume)).await
}

async fn stream<B: Named>(State(app): State<App<B>>, resume: Resume, s: Streaming) -> Response {
    s.ndjson(app.log.reader(resume))
}

async fn sse<B: Named>(State(app): State<App<B>>, resume: Resume, s: Streaming) -> Response {
    s.sse(app.log.reader(resume))
}

/// Events of the log as text frames; a text frame from the client is
/// published like `POST /publish` (a binary one closes with `1003`).
async fn ws<B: Named>(State(app): State<App<B>>, resume: Resume, ws: LiveSocket) -> Response {
    // The socket's callback must not wait (on Redis a publish is a round
    // trip): one task per socket appends its messages in order and stops
    // when the socket is gone.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Arc<str>>();
    let log = app.log.clone();
    tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if let Err(err) = log.publish(text).await {
                eprintln!("publish from a WebSocket failed: {err}");
            }
        }
    });
    ws.serve(app.log.reader(resume), move |msg| match msg {
        Message::Text(text) => {
            let _ = tx.send(Arc::from(text.as_str()));
            Ok(())
        }
        _ => Err(CloseReason::server(1003, "text messages only")),
    })
}

async fn stats<B: Named>(State(app): State<App<B>>) -> Response {
    let mut body = serde_json::to_value(app.stats.snapshot()).unwrap_or_default();
    body["retained"] = json!(app.log.len());
    body["head"] = json!(app.log.head());
    body["backend"] = json!(app.backend);
    Json(body).into_response()
}

/// The backends the demo runs on, by name (for `/stats`).
pub(crate) trait Named: Backend {
    const NAME: &'static str;
}

impl Named for Memory {
    const NAME: &'static str = "memory";
}

impl Named for axum_longpoll::event_log::Redis {
    const NAME: &'static str = "redis";
}

/// The demo's router with its layer, for a given log (in memory or on
/// Redis) and shutdown token (for `axum::serve`, as the tests use it).
#[allow(dead_code)] // each user of app.rs calls one of the three
pub(crate) fn router<B: Named>(log: EventLog<Arc<str>, B>, shutdown: CancellationToken) -> Router {
    router_with_in_flight(log, shutdown).0
}

/// The demo's router with its layer, and its requests in flight (to wait
/// for them, the WebSockets among them, after `axum::serve`'s graceful
/// shutdown).
#[allow(dead_code)]
pub(crate) fn router_with_in_flight<B: Named>(
    log: EventLog<Arc<str>, B>,
    shutdown: CancellationToken,
) -> (Router, InFlight) {
    let (routes, layer) = routes(log, shutdown);
    let in_flight = layer.in_flight();
    (routes.layer(layer), in_flight)
}

/// The demo's routes and, not yet applied, its layer: for
/// `axum_longpoll::serve`, which puts the layer around the whole router.
pub(crate) fn routes<B: Named>(
    log: EventLog<Arc<str>, B>,
    shutdown: CancellationToken,
) -> (Router, DisconnectLayer) {
    let layer = DisconnectLayer::new()
        .shutdown(shutdown)
        .config(WsConfig::new().max_message_size(MAX_MESSAGE));
    let state = App {
        log,
        stats: layer.stats(),
        backend: B::NAME,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/publish", post(publish::<B>))
        .route("/poll", get(poll::<B>))
        .route("/stream", get(stream::<B>))
        .route("/sse", get(sse::<B>))
        .route("/ws", get(ws::<B>))
        .route("/stats", get(stats::<B>))
        .route("/ready", get(axum_longpoll::serve::ready))
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
pub(crate) fn cross_origin(router: Router, origins: &Origins) -> Router {
    router
        .layer(cors(origins))
        .layer(axum::middleware::from_fn_with_state(
            origins.clone(),
            ws_origin_guard,
        ))
}

/// Refuses (`403`) a WebSocket upgrade whose `Origin` is neither this
/// server's own nor allowed by `ORIGINS`; without this any site a user
/// visits could read the log and publish through `/ws`. Requests without an
/// `Origin` (not from a browser) pass.
async fn ws_origin_guard(
    State(origins): State<Origins>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if let (true, Some(origin)) = (upgrade, headers.get(header::ORIGIN)) {
        let own = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .zip(headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .is_some_and(|((_, host), own)| host.eq_ignore_ascii_case(own));
        if !own && !origins.allows(origin) {
            let text = format!(
                "WebSocket upgrade refused for Origin {origin:?}: allowed are this server's own \
                 pages and ORIGINS ({ORIGINS_ALLOWED})"
            );
            return (StatusCode::FORBIDDEN, text).into_response();
        }
    }
    next.run(req).await
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
