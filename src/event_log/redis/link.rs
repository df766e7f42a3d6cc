//! What the hub and its reader task share: the client and settings, the
//! scripts, the connection state, and the streams the reader watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply};
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::id::Id;
use super::mirror::Mirror;
use super::scripts::Scripts;
use crate::event_log::log::SHARED_EPOCH_BIT;

/// How an instance talks to Redis, shared by all its logs.
pub(crate) struct LinkConfig {
    pub(crate) client: Client,
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) block: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) capacity: usize,
    pub(crate) idle: Option<Duration>,
}

/// How many `block` times the reader keeps reading a stream of a
/// collection after its last use here (so that a long-poll client's next
/// request, which comes within milliseconds, finds it read).
const LINGER_BLOCKS: u32 = 10;

/// The settings, scripts and state the hub shares with its reader task.
pub(crate) struct Link {
    client: Client,
    /// `CLIENT SETNAME` of the connections: `<name>:writer`, `<name>:reader`.
    pub(crate) name: String,
    /// Connect and command timeout (the reader's blocking read adds `block`).
    pub(crate) timeout: Duration,
    pub(crate) block: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) max_backoff: Duration,
    /// Entries a stream keeps at least: the capacity + 1, so that the newest
    /// `capacity + 1` events always tell where the evicted ones end.
    pub(crate) keep: usize,
    /// A collection's idle time: how long Redis keeps a stream nobody uses.
    pub(crate) idle: Option<Duration>,
    /// How long the reader reads a stream of a collection after its last
    /// use here, when nobody reads or waits on it here.
    pub(crate) linger: Duration,
    pub(crate) scripts: Scripts,
    /// Whether the reader is connected and in step with the streams.
    connected: AtomicBool,
    /// `CLIENT ID` of the reader's connection (0: none yet).
    reader_id: AtomicU64,
    /// Bumped whenever a stream is added to `watches`.
    version: AtomicU64,
    /// The `version` the reader's current `XREAD` covers.
    issued: AtomicU64,
    /// Woken when the reader sends an `XREAD`.
    pub(crate) round: Notify,
    /// Woken when a stream is added (for a reader with nothing to read).
    pub(crate) changed: Notify,
    /// The streams the reader reads, by stream key.
    watches: Mutex<HashMap<Arc<str>, Weak<dyn Mirror>>>,
}

/// A stream the reader reads in one round: its key and where it stands.
pub(crate) struct Watched {
    pub(crate) key: Arc<str>,
    pub(crate) mirror: Weak<dyn Mirror>,
}

