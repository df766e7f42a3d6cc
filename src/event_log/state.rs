//! The retained events of a log, for both backends: the memory log's only
//! copy, the Redis log's mirror of the stream's tail.
//!
//! Every entry carries its position; positions are strictly increasing but
//! need not be dense (the memory log counts 1, 2, 3…; the Redis log packs
//! stream IDs, see `redis::id`). So lookups are binary searches, never offset
//! arithmetic.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;

use super::Cursor;

/// How much a log retains.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retention {
    /// At most this many entries (at least 1).
    pub(crate) capacity: usize,
    /// Entries older than this are evicted (lazily: not counted as live by
    /// readers, removed on the next append).
    pub(crate) max_age: Option<Duration>,
    /// At most this many bytes of event JSON (the newest event is kept
    /// whatever its size).
    pub(crate) max_bytes: Option<usize>,
}

pub(crate) struct Entry<T> {
    pub(crate) position: u64,
    pub(crate) at: Instant,
    pub(crate) data: T,
    /// The event as every answer writes it ([`encoded`](super::encoded)),
    /// made at publish (or from the JSON taken from Redis) and shared by
    /// every answer and framing; made by the first reader that needs it
    /// only if serializing failed at publish.
    encoded: OnceLock<Bytes>,
}

impl<T> Entry<T> {
    /// `encoded`: the event's buffer, when it is made already.
    pub(crate) fn new(position: u64, at: Instant, data: T, encoded: Option<Bytes>) -> Self {
        Self {
            position,
            at,
            data,
            encoded: encoded.map(OnceLock::from).unwrap_or_default(),
        }
    }

    /// Its size for retention by bytes: the length of its JSON, once made
    /// (a log that retains by bytes makes it at publish).
    fn size(&self) -> usize {
        self.encoded.get().map_or(0, super::encoded::json_len)
    }

    /// The event's buffer ([`encoded`](super::encoded)), the event being at
    /// `at` (its log's epoch and its position); made here only if it was
    /// not at publish. A failure to serialize is not cached (it is a bug in a `Serialize`
    /// impl, and rare): each reader reports it.
    pub(crate) fn encoded(&self, at: Cursor) -> Result<Bytes, String>
    where
        T: Serialize,
    {
        debug_assert_eq!(at.position, self.position);
        if let Some(encoded) = self.encoded.get() {
            debug_assert!(super::encoded::is_for(encoded, at));
            return Ok(encoded.clone());
        }
        let encoded = super::encoded::encode(at, &self.data).map_err(|e| e.to_string())?;
        Ok(self.encoded.get_or_init(|| encoded).clone())
    }
}

/// Invariant: every event with a position in `floor + 1 ..= head` that the
/// log ever had is in `entries` (unless expired by age), in order; nothing
/// at or below `floor` is.
pub(crate) struct State<T> {
    /// The epoch the positions belong to (fixed for the memory log; replaced
    /// when the Redis log finds its stream lost or replaced).
    pub(crate) epoch: u64,
    pub(crate) entries: VecDeque<Entry<T>>,
    /// Position of the newest event (0: none).
    pub(crate) head: u64,
    /// Position of the newest event evicted (0: none yet).
    pub(crate) floor: u64,
    /// Closed: `head` is the end; nothing is appended any more.
    pub(crate) closed: bool,
    /// Deleted from its collection: nothing can be read or appended.
    pub(crate) deleted: bool,
    /// Bytes of the retained entries' JSON (counted for a log that retains
    /// by bytes only).
    pub(crate) bytes: usize,
    /// The last writer's sequence token accepted ([`Append::seq`](super::Append::seq)).
    /// Boxed once more: most logs never see one, and this state is part
    /// of every stream, idle ones included (one word, not two).
    pub(crate) seq: Option<Box<Box<str>>>,
}

impl<T> State<T> {
    pub(crate) fn new(epoch: u64) -> Self {
        Self::with_bounds(epoch, 0, 0)
    }

    pub(crate) fn with_bounds(epoch: u64, floor: u64, head: u64) -> Self {
        debug_assert!(floor <= head);
        Self {
            epoch,
            entries: VecDeque::new(),
            head,
            floor,
            closed: false,
            deleted: false,
            bytes: 0,
            seq: None,
        }
    }

    /// Appends an event after `head`, evicting by count and age.
    ///
    /// `position` must be above `head` (callers check; a debug assertion
    /// holds them to it).
    pub(crate) fn push(&mut self, entry: Entry<T>, retention: Retention) {
        let Entry { position, at, .. } = entry;
        debug_assert!(position > self.head, "{position} <= head {}", self.head);
        if self.entries.len() >= retention.capacity {
            self.evict_front();
        }
        if let Some(max) = retention.max_bytes {
            self.bytes += entry.size();
            while self.bytes > max && !self.entries.is_empty() {
                self.evict_front();
            }
        }
        if let Some(age) = retention.max_age {
            while self
                .entries
                .front()
                .is_some_and(|e| at.saturating_duration_since(e.at) > age)
            {
                self.evict_front();
            }
        }
        self.entries.push_back(entry);
        self.head = position;
    }

