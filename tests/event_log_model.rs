//! Property test of `EventLog` against a model: random interleavings of
//! publish, poll, poll dropped midway, parked polls woken by a publish,
//! reconnects with the last cursor, and eviction. Every simulated client must
//! see every event exactly once and in order, or a `410` (evicted) exactly
//! when its cursor was evicted.
#![allow(clippy::unwrap_used)]

mod common;

use common::PublishNow as _;
use std::future::Future;
use std::task::{Context, Poll};

use axum_longpoll::event_log::{Cursor, EventLog, GoneReason};
use futures_util::task::noop_waker_ref;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Publish(u8),
    Poll(usize),
    /// Start a wait, poll it once, drop it (a client that left mid-poll).
    PollDropped(usize),
    /// Park a wait, publish, check it wakes with the new event.
    ParkThenPublish(usize),
    /// Reconnect: the client's cursor goes through its string form.
    Reconnect(usize),
}

const CLIENTS: usize = 4;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..4).prop_map(Op::Publish),
        3 => (0..CLIENTS).prop_map(Op::Poll),
        2 => (0..CLIENTS).prop_map(Op::PollDropped),
        1 => (0..CLIENTS).prop_map(Op::ParkThenPublish),
        1 => (0..CLIENTS).prop_map(Op::Reconnect),
    ]
}

struct Client {
    cursor: Cursor,
    /// Positions received, in order.
    seen: Vec<u64>,
    /// Positions skipped over by a 410 (evicted), as (from, to) exclusive.
    gaps: Vec<(u64, u64)>,
}

struct Model {
    log: EventLog<u64>,
    capacity: u64,
    /// Number of events published; event n has position n and data n * 7.
    published: u64,
}

impl Model {
    fn first_retained(&self) -> u64 {
        self.published.saturating_sub(self.capacity) + 1
    }

    fn publish(&mut self) {
        self.published += 1;
        let c = self.log.publish_now(self.published * 7);
        assert_eq!(c.position(), self.published);
    }

    /// The model's answer to "read after `cursor`": the positions it must
    /// return, or None when the cursor is evicted.
    fn expect(&self, cursor: Cursor, max_batch: u64) -> Option<Vec<u64>> {
        if cursor.position() + 1 < self.first_retained() {
            return None;
        }
        Some(
            (cursor.position() + 1..=self.published)
                .take(max_batch as usize)
                .collect(),
        )
    }

    fn poll(&self, client: &mut Client, max_batch: u64) {
        match (
            self.log.read(client.cursor),
            self.expect(client.cursor, max_batch),
        ) {
            (Ok(batch), Some(expected)) => {
                let got: Vec<u64> = batch.events.iter().map(|e| e.cursor.position()).collect();
                assert_eq!(got, expected, "events after {}", client.cursor);
                for e in &batch.events {
                    assert_eq!(e.data, e.cursor.position() * 7);
                }
                client.seen.extend(got);
                client.cursor = batch.cursor;
            }
            (Err(gone), None) => {
                assert_eq!(gone.reason(), GoneReason::Evicted);
                assert_eq!(gone.restart().position(), self.first_retained() - 1);
                client
                    .gaps
                    .push((client.cursor.position(), gone.restart().position() + 1));
                client.cursor = gone.restart();
            }
            (got, expected) => panic!(
                "read after {}: got {got:?}, model {expected:?}",
                client.cursor
            ),
        }
    }
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(noop_waker_ref()))
}

