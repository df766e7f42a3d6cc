//! What every mode answers with: the shape shared by all rejections (axum's
//! `status()` / `body_text()` / `Display` / `Error` / `IntoResponse`), the
//! `503` + `Retry-After` of a reached cap or a shutdown, and the headers a
//! push answer carries.

use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};

/// The rejection shape, implemented once per rejection type; the public
/// methods and trait impls come from [`rejection!`].
pub(crate) trait Reject {
    /// The response status.
    fn status(&self) -> StatusCode;
    /// The text: what is wrong, naming the parameter, the value and what is
    /// allowed (or, for a developer error, what to add).
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// `Some` for a `503` the client should retry: sent as `Retry-After`.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// The underlying error, if any.
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

/// The text of a rejection as a plain-text response, with `Retry-After` and
/// `no-store` when it says when to retry.
pub(crate) fn reject<R: Reject + fmt::Display>(rejection: &R) -> Response {
    let text = rejection.to_string();
    match rejection.retry_after() {
        Some(after) => retry_later(rejection.status(), text, after),
        None => (rejection.status(), text).into_response(),
    }
}

/// Implements the rejection shape of axum-core for a type that implements
/// [`Reject`]: `status()`, `body_text()`, `Display`, `Error` and a plain-text
/// `IntoResponse` (or, with `json`, the type's own JSON as the body).
macro_rules! rejection {
    ($ty:ty) => {
        $crate::response::rejection!(@common $ty);
        impl ::axum::response::IntoResponse for $ty {
            fn into_response(self) -> ::axum::response::Response {
                $crate::response::reject(&self)
            }
        }
    };
    ($ty:ty, json) => {
        $crate::response::rejection!(@common $ty);
        impl ::axum::response::IntoResponse for $ty {
            fn into_response(self) -> ::axum::response::Response {
                let status = $crate::response::Reject::status(&self);
                $crate::response::no_store((status, ::axum::Json(&self)).into_response())
            }
        }
    };
    (@common $ty:ty) => {
        impl $ty {
            /// The response status.
            #[must_use]
            pub fn status(&self) -> ::http::StatusCode {
                $crate::response::Reject::status(self)
            }

            /// The response text.
            #[must_use]
            pub fn body_text(&self) -> String {
                self.to_string()
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::response::Reject::describe(self, f)
            }
        }
        impl ::std::error::Error for $ty {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                $crate::response::Reject::cause(self)
            }
        }
    };
}
pub(crate) use rejection;

/// A cap was reached: `503 Service Unavailable` with `Retry-After`.
///
/// What is already running is not disturbed; the client retries after the
/// time in `Retry-After`. Each mode's rejection carries one when its cap
/// (`LongPollConfig::max_in_flight`, `StreamConfig::max_in_flight`, …) is
/// reached.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overloaded {
    /// What is counted, and its state ("long-polls are in flight",
    /// "streams are in flight").
    pub what: &'static str,
    /// The setting that caps it (e.g. `LongPollConfig::max_in_flight`).
    pub setting: &'static str,
    /// The cap.
    pub limit: usize,
    /// The `Retry-After` sent.
    pub retry_after: Duration,
}

impl Reject for Overloaded {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server busy: {} {}, the most allowed (`{}`); \
             retry after the time in `Retry-After`",
            self.limit, self.what, self.setting
        )
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(self.retry_after)
    }
}

rejection!(Overloaded);

/// Adds `Cache-Control: no-store`: a push answer is for one client at one
/// moment, never for a cache.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `status` with `text`, `Retry-After` in whole seconds (rounded up, so a
/// sub-second setting never becomes "retry at once") and
/// `Cache-Control: no-store`.
pub(crate) fn retry_later(status: StatusCode, text: String, after: Duration) -> Response {
    let secs = (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1);
    let mut res = (status, text).into_response();
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    no_store(res)
}

/// Sets `name` to the display form of `value` (a cursor, a count).
pub(crate) fn with_header(
    mut res: Response,
    name: HeaderName,
    value: impl fmt::Display,
) -> Response {
    if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
        res.headers_mut().insert(name, value);
    }
    res
}
