//! Typed progress events of a running trial (as nextest's runner hands events to its reporter):
//! the runner says what happened, the edge decides how to show it (`app::progress_reporter`).
//! Nothing here formats or prints.

use std::time::Duration;

/// One step of a trial.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// Plan files written; processes are about to start.
    FilesWritten {
        /// The trial.
        trial: String,
        /// Its output folder.
        output_dir: String,
    },
    /// One worker reported its address.
    WorkerUp {
        /// The trial.
        trial: String,
        /// Its role (`CTX_0`, `GEN_1`, …).
        role: String,
        /// `host:port`.
        address: String,
    },
    /// Every worker reported its address.
    WorkersUp {
        /// The trial.
        trial: String,
        /// How many workers.
        workers: usize,
    },
    /// The router answers `/health`.
    RouterReady {
        /// The trial.
        trial: String,
        /// `host:port`.
        address: String,
    },
    /// A benchmark client started.
    ClientStarted {
        /// The trial.
        trial: String,
        /// 1-based position.
        position: usize,
        /// Number of clients.
        of: usize,
        /// Client name.
        name: String,
        /// Requests done by the clients before it.
        requests_done: u64,
        /// Requests of all clients.
        requests_total: u64,
        /// Time left, estimated from the clients so far (none before the first finished).
        eta: Option<Duration>,
    },
    /// A benchmark client finished.
    ClientFinished {
        /// The trial.
        trial: String,
        /// 1-based position.
        position: usize,
        /// Number of clients.
        of: usize,
        /// Requests done so far, this client included.
        requests_done: u64,
        /// Requests of all clients.
        requests_total: u64,
        /// How long it ran.
        took: Duration,
    },
    /// A long wait goes on (every `PERF_PROGRESS_S`).
    StillWaiting {
        /// The trial.
        trial: String,
        /// What the runner waits for (`client 0 was running`, …).
        phase: String,
        /// How long this wait has lasted.
        waited: Duration,
        /// The trial's time limit in seconds and where it came from.
        limit_s: u64,
        /// Where the limit came from.
        limit_source: String,
        /// Time left before the limit.
        left: Duration,
    },
    /// Something the user should know that fails nothing (shown whatever the progress mode).
    Warning {
        /// The trial.
        trial: String,
        /// What happened.
        message: String,
    },
}

/// Receives progress events. Implementations must be cheap: events come from the runner's
/// thread between its own steps.
pub trait ProgressSink: Sync {
    /// One event.
    fn event(&self, event: ProgressEvent);
}

/// Discards every event.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}

/// Collects events (tests).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<ProgressEvent>>);

impl ProgressSink for Collect {
    fn event(&self, event: ProgressEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// Time left for `remaining` clients when `done` clients took `spent` in all.
pub fn eta(spent: Duration, done: usize, remaining: usize) -> Option<Duration> {
    (done > 0).then(|| spent / done as u32 * remaining as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_from_the_clients_so_far() {
        assert_eq!(eta(Duration::from_secs(10), 0, 3), None);
        assert_eq!(
            eta(Duration::from_secs(10), 2, 3),
            Some(Duration::from_secs(15))
        );
    }
}
