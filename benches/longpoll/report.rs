//! `BENCHMARKS.md` and `benches/fanout.svg` from the measured passes.

use std::fmt::Write as _;

#[path = "../shared/report.rs"]
mod shared;

use shared::{command, targets_table, Check, Host};

use crate::{median, Config};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Crate,
    Bare,
    Go,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Crate => "axum-longpoll",
            Self::Bare => "bare axum",
            Self::Go => "Go net/http",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Self::Crate => "#d9480f",
            Self::Bare => "#1971c2",
            Self::Go => "#2f9e44",
        }
    }
}

const KINDS: [Kind; 3] = [Kind::Crate, Kind::Bare, Kind::Go];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Fin,
    Rst,
    H2Reset,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Fin => "HTTP/1.1 FIN",
            Self::Rst => "HTTP/1.1 RST",
            Self::H2Reset => "HTTP/2 RST_STREAM",
        }
    }
}

const MODES: [Mode; 3] = [Mode::Fin, Mode::Rst, Mode::H2Reset];

pub(crate) struct Detection {
    pub(crate) kind: Kind,
    pub(crate) mode: Mode,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) count: u64,
    pub(crate) missed: u64,
}

pub(crate) struct Fanout {
    pub(crate) kind: Kind,
    pub(crate) n: u64,
    pub(crate) e2e_ms: f64,
    pub(crate) server_ms: f64,
}

/// Publish-to-delivery latency, microseconds.
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) count: u64,
}

/// The `redis` phase: two crate instances on one Redis key, and the
/// in-memory server of the same pass.
/// Two instances serving a `Streams` collection on Redis, at one size.
pub(crate) struct RedisStreams {
    pub(crate) streams: u64,
    /// Redis connections of A (publishes) and of B (one parked poll per
    /// stream).
    pub(crate) connections_a: usize,
    pub(crate) connections_b: usize,
    /// B's RSS per stream (a mirror and a parked poll each).
    pub(crate) rss_per_stream_b: f64,
}

pub(crate) struct RedisRun {
    /// The many-streams figures, by size.
    pub(crate) streams: Vec<RedisStreams>,
    /// Parked polls, half on each instance.
    pub(crate) n: u64,
    pub(crate) e2e_ms: f64,
    pub(crate) server_ms: f64,
    pub(crate) memory_e2e_ms: f64,
    pub(crate) memory_server_ms: f64,
    /// The memory fan-out comes from the fan-out phase of the same pass.
    pub(crate) memory_reused: bool,
    pub(crate) latency: Latency,
    pub(crate) memory_latency: Latency,
}

pub(crate) struct Shutdown {
    pub(crate) kind: Kind,
    pub(crate) answered_ms: f64,
    pub(crate) exit_ms: f64,
    pub(crate) answered: u64,
    pub(crate) clean: bool,
}

/// Memory per idle named stream (the `streams` phase), RSS bytes per
/// stream.
pub(crate) struct StreamsMem {
    /// Streams.
    pub(crate) n: usize,
    /// A `HashMap<String, ()>` of the same names.
    pub(crate) baseline: f64,
    pub(crate) empty: f64,
    pub(crate) one_event: f64,
    pub(crate) one_reader: f64,
}

/// Many parked HTTP/2 streams (the `h2big` phase).
pub(crate) struct H2Big {
    pub(crate) kind: Kind,
    pub(crate) streams: u64,
    pub(crate) connections: u64,
    /// Bytes of RSS per parked stream.
    pub(crate) rss_per_stream: f64,
    /// One publish sent → every stream has its answer.
    pub(crate) fanout_ms: f64,
    pub(crate) answered: u64,
}

/// One round of the publish storm.
pub(crate) struct Storm {
    pub(crate) kind: Kind,
    /// Pollers.
    pub(crate) n: u64,
    /// Events received by the pollers, per second.
    pub(crate) deliveries: f64,
    /// Answers received by the pollers, per second.
    pub(crate) answers: f64,
    pub(crate) publishes: f64,
    pub(crate) publish_p50_us: f64,
    pub(crate) publish_p99_us: f64,
    pub(crate) stats_p50_us: f64,
    pub(crate) stats_p99_us: f64,
    /// Cores busy in the server.
    pub(crate) server_cpu: f64,
}

pub(crate) struct Plain {
    pub(crate) kind: Kind,
    /// The crate with `Router::layer` under `axum::serve` (else: under
    /// `axum_longpoll::serve`, as its docs teach).
    pub(crate) router_layer: bool,
    pub(crate) rps: f64,
    pub(crate) best: f64,
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
}

/// The figures of one full pass.
#[derive(Default)]
pub(crate) struct Run {
    pub(crate) load: String,
    pub(crate) detection: Vec<Detection>,
    /// Bytes of RSS per parked poll.
    pub(crate) rss_h1: Vec<(Kind, f64)>,
    pub(crate) rss_h2: Vec<(Kind, f64)>,
    /// The crate's layer around the whole router under `axum::serve`
    /// (`crate-outer`), beside the crate under its own `serve`.
    pub(crate) rss_outer_h1: Option<f64>,
    pub(crate) rss_outer_h2: Option<f64>,
    pub(crate) fanout: Vec<Fanout>,
    pub(crate) shutdown: Vec<Shutdown>,
    pub(crate) plain: Vec<Plain>,
    /// Events per second.
    pub(crate) stream: Vec<(Kind, f64)>,
    /// Server CPU nanoseconds per streamed event.
    pub(crate) stream_cpu: Vec<(Kind, f64)>,
    /// Bytes of RSS per idle WebSocket.
    pub(crate) ws_rss: Vec<(Kind, f64)>,
    /// Bytes of RSS per idle NDJSON or SSE response, by framing.
    pub(crate) idle_rss: Vec<(Kind, &'static str, f64)>,
    /// The `h2big` phase.
    pub(crate) h2_big: Vec<H2Big>,
    /// The `redis` phase, when it ran.
    pub(crate) redis: Option<RedisRun>,
    /// The publish storm.
    pub(crate) storm: Vec<Storm>,
    /// Memory per idle named stream.
    pub(crate) streams_mem: Vec<StreamsMem>,
}

impl Run {
    fn det(&self, kind: Kind, mode: Mode) -> Option<&Detection> {
        self.detection
            .iter()
            .find(|d| d.kind == kind && d.mode == mode)
    }

