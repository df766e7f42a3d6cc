#![allow(clippy::unwrap_used)]
//! `axum_longpoll::serve` out of file descriptors. The limit is per process,
//! so this file is its own test binary with one test: it lowers the soft
//! `RLIMIT_NOFILE`, fills the descriptor table, and leaves exactly one
//! descriptor free for each client's socket. The server's `accept` then
//! fails with `EMFILE`; the server must answer the waiting client `503` at
//! once (never leave it in the kernel's backlog) and serve again when
//! descriptors are free.
//!
//! `SERVE_TEST_BASELINE=axum cargo test --test fd_limit` runs it against
//! plain `axum::serve`, where it fails: the client waits unanswered.

mod common;

use std::fs::File;
use std::future::IntoFuture as _;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use axum_longpoll::serve::{ServeConfig, ShutdownReport};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use common::{raw_get, RawConn, IO_GUARD};

/// Opens `/dev/null` until the process has no descriptor left.
fn fill_descriptor_table() -> Vec<File> {
    let mut fillers = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        fillers.push(file);
    }
    fillers
}

#[tokio::test]
async fn out_of_descriptors_a_waiting_client_is_refused_at_once_and_served_when_free() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 256, hard).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/ok", get(|| async { "ok" }));
    let stop = CancellationToken::new();
    let signal = stop.clone().cancelled_owned();
    let server = if std::env::var("SERVE_TEST_BASELINE").as_deref() == Ok("axum") {
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
                .map(|()| ShutdownReport::default())
        })
    } else {
        // No cap of its own: the process's limit is what is hit.
        let config = ServeConfig::new().max_connections(None);
        tokio::spawn(
            axum_longpoll::serve(listener, app)
                .config(config)
                .with_graceful_shutdown(signal)
                .into_future(),
        )
    };
    // Let the server start (and open its spare descriptor) with no
    // connection of its own open: then every descriptor is counted here.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }

    let mut fillers = fill_descriptor_table();
    assert!(!fillers.is_empty(), "the table was not full of fillers");
    for round in 0..3 {
        // One descriptor free: the client's socket takes it, so the
        // server's accept has none.
        drop(fillers.pop());
        let mut client = RawConn::connect(addr).await;
        let res = client.read_response().await;
        assert_eq!(res.status(), 503, "round {round}: {}", res.text());
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.header("connection"), Some("close"));
        drop(client);
        // The table is full again (the client's descriptor is back as a
        // filler).
        fillers.extend(fill_descriptor_table());
    }

    // Descriptors free again: served as before.
    fillers.truncate(fillers.len().saturating_sub(16));
    let deadline = tokio::time::Instant::now() + IO_GUARD;
    loop {
        let res = raw_get(addr, "/ok").await;
        if res.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(fillers);

    stop.cancel();
    let report = tokio::time::timeout(IO_GUARD, server)
        .await
        .expect("serving did not return")
        .unwrap()
        .unwrap();
    assert!(report.refused >= 3, "{report}");
}
