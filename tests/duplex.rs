#![allow(clippy::unwrap_used)]
//! Full duplex (seed 002) over real sockets, serving the router of
//! `examples/duplex.rs`: the client sends request chunk N+1 only after it
//! has read response chunk N, so the exchange can only finish if the server
//! reads the request body while it writes the response. HTTP/1.1 over raw
//! TCP (chunked both ways) and HTTP/2 with prior knowledge (hyper's client,
//! a channel-fed request body).
//!
//! Every timeout is a hang guard, never a performance assertion.

mod common;

#[allow(dead_code)]
#[path = "../examples/duplex.rs"]
mod duplex;

use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum_longpoll::DisconnectLayer;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::{
    assert_cancelled, assert_not_cancelled, probe, probe_middleware, spawn_with_shutdown, RawConn,
    Server, Tokens,
};

const GUARD: Duration = Duration::from_secs(5);
const ROUNDS: usize = 20;

/// The example's router with the token probe inside its `DisconnectLayer`.
async fn server() -> (Server, Tokens) {
    let (p, tokens) = probe();
    let shutdown = CancellationToken::new();
    let app = duplex::routes()
        .layer(from_fn_with_state(p, probe_middleware))
        .layer(DisconnectLayer::new().shutdown(shutdown.clone()));
    (spawn_with_shutdown(app, shutdown).await, tokens)
}

async fn h1_open(conn: &mut RawConn) {
    conn.send(
        b"POST /upper HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\
          Content-Type: text/plain\r\n\r\n",
    )
    .await;
}

async fn h1_send_chunk(conn: &mut RawConn, data: &str) {
    conn.send(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await;
}

async fn h1_read_chunk(conn: &mut RawConn) -> Option<String> {
    tokio::time::timeout(GUARD, conn.read_chunk())
        .await
        .expect("no response chunk: the server did not answer before the request ended")
        .map(|c| String::from_utf8(c).unwrap())
}

#[tokio::test]
async fn duplex_h1_lock_step() {
    let (server, mut tokens) = server().await;
    let mut conn = RawConn::connect(server.addr).await;
    h1_open(&mut conn).await;
    h1_send_chunk(&mut conn, "chunk 0").await;
    let head = tokio::time::timeout(GUARD, conn.read_head()).await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let token = tokens.next().await;
    for i in 0..ROUNDS {
        if i > 0 {
            h1_send_chunk(&mut conn, &format!("chunk {i}")).await;
        }
        assert_eq!(
            h1_read_chunk(&mut conn).await.as_deref(),
            Some(format!("CHUNK {i}").as_str())
        );
    }
    conn.send(b"0\r\n\r\n").await; // end of the request body
    assert_eq!(
        h1_read_chunk(&mut conn).await,
        None,
        "the response ends too"
    );
    assert_not_cancelled(&token, "a duplex exchange that ended normally").await;

    // The connection is reusable after a complete exchange.
    h1_open(&mut conn).await;
    h1_send_chunk(&mut conn, "again").await;
    conn.read_head().await;
    assert_eq!(h1_read_chunk(&mut conn).await.as_deref(), Some("AGAIN"));
    conn.send(b"0\r\n\r\n").await;
    assert_eq!(h1_read_chunk(&mut conn).await, None);
}

#[tokio::test]
async fn duplex_h1_client_leaves_mid_exchange_cancels_token() {
    let (server, mut tokens) = server().await;
    for rst in [false, true] {
        let mut conn = RawConn::connect(server.addr).await;
        h1_open(&mut conn).await;
        h1_send_chunk(&mut conn, "a").await;
        conn.read_head().await;
        let token = tokens.next().await;
        assert_eq!(h1_read_chunk(&mut conn).await.as_deref(), Some("A"));
        h1_send_chunk(&mut conn, "b").await;
        assert_eq!(h1_read_chunk(&mut conn).await.as_deref(), Some("B"));
        if rst {
            conn.rst();
        } else {
            conn.fin();
        }
        assert_cancelled(
            &token,
            if rst {
                "RST mid-duplex"
            } else {
                "FIN mid-duplex"
            },
        )
        .await;
    }
}

/// An HTTP/2 connection whose request bodies are fed chunk by chunk.
/// An `Err` item makes hyper's client reset the stream.
type ChunkBody =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>>;

async fn h2_connect(server: &Server) -> http2::SendRequest<ChunkBody> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

type Chunk = Result<Bytes, std::io::Error>;

fn channel_body() -> (mpsc::UnboundedSender<Chunk>, ChunkBody) {
    let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
    let stream = futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|b| (b.map(Frame::data), rx))
    });
    (tx, StreamBody::new(Box::pin(stream) as _))
}

/// The next non-empty DATA frame (hyper may end a stream with an empty
/// frame carrying END_STREAM).
async fn h2_frame(body: &mut hyper::body::Incoming) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(GUARD, body.frame())
            .await
            .expect("no response frame: the server did not answer before the request ended")?
            .unwrap();
        let data = frame.into_data().unwrap();
        if !data.is_empty() {
            return Some(String::from_utf8(data.to_vec()).unwrap());
        }
    }
}

#[tokio::test]
async fn duplex_h2_lock_step_on_two_streams() {
    let (server, mut tokens) = server().await;
    let mut send = h2_connect(&server).await;
    // Two exchanges interleaved on one connection: each stream is its own
    // duplex channel.
    let mut exchanges = Vec::new();
    for _ in 0..2 {
        let (tx, body) = channel_body();
        let req = hyper::Request::post(format!("http://{}/upper", server.addr))
            .body(body)
            .unwrap();
        let res = send.send_request(req);
        tx.send(Ok(Bytes::from("chunk 0"))).unwrap();
        let res = tokio::time::timeout(GUARD, res).await.unwrap().unwrap();
        assert_eq!(res.status(), 200);
        exchanges.push((tx, res.into_body(), tokens.next().await));
    }
    for i in 0..ROUNDS {
        for (n, (tx, body, _)) in exchanges.iter_mut().enumerate() {
            if i > 0 {
                tx.send(Ok(Bytes::from(format!("s{n} chunk {i}")))).unwrap();
            }
            let want = if i == 0 {
                "CHUNK 0".to_owned()
            } else {
                format!("S{n} CHUNK {i}")
            };
            assert_eq!(h2_frame(body).await, Some(want));
        }
    }
    let (tx, mut body, token) = exchanges.pop().unwrap();
    drop(tx); // end of this request body
    assert_eq!(h2_frame(&mut body).await, None, "the response ends too");
    assert_not_cancelled(&token, "an h2 duplex exchange that ended normally").await;

    // The client aborts the other exchange mid-way: its request body fails,
    // so hyper resets the stream (RST_STREAM), which cancels that token.
    let (tx, _body, other) = exchanges.pop().unwrap();
    tx.send(Err(std::io::Error::other("client aborts")))
        .unwrap();
    assert_cancelled(&other, "h2 stream reset mid-duplex").await;
    assert_not_cancelled(&token, "the sibling stream, ended before").await;
}
