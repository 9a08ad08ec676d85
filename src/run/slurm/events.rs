//! Typed events of `perfsanity slurm submit` (as nextest's runner hands events to its
//! reporter): the submitter ([`super::submit`]) says what happened — a job submitted, a state
//! change, how a job ended and the files that explain it, a cancellation — and the edge decides
//! how to show it (`crate::app::slurm_reporter`). Nothing here formats or prints.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{SlurmCommandError, SubmitError};
use super::state::{StepRecord, Verdict};

/// One thing that happened while submitting or following the jobs.
#[derive(Debug)]
pub enum SlurmEvent {
    /// `sbatch` accepted a trial's script.
    Submitted {
        /// The trial.
        trial: String,
        /// The job id sbatch printed.
        job_id: String,
        /// The script file that was submitted.
        script: PathBuf,
        /// The trial's output folder (the job writes `slurm-<id>.out` there).
        trial_dir: PathBuf,
    },
    /// A trial was not submitted.
    NotSubmitted {
        /// The trial.
        trial: String,
        /// Why.
        error: SubmitError,
    },
    /// Without `--wait`: every trial was tried.
    SubmitDone {
        /// Jobs submitted.
        submitted: usize,
        /// Trials not submitted.
        not_submitted: usize,
    },
    /// A job's state as Slurm reports it changed.
    StateChanged {
        /// Local wall-clock time the change was seen.
        at: jiff::civil::Time,
        /// The job.
        job_id: String,
        /// Its trial.
        trial: String,
        /// The state as printed by the status command (`RUNNING`, `CANCELLED by 0`, …).
        state: String,
        /// The job's exit code (`<status>:<signal>`), given once it has ended and when known.
        exit_code: Option<String>,
        /// How long it ran, given once it has ended and when known.
        elapsed: Option<String>,
    },
    /// A job ended: how, and what explains it.
    JobEnded(JobReport),
    /// No status command knows a job any more: it is lost.
    JobLost {
        /// The job.
        job_id: String,
        /// Its trial.
        trial: String,
        /// The verdict ([`Verdict::Lost`], with what we know).
        verdict: Verdict,
    },
    /// A signal arrived: the open jobs are being cancelled.
    Cancelling {
        /// The signal's number (`SIGINT`, `SIGTERM`).
        signal: i32,
        /// The jobs being cancelled.
        job_ids: Vec<String>,
    },
    /// `scancel` could not be run or failed.
    CancelFailed {
        /// Why.
        error: SlurmCommandError,
    },
    /// A cancelled job still had not ended when the submitter stopped waiting for it.
    NotEnded {
        /// The job.
        job_id: String,
        /// Its trial.
        trial: String,
        /// How long the submitter waited after `scancel`.
        waited: Duration,
    },
    /// Every job has a verdict (or the rest were cancelled): the counts.
    Summary {
        /// Trials, submitted or not.
        trials: usize,
        /// Jobs that passed.
        passed: usize,
        /// Trials that failed, were not run or were not submitted.
        failed: usize,
    },
}

/// How one job ended, with the files that show its results or explain its failure.
#[derive(Debug)]
pub struct JobReport {
    /// The job.
    pub job_id: String,
    /// Its trial.
    pub trial: String,
    /// The trial's output folder.
    pub trial_dir: PathBuf,
    /// How it ended.
    pub verdict: Verdict,
    /// The job's node list, when known.
    pub allocation: Option<String>,
    /// Its steps as accounting lists them (empty without accounting).
    pub steps: Vec<StepRecord>,
    /// What explains the verdict.
    pub evidence: Evidence,
}

/// The files behind a verdict.
#[derive(Debug)]
pub enum Evidence {
    /// The job passed: its results.
    Passed {
        /// `perf_records.json` and its number of records, when this job wrote it.
        records: Option<(PathBuf, usize)>,
        /// Client logs (`trtllm-benchmark.<s>.<c>.log`) this job wrote, file names, sorted.
        client_logs: Vec<String>,
        /// The end of the benchmark's (or the aggregated step's) log.
        summary: LogTail,
    },
    /// The trial failed at a stage: the end of that stage's log.
    TrialFailed {
        /// The stage's log.
        log: LogTail,
    },
    /// Anything else (cancelled, timed out, failed by the cluster): the final state and the end
    /// of the job's output.
    Job {
        /// The state as printed.
        state: String,
        /// The status command that reported it.
        source: &'static str,
        /// The end of `slurm-<id>.out`.
        output: LogTail,
    },
}

/// The last lines of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The file.
    pub path: PathBuf,
    /// Its last lines as written (not escaped), or `None` when it cannot be read.
    pub lines: Option<Vec<String>>,
}

/// Receives the submitter's events. Called from the submitting thread, in order.
pub trait SlurmEventSink {
    /// One event.
    fn event(&self, event: SlurmEvent);
}
