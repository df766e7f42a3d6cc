//! Benchmarks of axum-longpoll against bare axum and Go net/http, side by
//! side in one run (issue 5).
//!
//! Run with `benches/run` (raises the open-file limit, installs and builds
//! the Go peer, then `cargo bench --bench longpoll`). It writes
//! `BENCHMARKS.md` and `benches/fanout.svg`. Never part of `cargo test`.
//!
//! This one binary is the harness and load client, and (`longpoll server
//! crate|bare`) the two Rust servers: the harness starts every server as its
//! own process, so each one's memory is its own.
//!
//! Environment: `GO_PEER` (path of the built Go peer; without it the Go
//! columns are empty), `BENCH_RUNS` (full passes, default 2), `BENCH_QUICK=1`
//! (small sizes, for a smoke test; writes nothing unless `BENCH_OUT` is set),
//! `BENCH_OUT` (directory to write into, default the crate root),
//! `BENCH_ONLY` (comma-separated phases: detection, parked, h2, h2big, ws,
//! idle, plain, stream, storm, streams, redis; for profiling one figure).
//!
//! Phases: `h2big` parks 100,000 HTTP/2 streams over 500 connections
//! (memory per stream, one publish's fan-out); `idle` holds idle NDJSON and
//! SSE responses (memory per stream); `storm` is the publish storm (`storm.rs`); `streams` the memory
//! per idle named stream beside a `HashMap<String, ()>` of the same names
//! (`streams_mem.rs`, each figure in a child process of its own).

mod client;
mod redis_phase;
mod report;
mod servers;
mod storm;
mod streams_mem;

#[path = "../shared/measure.rs"]
mod measure;

use measure::cpu_ticks;
pub(crate) use measure::{median, percentile};

use std::io;
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::{get, post, Conn, Control};
use report::{Detection, Fanout, Kind, Mode, Plain, Run, Shutdown};

/// Unix time in nanoseconds: the one clock of client and servers.
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Sizes of one pass.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Disconnects per server and mode.
    pub(crate) disconnects: u64,
    /// Polls parked per detection batch (one HTTP/2 connection's worth).
    pub(crate) batch: u64,
    /// Parked long-polls for the memory, fan-out and shutdown figures.
    pub(crate) parked: u64,
    /// HTTP/2 connections carrying `parked` streams.
    pub(crate) h2_connections: u64,
    /// Parked HTTP/2 streams of the `h2big` phase, and their connections.
    pub(crate) h2_big: (u64, u64),
    /// Fan-out sizes, largest first.
    pub(crate) fanout: Vec<u64>,
    /// Repetitions of each fan-out size.
    pub(crate) fanout_reps: usize,
    /// Rounds of the throughput figures (servers alternate inside a round).
    pub(crate) rounds: usize,
    /// Length of one plain-request round.
    pub(crate) round: Duration,
    /// Keep-alive connections of the plain-request load.
    pub(crate) connections: usize,
    /// Events per streaming response.
    pub(crate) stream_events: u64,
    /// Pollers of the publish storm, one round each.
    pub(crate) storm: Vec<u64>,
    /// Before a storm's measured window.
    pub(crate) storm_warmup: Duration,
    /// A storm's measured window.
    pub(crate) storm_window: Duration,
    /// Idle named streams, one measurement each.
    pub(crate) streams_mem: Vec<usize>,
}

impl Config {
    fn full() -> Self {
        Self {
            disconnects: 1000,
            batch: 200,
            parked: 10_000,
            h2_connections: 50,
            h2_big: (100_000, 500),
            fanout: vec![10_000, 5_000, 2_000, 1_000],
            fanout_reps: 5,
            rounds: 7,
            round: Duration::from_millis(1500),
            connections: 32,
            stream_events: 300_000,
            storm: vec![100, 1000, 2000],
            storm_warmup: Duration::from_millis(1000),
            storm_window: Duration::from_secs(3),
            streams_mem: vec![100_000, 1_000_000],
        }
    }

