//! `perfsanity report`: the command line of the HTML report (the edge: it reads the
//! environment — `PERF_DB`, `PERF_REGRESSION_THRESHOLDS` — and the current directory, then
//! hands values to [`crate::report::html`]).

use std::path::PathBuf;

use clap::Args;

use crate::app::commands::Outcome;
use crate::app::results_cmd::{db_path, open_store};
use crate::app::settings::{EnvSource, ProcessEnv, target_dir};
use crate::report::html::{ReportOptions, write_html_report_with};
use crate::results::regression::{RegressionSettings, parse_threshold_overrides};

/// `perfsanity report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output directory (default `<target>/perf-report`). It is replaced only once the new
    /// report is complete.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only this trial (an error when the history has no records of it).
    #[arg(long)]
    pub trial: Option<String>,
}

/// Runs `perfsanity report` against the process environment.
pub fn run(args: &ReportArgs) -> Outcome {
    run_with_env(args, &ProcessEnv)
}

/// The regression settings the verdict would use: `PERF_REGRESSION_THRESHOLDS` overrides.
pub fn regression_settings(env: &dyn EnvSource) -> Result<RegressionSettings, String> {
    let overrides = match env
        .var("PERF_REGRESSION_THRESHOLDS")
        .filter(|v| !v.trim().is_empty())
    {
        None => Default::default(),
        Some(text) => parse_threshold_overrides(&text)
            .map_err(|e| format!("PERF_REGRESSION_THRESHOLDS: {e}"))?,
    };
    Ok(RegressionSettings {
        overrides,
        ..Default::default()
    })
}

/// Runs `perfsanity report` against `env`.
pub fn run_with_env(args: &ReportArgs, env: &dyn EnvSource) -> Outcome {
    let db = db_path(env);
    let fail = |stderr: String| Outcome {
        stdout: String::new(),
        stderr,
        ok: false,
    };
    if !db.exists() {
        return fail(format!(
            "no results database at {} (set PERF_DB, or run a trial first)",
            db.display()
        ));
    }
    let regression = match regression_settings(env) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        target_dir(env, &crate::app::history_location::project_root(env, &cwd)).join("perf-report")
    });
    let store = match open_store(&db) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let options = ReportOptions {
        trial: args.trial.clone(),
        regression,
    };
    match write_html_report_with(&store, &out, &options) {
        Ok(s) => Outcome {
            stdout: format!(
                "wrote {} ({} trial(s), {} record(s), {} plot(s))\n",
                s.index.display(),
                s.trials,
                s.records,
                s.plots.len()
            ),
            stderr: String::new(),
            ok: true,
        },
        Err(e) => fail(e.to_string()),
    }
}
