//! The perf YAML model ([`PerfConfig`]) and its strict parser.
//!
//! Reading happens in one pass over a position-annotated YAML tree ([`crate::util::yaml`]): typed
//! sections are read key by key and unknown keys are rejected; engine blocks are kept verbatim.
//! Every problem carries the file, the key path and the line ([`ConfigError`]).

mod aggregated;
pub mod bounds;
mod concurrency;
mod ctx_only;
pub mod env_string;
mod error;
mod model;
pub mod nul_bytes;
mod parse;
pub mod reader;
pub mod shape;
pub mod sim_section;

pub use aggregated::{
    AGGR_DEFAULT_BENCHMARK_RATIO, AGGR_DEFAULT_USE_NV_SA, AggrBenchmark, AggrClient, AggrServer,
    AggregatedConfig, derived_server_name, load_aggregated_config, parse_aggregated_config,
};
pub use concurrency::{ConcurrencyListError, parse_concurrency_list};
pub use ctx_only::ctx_only_server;
pub use error::{ConfigError, Problem, Problems, load_yaml as load_yaml_file_text};
pub use model::*;
pub use parse::{load_perf_config, parse_perf_config};