    fn quick() -> Self {
        Self {
            disconnects: 200,
            batch: 100,
            parked: 1000,
            h2_connections: 5,
            h2_big: (2_000, 10),
            fanout: vec![1000, 500],
            fanout_reps: 2,
            rounds: 2,
            round: Duration::from_millis(300),
            connections: 8,
            stream_events: 20_000,
            storm: vec![100, 500],
            storm_warmup: Duration::from_millis(300),
            storm_window: Duration::from_secs(1),
            streams_mem: vec![10_000, 100_000],
        }
    }
}

// ---------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------

pub(crate) struct Server {
    pub(crate) kind: Kind,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
}

impl Server {
    fn spawn(kind: Kind, workers: usize) -> io::Result<Self> {
        Self::spawn_variant(kind, None, workers)
    }

    /// `variant`: another server argument for `kind` (`crate-serve`,
    /// `crate-outer`).
    fn spawn_variant(kind: Kind, variant: Option<&str>, workers: usize) -> io::Result<Self> {
        Self::spawn_with(kind, variant, workers, &[])
    }

    /// As [`spawn_variant`](Self::spawn_variant), with more environment.
    fn spawn_with(
        kind: Kind,
        variant: Option<&str>,
        workers: usize,
        envs: &[(&str, &str)],
    ) -> io::Result<Self> {
        let mut cmd = match kind {
            Kind::Crate | Kind::Bare => {
                let mut cmd = Command::new(std::env::current_exe()?);
                let name = if kind == Kind::Crate { "crate" } else { "bare" };
                cmd.arg("server")
                    .arg(variant.unwrap_or(name))
                    .env("WORKERS", workers.to_string());
                cmd
            }
            Kind::Go => {
                let peer =
                    std::env::var("GO_PEER").map_err(|_| io::Error::other("GO_PEER is not set"))?;
                let mut cmd = Command::new(peer);
                cmd.env("GOMAXPROCS", workers.to_string());
                cmd
            }
        };
        let mut child = cmd
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let addr = measure::listen_line(&mut child, &format!("{kind:?}"))?;
        Ok(Self {
            kind,
            stdin: child.stdin.take(),
            pid: child.id(),
            child: Some(child),
            addr,
        })
    }

    /// Resident set size in bytes.
    pub(crate) fn rss(&self) -> io::Result<u64> {
        measure::rss(self.pid)
    }

    /// User + system CPU time in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid)
    }

    /// Takes the child to wait for its exit.
    fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin makes the server exit; kill it if it does not.
        self.stdin.take();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

pub(crate) fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub(crate) fn kinds(go: bool) -> Vec<Kind> {
    let mut kinds = vec![Kind::Crate, Kind::Bare];
    if go {
        kinds.push(Kind::Go);
    }
    kinds
}

fn log(msg: &str) {
    eprintln!("[bench {:>7.1}s] {msg}", started().elapsed().as_secs_f64());
}

fn started() -> &'static Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now)
}

// ---------------------------------------------------------------------------
// Disconnect detection
// ---------------------------------------------------------------------------

