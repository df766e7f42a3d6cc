//! Durable Streams servers side by side (issue 16, and issue 18's DS
//! figures): axum-longpoll's `/v1/stream/` (the demo), the crates.io
//! `durable-streams-server` 0.3.0 and the Node reference server
//! `@durable-streams/server` 0.3.7, with a bare axum server as the floor.
//!
//! Run by `benches/run` after the long-poll bench (it builds the demo and
//! installs the peers; `BENCH_DS=0` skips this bench), or by hand:
//! `DS_DEMO=… DS_RS_PEER=… DS_NODE_PEER=… cargo bench --bench ds`. A server
//! whose variable is unset is left out. Never part of `cargo test`.
//!
//! This one binary is the harness and the load client, and (`ds server
//! bare`) the floor server. Every server is its own process, started fresh
//! for each figure; the servers of a figure run side by side and take turns
//! rep by rep (round by round), so that the machine's noise falls on all.
//!
//! It splices its section, "## Durable Streams peers", into
//! `BENCHMARKS.md` (before "## How it is measured", or replacing the
//! section of an earlier run) and writes it alone to
//! `<target>/ds-report.md`.
//!
//! Environment: `BENCH_RUNS` (passes, default 2), `BENCH_QUICK=1` (small
//! sizes for a smoke test; writes nothing unless `BENCH_OUT` is set),
//! `BENCH_OUT` (directory whose `BENCHMARKS.md` gets the section, default
//! the crate root), `DS_ONLY` (comma-separated phases: sse, long-poll, rtt,
//! appends; writes nothing unless `BENCH_OUT` is set); for profiling one
//! figure: `DS_SSE_SIZES`, `DS_LONG_POLL_SIZES` (comma-separated sizes),
//! `DS_REPS` (measured appends per fan-out), `DS_LIB_MAKE_SERVICE=1` (the
//! "router alone" server through `Router::into_make_service`).

mod client;
mod report;
mod servers;

#[path = "../shared/measure.rs"]
mod measure;

pub(crate) use measure::{median, percentile};

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::sync::Notify;

use client::{get, payload, post_json, put_json, Conn, Ctl, GUARD, MARK};
use report::{Appends, Fan, Rss, Rtt, Run};
use servers::{Kind, Server, KINDS};

/// How many connects are in flight at once when opening many connections.
const CONNECT_CONCURRENCY: usize = 100;

/// Sizes of one pass.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// SSE subscribers on one stream, per fan-out figure.
    pub(crate) sse: Vec<usize>,
    /// Parked long-polls on one stream, per fan-out figure.
    pub(crate) long_poll: Vec<usize>,
    /// Measured appends per fan-out figure (after one warm-up).
    pub(crate) fanout_reps: usize,
    /// Long-poll round trips per server.
    pub(crate) rtt: usize,
    /// Round trips in a row on one server before the next one's turn.
    pub(crate) rtt_block: usize,
    /// Rounds of the appends figure.
    pub(crate) append_rounds: usize,
    /// Length of one appends round.
    pub(crate) append_round: Duration,
    /// Connections appending at once.
    pub(crate) append_conns: usize,
    /// Bytes of one append.
    pub(crate) append_len: usize,
}

impl Config {
    fn full() -> Self {
        Self {
            sse: vec![1000, 5000],
            long_poll: vec![1000],
            fanout_reps: 9,
            rtt: 600,
            rtt_block: 50,
            append_rounds: 3,
            append_round: Duration::from_secs(2),
            append_conns: 8,
            append_len: 100,
        }
    }

    fn quick() -> Self {
        Self {
            sse: vec![300],
            long_poll: vec![300],
            fanout_reps: 2,
            rtt: 40,
            rtt_block: 20,
            append_rounds: 2,
            append_round: Duration::from_millis(300),
            append_conns: 8,
            append_len: 100,
        }
    }
}

fn log(msg: &str) {
    eprintln!("[ds {:>7.1}s] {msg}", started().elapsed().as_secs_f64());
}

