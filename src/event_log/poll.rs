use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderName, HeaderValue};
use serde::Serialize;

use super::{Backend, Cursor, EventLog};
use crate::long_poll::{no_store, LongPoll, Outcome};

/// The `Cursor` response header: where to continue, on every long-poll
/// answer (also the ones without a body).
pub const CURSOR: HeaderName = HeaderName::from_static("cursor");

fn with_cursor(mut res: Response, cursor: Cursor) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cursor.to_string()) {
        res.headers_mut().insert(CURSOR, value);
    }
    res
}

impl LongPoll {
    /// The recommended long-poll: waits for the events of `log` after
    /// `after` and answers.
    ///
    /// | outcome | answer |
    /// |---|---|
    /// | events | `200` `{"events":[{"id":"<cursor>","data":…}],"cursor":"<next>"}` |
    /// | timeout | [`timeout_response`](Self::timeout_response) (`204`) |
    /// | shutdown | [`shutdown_response`](Self::shutdown_response) (`503`) |
    /// | cursor gone | `410` with the [`CursorGone`](super::CursorGone) JSON |
    /// | disconnected | `499`, never seen |
    ///
    /// Every answer but the `410` carries the `Cursor` header with the cursor
    /// to continue from, so a client always holds a valid position. Nothing
    /// is consumed by a read: a client that leaves at any moment loses no
    /// event, and comes back with its last cursor.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    pub async fn respond_with_log<T, B>(&self, log: &EventLog<T, B>, after: Cursor) -> Response
    where
        T: Clone + Serialize,
        B: Backend,
    {
        let (res, cursor) = match self.wait(log.wait(after)).await {
            Outcome::Ready(Ok(batch)) => {
                let next = batch.cursor;
                (no_store(Json(batch).into_response()), next)
            }
            Outcome::Ready(Err(gone)) => return gone.into_response(),
            other => (self.respond(other.map(|_: Result<_, _>| ())), after),
        };
        with_cursor(res, cursor)
    }
}
