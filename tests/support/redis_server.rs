//! A `redis-server` (Debian's) child per test, for every test file that
//! needs one (`#[path = "support/redis_server.rs"] mod redis_server;`): on
//! a free port of `127.0.0.1`, with its own directory, killed and removed
//! on drop. It can be stopped as an operator would and started again on
//! the same port and directory (a restart with `appendonly yes` keeps the
//! data), or killed (an outage).
//!
//! A test that starts one needs `harness::REDIS_SERVER`: without
//! `redis-server` it is reported ignored, or failed under `CI=true`
//! (`.ci/run` installs it).

#![allow(dead_code, unreachable_pub)]

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A `redis-server` child on `127.0.0.1:<port>` with its own directory.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    appendonly: bool,
    child: Option<Child>,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl RedisServer {
    /// Starts a server (`appendonly yes` if asked) and waits until it
    /// answers `PING`.
    pub async fn start(appendonly: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "axum-longpoll-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            appendonly,
            child: None,
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.command("PING").await.is_ok_and(|r| r == "+PONG") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one inline command; returns the first reply line.
    pub async fn command(&self, cmd: &str) -> io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).await?;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply"))??;
        let text = String::from_utf8_lossy(&buf[..n]);
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    /// Stops the server as an operator would (`SHUTDOWN`: with `appendonly
    /// yes` the AOF is flushed first) and waits for it to exit.
    pub async fn stop(&mut self) {
        let nosave = if self.appendonly { "" } else { " NOSAVE" };
        let _ = self.command(&format!("SHUTDOWN{nosave}")).await;
        let mut child = self.child.take().expect("server running");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap();
        assert!(status.is_ok(), "redis-server did not exit");
    }

    /// Starts it again on the same port and directory.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    /// Kills it at once (`SIGKILL`): an outage, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
