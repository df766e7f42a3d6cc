//! Many named logs: created on demand, capped, evicted when idle or
//! expired, by one janitor task per collection.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::backend::sealed::Open;
use super::log::{memory_epoch, LogConfig};
use super::presence::{millis, Attributes, Janitor, JanitorLink, Member, Presence};
use super::{Backend, EventLog, EventLogBuilder, Figures, Memory, Payload};
use crate::response::{rejection, Overloaded, Reject};

/// The longest stream name.
pub const MAX_NAME: usize = 128;

/// Many named [`EventLog`]s: a log per chat room, per user, per document,
/// per answer. See the [module docs](crate::event_log#many-streams).
///
/// - [`get_or_create`](Self::get_or_create) finds a stream by name or
///   creates it (on a publish or a read); [`create`](Self::create) and
///   [`delete`](Self::delete) do it explicitly; [`find`](Self::find) finds
///   one without creating it. All four are `async` and the same calls on
///   every backend, so a handler generic over `B: Backend` serves either.
/// - At most [`max_streams`](StreamsBuilder::max_streams) live at once;
///   beyond it a new name is refused ([`StreamsError::Full`]: `503` +
///   `Retry-After`).
/// - Each stream retains by count, age and bytes as the
///   [`EventLogBuilder`] says, and can end ([`EventLog::close`]).
/// - A stream nobody reads or waits on and nobody published to for
///   [`idle`](StreamsBuilder::idle) is evicted; one with a
///   [TTL or an expiry](StreamOptions) goes when it runs out. No task per
///   stream: one janitor per collection sleeps until the next deadline.
/// - A deleted or evicted name can be used again: it is a new stream, with
///   a new epoch, so the old stream's cursors are refused (`410` `epoch`,
///   "from another stream or an earlier run").
/// - On Redis (`StreamsBuilder::redis`, feature `redis`) the streams are
///   shared by every instance on the same prefix: `get_or_create` and
///   `find` load one into this instance's mirror (or bring the mirror up to
///   date with Redis, one round trip), and `create` of a stream that any
///   instance created is [`StreamsError::Exists`]; `max_streams` and `idle` eviction apply to
///   the mirrors of this instance (an evicted mirror is loaded again, same
///   epoch, while the stream lives in Redis), and idle, TTL, expiry and
///   `delete` count in Redis, for every instance (see
///   [the Redis backend](crate::event_log#the-redis-backend)).
///
/// Cloning is cheap (one `Arc`).
pub struct Streams<T, B: Backend = Memory> {
    inner: Arc<Registry<T, B>>,
}

impl<T, B: Backend> Clone for Streams<T, B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, B: Backend> fmt::Debug for Streams<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streams")
            .field("live", &self.len())
            .field("max_streams", &self.inner.settings.max_streams)
            .field("idle", &self.inner.settings.idle)
            .finish_non_exhaustive()
    }
}

/// What a collection is set up with.
#[derive(Clone, Copy, Debug)]
struct Settings {
    max_streams: usize,
    idle: Option<Duration>,
    retry_after: Duration,
}

/// The janitor's plan: (due in [`millis`], stream), earliest first.
type Queue = BinaryHeap<Reverse<(u64, Arc<str>)>>;

struct Registry<T, B: Backend> {
    logs: RwLock<HashMap<Arc<str>, EventLog<T, B>>>,
    config: Arc<LogConfig>,
    settings: Settings,
    /// When each planned stream is next to be looked at, earliest first;
    /// at most one entry per stream (its member's `queued` flag).
    queue: Mutex<Queue>,
    /// Wakes the janitor: an earlier deadline, or the collection is gone.
    wake: Arc<Notify>,
    janitor: AtomicBool,
    /// How its streams reach it (made with the first member).
    link: OnceLock<JanitorLink>,
    /// What the backend shares between the streams (Redis: the hub).
    hub: B::Hub,
}

impl<T, B: Backend> Drop for Registry<T, B> {
    fn drop(&mut self) {
        // The janitor holds only a weak handle: let it see that.
        self.wake.notify_one();
    }
}

