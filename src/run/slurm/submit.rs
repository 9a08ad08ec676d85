//! `perfsanity slurm submit`: write each trial's batch script, `sbatch --parsable` it, and with
//! `--wait` poll until every job has ended — reporting state changes as they happen, classifying
//! each end state, gathering the benchmark's results or the log that explains a failure — and
//! `scancel` the jobs when a signal asks ([`CancelRequest`]). Everything it has to say goes to
//! the caller's [`SlurmEventSink`] as typed [`SlurmEvent`]s; it returns a [`SubmitOutcome`] (the
//! edge turns both into text and an exit code: `crate::app::slurm_reporter`,
//! `crate::app::slurm_cmd`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::aggr::{AGGR_LOG, AGGR_STEP};
use super::cancel::CancelRequest;
use super::error::{SlurmError, SubmitError};
use super::events::{Evidence, JobReport, LogTail, SlurmEvent, SlurmEventSink};
use super::poll::{Poller, scancel};
use super::script::{BENCHMARK_LOG, ROUTER_LOG, SCRIPT_FILE, result_file};
use super::state::{JobState, JobStatus, ResultFile, Verdict, classify, parse_sbatch_parsable};

/// How long the submitter waits, after `scancel`, for the jobs to end.
const CANCEL_CONFIRM: Duration = Duration::from_secs(30);

/// How `submit` behaves.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// Poll until every job has ended.
    pub wait: bool,
    /// Time between polls.
    pub poll: Duration,
    /// How long a job may be unknown to every status command before it counts as lost.
    pub unknown_limit: Duration,
}

/// A trial ready to submit: its name, directory and script text (or why it cannot run).
pub struct Prepared {
    /// Trial name.
    pub trial: String,
    /// Its output directory.
    pub trial_dir: PathBuf,
    /// Directory sbatch runs in.
    pub workdir: PathBuf,
    /// The script, or the error that stops this trial.
    pub script: Result<String, SlurmError>,
}

struct Job {
    trial: String,
    id: String,
    trial_dir: PathBuf,
    submitted: SystemTime,
    submitted_at: Instant,
    last_state: Option<String>,
    progress: u8,
    verdict: Option<Verdict>,
}

/// What `submit` ended with (the edge turns it into an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Without `--wait`: the jobs were submitted and left to run.
    Submitted {
        /// Jobs submitted.
        jobs: usize,
        /// Trials not submitted.
        not_submitted: usize,
    },
    /// With `--wait`: every job was followed to its end.
    Ended {
        /// Trials, submitted or not.
        trials: usize,
        /// Jobs that passed.
        passed: usize,
    },
    /// A signal cancelled the open jobs.
    Interrupted {
        /// The signal's number.
        signal: i32,
    },
}

impl SubmitOutcome {
    /// Every trial was submitted and, when followed, passed.
    pub fn all_passed(&self) -> bool {
        match *self {
            SubmitOutcome::Submitted { not_submitted, .. } => not_submitted == 0,
            SubmitOutcome::Ended { trials, passed } => passed == trials,
            SubmitOutcome::Interrupted { .. } => false,
        }
    }
}

/// The submitter's state: where its events go and what asks it to stop.
struct Submitter<'a> {
    sink: &'a dyn SlurmEventSink,
    cancel: &'a CancelRequest,
}

/// How far along a state is: queued 0, running 1, ended 2 (a requeue starts over).
fn progress(state: &JobState) -> u8 {
    match state {
        JobState::Requeued => 0,
        s if s.is_terminal() => 2,
        JobState::Running | JobState::Completing | JobState::Suspended => 1,
        _ => 0,
    }
}

/// The local wall-clock time, for state changes.
fn now() -> jiff::civil::Time {
    jiff::ZonedDateTime::now().time()
}

