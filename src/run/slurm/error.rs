//! Errors of the SLURM launcher: a value that cannot be written into a batch script, a bad
//! `PERF_SLURM_*` knob, or a trial that cannot be planned (with the planner's error as its
//! source).

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
    #[error("{trial}: {source}")]
    Plan {
        /// The trial.
        trial: String,
        /// Why.
        source: crate::plan::prepare::TrialError,
    },
    /// The disaggregated config of a ctx_only trial is invalid.
    #[error("{trial}: {source}")]
    Config {
        /// The trial.
        trial: String,
        /// Why.
        source: crate::config::ConfigError,
    },
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
