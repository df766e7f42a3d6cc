use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::backend::{Backend, Memory, PublishError};
use super::presence::{Kind, Presence};
use super::state::{Entry, Retention, State};
use super::{Cursor, CursorGone, GoneReason, LogReader, Payload, Resume, StartFrom};

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
#[non_exhaustive]
pub struct Batch<T> {
    /// The events, oldest first; at most the log's
    /// [`max_batch`](EventLogBuilder::max_batch).
    pub events: Vec<Event<T>>,
    /// Where to continue: the last event's cursor, or the cursor read from
    /// when there were none.
    pub cursor: Cursor,
    /// The log is [closed](EventLog::close) and `cursor` is its end: the
    /// reader has every event there will ever be.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// One append to an [`EventLog`]: an event, and/or the close of the log,
/// optionally guarded by the writer's sequence token; all of it in one
/// step (no other append comes between).
///
/// ```
/// # async fn run() -> Result<(), axum_longpoll::event_log::PublishError> {
/// use axum_longpoll::event_log::{Append, EventLog};
///
/// let log = EventLog::<String>::new(16);
/// // The writer numbers its appends: a retry of "0001" is refused.
/// log.append(Append::event("a".to_owned()).seq("0001")).await?;
/// assert!(log.append(Append::event("a".to_owned()).seq("0001")).await.is_err());
/// // The last event and the end, at once.
/// log.append(Append::event("bye".to_owned()).and_close()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Append<T> {
    pub(crate) event: Option<T>,
    pub(crate) close: bool,
    pub(crate) seq: Option<Box<str>>,
    /// Whether the event is serialized at publish for the crate's JSON
    /// answers ([`encoded`](super::encoded)); not for a durable stream's
    /// chunk, which its reads hand out as it is.
    pub(crate) encode: bool,
}

impl<T> Append<T> {
    /// Appends `data`.
    pub fn event(data: T) -> Self {
        Self {
            event: Some(data),
            close: false,
            seq: None,
            encode: true,
        }
    }

    /// Closes the log, appending nothing ([`EventLog::close`]).
    pub fn close() -> Self {
        Self {
            event: None,
            close: true,
            seq: None,
            encode: true,
        }
    }

    /// Also closes the log, right after the event.
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// Guards the append with the writer's sequence token: it is refused
    /// ([`PublishError::OutOfOrder`]) unless `seq` sorts after (byte-wise)
    /// the last token the log accepted. A writer that numbers its appends
    /// (zero-padded) can retry without duplicating one.
    pub fn seq(mut self, seq: impl Into<Box<str>>) -> Self {
        self.seq = Some(seq.into());
        self
    }

    /// Not serialized at publish: for an event that no JSON answer carries
    /// (a durable stream's chunk), made on first use if ever.
    #[cfg(feature = "durable")]
    pub(crate) fn not_encoded(mut self) -> Self {
        self.encode = false;
        self
    }
}

/// A bounded, ordered event log with cursors.
///
/// See the [module docs](crate::event_log). `B` is where the events live:
/// [`Memory`] (the default, this process only) or, with the `redis` feature,
/// `Redis` (a Redis stream shared by many instances). Reads
/// are the same for both: served from memory, synchronous and cheap.
///
/// Cloning is cheap (one `Arc`); share it through axum state. Many logs
/// under names, created on demand and evicted when idle, are a
/// [`Streams`](super::Streams) collection.
pub struct EventLog<T, B = Memory> {
    pub(crate) inner: Arc<Inner<T, B>>,
}

impl<T, B> Clone for EventLog<T, B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, B: fmt::Debug> fmt::Debug for EventLog<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state();
        f.debug_struct("EventLog")
            .field("name", &self.inner.presence.name())
            .field("epoch", &format_args!("{:016x}", state.epoch))
            .field("retained", &state.entries.len())
            .field("head", &state.head)
            .field("closed", &state.closed)
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

/// The settings a log reads, shared by every log of a collection.
#[derive(Debug)]
pub(crate) struct LogConfig {
    pub(crate) retention: Retention,
    pub(crate) max_batch: usize,
    pub(crate) start_from: StartFrom,
    /// Metrics carry the stream's name (feature `metrics`).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) metrics_per_stream: bool,
}

