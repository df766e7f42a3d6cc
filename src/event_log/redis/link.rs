//! The Redis side: connections, the epoch key, the append script and the
//! snapshot of the stream's tail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply};
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult, Script, Value};
use tokio::time::Instant;

use super::id::Id;
use crate::event_log::log::SHARED_EPOCH_BIT;

/// Appends only while the epoch key still holds the epoch the writer knows,
/// so an event is never filed under an epoch whose history Redis lost.
const APPEND: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('EPOCH the epoch of this stream changed')
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[3])
";

/// Sets the epoch key to ARGV[2] when it is missing or holds ARGV[1] (an
/// epoch to replace; empty: none); returns the epoch in force.
const CLAIM: &str = r"
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
";

/// The stream's newest entries, Redis's clock and `XINFO STREAM` (nil when
/// there is no stream), read at one instant: an entry added between two
/// separate reads could otherwise be counted as seen and never read.
const TAIL: &str = r"
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])
local time = redis.call('TIME')
local info = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  info = redis.call('XINFO', 'STREAM', KEYS[1])
end
return {newest, time, info}
";

/// Settings and scripts shared by the log and its reader task.
pub(crate) struct Link {
    client: Client,
    pub(crate) key: String,
    pub(crate) epoch_key: String,
    /// Connect and command timeout (the reader's blocking read adds `block`).
    pub(crate) timeout: Duration,
    pub(crate) block: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) max_backoff: Duration,
    /// Entries the stream keeps at least: the log's capacity + 1, so that
    /// the newest `capacity + 1` entries always tell where the evicted ones
    /// end.
    pub(crate) keep: usize,
    append: Script,
    claim: Script,
    tail: Script,
    /// Whether the reader is connected and in step with the stream.
    connected: AtomicBool,
}

pub(crate) struct LinkConfig {
    pub(crate) client: Client,
    pub(crate) key: String,
    pub(crate) timeout: Duration,
    pub(crate) block: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) capacity: usize,
}

/// The newest entries of the stream and what Redis says about its history.
pub(crate) struct Tail {
    /// Newest first; at most `keep`.
    pub(crate) newest: Vec<StreamId>,
    /// Whether no entry was ever removed from the stream (`None`: unknown,
    /// Redis before 7.0).
    pub(crate) complete: Option<bool>,
    /// The last ID Redis generated for the stream (`0-0` if none).
    pub(crate) last_generated: Id,
    /// Redis's clock, read with the tail.
    pub(crate) clock: Clock,
}

/// Maps stream-ID milliseconds (Redis's clock) to this process's instants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    at: Instant,
    ms: u64,
}

impl Clock {
    pub(crate) fn instant(&self, ms: u64) -> Instant {
        if ms >= self.ms {
            self.at + Duration::from_millis(ms - self.ms)
        } else {
            self.at
                .checked_sub(Duration::from_millis(self.ms - ms))
                .unwrap_or(self.at)
        }
    }
}

pub(crate) fn epoch_hex(epoch: u64) -> String {
    format!("{epoch:016x}")
}

fn parse_epoch(value: &str) -> RedisResult<u64> {
    match u64::from_str_radix(value, 16) {
        Ok(epoch) if value.len() == 16 && epoch & SHARED_EPOCH_BIT != 0 => Ok(epoch),
        _ => Err(RedisError::from((
            ErrorKind::TypeError,
            "the epoch key holds a value that is not an epoch of axum-longpoll",
            value.chars().take(64).collect::<String>(),
        ))),
    }
}

/// Whether `err` means the connection is unusable (and must be replaced),
/// as opposed to an error answer from Redis.
pub(crate) fn is_broken(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
}

