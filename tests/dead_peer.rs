#![allow(clippy::unwrap_used)]
//! Dead peers (`net::DeadPeer`, feature `net`), over real sockets:
//!
//! - the options the kernel holds for a configured socket: a drawn idle,
//!   and the user timeout derived from it;
//! - a client that stops reading a stream, socket open: the write-stall
//!   timeout ends the connection and cancels the token; without it the
//!   stream stays open;
//! - a client that vanishes without FIN or RST: the client's socket lives in
//!   a network namespace joined to ours by a veth pair, and the namespace's
//!   end of the pair is taken down, so packets vanish in both directions.
//!   TCP keepalive finds the dead peer of a parked long-poll, and
//!   `TCP_USER_TIMEOUT` the dead peer of a stream whose heartbeat is never
//!   acknowledged; a plain listener beside it notices neither;
//! - thousands of healthy clients accepted in one burst, each with a parked
//!   long-poll: keepalive probes them all, and none is reset. They run in a
//!   network namespace of their own, so the kernel counters read
//!   (`TcpExt` in `/proc/net/netstat`) count their sockets only.
//!
//! The namespace tests need root and iproute2 (`ip`). Without them they are
//! not run and are reported `ignored (<why>)`, except under `CI=true`,
//! where they fail (`tests/support/harness.rs`).

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "support/harness.rs"]
mod harness;

use common::PublishNow as _;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use axum_longpoll::net::DeadPeer;
use axum_longpoll::{DisconnectLayer, Stats, StreamConfig};
use socket2::SockRef;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

use common::handlers::{ndjson as stream, poll, Log};
use common::{
    assert_cancelled, probe, probe_middleware, small_recv_buffer_conn, small_send_buffer_listener,
    wait_for_stats, RawConn, Tokens,
};

fn app(log: &Log, config: StreamConfig) -> (Router, Stats, Tokens) {
    let (p, tokens) = probe();
    let layer = DisconnectLayer::new().config(config);
    let stats = layer.stats();
    let router = Router::new()
        .route("/poll", get(poll))
        .route("/stream", get(stream))
        .with_state(log.clone())
        .layer(from_fn_with_state(p, probe_middleware))
        .layer(layer);
    (router, stats, tokens)
}

/// Serves `app` on `listener` through `DeadPeer` (or plainly with `None`).
fn serve(listener: TcpListener, app: Router, dead_peer: Option<DeadPeer>) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    match dead_peer {
        Some(config) => tokio::spawn(async move {
            axum::serve(config.listen(listener), app).await.unwrap();
        }),
        None => tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }),
    };
    addr
}

// ---------------------------------------------------------------------------
// A reader that stops reading
// ---------------------------------------------------------------------------

/// Opens `/stream` with a small receive buffer, reads the head and the open
/// frame, and returns the connection unread from then on.
async fn stalled_reader(addr: SocketAddr) -> RawConn {
    let mut conn = small_recv_buffer_conn(addr).await;
    conn.get("/stream").await;
    assert_eq!(conn.read_head().await.status, 200);
    conn.read_chunk().await.unwrap();
    conn
}

async fn write_stall_ends_a_stream_whose_reader_stopped() {
    let log = Log::new(100_000);
    let quiet = StreamConfig::new().heartbeat(None);

    let (guarded_app, guarded_stats, mut guarded_tokens) = app(&log, quiet.clone());
    let stall = DeadPeer::new().write_stall(Some(Duration::from_millis(300)));
    let guarded = serve(small_send_buffer_listener(), guarded_app, Some(stall));
    let (plain_app, plain_stats, mut plain_tokens) = app(&log, quiet);
    let plain = serve(small_send_buffer_listener(), plain_app, None);

    let _guarded_conn = stalled_reader(guarded).await;
    let _plain_conn = stalled_reader(plain).await;
    let guarded_token = guarded_tokens.next().await;
    let plain_token = plain_tokens.next().await;

    // Far more than the socket buffers hold on either side.
    for i in 0..20_000 {
        log.publish_now(i);
    }
    assert_cancelled(
        &guarded_token,
        "a stream whose reader stopped, with write_stall",
    )
    .await;
    wait_for_stats(&guarded_stats, "the stalled stream closed", |s| {
        s.streaming == 0
    })
    .await;
    // The same client without the stall timeout: still open, forever.
    assert!(!plain_token.is_cancelled());
    assert_eq!(plain_stats.snapshot().streaming, 1);
}

