//! Stream entry IDs and the cursor positions they map to.

use std::fmt;

/// Bits of a position that hold the ID's sequence number.
const SEQ_BITS: u32 = 20;
/// Largest sequence number a position can hold.
const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;
/// Largest millisecond time a position can hold (the year 2527).
const MAX_MS: u64 = (1 << (64 - SEQ_BITS)) - 1;

/// A Redis stream entry ID, `<ms>-<seq>`; ordered as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Id {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl Id {
    /// `0-0`: before every entry.
    pub(crate) const ZERO: Self = Self { ms: 0, seq: 0 };

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The cursor position of this entry: `ms << 20 | seq`, so positions
    /// order as IDs do.
    ///
    /// # Errors
    ///
    /// The ID is beyond what a position holds (a sequence number of 2^20 or
    /// more within one millisecond, or a time after the year 2527): the
    /// largest position that stands for no later entry, to mark a gap at.
    pub(crate) fn position(self) -> Result<u64, u64> {
        if self.ms > MAX_MS {
            Err(u64::MAX)
        } else if self.seq > MAX_SEQ {
            Err(self.ms << SEQ_BITS | MAX_SEQ)
        } else {
            Ok(self.ms << SEQ_BITS | self.seq)
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_as_ids_do() {
        let ids = [
            Id { ms: 0, seq: 1 },
            Id {
                ms: 0,
                seq: MAX_SEQ,
            },
            Id { ms: 1, seq: 0 },
            Id {
                ms: 1_795_292_581_994,
                seq: 0,
            },
            Id {
                ms: 1_795_292_581_994,
                seq: 7,
            },
            Id { ms: MAX_MS, seq: 0 },
            Id {
                ms: MAX_MS,
                seq: MAX_SEQ,
            },
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].position().unwrap() < pair[1].position().unwrap());
        }
        assert_eq!(Id::parse("1795292581994-7"), Some(ids[4]));
        assert_eq!(ids[4].to_string(), "1795292581994-7");
        assert_eq!(Id::ZERO.position(), Ok(0));
    }

    #[test]
    fn ids_beyond_positions_mark_a_gap_no_later_entry_can_hide_behind() {
        let over = Id {
            ms: 5,
            seq: MAX_SEQ + 1,
        };
        let gap = over.position().unwrap_err();
        assert_eq!(
            gap,
            Id {
                ms: 5,
                seq: MAX_SEQ
            }
            .position()
            .unwrap()
        );
        assert!(gap < Id { ms: 6, seq: 0 }.position().unwrap());
        assert_eq!(
            Id {
                ms: MAX_MS + 1,
                seq: 0
            }
            .position(),
            Err(u64::MAX)
        );
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "1-18446744073709551616",
        ] {
            assert_eq!(Id::parse(bad), None, "{bad:?}");
        }
    }
}
