use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{StartError, Unavailable};
use super::hub::Hub;
use super::id::Id;
use super::link::{millis_of, parse_epoch, Appended, Deadlines, Link, Load, Loaded, Mode};
use super::mirror::{fresh, position_of, Mark, Mirror};
use crate::event_log::backend::sealed::Open;
use crate::event_log::backend::{sealed, Backend, Payload, PublishError};
use crate::event_log::log::{Inner, Lag, LogConfig};
use crate::event_log::presence::{millis, Presence};
use crate::event_log::{
    check_name, Append, Cursor, EventLog, StreamOptions, Streams, StreamsError,
};

/// The Redis Streams backend: the log is a Redis stream shared by every
/// instance that names the same key. See the
/// [module docs](crate::event_log#the-redis-backend).
///
/// Each log holds the instance's hub (its two connections to Redis and its
/// reader task, shared by all its logs on Redis) and where its mirror
/// stands in the stream.
pub struct Redis {
    hub: Arc<Hub>,
    key: Arc<str>,
    meta: Box<str>,
    /// A log outside a collection: started again under a new epoch when its
    /// stream is lost, never retired.
    standalone: bool,
    /// [`millis`] of this instance's last use counted in Redis, and the
    /// `touched` it covered.
    proposed: AtomicU64,
    counted: AtomicU64,
    mark: Mutex<Mark>,
    /// The reader found the mirror out of step: load it again.
    reload: AtomicBool,
    /// Whether the reader reads the stream now (in step from the mark on).
    /// It stops reading a stream of a collection that nobody here reads,
    /// waits on or used for a while, and checks the mark before it reads
    /// it again.
    active: AtomicBool,
    /// A task asks the reader to read the stream again.
    waking: AtomicBool,
    /// [`millis`] of the last look that was no use (`Streams::peek`): the
    /// reader reads the stream for the linger time after it too.
    peeked: AtomicU64,
    pub(crate) lag: Lag,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("key", &self.key)
            .field("connected", &self.hub.link.connected())
            .finish_non_exhaustive()
    }
}

/// The key of a stream's meta hash.
pub(crate) fn meta_key(key: &str) -> String {
    format!("{key}:meta")
}

impl Redis {
    /// The stream's key (its meta hash, with the epoch and the closure, is
    /// at `<key>:meta`).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the instance's reader is connected and in step with the
    /// streams. While it is not,
    /// [`Resume::start`](crate::event_log::Resume::start) answers `503`.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.hub.link.connected()
    }

    pub(crate) fn meta_key(&self) -> &str {
        &self.meta
    }

    pub(crate) fn standalone(&self) -> bool {
        self.standalone
    }

    pub(crate) fn keep(&self) -> usize {
        self.hub.link.keep
    }

    pub(crate) fn mark(&self) -> Mark {
        *self.mark_mut()
    }

    pub(crate) fn mark_mut(&self) -> MutexGuard<'_, Mark> {
        self.mark
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn flag_reload(&self) {
        self.reload.store(true, Ordering::Release);
    }

    pub(crate) fn clear_reload(&self) {
        self.reload.store(false, Ordering::Release);
    }

    pub(crate) fn reload_pending(&self) -> bool {
        self.reload.load(Ordering::Acquire)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Release);
        if active {
            self.waking.store(false, Ordering::Release);
        }
    }

    /// Whether the reader should read the stream now: always for a log
    /// outside a collection; else while someone here reads or waits on it,
    /// or used it within the linger time.
    pub(crate) fn wanted(&self, presence: &Presence, now: u64) -> bool {
        let last = presence.touched().max(self.peeked.load(Ordering::Acquire));
        self.standalone
            || !presence.is_vacant()
            || now.saturating_sub(last) < millis_of(self.hub.link.linger)
    }

    /// Has the reader read the stream again if it stopped (a use came), and
    /// waits until it does.
    pub(crate) async fn wake(&self) {
        if !self.is_active() {
            self.hub.watch(None).await;
        }
    }

    /// A round of the reader caught up with the stream.
    pub(crate) fn synced(&self) {
        self.lag.rounds.fetch_add(1, Ordering::AcqRel);
        self.lag.synced.notify_waiters();
    }

    /// The use of this stream to count in Redis at a sweep (`idle` and age
    /// arguments of the sweep script), if any: with readers or waiters here,
    /// the stream must outlive the next sweep; without, the last use here
    /// counts (once).
    pub(crate) fn use_to_count(
        &self,
        presence: &Presence,
        link: &Link,
        now: u64,
    ) -> Option<(String, u64)> {
        if self.standalone {
            return None;
        }
        let touched = presence.touched();
        let ago = now.saturating_sub(touched);
        let idle = if presence.is_vacant() {
            if touched <= self.counted.load(Ordering::Acquire) {
                return None;
            }
            link.idle
                .map(|idle| millis_of(idle).saturating_sub(ago).max(1))
        } else {
            link.idle
                .map(|idle| millis_of(idle).saturating_add(millis_of(link.block).saturating_mul(2)))
        };
        self.counted.fetch_max(touched, Ordering::AcqRel);
        self.proposed.store(now, Ordering::Release);
        Some((idle.map(|ms| ms.to_string()).unwrap_or_default(), ago))
    }

    /// Counts a use of a stream of a collection in Redis now (a lookup of
    /// it), as a sweep would: the idle argument of the look script.
    fn count_use(&self, presence: &Presence) -> String {
        self.proposed
            .store(millis(Instant::now()), Ordering::Release);
        self.counted.fetch_max(presence.touched(), Ordering::AcqRel);
        self.hub.link.idle_arg()
    }
}

