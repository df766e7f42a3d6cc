//! Counters and gauges an application can read and publish (for example on a
//! `/stats` route): every request that reaches a mode is counted when it
//! starts, in the phase it is in, and once when it ends, by what ended it.
//!
//! # What adds up
//!
//! For every mode, at any moment when no request is starting or ending:
//!
//! ```text
//! started = sum of ended + in_flight
//! ```
//!
//! and for the long-poll and WebSocket modes, whose requests go through
//! phases, `in_flight` is the sum of the phase gauges. (`tests/chaos.rs`
//! checks both after a run of misbehaving clients.)
//!
//! A request reaches a mode when its extractor is taken: [`LongPoll`], or
//! `LiveSocket` for a WebSocket; a stream reaches its mode (NDJSON, SSE or
//! a framing of your own) when [`Streaming`] makes the response. A request
//! refused by a cap has started and ended `rejected` at once, never in
//! flight.
//!
//! | mode | phases (gauges) | ends |
//! |---|---|---|
//! | [`long_poll`](StatsSnapshot::long_poll) | `reading_body`, `handling`, `waiting` | [`LongPollEnded`] |
//! | [`ndjson`](StatsSnapshot::ndjson), [`sse`](StatsSnapshot::sse), [`framed`](StatsSnapshot::framed) | (one: `in_flight`) | [`StreamEnded`] |
//! | [`ws`](StatsSnapshot::ws) | `upgrading`, `open`, `closing` | [`WsEnded`] |
//!
//! The caps are on the gauge of their name:
//! [`LongPollConfig::max_in_flight`](crate::LongPollConfig::max_in_flight)
//! on `long_poll.in_flight`,
//! [`StreamConfig::max_in_flight`](crate::StreamConfig::max_in_flight) on
//! `streaming` (the streams of all three framings together), and
//! `WsConfig::max_in_flight` on `ws.in_flight`.
//!
//! # Metrics (feature `metrics`)
//!
//! Recorded through the `metrics` facade, so any exporter works
//! (`metrics-exporter-prometheus` in the demo's `GET /metrics`). Install
//! the recorder before the first [`DisconnectLayer`](crate::DisconnectLayer)
//! is made: the layer describes the metrics (help texts, units) to it. Every
//! series has a `mode` label (`long_poll`, `ndjson`, `sse`, `framed`, `ws`)
//! where it applies; none has a label per stream unless the collection
//! asks for one ([`StreamsBuilder::metrics_per_stream`](crate::event_log::StreamsBuilder::metrics_per_stream)):
//! a label per stream is a series per stream, which a Prometheus server
//! pays for in memory.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `axum_longpoll_requests_started_total` | counter | `mode` | requests that reached the mode |
//! | `axum_longpoll_requests_ended_total` | counter | `mode`, `outcome` | requests ended, by what ended them (the names of [`StatsSnapshot`]'s `ended`) |
//! | `axum_longpoll_requests_in_flight` | gauge | `mode` | started and not ended |
//! | `axum_longpoll_request_duration_seconds` | histogram | `mode`, `outcome` | from the start to the end of each request |
//! | `axum_longpoll_wait_seconds` | histogram | `outcome` | each [`LongPoll::wait`](crate::LongPoll::wait), by how it ended |
//! | `axum_longpoll_disconnected_after_seconds` | histogram | `mode` | how long a request had run when its client was found gone |
//! | `axum_longpoll_events_per_answer` | histogram | `mode` | events in each long-poll answer |
//! | `axum_longpoll_published_total` | counter | (`stream`) | events appended to logs by this instance |
//! | `axum_longpoll_publish_to_wake_seconds` | histogram | (`stream`) | from an event's append (on Redis: its arrival in this instance) to a waiting reader woken by it: the fan-out delay |
//!
//! How fast a disconnect is *detected* cannot be seen from the server (it
//! does not know when the client left): `benches/run` measures it from the
//! client side. What the server sees is `disconnected_after`: a histogram
//! of request ages when the client turned out gone.
//!
//! # Tracing (feature `tracing`)
//!
//! One `DEBUG` event per request that ends (target `axum_longpoll`), with
//! `mode`, `outcome` and `lasted_ms` (its duration); `INFO` for the ends
//! that say something went wrong on the client's side (`disconnected`,
//! `client_left`, `heartbeat_timeout`, `slow_reader`, `stalled_body`) or the
//! server's (`rejected`, `unavailable`, `error`).
//!
//! [`LongPoll`]: crate::LongPoll
//! [`Streaming`]: crate::Streaming

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Live counters shared by every request that went through one
/// [`DisconnectLayer`](crate::DisconnectLayer).
///
/// Cloning is cheap (one `Arc`). Read it with [`Stats::snapshot`]; see the
/// [module docs](self) for what is counted where.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    inner: Arc<Counters>,
}

