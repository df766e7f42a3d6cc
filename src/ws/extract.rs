use std::borrow::Cow;
use std::future::Future;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, Message, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{CloseReason, Connection, WsConfig};
use crate::context::RequestContext;
use crate::disconnect::MissingDisconnectLayer;
use crate::event_log::{Backend, Cursor, EventLog, StartRefusal};

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
        let ctx = crate::disconnect::context(parts)
            .cloned()
            .ok_or(LiveSocketRejection::MissingLayer(MissingDisconnectLayer))?;
        let config = parts
            .extensions
            .get::<WsConfig>()
            .unwrap_or(&ctx.shared.websocket)
            .clone();
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(LiveSocketRejection::Upgrade)?
            .max_message_size(config.max_message_size)
            .max_frame_size(config.max_message_size)
            .write_buffer_size(config.write_buffer_size);
        Ok(Self {
            upgrade,
            ctx,
            config,
        })
    }
}

impl LiveSocket {
    /// The configuration in force for this request.
    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown_token(&self) -> &CancellationToken {
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
    /// in [`OpenSockets`] from here until it is dropped.
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = self.ctx.shared;
        // Tracked from the `101` on, so that `OpenSockets::closed` also
        // waits for a socket still being set up.
        let tracked = shared.sockets.tracker.token();
        let config = self.config;
        let shutdown = shared.shutdown.clone();
        let counters = shared.stats.counters_arc();
        self.upgrade.on_upgrade(move |ws| {
            callback(Connection::new(ws, config, shutdown, counters, tracked))
        })
    }

    /// [`Connection::serve_log`] in the socket's task; the [`CloseReason`]
    /// is dropped (use [`on_upgrade`](Self::on_upgrade) to see it).
    ///
    /// Pass `resume.start(&log)` as `start`, for either backend: a cursor
    /// that is too old is told after the upgrade (close `4410`), since a
    /// browser cannot see why an upgrade failed; an outage of a Redis log is
    /// answered `503` + `Retry-After` instead of upgrading.
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn serve_log<T, B, E, F>(
        self,
        log: EventLog<T, B>,
        start: Result<Cursor, E>,
        on_message: F,
    ) -> Response
    where
        T: Clone + Serialize + Send + Sync + 'static,
        B: Backend,
        E: StartRefusal,
        F: FnMut(Message) -> Result<(), CloseReason> + Send + 'static,
    {
        let start = match start.map_err(StartRefusal::into_gone) {
            Ok(cursor) => Ok(cursor),
            Err(Ok(gone)) => Err(gone),
            Err(Err(response)) => return response,
        };
        self.on_upgrade(move |conn| async move {
            conn.serve_log(&log, start, on_message).await;
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
}

impl LiveSocketRejection {
    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer(r) => r.status(),
            Self::Upgrade(r) => r.status(),
        }
    }

    /// The response text.
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::MissingLayer(r) => r.body_text(),
            Self::Upgrade(r) => r.body_text(),
        }
    }
}

impl std::fmt::Display for LiveSocketRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body_text())
    }
}

impl std::error::Error for LiveSocketRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingLayer(r) => Some(r),
            Self::Upgrade(r) => Some(r),
        }
    }
}

impl IntoResponse for LiveSocketRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingLayer(r) => r.into_response(),
            Self::Upgrade(r) => r.into_response(),
        }
    }
}

/// The WebSocket connections opened through one
/// [`DisconnectLayer`](crate::DisconnectLayer)
/// ([`DisconnectLayer::websockets`](crate::DisconnectLayer::websockets)).
///
/// `axum::serve(..).with_graceful_shutdown(..)` does not wait for upgraded
/// connections (see the [module docs](super), "Shutdown"); await
/// [`closed`](Self::closed) after it so that every socket finished its
/// `1001` closing handshake before the process exits.
#[derive(Clone, Debug, Default)]
pub struct OpenSockets {
    pub(crate) tracker: TaskTracker,
}

impl OpenSockets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// How many are open now (upgraded, or being upgraded).
    #[must_use]
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether none is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Waits until none is open. After the shutdown token was cancelled
    /// that takes at most about
    /// [`close_timeout`](WsConfig::close_timeout). Bound it with
    /// `tokio::time::timeout` all the same: a socket handed to
    /// [`on_upgrade`](LiveSocket::on_upgrade) stays open as long as the
    /// callback keeps its [`Connection`].
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe.
    pub async fn closed(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