pub(crate) struct Inner<T, B> {
    pub(crate) config: Arc<LogConfig>,
    pub(crate) state: RwLock<State<T>>,
    /// Woken (all waiters, once) whenever events are added, the log is
    /// closed, deleted or reset.
    pub(crate) published: Notify,
    pub(crate) presence: Presence,
    pub(crate) backend: B,
}

impl<T, B> Inner<T, B> {
    pub(crate) fn new(
        config: Arc<LogConfig>,
        state: State<T>,
        presence: Presence,
        backend: B,
    ) -> Self {
        Self {
            config,
            state: RwLock::new(state),
            published: Notify::new(),
            presence,
            backend,
        }
    }

    // A panic while the lock is held cannot leave `State` half-updated
    // (every update keeps its invariant between statements), so a poisoned
    // lock is still safe to use.
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn state_mut(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// For a log whose view may lag behind its source (Redis): woken after each
/// round in which the log caught up with its source; `rounds` counts them.
#[derive(Debug, Default)]
#[allow(unreachable_pub)] // named by the sealed `Backend` supertrait only
pub struct Lag {
    pub(crate) synced: Notify,
    pub(crate) rounds: AtomicU64,
}

/// The top bit of an epoch: set for epochs of the Redis backend, clear for
/// random epochs of the memory backend, so the two never match.
pub(crate) const SHARED_EPOCH_BIT: u64 = 1 << 63;

/// A random epoch for a memory log (top bit clear).
pub(crate) fn memory_epoch() -> u64 {
    fastrand::u64(..) & !SHARED_EPOCH_BIT
}

/// Builds an [`EventLog`] (or, with [`streams`](Self::streams), a
/// collection of them).
#[derive(Clone, Debug)]
#[must_use]
pub struct EventLogBuilder {
    pub(crate) retention: Retention,
    pub(crate) max_batch: usize,
    pub(crate) start_from: StartFrom,
    pub(crate) metrics_per_stream: bool,
    epoch: Option<u64>,
}

impl Default for EventLogBuilder {
    fn default() -> Self {
        Self {
            retention: Retention {
                capacity: 1024,
                max_age: None,
                max_bytes: None,
            },
            max_batch: 100,
            start_from: StartFrom::Now,
            metrics_per_stream: false,
            epoch: None,
        }
    }
}

impl EventLogBuilder {
    /// How many events to retain (default 1024). Publishing beyond it
    /// evicts the oldest. A capacity of 0 is taken as 1.
    pub fn capacity(mut self, events: usize) -> Self {
        self.retention.capacity = events.max(1);
        self
    }

    /// Also evict events older than `age` (default: no age limit).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.retention.max_age = Some(age);
        self
    }

    /// Also evict the oldest events while the retained ones' JSON takes more
    /// than `bytes` (default: no byte limit). The newest event is always
    /// kept, whatever its size. Each event's JSON is then made when it is
    /// published (once: every reader shares it), and an event that does not
    /// serialize is refused ([`PublishError::Encode`]).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.retention.max_bytes = Some(bytes);
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
    /// other's cursors as their own. (Random epochs of in-memory logs have
    /// the top bit clear, those of Redis logs have it set; a fixed epoch is
    /// taken as given. A Redis log ignores it: its epoch lives in Redis.)
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.epoch = Some(epoch);
        self
    }

    pub(crate) fn log_config(&self) -> Arc<LogConfig> {
        Arc::new(LogConfig {
            retention: self.retention,
            max_batch: self.max_batch,
            start_from: self.start_from,
            metrics_per_stream: self.metrics_per_stream,
        })
    }

    /// Creates an in-memory log.
    pub fn build<T>(self) -> EventLog<T> {
        let epoch = self.epoch.unwrap_or_else(memory_epoch);
        EventLog::memory(self.log_config(), epoch, Presence::new(None))
    }
}

impl EventLog<()> {
    /// A builder with the defaults: capacity 1024, no age or byte limit,
    /// batches of at most 100 events, clients without a cursor start from
    /// now, a random epoch. (On `EventLog<()>` so that the event type is
    /// chosen by [`build`](EventLogBuilder::build), as in
    /// `EventLog::builder().build::<T>()`.)
    pub fn builder() -> EventLogBuilder {
        EventLogBuilder::default()
    }
}

