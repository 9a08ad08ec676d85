//! Reports: JUnit XML for Jenkins ([`write_junit`], `PERF_JUNIT`) and an HTML page with SVG
//! plots from the results history (`perfsanity report`).

pub mod html;
pub mod junit;
pub mod plots;

use std::path::PathBuf;

use clap::Args;

pub use html::{ReportError, ReportSummary, write_html_report};
pub use junit::{JunitError, junit_report, write_junit};

use crate::app::commands::Outcome;
use crate::app::results_cmd::db_path;
use crate::app::settings::{EnvSource, ProcessEnv, find_project_root, target_dir};
use crate::results::store::Store;

/// `perfsanity report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output directory (default `<target>/perf-report`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only this trial.
    #[arg(long)]
    pub trial: Option<String>,
}

/// Runs `perfsanity report` against the process environment.
pub fn run(args: &ReportArgs) -> Outcome {
    run_with_env(args, &ProcessEnv)
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
    let out = args.out.clone().unwrap_or_else(|| {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        target_dir(env, &find_project_root(&cwd)).join("perf-report")
    });
    let store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    match write_html_report(&store, &out, args.trial.as_deref()) {
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