/// Builds a [`Streams`] collection: made by [`EventLogBuilder::streams`],
/// whose retention, batch and start settings every stream gets.
#[derive(Clone, Debug)]
#[must_use]
pub struct StreamsBuilder {
    pub(crate) log: EventLogBuilder,
    settings: Settings,
}

impl EventLogBuilder {
    /// A collection of named logs, each with this builder's settings
    /// (capacity, age, bytes, batch, start). See [`Streams`].
    pub fn streams(self) -> StreamsBuilder {
        StreamsBuilder {
            log: self,
            settings: Settings {
                max_streams: 10_000,
                idle: Some(Duration::from_secs(300)),
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

impl StreamsBuilder {
    /// At most this many streams at once (default 10,000); creating one
    /// more is refused with [`StreamsError::Full`] (`503` + `Retry-After`).
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.settings.max_streams = streams;
        self
    }

    /// Metrics (feature `metrics`) of these streams' publishes and wake-ups
    /// carry a `stream` label with the stream's name (default: off). Each
    /// name is then a series of its own in the metrics backend: turn it on
    /// for a bounded set of streams (rooms of a known list), not for one
    /// stream per user or per request.
    pub fn metrics_per_stream(mut self, on: bool) -> Self {
        self.log.metrics_per_stream = on;
        self
    }

    /// Evict a stream when nobody has read, waited on or published to it
    /// for this long (default 5 minutes; `None`: never). A stream is never
    /// evicted while a stream or a WebSocket reads it or a long-poll waits
    /// on it; each read request and each publish starts the time again.
    pub fn idle(mut self, idle: Option<Duration>) -> Self {
        self.settings.idle = idle;
        self
    }

    /// The `Retry-After` of [`StreamsError::Full`] (default 1 s).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.settings.retry_after = after;
        self
    }

    /// A collection of in-memory streams.
    pub fn build<T>(self) -> Streams<T> {
        self.with_hub(())
    }

    /// How long a stream may stay unused before it is evicted, if ever.
    #[cfg(feature = "redis")]
    pub(crate) fn idle_setting(&self) -> Option<Duration> {
        self.settings.idle
    }

    /// The collection, with what its backend shares between the streams.
    pub(crate) fn with_hub<T, B: Backend>(self, hub: B::Hub) -> Streams<T, B> {
        Streams {
            inner: Arc::new(Registry {
                logs: RwLock::default(),
                config: self.log.log_config(),
                settings: self.settings,
                queue: Mutex::default(),
                wake: Arc::default(),
                janitor: AtomicBool::new(false),
                link: OnceLock::new(),
                hub,
            }),
        }
    }
}

/// Settings of one stream, given when it is [created](Streams::create).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct StreamOptions {
    ttl: Option<Duration>,
    expires_at: Option<SystemTime>,
    attributes: Vec<(Box<str>, Box<str>)>,
}

impl StreamOptions {
    /// No TTL, no expiry (the defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Delete the stream once it was not used for this long: a sliding
    /// time, started again by every publish and read request (whether or
    /// not someone is still reading), counted in whole seconds. Unlike
    /// [`idle`](StreamsBuilder::idle) it applies with readers too.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Delete the stream at this time, whatever happens on it.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Keeps `value` with the stream under `key`, for as long as the
    /// stream lives (a media type, a protocol's settings): read back with
    /// [`EventLog::attribute`]. Kept where the stream is (in Redis for a
    /// Redis stream, so every instance sees it). Setting a key again
    /// replaces its value.
    pub fn attribute(mut self, key: impl Into<Box<str>>, value: impl Into<Box<str>>) -> Self {
        let key = key.into();
        self.attributes.retain(|(k, _)| *k != key);
        self.attributes.push((key, value.into()));
        self
    }

    #[cfg(feature = "redis")]
    pub(crate) fn ttl_setting(&self) -> Option<Duration> {
        self.ttl
    }

    #[cfg(feature = "redis")]
    pub(crate) fn expires_at_setting(&self) -> Option<SystemTime> {
        self.expires_at
    }

