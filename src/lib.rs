//! perfsanity: a `cargo test` harness for TensorRT-LLM serving perf tests.
//!
//! The modules below are the pipeline, top to bottom; each stage imports only the stages below
//! it, and `tools` (programs of their own) import only `util` and the `sim:` schema
//! (`config::sim_section`). `tests/architecture.rs` checks both, and that no modules import each
//! other in a cycle at any depth. Only `app` reads argv and the process environment, prints and decides exit codes;
//! only `run` (and `app`) starts, signals and waits on processes; the other stages take values
//! and return values or typed errors — which of them read or write files is in the table of
//! `docs/DESIGN.md`, the map of the tree.

/// The edge: the CLI and the harness, settings from the environment, reporters.
pub mod app;

/// Processes: one trial on this host (or one role of it), and on SLURM.
pub mod run;

/// JUnit XML, the HTML report and its plots.
pub mod report;

/// What a trial produced: its outcome, records, the history store, upload, verdicts.
pub mod results;

/// Upstream's client-output and gen-log parsing.
pub mod measure;

/// Config + trial → `Plan`; the resolved `Settings` value.
pub mod plan;

/// Config folders, test lists and trial ids → the selected trials.
pub mod catalog;

/// The perf YAML model and its validation.
pub mod config;

/// Shared utilities: YAML, statistics, tokenizers, files, the environment snapshot.
pub mod util;

/// Programs of their own, beside the stages: the embedded simulator and the native client.
pub mod tools;
