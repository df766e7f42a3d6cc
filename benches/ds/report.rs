//! The "Durable Streams peers" section of `BENCHMARKS.md`.

use std::fmt::Write as _;

#[path = "../shared/report.rs"]
mod shared;

use shared::{command, targets_table, Check, Host};

use crate::servers::{Kind, KINDS, LONG_POLL};
use crate::{median, Config};

/// Fan-out times of one server at one size, one per measured append.
pub(crate) struct Fan {
    pub(crate) kind: Kind,
    pub(crate) n: usize,
    pub(crate) ms: Vec<f64>,
}

/// Bytes of RSS per held request.
pub(crate) struct Rss {
    pub(crate) kind: Kind,
    pub(crate) n: usize,
    pub(crate) bytes: f64,
}

/// Long-poll round trip, microseconds.
pub(crate) struct Rtt {
    pub(crate) kind: Kind,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) count: usize,
}

pub(crate) struct Appends {
    pub(crate) kind: Kind,
    /// Median of the rounds, appends per second.
    pub(crate) rate: f64,
    pub(crate) best: f64,
    pub(crate) appended: u64,
    /// RSS growth over every measured round, per append.
    pub(crate) rss_per_append: f64,
}

/// The figures of one pass.
#[derive(Default)]
pub(crate) struct Run {
    pub(crate) load: String,
    pub(crate) sse: Vec<Fan>,
    pub(crate) long_poll: Vec<Fan>,
    pub(crate) rss_sse: Vec<Rss>,
    pub(crate) rss_long_poll: Vec<Rss>,
    pub(crate) rtt: Vec<Rtt>,
    pub(crate) appends: Vec<Appends>,
    /// Servers that failed a figure, and why.
    pub(crate) notes: Vec<String>,
}

fn fan(v: &[Fan], kind: Kind, n: usize) -> Option<&Fan> {
    v.iter().find(|f| f.kind == kind && f.n == n)
}

fn rss(v: &[Rss], kind: Kind, n: usize) -> Option<f64> {
    v.iter()
        .find(|r| r.kind == kind && r.n == n)
        .map(|r| r.bytes)
}

impl Run {
    fn rtt(&self, kind: Kind) -> Option<&Rtt> {
        self.rtt.iter().find(|r| r.kind == kind)
    }

    fn appends(&self, kind: Kind) -> Option<&Appends> {
        self.appends.iter().find(|a| a.kind == kind)
    }
}

pub(crate) struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    rustc: String,
    ours: String,
    rs_peer: String,
    node: String,
    node_peer: String,
    date: String,
}

impl Machine {
    pub(crate) fn collect() -> Self {
        let host = Host::collect();
        let root = env!("CARGO_MANIFEST_DIR");
        let rev = command("git", &["-C", root, "rev-parse", "--short", "HEAD"]);
        let dirty = !command("git", &["-C", root, "status", "--porcelain", "--", "src"]).is_empty();
        let ours = format!(
            "{} at `{rev}`{}",
            env!("CARGO_PKG_VERSION"),
            if dirty { " (src/ modified)" } else { "" }
        );
        let rs_peer = std::env::var("DS_RS_PEER")
            .map_or_else(|_| "not run".to_owned(), |p| command(&p, &["--version"]));
        let (node, node_peer) = match std::env::var("DS_NODE_PEER") {
            Ok(dir) => {
                let package = std::fs::read_to_string(format!(
                    "{dir}/node_modules/@durable-streams/server/package.json"
                ))
                .unwrap_or_default();
                let version = serde_json::from_str::<serde_json::Value>(&package)
                    .ok()
                    .and_then(|v| Some(v.get("version")?.as_str()?.to_owned()))
                    .unwrap_or_else(|| "n/a".to_owned());
                let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
                (command(&node, &["--version"]), version)
            }
            Err(_) => ("not run".to_owned(), "not run".to_owned()),
        };
        Self {
            cpu: host.cpu,
            cores: host.cores,
            kernel: host.kernel,
            rustc: host.rustc,
            ours,
            rs_peer,
            node,
            node_peer,
            date: host.date,
        }
    }
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else if x < 10.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.1} ms")
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

fn bytes(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else if x.abs() >= 10_000.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

fn rate(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else {
        format!("{x:.0}/s")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !a.is_nan() && !b.is_nan() && b != 0.0 => {
            format!("{:.2}×", a / b)
        }
        _ => "n/a".to_owned(),
    }
}

/// The peers a ratio is taken to.
const PEERS: [Kind; 2] = [Kind::RsPeer, Kind::Node];

/// One figure of a run: its name, each server's value and how it prints.
struct Row {
    name: String,
    values: Vec<(Kind, f64)>,
    /// The value with the spread, when there is one.
    texts: Vec<(Kind, String)>,
    fmt: fn(f64) -> String,
}

impl Row {
    fn value(&self, kind: Kind) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| *v)
    }

    fn text(&self, kind: Kind) -> String {
        self.texts
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| t.clone())
            .or_else(|| self.value(kind).map(self.fmt))
            .unwrap_or_else(|| "—".to_owned())
    }
}

