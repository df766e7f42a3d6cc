#![allow(clippy::unwrap_used)]
//! Streams that end (`EventLog::close`), over real sockets, HTTP/1.1 and
//! HTTP/2 (prior knowledge; the WebSocket over HTTP/2 through extended
//! `CONNECT`), in the four modes:
//!
//! - long-poll: the last batch carries `"closed":true` and `Stream-Closed:
//!   true`; a poll at the end answers at once, never parks;
//! - NDJSON: `{"control":"closed","cursor":…}`, then the body ends;
//! - SSE: `event: closed`, then the body ends; a reconnect at the end is a
//!   `204`, which stops `EventSource`;
//! - WebSocket: a `closed` frame, then close `1000` with a reason that
//!   says closed.
//!
//! Readers behind the end get every event first; readers waiting when the
//! stream closes learn it at once; a publish after the close is `409`.

mod common;

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use axum_longpoll::event_log::Memory;
use axum_longpoll::{DisconnectLayer, Streams};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, Role};
use tokio_tungstenite::tungstenite::Message;

use common::rooms::{self, Room};
use common::{spawn, RawConn, IO_GUARD};

type Rooms = Streams<u64>;

async fn publish(Room(log): Room<u64, Memory>, body: String) -> Response {
    let value: u64 = body.trim().parse().unwrap_or_default();
    match log.publish(value).await {
        Ok(id) => axum::Json(json!({ "id": id })).into_response(),
        Err(err) => err.into_response(),
    }
}

fn app(rooms: &Rooms) -> Router {
    Router::new()
        .route("/s/{name}/poll", get(rooms::poll::<u64, Memory>))
        .route("/s/{name}/stream", get(rooms::ndjson::<u64, Memory>))
        .route("/s/{name}/sse", get(rooms::sse::<u64, Memory>))
        // `any`: also HTTP/2 extended CONNECT.
        .route("/s/{name}/ws", any(rooms::ws::<u64, Memory>))
        .route("/s/{name}/publish", post(publish))
        .with_state(rooms.clone())
        .layer(DisconnectLayer::new())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

/// A whole response: status, headers (lowercase names), body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// NDJSON lines, heartbeats (empty lines) left out.
    fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// SSE events as (event name, id, data).
    fn events(&self) -> Vec<(Option<String>, Option<String>, Option<String>)> {
        self.body
            .split("\n\n")
            .filter(|block| !block.trim().is_empty() && !block.starts_with(':'))
            .map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .map(str::to_owned)
                };
                (field("event"), field("id"), field("data"))
            })
            .collect()
    }
}