    fn fan(&self, kind: Kind, n: u64) -> Option<&Fanout> {
        self.fanout.iter().find(|f| f.kind == kind && f.n == n)
    }

    fn plain(&self, kind: Kind) -> Option<&Plain> {
        self.plain
            .iter()
            .find(|p| p.kind == kind && !p.router_layer)
    }

    fn storm(&self, kind: Kind, n: u64) -> Option<&Storm> {
        self.storm.iter().find(|s| s.kind == kind && s.n == n)
    }

    fn shut(&self, kind: Kind) -> Option<&Shutdown> {
        self.shutdown.iter().find(|s| s.kind == kind)
    }
}

fn of(v: &[(Kind, f64)], kind: Kind) -> Option<f64> {
    v.iter().find(|(k, _)| *k == kind).map(|(_, x)| *x)
}

pub(crate) struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    memory: String,
    rustc: String,
    go: String,
    date: String,
}

impl Machine {
    pub(crate) fn collect() -> Self {
        let host = Host::collect();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or("n/a".to_owned(), |kib| {
                format!("{:.1} GiB", kib / 1024.0 / 1024.0)
            });
        Self {
            cpu: host.cpu,
            cores: host.cores,
            kernel: host.kernel,
            memory,
            rustc: host.rustc,
            go: if std::env::var_os("GO_PEER").is_some() {
                command("go", &["version"])
            } else {
                "not run".to_owned()
            },
            date: host.date,
        }
    }
}

fn us(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else if x >= 1000.0 {
        format!("{:.2} ms", x / 1000.0)
    } else {
        format!("{x:.0} µs")
    }
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else {
        format!("{x:.1} ms")
    }
}