// ---------------------------------------------------------------------------
// The options on the socket
// ---------------------------------------------------------------------------

/// What the kernel holds for sockets `configure` set, with a user timeout
/// asked below the rule: each socket its own idle, between the configured
/// one and half of it, and a user timeout of exactly that idle + interval ×
/// probes, so that keepalive sends all its probes.
async fn configure_draws_each_idle_and_derives_the_user_timeout_from_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = DeadPeer::new().tcp_user_timeout(Some(Duration::from_secs(20)));
    let mut idles = BTreeSet::new();
    for _ in 0..64 {
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        config.configure(&server).unwrap();
        let socket = SockRef::from(&server);
        assert!(socket.keepalive().unwrap() && server.nodelay().unwrap());
        let idle = socket.tcp_keepalive_time().unwrap();
        assert!(
            (15..=30).contains(&idle.as_secs()),
            "idle {idle:?} outside 15..=30 s"
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(idle + Duration::from_secs(30))
        );
        idles.insert(idle);
    }
    assert!(
        idles.len() > 1,
        "every socket drew the same idle: {idles:?}"
    );
}

// ---------------------------------------------------------------------------
// A peer that vanishes: network namespace + veth
// ---------------------------------------------------------------------------

/// A network namespace joined to ours by a veth pair, removed on drop.
struct Netns {
    name: String,
    host_if: String,
    peer_if: String,
    host_ip: Ipv4Addr,
    peer_ip: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn create() -> Result<Self, String> {
        let id = std::process::id() % 50_000;
        let subnet = (id % 250) as u8;
        let ns = Self {
            name: format!("lp-dead-{id}"),
            host_if: format!("lph{id}"),
            peer_if: format!("lpp{id}"),
            host_ip: Ipv4Addr::new(10, 213, subnet, 1),
            peer_ip: Ipv4Addr::new(10, 213, subnet, 2),
        };
        ip(&["netns", "add", &ns.name])?;
        let setup = || -> Result<(), String> {
            ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns.peer_if,
            ])?;
            ip(&["link", "set", &ns.peer_if, "netns", &ns.name])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_if,
            ])?;
            ip(&["link", "set", &ns.host_if, "up"])?;
            let peer_addr = format!("{}/30", ns.peer_ip);
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &peer_addr,
                "dev",
                &ns.peer_if,
            ])?;
            ip(&["-n", &ns.name, "link", "set", &ns.peer_if, "up"])?;
            ip(&["-n", &ns.name, "link", "set", "lo", "up"])
        };
        setup()?;
        Ok(ns)
    }

    /// Connects to `addr` from inside the namespace: the socket is created
    /// by a thread that joined the namespace, and stays in it.
    async fn connect(&self, addr: SocketAddr) -> TcpStream {
        let path = netns_path(&self.name);
        let std_stream = tokio::task::spawn_blocking(move || {
            enter_netns(&path);
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap()
        })
        .await
        .unwrap();
        std_stream.set_nonblocking(true).unwrap();
        TcpStream::from_std(std_stream).unwrap()
    }

    /// The peer vanishes: its end of the link goes down, so nothing it sent
    /// or would send (FIN, RST, ACK) reaches us, and nothing reaches it.
    fn vanish(&self) {
        ip(&["-n", &self.name, "link", "set", &self.peer_if, "down"]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn netns_path(name: &str) -> String {
    format!("/run/netns/{name}")
}

/// Moves the calling thread into the network namespace at `path`: sockets
/// it creates from then on live there.
fn enter_netns(path: &str) {
    let file = std::fs::File::open(path).unwrap();
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// Network namespaces with veth pairs: root and iproute2.
const NETNS: harness::Need = harness::Need {
    tool: "network namespaces (root and iproute2)",
    check: netns_probe,
};

/// Makes a network namespace with a veth pair in it, and removes both;
/// else why not.
fn netns_probe() -> Result<(), String> {
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let tag = format!("probe{}", PROBES.fetch_add(1, Ordering::Relaxed));
    LoopbackNs::create(&tag)
        .and_then(|ns| {
            // Removed with the namespace when `ns` is dropped.
            ip(&[
                "-n", &ns.name, "link", "add", "lpq", "type", "veth", "peer", "name", "lpr",
            ])
        })
        .map_err(|why| format!("{why} (needs root and iproute2: apt-get install iproute2)"))
}

/// Threads that joined the namespace stay in it: run on a runtime of our
/// own so they do not serve the other tests' tasks.
fn vanished_peer_is_found_by_keepalive_and_user_timeout() {
    let ns = Netns::create().unwrap_or_else(|why| panic!("no network namespace: {why}"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(vanished_peer(&ns));
}

async fn vanished_peer(ns: &Netns) {
    let log = Log::new(1024);
    let beating = StreamConfig::new().heartbeat(Some(Duration::from_millis(300)));
    let bind = SocketAddr::new(IpAddr::V4(ns.host_ip), 0);

    let (guarded_app, guarded_stats, mut guarded_tokens) = app(&log, beating.clone());
    // Idle 1 s is drawn as 1 s (whole seconds); the user timeout follows:
    // 1 s + 2 × 1 s.
    let dead_peer =
        DeadPeer::new().keepalive(Some((Duration::from_secs(1), Duration::from_secs(1), 2)));
    let guarded = serve(
        TcpListener::bind(bind).await.unwrap(),
        guarded_app,
        Some(dead_peer),
    );
    let (plain_app, plain_stats, mut plain_tokens) = app(&log, beating);
    let plain = serve(TcpListener::bind(bind).await.unwrap(), plain_app, None);

    // On each server: one parked long-poll, one open stream, from inside
    // the namespace.
    let mut conns = Vec::new();
    let mut tokens = Vec::new();
    for (addr, source) in [(guarded, &mut guarded_tokens), (plain, &mut plain_tokens)] {
        let mut poll_conn = RawConn::from_stream(ns.connect(addr).await);
        poll_conn.get("/poll?timeout=120").await;
        let poll_token = source.next().await;
        let mut stream_conn = RawConn::from_stream(ns.connect(addr).await);
        stream_conn.get("/stream").await;
        assert_eq!(stream_conn.read_head().await.status, 200);
        let stream_token = source.next().await;
        conns.push((poll_conn, stream_conn));
        tokens.push((poll_token, stream_token));
    }
    for stats in [&guarded_stats, &plain_stats] {
        wait_for_stats(stats, "parked and streaming", |s| {
            s.parked == 1 && s.streaming == 1
        })
        .await;
    }

    ns.vanish();
    let (guarded_poll, guarded_stream) = &tokens[0];
    let (plain_poll, plain_stream) = &tokens[1];
    // keepalive: 1 s idle + 2 probes 1 s apart; user timeout: 3 s after
    // the first unacknowledged heartbeat. 20 s is a hang guard.
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        guarded_poll.cancelled().await;
        guarded_stream.cancelled().await;
    })
    .await;
    assert!(
        found.is_ok(),
        "DeadPeer did not find the vanished peer: poll cancelled {}, stream cancelled {}",
        guarded_poll.is_cancelled(),
        guarded_stream.is_cancelled()
    );
    wait_for_stats(
        &guarded_stats,
        "the dead peer's poll and stream ended",
        |s| s.parked == 0 && s.streaming == 0 && s.disconnected == 1,
    )
    .await;
    // The same peer on a plain listener: still believed alive.
    assert!(!plain_poll.is_cancelled() && !plain_stream.is_cancelled());
    let snap = plain_stats.snapshot();
    assert_eq!((snap.parked, snap.streaming), (1, 1));
    drop(conns);
}

// ---------------------------------------------------------------------------
// Healthy peers: keepalive must never end them
// ---------------------------------------------------------------------------

/// Clients parked at once: with the server's sockets, twice as many file
/// descriptors.
const HEALTHY_CLIENTS: usize = 2_000;

/// A network namespace with nothing but its loopback, removed on drop.
struct LoopbackNs {
    name: String,
}

impl LoopbackNs {
    fn create(tag: &str) -> Result<Self, String> {
        let ns = Self {
            name: format!("lp-{tag}-{}", std::process::id()),
        };
        ip(&["netns", "add", &ns.name])?;
        // On failure `ns` is dropped, which deletes the namespace.
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]).map(|()| ns)
    }
}

impl Drop for LoopbackNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A `TcpExt` counter of the calling thread's network namespace.
fn tcp_ext(counter: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat").unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == counter)
        .map(|(_, value)| value.parse().unwrap())
        .unwrap_or_else(|| panic!("no TcpExt counter {counter}"))
}

/// Probes dropped by the kernel's per-CPU input backlog, all namespaces
/// (`/proc/net/softnet_stat`, second column): for the report only.
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|hex| u64::from_str_radix(hex, 16).unwrap())
        .sum()
}

