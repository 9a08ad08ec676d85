//! One trial from selection to outcome: plan it, run it on this host, record its results, and
//! classify whatever went wrong. Shared by the `cargo test` harness and `perfsanity run`.

use std::path::PathBuf;
use std::time::Instant;

use indexmap::IndexMap;

use crate::catalog::selection::TrialSpec;
use crate::config::PerfConfig;
use crate::plan::Plan;
use crate::plan::prepare::{KeyMode, TrialError, prepare_trial};
use crate::plan::settings::Settings;
use crate::results::outcome::{FailureClass, TrialFailure, TrialOutcome, TrialStatus};
use crate::results::{ClientResult, ResultsContext, record_trial};
use crate::run::launch::gpus::GpuPool;
use crate::run::launch::signals::interrupted;
use crate::run::launch::{ClientRun, RunContext, RunReport, run_plan, run_role};

/// Everything needed to execute trials (built from the environment by
/// `crate::app::from_env::executor`; nothing here reads it).
pub struct Executor {
    /// Resolved settings.
    pub settings: Settings,
    /// The `perfsanity` executable the simulator and native client run from.
    pub self_exe: PathBuf,
    /// This host's GPUs (trtllm toolchain).
    pub gpus: Option<GpuPool>,
    /// Copy client output to the terminal.
    pub tee: bool,
    /// Where results go.
    pub results: ResultsContext,
    /// Where the runner's progress events go (none by default; the edge sets a reporter).
    pub progress: Box<dyn crate::run::progress::ProgressSink + Send>,
}

impl Executor {
    /// Plans, runs and records one trial.
    pub fn execute(&self, spec: &TrialSpec) -> TrialOutcome {
        let started = Instant::now();
        let mut summary = Vec::new();
        let mut output_dir = None;
        let status = match self.execute_inner(spec, started, &mut summary, &mut output_dir) {
            Ok(()) => TrialStatus::Passed,
            Err(failure) => TrialStatus::Failed(failure),
        };
        TrialOutcome {
            trial: spec.name.clone(),
            status,
            duration: started.elapsed(),
            output_dir,
            summary,
        }
    }

