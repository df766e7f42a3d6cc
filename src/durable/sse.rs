//! The protocol's SSE: after each batch of data a `data` event (one JSON
//! array, the text, or base64 of the bytes) and a `control` event with the
//! next offset, the CDN cursor and whether the reader is up to date or the
//! stream closed. A [`Framing`] of the crate's stream engine: heartbeats,
//! caps, shutdown and the client leaving are the engine's.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderValue;

use super::protocol::Media;
use crate::event_log::{Backend, Cursor, EventLog, Step, Steps};
use crate::source::{sealed::IntoSteps, BoxSteps};
use crate::wire::{Control, Frame, Framing};

use super::Chunk;

/// The data read at one wake-up: sent as one `data` event and one
/// `control` event.
#[derive(Debug)]
pub(crate) struct Batch {
    chunks: Vec<Bytes>,
    /// After the last chunk.
    next: Cursor,
    up_to_date: bool,
    closed: bool,
}

/// The steps of a reader of a durable stream, the events of each read
/// grouped into one [`Batch`].
pub(crate) struct Batches<B: Backend> {
    steps: Steps<Chunk, B, Bytes>,
    /// A step read past the end of a batch, to hand out next.
    held: VecDeque<Step<Batch>>,
    max: usize,
}

fn bytes(entry: &crate::event_log::Entry<Chunk>, _: Cursor) -> Bytes {
    entry.data.0.clone()
}

impl<B: Backend> Batches<B> {
    pub(crate) fn new(log: EventLog<Chunk, B>, start: Cursor, max: usize) -> Self {
        Self {
            steps: Steps::new(log, start, bytes, false),
            held: VecDeque::new(),
            max,
        }
    }
}

impl<B: Backend> Stream for Batches<B> {
    type Item = Step<Batch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Step<Batch>>> {
        let this = &mut *self;
        if let Some(step) = this.held.pop_front() {
            return Poll::Ready(Some(step));
        }
        let mut batch: Option<Batch> = None;
        loop {
            let full = batch.as_ref().is_some_and(|b| b.chunks.len() >= this.max);
            let step = if full {
                Poll::Pending
            } else {
                Pin::new(&mut this.steps).poll_next(cx)
            };
            match (step, batch.as_mut()) {
                (Poll::Ready(Some(Step::Item(chunk, cursor))), _) => {
                    let batch = batch.get_or_insert_with(|| Batch {
                        chunks: Vec::new(),
                        next: this.steps.cursor(),
                        up_to_date: false,
                        closed: false,
                    });
                    batch.chunks.push(chunk);
                    batch.next = cursor.unwrap_or(batch.next);
                }
                // The end of a read: the batch carries it.
                (Poll::Ready(Some(Step::UpToDate(_))), Some(b)) => {
                    b.up_to_date = true;
                    break;
                }
                (Poll::Ready(Some(Step::Closed(_))), Some(b)) => {
                    b.up_to_date = true;
                    b.closed = true;
                    break;
                }
                (Poll::Ready(Some(other)), Some(_)) => {
                    this.held.push_back(map_step(other));
                    break;
                }
                (Poll::Ready(Some(other)), None) => return Poll::Ready(Some(map_step(other))),
                (Poll::Ready(None), Some(_)) | (Poll::Pending, Some(_)) => break,
                (Poll::Ready(None), None) => return Poll::Ready(None),
                (Poll::Pending, None) => return Poll::Pending,
            }
        }
        let batch = batch.expect("the loop ends with a batch");
        let (next, closed) = (batch.next, batch.closed);
        let item = Step::Item(batch, Some(next));
        if closed {
            // Nothing follows a closed stream's last batch.
            this.held.push_back(Step::Closed(next));
        }
        Poll::Ready(Some(item))
    }
}

/// A step without items, as a step of batches.
fn map_step(step: Step<Bytes>) -> Step<Batch> {
    match step {
        Step::Open(c) => Step::Open(c),
        Step::UpToDate(c) => Step::UpToDate(c),
        Step::Gone(g) => Step::Gone(g),
        Step::Closed(c) => Step::Closed(c),
        // Items are batched by the caller.
        Step::Item(..) => unreachable!("items are batched"),
    }
}

