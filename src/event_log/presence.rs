//! Who is on a log right now (readers and waiters) and when it was last
//! used: what idle eviction and the per-stream figures read. Kept small:
//! it is part of every stream, idle ones included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::time::Instant;

/// One unit of the `counts` word: readers count in the high half, waiters
/// in the low.
const READER: u64 = 1 << 32;
const WAITER: u64 = 1;

pub(crate) use crate::deadline::{instant, millis};

/// Told when a log that belongs to a collection has become idle (its last
/// reader or waiter left), so that the collection can plan its eviction.
pub(crate) trait Janitor: Send + Sync {
    fn idle(&self, name: &Arc<str>);
    /// The log at `log` (its `Inner`) is gone from its backend: removes it
    /// from the collection if it is still the one under `name`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn forget(&self, name: &Arc<str>, log: *const ());
}

/// The collection a log belongs to, as its members reach it: one per
/// collection, shared by all of its streams (a thin pointer each, where a
/// `Weak<dyn Janitor>` would be two words per stream).
pub(crate) type JanitorLink = Arc<Weak<dyn Janitor>>;

/// What a stream was created with ([`super::StreamOptions::attribute`]):
/// most have none, so it costs a stream one word.
pub(crate) type Attributes = Option<Box<Vec<(Box<str>, Box<str>)>>>;

/// A log's place in a collection. Part of every stream, idle ones included:
/// kept to six words.
pub(crate) struct Member {
    pub(crate) name: Arc<str>,
    pub(crate) janitor: JanitorLink,
    pub(crate) expiry: super::streams::Expiry,
    pub(crate) attributes: Attributes,
}

/// [`Attributes`] of `list`: nothing allocated for none.
pub(crate) fn attributes(list: Vec<(Box<str>, Box<str>)>) -> Attributes {
    (!list.is_empty()).then(|| Box::new(list))
}

impl Member {
    /// What it was created with, in order.
    pub(crate) fn attributes(&self) -> &[(Box<str>, Box<str>)] {
        self.attributes.as_deref().map_or(&[][..], Vec::as_slice)
    }
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
            .attributes()
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

#[cfg(test)]
mod tests {
    /// Every stream is one `Arc<Inner>`, idle ones included: at most 200
    /// bytes keep it (with the `Arc`'s two counts) in glibc's 224-byte
    /// chunks; 8 bytes more and each stream costs 16 more. Exact, not a
    /// timing; `tests/streams_memory.rs` measures the whole stream.
    #[test]
    fn a_stream_stays_in_its_allocation_class() {
        use std::mem::size_of;
        let inner = size_of::<crate::event_log::log::Inner<u64, crate::event_log::Memory>>();
        assert!(
            inner <= 200,
            "Inner is {inner} bytes (state {}, presence {}, member {})",
            size_of::<std::sync::RwLock<crate::event_log::state::State<u64>>>(),
            size_of::<super::Presence>(),
            size_of::<super::Member>(),
        );
    }
}
