//! One trial from selection to outcome: plan it, run it on this host, record its results, and
//! classify whatever went wrong. Shared by the `cargo test` harness and `perfsanity run`.
//! [`Executor::execute`] takes the trial to [`disagg`] (a disaggregated process graph, or one
//! role of it) or [`aggr`] (an aggregated-runtime trial); both go through the steps here: the
//! trial-folder lock, the run context, the headline of each client and the timeline file.

mod aggr;
mod disagg;

use std::path::{Path, PathBuf};
use std::time::Instant;

use indexmap::IndexMap;

use crate::catalog::selection::TrialSpec;
use crate::measure::ClientMetrics;
use crate::plan::Role;
use crate::plan::settings::Settings;
use crate::results::outcome::{
    ClientHeadline, FailureClass, TrialFailure, TrialOutcome, TrialStatus, TrialSummary,
};
use crate::results::{ClientResult, ResultsContext, ResultsError};
use crate::run::launch::folder_lock::{FolderLock, lock_folder};
use crate::run::launch::gpus::GpuPool;
use crate::run::launch::signals::interrupted;
use crate::run::launch::steps::OnClientFinished;
use crate::run::launch::{ClientRun, RunContext, Timeline};
use crate::run::progress::ProgressEvent;

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
    /// Where copied output goes (the edge's stdout).
    pub stdout: crate::run::launch::process::OutputCopy,
    /// Where results go.
    pub results: ResultsContext,
    /// Where the runner's progress events go (none by default; the edge sets a reporter).
    pub progress: Box<dyn crate::run::progress::ProgressSink + Send>,
}

impl Executor {
    /// Plans, runs and records one trial.
    pub fn execute(&self, spec: &TrialSpec) -> TrialOutcome {
        let started = Instant::now();
        let mut summary = TrialSummary::default();
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
        summary: &mut TrialSummary,
        output_dir: &mut Option<PathBuf>,
    ) -> Result<(), TrialFailure> {
        // After SIGINT/SIGTERM no new trial starts (the harness and `perfsanity run` would
        // otherwise go on to the next one while the handler tears the groups down).
        if let Some(sig) = interrupted() {
            return Err(TrialFailure::new(
                FailureClass::Interrupted,
                None,
                format!("not started: the run was interrupted by signal {sig}"),
                None,
            ));
        }
        if spec.aggr.is_some() {
            aggr::execute_aggr(self, spec, started, summary, output_dir)
        } else {
            disagg::execute_disagg(self, spec, started, summary, output_dir)
        }
    }

    /// What the runner needs besides the plan, for a trial that started at `started`.
    fn run_context<'a>(
        &'a self,
        started: Instant,
        on_client_finished: &'a OnClientFinished<'a>,
    ) -> RunContext<'a> {
        RunContext {
            started,
            self_exe: &self.self_exe,
            tee: self.tee,
            stdout: self.stdout.clone(),
            gpus: self.gpus.as_ref(),
            progress: self.progress.as_ref(),
            finished: std::sync::Mutex::new(Vec::new()),
            on_client_finished: Some(on_client_finished),
            watch: self.settings.watch,
            slurm_local_id: self.settings.slurm_local_id.as_deref(),
        }
    }

    /// Tells the reporter that the finished clients' records of `trial` could not be written
    /// while it still ran.
    fn unfinished_not_written(&self, trial: &str, error: &dyn std::fmt::Display) {
        self.progress.event(ProgressEvent::Warning {
            trial: trial.to_string(),
            message: format!("cannot write the finished clients' records: {error}"),
        });
    }
}

/// One run per trial folder (and role), held until the results are recorded.
fn lock_trial_folder(dir: &Path, role: Option<Role>) -> Result<FolderLock, TrialFailure> {
    lock_folder(dir, role)
        .map_err(|e| TrialFailure::new(FailureClass::Busy, role, e.to_string(), None))
}

/// A results error as the trial's failure.
fn results_failure(e: ResultsError) -> TrialFailure {
    TrialFailure::new(e.class(), None, e.to_string(), None)
}

/// The results layer's view of one client run's metrics.
fn client_result(index: u32, metrics: &ClientMetrics) -> ClientResult {
    ClientResult {
        client_index: index,
        metrics: metrics
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<IndexMap<_, _>>(),
    }
}

/// The headline of one client: the numbers people look at first.
fn headline(client: &str, m: &ClientMetrics) -> ClientHeadline {
    ClientHeadline {
        client: client.to_string(),
        seq_throughput: m.value("seq_throughput"),
        token_throughput: m.value("token_throughput"),
        mean_ttft: m.value("mean_ttft"),
        mean_itl: m.value("mean_itl"),
        mean_e2el: m.value("mean_e2el"),
        gen_device_step: m.value("mean_gen_worker_per_iter_device_step_time"),
        al: m.value("al"),
    }
}

/// Writes `timeline.json` into `dir` with the time the records were stored (best effort: the
/// timeline is a diagnostic, its absence fails nothing).
fn write_timeline(dir: &Path, mut timeline: Timeline, started: Instant) {
    timeline.recorded_s = started.elapsed().as_secs_f64();
    let _ = std::fs::write(
        dir.join("timeline.json"),
        serde_json::to_string_pretty(&timeline).unwrap_or_default(),
    );
}

/// The summary lines of storing the records of the clients that `finished` before a failure
/// (`store` does it), or what went wrong; none when no client finished.
fn partial_lines<E: std::fmt::Display>(
    finished: &[ClientRun],
    store: impl FnOnce() -> Result<Vec<String>, E>,
) -> Vec<String> {
    if finished.is_empty() {
        return Vec::new();
    }
    store().unwrap_or_else(|e| vec![format!("results: the finished clients' records: {e}")])
}

/// Summary lines of the clients that finished before a failure, appended to its message.
fn with_partial_lines(mut failure: TrialFailure, lines: &[String]) -> TrialFailure {
    if !lines.is_empty() {
        failure.message = format!("{}\n{}", failure.message, lines.join("\n"));
    }
    failure
}
