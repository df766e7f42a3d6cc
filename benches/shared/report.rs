//! What both benches' reports write the same way: the machine's facts, a
//! target's result in one run, and the targets table with a verdict per
//! target over the runs.

#![allow(dead_code)]

use std::fmt::{Display, Write as _};
use std::process::Command;

/// The trimmed stdout of `cmd args`, or `n/a`.
pub(crate) fn command(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "n/a".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

/// What every report says of the machine.
pub(crate) struct Host {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) date: String,
}

impl Host {
    pub(crate) fn collect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or("n/a", |v| v.trim_start_matches([' ', '\t', ':']))
            .to_owned();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            rustc: command(
                &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()),
                &["--version"],
            ),
            date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }
}

/// One target's result in one run.
pub(crate) struct Check {
    pub(crate) text: String,
    /// `None`: not measured in that run.
    pub(crate) met: Option<bool>,
}

/// Over the runs: met in all, in none, or in some.
pub(crate) fn verdict(met: &[Option<bool>]) -> String {
    let known: Vec<bool> = met.iter().filter_map(|m| *m).collect();
    let yes = known.iter().filter(|m| **m).count();
    match (yes, known.len()) {
        (_, 0) => "n/a".to_owned(),
        (y, n) if y == n => format!("**met** ({y}/{n} runs)"),
        (0, n) => format!("**missed** (0/{n} runs)"),
        (y, n) => format!("**mixed** (met in {y}/{n} runs)"),
    }
}

/// The targets table: a row per target (`(target, goal, check)` of each
/// run, the rows of every run in the same order), a column per run, and
/// the verdict.
pub(crate) fn targets_table<G: Display>(w: &mut String, per_run: &[Vec<(String, G, Check)>]) {
    let _ = write!(w, "| target | goal |");
    for i in 0..per_run.len() {
        let _ = write!(w, " run {} |", i + 1);
    }
    let _ = writeln!(w, " verdict |");
    let _ = writeln!(w, "|---|---|{}---|", "---|".repeat(per_run.len()));
    let Some(first) = per_run.first() else {
        return;
    };
    for (row, (name, goal, _)) in first.iter().enumerate() {
        let _ = write!(w, "| {name} | {goal} |");
        let mut mets = Vec::new();
        for run in per_run {
            match run.get(row) {
                Some((_, _, c)) => {
                    let mark = match c.met {
                        Some(true) => "✔ ",
                        Some(false) => "✘ ",
                        None => "",
                    };
                    let _ = write!(w, " {mark}{} |", c.text);
                    mets.push(c.met);
                }
                None => {
                    let _ = write!(w, " n/a |");
                }
            }
        }
        let _ = writeln!(w, " {} |", verdict(&mets));
    }
}
