//! Errors of the SLURM launcher: a value that cannot be written into a batch script, a bad
//! `PERF_SLURM_*` knob, or a trial that cannot be planned (with the planner's error as its
//! source) ([`SlurmError`]); a trial that could not be submitted ([`SubmitError`]); a Slurm
//! command that could not be run or said no ([`SlurmCommandError`]).

use std::path::PathBuf;

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

/// Why a trial was not submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Its script could not be generated.
    #[error(transparent)]
    Script(#[from] SlurmError),
    /// Its folder or script file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `sbatch` could not be started.
    #[error("cannot run sbatch: {source} (is Slurm installed and on PATH?)")]
    SbatchNotRun {
        /// What the OS said.
        source: std::io::Error,
    },
    /// `sbatch` refused the script.
    #[error("sbatch {} failed ({status}): {output}", path.display())]
    SbatchFailed {
        /// The script.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// `sbatch` printed no job id.
    #[error("sbatch printed no job id: {output:?}")]
    NoJobId {
        /// What it printed.
        output: String,
    },
}

/// A Slurm command that could not be run or said no.
#[derive(Debug, thiserror::Error)]
pub enum SlurmCommandError {
    /// The program could not be started (not installed, not on `PATH`).
    #[error("cannot run {program}: {source}")]
    NotRun {
        /// `scancel`, `sacct`, …
        program: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("{command}: {output}")]
    Failed {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
}
