//! The `redis` phase (issue 9): the crate's server on a Redis log, two
//! instances on one key, against the in-memory server of the same run.
//!
//! - Fan-out: N parked HTTP/1.1 polls split evenly over the two instances,
//!   one publish on instance A; publish sent → the client has the last of
//!   the N answers (end to end), and publish handler entered on A → the
//!   last handler on either instance produced its answer (server side).
//! - Latency: one client long-polls in a loop on instance B, resuming with
//!   its cursor, while the harness publishes on instance A at a fixed
//!   rate; each event carries the unix time at which its publish was sent,
//!   and its latency is the unix time at which the poll's answer was read
//!   minus that (one machine, one clock).
//! - Many streams: two instances serving a `Streams` collection on Redis
//!   (`crate-redis-streams`); streams are made one after another by a
//!   publish on A, each with one long-poll parked on B; at 1, 10, 100 and
//!   1,000 streams, Redis's `CLIENT LIST` says how many connections each
//!   instance holds, and B's RSS growth per stream since the previous size.

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, get, post, Conn, Control};
use crate::report::{Kind, Latency, RedisRun, RedisStreams, Run};
use crate::{log, median, park_paced, percentile, read_all, rearm, unix_nanos, Config, Server};

/// Events of one latency measurement, after the warm-up.
const LATENCY_EVENTS: u64 = 1000;
/// Events published first and not counted.
const LATENCY_WARMUP: u64 = 50;
/// Time between two publishes.
const LATENCY_GAP: Duration = Duration::from_millis(2);
/// Worker threads of every server of this phase (as in the fan-out phase).
const WORKERS: usize = 2;

