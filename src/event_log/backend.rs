use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Cursor, CursorGone, EventLog};

/// Where an [`EventLog`] keeps its events: [`Memory`] (the default) or, with
/// the `redis` feature, `Redis`.
///
/// Sealed: the read side of every backend is the same in-process structure
/// (see the [module docs](crate::event_log#backends)), so the handler-facing
/// functions ([`Resume::start`](super::Resume::start),
/// [`LongPoll::respond_with_log`](crate::LongPoll::respond_with_log),
/// [`Streaming::ndjson_log`](crate::Streaming::ndjson_log), …) are generic
/// over it and work unchanged on either.
pub trait Backend: sealed::Sealed + fmt::Debug + Send + Sync + Sized + 'static {
    /// Why [`Resume::start`](super::Resume::start) refuses a request:
    /// [`CursorGone`] (`410`) for [`Memory`]; for `Redis`
    /// also "unavailable" (`503` + `Retry-After`).
    type StartError: From<CursorGone>
        + StartRefusal
        + IntoResponse
        + std::error::Error
        + fmt::Debug
        + Send
        + Sync
        + 'static;

    /// `"memory"` or `"redis"`, for logs and statistics.
    const NAME: &'static str;

    /// Whether this log's view may lag behind events that were already
    /// published (elsewhere): then a cursor ahead of the newest event is
    /// waited for, not refused at once.
    #[doc(hidden)]
    const LAGS: bool;

    /// Whether new requests can be served now.
    #[doc(hidden)]
    fn ready(&self) -> Result<(), Self::StartError>;

    /// The common append; see [`EventLog::append`].
    #[doc(hidden)]
    fn append<'a, T>(
        log: &'a EventLog<T, Self>,
        data: T,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// What [`Resume::start`](super::Resume::start) refuses a request with
/// ([`Backend::StartError`]): a [`CursorGone`], which the streaming and
/// WebSocket modes can tell in-band, or (on Redis) an outage, which is
/// answered over HTTP (`503` + `Retry-After`).
///
/// [`Streaming::sse_gone`](crate::Streaming::sse_gone) and the `ws`
/// module's `LiveSocket::serve_log` take it, so one handler serves either
/// backend.
pub trait StartRefusal: sealed::Sealed + IntoResponse + Sized {
    /// The [`CursorGone`] to tell in-band, or the response to send instead.
    #[allow(clippy::result_large_err)] // converted once, at the handler; never `?`-propagated
    fn into_gone(self) -> Result<CursorGone, Response>;
}

impl sealed::Sealed for CursorGone {}

impl StartRefusal for CursorGone {
    #[allow(clippy::result_large_err)] // converted once, at the handler; never `?`-propagated
    fn into_gone(self) -> Result<CursorGone, Response> {
        Ok(self)
    }
}

/// The in-process backend: the events live in this process only.
///
/// Publishing is synchronous and cannot fail ([`EventLog::publish`]); the
/// epoch is chosen at random when the log is created, so a restart is seen
/// by clients as `410` `epoch`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Memory;

impl sealed::Sealed for Memory {}

impl Backend for Memory {
    type StartError = CursorGone;
    const NAME: &'static str = "memory";
    const LAGS: bool = false;

    fn ready(&self) -> Result<(), CursorGone> {
        Ok(())
    }

    async fn append<T>(log: &EventLog<T, Self>, data: T) -> Result<Cursor, PublishError>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Ok(log.publish(data))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An event that could not be published.
///
/// Never returned by the [`Memory`] backend. For `Redis`
/// see its docs for what each case means for delivery: in short, an
/// [`Unavailable`](Self::Unavailable) publish may or may not have reached
/// the stream (the connection can fail after Redis applied it), so retrying
/// gives at-least-once delivery.
///
/// As a response: `503` + `Retry-After` when unavailable, `500` otherwise;
/// the text says why.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The backend could not be reached, or did not answer in time.
    Unavailable {
        /// When to try again (the `Retry-After` sent).
        retry_after: Duration,
        /// What failed.
        source: BoxError,
    },
    /// The event could not be encoded as JSON.
    Encode(serde_json::Error),
    /// The stream gave the event an ID that no cursor can address (see
    /// [cursors and positions](crate::event_log#the-redis-backend)); it was removed again.
    Unaddressable {
        /// The stream entry ID.
        id: String,
    },
}

impl PublishError {
    /// The response status: `503` when unavailable, else `500`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Encode(_) | Self::Unaddressable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response text.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable { source, .. } => write!(
                f,
                "event not published: the event log's backend is unavailable ({source}); \
                 retry after the time in `Retry-After`"
            ),
            Self::Encode(err) => write!(f, "event not published: cannot encode it as JSON: {err}"),
            Self::Unaddressable { id } => write!(
                f,
                "event not published: the stream gave it ID {id}, which no cursor can address"
            ),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable { source, .. } => Some(&**source),
            Self::Encode(err) => Some(err),
            Self::Unaddressable { .. } => None,
        }
    }
}

impl IntoResponse for PublishError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable { retry_after, .. } => {
                crate::overload::retry_later(self.status(), self.body_text(), *retry_after)
            }
            _ => (self.status(), self.body_text()).into_response(),
        }
    }
}
