//! The servers of the Durable Streams bench, each its own process, and the
//! bare floor server (`ds server bare`, run from this binary).
//!
//! | kind | process |
//! |---|---|
//! | `Ours` | the demo (`DS_DEMO`, a release build of `--example demo`), `/v1/stream/` in memory |
//! | `RsPeer` | `durable-streams-server` 0.3.0 from crates.io (`DS_RS_PEER`), memory mode |
//! | `Node` | `@durable-streams/server` 0.3.7 (`DS_NODE_PEER`: `benches/peers/ds-node`), in memory |
//! | `Lib` | this binary: `axum_longpoll::durable::router` alone, as its docs serve it (`DS_LIB_MAKE_SERVICE=1`: through `Router::into_make_service`) |
//! | `Bare` | this binary: axum with one `watch` channel, no protocol |
//!
//! Every server waits [`LONG_POLL`] per long-poll, so that no poll of a
//! figure times out.
//!
//! The bare server answers the few requests the harness sends, on
//! `/v1/stream/{name}` (one channel for every name):
//!
//! | request | answer |
//! |---|---|
//! | `PUT` | `201` |
//! | `POST` (a body) | wakes every reader with it; `204` + `Stream-Next-Offset: <version>` |
//! | `GET ?offset=V&live=long-poll` | the body after version `V` (`now`: the next one), `200` + `Stream-Next-Offset` |
//! | `GET ?offset=now&live=sse` | `event: control` at once, then per publish `event: data` (the body) + `event: control` |

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use tokio::sync::watch;

use crate::client::{get, Conn};

/// The wait of a long-poll on every server.
pub(crate) const LONG_POLL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ours,
    Lib,
    RsPeer,
    Node,
    Bare,
}

pub(crate) const KINDS: [Kind; 5] = [Kind::Ours, Kind::Lib, Kind::RsPeer, Kind::Node, Kind::Bare];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ours => "axum-longpoll",
            Self::Lib => "axum-longpoll, router alone",
            Self::RsPeer => "durable-streams-server",
            Self::Node => "Node reference",
            Self::Bare => "bare axum (floor)",
        }
    }

    /// Whether this server is there to be measured: its path is set.
    pub(crate) fn available(self) -> bool {
        match self {
            Self::Ours => std::env::var_os("DS_DEMO").is_some(),
            Self::RsPeer => std::env::var_os("DS_RS_PEER").is_some(),
            Self::Node => std::env::var_os("DS_NODE_PEER").is_some(),
            Self::Lib | Self::Bare => true,
        }
    }
}

/// A server process, killed when dropped.
pub(crate) struct Server {
    pub(crate) kind: Kind,
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn env_path(name: &str) -> io::Result<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::other(format!("{name} is not set")))
}

/// Where the servers' own output goes: `<target>/ds-logs/`.
fn log_file(kind: Kind) -> Stdio {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("ds-logs")));
    let Some(dir) = dir else {
        return Stdio::null();
    };
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{kind:?}.log").to_lowercase();
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
    {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

impl Server {
    pub(crate) async fn spawn(kind: Kind) -> io::Result<Self> {
        let lp = LONG_POLL.as_secs();
        let (child, addr) = match kind {
            Kind::Bare | Kind::Lib => {
                let mut child = Command::new(std::env::current_exe()?)
                    .args(["server", if kind == Kind::Lib { "lib" } else { "bare" }])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(log_file(kind))
                    .spawn()?;
                let addr = crate::measure::listen_line(&mut child, &format!("{kind:?}"))?;
                (child, addr)
            }
            Kind::Ours => {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                let child = Command::new(env_path("DS_DEMO")?)
                    .env("ADDR", addr.to_string())
                    .env("DS_LONG_POLL", lp.to_string())
                    .stdin(Stdio::null())
                    .stdout(log_file(kind))
                    .stderr(log_file(kind))
                    .spawn()?;
                (child, addr)
            }
            Kind::RsPeer => {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                // It reads `./config/*.toml` when present: run it in an
                // empty directory so that only the environment counts.
                let dir = std::env::temp_dir().join(format!("ds-bench-rs-peer-{}", addr.port()));
                std::fs::create_dir_all(&dir)?;
                let child = Command::new(env_path("DS_RS_PEER")?)
                    .arg("serve")
                    .current_dir(&dir)
                    .env("DS_SERVER__BIND_ADDRESS", addr.to_string())
                    .env("DS_STORAGE__MODE", "memory")
                    .env(
                        "DS_TRANSPORT__CONNECTION__LONG_POLL_TIMEOUT_SECS",
                        lp.to_string(),
                    )
                    // Its default closes SSE responses after 60 s.
                    .env(
                        "DS_TRANSPORT__CONNECTION__SSE_RECONNECT_INTERVAL_SECS",
                        "3600",
                    )
                    // Its defaults cap memory at 100 MiB and a stream at 10 MiB.
                    .env("DS_LIMITS__MAX_MEMORY_BYTES", (16u64 << 30).to_string())
                    .env("DS_LIMITS__MAX_STREAM_BYTES", (8u64 << 30).to_string())
                    .env("DS_OBSERVABILITY__RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(log_file(kind))
                    .stderr(log_file(kind))
                    .spawn()?;
                (child, addr)
            }
            Kind::Node => {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                let dir = env_path("DS_NODE_PEER")?;
                let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
                let child = Command::new(node)
                    .arg("serve.mjs")
                    .current_dir(dir)
                    .env("PORT", addr.port().to_string())
                    .env("HOST", "127.0.0.1")
                    .env("LONG_POLL_TIMEOUT_MS", (lp * 1000).to_string())
                    .stdin(Stdio::null())
                    .stdout(log_file(kind))
                    .stderr(log_file(kind))
                    .spawn()?;
                (child, addr)
            }
        };
        let mut server = Self {
            kind,
            pid: child.id(),
            child,
            addr,
        };
        server.ready().await?;
        Ok(server)
    }

    /// Waits until the server answers HTTP.
    async fn ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited at start ({status}); see target/ds-logs/",
                    self.kind.name()
                )));
            }
            let answered = async {
                let mut conn = Conn::open(self.addr).await?;
                conn.call(&get("/v1/stream/bench-ready")).await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), answered).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not answer within 20 s",
                    self.kind.name()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident set size in bytes.
    pub(crate) fn rss(&self) -> io::Result<u64> {
        crate::measure::rss(self.pid)
    }

    /// User + system CPU time in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        crate::measure::cpu_ticks(self.pid)
    }

    /// Waits until the server has used no CPU for two checks in a row
    /// (it has parked what it was sent), at most `max`.
    pub(crate) async fn settle(&self, max: Duration) {
        let deadline = Instant::now() + max;
        let mut last = self.cpu_ticks();
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let now = self.cpu_ticks();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The bare floor server
// ---------------------------------------------------------------------------

type Latest = watch::Sender<(u64, Bytes)>;

fn offset_of(query: Option<&str>) -> Option<u64> {
    let query = query?;
    let value = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "offset")
        .map(|(_, v)| v.into_owned())?;
    value.parse().ok()
}

