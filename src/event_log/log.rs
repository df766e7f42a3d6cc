use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Cursor, CursorGone, GoneReason, StartFrom};

/// One retained event, as read from an [`EventLog`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Event<T> {
    /// The cursor of this event: a client that resumes from it gets the
    /// events after this one.
    #[serde(rename = "id")]
    pub cursor: Cursor,
    /// The event's payload.
    pub data: T,
}

/// The result of a read: events after a cursor, in order, and the cursor to
/// continue from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Batch<T> {
    /// The events, oldest first; at most the log's
    /// [`max_batch`](EventLogBuilder::max_batch).
    pub events: Vec<Event<T>>,
    /// Where to continue: the last event's cursor, or the cursor read from
    /// when there were none.
    pub cursor: Cursor,
}

/// An in-memory, bounded, ordered event log with cursors.
///
/// See the [module docs](crate::event_log). Cloning is cheap (one `Arc`);
/// share it through axum state.
pub struct EventLog<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for EventLog<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for EventLog<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("EventLog")
            .field("epoch", &format_args!("{:016x}", self.inner.epoch))
            .field("capacity", &self.inner.capacity)
            .field("max_age", &self.inner.max_age)
            .field("retained", &state.entries.len())
            .field("head", &state.head)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    epoch: u64,
    capacity: usize,
    max_age: Option<Duration>,
    max_batch: usize,
    start_from: StartFrom,
    state: RwLock<State<T>>,
    /// Woken (all waiters, once) by every publish.
    published: Notify,
}

struct State<T> {
    /// Retained events; the last one has position `head`.
    entries: VecDeque<Entry<T>>,
    /// Position of the newest event ever published (0: none).
    head: u64,
}

struct Entry<T> {
    at: Instant,
    data: T,
}

impl<T> State<T> {
    /// Position of the first retained entry (head + 1 when empty).
    fn first(&self) -> u64 {
        self.head + 1 - self.entries.len() as u64
    }
}

/// Builds an [`EventLog`].
#[derive(Clone, Debug)]
#[must_use]
pub struct EventLogBuilder {
    capacity: usize,
    max_age: Option<Duration>,
    max_batch: usize,
    start_from: StartFrom,
    epoch: Option<u64>,
}

impl Default for EventLogBuilder {
    fn default() -> Self {
        Self {
            capacity: 1024,
            max_age: None,
            max_batch: 100,
            start_from: StartFrom::Now,
            epoch: None,
        }
    }
}

impl EventLogBuilder {
    /// How many events to retain (default 1024). Publishing beyond it
    /// evicts the oldest. A capacity of 0 is taken as 1.
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }

    /// Also evict events older than `age` (default: no age limit).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The most events one read returns (default 100; 0 is taken as 1).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events.max(1);
        self
    }

    /// Where a client that sends no cursor (and no `?from=`) starts
    /// (default [`StartFrom::Now`]).
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.start_from = start;
        self
    }

    /// Uses a fixed epoch instead of a random one. Only for tests and for
    /// logs restored from storage: two logs with the same epoch read each
    /// other's cursors as their own.
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// Creates the log.
    pub fn build<T>(self) -> EventLog<T> {
        EventLog {
            inner: Arc::new(Inner {
                epoch: self.epoch.unwrap_or_else(|| fastrand::u64(..)),
                capacity: self.capacity,
                max_age: self.max_age,
                max_batch: self.max_batch,
                start_from: self.start_from,
                state: RwLock::new(State {
                    entries: VecDeque::new(),
                    head: 0,
                }),
                published: Notify::new(),
            }),
        }
    }
}

impl EventLog<()> {
    /// A builder with the defaults: capacity 1024, no age limit, batches of
    /// at most 100 events, clients without a cursor start from now, a random
    /// epoch. (On `EventLog<()>` so that the event type is chosen by
    /// [`build`](EventLogBuilder::build), as in `EventLog::builder().build::<T>()`.)
    pub fn builder() -> EventLogBuilder {
        EventLogBuilder::default()
    }
}

