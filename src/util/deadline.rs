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

/// Longest duration accepted from a seconds knob given as a decimal number (one day): poll
/// periods and network timeouts beyond it are typos.
pub const MAX_KNOB_SECONDS: f64 = 86_400.0;

/// A positive, finite number of seconds up to [`MAX_KNOB_SECONDS`] as a duration; `None`
/// otherwise (`Duration::from_secs_f64` would panic past about 1.8e19 s).
pub fn knob_seconds(value: f64) -> Option<Duration> {
    if value > 0.0 && value <= MAX_KNOB_SECONDS {
        Duration::try_from_secs_f64(value).ok()
    } else {
        None
    }
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
        assert_eq!(knob_seconds(2.5), Some(Duration::from_millis(2500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e30, 86_400.5] {
            assert_eq!(knob_seconds(bad), None, "{bad}");
        }
    }
}
