//! Job states and the text of Slurm's status commands, parsed (pure). Shapes are those recorded
//! in `docs/LOCAL_SLURM.md`: `sacct -P` lines, `scontrol -o show job` key=value pairs,
//! `squeue -o '%i|%T'` lines, and the `key=value` result file the batch script writes.

use std::collections::BTreeMap;
use std::fmt;

/// A Slurm job state (first word of sacct's `State`; `CANCELLED by 0` is `Cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Queued.
    Pending,
    /// Nodes booting / being configured.
    Configuring,
    /// Running.
    Running,
    /// Ending: steps are being cleaned up.
    Completing,
    /// Requeued (will run again).
    Requeued,
    /// Suspended.
    Suspended,
    /// Ended with exit code 0 (of the batch script).
    Completed,
    /// Ended with a non-zero exit code.
    Failed,
    /// Hit its time limit.
    Timeout,
    /// Cancelled (by a user, an admin, or the script itself).
    Cancelled,
    /// Killed for exceeding its memory.
    OutOfMemory,
    /// A node failed.
    NodeFail,
    /// Preempted.
    Preempted,
    /// A node failed to boot.
    BootFail,
    /// Missed its deadline.
    Deadline,
    /// Any other state name, as printed.
    Other(String),
}

impl JobState {
    /// Parses the first word of a state field.
    pub fn parse(text: &str) -> Self {
        let word = text.split_whitespace().next().unwrap_or("");
        match word.trim_end_matches('+') {
            "PENDING" | "PD" => JobState::Pending,
            "CONFIGURING" | "CF" => JobState::Configuring,
            "RUNNING" | "R" => JobState::Running,
            "COMPLETING" | "CG" => JobState::Completing,
            "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RQ" => JobState::Requeued,
            "SUSPENDED" | "S" => JobState::Suspended,
            "COMPLETED" | "CD" => JobState::Completed,
            "FAILED" | "F" => JobState::Failed,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            other => JobState::Other(other.to_string()),
        }
    }

    /// The job has ended (no further state change but requeue).
    pub fn is_terminal(&self) -> bool {
        match self {
            JobState::Pending
            | JobState::Configuring
            | JobState::Running
            | JobState::Completing
            | JobState::Requeued
            | JobState::Suspended => false,
            // Unknown transient states (RESIZING, SIGNALING, STAGE_OUT, …) keep us polling;
            // unknown final ones are listed here by name.
            JobState::Other(s) => matches!(s.as_str(), "REVOKED" | "SPECIAL_EXIT"),
            _ => true,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            JobState::Pending => "PENDING",
            JobState::Configuring => "CONFIGURING",
            JobState::Running => "RUNNING",
            JobState::Completing => "COMPLETING",
            JobState::Requeued => "REQUEUED",
            JobState::Suspended => "SUSPENDED",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::Cancelled => "CANCELLED",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Other(s) => s,
        };
        f.write_str(s)
    }
}

/// What a status command said about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The state.
    pub state: JobState,
    /// The state field as printed (`CANCELLED by 0`).
    pub raw_state: String,
    /// `ExitCode` (`<status>:<signal>`), when known.
    pub exit_code: Option<String>,
    /// Elapsed / run time, when known.
    pub elapsed: Option<String>,
    /// Node list, when known.
    pub nodes: Option<String>,
    /// Which command answered (`sacct`, `squeue`, `scontrol`, `sacct -c`).
    pub source: &'static str,
}

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && *s != "None assigned" && *s != "(null)")
        .map(str::to_string)
}

/// `sacct -j A,B -X -n -P -o JobID,State,ExitCode,Elapsed,NodeList` → status per job id (the
/// last line of a job wins). `source` names the command for messages.
pub fn parse_sacct_jobs(text: &str, source: &'static str) -> BTreeMap<String, JobStatus> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 2 || f[0].trim().is_empty() || f[0].contains('.') {
            continue;
        }
        out.insert(
            f[0].trim().to_string(),
            JobStatus {
                state: JobState::parse(f[1]),
                raw_state: f[1].trim().to_string(),
                exit_code: opt(f.get(2).copied()),
                elapsed: opt(f.get(3).copied()),
                nodes: opt(f.get(4).copied()),
                source,
            },
        );
    }
    out
}

