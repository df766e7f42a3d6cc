use std::fmt;
use std::future::{Future, IntoFuture, Pending};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use futures_util::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

use super::accept::{default_max_connections, Acceptor};
use super::config::{MaxConnections, ServeConfig};
use super::conn::{drive, Activity, Builder, ConnService, Shared, Sockets};
use crate::disconnect::{Disconnect, DisconnectLayer};

/// Serves `router` on `listener` until shutdown, with a deadline on every
/// phase of every connection and a shutdown that always finishes.
///
/// Returns a builder; `.await` it (it is [`IntoFuture`]). See the
/// [module docs](super) for what it does that `axum::serve` does not.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use axum_longpoll::{serve, DisconnectLayer};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn run() -> std::io::Result<()> {
/// let stop = CancellationToken::new(); // cancelled on SIGTERM
/// let app: Router = Router::new().route("/ready", get(serve::ready));
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
/// let report = axum_longpoll::serve(listener, app)
///     .layer(DisconnectLayer::new())
///     .with_graceful_shutdown(stop.cancelled_owned())
///     .await?;
/// eprintln!("{report}");
/// # Ok(()) }
/// ```
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        layer: None,
        config: ServeConfig::default(),
        connect_info: false,
        signal: std::future::pending(),
    }
}

/// The server [`serve`](super::serve()) builds; `.await` it.
///
/// Serving starts when it is awaited and returns after the shutdown, with
/// a [`ShutdownReport`]. Dropping the future drops every connection.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve<F = Pending<()>> {
    listener: TcpListener,
    router: Router,
    layer: Option<DisconnectLayer>,
    config: ServeConfig,
    connect_info: bool,
    signal: F,
}

impl<F> fmt::Debug for Serve<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("layer", &self.layer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<F> Serve<F> {
    /// The [`DisconnectLayer`] to put around the whole router (default: a
    /// new one). Its shutdown token is the one the shutdown cancels, its
    /// requests in flight the ones phase (a) waits for.
    ///
    /// Pass the layer here instead of `Router::layer`: around the whole
    /// router it costs the least memory per parked request (see
    /// [`disconnect`](crate::disconnect#cost)). A second layer inside the
    /// router would hand the modes its own shutdown token, which this
    /// server does not cancel.
    pub fn layer(mut self, layer: DisconnectLayer) -> Self {
        self.layer = Some(layer);
        self
    }

    /// The deadlines, caps and shutdown settings (default
    /// [`ServeConfig::new()`]).
    pub fn config(mut self, config: ServeConfig) -> Self {
        self.config = config;
        self
    }

    /// Hands every request the client's address as axum's
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), as
    /// `into_make_service_with_connect_info::<SocketAddr>()` does for
    /// `axum::serve` (off by default: it costs an allocation per request).
    pub fn with_connect_info(mut self) -> Self {
        self.connect_info = true;
        self
    }

    /// Starts the shutdown when `signal` completes (a SIGTERM, a token's
    /// `cancelled_owned()`). Cancelling the layer's shutdown token starts
    /// it too, with or without a signal.
    pub fn with_graceful_shutdown<G>(self, signal: G) -> Serve<G>
    where
        G: Future<Output = ()> + Send + 'static,
    {
        Serve {
            listener: self.listener,
            router: self.router,
            layer: self.layer,
            config: self.config,
            connect_info: self.connect_info,
            signal,
        }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl<F> IntoFuture for Serve<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<ShutdownReport>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> Self::IntoFuture {
        ServeFuture(Box::pin(self.run()))
    }
}

/// The future of [`Serve`]: resolves after the shutdown.
///
/// Dropping it drops every connection it serves.
#[must_use = "futures do nothing unless polled"]
pub struct ServeFuture(BoxFuture<'static, io::Result<ShutdownReport>>);

impl fmt::Debug for ServeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeFuture").finish_non_exhaustive()
    }
}

