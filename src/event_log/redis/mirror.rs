//! A log's mirror of its stream: entries decoded and applied in stream
//! order, a fresh mirror built from the stream's tail, and the decision a
//! reconnect makes. What the reader task needs of a log, whatever its
//! event type, is the object-safe [`Mirror`].

use redis::streams::StreamId;
use redis::Value;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::id::Id;
use super::link::{Loaded, Tail};
use super::Redis;
use crate::event_log::log::Inner;
use crate::event_log::presence::{Member, Presence};
use crate::event_log::state::{Entry, Retention, State};

/// Where a mirror stands in its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The ID to read after: the newest entry applied, or `0-0` before any
    /// (every entry added later follows it).
    pub(crate) last: Id,
    /// Whether `last` is an entry this mirror applied (so it must still be
    /// in the stream unless more than `capacity` entries followed it).
    pub(crate) seen: bool,
}

impl Mark {
    pub(crate) const START: Self = Self {
        last: Id::ZERO,
        seen: false,
    };
}

/// What an entry holds.
enum Body<T> {
    /// An event: its data and the JSON Redis holds (kept, so no reader
    /// serializes the event again).
    Event(T, bytes::Bytes),
    /// `data` that is not JSON of `T`, or an entry without `data` that is no
    /// marker: a gap.
    Bad,
    /// A marker (`close` without `data`, `deleted`): no event.
    None,
}

/// A decoded entry.
pub(crate) struct Decoded<T> {
    id: Id,
    /// The epoch it was written under (`None`: written by someone else,
    /// taken as the epoch in force).
    epoch: Option<u64>,
    body: Body<T>,
    close: bool,
    deleted: bool,
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

pub(crate) fn decode<T: DeserializeOwned>(raw: &[StreamId]) -> Vec<Decoded<T>> {
    raw.iter()
        .filter_map(|entry| {
            let id = Id::parse(&entry.id)?;
            let field = |name: &str| entry.map.get(name).and_then(bytes);
            let flag = |name: &str| field(name) == Some(b"1".as_slice());
            let epoch = field("e")
                .and_then(|e| std::str::from_utf8(e).ok())
                .map(|e| u64::from_str_radix(e, 16).unwrap_or(0));
            let (close, deleted) = (flag("close"), flag("deleted"));
            let body = match field("data") {
                Some(json) => match serde_json::from_slice(json) {
                    Ok(data) => Body::Event(data, bytes::Bytes::copy_from_slice(json)),
                    Err(_) => Body::Bad,
                },
                None if close || deleted => Body::None,
                None => Body::Bad,
            };
            Some(Decoded {
                id,
                epoch,
                body,
                close,
                deleted,
            })
        })
        .collect()
}

pub(crate) fn position_of(id: Id) -> u64 {
    id.position().unwrap_or_else(|gap| gap)
}

/// Why a mirror stopped applying a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// An entry of another epoch: the stream was created again, or its
    /// history found lost; the mirror must be loaded again.
    Epoch,
    /// The stream was deleted.
    Deleted,
}

/// Applies entries in stream order, up to one that belongs to another
/// epoch or says the stream was deleted. Returns whether the mirror changed,
/// and why it stopped early.
///
/// An entry the log cannot deliver (its ID is beyond the cursor range, or
/// its data is not JSON of `T`) is a gap: readers behind it get `410`
/// `evicted` rather than silently missing it. Nothing is appended after the
/// end of a closed stream.
pub(crate) fn apply<T>(
    state: &mut State<T>,
    mark: &mut Mark,
    entries: Vec<Decoded<T>>,
    at: impl Fn(Id) -> Instant,
    retention: Retention,
) -> (bool, Option<Stop>) {
    let mut changed = false;
    for entry in entries {
        if entry.epoch.is_some_and(|epoch| epoch != state.epoch) {
            return (changed, Some(Stop::Epoch));
        }
        if entry.deleted {
            return (changed, Some(Stop::Deleted));
        }
        mark.last = entry.id;
        mark.seen = true;
        if state.closed {
            continue;
        }
        match (entry.id.position(), entry.body) {
            (_, Body::None) => {}
            (Ok(position), _) if position <= state.head => {}
            (Ok(position), Body::Event(data, json)) => {
                let encoded = crate::event_log::encoded::from_json(
                    crate::event_log::Cursor {
                        epoch: state.epoch,
                        position,
                    },
                    &json,
                );
                state.push(
                    Entry::new(position, at(entry.id), data, Some(encoded)),
                    retention,
                );
                changed = true;
            }
            (Ok(position) | Err(position), _) => {
                state.gap(position);
                changed = true;
            }
        }
        if entry.close {
            state.closed = true;
            changed = true;
        }
    }
    (changed, None)
}

