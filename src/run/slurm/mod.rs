//! The SLURM launcher: one batch job per trial, laid out as upstream's disaggregated launcher
//! does (spec `upstream-perf-sanity.md` §1.4), every step running `perfsanity run --role <ROLE>`.
//!
//! * [`layout`] — node math and node slices, once, from the plan's topology (pure);
//! * [`site`] — partition/account/time/… from the YAML and `PERF_SLURM_*` (pure);
//! * [`job_env`] — the variables the steps need (pure);
//! * [`quote`] — bash and `#SBATCH` quoting (pure);
//! * [`script`] — the batch script text (pure); `script_parts` — what it shares with [`aggr`]
//!   (the opening, setup, `srun` steps, the end), written once;
//! * [`aggr`] — the batch script of an aggregated trial: one step, `trtllm-llmapi-launch` (pure);
//! * [`state`] — job states, status-command output, end-state classification (pure);
//! * [`poll`], [`submit`] — `sbatch`, `sacct`/`squeue`/`scontrol`, `scancel` (processes); the
//!   submitter prints nothing: it hands typed [`events`] to the caller's sink and polls a
//!   [`cancel`] flag that the caller's signal handler sets;
//! * [`error`] — why a script cannot be generated, a trial not submitted, a Slurm command failed;
//! * `perfsanity slurm script|submit` (the CLI, the signal handler and the rendering of the
//!   events) lives at the edge: `crate::app::slurm_cmd`, `crate::app::slurm_reporter`.
//!
//! User documentation: `docs/SLURM.md`.

pub mod aggr;
pub mod cancel;
pub mod error;
pub mod events;
pub mod job_env;
pub mod layout;
pub mod poll;
pub mod quote;
pub mod script;
mod script_parts;
pub mod site;
pub mod state;
pub mod submit;

use std::path::Path;

pub use aggr::{AggrJob, AggrLayout, AggrScriptInputs, render_aggr_script};
pub use error::{SlurmCommandError, SlurmError, SubmitError};
pub use job_env::JobEnv;
pub use layout::{JobLayout, WorkerStep};
pub use script::{ScriptInputs, render_script};
pub use site::SiteOptions;

use crate::catalog::selection::TrialSpec;
use crate::catalog::trial_id::AggrKind;
use crate::config::load_perf_config;
use crate::plan::prepare::{KeyMode, prepare_aggr_trial, prepare_trial};
use crate::plan::settings::Settings;
use crate::plan::{AggrPlan, Plan};
use crate::util::env::EnvSource;

/// The batch script of `spec`: [`build_aggr_script`] for aggregated-runtime trials, else
/// [`build_script`].
pub fn trial_script(
    settings: &Settings,
    spec: &TrialSpec,
    env: &dyn EnvSource,
    cwd: &Path,
    self_exe: &Path,
) -> Result<String, SlurmError> {
    if spec.aggr.is_some() {
        build_aggr_script(settings, spec, env, cwd, self_exe).map(|(_, s)| s)
    } else {
        build_script(settings, spec, env, cwd, self_exe).map(|(_, s)| s)
    }
}

/// Plans the aggregated-runtime trial `spec` and renders its batch script (one step; see
/// [`aggr`]). Site options come from the environment, and for ctx_only from the disaggregated
/// config's `slurm` and `environment` sections.
pub fn build_aggr_script(
    settings: &Settings,
    spec: &TrialSpec,
    env: &dyn EnvSource,
    cwd: &Path,
    self_exe: &Path,
) -> Result<(AggrPlan, String), SlurmError> {
    let plan = prepare_aggr_trial(settings, spec).map_err(|source| SlurmError::Plan {
        trial: spec.name.clone(),
        source,
    })?;
    let disagg =
        match spec.aggr {
            Some(AggrKind::CtxOnly) => Some(load_perf_config(&plan.config_path).map_err(
                |source| SlurmError::Config {
                    trial: spec.name.clone(),
                    source,
                },
            )?),
            _ => None,
        };
    let no_environment = crate::config::Environment::default();
    let site = SiteOptions::resolve_sections(
        &plan.config_path,
        disagg.as_ref().map(|c| &c.slurm),
        disagg.as_ref().map_or(&no_environment, |c| &c.environment),
        &plan.trial,
        plan.timeouts.trial_s,
        env,
    )?;
    let job_env = JobEnv::from_settings(settings, env, cwd, self_exe)?;
    let job = AggrJob::of(&plan);
    let script = render_aggr_script(&AggrScriptInputs {
        job: &job,
        site: &site,
        job_env: &job_env,
    })?;
    Ok((plan, script))
}

/// Plans `spec` and renders its batch script. `env` supplies the `PERF_SLURM_*` knobs,
/// `PERFSANITY_BIN` and `PERF_DB`; `cwd` resolves relative paths among them; `self_exe` is the
/// default program.
pub fn build_script(
    settings: &Settings,
    spec: &TrialSpec,
    env: &dyn EnvSource,
    cwd: &Path,
    self_exe: &Path,
) -> Result<(Plan, String), SlurmError> {
    let (config, plan) =
        prepare_trial(settings, spec, KeyMode::ReadOnly).map_err(|source| SlurmError::Plan {
            trial: spec.name.clone(),
            source,
        })?;
    let site = SiteOptions::resolve(&config, &plan.trial, plan.timeouts.trial_s, env)?;
    let job_env = JobEnv::from_settings(settings, env, cwd, self_exe)?;
    let script = render_script(&ScriptInputs {
        plan: &plan,
        site: &site,
        job_env: &job_env,
    })?;
    Ok((plan, script))
}
