//! Utilities shared by every stage and by the tools: atomic file writes, exact statistics,
//! tokenizers, the open-file limit, environment snapshots, the `trtllm_custom` dataset format, and
//! the position-annotated YAML stack.

pub mod bounded_read;
pub mod custom_dataset;
pub mod deadline;
pub mod env;
pub mod fs;
pub mod log_file;
pub mod path_component;
pub mod rlimit;
pub mod stats;
pub mod terminal;
pub mod tokenizer;
pub mod yaml;