fn bytes(x: f64) -> String {
    if x.abs() >= 10_000.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "n/a".to_owned()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn check(text: String, met: Option<bool>) -> Check {
    Check { text, met }
}

/// The targets of issue 5, evaluated on one run.
fn targets(run: &Run) -> Vec<(String, &'static str, Check)> {
    let mut out = Vec::new();
    for mode in MODES {
        let Some(c) = run.det(Kind::Crate, mode) else {
            continue;
        };
        let bare = run.det(Kind::Bare, mode);
        let go = run.det(Kind::Go, mode);
        let mut text = format!(
            "{} vs bare {}",
            us(c.p99_us),
            bare.map_or("n/a".into(), |b| us(b.p99_us))
        );
        if let Some(g) = go {
            let _ = write!(text, ", Go {}", us(g.p99_us));
        }
        let met = bare.map(|b| {
            c.missed == 0 && c.p99_us <= b.p99_us && go.is_none_or(|g| c.p99_us <= g.p99_us)
        });
        out.push((
            format!("Detection p99, {}", mode.name()),
            if mode == Mode::H2Reset {
                "≤ bare axum"
            } else {
                "≤ bare axum and ≤ Go"
            },
            check(text, met),
        ));
    }
    let (c1, b1, g1) = (
        of(&run.rss_h1, Kind::Crate),
        of(&run.rss_h1, Kind::Bare),
        of(&run.rss_h1, Kind::Go),
    );
    if let (Some(c), Some(b)) = (c1, b1) {
        out.push((
            "Own memory per parked HTTP/1.1 poll (crate − bare)".to_owned(),
            "≤ 256 B",
            check(
                format!("{} ({} − {})", bytes(c - b), bytes(c), bytes(b)),
                Some(c - b <= 256.0),
            ),
        ));
    }
    if let (Some(c), Some(b)) = (run.rss_outer_h1, b1) {
        out.push((
            "… same, under `axum::serve` ¹".to_owned(),
            "≤ 256 B",
            check(
                format!("{} ({} − {})", bytes(c - b), bytes(c), bytes(b)),
                Some(c - b <= 256.0),
            ),
        ));
    }
    if let (Some(c), Some(b)) = (of(&run.rss_h2, Kind::Crate), of(&run.rss_h2, Kind::Bare)) {
        out.push((
            "Own memory per parked HTTP/2 stream (crate − bare)".to_owned(),
            "≤ 256 B",
            check(
                format!("{} ({} − {})", bytes(c - b), bytes(c), bytes(b)),
                Some(c - b <= 256.0),
            ),
        ));
    }
    if let (Some(c), Some(b)) = (run.rss_outer_h2, of(&run.rss_h2, Kind::Bare)) {
        out.push((
            "… same, under `axum::serve` ¹".to_owned(),
            "≤ 256 B",
            check(
                format!("{} ({} − {})", bytes(c - b), bytes(c), bytes(b)),
                Some(c - b <= 256.0),
            ),
        ));
    }
    if let (Some(c), Some(g)) = (c1, g1) {
        out.push((
            "All-in memory per parked HTTP/1.1 poll".to_owned(),
            "≤ Go",
            check(format!("{} vs Go {}", bytes(c), bytes(g)), Some(c <= g)),
        ));
    }
    let n_max = run.fanout.iter().map(|f| f.n).max().unwrap_or(0);
    if let Some(f) = run.fan(Kind::Crate, n_max) {
        out.push((
            format!("Fan-out to {n_max}, server side"),
            "≤ 50 ms",
            check(
                format!(
                    "{} (client sees the last answer after {})",
                    ms(f.server_ms),
                    ms(f.e2e_ms)
                ),
                Some(f.server_ms <= 50.0),
            ),
        ));
        // Issue 18's: relative to the peers of the same pass.
        if let Some(b) = run.fan(Kind::Bare, n_max) {
            let g = run.fan(Kind::Go, n_max);
            let mut text = format!(
                "{} vs bare {} ({:.2}×)",
                ms(f.e2e_ms),
                ms(b.e2e_ms),
                f.e2e_ms / b.e2e_ms
            );
            if let Some(g) = g {
                let _ = write!(text, ", Go {} ({:.2}×)", ms(g.e2e_ms), f.e2e_ms / g.e2e_ms);
            }
            let met = f.e2e_ms <= b.e2e_ms && g.is_none_or(|g| f.e2e_ms <= 0.8 * g.e2e_ms);
            out.push((
                format!("Fan-out to {n_max}, end to end"),
                "≤ 1.0× bare axum and ≤ 0.8× Go",
                check(text, Some(met)),
            ));
        }
    }
    if let Some(s) = run.shut(Kind::Crate) {
        out.push((
            "Shutdown with all parked: answered and exited".to_owned(),
            "≤ 100 ms",
            check(
                format!("answered {}, exited {}", ms(s.answered_ms), ms(s.exit_ms)),
                Some(s.exit_ms <= 100.0 && s.answered_ms <= 100.0 && s.clean),
            ),
        ));
        // Issue 15's: no later than the peers of the same pass.
        let peers: Vec<&Shutdown> = [Kind::Bare, Kind::Go]
            .into_iter()
            .filter_map(|k| run.shut(k))
            .collect();
        if !peers.is_empty() {
            let text = peers.iter().fold(
                format!("{} / {}", ms(s.answered_ms), ms(s.exit_ms)),
                |mut text, p| {
                    let _ = write!(
                        text,
                        "; {} {} / {}",
                        p.kind.name(),
                        ms(p.answered_ms),
                        ms(p.exit_ms)
                    );
                    text
                },
            );
            let met = s.clean
                && peers
                    .iter()
                    .all(|p| s.answered_ms <= p.answered_ms && s.exit_ms <= p.exit_ms);
            out.push((
                "Shutdown with all parked: answered / exited".to_owned(),
                "≤ bare axum and ≤ Go",
                check(text, Some(met)),
            ));
        }
    }
    if let (Some(c), Some(b)) = (run.plain(Kind::Crate), run.plain(Kind::Bare)) {
        out.push((
            "Plain request through the layer".to_owned(),
            "≥ 97% of bare axum",
            check(
                format!(
                    "{:.1}% ({:.0} vs {:.0} req/s)",
                    100.0 * c.rps / b.rps,
                    c.rps,
                    b.rps
                ),
                Some(c.rps >= 0.97 * b.rps),
            ),
        ));
    }
    if let Some(n) = run.storm.iter().map(|s| s.n).max() {
        if let (Some(c), Some(b)) = (run.storm(Kind::Crate, n), run.storm(Kind::Bare, n)) {
            let g = run.storm(Kind::Go, n);
            let mut text = format!("{:.0} vs bare {:.0}", c.deliveries, b.deliveries);
            if let Some(g) = g {
                let _ = write!(text, ", Go {:.0}", g.deliveries);
            }
            out.push((
                format!("Publish storm, {n} pollers: deliveries/s"),
                "≥ bare axum",
                check(text, Some(c.deliveries >= b.deliveries)),
            ));
            let mut text = format!("{} vs bare {}", us(c.publish_p99_us), us(b.publish_p99_us));
            if let Some(g) = g {
                let _ = write!(text, ", Go {}", us(g.publish_p99_us));
            }
            out.push((
                format!("Publish storm, {n} pollers: publish latency p99"),
                "≤ bare axum",
                check(text, Some(c.publish_p99_us <= b.publish_p99_us)),
            ));
        }
    }
    if let (Some(c), Some(b)) = (of(&run.stream, Kind::Crate), of(&run.stream, Kind::Bare)) {
        out.push((
            "Streaming events/s vs raw `Body::from_stream`".to_owned(),
            "≥ 97% of raw (issue 18; 90% in issue 5)",
            check(
                format!("{:.1}% ({:.0} vs {:.0} events/s)", 100.0 * c / b, c, b),
                Some(c >= 0.97 * b),
            ),
        ));
    }
    out
}

pub(crate) fn markdown(machine: &Machine, cfg: &Config, runs: &[Run]) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `benches/run` ({} full passes, {}); every figure below was measured \
         by that command. Do not edit by hand: edit `benches/longpoll/`, \
         `benches/ds/` or `benches/ANALYSIS.md` and run it again.\n",
        runs.len(),
        machine.date
    );
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| CPU | {} |", machine.cpu);
    let _ = writeln!(w, "| cores | {} |", machine.cores);
    let _ = writeln!(w, "| memory | {} |", machine.memory);
    let _ = writeln!(w, "| kernel | {} |", machine.kernel);
    let _ = writeln!(w, "| rustc | {} |", machine.rustc);
    let _ = writeln!(w, "| Go | {} |", machine.go);
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            w,
            "| load average at the start of run {} | {} |",
            i + 1,
            r.load
        );
    }
    let _ = writeln!(
        w,
        "\nThe machine is shared: other builds may run during a pass. Servers that are \
         compared run in the same pass, interleaved round by round, so the ratios within \
         one run are the figures that count.\n"
    );

    // Targets.
    let _ = writeln!(w, "## Targets (issues 5, 15 and 18)\n");
    let per_run: Vec<Vec<(String, &str, Check)>> = runs.iter().map(targets).collect();
    targets_table(w, &per_run);
    let _ = writeln!(w);

    for (i, run) in runs.iter().enumerate() {
        figures(w, cfg, run, i + 1);
    }

    redis_section(w, cfg, runs);

    let _ = writeln!(w, "## Fan-out curve\n");
    let _ = writeln!(
        w,
        "![fan-out time against N](benches/fanout.svg)\n\nSolid: publish → the client has \
         the last answer (end to end). Dashed: publish → the server's last handler produced \
         its answer (server side). Each point is the median of the passes' medians.\n"
    );

    method(w, cfg);

    let analysis =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ANALYSIS.md"))
            .unwrap_or_default();
    if !analysis.trim().is_empty() {
        let _ = writeln!(w, "{}", analysis.trim_end());
    }
    md
}

