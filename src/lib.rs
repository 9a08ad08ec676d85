//! perfsanity: a `cargo test` harness for TensorRT-LLM disaggregated serving perf tests.
//!
//! The pipeline is `config → catalog → plan → launch → measure → record → report`. Every stage
//! except `launch` is pure: data in, data out. See `README.md` for the user-facing picture and
//! `docs/` for benchmarks and examples.

pub mod bench;
pub mod measure;
pub mod sim;
pub mod stats;
pub mod tokenizer;
