//! Deadlines from configured durations, which may be "unlimited".

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