/// Raises the soft limit on open files to at least `wanted` (within the
/// hard limit).
fn raise_open_files(wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard).unwrap();
    }
}

/// The whole test runs on threads that joined the namespace: the block-on
/// thread is one of our own, and every runtime thread joins at start.
fn healthy_parked_clients_outlive_keepalive() {
    let ns = LoopbackNs::create("ka").unwrap_or_else(|why| panic!("no network namespace: {why}"));
    raise_open_files(2 * HEALTHY_CLIENTS as u64 + 1_024);
    let path = netns_path(&ns.name);
    let run = std::thread::spawn(move || {
        enter_netns(&path);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || enter_netns(&path))
            .enable_all()
            .build()
            .unwrap()
            .block_on(healthy_parked_clients());
    });
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn healthy_parked_clients() {
    // Idle 3 s, not 2: with HZ=250 the kernel's timer wheel rounds a 3 s
    // timer to 256 ms and a 2 s one to 32 ms, so at 3 s a burst of accepts
    // shares one timer tick. Under the old rule (a fixed user timeout below
    // idle + interval, one idle for all), that reset 12 to 989 of these
    // 2,000 clients in 6 of 7 runs: more probes in one tick than the
    // loopback's input backlog (`netdev_max_backlog`, 1,000) holds.
    let (idle, interval, probes) = (Duration::from_secs(3), Duration::from_secs(1), 3);
    let dead_peer = DeadPeer::new().keepalive(Some((idle, interval, probes)));
    let log = Log::new(16);
    let (app, stats, _tokens) = app(&log, StreamConfig::new());
    // A backlog that holds the whole burst, so that no SYN is retried and
    // the server accepts them all together.
    let listener = TcpSocket::new_v4().unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = serve(listener.listen(4_096).unwrap(), app, Some(dead_peer));

    let mut connecting = JoinSet::new();
    for _ in 0..HEALTHY_CLIENTS {
        connecting.spawn(async move {
            let mut conn = RawConn::connect(addr).await;
            conn.get("/poll?timeout=120").await;
            conn
        });
    }
    let conns = connecting.join_all().await;
    wait_for_stats(&stats, "every client parked", |s| {
        s.parked == HEALTHY_CLIENTS as u64
    })
    .await;
    let (aborts, keepalives, drops) = (
        tcp_ext("TCPAbortOnTimeout"),
        tcp_ext("TCPKeepAlive"),
        backlog_drops(),
    );

    // Past the point where keepalive gives up on a peer that never answers,
    // with a margin for the kernel timers' lateness (at most an eighth).
    tokio::time::sleep(idle + interval * probes + Duration::from_secs(2)).await;

    let aborted = tcp_ext("TCPAbortOnTimeout") - aborts;
    let probed = tcp_ext("TCPKeepAlive") - keepalives;
    eprintln!(
        "{HEALTHY_CLIENTS} parked clients: {probed} keepalive probes, {aborted} aborted on timeout, \
         {} packets dropped by the input backlog (all namespaces)",
        backlog_drops() - drops
    );
    let mut gone = 0;
    for conn in &conns {
        let mut byte = [std::mem::MaybeUninit::uninit()];
        match SockRef::from(&conn.stream).peek(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => gone += 1,
        }
    }
    let snap = stats.snapshot();
    assert!(
        probed >= HEALTHY_CLIENTS as u64,
        "keepalive did not probe every connection ({probed} probes): the test proves nothing"
    );
    assert_eq!(
        (aborted, gone, snap.parked),
        (0, 0, HEALTHY_CLIENTS as u64),
        "healthy clients were cut: (TCPAbortOnTimeout, clients whose socket closed or \
         answered, still parked)"
    );
    drop(conns);
}

// ---------------------------------------------------------------------------
// The tests (harness = false: see tests/support/harness.rs)
// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    use harness::test;
    harness::run(vec![
        test!(
            write_stall_ends_a_stream_whose_reader_stopped,
            multi_thread(2)
        ),
        test!(
            configure_draws_each_idle_and_derives_the_user_timeout_from_it,
            current_thread
        ),
        test!(vanished_peer_is_found_by_keepalive_and_user_timeout).needs(NETNS),
        test!(healthy_parked_clients_outlive_keepalive).needs(NETNS),
    ])
}