/// Writes the script and submits it; returns the job id.
fn sbatch(p: &Prepared, script: &str) -> Result<(String, PathBuf), SubmitError> {
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SubmitError::Write { path, source }
    };
    std::fs::create_dir_all(&p.trial_dir).map_err(write(&p.trial_dir))?;
    let path = p.trial_dir.join(SCRIPT_FILE);
    crate::util::fs::write_atomic(&path, script.as_bytes()).map_err(write(&path))?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .current_dir(&p.workdir)
        .output()
        .map_err(|source| SubmitError::SbatchNotRun { source })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let output = || format!("{stdout}{stderr}").trim().to_string();
    if !out.status.success() {
        return Err(SubmitError::SbatchFailed {
            path,
            status: out.status,
            output: output(),
        });
    }
    let id =
        parse_sbatch_parsable(&stdout).ok_or_else(|| SubmitError::NoJobId { output: output() })?;
    Ok((id, path))
}

/// The last `lines` lines of `path` (`None` when it cannot be read).
fn tail(path: PathBuf, lines: usize) -> LogTail {
    let lines = std::fs::read_to_string(&path).ok().map(|text| {
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| l.to_string())
            .collect()
    });
    LogTail { path, lines }
}

/// The log that explains a failure at `stage`.
fn stage_log(trial_dir: &Path, job_id: &str, stage: &str) -> PathBuf {
    if let Some(i) = stage.strip_prefix("GEN_") {
        trial_dir.join(format!("gen_server_{i}.log"))
    } else if let Some(i) = stage.strip_prefix("CTX_") {
        trial_dir.join(format!("ctx_server_{i}.log"))
    } else if stage == "DISAGG_SERVER" {
        trial_dir.join(ROUTER_LOG)
    } else if stage == "BENCHMARK" {
        trial_dir.join(BENCHMARK_LOG)
    } else if stage == AGGR_STEP {
        trial_dir.join(AGGR_LOG)
    } else {
        trial_dir.join(format!("slurm-{job_id}.out"))
    }
}

/// Client logs (`trtllm-benchmark.<s>.<c>.log`) written since `since`, sorted.
fn fresh_client_logs(trial_dir: &Path, since: SystemTime) -> Vec<String> {
    let mut logs: Vec<String> = std::fs::read_dir(trial_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("trtllm-benchmark.") && n.ends_with(".log"))
        .collect();
    logs.sort();
    logs
}

