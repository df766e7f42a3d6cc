#![allow(clippy::unwrap_used)]
//! The official Durable Streams clients read from this crate (issue 16):
//! `@durable-streams/client` (TypeScript, pinned in
//! `tests/clients/package-lock.json`, driven by `tests/clients/follow.mjs`)
//! follows a JSON stream of the demo on Redis with `appendonly yes`, over
//! `live: "sse"` and over `live: "long-poll"`, while a writer appends with
//! `Stream-Seq` (so its retries never duplicate). Mid-way the demo is
//! stopped and a new instance takes its port on the same Redis: the client
//! rides over it (it retries network errors and `5xx`); then the follower
//! stops, and a new one resumes from the offset it saved. Every item must
//! arrive exactly once and in order, then `closed`.
//!
//! The Python client, `durable-streams` 0.1.0 from PyPI
//! (`tests/clients/follow.py`), the same over both modes, except that it
//! neither retries a lost connection nor knows `Stream-Closed`: a follower
//! cut off by the restart exits, and the next one resumes from the saved
//! offset, until every item came exactly once, in order.
//!
//! Needs Node.js with `npm ci` run in `tests/clients`, a venv at
//! `target/ds-pyclient` with the Python client, and `redis-server`
//! (`.ci/run` makes them). A test whose tool is missing is not run and is
//! reported `ignored (<why>)`, except under `CI=true`, where it fails
//! (`tests/support/harness.rs`).

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/demo/app.rs"]
mod demo;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;
#[allow(dead_code, unreachable_pub)]
#[path = "support/redis_demo.rs"]
mod redis_demo;

#[path = "support/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Items the writer appends.
const ITEMS: usize = 300;

/// Node.js with the pinned TypeScript client installed in `tests/clients`.
const NODE_CLIENT: harness::Need = harness::Need {
    tool: "Node.js with the TypeScript client",
    check: || node_client().map(drop),
};

/// `node` and the installed client, or what is missing and how to install
/// it.
fn node_client() -> Result<(PathBuf, PathBuf), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let installed = dir.join("node_modules/@durable-streams/client").is_dir();
    match (harness::which("node"), installed) {
        (Some(node), true) => Ok((node, dir)),
        _ => Err("Node.js with the client installed is needed \
                  (apt-get install nodejs npm; cd tests/clients && npm ci)"
            .to_owned()),
    }
}

/// One request; `None` when the server cannot be reached (restarting).
async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body).await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        let text = String::from_utf8_lossy(&reply).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// Appends item `n` until it is in the stream exactly once: a retry of an
/// append that did reach the stream is refused by its `Stream-Seq` (409).
async fn append(addr: SocketAddr, path: &str, n: usize) {
    let seq = format!("stream-seq: {n:08}");
    let body = format!("{{\"n\":{n}}}");
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries < 200, "item {n} could not be appended");
        match try_request(
            addr,
            "POST",
            path,
            &["content-type: application/json", &seq],
            body.as_bytes(),
        )
        .await
        {
            Some((204, _)) => return,
            // Its sequence is not after the last one: an earlier try of it
            // reached the stream.
            Some((409, text)) if text.contains("sequence") => return,
            // The instance is stopping or gone: try again.
            Some((503, _)) | None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some((status, text)) => panic!("append {n}: {status}\n{text}"),
        }
    }
}

/// A follower process: the items it printed and whether it saw `closed`.
struct Follower {
    child: tokio::process::Child,
    lines: tokio::task::JoinHandle<Vec<String>>,
}

impl Follower {
    fn start(
        node: &Path,
        dir: &Path,
        url: &str,
        live: &str,
        offsets: &Path,
        stop_after: usize,
    ) -> Self {
        let mut child = tokio::process::Command::new(node)
            .arg(dir.join("follow.mjs"))
            .args([url, live])
            .arg(offsets)
            .arg(stop_after.to_string())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node follow.mjs");
        let stdout = child.stdout.take().unwrap();
        let lines = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut out = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                out.push(line);
            }
            out
        });
        Self { child, lines }
    }

    /// Waits for it to exit (at most a minute); its lines.
    async fn finish(mut self) -> Vec<String> {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the follower finished within a minute")
            .unwrap();
        let lines = self.lines.await.unwrap();
        assert!(
            status.success(),
            "the follower failed ({status}): {lines:?}"
        );
        lines
    }
}

