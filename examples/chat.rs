//! A chat room over WebSocket (seed 004's hub): many clients, a message
//! from any of them fans out to all, and each can resume where it left off.
//!
//! Run it:
//!
//! ```text
//! cargo run --example chat                     # ADDR=127.0.0.1:3001
//! ```
//!
//! Try it with two terminals and websocat (or a browser console,
//! `new WebSocket("ws://localhost:3001/chat?name=ann")`):
//!
//! ```text
//! websocat 'ws://localhost:3001/chat?name=ann'
//! websocat 'ws://localhost:3001/chat?name=bob&from=oldest'   # the history, then live
//! /who                                                         # answered to you only
//! websocat 'ws://localhost:3001/chat?name=bob&cursor=<last id seen>'  # resume, nothing missed
//! curl localhost:3001/stats
//! ```
//!
//! The hub is the cursor log: publishing a message is the broadcast, and
//! each socket reads the log from its own cursor, so a client that drops
//! and comes back with its last `id` gets exactly what it missed. Replies
//! to one client (`/who`) go through a small per-socket channel merged into
//! its outgoing stream with [`Connection::run`]; a client that lets that
//! channel fill up is dropped as a slow consumer, the hub never waits for
//! it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_longpoll::disconnect::InFlight;
use axum_longpoll::event_log::{EventLog, Resume};
use axum_longpoll::ws::{self, CloseReason, Connection, LiveSocket};
use axum_longpoll::{DisconnectLayer, Stats};
use futures_util::{FutureExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One entry of the room's history.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Chat {
    Join { name: Arc<str> },
    Say { name: Arc<str>, text: Arc<str> },
    Leave { name: Arc<str>, why: String },
}

#[derive(Clone)]
struct Room {
    log: EventLog<Chat>,
    /// Who is connected, with how many sockets.
    online: Arc<Mutex<BTreeMap<Arc<str>, usize>>>,
    stats: Stats,
}

impl Room {
    fn online(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, usize>> {
        self.online
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes to the room. The log is in memory, so the publish is done
    /// when it returns (`now_or_never` is `Some`): callable from the
    /// socket's message callback, which must not wait.
    fn say(&self, chat: Chat) {
        let _ = self.log.publish(chat).now_or_never();
    }
}

#[derive(Deserialize)]
struct Who {
    name: Option<String>,
}

/// Longest name and message, in bytes.
const MAX_NAME: usize = 32;
const MAX_TEXT: usize = 4096;

async fn chat(
    State(room): State<Room>,
    Query(who): Query<Who>,
    resume: Resume,
    ws: LiveSocket,
) -> Response {
    let name: Arc<str> = match who.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() && name.len() <= MAX_NAME => Arc::from(name),
        _ => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                format!("invalid query parameter `name`: allowed 1 to {MAX_NAME} bytes"),
            )
                .into_response()
        }
    };
    // The client's position is taken now, before its join is published, so
    // the join is the first thing this client sees of itself.
    let outgoing = match ws::messages(room.log.reader(resume)) {
        Ok(outgoing) => outgoing,
        Err(unavailable) => return unavailable,
    };
    ws.on_upgrade(move |conn| session(room, name, outgoing, conn))
}

async fn session(
    room: Room,
    name: Arc<str>,
    outgoing: impl Stream<Item = Result<Message, CloseReason>>,
    conn: Connection,
) {
    *room.online().entry(Arc::clone(&name)).or_default() += 1;
    room.say(Chat::Join {
        name: Arc::clone(&name),
    });

    // Replies to this client only, merged with the room's history.
    let (direct, mut replies) = mpsc::channel::<Message>(8);
    let replies = futures_util::stream::poll_fn(move |cx| replies.poll_recv(cx)).map(Ok);
    let outgoing = futures_util::stream::select(outgoing, replies);

    let speaker = Arc::clone(&name);
    let hub = room.clone();
    let reason = conn
        .run(outgoing, move |msg| {
            let Message::Text(text) = msg else {
                return Err(CloseReason::server(1003, "text messages only"));
            };
            if text.len() > MAX_TEXT {
                return Err(CloseReason::server(1009, "message too long"));
            }
            if text.trim() == "/who" {
                let names: Vec<_> = hub.online().keys().cloned().collect();
                let reply = json!({ "control": "who", "online": names }).to_string();
                // Never wait for one client: if it does not read its
                // replies, it goes.
                return direct
                    .try_send(Message::Text(Utf8Bytes::from(reply)))
                    .map_err(|_| CloseReason::SlowConsumer);
            }
            hub.say(Chat::Say {
                name: Arc::clone(&speaker),
                text: Arc::from(text.as_str()),
            });
            Ok(())
        })
        .await;

    {
        let mut online = room.online();
        if let Some(n) = online.get_mut(&name) {
            *n -= 1;
            if *n == 0 {
                online.remove(&name);
            }
        }
    }
    // Everybody learns why, shutdown aside (nobody is left to tell).
    if reason != CloseReason::Shutdown {
        room.say(Chat::Leave {
            name,
            why: reason.to_string(),
        });
    }
}

async fn stats(State(room): State<Room>) -> Response {
    let mut body = serde_json::to_value(room.stats.snapshot()).unwrap_or_default();
    body["online"] = json!(room.online().len());
    body["head"] = json!(room.log.head());
    Json(body).into_response()
}

/// The chat's router and its requests in flight (the open sockets among
/// them).
pub(crate) fn router(log: EventLog<Chat>, shutdown: CancellationToken) -> (Router, InFlight) {
    let layer = DisconnectLayer::new().shutdown(shutdown);
    let sockets = layer.in_flight();
    let room = Room {
        log,
        online: Arc::default(),
        stats: layer.stats(),
    };
    let router = Router::new()
        .route("/chat", get(chat))
        .route("/stats", get(stats))
        .with_state(room)
        .layer(layer);
    (router, sockets)
}

#[allow(dead_code)] // also compiled as a module of tests/chat.rs
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("invalid ADDR={v:?}: allowed an address like 127.0.0.1:3001"))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3001)),
    };
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        });
    }
    let (router, sockets) = router(EventLog::new(1000), shutdown.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("chat on ws://{}/chat?name=<you>", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    // Upgraded connections outlive `serve`: let each send its 1001.
    let _ = tokio::time::timeout(Duration::from_secs(10), sockets.wait()).await;
    Ok(())
}
