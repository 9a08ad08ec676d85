//! [`ResultsContext`]: everything the results stage reads from the environment, read once.
//!
//! CI job variables (job info), the gateway settings (`OPEN_SEARCH_DB_*`, `USE_POC_DB`; parsed
//! by [`super::gateway`], which owns them), the history database path (`PERF_DB`), the GPU type
//! and the regression knobs (parsed by [`super::regression`]). This module only composes them.
//! Credentials live in [`super::gateway::Secret`], whose `Debug` never shows them, so printing a
//! context cannot leak them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::toolchain::Toolchain;
use crate::util::env::EnvSource;

use super::ResultsError;
use super::gateway::{GatewaySettings, GatewaySettingsError, gateway_from_env};
use super::gpu;
use super::regression::{ThresholdError, ThresholdOverrides, parse_threshold_overrides};
use super::store::DEFAULT_LOCK_WAIT;

/// Why the results settings in the environment are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A gateway knob (`OPEN_SEARCH_DB_BASE_URL`, `PERF_DB_*` timeouts and attempts).
    #[error("{0}")]
    Gateway(#[from] GatewaySettingsError),
    /// `PERF_FAIL_ON_REGRESSION` is not a boolean.
    #[error("PERF_FAIL_ON_REGRESSION={0:?}: expected 1/true or 0/false")]
    FailOnRegression(String),
    /// `PERF_REGRESSION_THRESHOLDS` cannot be parsed.
    #[error("PERF_REGRESSION_THRESHOLDS: {0}")]
    Thresholds(#[source] ThresholdError),
}

/// The CI job variables upstream reads for the job info, plus `stageName`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CiEnv {
    /// `HOST_NODE_NAME`.
    pub host_node_name: String,
    /// `BUILD_ID`.
    pub build_id: String,
    /// `BUILD_URL`.
    pub build_url: String,
    /// `JOB_NAME`.
    pub job_name: String,
    /// `globalVars` (JSON text, as set by the Jenkins pipeline).
    pub global_vars: Option<String>,
    /// `gitlabCommit`.
    pub gitlab_commit: String,
    /// `stageName`.
    pub stage_name: String,
}

impl CiEnv {
    /// Reads the variables (unset = empty).
    pub fn from_env(env: &dyn EnvSource) -> Self {
        let get = |k: &str| env.var(k).unwrap_or_default();
        CiEnv {
            host_node_name: get("HOST_NODE_NAME"),
            build_id: get("BUILD_ID"),
            build_url: get("BUILD_URL"),
            job_name: get("JOB_NAME"),
            global_vars: env.var("globalVars"),
            gitlab_commit: get("gitlabCommit"),
            stage_name: get("stageName"),
        }
    }
}

/// The results stage's view of the environment.
#[derive(Clone, Debug)]
pub struct ResultsContext {
    /// CI job variables.
    pub ci: CiEnv,
    /// The gateway, when `OPEN_SEARCH_DB_BASE_URL` is set.
    pub gateway: Option<GatewaySettings>,
    /// The SQLite history (`PERF_DB`, default `<project root>/perf-history/perf-results.sqlite`).
    pub db_path: PathBuf,
    /// `s_gpu_type`.
    pub gpu_type: String,
    /// `PERF_FAIL_ON_REGRESSION` (unset = upstream's rule).
    pub fail_on_regression: Option<bool>,
    /// `PERF_REGRESSION_THRESHOLDS`.
    pub threshold_overrides: ThresholdOverrides,
    /// When this run session began (epoch ms): embedded-history records created at or after it
    /// are not history — a trial measured minutes ago in the same run (e.g. the `disagg-` twin
    /// of a `disagg_upload-` trial) is never another trial's baseline. `None`: no bound.
    pub session_started_ms: Option<i64>,
    /// How long a write to the history database waits for another process's lock
    /// (`PERF_DB_LOCK_WAIT_S`; set by the caller, default [`DEFAULT_LOCK_WAIT`]).
    pub db_lock_wait: Duration,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl ResultsContext {
    /// Reads the context from `env`. The GPU type is `sim` for the simulator toolchain, else
    /// detected with `nvidia-smi -q` (see [`gpu`]).
    pub fn from_env(
        env: &dyn EnvSource,
        project_root: &Path,
        toolchain: Toolchain,
    ) -> Result<Self, ResultsError> {
        let gpu_type = match toolchain {
            Toolchain::Sim => gpu::SIM_GPU_TYPE.to_string(),
            Toolchain::Trtllm => gpu::detect_gpu_type(),
        };
        Self::from_env_with_gpu(env, project_root, gpu_type)
    }

    /// As [`ResultsContext::from_env`] with a known GPU type (tests, or a caller that already
    /// detected it).
    pub fn from_env_with_gpu(
        env: &dyn EnvSource,
        project_root: &Path,
        gpu_type: String,
    ) -> Result<Self, ResultsError> {
        let db_path = match non_empty(env.var("PERF_DB")) {
            Some(p) => PathBuf::from(p),
            None => default_db_path(project_root),
        };
        let fail_on_regression = match non_empty(env.var("PERF_FAIL_ON_REGRESSION")).as_deref() {
            None => None,
            Some("1" | "true" | "yes") => Some(true),
            Some("0" | "false" | "no") => Some(false),
            Some(other) => return Err(ContextError::FailOnRegression(other.to_string()).into()),
        };
        let threshold_overrides = match non_empty(env.var("PERF_REGRESSION_THRESHOLDS")) {
            None => ThresholdOverrides::new(),
            Some(text) => parse_threshold_overrides(&text).map_err(ContextError::Thresholds)?,
        };
        Ok(ResultsContext {
            ci: CiEnv::from_env(env),
            gateway: gateway_from_env(env).map_err(ContextError::from)?,
            db_path,
            gpu_type,
            fail_on_regression,
            threshold_overrides,
            session_started_ms: None,
            db_lock_wait: DEFAULT_LOCK_WAIT,
        })
    }
}

/// Folder of the default history database, beside `test_configs/` at the project root (not
/// under `target/`, which `cargo clean` deletes).
pub const HISTORY_DIR: &str = "perf-history";
/// File name of the history database.
pub const DB_FILE: &str = "perf-results.sqlite";

/// `<project root>/perf-history/perf-results.sqlite`.
pub fn default_db_path(project_root: &Path) -> PathBuf {
    project_root.join(HISTORY_DIR).join(DB_FILE)
}

/// Where releases before 0.1 kept the history: `<target>/perf-results.sqlite`.
pub fn legacy_db_path(target_dir: &Path) -> PathBuf {
    target_dir.join(DB_FILE)
}