impl<T> EventLog<T> {
    /// A log that retains `capacity` events, with the other defaults of
    /// [`EventLogBuilder`].
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        EventLog::builder().capacity(capacity).build()
    }

    // A panic while the lock is held cannot leave `State` half-updated
    // (every update is one push/pop and one counter), so a poisoned lock is
    // still safe to use.
    fn state(&self) -> RwLockReadGuard<'_, State<T>> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cursor(&self, position: u64) -> Cursor {
        Cursor {
            epoch: self.inner.epoch,
            position,
        }
    }

    /// Where a client without a cursor starts.
    #[must_use]
    pub fn start_from(&self) -> StartFrom {
        self.inner.start_from
    }

    /// This log's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// How many events are retained now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live(&self.state(), Instant::now()).1
    }

    /// Whether no event is retained.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cursor after the newest event: "from now".
    #[must_use]
    pub fn head(&self) -> Cursor {
        self.cursor(self.state().head)
    }

    /// The cursor before the oldest retained event: "from the oldest".
    #[must_use]
    pub fn oldest(&self) -> Cursor {
        let state = self.state();
        let (first, _) = self.live(&state, Instant::now());
        self.cursor(first - 1)
    }

    /// Appends an event and wakes every waiting reader once. Returns the
    /// event's cursor. Never waits for readers.
    pub fn publish(&self, data: T) -> Cursor {
        let now = Instant::now();
        let position = {
            let mut state = self.state_mut();
            if state.entries.len() >= self.inner.capacity {
                state.entries.pop_front();
            }
            if let Some(age) = self.inner.max_age {
                while state
                    .entries
                    .front()
                    .is_some_and(|e| now.saturating_duration_since(e.at) > age)
                {
                    state.entries.pop_front();
                }
            }
            state.entries.push_back(Entry { at: now, data });
            state.head += 1;
            state.head
        };
        self.inner.published.notify_waiters();
        self.cursor(position)
    }

    /// First live position and live count, honouring `max_age` without
    /// mutating (expired entries are removed on the next publish).
    fn live(&self, state: &State<T>, now: Instant) -> (u64, usize) {
        let expired = match self.inner.max_age {
            Some(age) => state
                .entries
                .partition_point(|e| now.saturating_duration_since(e.at) > age),
            None => 0,
        };
        (
            state.first() + expired as u64,
            state.entries.len() - expired,
        )
    }

    /// Checks that this log can serve reads after `cursor`.
    ///
    /// # Errors
    ///
    /// [`CursorGone`] when the cursor is from another epoch, ahead of the
    /// newest event, or so old that events after it were evicted.
    pub fn check(&self, cursor: Cursor) -> Result<(), CursorGone> {
        let state = self.state();
        self.check_locked(&state, cursor, Instant::now()).map(drop)
    }

    fn check_locked(
        &self,
        state: &State<T>,
        cursor: Cursor,
        now: Instant,
    ) -> Result<u64, CursorGone> {
        let (first, _) = self.live(state, now);
        let reason = if cursor.epoch != self.inner.epoch {
            GoneReason::Epoch
        } else if cursor.position > state.head {
            GoneReason::Ahead
        } else if cursor.position + 1 < first {
            GoneReason::Evicted
        } else {
            return Ok(first);
        };
        Err(CursorGone::new(reason, cursor, self.cursor(first - 1)))
    }
}

impl<T: Clone> EventLog<T> {
    /// Returns the retained events after `cursor` (at most `max_batch`) now,
    /// without waiting; the batch may be empty.
    ///
    /// # Errors
    ///
    /// [`CursorGone`] as for [`check`](Self::check).
    pub fn read(&self, cursor: Cursor) -> Result<Batch<T>, CursorGone> {
        let state = self.state();
        let first = self.check_locked(&state, cursor, Instant::now())?;
        let skip = (cursor.position + 1 - state.first()) as usize;
        let events: Vec<_> = state
            .entries
            .iter()
            .skip(skip)
            .take(self.inner.max_batch)
            .zip(cursor.position + 1..)
            .map(|(entry, position)| Event {
                cursor: self.cursor(position),
                data: entry.data.clone(),
            })
            .collect();
        debug_assert!(cursor.position + 1 >= first);
        let next = events.last().map_or(cursor, |e| e.cursor);
        Ok(Batch {
            events,
            cursor: next,
        })
    }

    /// Returns the events after `cursor` as soon as there is at least one.
    ///
    /// # Errors
    ///
    /// [`CursorGone`] as for [`check`](Self::check), also when the cursor is
    /// evicted while waiting (more than `capacity` events were published
    /// before this reader woke up).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: a read consumes nothing, so dropping this future at any
    /// point loses no event; it holds no lock while pending and leaves
    /// nothing behind.
    pub async fn wait(&self, cursor: Cursor) -> Result<Batch<T>, CursorGone> {
        loop {
            let notified = self.inner.published.notified();
            tokio::pin!(notified);
            // Register before reading, so a publish between the read and the
            // await still wakes us.
            notified.as_mut().enable();
            let batch = self.read(cursor)?;
            if !batch.events.is_empty() {
                return Ok(batch);
            }
            notified.await;
        }
    }
}
