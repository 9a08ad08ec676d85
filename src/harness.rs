//! The `cargo test` harness behind `tests/perf.rs`: catalog (or `PERF_TESTLIST`) → one
//! libtest-mimic trial per selected trial → run. All logic lives here so the test file stays a
//! one-liner and this module stays testable.
//!
//! libtest-mimic owns argv (name filters, `--exact`, `--list`, `--ignored`, `--test-threads`),
//! so settings come from environment variables. `main` returns the conclusion's exit code
//! instead of calling `process::exit`, so destructors (process teardown guards) always run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::commands::selected_trials;
use crate::config::{BenchmarkMode, load_perf_config};
use crate::launch::gpus::{GpuPool, visible_gpus};
use crate::launch::{RunContext, run_plan, signals};
use crate::plan::Topology;
use crate::selection::TrialSpec;
use crate::settings::{ProcessEnv, Settings, target_dir};
use crate::toolchain::Toolchain;
use crate::trial::{KeyMode, plan_trial};

/// Everything a trial body needs, shared by all trials.
pub struct HarnessContext {
    /// Resolved settings.
    pub settings: Settings,
    /// Path of the `perfsanity` executable (runs the simulator and native client).
    pub self_exe: PathBuf,
    /// This host's GPUs (trtllm toolchain only).
    pub gpus: Option<GpuPool>,
    /// Copy client output to the terminal (`--nocapture`).
    pub tee: bool,
}

/// Entry point of `tests/perf.rs`: `manifest_dir` is the crate root (`CARGO_MANIFEST_DIR`) and
/// `self_exe` the built `perfsanity` binary (`CARGO_BIN_EXE_perfsanity`).
pub fn main(manifest_dir: &str, self_exe: &str) -> ExitCode {
    let args = Arguments::from_args();
    let root = Path::new(manifest_dir);
    let settings = match Settings::from_env(&ProcessEnv, root, &target_dir(&ProcessEnv, root)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("perfsanity harness: {e}");
            return ExitCode::from(2);
        }
    };
    let specs = match selected_trials(&settings) {
        Ok((_, specs)) => specs,
        Err(e) => {
            eprintln!("perfsanity harness: {e}");
            return ExitCode::from(2);
        }
    };
    let gpus = (settings.toolchain == Toolchain::Trtllm).then(|| {
        GpuPool::new(visible_gpus(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref()))
    });
    let ctx = Arc::new(HarnessContext {
        settings,
        self_exe: PathBuf::from(self_exe),
        gpus,
        tee: args.nocapture,
    });
    if !args.list {
        signals::install();
    }
    let trials = build_trials(&ctx, specs, &args);
    libtest_mimic::run(&args, trials).exit_code()
}

/// One libtest-mimic trial per spec. With `--exact <name>` (what nextest runs per test) only
/// that trial is built.
pub fn build_trials(
    ctx: &Arc<HarnessContext>,
    specs: Vec<TrialSpec>,
    args: &Arguments,
) -> Vec<Trial> {
    let exact = args.exact.then_some(args.filter.as_deref()).flatten();
    specs
        .into_iter()
        .filter(|spec| exact.is_none_or(|name| name == spec.name))
        .map(|spec| {
            let ctx = Arc::clone(ctx);
            Trial::test(spec.name.clone(), move || run_trial(&ctx, &spec))
        })
        .collect()
}

/// Runs one trial: for now, builds its plan and writes the plan and generated files under
/// `PERF_OUTPUT_DIR/<trial>/`, which proves the config is valid and runnable.
pub fn run_trial(ctx: &HarnessContext, spec: &TrialSpec) -> Result<(), Failed> {
    let plan = plan_trial(&ctx.settings, spec, KeyMode::Create)
        .map_err(|e| Failed::from(e.to_string()))?;
    write_plan_files(&plan).map_err(|e| Failed::from(e.to_string()))?;
    Ok(())
}
