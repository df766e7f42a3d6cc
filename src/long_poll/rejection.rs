use std::time::Duration;

use http::StatusCode;

use crate::disconnect::MissingDisconnectLayer;
use crate::response::{rejection, Overloaded, Reject};

/// Where a requested wait came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutSource {
    /// The `timeout` query parameter.
    Query,
    /// The `wait` preference of the `Prefer` header (RFC 7240).
    Prefer,
}

impl TimeoutSource {
    fn describe(self) -> &'static str {
        match self {
            Self::Query => "query parameter `timeout`",
            Self::Prefer => "header `Prefer: wait`",
        }
    }
}

/// A requested wait that is not a number of seconds.
#[derive(Clone, Debug)]
pub struct InvalidTimeout {
    source: TimeoutSource,
    value: String,
    max: Duration,
}

impl InvalidTimeout {
    pub(crate) fn new(source: TimeoutSource, value: &str, max: Duration) -> Self {
        Self {
            source,
            value: crate::params::echo(value),
            max,
        }
    }

    /// Which parameter held the value.
    #[must_use]
    pub fn source(&self) -> TimeoutSource {
        self.source
    }

    /// The value (at most 64 characters of it).
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Rejection of [`LongPoll`](super::LongPoll).
///
/// Client errors are `400`, `408` or `413` with a text that names the
/// parameter, the value and what is allowed; a missing layer is a `500`
/// naming the layer to add; a reached cap is a `503` with `Retry-After`.
#[derive(Debug)]
#[non_exhaustive]
pub enum LongPollRejection {
    /// [`DisconnectLayer`](crate::DisconnectLayer) is not installed (`500`).
    MissingLayer(MissingDisconnectLayer),
    /// `?timeout=` or `Prefer: wait=` is not a number of seconds (`400`).
    InvalidTimeout(InvalidTimeout),
    /// A parameter was given more than once (`400`).
    RepeatedParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// The request body is larger than
    /// [`LongPollConfig::max_body`](super::LongPollConfig::max_body) (`413`).
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body did not arrive whole within the wait (`408`).
    BodyTimeout,
    /// Reading the request body failed, usually because the client went away
    /// (`400`; the client is normally no longer there to read it). The
    /// request's disconnect token is cancelled.
    BodyRead(axum::Error),
    /// [`LongPollConfig::max_in_flight`](super::LongPollConfig::max_in_flight)
    /// long-polls are in flight already (`503` with `Retry-After`).
    Overloaded(Overloaded),
}

impl Reject for LongPollRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer(missing) => missing.status(),
            Self::InvalidTimeout(_) | Self::RepeatedParameter { .. } | Self::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded(overloaded) => overloaded.status(),
        }
    }

    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer(missing) => write!(f, "{missing} to use `LongPoll`"),
            Self::InvalidTimeout(e) => {
                let max = e.max.as_secs_f64();
                write!(
                    f,
                    "invalid {}: {:?} is not a number of seconds; allowed: 0 to {max} \
                     as digits with an optional fraction (e.g. `30` or `0.5`); \
                     larger values are clamped to {max}",
                    e.source.describe(),
                    e.value,
                )
            }
            Self::RepeatedParameter { name } => write!(f, "{}", crate::params::Repeated(name)),
            Self::BodyTooLarge { limit } => write!(
                f,
                "request body too large: a long-poll request body may have at most {limit} bytes"
            ),
            Self::BodyTimeout => {
                f.write_str("request body incomplete: it did not arrive within the wait")
            }
            Self::BodyRead(e) => write!(f, "failed to read the request body: {e}"),
            Self::Overloaded(overloaded) => write!(f, "{overloaded}"),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded(overloaded) => Some(overloaded.retry_after),
            _ => None,
        }
    }

    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BodyRead(e) => Some(e),
            _ => None,
        }
    }
}

rejection!(LongPollRejection);
