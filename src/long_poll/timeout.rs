//! Parsing the client's requested wait: `?timeout=<seconds>` and RFC 7240
//! `Prefer: wait=<seconds>`.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName};

const PREFER: HeaderName = HeaderName::from_static("prefer");

use crate::params::query_param;

use super::rejection::{InvalidTimeout, LongPollRejection, TimeoutSource};

/// Parses a non-negative decimal number of seconds: ASCII digits with an
/// optional fraction (`"30"`, `"0.25"`). A well-formed value is never
/// refused for its size: one beyond `u64` seconds saturates (and is then
/// clamped to the maximum like any large value), and digits past the
/// nanosecond are dropped.
fn parse_seconds(value: &str) -> Option<Duration> {
    let (whole, frac) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let Ok(secs) = whole.parse::<u64>() else {
        return Some(Duration::MAX);
    };
    let nanos = match frac {
        None => 0,
        Some(f) => {
            // Scale "25" to 250_000_000; keep at most 9 digits.
            let nine: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            nine.parse::<u32>().ok()?
        }
    };
    Some(Duration::new(secs, nanos))
}

/// The `wait` preference from every `Prefer` header, if any.
fn prefer_wait(headers: &HeaderMap, max: Duration) -> Result<Option<String>, LongPollRejection> {
    let mut found = None;
    for header in headers.get_all(PREFER) {
        let text = header
            .to_str()
            .map_err(|_| invalid(TimeoutSource::Prefer, "<non-ASCII header value>", max))?;
        for pref in text.split(',') {
            // A preference may carry parameters after ';'; only the first
            // token=value pair is the preference itself.
            let pref = pref.split(';').next().unwrap_or_default().trim();
            let (name, value) = match pref.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (pref, None),
            };
            if !name.eq_ignore_ascii_case("wait") {
                continue;
            }
            if found.is_some() {
                return Err(LongPollRejection::RepeatedParameter {
                    name: "Prefer: wait",
                });
            }
            let value = value.unwrap_or_default();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            found = Some(value.to_owned());
        }
    }
    Ok(found)
}

fn invalid(source: TimeoutSource, value: &str, max: Duration) -> LongPollRejection {
    LongPollRejection::InvalidTimeout(InvalidTimeout::new(source, value, max))
}

/// The wait the client asked for, if it asked. `?timeout=` wins over
/// `Prefer: wait=`. `max` is only used for the error message.
pub(crate) fn requested(
    query: Option<&str>,
    headers: &HeaderMap,
    max: Duration,
) -> Result<Option<Duration>, LongPollRejection> {
    let (source, value) = match query_param(query, "timeout")
        .map_err(|r| LongPollRejection::RepeatedParameter { name: r.0 })?
    {
        Some(v) => (TimeoutSource::Query, v),
        None => match prefer_wait(headers, max)? {
            Some(v) => (TimeoutSource::Prefer, v),
            None => return Ok(None),
        },
    };
    match parse_seconds(&value) {
        Some(d) => Ok(Some(d)),
        None => Err(invalid(source, &value, max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const MAX: Duration = Duration::from_secs(120);

    fn q(query: &str) -> Result<Option<Duration>, LongPollRejection> {
        requested(Some(query), &HeaderMap::new(), MAX)
    }

    fn prefer(values: &[&str]) -> Result<Option<Duration>, LongPollRejection> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(PREFER, HeaderValue::from_str(v).expect("valid header"));
        }
        requested(None, &headers, MAX)
    }

    #[test]
    fn accepts_whole_and_fractional_seconds() {
        assert_eq!(q("timeout=30").ok(), Some(Some(Duration::from_secs(30))));
        assert_eq!(q("timeout=0").ok(), Some(Some(Duration::ZERO)));
        assert_eq!(
            q("timeout=0.25").ok(),
            Some(Some(Duration::from_millis(250)))
        );
        assert_eq!(q("other=1").ok(), Some(None));
        assert_eq!(q("").ok(), Some(None));
    }

    #[test]
    fn well_formed_values_are_never_refused_for_size() {
        // Saturates; `LongPoll` then clamps it to `max_timeout`.
        assert_eq!(
            q(&format!("timeout={}", "9".repeat(30))).ok(),
            Some(Some(Duration::MAX))
        );
        // Digits past the nanosecond are dropped.
        assert_eq!(
            q("timeout=1.0000000019").ok(),
            Some(Some(Duration::new(1, 1)))
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "timeout=",
            "timeout=-1",
            "timeout=NaN",
            "timeout=inf",
            "timeout=1e400",
            "timeout=abc",
            "timeout=1.",
            "timeout=.5",
            "timeout=+5",
            "timeout=%20 5",
            "timeout=%D9%A3",
        ] {
            let err = q(bad).expect_err(bad);
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(err.body_text().contains("`timeout`"), "{bad}: {err}");
        }
        let err = q("timeout=1&timeout=2").expect_err("repeated");
        assert!(err.body_text().contains("more than once"), "{err}");
    }

    #[test]
    fn reads_prefer_wait() {
        assert_eq!(
            prefer(&["wait=10"]).ok(),
            Some(Some(Duration::from_secs(10)))
        );
        assert_eq!(
            prefer(&["respond-async, wait=\"7\""]).ok(),
            Some(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            prefer(&["return=minimal", "WAIT = 3"]).ok(),
            Some(Some(Duration::from_secs(3)))
        );
        assert_eq!(prefer(&["respond-async"]).ok(), Some(None));
        for bad in [
            &["wait="][..],
            &["wait=-3"],
            &["wait=x"],
            &["wait=1", "wait=2"],
        ] {
            let err = prefer(bad).expect_err("bad prefer");
            assert!(err.body_text().contains("Prefer: wait"), "{err}");
        }
    }

    #[test]
    fn query_wins_over_prefer() {
        let mut headers = HeaderMap::new();
        headers.insert(PREFER, HeaderValue::from_static("wait=10"));
        assert_eq!(
            requested(Some("timeout=2"), &headers, MAX).ok(),
            Some(Some(Duration::from_secs(2)))
        );
    }
}
