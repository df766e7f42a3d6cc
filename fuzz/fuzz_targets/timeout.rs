//! Timeout parsing, through the public extractor: `LongPoll` behind
//! `DisconnectLayer` in a router, called with `tower::ServiceExt::oneshot`
//! (the parser itself is private). `?timeout=` is checked against the
//! grammar written out again; `Prefer: wait=` against the invariants.
//!
//! Input: byte 0 picks the configuration (bit 0: default, or `max_timeout`
//! of `Duration::MAX`, "no cap"), where the value goes (bit 1: query or
//! `Prefer`) and its shape (bits 2-3): the rest as is; the rest as decimal
//! digits and dots; that after `wait=`; that quoted after another
//! preference. The shapes put most inputs near the grammar.
//!
//! `FUZZ_TIMEOUT_NO_CAP=0` leaves the "no cap" configuration out (to fuzz
//! past the known overflow panic of that configuration, pinned by
//! `tests/extremes.rs`).

#![no_main]

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use axum_longpoll::{DisconnectLayer, LongPoll, LongPollConfig};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const DEFAULT: Duration = Duration::from_secs(30);

/// ASCII digits, optionally `.` and one or more digits. Whole seconds
/// beyond a u64 saturate to `Duration::MAX`; fraction digits past the
/// ninth are dropped.
fn oracle(s: &str) -> Option<Duration> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let Some(secs) = whole.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    }) else {
        return frac
            .map_or(true, |f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Duration::MAX);
    };
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(9)
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')),
        Some(_) => return None,
    };
    Some(Duration::new(secs, nanos))
}

async fn handler(lp: LongPoll) -> String {
    lp.wait_duration().as_nanos().to_string()
}

fn router(max: Duration) -> Router {
    let config = LongPollConfig::new()
        .jitter(false)
        .default_timeout(DEFAULT)
        .max_timeout(max);
    Router::new()
        .route("/poll", get(handler))
        .layer(DisconnectLayer::new().config(config))
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    static APPS: [Router; 2] = [router(Duration::from_secs(120)), router(Duration::MAX)];
}

/// Each byte as a decimal digit, or (one in 16) a dot.
fn digits(rest: &[u8]) -> Vec<u8> {
    rest.iter()
        .map(|&b| if b >= 240 { b'.' } else { b'0' + b % 10 })
        .collect()
}

fn shape(kind: u8, rest: &[u8]) -> Vec<u8> {
    match kind & 3 {
        0 => rest.to_vec(),
        1 => digits(rest),
        2 => [b"wait=".as_slice(), &digits(rest)].concat(),
        _ => [b"respond-async, wait=\"".as_slice(), &digits(rest), b"\""].concat(),
    }
}

fn no_cap_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("FUZZ_TIMEOUT_NO_CAP").as_deref() != Ok("0"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = &shape(mode >> 2, rest)[..];
    let no_cap = mode & 1 == 1 && no_cap_enabled();
    let max = if no_cap {
        Duration::MAX
    } else {
        Duration::from_secs(120)
    };
    let query = mode & 2 == 0;
    let mut req = http::Request::builder();
    if query {
        let encoded: String = form_urlencoded::byte_serialize(value).collect();
        req = req.uri(format!("/poll?timeout={encoded}"));
    } else {
        let Ok(v) = http::HeaderValue::from_bytes(value) else {
            return; // hyper would have refused it
        };
        req = req.uri("/poll").header("prefer", v);
    }
    let req = req.body(Body::empty()).unwrap();
    let (status, body) = RT.with(|rt| {
        rt.block_on(async {
            let app = APPS.with(|apps| apps[usize::from(no_cap)].clone());
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        })
    });
    let text = String::from_utf8_lossy(value);
    match status.as_u16() {
        200 => {
            let nanos: u128 = body.parse().unwrap();
            assert!(nanos <= max.as_nanos(), "{text:?}: waits {nanos} ns");
            if query {
                let want = oracle(&text).expect("accepted a value outside the grammar");
                assert_eq!(nanos, want.min(max).as_nanos(), "{text:?}");
            } else if !text.to_ascii_lowercase().contains("wait") {
                assert_eq!(nanos, DEFAULT.min(max).as_nanos(), "{text:?}");
            }
        }
        400 => {
            if query {
                assert_eq!(oracle(&text), None, "{text:?} refused: {body}");
                assert!(body.contains("`timeout`"), "{text:?}: {body}");
            } else {
                assert!(body.contains("`Prefer: wait`"), "{text:?}: {body}");
            }
            assert!(body.len() < 1024, "a {} byte message", body.len());
        }
        other => panic!("{text:?}: status {other}: {body}"),
    }
});