/// A mirror built from a loaded stream alone (when it is first read here,
/// when its epoch changed, or when more than `capacity` entries were
/// missed).
pub(crate) fn fresh<T: DeserializeOwned>(
    loaded: &Loaded,
    keep: usize,
    retention: Retention,
) -> (State<T>, Mark) {
    let epoch = loaded.epoch;
    let tail: &Tail = &loaded.tail;
    let mark = match tail.newest.first().and_then(|e| Id::parse(&e.id)) {
        Some(last) => Mark { last, seen: true },
        None => Mark::START,
    };
    // Newest first: this epoch's events, down to where the evicted ones end
    // (the event before the newest `capacity`) or to an entry of an earlier
    // epoch (everything before this epoch is no part of it).
    let mut events = Vec::new();
    let mut floor = None;
    for entry in decode::<T>(&tail.newest) {
        if entry.deleted || entry.epoch.is_some_and(|e| e != epoch) {
            floor = Some(position_of(entry.id));
            break;
        }
        if matches!(entry.body, Body::None) {
            continue;
        }
        if events.len() + 1 >= keep {
            floor = Some(position_of(entry.id));
            break;
        }
        events.push(entry);
    }
    let whole = tail.newest.len() < tail.asked;
    let floor = match floor {
        Some(floor) => floor,
        // The whole stream, and nothing was ever removed from it.
        None if whole && tail.complete != Some(false) => 0,
        // Something was removed (not by us: we keep `capacity + 1`), and
        // what preceded the oldest entry is unknown: treat every position
        // before it as evicted.
        None => match events.last() {
            Some(oldest) => position_of(oldest.id).saturating_sub(1),
            None => position_of(tail.last_generated),
        },
    };
    let mut state = State::with_bounds(epoch, floor, floor);
    events.reverse();
    let clock = tail.clock;
    let mut applied = mark;
    apply(
        &mut state,
        &mut applied,
        events,
        |id| clock.instant(id.ms),
        retention,
    );
    state.closed = loaded.closed.is_some();
    (state, mark)
}

