//! Settings: every environment knob read once, validated, and turned into resolved values.
//! libtest-mimic owns the harness's argv, so the harness is configured through these variables;
//! the CLI reads the same ones. The README lists them all.

use std::path::{Path, PathBuf};

use crate::plan::Scale;
use crate::plan::toolchain::{Toolchain, ToolchainChoice, on_path};

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Project root (where `test_configs/` lives).
    pub project_root: PathBuf,
    /// Cargo's target directory (caches, default outputs).
    pub target_dir: PathBuf,
    /// Config folders (`PERF_CONFIG_DIRS` or the defaults).
    pub config_dirs: Vec<PathBuf>,
    /// `PERF_TESTLIST`.
    pub testlist: Option<PathBuf>,
    /// `PERF_OUTPUT_DIR` (default `<target>/perf-output`).
    pub output_root: PathBuf,
    /// Where the simulator toolchain generates missing datasets (`PERF_SIM_DATASETS`, default
    /// `<target>/perf-datasets`).
    pub sim_dataset_root: PathBuf,
    /// `PERF_TOOLCHAIN` resolved.
    pub toolchain: Toolchain,
    /// `PERF_SCALE`.
    pub scale: Scale,
    /// `LLM_MODELS_ROOT`.
    pub models_root: Option<PathBuf>,
    /// `LLM_ROOT`.
    pub repo_root: Option<PathBuf>,
    /// `PERF_HOSTNAME`, else this machine's host name.
    pub hostname: String,
    /// `SLURM_JOB_ID`.
    pub job_id: Option<String>,
    /// `PERF_DATASET_FALLBACK=random`.
    pub dataset_fallback_env: bool,
    /// `TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT`.
    pub disagg_ready_timeout_env: Option<String>,
    /// `TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT` (aggregated servers).
    pub agg_ready_timeout_env: Option<String>,
    /// `TRTLLM_TEST_SERVER_READY_TIMEOUT`.
    pub ready_timeout_env: Option<String>,
    /// `PERF_TRIAL_TIMEOUT_S`: every trial's whole-run limit in seconds, replacing a test list's
    /// `TIMEOUT (N)` minutes (seconds resolution, for fault tests and quick checks).
    pub trial_timeout_s: Option<u64>,
    /// `DISAGG_SERVING_TYPE`: play only this role of each trial.
    pub role: Option<crate::plan::Role>,
    /// `PERF_LAUNCHER_GEN_LOGS=1`: a launcher captures gen workers' output as
    /// `gen_server_<i>.log` and writes the `.done` sentinels (set by our SLURM scripts).
    pub launcher_gen_logs: bool,
    /// `PERF_ALLOW_EMPTY_TESTLIST=1` (or `PERF_ALLOW_EMPTY=1`): a test list that selects
    /// nothing is not an error.
    pub allow_empty_testlist: bool,
    /// `PERF_ALL_FAMILIES=1`: run both `disagg_upload-<stem>` and `disagg-<stem>` by default.
    pub all_families: bool,
    /// `PERF_ALLOW_EMPTY=1`: an empty selection (test list or catalog) is not an error.
    pub allow_empty: bool,
}

