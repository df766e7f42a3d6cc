//! One wire vocabulary, several framings.
//!
//! Everything the crate tells a client besides its events is a
//! [`Control`] frame, defined once here. Each framing writes the same
//! vocabulary in its own way, as bytes:
//!
//! | | [`Ndjson`] (`application/x-ndjson`) | [`Sse`] (`text/event-stream`) | WebSocket (`ws` feature) |
//! |---|---|---|---|
//! | event of a log | `{"id":"<cursor>","data":<json>}` line | `id: <cursor>`, `data: <json>` | text frame as NDJSON, no newline |
//! | item of a plain stream | `<json>` line | `data: <json>` | — |
//! | [`Control::Open`] | `{"control":"open","cursor":"<c>"}` | `event: cursor`, `id: <c>`, `data: {"cursor":"<c>"}`, `retry:` | as NDJSON |
//! | [`Control::Skipped`] | `{"control":"skipped","id":"<c>","message":"…"}` | `event: skipped`, `id: <c>`, `data: {"message":"…"}` | as NDJSON |
//! | [`Control::Reconnect`] (last) | `{"control":"reconnect","reason":"…","cursor":"<c>"}` | `event: reconnect`, `data:` the same without `control`, `retry:` | — (close code) |
//! | [`Control::Gone`] (last) | `{"control":"gone", …the 410 body…}` | `event: gone`, `id:` the restart cursor, `data:` the 410 body, `retry:` | as NDJSON, then close `4410` |
//! | [`Control::Closed`] (last) | `{"control":"closed","cursor":"<end>"}` | `event: closed`, `id: <end>`, `data: {"cursor":"<end>"}`, `retry:` | as NDJSON, then close `1000` |
//! | [`Control::UpToDate`] | nothing | nothing | nothing |
//! | heartbeat | an empty line | a comment line `:` | a ping (the socket's own) |
//!
//! SSE has two browser rules built in: no control event is named `error`
//! (`EventSource` hands such an event to `onerror`), and the first and
//! the last frame carry `retry:` so the reconnects of many pages spread out.
//!
//! A framing is pluggable ([`Framing`]): another protocol's event format can
//! be served by the same stream engine ([`Streaming::framed`](crate::Streaming::framed))
//! and get its heartbeats, caps, shutdown and disconnect handling.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;
use serde::Serialize;

use crate::event_log::{encoded, Cursor, CursorGone};
use crate::stats::Mode;

/// `Stream-Closed: true`: on every answer that tells a client it has
/// reached the end of a closed stream (a long-poll's last batch, the `204`
/// of a stream that starts at the end).
pub const STREAM_CLOSED: http::HeaderName = http::HeaderName::from_static("stream-closed");

/// Why a stream ended before its source did (the `reason` of its final
/// [`Reconnect`](Control::Reconnect) frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// The response reached [`max_bytes`](crate::StreamConfig::max_bytes).
    MaxBytes,
    /// The response reached [`max_lifetime`](crate::StreamConfig::max_lifetime).
    MaxLifetime,
    /// The server is shutting down.
    Shutdown,
    /// The event source ended (a plain stream ran out).
    End,
}

/// A control frame: what a stream tells its client besides events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// First frame of a stream from a log: where it starts. A client that
    /// came without a cursor resumes from here.
    Open {
        /// The start.
        cursor: Cursor,
    },
    /// The reader has every event there is now. Not written by this crate's
    /// framings (a live stream is always up to date once idle); protocols
    /// that tell it (Durable Streams) write it.
    UpToDate {
        /// The position after the last event sent.
        cursor: Cursor,
    },
    /// An item that could not be serialized was skipped.
    Skipped {
        /// Its cursor, for an event of a log.
        id: Option<Cursor>,
        /// Why.
        message: String,
    },
    /// Last frame: the response ends here (a cap, shutdown, a plain source
    /// ran out); the client reconnects with `cursor`.
    Reconnect {
        /// Why it ends.
        reason: EndReason,
        /// Where to resume (none for a plain stream).
        cursor: Option<Cursor>,
    },
    /// Last frame: the client's position cannot be served (the `410 Gone`
    /// of long-polling, told in-band).
    Gone(CursorGone),
    /// Last frame: the stream is closed and the client has every event; no
    /// event will ever follow `cursor`.
    Closed {
        /// The end of the stream.
        cursor: Cursor,
    },
}