    #[cfg(feature = "redis")]
    pub(crate) fn attributes(&self) -> &[(Box<str>, Box<str>)] {
        &self.attributes
    }
}

/// Why a [`Streams`] call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamsError {
    /// The name is not 1 to 128 characters of `A–Z a–z 0–9 . _ ~ -` (`400`).
    InvalidName {
        /// At most 64 characters of it.
        value: String,
    },
    /// [`max_streams`](StreamsBuilder::max_streams) streams live already
    /// (`503` + `Retry-After`).
    Full(Overloaded),
    /// [`create`](Streams::create) of a name that exists (`409`).
    Exists {
        /// The name.
        name: Arc<str>,
    },
    /// The backend cannot be reached (Redis): `503` + `Retry-After`.
    Unavailable {
        /// The `Retry-After` sent.
        retry_after: Duration,
        /// What failed.
        reason: String,
    },
}

impl Reject for StreamsError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidName { .. } => StatusCode::BAD_REQUEST,
            Self::Full(full) => full.status(),
            Self::Exists { .. } => StatusCode::CONFLICT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { value } => write!(
                f,
                "invalid stream `name`: {value:?}; allowed: 1 to {MAX_NAME} characters of \
                 `A-Z a-z 0-9 . _ ~ -`"
            ),
            Self::Full(full) => write!(f, "{full}"),
            Self::Exists { name } => write!(f, "stream {name:?} exists already"),
            Self::Unavailable { reason, .. } => write!(
                f,
                "the streams' backend is unavailable ({reason}); retry after the time in \
                 `Retry-After`"
            ),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Full(full) => Some(full.retry_after),
            Self::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

rejection!(StreamsError);

/// Checks a stream name: 1 to 128 characters of `A–Z a–z 0–9 . _ ~ -` (the
/// characters a URL path segment carries unescaped).
///
/// # Errors
///
/// [`StreamsError::InvalidName`] naming the value.
pub fn check_name(name: &str) -> Result<(), StreamsError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-');
    if name.is_empty() || name.len() > MAX_NAME || !name.bytes().all(allowed) {
        return Err(StreamsError::InvalidName {
            value: crate::params::echo(name),
        });
    }
    Ok(())
}

/// A stream's own deadlines, kept in its presence (no allocation).
pub(crate) struct Expiry {
    /// Sliding TTL in seconds (0: none).
    ttl_secs: u32,
    /// [`millis`] of the absolute expiry (0: none).
    expires_ms: u64,
    /// Whether the stream has an entry in the janitor's queue.
    queued: AtomicBool,
}

impl Expiry {
    pub(crate) fn new(options: &StreamOptions) -> Self {
        let ttl_secs = options.ttl.map_or(0, |ttl| {
            u32::try_from(ttl.as_secs().max(1)).unwrap_or(u32::MAX)
        });
        let expires_ms = options.expires_at.map_or(0, |at| {
            let now = Instant::now();
            let at = match at.duration_since(SystemTime::now()) {
                Ok(ahead) => crate::deadline::after(now, ahead),
                Err(_) => now,
            };
            millis(at).max(1)
        });
        Self {
            ttl_secs,
            expires_ms,
            queued: AtomicBool::new(false),
        }
    }
}

impl<T, B: Backend> Registry<T, B> {
    /// When `log` is next due for a look, if ever.
    fn due(&self, log: &EventLog<T, B>, expiry: &Expiry) -> Option<u64> {
        let presence = &log.inner.presence;
        let touched = presence.touched();
        let idle = self
            .settings
            .idle
            .filter(|_| presence.is_vacant())
            .map(|idle| touched.saturating_add(duration_ms(idle)));
        let ttl = (expiry.ttl_secs > 0)
            .then(|| touched.saturating_add(u64::from(expiry.ttl_secs) * 1000));
        let at = (expiry.expires_ms > 0).then_some(expiry.expires_ms);
        [idle, ttl, at].into_iter().flatten().min()
    }