impl<T> EventLog<T, Memory> {
    /// An in-memory log that retains `capacity` events, with the other
    /// defaults of [`EventLogBuilder`].
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        EventLog::builder().capacity(capacity).build()
    }

    pub(crate) fn memory(config: Arc<LogConfig>, epoch: u64, presence: Presence) -> Self {
        EventLog {
            inner: Arc::new(Inner::new(config, State::new(epoch), presence, Memory)),
        }
    }

    /// The memory backend's append: under a short write lock, wakes every
    /// waiting reader once. Positions are dense: 1, 2, 3, … With `close`,
    /// the log is closed in the same write, after the event if any; closing
    /// a closed log again appends nothing and answers its end.
    pub(crate) fn push_now(&self, append: Append<T>) -> Result<Cursor, PublishError>
    where
        T: serde::Serialize,
    {
        let Append {
            event: data,
            close,
            seq,
            encode,
        } = append;
        // The event serialized once, here, outside the lock: its buffer
        // (its cursors are written under the lock) is what every reader
        // shares, so no reader serializes, least of all under the read
        // lock that this publish then waits for. A log that retains by
        // bytes must weigh the JSON, so a failure is this publish's error;
        // otherwise the event is published and each reader reports the
        // failure (a `skipped` frame), as before. A durable stream's chunk
        // is not (`Append::not_encoded`): its reads use its bytes.
        let bytes_retention = self.inner.config.retention.max_bytes.is_some();
        let prepared = match &data {
            Some(data) if encode || bytes_retention => match super::encoded::prepare(data) {
                Ok(buf) => Some(buf),
                Err(e) if bytes_retention => {
                    return Err(PublishError::Encode(e));
                }
                Err(_) => None,
            },
            _ => None,
        };
        let cursor = {
            let mut state = self.inner.state_mut();
            let end = Cursor {
                epoch: state.epoch,
                position: state.head,
            };
            if state.deleted {
                return Err(PublishError::Deleted {
                    name: self.inner.presence.name().cloned(),
                });
            }
            if state.closed {
                return match (close, data) {
                    (true, None) => Ok(end),
                    _ => Err(PublishError::Closed {
                        name: self.inner.presence.name().cloned(),
                        end,
                    }),
                };
            }
            if let Some(seq) = seq {
                let last = state.seq.as_deref().map(|last| &**last);
                if last.is_some_and(|last| *seq <= *last) {
                    return Err(PublishError::OutOfOrder {
                        seq: crate::params::echo(&seq),
                        last: crate::params::echo(last.unwrap_or_default()),
                    });
                }
                state.seq = Some(Box::new(seq));
            }
            if let Some(data) = data {
                let position = state.head + 1;
                let at = Cursor {
                    epoch: state.epoch,
                    position,
                };
                let encoded = prepared.map(|buf| super::encoded::finish(buf, at));
                let entry = Entry::new(position, Instant::now(), data, encoded);
                state.push(entry, self.inner.config.retention);
            }
            state.closed = close;
            Cursor {
                epoch: state.epoch,
                position: state.head,
            }
        };
        self.inner.presence.touch();
        self.inner.published.notify_waiters();
        Ok(cursor)
    }
}

impl<T: Payload, B: Backend> EventLog<T, B> {
    /// Appends an event and wakes every waiting reader (on every instance,
    /// for a shared backend). Returns the event's cursor. Never waits for
    /// readers.
    ///
    /// The same call for every backend: on [`Memory`] it is ready at once;
    /// on `Redis` it writes the event to the stream first.
    ///
    /// ```
    /// # async fn run() -> Result<(), axum_longpoll::event_log::PublishError> {
    /// use axum_longpoll::EventLog;
    ///
    /// let log = EventLog::<String>::new(1024);
    /// let cursor = log.publish("hello".to_owned()).await?;
    /// assert_eq!(log.head(), cursor);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Closed`] after [`close`](Self::close) (`409`),
    /// [`PublishError::Deleted`] for a log deleted from its collection; on
    /// `Redis` also when Redis is unreachable (see its cases).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe on [`Memory`] (it completes on its first poll). Not on
    /// `Redis`: dropped after the write was sent, the event may or may not
    /// be in the log.
    pub fn publish(
        &self,
        data: T,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        self.counted(Append::event(data))
    }