impl Control {
    /// The SSE event name, and the `control` value of the JSON framings.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::UpToDate { .. } => "up_to_date",
            Self::Skipped { .. } => "skipped",
            Self::Reconnect { .. } => "reconnect",
            Self::Gone(_) => "gone",
            Self::Closed { .. } => "closed",
        }
    }

    /// Whether the stream ends after this frame.
    fn is_last(&self) -> bool {
        matches!(
            self,
            Self::Reconnect { .. } | Self::Gone(_) | Self::Closed { .. }
        )
    }

    /// The position a client resumes from after this frame, if it moves it:
    /// the SSE `id:`.
    fn id(&self) -> Option<Cursor> {
        match self {
            Self::Open { cursor } | Self::Closed { cursor } => Some(*cursor),
            Self::Skipped { id, .. } => *id,
            Self::Gone(gone) => Some(gone.restart()),
            Self::UpToDate { .. } | Self::Reconnect { .. } => None,
        }
    }

    /// The JSON object, with its `control` field or without it (the SSE
    /// `data:`, where the event name says it).
    fn write_json(&self, tagged: bool, out: &mut BytesMut) {
        #[derive(Serialize)]
        struct Tagged<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            control: Option<&'static str>,
            #[serde(flatten)]
            body: Body<'a>,
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Body<'a> {
            Cursor {
                cursor: Cursor,
            },
            Skipped {
                #[serde(skip_serializing_if = "Option::is_none")]
                id: Option<Cursor>,
                message: &'a str,
            },
            Reconnect {
                reason: EndReason,
                #[serde(skip_serializing_if = "Option::is_none")]
                cursor: Option<Cursor>,
            },
            Gone(&'a CursorGone),
        }
        let body = match self {
            Self::Open { cursor } | Self::UpToDate { cursor } | Self::Closed { cursor } => {
                Body::Cursor { cursor: *cursor }
            }
            // In SSE the id is the event's `id:`.
            Self::Skipped { id, message } => Body::Skipped {
                id: id.filter(|_| tagged),
                message,
            },
            Self::Reconnect { reason, cursor } => Body::Reconnect {
                reason: *reason,
                cursor: *cursor,
            },
            Self::Gone(gone) => Body::Gone(gone),
        };
        let value = Tagged {
            control: tagged.then(|| self.name()),
            body,
        };
        // Serializing these plain fields cannot fail.
        let _ = serde_json::to_writer((&mut *out).writer(), &value);
    }
}

/// An item in the crate's JSON vocabulary: an event of a log (it has a
/// cursor) or an item of a plain `Stream` (it has none), as JSON.
///
/// The JSON of an event is made once per event and shared by every reader
/// and framing (it is cached in the log).
#[derive(Clone, Debug)]
pub struct JsonItem {
    pub(crate) id: Option<Cursor>,
    pub(crate) json: Result<Json, String>,
}

/// An item's JSON: an event's (its buffer, made once in the log and
/// shared: [`encoded`](crate::event_log::encoded), the JSON inside), or its
/// own (a plain item's, made for this frame, which a framing may take
/// over).
#[derive(Clone, Debug)]
pub(crate) enum Json {
    Event(Bytes),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Json {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Event(encoded) => encoded::json(encoded),
            Self::Owned(bytes) => bytes,
        }
    }
}

impl JsonItem {
    /// An item of a plain stream, serialized now.
    pub(crate) fn plain<T: Serialize>(item: &T) -> Self {
        Self {
            id: None,
            // Into a `Vec`: serde_json's fastest writer.
            json: serde_json::to_vec(item)
                .map(Json::Owned)
                .map_err(|err| err.to_string()),
        }
    }

    /// The cursor of the event, if it is one.
    #[must_use]
    pub fn id(&self) -> Option<Cursor> {
        self.id
    }

    /// The item's JSON, or why it could not be serialized.
    ///
    /// # Errors
    ///
    /// The serializer's message, when the item does not serialize.
    pub fn json(&self) -> Result<&[u8], &str> {
        self.json.as_deref().map_err(String::as_str)
    }