fn fan_row(name: String, v: &[Fan], n: usize) -> Row {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    for kind in KINDS {
        if let Some(f) = fan(v, kind, n) {
            let m = median(&f.ms);
            let lo = f.ms.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = f.ms.iter().copied().fold(0.0, f64::max);
            values.push((kind, m));
            texts.push((kind, format!("{} ({}–{})", ms(m), ms(lo), ms(hi))));
        }
    }
    Row {
        name,
        values,
        texts,
        fmt: ms,
    }
}

fn rows(cfg: &Config, run: &Run) -> Vec<Row> {
    let mut out = Vec::new();
    for &n in &cfg.sse {
        out.push(fan_row(
            format!("SSE fan-out to {n}: append → last subscriber has it"),
            &run.sse,
            n,
        ));
    }
    for &n in &cfg.long_poll {
        out.push(fan_row(
            format!("Long-poll fan-out to {n}: append → last answer read"),
            &run.long_poll,
            n,
        ));
    }
    let rtt = |name: &str, f: fn(&Rtt) -> f64| Row {
        name: name.to_owned(),
        values: KINDS
            .into_iter()
            .filter_map(|k| Some((k, f(run.rtt(k)?))))
            .collect(),
        texts: Vec::new(),
        fmt: us,
    };
    out.push(rtt("Long-poll round trip p50", |r| r.p50_us));
    out.push(rtt("Long-poll round trip p99", |r| r.p99_us));
    out.push(Row {
        name: format!(
            "Appends/s, {} connections, {} B JSON (higher is better)",
            cfg.append_conns, cfg.append_len
        ),
        values: KINDS
            .into_iter()
            .filter_map(|k| Some((k, run.appends(k)?.rate)))
            .collect(),
        texts: KINDS
            .into_iter()
            .filter_map(|k| {
                let a = run.appends(k)?;
                Some((k, format!("{} (best {})", rate(a.rate), rate(a.best))))
            })
            .collect(),
        fmt: rate,
    });
    out.push(Row {
        name: format!("RSS growth per {} B append", cfg.append_len),
        values: KINDS
            .into_iter()
            .filter_map(|k| Some((k, run.appends(k)?.rss_per_append)))
            .collect(),
        texts: Vec::new(),
        fmt: bytes,
    });
    for &n in &cfg.sse {
        out.push(Row {
            name: format!("RSS per live SSE subscriber ({n})"),
            values: KINDS
                .into_iter()
                .filter_map(|k| Some((k, rss(&run.rss_sse, k, n)?)))
                .collect(),
            texts: Vec::new(),
            fmt: bytes,
        });
    }
    for &n in &cfg.long_poll {
        out.push(Row {
            name: format!("RSS per parked long-poll ({n})"),
            values: KINDS
                .into_iter()
                .filter_map(|k| Some((k, rss(&run.rss_long_poll, k, n)?)))
                .collect(),
            texts: Vec::new(),
            fmt: bytes,
        });
    }
    out
}

/// The targets of issues 16 and 18 on one run: `(target, goal, check)`.
fn targets(cfg: &Config, run: &Run) -> Vec<(String, String, Check)> {
    let mut out = Vec::new();
    let peer = Kind::RsPeer.name();
    // Lower is better, except appends/s.
    for row in rows(cfg, run) {
        let higher = row.name.starts_with("Appends/s");
        let (o, p) = (row.value(Kind::Ours), row.value(Kind::RsPeer));
        let met = match (o, p) {
            (Some(o), Some(p)) if !o.is_nan() && !p.is_nan() => {
                Some(if higher { o >= p } else { o <= p })
            }
            _ => None,
        };
        let text = format!(
            "{} vs {} ({})",
            o.map_or("n/a".to_owned(), row.fmt),
            p.map_or("n/a".to_owned(), row.fmt),
            ratio(o, p)
        );
        out.push((
            row.name.clone(),
            format!("{} `{peer}`", if higher { "≥" } else { "≤" }),
            Check { text, met },
        ));
    }
    out.push((
        "Fan-out and long-poll round trip vs Electric's server".to_owned(),
        "≤ Electric's".to_owned(),
        Check {
            text: "not measured ¹".to_owned(),
            met: None,
        },
    ));
    out.push((
        "Appends/s vs Electric's server".to_owned(),
        "≥ 0.5× Electric's".to_owned(),
        Check {
            text: "not measured ¹".to_owned(),
            met: None,
        },
    ));
    if let Some(&n) = cfg.sse.iter().max() {
        let (o, l, b) = (
            rss(&run.rss_sse, Kind::Ours, n),
            rss(&run.rss_sse, Kind::Lib, n),
            rss(&run.rss_sse, Kind::Bare, n),
        );
        if let (Some(o), Some(b)) = (o, b) {
            let mut text = format!(
                "floor (bare axum) {}; the demo {} over it",
                bytes(b),
                bytes(o - b)
            );
            if let Some(l) = l {
                let _ = write!(text, ", the router alone {} over it", bytes(l - b));
            }
            out.push((
                format!("RSS per SSE subscriber: hyper's floor ({n})"),
                "stated (no goal)".to_owned(),
                Check { text, met: None },
            ));
        }
    }
    out
}