/// One step of a job (`sacct -j ID -n -P -o JobID,JobName,State,ExitCode,NodeList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// `ID.N`, `ID.batch`, `ID.extern`.
    pub step_id: String,
    /// Step name (our steps are named after their role: `GEN_0`, `BENCHMARK`, …).
    pub name: String,
    /// State.
    pub state: JobState,
    /// State as printed.
    pub raw_state: String,
    /// `ExitCode`.
    pub exit_code: String,
    /// Nodes the step ran on.
    pub nodes: String,
}

/// The steps (lines whose JobID has a `.`) of a `sacct` step listing.
pub fn parse_sacct_steps(text: &str) -> Vec<StepRecord> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 5 || !f[0].contains('.') {
                return None;
            }
            Some(StepRecord {
                step_id: f[0].trim().to_string(),
                name: f[1].trim().to_string(),
                state: JobState::parse(f[2]),
                raw_state: f[2].trim().to_string(),
                exit_code: f[3].trim().to_string(),
                nodes: f[4].trim().to_string(),
            })
        })
        .collect()
}

/// `scontrol -o show job ID` (one line of `Key=Value` words) → status.
pub fn parse_scontrol_job(text: &str) -> Option<JobStatus> {
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    };
    let state = field("JobState")?;
    Some(JobStatus {
        state: JobState::parse(state),
        raw_state: state.to_string(),
        exit_code: opt(field("ExitCode")),
        elapsed: opt(field("RunTime")),
        nodes: opt(field("NodeList")),
        source: "scontrol",
    })
}

/// `squeue -h -j ID --states=all -o '%i|%T'` → status of `job_id`.
pub fn parse_squeue(text: &str, job_id: &str) -> Option<JobStatus> {
    text.lines().find_map(|line| {
        let (id, state) = line.split_once('|')?;
        (id.trim() == job_id).then(|| JobStatus {
            state: JobState::parse(state),
            raw_state: state.trim().to_string(),
            exit_code: None,
            elapsed: None,
            nodes: None,
            source: "squeue",
        })
    })
}

/// `sbatch --parsable` output: `<id>` or `<id>;<cluster>`.
pub fn parse_sbatch_parsable(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// The batch script's result file (`key=value` lines; the first value of a key wins, so the
/// first recorded failure — the cause — is kept over the ones the cancellation triggers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultFile {
    /// Keys in first-seen order with their first value.
    pub values: Vec<(String, String)>,
}

impl ResultFile {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Self {
        let mut values: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=')
                && !values.iter().any(|(key, _)| key == k)
            {
                values.push((k.to_string(), v.to_string()));
            }
        }
        ResultFile { values }
    }

    /// Value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// How a job ended, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// COMPLETED, exit 0, the benchmark step succeeded.
    Passed,
    /// The trial failed: a step failed and the script cancelled the job (upstream's failure
    /// path), or the script itself failed.
    TrialFailed {
        /// `BENCHMARK`, `GEN_1`, `setup`, … (the script's `failed_stage`).
        stage: String,
        /// What the script or the step listing said.
        message: String,
    },
    /// Cancelled by someone else (scancel, an admin, Ctrl-C of the submitter).
    Cancelled {
        /// The state as printed (`CANCELLED by 1000`).
        detail: String,
    },
    /// The job hit its time limit.
    TimedOut,
    /// The cluster ended the job (OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, BOOT_FAIL, …) or the
    /// batch script failed without saying why.
    JobFailed {
        /// State and exit code.
        detail: String,
    },
    /// The job disappeared from every status command.
    Lost {
        /// What we know.
        detail: String,
    },
}

impl Verdict {
    /// True only for [`Verdict::Passed`].
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Passed)
    }

    /// One-word label.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Passed => "PASS",
            Verdict::TrialFailed { .. } => "FAIL",
            Verdict::Cancelled { .. } => "CANCELLED",
            Verdict::TimedOut => "TIMEOUT",
            Verdict::JobFailed { .. } => "JOB FAILED",
            Verdict::Lost { .. } => "LOST",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Passed => f.write_str("passed"),
            Verdict::TrialFailed { stage, message } => {
                write!(f, "trial failed at {stage}: {message}")
            }
            Verdict::Cancelled { detail } => write!(
                f,
                "cancelled from outside the job ({detail}); the script recorded no failure"
            ),
            Verdict::TimedOut => f.write_str("the job hit its time limit (--time)"),
            Verdict::JobFailed { detail } => write!(f, "the job failed: {detail}"),
            Verdict::Lost { detail } => write!(f, "lost track of the job: {detail}"),
        }
    }
}

