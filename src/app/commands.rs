//! The catalog commands of the CLI: `list`, `plan` (the dry-run) and `check`.
//! Each returns the text to print and whether it succeeded, so `main` stays a thin shell.

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::app::settings::Settings;
use crate::catalog::list_cache::{ConfigSummary, summaries};
use crate::catalog::scan::Catalog;
pub use crate::catalog::selection::find_trial;
use crate::catalog::selection::{TrialSpec, all_trials, testlist_trials};
use crate::catalog::testlist::{load_testlist, require_tests};
use crate::catalog::trial_id::AggrKind;
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
        .filter(|t| !matches!(t.aggr, Some(AggrKind::Servers(_))))
        .filter_map(|t| t.config_path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    let cache = settings.target_dir.join("perfsanity-cache/list.json");
    let parsed = summaries(&paths, use_cache.then_some(cache.as_path()), |ps| {
        parse_all(ps, |r| r.map(|c| ConfigSummary::of(&c)))
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
            if let Some(AggrKind::Servers(selection)) = &t.aggr {
                if row.error.is_none() {
                    aggr_row(&mut row, t, selection.as_deref());
                }
                return row;
            }
            match config {
                Some(Ok(c)) if row.error.is_none() && t.aggr == Some(AggrKind::CtxOnly) => {
                    let ctx =
                        crate::plan::WorkerTopology::new(1, c.shape.ctx, c.shape.gpus_per_node);
                    row.mode = Some("ctx_only".to_string());
                    row.client = Some(if c.nv_sa { "nv_sa" } else { "standard" }.to_string());
                    row.gpus = Some(ctx.gpus_per_worker);
                    row.nodes = Some(ctx.nodes_per_worker);
                }
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
                Some(Err(e)) if row.error.is_none() => row.error = Some(e.to_string()),
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

/// A `list` row of an aggregated config's trial: mode `aggr`, the client kinds of its servers,
/// the largest server's GPUs and nodes (servers run one at a time).
fn aggr_row(row: &mut ListRow, t: &TrialSpec, selection: Option<&[String]>) {
    let Some(path) = &t.config_path else { return };
    let config = match crate::config::load_aggregated_config(path) {
        Ok(c) => c,
        Err(e) => {
            row.error = Some(e.to_string());
            return;
        }
    };
    let servers = match crate::plan::select_servers(&config, selection) {
        Ok(s) => s,
        Err(e) => {
            row.error = Some(e.to_string());
            return;
        }
    };
    let nv_sa = |c: &crate::config::AggrClient| {
        c.use_nv_sa_benchmark
            .or(config.benchmark.as_ref().map(|b| b.use_nv_sa_benchmark))
            .unwrap_or(false)
    };
    let kinds: std::collections::BTreeSet<&str> = servers
        .iter()
        .flat_map(|s| s.clients.iter())
        .map(|c| if nv_sa(c) { "nv_sa" } else { "standard" })
        .collect();
    row.mode = Some("aggr".to_string());
    row.client = Some(kinds.into_iter().collect::<Vec<_>>().join("+"));
    row.gpus = servers.iter().map(|s| s.gpus).max();
    row.nodes = servers
        .iter()
        .map(|s| s.gpus.div_ceil(s.gpus_per_node.max(1)).max(1))
        .max();
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
    if spec.aggr.is_some() {
        return match crate::plan::prepare::prepare_aggr_trial(settings, &spec) {
            Ok(plan) => Outcome {
                stdout: if json {
                    serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n"
                } else {
                    crate::plan::render_aggr_text(&plan)
                },
                stderr: String::new(),
                ok: true,
            },
            Err(e) => Outcome::failure(format!("{}: {e}", spec.name)),
        };
    }
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

/// What `check` plans once: a config under one runtime (disaggregated, ctx_only,
/// gen_only_no_context) or one server selection.
fn check_key(path: &std::path::Path, spec: &TrialSpec) -> (PathBuf, String) {
    let runtime = match (&spec.aggr, spec.mode_override) {
        (Some(kind), _) => format!("{kind:?}"),
        (None, Some(mode)) => mode.as_str().to_string(),
        (None, None) => String::new(),
    };
    (path.to_path_buf(), runtime)
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
    let mut configs_seen: std::collections::HashSet<(PathBuf, String)> = Default::default();
    let mut checked = 0;
    for spec in &trials {
        // Trials of a stem share a config: check each config once per runtime (and every
        // selection of servers), but every failing trial (unknown ids, bad lines) individually.
        if let Some(path) = &spec.config_path
            && !configs_seen.insert(check_key(path, spec))
            && spec.preflight_error.is_none()
        {
            continue;
        }
        checked += 1;
        let planned = match &spec.aggr {
            Some(_) => crate::plan::prepare::prepare_aggr_trial(settings, spec).map(|p| p.warnings),
            None => plan_trial(settings, spec, KeyMode::ReadOnly).map(|p| p.warnings),
        };
        match planned {
            Ok(plan_warnings) => {
                out.push_str(&format!("ok     {}\n", spec.name));
                for w in &plan_warnings {
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
    let mut executor = match crate::app::from_env::executor(settings, self_exe, tee) {
        Ok(e) => e,
        Err(e) => return Outcome::failure(format!("perfsanity run: {e}")),
    };
    match crate::app::progress_reporter::ProgressMode::from_env() {
        Ok(mode) => {
            executor.progress = Box::new(crate::app::progress_reporter::Reporter::new(mode))
        }
        Err(e) => return Outcome::failure(format!("perfsanity run: {e}")),
    }
    crate::app::signal_handler::install();
    crate::app::from_env::own_process_tree(&executor.self_exe);
    let mut out = String::new();
    let mut failed = 0;
    let mut outcomes = Vec::new();
    for spec in &specs {
        let outcome = executor.execute(spec);
        let secs = outcome.duration.as_secs_f64();
        match &outcome.status {
            crate::results::outcome::TrialStatus::Failed(f) => {
                failed += 1;
                out.push_str(&format!("FAIL {} ({secs:.1} s)\n{f}\n", spec.name));
            }
            _ => out.push_str(&format!("PASS {} ({secs:.1} s)\n", spec.name)),
        }
        for line in outcome.summary.lines(&outcome.trial) {
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