fn figures(w: &mut String, cfg: &Config, run: &Run, number: usize) {
    let _ = writeln!(w, "## Run {number}\n");

    let _ = writeln!(w, "### Disconnect detection latency\n");
    let _ = writeln!(
        w,
        "Server-side detection time minus client close time (one clock), {} disconnects \
         per server and mode, one at a time.\n",
        cfg.disconnects
    );
    let _ = writeln!(
        w,
        "| mode | server | p50 | p99 | max | detected | missed | p99 ÷ bare | p99 ÷ Go |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
    for mode in MODES {
        for kind in KINDS {
            let Some(d) = run.det(kind, mode) else {
                continue;
            };
            let bare = run.det(Kind::Bare, mode).map_or(f64::NAN, |b| b.p99_us);
            let go = run.det(Kind::Go, mode).map_or(f64::NAN, |g| g.p99_us);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                mode.name(),
                kind.name(),
                us(d.p50_us),
                us(d.p99_us),
                us(d.max_us),
                d.count,
                d.missed,
                ratio(d.p99_us, bare),
                ratio(d.p99_us, go)
            );
        }
    }

    let _ = writeln!(w, "\n### Memory per parked long-poll\n");
    let _ = writeln!(
        w,
        "Server RSS (`VmRSS`) with {} polls parked minus before, divided by {}. HTTP/2: the \
         same number of streams over {} connections (hyper's limit is 200 concurrent \
         streams per connection; Go's standard library has no cleartext HTTP/2).\n",
        cfg.parked, cfg.parked, cfg.h2_connections
    );
    let _ = writeln!(
        w,
        "| server | per HTTP/1.1 poll | ÷ bare | ÷ Go | per HTTP/2 stream | ÷ bare |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for kind in KINDS {
        let h1 = of(&run.rss_h1, kind);
        let h2 = of(&run.rss_h2, kind);
        if h1.is_none() && h2.is_none() {
            continue;
        }
        let h1 = h1.unwrap_or(f64::NAN);
        let h2 = h2.unwrap_or(f64::NAN);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            kind.name(),
            if h1.is_nan() { "n/a".into() } else { bytes(h1) },
            ratio(h1, of(&run.rss_h1, Kind::Bare).unwrap_or(f64::NAN)),
            ratio(h1, of(&run.rss_h1, Kind::Go).unwrap_or(f64::NAN)),
            if h2.is_nan() { "n/a".into() } else { bytes(h2) },
            ratio(h2, of(&run.rss_h2, Kind::Bare).unwrap_or(f64::NAN)),
        );
    }

    if run.rss_outer_h1.is_some() || run.rss_outer_h2.is_some() {
        let h1 = run.rss_outer_h1.unwrap_or(f64::NAN);
        let h2 = run.rss_outer_h2.unwrap_or(f64::NAN);
        let _ = writeln!(
            w,
            "| axum-longpoll under `axum::serve` ¹ | {} | {} | {} | {} | {} |",
            if h1.is_nan() { "n/a".into() } else { bytes(h1) },
            ratio(h1, of(&run.rss_h1, Kind::Bare).unwrap_or(f64::NAN)),
            ratio(h1, of(&run.rss_h1, Kind::Go).unwrap_or(f64::NAN)),
            if h2.is_nan() { "n/a".into() } else { bytes(h2) },
            ratio(h2, of(&run.rss_h2, Kind::Bare).unwrap_or(f64::NAN)),
        );
        let _ = writeln!(
            w,
            "\nThe crate's rows are `axum_longpoll::serve`, which puts `DisconnectLayer` around \
             the whole `Router` (`Router::layer` would box every route's layered service, \
             cloned for each connection, and each request's future; see the analysis below).\n\n\
             ¹ The same routes and layer around the router served by plain `axum::serve` \
             (`layer.layer(router)` through `axum::ServiceExt::into_make_service`): the \
             difference is what `serve` keeps per connection (its deadlines' state, the \
             socket's place under the connection cap, `DeadPeer`)."
        );
    }

    if !run.ws_rss.is_empty() {
        let _ = writeln!(w, "\n### Memory per idle WebSocket\n");
        let _ = writeln!(
            w,
            "Server RSS (`VmRSS`) with {} WebSockets open and idle minus before, divided by \
             {}. The crate: `LiveSocket` with the default `WsConfig` under `serve` (read \
             buffer sized for the 64 KiB message limit: 4 KiB); bare axum: \
             `WebSocketUpgrade` with its defaults (tungstenite allocates and zeroes a \
             128 KiB read buffer per socket). Go's standard library has no WebSocket.\n",
            cfg.parked, cfg.parked
        );
        let _ = writeln!(w, "| server | per idle WebSocket | ÷ bare |");
        let _ = writeln!(w, "|---|---|---|");
        for kind in KINDS {
            if let Some(v) = of(&run.ws_rss, kind) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} |",
                    kind.name(),
                    bytes(v),
                    ratio(v, of(&run.ws_rss, Kind::Bare).unwrap_or(f64::NAN))
                );
            }
        }
    }

    if !run.idle_rss.is_empty() {
        let _ = writeln!(w, "\n### Memory per idle NDJSON and SSE stream\n");
        let _ = writeln!(
            w,
            "Server RSS (`VmRSS`) with {} responses open and idle minus before, divided by \
             {}, each framing on a fresh server. The crate: `Streaming::ndjson` / `sse` of \
             the log's events from now on (`LogReader`), with its heartbeat, caps and \
             shutdown watch, under `serve`; bare axum: `Body::from_stream` of a stream that \
             never yields (NDJSON), axum's `Sse` with its default keep-alive (SSE).\n",
            cfg.parked, cfg.parked
        );
        let _ = writeln!(
            w,
            "| server | per idle NDJSON stream | ÷ bare | per idle SSE stream | ÷ bare |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|");
        let idle = |kind: Kind, framing: &str| {
            run.idle_rss
                .iter()
                .find(|(k, f, _)| *k == kind && *f == framing)
                .map(|(_, _, v)| *v)
        };
        for kind in KINDS {
            if let (Some(nd), Some(sse)) = (idle(kind, "NDJSON"), idle(kind, "SSE")) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} |",
                    kind.name(),
                    bytes(nd),
                    ratio(nd, idle(Kind::Bare, "NDJSON").unwrap_or(f64::NAN)),
                    bytes(sse),
                    ratio(sse, idle(Kind::Bare, "SSE").unwrap_or(f64::NAN))
                );
            }
        }
    }

    if let Some(first) = run.h2_big.first() {
        let _ = writeln!(
            w,
            "\n### {} parked HTTP/2 streams over {} connections\n",
            first.streams, first.connections
        );
        let _ = writeln!(
            w,
            "Server RSS (`VmRSS`) with the streams parked minus before, divided by the streams \
             (hyper's limit of 200 concurrent streams per connection); then one publish, and \
             the time until the client has every stream's answer (its head). Fresh server \
             each, 2 workers. The crate under `serve`.\n"
        );
        let _ = writeln!(
            w,
            "| server | per parked stream | ÷ bare | one publish → all answered | ÷ bare | answered |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|");
        let bare = run.h2_big.iter().find(|b| b.kind == Kind::Bare);
        for b in &run.h2_big {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                b.kind.name(),
                bytes(b.rss_per_stream),
                ratio(
                    b.rss_per_stream,
                    bare.map_or(f64::NAN, |x| x.rss_per_stream)
                ),
                ms(b.fanout_ms),
                ratio(b.fanout_ms, bare.map_or(f64::NAN, |x| x.fanout_ms)),
                b.answered
            );
        }
    }

    let _ = writeln!(w, "\n### Fan-out\n");
    let _ = writeln!(
        w,
        "One publish wakes N parked HTTP/1.1 polls; median of {} repetitions. End to end: \
         publish sent → the client has the last answer. Server side: publish → the last \
         handler produced its answer (server clock).\n",
        cfg.fanout_reps
    );
    let _ = write!(w, "| N |");
    for kind in KINDS {
        if run.fanout.iter().any(|f| f.kind == kind) {
            let _ = write!(w, " {} e2e | server side |", kind.name());
        }
    }
    let _ = writeln!(w, " e2e ÷ bare | e2e ÷ Go |");
    let cols = KINDS
        .iter()
        .filter(|k| run.fanout.iter().any(|f| f.kind == **k))
        .count();
    let _ = writeln!(w, "|---|{}---|---|", "---|---|".repeat(cols));
    let mut ns: Vec<u64> = run.fanout.iter().map(|f| f.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for n in ns {
        let _ = write!(w, "| {n} |");
        for kind in KINDS {
            if !run.fanout.iter().any(|f| f.kind == kind) {
                continue;
            }
            match run.fan(kind, n) {
                Some(f) => {
                    let _ = write!(w, " {} | {} |", ms(f.e2e_ms), ms(f.server_ms));
                }
                None => {
                    let _ = write!(w, " n/a | n/a |");
                }
            }
        }
        let c = run.fan(Kind::Crate, n).map_or(f64::NAN, |f| f.e2e_ms);
        let b = run.fan(Kind::Bare, n).map_or(f64::NAN, |f| f.e2e_ms);
        let g = run.fan(Kind::Go, n).map_or(f64::NAN, |f| f.e2e_ms);
        let _ = writeln!(w, " {} | {} |", ratio(c, b), ratio(c, g));
    }

    let _ = writeln!(w, "\n### Shutdown with {} parked\n", cfg.parked);
    let _ = writeln!(
        w,
        "`POST /shutdown` sent → every parked client has its `503` / → the server process \
         has exited (seen by the harness, its parent).\n"
    );
    let _ = writeln!(
        w,
        "| server | all answered | process exit | 503s | clean exit |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|");
    for kind in KINDS {
        if let Some(s) = run.shut(kind) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} |",
                kind.name(),
                ms(s.answered_ms),
                ms(s.exit_ms),
                s.answered,
                if s.clean { "yes" } else { "no" }
            );
        }
    }

    let _ = writeln!(w, "\n### Plain request\n");
    let _ = writeln!(
        w,
        "`GET /plain` → `ok` over {} keep-alive connections, no pipelining; each server on \
         one worker thread (`WORKERS=1`, `GOMAXPROCS=1`) so that the client has the other \
         core; median of {} rounds of {:.1} s, servers interleaved. CPU is cores busy \
         (1.00 = one core).\n",
        cfg.connections,
        cfg.rounds,
        cfg.round.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "| server | req/s (median) | best round | ÷ bare | server CPU | client CPU |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    let bare = run.plain(Kind::Bare).map_or(f64::NAN, |p| p.rps);
    let rows = KINDS
        .iter()
        .filter_map(|&kind| run.plain(kind))
        .chain(run.plain.iter().filter(|p| p.router_layer));
    for p in rows {
        let _ = writeln!(
            w,
            "| {} | {:.0} | {:.0} | {} | {:.2} | {:.2} |",
            if p.router_layer {
                "axum-longpoll, `Router::layer` under `axum::serve` ²"
            } else {
                p.kind.name()
            },
            p.rps,
            p.best,
            ratio(p.rps, bare),
            p.server_cpu,
            p.client_cpu
        );
    }
    if run.plain.iter().any(|p| p.router_layer) {
        let _ = writeln!(
            w,
            "\nThe crate's row is `axum_longpoll::serve(listener, router).layer(DisconnectLayer)`, \
             as the README teaches: its server sets hyper's header-read timer (a boxed timer per \
             request) and bounds the request body. ² The same routes with \
             `Router::layer(DisconnectLayer)` under `axum::serve` (no timer; axum boxes every \
             layered route and each request's future)."
        );
    }

    let _ = writeln!(w, "\n### Streaming to one client\n");
    let _ = writeln!(
        w,
        "{} NDJSON events (~60 bytes each) in one HTTP/1.1 response, each its own body \
         frame; median of {} rounds, one worker thread. The crate: `Streaming::ndjson` \
         (heartbeat timer, caps, shutdown watch, layer). Raw: `Body::from_stream` of the \
         same serialized events.\n",
        cfg.stream_events, cfg.rounds
    );
    let _ = writeln!(
        w,
        "| server | events/s | ÷ raw | server CPU per event | raw ÷ this (CPU) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|");
    let raw = of(&run.stream, Kind::Bare).unwrap_or(f64::NAN);
    let raw_cpu = of(&run.stream_cpu, Kind::Bare).unwrap_or(f64::NAN);
    for kind in [Kind::Crate, Kind::Bare] {
        if let Some(x) = of(&run.stream, kind) {
            let cpu = of(&run.stream_cpu, kind).unwrap_or(f64::NAN);
            let _ = writeln!(
                w,
                "| {} | {:.0} | {} | {:.0} ns | {} |",
                if kind == Kind::Bare {
                    "raw `Body::from_stream`"
                } else {
                    kind.name()
                },
                x,
                ratio(x, raw),
                cpu,
                ratio(raw_cpu, cpu)
            );
        }
    }
    storm_table(w, cfg, run);
    streams_mem_table(w, run);
    let _ = writeln!(w);
}