/// A `redis-server` child (Debian's) on a free loopback port with its own
/// directory, no persistence; killed and removed on drop.
struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisServer {
    fn start() -> io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("axum-longpoll-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            // 10,000 parked polls are two reader connections, not 10,000.
            .args(["--maxclients", "1000"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::other(format!("redis-server: {e} (apt-get install redis-server)"))
            })?;
        let server = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if server.ping() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not answer PING"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `CLIENT LIST`, one line per connection.
    fn client_list(&self) -> io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"CLIENT LIST\r\n")?;
        // A bulk string: `$<len>\r\n<len bytes>\r\n`.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                continue;
            };
            let len: usize = std::str::from_utf8(&buf[1..eol])
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| io::Error::other("CLIENT LIST: not a bulk string"))?;
            if buf.len() >= eol + 2 + len {
                return Ok(String::from_utf8_lossy(&buf[eol + 2..eol + 2 + len]).into_owned());
            }
        }
    }

    /// Connections whose name starts with `<name>:` (the crate names its
    /// connections `<client_name>:<role>`).
    fn connections_of(&self, name: &str) -> io::Result<usize> {
        let needle = format!(" name={name}:");
        Ok(self
            .client_list()?
            .lines()
            .filter(|l| l.contains(&needle))
            .count())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One crate server on the Redis log at `url`, key `key`.
fn spawn_redis_instance(url: &str, key: &str) -> io::Result<Server> {
    Server::spawn_with(
        Kind::Crate,
        Some("crate-redis"),
        WORKERS,
        &[("REDIS_URL", url), ("REDIS_KEY", key)],
    )
}

/// One `Streams`-on-Redis instance named `name`.
fn spawn_streams_instance(url: &str, name: &str) -> io::Result<Server> {
    Server::spawn_with(
        Kind::Crate,
        Some("crate-redis-streams"),
        WORKERS,
        &[
            ("REDIS_URL", url),
            ("REDIS_KEY", "bench:s:"),
            ("REDIS_NAME", name),
        ],
    )
}

/// The many-streams figures: at each size, Redis connections of A and B,
/// and B's RSS per stream (each stream with one parked poll on B).
async fn many_streams(redis: &RedisServer, sizes: &[u64]) -> io::Result<Vec<RedisStreams>> {
    let url = redis.url();
    let a = spawn_streams_instance(&url, "bench-a")?;
    let b = spawn_streams_instance(&url, "bench-b")?;
    let mut publisher = Control::new(a.addr);
    let mut ctl_b = Control::new(b.addr);
    ctl_b.call(&get("/stats")).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (streams, B's RSS) at the previous size.
    let mut previous = (0u64, b.rss()?);
    let mut held = Vec::new();
    let mut out = Vec::new();
    let mut made = 0;
    for &streams in sizes {
        for i in made..streams {
            let answer = publisher
                .call(&post(&format!("/streams/s{i}/publish"), "x"))
                .await?;
            if answer.status != 200 {
                return Err(io::Error::other(format!(
                    "publish on stream s{i}: {} {}",
                    answer.status,
                    answer.text()
                )));
            }
            let cursor = answer.text();
            let mut conn = Conn::open(b.addr).await?;
            conn.send(&get(&format!(
                "/streams/s{i}/poll?timeout={}&cursor={cursor}",
                crate::servers::POLL_TIMEOUT.as_secs()
            )))
            .await?;
            held.push(conn);
        }
        made = streams;
        ctl_b.wait_parked(streams).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss = b.rss()?;
        // Since the previous size: what one stream more costs, not the
        // instance's first allocations.
        let figures = RedisStreams {
            streams,
            connections_a: redis.connections_of("bench-a")?,
            connections_b: redis.connections_of("bench-b")?,
            rss_per_stream_b: if previous.0 == 0 {
                f64::NAN
            } else {
                (rss as f64 - previous.1 as f64) / (streams - previous.0) as f64
            },
        };
        previous = (streams, rss);
        log(&format!(
            "redis: {streams} streams: connections A {}, B {}; B {:.0} B RSS per stream",
            figures.connections_a, figures.connections_b, figures.rss_per_stream_b
        ));
        out.push(figures);
    }
    drop(held);
    Ok(out)
}

/// Parks `per` polls on each of `servers`, then `reps` times: one publish
/// on the first, until all `per × servers` have their answer. Returns the
/// medians of end to end and server side, in milliseconds.
async fn fanout(servers: &[&Server], per: u64, reps: usize) -> io::Result<(f64, f64)> {
    let mut ctls: Vec<Control> = servers.iter().map(|s| Control::new(s.addr)).collect();
    let mut conns = Vec::new();
    for (i, (s, ctl)) in servers.iter().zip(ctls.iter_mut()).enumerate() {
        let first = i as u64 * per;
        conns.extend(park_paced(ctl, s.addr, first..first + per).await?);
    }
    let n = per * servers.len() as u64;
    let mut outstanding = vec![true; conns.len()];
    let (mut e2e, mut server_side) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        rearm(&mut conns, &mut outstanding, 0).await?;
        for ctl in &mut ctls {
            ctl.wait_parked(per).await?;
        }
        for ctl in &mut ctls[1..] {
            ctl.call(&post("/fanout/reset", "")).await?;
        }
        let readers = tokio::spawn(read_all(std::mem::take(&mut conns)));
        // Let every reader block in its read before the publish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        let published = ctls[0].call(&post("/publish", "hello")).await?;
        if published.status != 200 {
            return Err(io::Error::other(format!(
                "publish failed: {} {}",
                published.status,
                published.text()
            )));
        }
        let (back, statuses, last) = readers.await.map_err(io::Error::other)??;
        let ok = statuses.iter().filter(|&&s| s == 200).count() as u64;
        if ok != n {
            return Err(io::Error::other(format!(
                "fan-out of {n} over {} instances: {ok} answered 200",
                servers.len()
            )));
        }
        conns = back;
        outstanding.fill(false);
        e2e.push(last.duration_since(t0).as_secs_f64() * 1e3);
        let (publish_ns, mut last_ns, mut answered) = ctls[0].fanout().await?;
        for ctl in &mut ctls[1..] {
            let (_, l, a) = ctl.fanout().await?;
            last_ns = last_ns.max(l);
            answered += a;
        }
        if answered != n {
            return Err(io::Error::other(format!(
                "servers counted {answered} answers of {n}"
            )));
        }
        server_side.push((last_ns as f64 - publish_ns as f64) / 1e6);
    }
    Ok((median(&e2e), median(&server_side)))
}

/// The cursor and the payloads of a `200` long-poll answer.
fn parse_batch(body: &[u8]) -> io::Result<(String, Vec<u64>)> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(io::Error::other)?;
    let cursor = v["cursor"]
        .as_str()
        .ok_or_else(|| io::Error::other("answer without a cursor"))?
        .to_owned();
    let sent = v["events"]
        .as_array()
        .ok_or_else(|| io::Error::other("answer without events"))?
        .iter()
        .filter_map(|e| e["data"].as_str()?.parse().ok())
        .collect();
    Ok((cursor, sent))
}

