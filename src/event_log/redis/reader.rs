//! The one reader of an instance: keeps every mirror in step with its
//! stream with one `XREAD BLOCK` over all of them (from the last ID each
//! has seen), looks at the streams' meta hashes every `block` (gone?
//! another epoch?) and counts the uses of this instance in Redis, reconnects
//! with backoff, and on reconnect proves for each stream that nothing was
//! skipped before going on.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadReply};
use redis::RedisResult;
use tokio::time::Instant;

use super::id::Id;
use super::link::{parse_epoch, Deadlines, Link, Load, Mode, Watched};
use super::mirror::{decide, Decision, Mirror, Stop};
use crate::event_log::presence::millis;

/// Entries one `XREAD` returns at most per stream; a round that returns
/// fewer for a stream has caught up with it.
const COUNT: usize = 1000;

/// Streams per pipeline or script call of a resync or a sweep.
const CHUNK: usize = 256;

/// Jittered exponential backoff: 50 ms doubling up to the cap, each delay
/// drawn from its upper half.
struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let ceiling = Duration::from_millis(50)
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The reader task. Holds the logs only weakly (between Redis calls none at
/// all), so dropping a log drops it; the task ends when the hub is dropped.
pub(crate) async fn run(link: Arc<Link>, conn: MultiplexedConnection) {
    let mut conn = Some(conn);
    let mut backoff = Backoff {
        attempt: 0,
        max: link.max_backoff,
    };
    let mut in_step = true;
    let mut next_sweep = Instant::now() + link.block;
    loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match link.connect_reader().await {
                Ok(c) => c,
                Err(_) => {
                    link.set_connected(false);
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            },
        };
        let result = async {
            let (version, watched) = link.watched();
            let reconnected = !in_step;
            if reconnected {
                // Every mark must be checked against its stream again before
                // the reader reads on from it.
                for mirror in live(&watched) {
                    mirror.redis().set_active(false);
                }
            }
            activate(&link, &mut c, &watched).await?;
            reload_flagged(&link, &mut c, &watched).await?;
            if reconnected {
                in_step = true;
                backoff.reset();
                link.set_connected(true);
                for mirror in live(&watched) {
                    mirror.notify();
                }
            }
            if Instant::now() >= next_sweep {
                sweep(&link, &mut c, &watched).await?;
                reload_flagged(&link, &mut c, &watched).await?;
                next_sweep = Instant::now() + link.block;
            }
            read(&link, &mut c, version, &watched).await
        }
        .await;
        match result {
            Ok(()) => conn = Some(c),
            Err(_) => {
                link.set_connected(false);
                in_step = false;
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// The mirrors of `watched` that still live and are not retired.
fn live(watched: &[Watched]) -> Vec<Arc<dyn Mirror>> {
    watched
        .iter()
        .filter_map(|w| w.mirror.upgrade())
        .filter(|m| !m.is_retired())
        .collect()
}

/// A stream found gone: a log outside a collection starts it again (a new
/// epoch: its readers get `410` `epoch`); a stream of a collection is
/// retired (its readers get `410` `deleted`).
fn gone(mirror: &dyn Mirror) {
    if mirror.redis().standalone() {
        mirror.redis().flag_reload();
    } else {
        mirror.retire();
    }
}

/// What the meta hash says of a mirror's epoch.
fn check_epoch(mirror: &dyn Mirror, epoch: Option<&str>) -> Option<u64> {
    match epoch.map(parse_epoch) {
        None | Some(Err(_)) => {
            gone(mirror);
            None
        }
        Some(Ok(epoch)) if epoch != mirror.epoch() => {
            mirror.redis().flag_reload();
            None
        }
        Some(Ok(epoch)) => Some(epoch),
    }
}

/// One round: `XREAD BLOCK` over every stream read now, from where each
/// stands, the entries applied in order. A stream nobody here reads, waits
/// on or used within the linger time is read no more (until it is).
async fn read(
    link: &Link,
    conn: &mut MultiplexedConnection,
    version: u64,
    watched: &[Watched],
) -> RedisResult<()> {
    let now = millis(Instant::now());
    let mut keys: Vec<&Arc<str>> = Vec::with_capacity(watched.len());
    let mut ids = Vec::with_capacity(watched.len());
    let mut mirrors: Vec<&Weak<dyn Mirror>> = Vec::with_capacity(watched.len());
    for w in watched {
        let Some(mirror) = w.mirror.upgrade() else {
            continue;
        };
        let redis = mirror.redis();
        if mirror.is_retired() || redis.reload_pending() || !redis.is_active() {
            continue;
        }
        if !redis.wanted(mirror.presence(), now) {
            redis.set_active(false);
            continue;
        }
        keys.push(&w.key);
        ids.push(redis.mark().last.to_string());
        mirrors.push(&w.mirror);
    }
    if keys.is_empty() {
        // Nothing to read until a stream is added or used again.
        link.issue(version);
        let _ = tokio::time::timeout(link.block, link.changed.notified()).await;
        return Ok(());
    }
    let block = u64::try_from(link.block.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(COUNT)
        .arg("BLOCK")
        .arg(block)
        .arg("STREAMS");
    for key in &keys {
        cmd.arg(&***key);
    }
    for id in &ids {
        cmd.arg(id);
    }
    link.issue(version);
    let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
    let mut entries: HashMap<String, Vec<StreamId>> = reply
        .map(|r| r.keys.into_iter().map(|k| (k.key, k.ids)).collect())
        .unwrap_or_default();
    for (key, mirror) in keys.into_iter().zip(mirrors) {
        let Some(mirror) = mirror.upgrade() else {
            continue;
        };
        let raw = entries.remove(&**key).unwrap_or_default();
        let stop = if raw.is_empty() {
            None
        } else {
            mirror.read(&raw)
        };
        match stop {
            Some(Stop::Epoch) => mirror.redis().flag_reload(),
            Some(Stop::Deleted) => gone(&*mirror),
            None if raw.len() < COUNT => mirror.redis().synced(),
            None => {}
        }
    }
    Ok(())
}

/// Loads again the mirrors found out of step.
async fn reload_flagged(
    link: &Link,
    conn: &mut MultiplexedConnection,
    watched: &[Watched],
) -> RedisResult<()> {
    for mirror in live(watched) {
        let redis = mirror.redis();
        if !redis.reload_pending() {
            continue;
        }
        // Outside a collection a lost stream is started again; a stream of
        // a collection that is gone stays gone.
        let mode = if redis.standalone() {
            Mode::Open
        } else {
            Mode::Get
        };
        match link
            .load(
                conn,
                redis.key(),
                redis.meta_key(),
                mode,
                Deadlines::default(),
                &[],
            )
            .await?
        {
            // A stream of a collection created again with other attributes
            // (deleted and created by another instance while this one did
            // not read it) is another stream: this mirror goes, and the next
            // request loads the new one.
            Load::Loaded(loaded) if !mirror.same_attributes(&loaded) => {
                redis.clear_reload();
                mirror.retire();
            }
            Load::Loaded(loaded) => {
                redis.clear_reload();
                mirror.reload(&loaded);
                redis.set_active(true);
                redis.synced();
            }
            Load::Missing | Load::Exists => {
                redis.clear_reload();
                mirror.retire();
            }
        }
    }
    Ok(())
}

/// Before the reader reads a stream again (after a reconnect, or when it
/// is used again after a pause): whether its mirror can read on from its
/// last entry, must be loaded again, or found its stream's history lost.
async fn activate(
    link: &Link,
    conn: &mut MultiplexedConnection,
    watched: &[Watched],
) -> RedisResult<()> {
    let now = millis(Instant::now());
    let waking: Vec<Arc<dyn Mirror>> = live(watched)
        .into_iter()
        .filter(|m| {
            let redis = m.redis();
            !redis.is_active() && !redis.reload_pending() && redis.wanted(m.presence(), now)
        })
        .collect();
    for chunk in waking.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for mirror in chunk {
            let redis = mirror.redis();
            let mark = redis.mark();
            let mut invocation = link.scripts.resync.key(redis.key());
            invocation
                .key(redis.meta_key())
                .arg(mark.last.to_string())
                .arg(if mark.seen { "1" } else { "0" })
                .arg(link.keep);
            pipe.invoke_script(&invocation);
        }
        let replies: Vec<(Option<String>, i64, Vec<String>)> = pipe.query_async(conn).await?;
        for (mirror, (epoch, contiguous, ids)) in chunk.iter().zip(replies) {
            let Some(epoch) = check_epoch(&**mirror, epoch.as_deref()) else {
                continue;
            };
            let redis = mirror.redis();
            let ids: Vec<Id> = ids.iter().filter_map(|id| Id::parse(id)).collect();
            let decision = if contiguous == 1 {
                Decision::Append(0)
            } else {
                decide(redis.mark(), &ids, link.keep)
            };
            match decision {
                Decision::Append(_) => redis.set_active(true),
                Decision::Fresh => redis.flag_reload(),
                Decision::Lost => {
                    // Our last entry is gone although fewer than `capacity`
                    // followed it: Redis lost writes (a crash inside the
                    // fsync window, a failover) or someone deleted entries.
                    // Under the same epoch some clients would miss events
                    // without knowing: start a new one (unless another
                    // instance already did).
                    link.claim(conn, redis.meta_key(), epoch).await?;
                    redis.flag_reload();
                }
            }
        }
    }
    Ok(())
}

/// Every `block`: each mirrored stream's epoch (gone? another?), and the
/// uses of this instance counted in Redis (a publish counts itself).
async fn sweep(
    link: &Link,
    conn: &mut MultiplexedConnection,
    watched: &[Watched],
) -> RedisResult<()> {
    let mirrors = live(watched);
    let now = millis(Instant::now());
    for chunk in mirrors.chunks(CHUNK) {
        let mut invocation = link.scripts.sweep.prepare_invoke();
        for mirror in chunk {
            let redis = mirror.redis();
            invocation.key(redis.meta_key()).key(redis.key());
            match redis.use_to_count(mirror.presence(), link, now) {
                Some((idle, ago)) => invocation.arg(idle).arg(ago),
                None => invocation.arg("-").arg(0),
            };
        }
        let epochs: Vec<Option<String>> = invocation.invoke_async(conn).await?;
        for (mirror, epoch) in chunk.iter().zip(epochs) {
            check_epoch(&**mirror, epoch.as_deref());
        }
    }
    Ok(())
}
