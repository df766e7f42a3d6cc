//! Deadlines from configured durations, which may be "unlimited", and
//! instants kept as one `u64` of milliseconds.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Where a deadline too far to represent is placed: about 30 years ahead,
/// which no process outlives and every platform's clock can hold.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// `from + wait`, saturating at 30 years ahead: a configuration such as
/// `max_lifetime(Duration::MAX)` means "never", not a panic.
pub(crate) fn after(from: Instant, wait: Duration) -> Instant {
    from + wait.min(FAR)
}

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
        after(now, std::time::Duration::from_millis(ms - now_ms))
    } else {
        now.checked_sub(std::time::Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert_eq!(after(now, Duration::MAX), now + FAR);
    }
}
