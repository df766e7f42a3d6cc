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
//!     match resume.start(&log) {
//!         Ok(after) => lp.respond_with_log(&log, after).await,
//!         Err(gone) => axum::response::IntoResponse::into_response(gone),
//!     }
//! }
//!
//! let log = EventLog::<Arc<str>>::new(1024);
//! log.publish("hello".into());
//! let app: Router = Router::new()
//!     .route("/poll", get(poll))
//!     .with_state(log)
//!     .layer(DisconnectLayer::new());
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
//!   [`LongPoll::respond_with_log`](crate::LongPoll::respond_with_log)
//!   carries the next cursor in its body and in the [`CURSOR`] header,
//!   including on timeout.
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
//! | publish | `log.publish(x)`: synchronous, cannot fail | `log.publish(x).await`: `Result<Cursor, PublishError>` |
//! | generic publish | [`log.append(x).await`](EventLog::append), always `Ok` | the same as its `publish` |
//! | epoch | random per log: a restart is a `410` `epoch` | kept in Redis: changes only when Redis lost the stream |
//! | positions | 1, 2, 3, … | the stream entry ID `<ms>-<seq>` as `ms << 20 \| seq` |
//! | [`Resume::start`] refuses with | [`CursorGone`] (`410`) | `StartError`: `410`, or `503` + `Retry-After` while Redis is unreachable |
//!
//! Reads are the same for both and never touch the network: they are
//! served from an in-process structure (the memory log itself; for Redis a
//! mirror of the stream's tail), synchronously, under a read lock. So
//! [`Resume::start`], [`LongPoll::respond_with_log`](crate::LongPoll::respond_with_log),
//! [`Streaming::ndjson_log`](crate::Streaming::ndjson_log) /
//! [`sse_log`](crate::Streaming::sse_log) and [`EventLog::subscribe`] are
//! generic over the backend and work unchanged on either.

mod backend;
mod cursor;
mod gone;
mod log;
mod poll;
mod resume;
mod state;
mod subscription;

pub use self::backend::{Backend, Memory, PublishError};
pub use self::cursor::{Cursor, MalformedCursor};
pub use self::gone::{CursorGone, GoneReason};
pub use self::log::{Batch, Event, EventLog, EventLogBuilder};
pub use self::poll::CURSOR;
pub use self::resume::{Resume, ResumeRejection, StartFrom, LAST_EVENT_ID};
pub use self::subscription::Subscription;
