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
//! # Many streams, and streams that end
//!
//! An application has many streams, not one: a log per chat room, per
//! user, per document, per AI answer. A [`Streams`] collection holds them
//! by name (1 to 128 characters of `A–Z a–z 0–9 . _ ~ -`, [`check_name`]):
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum_longpoll::EventLog;
//!
//! let rooms = EventLog::builder()
//!     .capacity(500)                      // per stream: events (also max_age, max_bytes)
//!     .streams()
//!     .max_streams(10_000)                // beyond: 503 + Retry-After
//!     .idle(Some(Duration::from_secs(600)))
//!     .build::<Arc<str>>();
//! let lobby = rooms.get_or_create("lobby").await?; // created on first use
//! lobby.publish("hello".into()).await?;
//! let end = lobby.close(Some("bye".into())).await?; // the last event and the end, at once
//! # let _ = end; Ok(()) }
//! ```
//!
//! Handlers take the stream by name and serve it like any log:
//! `lp.serve(rooms.get_or_create(&name).await?.reader(resume))`. Each stream
//! has its own epoch, so a cursor of another stream (or of an earlier
//! stream of the same name) is refused `410` `epoch`, "from another stream
//! or an earlier run".
//!
//! **When a stream goes.** A stream nobody reads, waits on or publishes to
//! for [`idle`](StreamsBuilder::idle) (default 5 minutes) is evicted; never
//! while a stream or WebSocket reads it or a long-poll waits on it (they
//! are counted: [`EventLog::figures`]), and each read request or publish
//! starts the time again. A stream created with a
//! [TTL or an expiry](StreamOptions) goes when it runs out, readers or not.
//! [`Streams::delete`] removes one at once. Its readers and waiters are
//! told (`410`, reason `deleted`), and the name can be used again for a new
//! stream. There is no task per stream: one janitor task per collection
//! sleeps until the earliest deadline (a heap with at most one entry per
//! stream, planned when a stream becomes idle and looked at again when its
//! time comes), so 100,000 idle streams cost no work until one is due.
//!
//! **What an idle stream costs** (heap bytes still allocated, counted by
//! the allocator over 100,000 streams: `cargo test --test streams_memory --
//! --nocapture`): about 300 bytes for an empty stream (its name, the map's
//! entry, the log and its place in the janitor's plan), about 600 with one
//! small event retained (the first event allocates room for four), and
//! about 90 more per reader.
//!
//! **Streams that end.** [`EventLog::close`] ends a stream, optionally
//! appending a last event in the same step; a publish after it is
//! [`PublishError::Closed`] (`409`). Readers behind the end get every event
//! first; a reader that reaches the end learns that the stream is finished,
//! which is not the same as being up to date:
//!
//! | mode | at the end of a closed stream |
//! |---|---|
//! | long-poll | the last batch has `"closed":true` and `Stream-Closed: true`; a poll at the end answers at once (`200`, no events, `"closed":true`), never parks |
//! | NDJSON | `{"control":"closed","cursor":"<end>"}`, then the body ends; a request at the end is `204` |
//! | SSE | `event: closed` with `id:` = the end, then the body ends; `EventSource`'s reconnect (its `Last-Event-ID` is the end) gets `204`, which stops it |
//! | WebSocket | a `{"control":"closed",…}` frame, then close `1000` with a reason that says closed |
//!
//! # Backends
//!
//! `EventLog<T, B = Memory>`: `B` says where the events live.
//!
//! | | [`Memory`] (the default) | `Redis` (feature `redis`) |
//! |---|---|---|
//! | events live in | this process | a Redis stream, shared by every instance that names its key (or its collection's prefix) |
//! | publish | [`log.publish(x).await`](EventLog::publish): ready at once, never fails | `log.publish(x).await`: writes to Redis first; [`PublishError`] when Redis is unreachable |
//! | epoch | random per log: a restart is a `410` `epoch` | random per stream, kept in Redis: changes only when the stream was lost (or deleted and created again) |
//! | a [`Streams`] collection | [`StreamsBuilder::build`] | [`StreamsBuilder::redis`](StreamsBuilder#method.redis)`(client, prefix).connect()`: `get_or_create`, `create`, `find`, `delete` are the same calls, `async` on both |
//! | positions | 1, 2, 3, … | the stream entry ID `<ms>-<seq>` as `ms << 20 \| seq` |
//! | [`Resume::start`] refuses with | [`CursorGone`] (`410`) | `StartError`: `410`, or `503` + `Retry-After` while Redis is unreachable |
//!
//! Reads are the same for both and never touch the network: they are
//! served from an in-process structure (the memory log itself; for Redis a
//! mirror of the stream's tail), synchronously, under a read lock. So
//! [`EventLog::reader`], every mode's serve call and [`EventLog::subscribe`]
//! are generic over the backend and work unchanged on either.
//!
//! Each event is serialized once, at publish and outside the log's lock
//! (on Redis the JSON the stream holds is taken as it is), into one buffer
//! shared by every answer, stream and socket that carries the event: a
//! one-event long-poll answer, an NDJSON line and a WebSocket text are
//! slices of it, not copies (the layout and its memory cost: `encoded.rs`).
//! A durable stream's chunks are the exception: their reads use their
//! bytes, so they are not serialized at publish.
//!
//! # The Redis backend
//!
//! With the `redis` feature, a log or a [`Streams`] collection lives in
//! Redis, shared by every instance that names the same key or prefix: each
//! serves the same events with the same cursors and the same closure, so a
//! client's next long-poll, stream or reconnect may land on any of them.
//!
//! ```ignore
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! // One log:
//! let log = EventLog::builder()
//!     .capacity(10_000)
//!     .redis(client.clone(), "chat:events")
//!     .connect::<Arc<str>>()
//!     .await?;
//! let cursor = log.publish("hello".into()).await?;
//! // Many named streams, created on demand, each at `chat:room:<name>`:
//! let rooms = EventLog::builder()
//!     .capacity(1024)
//!     .streams()
//!     .max_streams(10_000)
//!     .idle(Some(Duration::from_secs(300)))
//!     .redis(client, "chat:room:")
//!     .connect::<Arc<str>>()
//!     .await?;
//! let lobby = rooms.get_or_create("lobby").await?; // 400, or 503 + Retry-After
//! lobby.publish("hello".into()).await?;
//! lobby.close(Some("bye".into())).await?;
//! ```
//!
//! Builders: [`EventLogBuilder::redis`](EventLogBuilder#method.redis)`(client,
//! key)` → `RedisLogBuilder` → `connect::<T>()` gives an [`EventLog`];
//! [`StreamsBuilder::redis`](StreamsBuilder#method.redis)`(client, prefix)` →
//! `RedisStreamsBuilder` → `connect::<T>()` gives a [`Streams`]. Both have
//! the same settings: `timeout` (connect and command, 2 s), `block` (one
//! `XREAD BLOCK`, 2 s), `retry_after` (of the `503` answers, 1 s),
//! `max_backoff` (reconnects, 2 s) and `client_name` (`axum-longpoll`).
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
//! **Keys.** A stream at key `K` (the log's key, or `<prefix><name>` in a
//! collection) is two Redis keys:
//!
//! | key | holds |
//! |---|---|
//! | `K` | a Redis stream: an entry per event, with `e` (the epoch it was written under) and `data` (its JSON); the entry that closes the stream has `close`; a deleted stream gets a last entry with `deleted` |
//! | `K:meta` | a hash: `epoch`; `closed` (the end's entry ID, once closed); `ttl` and `at` (a collection stream's own TTL and expiry); `seq` (the last [sequence token](Append::seq) accepted); `a:<key>` (each [attribute](StreamOptions::attribute) the stream was created with) |
//!
//! The hash is what says that a stream exists. Every change is one Lua
//! script, so that no command of any instance comes between its checks and
//! its writes: publish and close, load (which creates a missing stream),
//! delete, and the reader's resync and sweep.
//!
//! **Two connections per instance.** The builder's `connect` opens them,
//! whatever the number of streams: a multiplexed writer for every command
//! of every stream, and a reader connection for one task that keeps the
//! in-process mirrors in step with one `XREAD BLOCK <block> STREAMS <k1> …
//! <kn> <id1> … <idn>` over the streams read here, and wakes each stream's
//! waiters through its `Notify`. So 10,000 clients parked on 1,000 streams
//! cost two Redis connections and one `XREAD` at a time, and a publish
//! anywhere wakes every instance's waiters one round trip later. `CLIENT
//! LIST` shows them as `<client_name>:writer` and `<client_name>:reader`.
//!
//! **What is mirrored, and when.** A log outside a collection is read all
//! the time. In a collection, [`Streams::get_or_create`] (and `create`,
//! [`find`](Streams::find)) loads a stream's meta (its epoch, closure and
//! attributes) and newest `capacity` events into a mirror, in one script,
//! the first time this instance uses it. A later lookup of a stream
//! mirrored here costs one round trip: a script reads the stream's epoch
//! and newest entry ID (and counts the use), and the lookup returns once
//! the mirror holds that entry (at most `timeout` later), so a request
//! served here sees every event published before it on any instance, and
//! a stream deleted or expired elsewhere is found gone at once. The reader then reads the
//! stream while a stream or socket reads it here, a long-poll waits on it,
//! or it was used here (a request, a publish) within ten times `block`;
//! after that it stops naming it (every name in an `XREAD` costs Redis work
//! on every round: about 0.3 µs), and the mirror stays as it was. Before
//! it reads a stream again, the reader checks that the mirror's last entry
//! is still in the stream and reads on from it (nothing is skipped), or
//! loads it again (trimmed past: old cursors get `410` `evicted`; history
//! lost: a new epoch). A new stream, or one used again, is added to the
//! read at once: the writer cuts the blocked `XREAD` short with `CLIENT
//! UNBLOCK <reader>`, and `get_or_create` and `publish` return once an
//! `XREAD` covers it. A mirror nobody used here for `idle` is dropped here
//! (the stream stays in Redis for the other instances; using it again
//! loads it again, same epoch); `max_streams` caps the mirrors of one
//! instance.
//!
//! **Publish and close.** Publish is `XADD <key> MAXLEN ~ <capacity + 1>`
//! in a script that first checks the epoch, that the stream is not
//! closed and, for an [`Append::seq`], that the writer's sequence token
//! sorts after the last one accepted (compared byte by byte in the script,
//! kept in the hash in the same step: [`PublishError::OutOfOrder`] names the
//! last one, whichever instance accepted it). The stream keeps at least `capacity + 1` events (so the newest
//! `capacity + 1` always tell exactly where the evicted ones end); every
//! instance on a key or prefix must use the same capacity. `publish`
//! returns once this instance's mirror has the entry (at most `timeout`
//! later), so a read here right after sees it. [`EventLog::close`] is the
//! same script: the last event, if any, and the close in one step (an entry
//! with `close`, and `closed` in the hash), so no publish can come between
//! them; every instance applies the close right after that event, in
//! stream order, and every later publish is refused ([`PublishError::Closed`],
//! `409`) on every instance. Closing twice answers the same end. Closure is
//! data in Redis: it survives a restart of the instances, and of Redis with
//! persistence.
//!
//! **Cursors and positions.** A cursor keeps the opaque
//! `<16-hex epoch>-<position>` form; the position is the entry ID
//! `<ms>-<seq>` packed as `ms << 20 | seq`, so positions order as IDs do and
//! are sparse. An ID that does not fit (2^20 or more entries within one
//! millisecond, which Redis only produces when its clock went back under
//! heavy load, or a time after the year 2527) cannot be addressed: a publish
//! that gets such an ID deletes the entry again and fails with
//! [`PublishError::Unaddressable`]; an entry written by someone else with
//! such an ID, or whose `data` is not JSON of `T`, is a gap in the mirror, so
//! readers behind it get `410` `evicted`, never a silent skip.
//!
//! **Epochs.** Each stream has its own: a random 64-bit value with the top
//! bit set (the memory log's random epochs have it clear, so the two never
//! match), created with the stream. So a cursor of another stream is refused
//! like one of an earlier run: `410` `epoch`; a name deleted or expired and
//! used again is a new stream with a new epoch. Every entry carries the
//! epoch it was written under: a mirror that reads an entry of another
//! epoch loads the stream again rather than file it under its own. The
//! epoch is replaced only when the stream's history is lost:
//!
//! - Redis restarted without persistence: everything is gone; a log outside
//!   a collection is created again under a new epoch by the first instance
//!   back, every instance adopts it, and old cursors get `410` `epoch` (with
//!   a cursor to start over from), never a silent gap; the streams of a
//!   collection are gone (their readers get `410` `deleted`; the names can be
//!   used again).
//! - Redis restarted with `appendonly yes` (or RDB that has it all): epochs,
//!   streams and closures are back; the reader reconnects, checks for each
//!   stream that the last entry it saw is still there, and reads on from
//!   it: zero loss.
//! - Redis came back without writes that instances had already seen (a
//!   crash inside the fsync window, a failover to a replica that lagged):
//!   the reader finds its last entry missing and replaces the epoch, so
//!   clients resynchronise rather than miss those events unknowingly.
//!
//! **Idle, TTL, expiry and delete** count in Redis, for every instance. The
//! stream's two keys get a `PEXPIRE` that is never shortened (the latest
//! use on any instance wins): a publish sets it to the stream's sliding time
//! (the collection's `idle`, or the stream's [`StreamOptions::ttl`] when
//! shorter, capped at its [`StreamOptions::expires_at`]); every `block` the
//! reader counts this instance's uses (read requests since the last count;
//! a reader or waiter present keeps the stream alive until the next count)
//! and looks whether each stream it mirrors still exists. So a stream is
//! deleted once no instance used it for `idle` (or its TTL, or at its
//! expiry), and readers of a stream that expired get `410` `deleted` on
//! every instance (within `block`). [`Streams::delete`] removes the meta
//! hash at once and gives the stream a `deleted` entry, which wakes every
//! instance's reader: its readers get `410` `deleted` at once; the stream
//! key itself goes after a grace time, or when the name is created again.
//! Every instance on a prefix must use the same `idle`.
//!
//! **Lag.** An instance's mirror may be a moment behind another's: a cursor
//! ahead of this instance's newest event is waited for, not refused.
//! [`wait`](EventLog::wait) answers `410` `ahead` only after the reader
//! has caught up with the stream twice since and the cursor is still ahead
//! (at most about twice `block`).
//!
//! **Redis unavailable.**
//!
//! | what | while Redis is down |
//! |---|---|
//! | new requests ([`Resume::start`]) | `503` + `Retry-After` (`StartError::Unavailable`) |
//! | [`Streams::get_or_create`], `create`, `find`, `delete` of a stream not mirrored here | `503` + `Retry-After` ([`StreamsError::Unavailable`]) |
//! | the same of a stream mirrored here | the mirror as it is (its new requests get `503` as above) |
//! | parked long-polls and open streams | keep waiting (heartbeats go on), or time out as usual |
//! | publish, close | fail at once or after the timeout: [`PublishError::Unavailable`] (`503` as a response); never dropped silently. The event may still have reached Redis before the failure: a retry gives at-least-once delivery |
//! | the reader | reconnects with jittered exponential backoff (50 ms doubling, capped at `max_backoff`), checks every stream it reads against Redis as above, then wakes the waiters with what was published meanwhile |
//!
//! **Requirements.** Redis 5 or later (7.0 or later makes the floor exact
//! even after someone else trimmed the stream); a `maxmemory-policy` of
//! `noeviction` (with a `volatile-*` one, the streams of a collection, which
//! have a TTL, may be evicted under memory pressure, which their readers see
//! as a deletion); one Redis, not Redis Cluster (the scripts use two keys
//! each, and the reader reads every stream on one connection).

pub(crate) mod backend;
mod cursor;
pub(crate) mod encoded;
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
pub use self::log::{Append, Batch, Event, EventLog, EventLogBuilder, Figures};
pub use self::reader::LogReader;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{Redis, RedisLogBuilder, RedisStreamsBuilder, StartError, Unavailable};
pub use self::resume::{Resume, ResumeRejection, StartFrom, LAST_EVENT_ID};
pub use self::streams::{
    check_name, StreamOptions, Streams, StreamsBuilder, StreamsError, MAX_NAME,
};
pub use self::subscription::{Step, Subscription};

#[cfg(feature = "durable")]
pub(crate) use self::log::Found;
pub(crate) use self::log::Make;
pub(crate) use self::state::Entry;
pub(crate) use self::subscription::Steps;
