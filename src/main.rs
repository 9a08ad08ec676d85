//! The `perfsanity` command line: a thin clap layer over the library.

use std::io::Write;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perfsanity::app::commands::{self, Outcome};
use perfsanity::app::settings::{ProcessEnv, Settings, target_dir};
use perfsanity::app::{history_location, unknown_knobs};
use perfsanity::util::terminal::escape_lines;

/// perfsanity: perf tests for LLM serving (TensorRT-LLM disaggregated serving).
///
/// Settings come from environment variables (PERF_CONFIG_DIRS, PERF_TESTLIST, PERF_TOOLCHAIN,
/// PERF_OUTPUT_DIR, PERF_SCALE, LLM_MODELS_ROOT, …); see the README.
#[derive(Debug, Parser)]
#[command(name = "perfsanity", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every trial (or the PERF_TESTLIST selection) with mode, client and GPU needs.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Parse every config instead of reusing summaries of unchanged files.
        #[arg(long)]
        no_cache: bool,
    },
    /// Dry-run one trial: every process, command line, env addition and generated file.
    Plan {
        /// Trial name (e.g. disagg_upload-<stem>), upstream id or pytest node id.
        trial: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate every config (and the test list); exit non-zero on any error.
    Check,
    /// Run trials on this host (every trial of the catalog or PERF_TESTLIST when none given).
    Run {
        /// Trial names, upstream ids or pytest node ids.
        trials: Vec<String>,
        /// Play only this role (CTX_<i>, GEN_<i>, DISAGG_SERVER, BENCHMARK); default: all roles,
        /// or DISAGG_SERVING_TYPE when set.
        #[arg(long, value_parser = parse_role)]
        role: Option<perfsanity::plan::Role>,
        /// Copy the benchmark clients' output to the terminal.
        #[arg(long)]
        tee: bool,
        #[command(flatten)]
        knobs: RunKnobs,
    },
    /// Embedded TensorRT-LLM simulator: `perfsanity sim trtllm-serve …`.
    Sim(perfsanity::tools::sim::SimArgs),
    /// Native benchmark client, a drop-in for `benchmark_serving`.
    Bench(perfsanity::tools::bench::BenchArgs),
    /// Dataset tools.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Results history (PERF_DB): show stored records, push pending uploads.
    #[command(subcommand)]
    Results(perfsanity::app::results_cmd::ResultsCommand),
    /// Write an HTML report with SVG plots from the results history.
    Report(perfsanity::app::report_cmd::ReportArgs),
    /// SLURM batch scripts and submission (docs/SLURM.md).
    #[command(subcommand)]
    Slurm(perfsanity::app::slurm_cmd::SlurmCommand),
    /// Internal: kills what a run left once that run ends (started by the runner).
    #[command(name = "__watchdog", hide = true)]
    Watchdog {
        /// The run's token.
        token: String,
    },
    /// Internal: a `sim.faults.<ROLE>.spawn_descendants` process.
    #[command(name = "__descendant", hide = true)]
    Descendant {
        /// Processes in the chain from this one down.
        depth: u32,
    },
}

/// `perfsanity run` flags that stand for environment knobs (the variable is the fallback).
#[derive(Debug, clap::Args)]
struct RunKnobs {
    /// `full` or `smoke` (capped load, quick check).
    #[arg(long, env = "PERF_SCALE")]
    scale: Option<String>,
    /// Run exactly the trials of this txt or test-db YAML list.
    #[arg(long, env = "PERF_TESTLIST")]
    testlist: Option<std::path::PathBuf>,
    /// `auto`, `trtllm` or `sim`.
    #[arg(long, env = "PERF_TOOLCHAIN")]
    toolchain: Option<String>,
    /// Write a JUnit XML report of the run here.
    #[arg(long, env = "PERF_JUNIT")]
    junit: Option<std::path::PathBuf>,
}

impl RunKnobs {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(s) = &self.scale {
            v.push(("PERF_SCALE", s.clone()));
        }
        if let Some(t) = &self.testlist {
            v.push(("PERF_TESTLIST", t.display().to_string()));
        }
        if let Some(t) = &self.toolchain {
            v.push(("PERF_TOOLCHAIN", t.clone()));
        }
        v
    }
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Write a `trtllm_custom` JSON Lines dataset.
    Gen(perfsanity::tools::bench::DatasetGenArgs),
}

