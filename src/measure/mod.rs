//! Measure stage: turn what a benchmark client printed into metrics.
//!
//! Upstream's harness never reads the client's JSON; it scrapes the client's stdout with a
//! fixed set of regexes and validates it for failure markers. [`client_output`] reproduces
//! both exactly (upstream-perf-sanity.md §5.1–5.2), so the native client, the runner and the
//! results store all agree on what a run reported.

pub mod client_output;

pub use client_output::{
    BASE_METRICS, ClientMetrics, OutputProblem, check_client_output, parse_client_output,
};
