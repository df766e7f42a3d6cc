//! Helpers shared by the integration tests: a server on a real socket, a
//! probe that hands request tokens to the test, a raw HTTP/1.1 client and an
//! HTTP/2 (prior knowledge) client.
//!
//! Every wait here is a hang guard, never a performance assertion.

// Each test file uses a subset of the helpers.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use axum_longpoll::{DisconnectToken, Stats, StatsSnapshot};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a token that must be cancelled may take (a hang guard).
pub const MUST_CANCEL: Duration = Duration::from_secs(5);

/// How long a token that must stay uncancelled is watched after the event
/// that could wrongly have cancelled it.
pub const STAYS_UNCANCELLED: Duration = Duration::from_millis(300);

/// Hang guard for socket reads and request round trips.
pub const IO_GUARD: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// An app served with `axum::serve` on `127.0.0.1:0` in a task.
///
/// Dropping it aborts the server task.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serves `app` until the server is dropped or [`Server::shutdown`] is called.
pub async fn spawn(app: Router) -> Server {
    spawn_with_shutdown(app, CancellationToken::new()).await
}

/// Serves `app` with `with_graceful_shutdown(shutdown.cancelled_owned())`.
pub async fn spawn_with_shutdown(app: Router, shutdown: CancellationToken) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    spawn_on(listener, app, shutdown)
}

/// Serves `app` on an already bound `listener` (for sockets set up by hand,
/// e.g. with small buffers), with
/// `with_graceful_shutdown(shutdown.cancelled_owned())`.
pub fn spawn_on(listener: TcpListener, app: Router, shutdown: CancellationToken) -> Server {
    let addr = listener.local_addr().expect("local addr");
    let signal = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
    });
    Server {
        addr,
        shutdown,
        task: Some(task),
    }
}

impl Server {
    /// The shutdown token passed to `with_graceful_shutdown`.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Cancels the shutdown token and waits (at most `guard`) for the serve
    /// future to return. Panics if it does not.
    pub async fn shutdown(mut self, guard: Duration) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.join(guard).await
    }

    /// Waits (at most `guard`) for the serve future to return.
    pub async fn join(&mut self, guard: Duration) -> std::io::Result<()> {
        let task = self.task.take().expect("server already joined");
        tokio::time::timeout(guard, task)
            .await
            .expect("the serve future did not return in time")
            .expect("server task panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// Token probe
// ---------------------------------------------------------------------------

/// Handler-side end of the probe: handlers (or the probe middleware) send
/// their request's disconnect token to the test.
#[derive(Clone, Debug)]
pub struct Probe {
    tx: mpsc::UnboundedSender<CancellationToken>,
}

/// Test-side end of the probe.
#[derive(Debug)]
pub struct Tokens {
    rx: mpsc::UnboundedReceiver<CancellationToken>,
}

pub fn probe() -> (Probe, Tokens) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Probe { tx }, Tokens { rx })
}

impl Probe {
    pub fn send(&self, token: &DisconnectToken) {
        // The test may have finished and dropped its end; nothing to do then.
        let _ = self.tx.send(token.token().clone());
    }
}

impl Tokens {
    /// The next request's token; panics if none arrives within the guard.
    pub async fn next(&mut self) -> CancellationToken {
        tokio::time::timeout(IO_GUARD, self.rx.recv())
            .await
            .expect("no request token reached the test")
            .expect("probe channel closed")
    }
}

/// Middleware for `axum::middleware::from_fn_with_state(probe, ..)`, placed
/// inside `DisconnectLayer`: sends the request's token to the test before
/// the handler (and its extractors) run.
pub async fn probe_middleware(State(probe): State<Probe>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let token = <DisconnectToken as FromRequestParts<()>>::from_request_parts(&mut parts, &())
        .await
        .expect("DisconnectLayer must wrap the probe middleware");
    probe.send(&token);
    next.run(Request::from_parts(parts, body)).await
}

/// Asserts that `token` is (or becomes) cancelled within [`MUST_CANCEL`].
pub async fn assert_cancelled(token: &CancellationToken, what: &str) {
    assert!(
        tokio::time::timeout(MUST_CANCEL, token.cancelled())
            .await
            .is_ok(),
        "{what}: the token was not cancelled within {MUST_CANCEL:?}"
    );
}

