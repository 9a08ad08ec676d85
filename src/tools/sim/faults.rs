//! Fault injection at run time: the counters behind `sim.faults.<ROLE>`.
//!
//! `exit_at_start` and `never_ready` are read where the process starts and answers `/health`;
//! `stall_after_tokens` lives in the engine; this module counts requests for `http_500_every`
//! and `exit_after_requests`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::FaultConfig;
use super::log;

/// Exit code of a simulated crash (`exit_after_requests`).
pub const CRASH_EXIT_CODE: i32 = 1;

/// Per-process fault state.
#[derive(Debug, Default)]
pub struct Faults {
    config: FaultConfig,
    received: AtomicU64,
    finished: AtomicU64,
}

impl Faults {
    /// Wraps the role's fault config.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// `/health` must never say ready.
    pub fn never_ready(&self) -> bool {
        self.config.never_ready
    }

    /// Counts an incoming completion request; true when it must be answered with HTTP 500.
    pub fn take_http_500(&self) -> bool {
        let n = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        self.config
            .http_500_every
            .is_some_and(|every| n.is_multiple_of(every))
    }

    /// Counts a finished request; the n-th one (per `exit_after_requests`) makes the process
    /// exit shortly after, long enough for the last bytes to leave the socket.
    pub fn request_finished(&self) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.exit_after_requests == Some(n) {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                log::error(&format!(
                    "[sim] fault injection: exit_after_requests={n} reached; exiting with code \
                     {CRASH_EXIT_CODE}"
                ));
                std::process::exit(CRASH_EXIT_CODE);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_fails() {
        let f = Faults::new(FaultConfig {
            http_500_every: Some(3),
            ..Default::default()
        });
        let hits: Vec<bool> = (0..6).map(|_| f.take_http_500()).collect();
        assert_eq!(hits, vec![false, false, true, false, false, true]);
        let none = Faults::new(FaultConfig::default());
        assert!(!(0..10).any(|_| none.take_http_500()));
    }
}
