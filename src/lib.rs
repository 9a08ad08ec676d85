//! perfsanity: a `cargo test` harness for TensorRT-LLM disaggregated serving perf tests.
//!
//! The pipeline is `config → catalog → plan → launch → measure → record → report`. Every stage
//! except `launch` is pure: data in, data out. See `README.md` for the user-facing picture and
//! `docs/` for benchmarks and examples.

pub mod auth_key;
pub mod bench;
pub mod catalog;
pub mod commands;
pub mod config;
pub mod execute;
pub mod harness;
pub mod launch;
pub mod list_cache;
pub mod measure;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod results;
pub mod rlimit;
pub mod selection;
pub mod settings;
pub mod sim;
pub mod slurm;
pub mod stats;
pub mod testlist;
pub mod tokenizer;
pub mod toolchain;
pub mod trial;
pub mod trial_id;
pub mod yaml;
