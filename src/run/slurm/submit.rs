//! `perfsanity slurm submit`: write each trial's batch script, `sbatch --parsable` it, and with
//! `--wait` poll until every job has ended — printing state changes as they happen, classifying
//! each end state, showing the benchmark's results or the log that explains a failure — and
//! `scancel` the jobs on Ctrl-C / SIGTERM. The exit code is 0 only when every job passed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use signal_hook::consts::{SIGINT, SIGTERM};

use super::aggr::{AGGR_LOG, AGGR_STEP};
use super::error::SlurmError;
use super::poll::{Poller, scancel};
use super::script::{BENCHMARK_LOG, ROUTER_LOG, SCRIPT_FILE, result_file};
use super::state::{
    JobState, JobStatus, ResultFile, StepRecord, Verdict, classify, parse_sbatch_parsable,
};

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

/// Why a trial was not submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Its script could not be generated.
    #[error(transparent)]
    Script(#[from] SlurmError),
    /// Its folder or script file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `sbatch` could not be started.
    #[error("cannot run sbatch: {source} (is Slurm installed and on PATH?)")]
    SbatchNotRun {
        /// What the OS said.
        source: std::io::Error,
    },
    /// `sbatch` refused the script.
    #[error("sbatch {} failed ({status}): {output}", path.display())]
    SbatchFailed {
        /// The script.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// `sbatch` printed no job id.
    #[error("sbatch printed no job id: {output:?}")]
    NoJobId {
        /// What it printed.
        output: String,
    },
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

/// How far along a state is: queued 0, running 1, ended 2 (a requeue starts over).
fn progress(state: &JobState) -> u8 {
    match state {
        JobState::Requeued => 0,
        s if s.is_terminal() => 2,
        JobState::Running | JobState::Completing | JobState::Suspended => 1,
        _ => 0,
    }
}

fn now() -> String {
    jiff::ZonedDateTime::now().strftime("%H:%M:%S").to_string()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // Log tails and trial names come from files we do not control.
    let _ = writeln!(out, "{}", crate::util::terminal::escape_lines(line));
    let _ = out.flush();
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

fn tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![format!("({} cannot be read)", path.display())];
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
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

fn report(
    job: &Job,
    status: &JobStatus,
    allocation: Option<&str>,
    steps: &[StepRecord],
    verdict: &Verdict,
) {
    say(&format!(
        "{} {} (job {}): {verdict}",
        verdict.label(),
        job.trial,
        job.id
    ));
    if let Some(nodes) = allocation {
        say(&format!("  allocation: {nodes}"));
    }
    if !steps.is_empty() {
        let list: Vec<String> = steps
            .iter()
            .filter(|s| !matches!(s.name.as_str(), "batch" | "extern"))
            .map(|s| format!("{} {} {} on {}", s.name, s.raw_state, s.exit_code, s.nodes))
            .collect();
        say(&format!("  steps: {}", list.join("; ")));
    }
    say(&format!(
        "  files: {} (job output slurm-{}.out, script {SCRIPT_FILE})",
        job.trial_dir.display(),
        job.id
    ));
    match verdict {
        Verdict::Passed => {
            match fresh_records(&job.trial_dir, job.submitted) {
                Some((path, n)) => say(&format!("  results: {} ({n} record(s))", path.display())),
                None => say("  results: no perf_records.json was written by this job"),
            }
            let logs = fresh_client_logs(&job.trial_dir, job.submitted);
            if !logs.is_empty() {
                say(&format!("  client logs: {}", logs.join(", ")));
            }
            // The benchmark step's log (disaggregated), else the aggregated step's.
            let summary = [BENCHMARK_LOG, AGGR_LOG]
                .map(|name| job.trial_dir.join(name))
                .into_iter()
                .find(|p| p.exists())
                .unwrap_or_else(|| job.trial_dir.join(BENCHMARK_LOG));
            for line in tail(&summary, 40) {
                say(&format!("  | {line}"));
            }
        }
        Verdict::TrialFailed { stage, .. } => {
            let log = stage_log(&job.trial_dir, &job.id, stage);
            say(&format!("  last lines of {}:", log.display()));
            for line in tail(&log, 20) {
                say(&format!("  | {line}"));
            }
        }
        _ => {
            let out = job.trial_dir.join(format!("slurm-{}.out", job.id));
            say(&format!(
                "  state {} from {}; last lines of {}:",
                status.raw_state,
                status.source,
                out.display()
            ));
            for line in tail(&out, 10) {
                say(&format!("  | {line}"));
            }
        }
    }
}

fn sleep_unless_signalled(total: Duration, signal: &AtomicUsize) {
    let until = crate::util::deadline::deadline_after(Instant::now(), total);
    while !crate::util::deadline::passed(until) && signal.load(Ordering::SeqCst) == 0 {
        let left = until.map_or(Duration::MAX, |u| {
            u.saturating_duration_since(Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100).min(left));
    }
}

fn finish(job: &mut Job, status: &JobStatus, poller: &Poller) {
    let result = std::fs::read_to_string(result_file(&job.trial_dir, &job.id))
        .map(|t| ResultFile::parse(&t))
        .unwrap_or_default();
    let steps = poller.steps(&job.id);
    let allocation = poller.allocation(&job.id);
    let verdict = classify(status, &result, &steps);
    report(job, status, allocation.as_deref(), &steps, &verdict);
    job.verdict = Some(verdict);
}

/// Submits `trials` and, with `--wait`, follows them to the end. Returns the process exit code.
pub fn submit(trials: Vec<Prepared>, options: &SubmitOptions) -> i32 {
    let signal = Arc::new(AtomicUsize::new(0));
    if options.wait {
        watch_signals(&signal);
    }
    let (mut jobs, failures) = submit_all(&trials, &signal);
    if !options.wait {
        say(&format!(
            "{} job(s) submitted, {failures} trial(s) not submitted",
            jobs.len()
        ));
        return i32::from(failures > 0);
    }
    follow(&mut jobs, failures, options, &signal)
}

/// SIGINT and SIGTERM set `signal` (to the signal's number) instead of ending the process, so
/// the submitter can cancel its jobs first.
fn watch_signals(signal: &Arc<AtomicUsize>) {
    for sig in [SIGINT, SIGTERM] {
        if let Err(e) = signal_hook::flag::register_usize(sig, Arc::clone(signal), sig as usize) {
            eprintln!("perfsanity slurm: cannot handle signal {sig}: {e}");
        }
    }
}

/// `sbatch` for each trial, in order, until a signal arrives: the submitted jobs and how many
/// trials could not be submitted.
fn submit_all(trials: &[Prepared], signal: &AtomicUsize) -> (Vec<Job>, usize) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut failures = 0usize;
    for p in trials {
        let submitted = SystemTime::now();
        match p
            .script
            .clone()
            .map_err(SubmitError::from)
            .and_then(|s| sbatch(p, &s))
        {
            Ok((id, path)) => {
                say(&format!(
                    "submitted {} as job {id} (script {}, output {}/slurm-{id}.out)",
                    p.trial,
                    path.display(),
                    p.trial_dir.display()
                ));
                jobs.push(Job {
                    trial: p.trial.clone(),
                    id,
                    trial_dir: p.trial_dir.clone(),
                    submitted,
                    submitted_at: Instant::now(),
                    last_state: None,
                    progress: 0,
                    verdict: None,
                });
            }
            Err(e) => {
                failures += 1;
                say(&format!("ERROR {}: {e}", p.trial));
            }
        }
        if signal.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    (jobs, failures)
}

/// Polls the open jobs until every one has a verdict (or a signal cancels them all); the exit
/// code.
fn follow(jobs: &mut [Job], failures: usize, options: &SubmitOptions, signal: &AtomicUsize) -> i32 {
    let mut poller = Poller::new();
    loop {
        let sig = signal.load(Ordering::SeqCst);
        if sig != 0 {
            return cancel_all(jobs, &mut poller, sig, failures);
        }
        let open: Vec<String> = jobs
            .iter()
            .filter(|j| j.verdict.is_none())
            .map(|j| j.id.clone())
            .collect();
        if open.is_empty() {
            break;
        }
        let statuses = poller.statuses(&open);
        for job in jobs.iter_mut().filter(|j| j.verdict.is_none()) {
            match statuses.get(&job.id) {
                Some(status) => update_job(job, status, &poller),
                None if job.submitted_at.elapsed() > options.unknown_limit => {
                    mark_lost(job, options.unknown_limit)
                }
                None => {}
            }
        }
        if jobs.iter().all(|j| j.verdict.is_some()) {
            break;
        }
        sleep_unless_signalled(options.poll, signal);
    }
    summary(jobs, failures)
}

/// One status of one job: report a new state, and finish the job when the state is terminal.
fn update_job(job: &mut Job, status: &JobStatus, poller: &Poller) {
    // The accounting database lags slurmctld: a job seen RUNNING may read PENDING once more.
    // States only move forward (a requeue says REQUEUED).
    if status.state != JobState::Requeued && progress(&status.state) < job.progress {
        return;
    }
    job.progress = progress(&status.state);
    if job.last_state.as_deref() != Some(status.raw_state.as_str()) {
        say(&state_line(job, status));
        job.last_state = Some(status.raw_state.clone());
    }
    if status.state.is_terminal() {
        finish(job, status, poller);
    }
}

/// `[time] job <id> <trial>: <STATE>[, exit code X, elapsed T]`.
fn state_line(job: &Job, status: &JobStatus) -> String {
    let mut line = format!(
        "[{}] job {} {}: {}",
        now(),
        job.id,
        job.trial,
        status.raw_state
    );
    if status.state.is_terminal() {
        if let Some(code) = &status.exit_code {
            line.push_str(&format!(", exit code {code}"));
        }
        if let Some(t) = &status.elapsed {
            line.push_str(&format!(", elapsed {t}"));
        }
    }
    line
}

/// No status command knows the job after `limit`: it is lost.
fn mark_lost(job: &mut Job, limit: Duration) {
    let verdict = Verdict::Lost {
        detail: format!(
            "no status command (sacct, squeue, scontrol) knows job {} after {} s",
            job.id,
            limit.as_secs()
        ),
    };
    say(&format!(
        "{} {} (job {}): {verdict}",
        verdict.label(),
        job.trial,
        job.id
    ));
    job.verdict = Some(verdict);
}

fn summary(jobs: &[Job], not_submitted: usize) -> i32 {
    let passed = jobs
        .iter()
        .filter(|j| j.verdict.as_ref().is_some_and(Verdict::passed))
        .count();
    let failed = jobs.len() - passed + not_submitted;
    say(&format!(
        "{} trial(s): {passed} passed, {failed} failed or not run",
        jobs.len() + not_submitted
    ));
    i32::from(failed > 0)
}

/// Ctrl-C / SIGTERM: cancel every unfinished job, report how each ended, exit 128 + signal.
fn cancel_all(jobs: &mut [Job], poller: &mut Poller, sig: usize, not_submitted: usize) -> i32 {
    let open: Vec<String> = jobs
        .iter()
        .filter(|j| j.verdict.is_none())
        .map(|j| j.id.clone())
        .collect();
    let name = if sig == SIGINT as usize {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    say(&format!(
        "perfsanity slurm: received {name}; cancelling job(s) {}",
        open.join(" ")
    ));
    if let Err(e) = scancel(&open) {
        say(&format!("perfsanity slurm: {e}"));
    }
    // Confirm (bounded): report each job's end state as Slurm records it.
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until && jobs.iter().any(|j| j.verdict.is_none()) {
        let open: Vec<String> = jobs
            .iter()
            .filter(|j| j.verdict.is_none())
            .map(|j| j.id.clone())
            .collect();
        let statuses = poller.statuses(&open);
        for job in jobs.iter_mut().filter(|j| j.verdict.is_none()) {
            if let Some(s) = statuses.get(&job.id).filter(|s| s.state.is_terminal()) {
                say(&format!(
                    "[{}] job {} {}: {}",
                    now(),
                    job.id,
                    job.trial,
                    s.raw_state
                ));
                finish(job, s, poller);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for job in jobs.iter().filter(|j| j.verdict.is_none()) {
        say(&format!(
            "job {} {}: still not ended 30 s after scancel; check `squeue -j {}`",
            job.id, job.trial, job.id
        ));
    }
    let _ = summary(jobs, not_submitted);
    128 + sig as i32
}
