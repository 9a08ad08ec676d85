//! The edge: the only code that reads argv and the process environment, writes to stdout and
//! stderr, or decides exit codes. Everything below it takes values and returns values.

pub mod cli_env;
pub mod commands;
pub mod env_check;
pub mod from_env;
pub mod harness;
pub mod history_location;
pub mod output_check;
pub mod progress_reporter;
pub mod report_cmd;
pub mod results_cmd;
pub mod selection_guard;
pub mod settings;
pub mod signal_handler;
pub mod slurm_cmd;
pub mod slurm_reporter;
pub mod unknown_knobs;
