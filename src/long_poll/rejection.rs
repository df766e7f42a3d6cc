use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

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
    MissingLayer,
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
    /// [`LongPollConfig::max_parked`](super::LongPollConfig::max_parked)
    /// long-polls are parked already (`503` with `Retry-After`).
    Overloaded {
        /// The cap.
        limit: usize,
        /// The `Retry-After` sent.
        retry_after: Duration,
    },
}

impl LongPollRejection {
    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidTimeout(_) | Self::RepeatedParameter { .. } | Self::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The response text.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for LongPollRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer => f.write_str(
                "missing request extension: add `axum_longpoll::DisconnectLayer` to the router \
                 (`Router::layer(DisconnectLayer::new())`) to use `LongPoll`",
            ),
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
            Self::RepeatedParameter { name } => crate::params::Repeated(name).fmt(f),
            Self::BodyTooLarge { limit } => write!(
                f,
                "request body too large: a long-poll request body may have at most {limit} bytes"
            ),
            Self::BodyTimeout => {
                f.write_str("request body incomplete: it did not arrive within the wait")
            }
            Self::BodyRead(e) => write!(f, "failed to read the request body: {e}"),
            Self::Overloaded { limit, .. } => write!(
                f,
                "server busy: {limit} long-polls are parked, the most allowed; \
                 retry after the time in `Retry-After`"
            ),
        }
    }
}

impl std::error::Error for LongPollRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BodyRead(e) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for LongPollRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Overloaded { retry_after, .. } => {
                crate::overload::retry_later(self.status(), self.body_text(), retry_after)
            }
            _ => (self.status(), self.body_text()).into_response(),
        }
    }
}