    /// Appends with the options of [`Append`]: an event, a close, a
    /// writer's sequence token, or several of them in one step.
    /// [`publish`](Self::publish) and [`close`](Self::close) are the common
    /// cases.
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish), and
    /// [`PublishError::OutOfOrder`] (`409`) for a sequence token that is
    /// not after the last one accepted.
    ///
    /// # Cancellation safety
    ///
    /// As for [`publish`](Self::publish).
    pub fn append(
        &self,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        self.counted(append)
    }

    /// Closes the log: nothing more is appended, ever. With `last`, that
    /// event is appended first, in the same step (no publish can come
    /// between them). Returns the end: the cursor after the last event.
    ///
    /// Readers behind the end still get every event; a reader that reaches
    /// the end learns that the log is finished, which each mode tells in
    /// its own way (see the [module docs](crate::event_log#streams-that-end)).
    /// Closing a closed log again is harmless: it appends nothing and
    /// returns the same end (with `last`, it fails with
    /// [`PublishError::Closed`], since that event cannot be appended).
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish).
    ///
    /// # Cancellation safety
    ///
    /// As for [`publish`](Self::publish).
    pub fn close(
        &self,
        last: Option<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        let append = match last {
            Some(last) => Append::event(last).and_close(),
            None => Append::close(),
        };
        self.counted(append)
    }

    /// The backend's append, counted in metrics (feature `metrics`).
    #[cfg(feature = "metrics")]
    fn counted(
        &self,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        let event = append.event.is_some();
        let appended = B::append(self, append);
        async move {
            let result = appended.await;
            if event && result.is_ok() {
                crate::observe::published(self.metrics_name());
            }
            result
        }
    }

    #[cfg(not(feature = "metrics"))]
    fn counted(
        &self,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        B::append(self, append)
    }
}

/// What a read found.
pub(crate) enum Found<X> {
    Batch(Read<X>),
    /// A cursor ahead of the newest event, on a backend that may lag.
    Ahead,
}

/// A read of up to `max_batch` events after a cursor, each made into an `X`.
pub(crate) struct Read<X> {
    /// Each event's cursor, and the event.
    pub(crate) events: Vec<(Cursor, X)>,
    /// Where to continue: after the last event read, or the cursor read from.
    pub(crate) cursor: Cursor,
    /// Whether the read reached the newest event (fewer than `max_batch`
    /// were there).
    pub(crate) caught_up: bool,
    /// Whether it reached the end of a closed log: nothing will follow.
    pub(crate) closed: bool,
}

impl<X> Read<X> {
    /// Events, or the end of a closed log: a reader is answered at once.
    fn answers(&self) -> bool {
        !self.events.is_empty() || self.closed
    }
}

/// Makes one retained entry into what a reader hands on.
pub(crate) type Make<T, X> = fn(&Entry<T>, Cursor) -> X;

impl<T, B: Backend> EventLog<T, B> {
    /// Where a client without a cursor starts.
    pub(crate) fn start_from(&self) -> StartFrom {
        self.inner.config.start_from
    }

