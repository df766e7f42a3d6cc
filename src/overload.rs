//! The `503 Service Unavailable` + `Retry-After` answers shared by the modes
//! (shutdown, a cap reached).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};

/// `status` with `text`, `Retry-After` in whole seconds (rounded up, so a
/// sub-second setting never becomes "retry at once") and
/// `Cache-Control: no-store`.
pub(crate) fn retry_later(status: StatusCode, text: String, after: Duration) -> Response {
    let secs = (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1);
    let mut res = (status, text).into_response();
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    crate::long_poll::no_store(res)
}