/// What a reconnect under the same epoch means for the mirror, when its
/// last entry is no longer in the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
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
pub(crate) fn decide(mark: Mark, ids: &[Id], keep: usize) -> Decision {
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

/// What the reader task needs of a log, whatever its event type.
pub(crate) trait Mirror: Send + Sync {
    fn redis(&self) -> &Redis;
    /// The epoch the mirror is in.
    fn epoch(&self) -> u64;
    fn presence(&self) -> &Presence;
    /// Applies entries read after the mark, in order; says why it stopped
    /// early.
    fn read(&self, raw: &[StreamId]) -> Option<Stop>;
    /// Replaces the mirror by the stream as loaded.
    fn reload(&self, loaded: &Loaded);
    /// Whether the stream as loaded has the attributes this mirror was
    /// made with.
    fn same_attributes(&self, loaded: &Loaded) -> bool;
    /// The stream is gone: removed from its collection, its readers told.
    fn retire(&self);
    fn is_retired(&self) -> bool;
    /// Wakes the readers and waiters (after a reconnect).
    fn notify(&self);
}

impl<T> Mirror for Inner<T, Redis>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    fn redis(&self) -> &Redis {
        &self.backend
    }

    fn epoch(&self) -> u64 {
        self.state().epoch
    }

    fn presence(&self) -> &Presence {
        &self.presence
    }

    fn read(&self, raw: &[StreamId]) -> Option<Stop> {
        let entries = decode::<T>(raw);
        let now = Instant::now();
        let mut mark = self.backend.mark_mut();
        let (changed, stop) = apply(
            &mut self.state_mut(),
            &mut mark,
            entries,
            |_| now,
            self.config.retention,
        );
        drop(mark);
        if changed {
            self.published.notify_waiters();
        }
        stop
    }

    fn reload(&self, loaded: &Loaded) {
        let (state, fresh_mark) = fresh::<T>(loaded, self.backend.keep(), self.config.retention);
        {
            let mut mark = self.backend.mark_mut();
            let mut current = self.state_mut();
            if current.deleted {
                return;
            }
            *current = state;
            *mark = fresh_mark;
        }
        self.published.notify_waiters();
    }

    fn same_attributes(&self, loaded: &Loaded) -> bool {
        let mine = self.presence.member().map_or(&[][..], Member::attributes);
        mine == loaded.attributes.as_slice()
    }

    fn retire(&self) {
        if let Some(member) = self.presence.member() {
            if let Some(janitor) = member.janitor.upgrade() {
                janitor.forget(&member.name, std::ptr::from_ref(self).cast::<()>());
            }
        }
        self.state_mut().deleted = true;
        self.published.notify_waiters();
    }

    fn is_retired(&self) -> bool {
        self.state().deleted
    }

    fn notify(&self) {
        self.published.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event_log::redis::link::Clock;

    fn ids(ms: &[u64]) -> Vec<Id> {
        ms.iter().map(|&ms| Id { ms, seq: 0 }).collect()
    }

    fn mark(last: u64, seen: bool) -> Mark {
        Mark {
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

    const EPOCH: u64 = 0x8000_0000_0000_00aa;
    const OTHER: u64 = 0x8000_0000_0000_00bb;

    /// An entry at `ms-0` with the given fields.
    fn entry(ms: u64, fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: format!("{ms}-0"),
            map: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::BulkString(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    fn event(ms: u64, epoch: u64) -> StreamId {
        entry(
            ms,
            &[("e", &format!("{epoch:016x}")), ("data", &ms.to_string())],
        )
    }

    fn loaded(newest: Vec<StreamId>, asked: usize, closed: bool) -> Loaded {
        Loaded {
            epoch: EPOCH,
            closed: closed.then_some(Id { ms: 1, seq: 0 }),
            attributes: Vec::new(),
            tail: Tail {
                newest,
                asked,
                complete: Some(true),
                last_generated: Id::ZERO,
                clock: Clock {
                    at: Instant::now(),
                    ms: 0,
                },
            },
        }
    }

    const KEEP_3: Retention = Retention {
        capacity: 3,
        max_age: None,
        max_bytes: None,
    };

    fn positions(state: &State<u64>) -> Vec<u64> {
        state.entries.iter().map(|e| e.data).collect()
    }

    fn pos(ms: u64) -> u64 {
        Id { ms, seq: 0 }.position().unwrap_or(0)
    }

    #[test]
    fn fresh_keeps_capacity_and_floors_at_the_next_older_event() {
        // keep = 4, asked 5: six events, newest first.
        let newest = (1..=6).rev().map(|ms| event(ms, EPOCH)).collect();
        let (state, mark) = fresh::<u64>(&loaded(newest, 5, false), 4, KEEP_3);
        assert_eq!(positions(&state), [4, 5, 6]);
        assert_eq!(state.floor, pos(3));
        assert_eq!(mark.last.ms, 6);
        assert!(!state.closed);
    }

    #[test]
    fn fresh_skips_the_close_marker_and_is_closed() {
        let mut newest = vec![entry(7, &[("e", &format!("{EPOCH:016x}")), ("close", "1")])];
        newest.extend((3..=6).rev().map(|ms| event(ms, EPOCH)));
        let (state, mark) = fresh::<u64>(&loaded(newest, 5, true), 4, KEEP_3);
        // The marker takes no slot: still `capacity` events and the floor.
        assert_eq!(positions(&state), [4, 5, 6]);
        assert_eq!(state.floor, pos(3));
        assert_eq!(state.head, pos(6), "the end is the last event");
        assert!(state.closed);
        assert_eq!(mark.last.ms, 7, "reads on after the marker");
    }

    #[test]
    fn fresh_floors_at_an_entry_of_an_earlier_epoch() {
        let newest = vec![event(9, EPOCH), event(8, EPOCH), event(7, OTHER)];
        let (state, _) = fresh::<u64>(&loaded(newest, 5, false), 4, KEEP_3);
        assert_eq!(positions(&state), [8, 9]);
        assert_eq!(state.floor, pos(7));
    }

    #[test]
    fn apply_stops_at_another_epoch_and_at_a_deletion() {
        let mut state = State::with_bounds(EPOCH, 0, 0);
        let mut mark = Mark::START;
        let now = Instant::now() + Duration::ZERO;
        let raw = [event(1, EPOCH), event(2, OTHER), event(3, EPOCH)];
        let (changed, stop) = apply(&mut state, &mut mark, decode::<u64>(&raw), |_| now, KEEP_3);
        assert!(changed);
        assert_eq!(stop, Some(Stop::Epoch));
        assert_eq!(positions(&state), [1]);
        assert_eq!(mark.last.ms, 1, "not past the foreign entry");

        let raw = [
            event(2, EPOCH),
            entry(3, &[("e", &format!("{EPOCH:016x}")), ("deleted", "1")]),
        ];
        let (_, stop) = apply(&mut state, &mut mark, decode::<u64>(&raw), |_| now, KEEP_3);
        assert_eq!(stop, Some(Stop::Deleted));
        assert_eq!(positions(&state), [1, 2]);
    }

    #[test]
    fn apply_closes_after_the_event_and_appends_nothing_after() {
        let mut state = State::with_bounds(EPOCH, 0, 0);
        let mut mark = Mark::START;
        let now = Instant::now();
        let e = format!("{EPOCH:016x}");
        let raw = [
            event(1, EPOCH),
            entry(2, &[("e", &e), ("data", "2"), ("close", "1")]),
            event(3, EPOCH),
        ];
        apply(&mut state, &mut mark, decode::<u64>(&raw), |_| now, KEEP_3);
        assert_eq!(positions(&state), [1, 2]);
        assert!(state.closed);
        assert_eq!(state.head, pos(2));
        // A close without an event leaves the end where it was.
        let mut state = State::with_bounds(EPOCH, 0, 0);
        let raw = [event(1, EPOCH), entry(2, &[("e", &e), ("close", "1")])];
        apply(&mut state, &mut mark, decode::<u64>(&raw), |_| now, KEEP_3);
        assert_eq!((state.head, state.closed), (pos(1), true));
    }
}
