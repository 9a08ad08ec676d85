//! The catalog commands of the CLI: `list`, `plan` (the dry-run) and `check`.
//! Each returns the text to print and whether it succeeded, so `main` stays a thin shell.

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::app::settings::Settings;
use crate::catalog::list_cache::{ConfigSummary, summaries};
use crate::catalog::scan::Catalog;
use crate::catalog::selection::{TrialSpec, all_trials, testlist_trials};
use crate::catalog::testlist::{load_testlist, require_tests};
use crate::catalog::trial_id::{id_from_node_id, resolve, trial_name};
use crate::config::{PerfConfig, load_perf_config};
use crate::plan::prepare::{KeyMode, plan_trial};
use crate::plan::{Topology, render_text};

/// Output of a command.
pub struct Outcome {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// Exit successfully?
    pub ok: bool,
}

impl Outcome {
    fn failure(message: String) -> Self {
        Outcome {
            stdout: String::new(),
            stderr: message,
            ok: false,
        }
    }
}

/// The selected trials: the test list's when `PERF_TESTLIST` is set, else the whole catalog.
pub fn selected_trials(settings: &Settings) -> Result<(Catalog, Vec<TrialSpec>), String> {
    let catalog = Catalog::scan(&settings.config_dirs).map_err(|e| e.to_string())?;
    let trials = match &settings.testlist {
        Some(path) => {
            let list = load_testlist(path).map_err(|e| e.to_string())?;
            require_tests(&list, settings.allow_empty_testlist).map_err(|e| e.to_string())?;
            testlist_trials(&catalog, &list)
        }
        None => all_trials(&catalog),
    };
    Ok((catalog, trials))
}

/// Parses every config of `paths` on all cores and maps each result with `summarize` on the
/// same worker (so big parsed configs are dropped where they were built), keeping order.
pub fn parse_all<T: Send>(
    paths: &[PathBuf],
    summarize: impl Fn(Result<PerfConfig, crate::config::ConfigError>) -> T + Sync,
) -> Vec<T> {
    paths
        .par_iter()
        .map(|p| summarize(load_perf_config(p)))
        .collect()
}

#[derive(Serialize)]
struct ListRow {
    name: String,
    stem: Option<String>,
    config: Option<PathBuf>,
    upload: bool,
    mode: Option<String>,
    client: Option<String>,
    gpus: Option<u64>,
    nodes: Option<u64>,
    time_limit_s: Option<u64>,
    error: Option<String>,
}