/// Parks `batch` polls on `server`, closes them one by one (a millisecond
/// apart, so that each is detected on its own) and returns each latency:
/// server-side detection minus client close, in microseconds.
async fn detection_batch(
    server: &Server,
    ctl: &mut Control,
    mode: Mode,
    ids: std::ops::Range<u64>,
) -> io::Result<(Vec<f64>, u64)> {
    let n = ids.end - ids.start;
    let mut closed = Vec::with_capacity(n as usize);
    let gap = Duration::from_millis(1);
    match mode {
        Mode::Fin | Mode::Rst => {
            let conns = client::park_many(server.addr, ids.clone()).await?;
            ctl.wait_parked(n).await?;
            for (id, conn) in ids.clone().zip(conns) {
                tokio::time::sleep(gap).await;
                if mode == Mode::Rst {
                    socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO))?;
                }
                let at = unix_nanos();
                drop(conn);
                closed.push((id, at));
            }
        }
        Mode::H2Reset => {
            let mut send = client::h2_connect(server.addr).await?;
            let mut streams = Vec::with_capacity(n as usize);
            for id in ids.clone() {
                streams.push((id, client::h2_park(&mut send, server.addr, id).await?));
            }
            ctl.wait_parked(n).await?;
            for (id, (reset, task)) in streams {
                tokio::time::sleep(gap).await;
                let _ = reset.send(());
                let at = task.await.map_err(io::Error::other)?;
                closed.push((id, at));
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctl.wait_parked(0).await?;
    let seen: std::collections::HashMap<u64, u64> = ctl.detections().await?.into_iter().collect();
    let mut latencies = Vec::with_capacity(closed.len());
    let mut missed = 0;
    for (id, at) in closed {
        match seen.get(&id) {
            Some(&det) => latencies.push((det as f64 - at as f64) / 1e3),
            None => missed += 1,
        }
    }
    Ok((latencies, missed))
}

async fn detection(cfg: &Config, go: bool, run: &mut Run) -> io::Result<()> {
    let servers: Vec<Server> = kinds(go)
        .into_iter()
        .map(|k| Server::spawn(k, 2))
        .collect::<io::Result<_>>()?;
    let mut controls: Vec<Control> = servers.iter().map(|s| Control::new(s.addr)).collect();
    for mode in [Mode::Fin, Mode::Rst, Mode::H2Reset] {
        log(&format!("detection: {}", mode.name()));
        let active: Vec<usize> = (0..servers.len())
            .filter(|&i| mode != Mode::H2Reset || servers[i].kind != Kind::Go)
            .collect();
        let mut latencies = vec![Vec::new(); servers.len()];
        let mut missed = vec![0u64; servers.len()];
        let batches = cfg.disconnects.div_ceil(cfg.batch);
        let mut next_id = 1u64;
        for b in 0..batches {
            // Interleave the servers, rotating who goes first, so that the
            // machine's noise falls on all of them alike.
            for k in 0..active.len() {
                let i = active[(b as usize + k) % active.len()];
                let ids = next_id..next_id + cfg.batch;
                next_id += cfg.batch;
                let (l, m) = detection_batch(&servers[i], &mut controls[i], mode, ids).await?;
                latencies[i].extend(l);
                missed[i] += m;
            }
        }
        for i in active {
            let mut l = std::mem::take(&mut latencies[i]);
            l.sort_by(f64::total_cmp);
            run.detection.push(Detection {
                kind: servers[i].kind,
                mode,
                p50_us: percentile(&l, 0.5),
                p99_us: percentile(&l, 0.99),
                max_us: l.last().copied().unwrap_or(f64::NAN),
                count: l.len() as u64,
                missed: missed[i],
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Parked HTTP/1.1 polls: memory, fan-out, shutdown
// ---------------------------------------------------------------------------

/// Sends a long-poll on every connection in `conns` that has none
/// outstanding.
async fn rearm(conns: &mut [Conn], outstanding: &mut [bool], first_id: u64) -> io::Result<()> {
    let jobs = conns
        .iter_mut()
        .zip(outstanding.iter_mut())
        .enumerate()
        .filter(|(_, (_, o))| !**o)
        .map(|(i, (conn, o))| async move {
            conn.send(&client::poll_request(first_id + i as u64))
                .await?;
            *o = true;
            Ok::<_, io::Error>(())
        });
    futures_util::future::try_join_all(jobs).await.map(drop)
}

/// Reads one response on each of `conns` in its own task; returns the
/// connections, the statuses and when the last response was complete.
async fn read_all(conns: Vec<Conn>) -> io::Result<(Vec<Conn>, Vec<u16>, Instant)> {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let answer = tokio::time::timeout(client::GUARD, conn.answer()).await;
                let at = Instant::now();
                let status = match answer {
                    Ok(Ok(a)) => a.status,
                    _ => 0,
                };
                (conn, status, at)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    let mut statuses = Vec::with_capacity(tasks.len());
    let mut last: Option<Instant> = None;
    for t in tasks {
        let (conn, status, at) = t.await.map_err(io::Error::other)?;
        conns.push(conn);
        statuses.push(status);
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    Ok((conns, statuses, last.unwrap_or_else(Instant::now)))
}

/// Parks a poll for each of `ids`, in steps that wait until the server has
/// them all parked (so that the client never outruns the accept queue).
async fn park_paced(
    ctl: &mut Control,
    addr: SocketAddr,
    ids: std::ops::Range<u64>,
) -> io::Result<Vec<Conn>> {
    const STEP: u64 = 1000;
    let mut conns = Vec::with_capacity((ids.end - ids.start) as usize);
    let mut from = ids.start;
    while from < ids.end {
        let to = (from + STEP).min(ids.end);
        conns.extend(client::park_many(addr, from..to).await?);
        ctl.wait_parked(to - ids.start).await?;
        from = to;
    }
    Ok(conns)
}

/// Memory only: the crate with its layer around the whole router.
async fn parked_outer(cfg: &Config, run: &mut Run) -> io::Result<()> {
    let server = Server::spawn_variant(Kind::Crate, Some("crate-outer"), 2)?;
    let mut ctl = Control::new(server.addr);
    ctl.call(&get("/plain")).await?;
    ctl.parked().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    log(&format!(
        "axum-longpoll, layer around the router: parking {} HTTP/1.1 polls",
        cfg.parked
    ));
    let rss0 = server.rss()?;
    let conns = park_paced(&mut ctl, server.addr, 0..cfg.parked).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = server.rss()?;
    run.rss_outer_h1 = Some((rss1 as f64 - rss0 as f64) / cfg.parked as f64);
    drop(conns);
    Ok(())
}

async fn parked_h1(cfg: &Config, kind: Kind, run: &mut Run) -> io::Result<()> {
    // The crate as its docs recommend: `serve` (answer, close, cut).
    let variant = (kind == Kind::Crate).then_some("crate-serve");
    let mut server = Server::spawn_variant(kind, variant, 2)?;
    let mut ctl = Control::new(server.addr);
    ctl.call(&get("/plain")).await?;
    ctl.parked().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    log(&format!(
        "{}: parking {} HTTP/1.1 polls",
        kind.name(),
        cfg.parked
    ));
    let rss0 = server.rss()?;
    let mut conns = park_paced(&mut ctl, server.addr, 0..cfg.parked).await?;
    let mut outstanding = vec![true; conns.len()];
    ctl.wait_parked(cfg.parked).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = server.rss()?;
    run.rss_h1
        .push((kind, (rss1 as f64 - rss0 as f64) / cfg.parked as f64));

    for &n in &cfg.fanout {
        let n = n.min(cfg.parked);
        let mut e2e = Vec::new();
        let mut server_side = Vec::new();
        for _ in 0..cfg.fanout_reps {
            rearm(&mut conns[..n as usize], &mut outstanding[..n as usize], 0).await?;
            // Every other connection is idle: exactly n parked.
            ctl.wait_parked(n).await?;
            let rest = conns.split_off(n as usize);
            let readers = tokio::spawn(read_all(conns));
            // Let every reader block in its read before the publish.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t0 = Instant::now();
            let published = ctl.call(&post("/publish", "hello")).await?;
            if published.status != 200 {
                return Err(io::Error::other("publish failed"));
            }
            let (back, statuses, last) = readers.await.map_err(io::Error::other)??;
            let ok = statuses.iter().filter(|&&s| s == 200).count() as u64;
            if ok != n {
                return Err(io::Error::other(format!(
                    "{}: fan-out of {n}: {ok} answered 200",
                    kind.name()
                )));
            }
            conns = back;
            conns.extend(rest);
            outstanding[..n as usize].fill(false);
            e2e.push(last.duration_since(t0).as_secs_f64() * 1e3);
            let (p, l, a) = ctl.fanout().await?;
            if a != n {
                return Err(io::Error::other(format!(
                    "{}: server counted {a} answers of {n}",
                    kind.name()
                )));
            }
            server_side.push((l as f64 - p as f64) / 1e6);
        }
        log(&format!(
            "{}: fan-out {n}: e2e {:.1} ms, server {:.1} ms",
            kind.name(),
            median(&e2e),
            median(&server_side)
        ));
        run.fanout.push(Fanout {
            kind,
            n,
            e2e_ms: median(&e2e),
            server_ms: median(&server_side),
        });
    }

    // Shutdown with every poll parked.
    rearm(&mut conns, &mut outstanding, 0).await?;
    ctl.wait_parked(cfg.parked).await?;
    let mut child = server.take_child().expect("child");
    let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = exit_tx.send((Instant::now(), status.map(|s| s.success())));
    });
    let readers = tokio::spawn(read_all(conns));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut stopper = Conn::open(server.addr).await?;
    let t0 = Instant::now();
    stopper.send(&post("/shutdown", "")).await?;
    let (_conns, statuses, last) = readers.await.map_err(io::Error::other)??;
    let answered = statuses.iter().filter(|&&s| s == 503).count() as u64;
    let (exited, clean) = tokio::time::timeout(Duration::from_secs(30), exit_rx)
        .await
        .map_err(|_| io::Error::other("server did not exit within 30 s"))?
        .map_err(io::Error::other)?;
    let shutdown = Shutdown {
        kind,
        answered_ms: last.duration_since(t0).as_secs_f64() * 1e3,
        exit_ms: exited.duration_since(t0).as_secs_f64() * 1e3,
        answered,
        clean: clean.unwrap_or(false),
    };
    log(&format!(
        "{}: shutdown: all answered {:.1} ms, exit {:.1} ms ({} × 503)",
        kind.name(),
        shutdown.answered_ms,
        shutdown.exit_ms,
        answered
    ));
    run.shutdown.push(shutdown);
    Ok(())
}

async fn parked_h2(
    cfg: &Config,
    kind: Kind,
    variant: Option<&str>,
    run: &mut Run,
) -> io::Result<()> {
    let server = Server::spawn_variant(kind, variant, 2)?;
    let mut ctl = Control::new(server.addr);
    ctl.call(&get("/plain")).await?;
    ctl.parked().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    log(&format!(
        "{}: parking {} HTTP/2 streams over {} connections",
        kind.name(),
        cfg.parked,
        cfg.h2_connections
    ));
    let rss0 = server.rss()?;
    let per = cfg.parked / cfg.h2_connections;
    let mut held = Vec::new();
    let mut id = 0;
    for _ in 0..cfg.h2_connections {
        let mut send = client::h2_connect(server.addr).await?;
        for _ in 0..per {
            held.push(client::h2_park(&mut send, server.addr, id).await?);
            id += 1;
        }
    }
    ctl.wait_parked(per * cfg.h2_connections).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = server.rss()?;
    let per_stream = (rss1 as f64 - rss0 as f64) / (per * cfg.h2_connections) as f64;
    match variant {
        Some("crate-outer") => run.rss_outer_h2 = Some(per_stream),
        _ => run.rss_h2.push((kind, per_stream)),
    }
    drop(held);
    Ok(())
}

/// Many parked HTTP/2 streams (`cfg.h2_big`: 100,000 over 500
/// connections): server RSS per stream, then one publish and the time
/// until every stream has its answer.
async fn parked_h2_big(cfg: &Config, run: &mut Run) -> io::Result<()> {
    let (n, connections) = cfg.h2_big;
    let per = n / connections;
    for (kind, variant) in [(Kind::Crate, Some("crate-serve")), (Kind::Bare, None)] {
        let server = Server::spawn_variant(kind, variant, 2)?;
        let mut ctl = Control::new(server.addr);
        ctl.call(&get("/plain")).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        log(&format!(
            "{}: parking {} HTTP/2 streams over {connections} connections",
            kind.name(),
            per * connections
        ));
        let rss0 = server.rss()?;
        let mut held = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let mut id = 0;
        for _ in 0..connections {
            let mut send = client::h2_connect(server.addr).await?;
            for _ in 0..per {
                held.push(client::h2_park(&mut send, server.addr, id).await?);
                id += 1;
            }
        }
        ctl.wait_parked(per * connections).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss1 = server.rss()?;
        let start = Instant::now();
        let answer = ctl.call(&post("/publish", "h2big")).await?;
        if answer.status != 200 {
            return Err(io::Error::other("publish failed"));
        }
        let mut answered = 0u64;
        // Each sender is kept until its stream has its answer: dropping it
        // would drop the stream.
        for (stop, task) in held {
            if tokio::time::timeout(client::GUARD, task).await.is_ok() {
                answered += 1;
            }
            drop(stop);
        }
        let fanout_ms = start.elapsed().as_secs_f64() * 1e3;
        log(&format!(
            "{}: {} HTTP/2 streams, {:.0} B RSS each; one publish answered {answered} in {fanout_ms:.1} ms",
            kind.name(),
            per * connections,
            (rss1 as f64 - rss0 as f64) / (per * connections) as f64
        ));
        run.h2_big.push(report::H2Big {
            kind,
            streams: per * connections,
            connections,
            rss_per_stream: (rss1 as f64 - rss0 as f64) / (per * connections) as f64,
            fanout_ms,
            answered,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Idle NDJSON and SSE responses and WebSockets: memory
// ---------------------------------------------------------------------------

/// Server RSS per idle held response: on a fresh server of `kind`,
/// `parked` connections each send `request` (answered `status`) and are
/// left idle; RSS after minus before, per connection.
async fn idle_rss(
    cfg: &Config,
    kind: Kind,
    variant: Option<&str>,
    what: &str,
    request: &'static [u8],
    status: &'static [u8],
) -> io::Result<f64> {
    let server = Server::spawn_variant(kind, variant, 2)?;
    let mut ctl = Control::new(server.addr);
    ctl.call(&get("/plain")).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    log(&format!(
        "{}: opening {} idle {what}",
        kind.name(),
        cfg.parked
    ));
    let rss0 = server.rss()?;
    let held = client::open_held(server.addr, cfg.parked, request, status).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = server.rss()?;
    drop(held);
    Ok((rss1 as f64 - rss0 as f64) / cfg.parked as f64)
}

/// The servers of the idle figures: the crate under `serve`, and bare.
const IDLE_SERVERS: [(Kind, Option<&str>); 2] =
    [(Kind::Crate, Some("crate-serve")), (Kind::Bare, None)];

/// Server RSS per idle NDJSON and SSE response, each framing on fresh
/// servers.
async fn idle_streams(cfg: &Config, run: &mut Run) -> io::Result<()> {
    let framings: [(&str, &'static [u8]); 2] = [
        (
            "NDJSON",
            b"GET /idle/ndjson HTTP/1.1\r\nhost: bench\r\n\r\n",
        ),
        (
            "SSE",
            b"GET /idle/sse HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n",
        ),
    ];
    for (framing, request) in framings {
        for (kind, variant) in IDLE_SERVERS {
            let what = format!("{framing} streams");
            let rss = idle_rss(cfg, kind, variant, &what, request, b"HTTP/1.1 200").await?;
            run.idle_rss.push((kind, framing, rss));
        }
    }
    Ok(())
}

/// Server RSS per idle WebSocket.
async fn websockets(cfg: &Config, run: &mut Run) -> io::Result<()> {
    for (kind, variant) in IDLE_SERVERS {
        let rss = idle_rss(
            cfg,
            kind,
            variant,
            "WebSockets",
            client::WS_UPGRADE,
            b"HTTP/1.1 101",
        )
        .await?;
        run.ws_rss.push((kind, rss));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput: plain requests, streaming
// ---------------------------------------------------------------------------

/// `connections` keep-alive connections send `GET /plain` back to back for
/// `round`; returns requests/s.
async fn plain_round(addr: SocketAddr, connections: usize, round: Duration) -> io::Result<f64> {
    let request = get("/plain");
    let start = Instant::now();
    let deadline = start + round;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await?;
                let mut count = 0u64;
                while Instant::now() < deadline {
                    let answer = conn.call(&request).await?;
                    if answer.status != 200 {
                        return Err(io::Error::other("plain request failed"));
                    }
                    count += 1;
                }
                Ok::<_, io::Error>(count)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(io::Error::other)??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn plain(cfg: &Config, go: bool, run: &mut Run) -> io::Result<()> {
    // The crate as its docs teach (`serve`), and with `Router::layer` under
    // `axum::serve`.
    let mut servers: Vec<Server> = kinds(go)
        .into_iter()
        .map(|k| Server::spawn_variant(k, (k == Kind::Crate).then_some("crate-serve"), 1))
        .collect::<io::Result<_>>()?;
    servers.push(Server::spawn(Kind::Crate, 1)?);
    let router_layer = servers.len() - 1;
    let hz = clock_ticks_per_sec();
    for s in &servers {
        plain_round(s.addr, cfg.connections, cfg.round / 3).await?;
    }
    let mut rps = vec![Vec::new(); servers.len()];
    let mut server_cpu = vec![Vec::new(); servers.len()];
    let mut client_cpu = vec![Vec::new(); servers.len()];
    for r in 0..cfg.rounds {
        log(&format!("plain requests: round {}/{}", r + 1, cfg.rounds));
        for k in 0..servers.len() {
            let i = (r + k) % servers.len();
            let s = &servers[i];
            let (c0, s0, t0) = (cpu_ticks(std::process::id()), s.cpu_ticks(), Instant::now());
            rps[i].push(plain_round(s.addr, cfg.connections, cfg.round).await?);
            let secs = t0.elapsed().as_secs_f64();
            client_cpu[i].push((cpu_ticks(std::process::id()) - c0) as f64 / hz / secs);
            server_cpu[i].push((s.cpu_ticks() - s0) as f64 / hz / secs);
        }
    }
    for (i, s) in servers.iter().enumerate() {
        run.plain.push(Plain {
            kind: s.kind,
            router_layer: i == router_layer,
            rps: median(&rps[i]),
            best: rps[i].iter().copied().fold(0.0, f64::max),
            server_cpu: median(&server_cpu[i]),
            client_cpu: median(&client_cpu[i]),
        });
    }
    Ok(())
}

async fn stream_round(addr: SocketAddr, n: u64) -> io::Result<(f64, u64)> {
    let mut conn = Conn::open(addr).await?;
    let start = Instant::now();
    conn.send(&get(&format!("/stream?n={n}"))).await?;
    let (status, _bytes, lines) = conn.drain_chunked().await?;
    if status != 200 || lines < n {
        return Err(io::Error::other(format!(
            "stream: status {status}, {lines} lines of {n}"
        )));
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), lines))
}

async fn streaming(cfg: &Config, run: &mut Run) -> io::Result<()> {
    let servers: Vec<Server> = [Kind::Crate, Kind::Bare]
        .into_iter()
        .map(|k| Server::spawn(k, 1))
        .collect::<io::Result<_>>()?;
    for s in &servers {
        stream_round(s.addr, cfg.stream_events / 10).await?;
    }
    let hz = clock_ticks_per_sec();
    let mut rates = vec![Vec::new(); servers.len()];
    let mut cpu = vec![0u64; servers.len()];
    for r in 0..cfg.rounds {
        log(&format!("streaming: round {}/{}", r + 1, cfg.rounds));
        for k in 0..servers.len() {
            let i = (r + k) % servers.len();
            let t0 = servers[i].cpu_ticks();
            rates[i].push(stream_round(servers[i].addr, cfg.stream_events).await?.0);
            cpu[i] += servers[i].cpu_ticks() - t0;
        }
    }
    let events = (cfg.rounds as u64 * cfg.stream_events) as f64;
    for (i, s) in servers.iter().enumerate() {
        run.stream.push((s.kind, median(&rates[i])));
        run.stream_cpu
            .push((s.kind, cpu[i] as f64 / hz * 1e9 / events));
    }
    Ok(())
}

async fn pass(cfg: &Config, go: bool) -> io::Result<Run> {
    let mut run = Run {
        load: measure::load_average(),
        ..Run::default()
    };
    let wanted = measure::phases("BENCH_ONLY");
    if wanted("detection") {
        detection(cfg, go, &mut run).await?;
    }
    if wanted("parked") {
        for kind in kinds(go) {
            parked_h1(cfg, kind, &mut run).await?;
        }
        parked_outer(cfg, &mut run).await?;
    }
    if wanted("h2") {
        parked_h2(cfg, Kind::Crate, Some("crate-serve"), &mut run).await?;
        parked_h2(cfg, Kind::Bare, None, &mut run).await?;
        parked_h2(cfg, Kind::Crate, Some("crate-outer"), &mut run).await?;
    }
    if wanted("h2big") {
        parked_h2_big(cfg, &mut run).await?;
    }
    if wanted("ws") {
        websockets(cfg, &mut run).await?;
    }
    if wanted("idle") {
        idle_streams(cfg, &mut run).await?;
    }
    if wanted("plain") {
        plain(cfg, go, &mut run).await?;
    }
    if wanted("stream") {
        streaming(cfg, &mut run).await?;
    }
    if wanted("storm") {
        run.storm = storm::phase(cfg, go).await?;
    }
    if wanted("streams") {
        run.streams_mem = streams_mem::phase(cfg)?;
    }
    if wanted("redis") {
        run.redis = Some(redis_phase::phase(cfg, &run).await?);
    }
    Ok(run)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        return servers::run(args.get(1).map_or("", String::as_str));
    }
    if args.first().map(String::as_str) == Some("streams-mem") {
        // A child of the `streams` phase: `longpoll streams-mem KIND N`.
        let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
        return streams_mem::child(args.get(1).map_or("", String::as_str), n);
    }
    if args.first().map(String::as_str) == Some("park") {
        // Profiling aid: `longpoll park ADDR N SECONDS` parks N polls on a
        // server started by hand (e.g. under valgrind) and holds them.
        let addr: SocketAddr = args
            .get(1)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other("usage: longpoll park ADDR N SECONDS"))?;
        let n: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
        let secs: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(10);
        let rt = tokio::runtime::Runtime::new()?;
        return rt.block_on(async move {
            let mut ctl = Control::new(addr);
            let conns = park_paced(&mut ctl, addr, 0..n).await?;
            log(&format!("{n} parked; holding them {secs} s"));
            tokio::time::sleep(Duration::from_secs(secs)).await;
            drop(conns);
            Ok(())
        });
    }
    if args.first().map(String::as_str) == Some("storm") {
        // Profiling aid: `longpoll storm ADDR N SECONDS` runs a publish storm
        // with N pollers on a server started by hand (e.g. under `perf`).
        let addr: SocketAddr = args
            .get(1)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other("usage: longpoll storm ADDR N SECONDS"))?;
        let n: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
        let secs: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(10);
        let cfg = Config {
            storm_window: Duration::from_secs(secs),
            ..Config::full()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        return rt.block_on(async move {
            let s = storm::storm_on(&cfg, Kind::Crate, n, addr, || 0).await?;
            println!(
                "{:.0} deliveries/s, {:.0} answers/s, {:.0} publishes/s, publish p50 {:.0} µs p99 {:.0} µs",
                s.deliveries, s.answers, s.publishes, s.publish_p50_us, s.publish_p99_us
            );
            Ok(())
        });
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench targets without `--bench`:
        // the benchmarks are never part of a test run.
        println!("longpoll: benchmarks run only under `cargo bench` (use benches/run)");
        return Ok(());
    }
    started();
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let cfg = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let go = std::env::var_os("GO_PEER").is_some();
    if !go {
        log("GO_PEER is not set: the Go peer is left out (use benches/run)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for r in 0..runs {
        log(&format!("pass {}/{runs}", r + 1));
        results.push(rt.block_on(pass(&cfg, go))?);
    }
    let machine = report::Machine::collect();
    let out = std::env::var("BENCH_OUT").ok().or_else(|| {
        (!quick && std::env::var_os("BENCH_ONLY").is_none())
            .then(|| env!("CARGO_MANIFEST_DIR").to_owned())
    });
    let markdown = report::markdown(&machine, &cfg, &results);
    match out {
        Some(dir) => {
            let dir = std::path::Path::new(&dir);
            std::fs::create_dir_all(dir.join("benches"))?;
            std::fs::write(dir.join("BENCHMARKS.md"), &markdown)?;
            std::fs::write(dir.join("benches/fanout.svg"), report::svg(&results))?;
            log(&format!("wrote {}", dir.join("BENCHMARKS.md").display()));
        }
        None => println!("{markdown}"),
    }
    Ok(())
}
