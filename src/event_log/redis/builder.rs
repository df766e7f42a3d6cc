//! Building logs and collections on Redis, and the collection's
//! `get_or_create` / `create`, which load a stream into a mirror.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::{Client, RedisError};
use serde::de::DeserializeOwned;

use super::backend::meta_key;
use super::hub::Hub;
use super::link::{millis_of, Deadlines, Link, LinkConfig, Load, Mode};
use super::mirror::Mirror;
use super::Redis;
use crate::event_log::backend::sealed::Open;
use crate::event_log::backend::Payload;
use crate::event_log::presence::Presence;
use crate::event_log::{
    EventLog, EventLogBuilder, StreamOptions, Streams, StreamsBuilder, StreamsError,
};

/// What both Redis builders set: how the instance talks to Redis.
#[derive(Clone)]
struct Options {
    client: Client,
    name: String,
    timeout: Duration,
    block: Duration,
    retry_after: Duration,
    max_backoff: Duration,
}

impl Options {
    fn new(client: Client) -> Self {
        Self {
            client,
            name: "axum-longpoll".to_owned(),
            timeout: Duration::from_secs(2),
            block: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            max_backoff: Duration::from_secs(2),
        }
    }

    fn link(self, capacity: usize, idle: Option<Duration>) -> Link {
        Link::new(LinkConfig {
            client: self.client,
            name: self.name,
            timeout: self.timeout,
            block: self.block,
            retry_after: self.retry_after,
            max_backoff: self.max_backoff,
            capacity,
            idle,
        })
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .field("retry_after", &self.retry_after)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// The setters both Redis builders share.
macro_rules! redis_options {
    () => {
        /// How long to wait for Redis to accept a connection or answer a
        /// command (default 2 s). A publish that takes longer fails
        /// ([`PublishError::Unavailable`](crate::event_log::PublishError::Unavailable)).
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.options.timeout = timeout;
            self
        }

        /// How long one `XREAD BLOCK` of the reader waits (default 2 s, at
        /// least 1 ms); also how often the reader looks whether its streams
        /// still exist. A cursor ahead of every event is answered `410`
        /// `ahead` after at most about twice this.
        pub fn block(mut self, block: Duration) -> Self {
            self.options.block = block.max(Duration::from_millis(1));
            self
        }

        /// The `Retry-After` of the `503` answers while Redis is unreachable
        /// (default 1 s).
        pub fn retry_after(mut self, retry_after: Duration) -> Self {
            self.options.retry_after = retry_after;
            self
        }

        /// The longest pause between the reader's reconnection attempts
        /// (default 2 s; the pauses start at 50 ms, double, and are
        /// jittered).
        pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
            self.options.max_backoff = max_backoff;
            self
        }

        /// The name of this instance's connections in Redis's `CLIENT LIST`:
        /// `<name>:writer` and `<name>:reader` (default `axum-longpoll`).
        /// Spaces are not allowed (Redis refuses them at connect).
        pub fn client_name(mut self, name: impl Into<String>) -> Self {
            self.options.name = name.into();
            self
        }
    };
}

/// Builds an [`EventLog`] on a Redis stream. Made by
/// [`EventLogBuilder::redis`]; the retention, batch and start settings of
/// that builder apply.
#[must_use]
pub struct RedisLogBuilder {
    log: EventLogBuilder,
    key: String,
    options: Options,
}

impl fmt::Debug for RedisLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLogBuilder")
            .field("log", &self.log)
            .field("key", &self.key)
            .field("options", &self.options)
            .finish()
    }
}