/// `perfsanity list [--json] [--no-cache]`.
pub fn list(settings: &Settings, json: bool, use_cache: bool) -> Outcome {
    let (_, trials) = match selected_trials(settings) {
        Ok(t) => t,
        Err(e) => return Outcome::failure(e),
    };
    let trials = crate::app::selection_guard::once_per_config(
        trials,
        &Default::default(),
        settings.all_families,
    );
    let mut paths: Vec<PathBuf> = trials
        .iter()
        .filter_map(|t| t.config_path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    let cache = settings.target_dir.join("perfsanity-cache/list.json");
    let parsed = summaries(&paths, use_cache.then_some(cache.as_path()), |ps| {
        parse_all(ps, |r| {
            r.map(|c| ConfigSummary::of(&c)).map_err(|e| e.to_string())
        })
    });
    let rows: Vec<ListRow> = trials
        .iter()
        .map(|t| {
            let config = t
                .config_path
                .as_ref()
                .and_then(|p| paths.binary_search(p).ok())
                .map(|i| &parsed[i]);
            let mut row = ListRow {
                name: t.name.clone(),
                stem: t.stem.clone(),
                config: t.config_path.clone(),
                upload: t.upload,
                mode: None,
                client: None,
                gpus: None,
                nodes: None,
                time_limit_s: t.time_limit_s,
                error: t.preflight_error.clone(),
            };
            match config {
                Some(Ok(c)) if row.error.is_none() => {
                    let mode = t.mode_override.unwrap_or(c.benchmark_mode());
                    let topo = Topology::from_shape(
                        &c.shape,
                        mode == crate::config::BenchmarkMode::GenOnlyNoContext,
                    );
                    row.mode = Some(mode.as_str().to_string());
                    row.client = Some(if c.nv_sa { "nv_sa" } else { "standard" }.to_string());
                    row.gpus = Some(topo.gpus_used);
                    row.nodes = Some(topo.total_nodes);
                }
                Some(Err(e)) if row.error.is_none() => row.error = Some(e.clone()),
                _ => {}
            }
            row
        })
        .collect();
    if json {
        return Outcome {
            stdout: serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n",
            stderr: String::new(),
            ok: true,
        };
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in &rows {
        match &r.error {
            None => out.push_str(&format!(
                "{:<width$}  {:<19}  {:<8}  {:>4} GPUs  {:>3} nodes\n",
                r.name,
                r.mode.as_deref().unwrap_or(""),
                r.client.as_deref().unwrap_or(""),
                r.gpus.unwrap_or(0),
                r.nodes.unwrap_or(0),
            )),
            Some(e) => out.push_str(&format!(
                "{:<width$}  INVALID: {}\n",
                r.name,
                e.lines().next().unwrap_or("")
            )),
        }
    }
    out.push_str(&format!(
        "{} trials, {} invalid (perfsanity check shows the details)\n",
        rows.len(),
        rows.iter().filter(|r| r.error.is_some()).count()
    ));
    Outcome {
        stdout: out,
        stderr: String::new(),
        ok: true,
    }
}

/// Finds a trial by exact name, or by any upstream id / node id that resolves to one.
pub fn find_trial(
    catalog: &Catalog,
    trials: &[TrialSpec],
    wanted: &str,
) -> Result<TrialSpec, String> {
    if let Some(t) = trials.iter().find(|t| t.name == wanted) {
        return Ok(t.clone());
    }
    let id = id_from_node_id(wanted)?;
    let resolved = resolve(id, &catalog.stems()).map_err(|e| e.to_string())?;
    let config = catalog
        .get(&resolved.stem)
        .ok_or_else(|| format!("no config for {wanted:?}"))?;
    let name = trial_name(resolved.upload, &resolved.stem);
    Ok(TrialSpec {
        test_list_id: id.to_string(),
        name: match resolved.mode_label {
            Some(label) => match load_perf_config(&config.path) {
                Ok(c) if c.benchmark.mode != label => {
                    crate::catalog::trial_id::labelled_trial_name(
                        resolved.upload,
                        label,
                        &resolved.stem,
                    )
                }
                _ => name,
            },
            None => name,
        },
        stem: Some(resolved.stem.clone()),
        config_path: Some(config.path.clone()),
        upload: resolved.upload,
        mode_override: resolved.mode_label,
        time_limit_s: None,
        origin: None,
        preflight_error: config.duplicate_error(),
    })
}

/// `perfsanity plan <trial> [--json]`: the dry-run.
pub fn plan(settings: &Settings, wanted: &str, json: bool) -> Outcome {
    let (catalog, trials) = match selected_trials(settings) {
        Ok(t) => t,
        Err(e) => return Outcome::failure(e),
    };
    let spec = match find_trial(&catalog, &trials, wanted) {
        Ok(s) => s,
        Err(e) => return Outcome::failure(format!("perfsanity plan: {e}")),
    };
    match plan_trial(settings, &spec, KeyMode::ReadOnly) {
        Ok(plan) => Outcome {
            stdout: if json {
                serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n"
            } else {
                render_text(&plan)
            },
            stderr: String::new(),
            ok: true,
        },
        Err(e) => Outcome::failure(format!("{}: {e}", spec.name)),
    }
}

/// `perfsanity check`: validates every config (and its plan) and the test list.
pub fn check(settings: &Settings) -> Outcome {
    let (_, trials) = match selected_trials(settings) {
        Ok(t) => t,
        Err(e) => return Outcome::failure(e),
    };
    let mut out = String::new();
    let mut errors = 0;
    let mut warnings = 0;
    let mut configs_seen: std::collections::HashSet<PathBuf> = Default::default();
    let mut checked = 0;
    if let Err(e) = crate::run::launch::watch::check_env() {
        errors += 1;
        out.push_str(&format!("ERROR  runner knobs\n  {e}\n"));
    }
    for spec in &trials {
        // Both trials of a stem share a config and a plan shape: check each config once,
        // but every failing trial (unknown ids, bad lines) individually.
        if let Some(path) = &spec.config_path
            && !configs_seen.insert(path.clone())
            && spec.preflight_error.is_none()
        {
            continue;
        }
        checked += 1;
        match plan_trial(settings, spec, KeyMode::ReadOnly) {
            Ok(plan) => {
                out.push_str(&format!("ok     {}\n", spec.name));
                for w in &plan.warnings {
                    warnings += 1;
                    out.push_str(&format!("  warning: {w}\n"));
                }
            }
            Err(e) => {
                errors += 1;
                out.push_str(&format!("ERROR  {}\n", spec.name));
                for line in e.to_string().lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
    }
    if let Err(e) = output_problems(settings) {
        errors += 1;
        out.push_str(&format!("ERROR  results outputs\n  {e}\n"));
    }
    out.push_str(&format!(
        "{checked} checked, {errors} error(s), {warnings} warning(s)\n"
    ));
    Outcome {
        stdout: out,
        stderr: String::new(),
        ok: errors == 0,
    }
}

/// Where this run's results would go (`PERF_DB`, `PERF_JUNIT`), checked without creating them.
fn output_problems(settings: &Settings) -> Result<(), String> {
    use crate::app::settings::ProcessEnv;
    // The GPU type does not matter here; a placeholder keeps `check` from running nvidia-smi.
    let results = crate::results::ResultsContext::from_env_with_gpu(
        &ProcessEnv,
        &settings.target_dir,
        String::new(),
    )
    .map_err(|e| e.to_string())?;
    crate::app::output_check::check_outputs(&results.db_path, &ProcessEnv)
}

/// `perfsanity run [--role R] <trial>…`: plans, runs and records trials on this host (all roles,
/// or the one role given by `--role` / `DISAGG_SERVING_TYPE`).
pub fn run(
    mut settings: Settings,
    wanted: &[String],
    role: Option<crate::plan::Role>,
    tee: bool,
    junit: Option<&std::path::Path>,
) -> Outcome {
    if role.is_some() {
        settings.role = role;
    }
    let (catalog, trials) = match selected_trials(&settings) {
        Ok(t) => t,
        Err(e) => return Outcome::failure(e),
    };
    let specs: Vec<TrialSpec> = if wanted.is_empty() {
        let trials = crate::app::selection_guard::once_per_config(
            trials,
            &Default::default(),
            settings.all_families,
        );
        if let Err(e) = crate::app::selection_guard::check_not_empty(
            &trials,
            "the catalog or test list is empty",
            settings.allow_empty,
        ) {
            return Outcome::failure(format!("perfsanity run: {e}"));
        }
        trials
    } else {
        match wanted
            .iter()
            .map(|w| find_trial(&catalog, &trials, w))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(s) => s,
            Err(e) => return Outcome::failure(format!("perfsanity run: {e}")),
        }
    };
    let self_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return Outcome::failure(format!("perfsanity run: cannot locate myself: {e}")),
    };
    let mut executor = match crate::run::execute::Executor::from_env(settings, self_exe, tee) {
        Ok(e) => e,
        Err(e) => return Outcome::failure(format!("perfsanity run: {e}")),
    };
    match crate::app::progress_reporter::ProgressMode::from_env() {
        Ok(mode) => {
            executor.progress = Box::new(crate::app::progress_reporter::Reporter::new(mode))
        }
        Err(e) => return Outcome::failure(format!("perfsanity run: {e}")),
    }
    crate::run::launch::signals::install();
    let mut out = String::new();
    let mut failed = 0;
    let mut outcomes = Vec::new();
    for spec in &specs {
        let outcome = executor.execute(spec);
        let secs = outcome.duration.as_secs_f64();
        match &outcome.status {
            crate::run::outcome::TrialStatus::Failed(f) => {
                failed += 1;
                out.push_str(&format!("FAIL {} ({secs:.1} s)\n{f}\n", spec.name));
            }
            _ => out.push_str(&format!("PASS {} ({secs:.1} s)\n", spec.name)),
        }
        for line in &outcome.summary {
            out.push_str(&format!("  {line}\n"));
        }
        // Print as we go: trials take minutes.
        print!("{}", crate::util::terminal::escape_lines(&out));
        out.clear();
        outcomes.push(outcome);
    }
    if let Some(path) = junit
        && let Err(e) = crate::report::junit::write_junit_named(
            path,
            &outcomes,
            &crate::report::junit::case_names(&specs),
        )
    {
        return Outcome::failure(format!("perfsanity run: {e}"));
    }
    Outcome {
        stdout: format!("{} trial(s), {failed} failed\n", specs.len()),
        stderr: String::new(),
        ok: failed == 0,
    }
}
