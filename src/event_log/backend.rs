use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Append, Cursor, CursorGone, EventLog, StreamOptions, Streams, StreamsError};
use crate::response::{rejection, Reject};

/// What an [`EventLog`] can carry and publish: a type that goes through JSON
/// (the wire formats write it as JSON, and the Redis backend stores it as
/// JSON), is cheap to clone (each reader gets a copy; `Arc<str>`,
/// `Arc<T>`, `Bytes` are) and can be shared between tasks.
///
/// Implemented for every type with these bounds; nothing to implement.
pub trait Payload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Payload for T {}

/// Where an [`EventLog`] keeps its events: [`Memory`] (the default) or, with
/// the `redis` feature, `Redis`.
///
/// Sealed: the read side of every backend is the same in-process structure
/// (see the [module docs](crate::event_log#backends)), so the handler-facing
/// functions ([`EventLog::reader`], [`LongPoll::serve`](crate::LongPoll::serve),
/// [`Streaming::sse`](crate::Streaming::sse), …) are generic over it and
/// work unchanged on either.
pub trait Backend: sealed::Sealed + fmt::Debug + Send + Sync + Sized + 'static {
    /// Why [`Resume::start`](super::Resume::start) refuses a request:
    /// [`CursorGone`] (`410`) for [`Memory`]; for `Redis`
    /// also "unavailable" (`503` + `Retry-After`).
    type StartError: From<CursorGone>
        + sealed::StartRefusal
        + IntoResponse
        + std::error::Error
        + fmt::Debug
        + Send
        + Sync
        + 'static;

    /// Whether this log's view may lag behind events that were already
    /// published (elsewhere): then a cursor ahead of the newest event is
    /// waited for, not refused at once.
    #[doc(hidden)]
    const LAGS: bool;

    /// Whether new requests can be served now.
    #[doc(hidden)]
    fn ready(&self) -> Result<(), Self::StartError>;

    /// [`EventLog::append`] (and so `publish` and `close`).
    #[doc(hidden)]
    fn append<T: Payload>(
        log: &EventLog<T, Self>,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_;

    /// What the streams of one [`Streams`] collection share on this backend
    /// (nothing in memory; on Redis the instance's hub: its connections
    /// and its reader).
    #[doc(hidden)]
    type Hub: Send + Sync + 'static;

    /// [`Streams::get_or_create`], [`Streams::create`], [`Streams::find`]
    /// and `Streams::peek`: the stream `name` (checked already) as `how`
    /// says, found, loaded or created on this backend; `None` when it does
    /// not exist and was not to be created.
    #[doc(hidden)]
    fn open<'a, T: Payload>(
        streams: &'a Streams<T, Self>,
        name: &'a str,
        options: &'a StreamOptions,
        how: sealed::Open,
    ) -> impl Future<Output = Result<Option<EventLog<T, Self>>, StreamsError>> + Send + 'a;

    /// [`Streams::delete`]: deletes the stream `name` where the backend
    /// keeps it (nothing for memory: the collection's map is all there
    /// is). Returns whether it existed there.
    #[doc(hidden)]
    fn delete<'a>(
        hub: &'a Self::Hub,
        name: &'a str,
    ) -> impl Future<Output = Result<bool, StreamsError>> + Send + 'a;
}

pub(crate) mod sealed {
    use axum::response::{IntoResponse, Response};

    use crate::event_log::CursorGone;

    // `pub` in a private module: nameable by no one outside the crate.
    #[allow(unreachable_pub)]
    pub trait Sealed {
        /// For a backend that lags: what its readers wait on.
        fn lag(&self) -> Option<&crate::event_log::log::Lag> {
            None
        }

        /// A reader is about to wait on this log (for a backend that lags:
        /// make sure its view is being brought up to date).
        fn waiting(&self) {}
    }

    /// How [`Backend::open`](super::Backend::open) treats the stream.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[allow(unreachable_pub)]
    pub enum Open {
        /// The stream if it exists, counted as a use
        /// ([`Streams::find`](crate::event_log::Streams::find)).
        Find,
        /// The stream if it exists, not counted as a use (a `HEAD` must not
        /// renew a TTL).
        Peek,
        /// The stream, created if it does not exist
        /// ([`Streams::get_or_create`](crate::event_log::Streams::get_or_create)).
        OrCreate,
        /// A new stream; [`StreamsError::Exists`](crate::event_log::StreamsError::Exists)
        /// if it exists ([`Streams::create`](crate::event_log::Streams::create)).
        Create,
    }

    /// Seals [`StartRefusal`].
    #[allow(unreachable_pub)]
    pub trait Refusal {}

