//! Site options of a batch script: partition, account, time, job name, extra sbatch arguments,
//! segment, container flags and launcher details — from the YAML `slurm:` / `environment:`
//! sections, overridden by `PERF_SLURM_*` variables. Pure: config + environment in, options out.

use crate::config::PerfConfig;
use crate::util::env::EnvSource;

use super::error::SlurmError;

/// A value and where it came from (for messages and the script's comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    /// The value.
    pub value: String,
    /// `slurm.partition` or `PERF_SLURM_PARTITION`.
    pub source: String,
}

/// pyxis container flags of every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `--container-image`.
    pub image: Sourced,
    /// `--container-mounts`, when given.
    pub mounts: Option<Sourced>,
}

/// Everything site-specific a batch script needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteOptions {
    /// `--partition`.
    pub partition: Option<Sourced>,
    /// `--account`.
    pub account: Option<Sourced>,
    /// `--time`.
    pub time: Option<Sourced>,
    /// `--job-name` (default: the trial name).
    pub job_name: Sourced,
    /// Extra sbatch arguments (shell words).
    pub extra_args: Vec<String>,
    /// Where the extra arguments came from.
    pub extra_args_source: String,
    /// Add `--segment=<total nodes>`.
    pub segment: bool,
    /// Add `--gpus-per-node=<gpus_per_node>`.
    pub gpus_per_node_flag: bool,
    /// `srun --mpi=<this>` for worker steps (None: no `--mpi`).
    pub mpi: Option<String>,
    /// Container flags (None: steps run on the host).
    pub container: Option<Container>,
    /// Why the YAML's container settings are not used, if they are not.
    pub container_note: Option<String>,
    /// Wrapper of multi-rank worker steps with the trtllm toolchain.
    pub llmapi_launch: Vec<String>,
    /// Seconds to sleep after launching each background step.
    pub step_pause_s: u64,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn parse_bool(name: &str, value: &str) -> Result<bool, SlurmError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(SlurmError::bad_value(
            name,
            format!("{other:?} is not a boolean; expected 1/0, true/false, yes/no or on/off"),
        )),
    }
}

impl SiteOptions {
    /// Options for `trial` of `config` under `env`. `trial_limit_s` is the test list's
    /// `TIMEOUT (N)`, used for `--time` when neither `PERF_SLURM_TIME` nor `slurm.job_time` is set.
    pub fn resolve(
        config: &PerfConfig,
        trial: &str,
        trial_limit_s: Option<u64>,
        env: &dyn EnvSource,
    ) -> Result<Self, SlurmError> {
        Self::resolve_sections(
            &config.path,
            Some(&config.slurm),
            &config.environment,
            trial,
            trial_limit_s,
            env,
        )
    }

