//! An event as the crate's answers write it, made once per event and shared
//! by every answer that carries it (the approach of Nchan): one buffer that
//! is the whole long-poll answer of that one event, in which the NDJSON
//! line, the WebSocket text and the event's JSON are slices.
//!
//! ```text
//! {"events":[{"id":"<cursor>","data":<json>}\n],"cursor":"<cursor>"}
//!            |<------------- WebSocket text ------------>|
//!            |<-------------- NDJSON line ---------------->|
//!                                     |<json>|
//! ```
//!
//! A cursor is always written in 37 bytes, so every slice is found from the
//! buffer's length alone: nothing but the `Bytes` is stored. (The newline
//! inside the long-poll answer is JSON whitespace.)
//!
//! The buffer is made at publish, outside the log's lock (for Redis, from
//! the JSON read from the stream), and shared by every answer: a long-poll
//! woken by that one event sends the buffer itself (body and `Cursor`
//! header), an NDJSON stream its line, a WebSocket its text; a batch of
//! several events and an SSE frame (`id:`/`data:` lines, a layout of their
//! own) copy the JSON from it, and nothing serializes again. A durable
//! stream's chunk is not serialized at publish (`Append::not_encoded`):
//! its reads hand out its bytes, and no JSON answer carries it.
//!
//! # Memory
//!
//! Per retained event, besides the event itself: its JSON, 117 bytes of
//! framing around it (two cursors and the answer's punctuation), the
//! `Bytes` in the entry (32 bytes) and, once it is shared, its 24-byte
//! reference count. The buffer is shrunk to its length, so the spare
//! capacity of serializing is not retained. Before, the JSON alone was
//! kept (made on first read): 117 bytes more per event, for JSON of tens
//! to hundreds of bytes typically; an event published and never read now
//! holds its buffer too. Retention by bytes (`max_bytes`) weighs the JSON
//! only, as before.
//!
//! Measured (`longpoll streams-mem event 1000000`, RSS, 1,000,000 streams
//! of one `u64` event each, never read): 829 B per stream against 685 B
//! before the buffer (when an unread event had no JSON at all): 144 B per
//! such event, the buffer and its allocation's rounding.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::Cursor;

/// The written length of a cursor.
const CURSOR: usize = 37;
const BATCH_OPEN: &[u8] = b"{\"events\":[";
const LINE_OPEN: &[u8] = b"{\"id\":\"";
const DATA: &[u8] = b"\",\"data\":";
const LINE_CLOSE: &[u8] = b"}\n";
const BATCH_CURSOR: &[u8] = b"],\"cursor\":\"";
const BATCH_CLOSE: &[u8] = b"\"}";

/// Where the line starts.
const LINE_AT: usize = BATCH_OPEN.len();
/// Where the line's cursor starts.
const ID_AT: usize = LINE_AT + LINE_OPEN.len();
/// Where the JSON starts.
const JSON_AT: usize = ID_AT + CURSOR + DATA.len();
/// Bytes after the JSON.
const TAIL: usize = LINE_CLOSE.len() + BATCH_CURSOR.len() + CURSOR + BATCH_CLOSE.len();
/// Bytes besides the JSON.
pub(crate) const OVERHEAD: usize = JSON_AT + TAIL;

/// A buffer with the layout above and the cursors still to write
/// ([`finish`]); its JSON is written by `write`.
fn start(json_len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(json_len + OVERHEAD);
    out.put_slice(BATCH_OPEN);
    out.put_slice(LINE_OPEN);
    out.put_bytes(b'0', CURSOR);
    out.put_slice(DATA);
    out
}

fn close(out: &mut BytesMut) {
    out.put_slice(LINE_CLOSE);
    out.put_slice(BATCH_CURSOR);
    out.put_bytes(b'0', CURSOR);
    out.put_slice(BATCH_CLOSE);
}

/// The buffer of `data`, its cursors still to write ([`finish`]): made
/// before the event has a position (outside the log's lock).
pub(crate) fn prepare<T: Serialize>(data: &T) -> Result<BytesMut, serde_json::Error> {
    let mut out = start(64);
    serde_json::to_writer((&mut out).writer(), data)?;
    close(&mut out);
    Ok(out)
}

