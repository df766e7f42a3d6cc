//! Who is on a log right now (readers and waiters) and when it was last
//! used: what idle eviction and the per-stream figures read. Kept small:
//! it is part of every stream, idle ones included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use tokio::time::Instant;

/// One unit of the `counts` word: readers count in the high half, waiters
/// in the low.
const READER: u64 = 1 << 32;
const WAITER: u64 = 1;

/// The milliseconds of `at` since a base taken once per process (saturating
/// at 0 for an instant before it). One `u64` per timestamp instead of an
/// `Instant`.
pub(crate) fn millis(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

/// The instant `ms` milliseconds after the base of [`millis`].
pub(crate) fn instant(ms: u64) -> Instant {
    let now = Instant::now();
    let now_ms = millis(now);
    if ms >= now_ms {
        crate::deadline::after(now, std::time::Duration::from_millis(ms - now_ms))
    } else {
        now.checked_sub(std::time::Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

/// Told when a log that belongs to a collection has become idle (its last
/// reader or waiter left), so that the collection can plan its eviction.
pub(crate) trait Janitor: Send + Sync {
    fn idle(&self, name: &Arc<str>);
    /// The log at `log` (its `Inner`) is gone from its backend: removes it
    /// from the collection if it is still the one under `name`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn forget(&self, name: &Arc<str>, log: *const ());
}

/// A log's place in a collection.
pub(crate) struct Member {
    pub(crate) name: Arc<str>,
    pub(crate) janitor: Weak<dyn Janitor>,
    pub(crate) expiry: super::streams::Expiry,
    /// What it was created with ([`super::StreamOptions::attribute`]).
    pub(crate) attributes: Box<[(Box<str>, Box<str>)]>,
}

/// Readers and waiters now, and when the log was last touched.
pub(crate) struct Presence {
    counts: AtomicU64,
    /// [`millis`] of the last publish, read request, or reader leaving.
    touched: AtomicU64,
    member: Option<Member>,
}

/// Which count a mark is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An open stream or WebSocket reading the log.
    Reader,
    /// A long-poll parked on the log.
    Waiter,
}

impl Kind {
    fn unit(self) -> u64 {
        match self {
            Self::Reader => READER,
            Self::Waiter => WAITER,
        }
    }
}

impl Presence {
    pub(crate) fn new(member: Option<Member>) -> Self {
        Self {
            counts: AtomicU64::new(0),
            touched: AtomicU64::new(millis(Instant::now())),
            member,
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn member(&self) -> Option<&Member> {
        self.member.as_ref()
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.member.as_ref().map(|m| &m.name)
    }

    pub(crate) fn expiry(&self) -> Option<&super::streams::Expiry> {
        self.member.as_ref().map(|m| &m.expiry)
    }

    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        let member = self.member.as_ref()?;
        member
            .attributes
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// Readers and waiters now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let counts = self.counts.load(Ordering::Acquire);
        let half = |n: u64| usize::try_from(n & 0xffff_ffff).unwrap_or(usize::MAX);
        (half(counts >> 32), half(counts))
    }

    /// Whether nobody reads or waits.
    pub(crate) fn is_vacant(&self) -> bool {
        self.counts.load(Ordering::Acquire) == 0
    }

    pub(crate) fn touched(&self) -> u64 {
        self.touched.load(Ordering::Acquire)
    }

    /// A publish or a read request: the log is in use now.
    pub(crate) fn touch(&self) {
        self.touched
            .fetch_max(millis(Instant::now()), Ordering::AcqRel);
    }

    pub(crate) fn enter(&self, kind: Kind) {
        self.counts.fetch_add(kind.unit(), Ordering::AcqRel);
    }

    pub(crate) fn leave(&self, kind: Kind) {
        let before = self.counts.fetch_sub(kind.unit(), Ordering::AcqRel);
        if before == kind.unit() {
            // The last one left: idle from now on.
            self.touch();
            if let Some(member) = &self.member {
                if let Some(janitor) = member.janitor.upgrade() {
                    janitor.idle(&member.name);
                }
            }
        }
    }
}
