#![allow(clippy::unwrap_used)]
//! A WebSocket client that floods pings and never reads (issue 15: 2,000,000
//! pings took a server from 6 to 284 MB, every pong queued for a client
//! that reads nothing). Its own test binary, so that the heap it measures
//! (a counting global allocator) is this server's and this client's only.
//!
//! The bound: the server's heap grows by at most [`HEAP_BOUND`] while the
//! client sends [`PINGS`] pings of 125 bytes (~26 MB; every pong queued
//! would be ~26 MB of heap), and the socket is closed as a slow consumer
//! (`4008`) once nothing could be written for `send_timeout`.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use axum_longpoll::ws::{CloseReason, LiveSocket, WsConfig};
use axum_longpoll::DisconnectLayer;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Pings the client sends (if the server reads them all).
const PINGS: usize = 200_000;

/// The most the heap may grow while the flood lasts: the capped write
/// buffer (`WsConfig::max_write_buffer_size`, 1 MiB) and the rest of one
/// connection, with room to spare.
const HEAP_BOUND: i64 = 4 * 1024 * 1024;

const GUARD: Duration = Duration::from_secs(20);

fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: i64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// A masked ping frame from a client, with a 125-byte payload.
fn ping() -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    frame.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i % 4)]));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_closed_with_bounded_memory() {
    let (reasons, mut reason) = mpsc::unbounded_channel::<CloseReason>();
    let reasons = Arc::new(reasons);
    let handler = move |ws: LiveSocket| {
        let reasons = Arc::clone(&reasons);
        async move {
            ws.on_upgrade(move |conn| async move {
                let why = conn.run(futures_util::stream::pending(), |_| Ok(())).await;
                let _ = reasons.send(why);
            })
        }
    };
    let config = WsConfig::new()
        .ping_interval(None)
        .send_timeout(Duration::from_millis(500))
        .close_timeout(Duration::from_millis(200));
    let app: Router = Router::new()
        .route("/ws", get(handler))
        .layer(DisconnectLayer::new().config(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A client with a small receive buffer that reads nothing after the
    // handshake.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
              sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));

    let heap_before = live_heap();
    let rss_before = rss();
    let (_unread, mut write) = stream.into_split();
    let flood = tokio::spawn(async move {
        let batch: Vec<u8> = std::iter::repeat_n(ping(), 1000).flatten().collect();
        let mut sent = 0;
        while sent < PINGS {
            if write.write_all(&batch).await.is_err() {
                break;
            }
            sent += 1000;
        }
        sent
    });

    let mut heap_peak = 0;
    let why = loop {
        heap_peak = heap_peak.max(live_heap() - heap_before);
        match tokio::time::timeout(Duration::from_millis(10), reason.recv()).await {
            Ok(why) => break why.unwrap(),
            Err(_) => assert!(
                !flood.is_finished(),
                "the flood ended and the socket is still open; the heap grew by {heap_peak} B, \
                 RSS by {} B",
                rss() - rss_before
            ),
        }
    };
    let sent = tokio::time::timeout(GUARD, flood).await;
    let rss_growth = rss() - rss_before;
    eprintln!(
        "ping flood: {why}; heap grew by at most {heap_peak} B, RSS by {rss_growth} B; \
         pings written by the client: {sent:?}"
    );
    assert_eq!(why, CloseReason::SlowConsumer);
    assert!(
        heap_peak < HEAP_BOUND,
        "the heap grew by {heap_peak} B during the flood (bound {HEAP_BOUND} B)"
    );
}
