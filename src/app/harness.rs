//! The `cargo test` harness behind `tests/perf.rs`: catalog (or `PERF_TESTLIST`) → one
//! libtest-mimic trial per selected trial → run. All logic lives here so the test file stays a
//! one-liner and this module stays testable.
//!
//! libtest-mimic owns argv (name filters, `--exact`, `--list`, `--ignored`, `--test-threads`),
//! so settings come from environment variables. `main` returns the conclusion's exit code
//! instead of calling `process::exit`, so destructors (process teardown guards) always run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::app::commands::selected_trials;
use crate::app::output_check::junit_path_from_env;
use crate::app::selection_guard::{
    NameFilter, SelectionProblem, check_filter, check_not_empty, once_per_config, split_filters,
};
use crate::app::settings::{ProcessEnv, Settings, target_dir};
use crate::catalog::selection::TrialSpec;
use crate::config::{BenchmarkMode, load_perf_config};
use crate::plan::Topology;
use crate::report::junit::{case_names, write_junit_named};
use crate::results::outcome::{TrialOutcome, TrialStatus};
use crate::run::execute::Executor;
use crate::run::launch::signals;
use crate::util::terminal::{escape_controls, escape_lines};

/// Everything a trial body needs, shared by all trials.
pub struct HarnessContext {
    /// Runs trials.
    pub executor: Executor,
    /// Outcomes of the trials that ran, for JUnit and the summary.
    pub outcomes: Mutex<Vec<TrialOutcome>>,
}

/// The harness's argv: libtest's arguments plus every name filter (libtest-mimic takes one;
/// with several, the harness selects the trials itself). By default trials run one at a time
/// (`--test-threads N` allows N at once): trials that measure performance must not share cores.
pub fn harness_arguments(argv: Vec<String>) -> (Arguments, NameFilter) {
    let (rest, filters) = split_filters(argv);
    let mut args = Arguments::from_iter(rest);
    if filters.len() == 1 {
        args.filter = filters.first().cloned();
    }
    args.test_threads = Some(args.test_threads.unwrap_or(1));
    let filter = NameFilter {
        filters,
        exact: args.exact,
        skip: args.skip.clone(),
    };
    (args, filter)
}

