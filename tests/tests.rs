//! The integration tests, as ONE test binary (ripgrep's layout): linking one binary instead of
//! twenty is most of what `cargo test` costs on a small machine.
//!
//! Each file under `tests/` is a module here; shared helpers are the `support`, `sim_support` and
//! `harness_bin` modules, reached as `crate::support::…`. `Cargo.toml` sets `autotests = false`,
//! so a new test file runs only once it has a `mod` line below. Tests that need something of the
//! environment at run time (a SLURM cluster, an installed third-party client) live in
//! `tests/env_gated.rs` instead, which reports them as ignored when it is missing.

mod harness_bin;
mod sim_support;
mod support;

mod aggr_family;
mod architecture;
mod bad_input;
mod bench_cli;
mod bench_client;
mod bench_hostile;
mod bench_output;
mod bench_overload;
mod bench_request_sequences;
mod cli_catalog;
mod daily_loop;
mod harness_selftest;
mod harness_sim_only;
mod hostile_input;
mod plan_fidelity;
mod plan_golden;
mod proptest_parsers;
mod report_output;
mod results_flow;
mod results_gateway;
mod results_record;
mod results_regression;
mod runner_faults;
mod sim_aggr;
mod sim_disagg;
mod sim_faults;
mod sim_spec;
mod sim_worker;
mod slurm_aggr;
mod slurm_script;
mod upstream_corpus;
