//! Measure stage: turn what the processes wrote into metrics.
//!
//! Upstream's harness never reads the client's JSON; it scrapes the client's stdout with a
//! fixed set of regexes and validates it for failure markers. [`client_output`] reproduces
//! both exactly (upstream-perf-sanity.md §5.1–5.2), so the native client, the runner and the
//! results store all agree on what a run reported. [`gen_log`] reads gen_only's device step
//! time from the generation workers' iteration logs (§5.3).

pub mod client_output;
pub mod gen_log;

pub use client_output::{
    BASE_METRICS, CLIENT_FELL_BEHIND, ClientMetrics, MERGED_ITL_SHARE_PCT, OutputProblem,
    check_client_output, parse_client_output,
};
