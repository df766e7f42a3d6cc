//! The long-poll answer from a log: the events after the client's cursor as
//! one JSON body, built from each event's shared JSON.

use std::future::Future;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::Either;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use super::{LongPoll, Outcome};
use crate::event_log::{encoded, Backend, Cursor, EventLog, LogReader};
use crate::response::with_header;
use crate::source::json_item;
use crate::stats::LongPollEnd;
use crate::wire::{write_item, Json, JsonItem, STREAM_CLOSED};

/// The `Cursor` response header: where to continue, on every long-poll
/// answer of [`LongPoll::serve`] (also the ones without a body).
pub const CURSOR: HeaderName = HeaderName::from_static("cursor");

/// `{"events":[…],"cursor":"<next>"}`: each event as the JSON framings
/// write it (an event that does not serialize as its `skipped` frame),
/// with the `Cursor` header. One event that is not the end of a closed log
/// is the most common answer (every poll woken by one publish gets it): its
/// buffer is that answer already, shared by every poll that gets it.
fn batch_body(events: &[(Cursor, JsonItem)], next: Cursor, closed: bool) -> Response {
    crate::observe::answered("long_poll", events.len());
    let (body, cursor) = match events {
        [(
            at,
            JsonItem {
                json: Ok(Json::Event(buf)),
                ..
            },
        )] if *at == next && !closed => (buf.clone(), encoded::cursor(buf)),
        _ => {
            let size: usize = events
                .iter()
                .map(|(_, item)| item.json.as_ref().map_or(64, |json| json.len() + 48))
                .sum();
            let mut out = BytesMut::with_capacity(size + 64);
            out.put_slice(b"{\"events\":[");
            for (i, (_, item)) in events.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_item(item, &mut out);
            }
            out.put_slice(b"],\"cursor\":\"");
            out.put_slice(&next.text());
            out.put_u8(b'"');
            if closed {
                out.put_slice(b",\"closed\":true");
            }
            out.put_u8(b'}');
            // The cursor as the last event wrote it, else written now.
            let cursor = match events.last() {
                Some((
                    at,
                    JsonItem {
                        json: Ok(Json::Event(buf)),
                        ..
                    },
                )) if *at == next => encoded::cursor(buf),
                _ => Bytes::copy_from_slice(&next.text()),
            };
            (out.freeze(), cursor)
        }
    };
    let mut res = Response::new(Body::from(body));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(cursor) = HeaderValue::from_maybe_shared(cursor) {
        headers.insert(CURSOR, cursor);
    }
    if closed {
        headers.insert(STREAM_CLOSED, HeaderValue::from_static("true"));
    }
    res
}

impl LongPoll {
    /// The recommended long-poll: waits for the events of a log after the
    /// client's position ([`EventLog::reader`](crate::EventLog::reader)) and
    /// answers.
    ///
    /// | outcome | answer |
    /// |---|---|
    /// | events | `200` `{"events":[{"id":"<cursor>","data":…}],"cursor":"<next>"}` |
    /// | the last events of a closed log, or none at its end | the same with `"closed":true` and `Stream-Closed: true`, at once (never parks at the end) |
    /// | timeout | `204` (keepalive) |
    /// | shutdown | `503` + `Retry-After` |
    /// | the position is gone | `410` with the [`CursorGone`](crate::CursorGone) JSON |
    /// | the log is unreachable (Redis) | `503` + `Retry-After` |
    /// | disconnected | `499`, never seen |
    ///
    /// Every answer but the `410` and the outage carries the [`CURSOR`]
    /// header with the cursor to continue from, so a client always holds a
    /// valid position. Nothing is consumed by a read: a client that leaves
    /// at any moment loses no event, and comes back with its last cursor.
    ///
    /// The JSON of each event is made once and shared by every answer that
    /// carries it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{extract::State, response::Response};
    /// use axum_longpoll::{EventLog, LongPoll, Resume};
    ///
    /// async fn poll(State(log): State<EventLog<Arc<str>>>, resume: Resume, lp: LongPoll) -> Response {
    ///     lp.serve(log.reader(resume)).await
    /// }
    /// ```
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    // A plain `fn`: the start is decided now, so the future that stays
    // parked holds the log and a cursor only (its size is memory per parked
    // poll), not the reader and its refusal.
    pub fn serve<T, B>(&self, reader: LogReader<T, B>) -> impl Future<Output = Response> + Send + '_
    where
        T: Serialize + Send + Sync + 'static,
        B: Backend,
    {
        let LogReader { log, start, .. } = reader;
        match start {
            Ok(after) => Either::Left(self.wait_log(log, after)),
            Err(refused) => {
                let res = refused.into_response();
                self.count_as(if res.status() == StatusCode::GONE {
                    LongPollEnd::Gone
                } else {
                    LongPollEnd::Unavailable
                });
                Either::Right(std::future::ready(res))
            }
        }
    }

    async fn wait_log<T, B>(&self, log: EventLog<T, B>, after: Cursor) -> Response
    where
        T: Serialize + Send + Sync + 'static,
        B: Backend,
    {
        let waiter = log.waiter();
        let outcome = self.wait(log.wait_with(after, json_item)).await;
        drop(waiter);
        let (res, cursor) = match outcome {
            Outcome::Ready(Ok(read)) => {
                if read.closed {
                    self.count_as(LongPollEnd::Closed);
                }
                // With its `Cursor` header.
                return batch_body(&read.events, read.cursor, read.closed);
            }
            Outcome::Ready(Err(gone)) => {
                self.count_as(LongPollEnd::Gone);
                return gone.into_response();
            }
            other => (self.respond(other.map(|_: Result<_, _>| ())), after),
        };
        with_header(res, CURSOR, cursor)
    }
}