fn started() -> &'static Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now)
}

/// The open-file limit of this process (the client's connections).
fn nofile() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

/// The servers this run measures, in the order of the tables.
fn available(with_bare: bool) -> Vec<Kind> {
    KINDS
        .into_iter()
        .filter(|k| k.available() && (with_bare || *k != Kind::Bare))
        .collect()
}

/// `kinds` in groups whose `n` connections each fit the open-file limit
/// together.
fn groups(kinds: &[Kind], n: usize) -> Vec<Vec<Kind>> {
    let fit = ((nofile().saturating_sub(512)) as usize / n.max(1)).max(1);
    kinds.chunks(fit).map(<[Kind]>::to_vec).collect()
}

fn stream_path(name: &str) -> String {
    format!("/v1/stream/{name}")
}

/// Creates the JSON stream `name`; returns its tail offset.
async fn create(ctl: &mut Ctl, name: &str) -> io::Result<String> {
    let answer = ctl.call(&put_json(&stream_path(name))).await?;
    if !matches!(answer.status, 200 | 201) {
        return Err(io::Error::other(format!(
            "PUT {name}: {} {}",
            answer.status,
            answer.text()
        )));
    }
    Ok(answer
        .header("stream-next-offset")
        .unwrap_or("-1")
        .to_owned())
}

/// Appends `body` to `name`; returns the new tail offset.
async fn append(ctl: &mut Ctl, name: &str, body: &[u8]) -> io::Result<String> {
    let answer = ctl.call(&post_json(&stream_path(name), body)).await?;
    if !matches!(answer.status, 200 | 204) {
        return Err(io::Error::other(format!(
            "POST {name}: {} {}",
            answer.status,
            answer.text()
        )));
    }
    answer
        .header("stream-next-offset")
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other("append without Stream-Next-Offset"))
}

fn poll_request(name: &str, offset: &str) -> Vec<u8> {
    get(&format!(
        "{}?offset={offset}&live=long-poll",
        stream_path(name)
    ))
}

/// Records that a server failed a phase and is left out of its figure.
fn failed(run: &mut Run, phase: &str, kind: Kind, err: &io::Error) {
    let note = format!("{phase}: {} failed: {err}", kind.name());
    log(&note);
    run.notes.push(note);
}

// ---------------------------------------------------------------------------
// SSE fan-out and memory per subscriber
// ---------------------------------------------------------------------------

/// One server with its SSE subscribers.
struct SseRig {
    server: Server,
    ctl: Ctl,
    name: String,
    /// Per append: subscribers that have it, and when the last one got it
    /// (nanoseconds since `base`).
    got: Arc<Vec<AtomicUsize>>,
    last: Arc<Vec<AtomicU64>>,
    done: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    times: Vec<f64>,
    rss: f64,
    failed: Option<io::Error>,
}

