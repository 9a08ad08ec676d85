//! [`ResultsContext`]: everything the results stage reads from the environment, read once.
//!
//! CI job variables (job info), the gateway settings (`OPEN_SEARCH_DB_*`, `USE_POC_DB`), the
//! history database path (`PERF_DB`), the GPU type and the regression knobs. Credentials live in
//! [`Secret`], whose `Debug` never shows them, so printing a context cannot leak them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::toolchain::Toolchain;
use crate::util::env::EnvSource;

use super::ResultsError;
use super::gpu;

/// Upstream's production perf-sanity project (index).
pub const PROD_PROJECT: &str = "swdl-trtllm-infra-ci-prod-perf_sanity_info";
/// Upstream's sandbox project, selected by `USE_POC_DB=true` (needs no credentials).
pub const POC_PROJECT: &str = "sandbox-temp-trtllm-ci-perf-v1-test_info";
/// Projects upstream's client may write to (sandbox projects are always allowed).
pub const WRITE_ALLOW_LIST: &[&str] = &[PROD_PROJECT];

/// Upstream's post timeout.
pub const DEFAULT_POST_TIMEOUT: Duration = Duration::from_secs(20);
/// Upstream's query timeout.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream's attempts per request.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Pause between attempts (upstream retries immediately; a short pause is kinder to a gateway
/// that is restarting).
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for building the authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Gateway credentials (`OPEN_SEARCH_DB_CREDENTIALS_USR` / `_PSW`).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name (treated as secret too: it is half of the credential).
    pub user: Secret,
    /// Password.
    pub password: Secret,
}

/// Where and how to talk to the gateway. `Debug` redacts the URL's user info and credentials.
#[derive(Clone)]
pub struct GatewaySettings {
    /// `OPEN_SEARCH_DB_BASE_URL` without a trailing slash.
    pub base_url: String,
    /// The project (index) records go to and history comes from.
    pub project: String,
    /// Basic-auth credentials, when both variables are set.
    pub credentials: Option<Credentials>,
    /// Per-request timeout of a post (`PERF_DB_POST_TIMEOUT`, default 20 s).
    pub post_timeout: Duration,
    /// Per-request timeout of a history query (`PERF_DB_QUERY_TIMEOUT`, default 10 s).
    pub query_timeout: Duration,
    /// Attempts per request (`PERF_DB_ATTEMPTS`, 1–5, default 5).
    pub attempts: u32,
    /// Pause between attempts.
    pub retry_pause: Duration,
}

impl fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("base_url", &super::gateway::redact_url(&self.base_url))
            .field("project", &self.project)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("post_timeout", &self.post_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl GatewaySettings {
    /// Settings for `base_url` with upstream's defaults and no credentials.
    pub fn new(base_url: &str, project: &str) -> Self {
        GatewaySettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            project: project.to_string(),
            credentials: None,
            post_timeout: DEFAULT_POST_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            retry_pause: DEFAULT_RETRY_PAUSE,
        }
    }

    /// Sandbox projects need no credentials and bypass the allow-list (upstream rule).
    pub fn is_sandbox(&self) -> bool {
        self.project.contains("sandbox")
    }

    /// Every secret string that must never appear in output.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.credentials {
            out.push(c.password.expose().to_string());
            out.push(c.user.expose().to_string());
            out.push(super::gateway::basic_token(c));
        }
        if let Some(userinfo) = super::gateway::url_userinfo(&self.base_url) {
            out.push(userinfo);
        }
        out.retain(|s| s.len() >= 3);
        out
    }
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

/// Per-metric threshold overrides (`PERF_REGRESSION_THRESHOLDS`), keyed by `d_` metric name.
pub type ThresholdOverrides = BTreeMap<String, f64>;

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
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn seconds(env: &dyn EnvSource, name: &str, default: Duration) -> Result<Duration, ResultsError> {
    match non_empty(env.var(name)) {
        None => Ok(default),
        Some(v) => match v
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(crate::util::deadline::knob_seconds)
        {
            Some(d) => Ok(d),
            None => Err(ResultsError::Env(format!(
                "{name}={v:?}: expected a number of seconds in (0, {}]",
                crate::util::deadline::MAX_KNOB_SECONDS
            ))),
        },
    }
}

