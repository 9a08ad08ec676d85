//! Errors of the benchmark client, one variant per way a run can be refused or aborted.

use std::path::PathBuf;

/// Why `perfsanity bench` or `perfsanity dataset gen` stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag value is invalid.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag, e.g. `--random-range-ratio`.
        flag: String,
        /// What was wrong and what is expected.
        message: String,
    },
    /// A size or duration flag is beyond its bound.
    #[error("{flag}: {source}{note}")]
    FlagLimit {
        /// The flag, e.g. `--num-prompts`.
        flag: String,
        /// The bound that was exceeded.
        source: super::limits::LimitError,
        /// Said after the bound's message (a unit, or what 0 means).
        note: &'static str,
    },
    /// The tokenizer could not be loaded.
    #[error("tokenizer: {0}{hint}", hint = if matches!(.0, crate::util::tokenizer::TokenizerError::Missing { .. }) { " — pass --tokenizer-fallback builtin to use the built-in synthetic tokenizer" } else { "" })]
    Tokenizer(#[from] crate::util::tokenizer::TokenizerError),
    /// A dataset file could not be read.
    #[error("{path}: {source}")]
    DatasetIo {
        /// The dataset file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A dataset line is malformed.
    #[error(transparent)]
    DatasetLine(#[from] crate::util::custom_dataset::CustomDatasetError),
    /// The dataset cannot be built from these settings.
    #[error("dataset: {0}")]
    Dataset(String),
    /// The seed is outside numpy's range (the SA client's random dataset).
    #[error("dataset: {0}")]
    Seed(#[from] super::py_random::SeedError),
    /// The initial test request failed (upstream's message).
    #[error(
        "Initial test run failed - Please make sure benchmark arguments are correctly specified. Error: {0}"
    )]
    TestRequest(String),
    /// The result file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}
