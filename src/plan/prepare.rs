//! From a selected trial to its plan: load and validate the config, obtain the auth key, build
//! the plan; and write a plan's files. Shared by the CLI (`plan`, `check`) and the harness.

use std::path::Path;

use crate::catalog::selection::TrialSpec;
use crate::catalog::trial_id::AggrKind;
use crate::config::{ConfigError, PerfConfig, load_aggregated_config, load_perf_config};
use crate::plan::auth_key;
use crate::plan::settings::Settings;
use crate::plan::{
    AggrPlan, AggrRequest, AggrSource, Plan, PlanError, PlanInputs, Timeouts, TrialRequest,
    build_aggr_plan, build_plan,
};

/// Why a trial could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrialError {
    /// Failed before reading a config (duplicate stem, unknown id, bad test-list line).
    #[error("{0}")]
    Preflight(String),
    /// The trial name or config stem cannot be a file name.
    #[error(transparent)]
    Component(#[from] crate::util::path_component::ComponentError),
    /// The config is invalid.
    #[error("config error:\n{0}")]
    Config(#[from] ConfigError),
    /// The plan cannot be built.
    #[error("plan error: {0}")]
    Plan(#[from] PlanError),
    /// The dataset the plan names cannot be used.
    #[error(transparent)]
    Dataset(#[from] super::dataset_check::DatasetCheckError),
    /// Files could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// How the auth key is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Dry-run: use an existing key or show a placeholder; write nothing.
    ReadOnly,
    /// Create the key file when missing (a real run).
    Create,
}

/// The plan of `spec`.
pub fn plan_trial(
    settings: &Settings,
    spec: &TrialSpec,
    key_mode: KeyMode,
) -> Result<Plan, TrialError> {
    prepare_trial(settings, spec, key_mode).map(|(_, plan)| plan)
}

/// The validated config and the plan of `spec`.
pub fn prepare_trial(
    settings: &Settings,
    spec: &TrialSpec,
    key_mode: KeyMode,
) -> Result<(PerfConfig, Plan), TrialError> {
    if let Some(message) = &spec.preflight_error {
        return Err(TrialError::Preflight(message.clone()));
    }
    if spec.aggr.is_some() {
        return Err(TrialError::Preflight(format!(
            "{} is an aggregated-runtime trial (one aggregated server per step), not a \
             disaggregated process graph; this command does not run it yet",
            spec.name
        )));
    }
    let (Some(stem), Some(path)) = (&spec.stem, &spec.config_path) else {
        return Err(TrialError::Preflight(format!(
            "trial {} has no config",
            spec.name
        )));
    };
    // Both become file names under the output folder (the catalog checks stems already; this
    // guards every other way a trial can be named).
    for (what, value) in [
        ("trial name", spec.name.as_str()),
        ("config stem", stem.as_str()),
    ] {
        crate::util::path_component::check_component(what, value)?;
    }
    let config = load_perf_config(path)?;
    let output_dir = settings.output_root.join(&spec.name);
    let auth_key = match (&config.internal_request_auth_key, key_mode) {
        (Some(k), _) => k.clone(),
        (None, KeyMode::ReadOnly) => auth_key::read_key(&output_dir)
            .unwrap_or_else(|| auth_key::AUTH_KEY_PLACEHOLDER.to_string()),
        (None, KeyMode::Create) => auth_key::obtain_key(&output_dir).map_err(|e| {
            TrialError::Io(format!(
                "cannot create {}: {e}",
                auth_key::key_path(&output_dir).display()
            ))
        })?,
    };
    let inputs = plan_inputs(settings, auth_key);
    let request = TrialRequest {
        trial: spec.name.clone(),
        test_list_id: spec.test_list_id.clone(),
        stem: stem.clone(),
        upload: spec.upload,
        mode_override: spec.mode_override,
        time_limit_s: spec.time_limit_s,
    };
    let mut plan = build_plan(&config, &request, &inputs)?;
    super::dataset_check::check_dataset(&plan.dataset)?;
    apply_trial_timeout(settings, &mut plan.timeouts);
    Ok((config, plan))
}

/// The plan of an aggregated-runtime trial (`spec.aggr` set): servers of an aggregated config, or
/// ctx_only of a disaggregated one.
pub fn prepare_aggr_trial(settings: &Settings, spec: &TrialSpec) -> Result<AggrPlan, TrialError> {
    if let Some(message) = &spec.preflight_error {
        return Err(TrialError::Preflight(message.clone()));
    }
    let (Some(stem), Some(path), Some(kind)) = (&spec.stem, &spec.config_path, &spec.aggr) else {
        return Err(TrialError::Preflight(format!(
            "trial {} has no aggregated config",
            spec.name
        )));
    };
    let inputs = plan_inputs(settings, String::new());
    let request = AggrRequest {
        trial: spec.name.clone(),
        test_list_id: spec.test_list_id.clone(),
        stem: stem.clone(),
        upload: spec.upload,
        kind: kind.clone(),
        time_limit_s: spec.time_limit_s,
    };
    let mut plan = match kind {
        AggrKind::Servers(_) => {
            let mut config = load_aggregated_config(path)?;
            merge_extra_configs(&mut config, settings)?;
            build_aggr_plan(AggrSource::Aggregated(&config), &request, &inputs)?
        }
        AggrKind::CtxOnly => {
            let config = load_perf_config(path)?;
            build_aggr_plan(AggrSource::CtxOnly(&config), &request, &inputs)?
        }
    };
    apply_trial_timeout(settings, &mut plan.timeouts);
    Ok(plan)
}

/// The plan inputs `settings` give, with `auth_key` (empty where the plan needs none) and the
/// real file system as the existence check.
fn plan_inputs(settings: &Settings, auth_key: String) -> PlanInputs<'static> {
    PlanInputs {
        output_root: settings.output_root.clone(),
        models_root: settings.models_root.clone(),
        repo_root: settings.repo_root.clone(),
        cwd: settings.project_root.clone(),
        sim_dataset_root: settings.sim_dataset_root.clone(),
        toolchain: settings.toolchain,
        scale: settings.scale,
        hostname: settings.hostname.clone(),
        job_id: settings.job_id.clone(),
        auth_key,
        dataset_fallback_env: settings.dataset_fallback_env,
        ready_timeouts: settings.ready_timeouts,
        exists: &Path::exists,
    }
}

/// `PERF_TRIAL_TIMEOUT_S` (in `settings`) replaces the test list's TIMEOUT (minutes) for every
/// trial.
fn apply_trial_timeout(settings: &Settings, timeouts: &mut Timeouts) {
    if let Some(limit) = settings.trial_timeout {
        timeouts.trial_s = Some(limit.as_secs());
        timeouts.trial_source = "PERF_TRIAL_TIMEOUT_S".to_string();
    }
}

/// Reads every server's `extra_llm_api_config_path` (joined to `LLM_ROOT` unless absolute) and
/// merges it under the server's keys. A file that cannot be found is an error with the TensorRT-LLM
/// toolchain; with the simulator (which ignores engine options it does not model) it is a
/// warning in the plan.
fn merge_extra_configs(
    config: &mut crate::config::AggregatedConfig,
    settings: &Settings,
) -> Result<(), TrialError> {
    let path_of = config.path.clone();
    let mut warnings = Vec::new();
    for server in &mut config.servers {
        let Some(extra) = server.extra_llm_api_config_path.clone() else {
            continue;
        };
        let given = Path::new(&extra.value);
        let resolved = if given.is_absolute() {
            Some(given.to_path_buf())
        } else {
            settings.repo_root.as_ref().map(|r| r.join(given))
        };
        let mut missing = |why: String| -> Result<(), TrialError> {
            let message = format!(
                "{}: `{}`: {:?} {why}",
                path_of.display(),
                extra.key,
                extra.value
            );
            if settings.toolchain == crate::plan::toolchain::Toolchain::Trtllm {
                Err(TrialError::Io(message))
            } else {
                warnings.push(format!(
                    "{message}; the simulator runs with the entry's own engine keys"
                ));
                Ok(())
            }
        };
        let Some(file) = resolved else {
            missing("is relative to upstream's repository root, and LLM_ROOT is not set".into())?;
            continue;
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                missing(format!("cannot be read at {}: {e}", file.display()))?;
                continue;
            }
        };
        let root = crate::config::load_yaml_file_text(&text, &file)?;
        match root.value {
            crate::util::yaml::Value::Map(m) => server.merge_extra_config(&m),
            crate::util::yaml::Value::Null => {}
            _ => {
                return Err(TrialError::Io(format!(
                    "{}: expected a mapping of engine options",
                    file.display()
                )));
            }
        }
    }
    config.warnings.extend(warnings);
    Ok(())
}

/// Writes an aggregated plan's generated files and `plan.json` into the trial's output directory.
pub fn write_aggr_plan_files(plan: &AggrPlan) -> Result<(), TrialError> {
    let io = |what: &Path, e: std::io::Error| {
        TrialError::Io(format!("cannot write {}: {e}", what.display()))
    };
    std::fs::create_dir_all(&plan.output_dir).map_err(|e| io(&plan.output_dir, e))?;
    for file in &plan.files {
        write_atomic(&file.path, file.content.as_bytes()).map_err(|e| io(&file.path, e))?;
    }
    let json = serde_json::to_string_pretty(plan)
        .map_err(|e| TrialError::Io(format!("cannot serialise the plan: {e}")))?;
    let path = plan.output_dir.join("plan.json");
    write_atomic(&path, json.as_bytes()).map_err(|e| io(&path, e))
}

/// Writes the plan's generated files (keeping an existing auth key) and `plan.json` into the
/// trial's output directory.
pub fn write_plan_files(plan: &Plan) -> Result<(), TrialError> {
    let io = |what: &Path, e: std::io::Error| {
        TrialError::Io(format!("cannot write {}: {e}", what.display()))
    };
    std::fs::create_dir_all(&plan.output_dir).map_err(|e| io(&plan.output_dir, e))?;
    for file in &plan.files {
        if file.keep_existing && file.path.exists() {
            continue;
        }
        if let Some(parent) = file.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        write_atomic(&file.path, file.content.as_bytes()).map_err(|e| io(&file.path, e))?;
    }
    let json = serde_json::to_string_pretty(plan)
        .map_err(|e| TrialError::Io(format!("cannot serialise the plan: {e}")))?;
    let path = plan.output_dir.join("plan.json");
    write_atomic(&path, json.as_bytes()).map_err(|e| io(&path, e))
}

/// Kept here for the callers that still import it from the plan stage.
pub use crate::util::fs::write_atomic;