impl Drop for SseRig {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Opens `n` SSE subscriptions at the tail of `name`, each waiting for its
/// first `control` event (the server has it registered).
async fn subscribe(server: &Server, name: &str, n: usize) -> io::Result<Vec<client::Sse>> {
    let addr = server.addr;
    let path = format!("{}?offset=now&live=sse", stream_path(name));
    futures_util::stream::iter(0..n)
        .map(|_| {
            let path = path.clone();
            async move {
                let mut conn = Conn::open(addr).await?;
                conn.send(&get(&path)).await?;
                let (status, head) = tokio::time::timeout(GUARD, conn.stream_head())
                    .await
                    .map_err(|_| io::Error::other("no SSE head within the guard"))??;
                if status != 200 || !head.to_ascii_lowercase().contains("chunked") {
                    return Err(io::Error::other(format!("SSE answered {head:?}")));
                }
                let mut sse = conn.into_sse();
                tokio::time::timeout(GUARD, sse.wait_for(b"control"))
                    .await
                    .map_err(|_| io::Error::other("no first control event within the guard"))??;
                Ok::<_, io::Error>(sse)
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

async fn sse_rig(server: Server, n: usize, reps: usize, base: Instant) -> io::Result<SseRig> {
    let mut ctl = Ctl::new(server.addr);
    let name = format!("sse-{n}");
    create(&mut ctl, &name).await?;
    // One catch-up read so that the first subscriber pays no first-use cost.
    ctl.call(&get(&format!("{}?offset=-1", stream_path(&name))))
        .await?;
    server.settle(Duration::from_secs(2)).await;
    let rss0 = server.rss()?;
    let subs = subscribe(&server, &name, n).await?;
    server.settle(Duration::from_secs(5)).await;
    let rss1 = server.rss()?;
    let got: Arc<Vec<AtomicUsize>> = Arc::new((0..reps).map(|_| AtomicUsize::new(0)).collect());
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..reps).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(Notify::new());
    let tasks = subs
        .into_iter()
        .map(|mut sse| {
            let (got, last, done) = (Arc::clone(&got), Arc::clone(&last), Arc::clone(&done));
            tokio::spawn(async move {
                let mut rep = 0;
                while rep < reps {
                    let Ok(k) = sse.wait_for(MARK).await else {
                        return;
                    };
                    let at = base.elapsed().as_nanos() as u64;
                    for _ in 0..k {
                        if rep < reps {
                            last[rep].fetch_max(at, Ordering::SeqCst);
                            if got[rep].fetch_add(1, Ordering::SeqCst) + 1 == n {
                                done.notify_one();
                            }
                        }
                        rep += 1;
                    }
                }
            })
        })
        .collect();
    Ok(SseRig {
        server,
        ctl,
        name,
        got,
        last,
        done,
        tasks,
        times: Vec::new(),
        rss: (rss1 as f64 - rss0 as f64) / n as f64,
        failed: None,
    })
}

/// One append on `rig`; returns the time until the last subscriber had
/// it, in milliseconds.
async fn sse_rep(rig: &mut SseRig, rep: usize, n: usize, base: Instant) -> io::Result<f64> {
    // Let every subscriber block in its read.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let body = payload(100);
    rig.ctl.fresh().await?;
    let t0 = base.elapsed().as_nanos() as u64;
    let notified = rig.done.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    append(&mut rig.ctl, &rig.name, &body).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rig.got[rep].load(Ordering::SeqCst) < n {
        if tokio::time::timeout_at(deadline, notified.as_mut())
            .await
            .is_err()
        {
            return Err(io::Error::other(format!(
                "{} of {n} subscribers got the append within 30 s",
                rig.got[rep].load(Ordering::SeqCst)
            )));
        }
        notified.set(rig.done.notified());
        notified.as_mut().enable();
    }
    let last = rig.last[rep].load(Ordering::SeqCst);
    Ok(last.saturating_sub(t0) as f64 / 1e6)
}

async fn sse_phase(cfg: &Config, run: &mut Run) {
    for &n in &cfg.sse {
        for group in groups(&available(true), n) {
            let base = Instant::now();
            let reps = cfg.fanout_reps + 1;
            // Every server up before any subscriber is.
            let mut started = Vec::new();
            for kind in group {
                match Server::spawn(kind).await {
                    Ok(server) => started.push(server),
                    Err(e) => failed(run, &format!("SSE fan-out {n}"), kind, &e),
                }
            }
            let mut rigs = Vec::new();
            for server in started {
                let kind = server.kind;
                log(&format!(
                    "sse {n}: {} (pid {}): subscribing",
                    kind.name(),
                    server.pid
                ));
                match sse_rig(server, n, reps, base).await {
                    Ok(rig) => rigs.push(rig),
                    Err(e) => failed(run, &format!("SSE fan-out {n}"), kind, &e),
                }
            }
            for rep in 0..reps {
                for k in 0..rigs.len() {
                    let i = (rep + k) % rigs.len();
                    let rig = &mut rigs[i];
                    if rig.failed.is_some() {
                        continue;
                    }
                    match sse_rep(rig, rep, n, base).await {
                        // The first append is a warm-up.
                        Ok(ms) if rep > 0 => rig.times.push(ms),
                        Ok(_) => {}
                        Err(e) => rig.failed = Some(e),
                    }
                }
            }
            for rig in rigs {
                let kind = rig.server.kind;
                if let Some(e) = &rig.failed {
                    failed(run, &format!("SSE fan-out {n}"), kind, e);
                    continue;
                }
                log(&format!(
                    "sse {n}: {}: last subscriber after {:.1} ms (median), {:.0} B RSS per subscriber",
                    kind.name(),
                    median(&rig.times),
                    rig.rss
                ));
                run.sse.push(Fan {
                    kind,
                    n,
                    ms: rig.times.clone(),
                });
                run.rss_sse.push(Rss {
                    kind,
                    n,
                    bytes: rig.rss,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Long-poll fan-out and memory per parked poll
// ---------------------------------------------------------------------------

struct LpRig {
    server: Server,
    ctl: Ctl,
    name: String,
    conns: Vec<Conn>,
    tail: String,
    times: Vec<f64>,
    rss: f64,
    failed: Option<io::Error>,
}

/// Sends a long-poll after `offset` on every connection.
async fn arm(conns: &mut [Conn], name: &str, offset: &str) -> io::Result<()> {
    let request = poll_request(name, offset);
    futures_util::future::try_join_all(conns.iter_mut().map(|c| c.send(&request)))
        .await
        .map(drop)
}

async fn lp_rig(server: Server, n: usize) -> io::Result<LpRig> {
    let mut ctl = Ctl::new(server.addr);
    let name = format!("lp-{n}");
    create(&mut ctl, &name).await?;
    // A first append: an offset to wait after on every server.
    let tail = append(&mut ctl, &name, &payload(100)).await?;
    server.settle(Duration::from_secs(2)).await;
    let rss0 = server.rss()?;
    let addr = server.addr;
    let mut conns: Vec<Conn> = futures_util::stream::iter(0..n)
        .map(|_| Conn::open(addr))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    arm(&mut conns, &name, &tail).await?;
    server.settle(Duration::from_secs(5)).await;
    let rss1 = server.rss()?;
    Ok(LpRig {
        server,
        ctl,
        name,
        conns,
        tail,
        times: Vec::new(),
        rss: (rss1 as f64 - rss0 as f64) / n as f64,
        failed: None,
    })
}

/// One append on `rig` with every poll parked; returns the time until the
/// last poll's answer was read, in milliseconds, and re-arms the polls.
async fn lp_rep(rig: &mut LpRig, n: usize) -> io::Result<f64> {
    rig.server.settle(Duration::from_secs(3)).await;
    let conns = std::mem::take(&mut rig.conns);
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let answer = tokio::time::timeout(GUARD, conn.answer()).await;
                let at = Instant::now();
                let status = match answer {
                    Ok(Ok(a)) => a.status,
                    _ => 0,
                };
                (conn, status, at)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    rig.ctl.fresh().await?;
    let t0 = Instant::now();
    let tail = append(&mut rig.ctl, &rig.name, &payload(100)).await?;
    let mut last = t0;
    let mut ok = 0;
    for r in readers {
        let (conn, status, at) = r.await.map_err(io::Error::other)?;
        rig.conns.push(conn);
        ok += usize::from(status == 200);
        last = last.max(at);
    }
    if ok != n {
        return Err(io::Error::other(format!("{ok} of {n} polls answered 200")));
    }
    rig.tail = tail;
    arm(&mut rig.conns, &rig.name, &rig.tail).await?;
    Ok(last.duration_since(t0).as_secs_f64() * 1e3)
}

async fn lp_phase(cfg: &Config, run: &mut Run) {
    for &n in &cfg.long_poll {
        for group in groups(&available(true), n) {
            // Every server up before any poll is parked.
            let mut started = Vec::new();
            for kind in group {
                match Server::spawn(kind).await {
                    Ok(server) => started.push(server),
                    Err(e) => failed(run, &format!("long-poll fan-out {n}"), kind, &e),
                }
            }
            let mut rigs = Vec::new();
            for server in started {
                let kind = server.kind;
                log(&format!(
                    "long-poll {n}: {} (pid {}): parking",
                    kind.name(),
                    server.pid
                ));
                match lp_rig(server, n).await {
                    Ok(rig) => rigs.push(rig),
                    Err(e) => failed(run, &format!("long-poll fan-out {n}"), kind, &e),
                }
            }
            for rep in 0..=cfg.fanout_reps {
                for k in 0..rigs.len() {
                    let i = (rep + k) % rigs.len();
                    let rig = &mut rigs[i];
                    if rig.failed.is_some() {
                        continue;
                    }
                    match lp_rep(rig, n).await {
                        Ok(ms) if rep > 0 => rig.times.push(ms),
                        Ok(_) => {}
                        Err(e) => rig.failed = Some(e),
                    }
                }
            }
            for rig in rigs {
                let kind = rig.server.kind;
                if let Some(e) = &rig.failed {
                    failed(run, &format!("long-poll fan-out {n}"), kind, e);
                    continue;
                }
                log(&format!(
                    "long-poll {n}: {}: last answer after {:.1} ms (median), {:.0} B RSS per poll",
                    kind.name(),
                    median(&rig.times),
                    rig.rss
                ));
                run.long_poll.push(Fan {
                    kind,
                    n,
                    ms: rig.times.clone(),
                });
                run.rss_long_poll.push(Rss {
                    kind,
                    n,
                    bytes: rig.rss,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Long-poll round trip
// ---------------------------------------------------------------------------

struct RttRig {
    server: Server,
    poller: Conn,
    appender: Conn,
    tail: String,
    us: Vec<f64>,
    failed: Option<io::Error>,
}

async fn rtt_rig(kind: Kind) -> io::Result<RttRig> {
    let server = Server::spawn(kind).await?;
    let mut ctl = Ctl::new(server.addr);
    create(&mut ctl, "rtt").await?;
    let tail = append(&mut ctl, "rtt", &payload(100)).await?;
    let appender = Conn::open(server.addr).await?;
    let poller = Conn::open(server.addr).await?;
    Ok(RttRig {
        server,
        poller,
        appender,
        tail,
        us: Vec::new(),
        failed: None,
    })
}

/// One round trip: the poll is sent and given 2 ms to park, then the
/// append is sent; microseconds from the append sent to the poll's
/// answer read.
async fn rtt_once(rig: &mut RttRig, body: &[u8]) -> io::Result<f64> {
    rig.poller.send(&poll_request("rtt", &rig.tail)).await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let t0 = Instant::now();
    rig.appender
        .send(&post_json(&stream_path("rtt"), body))
        .await?;
    let answer = tokio::time::timeout(GUARD, rig.poller.answer())
        .await
        .map_err(|_| io::Error::other("no long-poll answer within the guard"))??;
    let us = t0.elapsed().as_secs_f64() * 1e6;
    let appended = tokio::time::timeout(GUARD, rig.appender.answer())
        .await
        .map_err(|_| io::Error::other("no append answer within the guard"))??;
    if answer.status != 200 || !matches!(appended.status, 200 | 204) {
        return Err(io::Error::other(format!(
            "long-poll {} / append {}",
            answer.status, appended.status
        )));
    }
    rig.tail = answer
        .header("stream-next-offset")
        .ok_or_else(|| io::Error::other("long-poll answer without Stream-Next-Offset"))?
        .to_owned();
    Ok(us)
}

async fn rtt_phase(cfg: &Config, run: &mut Run) {
    let mut rigs = Vec::new();
    for kind in available(true) {
        match rtt_rig(kind).await {
            Ok(rig) => rigs.push(rig),
            Err(e) => failed(run, "long-poll round trip", kind, &e),
        }
    }
    let body = payload(100);
    // Warm-up.
    for rig in &mut rigs {
        for _ in 0..20 {
            if let Err(e) = rtt_once(rig, &body).await {
                rig.failed = Some(e);
                break;
            }
        }
    }
    let blocks = cfg.rtt.div_ceil(cfg.rtt_block);
    for b in 0..blocks {
        if b % 2 == 0 {
            log(&format!("long-poll round trip: block {}/{blocks}", b + 1));
        }
        for k in 0..rigs.len() {
            let i = (b + k) % rigs.len();
            let rig = &mut rigs[i];
            for _ in 0..cfg.rtt_block {
                if rig.failed.is_some() {
                    break;
                }
                match rtt_once(rig, &body).await {
                    Ok(us) => rig.us.push(us),
                    Err(e) => rig.failed = Some(e),
                }
            }
        }
    }
    for mut rig in rigs {
        let kind = rig.server.kind;
        if let Some(e) = &rig.failed {
            failed(run, "long-poll round trip", kind, e);
            continue;
        }
        rig.us.sort_by(f64::total_cmp);
        let rtt = Rtt {
            kind,
            p50_us: percentile(&rig.us, 0.5),
            p99_us: percentile(&rig.us, 0.99),
            max_us: rig.us.last().copied().unwrap_or(f64::NAN),
            count: rig.us.len(),
        };
        log(&format!(
            "long-poll round trip: {}: p50 {:.0} µs, p99 {:.0} µs",
            kind.name(),
            rtt.p50_us,
            rtt.p99_us
        ));
        run.rtt.push(rtt);
    }
}

// ---------------------------------------------------------------------------
// Appends per second, memory per append
// ---------------------------------------------------------------------------

/// `conns` connections append to `name` back to back for `round`; returns
/// appends per second and the count.
async fn append_round(
    addr: std::net::SocketAddr,
    name: &str,
    conns: usize,
    len: usize,
    round: Duration,
) -> io::Result<(f64, u64)> {
    let request = post_json(&stream_path(name), &payload(len));
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + round;
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut conn| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut count = 0u64;
                while Instant::now() < deadline {
                    let answer = conn.call(&request).await?;
                    if !matches!(answer.status, 200 | 204) {
                        return Err(io::Error::other(format!(
                            "append answered {} {}",
                            answer.status,
                            answer.text()
                        )));
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
    Ok((total as f64 / start.elapsed().as_secs_f64(), total))
}

struct AppendRig {
    server: Server,
    ctl: Ctl,
    rss0: u64,
    rates: Vec<f64>,
    appended: u64,
    failed: Option<io::Error>,
}

async fn appends_phase(cfg: &Config, run: &mut Run) {
    let mut rigs = Vec::new();
    for kind in available(false) {
        let rig = async {
            let server = Server::spawn(kind).await?;
            let mut ctl = Ctl::new(server.addr);
            // Warm-up on a stream of its own, then the baseline.
            create(&mut ctl, "append-warm").await?;
            append_round(
                server.addr,
                "append-warm",
                cfg.append_conns,
                cfg.append_len,
                cfg.append_round / 4,
            )
            .await?;
            server.settle(Duration::from_secs(2)).await;
            let rss0 = server.rss()?;
            Ok::<_, io::Error>(AppendRig {
                server,
                ctl,
                rss0,
                rates: Vec::new(),
                appended: 0,
                failed: None,
            })
        }
        .await;
        match rig {
            Ok(rig) => rigs.push(rig),
            Err(e) => failed(run, "appends", kind, &e),
        }
    }
    for r in 0..cfg.append_rounds {
        log(&format!("appends: round {}/{}", r + 1, cfg.append_rounds));
        for k in 0..rigs.len() {
            let i = (r + k) % rigs.len();
            let rig = &mut rigs[i];
            if rig.failed.is_some() {
                continue;
            }
            let name = format!("append-{r}");
            let result = async {
                create(&mut rig.ctl, &name).await?;
                append_round(
                    rig.server.addr,
                    &name,
                    cfg.append_conns,
                    cfg.append_len,
                    cfg.append_round,
                )
                .await
            }
            .await;
            match result {
                Ok((rate, count)) => {
                    rig.rates.push(rate);
                    rig.appended += count;
                }
                Err(e) => rig.failed = Some(e),
            }
        }
    }
    for rig in rigs {
        let kind = rig.server.kind;
        if let Some(e) = &rig.failed {
            failed(run, "appends", kind, e);
            continue;
        }
        rig.server.settle(Duration::from_secs(3)).await;
        let rss1 = rig.server.rss().unwrap_or(rig.rss0);
        let a = Appends {
            kind,
            rate: median(&rig.rates),
            best: rig.rates.iter().copied().fold(0.0, f64::max),
            appended: rig.appended,
            rss_per_append: (rss1 as f64 - rig.rss0 as f64) / rig.appended.max(1) as f64,
        };
        log(&format!(
            "appends: {}: {:.0}/s, {:.0} B RSS per append",
            kind.name(),
            a.rate,
            a.rss_per_append
        ));
        run.appends.push(a);
    }
}

// ---------------------------------------------------------------------------

async fn pass(cfg: &Config) -> Run {
    let mut run = Run {
        load: measure::load_average(),
        ..Run::default()
    };
    let wanted = measure::phases("DS_ONLY");
    if wanted("sse") {
        sse_phase(cfg, &mut run).await;
    }
    if wanted("long-poll") {
        lp_phase(cfg, &mut run).await;
    }
    if wanted("rtt") {
        rtt_phase(cfg, &mut run).await;
    }
    if wanted("appends") {
        appends_phase(cfg, &mut run).await;
    }
    run
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        return match args.get(1).map(String::as_str) {
            Some("bare") => servers::run_bare(),
            Some("lib") => servers::run_lib(),
            other => Err(io::Error::other(format!("unknown server {other:?}"))),
        };
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench targets without `--bench`.
        println!("ds: benchmarks run only under `cargo bench` (use benches/run)");
        return Ok(());
    }
    started();
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut cfg = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    // Profiling aids: other sizes for one figure.
    let sizes = |var: &str| -> Option<Vec<usize>> {
        let v = std::env::var(var).ok()?;
        v.split(',').map(|n| n.trim().parse().ok()).collect()
    };
    if let Some(v) = sizes("DS_SSE_SIZES") {
        cfg.sse = v;
    }
    if let Some(v) = sizes("DS_LONG_POLL_SIZES") {
        cfg.long_poll = v;
    }
    if let Some(r) = std::env::var("DS_REPS").ok().and_then(|v| v.parse().ok()) {
        cfg.fanout_reps = r;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for kind in KINDS {
        if !kind.available() {
            log(&format!(
                "{} is not set up: its column is left out (use benches/run)",
                kind.name()
            ));
        }
    }
    log(&format!("open-file limit {}", nofile()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for r in 0..runs {
        log(&format!("pass {}/{runs}", r + 1));
        results.push(rt.block_on(pass(&cfg)));
    }
    let machine = report::Machine::collect();
    let section = report::markdown(&machine, &cfg, &results);
    let out = std::env::var("BENCH_OUT").ok().or_else(|| {
        (!quick && std::env::var_os("DS_ONLY").is_none())
            .then(|| env!("CARGO_MANIFEST_DIR").to_owned())
    });
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            let path = std::path::Path::new(&dir).join("BENCHMARKS.md");
            let existing = std::fs::read_to_string(&path).unwrap_or_default();
            std::fs::write(&path, report::splice(&existing, &section))?;
            if let Some(target) = std::env::current_exe()
                .ok()
                .and_then(|e| Some(e.parent()?.parent()?.parent()?.to_owned()))
            {
                let _ = std::fs::write(target.join("ds-report.md"), &section);
            }
            log(&format!("wrote its section into {}", path.display()));
        }
        None => println!("{section}"),
    }
    Ok(())
}
