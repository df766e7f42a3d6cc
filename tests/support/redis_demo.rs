//! A `redis-server` per test, and instances of the demo on it, each in a
//! Tokio runtime and a thread of its own (so stopping one drops everything
//! it had, as a stopped process would), for the Durable Streams tests
//! (`#[path = "support/redis_demo.rs"] mod redis_demo;` beside `mod demo`
//! and `mod redis_server`).
//!
//! A test that starts one needs `harness::REDIS_SERVER`: without
//! `redis-server` it is reported ignored, or failed under `CI=true`
//! (`.ci/run` installs it).

use std::net::SocketAddr;
use std::time::Duration;

use axum_longpoll::durable::DurableStreams;
use axum_longpoll::event_log::Redis;
use tokio_util::sync::CancellationToken;

use crate::demo;

pub use crate::redis_server::RedisServer;

/// The demo as `main.rs` serves it with `REDIS_URL`: its root log, named
/// streams and Durable Streams on Redis under `key`, in a runtime and
/// thread of its own.
pub struct Instance {
    pub addr: SocketAddr,
    /// A handle on its Durable Streams (figures of its mirrors).
    pub durable: DurableStreams<Redis>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    /// Starts an instance on `127.0.0.1:<port>` (`0`: any free port) with
    /// Durable Streams long-polls of `long_poll`.
    pub async fn start(url: &str, key: &str, long_poll: Duration, port: u16) -> Self {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let shutdown = CancellationToken::new();
        let (url, key, stop) = (url.to_owned(), key.to_owned(), shutdown.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let place = demo::RedisPlace {
                    client: axum_longpoll::redis::Client::open(url.as_str()).unwrap(),
                    key,
                };
                let parts = demo::redis_parts(
                    &place,
                    1024,
                    10_000,
                    Some(Duration::from_secs(300)),
                    long_poll,
                )
                .await
                .expect("the demo connects to Redis");
                let durable = parts.durable.clone();
                let (router, _) = demo::router_with_durable(
                    parts.log,
                    parts.streams,
                    parts.durable,
                    &demo::Origins::Loopback,
                    &demo::TrustedProxies::default(),
                    stop.clone(),
                );
                // SO_REUSEADDR: a restarted instance binds the port its
                // predecessor served on at once.
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_reuseaddr(true).unwrap();
                socket
                    .bind(SocketAddr::from(([127, 0, 0, 1], port)))
                    .unwrap();
                let listener = socket.listen(1024).unwrap();
                ready_tx
                    .send((listener.local_addr().unwrap(), durable))
                    .unwrap_or_else(|_| panic!("the test went away"));
                let serve = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.clone().cancelled_owned());
                tokio::select! {
                    _ = serve => {},
                    // Not waiting for long connections to finish: stopped
                    // at once, as a killed process would be.
                    () = async { stop.cancelled().await; tokio::time::sleep(Duration::from_millis(50)).await } => {},
                }
            });
            // Dropping the runtime drops every task of this instance: the
            // connections, the handlers, the hubs and their readers.
            drop(rt);
        });
        let (addr, durable) = ready_rx.await.expect("instance did not start");
        Self {
            addr,
            durable,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Stops the instance: parked requests are answered (`503`), then its
    /// runtime and everything in it is dropped.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