/// Gives a wrong cancellation [`STAYS_UNCANCELLED`] to happen, then asserts
/// that it did not.
pub async fn assert_not_cancelled(token: &CancellationToken, what: &str) {
    tokio::time::sleep(STAYS_UNCANCELLED).await;
    assert!(!token.is_cancelled(), "{what}: the token was cancelled");
}

/// Polls `stats` until `pred` holds; panics after 5 s.
pub async fn wait_for_stats(
    stats: &Stats,
    what: &str,
    pred: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = tokio::time::Instant::now() + MUST_CANCEL;
    loop {
        let snap = stats.snapshot();
        if pred(&snap) {
            return snap;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: stats never got there; last {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (polling, within a hang guard) until `cond` holds.
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within the guard"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

/// The status line and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .map(|v| v.trim().parse().expect("numeric content-length"))
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub head: Head,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP/1.1 client connection written by hand over a `TcpStream`.
#[derive(Debug)]
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Wraps a stream connected by hand (e.g. with a small receive buffer).
    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(IO_GUARD, self.stream.write_all(bytes))
            .await
            .expect("write hung")
            .expect("write");
    }

    /// Writes a request without a body: `METHOD target HTTP/1.1` and the
    /// given extra header lines (each without CRLF).
    pub async fn request(&mut self, method: &str, target: &str, headers: &[&str]) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nhost: test\r\n");
        for h in headers {
            let _ = write!(req, "{h}\r\n");
        }
        req.push_str("\r\n");
        self.send(req.as_bytes()).await;
    }

    pub async fn get(&mut self, target: &str) {
        self.request("GET", target, &[]).await;
    }

    /// Reads more bytes into the buffer; returns how many (0 at EOF).
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(IO_GUARD, self.stream.read(&mut chunk))
            .await
            .expect("read hung")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Bytes up to and including the next CRLF.
    async fn read_line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return String::from_utf8_lossy(&line[..pos]).into_owned();
            }
            assert!(self.fill().await > 0, "EOF in the middle of a line");
        }
    }

    async fn read_exact_buf(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await > 0, "EOF in the middle of a body");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a response head (skipping any `1xx`).
    pub async fn read_head(&mut self) -> Head {
        loop {
            let status_line = self.read_line().await;
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
            let mut headers = Vec::new();
            loop {
                let line = self.read_line().await;
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').expect("header line");
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            if !(100..200).contains(&status) {
                return Head { status, headers };
            }
        }
    }

    /// Reads the next chunk of a chunked body; `None` at the last chunk
    /// (trailers are consumed).
    pub async fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.read_line().await;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            while !self.read_line().await.is_empty() {}
            return None;
        }
        let data = self.read_exact_buf(size).await;
        assert_eq!(self.read_line().await, "", "chunk not followed by CRLF");
        Some(data)
    }

    /// Reads the body that follows `head`. `no_body` for responses to `HEAD`.
    pub async fn read_body(&mut self, head: &Head, no_body: bool) -> Vec<u8> {
        if no_body || head.status == 204 || head.status == 304 {
            return Vec::new();
        }
        if head.is_chunked() {
            let mut body = Vec::new();
            while let Some(chunk) = self.read_chunk().await {
                body.extend_from_slice(&chunk);
            }
            body
        } else if let Some(len) = head.content_length() {
            self.read_exact_buf(len).await
        } else {
            self.read_to_eof().await
        }
    }

    /// Reads a whole response (not to a `HEAD` request).
    pub async fn read_response(&mut self) -> RawResponse {
        let head = self.read_head().await;
        let body = self.read_body(&head, false).await;
        RawResponse { head, body }
    }

    /// Reads until the server closes the connection (EOF or reset).
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 8192];
        loop {
            let read = tokio::time::timeout(IO_GUARD, self.stream.read(&mut chunk))
                .await
                .expect("the server did not close the connection");
            match read {
                Ok(0) | Err(_) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Closes the connection with a FIN: the socket is dropped with nothing
    /// unread in its receive buffer (else the kernel would send RST).
    pub fn fin(self) {
        drop(self.stream);
    }

    /// Closes the connection with a RST (`SO_LINGER` 0, then close).
    pub fn rst(self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("set SO_LINGER 0");
        drop(self.stream);
    }

    /// Shuts down the write direction only (`shutdown(SHUT_WR)`); the
    /// socket stays open for reading.
    pub async fn half_close(&mut self) {
        self.stream.shutdown().await.expect("shutdown(SHUT_WR)");
    }

    /// Closes the write side and reads until the server closed its side:
    /// afterwards the server has certainly processed the close.
    pub async fn close_and_wait_server(mut self) {
        self.half_close().await;
        let _ = self.read_to_eof().await;
    }
}

/// One request on a fresh connection; returns the whole response.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[&str],
) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.request(method, target, headers).await;
    conn.read_response().await
}

