//! One aggregated-runtime trial (an aggregated config's servers, or ctx_only of a disaggregated
//! config): plan it, run it on this host ([`run_aggr_plan`]), record its results through the
//! shared results path, and classify whatever went wrong, keeping the records of the clients
//! that finished before it — the aggregated half of
//! [`Executor::execute`](super::execute::Executor::execute).

use std::path::PathBuf;
use std::time::Instant;

use indexmap::IndexMap;

use super::execute::Executor;
use super::launch::{AggrRunReport, ClientRun, RunContext, run_aggr_plan};
use crate::catalog::selection::TrialSpec;
use crate::measure::ClientMetrics;
use crate::plan::AggrPlan;
use crate::plan::prepare::prepare_aggr_trial;
use crate::results::outcome::TrialFailure;
use crate::results::{AggrClientResult, ClientResult, record_aggr_trial};

/// Plans, runs and records an aggregated trial (`spec.aggr` is set).
pub fn execute_aggr(
    executor: &Executor,
    spec: &TrialSpec,
    started: Instant,
    summary: &mut Vec<String>,
    output_dir: &mut Option<PathBuf>,
) -> Result<(), TrialFailure> {
    let plan = prepare_aggr_trial(&executor.settings, spec)
        .map_err(|e| TrialFailure::config(e.to_string()))?;
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
            eprintln!(
                "perfsanity: {}: cannot write the finished clients' records: {e}",
                plan.trial
            );
        }
    };
    // One run per trial folder, held until the results are recorded.
    let _folder =
        crate::run::launch::folder_lock::lock_folder(&plan.output_dir, None).map_err(|e| {
            TrialFailure {
                class: crate::results::outcome::FailureClass::Busy,
                role: None,
                message: e.to_string(),
                log_tail: None,
            }
        })?;
    let run = RunContext {
        started,
        self_exe: &executor.self_exe,
        tee: executor.tee,
        gpus: executor.gpus.as_ref(),
        progress: executor.progress.as_ref(),
        finished: std::sync::Mutex::new(Vec::new()),
        on_client_finished: Some(&write_unfinished),
        watch: executor.settings.watch,
        slurm_local_id: executor.settings.slurm_local_id.as_deref(),
    };
    let report = match run_aggr_plan(&plan, &run) {
        Ok(report) => report,
        Err(mut failure) => {
            // What the clients that finished before the failure measured is kept (never a pass).
            let finished = run.finished.into_inner().unwrap_or_else(|e| e.into_inner());
            let lines = record_partial(executor, &plan, &finished, &failure);
            if !lines.is_empty() {
                failure.message = format!("{}\n{}", failure.message, lines.join("\n"));
            }
            summary.extend(lines);
            return Err(failure);
        }
    };
    summary.push(format!(
        "{}: toolchain {}, scale {}",
        plan.trial,
        plan.toolchain.as_str(),
        plan.scale.describe()
    ));
    summary.extend(headline(&plan, &report));
    let results: Vec<AggrClientResult> = report
        .clients
        .iter()
        .map(|c| aggr_result(c.server, c.client, &c.metrics))
        .collect();
    let recorded = record_aggr_trial(&executor.results, &plan, &results)
        .map_err(|e| TrialFailure {
            class: e.class(),
            role: None,
            message: e.to_string(),
            log_tail: None,
        })
        .and_then(|r| {
            summary.extend(r.lines());
            match r.regression_failure() {
                Some(failure) => Err(failure),
                None => Ok(()),
            }
        });
    let mut timeline = report.timeline;
    timeline.recorded_s = started.elapsed().as_secs_f64();
    let _ = std::fs::write(
        plan.output_dir.join("timeline.json"),
        serde_json::to_string_pretty(&timeline).unwrap_or_default(),
    );
    recorded
}

/// The results layer's view of one aggregated client run.
fn aggr_result(server: u32, client: u32, metrics: &ClientMetrics) -> AggrClientResult {
    AggrClientResult {
        server,
        result: ClientResult {
            client_index: client,
            metrics: metrics
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<IndexMap<_, _>>(),
        },
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
    if finished.is_empty() {
        return Vec::new();
    }
    let results = aggr_results(plan, finished);
    crate::results::partial::record_partial_aggr(&executor.results, plan, &results, failure)
        .unwrap_or_else(|e| vec![format!("results: the finished clients' records: {e}")])
}

/// One line per client with the numbers people look at first.
fn headline(plan: &AggrPlan, report: &AggrRunReport) -> Vec<String> {
    report
        .clients
        .iter()
        .map(|c| {
            let m = &c.metrics;
            let v = |k: &str| m.value(k).map_or("n/a".to_string(), |x| format!("{x:.2}"));
            let name = plan
                .clients()
                .find(|(_, cl)| cl.cmd_idx == c.cmd_idx)
                .map_or(String::new(), |(_, cl)| cl.spec.test_case_name.clone());
            let mut line = format!(
                "{} {name}: {} req/s, {} output tok/s, TTFT mean {} ms, ITL mean {} ms, E2EL mean {} ms",
                plan.trial,
                v("seq_throughput"),
                v("token_throughput"),
                v("mean_ttft"),
                v("mean_itl"),
                v("mean_e2el"),
            );
            if let Some(al) = m.value("al") {
                line.push_str(&format!(", AL {al:.2}"));
            }
            line
        })
        .collect()
}
