//! The one reader per log: keeps the in-process mirror in step with the
//! stream (`XREAD BLOCK` from the last ID seen), reconnects with backoff,
//! and on reconnect proves that nothing was skipped before going on.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamId;
use redis::{RedisResult, Value};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::id::Id;
use super::link::{epoch_hex, Clock, Link, Tail};
use super::Redis;
use crate::event_log::log::Inner;
use crate::event_log::state::{Entry, Retention, State};

/// Entries one `XREAD` returns at most; a round that returns fewer has
/// caught up with the stream.
const COUNT: usize = 1000;

/// Where the mirror stands in the stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    pub(crate) epoch: u64,
    /// The ID to read after: the newest entry applied, or `0-0` before any
    /// (every entry added later follows it).
    pub(crate) last: Id,
    /// Whether `last` is an entry this mirror applied (so it must still be
    /// in the stream unless more than `capacity` entries followed it).
    pub(crate) seen: bool,
}

/// A decoded entry and its JSON: `None` when its `data` is missing or not
/// JSON of `T`.
type Decoded<T> = (Id, Option<(T, bytes::Bytes)>);

fn decode<T: DeserializeOwned>(raw: &[StreamId]) -> Vec<Decoded<T>> {
    raw.iter()
        .filter_map(|entry| {
            let id = Id::parse(&entry.id)?;
            let json = match entry.map.get("data") {
                Some(Value::BulkString(bytes)) => Some(bytes::Bytes::copy_from_slice(bytes)),
                Some(Value::SimpleString(text)) => {
                    Some(bytes::Bytes::copy_from_slice(text.as_bytes()))
                }
                _ => None,
            };
            // The JSON as Redis holds it is kept: no reader serializes the
            // event again.
            let data = json.and_then(|json| Some((serde_json::from_slice(&json).ok()?, json)));
            Some((id, data))
        })
        .collect()
}

fn id_of(entry: &StreamId) -> Option<Id> {
    Id::parse(&entry.id)
}

fn position_of(id: Id) -> u64 {
    id.position().unwrap_or_else(|gap| gap)
}

/// Applies entries in stream order. Returns whether the mirror changed.
///
/// An entry the log cannot deliver (its ID is beyond the cursor range, or
/// its data is not JSON of `T`) is a gap: readers behind it get `410`
/// `evicted` rather than silently missing it.
fn apply<T>(
    state: &mut State<T>,
    entries: Vec<Decoded<T>>,
    at: impl Fn(Id) -> Instant,
    retention: Retention,
) -> bool {
    let mut changed = false;
    for (id, data) in entries {
        match (id.position(), data) {
            (Ok(position), _) if position <= state.head => {}
            (Ok(position), Some((data, json))) => {
                state.push(Entry::new(position, at(id), data, Some(json)), retention);
                changed = true;
            }
            (Ok(position) | Err(position), _) => {
                state.gap(position);
                changed = true;
            }
        }
    }
    changed
}

/// A mirror built from the stream's tail alone (at start, or when the
/// epoch changed, or when more than `capacity` entries were missed).
pub(crate) fn fresh<T: DeserializeOwned>(
    epoch: u64,
    tail: &Tail,
    keep: usize,
    retention: Retention,
) -> (State<T>, Mark) {
    let newest = &tail.newest;
    let (floor, body) = if newest.len() >= keep {
        // The entry before the newest `capacity`: exactly where the evicted
        // ones end.
        let floor = id_of(&newest[keep - 1]).map_or(0, position_of);
        (floor, &newest[..keep - 1])
    } else if tail.complete != Some(false) {
        // The whole stream, and nothing was ever removed from it.
        (0, &newest[..])
    } else {
        // Something was removed (not by us: we keep `capacity + 1`), and
        // what preceded the oldest entry is unknown: treat every position
        // before it as evicted.
        let floor = match newest.last().and_then(id_of) {
            Some(oldest) => position_of(oldest).saturating_sub(1),
            None => position_of(tail.last_generated),
        };
        (floor, &newest[..])
    };
    let mut state = State::with_bounds(epoch, floor, floor);
    let mut entries = decode(body);
    entries.reverse();
    let clock = tail.clock;
    apply(&mut state, entries, |id| clock.instant(id.ms), retention);
    let mark = match newest.first().and_then(id_of) {
        Some(last) => Mark {
            epoch,
            last,
            seen: true,
        },
        // Every entry added from now on follows `0-0`.
        None => Mark {
            epoch,
            last: Id::ZERO,
            seen: false,
        },
    };
    (state, mark)
}

