//! The load client: raw HTTP/1.1 over `TcpStream` (a request is one
//! `write`, a response is parsed in place: no per-request allocation beyond
//! the connection's buffer) and hyper's HTTP/2 client for streams.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use http_body_util::Empty;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How many connects are in flight at once when opening many connections.
const CONNECT_CONCURRENCY: usize = 200;

#[path = "../shared/http1.rs"]
mod http1;

use http1::{chunk_size, find, head};
pub(crate) use http1::{connect, get, Answer, Conn, GUARD};

/// What only this bench reads: a long chunked body, counted, not kept.
impl Conn {
    /// Reads a chunked response to its end without keeping it; returns the
    /// status, the payload bytes and the number of `\n` in them.
    pub(crate) async fn drain_chunked(&mut self) -> io::Result<(u16, u64, u64)> {
        let (status, end) = loop {
            if let Some((status, end, _)) = head(&self.buf) {
                break (status, end);
            }
            self.fill().await?;
        };
        let mut pending: Vec<u8> = self.buf.split_off(end);
        self.buf.clear();
        let mut chunk = vec![0u8; 256 * 1024];
        let (mut bytes, mut lines) = (0u64, 0u64);
        // Bytes of the current chunk's data still to come.
        let mut remaining = 0usize;
        let mut at = 0usize;
        loop {
            // Consume what is buffered.
            loop {
                if remaining > 0 {
                    let take = remaining.min(pending.len() - at);
                    let data = &pending[at..at + take];
                    bytes += take as u64;
                    lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                    at += take;
                    remaining -= take;
                    if remaining > 0 {
                        break;
                    }
                    // Then the data's CRLF: treated as part of the next size line.
                    continue;
                }
                // A size line, possibly preceded by the previous chunk's CRLF.
                let rest = &pending[at..];
                let rest_start = if rest.starts_with(b"\r\n") { 2 } else { 0 };
                let Some(eol) = find(&rest[rest_start..], b"\r\n") else {
                    break;
                };
                let line = &rest[rest_start..rest_start + eol];
                let size = chunk_size(line)?;
                if size == 0 {
                    // The final CRLF after the last chunk.
                    let tail = rest_start + eol + 2;
                    while pending.len() < at + tail + 2 {
                        let n = self.stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        pending.extend_from_slice(&chunk[..n]);
                    }
                    return Ok((status, bytes, lines));
                }
                at += rest_start + eol + 2;
                remaining = size;
            }
            pending.drain(..at);
            at = 0;
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            pending.extend_from_slice(&chunk[..n]);
        }
    }
}

pub(crate) fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) fn poll_request(id: u64) -> Vec<u8> {
    get(&format!(
        "/poll?id={id}&timeout={}",
        crate::servers::POLL_TIMEOUT.as_secs()
    ))
}

/// A keep-alive control connection to one server: stats, publish,
/// detections.
pub(crate) struct Control {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Control {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    pub(crate) async fn call(&mut self, request: &[u8]) -> io::Result<Answer> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(self.addr).await?);
        }
        let conn = self.conn.as_mut().expect("just set");
        match conn.call(request).await {
            Ok(answer) => Ok(answer),
            Err(err) => {
                self.conn = None;
                Err(err)
            }
        }
    }

    pub(crate) async fn parked(&mut self) -> io::Result<u64> {
        let answer = self.call(&get("/stats")).await?;
        answer
            .text()
            .trim()
            .strip_prefix("parked=")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad /stats: {}", answer.text())))
    }

    /// Waits until exactly `n` polls are parked.
    pub(crate) async fn wait_parked(&mut self, n: u64) -> io::Result<()> {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let parked = self.parked().await?;
            if parked == n {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{parked} polls parked, expected {n}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `(id, unix_nanos)` of every disconnect seen since the last call.
    pub(crate) async fn detections(&mut self) -> io::Result<Vec<(u64, u64)>> {
        let answer = self.call(&get("/detections")).await?;
        Ok(answer
            .text()
            .lines()
            .filter_map(|l| {
                let (id, at) = l.split_once(' ')?;
                Some((id.parse().ok()?, at.parse().ok()?))
            })
            .collect())
    }

    /// Server side: `(publish_ns, last_answer_ns, answered)`.
    pub(crate) async fn fanout(&mut self) -> io::Result<(u64, u64, u64)> {
        let answer = self.call(&get("/fanout")).await?;
        let text = answer.text();
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        match v[..] {
            [p, l, a] => Ok((p, l, a)),
            _ => Err(io::Error::other(format!("bad /fanout: {text}"))),
        }
    }
}

/// Opens one connection per id and sends a long-poll on each.
pub(crate) async fn park_many(
    addr: SocketAddr,
    ids: std::ops::Range<u64>,
) -> io::Result<Vec<Conn>> {
    futures_util::stream::iter(ids)
        .map(|id| async move {
            let mut conn = Conn::open(addr).await?;
            conn.send(&poll_request(id)).await?;
            Ok::<_, io::Error>(conn)
        })
        .buffered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// Opens `n` WebSockets on `GET /ws` (the handshake by hand) and leaves
/// them idle: nothing is read after the `101` head.
/// The upgrade request of an idle WebSocket (`GET /ws`).
pub(crate) const WS_UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nhost: bench\r\nconnection: upgrade\r\n\
      upgrade: websocket\r\nsec-websocket-version: 13\r\n\
      sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Opens `n` connections, each sending `request` and reading the response
/// head (which must start with `status`); the connections are returned
/// open, their bodies unread.
pub(crate) async fn open_held(
    addr: SocketAddr,
    n: u64,
    request: &'static [u8],
    status: &'static [u8],
) -> io::Result<Vec<TcpStream>> {
    futures_util::stream::iter(0..n)
        .map(|_| async move {
            let mut stream = connect(addr).await?;
            stream.write_all(request).await?;
            let mut head = Vec::with_capacity(256);
            while !head.ends_with(b"\r\n\r\n") {
                head.push(tokio::time::timeout(GUARD, stream.read_u8()).await??);
            }
            if !head.starts_with(status) {
                return Err(io::Error::other(format!(
                    "refused: {}",
                    String::from_utf8_lossy(&head)
                )));
            }
            Ok::<_, io::Error>(stream)
        })
        .buffered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// An HTTP/2 (prior knowledge) connection.
pub(crate) async fn h2_connect(addr: SocketAddr) -> io::Result<http2::SendRequest<Empty<Bytes>>> {
    let tcp = connect(addr).await?;
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(conn);
    Ok(send)
}

/// A long-poll on an HTTP/2 stream, in its own task. Dropping the returned
/// sender (or sending on it) resets the stream (`RST_STREAM(CANCEL)`) and
/// the task yields the unix time just before the reset.
pub(crate) async fn h2_park(
    send: &mut http2::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    id: u64,
) -> io::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
)> {
    send.ready().await.map_err(io::Error::other)?;
    let req = http::Request::get(format!(
        "http://{addr}/poll?id={id}&timeout={}",
        crate::servers::POLL_TIMEOUT.as_secs()
    ))
    .body(Empty::<Bytes>::new())
    .map_err(io::Error::other)?;
    let response = Box::pin(send.send_request(req));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut response = response;
        tokio::select! {
            _ = &mut response => 0,
            _ = rx => {
                let at = crate::unix_nanos();
                drop(response);
                at
            }
        }
    });
    Ok((tx, task))
}
