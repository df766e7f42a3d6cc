use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError};
use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::error::{StartError, Unavailable};
use super::id::Id;
use super::link::{is_broken, Link, LinkConfig};
use super::reader;
use crate::event_log::backend::{sealed, Backend, Payload, PublishError};
use crate::event_log::log::{Inner, Lag};
use crate::event_log::presence::Presence;
use crate::event_log::{
    Append, Cursor, EventLog, EventLogBuilder, StreamOptions, Streams, StreamsError,
};

/// The Redis Streams backend: the log is a Redis stream shared by every
/// instance that names the same key. See the
/// [module docs](crate::event_log#the-redis-backend).
///
/// Holds the writer connection and the reader task (aborted when the last
/// handle of the log is dropped).
pub struct Redis {
    link: Arc<Link>,
    writer: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    reader: AbortHandle,
    pub(crate) lag: Lag,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("key", &self.link.key)
            .field("connected", &self.link.connected())
            .finish_non_exhaustive()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Redis {
    /// The stream's key (the epoch is kept at `<key>:epoch`).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.link.key
    }

    /// Whether the reader is connected and in step with the stream. While it
    /// is not, [`Resume::start`](crate::event_log::Resume::start) answers
    /// `503`.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.link.connected()
    }

    fn unavailable(&self, source: RedisError) -> PublishError {
        PublishError::Unavailable {
            retry_after: self.link.retry_after,
            source: Box::new(source),
        }
    }

    /// The writer connection, connecting if there is none.
    async fn writer(&self) -> Result<MultiplexedConnection, PublishError> {
        let mut slot = self.writer.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = self
            .link
            .connect()
            .await
            .map_err(|err| self.unavailable(err))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn failed(&self, err: RedisError) -> PublishError {
        if is_broken(&err) {
            *self.writer.lock().await = None;
        }
        self.unavailable(err)
    }

    /// `XADD` under `epoch`, or under the epoch in force if that changed.
    async fn append(&self, epoch: u64, json: &str) -> Result<(u64, String), PublishError> {
        let mut conn = self.writer().await?;
        let mut epoch = epoch;
        for _ in 0..2 {
            match self.link.append(&mut conn, epoch, json).await {
                Ok(Some(id)) => return Ok((epoch, id)),
                Ok(None) => {
                    epoch = match self.link.claim_epoch(&mut conn, None).await {
                        Ok(epoch) => epoch,
                        Err(err) => return Err(self.failed(err).await),
                    }
                }
                Err(err) => return Err(self.failed(err).await),
            }
        }
        Err(self.unavailable(RedisError::from((
            redis::ErrorKind::TryAgain,
            "the epoch of the stream changed twice during one publish",
        ))))
    }

    async fn delete(&self, id: &str) {
        if let Ok(mut conn) = self.writer().await {
            self.link.delete(&mut conn, id).await;
        }
    }
}

impl sealed::Sealed for Redis {
    fn lag(&self) -> Option<&Lag> {
        Some(&self.lag)
    }
}

impl Backend for Redis {
    type StartError = StartError;
    const LAGS: bool = true;

    fn ready(&self) -> Result<(), StartError> {
        if self.link.connected() {
            Ok(())
        } else {
            Err(StartError::Unavailable(Unavailable {
                retry_after: self.link.retry_after,
            }))
        }
    }

    /// Appends the event to the stream (`XADD` with `MAXLEN ~`); returns
    /// its cursor once this process's mirror has it too (or after the
    /// timeout, if the reader is behind: the event is published either
    /// way), so a read on this instance right after sees it.
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
    /// - [`PublishError::Unaddressable`] when Redis gave the entry an ID no
    ///   cursor can hold (see
    ///   [the Redis backend](crate::event_log#the-redis-backend)); it is
    ///   deleted again, and readers past it get `410` `evicted`.
    fn append<T: Payload>(
        log: &EventLog<T, Self>,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        log.append_redis(append.event, append.close)
    }

    type Hub = ();

    // The collection of many streams on Redis comes with the shared hub.
    fn open<'a, T: Payload>(
        _streams: &'a Streams<T, Self>,
        name: &'a str,
        _options: &'a StreamOptions,
        _exclusive: bool,
    ) -> impl Future<Output = Result<EventLog<T, Self>, StreamsError>> + Send + 'a {
        std::future::ready(Err(StreamsError::InvalidName {
            value: format!("{name} (named streams on Redis are not built yet)"),
        }))
    }
}

