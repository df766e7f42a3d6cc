//! One connection: its socket, the service hyper calls for each of its
//! requests, and the task that drives it through its idle deadline and the
//! shutdown phases. No task or timer besides the connection's own task and
//! one timer in it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::future::RouteFuture;
use axum::Router;
use futures_util::task::AtomicWaker;
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use super::body::StallBody;
use crate::disconnect::{cut, Disconnect, DisconnectBody, ResponseFuture};
use crate::net::StallTimeout;
use crate::response::{reject, Reject};

/// What every connection of one server reads.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Phase (a) of the shutdown has begun: HTTP/1.x answers carry
    /// `Connection: close`.
    pub(crate) draining: AtomicBool,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) max_request_body: Option<u64>,
}

// ---------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------

/// An accepted TCP stream, shared with the server's list of open sockets
/// ([`Sockets`]) so that the hard deadline can shut down any of them, an
/// upgraded one (a WebSocket in a task of its own) included.
#[derive(Debug)]
pub(crate) struct SharedStream(Arc<TcpStream>);

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // As tokio's own `TcpStream` does: a read shorter than the room
            // it had drained the socket, so its readiness is cleared, and
            // the next read waits for the next event instead of asking the
            // kernel for nothing (one `EAGAIN` read per request saved).
            // The readiness cleared is the one seen before the read (a
            // returned `WouldBlock` makes `try_io` clear that one), so data
            // that arrives meanwhile is never missed.
            let room = buf.remaining();
            let mut read = None;
            let result = self.0.try_io(Interest::READABLE, || {
                let before = buf.filled().len();
                // Clears the readiness itself on `WouldBlock`.
                self.0.try_read_buf(buf)?;
                let n = buf.filled().len() - before;
                read = Some(n);
                if n > 0 && n < room {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            match (read, result) {
                (Some(_), _) => return Poll::Ready(Ok(())),
                (None, Err(err)) if err.kind() == io::ErrorKind::WouldBlock => {}
                (None, result) => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

/// Every socket the server accepted and has not closed: counted for the
/// connection cap and waited for in phase (b); shut down at the hard
/// deadline.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    open: TaskTracker,
    // Pruned when full, so it holds at most twice the open sockets.
    streams: Mutex<Vec<Weak<TcpStream>>>,
}

impl Sockets {
    /// Adds `stream`; it counts until the returned socket is dropped.
    pub(crate) fn add(
        &self,
        stream: TcpStream,
        write_stall: Option<Duration>,
        activity: Arc<Activity>,
    ) -> Socket {
        let stream = Arc::new(stream);
        {
            let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            if streams.len() == streams.capacity() {
                streams.retain(|s| s.strong_count() > 0);
            }
            streams.push(Arc::downgrade(&stream));
        }
        Socket {
            io: StallTimeout::new(SharedStream(stream), write_stall),
            _open: self.open.token(),
            activity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Waits until every socket is closed.
    pub(crate) async fn closed(&self) {
        self.open.close();
        self.open.wait().await;
    }

    /// Shuts down every open socket in both directions: its task, whoever
    /// runs it, sees the end and drops it.
    pub(crate) fn shut_down_all(&self) {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in streams.iter().filter_map(Weak::upgrade) {
            let _ = socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Both);
        }
    }
}

pin_project! {
    /// An accepted socket: the write-stall bound of [`DeadPeer`](crate::net::DeadPeer)
    /// and its place among the open sockets, held until the socket is
    /// closed (after an upgrade, by the WebSocket's task).
    #[derive(Debug)]
    pub(crate) struct Socket {
        #[pin]
        io: StallTimeout<SharedStream>,
        _open: TaskTrackerToken,
        activity: Arc<Activity>,
    }
}

/// Notes a write that stalled past the bound on `activity`.
fn note_stall<R>(activity: &Activity, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
    if let Poll::Ready(Err(err)) = &poll {
        // The write-stall bound's own error, not the kernel's timeout for
        // a peer that vanished (`TCP_USER_TIMEOUT`): that one left.
        if crate::net::is_write_stall(err) {
            activity.stalled.store(true, Ordering::Relaxed);
        }
    }
    poll
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        note_stall(this.activity, this.io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        note_stall(this.activity, this.io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        note_stall(this.activity, this.io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

/// hyper-util's connection builder: HTTP/1.1 (with upgrades) or HTTP/2,
/// chosen by the client's first bytes.
pub(crate) type Builder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

// ---------------------------------------------------------------------------
// Requests in progress on one connection
// ---------------------------------------------------------------------------

/// What the connection's requests tell its task: whether one has come, how
/// many are in progress, and (HTTP/1.x) when the last one ended.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    started: AtomicBool,
    h2: AtomicBool,
    /// Requests (HTTP/2: streams) in progress, from the call to the end of
    /// the response body.
    active: AtomicUsize,
    /// HTTP/1.x: when the last response ended ([`crate::deadline::millis`]),
    /// the start of the wait for the next request head.
    ended: AtomicU64,
    /// HTTP/2 streams started, ever: tells an idle period that saw a stream
    /// come and go from one that saw none.
    epoch: AtomicUsize,
    /// The connection's task, when it waits for the first request or for
    /// the last stream to end.
    waker: AtomicWaker,
    /// A write stalled past the bound: the connection is being cut because
    /// its client stopped reading.
    stalled: AtomicBool,
}

/// One request (HTTP/2: stream) in progress, from the call to the end of its
/// response body.
#[derive(Debug)]
pub(crate) struct Active(Arc<Activity>);

impl Drop for Active {
    fn drop(&mut self) {
        let a = &self.0;
        if a.h2.load(Ordering::Relaxed) {
            if a.active.fetch_sub(1, Ordering::AcqRel) == 1 {
                a.waker.wake();
            }
        } else {
            // HTTP/1.x: the wait for the next head starts now. The timer
            // reads it when it fires: no wake-up, no timer touched, per
            // request.
            a.ended
                .store(crate::deadline::millis(Instant::now()), Ordering::Relaxed);
            a.active.fetch_sub(1, Ordering::Release);
        }
    }
}

// ---------------------------------------------------------------------------
// The service hyper calls
// ---------------------------------------------------------------------------

/// The service hyper calls for each request of one connection: answers an
/// announced oversized body at once, bounds the request body, routes the
/// rest through the layer and the router.
#[derive(Debug)]
pub(crate) struct ConnService {
    app: Disconnect<Router>,
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    /// The client's address, for `ConnectInfo` (when asked for).
    peer: Option<SocketAddr>,
}

impl ConnService {
    pub(crate) fn new(
        app: Disconnect<Router>,
        shared: Arc<Shared>,
        activity: Arc<Activity>,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self {
            app,
            shared,
            activity,
            peer,
        }
    }

    /// Records a request: it counts until its response ends.
    fn started(&self, req: &Request<Incoming>) -> Option<Active> {
        let a = &self.activity;
        let h2 = req.version() == Version::HTTP_2;
        if !a.started.load(Ordering::Relaxed) {
            a.h2.store(h2, Ordering::Relaxed);
            a.started.store(true, Ordering::Release);
            a.waker.wake();
        }
        if !h2 {
            a.active.fetch_add(1, Ordering::Acquire);
            return Some(Active(Arc::clone(a)));
        }
        a.epoch.fetch_add(1, Ordering::AcqRel);
        a.active.fetch_add(1, Ordering::AcqRel);
        if req.method() == Method::CONNECT {
            // An extended CONNECT (a WebSocket) keeps its stream after the
            // response: the connection is never idle again. Keep-alive
            // pings still find a dead peer.
            return None;
        }
        Some(Active(Arc::clone(a)))
    }
}

/// The `Content-Length` a request announces, if it is one number.
fn announced_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `413` for a request whose announced body is over
/// [`ServeConfig::max_request_body`](super::ServeConfig::max_request_body).
#[derive(Debug)]
struct TooLarge {
    announced: u64,
    max: u64,
}

impl Reject for TooLarge {
    fn status(&self) -> StatusCode {
        StatusCode::PAYLOAD_TOO_LARGE
    }
    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body too large: `Content-Length` is {}, allowed at most {} bytes",
            self.announced, self.max
        )
    }
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.describe(f)
    }
}

type RoutedBody = DisconnectBody<axum::body::Body>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ServeBody>;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let active = self.started(&req);
        let h1 = req.version() < Version::HTTP_2;
        let close_when_draining = h1.then(|| Arc::clone(&self.shared));
        let max = self.shared.max_request_body;
        if let (Some(max), Some(announced)) = (max, announced_length(&req)) {
            if announced > max {
                // The body is never polled: hyper sends no `100 Continue`
                // and closes the connection after the answer.
                let res = reject(&TooLarge { announced, max });
                return ConnFuture {
                    state: State::Early {
                        res: Some(res.map(|body| DisconnectBody::new(body, None))),
                    },
                    close_when_draining,
                    active,
                    conn: Arc::clone(&self.activity),
                };
            }
        }
        let limit = max.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        let timeout = self.shared.body_read_timeout;
        let mut req = req.map(|body| Limited::new(StallBody::new(body, timeout), limit));
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        // `Router` is always ready (its `poll_ready` returns `Ready(Ok)`),
        // and so is the layer around it.
        let fut = self.app.clone().call(req);
        ConnFuture {
            state: State::Routed { fut },
            close_when_draining,
            active,
            conn: Arc::clone(&self.activity),
        }
    }
}

pin_project! {
    /// Response future of [`ConnService`].
    pub(crate) struct ConnFuture {
        #[pin]
        state: State,
        close_when_draining: Option<Arc<Shared>>,
        active: Option<Active>,
        conn: Arc<Activity>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Early { res: Option<Response<RoutedBody>> },
        Routed { #[pin] fut: ResponseFuture<RouteFuture<Infallible>> },
    }
}

impl Future for ConnFuture {
    type Output = Result<Response<ServeBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.state.project() {
            StateProj::Early { res } => res.take().expect("polled after completion"),
            StateProj::Routed { fut } => match ready!(fut.poll(cx)) {
                Ok(res) => res,
                Err(never) => match never {},
            },
        };
        let draining = this
            .close_when_draining
            .as_ref()
            .is_some_and(|shared| shared.draining.load(Ordering::Relaxed));
        if draining && res.status() != StatusCode::SWITCHING_PROTOCOLS {
            // Shutting down: the client should open its next connection to
            // another instance, and hyper closes this one after the answer.
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let active = this.active.take();
        let conn = Arc::clone(this.conn);
        Poll::Ready(Ok(res.map(|inner| ServeBody {
            inner,
            _active: active,
            conn,
            clear: None,
        })))
    }
}

pin_project! {
    /// Response body of [`ConnService`]: the layer's body, holding the
    /// stream's place among those in progress until it is dropped.
    pub(crate) struct ServeBody {
        #[pin]
        inner: RoutedBody,
        _active: Option<Active>,
        conn: Arc<Activity>,
        // Declared last: dropped after `inner`, it clears the slow-reader
        // mark set for `inner`'s drop.
        clear: Option<cut::Clear>,
    }

    impl PinnedDrop for ServeBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // The connection is being cut because its client stopped
            // reading: the stream inside says so in its end.
            if this.conn.stalled.load(Ordering::Relaxed) {
                *this.clear = Some(cut::slow_reader());
            }
        }
    }
}

impl Body for ServeBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------
// The connection's task
// ---------------------------------------------------------------------------

/// Drives one connection until it ends: closes it when no request came in
/// time, on HTTP/2 after an idle period (`GOAWAY` first), gracefully in
/// phase (b) of a shutdown (`closing`) and at once in phase (c) (`cut`, a
/// parent of `closing`).
#[allow(clippy::too_many_arguments)] // one call site, each part distinct
pub(crate) async fn drive(
    builder: Arc<Builder>,
    io: TokioIo<Socket>,
    service: ConnService,
    activity: Arc<Activity>,
    request_wait: Duration,
    idle: Duration,
    closing: CancellationToken,
    cut: CancellationToken,
) {
    // Made here, in the task's own state: a connection passed in would be
    // kept twice in it (hyper's connection is about 1.5 KB).
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut timer = pin!(IdleTimer::new(&activity, request_wait, idle));
    // Polled one at a time, and registered once: the shutdown tokens are
    // shared by every connection.
    let mut closing = pin!(closing.cancelled());
    let mut cut = pin!(cut.cancelled());
    let mut phase_b = false;
    let mut graceful = false;
    loop {
        tokio::select! {
            biased;
            // Errors are the client's (a reset, a timeout, a bad request):
            // hyper has answered what it could.
            _ = conn.as_mut() => return,
            () = &mut cut, if phase_b => return,
            () = &mut closing, if !phase_b => {
                phase_b = true;
                if !graceful {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
                timer.as_mut().closing();
            }
            action = timer.as_mut() => match action {
                Idle::Close => {
                    if !graceful {
                        graceful = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                Idle::Drop => return,
            },
        }
    }
}

/// What an idle connection gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Idle {
    /// Graceful shutdown (HTTP/2: `GOAWAY`).
    Close,
    /// Closed at once: no request came, or still idle after `Close`.
    Drop,
}

#[derive(Clone, Copy, Debug)]
enum IdleState {
    /// Until the first request: the timer runs from the accept.
    FirstRequest,
    /// HTTP/1.x after its first request: each wait for a request head,
    /// from the end of the last response, is bounded by `request_wait`.
    /// Checked when the timer fires (at most once per `request_wait`), so
    /// that a request costs no timer of its own (hyper's header-read timer
    /// boxes and registers one per request).
    Http1,
    /// HTTP/2 with streams in progress: no timer.
    Busy,
    /// HTTP/2 with none since the timer was set, at this epoch.
    Idle { epoch: usize, closing: bool },
}

pin_project! {
    /// The connection's one timer: fires when it has had no request in
    /// progress for too long. Polled again after it fired, it goes on.
    struct IdleTimer<'a> {
        activity: &'a Activity,
        request_wait: Duration,
        idle: Duration,
        #[pin]
        sleep: Sleep,
        state: IdleState,
        // Phase (b): the next expiry drops the connection.
        server_closing: bool,
    }
}

impl<'a> IdleTimer<'a> {
    fn new(activity: &'a Activity, request_wait: Duration, idle: Duration) -> Self {
        Self {
            activity,
            request_wait,
            idle,
            sleep: tokio::time::sleep_until(crate::deadline::after(Instant::now(), request_wait)),
            state: IdleState::FirstRequest,
            server_closing: false,
        }
    }

    /// The server is closing (phase (b)): a connection with no request in
    /// progress has [`CLOSING_GRACE`] left to close by itself (HTTP/2: to
    /// acknowledge the `GOAWAY`'s `PING`); then it is dropped.
    fn closing(self: Pin<&mut Self>) {
        let mut this = self.project();
        *this.idle = CLOSING_GRACE;
        *this.server_closing = true;
        let deadline = crate::deadline::after(Instant::now(), CLOSING_GRACE);
        match *this.state {
            IdleState::FirstRequest => {
                if deadline < this.sleep.deadline() {
                    this.sleep.as_mut().reset(deadline);
                }
            }
            IdleState::Idle { epoch, .. } => {
                this.sleep.as_mut().reset(deadline);
                *this.state = IdleState::Idle {
                    epoch,
                    closing: true,
                };
            }
            // HTTP/1.x: hyper closes an idle connection at once and a busy
            // one after its answer. HTTP/2 busy: the grace starts when its
            // last stream ends.
            IdleState::Http1 | IdleState::Busy => {}
        }
    }
}

/// How long a connection with no request in progress may take to close
/// once the server closes it.
const CLOSING_GRACE: Duration = Duration::from_secs(1);

impl Future for IdleTimer<'_> {
    type Output = Idle;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Idle> {
        let mut this = self.project();
        let a = *this.activity;
        loop {
            match *this.state {
                IdleState::FirstRequest => {
                    if !a.started.load(Ordering::Acquire) {
                        a.waker.register(cx.waker());
                        if !a.started.load(Ordering::Acquire) {
                            ready!(this.sleep.as_mut().poll(cx));
                            return Poll::Ready(Idle::Drop);
                        }
                    }
                    *this.state = if a.h2.load(Ordering::Relaxed) {
                        IdleState::Busy
                    } else {
                        IdleState::Http1
                    };
                }
                IdleState::Http1 => {
                    ready!(this.sleep.as_mut().poll(cx));
                    let now = Instant::now();
                    let next = if a.active.load(Ordering::Acquire) > 0 {
                        // A request in progress (a long-poll, a stream): no
                        // head is awaited; look again later.
                        crate::deadline::after(now, *this.request_wait)
                    } else {
                        let ended = crate::deadline::instant(a.ended.load(Ordering::Relaxed));
                        let due = crate::deadline::after(ended, *this.request_wait);
                        if due <= now {
                            // No complete head within the wait: slow or
                            // silent, as hyper's header-read timeout.
                            return Poll::Ready(Idle::Drop);
                        }
                        due
                    };
                    this.sleep.as_mut().reset(next);
                }
                IdleState::Busy => {
                    a.waker.register(cx.waker());
                    if a.active.load(Ordering::Acquire) > 0 {
                        return Poll::Pending;
                    }
                    let epoch = a.epoch.load(Ordering::Acquire);
                    let deadline = crate::deadline::after(Instant::now(), *this.idle);
                    this.sleep.as_mut().reset(deadline);
                    *this.state = IdleState::Idle {
                        epoch,
                        closing: *this.server_closing,
                    };
                }
                IdleState::Idle { epoch, closing } => {
                    let busy = |a: &Activity| {
                        a.active.load(Ordering::Acquire) > 0
                            || a.epoch.load(Ordering::Acquire) != epoch
                    };
                    if busy(a) {
                        *this.state = IdleState::Busy;
                        continue;
                    }
                    ready!(this.sleep.as_mut().poll(cx));
                    if busy(a) {
                        *this.state = IdleState::Busy;
                        continue;
                    }
                    if closing {
                        return Poll::Ready(Idle::Drop);
                    }
                    let deadline = crate::deadline::after(Instant::now(), *this.idle);
                    this.sleep.as_mut().reset(deadline);
                    *this.state = IdleState::Idle {
                        epoch,
                        closing: true,
                    };
                    return Poll::Ready(Idle::Close);
                }
            }
        }
    }
}
