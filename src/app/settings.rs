//! Settings from the environment: every knob read once, validated, and turned into the
//! resolved [`Settings`] value (defined with the plan, `crate::plan::settings`, so the stages
//! can take it without importing the edge). libtest-mimic owns the harness's argv, so the
//! harness is configured through these variables; the CLI reads the same ones. The README lists
//! them all. Resolving `PERF_TOOLCHAIN=auto` looks for `trtllm-serve` on `PATH`: that stat is
//! here, at the edge, too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::Scale;
pub use crate::plan::settings::{
    AGG_READY_TIMEOUT_KNOB, DEFAULT_PROGRESS_S, DEFAULT_STALL_S, DISAGG_READY_TIMEOUT_KNOB,
    READY_TIMEOUT_KNOB, ReadyTimeouts, Settings, WatchSettings,
};
use crate::plan::toolchain::Toolchain;

/// Upper bound of the `PERF_STALL_S` / `PERF_PROGRESS_S` knobs (a week).
const MAX_WATCH_KNOB_S: u64 = 7 * 24 * 3600;

/// `PERF_TOOLCHAIN` as set by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolchainChoice {
    /// `trtllm` when `trtllm-serve` is on `PATH`, else `sim`.
    Auto,
    /// Real TensorRT-LLM.
    Trtllm,
    /// Embedded simulator and native client.
    Sim,
}

impl ToolchainChoice {
    /// Parses `PERF_TOOLCHAIN` (unset or empty = auto).
    pub fn parse(value: Option<&str>) -> Result<Self, SettingsError> {
        match value.map(str::trim).unwrap_or("") {
            "" | "auto" => Ok(ToolchainChoice::Auto),
            "trtllm" => Ok(ToolchainChoice::Trtllm),
            "sim" => Ok(ToolchainChoice::Sim),
            other => Err(SettingsError(format!(
                "PERF_TOOLCHAIN={other:?} is not a toolchain; expected auto, trtllm or sim"
            ))),
        }
    }

    /// The toolchain to use, given whether `trtllm-serve` is on `PATH`.
    pub fn resolve(self, trtllm_serve_on_path: bool) -> Toolchain {
        match self {
            ToolchainChoice::Trtllm => Toolchain::Trtllm,
            ToolchainChoice::Sim => Toolchain::Sim,
            ToolchainChoice::Auto if trtllm_serve_on_path => Toolchain::Trtllm,
            ToolchainChoice::Auto => Toolchain::Sim,
        }
    }
}

/// Whether an executable `program` is in one of `path_var`'s folders.
pub fn on_path(program: &str, path_var: Option<&str>) -> bool {
    path_var
        .map(|p| std::env::split_paths(p).any(|dir| is_executable(&dir.join(program))))
        .unwrap_or(false)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A seconds knob of the liveness watch: unset or empty gives `default`; zero turns it off.
fn watch_seconds(name: &str, value: Option<&str>, default: u64) -> Result<Duration, SettingsError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match v.parse::<u64>() {
            Ok(s) if s <= MAX_WATCH_KNOB_S => Ok(Duration::from_secs(s)),
            _ => Err(SettingsError(format!(
                "{name}={v:?}: expected a whole number of seconds in 0..={MAX_WATCH_KNOB_S} \
                 (0 turns it off)"
            ))),
        },
    }
}

/// `PERF_STALL_S` and `PERF_PROGRESS_S` from `env`.
pub fn watch_settings(env: &dyn EnvSource) -> Result<WatchSettings, SettingsError> {
    let knob = |name: &str, default| watch_seconds(name, env.var(name).as_deref(), default);
    Ok(WatchSettings {
        stall: knob("PERF_STALL_S", DEFAULT_STALL_S)?,
        progress: knob("PERF_PROGRESS_S", DEFAULT_PROGRESS_S)?,
    })
}

/// One of upstream's server-ready timeouts: a positive whole number of seconds, or unset.
fn ready_seconds(name: &str, value: Option<&str>) -> Result<Option<Duration>, SettingsError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(s) if s > 0 => Ok(Some(Duration::from_secs(s))),
            _ => Err(SettingsError(format!(
                "{name}={v:?} is not a positive number of seconds"
            ))),
        },
    }
}