    /// Plans a look at `name` (unless one is planned already).
    fn plan(&self, name: &Arc<str>, log: &EventLog<T, B>) {
        let Some(expiry) = log.inner.presence.expiry() else {
            return;
        };
        let Some(due) = self.due(log, expiry) else {
            return;
        };
        if expiry.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut queue = self.queue();
        let earliest = queue.peek().is_none_or(|Reverse((first, _))| due < *first);
        queue.push(Reverse((due, Arc::clone(name))));
        drop(queue);
        if earliest {
            self.wake.notify_one();
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn logs(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, EventLog<T, B>>> {
        self.logs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn logs_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, EventLog<T, B>>> {
        self.logs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks at a stream whose time came: removes it if it is expired or
    /// idle, else plans the next look.
    fn look(&self, name: &Arc<str>) {
        let Some(log) = self.logs().get(name).cloned() else {
            return;
        };
        let Some(expiry) = log.inner.presence.expiry() else {
            return;
        };
        expiry.queued.store(false, Ordering::Release);
        let now = millis(Instant::now());
        match self.due(&log, expiry) {
            Some(due) if due <= now => {
                // Decided again under the write lock: a reader may have come.
                let mut logs = self.logs_mut();
                if self.due(&log, expiry).is_some_and(|due| due <= now)
                    && logs
                        .get(name)
                        .is_some_and(|l| Arc::ptr_eq(&l.inner, &log.inner))
                {
                    logs.remove(name);
                    drop(logs);
                    log.retire();
                } else {
                    drop(logs);
                    self.plan(name, &log);
                }
            }
            Some(_) => self.plan(name, &log),
            None => {}
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<T: Send + Sync + 'static, B: Backend> Janitor for Registry<T, B> {
    fn idle(&self, name: &Arc<str>) {
        let log = self.logs().get(name).cloned();
        if let Some(log) = log {
            self.plan(name, &log);
        }
    }

    fn forget(&self, name: &Arc<str>, log: *const ()) {
        let mut logs = self.logs_mut();
        if logs
            .get(name)
            .is_some_and(|l| Arc::as_ptr(&l.inner).cast::<()>() == log)
        {
            logs.remove(name);
        }
    }
}

/// The one task of a collection: sleeps until the earliest planned look,
/// then looks. Ends when the collection is dropped.
async fn janitor<T: Send + Sync + 'static, B: Backend>(
    registry: Weak<Registry<T, B>>,
    wake: Arc<Notify>,
) {
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let next = registry.queue().peek().map(|Reverse((due, _))| *due);
        let now = millis(Instant::now());
        match next {
            Some(due) if due <= now => {
                let popped = registry.queue().pop();
                if let Some(Reverse((_, name))) = popped {
                    registry.look(&name);
                }
                // Yield between looks: a burst of expiries does not hold
                // the runtime.
                drop(registry);
                tokio::task::yield_now().await;
            }
            Some(due) => {
                drop(registry);
                let at = super::presence::instant(due);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut woken => {}
                }
            }
            None => {
                drop(registry);
                woken.await;
            }
        }
    }
}

impl<T, B: Backend> Streams<T, B> {
    /// The stream of this name if this instance holds it, without counting
    /// as a use of it.
    pub(crate) fn peek_here(&self, name: &str) -> Option<EventLog<T, B>> {
        self.inner.logs().get(name).cloned()
    }

    /// The stream of this name if this instance holds it now (it is not
    /// created, nor loaded: on Redis a stream that only another instance
    /// used is not found here, see [`find`](Self::find)). Counts as a use
    /// of it here (not in Redis).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<EventLog<T, B>> {
        let log = self.inner.logs().get(name).cloned()?;
        log.inner.presence.touch();
        Some(log)
    }

    /// Deletes the stream of this name. Its readers and waiters are told
    /// at once (`410`, reason `deleted`, in each mode's way); a publish on a
    /// handle to it fails ([`PublishError::Deleted`](super::PublishError::Deleted)).
    /// The name can be used again, for a new stream with a new epoch.
    /// Returns whether it lived.
    ///
    /// `async` as on every backend: on Redis it deletes the stream's keys
    /// first, so that it is gone for every instance (whose readers are told
    /// as well); on memory it is ready at once and never fails.
    ///
    /// # Errors
    ///
    /// On Redis, [`StreamsError::Unavailable`] (`503` + `Retry-After`) when
    /// Redis cannot be reached: nothing was deleted here, and the stream may
    /// or may not be gone in Redis (retry).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe on memory. On Redis, dropped after the command was sent,
    /// the stream may be deleted in Redis and still live here until Redis
    /// tells this instance's reader (at once, by an entry in the stream).
    pub async fn delete(&self, name: &str) -> Result<bool, StreamsError> {
        let existed = B::delete(&self.inner.hub, name).await?;
        let removed = self.inner.logs_mut().remove(name);
        if let Some(log) = &removed {
            log.retire();
        }
        Ok(existed || removed.is_some())
    }

    /// How many streams live now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.logs().len()
    }

    /// Whether none does.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The figures of the stream of this name, if it lives (looking does
    /// not count as using it).
    #[must_use]
    pub fn figures(&self, name: &str) -> Option<Figures> {
        self.inner.logs().get(name).map(EventLog::figures)
    }
}

impl<T: Send + Sync + 'static, B: Backend> Streams<T, B> {
    /// The refusal when `max_streams` live already.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // for loading backends
    pub(crate) fn full(&self) -> Option<StreamsError> {
        let settings = self.inner.settings;
        (self.len() >= settings.max_streams).then(|| full(settings))
    }

    /// The settings every stream's log reads.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // for loading backends
    pub(crate) fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.inner.config)
    }

    /// What the backend shares between the streams.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // for loading backends
    pub(crate) fn hub(&self) -> &B::Hub {
        &self.inner.hub
    }

    /// The place of a new stream `name` in this collection: its own TTL and
    /// expiry as `options` says (a backend that counts them itself gives
    /// none), and its attributes.
    pub(crate) fn member(
        &self,
        name: &Arc<str>,
        options: &StreamOptions,
        attributes: Attributes,
    ) -> Member {
        let janitor = self
            .inner
            .link
            .get_or_init(|| Arc::new(Arc::downgrade(&self.inner) as Weak<dyn Janitor>));
        Member {
            name: Arc::clone(name),
            janitor: Arc::clone(janitor),
            expiry: Expiry::new(options),
            attributes,
        }
    }

    /// Adds a log made outside the lock (loaded from the backend): returns
    /// the one that lives under `name` if another came first, unless
    /// `replace` (then that one is retired).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // for loading backends
    pub(crate) fn adopt(
        &self,
        name: &Arc<str>,
        log: EventLog<T, B>,
        replace: bool,
    ) -> Result<EventLog<T, B>, StreamsError> {
        self.start_janitor();
        let registry = &self.inner;
        let mut logs = registry.logs_mut();
        if let Some(live) = logs.get(name) {
            if !replace {
                live.inner.presence.touch();
                return Ok(live.clone());
            }
            let old = logs.remove(name);
            if let Some(old) = old {
                old.retire();
            }
        } else if logs.len() >= registry.settings.max_streams {
            return Err(full(registry.settings));
        }
        logs.insert(Arc::clone(name), log.clone());
        drop(logs);
        registry.plan(name, &log);
        Ok(log)
    }

    fn start_janitor(&self) {
        let registry = &self.inner;
        if registry.janitor.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(janitor(
            Arc::downgrade(registry),
            Arc::clone(&registry.wake),
        ));
    }
}

