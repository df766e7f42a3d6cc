//! Where the crate's figures go besides [`Stats`](crate::Stats): the
//! [`metrics`](https://docs.rs/metrics) facade (feature `metrics`) and
//! [`tracing`](https://docs.rs/tracing) events (feature `tracing`). Without
//! either feature every function here is empty and compiles away.
//!
//! # Metrics
//!
//! Recorded through the `metrics` facade, so any exporter works
//! (`metrics-exporter-prometheus` in the demo's `GET /metrics`). Every
//! series has a `mode` label (`long_poll`, `ndjson`, `sse`, `framed`, `ws`)
//! where it applies; none has a label per stream (a label per stream is a
//! series per stream, which a Prometheus server pays for in memory).
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `axum_longpoll_requests_started_total` | counter | `mode` | requests that reached the mode |
//! | `axum_longpoll_requests_ended_total` | counter | `mode`, `outcome` | requests ended, by what ended them (the names of [`StatsSnapshot`](crate::StatsSnapshot)'s `ended`) |
//! | `axum_longpoll_requests_in_flight` | gauge | `mode` | started and not ended |
//! | `axum_longpoll_request_duration_seconds` | histogram | `mode`, `outcome` | from the start to the end of each request |
//! | `axum_longpoll_wait_seconds` | histogram | `outcome` | each [`LongPoll::wait`](crate::LongPoll::wait), by how it ended |
//! | `axum_longpoll_disconnected_after_seconds` | histogram | `mode` | how long a request had run when its client was found gone |
//! | `axum_longpoll_events_per_answer` | histogram | `mode` | events in each long-poll answer |
//!
//! How fast a disconnect is *detected* cannot be seen from the server (it
//! does not know when the client left): `benches/run` measures it from the
//! client side. What the server sees is `disconnected_after`: a histogram
//! of request ages when the client turned out gone.
//!
//! # Tracing
//!
//! One `DEBUG` event per request that ends (target `axum_longpoll`), with
//! `mode`, `outcome` and, under `metrics`, the duration; `INFO` for the ends
//! that say something went wrong on the client's side (`disconnected`,
//! `client_left`, `heartbeat_timeout`, `slow_reader`, `stalled_body`) or the
//! server's (`rejected`, `unavailable`, `error`).

use std::time::Duration;

/// A request reached `mode`; `in_flight`: it is counted in flight (not
/// refused at once).
#[inline]
pub(crate) fn started(mode: &'static str, in_flight: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("axum_longpoll_requests_started_total", "mode" => mode).increment(1);
        if in_flight {
            metrics::gauge!("axum_longpoll_requests_in_flight", "mode" => mode).increment(1.0);
        }
    }
    let _ = (mode, in_flight);
}

/// A request of `mode` ended with `outcome` after `lasted` (known only
/// under `metrics`); `in_flight`: it had been counted in flight.
#[inline]
pub(crate) fn ended(
    mode: &'static str,
    outcome: &'static str,
    lasted: Option<Duration>,
    in_flight: bool,
) {
    #[cfg(feature = "metrics")]
    {
        let labels = [("mode", mode), ("outcome", outcome)];
        metrics::counter!("axum_longpoll_requests_ended_total", &labels).increment(1);
        if in_flight {
            metrics::gauge!("axum_longpoll_requests_in_flight", "mode" => mode).decrement(1.0);
        }
        if let Some(lasted) = lasted {
            metrics::histogram!("axum_longpoll_request_duration_seconds", &labels)
                .record(lasted.as_secs_f64());
            if matches!(outcome, "disconnected" | "client_left") {
                metrics::histogram!("axum_longpoll_disconnected_after_seconds", "mode" => mode)
                    .record(lasted.as_secs_f64());
            }
        }
    }
    #[cfg(feature = "tracing")]
    {
        let lasted_ms = lasted.map(|d| d.as_secs_f64() * 1e3);
        if matches!(
            outcome,
            "disconnected"
                | "client_left"
                | "heartbeat_timeout"
                | "slow_reader"
                | "stalled_body"
                | "rejected"
                | "unavailable"
                | "error"
        ) {
            tracing::info!(target: "axum_longpoll", mode = mode, outcome, lasted_ms, "request ended");
        } else {
            tracing::debug!(target: "axum_longpoll", mode = mode, outcome, lasted_ms, "request ended");
        }
    }
    let _ = (mode, outcome, lasted, in_flight);
}

/// A [`LongPoll::wait`](crate::LongPoll::wait) took `waited` and ended with
/// `outcome`.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn waited(outcome: &'static str, waited: Duration) {
    metrics::histogram!("axum_longpoll_wait_seconds", "outcome" => outcome)
        .record(waited.as_secs_f64());
}

/// An answer of `mode` carried `events` events.
#[inline]
pub(crate) fn answered(mode: &'static str, events: usize) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("axum_longpoll_events_per_answer", "mode" => mode).record(events as f64);
    let _ = (mode, events);
}