impl sealed::Sealed for Redis {
    fn lag(&self) -> Option<&Lag> {
        Some(&self.lag)
    }

    fn waiting(&self) {
        // A reader that came without `get_or_create` (a handle kept by the
        // application): the reader reads the stream again from its next
        // round; cut the current one short.
        if !self.is_active() && !self.waking.swap(true, Ordering::AcqRel) {
            let hub = Arc::clone(&self.hub);
            tokio::spawn(async move { hub.watch(None).await });
        }
    }
}

impl Backend for Redis {
    type StartError = StartError;
    const LAGS: bool = true;

    fn ready(&self) -> Result<(), StartError> {
        if self.hub.link.connected() {
            Ok(())
        } else {
            Err(StartError::Unavailable(Unavailable {
                retry_after: self.hub.link.retry_after,
            }))
        }
    }

    /// Appends the event to the stream (`XADD` with `MAXLEN ~`) in a script
    /// that checks the epoch and the closure first; returns its cursor once
    /// this process's mirror has it too (or after the timeout, if the reader
    /// is behind: the event is published either way), so a read on this
    /// instance right after sees it. A close is the same script: the event
    /// (if any) and the close in one step.
    ///
    /// Other instances wake their waiting readers when their reader task
    /// sees the entry: one `XREAD` round trip later.
    ///
    /// Errors:
    ///
    /// - [`PublishError::Unavailable`] when Redis cannot be reached or does
    ///   not answer within the [timeout](super::RedisLogBuilder::timeout).
    ///   The event may or may not be in the stream (the answer can be lost
    ///   after Redis applied it): retry for at-least-once delivery.
    /// - [`PublishError::Encode`] when `data` does not serialize to JSON.
    /// - [`PublishError::Closed`] when the stream is closed (on any
    ///   instance), [`PublishError::Deleted`] when a stream of a collection
    ///   was deleted or expired.
    /// - [`PublishError::Unaddressable`] when Redis gave the entry an ID no
    ///   cursor can hold (see
    ///   [the Redis backend](crate::event_log#the-redis-backend)); it is
    ///   deleted again, and readers past it get `410` `evicted`.
    ///
    /// With a [sequence token](crate::event_log::Append::seq), the script
    /// compares it with the last one accepted (kept in the meta hash,
    /// byte-wise) and keeps it, in the same step as the append and the
    /// close: [`PublishError::OutOfOrder`] for one that does not sort after
    /// it, whichever instance accepted that one.
    fn append<T: Payload>(
        log: &EventLog<T, Self>,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        log.append_redis(append)
    }

    type Hub = Arc<Hub>;

