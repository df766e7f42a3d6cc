#![allow(clippy::unwrap_used)]
//! No leaks: many connect–park–disconnect cycles against the demo router
//! (`examples/demo/app.rs`), in batches. Each batch opens long-polls (and a
//! few streams), waits until `/stats` shows every one of them parked (or
//! streaming), then ends them: FIN, RST, half-close (HTTP/1.1), a stream
//! reset and a whole-connection close (HTTP/2), and completed polls (woken
//! by a publish, read to the end).
//!
//! After the cycles:
//!
//! - `/stats`: 0 parked, 0 streaming, and exactly one `disconnected` per
//!   abandoned poll and one `ready` per completed one (so every abandoned
//!   poll was parked when it was abandoned, and its waiter on the log was
//!   dropped: a parked poll is a waiter, and the gauge counts them);
//! - tokio's alive-task count is back to what it was before the cycles;
//! - live heap (every allocation of this test binary, counted by
//!   `stats_alloc`) grew by at most [`HEAP_BOUND`] + [`HEAP_PER_CYCLE`] per
//!   cycle (see there for the measurements behind the bounds);
//! - RSS (`VmRSS` of `/proc/self/status`) grew by at most [`RSS_BOUND`].
//!
//! ```text
//! cargo test --test leaks                              # 10,000 cycles
//! LEAK_CYCLES=100000 cargo test --release --test leaks -- --ignored --nocapture
//! ```
//!
//! Every wait is a hang guard, never a performance assertion; the full run
//! has an overall guard of `LEAK_GUARD_SECS` (default 900).

mod common;

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;

use common::PublishNow as _;
use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_longpoll::EventLog;
use serde_json::Value;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use common::{RawConn, H2};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The two tests share the allocator's counters: never run them at once.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Connections per batch (all parked at once).
const BATCH: usize = 100;

/// Live-heap growth allowed whatever the number of cycles. Measured: after
/// the warm-up batch the live heap moves by less than 8 KiB either way
/// (−7.5 KiB to +0.7 KiB over 2,000, 10,000 and 100,000 cycles: buffers of
/// the runtime and of the stats connection); 64 KiB is 8 times that.
const HEAP_BOUND: i64 = 64 * 1024;

/// Live-heap growth allowed per cycle on top of [`HEAP_BOUND`]: 1 byte.
/// The smallest thing a leak can hold is one allocation (16 bytes with its
/// rounding; a token node is about 100, a request's extensions more, a
/// connection kilobytes), so leaking anything once per cycle, or even once
/// every few cycles, fails: 10,000 cycles allow 74 KiB, where a 16-byte leak
/// per cycle is 156 KiB.
const HEAP_PER_CYCLE: i64 = 1;

/// RSS growth allowed after the warm-up batch. The allocator keeps freed
/// pages and fragments, so RSS is the coarse check (the live heap is the
/// fine one): measured +2.0 MiB for 2,000 cycles, +2.5 MiB for 10,000,
/// +3.6 MiB for 100,000 (release). 8 MiB is twice the largest; a leaked
/// connection (≥ 8 KiB of buffers) per cycle would be 80 MiB over 10,000
/// cycles, and at 100,000 cycles a leak of 85 bytes per cycle shows.
const RSS_BOUND: i64 = 8 * 1024 * 1024;

fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn live_blocks() -> i64 {
    let s = GLOBAL.stats();
    s.allocations as i64 - s.deallocations as i64
}

fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: i64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// How one connection (or stream) of a batch ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// HTTP/1.1 long-poll, parked, then FIN.
    Fin,
    /// HTTP/1.1 long-poll, parked, then RST.
    Rst,
    /// HTTP/1.1 long-poll, parked, then `shutdown(SHUT_WR)` and read to EOF.
    HalfClose,
    /// HTTP/2 long-poll, parked, then `RST_STREAM(CANCEL)`.
    H2Reset,
    /// HTTP/2 long-poll, parked, then the whole connection closes.
    H2Close,
    /// HTTP/1.1 long-poll, parked, woken by a publish, read to the end.
    Complete,
    /// HTTP/1.1 NDJSON stream, open, then FIN.
    StreamFin,
    /// HTTP/1.1 SSE stream, open, then RST.
    SseRst,
}

const KINDS: [Kind; 8] = [
    Kind::Fin,
    Kind::Rst,
    Kind::HalfClose,
    Kind::H2Reset,
    Kind::H2Close,
    Kind::Complete,
    Kind::StreamFin,
    Kind::SseRst,
];