impl Future for ServeFuture {
    type Output = io::Result<ShutdownReport>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// What the shutdown did; returned by the [`Serve`] future. Its `Display`
/// is one line for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Requests in flight when the shutdown began (WebSockets included):
    /// the answers phase (a) waited for. When the layer's token was
    /// cancelled by the application rather than by `serve`, some answers
    /// may have been written before `serve` counted.
    pub in_flight: usize,
    /// Whether they were all answered within
    /// [`drain_timeout`](ServeConfig::drain_timeout) (requests that came
    /// meanwhile included).
    pub drained: bool,
    /// From the signal to the end of phase (a).
    pub drain_time: Duration,
    /// Connections open when phase (b) began: each was asked to close
    /// (HTTP/1.1: after its answer, an idle one at once; HTTP/2: `GOAWAY`).
    pub connections: usize,
    /// Connections still open at the hard deadline
    /// ([`shutdown_timeout`](ServeConfig::shutdown_timeout)), dropped.
    pub connections_cut: usize,
    /// Requests (or WebSockets) still in flight at the hard deadline.
    /// WebSockets run in tasks of their own: they end at their own
    /// `close_timeout`, or when the runtime is dropped.
    pub in_flight_cut: usize,
    /// Connections refused while serving (over the cap, or out of file
    /// descriptors).
    pub refused: u64,
    /// From the signal until serving returned.
    pub elapsed: Duration,
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown in {:?}: {} in flight {} in {:?}; {} connections closed",
            self.elapsed,
            self.in_flight,
            if self.drained {
                "answered"
            } else {
                "not all answered"
            },
            self.drain_time,
            self.connections - self.connections_cut.min(self.connections),
        )?;
        if self.connections_cut > 0 || self.in_flight_cut > 0 {
            write!(
                f,
                ", cut at the hard deadline: {} connections, {} in flight",
                self.connections_cut, self.in_flight_cut
            )?;
        }
        if self.refused > 0 {
            write!(f, "; {} connections refused while serving", self.refused)?;
        }
        Ok(())
    }
}

/// Everything a new connection needs.
struct Spawner {
    app: Disconnect<Router>,
    connect_info: bool,
    builder: Arc<Builder>,
    shared: Arc<Shared>,
    sockets: Sockets,
    max_connections: Option<usize>,
    dead_peer: Option<crate::net::DeadPeer>,
    write_stall: Option<Duration>,
    request_wait: Duration,
    idle: Duration,
    closing: CancellationToken,
    cut: CancellationToken,
}

impl Spawner {
    fn spawn(&self, acceptor: &mut Acceptor, stream: TcpStream, peer: SocketAddr) {
        if let Some(max) = self.max_connections {
            let open = self.sockets.len();
            if open >= max {
                acceptor.refuse(&stream, open, max);
                return;
            }
        }
        if let Some(dead_peer) = &self.dead_peer {
            // A socket that refuses an option is served without it: the
            // client did nothing wrong.
            let _ = dead_peer.configure(&stream);
        }
        let activity = Arc::new(Activity::default());
        let socket = self
            .sockets
            .add(stream, self.write_stall, Arc::clone(&activity));
        let service = ConnService::new(
            self.app.clone(),
            Arc::clone(&self.shared),
            Arc::clone(&activity),
            self.connect_info.then_some(peer),
        );
        tokio::spawn(drive(
            Arc::clone(&self.builder),
            TokioIo::new(socket),
            service,
            activity,
            self.request_wait,
            self.idle,
            self.closing.clone(),
            self.cut.clone(),
        ));
    }
}

impl Drop for Spawner {
    /// The end of serving, or its future dropped: every connection goes.
    fn drop(&mut self) {
        self.cut.cancel();
        self.sockets.shut_down_all();
    }
}

fn http_builder(config: &ServeConfig) -> Builder {
    // HTTP/1.x has no hyper timer: the connection's own timer bounds each
    // wait for a request head (`conn::drive`), where hyper's header-read
    // timeout would box and register a timer for every request.
    let mut builder = Builder::new(TokioExecutor::new());
    let mut h2 = builder.http2();
    h2.timer(TokioTimer::new())
        // WebSockets over HTTP/2 (extended CONNECT), as axum::serve.
        .enable_connect_protocol()
        .max_concurrent_streams(config.http2_max_concurrent_streams);
    if let Some((interval, timeout)) = config.http2_keep_alive {
        h2.keep_alive_interval(interval).keep_alive_timeout(timeout);
    }
    builder
}

