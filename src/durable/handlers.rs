//! `PUT`, `POST`, `GET` (catch-up, `live=long-poll`, `live=sse`), `HEAD`
//! and `DELETE` on a durable stream.

// An error here is the answer itself, made once per request.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, LOCATION,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::producer::{Producer, Verdict};
use super::protocol::{
    essence, json_messages, next_cursor, parse_rfc3339, parse_ttl, Media, Offset,
    ATTR_CONTENT_TYPE, ATTR_EXPIRES_AT, ATTR_TTL, DEFAULT_CONTENT_TYPE, PRODUCER_EPOCH,
    PRODUCER_EXPECTED_SEQ, PRODUCER_RECEIVED_SEQ, PRODUCER_SEQ, STREAM_CURSOR, STREAM_EXPIRES_AT,
    STREAM_FORKED_FROM, STREAM_NEXT_OFFSET, STREAM_SEQ, STREAM_SSE_DATA_ENCODING, STREAM_TTL,
    STREAM_UP_TO_DATE,
};
use super::sse::{DurableSse, Source};
use super::{Chunk, DurableStreams};
use crate::event_log::{
    Append, Backend, Cursor, EventLog, PublishError, StreamOptions, StreamsError,
};
use crate::long_poll::{LongPoll, Outcome};
use crate::stats::LongPollEnd;
use crate::stream::Streaming;
use crate::wire::STREAM_CLOSED;

/// An answer with a plain-text reason.
fn fail(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

fn bad_request(text: impl Into<String>) -> Response {
    fail(StatusCode::BAD_REQUEST, text)
}

fn not_found(name: &str) -> Response {
    fail(
        StatusCode::NOT_FOUND,
        format!("stream {name:?} does not exist"),
    )
}

fn header(res: &mut Response, name: http::HeaderName, value: impl ToString) {
    if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
        res.headers_mut().insert(name, value);
    }
}

fn flag(res: &mut Response, name: http::HeaderName) {
    res.headers_mut()
        .insert(name, HeaderValue::from_static("true"));
}

/// The stream's content type as created (echoed exactly), and its media.
fn content_type<B: Backend>(log: &EventLog<Chunk, B>) -> (HeaderValue, Media) {
    let given = log
        .attribute(ATTR_CONTENT_TYPE)
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    let value = HeaderValue::from_str(given)
        .unwrap_or_else(|_| HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    (value, Media::of(given))
}

fn request_content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

fn is_true(headers: &HeaderMap, name: &http::HeaderName) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The most of a refused (too large) body that is read and dropped before
/// the `413`, and for how long at most. A client that sends its body
/// without waiting for an answer (no `Expect: 100-continue`, as `fetch`
/// does) is still writing when the answer comes: a connection closed with
/// its body unread is reset under it, and it sees `EPIPE` instead of the
/// `413`. Reading the rest first (as a web server's lingering close does)
/// lets it read the answer.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the body within `limit` bytes: `413` for an announced or a read
/// length beyond it (an announced one before any `100 Continue`).
async fn body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes, Response> {
    use http_body_util::BodyExt as _;
    let too_large = || {
        fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: allowed at most {limit} bytes per append"),
        )
    };
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // A client that waits for `100 Continue` has sent nothing yet: nothing
    // to drain (reading would ask it for the body).
    let drain =
        !headers.contains_key(http::header::EXPECT) && announced.is_none_or(|n| n <= DRAIN_MAX);
    if announced.is_some_and(|n| n > limit as u64) {
        if drain {
            drain_body(body).await;
        }
        return Err(too_large());
    }
    let mut data = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(bad_request("the request body could not be read to its end"));
        };
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                if drain {
                    drain_body(body).await;
                }
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.freeze())
}