/// Decides how a finished job ended from its final status, the script's result file and (with
/// accounting) its steps. A failed upstream-style trial ends `CANCELLED` because the script
/// cancels its own job: the result file (or the BENCHMARK step's exit) tells that apart from a
/// cancellation by someone else.
pub fn classify(status: &JobStatus, result: &ResultFile, steps: &[StepRecord]) -> Verdict {
    let recorded_failure = || {
        result
            .get("failed_stage")
            .map(|stage| Verdict::TrialFailed {
                stage: stage.to_string(),
                message: result
                    .get("message")
                    .unwrap_or("(no message recorded)")
                    .to_string(),
            })
    };
    // Without the result file (not on a shared filesystem, removed, …) the step listing is
    // the fallback: `perfsanity run` exits 1 for a failed trial, while steps killed by a
    // cancellation end with a signal's code (15, 143, …) even when sacct calls them FAILED.
    let failed_step = || {
        if result.get("job_id").is_some() {
            return None;
        }
        steps
            .iter()
            .find(|s| s.name == "BENCHMARK" && s.exit_code == "1:0")
            .map(|s| Verdict::TrialFailed {
                stage: s.name.clone(),
                message: format!(
                    "step {} ended {} with exit code {} (no result file; from sacct)",
                    s.step_id, s.raw_state, s.exit_code
                ),
            })
    };
    let exit = status.exit_code.clone().unwrap_or_else(|| "?".to_string());
    match &status.state {
        JobState::Completed => {
            if let Some(v) = recorded_failure() {
                return v;
            }
            match (status.exit_code.as_deref(), result.get("benchmark_exit")) {
                (_, Some(code)) if code != "0" => Verdict::TrialFailed {
                    stage: "BENCHMARK".to_string(),
                    message: format!("the benchmark step exited {code}"),
                },
                (Some("0:0") | None, _) => Verdict::Passed,
                (Some(code), _) => Verdict::JobFailed {
                    detail: format!("COMPLETED with exit code {code}"),
                },
            }
        }
        JobState::Cancelled => {
            recorded_failure()
                .or_else(failed_step)
                .unwrap_or_else(|| Verdict::Cancelled {
                    detail: status.raw_state.clone(),
                })
        }
        JobState::Failed => recorded_failure().unwrap_or_else(|| Verdict::JobFailed {
            detail: format!(
                "FAILED with exit code {exit} (the batch script failed; see its output)"
            ),
        }),
        JobState::Timeout => Verdict::TimedOut,
        other => Verdict::JobFailed {
            detail: format!("{other} (exit code {exit})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, exit: &str) -> JobStatus {
        JobStatus {
            state: JobState::parse(state),
            raw_state: state.to_string(),
            exit_code: Some(exit.to_string()),
            elapsed: None,
            nodes: None,
            source: "sacct",
        }
    }

    #[test]
    fn parses_the_recorded_shapes() {
        let jobs = parse_sacct_jobs(
            "6|COMPLETED|0:0|00:00:06|node[1-2]\n5|CANCELLED by 0|0:0|00:00:03|node1\n",
            "sacct",
        );
        assert_eq!(jobs["6"].state, JobState::Completed);
        assert_eq!(jobs["6"].nodes.as_deref(), Some("node[1-2]"));
        assert_eq!(jobs["5"].state, JobState::Cancelled);
        assert_eq!(jobs["5"].raw_state, "CANCELLED by 0");
        let steps = parse_sacct_steps(
            "6|disagg_perf_test|COMPLETED|0:0|node[1-2]\n6.batch|batch|COMPLETED|0:0|node1\n\
             6.0|GEN_0|FAILED|7:0|node2\n",
        );
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].name, "GEN_0");
        assert_eq!(steps[1].exit_code, "7:0");
        let s = parse_scontrol_job(
            "JobId=6 JobName=x UserId=root(0) JobState=CANCELLED Reason=None ExitCode=0:15 \
             RunTime=00:00:05 NodeList=node[1-3] BatchHost=node1",
        )
        .unwrap();
        assert_eq!(s.state, JobState::Cancelled);
        assert_eq!(s.exit_code.as_deref(), Some("0:15"));
        assert_eq!(s.nodes.as_deref(), Some("node[1-3]"));
        assert_eq!(
            parse_squeue("6|PENDING\n", "6").unwrap().state,
            JobState::Pending
        );
        assert!(parse_squeue("7|PENDING\n", "6").is_none());
        assert_eq!(parse_sbatch_parsable("17\n").as_deref(), Some("17"));
        assert_eq!(parse_sbatch_parsable("17;cluster\n").as_deref(), Some("17"));
        assert_eq!(parse_sbatch_parsable("Submitted batch job 17\n"), None);
        assert!(!JobState::parse("RUNNING").is_terminal());
        assert!(!JobState::parse("RESIZING").is_terminal());
        for s in [
            "COMPLETED",
            "FAILED",
            "TIMEOUT",
            "CANCELLED by 0",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
        ] {
            assert!(JobState::parse(s).is_terminal(), "{s}");
        }
    }

    #[test]
    fn a_self_cancelled_job_is_a_failed_trial_not_a_cancellation() {
        let result = ResultFile::parse(
            "job_id=5\nfailed_stage=BENCHMARK\nfailed_exit=1\nmessage=the benchmark step exited 1\n\
             failed_stage=GEN_0\n",
        );
        let v = classify(&status("CANCELLED by 0", "0:0"), &result, &[]);
        assert_eq!(
            v,
            Verdict::TrialFailed {
                stage: "BENCHMARK".into(),
                message: "the benchmark step exited 1".into()
            }
        );
        // No result file (e.g. output dir unreadable) but the step listing shows the failure.
        let steps =
            parse_sacct_steps("5.3|BENCHMARK|FAILED|1:0|node1\n5.0|GEN_0|CANCELLED|0:15|node1\n");
        assert!(matches!(
            classify(&status("CANCELLED by 0", "0:0"), &ResultFile::default(), &steps),
            Verdict::TrialFailed { stage, .. } if stage == "BENCHMARK"
        ));
        // Cancelled by someone (seen on the local cluster): the killed steps say FAILED with a
        // signal's exit code, and the script recorded no failure.
        let steps =
            parse_sacct_steps("25.2|BENCHMARK|FAILED|15:0|node1\n25.0|GEN_0|FAILED|1:0|node1\n");
        for result in [
            ResultFile::parse("job_id=25\ntrial=t\n"),
            ResultFile::default(),
        ] {
            assert!(matches!(
                classify(&status("CANCELLED by 1000", "0:0"), &result, &steps),
                Verdict::Cancelled { detail } if detail == "CANCELLED by 1000"
            ));
        }
        // The script's record wins over the step listing.
        let steps = parse_sacct_steps("5.3|BENCHMARK|FAILED|1:0|node1\n");
        assert!(matches!(
            classify(
                &status("CANCELLED by 0", "0:0"),
                &ResultFile::parse("job_id=5\n"),
                &steps
            ),
            Verdict::Cancelled { .. }
        ));
    }

    #[test]
    fn other_end_states() {
        let ok = ResultFile::parse("benchmark_exit=0\noutcome=completed\n");
        assert_eq!(
            classify(&status("COMPLETED", "0:0"), &ok, &[]),
            Verdict::Passed
        );
        assert!(matches!(
            classify(&status("COMPLETED", "3:0"), &ok, &[]),
            Verdict::JobFailed { .. }
        ));
        assert_eq!(
            classify(&status("TIMEOUT", "0:0"), &ok, &[]),
            Verdict::TimedOut
        );
        for s in ["OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL"] {
            assert!(
                matches!(classify(&status(s, "0:9"), &ok, &[]), Verdict::JobFailed { detail } if detail.contains(s)),
                "{s}"
            );
        }
        assert!(matches!(
            classify(&status("FAILED", "1:0"), &ResultFile::default(), &[]),
            Verdict::JobFailed { .. }
        ));
    }
}
