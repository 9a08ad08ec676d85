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
    results.db_lock_wait = settings.db_lock_wait;
    crate::app::output_check::check_outputs(&results.db_path, &env)?;
    let gpus = (settings.toolchain == Toolchain::Trtllm)
        .then(|| GpuPool::new(visible_gpus(env.var("CUDA_VISIBLE_DEVICES").as_deref())));
    let self_exe = env
        .var("PERFSANITY_BIN")
        .map(PathBuf::from)
        .unwrap_or(self_exe);
    Ok(Executor {
        settings,
        self_exe,
        gpus,
        tee,
        stdout: std::sync::Arc::new(|bytes: &[u8]| {
            use std::io::Write;
            let _ = std::io::stdout().write_all(bytes);
        }),
        results,
        progress: Box::new(crate::run::progress::NoProgress),
    })
}

/// Before the first trial runs: make this process the owner of every process the run starts
/// (child subreaper, watchdog), saying on stderr what could not be set up.
pub fn own_process_tree(self_exe: &std::path::Path) {
    for problem in crate::run::launch::tree::ensure_owner(self_exe) {
        eprintln!("perfsanity: {problem}");
    }
}
