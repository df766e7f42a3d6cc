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
//! Printed for the benchmark report. The crate's server and layer cost a
//! plain request three allocations more than bare `axum::serve` (17.88
//! against 14.88 when this was written), all three the layer's: the
//! request's `CancellationToken` node, its `RequestContext` boxed in the
//! request's extensions, and the extension map growing for that fourth
//! entry. The context stays in the extensions on purpose: an extractor run
//! on another task (under tower's `Buffer`, or `extract_parts` in a spawned
//! task) must still find it. `serve` turns the router's handlers into
//! routes once at start, so no request boxes a clone of its handler, and
//! bounds HTTP/1.1 head waits with one timer per connection, not hyper's
//! timer per request.
//!
//! The test fails if that grows: an allocation count, exact, not a timing.

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

/// Allocations per plain request the crate may add to bare `axum::serve`.
const EXTRA_ALLOWED: f64 = 3.0;

#[test]
fn a_plain_request_allocates_at_most_three_more_than_bare_axum() {
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
    if only.is_empty() {
        // A few hundredths of slack: the runtime's own bookkeeping may
        // allocate once or twice over the 2,000 requests.
        assert!(
            ours.0 <= bare.0 + EXTRA_ALLOWED + 0.05,
            "a plain request allocates {:.2} times through the crate, \
             more than bare axum::serve's {:.2} + {EXTRA_ALLOWED}",
            ours.0,
            bare.0
        );
    }
}