/// Records in `perf_records.json` written since `since`, if any.
fn fresh_records(trial_dir: &Path, since: SystemTime) -> Option<(PathBuf, usize)> {
    let path = trial_dir.join("perf_records.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((path, value.as_array().map_or(0, Vec::len)))
}

/// The files that explain `verdict`: the results of a passed job, the failed stage's log, or
/// the job's own output.
fn evidence(job: &Job, status: &JobStatus, verdict: &Verdict) -> Evidence {
    match verdict {
        Verdict::Passed => {
            // The benchmark step's log (disaggregated), else the aggregated step's.
            let summary = [BENCHMARK_LOG, AGGR_LOG]
                .map(|name| job.trial_dir.join(name))
                .into_iter()
                .find(|p| p.exists())
                .unwrap_or_else(|| job.trial_dir.join(BENCHMARK_LOG));
            Evidence::Passed {
                records: fresh_records(&job.trial_dir, job.submitted),
                client_logs: fresh_client_logs(&job.trial_dir, job.submitted),
                summary: tail(summary, 40),
            }
        }
        Verdict::TrialFailed { stage, .. } => Evidence::TrialFailed {
            log: tail(stage_log(&job.trial_dir, &job.id, stage), 20),
        },
        _ => Evidence::Job {
            state: status.raw_state.clone(),
            source: status.source,
            output: tail(job.trial_dir.join(format!("slurm-{}.out", job.id)), 10),
        },
    }
}

impl Submitter<'_> {
    fn say(&self, event: SlurmEvent) {
        self.sink.event(event);
    }

    fn sleep_unless_signalled(&self, total: Duration) {
        let until = crate::util::deadline::deadline_after(Instant::now(), total);
        while !crate::util::deadline::passed(until) && self.cancel.signal().is_none() {
            let left = until.map_or(Duration::MAX, |u| {
                u.saturating_duration_since(Instant::now())
            });
            std::thread::sleep(Duration::from_millis(100).min(left));
        }
    }

    /// The job has ended: classify it and report the verdict with its evidence.
    fn finish(&self, job: &mut Job, status: &JobStatus, poller: &Poller) {
        let result = std::fs::read_to_string(result_file(&job.trial_dir, &job.id))
            .map(|t| ResultFile::parse(&t))
            .unwrap_or_default();
        let steps = poller.steps(&job.id);
        let allocation = poller.allocation(&job.id);
        let verdict = classify(status, &result, &steps);
        self.say(SlurmEvent::JobEnded(JobReport {
            job_id: job.id.clone(),
            trial: job.trial.clone(),
            trial_dir: job.trial_dir.clone(),
            evidence: evidence(job, status, &verdict),
            verdict: verdict.clone(),
            allocation,
            steps,
        }));
        job.verdict = Some(verdict);
    }

    /// `sbatch` for each trial, in order, until a signal arrives: the submitted jobs and how
    /// many trials could not be submitted.
    fn submit_all(&self, trials: Vec<Prepared>) -> (Vec<Job>, usize) {
        let mut jobs: Vec<Job> = Vec::new();
        let mut failures = 0usize;
        for p in trials {
            let submitted = SystemTime::now();
            match p
                .script
                .clone()
                .map_err(SubmitError::from)
                .and_then(|s| sbatch(&p, &s))
            {
                Ok((id, path)) => {
                    self.say(SlurmEvent::Submitted {
                        trial: p.trial.clone(),
                        job_id: id.clone(),
                        script: path,
                        trial_dir: p.trial_dir.clone(),
                    });
                    jobs.push(Job {
                        trial: p.trial,
                        id,
                        trial_dir: p.trial_dir,
                        submitted,
                        submitted_at: Instant::now(),
                        last_state: None,
                        progress: 0,
                        verdict: None,
                    });
                }
                Err(error) => {
                    failures += 1;
                    self.say(SlurmEvent::NotSubmitted {
                        trial: p.trial,
                        error,
                    });
                }
            }
            if self.cancel.signal().is_some() {
                break;
            }
        }
        (jobs, failures)
    }

    /// Polls the open jobs until every one has a verdict (or a signal cancels them all).
    fn follow(&self, jobs: &mut [Job], failures: usize, options: &SubmitOptions) -> SubmitOutcome {
        let mut poller = Poller::new();
        loop {
            if let Some(sig) = self.cancel.signal() {
                return self.cancel_all(jobs, &mut poller, sig, failures);
            }
            let open = open_ids(jobs);
            if open.is_empty() {
                break;
            }
            let statuses = poller.statuses(&open);
            for job in jobs.iter_mut().filter(|j| j.verdict.is_none()) {
                match statuses.get(&job.id) {
                    Some(status) => self.update_job(job, status, &poller),
                    None if job.submitted_at.elapsed() > options.unknown_limit => {
                        self.mark_lost(job, options.unknown_limit)
                    }
                    None => {}
                }
            }
            if jobs.iter().all(|j| j.verdict.is_some()) {
                break;
            }
            self.sleep_unless_signalled(options.poll);
        }
        self.summary(jobs, failures)
    }

    /// One status of one job: report a new state, and finish the job when the state is
    /// terminal.
    fn update_job(&self, job: &mut Job, status: &JobStatus, poller: &Poller) {
        // The accounting database lags slurmctld: a job seen RUNNING may read PENDING once
        // more. States only move forward (a requeue says REQUEUED).
        if status.state != JobState::Requeued && progress(&status.state) < job.progress {
            return;
        }
        job.progress = progress(&status.state);
        if job.last_state.as_deref() != Some(status.raw_state.as_str()) {
            let ended = status.state.is_terminal();
            self.say(SlurmEvent::StateChanged {
                at: now(),
                job_id: job.id.clone(),
                trial: job.trial.clone(),
                state: status.raw_state.clone(),
                exit_code: status.exit_code.clone().filter(|_| ended),
                elapsed: status.elapsed.clone().filter(|_| ended),
            });
            job.last_state = Some(status.raw_state.clone());
        }
        if status.state.is_terminal() {
            self.finish(job, status, poller);
        }
    }

    /// No status command knows the job after `limit`: it is lost.
    fn mark_lost(&self, job: &mut Job, limit: Duration) {
        let verdict = Verdict::Lost {
            detail: format!(
                "no status command (sacct, squeue, scontrol) knows job {} after {} s",
                job.id,
                limit.as_secs()
            ),
        };
        self.say(SlurmEvent::JobLost {
            job_id: job.id.clone(),
            trial: job.trial.clone(),
            verdict: verdict.clone(),
        });
        job.verdict = Some(verdict);
    }

    fn summary(&self, jobs: &[Job], not_submitted: usize) -> SubmitOutcome {
        let passed = jobs
            .iter()
            .filter(|j| j.verdict.as_ref().is_some_and(Verdict::passed))
            .count();
        let trials = jobs.len() + not_submitted;
        self.say(SlurmEvent::Summary {
            trials,
            passed,
            failed: trials - passed,
        });
        SubmitOutcome::Ended { trials, passed }
    }

    /// A signal: cancel every unfinished job, report how each ended.
    fn cancel_all(
        &self,
        jobs: &mut [Job],
        poller: &mut Poller,
        sig: i32,
        not_submitted: usize,
    ) -> SubmitOutcome {
        let open = open_ids(jobs);
        self.say(SlurmEvent::Cancelling {
            signal: sig,
            job_ids: open.clone(),
        });
        if let Err(error) = scancel(&open) {
            self.say(SlurmEvent::CancelFailed { error });
        }
        // Confirm (bounded): report each job's end state as Slurm records it.
        let until = Instant::now() + CANCEL_CONFIRM;
        while Instant::now() < until && jobs.iter().any(|j| j.verdict.is_none()) {
            let statuses = poller.statuses(&open_ids(jobs));
            for job in jobs.iter_mut().filter(|j| j.verdict.is_none()) {
                if let Some(s) = statuses.get(&job.id).filter(|s| s.state.is_terminal()) {
                    self.say(SlurmEvent::StateChanged {
                        at: now(),
                        job_id: job.id.clone(),
                        trial: job.trial.clone(),
                        state: s.raw_state.clone(),
                        exit_code: None,
                        elapsed: None,
                    });
                    self.finish(job, s, poller);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for job in jobs.iter().filter(|j| j.verdict.is_none()) {
            self.say(SlurmEvent::NotEnded {
                job_id: job.id.clone(),
                trial: job.trial.clone(),
                waited: CANCEL_CONFIRM,
            });
        }
        let _ = self.summary(jobs, not_submitted);
        SubmitOutcome::Interrupted { signal: sig }
    }
}

/// The ids of the jobs without a verdict.
fn open_ids(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .filter(|j| j.verdict.is_none())
        .map(|j| j.id.clone())
        .collect()
}

/// Submits `trials` and, with `--wait`, follows them to the end (or until `cancel` is set, then
/// cancels the open jobs). Every line of news goes to `sink`.
pub fn submit(
    trials: Vec<Prepared>,
    options: &SubmitOptions,
    sink: &dyn SlurmEventSink,
    cancel: &CancelRequest,
) -> SubmitOutcome {
    let submitter = Submitter { sink, cancel };
    let (mut jobs, not_submitted) = submitter.submit_all(trials);
    if !options.wait {
        submitter.say(SlurmEvent::SubmitDone {
            submitted: jobs.len(),
            not_submitted,
        });
        return SubmitOutcome::Submitted {
            jobs: jobs.len(),
            not_submitted,
        };
    }
    submitter.follow(&mut jobs, not_submitted, options)
}
