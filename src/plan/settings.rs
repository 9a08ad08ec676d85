//! The resolved knobs a run is planned and executed with, as a value. Only the edge
//! (`crate::app::settings`) reads the environment and builds one; the stages below take it and
//! never parse a knob themselves: every timeout here is already a [`Duration`].

use std::path::PathBuf;
use std::time::Duration;

use super::Role;
use super::Scale;
use super::toolchain::Toolchain;

/// Default of `PERF_STALL_S`: how long a role may be stopped, unanswering or (a worker holding
/// requests) without a new iteration before the trial fails. Long enough for a real engine's
/// slowest iteration (a long prefill) on a busy node.
pub const DEFAULT_STALL_S: u64 = 300;
/// Default of `PERF_PROGRESS_S`: how often a long wait prints a progress line.
pub const DEFAULT_PROGRESS_S: u64 = 60;

/// The liveness-watch knobs (`PERF_STALL_S`, `PERF_PROGRESS_S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// `PERF_STALL_S` (zero: no liveness watch).
    pub stall: Duration,
    /// `PERF_PROGRESS_S` (zero: no progress lines).
    pub progress: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            stall: Duration::from_secs(DEFAULT_STALL_S),
            progress: Duration::from_secs(DEFAULT_PROGRESS_S),
        }
    }
}

/// Upstream's server-ready timeout knobs, each parsed (a positive whole number of seconds) and
/// unset when the variable is unset or empty. Which one applies depends on the trial's layout
/// (`plan::build::ready_timeout`, `plan::aggregated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadyTimeouts {
    /// `TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT` (disaggregated trials, first).
    pub disagg: Option<Duration>,
    /// `TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT` (aggregated servers, first).
    pub agg: Option<Duration>,
    /// `TRTLLM_TEST_SERVER_READY_TIMEOUT` (both, second).
    pub any: Option<Duration>,
}

/// The names of [`ReadyTimeouts`]' knobs, in field order.
pub const DISAGG_READY_TIMEOUT_KNOB: &str = "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT";
/// `TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT`.
pub const AGG_READY_TIMEOUT_KNOB: &str = "TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT";
/// `TRTLLM_TEST_SERVER_READY_TIMEOUT`.
pub const READY_TIMEOUT_KNOB: &str = "TRTLLM_TEST_SERVER_READY_TIMEOUT";

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
    /// `SLURM_LOCALID`: this task's local rank under `srun` (expanded into launch env values).
    pub slurm_local_id: Option<String>,
    /// `PERF_DATASET_FALLBACK=random`.
    pub dataset_fallback_env: bool,
    /// The server-ready timeout knobs.
    pub ready_timeouts: ReadyTimeouts,
    /// `PERF_TRIAL_TIMEOUT_S`: every trial's whole-run limit, replacing a test list's
    /// `TIMEOUT (N)` minutes (seconds resolution, for fault tests and quick checks).
    pub trial_timeout: Option<Duration>,
    /// `PERF_STALL_S`, `PERF_PROGRESS_S`.
    pub watch: WatchSettings,
    /// `PERF_DB_LOCK_WAIT_S`: how long a writer waits for the history database's lock.
    pub db_lock_wait: Duration,
    /// `DISAGG_SERVING_TYPE`: play only this role of each trial.
    pub role: Option<Role>,
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
