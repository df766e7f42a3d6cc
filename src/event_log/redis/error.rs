use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::event_log::CursorGone;
use crate::response::{rejection, Reject};

/// The Redis log cannot serve new requests now: its reader is not connected
/// to Redis (or not yet back in step with the stream). Answered `503` with
/// `Retry-After`.
///
/// Requests already waiting are not refused: they keep waiting, and get
/// the events published once Redis is back, or their timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unavailable {
    /// The `Retry-After` sent.
    pub retry_after: Duration,
}

impl Reject for Unavailable {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the event log is unavailable: its Redis connection is down; \
             keep your cursor and retry after the time in `Retry-After`",
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(self.retry_after)
    }
}

rejection!(Unavailable);

/// Why [`Resume::start`](crate::event_log::Resume::start) refuses a request
/// on a [`Redis`](super::Redis) log: `410` or `503`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The cursor cannot be served (`410`).
    Gone(CursorGone),
    /// Redis is unreachable (`503` + `Retry-After`).
    Unavailable(Unavailable),
}

impl crate::event_log::backend::sealed::Refusal for StartError {}

impl crate::event_log::backend::sealed::StartRefusal for StartError {
    fn into_gone(self) -> Result<CursorGone, Response> {
        match self {
            Self::Gone(gone) => Ok(gone),
            Self::Unavailable(_) => Err(self.into_response()),
        }
    }
}

impl From<CursorGone> for StartError {
    fn from(gone: CursorGone) -> Self {
        Self::Gone(gone)
    }
}

impl From<Unavailable> for StartError {
    fn from(unavailable: Unavailable) -> Self {
        Self::Unavailable(unavailable)
    }
}

impl Reject for StartError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Gone(gone) => gone.status(),
            Self::Unavailable(unavailable) => unavailable.status(),
        }
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gone(gone) => write!(f, "{gone}"),
            Self::Unavailable(unavailable) => write!(f, "{unavailable}"),
        }
    }

    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Gone(gone) => Some(gone),
            Self::Unavailable(unavailable) => Some(unavailable),
        }
    }
}

crate::response::rejection!(@common StartError);

impl IntoResponse for StartError {
    fn into_response(self) -> Response {
        match self {
            Self::Gone(gone) => gone.into_response(),
            Self::Unavailable(unavailable) => unavailable.into_response(),
        }
    }
}
