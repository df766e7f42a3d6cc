use std::borrow::Cow;
use std::future::Future;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, Message, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{CloseReason, Connection, Messages, WsConfig};
use crate::disconnect::{MissingDisconnectLayer, RequestContext};
use crate::response::{rejection, Overloaded, Reject};
use crate::source::Source;
use crate::stats::{Mode, Tracked, WsEnd, WsPhase};
use crate::wire::JsonItem;

/// Extractor for a WebSocket upgrade whose connection gets a lifetime
/// token, heartbeats, shutdown, a slow-consumer limit and a [`CloseReason`].
///
/// Wraps axum's [`WebSocketUpgrade`]; see the [module docs](super).
/// Requires [`DisconnectLayer`](crate::DisconnectLayer) (else `500`, see
/// [`LiveSocketRejection`]). Route it with `get` (HTTP/1.1) or `any` (also
/// HTTP/2 extended `CONNECT`).
pub struct LiveSocket {
    upgrade: WebSocketUpgrade,
    ctx: RequestContext,
    config: WsConfig,
    /// The connection's token, made here so that work started before the
    /// upgrade can stop on it; cancelled if the upgrade never happens.
    token: CancellationToken,
    guard: DropGuard,
    /// In the stats from here until the socket's task ends.
    tracked: Tracked,
}

impl std::fmt::Debug for LiveSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSocket")
            .field("upgrade", &self.upgrade)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LiveSocket {
    type Rejection = LiveSocketRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = MissingDisconnectLayer::check(parts)
            .map_err(LiveSocketRejection::MissingLayer)?
            .clone();
        let config: WsConfig = ctx.config(parts);
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(LiveSocketRejection::Upgrade)?
            .max_message_size(config.max_message_size)
            .max_frame_size(config.max_message_size)
            .read_buffer_size(config.read_buffer_size())
            .write_buffer_size(config.write_buffer_size)
            .max_write_buffer_size(config.write_buffer_cap());
        // Taken here, before the `101`, so that one socket too many is told
        // `503` + `Retry-After` in HTTP.
        let tracked = Tracked::start(
            ctx.shared.stats.counters_arc(),
            Mode::Ws,
            config.max_in_flight,
            WsEnd::Rejected,
            Some(WsPhase::Upgrading as u8),
        )
        .ok_or(LiveSocketRejection::Overloaded(Overloaded {
            what: "WebSockets are in flight",
            setting: "WsConfig::max_in_flight",
            limit: config.max_in_flight,
            retry_after: config.retry_after,
        }))?;
        let token = CancellationToken::new();
        Ok(Self {
            upgrade,
            ctx,
            config,
            guard: token.clone().drop_guard(),
            token,
            tracked,
        })
    }
}

impl LiveSocket {
    /// The connection's token: cancelled when the socket ends for any
    /// reason, or when the upgrade does not happen (this extractor is
    /// dropped without [`on_upgrade`](Self::on_upgrade) or
    /// [`serve`](Self::serve), or the client leaves before the `101`). The
    /// same token as [`Connection::token`].
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.ctx.shared.shutdown
    }

    /// Chooses a subprotocol, as [`WebSocketUpgrade::protocols`].
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        self.upgrade = self.upgrade.protocols(protocols);
        self
    }

    /// The subprotocols the client asked for.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &HeaderValue> {
        self.upgrade.requested_protocols()
    }

    /// Answers the upgrade (`101`) and calls `callback` with the
    /// [`Connection`] in the task axum spawns for the socket.
    ///
    /// The connection counts in [`Stats`](crate::Stats) (`websockets`) and
    /// among the layer's [requests in flight](crate::DisconnectLayer::in_flight)
    /// from here until it is dropped.
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = self.ctx.shared;
        // Counted from the `101` on, so that a wait for the requests in
        // flight also waits for a socket still being set up.
        let in_flight = shared.in_flight.token();
        let config = self.config;
        let shutdown = shared.shutdown.clone();
        let (token, guard, tracked) = (self.token, self.guard, self.tracked);
        self.upgrade.on_upgrade(move |ws| {
            callback(Connection::new(
                ws, config, shutdown, guard, token, tracked, in_flight,
            ))
        })
    }

    /// Upgrades and runs [`Connection::serve`] in the socket's task; the
    /// [`CloseReason`] is dropped (use [`on_upgrade`](Self::on_upgrade) to
    /// see it).
    ///
    /// Pass the client's position in a log
    /// ([`EventLog::reader`](crate::EventLog::reader)): a position that is
    /// gone is told after the upgrade (a `gone` frame, close `4410`), since
    /// a browser cannot see why an upgrade failed; a log that cannot be read
    /// now (Redis unreachable) is answered `503` + `Retry-After` instead of
    /// upgrading.
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn serve<F>(self, source: impl Source<JsonItem>, on_message: F) -> Response
    where
        F: FnMut(Message) -> Result<(), CloseReason> + Send + 'static,
    {
        let steps = match source.into_steps() {
            Ok(steps) => steps,
            Err(unavailable) => {
                self.tracked.set(WsEnd::Error);
                return unavailable;
            }
        };
        self.on_upgrade(move |conn| async move {
            conn.run(Messages::new(steps), on_message).await;
        })
    }
}

/// Rejection of [`LiveSocket`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveSocketRejection {
    /// [`DisconnectLayer`](crate::DisconnectLayer) is not installed: `500`.
    MissingLayer(MissingDisconnectLayer),
    /// Not a valid WebSocket upgrade request (axum's rejection: `400`,
    /// `405`, `426`).
    Upgrade(WebSocketUpgradeRejection),
    /// [`WsConfig::max_in_flight`](super::WsConfig::max_in_flight) WebSockets are
    /// open already (`503` with `Retry-After`).
    Overloaded(Overloaded),
}

impl Reject for LiveSocketRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer(r) => r.status(),
            Self::Upgrade(r) => r.status(),
            Self::Overloaded(r) => r.status(),
        }
    }

    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingLayer(r) => write!(f, "{r} to use `LiveSocket`"),
            Self::Upgrade(r) => f.write_str(&r.body_text()),
            Self::Overloaded(r) => write!(f, "{r}"),
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Overloaded(r) => Some(r.retry_after),
            _ => None,
        }
    }

    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingLayer(r) => Some(r),
            Self::Upgrade(r) => Some(r),
            Self::Overloaded(r) => Some(r),
        }
    }
}

rejection!(LiveSocketRejection);
