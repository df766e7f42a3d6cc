#![allow(clippy::unwrap_used)]
//! A property test of `Streams` against a model: random sequences of
//! create-on-publish, publish, read with any cursor ever seen (of this
//! stream, an earlier one of the same name, or another stream), close,
//! delete and the passing of time (idle eviction), on tokio's paused clock.
//! Every read must match the model exactly: the events, the next cursor,
//! "closed", or the reason a cursor is gone.

use std::collections::HashMap;
use std::time::Duration;

use axum_longpoll::event_log::{GoneReason, PublishError, Streams};
use axum_longpoll::{Cursor, EventLog};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["a", "b", "c"];
const CAPACITY: usize = 4;
const IDLE: Duration = Duration::from_secs(5);
/// Smaller than the capacity: a read need not reach the end.
const BATCH: usize = 2;

#[derive(Clone, Debug)]
enum Op {
    Publish(usize),
    Close(usize, bool),
    Delete(usize),
    /// Read stream `name` after remembered cursor number `which` (modulo
    /// how many there are), or from the oldest when there is none.
    Read(usize, usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NAMES.len()).prop_map(Op::Publish),
        1 => (0..NAMES.len(), any::<bool>()).prop_map(|(n, last)| Op::Close(n, last)),
        1 => (0..NAMES.len()).prop_map(Op::Delete),
        4 => (0..NAMES.len(), any::<usize>()).prop_map(|(n, w)| Op::Read(n, w)),
        2 => (1..8u64).prop_map(Op::Advance),
    ]
}

/// One life of a name: the epoch the real log chose, what was published.
#[derive(Debug)]
struct Life {
    epoch: u64,
    events: Vec<u64>,
    closed: bool,
    /// Paused-clock time of the last use.
    touched: tokio::time::Instant,
}

impl Life {
    fn floor(&self) -> u64 {
        self.events.len().saturating_sub(CAPACITY) as u64
    }
}

struct World {
    rooms: Streams<u64>,
    lives: HashMap<&'static str, Life>,
    seen: Vec<Cursor>,
    next_value: u64,
}

impl World {
    /// `get_or_create` on both sides; returns the real log.
    async fn open(&mut self, name: &'static str) -> EventLog<u64> {
        let log = self.rooms.get_or_create(name).await.unwrap();
        let now = tokio::time::Instant::now();
        let life = self.lives.entry(name).or_insert_with(|| Life {
            epoch: log.epoch(),
            events: Vec::new(),
            closed: false,
            touched: now,
        });
        assert_eq!(
            life.epoch,
            log.epoch(),
            "{name}: a new stream where the model has one"
        );
        life.touched = now;
        log
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Publish(n) => {
                let name = NAMES[n];
                let log = self.open(name).await;
                self.next_value += 1;
                let value = self.next_value;
                let result = log.publish(value).await;
                let life = self.lives.get_mut(name).unwrap();
                if life.closed {
                    assert!(
                        matches!(result, Err(PublishError::Closed { .. })),
                        "{result:?}"
                    );
                } else {
                    life.events.push(value);
                    let cursor = result.unwrap();
                    assert_eq!(cursor.position(), life.events.len() as u64);
                    self.seen.push(cursor);
                }
            }
            Op::Close(n, with_last) => {
                let name = NAMES[n];
                let log = self.open(name).await;
                self.next_value += 1;
                let last = with_last.then_some(self.next_value);
                let result = log.close(last).await;
                let life = self.lives.get_mut(name).unwrap();
                match (life.closed, last) {
                    (true, Some(_)) => {
                        assert!(matches!(result, Err(PublishError::Closed { .. })));
                    }
                    (closed, last) => {
                        if !closed {
                            life.events.extend(last);
                        }
                        life.closed = true;
                        assert_eq!(result.unwrap().position(), life.events.len() as u64);
                    }
                }
                assert!(log.is_closed());
            }
            Op::Delete(n) => {
                let name = NAMES[n];
                let deleted = self.rooms.delete(name).await.unwrap();
                assert_eq!(deleted, self.lives.remove(name).is_some());
            }
            Op::Read(n, which) => {
                let name = NAMES[n];
                let log = self.open(name).await;
                let cursor = if self.seen.is_empty() {
                    log.oldest()
                } else {
                    self.seen[which % self.seen.len()]
                };
                let life = &self.lives[name];
                let got = log.read(cursor);
                if cursor.epoch() != life.epoch {
                    assert_eq!(
                        got.unwrap_err().reason(),
                        GoneReason::Epoch,
                        "{cursor} on {name}"
                    );
                } else if cursor.position() < life.floor() {
                    assert_eq!(got.unwrap_err().reason(), GoneReason::Evicted);
                } else {
                    let batch = got.unwrap();
                    let from = usize::try_from(cursor.position()).unwrap();
                    let to = (from + BATCH).min(life.events.len());
                    let want: Vec<u64> = life.events[from..to].to_vec();
                    let values: Vec<u64> = batch.events.iter().map(|e| e.data).collect();
                    assert_eq!(values, want, "{name} after {cursor}");
                    assert_eq!(batch.cursor.position(), to as u64);
                    // "Closed" only for a read that reached the end.
                    assert_eq!(batch.closed, life.closed && to == life.events.len());
                    self.seen.push(batch.cursor);
                }
            }
            Op::Advance(secs) => {
                tokio::time::advance(Duration::from_secs(secs)).await;
                // Let the janitor do what came due.
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                let now = tokio::time::Instant::now();
                self.lives
                    .retain(|_, life| now.duration_since(life.touched) < IDLE);
                for name in NAMES {
                    assert_eq!(
                        self.rooms.figures(name).is_some(),
                        self.lives.contains_key(name),
                        "{name} after {secs} s"
                    );
                }
            }
        }
        assert_eq!(self.rooms.len(), self.lives.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn streams_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut world = World {
                rooms: EventLog::builder()
                    .capacity(CAPACITY)
                    .max_batch(BATCH)
                    .streams()
                    .idle(Some(IDLE))
                    .build(),
                lives: HashMap::new(),
                seen: Vec::new(),
                next_value: 0,
            };
            for op in &ops {
                world.apply(op).await;
            }
        });
    }
}