    /// What [`Resume::start`](crate::Resume::start) refuses a request with
    /// (`Backend::StartError`): a [`CursorGone`], which each mode tells in
    /// its own way (`410`, in-band `gone`, `4410`), or (on Redis) an outage,
    /// which every mode answers `503` + `Retry-After`.
    #[allow(unreachable_pub)]
    pub trait StartRefusal: Refusal + IntoResponse + Sized {
        /// The [`CursorGone`] to tell, or the response to send instead.
        #[allow(clippy::result_large_err)] // converted once per request; never `?`-propagated
        fn into_gone(self) -> Result<CursorGone, Response>;
    }
}

impl sealed::Refusal for CursorGone {}

impl sealed::StartRefusal for CursorGone {
    fn into_gone(self) -> Result<CursorGone, Response> {
        Ok(self)
    }
}

/// The in-process backend: the events live in this process only.
///
/// Publishing completes at once and cannot fail ([`EventLog::publish`]);
/// the epoch is chosen at random when the log is created, so a restart is
/// seen by clients as `410` `epoch`.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Memory;

impl sealed::Sealed for Memory {}

impl Backend for Memory {
    type StartError = CursorGone;
    const LAGS: bool = false;

    fn ready(&self) -> Result<(), CursorGone> {
        Ok(())
    }

    fn append<T: Payload>(
        log: &EventLog<T, Self>,
        append: Append<T>,
    ) -> impl Future<Output = Result<Cursor, PublishError>> + Send + '_ {
        std::future::ready(log.push_now(append))
    }

    type Hub = ();

    fn open<'a, T: Payload>(
        streams: &'a Streams<T, Self>,
        name: &'a str,
        options: &'a StreamOptions,
        how: sealed::Open,
    ) -> impl Future<Output = Result<Option<EventLog<T, Self>>, StreamsError>> + Send + 'a {
        std::future::ready(match how {
            sealed::Open::Find => Ok(streams.get(name)),
            sealed::Open::Peek => Ok(streams.peek_here(name)),
            sealed::Open::OrCreate => match streams.get(name) {
                Some(log) => Ok(Some(log)),
                None => streams.insert_memory(name, options, false).map(Some),
            },
            sealed::Open::Create => streams.insert_memory(name, options, true).map(Some),
        })
    }

    fn delete<'a>(
        (): &'a (),
        _: &'a str,
    ) -> impl Future<Output = Result<bool, StreamsError>> + Send + 'a {
        std::future::ready(Ok(false))
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
/// As a response: `409` when the log is closed, `410` when it was deleted,
/// `503` + `Retry-After` when unavailable, `500` otherwise; the text says
/// why.
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
    /// The log is [closed](EventLog::close): nothing more is appended.
    Closed {
        /// Its name, in a [`Streams`](super::Streams) collection.
        name: Option<std::sync::Arc<str>>,
        /// Its end.
        end: Cursor,
    },
    /// The log was deleted from its collection (this handle outlived it).
    Deleted {
        /// Its name.
        name: Option<std::sync::Arc<str>>,
    },
    /// The append's [sequence token](super::Append::seq) is not after the
    /// last one the log accepted.
    OutOfOrder {
        /// The token sent (at most 64 characters of it).
        seq: String,
        /// The last token accepted.
        last: String,
    },
}

/// `stream "<name>"`, or `the log` for one without a name.
fn which(name: Option<&std::sync::Arc<str>>) -> String {
    name.map_or_else(|| "the log".to_owned(), |name| format!("stream {name:?}"))
}

impl Reject for PublishError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Encode(_) | Self::Unaddressable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Closed { .. } | Self::OutOfOrder { .. } => StatusCode::CONFLICT,
            Self::Deleted { .. } => StatusCode::GONE,
        }
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            Self::Closed { name, end } => write!(
                f,
                "event not published: {} is closed (its end is {end}); nothing more can be \
                 published to it",
                which(name.as_ref())
            ),
            Self::Deleted { name } => write!(
                f,
                "event not published: {} was deleted",
                which(name.as_ref())
            ),
            Self::OutOfOrder { seq, last } => write!(
                f,
                "event not published: its sequence {seq:?} is not after the last one \
                 accepted, {last:?}; allowed: a sequence that sorts after it (byte-wise)"
            ),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable { source, .. } => Some(&**source),
            Self::Encode(err) => Some(err),
            Self::Unaddressable { .. }
            | Self::Closed { .. }
            | Self::Deleted { .. }
            | Self::OutOfOrder { .. } => None,
        }
    }
}

rejection!(PublishError);
