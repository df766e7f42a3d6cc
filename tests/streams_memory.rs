#![allow(clippy::unwrap_used)]
//! What an idle named stream costs: 100,000 of them, created in one
//! `Streams` collection, counted by the allocator (`stats_alloc`: the heap
//! bytes still allocated, exact, not RSS). The figures are printed for the
//! benchmark report (`--nocapture`); the test fails only past a generous
//! bound, so a regression of several times shows, never a timing.
//!
//! Three figures: an empty stream (created by a read, nothing published),
//! a stream holding one small event, and a stream with one reader (a
//! subscription open on it).

use std::alloc::System;

use axum_longpoll::{EventLog, Streams};
use futures_util::FutureExt;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const STREAMS: usize = 100_000;

/// Bytes still allocated per stream after `fill` made `STREAMS` of them.
fn per_stream<R>(fill: impl FnOnce(&Streams<u64>) -> R) -> (f64, R) {
    let rooms: Streams<u64> = EventLog::builder()
        .capacity(1024)
        .streams()
        .max_streams(STREAMS)
        .build();
    let region = Region::new(GLOBAL);
    let kept = fill(&rooms);
    let change = region.change();
    let net = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    assert_eq!(rooms.len(), STREAMS);
    (net / STREAMS as f64, kept)
}

fn name(i: usize) -> String {
    format!("room-{i:06}")
}

#[tokio::test]
async fn an_idle_stream_is_cheap() {
    let (empty, ()) = per_stream(|rooms| {
        for i in 0..STREAMS {
            rooms
                .get_or_create(&name(i))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
    });
    let (one_event, ()) = per_stream(|rooms| {
        for i in 0..STREAMS {
            let log = rooms
                .get_or_create(&name(i))
                .now_or_never()
                .unwrap()
                .unwrap();
            log.publish(i as u64).now_or_never().unwrap().unwrap();
        }
    });
    let (one_reader, subscriptions) = per_stream(|rooms| {
        (0..STREAMS)
            .map(|i| {
                let log = rooms
                    .get_or_create(&name(i))
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                log.subscribe(log.head())
            })
            .collect::<Vec<_>>()
    });
    drop(subscriptions);
    eprintln!(
        "heap per idle stream over {STREAMS}: empty {empty:.0} B, one event {one_event:.0} B, \
         one reader {one_reader:.0} B"
    );
    // Generous bounds: several times the measured figures (see the
    // benchmark report), so that only a real regression fails.
    assert!(empty < 1024.0, "{empty} B per empty stream");
    assert!(
        one_event < 1536.0,
        "{one_event} B per stream with one event"
    );
    assert!(
        one_reader < 2048.0,
        "{one_reader} B per stream with a reader"
    );
}
