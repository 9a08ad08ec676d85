//! One aggregated-runtime trial (an aggregated config's servers, or ctx_only of a disaggregated
//! config): plan it, run it on this host ([`run_aggr_plan`]), record its results through the
//! shared results path, and keep the records of the clients that finished before a failure.

use std::path::PathBuf;
use std::time::Instant;

use super::{
    Executor, client_result, headline, lock_trial_folder, partial_lines, results_failure,
    with_partial_lines, write_timeline,
};
use crate::catalog::selection::TrialSpec;
use crate::measure::ClientMetrics;
use crate::plan::AggrPlan;
use crate::plan::prepare::prepare_aggr_trial;
use crate::results::outcome::{ClientHeadline, TrialFailure, TrialSummary};
use crate::results::{AggrClientResult, record_aggr_trial};
use crate::run::launch::{AggrRunReport, ClientRun, run_aggr_plan};

/// Plans, runs and records an aggregated trial (`spec.aggr` is set).
pub(super) fn execute_aggr(
    executor: &Executor,
    spec: &TrialSpec,
    started: Instant,
    summary: &mut TrialSummary,
    output_dir: &mut Option<PathBuf>,
) -> Result<(), TrialFailure> {
    let plan = prepare_aggr_trial(&executor.settings, spec).map_err(TrialFailure::config)?;
    *output_dir = Some(plan.output_dir.clone());
    if let Some(role) = executor.settings.role {
        return Err(TrialFailure::config(format!(
            "{}: DISAGG_SERVING_TYPE={role} selects a role of a disaggregated trial; an \
             aggregated trial runs as one process graph (unset it, or use perfsanity slurm for \
             multi-node aggregated servers)",
            plan.trial
        )));
    }
    // Every finished client's record reaches perf_records.json at once (a kill -9 of this
    // process later still leaves it for `perfsanity results import`).
    let write_unfinished = |runs: &[ClientRun]| {
        let results = aggr_results(&plan, runs);
        if let Err(e) =
            crate::results::partial::write_unfinished_aggr(&executor.results, &plan, &results)
        {
            executor.unfinished_not_written(&plan.trial, &e);
        }
    };
    let _folder = lock_trial_folder(&plan.output_dir, None)?;
    let run = executor.run_context(started, &write_unfinished);
    let report = match run_aggr_plan(&plan, &run) {
        Ok(report) => report,
        Err(failure) => {
            // What the clients that finished before the failure measured is kept (never a pass).
            let finished = run.finished.into_inner().unwrap_or_else(|e| e.into_inner());
            let lines = record_partial(executor, &plan, &finished, &failure);
            summary.results.extend(lines.iter().cloned());
            return Err(with_partial_lines(failure, &lines));
        }
    };
    summary.ran_with = Some((plan.toolchain, plan.scale));
    summary.clients = headlines(&plan, &report);
    let results: Vec<AggrClientResult> = report
        .clients
        .iter()
        .map(|c| aggr_result(c.server, c.client, &c.metrics))
        .collect();
    let recorded = record_aggr_trial(&executor.results, &plan, &results)
        .map_err(results_failure)
        .and_then(|r| {
            summary.results.extend(r.lines());
            match r.regression_failure() {
                Some(failure) => Err(failure),
                None => Ok(()),
            }
        });
    write_timeline(&plan.output_dir, report.timeline, started);
    recorded
}

/// The results layer's view of one aggregated client run.
fn aggr_result(server: u32, client: u32, metrics: &ClientMetrics) -> AggrClientResult {
    AggrClientResult {
        server,
        result: client_result(client, metrics),
    }
}

/// The results layer's view of finished client runs (`index`: `cmd_idx`).
fn aggr_results(plan: &AggrPlan, runs: &[ClientRun]) -> Vec<AggrClientResult> {
    runs.iter()
        .filter_map(|run| {
            let (server, client) = plan.clients().find(|(_, c)| c.cmd_idx == run.index)?;
            Some(aggr_result(server.index, client.spec.index, &run.metrics))
        })
        .collect()
}

/// Stores what the clients that finished before `failure` measured; returns summary lines.
fn record_partial(
    executor: &Executor,
    plan: &AggrPlan,
    finished: &[ClientRun],
    failure: &TrialFailure,
) -> Vec<String> {
    partial_lines(finished, || {
        let results = aggr_results(plan, finished);
        crate::results::partial::record_partial_aggr(&executor.results, plan, &results, failure)
    })
}

/// One headline per client.
fn headlines(plan: &AggrPlan, report: &AggrRunReport) -> Vec<ClientHeadline> {
    report
        .clients
        .iter()
        .map(|c| {
            let name = plan
                .clients()
                .find(|(_, cl)| cl.cmd_idx == c.cmd_idx)
                .map_or("", |(_, cl)| cl.spec.test_case_name.as_str());
            headline(name, &c.metrics)
        })
        .collect()
}