fn streams_mem_table(w: &mut String, run: &Run) {
    if run.streams_mem.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n### Memory per idle named stream\n");
    let _ = writeln!(
        w,
        "N streams made in one `Streams<u64>` collection (capacity 1024 each), each case in a \
         fresh process: its `VmRSS` after minus before, divided by N (so the allocator's \
         overhead is in). Baseline: a `HashMap<String, ()>` of the same names (`room-0000000`), \
         the least a server keeps per named stream. Empty: created by a read, nothing \
         published; one event: one `u64` published; one reader: a subscription open on it \
         (held in a `Vec`). The exact heap figures at 100,000 are in \
         `tests/streams_memory.rs`.\n"
    );
    let _ = writeln!(
        w,
        "| streams | `HashMap<String, ()>` | empty | one event | one reader | empty − baseline |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for s in &run.streams_mem {
        let _ = writeln!(
            w,
            "| {} | {:.0} B | {:.0} B | {:.0} B | {:.0} B | {:.0} B |",
            s.n,
            s.baseline,
            s.empty,
            s.one_event,
            s.one_reader,
            s.empty - s.baseline
        );
    }
}

fn storm_table(w: &mut String, cfg: &Config, run: &Run) {
    if run.storm.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n### Publish storm\n");
    let _ = writeln!(
        w,
        "N pollers long-poll in a loop, each on its own HTTP/1.1 keep-alive connection, \
         resuming with the cursor of its last answer (`/poll?cursor=C`: the events after `C` \
         at once, else the next ones); meanwhile {} publishers send `POST /publish` back to \
         back (each on its own connection) and a prober sends `GET /stats` every 10 ms. \
         Measured over {:.0} s after {:.1} s of warm-up; a fresh server (2 worker threads) \
         per round, servers interleaved. Deliveries: events the pollers received. The bare \
         axum and Go servers keep the last 1024 events in a ring under a lock and answer \
         with `serde_json` / `fmt`; the crate is `LongPoll::serve` over an `EventLog` under \
         `axum_longpoll::serve`.\n",
        crate::storm::PUBLISHERS,
        cfg.storm_window.as_secs_f64(),
        cfg.storm_warmup.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "| pollers | server | deliveries/s | ÷ bare | answers/s | publishes/s | publish p50 | \
         publish p99 | `/stats` p50 | `/stats` p99 | server CPU |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ns: Vec<u64> = run.storm.iter().map(|s| s.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for n in ns {
        let bare = run.storm(Kind::Bare, n).map_or(f64::NAN, |s| s.deliveries);
        for kind in KINDS {
            if let Some(s) = run.storm(kind, n) {
                let _ = writeln!(
                    w,
                    "| {n} | {} | {:.0} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {:.2} |",
                    kind.name(),
                    s.deliveries,
                    ratio(s.deliveries, bare),
                    s.answers,
                    s.publishes,
                    us(s.publish_p50_us),
                    us(s.publish_p99_us),
                    us(s.stats_p50_us),
                    us(s.stats_p99_us),
                    s.server_cpu
                );
            }
        }
    }
}

