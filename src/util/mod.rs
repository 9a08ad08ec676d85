//! Utilities shared by every stage and by the tools: exact statistics, tokenizers, the
//! open-file limit, environment snapshots, and the position-annotated YAML stack.

pub mod env;
pub mod fs;
pub mod rlimit;
pub mod stats;
pub mod tokenizer;
pub mod yaml;
