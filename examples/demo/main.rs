//! The demo server: publish messages, long-poll them with a cursor.
//!
//! Run it:
//!
//! ```text
//! cargo run --example demo                     # ADDR=127.0.0.1:3000 RETAIN=1024
//! ADDR=127.0.0.1:8080 RETAIN=100 cargo run --example demo
//! ```
//!
//! Then open <http://127.0.0.1:3000/>: the demo page (`page.html`, plain JS)
//! publishes messages and shows them live over long-poll, an NDJSON stream,
//! server-sent events or a WebSocket (which then also carries what you
//! publish), with the connection state and the cursor; stop and restart the
//! server to watch it reconnect and resync. The same page
//! served from another origin talks to this server with `?api=`:
//!
//! ```text
//! python3 -m http.server -d examples/demo 8000
//! # open http://localhost:8000/page.html?api=http://127.0.0.1:3000
//! ```
//!
//! (the page's origin must be allowed by `ORIGINS`; loopback is by default).
//!
//! Two instances sharing one log on Redis (a client may poll either with
//! the same cursor; see the crate's `event_log` docs, "The Redis backend"):
//!
//! ```text
//! redis-server --port 6379 --appendonly yes &
//! REDIS_URL=redis://127.0.0.1:6379 ADDR=127.0.0.1:3000 cargo run --example demo &
//! REDIS_URL=redis://127.0.0.1:6379 ADDR=127.0.0.1:3001 cargo run --example demo &
//! curl -d 'hello' localhost:3000/publish              # → {"id":"<cursor>"}
//! curl -i 'localhost:3001/poll?from=oldest'           # the same event, the same id
//! ```
//!
//! Try it with curl (in a second terminal):
//!
//! ```text
//! curl -i 'localhost:3000/poll?timeout=30'            # waits for the next message
//! curl -d 'hello' localhost:3000/publish              # → {"id":"<cursor>"}
//! curl -i 'localhost:3000/poll?from=oldest'           # everything retained, at once
//! curl -i 'localhost:3000/poll?cursor=<id>&timeout=5' # after <id>; 204 + Cursor header on timeout
//! curl -i 'localhost:3000/poll?cursor=garbage'        # 400 naming `cursor`
//! curl -i 'localhost:3000/poll?timeout=-1'            # 400 naming `timeout`
//! curl -N 'localhost:3000/stream?from=oldest'        # NDJSON, one event per line, live
//! curl -N localhost:3000/sse                          # server-sent events, id: = cursor
//! curl localhost:3000/stats                           # parked now, outcomes since start
//! ```
//!
//! And a WebSocket, with any client (here websocat), in a browser console
//! `new WebSocket("ws://localhost:3000/ws?from=oldest")`:
//!
//! ```text
//! websocat 'ws://localhost:3000/ws?from=oldest'      # events as text frames; type a line to publish it
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts it down: parked polls answer `503` with
//! `Retry-After` at once, streams end with a `reconnect` frame, WebSockets
//! get `1001 Going Away`, and the process exits.
//!
//! HTTP interface (a contract: names and shapes stay):
//!
//! - `POST /publish`: body is UTF-8 text (at most 64 KiB, else `413`) →
//!   `200 {"id":"<cursor of this event>"}`; `503` + `Retry-After` when the
//!   log is on Redis and Redis is unreachable (the event may or may not have
//!   been stored: retrying gives at-least-once).
//! - `GET /poll?cursor=<c>&timeout=<s>` → `200
//!   {"events":[{"id":"<cursor>","data":"…"}],"cursor":"<next>"}`; `204` with
//!   header `Cursor: <next>` on timeout; `410` with a JSON body when the
//!   cursor is too old or from before a restart; `400` on bad input; `503` +
//!   `Retry-After` on shutdown (and, on Redis, for new polls while Redis is
//!   unreachable). Without a cursor: from now; `?from=oldest`:
//!   from the oldest retained event. Also `Last-Event-ID` and
//!   `?last_event_id=`.
//! - `GET /stream?cursor=<c>` → NDJSON, one `{"id":"<cursor>","data":"…"}` per
//!   line, heartbeats as empty lines, a final `{"control":"reconnect",…}`
//!   line at a cap or on shutdown (see the crate's `stream` module).
//! - `GET /sse` → server-sent events with `id:` = cursor; honours
//!   `Last-Event-ID` and `?last_event_id=`.
//! - `GET /ws?cursor=<c>` → WebSocket: `{"control":"open","cursor":"<c>"}`,
//!   then one text frame `{"id":"<cursor>","data":"…"}` per event; a text
//!   frame from the client (at most 64 KiB) is published like `POST
//!   /publish`. Close codes: `1001` on shutdown, `4410` (with a `gone`
//!   control frame) when the cursor is too old, `4008` for a client that
//!   does not read, `4408` for one that answers no ping (see the crate's
//!   `ws` module).
//! - `GET /stats` → `{"parked":n,"streaming":n,"websockets":n,"ready":n,
//!   "timeout":n,"shutdown":n,"disconnected":n,"retained":n,
//!   "head":"<cursor>","backend":"memory"|"redis","streams":n}` (`streams`:
//!   named streams live now), and per mode (`long_poll`, `ndjson`, `sse`,
//!   `framed`, `ws`) `started`, `in_flight`, its phases and `ended` by
//!   outcome (see the crate's `stats` module).
//! - `GET /ready` → `200 ready` while serving; `503` + `Retry-After` once
//!   the shutdown has begun (a load balancer's readiness probe).
//! - Named streams, each its own log (created on its first publish or
//!   read; names: 1 to 128 characters of `A-Z a-z 0-9 . _ ~ -`, else `400`
//!   naming `name`; beyond `MAX_STREAMS` `503` + `Retry-After`):
//!   - `POST /streams/{name}/publish` → `200 {"id":"<cursor>"}`; after the
//!     stream was closed `409 {"error":"stream_closed","stream":"<name>",…}`;
//!   - `POST /streams/{name}/close` (an optional body: the last event) →
//!     `200 {"cursor":"<end>"}`; closing again is harmless (a last event
//!     with it is `409`);
//!   - `DELETE /streams/{name}` → `204`; the stream's old cursors get `410`
//!     afterwards (a new stream of that name has a new epoch);
//!   - `GET /streams/{name}/poll`, `/stream`, `/sse`, `/ws`: as the root
//!     routes; at the end of a closed stream a poll answers at once with
//!     `"closed":true` (and `Stream-Closed: true`), NDJSON and SSE send a
//!     `closed` frame and end (a request at the end gets `204`, which
//!     stops `EventSource`), a WebSocket gets the frame and close `1000`.
//! - Durable Streams (the open protocol, see the crate's `durable` module)
//!   under `/v1/stream/{name}`: `PUT` creates, `POST` appends (and closes
//!   with `Stream-Closed: true`), `GET ?offset=…[&live=long-poll|sse]`
//!   reads, `HEAD`, `DELETE`; CORS open to any origin. The official
//!   conformance suite runs against these routes (`tests/durable.rs`).
//! - `GET /metrics` → the same figures as `/stats` (and histograms) in the
//!   Prometheus text format.
//! - `GET /` → the demo page.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `RETAIN` (events kept,
//! default 1024, by the root log and by each named stream), `ORIGINS`: the
//! origins whose pages may call the API (CORS with credentials, as the
//! crate docs recommend): `loopback` (the default: `http(s)://localhost`,
//! `127.0.0.1` or `[::1]` on any port) or a comma-separated list such as
//! `https://app.example,http://localhost:8000`; `MAX_STREAMS` (named
//! streams at once, default 10000; on Redis: mirrored on this instance),
//! `STREAM_IDLE` (seconds without a reader or a publish before a named
//! stream is evicted, default 300; `0`: never; on Redis counted across
//! the instances), `DS_LONG_POLL` (seconds a Durable Streams
//! `live=long-poll` waits, default 30, e.g. `0.5`), `LONG_POLL_MAX` (the
//! longest wait a `/poll` client may ask for, in seconds, default 120:
//! keep it and `DS_LONG_POLL` below the read timeout of a proxy in front),
//! `REDIS_URL` (e.g. `redis://127.0.0.1:6379`: keep the root log, the named
//! streams and the Durable Streams in Redis instead of this process,
//! shared by every instance with the same URL and key), `REDIS_KEY`
//! (default `axum-longpoll:demo`: the root log's stream; the named streams
//! are at `<key>:streams:<name>` and the Durable Streams at
//! `<key>:ds:<name>`; instances sharing a key must agree on `RETAIN` and
//! `STREAM_IDLE`), `TRUSTED_PROXIES` (below).
//!
//! Behind a reverse proxy (nginx, a load balancer, a CDN):
//! `docs/nginx.md` has a tested nginx recipe, the timeouts to choose and a
//! table for common load balancers. A proxy names this server by its
//! upstream address in `Host`, so the WebSocket origin check (a page may
//! open `/ws` only from this server's own origin or `ORIGINS`) would
//! refuse the pages it serves. `TRUSTED_PROXIES` names the proxies whose
//! `Forwarded: host=…;proto=…` (RFC 7239; its last element) or else
//! `X-Forwarded-Host` and `X-Forwarded-Proto` (their last values) the
//! check takes as the page's own origin: `none` (the default: those
//! headers are ignored, the check uses `Host` alone), `loopback`
//! (`127.0.0.0/8` and `::1`), or a comma-separated list of addresses and
//! CIDR ranges, e.g. `10.0.0.5,192.168.0.0/16,fd00::/8` (`loopback` may be
//! one of them). Only a connection *from* a listed address is believed, so
//! a client that sends those headers itself gains nothing; the proxy must
//! set (overwrite) them, as the recipe does. A malformed value stops the
//! demo at startup with a message naming the variable.
//!
//! ```text
//! TRUSTED_PROXIES=loopback cargo run --example demo    # nginx on this machine in front
//! ```