/// One client long-polls `poll` with its cursor while the harness
/// publishes on `publish`, one event per [`LATENCY_GAP`]; returns the
/// latencies in microseconds, warm-up left out.
async fn latency(publish: SocketAddr, poll: SocketAddr) -> io::Result<Latency> {
    let total = LATENCY_WARMUP + LATENCY_EVENTS;
    let poller = tokio::spawn(async move {
        let mut conn = Conn::open(poll).await?;
        let mut cursor: Option<String> = None;
        let mut latencies = Vec::with_capacity(total as usize);
        let timeout = crate::servers::POLL_TIMEOUT.as_secs();
        while (latencies.len() as u64) < total {
            let path = match &cursor {
                Some(c) => format!("/poll?id=0&timeout={timeout}&cursor={c}"),
                None => format!("/poll?id=0&timeout={timeout}"),
            };
            conn.send(&get(&path)).await?;
            let answer = tokio::time::timeout(client::GUARD, conn.answer())
                .await
                .map_err(|_| io::Error::other("latency poll: no answer within the guard"))??;
            let at = unix_nanos();
            match answer.status {
                200 => {
                    let (next, sent) = parse_batch(&answer.body)?;
                    latencies.extend(sent.iter().map(|&s| (at as f64 - s as f64) / 1e3));
                    cursor = Some(next);
                }
                204 => {}
                status => {
                    return Err(io::Error::other(format!(
                        "latency poll: {status} {}",
                        answer.text()
                    )))
                }
            }
        }
        Ok::<_, io::Error>(latencies)
    });
    let mut poll_ctl = Control::new(poll);
    poll_ctl.wait_parked(1).await?;
    let mut ctl = Control::new(publish);
    let mut tick = tokio::time::interval(LATENCY_GAP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..total {
        tick.tick().await;
        let sent = unix_nanos();
        let answer = ctl.call(&post("/publish", &sent.to_string())).await?;
        if answer.status != 200 {
            return Err(io::Error::other(format!(
                "publish failed: {} {}",
                answer.status,
                answer.text()
            )));
        }
    }
    let all = tokio::time::timeout(client::GUARD, poller)
        .await
        .map_err(|_| io::Error::other("latency poller did not finish"))?
        .map_err(io::Error::other)??;
    let mut l: Vec<f64> = all.into_iter().skip(LATENCY_WARMUP as usize).collect();
    l.sort_by(f64::total_cmp);
    Ok(Latency {
        p50_us: percentile(&l, 0.5),
        p99_us: percentile(&l, 0.99),
        max_us: l.last().copied().unwrap_or(f64::NAN),
        count: l.len() as u64,
    })
}

pub(crate) async fn phase(cfg: &Config, run: &Run) -> io::Result<RedisRun> {
    let per = cfg.parked / 2;
    let n = per * 2;

    // Baselines on the in-memory server: latency always; the fan-out only
    // when the fan-out phase of this pass did not measure this N.
    let memory = Server::spawn(Kind::Crate, WORKERS)?;
    log("redis: in-memory baseline: publish-to-delivery latency");
    let memory_latency = latency(memory.addr, memory.addr).await?;
    let reused = run
        .fanout
        .iter()
        .find(|f| f.kind == Kind::Crate && f.n == n)
        .map(|f| (f.e2e_ms, f.server_ms));
    let (memory_e2e, memory_server) = match reused {
        Some(figures) => figures,
        None => {
            log(&format!("redis: in-memory baseline: fan-out to {n}"));
            fanout(&[&memory], n, cfg.fanout_reps).await?
        }
    };
    drop(memory);

    let redis = RedisServer::start()?;
    let key = "bench:events";
    let a = spawn_redis_instance(&redis.url(), key)?;
    let b = spawn_redis_instance(&redis.url(), key)?;
    log("redis: two instances: publish on A, poll on B: latency");
    let redis_latency = latency(a.addr, b.addr).await?;
    log(&format!(
        "redis: latency p50 {:.0} µs, p99 {:.0} µs (memory: {:.0} µs, {:.0} µs)",
        redis_latency.p50_us, redis_latency.p99_us, memory_latency.p50_us, memory_latency.p99_us
    ));
    log(&format!(
        "redis: two instances: parking {per} + {per} HTTP/1.1 polls, fan-out"
    ));
    let (e2e, server) = fanout(&[&a, &b], per, cfg.fanout_reps).await?;
    log(&format!(
        "redis: fan-out {n}: e2e {e2e:.1} ms, server {server:.1} ms (memory: {memory_e2e:.1} ms, \
         {memory_server:.1} ms)"
    ));
    drop((a, b));
    log("redis: many streams on two instances");
    let sizes: &[u64] = if cfg.parked >= 10_000 {
        &[1, 10, 100, 1000]
    } else {
        &[1, 10, 100]
    };
    let streams = many_streams(&redis, sizes).await?;
    drop(redis);
    Ok(RedisRun {
        streams,
        n,
        e2e_ms: e2e,
        server_ms: server,
        memory_e2e_ms: memory_e2e,
        memory_server_ms: memory_server,
        memory_reused: reused.is_some(),
        latency: redis_latency,
        memory_latency,
    })
}