    /// This log's epoch (for a Redis log: the one in force now; it changes
    /// when the stream was lost).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.inner.state().epoch
    }

    /// How many events are retained now (for a Redis log: in this process's
    /// mirror of the stream).
    #[must_use]
    pub fn len(&self) -> usize {
        let state = self.inner.state();
        state.entries.len()
            - state
                .live(Instant::now(), self.inner.config.retention.max_age)
                .1
    }

    /// Whether no event is retained.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cursor after the newest event: "from now".
    #[must_use]
    pub fn head(&self) -> Cursor {
        let state = self.inner.state();
        Cursor {
            epoch: state.epoch,
            position: state.head,
        }
    }

    /// The cursor before the oldest retained event: "from the oldest".
    #[must_use]
    pub fn oldest(&self) -> Cursor {
        let state = self.inner.state();
        let (floor, _) = state.live(Instant::now(), self.inner.config.retention.max_age);
        Cursor {
            epoch: state.epoch,
            position: floor,
        }
    }

    /// The backend (for a Redis log: its connection state and key).
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// Checks that this log can serve reads after `cursor`.
    ///
    /// On a Redis log a cursor ahead of this process's mirror passes: it
    /// may come from another instance that saw the stream a moment earlier.
    /// [`wait`](Self::wait) decides (`410` `ahead` once the mirror has caught
    /// up with Redis twice and the cursor is still ahead).
    ///
    /// # Errors
    ///
    /// [`CursorGone`] when the cursor is from another epoch, ahead of the
    /// newest event, or so old that events after it were evicted.
    pub fn check(&self, cursor: Cursor) -> Result<(), CursorGone> {
        let state = self.inner.state();
        self.check_locked(&state, cursor, Instant::now()).map(drop)
    }

    /// The index of the first entry after `cursor`, or `None` for a cursor
    /// ahead of a lagging log.
    fn check_locked(
        &self,
        state: &State<T>,
        cursor: Cursor,
        now: Instant,
    ) -> Result<Option<usize>, CursorGone> {
        let (floor, _) = state.live(now, self.inner.config.retention.max_age);
        let reason = if state.deleted {
            GoneReason::Deleted
        } else if cursor.epoch != state.epoch {
            GoneReason::Epoch
        } else if cursor.position > state.head {
            if B::LAGS {
                return Ok(None);
            }
            GoneReason::Ahead
        } else if cursor.position < floor {
            GoneReason::Evicted
        } else {
            return Ok(Some(state.index_after(cursor.position)));
        };
        let restart = Cursor {
            epoch: state.epoch,
            position: floor,
        };
        Err(CursorGone::new(reason, cursor, restart))
    }

    pub(crate) fn ahead_gone(&self, cursor: Cursor) -> CursorGone {
        CursorGone::new(GoneReason::Ahead, cursor, self.oldest())
    }

    /// The events after `cursor` now (at most `max_batch`), each made into
    /// an `X` under the read lock.
    pub(crate) fn find<X>(&self, cursor: Cursor, make: Make<T, X>) -> Result<Found<X>, CursorGone> {
        let state = self.inner.state();
        let Some(skip) = self.check_locked(&state, cursor, Instant::now())? else {
            return Ok(Found::Ahead);
        };
        let max = self.inner.config.max_batch;
        let events: Vec<(Cursor, X)> = state
            .entries
            .iter()
            .skip(skip)
            .take(max)
            .map(|entry| {
                let at = Cursor {
                    epoch: state.epoch,
                    position: entry.position,
                };
                (at, make(entry, at))
            })
            .collect();
        let next = events.last().map_or(cursor, |(at, _)| *at);
        Ok(Found::Batch(Read {
            caught_up: events.len() < max,
            closed: state.closed && next.position == state.head,
            cursor: next,
            events,
        }))
    }

    /// The stream's name for metrics, when its collection asked for it
    /// ([`StreamsBuilder::metrics_per_stream`](super::StreamsBuilder::metrics_per_stream)).
    #[cfg(feature = "metrics")]
    fn metrics_name(&self) -> Option<&str> {
        if self.inner.config.metrics_per_stream {
            self.inner.presence.name().map(|name| &**name)
        } else {
            None
        }
    }

    /// A waiting reader was woken by events: the time since the newest of
    /// them came (published here, or on Redis received by this instance).
    #[inline]
    fn woken(&self) {
        #[cfg(feature = "metrics")]
        {
            let at = self.inner.state().entries.back().map(|entry| entry.at);
            if let Some(at) = at {
                crate::observe::woken(self.metrics_name(), at.elapsed());
            }
        }
    }

    /// What a reader at `cursor` is answered at once, if anything: the
    /// events already there (most polls of a busy log), found without
    /// registering a wait, which takes the `Notify`'s lock twice.
    fn answer_now<X>(
        &self,
        cursor: Cursor,
        make: Make<T, X>,
    ) -> Result<Option<Read<X>>, CursorGone> {
        Ok(match self.find(cursor, make)? {
            Found::Batch(read) if read.answers() => Some(read),
            Found::Batch(_) | Found::Ahead => None,
        })
    }

    /// [`wait`](Self::wait), with each event made into an `X`.
    pub(crate) async fn wait_with<X>(
        &self,
        cursor: Cursor,
        make: Make<T, X>,
    ) -> Result<Read<X>, CursorGone> {
        if B::LAGS {
            // Boxed: its extra state would otherwise be in every parked
            // long-poll's future, also for logs that never lag.
            return Box::pin(self.wait_lagging(cursor, make)).await;
        }
        if let Some(read) = self.answer_now(cursor, make)? {
            return Ok(read);
        }
        let mut waited = false;
        loop {
            let published = self.inner.published.notified();
            tokio::pin!(published);
            // Register before reading, so a publish between the read and the
            // await still wakes us.
            published.as_mut().enable();
            match self.find(cursor, make)? {
                // Events, or the end of a closed log: answered at once.
                Found::Batch(read) if read.answers() => {
                    if waited {
                        self.woken();
                    }
                    return Ok(read);
                }
                // A log that does not lag knows every event: a cursor ahead
                // of it was refused by `find`.
                Found::Batch(_) | Found::Ahead => {
                    waited = true;
                    published.await;
                }
            }
        }
    }

    /// [`wait_with`](Self::wait_with) for a log whose view may lag behind
    /// the events already published (Redis): a cursor ahead of it is waited
    /// for.
    async fn wait_lagging<X>(
        &self,
        cursor: Cursor,
        make: Make<T, X>,
    ) -> Result<Read<X>, CursorGone> {
        let Some(lag) = super::backend::sealed::Sealed::lag(&self.inner.backend) else {
            unreachable!("a backend that lags has a `Lag`")
        };
        super::backend::sealed::Sealed::waiting(&self.inner.backend);
        // For a cursor ahead of a lagging log: the count of caught-up rounds
        // when it was first seen ahead.
        let mut ahead_since = None;
        if let Some(read) = self.answer_now(cursor, make)? {
            return Ok(read);
        }
        let mut waited = false;
        loop {
            let published = self.inner.published.notified();
            let synced = lag.synced.notified();
            tokio::pin!(published, synced);
            // Register before reading, so a publish between the read and the
            // await still wakes us.
            published.as_mut().enable();
            synced.as_mut().enable();
            // Loaded before the read: the state read includes every round
            // counted here.
            let rounds = lag.rounds.load(Ordering::Acquire);
            match self.find(cursor, make)? {
                Found::Batch(read) if read.answers() => {
                    if waited {
                        self.woken();
                    }
                    return Ok(read);
                }
                Found::Batch(_) => {
                    ahead_since = None;
                    waited = true;
                    published.await;
                }
                Found::Ahead => {
                    // Two rounds completed after this cursor was first seen:
                    // the second read the stream after the request arrived, so
                    // an event at this cursor would be here by now.
                    let since = *ahead_since.get_or_insert(rounds);
                    if rounds >= since + 2 {
                        return Err(self.ahead_gone(cursor));
                    }
                    waited = true;
                    tokio::select! {
                        () = published => {},
                        () = synced => {},
                    }
                }
            }
        }
    }

    /// The client's position (from [`Resume`]) in this log, ready for a mode
    /// to serve: [`LongPoll::serve`](crate::LongPoll::serve),
    /// [`Streaming::ndjson`](crate::Streaming::ndjson) /
    /// [`sse`](crate::Streaming::sse), and the `ws` mode's
    /// `LiveSocket::serve` all take it, and each answers a position the log
    /// cannot serve in its own way.
    #[must_use]
    pub fn reader(&self, resume: Resume) -> LogReader<T, B> {
        self.inner.presence.touch();
        let start = resume.start(self);
        let finished = start.as_ref().is_ok_and(|cursor| {
            let state = self.inner.state();
            state.closed
                && *cursor
                    == Cursor {
                        epoch: state.epoch,
                        position: state.head,
                    }
        });
        LogReader {
            start,
            log: self.clone(),
            finished,
        }
    }

    /// Whether the log is [closed](Self::close).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.state().closed
    }

    /// The attribute `key` the stream was [created](super::Streams::create)
    /// with ([`StreamOptions::attribute`](super::StreamOptions::attribute)),
    /// if any. A log outside a collection has none.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.inner.presence.attribute(key)
    }

    /// The log's figures now: retained events and bytes, head, readers and
    /// waiters, when it was last used, whether it is closed.
    #[must_use]
    pub fn figures(&self) -> Figures {
        let (readers, waiters) = self.inner.presence.counts();
        let state = self.inner.state();
        let (floor, expired) = state.live(Instant::now(), self.inner.config.retention.max_age);
        let touched = super::presence::instant(self.inner.presence.touched());
        Figures {
            retained: state.entries.len() - expired,
            bytes: state.bytes,
            oldest: Cursor {
                epoch: state.epoch,
                position: floor,
            },
            head: Cursor {
                epoch: state.epoch,
                position: state.head,
            },
            readers,
            waiters,
            idle_for: Instant::now().saturating_duration_since(touched),
            closed: state.closed,
        }
    }

    /// Counts a parked long-poll as a waiter for as long as the mark lives.
    pub(crate) fn waiter(&self) -> Mark<'_, T, B> {
        self.inner.presence.enter(Kind::Waiter);
        Mark {
            log: self,
            kind: Kind::Waiter,
        }
    }
}