    /// The `skipped` frame that stands for an item that does not serialize.
    fn skipped(&self, err: &str) -> Control {
        Control::Skipped {
            id: self.id,
            message: format!("event could not be serialized: {err}"),
        }
    }

    /// `{"id":"<cursor>","data":<json>}` (or the plain JSON).
    fn write_json(&self, json: &Json, out: &mut BytesMut) {
        match (self.id, json) {
            // Written once, in the event's buffer.
            (Some(_), Json::Event(buf)) => out.put_slice(&encoded::text(buf)),
            (Some(id), json) => {
                out.reserve(json.len() + 48);
                out.put_slice(b"{\"id\":\"");
                out.put_slice(&id.text());
                out.put_slice(b"\",\"data\":");
                out.put_slice(json);
                out.put_u8(b'}');
            }
            (None, json) => out.put_slice(json),
        }
    }

    /// The event's NDJSON line (with its newline), when it is written
    /// already: shared, not copied.
    pub(crate) fn line(&self) -> Option<Bytes> {
        match (&self.id, &self.json) {
            (Some(_), Ok(Json::Event(buf))) => Some(encoded::line(buf)),
            _ => None,
        }
    }
}

/// One piece of a stream, for a [`Framing`] to write.
#[derive(Debug)]
#[non_exhaustive]
pub enum Frame<'a, X> {
    /// An item of the source, handed over (a framing may reuse its bytes).
    Item(X),
    /// A control frame.
    Control(&'a Control),
    /// Nothing happened for a while (see
    /// [`StreamConfig::heartbeat`](crate::StreamConfig::heartbeat)).
    Heartbeat,
}

/// How a streamed response writes its pieces (items of type `X`, control
/// frames, heartbeats) as bytes. See the [module docs](self).
///
/// Each frame is written as one body frame (an HTTP/1.1 chunk, an HTTP/2
/// DATA frame), flushed at once; its length counts towards
/// [`max_bytes`](crate::StreamConfig::max_bytes). Writing nothing for a
/// frame is allowed (then nothing is sent).
pub trait Framing<X>: Send + 'static {
    /// The response's `Content-Type`.
    fn content_type(&self) -> HeaderValue;

    /// Appends `frame` to `out`.
    fn encode(&mut self, frame: Frame<'_, X>, out: &mut BytesMut);

    /// `frame` as one buffer (empty: nothing to send). The default writes
    /// [`encode`](Self::encode) into a fresh buffer; a framing that can
    /// hand over bytes it already has (without copying) overrides it.
    fn frame(&mut self, frame: Frame<'_, X>) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(frame, &mut out);
        out.freeze()
    }

    /// The mode its streams are counted in, in [`Stats`](crate::Stats) and
    /// metrics: [`Mode::Framed`] unless it says otherwise (a protocol's
    /// own SSE framing says [`Mode::Sse`]).
    fn mode(&self) -> Mode {
        Mode::Framed
    }
}

/// Newline-delimited JSON: one JSON object per line; a heartbeat is an empty
/// line.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Ndjson;

impl Framing<JsonItem> for Ndjson {
    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static("application/x-ndjson")
    }

    fn mode(&self) -> Mode {
        Mode::Ndjson
    }

    fn frame(&mut self, frame: Frame<'_, JsonItem>) -> Bytes {
        // An event's line is in its buffer: every stream sends the same
        // bytes.
        if let Frame::Item(item) = &frame {
            if let Some(line) = item.line() {
                return line;
            }
        }
        // The line of an item of a plain stream is its JSON, made for this
        // frame alone: the newline goes into the same allocation.
        if let Frame::Item(JsonItem {
            id: None,
            json: Ok(Json::Owned(mut line)),
        }) = frame
        {
            line.push(b'\n');
            return Bytes::from(line);
        }
        let mut out = BytesMut::new();
        self.encode(frame, &mut out);
        out.freeze()
    }

    fn encode(&mut self, frame: Frame<'_, JsonItem>, out: &mut BytesMut) {
        // A heartbeat is the newline alone.
        let heartbeat = matches!(frame, Frame::Heartbeat);
        if write_json(&frame, out) || heartbeat {
            out.put_u8(b'\n');
        }
    }
}

