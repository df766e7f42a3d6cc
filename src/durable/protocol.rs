//! The protocol's vocabulary: headers, media types and the three modes of
//! a stream's bytes, offsets, the CDN cursor, TTL and expiry values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderName;

use crate::event_log::Cursor;

pub(crate) const STREAM_NEXT_OFFSET: HeaderName = HeaderName::from_static("stream-next-offset");
pub(crate) const STREAM_UP_TO_DATE: HeaderName = HeaderName::from_static("stream-up-to-date");
pub(crate) const STREAM_CURSOR: HeaderName = HeaderName::from_static("stream-cursor");
pub(crate) const STREAM_TTL: HeaderName = HeaderName::from_static("stream-ttl");
pub(crate) const STREAM_EXPIRES_AT: HeaderName = HeaderName::from_static("stream-expires-at");
pub(crate) const STREAM_SEQ: HeaderName = HeaderName::from_static("stream-seq");
pub(crate) const STREAM_SSE_DATA_ENCODING: HeaderName =
    HeaderName::from_static("stream-sse-data-encoding");
pub(crate) const STREAM_FORKED_FROM: HeaderName = HeaderName::from_static("stream-forked-from");
pub(crate) const PRODUCER_ID: HeaderName = HeaderName::from_static("producer-id");
pub(crate) const PRODUCER_EPOCH: HeaderName = HeaderName::from_static("producer-epoch");
pub(crate) const PRODUCER_SEQ: HeaderName = HeaderName::from_static("producer-seq");
pub(crate) const PRODUCER_EXPECTED_SEQ: HeaderName =
    HeaderName::from_static("producer-expected-seq");
pub(crate) const PRODUCER_RECEIVED_SEQ: HeaderName =
    HeaderName::from_static("producer-received-seq");

/// The stream attribute that keeps the content type as it was created.
pub(crate) const ATTR_CONTENT_TYPE: &str = "durable.content-type";
/// The TTL as the client gave it (echoed by `HEAD`).
pub(crate) const ATTR_TTL: &str = "durable.ttl";
/// The expiry as the client gave it (echoed by `HEAD`).
pub(crate) const ATTR_EXPIRES_AT: &str = "durable.expires-at";

pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// How a stream's bytes are framed on reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Media {
    /// `application/json`: each append is one or more JSON values; reads
    /// are one JSON array.
    Json,
    /// `text/*`: bytes, text in SSE.
    Text,
    /// Anything else: bytes, base64 in SSE.
    Binary,
}

/// The media type without parameters, lower-cased: what appends are
/// compared with.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl Media {
    pub(crate) fn of(content_type: &str) -> Self {
        let essence = essence(content_type);
        if essence == "application/json" {
            Self::Json
        } else if essence.starts_with("text/") {
            Self::Text
        } else {
            Self::Binary
        }
    }

    /// The body of a read of `chunks` (each a stored append).
    pub(crate) fn body<'a>(self, chunks: impl Iterator<Item = &'a Bytes>) -> Bytes {
        let mut out = BytesMut::new();
        if self == Self::Json {
            out.put_u8(b'[');
            let mut first = true;
            for chunk in chunks.filter(|c| !c.is_empty()) {
                if !first {
                    out.put_u8(b',');
                }
                first = false;
                out.put_slice(chunk);
            }
            out.put_u8(b']');
        } else {
            for chunk in chunks {
                out.put_slice(chunk);
            }
        }
        out.freeze()
    }
}

/// What a JSON append stores: its messages as compact JSON, comma-joined
/// (an array is flattened one level). `None` for an empty array, which
/// an append refuses and a create accepts.
pub(crate) fn json_messages(body: &[u8]) -> Result<Option<Bytes>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let messages = match value {
        serde_json::Value::Array(items) if items.is_empty() => return Ok(None),
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    let mut out = Vec::with_capacity(body.len());
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, message).map_err(|e| e.to_string())?;
    }
    Ok(Some(Bytes::from(out)))
}

/// Where a read starts, from `?offset=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offset {
    /// `-1` (or no offset): the beginning.
    Start,
    /// `now`: the tail.
    Now,
    /// After this cursor.
    After(Cursor),
}

impl Offset {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "-1" => Some(Self::Start),
            "now" => Some(Self::Now),
            other => other.parse().ok().map(Self::After),
        }
    }
}

/// The protocol's cursor epoch, 2024-10-09T00:00:00Z, and its interval.
const CURSOR_EPOCH: u64 = 1_728_432_000;
const CURSOR_INTERVAL: u64 = 20;