    fn execute_inner(
        &self,
        spec: &TrialSpec,
        started: Instant,
        summary: &mut Vec<String>,
        output_dir: &mut Option<PathBuf>,
    ) -> Result<(), TrialFailure> {
        // After SIGINT/SIGTERM no new trial starts (the harness and `perfsanity run` would
        // otherwise go on to the next one while the handler tears the groups down).
        if let Some(sig) = interrupted() {
            return Err(TrialFailure {
                class: FailureClass::Interrupted,
                role: None,
                message: format!("not started: the run was interrupted by signal {sig}"),
                log_tail: None,
            });
        }
        if spec.aggr.is_some() {
            return super::execute_aggr::execute_aggr(self, spec, started, summary, output_dir);
        }
        let (config, plan) = prepare_trial(&self.settings, spec, KeyMode::Create)
            .map_err(|e: TrialError| TrialFailure::config(e.to_string()))?;
        *output_dir = Some(plan.output_dir.clone());
        // Every finished client's record reaches perf_records.json at once (a kill -9 of this
        // process later still leaves it for `perfsanity results import`).
        let write_unfinished = |runs: &[ClientRun]| {
            let clients = client_results(runs);
            if let Err(e) =
                crate::results::partial::write_unfinished(&self.results, &plan, &config, &clients)
            {
                eprintln!(
                    "perfsanity: {}: cannot write the finished clients' records: {e}",
                    plan.trial
                );
            }
        };
        // One run per trial folder, held until the results are recorded.
        let _folder =
            crate::run::launch::folder_lock::lock_folder(&plan.output_dir, self.settings.role)
                .map_err(|e| TrialFailure {
                    class: FailureClass::Busy,
                    role: self.settings.role,
                    message: e.to_string(),
                    log_tail: None,
                })?;
        let run = RunContext {
            started,
            self_exe: &self.self_exe,
            tee: self.tee,
            gpus: self.gpus.as_ref(),
            progress: self.progress.as_ref(),
            finished: std::sync::Mutex::new(Vec::new()),
            on_client_finished: Some(&write_unfinished),
            watch: self.settings.watch,
            slurm_local_id: self.settings.slurm_local_id.as_deref(),
        };
        let ran = match self.settings.role {
            None => run_plan(&plan, &run).map(Some),
            Some(role) => run_role(&plan, role, &run, self.settings.launcher_gen_logs),
        };
        let report = match ran {
            Ok(Some(report)) => report,
            Ok(None) => {
                summary.push(format!(
                    "{}: {} done (the benchmark finished)",
                    plan.trial,
                    self.settings.role.map_or(String::new(), |r| r.to_string())
                ));
                return Ok(());
            }
            Err(mut failure) => {
                let finished = run.finished.into_inner().unwrap_or_else(|e| e.into_inner());
                let lines = self.record_partial(&plan, &config, &finished, &failure);
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
        let recorded = self.record(&plan, &config, &report, summary);
        let mut timeline = report.timeline;
        timeline.recorded_s = started.elapsed().as_secs_f64();
        let _ = std::fs::write(
            plan.output_dir.join("timeline.json"),
            serde_json::to_string_pretty(&timeline).unwrap_or_default(),
        );
        recorded
    }

    /// Stores what the clients that finished before `failure` measured (never a pass).
    fn record_partial(
        &self,
        plan: &Plan,
        config: &PerfConfig,
        finished: &[ClientRun],
        failure: &TrialFailure,
    ) -> Vec<String> {
        if finished.is_empty() {
            return Vec::new();
        }
        let clients = client_results(finished);
        crate::results::partial::record_partial(&self.results, plan, config, &clients, failure)
            .unwrap_or_else(|e| vec![format!("results: the finished clients' records: {e}")])
    }

    fn record(
        &self,
        plan: &Plan,
        config: &PerfConfig,
        report: &RunReport,
        summary: &mut Vec<String>,
    ) -> Result<(), TrialFailure> {
        let clients = client_results(&report.clients);
        let results =
            record_trial(&self.results, plan, config, &clients).map_err(|e| TrialFailure {
                class: e.class(),
                role: None,
                message: e.to_string(),
                log_tail: None,
            })?;
        summary.extend(results.lines());
        match results.regression_failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// The results layer's view of client runs.
fn client_results(runs: &[ClientRun]) -> Vec<ClientResult> {
    runs.iter()
        .map(|c| ClientResult {
            client_index: c.index,
            metrics: c
                .metrics
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<IndexMap<_, _>>(),
        })
        .collect()
}

/// One line per client with the numbers people look at first.
fn headline(plan: &Plan, report: &RunReport) -> Vec<String> {
    report
        .clients
        .iter()
        .map(|c| {
            let m = &c.metrics;
            let v = |k: &str| m.value(k).map_or("n/a".to_string(), |x| format!("{x:.2}"));
            let name = plan
                .clients
                .get(c.index as usize)
                .map_or(String::new(), |s| s.name.clone());
            let mut line = format!(
                "{} {name}: {} req/s, {} output tok/s, TTFT mean {} ms, ITL mean {} ms, E2EL mean {} ms",
                plan.trial,
                v("seq_throughput"),
                v("token_throughput"),
                v("mean_ttft"),
                v("mean_itl"),
                v("mean_e2el"),
            );
            if let Some(step) = m.value("mean_gen_worker_per_iter_device_step_time") {
                line.push_str(&format!(", gen device step mean {step:.2} ms"));
            }
            if let Some(al) = m.value("al") {
                line.push_str(&format!(", AL {al:.2}"));
            }
            line
        })
        .collect()
}