/// What a reconnect found.
enum Plan<T> {
    /// Contiguous with the mirror: these entries follow it.
    Append(Vec<Decoded<T>>, Clock),
    /// The mirror is replaced (same epoch after more than `capacity`
    /// entries were missed, or a new epoch).
    Fresh(State<T>),
}

/// What a reconnect under the same epoch means for the mirror.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Contiguous: the newest `n` entries of the tail follow the mirror.
    Append(usize),
    /// More than `capacity` entries followed the mirror: rebuild it from
    /// the tail (old cursors are evicted, as in memory).
    Fresh,
    /// The mirror's last entry is gone although fewer than `capacity`
    /// entries followed it: the stream lost writes.
    Lost,
}

/// `ids`: the stream's newest `keep` (at most) entry IDs, newest first.
fn decide(mark: Mark, ids: &[Id], keep: usize) -> Decision {
    let missed_more_than_kept =
        ids.len() >= keep && ids.last().is_some_and(|oldest| *oldest > mark.last);
    // Trimming removes the oldest first: while our last entry is there,
    // nothing after it was removed. Before the mirror applied any entry,
    // the stream's length vouches for it (nothing is trimmed below `keep`).
    let contiguous = if mark.seen {
        ids.contains(&mark.last)
    } else {
        !missed_more_than_kept
    };
    if contiguous {
        Decision::Append(ids.iter().take_while(|id| **id > mark.last).count())
    } else if missed_more_than_kept {
        Decision::Fresh
    } else {
        Decision::Lost
    }
}

/// Checks the stream against the mirror after a reconnect (or an epoch
/// change seen by a round).
async fn resync<T: DeserializeOwned>(
    link: &Link,
    conn: &mut MultiplexedConnection,
    mark: Mark,
    retention: Retention,
) -> RedisResult<(Plan<T>, Mark)> {
    let epoch = link.claim_epoch(conn, None).await?;
    let tail = link.tail(conn).await?;
    if epoch != mark.epoch {
        // Redis lost the stream (restart without persistence) or another
        // instance found its history lost: the old cursors are void.
        let (state, mark) = fresh(epoch, &tail, link.keep, retention);
        return Ok((Plan::Fresh(state), mark));
    }
    let ids: Vec<Id> = tail.newest.iter().filter_map(id_of).collect();
    match decide(mark, &ids, link.keep) {
        Decision::Append(newer) => {
            let mut entries = decode(&tail.newest[..newer]);
            entries.reverse();
            let next = match ids.first() {
                Some(&last) if newer > 0 => Mark {
                    epoch,
                    last,
                    seen: true,
                },
                _ => mark,
            };
            return Ok((Plan::Append(entries, tail.clock), next));
        }
        Decision::Fresh => {
            let (state, mark) = fresh(epoch, &tail, link.keep, retention);
            return Ok((Plan::Fresh(state), mark));
        }
        Decision::Lost => {}
    }
    // Our last entry is gone although fewer than `capacity` followed it:
    // Redis lost writes (a crash inside the fsync window) or someone deleted
    // entries. Under the same epoch some clients would miss events without
    // knowing: start a new one (unless another instance already did).
    let epoch = link.claim_epoch(conn, Some(mark.epoch)).await?;
    let (state, mark) = fresh(epoch, &tail, link.keep, retention);
    Ok((Plan::Fresh(state), mark))
}

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