    /// Options from a config's `slurm` section (none in upstream's aggregated layout: then the
    /// `PERF_SLURM_*` variables and the cluster's defaults) and `environment` section.
    pub fn resolve_sections(
        path: &std::path::Path,
        slurm: Option<&crate::config::SlurmSection>,
        environment: &crate::config::Environment,
        trial: &str,
        trial_limit_s: Option<u64>,
        env: &dyn EnvSource,
    ) -> Result<Self, SlurmError> {
        let file = path.display().to_string();
        let none = None;
        let yaml =
            |get: fn(&crate::config::SlurmSection) -> &Option<String>| slurm.map_or(&none, get);
        let pick = |var: &str, key: &str, yaml: &Option<String>| -> Option<Sourced> {
            if let Some(v) = non_empty(env.var(var)) {
                return Some(Sourced {
                    value: v,
                    source: var.to_string(),
                });
            }
            yaml.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| Sourced {
                    value: v.clone(),
                    source: format!("{key} in {file}"),
                })
        };
        let time = pick("PERF_SLURM_TIME", "slurm.job_time", yaml(|s| &s.job_time)).or_else(|| {
            trial_limit_s.map(|s| Sourced {
                value: s.div_ceil(60).max(1).to_string(),
                source: "the test list's TIMEOUT".to_string(),
            })
        });
        let job_name = pick(
            "PERF_SLURM_JOB_NAME",
            "slurm.job_name",
            yaml(|s| &s.job_name),
        )
        .unwrap_or(Sourced {
            value: trial.to_string(),
            source: "the trial name".to_string(),
        });
        let (extra_text, extra_args_source) = match non_empty(env.var("PERF_SLURM_EXTRA_ARGS")) {
            Some(v) => (v, "PERF_SLURM_EXTRA_ARGS".to_string()),
            None => (
                yaml(|s| &s.extra_args).clone().unwrap_or_default(),
                format!("slurm.extra_args in {file}"),
            ),
        };
        let extra_args = shlex::split(&extra_text).ok_or_else(|| {
            SlurmError::bad_value(
                &extra_args_source,
                format!("{extra_text:?} has an unbalanced quote; expected shell words"),
            )
        })?;
        let segment = match non_empty(env.var("PERF_SLURM_SEGMENT")) {
            Some(v) => parse_bool("PERF_SLURM_SEGMENT", &v)?,
            None => slurm.and_then(|s| s.set_segment).unwrap_or(false),
        };
        let gpus_per_node_flag = match non_empty(env.var("PERF_SLURM_GPUS")) {
            Some(v) => parse_bool("PERF_SLURM_GPUS", &v)?,
            None => true,
        };
        let mpi = match non_empty(env.var("PERF_SLURM_MPI")) {
            Some(v) if v.trim() == "none" => None,
            Some(v) => Some(v.trim().to_string()),
            None => Some("pmix".to_string()),
        };
        let container_mode = non_empty(env.var("PERF_SLURM_CONTAINER"))
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "auto".to_string());
        let image = pick(
            "PERF_SLURM_CONTAINER_IMAGE",
            "environment.container_image",
            &environment.container_image,
        );
        let mounts = pick(
            "PERF_SLURM_CONTAINER_MOUNTS",
            "environment.container_mount",
            &environment.container_mount,
        );
        let (container, container_note) = match container_mode.as_str() {
            "auto" | "on" | "1" => match (image, mounts) {
                (Some(image), mounts) => (Some(Container { image, mounts }), None),
                (None, Some(m)) => (
                    None,
                    Some(format!(
                        "container mounts from {} are ignored: no container image is set",
                        m.source
                    )),
                ),
                (None, None) if container_mode != "auto" => {
                    return Err(SlurmError::bad_value(
                        "PERF_SLURM_CONTAINER",
                        "asks for containers but no image is set (environment.container_image \
                         or PERF_SLURM_CONTAINER_IMAGE)",
                    ));
                }
                (None, None) => (None, None),
            },
            "off" | "0" | "none" => (
                None,
                image.or(mounts).map(|v| {
                    format!(
                        "container settings ({}) disabled by PERF_SLURM_CONTAINER=off",
                        v.source
                    )
                }),
            ),
            other => {
                return Err(SlurmError::bad_value(
                    "PERF_SLURM_CONTAINER",
                    format!("{other:?}; expected auto, on or off"),
                ));
            }
        };
        let llmapi_text = non_empty(env.var("PERF_SLURM_LLMAPI_LAUNCH"))
            .unwrap_or_else(|| "trtllm-llmapi-launch".to_string());
        let llmapi_launch = shlex::split(&llmapi_text).ok_or_else(|| {
            SlurmError::bad_value(
                "PERF_SLURM_LLMAPI_LAUNCH",
                format!("{llmapi_text:?} has an unbalanced quote"),
            )
        })?;
        let step_pause_s = match non_empty(env.var("PERF_SLURM_STEP_PAUSE")) {
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                SlurmError::bad_value(
                    "PERF_SLURM_STEP_PAUSE",
                    format!("{v:?} is not a whole number of seconds"),
                )
            })?,
            None if container.is_some() => 5,
            None => 0,
        };
        Ok(SiteOptions {
            partition: pick(
                "PERF_SLURM_PARTITION",
                "slurm.partition",
                yaml(|s| &s.partition),
            ),
            account: pick("PERF_SLURM_ACCOUNT", "slurm.account", yaml(|s| &s.account)),
            time,
            job_name,
            extra_args,
            extra_args_source,
            segment,
            gpus_per_node_flag,
            mpi,
            container,
            container_note,
            llmapi_launch,
            step_pause_s,
        })
    }
}