fn full(settings: Settings) -> StreamsError {
    StreamsError::Full(Overloaded {
        what: "streams live",
        setting: "StreamsBuilder::max_streams",
        limit: settings.max_streams,
        retry_after: settings.retry_after,
    })
}

impl<T: Payload, B: Backend> Streams<T, B> {
    /// What `open` answers for a stream that it was to create (a backend
    /// answers `None` only for a stream deleted meanwhile).
    fn created(
        &self,
        log: Option<EventLog<T, B>>,
        name: &str,
    ) -> Result<EventLog<T, B>, StreamsError> {
        log.ok_or_else(|| StreamsError::Unavailable {
            retry_after: self.inner.settings.retry_after,
            reason: format!("stream {name:?} was deleted while it was being opened; retry"),
        })
    }

    /// The stream of this name, created (empty, open) if it does not live.
    /// Counts as a use of it (idle and TTL start again).
    ///
    /// The same call on every backend: on memory it is ready at once; on
    /// Redis it finds the stream this instance mirrors (brought up to date
    /// with Redis: one round trip), or loads it from Redis, or creates it
    /// there (see `Streams<T, Redis>`).
    ///
    /// # Errors
    ///
    /// [`StreamsError::InvalidName`] (`400`), [`StreamsError::Full`]
    /// (`503` + `Retry-After`); on Redis [`StreamsError::Unavailable`]
    /// (`503` + `Retry-After`).
    pub async fn get_or_create(&self, name: &str) -> Result<EventLog<T, B>, StreamsError> {
        check_name(name)?;
        let log = B::open(self, name, &StreamOptions::new(), Open::OrCreate).await?;
        self.created(log, name)
    }