/// "Redis: two instances" (issue 9): one row per pass that ran the phase.
fn redis_section(w: &mut String, cfg: &Config, runs: &[Run]) {
    let rows: Vec<(usize, &RedisRun)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i + 1, r.redis.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "## Redis: two instances
"
    );
    let _ = writeln!(
        w,
        "axum-longpoll's server on a Redis log (`EventLog::builder().redis(..)`): two server \
         processes (instances A and B, {} worker threads each) on one key of one local \
         `redis-server` (no persistence), against the in-memory server (one process, \
         {} worker threads) of the same pass.\n\n\
         **Fan-out**: {} parked HTTP/1.1 polls, half on each instance, one publish on A; \
         median of {} repetitions. End to end: publish sent → the client has the last of \
         the answers from both instances. Server side: A's publish handler entered → the \
         last handler on either instance produced its answer (one machine clock). The \
         in-memory figure is the same N on one process{}. The two instances wake {} each, \
         in two processes with twice the worker threads in all (sharing the same cores with \
         the client and Redis): a ratio near or below 1× means the Redis \
         hop (publish → `XADD` → each instance's `XREAD` returns) costs less than the split \
         saves, not that Redis is free.\n",
        2,
        2,
        rows[0].1.n,
        cfg.fanout_reps,
        if rows.iter().all(|(_, r)| r.memory_reused) {
            ", from the fan-out table of the same run"
        } else {
            ""
        },
        rows[0].1.n / 2
    );
    let _ = writeln!(
        w,
        "| run | N | Redis e2e | Redis server side | memory e2e | memory server side | \
         e2e Redis ÷ memory | server side Redis ÷ memory |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for (i, r) in &rows {
        let _ = writeln!(
            w,
            "| {i} | {} | {} | {} | {} | {} | {} | {} |",
            r.n,
            ms(r.e2e_ms),
            ms(r.server_ms),
            ms(r.memory_e2e_ms),
            ms(r.memory_server_ms),
            ratio(r.e2e_ms, r.memory_e2e_ms),
            ratio(r.server_ms, r.memory_server_ms)
        );
    }
    let _ = writeln!(
        w,
        "\n**Publish-to-delivery latency**: one client long-polls in a loop with its cursor \
         on instance B while the harness publishes on instance A, one event every 2 ms; \
         each event carries the unix time at which its publish request was sent, and its \
         latency is the time at which the client has read the answer minus that. In-memory \
         baseline: publish and poll on the one server. The first 50 events are a warm-up.\n"
    );
    let _ = writeln!(
        w,
        "| run | events | Redis p50 | Redis p99 | Redis max | memory p50 | memory p99 | \
         memory max | p50 Redis ÷ memory | p99 Redis ÷ memory |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in &rows {
        let (l, m) = (&r.latency, &r.memory_latency);
        let _ = writeln!(
            w,
            "| {i} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.count,
            us(l.p50_us),
            us(l.p99_us),
            us(l.max_us),
            us(m.p50_us),
            us(m.p99_us),
            us(m.max_us),
            ratio(l.p50_us, m.p50_us),
            ratio(l.p99_us, m.p99_us)
        );
    }
    if rows.iter().any(|(_, r)| !r.streams.is_empty()) {
        let _ = writeln!(
            w,
            "\n**Many streams**: two instances serving a `Streams` collection on the same \
             Redis (`EventLog::builder().streams().redis(..)`), each with its own client \
             name. Streams are made one after another by a publish on A, and each gets one \
             long-poll parked on B. At each size, Redis's `CLIENT LIST` counts each \
             instance's connections (their names start with the instance's), and B's RSS \
             growth since the previous size is divided by the streams added (each: its \
             mirror of the stream's tail, its place in the collection, one parked poll and \
             its HTTP/1.1 connection).\n"
        );
        let _ = writeln!(
            w,
            "| run | streams | Redis connections of A | of B | B's RSS per stream added |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|");
        for (i, r) in &rows {
            for m in &r.streams {
                let _ = writeln!(
                    w,
                    "| {i} | {} | {} | {} | {} |",
                    m.streams,
                    m.connections_a,
                    m.connections_b,
                    if m.rss_per_stream_b.is_nan() {
                        "n/a".to_owned()
                    } else {
                        bytes(m.rss_per_stream_b)
                    }
                );
            }
        }
    }
    let _ = writeln!(w);
}

