//! Asking Slurm about jobs: `sacct` as upstream does (accounting database), falling back to
//! `squeue --states=all` while the database has not recorded a new job yet, and to
//! `scontrol show job` / `sacct -c` when accounting is disabled (`docs/LOCAL_SLURM.md`).

use std::collections::BTreeMap;
use std::process::Command;

use super::error::SlurmCommandError;
use super::state::{
    JobStatus, StepRecord, parse_sacct_jobs, parse_sacct_steps, parse_scontrol_job, parse_squeue,
};

/// Runs `program args…`; returns (exit ok, stdout, stderr). A missing program is `Err`.
fn run(program: &str, args: &[&str]) -> Result<(bool, String, String), SlurmCommandError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SlurmCommandError::NotRun {
            program: program.to_string(),
            source,
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Status queries with memory of whether accounting works.
#[derive(Debug, Default)]
pub struct Poller {
    /// `sacct` said accounting storage is disabled (or is missing): use slurmctld only.
    no_accounting: bool,
}

impl Poller {
    /// A poller that tries `sacct` first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether job steps can be listed (accounting works).
    pub fn has_accounting(&self) -> bool {
        !self.no_accounting
    }

    /// Current status of each job that any command knows about.
    pub fn statuses(&mut self, job_ids: &[String]) -> BTreeMap<String, JobStatus> {
        let mut known = BTreeMap::new();
        if job_ids.is_empty() {
            return known;
        }
        if !self.no_accounting {
            let list = job_ids.join(",");
            match run(
                "sacct",
                &[
                    "-j",
                    &list,
                    "-X",
                    "-n",
                    "-P",
                    "-o",
                    "JobID,State,ExitCode,Elapsed,NodeList",
                ],
            ) {
                Ok((true, out, err)) if !is_disabled(&out, &err) => {
                    known = parse_sacct_jobs(&out, "sacct");
                }
                _ => self.no_accounting = true,
            }
        }
        for id in job_ids {
            if known.contains_key(id) {
                continue;
            }
            // Not (yet) in the accounting database, or no accounting: ask slurmctld.
            if let Some(s) = self.ask_controller(id) {
                known.insert(id.clone(), s);
            }
        }
        known
    }

    fn ask_controller(&self, id: &str) -> Option<JobStatus> {
        if let Ok((true, out, _)) = run("squeue", &["-h", "-j", id, "--states=all", "-o", "%i|%T"])
            && let Some(s) = parse_squeue(&out, id)
        {
            // squeue has no exit code: take scontrol's richer view when the job has ended.
            if s.state.is_terminal()
                && let Some(full) = self.scontrol(id)
            {
                return Some(full);
            }
            return Some(s);
        }
        if let Some(s) = self.scontrol(id) {
            return Some(s);
        }
        // Gone from slurmctld (MinJobAge): the job completion log still knows the end state.
        if let Ok((true, out, err)) = run(
            "sacct",
            &["-c", "-j", id, "-n", "-P", "-o", "JobID,State,ExitCode"],
        ) && !is_disabled(&out, &err)
        {
            return parse_sacct_jobs(&out, "sacct -c").remove(id);
        }
        None
    }

    fn scontrol(&self, id: &str) -> Option<JobStatus> {
        match run("scontrol", &["-o", "show", "job", id]) {
            Ok((true, out, _)) => parse_scontrol_job(&out),
            _ => None,
        }
    }

    /// The job's node list: slurmctld's (exact while it remembers the job), else sacct's.
    pub fn allocation(&self, job_id: &str) -> Option<String> {
        if let Some(nodes) = self.scontrol(job_id).and_then(|s| s.nodes) {
            return Some(nodes);
        }
        if self.no_accounting {
            return None;
        }
        match run(
            "sacct",
            &[
                "-j",
                job_id,
                "-X",
                "-n",
                "-P",
                "-o",
                "JobID,State,ExitCode,Elapsed,NodeList",
            ],
        ) {
            Ok((true, out, _)) => parse_sacct_jobs(&out, "sacct")
                .remove(job_id)
                .and_then(|s| s.nodes),
            _ => None,
        }
    }

    /// The job's steps (needs accounting; empty otherwise).
    pub fn steps(&self, job_id: &str) -> Vec<StepRecord> {
        if self.no_accounting {
            return Vec::new();
        }
        match run(
            "sacct",
            &[
                "-j",
                job_id,
                "-n",
                "-P",
                "-o",
                "JobID,JobName,State,ExitCode,NodeList",
            ],
        ) {
            Ok((true, out, _)) => parse_sacct_steps(&out),
            _ => Vec::new(),
        }
    }
}

fn is_disabled(out: &str, err: &str) -> bool {
    let text = format!("{out}{err}").to_ascii_lowercase();
    text.contains("accounting storage is disabled")
}

/// `scancel ID…`; returns the problem, if any.
pub fn scancel(job_ids: &[String]) -> Result<(), SlurmCommandError> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let args: Vec<&str> = job_ids.iter().map(String::as_str).collect();
    match run("scancel", &args)? {
        (true, _, _) => Ok(()),
        (false, out, err) => Err(SlurmCommandError::Failed {
            command: format!("scancel {}", args.join(" ")),
            output: format!("{}{}", out.trim(), err.trim()),
        }),
    }
}
