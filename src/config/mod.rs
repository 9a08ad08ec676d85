//! The perf YAML model ([`PerfConfig`]) and its strict parser.
//!
//! Reading happens in one pass over a position-annotated YAML tree ([`crate::util::yaml`]): typed
//! sections are read key by key and unknown keys are rejected; engine blocks are kept verbatim.
//! Every problem carries the file, the key path and the line ([`ConfigError`]).

mod aggregated;
pub mod bounds;
pub mod env_string;
mod error;
mod model;
pub mod nul_bytes;
mod parse;
pub mod reader;

pub use aggregated::{AggregatedConfig, AggregatedServer, parse_aggregated_config};
pub use error::{ConfigError, Problem, Problems};
pub use model::*;
pub use parse::{load_perf_config, parse_concurrency_list, parse_perf_config};