pub(crate) fn markdown(machine: &Machine, cfg: &Config, runs: &[Run]) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "## Durable Streams peers\n");
    let _ = writeln!(
        w,
        "Generated by `benches/run` (its `ds` bench, `benches/ds/`, {} passes, {}). \
         Durable Streams servers side by side (issues 16 and 18): each server its own \
         process, started fresh for each figure; the servers of a figure run at the same \
         time and take turns append by append (round by round), so the ratios within one \
         run are the figures that count. One load client for all (raw HTTP/1.1 over \
         tokio `TcpStream`, 2 worker threads), on the same 2 cores as the servers.\n",
        runs.len(),
        machine.date
    );
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(
        w,
        "| machine | {}, {} cores, Linux {}, {} |",
        machine.cpu, machine.cores, machine.kernel, machine.rustc
    );
    let _ = writeln!(
        w,
        "| **axum-longpoll** | {}: `examples/demo` (release), `/v1/stream/`, memory backend, \
         multi-threaded tokio (2 workers) |",
        machine.ours
    );
    let _ = writeln!(
        w,
        "| **axum-longpoll, router alone** | the same library, served as `axum_longpoll::durable` \
         documents it: `Router::new().nest(\"/v1/stream\", durable::router(..))` + \
         `DisconnectLayer`, the demo's store settings, nothing else \
         (`benches/ds/servers.rs`, 2 workers): what the demo's own routes add |"
    );
    let _ = writeln!(
        w,
        "| **durable-streams-server** | {} from crates.io (Rust, axum; \
         `cargo install --locked`), `DS_STORAGE__MODE=memory`, limits raised so that \
         no figure hits them, multi-threaded tokio (2 workers) |",
        machine.rs_peer
    );
    let _ = writeln!(
        w,
        "| **Node reference** | `@durable-streams/server` {} on Node {} \
         (`benches/peers/ds-node`, lockfile pinned), in memory, one thread |",
        machine.node_peer, machine.node
    );
    let _ = writeln!(
        w,
        "| **bare axum (floor)** | `benches/ds/servers.rs`: axum with one `tokio::sync::watch`, \
         SSE by `Body::from_stream`, no protocol, no layers: what hyper and axum cost by \
         themselves (2 workers) |"
    );
    let _ = writeln!(w, "| Electric's server ¹ | not measured |");
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            w,
            "| load average at the start of run {} | {} |",
            i + 1,
            r.load
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "### Targets (issues 16 and 18)\n");
    let per_run: Vec<_> = runs.iter().map(|r| targets(cfg, r)).collect();
    targets_table(w, &per_run);
    let _ = writeln!(
        w,
        "\nA target row compares axum-longpoll with `durable-streams-server`: its text \
         is \"ours vs theirs (ours ÷ theirs)\". Times and memory: lower is better; \
         appends/s: higher is better.\n"
    );
    let _ = writeln!(
        w,
        "¹ Electric's `durable-streams/durable-streams` repository (snapshot `82f9963a`, \
         2026-06-03) has no Rust server: besides the Node reference (measured here), its \
         production server is a Caddy plugin in Go (`packages/caddy-plugin`, Go 1.25, \
         Caddy 2.10). It is not built here: this machine has Go 1.19 and reaches no Go \
         module proxy, and its binaries are published only as release assets outside the \
         package registries. The targets against it are left open, not estimated.\n"
    );

    for (i, run) in runs.iter().enumerate() {
        let _ = writeln!(w, "### Durable Streams, run {}\n", i + 1);
        let kinds: Vec<Kind> = KINDS.into_iter().filter(|k| k.available()).collect();
        let _ = write!(w, "| figure |");
        for k in &kinds {
            let _ = write!(w, " {} |", k.name());
        }
        for p in PEERS {
            if kinds.contains(&p) {
                let _ = write!(w, " ours ÷ {} |", p.name());
            }
        }
        let _ = writeln!(w);
        let ncols = 1 + kinds.len() + PEERS.iter().filter(|p| kinds.contains(p)).count();
        let _ = writeln!(w, "|{}", "---|".repeat(ncols));
        for row in rows(cfg, run) {
            let _ = write!(w, "| {} |", row.name);
            for &k in &kinds {
                let _ = write!(w, " {} |", row.text(k));
            }
            for p in PEERS {
                if kinds.contains(&p) {
                    let _ = write!(w, " {} |", ratio(row.value(Kind::Ours), row.value(p)));
                }
            }
            let _ = writeln!(w);
        }
        let _ = writeln!(w);
        if let Some(rtt) = run.rtt(Kind::Ours) {
            let _ = write!(w, "Round trips per server: {}; max: ", rtt.count);
            let maxes: Vec<String> = kinds
                .iter()
                .filter_map(|&k| Some(format!("{} {}", k.name(), us(run.rtt(k)?.max_us))))
                .collect();
            let _ = writeln!(w, "{}.", maxes.join(", "));
            if let Some(a) = run.appends(Kind::Ours) {
                let _ = writeln!(
                    w,
                    "Appends retained by axum-longpoll over the measured rounds: {}.",
                    a.appended
                );
            }
            let _ = writeln!(w);
        }
        for note in &run.notes {
            let _ = writeln!(w, "- {note}");
        }
        if !run.notes.is_empty() {
            let _ = writeln!(w);
        }
    }

    let _ = writeln!(w, "### How the Durable Streams figures are measured\n");
    let _ = writeln!(
        w,
        "- Every stream is `application/json`; every append is one {len}-byte JSON \
         object (`POST`, one message) holding a marker string once. Every server's \
         long-poll wait is {lp} s, so no poll of a figure times out.\n\
         - **SSE fan-out**: N subscribers `GET ?offset=now&live=sse` on one stream, each on \
         its own connection, each counted as subscribed once its first `control` event \
         is read. Then {reps} measured appends (after one warm-up), the servers taking \
         turns; the figure is the time from the append sent until the last subscriber has \
         read the `data` event with the marker (de-chunked, one clock), median (min–max).\n\
         - **Long-poll fan-out**: N connections each `GET ?offset=<tail>&live=long-poll`; \
         the server's CPU is let settle (parked), then one append; the figure is until the \
         last of the N answers is read. The polls are re-armed at the new tail after each \
         append.\n\
         - **Round trip**: one connection sends a long-poll at the tail and, 2 ms later, \
         another appends; the figure is from the append sent to the long-poll's answer \
         read. {rtt} round trips per server in blocks of {block}, servers taking turns, \
         after 20 warm-up ones.\n\
         - **Appends/s**: {conns} keep-alive connections append back to back (no pipelining) \
         to one fresh stream for {round:.1} s; median of {rounds} rounds, servers taking \
         turns. **RSS growth per append**: `VmRSS` after the last round minus before \
         the first, over the appends of those rounds (all retained).\n\
         - **RSS per subscriber / parked poll**: `VmRSS` of the server process with the N \
         SSE responses open (or N polls parked) minus before, over N, read once the \
         server's CPU has settled; it includes hyper's (or Node's) per-connection buffers. \
         The SSE figure at {max_n} has as many connections open on the client as the \
         open-file limit allows at once: servers that do not fit run in a second group.",
        len = cfg.append_len,
        lp = LONG_POLL.as_secs(),
        reps = cfg.fanout_reps,
        rtt = cfg.rtt,
        block = cfg.rtt_block,
        conns = cfg.append_conns,
        round = cfg.append_round.as_secs_f64(),
        rounds = cfg.append_rounds,
        max_n = cfg.sse.iter().max().copied().unwrap_or(0),
    );
    let _ = writeln!(w);
    md
}

/// Where the line `heading` starts in `text` (a whole line, not a
/// deeper heading that ends the same way).
fn line_at(text: &str, heading: &str) -> Option<usize> {
    if text.starts_with(heading) {
        return Some(0);
    }
    text.find(&format!("\n{heading}")).map(|i| i + 1)
}

/// `existing` with `section` in place of its "## Durable Streams peers"
/// section, or inserted before "## How it is measured" (else at the end).
pub(crate) fn splice(existing: &str, section: &str) -> String {
    const HEADING: &str = "## Durable Streams peers\n";
    let section = format!("{}\n\n", section.trim_end());
    if let Some(start) = line_at(existing, HEADING) {
        let after = start + HEADING.len();
        let end = existing[after..]
            .find("\n## ")
            .map_or(existing.len(), |i| after + i + 1);
        return format!("{}{section}{}", &existing[..start], &existing[end..]);
    }
    for anchor in ["## How it is measured\n", "## Where the targets are missed"] {
        if let Some(at) = line_at(existing, anchor) {
            return format!("{}{section}{}", &existing[..at], &existing[at..]);
        }
    }
    if existing.is_empty() {
        return section;
    }
    format!("{}\n\n{section}", existing.trim_end())
}