    /// Creates the stream `name` with `options`.
    ///
    /// # Errors
    ///
    /// [`StreamsError::Exists`] (`409`) when it lives already (on Redis:
    /// in Redis, created by any instance), and those of
    /// [`get_or_create`](Self::get_or_create).
    pub async fn create(
        &self,
        name: &str,
        options: StreamOptions,
    ) -> Result<EventLog<T, B>, StreamsError> {
        check_name(name)?;
        let log = B::open(self, name, &options, Open::Create).await?;
        self.created(log, name)
    }

    /// The stream of this name if it lives, wherever it was created (on
    /// Redis: by any instance; it is loaded into this instance's mirror),
    /// not created otherwise. Counts as a use of it (idle and TTL start
    /// again). [`get`](Self::get) is the same without the backend: on
    /// memory the two agree.
    ///
    /// # Errors
    ///
    /// [`StreamsError::InvalidName`] (`400`); on Redis
    /// [`StreamsError::Full`] (`503` + `Retry-After`: this instance mirrors
    /// `max_streams` streams already) and [`StreamsError::Unavailable`]
    /// (`503` + `Retry-After`).
    pub async fn find(&self, name: &str) -> Result<Option<EventLog<T, B>>, StreamsError> {
        check_name(name)?;
        B::open(self, name, &StreamOptions::new(), Open::Find).await
    }

    /// [`find`](Self::find) without counting as a use (a `HEAD` must not
    /// renew a TTL). On Redis a stream not mirrored here is loaded, and one
    /// mirrored here is brought up to date, neither counted as a use in
    /// Redis.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))] // the durable HEAD
    pub(crate) async fn peek(&self, name: &str) -> Result<Option<EventLog<T, B>>, StreamsError> {
        check_name(name)?;
        B::open(self, name, &StreamOptions::new(), Open::Peek).await
    }
}

impl<T: Send + Sync + 'static> Streams<T, Memory> {
    pub(crate) fn insert_memory(
        &self,
        name: &str,
        options: &StreamOptions,
        exclusive: bool,
    ) -> Result<EventLog<T>, StreamsError> {
        self.start_janitor();
        let registry = &self.inner;
        let mut logs = registry.logs_mut();
        if let Some(log) = logs.get(name) {
            if exclusive {
                return Err(StreamsError::Exists {
                    name: Arc::from(name),
                });
            }
            log.inner.presence.touch();
            return Ok(log.clone());
        }
        if logs.len() >= registry.settings.max_streams {
            return Err(full(registry.settings));
        }
        let name: Arc<str> = Arc::from(name);
        let member = self.member(
            &name,
            options,
            super::presence::attributes(options.attributes.clone()),
        );
        let log = EventLog::memory(
            Arc::clone(&registry.config),
            memory_epoch(),
            Presence::new(Some(member)),
        );
        logs.insert(Arc::clone(&name), log.clone());
        drop(logs);
        registry.plan(&name, &log);
        Ok(log)
    }
}

impl<T, B> EventLog<T, B> {
    /// Removed from its collection: readers and waiters are woken and told.
    pub(crate) fn retire(&self) {
        self.inner.state_mut().deleted = true;
        self.inner.published.notify_waiters();
    }
}