fn run(capacity: u64, max_batch: u64, ops: Vec<Op>) {
    let log = EventLog::builder()
        .capacity(capacity as usize)
        .max_batch(max_batch as usize)
        .build();
    let start = log.oldest();
    let mut model = Model {
        log,
        capacity,
        published: 0,
    };
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|_| Client {
            cursor: start,
            seen: Vec::new(),
            gaps: Vec::new(),
        })
        .collect();

    for op in ops {
        match op {
            Op::Publish(n) => (0..n).for_each(|_| model.publish()),
            Op::Poll(i) => model.poll(&mut clients[i], max_batch),
            Op::PollDropped(i) => {
                let before = model.log.len();
                let log = model.log.clone();
                let mut wait = Box::pin(log.wait(clients[i].cursor));
                let _ = poll_once(wait.as_mut());
                // dropped here: nothing consumed, the client keeps its cursor
                drop(wait);
                assert_eq!(model.log.len(), before);
            }
            Op::ParkThenPublish(i) => {
                let caught_up = model.published == clients[i].cursor.position();
                let log = model.log.clone();
                let mut wait = Box::pin(log.wait(clients[i].cursor));
                if caught_up {
                    assert!(poll_once(wait.as_mut()).is_pending(), "nothing to read yet");
                }
                model.publish();
                match poll_once(wait.as_mut()) {
                    Poll::Ready(Ok(batch)) => {
                        let expected = model.expect(clients[i].cursor, max_batch);
                        let got: Vec<u64> =
                            batch.events.iter().map(|e| e.cursor.position()).collect();
                        assert_eq!(Some(got.clone()), expected);
                        clients[i].seen.extend(got);
                        clients[i].cursor = batch.cursor;
                    }
                    Poll::Ready(Err(gone)) => {
                        assert!(model.expect(clients[i].cursor, max_batch).is_none());
                        let from = clients[i].cursor.position();
                        clients[i].gaps.push((from, gone.restart().position() + 1));
                        clients[i].cursor = gone.restart();
                    }
                    Poll::Pending => panic!("a publish must wake a parked reader"),
                }
            }
            Op::Reconnect(i) => {
                let text = clients[i].cursor.to_string();
                clients[i].cursor = text.parse().unwrap();
            }
        }
    }

    // Drain: every client catches up.
    for client in &mut clients {
        while client.cursor.position() < model.published {
            model.poll(client, max_batch);
        }
        // Exactly once, in order: the seen positions plus the evicted gaps
        // are 1..=published with no repeat.
        let mut expected_next = 1;
        let mut gaps = client.gaps.iter().peekable();
        for &p in &client.seen {
            while let Some(&&(from, to)) = gaps.peek() {
                if from + 1 == expected_next && p >= to {
                    expected_next = to;
                    gaps.next();
                } else {
                    break;
                }
            }
            assert_eq!(
                p, expected_next,
                "client saw {:?}, gaps {:?}",
                client.seen, client.gaps
            );
            expected_next += 1;
        }
        for &(from, to) in gaps {
            assert_eq!(from + 1, expected_next);
            expected_next = to;
        }
        assert_eq!(expected_next, model.published + 1);
        // A gap only ever covers evicted events.
        for &(from, to) in &client.gaps {
            assert!(to > from + 1, "a 410 without missed events: {from}..{to}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_client_sees_each_event_once_in_order_or_410(
        capacity in 1u64..8,
        max_batch in 1u64..5,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        run(capacity, max_batch, ops);
    }
}

#[test]
fn publish_wakes_all_parked_readers_once() {
    let log = EventLog::<u64>::new(16);
    let head = log.head();
    let mut waits: Vec<_> = (0..100).map(|_| Box::pin(log.wait(head))).collect();
    for w in &mut waits {
        assert!(poll_once(w.as_mut()).is_pending());
    }
    log.publish_now(1);
    for w in &mut waits {
        match poll_once(w.as_mut()) {
            Poll::Ready(Ok(batch)) => assert_eq!(batch.events.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn age_retention_evicts_old_events() {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let log = EventLog::builder()
                .capacity(100)
                .max_age(std::time::Duration::from_secs(10))
                .build::<u64>();
            let start = log.oldest();
            log.publish_now(1);
            tokio::time::advance(std::time::Duration::from_secs(6)).await;
            log.publish_now(2);
            assert_eq!(log.len(), 2);
            tokio::time::advance(std::time::Duration::from_secs(6)).await;
            // Event 1 is 12 s old: gone, although nothing was published.
            assert_eq!(log.len(), 1);
            let gone = log.read(start).unwrap_err();
            assert_eq!(gone.reason(), GoneReason::Evicted);
            let batch = log.read(gone.restart()).unwrap();
            assert_eq!(batch.events.len(), 1);
            assert_eq!(batch.events[0].data, 2);
        });
}