/// The reader task. Holds only a `Weak` to the log between Redis calls, so
/// dropping the last handle of the log drops it (and aborts this task).
pub(crate) async fn run<T>(
    log: Weak<Inner<T, Redis>>,
    link: Arc<Link>,
    conn: MultiplexedConnection,
    mut mark: Mark,
) where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let mut conn = Some(conn);
    let mut backoff = Backoff {
        attempt: 0,
        max: link.max_backoff,
    };
    let mut in_step = true;
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
        if !in_step {
            let Some(retention) = log.upgrade().map(|log| log.config.retention) else {
                return;
            };
            match resync::<T>(&link, &mut c, mark, retention).await {
                Ok((plan, next)) => {
                    let Some(log) = log.upgrade() else { return };
                    {
                        let mut state = log.state_mut();
                        match plan {
                            Plan::Append(entries, clock) => {
                                apply(&mut state, entries, |id| clock.instant(id.ms), retention);
                            }
                            Plan::Fresh(fresh) => *state = fresh,
                        }
                    }
                    mark = next;
                    in_step = true;
                    link.set_connected(true);
                    backoff.reset();
                    log.published.notify_waiters();
                    log.backend.lag.rounds.fetch_add(1, Ordering::AcqRel);
                    log.backend.lag.synced.notify_waiters();
                }
                Err(_) => {
                    link.set_connected(false);
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            }
        }
        match link.round(&mut c, mark.last, COUNT).await {
            Ok((epoch, raw)) => {
                conn = Some(c);
                if epoch.as_deref() != Some(epoch_hex(mark.epoch).as_str()) {
                    // The epoch changed before this read: resynchronise
                    // rather than file these entries under the old one.
                    in_step = false;
                    continue;
                }
                let caught_up = raw.len() < COUNT;
                let entries = decode::<T>(&raw);
                let Some(log) = log.upgrade() else { return };
                if let Some(&(last, _)) = entries.last() {
                    mark.last = last;
                    mark.seen = true;
                    let now = Instant::now();
                    let changed =
                        apply(&mut log.state_mut(), entries, |_| now, log.config.retention);
                    if changed {
                        log.published.notify_waiters();
                    }
                }
                if caught_up {
                    log.backend.lag.rounds.fetch_add(1, Ordering::AcqRel);
                    log.backend.lag.synced.notify_waiters();
                }
            }
            Err(_) => {
                link.set_connected(false);
                in_step = false;
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ms: &[u64]) -> Vec<Id> {
        ms.iter().map(|&ms| Id { ms, seq: 0 }).collect()
    }

    fn mark(last: u64, seen: bool) -> Mark {
        Mark {
            epoch: 1,
            last: Id { ms: last, seq: 0 },
            seen,
        }
    }

    #[test]
    fn reconnect_decisions() {
        // keep = capacity + 1 = 4; tails are newest first.
        let keep = 4;
        // Nothing new.
        assert_eq!(
            decide(mark(9, true), &ids(&[9, 8, 7]), keep),
            Decision::Append(0)
        );
        // Two new entries after ours.
        assert_eq!(
            decide(mark(7, true), &ids(&[9, 8, 7, 6]), keep),
            Decision::Append(2)
        );
        // Exactly `capacity` new: ours is the oldest kept.
        assert_eq!(
            decide(mark(6, true), &ids(&[9, 8, 7, 6]), keep),
            Decision::Append(3)
        );
        // More than `capacity` new: ours is gone by retention.
        assert_eq!(
            decide(mark(5, true), &ids(&[9, 8, 7, 6]), keep),
            Decision::Fresh
        );
        // Ours is gone although the tail reaches back past it: lost writes.
        assert_eq!(
            decide(mark(7, true), &ids(&[9, 8, 6, 5]), keep),
            Decision::Lost
        );
        // Ours is gone and the stream is short: lost (a crash, a failover).
        assert_eq!(decide(mark(7, true), &ids(&[9]), keep), Decision::Lost);
        assert_eq!(decide(mark(7, true), &[], keep), Decision::Lost);
        // Before any entry was applied: the short stream is whole.
        assert_eq!(
            decide(mark(0, false), &ids(&[3, 2]), keep),
            Decision::Append(2)
        );
        assert_eq!(decide(mark(0, false), &[], keep), Decision::Append(0));
        assert_eq!(
            decide(mark(0, false), &ids(&[9, 8, 7, 6]), keep),
            Decision::Fresh
        );
    }
}
