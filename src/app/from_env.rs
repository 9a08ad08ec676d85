//! The environment-reading halves of the stages' constructors: the edge reads the process
//! environment here and hands the stages values (`Executor`'s GPUs, executable and results
//! context). Below `app` nothing reads the process environment.

use std::path::PathBuf;

use crate::app::settings::{EnvSource, ProcessEnv, Settings};
use crate::plan::toolchain::Toolchain;
use crate::results::ResultsContext;
use crate::run::execute::Executor;
use crate::run::launch::gpus::{GpuPool, visible_gpus};

/// An executor configured from the process environment: results context, this host's GPUs
/// (`CUDA_VISIBLE_DEVICES`, trtllm toolchain) and `PERFSANITY_BIN` (else `self_exe`).
pub fn executor(settings: Settings, self_exe: PathBuf, tee: bool) -> Result<Executor, String> {
    let env = ProcessEnv;
    let mut results = ResultsContext::from_env(&env, &settings.project_root, settings.toolchain)
        .map_err(|e| e.to_string())?;
    results.session_started_ms = Some(crate::results::store::now_ms());
    // TODO(lead): from Settings. A bad value never reaches the store: `watch::check_env`
    // refuses it before any trial starts (a config failure that names the knob).
    results.db_lock_wait = crate::results::store::parse_lock_wait(
        std::env::var("PERF_DB_LOCK_WAIT_S").ok().as_deref(),
    )
    .unwrap_or(crate::results::store::DEFAULT_LOCK_WAIT);
    crate::app::output_check::check_outputs(&results.db_path, &env)?;
    let gpus = (settings.toolchain == Toolchain::Trtllm)
        .then(|| GpuPool::new(visible_gpus(env.var("CUDA_VISIBLE_DEVICES").as_deref())));
    let self_exe = std::env::var_os("PERFSANITY_BIN")
        .map(PathBuf::from)
        .unwrap_or(self_exe);
    Ok(Executor {
        settings,
        self_exe,
        gpus,
        tee,
        results,
        progress: Box::new(crate::run::progress::NoProgress),
    })
}

/// `PERF_JUNIT`, when set: where the harness writes its JUnit report.
pub fn junit_path_from_env(env: &dyn EnvSource) -> Option<PathBuf> {
    env.var("PERF_JUNIT")
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
}