/// A bad environment knob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// The variables a [`Settings`] is read from (a snapshot, so tests need not touch the process
/// env); defined in `util` so the stages can take one without importing the edge.
pub use crate::util::env::EnvSource;

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn unusable(&self) -> Vec<String> {
        crate::app::env_check::non_utf8_knobs(std::env::vars_os())
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn absolute(root: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() { p } else { root.join(p) }
}

impl Settings {
    /// Reads the settings. `project_root` holds `test_configs/`; `target_dir` is cargo's target
    /// directory (defaults for outputs live there).
    pub fn from_env(
        env: &dyn EnvSource,
        project_root: &Path,
        target_dir: &Path,
    ) -> Result<Self, SettingsError> {
        if let Some(first) = env.unusable().into_iter().next() {
            return Err(SettingsError(first));
        }
        let choice =
            ToolchainChoice::parse(env.var("PERF_TOOLCHAIN").as_deref()).map_err(SettingsError)?;
        let toolchain = choice.resolve(on_path("trtllm-serve", env.var("PATH").as_deref()));
        let scale = Scale::parse(env.var("PERF_SCALE").as_deref()).map_err(SettingsError)?;
        let dataset_fallback_env = match non_empty(env.var("PERF_DATASET_FALLBACK")).as_deref() {
            None | Some("error") => false,
            Some("random") => true,
            Some(other) => {
                return Err(SettingsError(format!(
                    "PERF_DATASET_FALLBACK={other:?}; expected random or error"
                )));
            }
        };
        let hostname = match non_empty(env.var("PERF_HOSTNAME")) {
            Some(h) => h,
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_string()),
        };
        let testlist = non_empty(env.var("PERF_TESTLIST")).map(|p| absolute(project_root, &p));
        if let Some(list) = &testlist
            && !list.is_file()
        {
            return Err(SettingsError(format!(
                "PERF_TESTLIST={}: no such file",
                list.display()
            )));
        }
        let trial_timeout_s = match non_empty(env.var("PERF_TRIAL_TIMEOUT_S")) {
            None => None,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) if (1..=crate::app::env_check::MAX_TRIAL_TIMEOUT_S).contains(&s) => Some(s),
                _ => {
                    return Err(SettingsError(format!(
                        "PERF_TRIAL_TIMEOUT_S={v:?}: expected a positive whole number of seconds, \
                         at most {} (30 days)",
                        crate::app::env_check::MAX_TRIAL_TIMEOUT_S
                    )));
                }
            },
        };
        let role = match non_empty(env.var("DISAGG_SERVING_TYPE")) {
            None => None,
            Some(r) => Some(
                r.trim()
                    .parse()
                    .map_err(|e: String| SettingsError(format!("DISAGG_SERVING_TYPE: {e}")))?,
            ),
        };
        let job_id = non_empty(env.var("SLURM_JOB_ID"));
        if let Some(id) = &job_id {
            crate::util::path_component::check_job_id("SLURM_JOB_ID", id.trim())
                .map_err(|e| SettingsError(e.to_string()))?;
        }
        let flag = |name: &str| {
            crate::app::env_check::flag(name, env.var(name).as_deref()).map_err(SettingsError)
        };
        let allow_empty = flag("PERF_ALLOW_EMPTY")?;
        Ok(Settings {
            all_families: flag("PERF_ALL_FAMILIES")?,
            allow_empty,
            role,
            launcher_gen_logs: flag("PERF_LAUNCHER_GEN_LOGS")?,
            allow_empty_testlist: flag("PERF_ALLOW_EMPTY_TESTLIST")? || allow_empty,
            project_root: project_root.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            config_dirs: crate::catalog::scan::config_dirs(
                project_root,
                env.var("PERF_CONFIG_DIRS").as_deref(),
            ),
            testlist,
            output_root: non_empty(env.var("PERF_OUTPUT_DIR"))
                .map(|p| absolute(project_root, &p))
                .unwrap_or_else(|| target_dir.join("perf-output")),
            sim_dataset_root: non_empty(env.var("PERF_SIM_DATASETS"))
                .map(|p| absolute(project_root, &p))
                .unwrap_or_else(|| target_dir.join("perf-datasets")),
            toolchain,
            scale,
            models_root: non_empty(env.var("LLM_MODELS_ROOT")).map(PathBuf::from),
            repo_root: non_empty(env.var("LLM_ROOT")).map(PathBuf::from),
            hostname,
            job_id: job_id.map(|id| id.trim().to_string()),
            dataset_fallback_env,
            disagg_ready_timeout_env: env.var("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT"),
            agg_ready_timeout_env: env.var("TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT"),
            ready_timeout_env: env.var("TRTLLM_TEST_SERVER_READY_TIMEOUT"),
            trial_timeout_s,
        })
    }
}

/// The project root for the CLI: the nearest ancestor of `start` holding `test_configs/` or a
/// `Cargo.toml`, else `start` itself.
pub fn find_project_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|d| d.join("test_configs").is_dir())
        .unwrap_or(start)
        .to_path_buf()
}

/// Cargo's target directory for a project root (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir(env: &dyn EnvSource, project_root: &Path) -> PathBuf {
    non_empty(env.var("CARGO_TARGET_DIR"))
        .map(|p| absolute(project_root, &p))
        .unwrap_or_else(|| project_root.join("target"))
}