    fn evict_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.floor = e.position;
            self.bytes = self.bytes.saturating_sub(e.size());
        }
    }

    /// A break in the sequence at `position`: events up to it cannot be
    /// delivered (they are gone, or cannot be read). Everything retained is
    /// dropped, so a reader behind the break gets a `410` instead of a
    /// silent gap.
    #[cfg(any(feature = "redis", test))]
    pub(crate) fn gap(&mut self, position: u64) {
        let position = position.max(self.head);
        self.entries.clear();
        self.bytes = 0;
        self.head = position;
        self.floor = position;
    }

    /// The position below which events are gone (by count or by age) at
    /// `now`, and the index of the first live entry. Does not mutate: expired
    /// entries are removed on the next append.
    pub(crate) fn live(&self, now: Instant, max_age: Option<Duration>) -> (u64, usize) {
        let expired = match max_age {
            Some(age) => self
                .entries
                .partition_point(|e| now.saturating_duration_since(e.at) > age),
            None => 0,
        };
        let floor = match expired {
            0 => self.floor,
            n => self.entries[n - 1].position,
        };
        (floor, expired)
    }

    /// Index of the first entry after `position`.
    pub(crate) fn index_after(&self, position: u64) -> usize {
        self.entries.partition_point(|e| e.position <= position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_by_bytes_keeps_the_newest() {
        let now = Instant::now();
        let retention = Retention {
            capacity: 100,
            max_age: None,
            max_bytes: Some(10),
        };
        let mut s = State::new(1);
        let json = |n: usize| {
            let at = Cursor {
                epoch: 1,
                position: 1,
            };
            Some(super::super::encoded::from_json(at, &vec![b'1'; n]))
        };
        s.push(Entry::new(1, now, (), json(4)), retention);
        s.push(Entry::new(2, now, (), json(4)), retention);
        assert_eq!((s.entries.len(), s.bytes), (2, 8));
        s.push(Entry::new(3, now, (), json(4)), retention);
        assert_eq!((s.entries.len(), s.bytes, s.floor), (2, 8, 1));
        // One event larger than the limit is still retained, alone.
        s.push(Entry::new(4, now, (), json(50)), retention);
        assert_eq!((s.entries.len(), s.bytes, s.floor), (1, 50, 3));
    }

    const KEEP_3: Retention = Retention {
        capacity: 3,
        max_age: None,
        max_bytes: None,
    };

    #[test]
    fn sparse_positions_evict_and_search() {
        let now = Instant::now();
        let mut s = State::new(1);
        for p in [10, 20, 35, 36, 90] {
            s.push(Entry::new(p, now, p, None), KEEP_3);
        }
        assert_eq!(s.head, 90);
        assert_eq!(s.floor, 20);
        assert_eq!(s.live(now, None), (20, 0));
        assert_eq!(s.index_after(20), 0);
        assert_eq!(s.index_after(21), 0);
        assert_eq!(s.index_after(35), 1);
        assert_eq!(s.index_after(89), 2);
        assert_eq!(s.index_after(90), 3);
    }

    #[test]
    fn a_gap_drops_everything_up_to_it() {
        let now = Instant::now();
        let mut s = State::new(1);
        s.push(Entry::new(5, now, (), None), KEEP_3);
        s.push(Entry::new(7, now, (), None), KEEP_3);
        s.gap(9);
        assert_eq!((s.floor, s.head, s.entries.len()), (9, 9, 0));
        // A gap below the head never moves it back.
        s.push(Entry::new(12, now, (), None), KEEP_3);
        s.gap(3);
        assert_eq!((s.floor, s.head, s.entries.len()), (12, 12, 0));
    }

    #[test]
    fn age_counts_from_the_newest_expired_entry() {
        let t0 = Instant::now();
        let age = Duration::from_secs(10);
        let retention = Retention {
            capacity: 10,
            max_age: Some(age),
            max_bytes: None,
        };
        let mut s = State::new(1);
        s.push(Entry::new(4, t0, (), None), retention);
        s.push(
            Entry::new(8, t0 + Duration::from_secs(5), (), None),
            retention,
        );
        s.push(
            Entry::new(9, t0 + Duration::from_secs(12), (), None),
            retention,
        );
        // The push at t0 + 12 s removed position 4 physically.
        assert_eq!(s.floor, 4);
        assert_eq!(s.live(t0 + Duration::from_secs(16), Some(age)), (8, 1));
    }
}
