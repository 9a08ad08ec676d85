//! Deadlines from durations a user chose. `Instant + Duration` panics ("overflow when adding
//! duration to instant") for durations near `u64::MAX` seconds; [`deadline_after`] gives no
//! deadline instead — a limit too far away to reach is the same as no limit. Config and
//! environment limits are also capped where they are read (docs/LIMITS.md); this is the
//! arithmetic's own guard.

use std::time::{Duration, Instant};

/// `from + limit`, or `None` when that instant cannot be represented.
pub fn deadline_after(from: Instant, limit: Duration) -> Option<Instant> {
    from.checked_add(limit)
}

/// True once `deadline` (if any) has passed.
pub fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_limits_mean_no_deadline() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::MAX), None);
        assert_eq!(deadline_after(now, Duration::from_secs(u64::MAX)), None);
        assert!(!passed(deadline_after(now, Duration::MAX)));
        assert!(passed(deadline_after(now, Duration::ZERO)));
        assert!(!passed(deadline_after(now, Duration::from_secs(3600))));
    }
}