impl Link {
    pub(crate) fn new(config: LinkConfig) -> Self {
        Self {
            client: config.client,
            name: config.name,
            timeout: config.timeout,
            block: config.block,
            retry_after: config.retry_after,
            max_backoff: config.max_backoff,
            keep: config.capacity.saturating_add(1),
            idle: config.idle,
            linger: config.block * LINGER_BLOCKS,
            scripts: Scripts::new(),
            connected: AtomicBool::new(true),
            reader_id: AtomicU64::new(0),
            version: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            round: Notify::new(),
            changed: Notify::new(),
            watches: Mutex::default(),
        }
    }

    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    pub(crate) fn reader_id(&self) -> Option<u64> {
        Some(self.reader_id.load(Ordering::Acquire)).filter(|id| *id != 0)
    }

    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Acquire)
    }

    /// The reader is about to send an `XREAD` that covers `version`.
    pub(crate) fn issue(&self, version: u64) {
        self.issued.store(version, Ordering::Release);
        self.round.notify_waiters();
    }

    /// Adds a stream for the reader (with `Some`), or asks it to read again
    /// the streams it has; returns the version that covers the change.
    pub(crate) fn add(&self, added: Option<(Arc<str>, Weak<dyn Mirror>)>) -> u64 {
        let version = {
            let mut watches = self.watches();
            if let Some((key, mirror)) = added {
                watches.insert(key, mirror);
            }
            self.version.fetch_add(1, Ordering::AcqRel) + 1
        };
        self.changed.notify_one();
        version
    }

    /// The streams to read now (dropping those whose log is gone or
    /// retired), and the version that covers them.
    pub(crate) fn watched(&self) -> (u64, Vec<Watched>) {
        let mut watches = self.watches();
        watches.retain(|_, mirror| mirror.upgrade().is_some_and(|m| !m.is_retired()));
        let version = self.version.load(Ordering::Acquire);
        let watched = watches
            .iter()
            .map(|(key, mirror)| Watched {
                key: Arc::clone(key),
                mirror: Weak::clone(mirror),
            })
            .collect();
        (version, watched)
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Weak<dyn Mirror>>> {
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer: a connection for commands.
    pub(crate) async fn connect_writer(&self) -> RedisResult<MultiplexedConnection> {
        let mut conn = self.connect_with(self.timeout).await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("{}:writer", self.name))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(conn)
    }

    /// The reader's connection, for blocking reads: named, its `CLIENT ID`
    /// noted (for `CLIENT UNBLOCK`), the pipelined scripts loaded.
    pub(crate) async fn connect_reader(&self) -> RedisResult<MultiplexedConnection> {
        let mut conn = self.connect_with(self.block + self.timeout).await?;
        let (id,): (u64,) = redis::pipe()
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("{}:reader", self.name))
            .ignore()
            .cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await?;
        for script in self.scripts.pipelined() {
            script.load_async(&mut conn).await?;
        }
        self.reader_id.store(id, Ordering::Release);
        Ok(conn)
    }

    async fn connect_with(&self, response: Duration) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(response);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
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

pub(crate) fn epoch_hex(epoch: u64) -> String {
    format!("{epoch:016x}")
}

/// A new random epoch for a stream on Redis (top bit set).
pub(crate) fn new_epoch() -> u64 {
    fastrand::u64(..) | SHARED_EPOCH_BIT
}

pub(crate) fn parse_epoch(value: &str) -> RedisResult<u64> {
    match u64::from_str_radix(value, 16) {
        Ok(epoch) if value.len() == 16 && epoch & SHARED_EPOCH_BIT != 0 => Ok(epoch),
        _ => Err(RedisError::from((
            ErrorKind::TypeError,
            "the meta hash holds an epoch that is not an epoch of axum-longpoll",
            value.chars().take(64).collect::<String>(),
        ))),
    }
}

/// Maps stream-ID milliseconds (Redis's clock) to this process's instants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) at: Instant,
    pub(crate) ms: u64,
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

/// A stream's newest entries and what Redis says about its history.
pub(crate) struct Tail {
    /// Newest first; at most `keep + 1`.
    pub(crate) newest: Vec<StreamId>,
    /// How many were asked for: fewer is the whole stream.
    pub(crate) asked: usize,
    /// Whether no entry was ever removed from the stream (`None`: unknown,
    /// Redis before 7.0).
    pub(crate) complete: Option<bool>,
    /// The last ID Redis generated for the stream (`0-0` if none).
    pub(crate) last_generated: Id,
    /// Redis's clock, read with the tail.
    pub(crate) clock: Clock,
}

/// A stream as loaded: its meta hash and its tail, read at one instant.
pub(crate) struct Loaded {
    pub(crate) epoch: u64,
    /// The end's entry ID, once closed.
    pub(crate) closed: Option<Id>,
    /// What the stream was created with ([`StreamOptions::attribute`](crate::event_log::StreamOptions::attribute)),
    /// sorted by key.
    pub(crate) attributes: Vec<(Box<str>, Box<str>)>,
    pub(crate) tail: Tail,
}