mod app;

use std::net::SocketAddr;
use std::time::Duration;

use axum_longpoll::EventLog;
use tokio_util::sync::CancellationToken;

fn env_or<T: std::str::FromStr>(name: &str, default: T, allowed: &str) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .map_err(|_| format!("invalid {name}={v:?}: allowed {allowed}")),
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    token.cancel();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = env_or(
        "ADDR",
        SocketAddr::from(([127, 0, 0, 1], 3000)),
        "an address like 127.0.0.1:3000",
    )?;
    let retain: usize = env_or("RETAIN", 1024, "a whole number of events, at least 1")?;
    if retain == 0 {
        return Err("invalid RETAIN=0: allowed a whole number of events, at least 1".into());
    }
    let origins: app::Origins = env_or("ORIGINS", app::Origins::Loopback, app::ORIGINS_ALLOWED)?;
    let proxies: app::TrustedProxies = match std::env::var("TRUSTED_PROXIES") {
        Err(_) => app::TrustedProxies::default(),
        Ok(v) => v.parse().map_err(|e| {
            format!(
                "invalid TRUSTED_PROXIES={v:?}: {e}; allowed {}",
                app::TRUSTED_PROXIES_ALLOWED
            )
        })?,
    };
    let long_poll_max: f64 = env_or(
        "LONG_POLL_MAX",
        120.0,
        "seconds, a positive number like 120 or 50 (the longest wait a /poll client may ask for)",
    )?;
    if !(long_poll_max.is_finite() && long_poll_max > 0.0 && long_poll_max <= 3600.0) {
        return Err(format!(
            "invalid LONG_POLL_MAX={long_poll_max}: allowed seconds from more than 0 to 3600"
        )
        .into());
    }
    let http = Http {
        origins,
        proxies,
        long_poll_max: Duration::from_secs_f64(long_poll_max),
    };
    let max_streams: usize = env_or(
        "MAX_STREAMS",
        10_000,
        "a whole number of streams, at least 1",
    )?;
    if max_streams == 0 {
        return Err("invalid MAX_STREAMS=0: allowed a whole number of streams, at least 1".into());
    }
    let idle: u64 = env_or(
        "STREAM_IDLE",
        300,
        "a whole number of seconds (0: never evict an idle stream)",
    )?;
    let ds_long_poll: f64 = env_or(
        "DS_LONG_POLL",
        30.0,
        "seconds, a positive number like 30 or 0.5 (the wait of a Durable Streams long-poll)",
    )?;
    if !(ds_long_poll.is_finite() && ds_long_poll > 0.0 && ds_long_poll <= 3600.0) {
        return Err(format!(
            "invalid DS_LONG_POLL={ds_long_poll}: allowed seconds from more than 0 to 3600"
        )
        .into());
    }
    let long_poll = Duration::from_secs_f64(ds_long_poll);
    let idle = (idle > 0).then(|| Duration::from_secs(idle));

    // Before the routers: every figure of `/stats` goes to `/metrics` too.
    app::install_metrics()?;

    // Cancelled by Ctrl-C or SIGTERM: the signal for `serve`, which then
    // cancels the layer's own shutdown token (phase (a)).
    let signal = CancellationToken::new();
    tokio::spawn(cancel_on_signal(signal.clone()));

    match std::env::var("REDIS_URL") {
        Err(_) => {
            let parts = app::Parts {
                log: EventLog::builder().capacity(retain).build(),
                streams: app::streams_builder(retain, max_streams, idle).build(),
                durable: app::memory_durable(long_poll),
            };
            serve(addr, parts, retain, &http, signal).await
        }
        #[cfg(feature = "redis")]
        Ok(url) => {
            let key = std::env::var("REDIS_KEY").unwrap_or_else(|_| "axum-longpoll:demo".into());
            let client = axum_longpoll::redis::Client::open(url.as_str())
                .map_err(|e| format!("invalid REDIS_URL={url:?}: {e}"))?;
            let place = app::RedisPlace {
                client,
                key: key.clone(),
            };
            let parts = app::redis_parts(&place, retain, max_streams, idle, long_poll)
                .await
                .map_err(|e| format!("cannot use Redis at {url} (key {key:?}): {e}"))?;
            eprintln!(
                "on Redis {url}: the log at {key:?}, named streams at \"{key}:streams:<name>\", \
                 Durable Streams at \"{key}:ds:<name>\""
            );
            serve(addr, parts, retain, &http, signal).await
        }
        #[cfg(not(feature = "redis"))]
        Ok(_) => Err("REDIS_URL is set but the demo was built without Redis: \
                      build it with the `redis` feature"
            .into()),
    }
}