impl<F> Serve<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    async fn run(self) -> io::Result<ShutdownReport> {
        let Self {
            listener,
            router,
            layer,
            config,
            connect_info,
            signal,
        } = self;
        let layer = layer.unwrap_or_default();
        let shutdown = layer.shutdown_token().clone();
        let in_flight = layer.in_flight();
        let cut = CancellationToken::new();
        let spawner = Spawner {
            // `with_state(())` once: it turns every handler into its route
            // now, as `axum::serve` does for each connection; otherwise
            // each request would box a clone of its handler.
            app: layer.layer(router.with_state(())),
            connect_info,
            builder: Arc::new(http_builder(&config)),
            shared: Arc::new(Shared {
                draining: AtomicBool::new(false),
                body_read_timeout: config.body_read_timeout,
                max_request_body: config.max_request_body,
            }),
            sockets: Sockets::default(),
            max_connections: match config.max_connections {
                MaxConnections::FromFileLimit => default_max_connections(),
                MaxConnections::Fixed(max) => max,
            },
            write_stall: config
                .dead_peer
                .as_ref()
                .and_then(crate::net::DeadPeer::write_stall_limit),
            dead_peer: config.dead_peer.clone(),
            request_wait: config.request_wait(),
            idle: config.idle_timeout,
            closing: cut.child_token(),
            cut: cut.clone(),
        };
        let mut acceptor = Acceptor::new(listener, config.retry_after);

        // Serving.
        let mut signal = pin!(signal);
        let mut cancelled = pin!(shutdown.cancelled());
        loop {
            tokio::select! {
                biased;
                () = &mut signal => break,
                () = &mut cancelled => break,
                (stream, peer) = acceptor.accept() => spawner.spawn(&mut acceptor, stream, peer),
            }
        }

        // (a) Answer first: parked polls answer 503, streams send their last
        // frame, WebSockets close with 1001, readiness says 503; HTTP/1.x
        // answers carry `Connection: close`. New connections are still
        // accepted (a load balancer may still send some).
        let started = Instant::now();
        // Counted before the token is cancelled: the answers it starts can
        // be written before the next line.
        let at_signal = in_flight.len();
        spawner.shared.draining.store(true, Ordering::Relaxed);
        shutdown.cancel();
        let drain_deadline = crate::deadline::after(started, config.drain_timeout);
        let hard_deadline = crate::deadline::after(started, config.shutdown_timeout);
        let drain_until = drain_deadline.min(hard_deadline);
        let drained = {
            let mut answered = pin!(in_flight.wait());
            let mut deadline = pin!(tokio::time::sleep_until(drain_until));
            loop {
                tokio::select! {
                    biased;
                    () = &mut answered => break true,
                    () = &mut deadline => break false,
                    (stream, peer) = acceptor.accept() => spawner.spawn(&mut acceptor, stream, peer),
                }
            }
        };
        let drain_time = started.elapsed();

        // (b) Stop accepting; close every connection gracefully: HTTP/1.1
        // after its answer (an idle one at once), HTTP/2 with GOAWAY. Only
        // now, so that on HTTP/2 every answer above is sent before the
        // GOAWAY (a client such as Python's h2 drops frames after it).
        let refused = acceptor.refused;
        drop(acceptor);
        spawner.closing.cancel();
        let connections = spawner.sockets.len();
        let finished = tokio::time::timeout_at(hard_deadline, async {
            spawner.sockets.closed().await;
            in_flight.wait().await;
        })
        .await
        .is_ok();

        // (c) The hard deadline: drop whatever is left.
        let (connections_cut, in_flight_cut) = if finished {
            (0, 0)
        } else {
            (spawner.sockets.len(), in_flight.len())
        };
        drop(spawner);
        Ok(ShutdownReport {
            in_flight: at_signal,
            drained,
            drain_time,
            connections,
            connections_cut,
            in_flight_cut,
            refused,
            elapsed: started.elapsed(),
        })
    }
}