/// The reply of the load script, or `None` for a stream that does not
/// exist (and was not to be created).
pub(crate) fn parse_loaded(value: Value, asked: usize) -> RedisResult<Option<Loaded>> {
    if matches!(value, Value::Nil) {
        return Ok(None);
    }
    #[allow(clippy::type_complexity)]
    let (meta, newest, (secs, micros), info, _created): (
        Vec<String>,
        StreamRangeReply,
        (u64, u64),
        Value,
        i64,
    ) = redis::from_redis_value(&value)?;
    let mut epoch = None;
    let mut closed = None;
    let mut attributes = Vec::new();
    for pair in meta.chunks_exact(2) {
        let (field, value) = (pair[0].as_str(), &pair[1]);
        match field {
            "epoch" => epoch = Some(value.as_str()),
            "closed" => closed = Id::parse(value),
            _ => {
                if let Some(key) = field.strip_prefix("a:") {
                    attributes.push((Box::from(key), Box::from(value.as_str())));
                }
            }
        }
    }
    attributes.sort();
    let epoch = parse_epoch(epoch.unwrap_or_default())?;
    let clock = Clock {
        at: Instant::now(),
        ms: secs.saturating_mul(1000).saturating_add(micros / 1000),
    };
    let (complete, last_generated) = match info {
        // No stream yet: nothing was ever added, so nothing removed.
        Value::Nil => (Some(true), Id::ZERO),
        info => stream_info(&info),
    };
    Ok(Some(Loaded {
        epoch,
        closed,
        attributes,
        tail: Tail {
            newest: newest.ids,
            asked,
            complete,
            last_generated,
            clock,
        },
    }))
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

/// How the load script treats a stream that is missing or present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Load it if it exists (not counted as a use).
    Get,
    /// Load it if it exists (counted as a use).
    Find,
    /// Load it, creating it if missing.
    Open,
    /// Create it; refused if it exists.
    Create,
}

/// A stream's own deadlines, given when it is created.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadlines {
    /// Sliding TTL in ms.
    pub(crate) ttl_ms: Option<u64>,
    /// Absolute expiry in Unix ms.
    pub(crate) at_ms: Option<u64>,
}

/// What the load script found.
pub(crate) enum Load {
    Loaded(Loaded),
    /// [`Mode::Get`] of a stream that does not exist.
    Missing,
    /// [`Mode::Create`] of a stream that exists.
    Exists,
}

/// What the append script did.
#[derive(Debug)]
pub(crate) enum Appended {
    /// The entry's ID.
    Entry(String),
    /// Closing a closed stream again: its end.
    End(String),
    /// Refused: the stream is in another epoch (this one).
    Epoch(String),
    /// Refused: the stream does not exist.
    Gone,
    /// Refused: the stream is closed (its end).
    Closed(String),
    /// Refused: the sequence token is not after the last one accepted
    /// (this one).
    OutOfOrder(String),
    /// Nothing to append (a sequence token alone, accepted): the newest
    /// entry's ID.
    Nothing(String),
}