impl EventLogBuilder {
    /// A log on the Redis stream `key`, shared with every instance that
    /// uses the same key (and the same capacity). See
    /// [the Redis backend](crate::event_log#the-redis-backend).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use std::sync::Arc;
    /// use axum_longpoll::EventLog;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let log = EventLog::builder()
    ///     .capacity(10_000)
    ///     .redis(client, "chat:events")
    ///     .connect::<Arc<str>>()
    ///     .await?;
    /// log.publish("hello".into()).await.ok();
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, client: Client, key: impl Into<String>) -> RedisLogBuilder {
        RedisLogBuilder {
            log: self,
            key: key.into(),
            options: Options::new(client),
        }
    }
}

impl RedisLogBuilder {
    redis_options!();

    /// Connects (two connections: one for publishing, one for the reader),
    /// reads the stream's epoch and closure or creates them, loads the
    /// newest `capacity` entries and starts the reader task. Call it within
    /// a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached, the key holds something other than a
    /// stream, or `<key>:meta` holds something other than the stream's meta
    /// hash.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: nothing started is left running (a meta hash it
    /// created stays in Redis, which is harmless).
    pub async fn connect<T>(self) -> Result<EventLog<T, Redis>, RedisError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let link = self.options.link(self.log.retention.capacity, None);
        let hub = Hub::start(link, String::new()).await?;
        let key: Arc<str> = Arc::from(self.key);
        let meta = meta_key(&key);
        let Load::Loaded(loaded) = hub
            .load(&key, &meta, Mode::Open, Deadlines::default(), &[])
            .await?
        else {
            unreachable!("opening a stream loads it")
        };
        let log = EventLog::on_redis(
            self.log.log_config(),
            Presence::new(None),
            hub,
            key,
            &loaded,
            true,
        );
        log.watch().await;
        Ok(log)
    }
}

/// Builds a [`Streams`] collection on Redis: made by
/// [`StreamsBuilder::redis`]. Each stream is a Redis stream at
/// `<prefix><name>` with its meta hash at `<prefix><name>:meta`; the log
/// settings (capacity, age, bytes, batch, start) and the collection's
/// (`max_streams`, `idle`, `retry_after`) of that builder apply. See
/// [the Redis backend](crate::event_log#the-redis-backend).
#[must_use]
pub struct RedisStreamsBuilder {
    streams: StreamsBuilder,
    prefix: String,
    options: Options,
}

impl fmt::Debug for RedisStreamsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamsBuilder")
            .field("streams", &self.streams)
            .field("prefix", &self.prefix)
            .field("options", &self.options)
            .finish()
    }
}

impl StreamsBuilder {
    /// A collection of streams on Redis, shared with every instance that
    /// uses the same prefix (and the same capacity and idle time). Each
    /// instance holds two connections to Redis whatever the number of
    /// streams. See [the Redis backend](crate::event_log#the-redis-backend).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use axum_longpoll::EventLog;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let rooms = EventLog::builder()
    ///     .capacity(1024)
    ///     .streams()
    ///     .max_streams(10_000)
    ///     .idle(Some(Duration::from_secs(300)))
    ///     .redis(client, "chat:room:")
    ///     .connect::<Arc<str>>()
    ///     .await?;
    /// let lobby = rooms.get_or_create("lobby").await.expect("Redis is up");
    /// lobby.publish("hello".into()).await.ok();
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, client: Client, prefix: impl Into<String>) -> RedisStreamsBuilder {
        RedisStreamsBuilder {
            streams: self,
            prefix: prefix.into(),
            options: Options::new(client),
        }
    }
}

impl RedisStreamsBuilder {
    redis_options!();

    /// Connects (two connections: one for publishing and every other
    /// command, one for the reader) and starts the reader task, which reads
    /// nothing until a stream is loaded. Call it within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: nothing started is left running.
    pub async fn connect<T: Payload>(self) -> Result<Streams<T, Redis>, RedisError> {
        let capacity = self.streams.log.retention.capacity;
        let link = self.options.link(capacity, self.streams.idle_setting());
        let hub = Hub::start(link, self.prefix).await?;
        Ok(self.streams.with_hub(hub))
    }
}