/// The items `{"n":…}` among a follower's lines.
fn items(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("item "))
        .map(|json| {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            usize::try_from(value["n"].as_u64().unwrap()).unwrap()
        })
        .collect()
}

/// What both clients' tests start from: a `redis-server` with AOF, the
/// demo on it, the JSON stream `PATH` made on it, and a scratch directory
/// with the file the followers save their offset in.
struct Restartable {
    // Dropped before the Redis server it runs on.
    instance: redis_demo::Instance,
    redis: redis_demo::RedisServer,
    key: String,
    addr: std::net::SocketAddr,
    stream_url: String,
    scratch: PathBuf,
    offsets: PathBuf,
}

/// The stream both clients follow.
const PATH: &str = "/v1/stream/feed";

/// The demo's default long-poll wait in these tests.
const WAIT: Duration = Duration::from_secs(2);

impl Restartable {
    async fn start(name: &str) -> Self {
        let redis = redis_demo::RedisServer::start(true).await;
        let key = name.to_owned();
        let instance = redis_demo::Instance::start(&redis.url(), &key, WAIT, 0).await;
        let addr = instance.addr;
        let created = try_request(addr, "PUT", PATH, &["content-type: application/json"], b"")
            .await
            .unwrap();
        assert_eq!(created.0, 201, "{}", created.1);
        let scratch =
            std::env::temp_dir().join(format!("axum-longpoll-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let offsets = scratch.join("offset");
        let _ = std::fs::remove_file(&offsets);
        Self {
            stream_url: format!("http://{addr}{PATH}"),
            redis,
            key,
            instance,
            addr,
            scratch,
            offsets,
        }
    }

    /// Stops the demo and starts it again on the same port and Redis key.
    async fn restart(&mut self) {
        self.instance.stop().await;
        self.instance =
            redis_demo::Instance::start(&self.redis.url(), &self.key, WAIT, self.addr.port()).await;
        assert_eq!(self.instance.addr, self.addr);
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Needs `NODE_CLIENT` and `REDIS_SERVER`.
async fn follow_across_a_restart(live: &str) {
    let (node, dir) = node_client().unwrap_or_else(|why| panic!("{why}"));
    let mut demo = Restartable::start(&format!("ds-clients-{live}")).await;
    let (addr, path) = (demo.addr, PATH);
    let (stream_url, offsets) = (demo.stream_url.clone(), demo.offsets.clone());

    // The writer: every item once, paced, across the restart.
    let writer = tokio::spawn(async move {
        for n in 0..ITEMS {
            append(addr, path, n).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Then the end.
        loop {
            match try_request(addr, "POST", path, &["stream-closed: true"], b"").await {
                Some((204, _)) => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    // The first follower rides over a restart of the demo, then stops
    // after half the items; its offset is saved after each batch.
    let mut first = Follower::start(&node, &dir, &stream_url, live, &offsets, ITEMS / 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the follower is still following when the demo stops"
    );
    demo.restart().await;
    let first = first.finish().await;
    // The second resumes from the saved offset and runs to the end.
    let second = Follower::start(&node, &dir, &stream_url, live, &offsets, usize::MAX);
    let second = second.finish().await;
    writer.await.unwrap();

    let mut all = items(&first);
    all.extend(items(&second));
    let expected: Vec<usize> = (0..ITEMS).collect();
    assert_eq!(all, expected, "every item exactly once, in order ({live})");
    assert!(items(&first).len() >= ITEMS / 2);
    assert_eq!(
        second.last().map(String::as_str),
        Some("closed"),
        "{second:?}"
    );
}

async fn the_typescript_client_follows_over_sse_across_a_restart_exactly_once() {
    follow_across_a_restart("sse").await;
}

async fn the_typescript_client_follows_over_long_poll_across_a_restart_exactly_once() {
    follow_across_a_restart("long-poll").await;
}

// ---------------------------------------------------------------------------
// The Python client
// ---------------------------------------------------------------------------

/// The venv with the Python client.
const PYTHON_CLIENT: harness::Need = harness::Need {
    tool: "a venv with the Python client",
    check: || python_client().map(drop),
};

/// The venv `.ci/run` makes (`python3 -m venv target/ds-pyclient` and
/// `pip install durable-streams==0.1.0`), or what is missing and how to
/// make it.
fn python_client() -> Result<(PathBuf, PathBuf), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/ds-pyclient/bin/python");
    let installed = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import durable_streams"])
            .status()
            .is_ok_and(|s| s.success());
    if installed {
        return Ok((python, root.join("tests/clients")));
    }
    Err(
        "a venv with the Python client is needed (apt-get install python3-venv; \
         python3 -m venv target/ds-pyclient; \
         target/ds-pyclient/bin/pip install durable-streams==0.1.0)"
            .to_owned(),
    )
}

/// Runs a Python follower to its end: its items, and whether it stopped
/// by count (else the stream ended or the server went away).
async fn python_follower(
    python: &Path,
    dir: &Path,
    url: &str,
    live: &str,
    offsets: &Path,
    stop_after: usize,
) -> (Vec<usize>, bool) {
    let run = tokio::process::Command::new(python)
        .arg(dir.join("follow.py"))
        .args([url, live])
        .arg(offsets)
        .arg(stop_after.to_string())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the Python follower finished within a minute")
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    match out.status.code() {
        Some(0) => (items(&lines), true),
        Some(3) => (items(&lines), false),
        _ => panic!("the Python follower failed ({}): {lines:?}", out.status),
    }
}

/// Needs `PYTHON_CLIENT` and `REDIS_SERVER`.
async fn python_follows_across_a_restart(live: &str) {
    let (python, dir) = python_client().unwrap_or_else(|why| panic!("{why}"));
    let mut demo = Restartable::start(&format!("ds-py-{live}")).await;
    let (addr, path) = (demo.addr, PATH);
    let (stream_url, offsets) = (demo.stream_url.clone(), demo.offsets.clone());
    let total = ITEMS / 2;
    let writer = tokio::spawn(async move {
        for n in 0..total {
            append(addr, path, n).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    // The first follower is cut off by the restart (or stops at half);
    // each next one resumes from the saved offset, until every item came.
    let (python2, dir2, url2, offsets2) = (
        python.clone(),
        dir.clone(),
        stream_url.clone(),
        offsets.clone(),
    );
    let live2 = live.to_owned();
    let first = tokio::spawn(async move {
        python_follower(&python2, &dir2, &url2, &live2, &offsets2, total / 2).await
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    demo.restart().await;
    let (mut all, _) = first.await.unwrap();
    let mut runs = 1;
    while all.len() < total {
        runs += 1;
        assert!(runs <= 10, "ten followers did not get every item: {all:?}");
        let (more, _) = python_follower(
            &python,
            &dir,
            &stream_url,
            live,
            &offsets,
            total - all.len(),
        )
        .await;
        all.extend(more);
    }
    writer.await.unwrap();
    let expected: Vec<usize> = (0..total).collect();
    assert_eq!(
        all, expected,
        "every item exactly once, in order ({live}, {runs} runs)"
    );
}

async fn the_python_client_follows_over_sse_across_a_restart_exactly_once() {
    python_follows_across_a_restart("sse").await;
}

async fn the_python_client_follows_over_long_poll_across_a_restart_exactly_once() {
    python_follows_across_a_restart("long-poll").await;
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::{test, REDIS_SERVER};
    harness::run(vec![
        test!(
            the_typescript_client_follows_over_sse_across_a_restart_exactly_once,
            multi_thread(2)
        )
        .needs(NODE_CLIENT)
        .needs(REDIS_SERVER),
        test!(
            the_typescript_client_follows_over_long_poll_across_a_restart_exactly_once,
            multi_thread(2)
        )
        .needs(NODE_CLIENT)
        .needs(REDIS_SERVER),
        test!(
            the_python_client_follows_over_sse_across_a_restart_exactly_once,
            multi_thread(2)
        )
        .needs(PYTHON_CLIENT)
        .needs(REDIS_SERVER),
        test!(
            the_python_client_follows_over_long_poll_across_a_restart_exactly_once,
            multi_thread(2)
        )
        .needs(PYTHON_CLIENT)
        .needs(REDIS_SERVER),
    ])
}
