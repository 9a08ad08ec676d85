//! The submitter's side of SIGINT / SIGTERM (the handler itself is the edge's,
//! `crate::app::slurm_cmd`): a flag that holds the signal asking to cancel the jobs. The
//! submitter polls it between `sbatch` calls and status polls; when it is set, it cancels every
//! open job, reports how each ended, and returns [`super::submit::SubmitOutcome::Interrupted`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The signal that asked the submitter to cancel its jobs, if one did. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelRequest(Arc<AtomicUsize>);

impl CancelRequest {
    /// No signal yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cell a signal handler sets to the signal's number
    /// (`signal_hook::flag::register_usize`).
    pub fn cell(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.0)
    }

    /// Asks for cancellation as signal `sig` would.
    pub fn request(&self, sig: i32) {
        self.0.store(sig as usize, Ordering::SeqCst);
    }

    /// The signal that asked for cancellation, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }
}
