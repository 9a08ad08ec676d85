//! One aggregated-runtime trial (an aggregated config's servers, or ctx_only of a disaggregated
//! config): plan it, run it on this host ([`run_aggr_plan`]), record its results through the
//! shared results path, and classify whatever went wrong — the aggregated half of
//! [`Executor::execute`](super::execute::Executor::execute).

use std::path::PathBuf;
use std::time::Instant;

use indexmap::IndexMap;

use super::execute::Executor;
use super::launch::{AggrRunReport, RunContext, run_aggr_plan};
use crate::catalog::selection::TrialSpec;
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
        on_client_finished: None,
        watch: executor.settings.watch,
        slurm_local_id: executor.settings.slurm_local_id.as_deref(),
    };
    let report = run_aggr_plan(&plan, &run)?;
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
        .map(|c| AggrClientResult {
            server: c.server,
            result: ClientResult {
                client_index: c.client,
                metrics: c
                    .metrics
                    .iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<IndexMap<_, _>>(),
            },
        })
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
