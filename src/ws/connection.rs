//! The connection's own loop: reads, writes, heartbeat, shutdown, slow
//! consumer, all in the task axum spawned for the socket, with one timer.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, Stream, StreamExt};
use http::HeaderValue;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{CloseReason, Messages, WsConfig};
use crate::source::Source;
use crate::stats::{Tracked, WsEnd, WsPhase};
use crate::wire::JsonItem;

/// At most this many frames are read, and as many written, per wake-up
/// before the task yields.
const BUDGET: usize = 64;

/// An upgraded WebSocket connection, handed to the callback of
/// [`LiveSocket::on_upgrade`](super::LiveSocket::on_upgrade).
///
/// Drive it with [`serve`](Self::serve) (a [`Source`]: the events of a log
/// from the client's position, or any stream of serializable items) or
/// [`run`](Self::run) (any stream of messages). Both return the
/// [`CloseReason`]. See the [module docs](super).
///
/// Dropping it without running it closes the TCP connection without a close
/// frame and cancels its [token](Self::token).
pub struct Connection {
    ws: WebSocket,
    config: WsConfig,
    shutdown: CancellationToken,
    token: CancellationToken,
    /// Cancels `token` if the connection is dropped before `run` decided.
    guard: Option<DropGuard>,
    // This socket in the stats: in flight until the socket's task ends.
    tracked: Tracked,
    // Among the layer's requests in flight until the socket's task ends.
    _in_flight: TaskTrackerToken,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("config", &self.config)
            .field("protocol", &self.ws.protocol())
            .field("ended", &self.token.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        ws: WebSocket,
        config: WsConfig,
        shutdown: CancellationToken,
        guard: DropGuard,
        token: CancellationToken,
        tracked: Tracked,
        in_flight: TaskTrackerToken,
    ) -> Self {
        tracked.enter(WsPhase::Open as u8);
        // Upgraded: unless it runs, it was dropped.
        tracked.set(WsEnd::Dropped);
        Self {
            ws,
            config,
            shutdown,
            guard: Some(guard),
            token,
            tracked,
            _in_flight: in_flight,
        }
    }