impl<T: Payload> EventLog<T, Redis> {
    async fn append_redis(&self, data: Option<T>, close: bool) -> Result<Cursor, PublishError> {
        if close {
            return Err(PublishError::Unavailable {
                retry_after: self.inner.backend.link.retry_after,
                source: "closing a stream on Redis is not implemented yet".into(),
            });
        }
        let Some(data) = data else {
            return Ok(self.head());
        };
        let json = serde_json::to_string(&data).map_err(PublishError::Encode)?;
        let redis = &self.inner.backend;
        let (epoch, id) = redis.append(self.epoch(), &json).await?;
        let position = match Id::parse(&id).map(Id::position) {
            Some(Ok(position)) => position,
            _ => {
                redis.delete(&id).await;
                return Err(PublishError::Unaddressable { id });
            }
        };
        self.until_mirrored(epoch, position, Instant::now() + redis.link.timeout)
            .await;
        Ok(Cursor { epoch, position })
    }

    /// Waits (until `deadline`) for this process's mirror to hold `position`.
    async fn until_mirrored(&self, epoch: u64, position: u64, deadline: Instant) {
        loop {
            let published = self.inner.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            {
                let state = self.inner.state();
                if state.epoch == epoch && state.head >= position {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return;
            }
        }
    }
}

/// Builds an [`EventLog`] on a Redis stream. Made by
/// [`EventLogBuilder::redis`]; the retention, batch and start settings of
/// that builder apply.
#[must_use]
pub struct RedisLogBuilder {
    log: EventLogBuilder,
    client: Client,
    key: String,
    timeout: Duration,
    block: Duration,
    retry_after: Duration,
    max_backoff: Duration,
}

impl fmt::Debug for RedisLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLogBuilder")
            .field("log", &self.log)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .field("retry_after", &self.retry_after)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
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
            client,
            key: key.into(),
            timeout: Duration::from_secs(2),
            block: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RedisLogBuilder {
    /// How long to wait for Redis to accept a connection or answer a command
    /// (default 2 s). A publish that takes longer fails
    /// ([`PublishError::Unavailable`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long one `XREAD BLOCK` of the reader waits (default 2 s, at least
    /// 1 ms). A cursor ahead of every event is answered `410` `ahead` after
    /// at most about twice this.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(1));
        self
    }

    /// The `Retry-After` of the `503` answers while Redis is unreachable
    /// (default 1 s).
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The longest pause between the reader's reconnection attempts (default
    /// 2 s; the pauses start at 50 ms, double, and are jittered).
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Connects (two connections: one for publishing, one for the reader),
    /// reads or creates the epoch, loads the newest `capacity` entries and
    /// starts the reader task. Call it within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached, the key holds something other than a
    /// stream, or `<key>:epoch` holds something other than an epoch.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: nothing is started before it returns (an epoch it
    /// created stays in Redis, which is harmless).
    pub async fn connect<T>(self) -> Result<EventLog<T, Redis>, RedisError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let retention = self.log.retention;
        let link = Arc::new(Link::new(LinkConfig {
            client: self.client,
            key: self.key,
            timeout: self.timeout,
            block: self.block,
            retry_after: self.retry_after,
            max_backoff: self.max_backoff,
            capacity: retention.capacity,
        }));
        let writer = link.connect().await?;
        let mut conn = link.connect_reader().await?;
        let epoch = link.claim_epoch(&mut conn, None).await?;
        let tail = link.tail(&mut conn).await?;
        let (state, mark) = reader::fresh::<T>(epoch, &tail, link.keep, retention);
        let config = self.log.log_config();
        let inner = Arc::new_cyclic(|weak| {
            let task = tokio::spawn(reader::run(weak.clone(), Arc::clone(&link), conn, mark));
            Inner::new(
                config,
                state,
                Presence::new(None),
                Redis {
                    link,
                    writer: tokio::sync::Mutex::new(Some(writer)),
                    reader: task.abort_handle(),
                    lag: Lag::default(),
                },
            )
        });
        Ok(EventLog { inner })
    }
}