impl Link {
    pub(crate) fn new(config: LinkConfig) -> Self {
        let epoch_key = format!("{}:epoch", config.key);
        Self {
            client: config.client,
            key: config.key,
            epoch_key,
            timeout: config.timeout,
            block: config.block,
            retry_after: config.retry_after,
            max_backoff: config.max_backoff,
            keep: config.capacity.saturating_add(1),
            append: Script::new(APPEND),
            claim: Script::new(CLAIM),
            tail: Script::new(TAIL),
            connected: AtomicBool::new(true),
        }
    }

    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    /// A connection for commands.
    pub(crate) async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        self.connect_with(self.timeout).await
    }

    /// A connection for the reader's blocking reads.
    pub(crate) async fn connect_reader(&self) -> RedisResult<MultiplexedConnection> {
        self.connect_with(self.block + self.timeout).await
    }

    async fn connect_with(&self, response: Duration) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(response);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// The epoch in force: the one in Redis, or a new one if there is none,
    /// or if it is `replace` (an epoch whose history was found lost).
    pub(crate) async fn claim_epoch(
        &self,
        conn: &mut MultiplexedConnection,
        replace: Option<u64>,
    ) -> RedisResult<u64> {
        let candidate = fastrand::u64(..) | SHARED_EPOCH_BIT;
        let current: String = self
            .claim
            .key(&self.epoch_key)
            .arg(replace.map(epoch_hex).unwrap_or_default())
            .arg(epoch_hex(candidate))
            .invoke_async(conn)
            .await?;
        parse_epoch(&current)
    }

    /// `XADD` under `epoch`; `Ok(None)` when the epoch key holds another.
    pub(crate) async fn append(
        &self,
        conn: &mut MultiplexedConnection,
        epoch: u64,
        json: &str,
    ) -> RedisResult<Option<String>> {
        let mut invocation = self.append.key(&self.key);
        invocation
            .key(&self.epoch_key)
            .arg(epoch_hex(epoch))
            .arg(self.keep)
            .arg(json);
        match invocation.invoke_async(conn).await {
            Ok(id) => Ok(Some(id)),
            Err(err) if err.code() == Some("EPOCH") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes an entry (best effort).
    pub(crate) async fn delete(&self, conn: &mut MultiplexedConnection, id: &str) {
        let _: RedisResult<i64> = redis::cmd("XDEL")
            .arg(&self.key)
            .arg(id)
            .query_async(conn)
            .await;
    }

    /// The epoch key's value as a round of the reader sees it, and entries
    /// after `after` (at most `count`, waiting up to `block` for one).
    pub(crate) async fn round(
        &self,
        conn: &mut MultiplexedConnection,
        after: Id,
        count: usize,
    ) -> RedisResult<(Option<String>, Vec<StreamId>)> {
        let block = u64::try_from(self.block.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (epoch, reply): (Option<String>, Option<redis::streams::StreamReadReply>) =
            redis::pipe()
                .cmd("GET")
                .arg(&self.epoch_key)
                .cmd("XREAD")
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(block)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(after.to_string())
                .query_async(conn)
                .await?;
        let entries = reply
            .and_then(|r| r.keys.into_iter().next())
            .map(|k| k.ids)
            .unwrap_or_default();
        Ok((epoch, entries))
    }

    /// The newest `keep` entries and what Redis knows of the stream.
    pub(crate) async fn tail(&self, conn: &mut MultiplexedConnection) -> RedisResult<Tail> {
        let (newest, (secs, micros), info): (StreamRangeReply, (u64, u64), Value) = self
            .tail
            .key(&self.key)
            .arg(self.keep)
            .invoke_async(conn)
            .await?;
        let clock = Clock {
            at: Instant::now(),
            ms: secs.saturating_mul(1000).saturating_add(micros / 1000),
        };
        let (complete, last_generated) = match info {
            // No stream yet: nothing was ever added, so nothing removed.
            Value::Nil => (Some(true), Id::ZERO),
            info => stream_info(&info),
        };
        Ok(Tail {
            newest: newest.ids,
            complete,
            last_generated,
            clock,
        })
    }
}

/// From `XINFO STREAM`: whether nothing was ever removed
/// (`entries-added == length`, Redis 7.0+) and `last-generated-id`.
fn stream_info(value: &Value) -> (Option<bool>, Id) {
    let pairs: Vec<(&Value, &Value)> = match value {
        Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items.chunks_exact(2).map(|kv| (&kv[0], &kv[1])).collect(),
        _ => Vec::new(),
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let number = |v: &Value| match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    };
    let (mut length, mut added, mut last) = (None, None, Id::ZERO);
    for (k, v) in pairs {
        match text(k).as_deref() {
            Some("length") => length = number(v),
            Some("entries-added") => added = number(v),
            Some("last-generated-id") => {
                last = text(v).as_deref().and_then(Id::parse).unwrap_or(Id::ZERO);
            }
            _ => {}
        }
    }
    let complete = match (length, added) {
        (Some(length), Some(added)) => Some(length == added),
        _ => None,
    };
    (complete, last)
}
