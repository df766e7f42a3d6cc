//! The hub: an instance's two connections to Redis, shared by all its logs
//! on Redis (one log, or a whole [`Streams`](crate::event_log::Streams)
//! collection). The writer carries every command; the reader task does one
//! `XREAD BLOCK` over all the streams mirrored here.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::id::Id;
use super::link::{is_broken, Appended, Deadlines, Link, Load, Mode};
use super::mirror::Mirror;
use super::reader;
use crate::event_log::PublishError;

/// An instance's connections to Redis and its reader task (aborted when the
/// last log and collection that use it are dropped).
#[allow(unreachable_pub)] // named by the hidden `Backend::Hub` only
pub struct Hub {
    pub(crate) link: Arc<Link>,
    /// Streams of a collection are at `<prefix><name>`.
    prefix: String,
    writer: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    reader: AbortHandle,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("name", &self.link.name)
            .field("prefix", &self.prefix)
            .field("connected", &self.link.connected())
            .finish_non_exhaustive()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Hub {
    /// Connects the writer and the reader and starts the reader task (with
    /// nothing to read yet).
    pub(crate) async fn start(link: Link, prefix: String) -> RedisResult<Arc<Self>> {
        let link = Arc::new(link);
        let writer = link.connect_writer().await?;
        let reader = link.connect_reader().await?;
        let task = tokio::spawn(reader::run(Arc::clone(&link), reader));
        Ok(Arc::new(Self {
            link,
            prefix,
            writer: tokio::sync::Mutex::new(Some(writer)),
            reader: task.abort_handle(),
        }))
    }

    /// The key of the stream `name` of a collection.
    pub(crate) fn stream_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The writer connection, connecting if there is none.
    async fn writer(&self) -> RedisResult<MultiplexedConnection> {
        let mut slot = self.writer.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = self.link.connect_writer().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the writer; a broken connection is dropped (the next
    /// command connects again).
    async fn with_writer<R>(
        &self,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<R>,
    ) -> RedisResult<R> {
        let mut conn = self.writer().await?;
        let result = f(&mut conn).await;
        if let Err(err) = &result {
            if is_broken(err) {
                *self.writer.lock().await = None;
            }
        }
        result
    }

    /// The error of a publish that could not reach Redis.
    pub(crate) fn unavailable(&self, source: RedisError) -> PublishError {
        PublishError::Unavailable {
            retry_after: self.link.retry_after,
            source: Box::new(source),
        }
    }

    pub(crate) async fn load(
        &self,
        key: &str,
        meta: &str,
        mode: Mode,
        deadlines: Deadlines,
        attributes: &[(Box<str>, Box<str>)],
    ) -> RedisResult<Load> {
        self.with_writer(async |conn| {
            self.link
                .load(conn, key, meta, mode, deadlines, attributes)
                .await
        })
        .await
    }

    #[allow(clippy::too_many_arguments)] // one script's arguments
    pub(crate) async fn append(
        &self,
        key: &str,
        meta: &str,
        epoch: u64,
        json: Option<&str>,
        close: bool,
        seq: Option<&str>,
    ) -> RedisResult<Appended> {
        self.with_writer(async |conn| {
            self.link
                .append(conn, key, meta, epoch, json, close, seq)
                .await
        })
        .await
    }

    pub(crate) async fn look(
        &self,
        key: &str,
        meta: &str,
        idle: &str,
    ) -> RedisResult<Option<(String, Option<Id>)>> {
        self.with_writer(async |conn| self.link.look(conn, key, meta, idle).await)
            .await
    }

    pub(crate) async fn delete(&self, key: &str, meta: &str) -> RedisResult<bool> {
        self.with_writer(async |conn| self.link.delete(conn, key, meta).await)
            .await
    }

    pub(crate) async fn remove_entry(&self, key: &str, id: &str) {
        if let Ok(mut conn) = self.writer().await {
            self.link.remove_entry(&mut conn, key, id).await;
        }
    }

    /// Adds a stream for the reader to read (with `Some`; with `None` the
    /// reader looks again which of its streams are in use), and waits (at
    /// most the timeout) until an `XREAD` covers the change: a blocked one
    /// is cut short with `CLIENT UNBLOCK` from the writer, so the reader
    /// sends it again with the stream among its keys.
    pub(crate) async fn watch(&self, added: Option<(Arc<str>, Weak<dyn Mirror>)>) {
        let version = self.link.add(added);
        let deadline = Instant::now() + self.link.timeout;
        loop {
            let round = self.link.round.notified();
            tokio::pin!(round);
            round.as_mut().enable();
            if self.link.issued() >= version || !self.link.connected() {
                return;
            }
            if let Some(id) = self.link.reader_id() {
                let _ = self
                    .with_writer(async |conn| {
                        redis::cmd("CLIENT")
                            .arg("UNBLOCK")
                            .arg(id)
                            .query_async::<i64>(conn)
                            .await
                    })
                    .await;
            }
            // The reader's next `XREAD` covers the stream. An unblock that
            // arrived before the `XREAD` blocked did nothing: try again.
            let retry = (Instant::now() + Duration::from_millis(5)).min(deadline);
            if tokio::time::timeout_at(retry, round).await.is_err() && Instant::now() >= deadline {
                return;
            }
        }
    }
}
