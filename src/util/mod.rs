//! Utilities shared by every stage and by the tools: atomic file writes, exact statistics,
//! tokenizers, the open-file limit, and the position-annotated YAML stack.

pub mod fs;
pub mod rlimit;
pub mod stats;
pub mod tokenizer;
pub mod yaml;
