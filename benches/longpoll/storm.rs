//! The `storm` phase (issue 18): a publish storm. N pollers long-poll in a
//! loop, each on its own keep-alive connection, resuming with the cursor
//! of its last answer (`/poll?cursor=C`: the events after `C` at once,
//! else the next ones), while publishers send `POST /publish` back to back
//! on their own connections and a prober sends `GET /stats` every 10 ms.
//!
//! Measured over a window after a warm-up, for each server and N:
//! deliveries/s (events the pollers received), answers/s, publishes/s,
//! publish latency (request sent → answer read) p50/p99, and `/stats`
//! latency p50/p99 (a plain request in the same storm: does a request
//! that has nothing to do with the fan-out wait behind it?).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use crate::client::{get, post, Conn, Control};
use crate::report::{Kind, Storm};
use crate::{kinds, log, percentile, Config, Server};

/// Publisher connections, each sending its next publish when the last is
/// answered.
pub(crate) const PUBLISHERS: usize = 4;
/// Worker threads of every server of this phase.
const WORKERS: usize = 2;
/// Between two `/stats` probes.
const PROBE_GAP: Duration = Duration::from_millis(10);

/// Counts of the pollers, shared with the harness.
#[derive(Default)]
struct Tally {
    events: AtomicU64,
    answers: AtomicU64,
}

/// Events in an answer body: each event object starts with `{"id":`.
fn count_events(body: &[u8]) -> u64 {
    body.windows(6).filter(|w| w == b"{\"id\":").count() as u64
}

/// The `cursor` of an answer body.
fn cursor_of(body: &[u8]) -> Option<String> {
    let key = b"\"cursor\":\"";
    let at = body.windows(key.len()).rposition(|w| w == key)? + key.len();
    let end = body[at..].iter().position(|&b| b == b'"')? + at;
    String::from_utf8(body[at..end].to_vec()).ok()
}

/// One poller: polls, counts, resumes with the cursor, until `stop`.
async fn poller(mut conn: Conn, id: u64, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut cursor: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let path = match &cursor {
            Some(c) => format!("/poll?id={id}&timeout=120&cursor={c}"),
            None => format!("/poll?id={id}&timeout=120"),
        };
        let Ok(answer) = conn.call(&get(&path)).await else {
            return;
        };
        if answer.status == 200 {
            tally
                .events
                .fetch_add(count_events(&answer.body), Ordering::Relaxed);
            tally.answers.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = cursor_of(&answer.body) {
                cursor = Some(c);
            }
        } else if answer.status != 204 {
            return;
        }
    }
}

/// Sends `request` back to back until `until`; returns the latency of each
/// call that started after `from`, in microseconds.
async fn caller(
    addr: SocketAddr,
    request: Vec<u8>,
    gap: Option<Duration>,
    from: Instant,
    until: Instant,
) -> io::Result<Vec<f64>> {
    let mut conn = Conn::open(addr).await?;
    let mut out = Vec::new();
    while Instant::now() < until {
        let t0 = Instant::now();
        let answer = conn.call(&request).await?;
        if answer.status != 200 {
            return Err(io::Error::other(format!(
                "storm: {} answered {}",
                String::from_utf8_lossy(&request[..request.len().min(20)]),
                answer.status
            )));
        }
        if t0 >= from {
            out.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        if let Some(gap) = gap {
            tokio::time::sleep(gap).await;
        }
    }
    Ok(out)
}

async fn round(cfg: &Config, kind: Kind, n: u64) -> io::Result<Storm> {
    let server = Server::spawn_variant(
        kind,
        (kind == Kind::Crate).then_some("crate-serve"),
        WORKERS,
    )?;
    storm_on(cfg, kind, n, server.addr, || server.cpu_ticks()).await
}

/// A storm with `n` pollers on the server at `addr`; `cpu` reads its CPU
/// ticks.
pub(crate) async fn storm_on(
    cfg: &Config,
    kind: Kind,
    n: u64,
    addr: SocketAddr,
    cpu: impl Fn() -> u64,
) -> io::Result<Storm> {
    let mut ctl = Control::new(addr);
    ctl.call(&get("/plain")).await?;
    let conns: Vec<Conn> = futures_util::stream::iter(0..n)
        .map(|_| Conn::open(addr))
        .buffered(200)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<io::Result<_>>()?;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            tokio::spawn(poller(
                conn,
                i as u64,
                Arc::clone(&tally),
                Arc::clone(&stop),
            ))
        })
        .collect();
    ctl.wait_parked(n).await?;

    let start = Instant::now();
    let from = start + cfg.storm_warmup;
    let until = from + cfg.storm_window;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| tokio::spawn(caller(addr, post("/publish", "x"), None, from, until)))
        .collect();
    let prober = tokio::spawn(caller(addr, get("/stats"), Some(PROBE_GAP), from, until));
    tokio::time::sleep_until(from.into()).await;
    let (events0, answers0, cpu0) = (
        tally.events.load(Ordering::Relaxed),
        tally.answers.load(Ordering::Relaxed),
        cpu(),
    );
    let t0 = Instant::now();
    tokio::time::sleep_until(until.into()).await;
    let (events1, answers1, cpu1) = (
        tally.events.load(Ordering::Relaxed),
        tally.answers.load(Ordering::Relaxed),
        cpu(),
    );
    let secs = t0.elapsed().as_secs_f64();
    let mut publish = Vec::new();
    for p in publishers {
        publish.extend(p.await.map_err(io::Error::other)??);
    }
    let mut stats = prober.await.map_err(io::Error::other)??;
    stop.store(true, Ordering::Relaxed);
    for p in &pollers {
        p.abort();
    }
    publish.sort_by(f64::total_cmp);
    stats.sort_by(f64::total_cmp);
    let storm = Storm {
        kind,
        n,
        deliveries: (events1 - events0) as f64 / secs,
        answers: (answers1 - answers0) as f64 / secs,
        publishes: publish.len() as f64 / secs,
        publish_p50_us: percentile(&publish, 0.5),
        publish_p99_us: percentile(&publish, 0.99),
        stats_p50_us: percentile(&stats, 0.5),
        stats_p99_us: percentile(&stats, 0.99),
        server_cpu: (cpu1 - cpu0) as f64 / crate::clock_ticks_per_sec() / secs,
    };
    log(&format!(
        "{}: storm with {n} pollers: {:.0} deliveries/s, {:.0} publishes/s, publish p50 {:.0} µs \
         p99 {:.0} µs, /stats p99 {:.0} µs",
        kind.name(),
        storm.deliveries,
        storm.publishes,
        storm.publish_p50_us,
        storm.publish_p99_us,
        storm.stats_p99_us
    ));
    Ok(storm)
}

/// Every size for every server, servers interleaved size by size.
pub(crate) async fn phase(cfg: &Config, go: bool) -> io::Result<Vec<Storm>> {
    let mut out = Vec::new();
    let kinds = kinds(go);
    for (i, &n) in cfg.storm.iter().enumerate() {
        for k in 0..kinds.len() {
            let kind = kinds[(i + k) % kinds.len()];
            out.push(round(cfg, kind, n).await?);
        }
    }
    Ok(out)
}