fn is_sse(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.contains("live=sse"))
}

async fn bare_put() -> StatusCode {
    StatusCode::CREATED
}

async fn bare_post(State(tx): State<Latest>, body: Bytes) -> Response {
    let mut version = 0;
    tx.send_modify(|(v, b)| {
        *v += 1;
        *b = body;
        version = *v;
    });
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert("stream-next-offset", HeaderValue::from(version));
    res
}

fn control(version: u64) -> String {
    format!("event: control\ndata:{{\"streamNextOffset\":\"{version}\",\"upToDate\":true}}\n\n")
}

async fn bare_get(State(tx): State<Latest>, RawQuery(query): RawQuery) -> Response {
    let mut rx = tx.subscribe();
    let current = rx.borrow_and_update().0;
    if is_sse(query.as_deref()) {
        let first = futures_util::stream::once(async move {
            Ok::<_, Infallible>(Bytes::from(control(current)))
        });
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let (version, body) = rx.borrow_and_update().clone();
            let mut frame = Vec::with_capacity(body.len() + 96);
            frame.extend_from_slice(b"event: data\ndata:[");
            frame.extend_from_slice(&body);
            frame.extend_from_slice(b"]\n\n");
            frame.extend_from_slice(control(version).as_bytes());
            Some((Ok::<_, Infallible>(Bytes::from(frame)), rx))
        });
        let mut res =
            Body::from_stream(futures_util::StreamExt::chain(first, rest)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return res;
    }
    if !query
        .as_deref()
        .is_some_and(|q| q.contains("live=long-poll"))
    {
        // A catch-up read: nothing kept, up to date.
        let mut res = (StatusCode::OK, "[]").into_response();
        res.headers_mut()
            .insert("stream-next-offset", HeaderValue::from(current));
        return res;
    }
    let after = offset_of(query.as_deref()).unwrap_or(current);
    let found = tokio::time::timeout(LONG_POLL, async {
        rx.wait_for(|(v, _)| *v > after).await.map(|l| l.clone())
    })
    .await;
    match found {
        Ok(Ok((version, body))) => {
            let mut out = Vec::with_capacity(body.len() + 2);
            out.push(b'[');
            out.extend_from_slice(&body);
            out.push(b']');
            let mut res = (StatusCode::OK, out).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.headers_mut()
                .insert("stream-next-offset", HeaderValue::from(version));
            res
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `ds server bare`: serves until stdin closes.
pub(crate) fn run_bare() -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (tx, _) = watch::channel((0u64, Bytes::new()));
        let app = Router::new()
            .route(
                "/v1/stream/{name}",
                put(bare_put).post(bare_post).get(bare_get),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTEN {}", listener.local_addr()?);
        let stop = tokio::task::spawn_blocking(|| {
            // Blocks until the harness closes our stdin (or exits).
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
    })?;
    // Parked responses would hold a graceful shutdown open: just exit.
    std::process::exit(0)
}

/// `ds server lib`: the crate's Durable Streams router alone, as the
/// module docs serve it (`Router::nest` + `DisconnectLayer`, the demo's
/// store settings), to tell the library's cost from the demo's.
pub(crate) fn run_lib() -> io::Result<()> {
    use axum_longpoll::durable::{self, DurableConfig, DurableStreams};
    use axum_longpoll::{DisconnectLayer, EventLog};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let streams = EventLog::builder()
            .capacity(1_000_000)
            .max_batch(1_000)
            .streams()
            .idle(None)
            .build();
        let ds = DurableStreams::with_config(streams, DurableConfig::new().long_poll(LONG_POLL));
        let app = Router::new()
            .nest("/v1/stream", durable::router(ds))
            .layer(DisconnectLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTEN {}", listener.local_addr()?);
        let stop = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        // Profiling aid: the same router without axum's per-connection
        // `Router::with_state(())` rebuild (what `axum::serve(listener,
        // router)` does for every connection).
        if std::env::var_os("DS_LIB_MAKE_SERVICE").is_some() {
            return axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        }
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
    })?;
    std::process::exit(0)
}
