//! Where the crate's figures go besides [`Stats`](crate::Stats): the
//! `metrics` facade (feature `metrics`) and `tracing` events (feature
//! `tracing`); documented in [`stats`](crate::stats). Without either
//! feature every function here is empty and compiles away.

use std::time::Duration;

/// Describes the crate's metrics to the recorder (their help texts and
/// units): each time a layer is made (rarely; the recorder keeps the
/// last), so that a recorder installed in between hears them too.
#[inline]
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            "axum_longpoll_requests_started_total",
            "Requests that reached a mode (long_poll, ndjson, sse, framed, ws)."
        );
        describe_counter!(
            "axum_longpoll_requests_ended_total",
            "Requests ended, by mode and by what ended them."
        );
        describe_gauge!(
            "axum_longpoll_requests_in_flight",
            "Requests started and not ended, by mode."
        );
        describe_histogram!(
            "axum_longpoll_request_duration_seconds",
            Unit::Seconds,
            "From the start to the end of each request, by mode and outcome."
        );
        describe_histogram!(
            "axum_longpoll_wait_seconds",
            Unit::Seconds,
            "Each LongPoll::wait, by how it ended."
        );
        describe_histogram!(
            "axum_longpoll_disconnected_after_seconds",
            Unit::Seconds,
            "How long a request had run when its client was found gone, by mode."
        );
        describe_counter!(
            "axum_longpoll_published_total",
            "Events appended to logs (by this instance)."
        );
        describe_histogram!(
            "axum_longpoll_publish_to_wake_seconds",
            Unit::Seconds,
            "From an event's append (on Redis: its arrival here) to a waiting reader woken by it."
        );
        describe_histogram!(
            "axum_longpoll_events_per_answer",
            Unit::Count,
            "Events in each long-poll answer."
        );
    }
}

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

/// An event was appended to a log (`stream`: its name, when its collection
/// labels its streams).
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn published(stream: Option<&str>) {
    match stream {
        Some(name) => {
            metrics::counter!("axum_longpoll_published_total", "stream" => name.to_owned())
                .increment(1);
        }
        None => metrics::counter!("axum_longpoll_published_total").increment(1),
    }
}

/// A waiting reader was woken `after` the newest event it gets was
/// appended.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn woken(stream: Option<&str>, after: Duration) {
    match stream {
        Some(name) => {
            metrics::histogram!("axum_longpoll_publish_to_wake_seconds", "stream" => name.to_owned())
                .record(after.as_secs_f64());
        }
        None => {
            metrics::histogram!("axum_longpoll_publish_to_wake_seconds").record(after.as_secs_f64())
        }
    }
}