fn opt(value: Option<u64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

pub(crate) fn millis_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Link {
    /// The collection's idle time as a script argument (`''`: none).
    pub(crate) fn idle_arg(&self) -> String {
        opt(self.idle.map(millis_of))
    }

    /// Loads the stream `key` (meta at `meta`), as `mode` says; a stream it
    /// creates gets `deadlines` and `attributes`.
    pub(crate) async fn load(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
        meta: &str,
        mode: Mode,
        deadlines: Deadlines,
        attributes: &[(Box<str>, Box<str>)],
    ) -> RedisResult<Load> {
        let asked = self.keep.saturating_add(1);
        let mode_arg = match mode {
            Mode::Get => "get",
            Mode::Find => "find",
            Mode::Open => "open",
            Mode::Create => "create",
        };
        let mut invocation = self.scripts.load.key(key);
        invocation
            .key(meta)
            .arg(mode_arg)
            .arg(epoch_hex(new_epoch()))
            .arg(opt(deadlines.ttl_ms))
            .arg(opt(deadlines.at_ms))
            .arg(self.idle_arg())
            .arg(asked);
        for (name, value) in attributes {
            invocation.arg(&**name).arg(&**value);
        }
        match invocation.invoke_async::<Value>(conn).await {
            Ok(value) => Ok(match parse_loaded(value, asked)? {
                Some(loaded) => Load::Loaded(loaded),
                None => Load::Missing,
            }),
            Err(err) if err.code() == Some("EXISTS") => Ok(Load::Exists),
            Err(err) => Err(err),
        }
    }

    /// Appends `json` (and/or the close) under `epoch`, guarded by the
    /// sequence token `seq` if any.
    #[allow(clippy::too_many_arguments)] // one script's arguments
    pub(crate) async fn append(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
        meta: &str,
        epoch: u64,
        json: Option<&str>,
        close: bool,
        seq: Option<&str>,
    ) -> RedisResult<Appended> {
        let mut invocation = self.scripts.append.key(key);
        invocation
            .key(meta)
            .arg(epoch_hex(epoch))
            .arg(self.keep)
            .arg(json.unwrap_or_default())
            .arg(if close { "1" } else { "0" })
            .arg(self.idle_arg())
            .arg(if seq.is_some() { "1" } else { "0" })
            .arg(seq.unwrap_or_default());
        match invocation.invoke_async::<(String, i64)>(conn).await {
            Ok((id, 1)) => Ok(Appended::Entry(id)),
            Ok((last, 2)) => Ok(Appended::OutOfOrder(last)),
            Ok((id, 3)) => Ok(Appended::Nothing(id)),
            Ok((id, _)) => Ok(Appended::End(id)),
            Err(err) => {
                let detail = || err.detail().unwrap_or_default().to_owned();
                match err.code() {
                    Some("EPOCH") => Ok(Appended::Epoch(detail())),
                    Some("GONE") => Ok(Appended::Gone),
                    Some("CLOSED") => Ok(Appended::Closed(detail())),
                    _ => Err(err),
                }
            }
        }
    }

    /// Looks at one stream before a request uses it: its epoch (`None`:
    /// gone) and its newest entry's ID (`None`: no entry); counts a use
    /// with `idle` (the idle argument of the look script; `-`: none).
    pub(crate) async fn look(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
        meta: &str,
        idle: &str,
    ) -> RedisResult<Option<(String, Option<Id>)>> {
        let mut invocation = self.scripts.look.key(meta);
        invocation.key(key).arg(idle);
        let (epoch, newest): (Option<String>, String) = invocation.invoke_async(conn).await?;
        Ok(epoch.map(|epoch| (epoch, Id::parse(&newest))))
    }

    /// Replaces `old` by a new epoch (unless another instance did); the
    /// epoch in force.
    pub(crate) async fn claim(
        &self,
        conn: &mut MultiplexedConnection,
        meta: &str,
        old: u64,
    ) -> RedisResult<Option<String>> {
        self.scripts
            .claim
            .key(meta)
            .arg(epoch_hex(old))
            .arg(epoch_hex(new_epoch()))
            .invoke_async(conn)
            .await
    }

    /// Deletes a stream; whether it existed.
    pub(crate) async fn delete(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
        meta: &str,
    ) -> RedisResult<bool> {
        // Long enough for every instance reading it to see the `deleted`
        // entry (a reconnecting one finds the meta hash gone instead).
        let grace = millis_of((self.block + self.timeout) * 2);
        let mut invocation = self.scripts.delete.key(key);
        invocation.key(meta).arg(self.keep).arg(grace);
        let existed: i64 = invocation.invoke_async(conn).await?;
        Ok(existed == 1)
    }

    /// Removes an entry (best effort).
    pub(crate) async fn remove_entry(&self, conn: &mut MultiplexedConnection, key: &str, id: &str) {
        let _: RedisResult<i64> = redis::cmd("XDEL").arg(key).arg(id).query_async(conn).await;
    }
}