/// Reads and drops what is left of `body`: at most [`DRAIN_MAX`] bytes,
/// for at most [`DRAIN_TIME`].
async fn drain_body(mut body: Body) {
    use http_body_util::BodyExt as _;
    let drained = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(chunk) = frame.into_data() {
                seen += chunk.len() as u64;
                if seen > DRAIN_MAX {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drained).await;
}

/// What an append stores, checked against the stream's media: `None` for
/// an empty JSON array (allowed when creating only).
fn chunk(media: Media, body: Bytes) -> Result<Option<Chunk>, Response> {
    match media {
        Media::Json => json_messages(&body)
            .map(|messages| messages.map(Chunk))
            .map_err(|e| bad_request(format!("invalid body for a JSON stream: {e}"))),
        Media::Text | Media::Binary => Ok(Some(Chunk(body))),
    }
}

fn publish_refused(err: &PublishError) -> Response {
    let mut res = fail(err.status(), err.to_string());
    if let PublishError::Closed { end, .. } = err {
        flag(&mut res, STREAM_CLOSED);
        header(&mut res, STREAM_NEXT_OFFSET, end);
    }
    res
}

impl<B: Backend> DurableStreams<B> {
    // ---------------------------------------------------------------------
    // PUT: create
    // ---------------------------------------------------------------------

    pub(crate) async fn put(&self, name: &str, headers: &HeaderMap, request: Body) -> Response {
        if headers.contains_key(STREAM_FORKED_FROM) {
            return fail(
                StatusCode::NOT_IMPLEMENTED,
                "forks (`Stream-Forked-From`) are not supported by this server",
            );
        }
        let given = request_content_type(headers)
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_owned();
        let ttl_text = headers
            .get(STREAM_TTL)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
        let expires_text = headers
            .get(STREAM_EXPIRES_AT)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
        if ttl_text.is_some() && expires_text.is_some() {
            return bad_request(
                "`Stream-TTL` and `Stream-Expires-At` exclude each other; allowed: one of them",
            );
        }
        let mut options = StreamOptions::new().attribute(ATTR_CONTENT_TYPE, given.as_str());
        if let Some(ttl) = &ttl_text {
            let Some(seconds) = parse_ttl(ttl) else {
                return bad_request(format!(
                    "invalid `Stream-TTL`: {:?}; allowed: a whole number of seconds (`0` or no leading zeros)",
                    crate::params::echo(ttl)
                ));
            };
            options = options.ttl(seconds).attribute(ATTR_TTL, ttl.as_str());
        }
        if let Some(at) = &expires_text {
            let Some(when) = parse_rfc3339(at) else {
                return bad_request(format!(
                    "invalid `Stream-Expires-At`: {:?}; allowed: an RFC 3339 date-time like 2026-12-01T10:00:00Z",
                    crate::params::echo(at)
                ));
            };
            options = options
                .expires_at(when)
                .attribute(ATTR_EXPIRES_AT, at.as_str());
        }
        let closed = is_true(headers, &STREAM_CLOSED);
        let initial = match body(headers, request, self.config.max_append).await {
            Ok(initial) => initial,
            Err(res) => return res,
        };
        let media = Media::of(&given);
        let initial = if initial.is_empty() {
            None
        } else {
            match chunk(media, initial) {
                Ok(chunk) => chunk,
                Err(res) => return res,
            }
        };

        let (log, created) = match self.streams.create(name, options).await {
            Ok(log) => (log, true),
            Err(StreamsError::Exists { .. }) => match self.streams.find(name).await {
                Ok(Some(log)) => (log, false),
                Ok(None) => {
                    return fail(
                        StatusCode::CONFLICT,
                        "the stream was deleted meanwhile; retry",
                    )
                }
                Err(err) => return err.into_response(),
            },
            Err(err) => return err.into_response(),
        };
        if !created {
            // Idempotent: the same settings again are `200`, others `409`.
            let same = essence(
                log.attribute(ATTR_CONTENT_TYPE)
                    .unwrap_or(DEFAULT_CONTENT_TYPE),
            ) == essence(&given)
                && log.attribute(ATTR_TTL) == ttl_text.as_deref()
                && log.attribute(ATTR_EXPIRES_AT) == expires_text.as_deref()
                && log.is_closed() == closed;
            if !same {
                return fail(
                    StatusCode::CONFLICT,
                    format!("stream {name:?} exists with other settings"),
                );
            }
        } else if initial.is_some() || closed {
            let append = match initial {
                Some(chunk) if closed => Append::event(chunk).not_encoded().and_close(),
                Some(chunk) => Append::event(chunk).not_encoded(),
                None => Append::close(),
            };
            if let Err(err) = log.append(append).await {
                return publish_refused(&err);
            }
        }
        let (content_type, _) = content_type(&log);
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut res = status.into_response();
        res.headers_mut().insert(CONTENT_TYPE, content_type);
        header(&mut res, STREAM_NEXT_OFFSET, log.head());
        if log.is_closed() {
            flag(&mut res, STREAM_CLOSED);
        }
        if created {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            header(
                &mut res,
                LOCATION,
                format!("http://{host}{}/{name}", self.config.prefix),
            );
        }
        res
    }

    // ---------------------------------------------------------------------
    // POST: append, close
    // ---------------------------------------------------------------------

    pub(crate) async fn post(&self, name: &str, headers: &HeaderMap, request: Body) -> Response {
        let producer = match Producer::from_headers(headers) {
            Ok(producer) => producer,
            Err(text) => return bad_request(text),
        };
        let close = is_true(headers, &STREAM_CLOSED);
        let data = match body(headers, request, self.config.max_append).await {
            Ok(data) => data,
            Err(res) => return res,
        };
        if data.is_empty() && !close {
            return bad_request(
                "empty append: allowed a non-empty body, or `Stream-Closed: true` to close",
            );
        }
        let given = request_content_type(headers);
        if !data.is_empty() && given.is_none() {
            return bad_request("missing `Content-Type`: allowed the stream's content type");
        }
        let log = match self.streams.find(name).await {
            Ok(Some(log)) => log,
            Ok(None) => return not_found(name),
            Err(err) => return err.into_response(),
        };
        let (stream_type, media) = content_type(&log);
        let seq = headers
            .get(STREAM_SEQ)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());

        // One append at a time per stream on this instance: the producer
        // state and the append go together.
        let life = self.producers.life(name, log.epoch(), self.streams.len());
        let mut producers = life.producers.lock().await;
        if let Some(p) = &producer {
            if log.is_closed() {
                // The append that closed it, repeated: acknowledged.
                let repeat = producers.closed_by.as_ref() == Some(p);
                let mut res = if repeat {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    fail(StatusCode::CONFLICT, format!("stream {name:?} is closed"))
                };
                flag(&mut res, STREAM_CLOSED);
                header(&mut res, STREAM_NEXT_OFFSET, log.head());
                return res;
            }
            match producers.judge(p) {
                Verdict::Append => {}
                Verdict::Duplicate { last } => {
                    let mut res = StatusCode::NO_CONTENT.into_response();
                    header(&mut res, PRODUCER_EPOCH, p.epoch);
                    header(&mut res, PRODUCER_SEQ, last);
                    header(&mut res, STREAM_NEXT_OFFSET, log.head());
                    return res;
                }
                Verdict::StaleEpoch { current } => {
                    let mut res = fail(
                        StatusCode::FORBIDDEN,
                        format!(
                            "stale `Producer-Epoch` {}: the producer is at epoch {current}",
                            p.epoch
                        ),
                    );
                    header(&mut res, PRODUCER_EPOCH, current);
                    return res;
                }
                Verdict::EpochNotAtZero => {
                    return bad_request("a new `Producer-Epoch` starts at `Producer-Seq` 0");
                }
                Verdict::Gap { expected, received } => {
                    let mut res = fail(
                        StatusCode::CONFLICT,
                        format!("`Producer-Seq` {received} skips ahead; expected {expected}"),
                    );
                    header(&mut res, PRODUCER_EXPECTED_SEQ, expected);
                    header(&mut res, PRODUCER_RECEIVED_SEQ, received);
                    return res;
                }
            }
        }

        let close_only = data.is_empty();
        let append = if close_only {
            // Close only: the content type does not matter.
            Append::close()
        } else {
            if log.is_closed() {
                return publish_refused(&PublishError::Closed {
                    name: Some(name.into()),
                    end: log.head(),
                });
            }
            let stream_essence = essence(stream_type.to_str().unwrap_or_default());
            if given.map(essence).as_deref() != Some(stream_essence.as_str()) {
                return fail(
                    StatusCode::CONFLICT,
                    format!(
                        "`Content-Type` {:?} does not match the stream's {stream_essence:?}",
                        given.unwrap_or_default()
                    ),
                );
            }
            let chunk = match chunk(media, data) {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return bad_request("empty JSON array: allowed at least one value"),
                Err(res) => return res,
            };
            let append = Append::event(chunk).not_encoded();
            if close {
                append.and_close()
            } else {
                append
            }
        };
        let append = match seq {
            Some(seq) => append.seq(seq),
            None => append,
        };
        let end = match log.append(append).await {
            Ok(end) => end,
            Err(err) => return publish_refused(&err),
        };
        let mut res = match &producer {
            Some(p) => {
                producers.accept(p);
                if close {
                    producers.closed_by = Some(p.clone());
                }
                // An accepted append is `200`; a close without data `204`.
                let mut res = if close_only {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    StatusCode::OK.into_response()
                };
                header(&mut res, PRODUCER_EPOCH, p.epoch);
                header(&mut res, PRODUCER_SEQ, p.seq);
                res
            }
            None => StatusCode::NO_CONTENT.into_response(),
        };
        drop(producers);
        header(&mut res, STREAM_NEXT_OFFSET, end);
        if close {
            flag(&mut res, STREAM_CLOSED);
        }
        res
    }

    // ---------------------------------------------------------------------
    // GET
    // ---------------------------------------------------------------------

    pub(crate) async fn get(&self, name: &str, request: Request) -> Response {
        let query = match Query::parse(request.uri().query()) {
            Ok(query) => query,
            Err(res) => return res,
        };
        let log = match self.streams.find(name).await {
            Ok(Some(log)) => log,
            Ok(None) => return not_found(name),
            Err(err) => return err.into_response(),
        };
        let start = match query.offset {
            None | Some(Offset::Start) => log.oldest(),
            Some(Offset::Now) => log.head(),
            Some(Offset::After(cursor)) => cursor,
        };
        if let Err(gone) = log.check(start) {
            return gone.into_response();
        }
        match query.live {
            None => self.catch_up(
                &log,
                start,
                query.offset == Some(Offset::Now),
                request.headers(),
            ),
            Some(Live::LongPoll) => {
                if query.offset.is_none() {
                    return bad_request(
                        "`live=long-poll` needs `offset`; allowed: `-1`, `now` or an offset",
                    );
                }
                let lp = match LongPoll::from_request(request, &()).await {
                    Ok(lp) => lp,
                    Err(rejection) => return rejection.into_response(),
                };
                self.long_poll(&log, start, query.cursor.as_deref(), &lp)
                    .await
            }
            Some(Live::Sse) => {
                if query.offset.is_none() {
                    return bad_request(
                        "`live=sse` needs `offset`; allowed: `-1`, `now` or an offset",
                    );
                }
                let (mut parts, _) = request.into_parts();
                let s = match Streaming::from_request_parts(&mut parts, &()).await {
                    Ok(s) => s,
                    Err(rejection) => return rejection.into_response(),
                };
                let (_, media) = content_type(&log);
                let cursor = next_cursor(query.cursor.as_deref());
                let framing = DurableSse::new(media, cursor);
                let source = Source {
                    log,
                    start,
                    max_batch: self.config.max_batch,
                };
                let mut res = s.framed(framing, source);
                if media == Media::Binary {
                    res.headers_mut()
                        .insert(STREAM_SSE_DATA_ENCODING, HeaderValue::from_static("base64"));
                }
                res
            }
        }
    }

    /// The data after `start` now, as one body.
    fn catch_up(
        &self,
        log: &EventLog<Chunk, B>,
        start: Cursor,
        now: bool,
        headers: &HeaderMap,
    ) -> Response {
        let read = match log.read_chunks(start) {
            Ok(read) => read,
            Err(gone) => return gone.into_response(),
        };
        let (content_type, media) = content_type(log);
        let etag = format!(
            "\"{start}:{}{}\"",
            read.next,
            if read.closed { ":c" } else { "" }
        );
        let matches = headers
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
        let mut res = if matches && !now {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (StatusCode::OK, Body::from(media.body(read.chunks.iter()))).into_response()
        };
        res.headers_mut().insert(CONTENT_TYPE, content_type);
        header(&mut res, STREAM_NEXT_OFFSET, read.next);
        if read.up_to_date {
            flag(&mut res, STREAM_UP_TO_DATE);
        }
        if read.closed {
            flag(&mut res, STREAM_CLOSED);
        }
        if now {
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        } else {
            header(&mut res, ETAG, etag);
        }
        res
    }

    async fn long_poll(
        &self,
        log: &EventLog<Chunk, B>,
        start: Cursor,
        cursor: Option<&str>,
        lp: &LongPoll,
    ) -> Response {
        let waiter = log.waiter();
        let outcome = lp.wait(log.wait_chunks(start)).await;
        drop(waiter);
        let (content_type, media) = content_type(log);
        let mut res = match outcome {
            Outcome::Ready(Ok(read)) if !read.chunks.is_empty() => {
                crate::observe::answered("long_poll", read.chunks.len());
                let mut res =
                    (StatusCode::OK, Body::from(media.body(read.chunks.iter()))).into_response();
                res.headers_mut().insert(CONTENT_TYPE, content_type);
                header(&mut res, STREAM_NEXT_OFFSET, read.next);
                if read.up_to_date {
                    flag(&mut res, STREAM_UP_TO_DATE);
                }
                if read.closed {
                    lp.count_as(LongPollEnd::Closed);
                    flag(&mut res, STREAM_CLOSED);
                }
                res
            }
            // At the end of a closed stream: at once.
            Outcome::Ready(Ok(read)) => {
                lp.count_as(LongPollEnd::Closed);
                let mut res = StatusCode::NO_CONTENT.into_response();
                header(&mut res, STREAM_NEXT_OFFSET, read.next);
                flag(&mut res, STREAM_UP_TO_DATE);
                flag(&mut res, STREAM_CLOSED);
                return res;
            }
            Outcome::Ready(Err(gone)) => {
                lp.count_as(LongPollEnd::Gone);
                return gone.into_response();
            }
            Outcome::Timeout => {
                let mut res = StatusCode::NO_CONTENT.into_response();
                header(&mut res, STREAM_NEXT_OFFSET, start);
                flag(&mut res, STREAM_UP_TO_DATE);
                res
            }
            other => return lp.respond(other.map(|_: Result<_, _>| ())),
        };
        header(&mut res, STREAM_CURSOR, next_cursor(cursor));
        res
    }

    // ---------------------------------------------------------------------
    // HEAD, DELETE
    // ---------------------------------------------------------------------

    pub(crate) async fn head(&self, name: &str) -> Response {
        // Looked at, not used: a HEAD does not renew a TTL.
        let log = match self.streams.peek(name).await {
            Ok(Some(log)) => log,
            Ok(None) => return not_found(name),
            Err(err) => return err.into_response(),
        };
        let (content_type, _) = content_type(&log);
        let mut res = StatusCode::OK.into_response();
        res.headers_mut().insert(CONTENT_TYPE, content_type);
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        header(&mut res, STREAM_NEXT_OFFSET, log.head());
        if let Some(ttl) = log.attribute(ATTR_TTL) {
            header(&mut res, STREAM_TTL, ttl);
        }
        if let Some(at) = log.attribute(ATTR_EXPIRES_AT) {
            header(&mut res, STREAM_EXPIRES_AT, at);
        }
        if log.is_closed() {
            flag(&mut res, STREAM_CLOSED);
        }
        res
    }

    pub(crate) async fn delete(&self, name: &str) -> Response {
        match self.streams.delete(name).await {
            Ok(true) => {
                self.producers.forget(name);
                StatusCode::NO_CONTENT.into_response()
            }
            Ok(false) => not_found(name),
            Err(err) => err.into_response(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Live {
    LongPoll,
    Sse,
}

/// The query of a `GET`: `offset` (at most once, not empty), `live`,
/// `cursor`; other parameters are ignored.
struct Query {
    offset: Option<Offset>,
    live: Option<Live>,
    cursor: Option<String>,
}

impl Query {
    #[allow(clippy::result_large_err)] // once per request
    fn parse(query: Option<&str>) -> Result<Self, Response> {
        let mut offset = None;
        let mut live = None;
        let mut cursor = None;
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*key {
                "offset" => {
                    if offset.is_some() {
                        return Err(bad_request(
                            "`offset` is given more than once; allowed: at most once",
                        ));
                    }
                    offset = Some(Offset::parse(&value).ok_or_else(|| {
                        bad_request(format!(
                            "invalid `offset`: {:?}; allowed: `-1`, `now` or an offset the server gave",
                            crate::params::echo(&value)
                        ))
                    })?);
                }
                "live" => {
                    live = Some(match &*value {
                        "long-poll" => Live::LongPoll,
                        "sse" => Live::Sse,
                        other => {
                            return Err(bad_request(format!(
                                "invalid `live`: {:?}; allowed: `long-poll` or `sse`",
                                crate::params::echo(other)
                            )))
                        }
                    });
                }
                "cursor" => cursor = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(Self {
            offset,
            live,
            cursor,
        })
    }
}

// The axum handlers: the stream's name from the path, the state.

/// The stream's name from the path, checked: a name the collection cannot
/// hold is answered as [`check_name`](crate::event_log::check_name) says
/// (`400` naming `name`).
pub(crate) struct StreamName(String);

impl<S: Send + Sync> FromRequestParts<S> for StreamName {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        crate::event_log::check_name(&name).map_err(IntoResponse::into_response)?;
        Ok(Self(name))
    }
}

pub(crate) async fn put_handler<B: Backend>(
    State(ds): State<DurableStreams<B>>,
    StreamName(name): StreamName,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ds.put(&name, &headers, body).await
}

pub(crate) async fn post_handler<B: Backend>(
    State(ds): State<DurableStreams<B>>,
    StreamName(name): StreamName,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ds.post(&name, &headers, body).await
}

pub(crate) async fn get_handler<B: Backend>(
    State(ds): State<DurableStreams<B>>,
    StreamName(name): StreamName,
    request: Request,
) -> Response {
    ds.get(&name, request).await
}

pub(crate) async fn head_handler<B: Backend>(
    State(ds): State<DurableStreams<B>>,
    StreamName(name): StreamName,
) -> Response {
    ds.head(&name).await
}

pub(crate) async fn delete_handler<B: Backend>(
    State(ds): State<DurableStreams<B>>,
    StreamName(name): StreamName,
) -> Response {
    ds.delete(&name).await
}