/// The JSON of `frame` as NDJSON, WebSocket text and long-poll batches
/// carry it (without a newline); `false` when it has none (heartbeat, up to
/// date).
pub(crate) fn write_json(frame: &Frame<'_, JsonItem>, out: &mut BytesMut) -> bool {
    match frame {
        Frame::Item(item) => write_item(item, out),
        Frame::Control(Control::UpToDate { .. }) | Frame::Heartbeat => return false,
        Frame::Control(control) => control.write_json(true, out),
    }
    true
}

/// An item's JSON (its `skipped` frame when it does not serialize).
pub(crate) fn write_item(item: &JsonItem, out: &mut BytesMut) {
    match &item.json {
        Ok(json) => item.write_json(json, out),
        Err(err) => item.skipped(err).write_json(true, out),
    }
}

/// The WebSocket text of a frame: its NDJSON line without the newline (an
/// event's shares its buffer).
#[cfg(feature = "ws")]
pub(crate) fn json_text(frame: &Frame<'_, JsonItem>) -> Option<Bytes> {
    if let Frame::Item(JsonItem {
        id: Some(_),
        json: Ok(Json::Event(buf)),
    }) = frame
    {
        return Some(encoded::text(buf));
    }
    let mut out = BytesMut::new();
    if !write_json(frame, &mut out) {
        return None;
    }
    Some(out.freeze())
}

/// Server-sent events (`text/event-stream`), written by the crate so that
/// every frame's size is exact: `id:` is the cursor, `data:` the event's
/// JSON; control frames are named events; a heartbeat is a comment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sse {
    retry: Option<Duration>,
}

impl Sse {
    /// SSE without `retry:` fields.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `retry: <ms>` with the first and the last frame: how long
    /// `EventSource` waits before it reconnects.
    #[must_use]
    pub fn retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
    }

    fn field(out: &mut BytesMut, name: &str, value: impl std::fmt::Display) {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        let _ = write!(out, "{value}");
        out.put_u8(b'\n');
    }

    fn control(&self, control: &Control, out: &mut BytesMut) {
        if matches!(control, Control::UpToDate { .. }) {
            return;
        }
        // The open frame is named `cursor` in SSE: EventSource's own
        // `open` event exists already.
        let name = match control {
            Control::Open { .. } => "cursor",
            other => other.name(),
        };
        Self::field(out, "event", name);
        out.put_slice(b"data: ");
        control.write_json(false, out);
        out.put_u8(b'\n');
        if let Some(id) = control.id() {
            Self::field(out, "id", id);
        }
        if let (Some(retry), true) = (
            self.retry,
            matches!(control, Control::Open { .. }) || control.is_last(),
        ) {
            Self::field(out, "retry", retry.as_millis());
        }
        out.put_u8(b'\n');
    }
}