/// Parses `PERF_REGRESSION_THRESHOLDS`: `metric=fraction` pairs separated by commas or
/// whitespace; the metric may omit its `d_` prefix (`token_throughput=0.08`).
pub fn parse_threshold_overrides(text: &str) -> Result<ThresholdOverrides, String> {
    let mut out = ThresholdOverrides::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (metric, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected <metric>=<fraction>"))?;
        let metric = if metric.starts_with("d_") {
            metric.to_string()
        } else {
            format!("d_{metric}")
        };
        if !super::regression::is_known_metric(&metric) {
            return Err(format!(
                "{metric}: not a regression metric; expected one of {}",
                super::regression::all_metrics().join(", ")
            ));
        }
        let v: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| *v > 0.0 && *v < 1.0)
            .ok_or_else(|| format!("{item:?}: expected a fraction between 0 and 1 (0.05 = 5 %)"))?;
        out.insert(metric, v);
    }
    Ok(out)
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
            Some(other) => {
                return Err(ResultsError::Env(format!(
                    "PERF_FAIL_ON_REGRESSION={other:?}: expected 1/true or 0/false"
                )));
            }
        };
        let threshold_overrides = match non_empty(env.var("PERF_REGRESSION_THRESHOLDS")) {
            None => ThresholdOverrides::new(),
            Some(text) => parse_threshold_overrides(&text)
                .map_err(|e| ResultsError::Env(format!("PERF_REGRESSION_THRESHOLDS: {e}")))?,
        };
        Ok(ResultsContext {
            ci: CiEnv::from_env(env),
            gateway: gateway_from_env(env)?,
            db_path,
            gpu_type,
            fail_on_regression,
            threshold_overrides,
            session_started_ms: None,
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

/// The project upstream would use: the sandbox when `USE_POC_DB` is `true` (any case).
pub fn project_from_env(env: &dyn EnvSource) -> String {
    let poc = env
        .var("USE_POC_DB")
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if poc { POC_PROJECT } else { PROD_PROJECT }.to_string()
}

/// Gateway settings from `OPEN_SEARCH_DB_BASE_URL` (`None` when unset or empty).
pub fn gateway_from_env(env: &dyn EnvSource) -> Result<Option<GatewaySettings>, ResultsError> {
    let Some(base) = non_empty(env.var("OPEN_SEARCH_DB_BASE_URL")) else {
        return Ok(None);
    };
    let base = base.trim();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(ResultsError::Env(format!(
            "OPEN_SEARCH_DB_BASE_URL={:?}: expected an http:// URL",
            super::gateway::redact_url(base)
        )));
    }
    let mut settings = GatewaySettings::new(base, &project_from_env(env));
    let user = non_empty(env.var("OPEN_SEARCH_DB_CREDENTIALS_USR"));
    let password = non_empty(env.var("OPEN_SEARCH_DB_CREDENTIALS_PSW"));
    if let (Some(user), Some(password)) = (user, password) {
        settings.credentials = Some(Credentials {
            user: Secret::new(user),
            password: Secret::new(password),
        });
    }
    settings.post_timeout = seconds(env, "PERF_DB_POST_TIMEOUT", DEFAULT_POST_TIMEOUT)?;
    settings.query_timeout = seconds(env, "PERF_DB_QUERY_TIMEOUT", DEFAULT_QUERY_TIMEOUT)?;
    if let Some(v) = non_empty(env.var("PERF_DB_ATTEMPTS")) {
        settings.attempts = match v.trim().parse::<u32>() {
            Ok(n) if (1..=DEFAULT_ATTEMPTS).contains(&n) => n,
            _ => {
                return Err(ResultsError::Env(format!(
                    "PERF_DB_ATTEMPTS={v:?}: expected an integer from 1 to {DEFAULT_ATTEMPTS}"
                )));
            }
        };
    }
    Ok(Some(settings))
}
