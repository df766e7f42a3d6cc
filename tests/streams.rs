#![allow(clippy::unwrap_used)]
//! Many named streams (`Streams`) over real sockets: eviction never takes a
//! stream someone reads or waits on, deletion and expiry tell readers at
//! once (`410` `deleted`), the cap answers `503` + `Retry-After`, and a
//! name used again is a new stream whose epoch refuses the old cursors.

mod common;

use std::time::{Duration, SystemTime};

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use axum_longpoll::event_log::Memory;
use axum_longpoll::event_log::{StreamOptions, StreamsError};
use axum_longpoll::{DisconnectLayer, EventLog, Streams};
use serde_json::Value;

use common::rooms;
use common::{spawn, wait_for, RawConn};

type Rooms = Streams<u64>;

fn app(rooms: &Rooms) -> Router {
    Router::new()
        .route("/s/{name}/poll", get(rooms::poll::<u64, Memory>))
        .route("/s/{name}/stream", get(rooms::ndjson::<u64, Memory>))
        .with_state(rooms.clone())
        .layer(DisconnectLayer::new())
}

fn rooms(idle: Option<Duration>) -> Rooms {
    EventLog::builder()
        .capacity(64)
        .streams()
        .idle(idle)
        .build()
}

/// Whether `name` lives, without counting as a use of it.
fn lives(rooms: &Rooms, name: &str) -> bool {
    rooms.figures(name).is_some()
}

/// Opens a request and reads the response head (for a stream) or nothing
/// (for a poll that parks).
async fn open(addr: std::net::SocketAddr, path: &str) -> RawConn {
    let mut conn = RawConn::connect(addr).await;
    conn.get(path).await;
    conn
}

#[tokio::test]
async fn idle_eviction_never_takes_a_stream_someone_reads_or_waits_on() {
    let idle = Duration::from_millis(100);
    let rooms = rooms(Some(idle));
    let server = spawn(app(&rooms)).await;

    // "parked": a long-poll waits on it; "open": an NDJSON stream reads it;
    // "quiet": nobody.
    for name in ["parked", "open", "quiet"] {
        rooms.get_or_create(name).await.unwrap();
    }
    let mut poll = open(server.addr, "/s/parked/poll?timeout=60").await;
    let mut stream = open(server.addr, "/s/open/stream").await;
    assert_eq!(stream.read_head().await.status, 200);
    wait_for(|| {
        let waiting = rooms.figures("parked").is_some_and(|f| f.waiters == 1);
        let reading = rooms.figures("open").is_some_and(|f| f.readers == 1);
        waiting && reading
    })
    .await;

    // The quiet one goes after `idle`; the others stay through many idles.
    wait_for(|| !lives(&rooms, "quiet")).await;
    tokio::time::sleep(idle * 10).await;
    assert!(
        lives(&rooms, "parked"),
        "evicted while a poll was parked on it"
    );
    assert!(
        lives(&rooms, "open"),
        "evicted while a stream was reading it"
    );

    // Once the poll is answered and the reader leaves, both go.
    let log = rooms.get("parked").unwrap();
    log.publish(1).await.unwrap();
    assert_eq!(poll.read_response().await.status(), 200);
    drop(stream.stream);
    wait_for(|| !lives(&rooms, "parked") && !lives(&rooms, "open")).await;
    assert!(rooms.is_empty());
}

#[tokio::test]
async fn each_read_request_and_publish_starts_the_idle_time_again() {
    let idle = Duration::from_millis(300);
    let rooms = rooms(Some(idle));
    let log = rooms.get_or_create("busy").await.unwrap();
    // Used more often than `idle` for four idles: it stays.
    for i in 0..12 {
        tokio::time::sleep(idle / 3).await;
        if i % 2 == 0 {
            log.publish(i).await.unwrap();
        } else {
            assert!(rooms.get("busy").is_some(), "evicted while in use");
        }
    }
    assert!(lives(&rooms, "busy"));
    wait_for(|| !lives(&rooms, "busy")).await;
}

