//! Errors of the SLURM launcher: a value that cannot be written into a batch script, a bad
//! `PERF_SLURM_*` knob, or a trial that cannot be planned.

/// Why a batch script cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlurmError {
    /// A config or environment value cannot go into the script (control character, NUL, …).
    #[error("{source_name}: {message}")]
    BadValue {
        /// Where the value came from (`slurm.partition in <file>`, `PERF_SLURM_ACCOUNT`, …).
        source_name: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The trial cannot be planned (bad config, missing dataset, …).
    #[error("{0}")]
    Plan(String),
    /// Anything else (I/O while preparing files).
    #[error("{0}")]
    Io(String),
}

impl SlurmError {
    /// A bad value from `source_name`.
    pub fn bad_value(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        SlurmError::BadValue {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}