fn method(w: &mut String, cfg: &Config) {
    let _ = writeln!(w, "## How it is measured\n");
    let _ = writeln!(
        w,
        "- One command, `benches/run`: raises the open-file limit, installs Debian's \
         `golang-go` when missing, builds `benches/peers/go` (standard library only), runs \
         `cargo bench --bench longpoll`. The harness is also the load client (tokio, raw \
         HTTP/1.1 over `TcpStream`, hyper's client for HTTP/2); every server is its own \
         process, started fresh for each figure.\n\
         - Servers: **axum-longpoll** = `DisconnectLayer` + `Resume` + `LongPoll::serve` \
         over an `EventLog`, `Streaming::ndjson`, `LiveSocket`; served by \
         `axum_longpoll::serve` (the layer around the router) for the parked polls \
         (memory, fan-out, shutdown) and the idle WebSockets, by `axum::serve` with \
         `Router::layer` for detection, plain requests and streaming; **bare axum** = a hand-written drop guard, a \
         `tokio::sync::watch` wake-up, a `select!` with `tokio::time::sleep` and a shutdown \
         token, `Body::from_stream`; **Go net/http** = `select` over a broadcast channel \
         (closed on publish), `time.NewTimer`, a shutdown channel and `r.Context().Done()`. \
         All three wait {} s per poll and keep the same routes (`benches/longpoll/servers.rs`, \
         `benches/peers/go/main.go`).\n\
         - Detection: each server records the unix time at which its handler learns of the \
         disconnect (the crate: the handler is dropped with its `DisconnectToken` cancelled; \
         bare: its drop guard fires; Go: `r.Context().Done()` fires); the client records \
         the unix time just before `close()` (FIN), `SO_LINGER 0` + `close()` (RST) or \
         dropping the HTTP/2 response future (`RST_STREAM`). Batches of {} parked polls, \
         closed 1 ms apart, servers interleaved batch by batch.\n\
         - Memory: `VmRSS` of the server process before and after parking; it includes \
         hyper's or Go's per-connection buffers, the task or goroutine, the timer and the \
         handler's state.\n\
         - Shutdown: the crate's `/shutdown` cancels the layer's token, which starts \
         `serve`'s shutdown (answer, then close, then cut at its hard deadline); bare axum \
         passes one token to the handlers and to `with_graceful_shutdown`; Go closes a \
         channel the handlers select on and calls `Server.Shutdown`.",
        crate::servers::POLL_TIMEOUT.as_secs(),
        cfg.batch
    );
    let _ = writeln!(w);
}