/// A mode a request can reach, as it is named in [`StatsSnapshot`] and in
/// metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// [`LongPoll`](crate::LongPoll).
    LongPoll,
    /// [`Streaming::ndjson`](crate::Streaming::ndjson).
    Ndjson,
    /// [`Streaming::sse`](crate::Streaming::sse).
    Sse,
    /// [`Streaming::framed`](crate::Streaming::framed): a framing of your own.
    Framed,
    /// A WebSocket (`LiveSocket`).
    Ws,
}

const MODES: usize = 5;

impl Mode {
    /// The mode's name: `long_poll`, `ndjson`, `sse`, `framed` or `ws`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongPoll => "long_poll",
            Self::Ndjson => "ndjson",
            Self::Sse => "sse",
            Self::Framed => "framed",
            Self::Ws => "ws",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_stream(self) -> bool {
        matches!(self, Self::Ndjson | Self::Sse | Self::Framed)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines an outcome enum, its names and its snapshot struct with one
/// counter per outcome.
macro_rules! outcomes {
    (
        $(#[$enum_meta:meta])* enum $enum:ident;
        $(#[$struct_meta:meta])* struct $struct:ident;
        $( $(#[$meta:meta])* $variant:ident => $field:ident, )+
    ) => {
        $(#[$enum_meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $enum {
            $( $(#[$meta])* $variant, )+
        }

        impl $enum {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The outcome's name, as in [`StatsSnapshot`] and in metrics
            /// labels.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($field), )+
                }
            }

            fn from_index(index: u8) -> Option<Self> {
                Self::ALL.get(usize::from(index)).copied()
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $(#[$struct_meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
        #[non_exhaustive]
        pub struct $struct {
            $( $(#[$meta])* pub $field: u64, )+
        }

        impl $struct {
            fn read(ended: &[AtomicU64; ENDS]) -> Self {
                Self {
                    $( $field: ended[$enum::$variant as usize].load(Ordering::Relaxed), )+
                }
            }

            /// Every end together.
            #[must_use]
            pub fn total(&self) -> u64 {
                0 $( + self.$field )+
            }
        }
    };
}

outcomes! {
    /// What ended a long-poll.
    enum LongPollEnd;
    /// Long-polls ended since start, by what ended them.
    struct LongPollEnded;
    /// Answered with events (`LongPoll::wait` returned `Ready`).
    Ready => ready,
    /// Answered by its timeout (keepalive).
    Timeout => timeout,
    /// Answered because the server is shutting down.
    Shutdown => shutdown,
    /// The client went away: while the body was read, while it waited or
    /// before its answer was made.
    Disconnected => disconnected,
    /// `413`: the body is over
    /// [`LongPollConfig::max_body`](crate::LongPollConfig::max_body).
    TooLarge => too_large,
    /// `400`: a bad `timeout` parameter or `Prefer: wait` header.
    BadRequest => bad_request,
    /// `408`: the body stopped arriving.
    StalledBody => stalled_body,
    /// `503`: [`max_in_flight`](crate::LongPollConfig::max_in_flight) were
    /// in flight.
    Rejected => rejected,
    /// `410`: the client's position is gone (evicted, another epoch, a
    /// deleted stream).
    Gone => gone,
    /// Answered with the end of a closed stream (`"closed":true`).
    Closed => closed,
    /// `503`: the log could not be read (Redis unreachable).
    Unavailable => unavailable,
    /// The handler answered without waiting.
    Answered => answered,
}

outcomes! {
    /// What ended a streamed response (NDJSON, SSE, a framing of your own).
    enum StreamEnd;
    /// Streams ended since start, by what ended them.
    struct StreamEnded;
    /// The client went away (closed or reset the connection, an HTTP/2
    /// reset, a dead peer).
    ClientLeft => client_left,
    /// The response reached
    /// [`max_bytes`](crate::StreamConfig::max_bytes).
    MaxBytes => max_bytes,
    /// The response reached
    /// [`max_lifetime`](crate::StreamConfig::max_lifetime).
    MaxLifetime => max_lifetime,
    /// The server is shutting down.
    Shutdown => shutdown,
    /// The client stopped reading and the server cut the connection
    /// (`serve`'s write-stall bound).
    SlowReader => slow_reader,
    /// The stream was closed: its final frame went out.
    Closed => closed,
    /// The client's position is gone (the `gone` frame went out).
    Gone => gone,
    /// The source ran out (a plain stream).
    End => end,
    /// The log could not be read (`503`), or the body failed.
    Error => error,
    /// `503`: [`max_in_flight`](crate::StreamConfig::max_in_flight)
    /// streams were in flight.
    Rejected => rejected,
    /// The response was dropped before it ended, the client still there
    /// (a layer or the handler discarded it).
    Dropped => dropped,
}

outcomes! {
    /// What ended a WebSocket.
    enum WsEnd;
    /// WebSockets ended since start, by what ended them.
    struct WsEnded;
    /// The client closed (a close frame) or the connection ended without
    /// one (FIN, RST).
    ClientLeft => client_left,
    /// Nothing arrived within the pong timeout of a ping.
    HeartbeatTimeout => heartbeat_timeout,
    /// The server is shutting down (`1001`).
    Shutdown => shutdown,
    /// The client did not read for the send timeout (or for `serve`'s
    /// write-stall bound).
    SlowReader => slow_reader,
    /// The stream was closed: the `closed` frame, then `1000`.
    Closed => closed,
    /// The client's position is gone (`4410`).
    Gone => gone,
    /// The source ran out, or the application closed with `1000`.
    End => end,
    /// The client broke the protocol, the log could not be read, or the
    /// application closed with an error code.
    Error => error,
    /// `503`: `WsConfig::max_in_flight` WebSockets were in flight.
    Rejected => rejected,
    /// The `101` never happened: the client left first, or the handler did
    /// not upgrade.
    NotUpgraded => not_upgraded,
    /// The upgraded connection was dropped without being run.
    Dropped => dropped,
}

/// Counters of one mode. Outcome and phase indexes come from the mode's
/// enums.
const ENDS: usize = 12;
const PHASES: usize = 3;

#[derive(Debug, Default)]
struct ModeCounters {
    started: AtomicU64,
    in_flight: AtomicU64,
    phases: [AtomicU64; PHASES],
    ended: [AtomicU64; ENDS],
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    modes: [ModeCounters; MODES],
    /// Streams in flight over the three framings: what
    /// `StreamConfig::max_in_flight` caps.
    streaming: AtomicU64,
}

/// A phase of a request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Long-poll: the request body is read.
    ReadingBody = 0,
    /// Long-poll: the handler runs (not inside `LongPoll::wait`).
    Handling = 1,
    /// Long-poll: inside `LongPoll::wait`.
    Waiting = 2,
}

/// WebSocket phases (same slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
pub(crate) enum WsPhase {
    /// From the extractor to the `101`.
    Upgrading = 0,
    /// Upgraded, running.
    Open = 1,
    /// In the closing handshake.
    Closing = 2,
}

/// A point-in-time copy of [`Stats`], serializable as JSON.
///
/// The flat fields are the first figures this crate had (kept as they
/// were: applications publish them); the per-mode ones say everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Long-polls waiting right now, inside `LongPoll::wait`
    /// (`long_poll.waiting`).
    pub parked: u64,
    /// Streamed responses in flight right now, all framings (the gauge
    /// [`StreamConfig::max_in_flight`](crate::StreamConfig::max_in_flight)
    /// caps).
    pub streaming: u64,
    /// WebSockets in flight right now (`ws.in_flight`: from the extractor
    /// until the socket's task finished, close handshake included). Always
    /// 0 without the `ws` feature.
    pub websockets: u64,
    /// Long-polls answered with events (`long_poll.ended.ready`).
    pub ready: u64,
    /// Long-polls answered by their timeout (`long_poll.ended.timeout`).
    pub timeout: u64,
    /// Long-polls answered because the server was shutting down
    /// (`long_poll.ended.shutdown`).
    pub shutdown: u64,
    /// Long-polls whose client went away (`long_poll.ended.disconnected`:
    /// while the body was read too). Streams and WebSockets count theirs
    /// in their own `ended.client_left`.
    pub disconnected: u64,
    /// Requests refused `503` by a cap, every mode together (each mode's
    /// `ended.rejected`).
    pub rejected: u64,
    /// Long-polls answered `413` (`long_poll.ended.too_large`).
    pub too_large: u64,
    /// Long-polls.
    pub long_poll: LongPollStats,
    /// NDJSON streams.
    pub ndjson: StreamStats,
    /// SSE streams.
    pub sse: StreamStats,
    /// Streams in a framing of your own.
    pub framed: StreamStats,
    /// WebSockets.
    pub ws: WsStats,
}

/// Long-polls: started, in flight by phase, ended by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LongPollStats {
    /// Since start.
    pub started: u64,
    /// Now: from the extractor to the answer (the gauge
    /// [`max_in_flight`](crate::LongPollConfig::max_in_flight) caps); the
    /// sum of the three phases.
    pub in_flight: u64,
    /// Now: their body is being read.
    pub reading_body: u64,
    /// Now: the handler runs, outside `LongPoll::wait`.
    pub handling: u64,
    /// Now: inside `LongPoll::wait`.
    pub waiting: u64,
    /// Since start, by outcome.
    pub ended: LongPollEnded,
}

/// Streams of one framing: started, in flight, ended by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StreamStats {
    /// Since start.
    pub started: u64,
    /// Now: from the response made to its end.
    pub in_flight: u64,
    /// Since start, by reason.
    pub ended: StreamEnded,
}

/// WebSockets: started, in flight by phase, ended by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WsStats {
    /// Since start.
    pub started: u64,
    /// Now: from the extractor until the socket's task ended (the gauge
    /// `WsConfig::max_in_flight` caps); the sum of the three phases.
    pub in_flight: u64,
    /// Now: before the `101`.
    pub upgrading: u64,
    /// Now: upgraded, running.
    pub open: u64,
    /// Now: in the closing handshake.
    pub closing: u64,
    /// Since start, by reason.
    pub ended: WsEnded,
}

impl Stats {
    /// Creates a new set of counters, all zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the current values.
    ///
    /// Each figure is read atomically but they are not read together, so
    /// while requests start and end the snapshot may mix values from
    /// neighbouring instants.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.inner;
        let mode = |m: Mode| &c.modes[m.index()];
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let stream = |m: Mode| {
            let mc = mode(m);
            StreamStats {
                started: load(&mc.started),
                in_flight: load(&mc.in_flight),
                ended: StreamEnded::read(&mc.ended),
            }
        };
        let lp = mode(Mode::LongPoll);
        let long_poll = LongPollStats {
            started: load(&lp.started),
            in_flight: load(&lp.in_flight),
            reading_body: load(&lp.phases[Phase::ReadingBody as usize]),
            handling: load(&lp.phases[Phase::Handling as usize]),
            waiting: load(&lp.phases[Phase::Waiting as usize]),
            ended: LongPollEnded::read(&lp.ended),
        };
        let w = mode(Mode::Ws);
        let ws = WsStats {
            started: load(&w.started),
            in_flight: load(&w.in_flight),
            upgrading: load(&w.phases[WsPhase::Upgrading as usize]),
            open: load(&w.phases[WsPhase::Open as usize]),
            closing: load(&w.phases[WsPhase::Closing as usize]),
            ended: WsEnded::read(&w.ended),
        };
        let (ndjson, sse, framed) = (
            stream(Mode::Ndjson),
            stream(Mode::Sse),
            stream(Mode::Framed),
        );
        StatsSnapshot {
            parked: long_poll.waiting,
            streaming: load(&c.streaming),
            websockets: ws.in_flight,
            ready: long_poll.ended.ready,
            timeout: long_poll.ended.timeout,
            shutdown: long_poll.ended.shutdown,
            disconnected: long_poll.ended.disconnected,
            rejected: long_poll.ended.rejected
                + ndjson.ended.rejected
                + sse.ended.rejected
                + framed.ended.rejected
                + ws.ended.rejected,
            too_large: long_poll.ended.too_large,
            long_poll,
            ndjson,
            sse,
            framed,
            ws,
        }
    }

    pub(crate) fn counters_arc(&self) -> Arc<Counters> {
        Arc::clone(&self.inner)
    }
}

impl StatsSnapshot {
    /// For each mode: `started − (ended + in_flight)`, and for the modes
    /// with phases `in_flight − sum of phases`; all zero when the figures
    /// add up (read at a quiet moment). For tests and health checks.
    #[must_use]
    pub fn imbalance(&self) -> [(Mode, i128, i128); MODES] {
        let diff = |started: u64, ended: u64, in_flight: u64| {
            i128::from(started) - i128::from(ended) - i128::from(in_flight)
        };
        let lp = &self.long_poll;
        let ws = &self.ws;
        let stream =
            |mode: Mode, s: &StreamStats| (mode, diff(s.started, s.ended.total(), s.in_flight), 0);
        [
            (
                Mode::LongPoll,
                diff(lp.started, lp.ended.total(), lp.in_flight),
                diff(lp.in_flight, lp.reading_body + lp.handling, lp.waiting),
            ),
            stream(Mode::Ndjson, &self.ndjson),
            stream(Mode::Sse, &self.sse),
            stream(Mode::Framed, &self.framed),
            (
                Mode::Ws,
                diff(ws.started, ws.ended.total(), ws.in_flight),
                diff(ws.in_flight, ws.upgrading + ws.open, ws.closing),
            ),
        ]
    }
}

/// An outcome of any mode, as its index in that mode's counters.
pub(crate) trait End: Copy {
    const MODE_DEFAULT: Self;
    fn index(self) -> u8;
}

macro_rules! end_index {
    ($($t:ident => $default:ident),*) => {$(
        impl End for $t {
            const MODE_DEFAULT: Self = Self::$default;
            fn index(self) -> u8 {
                self as u8
            }
        }
    )*};
}
end_index!(LongPollEnd => Answered, StreamEnd => Dropped, WsEnd => NotUpgraded);

/// Not an outcome yet.
const NO_PHASE: u8 = u8::MAX;

/// One request in a mode, counted in flight for as long as it lives and,
/// when dropped, in the outcome last [`set`](Self::set) (or the one it was
/// started with).
#[derive(Debug)]
pub(crate) struct Tracked {
    counters: Arc<Counters>,
    mode: Mode,
    end: AtomicU8,
    phase: AtomicU8,
    #[cfg(any(feature = "metrics", feature = "tracing"))]
    since: std::time::Instant,
}

impl Tracked {
    /// Starts a request in `mode`, unless `max` are in flight already (the
    /// cap's gauge: the mode's `in_flight`, for streams `streaming`); then
    /// it has ended `rejected` and `None` is returned. It starts in phase
    /// `phase` (a slot of the mode's phases), or none.
    pub(crate) fn start<E: End>(
        counters: Arc<Counters>,
        mode: Mode,
        max: usize,
        rejected: E,
        phase: Option<u8>,
    ) -> Option<Self> {
        let c = &counters.modes[mode.index()];
        c.started.fetch_add(1, Ordering::Relaxed);
        let cap = if mode.is_stream() {
            &counters.streaming
        } else {
            &c.in_flight
        };
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        let taken = cap
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        crate::observe::started(mode.as_str(), taken);
        if !taken {
            c.ended[usize::from(rejected.index())].fetch_add(1, Ordering::Relaxed);
            crate::observe::ended(mode.as_str(), end_name(mode, rejected.index()), None, false);
            return None;
        }
        if mode.is_stream() {
            c.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(phase) = phase {
            c.phases[usize::from(phase)].fetch_add(1, Ordering::Relaxed);
        }
        Some(Self {
            counters,
            mode,
            end: AtomicU8::new(E::MODE_DEFAULT.index()),
            phase: AtomicU8::new(phase.unwrap_or(NO_PHASE)),
            #[cfg(any(feature = "metrics", feature = "tracing"))]
            since: std::time::Instant::now(),
        })
    }

    /// Counts a request that ended before it could start, in `end`.
    pub(crate) fn refuse<E: End>(counters: &Counters, mode: Mode, end: E) {
        let c = &counters.modes[mode.index()];
        c.started.fetch_add(1, Ordering::Relaxed);
        crate::observe::started(mode.as_str(), false);
        c.ended[usize::from(end.index())].fetch_add(1, Ordering::Relaxed);
        crate::observe::ended(mode.as_str(), end_name(mode, end.index()), None, false);
    }

    /// What it will have ended with, unless set again.
    pub(crate) fn set<E: End>(&self, end: E) {
        self.end.store(end.index(), Ordering::Relaxed);
    }

    /// Moves it to phase `phase` (a slot of the mode's phases).
    pub(crate) fn enter(&self, phase: u8) {
        let c = &self.counters.modes[self.mode.index()];
        let old = self.phase.swap(phase, Ordering::Relaxed);
        if old == phase {
            return;
        }
        c.phases[usize::from(phase)].fetch_add(1, Ordering::Relaxed);
        if old != NO_PHASE {
            c.phases[usize::from(old)].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn end_name(mode: Mode, index: u8) -> &'static str {
    match mode {
        Mode::LongPoll => LongPollEnd::from_index(index).map_or("", LongPollEnd::as_str),
        Mode::Ws => WsEnd::from_index(index).map_or("", WsEnd::as_str),
        Mode::Ndjson | Mode::Sse | Mode::Framed => {
            StreamEnd::from_index(index).map_or("", StreamEnd::as_str)
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let c = &self.counters.modes[self.mode.index()];
        let phase = *self.phase.get_mut();
        if phase != NO_PHASE {
            c.phases[usize::from(phase)].fetch_sub(1, Ordering::Relaxed);
        }
        let end = *self.end.get_mut();
        c.ended[usize::from(end)].fetch_add(1, Ordering::Relaxed);
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.mode.is_stream() {
            self.counters.streaming.fetch_sub(1, Ordering::Relaxed);
        }
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        let lasted = Some(self.since.elapsed());
        #[cfg(not(any(feature = "metrics", feature = "tracing")))]
        let lasted = None;
        crate::observe::ended(self.mode.as_str(), end_name(self.mode, end), lasted, true);
    }
}
