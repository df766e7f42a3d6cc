//! The two framings: NDJSON lines and SSE events (axum's `sse::Event`).

use axum::response::sse;
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::frames::Piece;

fn line(value: &serde_json::Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}

/// One JSON object per line; a heartbeat is an empty line.
pub(crate) fn ndjson<T: Serialize>(piece: Piece<T>) -> (Bytes, usize) {
    let bytes = match piece {
        Piece::Open(cursor) => line(&json!({"control": "open", "cursor": cursor})),
        Piece::Event(event) => match serde_json::to_vec(&event) {
            Ok(mut out) => {
                out.push(b'\n');
                Bytes::from(out)
            }
            Err(err) => line(&json!({
                "control": "error",
                "id": event.cursor,
                "message": format!("event could not be serialized: {err}"),
            })),
        },
        Piece::Heartbeat => Bytes::from_static(b"\n"),
        Piece::Reconnect(reason, cursor) => line(&json!({
            "control": "reconnect", "reason": reason, "cursor": cursor,
        })),
        Piece::Gone(gone) => {
            let mut value = serde_json::to_value(&gone).unwrap_or_default();
            value["control"] = json!("gone");
            line(&value)
        }
    };
    let len = bytes.len();
    (bytes, len)
}

/// axum writes an empty comment as `": \n"`, then the event's blank line.
const HEARTBEAT_LEN: usize = 4;

/// Bytes of one SSE field line: `name: value\n`.
fn field(name: &str, value: &str) -> usize {
    name.len() + 2 + value.len() + 1
}

/// SSE: `id:` is the cursor, `data:` the event's JSON; a heartbeat is a
/// comment; control frames are named events (`cursor`, `reconnect`,
/// `gone`, `error`).
pub(crate) fn sse<T: Serialize>(piece: Piece<T>) -> (sse::Event, usize) {
    let named = |name: &'static str, id: Option<String>, data: serde_json::Value| {
        let data = data.to_string();
        let mut len = field("event", name) + field("data", &data) + 1;
        let mut event = sse::Event::default().event(name).data(data);
        if let Some(id) = id {
            len += field("id", &id);
            event = event.id(id);
        }
        (event, len)
    };
    match piece {
        // Sets the browser's lastEventId before any event arrives, so an
        // automatic reconnect resumes from here, not from "now".
        Piece::Open(cursor) => named(
            "cursor",
            Some(cursor.to_string()),
            json!({ "cursor": cursor }),
        ),
        Piece::Event(event) => {
            let id = event.cursor.to_string();
            match serde_json::to_string(&event.data) {
                Ok(data) => {
                    let len = field("id", &id) + field("data", &data) + 1;
                    (sse::Event::default().id(id).data(data), len)
                }
                Err(err) => named(
                    "error",
                    Some(id),
                    json!({ "message": format!("event could not be serialized: {err}") }),
                ),
            }
        }
        Piece::Heartbeat => (sse::Event::default().comment(""), HEARTBEAT_LEN),
        Piece::Reconnect(reason, cursor) => named(
            "reconnect",
            None,
            json!({ "reason": reason, "cursor": cursor }),
        ),
        // The id moves to the restart cursor: EventSource's own reconnect
        // then continues from there while the page resynchronises.
        Piece::Gone(gone) => {
            let restart = gone.restart().to_string();
            named(
                "gone",
                Some(restart),
                serde_json::to_value(&gone).unwrap_or_default(),
            )
        }
    }
}