/// The server-ready timeout knobs from `env`.
pub fn ready_timeouts(env: &dyn EnvSource) -> Result<ReadyTimeouts, SettingsError> {
    let knob = |name: &str| ready_seconds(name, env.var(name).as_deref());
    Ok(ReadyTimeouts {
        disagg: knob(DISAGG_READY_TIMEOUT_KNOB)?,
        agg: knob(AGG_READY_TIMEOUT_KNOB)?,
        any: knob(READY_TIMEOUT_KNOB)?,
    })
}

/// `PERF_TRIAL_TIMEOUT_S`: unset, or 1 s up to 30 days.
fn trial_timeout(value: Option<&str>) -> Result<Option<Duration>, SettingsError> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(s) if (1..=crate::app::env_check::MAX_TRIAL_TIMEOUT_S).contains(&s) => {
            Ok(Some(Duration::from_secs(s)))
        }
        _ => Err(SettingsError(format!(
            "PERF_TRIAL_TIMEOUT_S={v:?}: expected a positive whole number of seconds, at most {} \
             (30 days)",
            crate::app::env_check::MAX_TRIAL_TIMEOUT_S
        ))),
    }
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
        let choice = ToolchainChoice::parse(env.var("PERF_TOOLCHAIN").as_deref())?;
        let toolchain = choice.resolve(on_path("trtllm-serve", env.var("PATH").as_deref()));
        let scale = Scale::parse(env.var("PERF_SCALE").as_deref())
            .map_err(|e| SettingsError(e.to_string()))?;
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
        let trial_timeout = trial_timeout(env.var("PERF_TRIAL_TIMEOUT_S").as_deref())?;
        let db_lock_wait =
            crate::results::store::parse_lock_wait(env.var("PERF_DB_LOCK_WAIT_S").as_deref())
                .map_err(|e| SettingsError(e.to_string()))?;
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
            slurm_local_id: non_empty(env.var("SLURM_LOCALID")),
            ready_timeouts: ready_timeouts(env)?,
            trial_timeout,
            watch: watch_settings(env)?,
            db_lock_wait,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_choice_and_path_lookup() {
        assert_eq!(ToolchainChoice::parse(None), Ok(ToolchainChoice::Auto));
        assert!(ToolchainChoice::parse(Some("gpu")).is_err());
        assert_eq!(ToolchainChoice::Auto.resolve(true), Toolchain::Trtllm);
        assert_eq!(ToolchainChoice::Auto.resolve(false), Toolchain::Sim);
        assert!(!on_path("definitely-not-a-program", Some("/usr/bin:/bin")));
        assert!(on_path("sh", Some("/usr/bin:/bin")));
    }

    #[test]
    fn timeouts_are_parsed_into_durations() {
        let env = [
            ("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT", " 90 "),
            ("TRTLLM_TEST_SERVER_READY_TIMEOUT", ""),
            ("PERF_STALL_S", "0"),
        ];
        let ready = ready_timeouts(&env).unwrap();
        assert_eq!(ready.disagg, Some(Duration::from_secs(90)));
        assert_eq!((ready.agg, ready.any), (None, None));
        let watch = watch_settings(&env).unwrap();
        assert_eq!(watch.stall, Duration::ZERO);
        assert_eq!(watch.progress, Duration::from_secs(DEFAULT_PROGRESS_S));
        let e = ready_timeouts(&[("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT=\"soon\" is not a positive number of seconds"
        );
        assert!(ready_timeouts(&[("TRTLLM_TEST_SERVER_READY_TIMEOUT", "0")]).is_err());
        let e = watch_settings(&[("PERF_STALL_S", "2m")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PERF_STALL_S=\"2m\": expected a whole number of seconds"),
            "{e}"
        );
        assert_eq!(
            trial_timeout(Some("3")).unwrap(),
            Some(Duration::from_secs(3))
        );
        assert!(trial_timeout(Some("3m")).is_err());
        assert_eq!(trial_timeout(None).unwrap(), None);
    }
}