    /// The socket's token: cancelled when the connection ends for any
    /// reason (the moment the [`CloseReason`] is known, before the closing
    /// handshake), or when the `Connection` is dropped. Work spawned for
    /// this socket can stop on it (or on a `child_token()`).
    ///
    /// The request's [`DisconnectToken`](crate::DisconnectToken) is of no use
    /// here: the request ends with the `101` response.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The subprotocol chosen with
    /// [`LiveSocket::protocols`](super::LiveSocket::protocols), if any.
    #[must_use]
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.ws.protocol()
    }

    /// Runs the connection until it ends, and says why.
    ///
    /// - `outgoing` is pulled only when the socket can take more (so a
    ///   client that does not read holds at most the write buffer and the
    ///   kernel's socket buffers, never a queue). Each `Ok` message is sent
    ///   as it is; an `Err(reason)` ends the socket with that reason's close
    ///   code; the end of the stream ends it with `1000`. A handler with
    ///   nothing to send passes [`futures_util::stream::pending()`].
    /// - `on_message` is called with each text or binary message from the
    ///   client, in order, inside the connection's task (so keep it short:
    ///   publish, or `try_send` to a channel). Returning `Err(reason)` ends
    ///   the socket with it. Pings, pongs and close frames are handled here.
    ///
    /// Heartbeats, shutdown, the slow-consumer limit and the closing
    /// handshake are run by this future, with one timer and no task of its
    /// own.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe in any useful sense: dropping the future drops the
    /// connection (TCP closed without a close frame) and cancels the token.
    pub async fn run<S, F>(mut self, outgoing: S, mut on_message: F) -> CloseReason
    where
        S: Stream<Item = Result<Message, CloseReason>>,
        F: FnMut(Message) -> Result<(), CloseReason>,
    {
        let mut outgoing = pin!(outgoing);
        let shutdown = self.shutdown.clone();
        let mut shutdown = pin!(shutdown.cancelled());
        let now = Instant::now();
        let mut timer = pin!(tokio::time::sleep_until(crate::deadline::after(
            now,
            Duration::MAX
        )));
        let mut pump = Pump::new(&self.config, now);
        let ws = &mut self.ws;
        let reason = poll_fn(|cx| {
            pump.poll(
                cx,
                ws,
                outgoing.as_mut(),
                &mut on_message,
                shutdown.as_mut(),
                timer.as_mut(),
            )
        })
        .await;
        self.token.cancel();
        if let Some(guard) = self.guard.take() {
            guard.disarm();
        }
        self.tracked.set(reason.end());
        self.tracked.enter(WsPhase::Closing as u8);
        self.close(&reason).await;
        reason
    }

    /// Sends `source` as text frames until the connection ends, then says
    /// why; see [`run`](Self::run) for `on_message` and the rest.
    ///
    /// For the events of a log ([`EventLog::reader`](crate::EventLog::reader)):
    /// `{"control":"open","cursor":"<start>"}` first, then one frame
    /// `{"id":"<cursor>","data":…}` per event; a position the log cannot
    /// serve gets a `gone` frame and close code
    /// [`CURSOR_GONE`](super::close_code::CURSOR_GONE) (a browser cannot see
    /// the status of a failed upgrade). A log that cannot be read now (Redis
    /// unreachable) closes the socket with `1013 Try Again Later`
    /// ([`LiveSocket::serve`](super::LiveSocket::serve) answers that case
    /// `503` before upgrading instead).
    ///
    /// # Cancellation safety
    ///
    /// As for [`run`](Self::run).
    pub async fn serve<F>(self, source: impl Source<JsonItem>, on_message: F) -> CloseReason
    where
        F: FnMut(Message) -> Result<(), CloseReason>,
    {
        match source.into_steps() {
            Ok(steps) => self.run(Messages::new(steps), on_message).await,
            Err(_unavailable) => {
                let reason = CloseReason::server(
                    super::close_code::TRY_AGAIN_LATER,
                    "the event log is unavailable; reconnect with your cursor later",
                );
                self.run(futures_util::stream::iter([Err(reason)]), on_message)
                    .await
            }
        }
    }

    /// The closing handshake, bounded by `close_timeout`.
    async fn close(&mut self, reason: &CloseReason) {
        let ws = &mut self.ws;
        let handshake = async {
            match reason.frame() {
                Some(frame) => {
                    if ws.send(Message::Close(Some(frame))).await.is_err() {
                        return;
                    }
                    // A peer that stopped answering will not answer this.
                    if matches!(reason, CloseReason::HeartbeatTimeout) {
                        return;
                    }
                }
                // tungstenite queued its answer to the client's close frame.
                None if matches!(reason, CloseReason::ClientClose { .. }) => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                None => return,
            }
            // Until the client's close frame (or EOF): tungstenite ends the
            // stream then. Messages sent meanwhile are dropped.
            while let Some(Ok(_)) = ws.next().await {}
        };
        let _ = tokio::time::timeout(self.config.close_timeout, handshake).await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Heartbeat {
    Off,
    /// Next check at the timer; ping if nothing arrived for `interval`.
    Idle,
    /// A ping is owed (due, not yet handed to the socket), or was sent at
    /// this instant.
    Awaiting {
        since: Instant,
        sent: bool,
    },
}

/// The state of the open phase.
struct Pump {
    interval: Duration,
    pong_timeout: Duration,
    send_timeout: Duration,
    heartbeat: Heartbeat,
    /// When the heartbeat next needs a look.
    heartbeat_at: Instant,
    /// Last frame of any kind from the client.
    last_seen: Instant,
    unflushed: bool,
    /// Since when the socket has not taken or written anything.
    stalled_since: Option<Instant>,
    /// The last `poll_ready` was pending.
    ready_blocked: bool,
}

impl Pump {
    fn new(config: &WsConfig, now: Instant) -> Self {
        let (heartbeat, interval) = match config.ping_interval {
            Some(interval) => (Heartbeat::Idle, interval),
            None => (Heartbeat::Off, Duration::MAX),
        };
        Self {
            interval,
            pong_timeout: config.pong_timeout,
            send_timeout: config.send_timeout,
            heartbeat,
            heartbeat_at: crate::deadline::after(now, interval),
            last_seen: now,
            unflushed: false,
            stalled_since: None,
            ready_blocked: false,
        }
    }

    fn poll<S, F>(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut WebSocket,
        mut outgoing: Pin<&mut S>,
        on_message: &mut F,
        shutdown: Pin<&mut impl Future<Output = ()>>,
        mut timer: Pin<&mut Sleep>,
    ) -> Poll<CloseReason>
    where
        S: Stream<Item = Result<Message, CloseReason>>,
        F: FnMut(Message) -> Result<(), CloseReason>,
    {
        if shutdown.poll(cx).is_ready() {
            return Poll::Ready(CloseReason::Shutdown);
        }
        let mut again = false;

        // Read everything that is there, unless nothing can be written: a
        // client that does not read is not read either. Each ping read
        // queues a pong in the write buffer; reading the pings of a client
        // that never reads its pongs would fill it, and burn the CPU until
        // the slow-consumer limit ends it.
        let mut budget = if self.stalled_since.is_some() {
            0
        } else {
            BUDGET
        };
        loop {
            if budget == 0 {
                if self.stalled_since.is_some() {
                    // Woken by the write side when it makes progress.
                    break;
                }
                again = true;
                break;
            }
            budget -= 1;
            match ws.poll_next_unpin(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => {
                    return Poll::Ready(CloseReason::Abnormal {
                        error: "the connection closed".to_owned(),
                    })
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(CloseReason::from_error(err)),
                Poll::Ready(Some(Ok(msg))) => {
                    self.last_seen = Instant::now();
                    match msg {
                        Message::Text(_) | Message::Binary(_) => {
                            if let Err(reason) = on_message(msg) {
                                return Poll::Ready(reason);
                            }
                        }
                        // tungstenite queued the pong; a flush sends it.
                        Message::Ping(_) => self.unflushed = true,
                        Message::Pong(_) => {}
                        Message::Close(frame) => {
                            return Poll::Ready(match frame {
                                Some(frame) => CloseReason::ClientClose {
                                    code: frame.code,
                                    reason: frame.reason.as_str().to_owned(),
                                },
                                None => CloseReason::ClientClose {
                                    code: 1005,
                                    reason: String::new(),
                                },
                            });
                        }
                    }
                }
            }
        }

        // Write what the socket can take: the owed ping first, then the
        // outgoing source, pulled only when the socket is ready.
        let mut budget = BUDGET;
        loop {
            if budget == 0 {
                again = true;
                break;
            }
            match ws.poll_ready_unpin(cx) {
                Poll::Pending => {
                    self.stalled_since.get_or_insert_with(Instant::now);
                    self.ready_blocked = true;
                    break;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(CloseReason::from_error(err)),
                // The socket takes more after it did not: whatever blocked
                // it was written. (Ready without having been blocked says
                // nothing: it is ready until a send blocks, even while a
                // pong waits to be written.)
                Poll::Ready(Ok(())) => {
                    if std::mem::take(&mut self.ready_blocked) {
                        self.stalled_since = None;
                    }
                }
            }
            let msg = if let Heartbeat::Awaiting { since, sent: false } = self.heartbeat {
                self.heartbeat = Heartbeat::Awaiting { since, sent: true };
                Message::Ping(bytes::Bytes::new())
            } else {
                match outgoing.as_mut().poll_next(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(msg))) => msg,
                    Poll::Ready(Some(Err(reason))) => return Poll::Ready(reason),
                    Poll::Ready(None) => {
                        return Poll::Ready(CloseReason::server(
                            super::close_code::NORMAL,
                            "the server's source ended",
                        ))
                    }
                }
            };
            budget -= 1;
            if let Err(err) = ws.start_send_unpin(msg) {
                return Poll::Ready(CloseReason::from_error(err));
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    self.stalled_since = None;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(CloseReason::from_error(err)),
                Poll::Pending => {
                    self.stalled_since.get_or_insert_with(Instant::now);
                }
            }
        } else {
            // Everything handed to the socket is written: not stalled.
            self.stalled_since = None;
        }

        // The one timer: the heartbeat's next look or the stall limit,
        // whichever comes first.
        loop {
            let mut deadline = self.heartbeat_at;
            if let Some(since) = self.stalled_since {
                deadline = deadline.min(crate::deadline::after(since, self.send_timeout));
            }
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                break;
            }
            let now = Instant::now();
            if self
                .stalled_since
                .is_some_and(|since| now >= crate::deadline::after(since, self.send_timeout))
            {
                return Poll::Ready(CloseReason::SlowConsumer);
            }
            if now < self.heartbeat_at {
                continue;
            }
            match self.heartbeat {
                Heartbeat::Off => self.heartbeat_at = crate::deadline::after(now, Duration::MAX),
                Heartbeat::Idle => {
                    if now >= crate::deadline::after(self.last_seen, self.interval) {
                        self.heartbeat = Heartbeat::Awaiting {
                            since: now,
                            sent: false,
                        };
                        self.heartbeat_at = crate::deadline::after(now, self.pong_timeout);
                        // The write step sends the ping.
                        again = true;
                    } else {
                        self.heartbeat_at = crate::deadline::after(self.last_seen, self.interval);
                    }
                }
                Heartbeat::Awaiting { since, .. } => {
                    if self.last_seen >= since {
                        self.heartbeat = Heartbeat::Idle;
                        self.heartbeat_at = crate::deadline::after(self.last_seen, self.interval);
                    } else if self.stalled_since.is_some() {
                        // Nothing is read while nothing can be written: the
                        // answer may be waiting unread. The slow-consumer
                        // limit decides; look again after another timeout.
                        self.heartbeat_at = crate::deadline::after(now, self.pong_timeout);
                    } else {
                        return Poll::Ready(CloseReason::HeartbeatTimeout);
                    }
                }
            }
        }

        if again {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