/// A durable stream from a start, for the stream engine.
pub(crate) struct Source<B: Backend> {
    pub(crate) log: EventLog<Chunk, B>,
    pub(crate) start: Cursor,
    pub(crate) max_batch: usize,
}

impl<B: Backend> IntoSteps<Batch> for Source<B> {
    fn into_steps(self) -> Result<BoxSteps<Batch>, Response> {
        Ok(Box::pin(Batches::new(self.log, self.start, self.max_batch)))
    }
}

/// The protocol's SSE framing.
#[derive(Debug)]
pub(crate) struct DurableSse {
    media: Media,
    /// The response's `streamCursor`.
    cursor: u64,
    /// The offset of the last control event written: the offsets of one
    /// response's controls strictly increase, so none is written twice.
    sent: Option<Cursor>,
    /// Whether the control that says the stream closed went out.
    closed_sent: bool,
}

impl DurableSse {
    pub(crate) fn new(media: Media, cursor: u64) -> Self {
        Self {
            media,
            cursor,
            sent: None,
            closed_sent: false,
        }
    }

    fn control(&mut self, next: Cursor, up_to_date: bool, closed: bool, out: &mut BytesMut) {
        self.sent = Some(next);
        self.closed_sent |= closed;
        out.put_slice(b"event: control\ndata:{\"streamNextOffset\":\"");
        out.put_slice(next.to_string().as_bytes());
        out.put_u8(b'"');
        if closed {
            out.put_slice(b",\"streamClosed\":true");
        } else {
            out.put_slice(format!(",\"streamCursor\":\"{}\"", self.cursor).as_bytes());
        }
        if up_to_date {
            out.put_slice(b",\"upToDate\":true");
        }
        out.put_slice(b"}\n\n");
    }

    fn data(&self, chunks: &[Bytes], out: &mut BytesMut) {
        let payload = self.media.body(chunks.iter());
        let payload = match self.media {
            Media::Binary => {
                Bytes::from(base64::engine::general_purpose::STANDARD.encode(&payload))
            }
            Media::Json | Media::Text => payload,
        };
        out.put_slice(b"event: data\n");
        // One `data:` line per line of the payload, whatever ends it (CR,
        // LF or CRLF): a line break in the data cannot end the event.
        let mut rest = &payload[..];
        loop {
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            out.put_slice(b"data:");
            match end {
                Some(i) => {
                    out.put_slice(&rest[..i]);
                    out.put_u8(b'\n');
                    let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    rest = &rest[i + skip..];
                }
                None => {
                    out.put_slice(rest);
                    out.put_u8(b'\n');
                    break;
                }
            }
        }
        out.put_u8(b'\n');
    }
}

impl Framing<Batch> for DurableSse {
    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static("text/event-stream")
    }

    fn encode(&mut self, frame: Frame<'_, Batch>, out: &mut BytesMut) {
        match frame {
            Frame::Item(batch) => {
                self.data(&batch.chunks, out);
                self.control(batch.next, batch.up_to_date, batch.closed, out);
            }
            // Up to date with nothing new (an empty stream, `offset=now`),
            // unless the last batch's control said it at this offset.
            Frame::Control(Control::UpToDate { cursor }) => {
                if self.sent != Some(*cursor) {
                    self.control(*cursor, true, false, out);
                }
            }
            // Closed at the start, or said by the last batch's control.
            Frame::Control(Control::Closed { cursor }) => {
                if !self.closed_sent {
                    self.control(*cursor, true, true, out);
                }
            }
            Frame::Heartbeat => out.put_slice(b": \n\n"),
            // Where it starts, reconnects (the client comes back with its
            // offset) and a position that is gone (the client's next
            // request is answered 410): nothing in-band.
            Frame::Control(_) => {}
        }
    }
}
