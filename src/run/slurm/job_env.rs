//! The environment a batch script gives its steps: the settings knobs that decide what a role
//! plans (resolved to absolute paths on the submitting host, so every node plans the same
//! trial), the launcher contract `PERF_LAUNCHER_GEN_LOGS=1`, and the variables that must *not*
//! reach the nodes (`PERF_HOSTNAME`, `DISAGG_SERVING_TYPE`). Everything else — credentials, CI job
//! information — reaches the steps through sbatch's default `--export=ALL` and is never written
//! into the script.

use std::path::{Path, PathBuf};

use crate::plan::settings::Settings;
use crate::util::env::EnvSource;

use super::error::SlurmError;

/// The job's working directory, program and exported variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnv {
    /// The `perfsanity` executable every step runs (`PERFSANITY_BIN`, else this executable).
    pub bin: PathBuf,
    /// Directory the job runs in (the project root, where relative settings were resolved).
    pub workdir: PathBuf,
    /// `export NAME=value`, in order.
    pub exports: Vec<(String, String)>,
    /// Variables removed from the job's environment.
    pub unset: Vec<String>,
}

/// Variables copied as given when set on the submitting host.
const PASS_THROUGH: &[&str] = &[
    "PERF_DATASET_FALLBACK",
    "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT",
    "TRTLLM_TEST_SERVER_READY_TIMEOUT",
];

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn text(name: &str, p: &Path) -> Result<String, SlurmError> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| SlurmError::bad_value(name, format!("{} is not valid UTF-8", p.display())))
}

impl JobEnv {
    /// The job environment for `settings`. `cwd` resolves relative `PERFSANITY_BIN` / `PERF_DB`;
    /// the project root gives the default `PERF_DB`; `self_exe` is the default program.
    pub fn from_settings(
        settings: &Settings,
        env: &dyn EnvSource,
        cwd: &Path,
        self_exe: &Path,
    ) -> Result<Self, SlurmError> {
        let non_empty = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
        let bin = absolute(
            cwd,
            &non_empty("PERFSANITY_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| self_exe.to_path_buf()),
        );
        let db = absolute(
            cwd,
            &non_empty("PERF_DB").map(PathBuf::from).unwrap_or_else(|| {
                crate::results::context::default_db_path(&settings.project_root)
            }),
        );
        let mut dirs = Vec::new();
        for d in &settings.config_dirs {
            let d = text("PERF_CONFIG_DIRS", d)?;
            if d.contains(':') {
                return Err(SlurmError::bad_value(
                    "PERF_CONFIG_DIRS",
                    format!("config folder {d:?} contains ':', the list separator"),
                ));
            }
            dirs.push(d);
        }
        let mut exports = vec![
            ("PERFSANITY_BIN".to_string(), text("PERFSANITY_BIN", &bin)?),
            (
                "PERF_TOOLCHAIN".to_string(),
                settings.toolchain.as_str().to_string(),
            ),
            ("PERF_CONFIG_DIRS".to_string(), dirs.join(":")),
            (
                "PERF_OUTPUT_DIR".to_string(),
                text("PERF_OUTPUT_DIR", &settings.output_root)?,
            ),
            (
                "PERF_SCALE".to_string(),
                settings.scale.as_str().to_string(),
            ),
            (
                "PERF_SIM_DATASETS".to_string(),
                text("PERF_SIM_DATASETS", &settings.sim_dataset_root)?,
            ),
            ("PERF_DB".to_string(), text("PERF_DB", &db)?),
        ];
        if let Some(list) = &settings.testlist {
            exports.push(("PERF_TESTLIST".to_string(), text("PERF_TESTLIST", list)?));
        }
        if let Some(root) = &settings.models_root {
            exports.push((
                "LLM_MODELS_ROOT".to_string(),
                text("LLM_MODELS_ROOT", root)?,
            ));
        }
        if let Some(root) = &settings.repo_root {
            exports.push(("LLM_ROOT".to_string(), text("LLM_ROOT", root)?));
        }
        for name in PASS_THROUGH {
            if let Some(v) = non_empty(name) {
                exports.push((name.to_string(), v));
            }
        }
        exports.push(("PERF_LAUNCHER_GEN_LOGS".to_string(), "1".to_string()));
        Ok(JobEnv {
            bin,
            workdir: settings.project_root.clone(),
            exports,
            unset: vec![
                "PERF_HOSTNAME".to_string(),
                "DISAGG_SERVING_TYPE".to_string(),
            ],
        })
    }
}