    fn open<'a, T: Payload>(
        streams: &'a Streams<T, Self>,
        name: &'a str,
        options: &'a StreamOptions,
        how: Open,
    ) -> impl Future<Output = Result<Option<EventLog<T, Self>>, StreamsError>> + Send + 'a {
        streams.open_redis(name, options, how)
    }

    async fn delete(hub: &Arc<Hub>, name: &str) -> Result<bool, StreamsError> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        let key = hub.stream_key(name);
        hub.delete(&key, &meta_key(&key))
            .await
            .map_err(|err| StreamsError::Unavailable {
                retry_after: hub.link.retry_after,
                reason: err.to_string(),
            })
    }
}

impl<T> EventLog<T, Redis>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    /// A log on the stream `key`, its mirror built from `loaded`.
    pub(crate) fn on_redis(
        config: Arc<LogConfig>,
        presence: Presence,
        hub: Arc<Hub>,
        key: Arc<str>,
        loaded: &Loaded,
        standalone: bool,
    ) -> Self {
        let (state, mark) = fresh::<T>(loaded, hub.link.keep, config.retention);
        let now = millis(Instant::now());
        let backend = Redis {
            meta: meta_key(&key).into(),
            hub,
            key,
            standalone,
            proposed: AtomicU64::new(now),
            counted: AtomicU64::new(presence.touched()),
            mark: Mutex::new(mark),
            reload: AtomicBool::new(false),
            active: AtomicBool::new(true),
            waking: AtomicBool::new(false),
            peeked: AtomicU64::new(0),
            lag: Lag::default(),
        };
        EventLog {
            inner: Arc::new(Inner::new(config, state, presence, backend)),
        }
    }

    /// Has the instance's reader read this log's stream from now on.
    pub(crate) async fn watch(&self) {
        let mirror: Weak<dyn Mirror> = Arc::downgrade(&self.inner) as Weak<Inner<T, Redis>>;
        let redis = &self.inner.backend;
        redis
            .hub
            .watch(Some((Arc::clone(&redis.key), mirror)))
            .await;
    }

    /// Before a request uses this stream of a collection (a lookup that
    /// found it mirrored here): looks at it in Redis, counting a use unless
    /// `peek`, and waits (at most the timeout) until the mirror holds the
    /// newest entry Redis had then, so that a request served here sees
    /// every event published before it, on any instance. Returns `false`
    /// when the stream is gone from Redis. A stream found in another epoch
    /// (deleted and created again elsewhere) is loaded again by the reader
    /// first (or retired, when it is another stream).
    pub(crate) async fn catch_up(&self, peek: bool) -> bool {
        let redis = &self.inner.backend;
        let idle = if peek {
            redis
                .peeked
                .store(millis(Instant::now()), Ordering::Release);
            "-".to_owned()
        } else {
            redis.count_use(&self.inner.presence)
        };
        let epoch = self.epoch();
        let newest = match redis.hub.look(&redis.key, &redis.meta, &idle).await {
            // Unreachable Redis: the reader finds out, and reads answer 503.
            Err(_) => return true,
            Ok(None) => return false,
            Ok(Some((current, _))) if parse_epoch(&current).ok() != Some(epoch) => {
                redis.flag_reload();
                redis.hub.watch(None).await;
                return true;
            }
            Ok(Some((_, newest))) => newest,
        };
        let Some(newest) = newest else {
            return true;
        };
        if redis.mark().last >= newest {
            return true;
        }
        redis.wake().await;
        let lag = &redis.lag;
        let deadline = Instant::now() + redis.hub.link.timeout;
        loop {
            let published = self.inner.published.notified();
            let synced = lag.synced.notified();
            tokio::pin!(published, synced);
            published.as_mut().enable();
            synced.as_mut().enable();
            {
                let state = self.inner.state();
                if state.deleted || state.epoch != epoch {
                    return true;
                }
            }
            if redis.mark().last >= newest {
                return true;
            }
            let woken = async {
                tokio::select! {
                    () = published => {},
                    () = synced => {},
                }
            };
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return true;
            }
        }
    }
}

impl<T: Payload> EventLog<T, Redis> {
    fn name(&self) -> Option<Arc<str>> {
        self.inner.presence.name().cloned()
    }

