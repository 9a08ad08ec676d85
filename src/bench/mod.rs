//! Native benchmark client (placeholder until the client lands).

use std::process::ExitCode;

/// Command-line arguments of `perfsanity bench …`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Everything after `bench`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Command-line arguments of `perfsanity dataset gen …`.
#[derive(Debug, clap::Args)]
pub struct DatasetGenArgs {
    /// Everything after `dataset gen`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `perfsanity bench …`.
pub fn run(_args: BenchArgs) -> ExitCode {
    eprintln!("perfsanity bench: the client is not built yet");
    ExitCode::from(2)
}

/// Runs `perfsanity dataset gen …`.
pub fn run_dataset_gen(_args: DatasetGenArgs) -> ExitCode {
    eprintln!("perfsanity dataset gen: not built yet");
    ExitCode::from(2)
}