fn settings() -> Result<Settings, String> {
    settings_with(Vec::new())
}

fn settings_with(overrides: Vec<(&'static str, String)>) -> Result<Settings, String> {
    let env = perfsanity::app::cli_env::Overlay {
        base: &ProcessEnv,
        values: overrides,
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let root = history_location::project_root(&env, &cwd);
    let target = target_dir(&env, &root);
    let notes = unknown_knobs::process_env_warnings()
        .into_iter()
        .chain(history_location::root_hint(&env, &root))
        .chain(history_location::migrate_legacy_db(
            &ProcessEnv,
            &root,
            &target,
        )?);
    for note in notes {
        eprintln!("perfsanity: {note}");
    }
    Settings::from_env(&env, &root, &target).map_err(|e| e.to_string())
}

/// Moves a history left under `target/` to `perf-history/` before the history commands read it.
fn migrate_history() {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let root = history_location::project_root(&ProcessEnv, &cwd);
    let target = target_dir(&ProcessEnv, &root);
    match history_location::migrate_legacy_db(&ProcessEnv, &root, &target) {
        Ok(Some(note)) => eprintln!("perfsanity: {note}"),
        Ok(None) => {}
        Err(e) => eprintln!("perfsanity: {e}"),
    }
}

fn emit(outcome: Outcome) -> ExitCode {
    // File names, ids and YAML strings in the text come from files we do not control.
    let stdout = escape_lines(&outcome.stdout);
    let stderr = escape_lines(&outcome.stderr);
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    let _ = std::io::stderr().write_all(stderr.as_bytes());
    if !outcome.stderr.is_empty() && !outcome.stderr.ends_with('\n') {
        eprintln!();
    }
    if outcome.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn with_settings(f: impl FnOnce(&Settings) -> Outcome) -> ExitCode {
    match settings() {
        Ok(s) => emit(f(&s)),
        Err(e) => {
            eprintln!("perfsanity: {}", escape_lines(&e));
            ExitCode::from(2)
        }
    }
}

fn parse_role(s: &str) -> Result<perfsanity::plan::Role, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List { json, no_cache } => with_settings(|s| commands::list(s, json, !no_cache)),
        Command::Plan { trial, json } => with_settings(|s| commands::plan(s, &trial, json)),
        Command::Check => with_settings(commands::check),
        Command::Run {
            trials,
            role,
            tee,
            knobs,
        } => match settings_with(knobs.overrides()) {
            Ok(s) => {
                let code = emit(commands::run(s, &trials, role, tee, knobs.junit.as_deref()));
                // Interrupted: 128 + signal, as the signal handler's own exit would be.
                perfsanity::run::launch::signals::interrupted_exit_code()
                    .map_or(code, ExitCode::from)
            }
            Err(e) => {
                eprintln!("perfsanity: {}", escape_lines(&e));
                ExitCode::from(2)
            }
        },
        Command::Sim(args) => perfsanity::tools::sim::run(args),
        Command::Bench(args) => perfsanity::tools::bench::run(args),
        Command::Dataset(DatasetCommand::Gen(args)) => {
            perfsanity::tools::bench::run_dataset_gen(args)
        }
        Command::Results(cmd) => {
            migrate_history();
            emit(perfsanity::app::results_cmd::run(&cmd))
        }
        Command::Report(args) => {
            migrate_history();
            emit(perfsanity::app::report_cmd::run(&args))
        }
        Command::Slurm(cmd) => perfsanity::app::slurm_cmd::run(cmd),
        Command::Watchdog { token } => {
            let killed = perfsanity::run::launch::tree::watch_run(&token);
            if killed > 0 {
                eprintln!(
                    "perfsanity watchdog: the run {token} ended; killed {killed} process(es) it left"
                );
            }
            ExitCode::SUCCESS
        }
        Command::Descendant { depth } => perfsanity::tools::sim::faults::descendant_main(depth),
    }
}
