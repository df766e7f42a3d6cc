//! Counters and gauges an application can read and publish (for example on a
//! `/stats` route).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Live counters shared by every request that went through one
/// [`DisconnectLayer`](crate::DisconnectLayer).
///
/// Cloning is cheap (one `Arc`). Read it with [`Stats::snapshot`].
///
/// Long-poll figures are recorded by [`LongPoll::wait`](crate::LongPoll::wait);
/// a handler that writes its own `select!` over the extractor's futures is not
/// counted.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    parked: AtomicU64,
    streaming: AtomicU64,
    websockets: AtomicU64,
    ready: AtomicU64,
    timeout: AtomicU64,
    shutdown: AtomicU64,
    disconnected: AtomicU64,
    rejected: AtomicU64,
    too_large: AtomicU64,
    /// `LongPoll` extractors alive: what `LongPollConfig::max_parked` caps.
    long_polls: AtomicU64,
}

/// A point-in-time copy of [`Stats`], serializable as JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Long-polls waiting right now (a gauge).
    pub parked: u64,
    /// Streaming responses open right now (a gauge).
    pub streaming: u64,
    /// WebSocket connections open right now (a gauge; from the `LiveSocket`
    /// extractor until the socket's task finished, close handshake
    /// included). Always 0 without the `ws` feature.
    pub websockets: u64,
    /// Long-polls answered with an event, since start.
    pub ready: u64,
    /// Long-polls answered by their timeout (keepalive), since start.
    pub timeout: u64,
    /// Long-polls answered because the server was shutting down, since start.
    pub shutdown: u64,
    /// Long-polls ended because the client went away, since start.
    pub disconnected: u64,
    /// Requests answered `503` because a cap was reached
    /// ([`LongPollConfig::max_parked`](crate::LongPollConfig::max_parked),
    /// [`StreamConfig::max_open`](crate::StreamConfig::max_open),
    /// `WsConfig::max_open`), since start.
    pub rejected: u64,
    /// Long-poll requests answered `413` because their body was over
    /// [`LongPollConfig::max_body`](crate::LongPollConfig::max_body), since
    /// start.
    pub too_large: u64,
}

impl Stats {
    /// Creates a new set of counters, all zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the current values.
    ///
    /// Each field is read atomically but the fields are not read together, so
    /// under load the snapshot may mix values from neighbouring instants.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.inner;
        StatsSnapshot {
            parked: c.parked.load(Ordering::Relaxed),
            streaming: c.streaming.load(Ordering::Relaxed),
            websockets: c.websockets.load(Ordering::Relaxed),
            ready: c.ready.load(Ordering::Relaxed),
            timeout: c.timeout.load(Ordering::Relaxed),
            shutdown: c.shutdown.load(Ordering::Relaxed),
            disconnected: c.disconnected.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            too_large: c.too_large.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner
    }

    pub(crate) fn counters_arc(&self) -> Arc<Counters> {
        Arc::clone(&self.inner)
    }
}

/// What ended a long-poll, for counting.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ended {
    Ready,
    Timeout,
    Shutdown,
    Disconnected,
}

impl Counters {
    pub(crate) fn park(&self) {
        self.parked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn body_too_large(&self) {
        self.too_large.fetch_add(1, Ordering::Relaxed);
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicU64 {
        match gauge {
            Gauge::LongPolls => &self.long_polls,
            Gauge::Streams => &self.streaming,
            #[cfg(feature = "ws")]
            Gauge::WebSockets => &self.websockets,
        }
    }

    pub(crate) fn unpark(&self, ended: Option<Ended>) {
        self.parked.fetch_sub(1, Ordering::Relaxed);
        let counter = match ended {
            Some(Ended::Ready) => &self.ready,
            Some(Ended::Timeout) => &self.timeout,
            Some(Ended::Shutdown) => &self.shutdown,
            Some(Ended::Disconnected) => &self.disconnected,
            None => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A gauge of things open now, each counted by a [`Held`] place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gauge {
    /// `LongPoll` extractors alive (capped by `LongPollConfig::max_parked`).
    LongPolls,
    /// Streamed responses open, from the extractor to the end of the body
    /// (capped by `StreamConfig::max_open`).
    Streams,
    /// WebSocket connections open, from the extractor until the socket's
    /// task ends (capped by `WsConfig::max_open`).
    #[cfg(feature = "ws")]
    WebSockets,
}

/// One place counted in a [`Gauge`] for as long as it lives.
#[derive(Debug)]
pub(crate) struct Held {
    counters: Arc<Counters>,
    gauge: Gauge,
}

impl Held {
    /// Takes one more place unless `max` are taken already; a refusal is
    /// counted in `rejected`.
    pub(crate) fn try_take(counters: Arc<Counters>, gauge: Gauge, max: usize) -> Option<Self> {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        let taken = counters
            .gauge(gauge)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Self { counters, gauge })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counters
            .gauge(self.gauge)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
