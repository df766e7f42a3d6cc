//! Cursor parsing: `Cursor::from_str` against the grammar written out
//! again, the `Display` round trip, and the `Resume` extractor (header
//! `Last-Event-ID`, `?cursor=`, `?last_event_id=`, `?from=`) with the log's
//! check of the cursor it yields.
//!
//! Input: byte 0 picks where the value goes (bits 0-1) and its shape (bits
//! 2-3): the rest as is; after this log's epoch and `-`; after a `-` with
//! the first 8 bytes as a hex epoch before it; or the rest twice joined by
//! `-`. The shapes put most inputs near the grammar, so the fuzzer spends
//! its time on the position and the edges rather than on finding `-`.

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::extract::FromRequestParts;
use axum_longpoll::event_log::{Cursor, EventLog, GoneReason, Resume, StartFrom};
use libfuzzer_sys::fuzz_target;

/// 16 lowercase hex digits, `-`, 1 to 20 decimal digits that fit a `u64`.
fn oracle(s: &str) -> Option<(u64, u64)> {
    let b = s.as_bytes();
    if b.len() < 18 || b[16] != b'-' {
        return None;
    }
    let mut epoch = 0u64;
    for &c in &b[..16] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        epoch = (epoch << 4) | u64::from(d);
    }
    let digits = &b[17..];
    if digits.len() > 20 {
        return None;
    }
    let mut position = 0u64;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        position = position.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some((epoch, position))
}

/// Polls a future that must be ready at once (the extractor never waits).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the extractor waited"),
    }
}

fn encode(value: &[u8]) -> String {
    form_urlencoded::byte_serialize(value).collect()
}

fn shape(kind: u8, rest: &[u8]) -> Vec<u8> {
    match kind & 3 {
        0 => rest.to_vec(),
        1 => [b"0000000000000000-".as_slice(), rest].concat(),
        2 => {
            let (epoch, position) = rest.split_at(rest.len().min(8));
            let mut out: Vec<u8> = epoch
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect();
            out.push(b'-');
            out.extend_from_slice(position);
            out
        }
        _ => [rest, b"-".as_slice(), rest].concat(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = &shape(mode >> 2, rest)[..];
    let text = String::from_utf8_lossy(value);

    // 1. The parser against the grammar, and the round trip.
    let parsed = text.parse::<Cursor>();
    assert_eq!(
        parsed.as_ref().ok().map(|c| (c.epoch(), c.position())),
        oracle(&text),
        "{text:?}"
    );
    if let Ok(c) = parsed {
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c), "{text:?}");
        assert_eq!(oracle(&c.to_string()), Some((c.epoch(), c.position())));
    }

    // 2. The extractor.
    let mut req = http::Request::builder();
    let (uri, param) = match mode % 4 {
        0 => ("/poll".to_owned(), "Last-Event-ID"),
        1 => (format!("/poll?cursor={}", encode(value)), "cursor"),
        2 => (
            format!("/poll?x=1&last_event_id={}", encode(value)),
            "last_event_id",
        ),
        _ => (format!("/poll?from={}", encode(value)), "from"),
    };
    let header = if mode % 4 == 0 {
        match http::HeaderValue::from_bytes(value) {
            Ok(v) => Some(v),
            Err(_) => return, // hyper would have refused it
        }
    } else {
        None
    };
    if let Some(v) = &header {
        req = req.header("last-event-id", v);
    }
    let (mut parts, ()) = req.uri(uri).body(()).unwrap().into_parts();
    let result = now(<Resume as FromRequestParts<()>>::from_request_parts(
        &mut parts,
        &(),
    ));

    // What the value means, by the documented rules.
    let expected: Result<Option<(u64, u64)>, ()> = match param {
        "Last-Event-ID" => match header.as_ref().unwrap().to_str() {
            Err(_) => Err(()),
            Ok("") => Ok(None), // empty: absent
            Ok(v) => oracle(v).map(Some).ok_or(()),
        },
        "from" => {
            if text == "now" || text == "oldest" {
                Ok(None)
            } else {
                Err(())
            }
        }
        _ => oracle(&text).map(Some).ok_or(()),
    };
    match (&result, expected) {
        (Ok(resume), Ok(cursor)) => {
            assert_eq!(
                resume.cursor().map(|c| (c.epoch(), c.position())),
                cursor,
                "{param} {text:?}"
            );
            if param == "from" {
                let want = if text == "now" {
                    StartFrom::Now
                } else {
                    StartFrom::Oldest
                };
                assert_eq!(resume.start_from(), Some(want));
            }
        }
        (Err(rejection), Err(())) => {
            assert_eq!(rejection.status(), http::StatusCode::BAD_REQUEST);
            let msg = rejection.body_text();
            assert!(
                msg.contains(&format!("`{param}`")),
                "{param} {text:?}: {msg}"
            );
            assert!(msg.contains("allowed"), "{param} {text:?}: {msg}");
            assert!(msg.len() < 1024, "{param}: a {} byte message", msg.len());
        }
        (got, want) => panic!("{param} {text:?}: got {got:?}, expected {want:?}"),
    }

    // 3. The log's check of the cursor: epoch 0, events 1..=3 with
    // capacity 2 (so position 0 is evicted, 1 to 3 are served).
    if let Ok(resume) = result {
        let log = EventLog::builder().capacity(2).epoch(0).build::<u8>();
        for i in 0..3 {
            // A memory publish completes on its first poll.
            let publish = std::pin::pin!(log.publish(i));
            let waker = std::task::Waker::noop();
            let ready = publish.poll(&mut std::task::Context::from_waker(waker));
            assert!(matches!(ready, std::task::Poll::Ready(Ok(_))));
        }
        let start = resume.start(&log);
        match resume.cursor() {
            None => assert!(start.is_ok()),
            Some(c) => {
                let want = if c.epoch() != 0 {
                    Err(GoneReason::Epoch)
                } else if c.position() > 3 {
                    Err(GoneReason::Ahead)
                } else if c.position() < 1 {
                    Err(GoneReason::Evicted)
                } else {
                    Ok(c)
                };
                assert_eq!(start.map_err(|g| g.reason()), want, "{c}");
                if let Err(gone) = log.check(c) {
                    // The restart cursor is always servable.
                    assert!(log.check(gone.restart()).is_ok(), "{c}");
                    assert!(log.read(gone.restart()).is_ok(), "{c}");
                }
            }
        }
    }
});
