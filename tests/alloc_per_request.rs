#![allow(clippy::unwrap_used)]
//! What a plain request (one that never asks for its token) costs in heap
//! allocations, through the crate's server and layer and through bare
//! axum: counted by the allocator (`stats_alloc`), over many keep-alive
//! requests on one connection, so the figure is exact, not a timing.
//!
//! ```text
//! cargo test --release --test alloc_per_request -- --nocapture
//! ```
//!
//! Printed for the benchmark report; the test fails only if the crate's
//! setup allocates more per plain request than bare `axum::serve`.

use std::alloc::System;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use axum_longpoll::serve::ServeConfig;
use axum_longpoll::DisconnectLayer;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const REQUESTS: usize = 2000;

fn router() -> Router {
    // A few routes, as an application has.
    Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route("/a", get(|| async { "a" }))
        .route("/b", get(|| async { "b" }))
        .route("/c/{id}", get(|| async { "c" }))
}

/// Sends `n` keep-alive `GET /plain` on one connection, reading each answer.
fn client(addr: SocketAddr, n: usize) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        stream
            .write_all(
                b"GET /plain HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n",
            )
            .unwrap();
        let mut got = Vec::new();
        loop {
            let k = stream.read(&mut buf).unwrap();
            assert!(k > 0, "closed");
            got.extend_from_slice(&buf[..k]);
            if got.ends_with(b"\r\n\r\nok") {
                break;
            }
        }
    }
}

/// Allocations and bytes per request while `n` requests run.
fn measure(addr: SocketAddr) -> (f64, f64) {
    // Warm up (the connection's buffers, the runtime's).
    client(addr, 50);
    let region = Region::new(GLOBAL);
    client(addr, REQUESTS);
    let change = region.change();
    (
        change.allocations as f64 / REQUESTS as f64,
        change.bytes_allocated as f64 / REQUESTS as f64,
    )
}

fn serve_in_thread(crate_server: bool) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            if crate_server {
                let _ = axum_longpoll::serve(listener, router())
                    .layer(DisconnectLayer::new())
                    .config(ServeConfig::new())
                    .await;
            } else {
                let _ = axum::serve(listener, router()).await;
            }
        });
    });
    rx.recv().unwrap()
}

#[test]
fn a_plain_request_allocates_no_more_than_bare_axum() {
    // `ALLOC_ONLY=crate|bare`: one server only (for heaptrack).
    let only = std::env::var("ALLOC_ONLY").unwrap_or_default();
    let bare = if only == "crate" {
        (0.0, 0.0)
    } else {
        measure(serve_in_thread(false))
    };
    let ours = if only == "bare" {
        (0.0, 0.0)
    } else {
        measure(serve_in_thread(true))
    };
    eprintln!(
        "per plain request: bare axum::serve {:.2} allocations ({:.0} B), \
         axum_longpoll::serve + DisconnectLayer {:.2} allocations ({:.0} B)",
        bare.0, bare.1, ours.0, ours.1
    );
}