/// The trials this run selects: the catalog or test list, each config once (unless a twin is
/// named), checked for an empty selection and for a filter that matches nothing.
fn select(settings: &Settings, filter: &NameFilter) -> Result<Vec<TrialSpec>, String> {
    let (_, specs) = selected_trials(settings)?;
    let why = match &settings.testlist {
        Some(list) => format!("the test list {} selects no tests", list.display()),
        None => format!(
            "no configs in {}",
            settings
                .config_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    check_not_empty(&specs, &why, settings.allow_empty)?;
    // Checked against both families: `--exact disagg-<stem>` is a real name.
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    match check_filter(filter, &names) {
        Some(SelectionProblem::Error(e)) => return Err(e),
        Some(SelectionProblem::Notice(n)) => {
            eprintln!("\nperfsanity harness: NOTE: {n}\n");
        }
        None => {}
    }
    Ok(once_per_config(specs, filter, settings.all_families))
}

/// Entry point of `tests/perf.rs`: `manifest_dir` is the crate root (`CARGO_MANIFEST_DIR`) and
/// `self_exe` the built `perfsanity` binary (`CARGO_BIN_EXE_perfsanity`).
pub fn main(manifest_dir: &str, self_exe: &str) -> ExitCode {
    let (args, filter) = harness_arguments(std::env::args().collect());
    for warning in crate::app::unknown_knobs::process_env_warnings() {
        eprintln!("perfsanity harness: {warning}");
    }
    let root = Path::new(manifest_dir);
    let target = target_dir(&ProcessEnv, root);
    let fail = |e: String| {
        eprintln!("perfsanity harness: {}", escape_lines(&e));
        ExitCode::from(2)
    };
    match crate::app::history_location::migrate_legacy_db(&ProcessEnv, root, &target) {
        Ok(Some(note)) => eprintln!("perfsanity harness: {note}"),
        Ok(None) => {}
        Err(e) => return fail(e),
    }
    let settings = match Settings::from_env(&ProcessEnv, root, &target) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let specs = match select(&settings, &filter) {
        Ok(specs) => specs,
        Err(e) => return fail(e),
    };
    let names = case_names(&specs);
    let mut executor =
        match crate::app::from_env::executor(settings, PathBuf::from(self_exe), args.nocapture) {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
    if !args.list {
        match crate::app::progress_reporter::ProgressMode::from_env() {
            Ok(mode) => {
                executor.progress = Box::new(crate::app::progress_reporter::Reporter::new(mode))
            }
            Err(e) => return fail(e),
        }
    }
    let ctx = Arc::new(HarnessContext {
        executor,
        outcomes: Mutex::new(Vec::new()),
    });
    if !args.list {
        crate::app::signal_handler::install();
        crate::app::from_env::own_process_tree(&ctx.executor.self_exe);
    }
    let trials = build_trials(&ctx, specs, &args, &filter);
    let conclusion = libtest_mimic::run(&args, trials);
    let outcomes = ctx.outcomes.lock().unwrap_or_else(|e| e.into_inner());
    print_summary(&outcomes);
    if let Some(path) = junit_path_from_env(&ProcessEnv)
        && let Err(e) = write_junit_named(&path, &outcomes, &names)
    {
        eprintln!("perfsanity harness: {}", escape_lines(&e.to_string()));
        return ExitCode::from(2);
    }
    // Interrupted: the trials tore their processes down and reported; the exit status says
    // why the run ended (the signal thread may still be about to exit with the same code).
    if let Some(code) = signals::interrupted_exit_code() {
        return ExitCode::from(code);
    }
    conclusion.exit_code()
}

/// After the run: the headline numbers of every trial that ran (stderr, so `--list` output and
/// libtest's own report stay clean).
fn print_summary(outcomes: &[TrialOutcome]) {
    let lines: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.status, TrialStatus::Passed))
        .flat_map(|o| o.summary.lines(&o.trial))
        .collect();
    if lines.is_empty() {
        return;
    }
    eprintln!("\nperfsanity results:");
    for line in lines {
        eprintln!("  {}", escape_lines(&line));
    }
}

/// One libtest-mimic trial per spec the filter selects (with `--exact <name>`, what nextest
/// runs per test, only that trial is built).
///
/// With real GPUs (trtllm toolchain) a trial that needs more GPUs than the host shows is
/// *ignored at list time*, with the reason printed to stderr, so nextest and JUnit count it as
/// skipped rather than passed (its outcome goes to `PERF_JUNIT` as `<skipped>`).
pub fn build_trials(
    ctx: &Arc<HarnessContext>,
    specs: Vec<TrialSpec>,
    args: &Arguments,
    filter: &NameFilter,
) -> Vec<Trial> {
    specs
        .into_iter()
        .filter(|spec| filter.selects(&escape_controls(&spec.name)))
        .map(|spec| {
            let too_big = sim_only(&spec, ctx.executor.settings.toolchain).or_else(|| {
                ctx.executor
                    .gpus
                    .as_ref()
                    .and_then(|pool| gpu_shortfall(&spec, pool.len()))
            });
            if let Some(reason) = &too_big
                && !args.list
            {
                eprintln!("note: {} is ignored: {reason}", escape_controls(&spec.name));
                if !args.ignored && !args.include_ignored {
                    record(ctx, ignored_outcome(&spec.name, reason));
                }
            }
            let ctx = Arc::clone(ctx);
            let name = escape_controls(&spec.name).into_owned();
            Trial::test(name, move || run_trial(&ctx, &spec)).with_ignored_flag(too_big.is_some())
        })
        .collect()
}

/// "needs N GPUs, M visible" when the trial cannot run on this host.
fn gpu_shortfall(spec: &TrialSpec, visible: usize) -> Option<String> {
    let needs = match &spec.aggr {
        Some(kind) => crate::plan::aggr_gpus_needed(spec.config_path.as_ref()?, kind)?,
        None => {
            let config = load_perf_config(spec.config_path.as_ref()?).ok()?;
            let mode = spec.mode_override.unwrap_or(config.benchmark.mode);
            Topology::of(&config, mode == BenchmarkMode::GenOnlyNoContext).gpus_used
        }
    };
    (needs as usize > visible).then(|| {
        format!(
            "needs {needs} GPUs, {visible} visible; run it through SLURM (perfsanity slurm submit)"
        )
    })
}

/// Why a simulator-only config is ignored under the TensorRT-LLM toolchain.
fn sim_only(spec: &TrialSpec, toolchain: crate::plan::toolchain::Toolchain) -> Option<String> {
    let config = load_perf_config(spec.config_path.as_ref()?).ok()?;
    crate::plan::sim_only::ignore_reason(&config, toolchain)
}

/// Runs one trial and keeps its outcome for the JUnit report and the summary.
pub fn run_trial(ctx: &HarnessContext, spec: &TrialSpec) -> Result<(), Failed> {
    let outcome = ctx.executor.execute(spec);
    let result = match &outcome.status {
        TrialStatus::Failed(f) => Err(Failed::from(escape_lines(&f.to_string()).into_owned())),
        _ => Ok(()),
    };
    let summary = outcome.summary.lines(&outcome.trial);
    if ctx.executor.tee {
        for line in &summary {
            println!("{}", escape_lines(line));
        }
    }
    // Each trial's headline numbers as it finishes (stderr: libtest owns stdout).
    for line in &summary {
        eprintln!("  {line}");
    }
    record(ctx, outcome);
    result
}

fn record(ctx: &HarnessContext, outcome: TrialOutcome) {
    ctx.outcomes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(outcome);
}

fn ignored_outcome(trial: &str, reason: &str) -> TrialOutcome {
    TrialOutcome {
        trial: trial.to_string(),
        status: TrialStatus::Ignored {
            reason: reason.to_string(),
        },
        duration: std::time::Duration::ZERO,
        output_dir: None,
        summary: Default::default(),
    }
}