/// `Stream-Cursor`: the current 20-second interval since the protocol's
/// epoch, or, when the client's cursor is not behind it, more than the
/// client's (by a random 1 to 180 intervals): so that a CDN collapsing
/// requests by URL never serves a client the answer it already had.
pub(crate) fn next_cursor(client: Option<&str>) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let interval = now.saturating_sub(CURSOR_EPOCH) / CURSOR_INTERVAL;
    match client.and_then(|c| c.parse::<u64>().ok()) {
        Some(client) if client >= interval => {
            let jitter = fastrand::u64(1..=3600);
            client.saturating_add(jitter.div_ceil(CURSOR_INTERVAL).max(1))
        }
        _ => interval,
    }
}

/// `Stream-TTL`: a whole number of seconds, `0` or without leading zeros.
pub(crate) fn parse_ttl(value: &str) -> Option<Duration> {
    let canonical = value == "0"
        || (!value.is_empty()
            && !value.starts_with('0')
            && value.bytes().all(|b| b.is_ascii_digit()));
    if !canonical {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// `Stream-Expires-At`: an RFC 3339 date-time (`2026-12-01T10:00:00Z`,
/// `…+01:00`, fractions of a second allowed).
pub(crate) fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let s = value.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let mut rest = &value[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let nine: String = fraction[..digits]
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        nanos = nine.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(&zone[..1], "+" | "-") && &zone[3..4] == ":" => {
            let h: i64 = zone[1..3].parse().ok()?;
            let m: i64 = zone[4..6].parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days since 1970-01-01 (Howard Hinnant's civil-from-days inverse).
    let (y, m) = if month <= 2 {
        (year as i64 - 1, month + 9)
    } else {
        (year as i64, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m as i64 + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    let at = Duration::new(u64::try_from(secs).ok()?, nanos);
    UNIX_EPOCH.checked_add(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_grammar() {
        assert_eq!(parse_ttl("0"), Some(Duration::ZERO));
        assert_eq!(parse_ttl("3600"), Some(Duration::from_secs(3600)));
        for bad in ["", "abc", "-1", "00060", "+60", "60.5", "1e3", " 1"] {
            assert_eq!(parse_ttl(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339() {
        let at = |s| {
            parse_rfc3339(s).map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs_f64()
            })
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(at("2026-12-01T10:00:00Z"), Some(1_796_119_200.0));
        assert_eq!(at("2026-12-01T11:00:00+01:00"), Some(1_796_119_200.0));
        assert_eq!(at("2026-12-01T10:00:00.5Z"), Some(1_796_119_200.5));
        for bad in [
            "not-a-timestamp",
            "2026-12-01",
            "2026-13-01T00:00:00Z",
            "2026-12-01T10:00:00",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn json_flattening() {
        let m = |s: &str| {
            json_messages(s.as_bytes())
                .map(|b| b.map(|b| String::from_utf8(b.to_vec()).expect("JSON is UTF-8")))
        };
        assert_eq!(m(r#"{"a": 1}"#), Ok(Some(r#"{"a":1}"#.into())));
        assert_eq!(
            m(r#"[{"a":1}, {"b":2}]"#),
            Ok(Some(r#"{"a":1},{"b":2}"#.into()))
        );
        assert_eq!(m("[[1,2],[3,4]]"), Ok(Some("[1,2],[3,4]".into())));
        assert_eq!(m("[[[1,2,3]]]"), Ok(Some("[[1,2,3]]".into())));
        assert_eq!(m("[]"), Ok(None));
        assert!(m("{").is_err());
        let read = Media::Json.body([Bytes::from_static(b"1,2"), Bytes::from_static(b"3")].iter());
        assert_eq!(read, "[1,2,3]");
        assert_eq!(Media::Json.body([].iter()), "[]");
    }

    #[test]
    fn cursors_move_past_the_client() {
        let now = next_cursor(None);
        assert!(next_cursor(Some(&now.to_string())) > now);
        assert_eq!(next_cursor(Some("0")), now);
        assert_eq!(next_cursor(Some("garbage")), now);
    }

    #[test]
    fn media_types() {
        assert_eq!(Media::of("application/json; charset=utf-8"), Media::Json);
        assert_eq!(Media::of("APPLICATION/JSON"), Media::Json);
        assert_eq!(Media::of("text/plain"), Media::Text);
        assert_eq!(Media::of("application/x-protobuf"), Media::Binary);
        assert_eq!(essence("Text/Plain; charset=utf-8"), "text/plain");
    }
}