/// Writes `cursor` into a [`prepare`]d buffer.
pub(crate) fn finish(mut out: BytesMut, cursor: Cursor) -> Bytes {
    let text = cursor.text();
    let end = out.len() - BATCH_CLOSE.len();
    out[ID_AT..ID_AT + CURSOR].copy_from_slice(&text);
    out[end - CURSOR..end].copy_from_slice(&text);
    // Retained as long as the event: not with the spare capacity that
    // growing it while serializing left (up to as much again).
    let mut out = Vec::from(out);
    out.shrink_to_fit();
    Bytes::from(out)
}

/// The buffer of the event at `cursor` whose JSON is `json` (the JSON a
/// Redis stream holds).
#[cfg(any(feature = "redis", test))]
pub(crate) fn from_json(cursor: Cursor, json: &[u8]) -> Bytes {
    let mut out = start(json.len());
    out.put_slice(json);
    close(&mut out);
    finish(out, cursor)
}

/// The buffer of `data`, the event at `cursor`.
pub(crate) fn encode<T: Serialize>(cursor: Cursor, data: &T) -> Result<Bytes, serde_json::Error> {
    prepare(data).map(|out| finish(out, cursor))
}

/// The event's JSON.
pub(crate) fn json(encoded: &Bytes) -> &[u8] {
    &encoded[JSON_AT..encoded.len() - TAIL]
}

/// The length of the event's JSON.
pub(crate) fn json_len(encoded: &Bytes) -> usize {
    encoded.len() - OVERHEAD
}

/// `{"id":"<cursor>","data":<json>}\n`, sharing the buffer.
pub(crate) fn line(encoded: &Bytes) -> Bytes {
    encoded.slice(LINE_AT..encoded.len() - TAIL + LINE_CLOSE.len())
}

/// `{"id":"<cursor>","data":<json>}`, sharing the buffer.
pub(crate) fn text(encoded: &Bytes) -> Bytes {
    encoded.slice(LINE_AT..encoded.len() - TAIL + LINE_CLOSE.len() - 1)
}

/// The cursor as written, sharing the buffer.
pub(crate) fn cursor(encoded: &Bytes) -> Bytes {
    encoded.slice(ID_AT..ID_AT + CURSOR)
}

/// Whether the buffer was written for `at` (it always is: an entry keeps
/// its epoch and position).
pub(crate) fn is_for(encoded: &Bytes, at: Cursor) -> bool {
    encoded.get(ID_AT..ID_AT + CURSOR) == Some(&at.text()[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Cursor = Cursor {
        epoch: 0xab,
        position: 7,
    };

    #[test]
    fn every_slice_of_one_buffer() {
        let buf = encode(C, &"hi").unwrap_or_default();
        let c = "00000000000000ab-00000000000000000007";
        assert_eq!(
            std::str::from_utf8(&buf).unwrap_or_default(),
            format!("{{\"events\":[{{\"id\":\"{c}\",\"data\":\"hi\"}}\n],\"cursor\":\"{c}\"}}")
        );
        let value: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
        assert_eq!(value["events"][0]["data"], "hi");
        assert_eq!(value["cursor"], c);
        assert_eq!(json(&buf), b"\"hi\"");
        assert_eq!(json_len(&buf), 4);
        assert_eq!(
            &line(&buf)[..],
            format!("{{\"id\":\"{c}\",\"data\":\"hi\"}}\n").as_bytes()
        );
        assert_eq!(
            &text(&buf)[..],
            format!("{{\"id\":\"{c}\",\"data\":\"hi\"}}").as_bytes()
        );
        assert_eq!(&cursor(&buf)[..], c.as_bytes());
        assert!(is_for(&buf, C));
        assert!(!is_for(&buf, Cursor { position: 8, ..C }));
        assert_eq!(from_json(C, b"\"hi\""), buf);
    }
}
