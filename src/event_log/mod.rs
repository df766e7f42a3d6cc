//! Cursor-based event delivery: no event is lost across disconnects,
//! timeouts, reconnects or restarts.
//!
//! An [`EventLog`] retains the latest events in order (bounded by count, and
//! optionally by age). Every event gets a strictly increasing position and a
//! [`Cursor`]. Reading consumes nothing: a client says where it is, gets the
//! events after that, and says where it is next time. So a client that goes
//! away at any moment (before, during or after the response) loses nothing;
//! it comes back with its last cursor.
//!
//! Publishing takes a short write lock, never waits for readers, and wakes
//! every waiting reader once (one `Notify`, no queue or task per reader).
//! A waiting reader costs one future: no allocation, no registration beyond
//! the `Notify` wait list.
//!
//! # The cursor loop (recommended)
//!
//! ```
//! use std::sync::Arc;
//! use axum::{extract::State, response::Response, routing::get, Router};
//! use axum_longpoll::event_log::{EventLog, Resume};
//! use axum_longpoll::{DisconnectLayer, LongPoll};
//!
//! async fn poll(State(log): State<EventLog<Arc<str>>>, resume: Resume, lp: LongPoll) -> Response {
//!     lp.serve(log.reader(resume)).await
//! }
//!
//! # async fn run() -> Result<(), axum_longpoll::event_log::PublishError> {
//! let log = EventLog::<Arc<str>>::new(1024);
//! log.publish("hello".into()).await?;
//! let app: Router = Router::new()
//!     .route("/poll", get(poll))
//!     .with_state(log)
//!     .layer(DisconnectLayer::new());
//! # Ok(()) }
//! ```
//!
//! A client keeps one cursor and loops:
//!
//! ```text
//! cursor = ""                                   # first request: "from now"
//! loop:
//!   GET /poll?timeout=30&cursor=$cursor
//!   200 → handle each of .events in order; cursor = .cursor
//!   204 → cursor = header Cursor                # timed out, nothing new
//!   410 → resynchronise (events were missed); cursor = .cursor
//!   503 → wait Retry-After, keep cursor         # server restarting
//!   400 → bug in the client: stop
//!   network error → back off with jitter, keep cursor
//! ```
//!
//! The same loop in a browser:
//!
//! ```js
//! let cursor = "";
//! for (;;) {
//!   const url = "/poll?timeout=30" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
//!   let res;
//!   try { res = await fetch(url); } catch { await backoff(); continue; }
//!   if (res.status === 200) {
//!     const body = await res.json();
//!     for (const ev of body.events) show(ev.data);
//!     cursor = body.cursor;
//!   } else if (res.status === 204) {
//!     cursor = res.headers.get("Cursor");
//!   } else if (res.status === 410) {
//!     const gone = await res.json();   // {reason: "evicted" | "epoch" | "ahead", cursor}
//!     await resync();                  // events were missed: reload the state
//!     cursor = gone.cursor;
//!   } else {
//!     await backoff();                 // 503 on shutdown: Retry-After
//!   }
//! }
//! ```
//!
//! # Cursors in and out
//!
//! - In: [`Resume`] reads `Last-Event-ID`, `?cursor=` and `?last_event_id=`
//!   (and `?from=now|oldest` when there is none).
//! - Out: each event's `id` is its cursor; each answer of
//!   [`LongPoll::serve`](crate::LongPoll::serve) carries the next cursor in
//!   its body and in the [`CURSOR`](crate::long_poll::CURSOR) header,
//!   including on timeout; a stream's first frame carries its start.
//! - [`EventLog::reader`] pairs the two: the client's position in a log,
//!   which every mode serves ([`LogReader`]).
//!
//! # When a cursor cannot be served
//!
//! | cursor | answer |
//! |---|---|
//! | not a cursor, empty, too long, non-UTF-8 | `400` naming the parameter ([`ResumeRejection`]) |
//! | from another epoch (the server restarted) | `410`, `"reason":"epoch"` |
//! | older than the oldest retained event | `410`, `"reason":"evicted"` |
//! | ahead of the newest event | `410`, `"reason":"ahead"` |
//!
//! The `410` body ([`CursorGone`]) carries `cursor`, the position before the
//! oldest retained event. **Recovery rule:** events were missed, so rebuild
//! whatever the client derived from them, then continue from that cursor.
//! A reader whose cursor is evicted while it waits (more than `capacity`
//! events published before it woke) gets the same `410`.
//!
//! # Backends
//!
//! `EventLog<T, B = Memory>`: `B` says where the events live.
//!
//! | | [`Memory`] (the default) | `Redis` (feature `redis`) |
//! |---|---|---|
//! | events live in | this process | a Redis stream, shared by every instance that names its key |
//! | publish | [`log.publish(x).await`](EventLog::publish): ready at once, never fails | `log.publish(x).await`: writes to Redis first; [`PublishError`] when Redis is unreachable |
//! | epoch | random per log: a restart is a `410` `epoch` | kept in Redis: changes only when Redis lost the stream |
//! | positions | 1, 2, 3, … | the stream entry ID `<ms>-<seq>` as `ms << 20 \| seq` |
//! | [`Resume::start`] refuses with | [`CursorGone`] (`410`) | `StartError`: `410`, or `503` + `Retry-After` while Redis is unreachable |
//!
//! Reads are the same for both and never touch the network: they are
//! served from an in-process structure (the memory log itself; for Redis a
//! mirror of the stream's tail), synchronously, under a read lock. So
//! [`EventLog::reader`], every mode's serve call and [`EventLog::subscribe`]
//! are generic over the backend and work unchanged on either.
//!
//! Each event's JSON is made once, by the first reader that needs it (on
//! Redis it is the JSON the stream holds), and shared by every answer,
//! stream and socket that carries the event.
//!
//! # The Redis backend
//!
//! With the `redis` feature, [`EventLogBuilder::redis`](EventLogBuilder#method.redis)
//! builds a log on a Redis stream. Every instance that connects to the same
//! key serves the same events with the same cursors, so a client's next
//! long-poll, stream or reconnect may land on any of them.
//!
//! ```ignore
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! let log = EventLog::builder()
//!     .capacity(10_000)
//!     .redis(client, "chat:events")
//!     .connect::<Arc<str>>()
//!     .await?;
//! let cursor = log.publish("hello".into()).await?;
//! ```
//!
//! **Client crate.** [redis-rs](https://docs.rs/redis/0.32) (`redis` 0.32,
//! features `tokio-comp`, `streams`, `script`): the maintained, most widely
//! used Redis client for Rust, async on Tokio, with multiplexed connections
//! and scripts that fall back from `EVALSHA` to loading on `NOSCRIPT`. Its
//! 0.32 line is the newest whose minimum Rust (1.75) fits this crate's. Its
//! `ConnectionManager` is not used: it retries inside a command, and this
//! log wants a failing publish to fail at once and the reader to control its
//! own reconnects. The crate is re-exported as `axum_longpoll::redis`.
//!
//! **One reader per log.** Each log holds two connections: one for
//! publishing, one for a reader task that loops on `XREAD BLOCK <block>
//! STREAMS <key> <last ID>` and appends what it gets to the mirror (which
//! keeps exactly what a memory log of the same capacity and age would), then
//! wakes the local waiters through the log's `Notify`. So 10,000 parked
//! clients on one instance cost one Redis connection and one `XREAD` at a
//! time, and a publish anywhere wakes every instance's waiters one round
//! trip later.
//!
//! **Publish** is `XADD <key> MAXLEN ~ <capacity + 1> * data <json>` in a
//! Lua script that first checks the epoch (below). The stream keeps at least
//! `capacity + 1` entries (so the newest `capacity + 1` always tell exactly
//! where the evicted ones end); every instance on a key must use the same
//! capacity. `publish` returns once this instance's mirror has the entry
//! (at most `RedisLogBuilder::timeout` later), so a read
//! here right after sees it.
//!
//! **Cursors and positions.** A cursor keeps the opaque
//! `<16-hex epoch>-<decimal position>` form; the position is the entry ID
//! `<ms>-<seq>` packed as `ms << 20 | seq`, so positions order as IDs do and
//! are sparse. An ID that does not fit (2^20 or more entries within one
//! millisecond, which Redis only produces when its clock went back under
//! heavy load, or a time after the year 2527) cannot be addressed: a publish
//! that gets such an ID deletes the entry again and fails with
//! [`PublishError::Unaddressable`]; an entry written by someone else with
//! such an ID, or whose `data` is not JSON of `T`, is a gap in the mirror, so
//! readers behind it get `410` `evicted`, never a silent skip.
//!
//! **Epochs.** The epoch is a random 64-bit value with the top bit set (the
//! memory log's random epochs have it clear, so the two never match), kept
//! at `<key>:epoch` and created if missing. A publish appends only while
//! that key holds the epoch it knows. It is replaced only when the stream's
//! history is lost:
//!
//! - Redis restarted without persistence: key and stream are gone; the
//!   first instance back creates a new epoch, every instance adopts it,
//!   and old cursors get `410` `epoch` (with a cursor to start over from),
//!   never a silent gap.
//! - Redis restarted with `appendonly yes` (or RDB that has it all): the
//!   epoch and the stream are back; each reader reconnects, checks that the
//!   last entry it saw is still there, and reads on from it: zero loss.
//! - Redis came back without writes that instances had already seen (a
//!   crash inside the fsync window, a failover to a replica that lagged):
//!   the reader finds its last entry missing and replaces the epoch, so
//!   clients resynchronise rather than miss those events unknowingly.
//!
//! **Lag.** An instance's mirror may be a moment behind another's: a cursor
//! ahead of this instance's newest event is waited for, not refused.
//! [`wait`](EventLog::wait) answers `410` `ahead` only after the reader
//! has caught up with the stream twice since and the cursor is still ahead
//! (at most about twice `RedisLogBuilder::block`).
//!
//! **Redis unavailable.**
//!
//! | what | while Redis is down |
//! |---|---|
//! | new requests ([`Resume::start`]) | `503` + `Retry-After` (`StartError::Unavailable`) |
//! | parked long-polls and open streams | keep waiting (heartbeats go on), or time out as usual |
//! | publish | fails at once or after the timeout: [`PublishError::Unavailable`] (`503` as a response); never dropped silently. The event may still have reached Redis before the failure: a retry gives at-least-once delivery |
//! | the reader | reconnects with jittered exponential backoff (50 ms doubling, capped at 2 s), resynchronises from the last ID it saw, then wakes the waiters with what was published meanwhile |
//!
//! **Requirements.** Redis 5 or later (7.0 or later makes the floor exact
//! even after someone else trimmed the stream); a `maxmemory-policy` that
//! never evicts the epoch key (`noeviction` or a `volatile-*` one: the key
//! has no TTL); one Redis, not Redis Cluster.

pub(crate) mod backend;
mod cursor;
mod gone;
mod log;
mod presence;
mod reader;
#[cfg(feature = "redis")]
mod redis;
mod resume;
mod state;
mod streams;
mod subscription;

pub use self::backend::{Backend, Memory, Payload, PublishError};
pub use self::cursor::{Cursor, MalformedCursor};
pub use self::gone::{CursorGone, GoneReason};
pub use self::log::{Batch, Event, EventLog, EventLogBuilder, Figures};
pub use self::reader::LogReader;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{Redis, RedisLogBuilder, RedisStreamsBuilder, StartError, Unavailable};
pub use self::resume::{Resume, ResumeRejection, StartFrom, LAST_EVENT_ID};
pub use self::streams::{
    check_name, StreamOptions, Streams, StreamsBuilder, StreamsError, MAX_NAME,
};
pub use self::subscription::{Step, Subscription};

pub(crate) use self::log::Make;
pub(crate) use self::state::Entry;
pub(crate) use self::subscription::Steps;