impl<T: Payload> Streams<T, Redis> {
    /// [`Backend::open`](crate::event_log::Backend::open) on Redis: the
    /// stream this instance mirrors, brought up to date with Redis (one
    /// round trip: [`EventLog::catch_up`]); or else the one in Redis,
    /// loaded (its meta and its newest `capacity` events, at one instant)
    /// into a mirror that this instance's reader keeps in step from then
    /// on; or else, when `how` creates, a new one (empty, open, a new
    /// epoch, with the options' TTL, expiry and attributes in its meta
    /// hash), created in Redis for every instance.
    ///
    /// [`Open::Find`] and [`Open::OrCreate`] count as a use, here and in
    /// Redis (idle and TTL start again); [`Open::Peek`] counts neither:
    /// it loads the stream or brings the mirror up to date all the same.
    /// [`Open::Create`] of a stream that exists in Redis is
    /// [`StreamsError::Exists`], whichever instance created it.
    ///
    /// Cancel safe: a stream it created in Redis stays there, as if created
    /// by another instance.
    pub(crate) async fn open_redis(
        &self,
        name: &str,
        options: &StreamOptions,
        how: Open,
    ) -> Result<Option<EventLog<T, Redis>>, StreamsError> {
        if how != Open::Create {
            let mirrored = if how == Open::Peek {
                self.peek_here(name)
            } else {
                self.get(name)
            };
            if let Some(log) = mirrored {
                if log.catch_up(how == Open::Peek).await {
                    // Unless the reader, checking it again, found it gone.
                    if !Mirror::is_retired(&*log.inner) {
                        return Ok(Some(log));
                    }
                } else {
                    // Gone from Redis (expired, deleted) before the reader
                    // noticed.
                    Mirror::retire(&*log.inner);
                }
            }
        }
        let mode = match how {
            Open::Peek => Mode::Get,
            Open::Find => Mode::Find,
            Open::OrCreate => Mode::Open,
            Open::Create => Mode::Create,
        };
        self.load(name, mode, options).await
    }

    async fn load(
        &self,
        name: &str,
        mode: Mode,
        options: &StreamOptions,
    ) -> Result<Option<EventLog<T, Redis>>, StreamsError> {
        if self.peek_here(name).is_none() {
            if let Some(full) = self.full() {
                return Err(full);
            }
        }
        let hub = self.hub();
        let unavailable = |err: RedisError| StreamsError::Unavailable {
            retry_after: hub.link.retry_after,
            reason: err.to_string(),
        };
        let deadlines = Deadlines {
            ttl_ms: options.ttl_setting().map(|ttl| millis_of(ttl).max(1)),
            at_ms: options.expires_at_setting().map(|at| {
                at.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, millis_of)
                    .max(1)
            }),
        };
        let key: Arc<str> = Arc::from(hub.stream_key(name));
        let loaded = match hub
            .load(&key, &meta_key(&key), mode, deadlines, options.attributes())
            .await
            .map_err(unavailable)?
        {
            Load::Loaded(loaded) => loaded,
            Load::Missing => return Ok(None),
            Load::Exists => {
                return Err(StreamsError::Exists {
                    name: Arc::from(name),
                })
            }
        };
        let name: Arc<str> = Arc::from(name);
        // The stream's own TTL and expiry are counted by Redis, which sees
        // the uses of every instance: not here. Its attributes are as Redis
        // holds them.
        let attributes = super::super::presence::attributes(loaded.attributes.clone());
        let member = self.member(&name, &StreamOptions::new(), attributes);
        let log = EventLog::on_redis(
            self.config(),
            Presence::new(Some(member)),
            Arc::clone(hub),
            key,
            &loaded,
            false,
        );
        let live = self.adopt(&name, log.clone(), mode == Mode::Create)?;
        if Arc::ptr_eq(&live.inner, &log.inner) {
            log.watch().await;
        }
        Ok(Some(live))
    }
}
