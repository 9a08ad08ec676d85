//! The one way a test waits for something: poll a probe until it yields a value or the deadline
//! passes. Never a fixed sleep standing in for readiness.

use std::time::{Duration, Instant};

/// How often a probe is asked again.
const POLL: Duration = Duration::from_millis(10);

/// Asks `probe` every 10 ms until it returns `Some`, or `timeout` has passed (then `None`, after
/// one last try). A probe may panic to end the wait early (for example when the process it
/// watches has exited).
pub fn wait_until<T>(timeout: Duration, probe: impl FnMut() -> Option<T>) -> Option<T> {
    poll_until(timeout, POLL, probe)
}

/// [`wait_until`] with a slower poll, for probes that are themselves costly (a `sacct` query).
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return probe();
        }
        std::thread::sleep(every);
    }
}
