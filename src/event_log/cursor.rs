use std::fmt;
use std::str::FromStr;

/// A position in an [`EventLog`](super::EventLog): "the client has seen
/// everything up to here".
///
/// Clients treat it as an opaque string. It is written as
/// `<epoch>-<position>`: the epoch (16 lowercase hex digits, chosen at random
/// when the log is created) tells a cursor of another log (another stream,
/// an earlier run, another server) from one of this log; the position
/// counts events from 1, written with 20 digits, zero-padded, so that the
/// cursors of one log sort as strings in the order of their positions (as
/// HTTP stream protocols compare offsets). Position 0 is "before the first
/// event". An unpadded position is read too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    pub(crate) epoch: u64,
    pub(crate) position: u64,
}

impl Cursor {
    /// The epoch of the log that issued this cursor.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The position of the last event seen (0: none).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// The written length of a cursor: 16 hex digits, `-`, 20 digits.
const LEN: usize = 16 + 1 + MAX_POSITION_DIGITS;

impl Cursor {
    /// The cursor's text, written digit by digit into a fixed buffer (it is
    /// written into every event a client gets: no formatter machinery).
    pub(crate) fn text(&self) -> [u8; LEN] {
        let mut out = [b'0'; LEN];
        let mut epoch = self.epoch;
        for slot in out[..16].iter_mut().rev() {
            *slot = b"0123456789abcdef"[(epoch & 0xf) as usize];
            epoch >>= 4;
        }
        out[16] = b'-';
        let mut position = self.position;
        for slot in out[17..].iter_mut().rev() {
            *slot = b'0' + (position % 10) as u8;
            position /= 10;
        }
        out
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        // Only ASCII digits, hex letters and `-` were written.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// A string that is not a cursor at all (wrong shape). A well-formed cursor
/// that this log cannot serve is a [`CursorGone`](super::CursorGone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MalformedCursor;

impl fmt::Display for MalformedCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not a cursor; a cursor is the `id` or `cursor` value of an earlier answer \
             (16 hex digits, `-`, a decimal position of up to 20 digits)",
        )
    }
}

impl std::error::Error for MalformedCursor {}

/// Longest decimal `u64`.
const MAX_POSITION_DIGITS: usize = 20;

impl FromStr for Cursor {
    type Err = MalformedCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, position) = s.split_once('-').ok_or(MalformedCursor)?;
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if epoch.len() != 16 || !epoch.bytes().all(hex) {
            return Err(MalformedCursor);
        }
        if position.is_empty()
            || position.len() > MAX_POSITION_DIGITS
            || !position.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MalformedCursor);
        }
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| MalformedCursor)?,
            position: position.parse().map_err(|_| MalformedCursor)?,
        })
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.text();
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Cursor {
            epoch: 0x00ab_cdef_0123_4567,
            position: 42,
        };
        assert_eq!(c.to_string(), "00abcdef01234567-00000000000000000042");
        assert_eq!(
            "00abcdef01234567-00000000000000000042".parse::<Cursor>(),
            Ok(c)
        );
        // Unpadded (as cursors were written before) reads the same.
        assert_eq!("00abcdef01234567-42".parse::<Cursor>(), Ok(c));
        let max = Cursor {
            epoch: u64::MAX,
            position: u64::MAX,
        };
        assert_eq!(max.to_string().parse::<Cursor>(), Ok(max));
    }

    #[test]
    fn sort_as_strings_in_position_order() {
        let at = |position| Cursor { epoch: 7, position }.to_string();
        let positions = [0, 1, 9, 10, 99, 100, 12_345, u64::MAX / 3, u64::MAX];
        for pair in positions.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "-",
            "00abcdef01234567",
            "00abcdef01234567-",
            "00ABCDEF01234567-1",
            "0abcdef01234567-1",
            "00abcdef01234567-+1",
            "00abcdef01234567--1",
            "00abcdef01234567-1-2",
            "00abcdef01234567-18446744073709551616",
            "00abcdef01234567-1 ",
            "garbage",
            "00abcdef0123456٣-1",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(MalformedCursor), "{bad:?}");
        }
    }
}
