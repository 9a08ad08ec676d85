//! Embedded TensorRT-LLM simulator (placeholder until the simulator lands).

use std::process::ExitCode;

/// Command-line arguments of `perfsanity sim …`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Everything after `sim`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `perfsanity sim …`.
pub fn run(_args: SimArgs) -> ExitCode {
    eprintln!("perfsanity sim: the simulator is not built yet");
    ExitCode::from(2)
}
