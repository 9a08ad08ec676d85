//! The `perfsanity` command line: a thin clap layer over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// perfsanity: perf tests for LLM serving (TensorRT-LLM disaggregated serving).
#[derive(Debug, Parser)]
#[command(name = "perfsanity", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Embedded TensorRT-LLM simulator: `perfsanity sim trtllm-serve …`.
    Sim(perfsanity::sim::SimArgs),
    /// Native benchmark client, a drop-in for `benchmark_serving`.
    Bench(perfsanity::bench::BenchArgs),
    /// Dataset tools.
    #[command(subcommand)]
    Dataset(DatasetCommand),
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Write a `trtllm_custom` JSON Lines dataset.
    Gen(perfsanity::bench::DatasetGenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => perfsanity::sim::run(args),
        Command::Bench(args) => perfsanity::bench::run(args),
        Command::Dataset(DatasetCommand::Gen(args)) => perfsanity::bench::run_dataset_gen(args),
    }
}