/// A reader or waiter counted on a log while it lives.
pub(crate) struct Mark<'a, T, B> {
    log: &'a EventLog<T, B>,
    kind: Kind,
}

impl<T, B> Drop for Mark<'_, T, B> {
    fn drop(&mut self) {
        self.log.inner.presence.leave(self.kind);
    }
}

/// A log's figures at one moment ([`EventLog::figures`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Figures {
    /// Events retained now.
    pub retained: usize,
    /// Bytes of their JSON (counted when the log retains by bytes; else 0).
    pub bytes: usize,
    /// Before the oldest retained event.
    pub oldest: Cursor,
    /// After the newest event (the end, once closed).
    pub head: Cursor,
    /// Streams and WebSockets reading the log now.
    pub readers: usize,
    /// Long-polls parked on it now.
    pub waiters: usize,
    /// Since the last publish, read request, or the last reader leaving.
    pub idle_for: Duration,
    /// Whether it is closed.
    pub closed: bool,
}

/// An event as [`read`](EventLog::read) hands it out: its data cloned.
fn cloned<T: Clone>(entry: &Entry<T>, cursor: Cursor) -> Event<T> {
    Event {
        cursor,
        data: entry.data.clone(),
    }
}

impl<T: Clone, B: Backend> EventLog<T, B> {
    /// Returns the retained events after `cursor` (at most `max_batch`) now,
    /// without waiting; the batch may be empty.
    ///
    /// # Errors
    ///
    /// [`CursorGone`] as for [`check`](Self::check).
    pub fn read(&self, cursor: Cursor) -> Result<Batch<T>, CursorGone> {
        Ok(match self.find(cursor, cloned)? {
            Found::Batch(read) => Batch {
                events: read.events.into_iter().map(|(_, e)| e).collect(),
                cursor: read.cursor,
                closed: read.closed,
            },
            Found::Ahead => Batch {
                events: Vec::new(),
                cursor,
                closed: false,
            },
        })
    }

    /// Returns the events after `cursor` as soon as there is at least one,
    /// or at once with none when `cursor` is the end of a closed log
    /// ([`Batch::closed`]). Counted as a waiter while it waits.
    ///
    /// # Errors
    ///
    /// [`CursorGone`] as for [`check`](Self::check), also when the cursor is
    /// evicted while waiting (more than `capacity` events were published
    /// before this reader woke up), or the log's epoch changes.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: a read consumes nothing, so dropping this future at any
    /// point loses no event; it holds no lock while pending and leaves
    /// nothing behind.
    pub async fn wait(&self, cursor: Cursor) -> Result<Batch<T>, CursorGone> {
        let _waiter = self.waiter();
        let read = self.wait_with(cursor, cloned).await?;
        Ok(Batch {
            events: read.events.into_iter().map(|(_, e)| e).collect(),
            cursor: read.cursor,
            closed: read.closed,
        })
    }
}
