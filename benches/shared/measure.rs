//! What both benches read of a server process and of a set of samples:
//! `/proc` figures by pid, percentiles, medians, and the `LISTEN <addr>`
//! line a server child prints when it is ready.

#![allow(dead_code)]

use std::io::{self, BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::Child;

/// User + system CPU time of process `pid`, in clock ticks (0 if gone).
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces): state is 3rd.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in bytes.
pub(crate) fn status_bytes(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Resident set size of process `pid`, in bytes.
pub(crate) fn rss(pid: u32) -> io::Result<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The value at quantile `q` of `sorted` (nearest rank); NaN when empty.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Reads the `LISTEN <addr>` line a server child prints on its piped
/// stdout once it accepts connections.
pub(crate) fn listen_line(child: &mut Child, what: &str) -> io::Result<SocketAddr> {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("LISTEN ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{what} server said {line:?}")))
}

/// The load average now (the first three fields of `/proc/loadavg`).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which phases run: all when the environment variable `var` is unset or
/// empty, else those it names (comma-separated).
pub(crate) fn phases(var: &str) -> impl Fn(&str) -> bool {
    let only = std::env::var(var).unwrap_or_default();
    move |phase| only.is_empty() || only.split(',').any(|p| p == phase)
}