/// One plotted line: server, server side (else end to end), (N, ms) points.
type Series = (Kind, bool, Vec<(f64, f64)>);

/// Fan-out time against N, one line per server (solid: end to end, dashed:
/// server side).
pub(crate) fn svg(runs: &[Run]) -> String {
    let (width, height) = (720.0, 440.0);
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 60.0);
    let mut series: Vec<Series> = Vec::new();
    let mut ns: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.fanout.iter().map(|f| f.n))
        .collect();
    ns.sort_unstable();
    ns.dedup();
    for kind in KINDS {
        for server_side in [false, true] {
            let points: Vec<(f64, f64)> = ns
                .iter()
                .filter_map(|&n| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| r.fan(kind, n))
                        .map(|f| if server_side { f.server_ms } else { f.e2e_ms })
                        .collect();
                    (!v.is_empty()).then(|| (n as f64, median(&v)))
                })
                .collect();
            if !points.is_empty() {
                series.push((kind, server_side, points));
            }
        }
    }
    let x_max = ns.last().copied().unwrap_or(1) as f64;
    let y_data = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let step = nice_step(y_data / 5.0);
    let y_max = (y_data / step).ceil() * step;
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |v: f64| left + v / x_max * plot_w;
    let y = |v: f64| top + plot_h - v / y_max * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">Fan-out: one publish → last of N parked clients answered</text>"#,
        width / 2.0
    );
    // Grid and axes.
    let mut v = 0.0;
    while v <= y_max + step / 2.0 {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e9ecef"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
        v += step;
    }
    for &n in &ns {
        let _ = writeln!(
            s,
            r##"<line x1="{xv:.1}" x2="{xv:.1}" y1="{top}" y2="{}" stroke="#e9ecef"/><text x="{xv:.1}" y="{}" text-anchor="middle">{n}</text>"##,
            top + plot_h,
            top + plot_h + 18.0,
            xv = x(n as f64)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="black"/><line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">N parked clients (HTTP/1.1)</text>"#,
        left + plot_w / 2.0,
        height - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">milliseconds</text>"#,
        top + plot_h / 2.0
    );
    for (i, (kind, server_side, points)) in series.iter().enumerate() {
        let dash = if *server_side {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let path: Vec<String> = points
            .iter()
            .map(|&(n, t)| format!("{:.1},{:.1}", x(n), y(t)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
            kind.color(),
            path.join(" ")
        );
        for &(n, t) in points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                x(n),
                y(t),
                kind.color()
            );
        }
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + plot_w + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}{}</text>"#,
            lx + 24.0,
            kind.color(),
            lx + 30.0,
            ly + 4.0,
            kind.name(),
            if *server_side { " (server)" } else { " (e2e)" }
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}
