use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use http::{HeaderName, StatusCode};

use super::{Backend, Cursor, EventLog};
use crate::params::{echo, query_param, Repeated};
use crate::response::{rejection, Reject};

/// The `Last-Event-ID` header, sent by `EventSource` when it reconnects.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Where a client without a cursor starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFrom {
    /// After the newest event: only what is published from now on.
    #[default]
    Now,
    /// Before the oldest retained event: everything the log still has.
    Oldest,
}

/// Extractor for where a client resumes reading an [`EventLog`].
///
/// | input | meaning |
/// |---|---|
/// | `Last-Event-ID: <c>` header | resume after `<c>` (EventSource's reconnect) |
/// | `?cursor=<c>` | resume after `<c>` |
/// | `?last_event_id=<c>` | resume after `<c>` (an EventSource's first connect cannot set headers) |
/// | none of them, `?from=now` | start [from now](StartFrom::Now) (or the log's [`start_from`](super::EventLogBuilder::start_from)) |
/// | none of them, `?from=oldest` | start [from the oldest](StartFrom::Oldest) retained event |
///
/// When several are given the first in the table wins: on reconnect an
/// `EventSource` repeats its original URL but sends a fresher
/// `Last-Event-ID`. An empty `Last-Event-ID` counts as absent (the spec's
/// way to reset it); any other malformed value, or a parameter given twice,
/// is a `400` naming the parameter ([`ResumeRejection`]).
///
/// Whether the cursor can be served is decided by the log:
/// [`Resume::start`] gives the cursor to read after, or a
/// [`CursorGone`](super::CursorGone) (`410`; on a Redis log also `503` while
/// Redis is unreachable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    cursor: Option<Cursor>,
    from: Option<StartFrom>,
}

impl Resume {
    /// The cursor the client sent, if any.
    #[must_use]
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    /// The `?from=` the client sent, if any.
    #[must_use]
    pub fn start_from(&self) -> Option<StartFrom> {
        self.from
    }

    /// The cursor to read `log` after: the client's (checked against the
    /// log), or the start chosen by `?from=` or the log's default.
    ///
    /// # Errors
    ///
    /// The backend's [`StartError`](Backend::StartError), an `IntoResponse`:
    /// for an in-memory log a [`CursorGone`](super::CursorGone) (`410`) when
    /// the log cannot serve the client's cursor; for a
    /// `Redis` log also `503` + `Retry-After` while Redis is
    /// unreachable.
    pub fn start<T, B: Backend>(&self, log: &EventLog<T, B>) -> Result<Cursor, B::StartError> {
        log.backend().ready()?;
        match self.cursor {
            Some(cursor) => log.check(cursor).map(|()| cursor).map_err(Into::into),
            None => Ok(match self.from.unwrap_or(log.start_from()) {
                StartFrom::Now => log.head(),
                StartFrom::Oldest => log.oldest(),
            }),
        }
    }

    fn from_parts(parts: &Parts) -> Result<Self, ResumeRejection> {
        let query = parts.uri.query();
        let repeated = |Repeated(name)| ResumeRejection::Repeated { name };
        let from = match query_param(query, "from").map_err(repeated)?.as_deref() {
            None => None,
            Some("now") => Some(StartFrom::Now),
            Some("oldest") => Some(StartFrom::Oldest),
            Some(other) => return Err(ResumeRejection::InvalidFrom { value: echo(other) }),
        };
        let mut headers = parts.headers.get_all(LAST_EVENT_ID).iter();
        let header = headers.next();
        if headers.next().is_some() {
            return Err(ResumeRejection::Repeated {
                name: "Last-Event-ID",
            });
        }
        let header = match header.map(|v| v.to_str()) {
            Some(Ok("")) | None => None,
            Some(Ok(v)) => Some(v.to_owned()),
            Some(Err(_)) => {
                return Err(ResumeRejection::Malformed {
                    param: "Last-Event-ID",
                    value: "<non-ASCII bytes>".to_owned(),
                })
            }
        };
        let cursor = query_param(query, "cursor").map_err(repeated)?;
        let last_event_id = query_param(query, "last_event_id").map_err(repeated)?;
        let given = [
            ("Last-Event-ID", header),
            ("cursor", cursor),
            ("last_event_id", last_event_id),
        ]
        .into_iter()
        .find_map(|(param, value)| value.map(|v| (param, v)));
        let cursor = match given {
            None => None,
            Some((param, value)) => {
                Some(
                    value
                        .parse::<Cursor>()
                        .map_err(|_| ResumeRejection::Malformed {
                            param,
                            value: echo(&value),
                        })?,
                )
            }
        };
        Ok(Self { cursor, from })
    }
}

impl<S: Sync> FromRequestParts<S> for Resume {
    type Rejection = ResumeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for Resume {
    type Rejection = Infallible;

    /// `None` when the request names no valid position.
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_parts(parts).ok())
    }
}

/// Rejection of [`Resume`]: `400 Bad Request` naming the parameter, the
/// value and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumeRejection {
    /// A cursor parameter that is not a cursor.
    Malformed {
        /// `cursor`, `last_event_id` or `Last-Event-ID`.
        param: &'static str,
        /// At most 64 characters of the value.
        value: String,
    },
    /// `?from=` other than `now` or `oldest`.
    InvalidFrom {
        /// At most 64 characters of the value.
        value: String,
    },
    /// A parameter given more than once.
    Repeated {
        /// The parameter.
        name: &'static str,
    },
}

impl Reject for ResumeRejection {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { param, value } => write!(
                f,
                "invalid `{param}`: {value:?} is not a cursor; allowed: the `id` or `cursor` \
                 of an earlier answer (16 hex digits, `-`, a decimal position), \
                 or none to start from now"
            ),
            Self::InvalidFrom { value } => write!(
                f,
                "invalid query parameter `from`: {value:?}; allowed: `now` or `oldest`"
            ),
            Self::Repeated { name } => write!(f, "{}", crate::params::Repeated(name)),
        }
    }
}

rejection!(ResumeRejection);
