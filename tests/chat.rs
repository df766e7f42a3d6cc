#![allow(clippy::unwrap_used)]
//! `examples/chat.rs` over real sockets, with tokio-tungstenite clients: a
//! message fans out to every client, a `/who` reply goes to one client
//! only, and a client that dropped resumes with its last cursor and gets
//! exactly what it missed.

mod common;

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;

use std::net::SocketAddr;
use std::time::Duration;

use axum_longpoll::EventLog;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

const GUARD: Duration = Duration::from_secs(10);

type Client = WebSocketStream<TcpStream>;

async fn connect(addr: SocketAddr, query: &str) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/chat?{query}"), stream)
        .await
        .unwrap();
    client
}

/// The next text message as JSON (pings are answered by tungstenite).
async fn next(client: &mut Client) -> Value {
    loop {
        let msg = tokio::time::timeout(GUARD, client.next())
            .await
            .expect("no message")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Skips to the next chat event (`{"id","data"}`); returns it.
async fn event(client: &mut Client) -> Value {
    loop {
        let msg = next(client).await;
        if msg.get("id").is_some() {
            return msg;
        }
    }
}

fn said(event: &Value) -> Option<(&str, &str)> {
    let data = &event["data"];
    (data["kind"] == "say").then(|| {
        (
            data["name"].as_str().unwrap(),
            data["text"].as_str().unwrap(),
        )
    })
}

#[tokio::test]
async fn messages_fan_out_replies_stay_private_and_a_dropped_client_resumes() {
    let shutdown = CancellationToken::new();
    let (router, sockets) = chat::router(EventLog::new(100), shutdown.clone());
    let server = common::spawn_with_shutdown(router, shutdown).await;
    let addr = server.addr;

    let mut ann = connect(addr, "name=ann").await;
    assert_eq!(next(&mut ann).await["control"], "open");
    assert_eq!(event(&mut ann).await["data"]["kind"], "join");
    let mut bob = connect(addr, "name=bob").await;
    assert_eq!(event(&mut bob).await["data"]["name"], "bob");
    assert_eq!(event(&mut ann).await["data"]["name"], "bob");

    // Fan-out: both get ann's message.
    ann.send(Message::text("hi")).await.unwrap();
    assert_eq!(said(&event(&mut ann).await), Some(("ann", "hi")));
    assert_eq!(said(&event(&mut bob).await), Some(("ann", "hi")));

    // `/who` is answered to bob only.
    bob.send(Message::text("/who")).await.unwrap();
    let who = next(&mut bob).await;
    assert_eq!(who["control"], "who");
    assert_eq!(who["online"], serde_json::json!(["ann", "bob"]));
    bob.send(Message::text("back")).await.unwrap();
    let msg = next(&mut ann).await;
    assert_eq!(said(&msg), Some(("bob", "back")), "ann got {msg}");
    let cursor = event(&mut bob).await["id"].as_str().unwrap().to_owned();

    // bob drops without a close frame; ann goes on talking.
    drop(bob);
    let mut left = false;
    while !left {
        let e = event(&mut ann).await;
        left = e["data"]["kind"] == "leave";
        if left {
            assert!(e["data"]["why"].as_str().unwrap().contains("1006"), "{e}");
        }
    }
    for text in ["one", "two", "three"] {
        ann.send(Message::text(text)).await.unwrap();
        assert_eq!(said(&event(&mut ann).await), Some(("ann", text)));
    }

    // bob resumes with his last cursor: his own leave, then ann's three
    // messages, once each and in order.
    let mut bob = connect(addr, &format!("name=bob&cursor={cursor}")).await;
    assert_eq!(next(&mut bob).await["cursor"], cursor);
    assert_eq!(event(&mut bob).await["data"]["kind"], "leave");
    for text in ["one", "two", "three"] {
        assert_eq!(said(&event(&mut bob).await), Some(("ann", text)));
    }
    // Then his own new join: nothing was repeated, nothing skipped.
    assert_eq!(event(&mut bob).await["data"]["kind"], "join");

    // Shutdown: both get 1001 (and answer it while they read).
    let closes = [ann, bob].map(|mut client| {
        tokio::spawn(async move {
            let mut code = None;
            while let Some(Ok(msg)) = client.next().await {
                if let Message::Close(frame) = msg {
                    code = frame.map(|f| u16::from(f.code));
                }
            }
            code
        })
    });
    server.shutdown(GUARD).await.unwrap();
    tokio::time::timeout(GUARD, sockets.wait()).await.unwrap();
    for close in closes {
        assert_eq!(close.await.unwrap(), Some(1001));
    }
}