/// `GET target` on a fresh connection.
pub async fn raw_get(addr: SocketAddr, target: &str) -> RawResponse {
    raw_request(addr, "GET", target, &[]).await
}

// ---------------------------------------------------------------------------
// HTTP/2, prior knowledge
// ---------------------------------------------------------------------------

/// An HTTP/2 client connection; the connection is driven in a task.
#[derive(Debug)]
pub struct H2 {
    addr: SocketAddr,
    send: http2::SendRequest<Empty<Bytes>>,
    conn: JoinHandle<()>,
    /// A second handle on the socket, to close it from outside: hyper drives
    /// the h2 connection in a task of its own, which keeps the socket open
    /// while any stream is alive even after `conn` is aborted.
    socket: std::net::TcpStream,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let std_tcp = tcp.into_std().expect("into_std");
        let socket = std_tcp.try_clone().expect("dup socket");
        let tcp = TcpStream::from_std(std_tcp).expect("from_std");
        let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Self {
            addr,
            send,
            conn,
            socket,
        }
    }

    /// Sends `GET path` and returns the response future. The request goes
    /// out whether or not the future is polled; dropping the future before
    /// the response arrived resets the stream (`RST_STREAM(CANCEL)`).
    pub fn get(
        &mut self,
        path: &str,
    ) -> impl std::future::Future<Output = hyper::Result<hyper::Response<Incoming>>> {
        let req = hyper::Request::get(format!("http://{}{path}", self.addr))
            .body(Empty::new())
            .expect("request");
        self.send.send_request(req)
    }

    /// Closes the whole connection (FIN in both directions, whatever the
    /// streams are doing), stops driving it and drops the handles.
    pub async fn close(self) {
        self.socket
            .shutdown(std::net::Shutdown::Both)
            .expect("shutdown socket");
        self.conn.abort();
        let _ = self.conn.await;
        drop(self.send);
    }
}

// ---------------------------------------------------------------------------
// Publishing from synchronous test code
// ---------------------------------------------------------------------------

/// `publish` on a memory log, from code that does not await: a memory
/// publish completes on its first poll.
pub trait PublishNow<T> {
    fn publish_now(&self, data: T) -> axum_longpoll::Cursor;
}

impl<T: axum_longpoll::event_log::Payload> PublishNow<T> for axum_longpoll::EventLog<T> {
    fn publish_now(&self, data: T) -> axum_longpoll::Cursor {
        use futures_util::FutureExt;
        self.publish(data)
            .now_or_never()
            .expect("a memory publish is ready at once")
            .expect("a memory publish does not fail")
    }
}

// ---------------------------------------------------------------------------
// Handlers over an `EventLog<u64>` (the recommended shapes)
// ---------------------------------------------------------------------------

pub mod handlers {
    use axum::extract::State;
    use axum::response::Response;
    use axum_longpoll::event_log::{EventLog, Resume};
    use axum_longpoll::{LongPoll, Streaming};

    pub type Log = EventLog<u64>;

    /// Long-poll with a cursor.
    pub async fn poll(State(log): State<Log>, resume: Resume, lp: LongPoll) -> Response {
        lp.serve(log.reader(resume)).await
    }

    /// NDJSON stream from a cursor.
    pub async fn ndjson(State(log): State<Log>, resume: Resume, s: Streaming) -> Response {
        s.ndjson(log.reader(resume))
    }

    /// SSE stream from a cursor.
    pub async fn sse(State(log): State<Log>, resume: Resume, s: Streaming) -> Response {
        s.sse(log.reader(resume))
    }
}

// ---------------------------------------------------------------------------
// Handlers over named streams (`Streams<T, B>`, any backend)
// ---------------------------------------------------------------------------

pub mod rooms {
    use axum::extract::{FromRequestParts, Path};
    use axum::http::request::Parts;
    use axum::response::{IntoResponse, Response};
    use axum_longpoll::event_log::{Backend, Payload};
    use axum_longpoll::ws::LiveSocket;
    use axum_longpoll::{EventLog, LongPoll, Resume, Streaming, Streams};

    /// The stream named by the route's `{name}`, created on first use; a bad
    /// name or a full collection is answered as the crate answers it.
    pub struct Room<T, B: Backend>(pub EventLog<T, B>);