/// The HTTP settings: CORS and the WebSocket origin check, the longest
/// long-poll wait.
struct Http {
    origins: app::Origins,
    proxies: app::TrustedProxies,
    long_poll_max: Duration,
}

async fn serve<B: app::Named, S: app::Named, D: app::Named>(
    addr: SocketAddr,
    parts: app::Parts<B, S, D>,
    retain: usize,
    http: &Http,
    signal: CancellationToken,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "demo listening on http://{} (retaining {retain} events, {} backend); open it in a browser",
        listener.local_addr()?,
        B::NAME,
    );
    // The layer goes around the whole router (`serve` puts it there); the
    // default ServeConfig bounds every phase of a connection, finds dead
    // peers (DeadPeer; behind a proxy, the proxy's connections: see
    // `docs/nginx.md`), waits for the WebSockets' closing handshakes and
    // ends the shutdown within 25 s. `with_connect_info`: the WebSocket
    // origin check needs the peer's address for TRUSTED_PROXIES.
    let (router, layer) = app::durable_routes(
        parts.log,
        parts.streams,
        parts.durable,
        &http.origins,
        &http.proxies,
        CancellationToken::new(),
    );
    let router = app::long_poll_max(router, http.long_poll_max);
    let report = axum_longpoll::serve(listener, router)
        .layer(layer)
        .with_connect_info()
        .with_graceful_shutdown(signal.cancelled_owned())
        .await?;
    eprintln!("demo stopped: {report}");
    Ok(())
}