/// GET `path` and read the whole response (it must end within the guard:
/// a closed stream's body ends, a poll at the end answers at once).
async fn get_all(addr: SocketAddr, proto: Proto, path: &str, headers: &[(&str, &str)]) -> Reply {
    tokio::time::timeout(IO_GUARD, async {
        match proto {
            Proto::H1 => {
                let mut conn = RawConn::connect(addr).await;
                let lines: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                conn.request("GET", path, &lines).await;
                let res = conn.read_response().await;
                Reply {
                    status: res.status(),
                    headers: res.head.headers.clone(),
                    body: res.text(),
                }
            }
            Proto::H2 => {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut req = hyper::Request::get(format!("http://{addr}{path}"));
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                let res = send
                    .send_request(req.body(Empty::<Bytes>::new()).unwrap())
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let headers = res
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                Reply {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{proto:?} GET {path}: no complete answer within the guard"))
}

/// Three events, then a close that appends the fourth: `[(cursor, value)]`
/// and the end.
async fn closed_room(rooms: &Rooms, name: &str) -> (Vec<(String, u64)>, String) {
    let log = rooms.get_or_create(name).await.unwrap();
    let mut events = Vec::new();
    for v in [10, 20, 30] {
        events.push((log.publish(v).await.unwrap().to_string(), v));
    }
    let end = log.close(Some(40)).await.unwrap();
    events.push((end.to_string(), 40));
    (events, end.to_string())
}

fn event_values(events: &[(String, u64)]) -> Vec<Value> {
    events
        .iter()
        .map(|(id, v)| json!({ "id": id, "data": v }))
        .collect()
}

#[tokio::test]
async fn a_closed_stream_ends_in_every_http_mode_on_http1_and_http2() {
    let rooms = Rooms::new_for_tests();
    let server = spawn(app(&rooms)).await;
    for proto in [Proto::H1, Proto::H2] {
        let name = format!("room-{proto:?}");
        let (events, end) = closed_room(&rooms, &name).await;

        // Long-poll from the oldest: every event, then "closed".
        let reply = get_all(
            server.addr,
            proto,
            &format!("/s/{name}/poll?from=oldest"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{proto:?} {reply:?}");
        assert_eq!(reply.header("stream-closed"), Some("true"), "{reply:?}");
        let body = reply.json();
        assert_eq!(
            body["events"],
            Value::Array(event_values(&events)),
            "{body}"
        );
        assert_eq!(body["cursor"], end.as_str());
        assert_eq!(body["closed"], true);

        // A poll at the end answers at once (it asks to wait 60 s; the guard
        // is 10), never parks.
        let reply = get_all(
            server.addr,
            proto,
            &format!("/s/{name}/poll?cursor={end}&timeout=60"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("stream-closed"), Some("true"));
        assert_eq!(
            reply.json(),
            json!({ "events": [], "cursor": end, "closed": true })
        );

        // A poll behind the end: the rest and "closed".
        let from = &events[1].0;
        let reply = get_all(
            server.addr,
            proto,
            &format!("/s/{name}/poll?cursor={from}"),
            &[],
        )
        .await;
        assert_eq!(
            reply.json()["events"],
            Value::Array(event_values(&events[2..]))
        );
        assert_eq!(reply.json()["closed"], true);

        // NDJSON: open, the events, `closed`, then the body ends.
        let reply = get_all(
            server.addr,
            proto,
            &format!("/s/{name}/stream?from=oldest"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200);
        let lines = reply.lines();
        assert_eq!(lines[0]["control"], "open");
        assert_eq!(&lines[1..5], event_values(&events).as_slice());
        assert_eq!(lines[5], json!({ "control": "closed", "cursor": end }));
        assert_eq!(lines.len(), 6, "{lines:?}");

        // SSE: the cursor event, the events, `closed` with id = the end.
        let reply = get_all(
            server.addr,
            proto,
            &format!("/s/{name}/sse?from=oldest"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200);
        let sse = reply.events();
        assert_eq!(sse[0].0.as_deref(), Some("cursor"));
        for (i, (id, v)) in events.iter().enumerate() {
            assert_eq!(
                sse[i + 1],
                (None, Some(id.clone()), Some(v.to_string())),
                "{sse:?}"
            );
        }
        let closed = &sse[5];
        assert_eq!(closed.0.as_deref(), Some("closed"));
        assert_eq!(closed.1.as_deref(), Some(end.as_str()));
        assert_eq!(sse.len(), 6, "{sse:?}");

        // EventSource's reconnect at the end: 204, which stops it.
        for path in [
            format!("/s/{name}/sse"),
            format!("/s/{name}/stream?cursor={end}"),
        ] {
            let reply = get_all(
                server.addr,
                proto,
                &path,
                &[("last-event-id", end.as_str())],
            )
            .await;
            assert_eq!(reply.status, 204, "{proto:?} {path}: {reply:?}");
            assert_eq!(reply.header("stream-closed"), Some("true"));
        }

        // Publishing after the close: 409, naming the stream.
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(
            format!("POST /s/{name}/publish HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n50")
                .as_bytes(),
        )
        .await;
        let res = conn.read_response().await;
        assert_eq!(res.status(), 409, "{}", res.text());
        assert!(
            res.text().contains(&format!("stream {name:?} is closed")),
            "{}",
            res.text()
        );
    }
}

/// Readers waiting at the head when the stream closes (a parked poll, an
/// NDJSON and an SSE stream, on HTTP/1.1 and HTTP/2) get the last event
/// and learn "closed" at once.
#[tokio::test]
async fn readers_waiting_when_the_stream_closes_learn_it_at_once() {
    let rooms = Rooms::new_for_tests();
    let server = spawn(app(&rooms)).await;
    for proto in [Proto::H1, Proto::H2] {
        let name = format!("live-{proto:?}");
        let log = rooms.get_or_create(&name).await.unwrap();
        let start = log.publish(1).await.unwrap().to_string();
        let addr = server.addr;
        let poll = tokio::spawn({
            let path = format!("/s/{name}/poll?cursor={start}&timeout=60");
            async move { get_all(addr, proto, &path, &[]).await }
        });
        let nd = tokio::spawn({
            let path = format!("/s/{name}/stream?cursor={start}");
            async move { get_all(addr, proto, &path, &[]).await }
        });
        let sse = tokio::spawn({
            let path = format!("/s/{name}/sse?cursor={start}");
            async move { get_all(addr, proto, &path, &[]).await }
        });
        common::wait_for(|| {
            let f = log.figures();
            f.waiters == 1 && f.readers == 2
        })
        .await;
        let end = log.close(Some(2)).await.unwrap().to_string();

        let reply = poll.await.unwrap();
        assert_eq!(
            reply.json(),
            json!({ "events": [{ "id": end, "data": 2 }], "cursor": end, "closed": true })
        );
        let lines = nd.await.unwrap().lines();
        assert_eq!(lines[1], json!({ "id": end, "data": 2 }));
        assert_eq!(lines[2], json!({ "control": "closed", "cursor": end }));
        let events = sse.await.unwrap().events();
        assert_eq!(events.last().unwrap().0.as_deref(), Some("closed"));
        // Nobody is left on the stream.
        common::wait_for(|| {
            let f = log.figures();
            f.waiters == 0 && f.readers == 0
        })
        .await;
    }
}

/// The messages of a WebSocket up to its close frame.
async fn ws_messages<S>(mut ws: tokio_tungstenite::WebSocketStream<S>) -> (Vec<Value>, u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut texts = Vec::new();
    loop {
        let msg = tokio::time::timeout(IO_GUARD, ws.next())
            .await
            .expect("no close frame")
            .expect("ended without a close frame")
            .unwrap();
        match msg {
            Message::Text(text) => texts.push(serde_json::from_str(&text).unwrap()),
            Message::Close(Some(frame)) => {
                let _ = ws.close(None).await;
                return (texts, u16::from(frame.code), frame.reason.to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A WebSocket on a closed stream (HTTP/1.1 upgrade, and HTTP/2 extended
/// CONNECT): the events, a `closed` frame, close `1000` saying closed; and
/// one open when the stream closes learns it at once.
#[tokio::test]
async fn a_websocket_gets_the_closed_frame_and_close_1000_on_http1_and_http2() {
    let rooms = Rooms::new_for_tests();
    let server = spawn(app(&rooms)).await;
    let (events, end) = closed_room(&rooms, "ws").await;

    // HTTP/1.1.
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/s/ws/ws?from=oldest", server.addr))
            .await
            .unwrap();
    let (texts, code, reason) = ws_messages(ws).await;
    assert_eq!(texts[0]["control"], "open");
    assert_eq!(&texts[1..5], event_values(&events).as_slice());
    assert_eq!(texts[5], json!({ "control": "closed", "cursor": end }));
    assert_eq!(code, u16::from(CloseCode::Normal));
    assert!(reason.contains("closed"), "{reason}");

    // HTTP/2, extended CONNECT (RFC 8441).
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::connect(format!("http://{}/s/ws/ws?from=oldest", server.addr))
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200, "extended CONNECT accepted");
    let upgraded = hyper::upgrade::on(res).await.unwrap();
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Client,
        None,
    )
    .await;
    let (texts, code, reason) = ws_messages(ws).await;
    assert_eq!(texts.len(), 6, "{texts:?}");
    assert_eq!(texts[5], json!({ "control": "closed", "cursor": end }));
    assert_eq!(code, 1000);
    assert!(reason.contains("closed"), "{reason}");

    // Open when the stream closes: the last event, then the close.
    let log = rooms.get_or_create("ws-live").await.unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/s/ws-live/ws", server.addr))
        .await
        .unwrap();
    common::wait_for(|| log.figures().readers == 1).await;
    let end = log.close(Some(7)).await.unwrap().to_string();
    let (texts, code, _) = ws_messages(ws).await;
    assert_eq!(texts[1], json!({ "id": end, "data": 7 }));
    assert_eq!(texts[2], json!({ "control": "closed", "cursor": end }));
    assert_eq!(code, 1000);
}

/// Closing twice is harmless; closing with a last event after the close is
/// refused (`Closed`), as is a publish.
#[tokio::test]
async fn closing_again_is_harmless() {
    let rooms = Rooms::new_for_tests();
    let log = rooms.get_or_create("twice").await.unwrap();
    log.publish(1).await.unwrap();
    let end = log.close(None).await.unwrap();
    assert_eq!(log.close(None).await.unwrap(), end);
    assert!(log.is_closed());
    for refused in [log.close(Some(2)).await, log.publish(3).await] {
        let err = refused.unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(
            err.to_string().contains("stream \"twice\" is closed"),
            "{err}"
        );
    }
    assert_eq!(log.head(), end);
}

/// `Streams` with the defaults the tests want.
trait ForTests {
    fn new_for_tests() -> Self;
}

impl ForTests for Rooms {
    fn new_for_tests() -> Self {
        axum_longpoll::EventLog::builder()
            .capacity(64)
            .streams()
            .build()
    }
}