#[tokio::test]
async fn deleting_a_stream_tells_its_readers_and_refuses_its_old_cursors() {
    let rooms = rooms(None);
    let server = spawn(app(&rooms)).await;
    let log = rooms.get_or_create("doomed").await.unwrap();
    let cursor = log.publish(1).await.unwrap();

    let mut poll = open(
        server.addr,
        &format!("/s/doomed/poll?cursor={cursor}&timeout=60"),
    )
    .await;
    let mut stream = open(server.addr, &format!("/s/doomed/stream?cursor={cursor}")).await;
    assert_eq!(stream.read_head().await.status, 200);
    wait_for(|| log.figures().waiters == 1 && log.figures().readers == 1).await;

    assert!(rooms.delete("doomed").await.unwrap());
    assert!(
        !rooms.delete("doomed").await.unwrap(),
        "deleting again: it is gone"
    );
    // The parked poll: 410 `deleted`, at once.
    let res = poll.read_response().await;
    assert_eq!(res.status(), 410, "{}", res.text());
    let body: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(body["reason"], "deleted", "{body}");
    // The stream: an in-band `gone`, then the end.
    let mut gone = None;
    while let Some(chunk) = stream.read_chunk().await {
        let text = String::from_utf8(chunk).unwrap();
        if text.contains("\"control\":\"gone\"") {
            gone = Some(text);
        }
    }
    assert!(gone.is_some_and(|g| g.contains("\"reason\":\"deleted\"")));
    // A publish on the old handle is refused.
    assert_eq!(log.publish(2).await.unwrap_err().status(), 410);

    // The name again: a new stream; the old cursor is from another stream.
    let mut conn = RawConn::connect(server.addr).await;
    conn.get(&format!("/s/doomed/poll?cursor={cursor}&timeout=0"))
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status(), 410);
    let body: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(body["reason"], "epoch");
    assert!(
        body["message"].as_str().unwrap().contains("another stream"),
        "{body}"
    );
    assert_ne!(rooms.get("doomed").unwrap().epoch(), log.epoch());
}

#[tokio::test]
async fn ttl_and_expiry_delete_a_stream_even_while_it_is_read() {
    let rooms = rooms(None);
    let server = spawn(app(&rooms)).await;
    let ttl = rooms
        .create("ttl", StreamOptions::new().ttl(Duration::from_secs(1)))
        .await
        .unwrap();
    rooms
        .create(
            "until",
            StreamOptions::new().expires_at(SystemTime::now() + Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let mut stream = open(server.addr, "/s/ttl/stream").await;
    assert_eq!(stream.read_head().await.status, 200);
    wait_for(|| ttl.figures().readers == 1).await;
    // Both go within the guard although one is being read.
    wait_for(|| !lives(&rooms, "ttl") && !lives(&rooms, "until")).await;
    let mut ended = false;
    while let Some(chunk) = stream.read_chunk().await {
        ended |= String::from_utf8(chunk)
            .unwrap()
            .contains("\"reason\":\"deleted\"");
    }
    assert!(ended, "the reader learned that its stream is gone");
}

#[tokio::test]
async fn the_cap_answers_503_and_names_refuses_bad_ones() {
    let rooms: Rooms = EventLog::builder()
        .streams()
        .max_streams(2)
        .retry_after(Duration::from_secs(3))
        .build();
    rooms.get_or_create("a").await.unwrap();
    rooms.get_or_create("b").await.unwrap();
    let err = rooms.get_or_create("c").await.unwrap_err();
    assert!(matches!(err, StreamsError::Full(_)), "{err:?}");
    let res = err.into_response();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "3");
    // Existing names are still served; a deleted one frees a place.
    assert!(rooms.get_or_create("a").await.is_ok());
    rooms.delete("b").await.unwrap();
    assert!(rooms.get_or_create("c").await.is_ok());

    assert!(matches!(
        rooms.create("a", StreamOptions::new()).await,
        Err(StreamsError::Exists { .. })
    ));
    for bad in ["", "a b", "a/b", "é", &"x".repeat(129), "%41"] {
        let err = rooms.get_or_create(bad).await.unwrap_err();
        assert_eq!(err.status(), 400, "{bad:?}");
        assert!(err.to_string().contains("`name`"), "{err}");
    }
    assert!(rooms.get_or_create(&"x".repeat(128)).await.is_err(), "full");
    rooms.delete("c").await.unwrap();
    assert!(rooms.get_or_create(&"x".repeat(128)).await.is_ok());
    assert!(rooms.get_or_create("A-z.0_9~").await.is_err(), "full again");
}