    async fn append_redis(&self, append: Append<T>) -> Result<Cursor, PublishError> {
        let Append {
            event: data,
            close,
            seq,
            ..
        } = append;
        // What the mirror knows already: answered as the memory log would.
        {
            let state = self.inner.state();
            let end = Cursor {
                epoch: state.epoch,
                position: state.head,
            };
            if state.deleted {
                return Err(PublishError::Deleted { name: self.name() });
            }
            if state.closed {
                return match (close, &data) {
                    (true, None) => Ok(end),
                    _ => Err(PublishError::Closed {
                        name: self.name(),
                        end,
                    }),
                };
            }
            if !close && data.is_none() && seq.is_none() {
                return Ok(end);
            }
        }
        let json = data
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(PublishError::Encode)?;
        let redis = &self.inner.backend;
        let hub = &redis.hub;
        let mut epoch = self.epoch();
        for _ in 0..3 {
            let appended = hub
                .append(
                    &redis.key,
                    &redis.meta,
                    epoch,
                    json.as_deref(),
                    close,
                    seq.as_deref(),
                )
                .await
                .map_err(|err| hub.unavailable(err))?;
            match appended {
                Appended::Entry(id) => {
                    self.inner.presence.touch();
                    redis
                        .proposed
                        .store(millis(Instant::now()), Ordering::Release);
                    let position = match Id::parse(&id).map(Id::position) {
                        Some(Ok(position)) => position,
                        _ => {
                            if !close {
                                hub.remove_entry(&redis.key, &id).await;
                            }
                            return Err(PublishError::Unaddressable { id });
                        }
                    };
                    redis.wake().await;
                    self.until_mirrored(epoch, position, close).await;
                    return Ok(Cursor { epoch, position });
                }
                Appended::End(id) => {
                    let position = Id::parse(&id).map_or(0, position_of);
                    redis.wake().await;
                    self.until_mirrored(epoch, position, true).await;
                    return Ok(Cursor { epoch, position });
                }
                Appended::Nothing(id) => {
                    let position = Id::parse(&id).map_or(0, position_of);
                    redis.wake().await;
                    self.until_mirrored(epoch, position, false).await;
                    return Ok(Cursor { epoch, position });
                }
                Appended::OutOfOrder(last) => {
                    return Err(PublishError::OutOfOrder {
                        seq: crate::params::echo(seq.as_deref().unwrap_or_default()),
                        last: crate::params::echo(&last),
                    });
                }
                Appended::Closed(end) => {
                    let end = Cursor {
                        epoch,
                        position: Id::parse(&end).map_or_else(|| self.head().position, position_of),
                    };
                    return Err(PublishError::Closed {
                        name: self.name(),
                        end,
                    });
                }
                // The stream is in another epoch: this mirror is behind (the
                // reader is loading it again). Publish under the epoch in
                // force, as every other instance does.
                Appended::Epoch(current) => {
                    epoch = parse_epoch(&current).map_err(|err| hub.unavailable(err))?;
                }
                Appended::Gone if redis.standalone => {
                    // Redis lost the stream: the first instance back starts
                    // it again under a new epoch, the others adopt it.
                    let loaded = hub
                        .load(
                            &redis.key,
                            &redis.meta,
                            Mode::Open,
                            Deadlines::default(),
                            &[],
                        )
                        .await
                        .map_err(|err| hub.unavailable(err))?;
                    if let Load::Loaded(loaded) = loaded {
                        epoch = loaded.epoch;
                    }
                    redis.flag_reload();
                }
                Appended::Gone => {
                    Mirror::retire(&*self.inner);
                    return Err(PublishError::Deleted { name: self.name() });
                }
            }
        }
        Err(hub.unavailable(redis::RedisError::from((
            redis::ErrorKind::TryAgain,
            "the epoch of the stream changed three times during one publish",
        ))))
    }

    /// Waits (until the timeout) for this process's mirror to hold
    /// `position` (and the close, with `closed`).
    async fn until_mirrored(&self, epoch: u64, position: u64, closed: bool) {
        let deadline = Instant::now() + self.inner.backend.hub.link.timeout;
        loop {
            let published = self.inner.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            {
                let state = self.inner.state();
                if state.deleted
                    || (state.epoch == epoch && state.head >= position && (state.closed || !closed))
                {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return;
            }
        }
    }
}
