//! The two framings: NDJSON lines and SSE events (axum's `sse::Event`).

use axum::response::sse;
use bytes::Bytes;
use serde_json::json;

use super::frames::{Framing, Item, Piece};
use crate::event_log::Cursor;

fn line(value: &serde_json::Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}

/// The JSON of a control frame that may carry a cursor.
fn control(fields: serde_json::Value, cursor: Option<Cursor>) -> serde_json::Value {
    let mut value = fields;
    if let Some(cursor) = cursor {
        value["cursor"] = json!(cursor);
    }
    value
}

fn serialize_error(err: &serde_json::Error) -> String {
    format!("event could not be serialized: {err}")
}

/// One JSON object per line; a heartbeat is an empty line.
pub(crate) fn ndjson<X: Item>(piece: Piece<X>, _: Framing) -> (Bytes, usize) {
    let bytes = match piece {
        Piece::Open(cursor) => line(&json!({"control": "open", "cursor": cursor})),
        Piece::Item(item) => match item.ndjson() {
            Ok(mut out) => {
                out.push(b'\n');
                Bytes::from(out)
            }
            Err(err) => {
                let mut value = json!({ "control": "skipped", "message": serialize_error(&err) });
                if let Some(cursor) = item.cursor() {
                    value["id"] = json!(cursor);
                }
                line(&value)
            }
        },
        Piece::Heartbeat => Bytes::from_static(b"\n"),
        Piece::Reconnect(reason, cursor) => line(&control(
            json!({ "control": "reconnect", "reason": reason }),
            cursor,
        )),
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
pub(crate) fn sse<X: Item>(piece: Piece<X>, framing: Framing) -> (sse::Event, usize) {
    // The first and the last frame tell EventSource how long to wait before
    // it reconnects (jittered per response, so a restart's reconnects
    // spread out).
    let with_retry = |(event, len): (sse::Event, usize)| match framing.retry {
        Some(retry) => {
            let ms = retry.as_millis().to_string();
            (event.retry(retry), len + field("retry", &ms))
        }
        None => (event, len),
    };
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
        Piece::Open(cursor) => with_retry(named(
            "cursor",
            Some(cursor.to_string()),
            json!({ "cursor": cursor }),
        )),
        Piece::Item(item) => {
            let id = item.cursor().map(|cursor| cursor.to_string());
            match item.sse_data() {
                Ok(data) => {
                    let mut len = field("data", &data) + 1;
                    let mut event = sse::Event::default();
                    if let Some(id) = id {
                        len += field("id", &id);
                        event = event.id(id);
                    }
                    (event.data(data), len)
                }
                // Not `error`: EventSource hands an event of that name to `onerror`,
                // where pages tear the connection down.
                Err(err) => named("skipped", id, json!({ "message": serialize_error(&err) })),
            }
        }
        Piece::Heartbeat => (sse::Event::default().comment(""), HEARTBEAT_LEN),
        Piece::Reconnect(reason, cursor) => with_retry(named(
            "reconnect",
            None,
            control(json!({ "reason": reason }), cursor),
        )),
        // The id moves to the restart cursor: EventSource's own reconnect
        // then continues from there while the page resynchronises.
        Piece::Gone(gone) => {
            let restart = gone.restart().to_string();
            with_retry(named(
                "gone",
                Some(restart),
                serde_json::to_value(&gone).unwrap_or_default(),
            ))
        }
    }
}