impl Kind {
    fn is_stream(self) -> bool {
        matches!(self, Self::StreamFin | Self::SseRst)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    cycles: u64,
    abandoned: u64,
    completed: u64,
    streams: u64,
    per_kind: [u64; 8],
}

/// `/stats` over a keep-alive connection opened before the baseline.
struct StatsConn(RawConn);

impl StatsConn {
    async fn get(&mut self) -> Value {
        self.0.get("/stats").await;
        let res = self.0.read_response().await;
        assert_eq!(res.status(), 200);
        serde_json::from_slice(&res.body).unwrap()
    }

    /// Waits until `parked` and `streaming` are as given; panics after 10 s.
    async fn until(&mut self, parked: u64, streaming: u64, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.get().await;
            if s["parked"] == parked && s["streaming"] == streaming {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: stats never reached parked {parked}, streaming {streaming}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

struct Ctx {
    addr: SocketAddr,
    log: EventLog<Arc<str>>,
    stats: StatsConn,
    rng: fastrand::Rng,
}

async fn batch(ctx: &mut Ctx, size: usize, counts: &mut Counts) {
    let target = format!("/poll?timeout=60&cursor={}", ctx.log.head());
    let kinds: Vec<Kind> = (0..size)
        .map(|_| KINDS[ctx.rng.usize(..KINDS.len())])
        .collect();
    let mut h1: Vec<(Kind, RawConn)> = Vec::new();
    let mut h2_reset = H2::connect(ctx.addr).await;
    let mut h2_close = H2::connect(ctx.addr).await;
    let mut resets = Vec::new();
    let mut closes = Vec::new();
    for &kind in &kinds {
        match kind {
            Kind::H2Reset => resets.push(h2_reset.get(&target)),
            Kind::H2Close => closes.push(h2_close.get(&target)),
            Kind::StreamFin => {
                let mut conn = RawConn::connect(ctx.addr).await;
                conn.get("/stream").await;
                h1.push((kind, conn));
            }
            Kind::SseRst => {
                let mut conn = RawConn::connect(ctx.addr).await;
                conn.get("/sse").await;
                h1.push((kind, conn));
            }
            _ => {
                let mut conn = RawConn::connect(ctx.addr).await;
                conn.get(&target).await;
                h1.push((kind, conn));
            }
        }
    }
    let streams = kinds.iter().filter(|k| k.is_stream()).count() as u64;
    let polls = size as u64 - streams;
    let completes = kinds.iter().filter(|&&k| k == Kind::Complete).count() as u64;
    ctx.stats.until(polls, streams, "every poll parked").await;

    // End everything but the completes.
    let mut keep = Vec::new();
    for (kind, mut conn) in h1 {
        match kind {
            Kind::Fin => conn.fin(),
            Kind::Rst => conn.rst(),
            Kind::HalfClose => {
                conn.half_close().await;
                let rest = conn.read_to_eof().await;
                assert!(rest.is_empty(), "a half-closed poll was answered: {rest:?}");
            }
            Kind::StreamFin => {
                // Read the head and the open frame, so that nothing is left
                // unread and the close is a FIN.
                let head = conn.read_head().await;
                assert_eq!(head.status, 200);
                assert!(conn.read_chunk().await.is_some());
                conn.fin();
            }
            Kind::SseRst => conn.rst(),
            Kind::Complete => keep.push(conn),
            Kind::H2Reset | Kind::H2Close => unreachable!(),
        }
    }
    drop(resets); // RST_STREAM(CANCEL) each
    h2_close.close().await;
    drop(closes);
    ctx.stats
        .until(completes, 0, "every abandoned poll and stream ended")
        .await;

    // Wake the completes: each reads its 200 to the end, then FIN.
    let id = ctx.log.publish_now(Arc::from("wake"));
    for mut conn in keep {
        let res = conn.read_response().await;
        assert_eq!(res.status(), 200, "{}", res.text());
        assert_eq!(res.header("cursor"), Some(id.to_string().as_str()));
        conn.fin();
    }
    h2_reset.close().await;
    ctx.stats.until(0, 0, "every completed poll ended").await;

    counts.cycles += size as u64;
    counts.streams += streams;
    counts.completed += completes;
    counts.abandoned += polls - completes;
    for k in kinds {
        counts.per_kind[KINDS.iter().position(|&x| x == k).unwrap()] += 1;
    }
}

async fn leaks(cycles: u64, guard: Duration) {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let log = EventLog::<Arc<str>>::new(8);
    // Fill the log's ring now, so that it does not grow during the cycles.
    for _ in 0..16 {
        log.publish_now(Arc::from("fill"));
    }
    let shutdown = CancellationToken::new();
    let server =
        common::spawn_with_shutdown(demo::router(log.clone(), shutdown.clone()), shutdown).await;
    let mut ctx = Ctx {
        addr: server.addr,
        log,
        stats: StatsConn(RawConn::connect(server.addr).await),
        rng: fastrand::Rng::with_seed(7),
    };
    let before = ctx.stats.get().await;

    let run = async {
        let mut counts = Counts::default();
        // Warm-up: buffers, pools and the runtime reach their working size.
        batch(&mut ctx, BATCH, &mut counts).await;
        settle_tasks(None).await;
        let tasks = alive_tasks();
        let heap = live_heap();
        let blocks = live_blocks();
        let rss0 = rss();
        let warm = counts.cycles;
        while counts.cycles < cycles {
            let size = BATCH.min(usize::try_from(cycles - counts.cycles).unwrap());
            batch(&mut ctx, size, &mut counts).await;
        }
        settle_tasks(Some(tasks)).await;
        let after = ctx.stats.get().await;
        (counts, warm, tasks, heap, blocks, rss0, after)
    };
    let (counts, warm, tasks, heap, blocks, rss0, after) = tokio::time::timeout(guard, run)
        .await
        .unwrap_or_else(|_| panic!("hang guard: {cycles} cycles did not finish within {guard:?}"));
    let measured = counts.cycles - warm;
    let heap_growth = live_heap() - heap;
    let block_growth = live_blocks() - blocks;
    let rss_growth = rss() - rss0;
    eprintln!(
        "leaks: {} cycles ({} abandoned polls, {} completed, {} streams; per kind {:?}) in \
         {:.1?}; after the warm-up: live heap {heap_growth:+} B in {block_growth:+} blocks, \
         RSS {rss_growth:+} B, alive tasks {} (baseline {tasks}); stats {after}",
        counts.cycles,
        counts.abandoned,
        counts.completed,
        counts.streams,
        KINDS.iter().zip(counts.per_kind).collect::<Vec<_>>(),
        started.elapsed(),
        alive_tasks(),
    );

    // Gauges back to 0, and every cycle counted exactly once.
    let delta = |key: &str| after[key].as_u64().unwrap() - before[key].as_u64().unwrap();
    assert_eq!(after["parked"], 0, "{after}");
    assert_eq!(after["streaming"], 0, "{after}");
    assert_eq!(delta("disconnected"), counts.abandoned, "{after}");
    assert_eq!(delta("ready"), counts.completed, "{after}");
    assert_eq!(delta("timeout"), 0, "{after}");

    let heap_bound = HEAP_BOUND + HEAP_PER_CYCLE * i64::try_from(measured).unwrap();
    assert!(
        heap_growth <= heap_bound,
        "live heap grew by {heap_growth} B over {measured} cycles (bound {heap_bound} B): \
         about {} B per cycle",
        heap_growth / i64::try_from(measured.max(1)).unwrap()
    );
    assert!(
        rss_growth <= RSS_BOUND,
        "RSS grew by {rss_growth} B over {measured} cycles (bound {RSS_BOUND} B)"
    );
    drop(server);
}

/// Waits until the alive-task count is `target` (or, for `None`, stops
/// changing); panics after 10 s.
async fn settle_tasks(target: Option<usize>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = alive_tasks();
    let mut stable = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = alive_tasks();
        match target {
            Some(t) if now == t => return,
            None if now == last => {
                stable += 1;
                if stable == 20 {
                    return;
                }
            }
            _ => stable = 0,
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "alive tasks: {now}, expected {target:?} (tasks leaked)"
        );
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: allowed a whole number"))
    })
}

/// The small run, in `cargo test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_park_disconnect_cycles_leave_nothing_behind() {
    leaks(10_000, Duration::from_secs(300)).await;
}

/// `LEAK_CYCLES=100000 cargo test --release --test leaks -- --ignored
/// --nocapture` (100,000 is also the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full leak run (minutes); see the module docs"]
async fn connect_park_disconnect_cycles_leave_nothing_behind_full() {
    leaks(
        env_or("LEAK_CYCLES", 100_000),
        Duration::from_secs(env_or("LEAK_GUARD_SECS", 900)),
    )
    .await;
}
