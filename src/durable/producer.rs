//! Idempotent producers: `Producer-Id`, `Producer-Epoch`, `Producer-Seq`.
//! A producer numbers its appends; a retry is acknowledged without being
//! appended twice, a gap or a stale epoch is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;

use super::protocol::{PRODUCER_EPOCH, PRODUCER_ID, PRODUCER_SEQ};

/// The largest epoch or sequence: what a JavaScript number holds exactly.
const MAX_NUMBER: u64 = (1 << 53) - 1;

/// A producer's headers on one append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) id: String,
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
}

impl Producer {
    /// The producer headers: all three, or none (`Ok(None)`).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, String> {
        let get = |name| {
            headers
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap_or("\u{fffd}"))
        };
        let (id, epoch, seq) = (get(PRODUCER_ID), get(PRODUCER_EPOCH), get(PRODUCER_SEQ));
        let (id, epoch, seq) = match (id, epoch, seq) {
            (None, None, None) => return Ok(None),
            (Some(id), Some(epoch), Some(seq)) => (id, epoch, seq),
            _ => {
                return Err(
                    "`Producer-Id`, `Producer-Epoch` and `Producer-Seq` go together: \
                            allowed all three or none"
                        .to_owned(),
                )
            }
        };
        if id.is_empty() {
            return Err("invalid `Producer-Id`: empty; allowed: a non-empty string".to_owned());
        }
        let number = |name: &str, value: &str| {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| value.bytes().all(|b| b.is_ascii_digit()) && *n <= MAX_NUMBER)
                .ok_or_else(|| {
                    format!(
                        "invalid `{name}`: {:?}; allowed: a whole number from 0 to {MAX_NUMBER}",
                        crate::params::echo(value)
                    )
                })
        };
        Ok(Some(Self {
            id: id.to_owned(),
            epoch: number("Producer-Epoch", epoch)?,
            seq: number("Producer-Seq", seq)?,
        }))
    }
}

/// What the producer state says of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it (then [`Producers::accept`]).
    Append,
    /// Already appended (a retry): acknowledge, append nothing.
    Duplicate { last: u64 },
    /// An epoch older than the producer's (`403`).
    StaleEpoch { current: u64 },
    /// A new epoch must start at sequence 0 (`400`).
    EpochNotAtZero,
    /// A sequence was skipped (`409`).
    Gap { expected: u64, received: u64 },
}

/// The producers of one stream (one life of it).
#[derive(Debug, Default)]
pub(crate) struct Producers {
    /// Producer → (epoch, last sequence accepted).
    state: HashMap<String, (u64, u64)>,
    /// The producer append that closed the stream, if one did.
    pub(crate) closed_by: Option<Producer>,
}

impl Producers {
    pub(crate) fn judge(&self, p: &Producer) -> Verdict {
        match self.state.get(&p.id) {
            None if p.seq == 0 => Verdict::Append,
            None => Verdict::Gap {
                expected: 0,
                received: p.seq,
            },
            Some(&(epoch, _)) if p.epoch < epoch => Verdict::StaleEpoch { current: epoch },
            Some(&(epoch, _)) if p.epoch > epoch => {
                if p.seq == 0 {
                    Verdict::Append
                } else {
                    Verdict::EpochNotAtZero
                }
            }
            Some(&(_, last)) if p.seq <= last => Verdict::Duplicate { last },
            Some(&(_, last)) if p.seq == last + 1 => Verdict::Append,
            Some(&(_, last)) => Verdict::Gap {
                expected: last + 1,
                received: p.seq,
            },
        }
    }

    pub(crate) fn accept(&mut self, p: &Producer) {
        self.state.insert(p.id.clone(), (p.epoch, p.seq));
    }
}

/// Producer state per stream life, kept by this instance.
#[derive(Debug, Default)]
pub(crate) struct Table {
    lives: Mutex<HashMap<Arc<str>, Arc<Life>>>,
}

/// One life of a stream (its epoch), and the lock its appends take.
#[derive(Debug)]
pub(crate) struct Life {
    epoch: u64,
    pub(crate) producers: tokio::sync::Mutex<Producers>,
}

impl Table {
    /// The state of `name` in its life `epoch` (a new life forgets the
    /// old one's producers).
    pub(crate) fn life(&self, name: &str, epoch: u64, live: usize) -> Arc<Life> {
        let mut lives = self
            .lives
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(life) = lives.get(name).filter(|l| l.epoch == epoch) {
            return Arc::clone(life);
        }
        // Bound what deleted or expired streams left behind: when the table
        // is twice the streams that live, drop the lives nobody holds.
        if lives.len() > 2 * live.max(16) {
            lives.retain(|_, life| Arc::strong_count(life) > 1);
        }
        let life = Arc::new(Life {
            epoch,
            producers: tokio::sync::Mutex::default(),
        });
        lives.insert(Arc::from(name), Arc::clone(&life));
        life
    }

    pub(crate) fn forget(&self, name: &str) {
        self.lives
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(epoch: u64, seq: u64) -> Producer {
        Producer {
            id: "w".into(),
            epoch,
            seq,
        }
    }

    #[test]
    fn the_state_machine() {
        let mut s = Producers::default();
        assert_eq!(
            s.judge(&p(5, 1)),
            Verdict::Gap {
                expected: 0,
                received: 1
            }
        );
        assert_eq!(s.judge(&p(5, 0)), Verdict::Append);
        s.accept(&p(5, 0));
        assert_eq!(s.judge(&p(5, 0)), Verdict::Duplicate { last: 0 });
        assert_eq!(
            s.judge(&p(5, 2)),
            Verdict::Gap {
                expected: 1,
                received: 2
            }
        );
        assert_eq!(s.judge(&p(5, 1)), Verdict::Append);
        s.accept(&p(5, 1));
        assert_eq!(s.judge(&p(4, 2)), Verdict::StaleEpoch { current: 5 });
        assert_eq!(s.judge(&p(6, 3)), Verdict::EpochNotAtZero);
        assert_eq!(s.judge(&p(6, 0)), Verdict::Append);
    }
}
