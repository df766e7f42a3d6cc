use std::fmt;

use http::StatusCode;

use super::Cursor;
use crate::response::{rejection, Reject};

/// Why a well-formed cursor cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GoneReason {
    /// Events after the cursor were evicted (retention by count or age): the
    /// client fell too far behind.
    Evicted,
    /// The cursor was issued by another log: another stream, or an earlier
    /// run of this one (the server restarted, or the stream was deleted and
    /// created again).
    Epoch,
    /// The cursor is ahead of the newest event of this log: it was not issued
    /// by it.
    Ahead,
    /// The log was deleted from its collection while the reader used it.
    Deleted,
}

impl GoneReason {
    fn describe(self) -> &'static str {
        match self {
            Self::Evicted => "events after this cursor were evicted; some events were missed",
            Self::Epoch => {
                "this cursor is from another stream or an earlier run (its epoch differs)"
            }
            Self::Ahead => "this cursor is ahead of the newest event",
            Self::Deleted => "this stream was deleted",
        }
    }
}

/// A cursor this log cannot serve: answered `410 Gone`.
///
/// The JSON body says why and gives a cursor to start over from (the oldest
/// retained event):
///
/// ```json
/// {"error":"cursor_gone","reason":"evicted","message":"…",
///  "cursor":"<start over from here>","requested":"<the cursor sent>"}
/// ```
///
/// The client's recovery rule: drop whatever state it derived from the
/// events (some were missed), resynchronise it (for example from a full
/// snapshot of the application's state), then continue from `cursor`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CursorGone {
    error: &'static str,
    reason: GoneReason,
    message: &'static str,
    cursor: Cursor,
    requested: Cursor,
}

impl CursorGone {
    pub(crate) fn new(reason: GoneReason, requested: Cursor, restart: Cursor) -> Self {
        Self {
            error: "cursor_gone",
            reason,
            message: reason.describe(),
            cursor: restart,
            requested,
        }
    }

    /// Why the cursor cannot be served.
    #[must_use]
    pub fn reason(&self) -> GoneReason {
        self.reason
    }

    /// Where to start over: before the oldest retained event.
    #[must_use]
    pub fn restart(&self) -> Cursor {
        self.cursor
    }

    /// The cursor that was sent.
    #[must_use]
    pub fn requested(&self) -> Cursor {
        self.requested
    }
}

impl Reject for CursorGone {
    fn status(&self) -> StatusCode {
        StatusCode::GONE
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cursor {} is gone: {}; start over from {}",
            self.requested, self.message, self.cursor
        )
    }
}

// `410` with the JSON above and `Cache-Control: no-store`.
rejection!(CursorGone, json);