    impl<T: Payload, B: Backend> FromRequestParts<Streams<T, B>> for Room<T, B> {
        type Rejection = Response;

        async fn from_request_parts(
            parts: &mut Parts,
            streams: &Streams<T, B>,
        ) -> Result<Self, Self::Rejection> {
            let Path(name) = Path::<String>::from_request_parts(parts, streams)
                .await
                .map_err(IntoResponse::into_response)?;
            streams
                .get_or_create(&name)
                .await
                .map(Room)
                .map_err(IntoResponse::into_response)
        }
    }

    pub async fn poll<T: Payload, B: Backend>(
        Room(log): Room<T, B>,
        resume: Resume,
        lp: LongPoll,
    ) -> Response {
        lp.serve(log.reader(resume)).await
    }

    pub async fn ndjson<T: Payload, B: Backend>(
        Room(log): Room<T, B>,
        resume: Resume,
        s: Streaming,
    ) -> Response {
        s.ndjson(log.reader(resume))
    }

    pub async fn sse<T: Payload, B: Backend>(
        Room(log): Room<T, B>,
        resume: Resume,
        s: Streaming,
    ) -> Response {
        s.sse(log.reader(resume))
    }

    /// A read-only WebSocket (messages from the client are ignored).
    pub async fn ws<T: Payload, B: Backend>(
        Room(log): Room<T, B>,
        resume: Resume,
        ws: LiveSocket,
    ) -> Response {
        ws.serve(log.reader(resume), |_| Ok(()))
    }
}

// ---------------------------------------------------------------------------
// A WebSocket client by hand
// ---------------------------------------------------------------------------

/// Opcodes of the frames a test reads or writes.
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
}

/// The upgrade request for `path` (a fixed key: the server's accept is not
/// checked).
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// A WebSocket client written by hand: the handshake, then raw frames. It
/// writes only what the test writes on [`stream`](Self::stream): it never
/// answers a ping or a close frame.
pub struct RawWs {
    pub stream: TcpStream,
}

impl RawWs {
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::handshake(stream, path).await
    }

    /// The upgrade over `stream`, which must end in `101`.
    pub async fn handshake(mut stream: TcpStream, path: &str) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        stream
            .write_all(upgrade_request(path).as_bytes())
            .await
            .expect("write the upgrade");
        // Byte by byte, so that no frame is read with the head.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let b = tokio::time::timeout(IO_GUARD, stream.read_u8())
                .await
                .expect("no handshake answer")
                .expect("read the handshake answer");
            head.push(b);
        }
        let head = String::from_utf8(head).expect("a UTF-8 head");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream }
    }

    /// One server frame (servers do not mask): opcode and payload.
    pub async fn frame(&mut self) -> (u8, Vec<u8>) {
        let s = &mut self.stream;
        let read = async {
            let b0 = s.read_u8().await?;
            let b1 = s.read_u8().await?;
            let len = match b1 & 0x7f {
                126 => u64::from(s.read_u16().await?),
                127 => s.read_u64().await?,
                n => u64::from(n),
            };
            let mut payload = vec![0; usize::try_from(len).expect("a frame that fits")];
            s.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>((b0 & 0x0f, payload))
        };
        tokio::time::timeout(IO_GUARD, read)
            .await
            .expect("no frame from the server")
            .expect("read a frame")
    }

    /// Frames up to the server's close frame; returns its code.
    pub async fn until_close(&mut self) -> u16 {
        loop {
            let (op, payload) = self.frame().await;
            if op == opcode::CLOSE {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }

    /// Closes TCP with a FIN (nothing unread is left behind: read it all
    /// first, else the kernel sends RST).
    pub fn fin(self) {
        drop(self.stream);
    }

    /// Closes TCP with a RST.
    pub fn rst(self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        drop(self.stream);
    }
}

// ---------------------------------------------------------------------------
// Small socket buffers (a reader that stops reading fills them quickly)
// ---------------------------------------------------------------------------

/// A listener on `127.0.0.1:0` whose accepted sockets have a small send
/// buffer.
pub fn small_send_buffer_listener() -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(4096).expect("SO_SNDBUF");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    socket.listen(128).expect("listen")
}

/// A client connection with a small receive buffer.
pub async fn small_recv_buffer_conn(addr: SocketAddr) -> RawConn {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    RawConn::from_stream(socket.connect(addr).await.expect("connect"))
}