impl Framing<JsonItem> for Sse {
    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static("text/event-stream")
    }

    fn mode(&self) -> Mode {
        Mode::Sse
    }

    fn encode(&mut self, frame: Frame<'_, JsonItem>, out: &mut BytesMut) {
        match frame {
            Frame::Item(item) => match &item.json {
                Ok(json) => {
                    // One allocation for the event: id, data, blank line.
                    out.reserve(json.len() + 56);
                    if let Some(id) = item.id {
                        out.put_slice(b"id: ");
                        out.put_slice(&id.text());
                        out.put_u8(b'\n');
                    }
                    out.put_slice(b"data: ");
                    out.put_slice(json);
                    out.put_slice(b"\n\n");
                }
                Err(err) => self.control(&item.skipped(err), out),
            },
            Frame::Control(control) => self.control(control, out),
            Frame::Heartbeat => out.put_slice(b": \n\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_log::GoneReason;

    const C: Cursor = Cursor {
        epoch: 0xab,
        position: 7,
    };

    fn ndjson(frame: Frame<'_, JsonItem>) -> String {
        let mut out = BytesMut::new();
        Ndjson.encode(frame, &mut out);
        String::from_utf8(out.to_vec()).unwrap_or_default()
    }

    fn sse(frame: Frame<'_, JsonItem>) -> String {
        let mut out = BytesMut::new();
        Sse::new()
            .retry(Some(Duration::from_millis(2500)))
            .encode(frame, &mut out);
        String::from_utf8(out.to_vec()).unwrap_or_default()
    }

    fn event(json: &str) -> JsonItem {
        JsonItem {
            id: Some(C),
            json: Ok(Json::Event(encoded::from_json(C, json.as_bytes()))),
        }
    }

    #[test]
    fn events_in_each_framing() {
        let e = event("\"hi\"");
        assert_eq!(
            ndjson(Frame::Item(e.clone())),
            "{\"id\":\"00000000000000ab-00000000000000000007\",\"data\":\"hi\"}\n"
        );
        assert_eq!(
            sse(Frame::Item(e)),
            "id: 00000000000000ab-00000000000000000007\ndata: \"hi\"\n\n"
        );
        let plain = JsonItem::plain(&42);
        assert_eq!(ndjson(Frame::Item(plain.clone())), "42\n");
        assert_eq!(sse(Frame::Item(plain)), "data: 42\n\n");
        assert_eq!(ndjson(Frame::Heartbeat), "\n");
        assert_eq!(sse(Frame::Heartbeat), ": \n\n");
    }

    #[test]
    fn control_frames_in_each_framing() {
        let open = Control::Open { cursor: C };
        assert_eq!(
            ndjson(Frame::Control(&open)),
            "{\"control\":\"open\",\"cursor\":\"00000000000000ab-00000000000000000007\"}\n"
        );
        assert_eq!(
            sse(Frame::Control(&open)),
            "event: cursor\ndata: {\"cursor\":\"00000000000000ab-00000000000000000007\"}\n\
             id: 00000000000000ab-00000000000000000007\nretry: 2500\n\n"
        );
        let reconnect = Control::Reconnect {
            reason: EndReason::Shutdown,
            cursor: Some(C),
        };
        assert_eq!(
            ndjson(Frame::Control(&reconnect)),
            "{\"control\":\"reconnect\",\"reason\":\"shutdown\",\"cursor\":\"00000000000000ab-00000000000000000007\"}\n"
        );
        assert_eq!(
            sse(Frame::Control(&reconnect)),
            "event: reconnect\ndata: {\"reason\":\"shutdown\",\"cursor\":\"00000000000000ab-00000000000000000007\"}\n\
             retry: 2500\n\n"
        );
        let closed = Control::Closed { cursor: C };
        assert_eq!(
            sse(Frame::Control(&closed)),
            "event: closed\ndata: {\"cursor\":\"00000000000000ab-00000000000000000007\"}\n\
             id: 00000000000000ab-00000000000000000007\nretry: 2500\n\n"
        );
        let up = Control::UpToDate { cursor: C };
        assert_eq!(ndjson(Frame::Control(&up)), "");
        assert_eq!(sse(Frame::Control(&up)), "");
    }

    #[test]
    fn gone_and_skipped() {
        let restart = Cursor {
            epoch: 0xab,
            position: 3,
        };
        let gone = Control::Gone(CursorGone::new(GoneReason::Evicted, C, restart));
        let line = ndjson(Frame::Control(&gone));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["control"], "gone");
        assert_eq!(value["reason"], "evicted");
        assert_eq!(value["cursor"], "00000000000000ab-00000000000000000003");
        let block = sse(Frame::Control(&gone));
        assert!(block.starts_with("event: gone\ndata: {"), "{block}");
        assert!(
            block.contains("\nid: 00000000000000ab-00000000000000000003\n"),
            "{block}"
        );

        let bad = JsonItem {
            id: Some(C),
            json: Err("no".to_owned()),
        };
        let line = ndjson(Frame::Item(bad.clone()));
        assert_eq!(
            line,
            "{\"control\":\"skipped\",\"id\":\"00000000000000ab-00000000000000000007\",\
             \"message\":\"event could not be serialized: no\"}\n"
        );
        assert_eq!(
            sse(Frame::Item(bad)),
            "event: skipped\ndata: {\"message\":\"event could not be serialized: no\"}\n\
             id: 00000000000000ab-00000000000000000007\n\n"
        );
    }
}
