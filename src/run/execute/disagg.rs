//! A disaggregated trial (or, under `DISAGG_SERVING_TYPE`, one role of it): plan it, run its
//! process graph ([`run_plan`] / [`run_role`]), record its results, and keep the records of the
//! clients that finished before a failure.

use std::path::PathBuf;
use std::time::Instant;

use super::{
    Executor, client_result, headline, lock_trial_folder, partial_lines, results_failure,
    with_partial_lines, write_timeline,
};
use crate::catalog::selection::TrialSpec;
use crate::config::PerfConfig;
use crate::plan::Plan;
use crate::plan::prepare::{KeyMode, prepare_trial};
use crate::results::outcome::{ClientHeadline, TrialFailure, TrialSummary};
use crate::results::{ClientResult, record_trial};
use crate::run::launch::{ClientRun, RunReport, run_plan, run_role};

/// Plans, runs and records a disaggregated trial.
pub(super) fn execute_disagg(
    executor: &Executor,
    spec: &TrialSpec,
    started: Instant,
    summary: &mut TrialSummary,
    output_dir: &mut Option<PathBuf>,
) -> Result<(), TrialFailure> {
    let settings = &executor.settings;
    let (config, plan) =
        prepare_trial(settings, spec, KeyMode::Create).map_err(TrialFailure::config)?;
    *output_dir = Some(plan.output_dir.clone());
    // Every finished client's record reaches perf_records.json at once (a kill -9 of this
    // process later still leaves it for `perfsanity results import`).
    let write_unfinished = |runs: &[ClientRun]| {
        let clients = client_results(runs);
        if let Err(e) =
            crate::results::partial::write_unfinished(&executor.results, &plan, &config, &clients)
        {
            executor.unfinished_not_written(&plan.trial, &e);
        }
    };
    let _folder = lock_trial_folder(&plan.output_dir, settings.role)?;
    let run = executor.run_context(started, &write_unfinished);
    let ran = match settings.role {
        None => run_plan(&plan, &run).map(Some),
        Some(role) => run_role(&plan, role, &run, settings.launcher_gen_logs),
    };
    let report = match ran {
        Ok(Some(report)) => report,
        Ok(None) => {
            summary.role_done = settings.role;
            return Ok(());
        }
        Err(failure) => {
            let finished = run.finished.into_inner().unwrap_or_else(|e| e.into_inner());
            let lines = record_partial(executor, &plan, &config, &finished, &failure);
            summary.results.extend(lines.iter().cloned());
            return Err(with_partial_lines(failure, &lines));
        }
    };
    summary.ran_with = Some((plan.toolchain, plan.scale));
    summary.clients = headlines(&plan, &report);
    let recorded = record(executor, &plan, &config, &report, summary);
    write_timeline(&plan.output_dir, report.timeline, started);
    recorded
}

/// Stores what the clients that finished before `failure` measured (never a pass).
fn record_partial(
    executor: &Executor,
    plan: &Plan,
    config: &PerfConfig,
    finished: &[ClientRun],
    failure: &TrialFailure,
) -> Vec<String> {
    partial_lines(finished, || {
        let clients = client_results(finished);
        crate::results::partial::record_partial(&executor.results, plan, config, &clients, failure)
    })
}

/// Stores the records, uploads them and applies the regression verdict.
fn record(
    executor: &Executor,
    plan: &Plan,
    config: &PerfConfig,
    report: &RunReport,
    summary: &mut TrialSummary,
) -> Result<(), TrialFailure> {
    let clients = client_results(&report.clients);
    let results =
        record_trial(&executor.results, plan, config, &clients).map_err(results_failure)?;
    summary.results.extend(results.lines());
    match results.regression_failure() {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// The results layer's view of client runs.
fn client_results(runs: &[ClientRun]) -> Vec<ClientResult> {
    runs.iter()
        .map(|c| client_result(c.index, &c.metrics))
        .collect()
}

/// One headline per client.
fn headlines(plan: &Plan, report: &RunReport) -> Vec<ClientHeadline> {
    report
        .clients
        .iter()
        .map(|c| {
            let name = plan
                .clients
                .get(c.index as usize)
                .map_or("", |s| s.name.as_str());
            headline(name, &c.metrics)
        })
        .collect()
}
