//! Many streams, and streams that end: a chat room per name, and an "AI
//! answer" per question that streams word by word and then ends.
//!
//! Run it:
//!
//! ```text
//! cargo run --example rooms                          # ADDR=127.0.0.1:3002
//! ```
//!
//! Try it with curl:
//!
//! ```text
//! curl -N localhost:3002/rooms/lobby/sse            # the room, live (EventSource resumes by itself)
//! curl -d 'hello' localhost:3002/rooms/lobby        # say something → {"id":"<cursor>"}
//! curl 'localhost:3002/rooms/lobby/poll?from=oldest' # the same room, long-polled
//! curl -d 'why is the sky blue?' localhost:3002/ask # → {"answer":"a1","sse":"/answers/a1/sse"}
//! curl -N localhost:3002/answers/a1/sse             # the words, then `event: closed`, and the body ends
//! curl -i -H 'Last-Event-ID: <the closed id>' localhost:3002/answers/a1/sse   # 204: the end, EventSource stops
//! ```
//!
//! A room is created by its first message or reader and evicted after ten
//! idle minutes (never while someone reads it); an answer is closed by its
//! producer when done, and deleted five minutes after its last use (a
//! TTL). Everything else (cursors, resume, heartbeats, shutdown, the
//! client leaving) is the crate's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_longpoll::event_log::{StartFrom, StreamOptions};
use axum_longpoll::{DisconnectLayer, EventLog, LongPoll, Resume, Streaming, Streams};
use serde_json::json;

#[derive(Clone)]
struct App {
    rooms: Streams<Arc<str>>,
    answers: Streams<Arc<str>>,
    asked: Arc<AtomicU64>,
}

/// `POST /rooms/{room}`: a message in the room.
async fn say(State(app): State<App>, Path(room): Path<String>, text: String) -> Response {
    let room = match app.rooms.get_or_create(&room).await {
        Ok(room) => room,
        Err(err) => return err.into_response(), // 400 bad name, 503 too many rooms
    };
    match room.publish(Arc::from(text)).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `GET /rooms/{room}/sse` and `/answers/{name}/sse`.
async fn sse(streams: &Streams<Arc<str>>, name: &str, resume: Resume, s: Streaming) -> Response {
    match streams.get_or_create(name).await {
        Ok(log) => s.sse(log.reader(resume)),
        Err(err) => err.into_response(),
    }
}

async fn room_sse(
    State(app): State<App>,
    Path(room): Path<String>,
    resume: Resume,
    s: Streaming,
) -> Response {
    sse(&app.rooms, &room, resume, s).await
}

async fn answer_sse(
    State(app): State<App>,
    Path(name): Path<String>,
    resume: Resume,
    s: Streaming,
) -> Response {
    // An answer that no longer exists is not created again by a reader.
    match app.answers.get(&name) {
        Some(log) => s.sse(log.reader(resume)),
        None => (axum::http::StatusCode::NOT_FOUND, "no such answer").into_response(),
    }
}

async fn room_poll(
    State(app): State<App>,
    Path(room): Path<String>,
    resume: Resume,
    lp: LongPoll,
) -> Response {
    match app.rooms.get_or_create(&room).await {
        Ok(log) => lp.serve(log.reader(resume)).await,
        Err(err) => err.into_response(),
    }
}

/// `POST /ask`: starts an answer stream and says where to read it.
async fn ask(State(app): State<App>, question: String) -> Response {
    let name = format!("a{}", app.asked.fetch_add(1, Ordering::Relaxed) + 1);
    let options = StreamOptions::new().ttl(Duration::from_secs(300));
    let answer = match app.answers.create(&name, options).await {
        Ok(answer) => answer,
        Err(err) => return err.into_response(),
    };
    // The producer: one word at a time, then the end. (A real one would
    // read a model's tokens; it stops early if the answer is deleted.)
    tokio::spawn(async move {
        let text = format!(
            "You asked: {}. The short answer is: it depends.",
            question.trim()
        );
        for word in text.split_whitespace() {
            if answer.publish(Arc::from(word)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let _ = answer.close(None).await;
    });
    let sse = format!("/answers/{name}/sse");
    Json(json!({ "answer": name, "sse": sse })).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3002)));
    let app = App {
        rooms: EventLog::builder()
            .capacity(500)
            .streams()
            .max_streams(1_000)
            .idle(Some(Duration::from_secs(600)))
            .build(),
        // A reader without a cursor gets the whole answer, not "from now".
        answers: EventLog::builder()
            .capacity(10_000)
            .start_from(StartFrom::Oldest)
            .streams()
            .build(),
        asked: Arc::default(),
    };
    let router = Router::new()
        .route("/rooms/{room}", post(say))
        .route("/rooms/{room}/sse", get(room_sse))
        .route("/rooms/{room}/poll", get(room_poll))
        .route("/ask", post(ask))
        .route("/answers/{name}/sse", get(answer_sse))
        .with_state(app)
        .layer(DisconnectLayer::new());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("rooms on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await
}
