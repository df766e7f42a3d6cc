//! The `streams` phase: memory per idle named stream (the approach of
//! `tests/streams_memory.rs`, at bench sizes). Each figure is measured in a
//! child process of its own (`longpoll streams-mem KIND N`), which reads
//! its `VmRSS`, makes N streams and reads it again: RSS, so it includes the
//! allocator's own overhead, unlike the test's exact heap count.
//!
//! Beside the crate's three cases (an empty stream, created by a read; a
//! stream holding one small event, a `u64`; a stream with one reader, a
//! subscription open on it, held in a `Vec`), a baseline in the same pass:
//! a `HashMap<String, ()>` of the same names, the least any server keeps
//! per named stream.

use std::collections::HashMap;
use std::io::{self, BufRead as _, BufReader};
use std::process::{Command, Stdio};

use axum_longpoll::{EventLog, Streams};

use crate::report::StreamsMem;
use crate::{log, Config};

/// The cases, as the child's argument.
const KINDS: [&str; 4] = ["baseline", "empty", "event", "reader"];

fn name(i: usize) -> String {
    format!("room-{i:07}")
}

fn rss() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/self/status"))
}

/// The child: makes `n` streams of `kind`, prints `BYTES <RSS growth>`.
pub(crate) fn child(kind: &str, n: usize) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let rooms: Streams<u64> = EventLog::builder()
            .capacity(1024)
            .streams()
            .max_streams(n)
            .build();
        let before = rss()?;
        let mut baseline: HashMap<String, ()> = HashMap::new();
        let mut readers = Vec::new();
        for i in 0..n {
            if kind == "baseline" {
                baseline.insert(name(i), ());
                continue;
            }
            let log = rooms
                .get_or_create(&name(i))
                .await
                .map_err(io::Error::other)?;
            match kind {
                "event" => {
                    log.publish(i as u64).await.map_err(io::Error::other)?;
                }
                "reader" => readers.push(log.subscribe(log.head())),
                _ => {}
            }
        }
        let after = rss()?;
        println!("BYTES {}", after.saturating_sub(before));
        drop((baseline, readers, rooms));
        Ok(())
    })
}

/// Bytes per stream of one case, from its child process.
fn measure(kind: &str, n: usize) -> io::Result<f64> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("streams-mem")
        .arg(kind)
        .arg(n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    child.wait()?;
    let bytes: f64 = line
        .trim()
        .strip_prefix("BYTES ")
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| io::Error::other(format!("streams-mem {kind} said {line:?}")))?;
    Ok(bytes / n as f64)
}

/// Every size, the baseline and the crate's cases side by side.
pub(crate) fn phase(cfg: &Config) -> io::Result<Vec<StreamsMem>> {
    let mut out = Vec::new();
    for &n in &cfg.streams_mem {
        let mut figures = [0.0; KINDS.len()];
        for (slot, kind) in figures.iter_mut().zip(KINDS) {
            *slot = measure(kind, n)?;
        }
        let [baseline, empty, one_event, one_reader] = figures;
        log(&format!(
            "{n} idle streams, RSS per stream: HashMap<String, ()> {baseline:.0} B, empty \
             {empty:.0} B, one event {one_event:.0} B, one reader {one_reader:.0} B"
        ));
        out.push(StreamsMem {
            n,
            baseline,
            empty,
            one_event,
            one_reader,
        });
    }
    Ok(out)
}
