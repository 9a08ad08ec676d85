//! What happened to a trial: passed, ignored (with the reason) or failed with a *class*, the role
//! at fault and the log tail that explains it. The runner produces outcomes; the harness, JUnit
//! and the reports consume them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Role;
use crate::util::log_file::{TAIL_LINES, tail};

/// Why a trial failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The config, test list or environment is invalid (nothing was started).
    Config,
    /// A process could not be started (missing program, permission, port/address clash).
    Launch,
    /// A server never reported its address or never became ready.
    NeverReady,
    /// A server exited (code or signal) while it was still needed.
    Crash,
    /// The benchmark client failed (non-zero exit, hang killed by a limit, bad output).
    Client,
    /// The client reported failed requests.
    FailedRequests,
    /// A required metric is missing from the client output or the gen logs.
    MissingMetric,
    /// The trial hit its time limit.
    Timeout,
    /// A role stopped (SIGSTOP), stopped answering `/health`, or (a worker) stopped making
    /// progress while the clients ran (`PERF_STALL_S`).
    Stalled,
    /// Another run holds the trial's output folder.
    Busy,
    /// The harness was interrupted (SIGINT / SIGTERM).
    Interrupted,
    /// A pre-merge regression that gates the trial.
    Regression,
    /// Results could not be stored.
    Results,
}

impl FailureClass {
    /// Stable snake_case name (JUnit `type`, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Config => "config",
            FailureClass::Launch => "launch",
            FailureClass::NeverReady => "never_ready",
            FailureClass::Crash => "crash",
            FailureClass::Client => "client",
            FailureClass::FailedRequests => "failed_requests",
            FailureClass::MissingMetric => "missing_metric",
            FailureClass::Timeout => "timeout",
            FailureClass::Stalled => "stalled",
            FailureClass::Busy => "busy",
            FailureClass::Interrupted => "interrupted",
            FailureClass::Regression => "regression",
            FailureClass::Results => "results",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure.
#[derive(Debug, Clone, Serialize)]
pub struct TrialFailure {
    /// The class.
    pub class: FailureClass,
    /// The role at fault, when one is.
    pub role: Option<Role>,
    /// What happened.
    pub message: String,
    /// The log that explains it and its last lines.
    pub log_tail: Option<LogTail>,
}

impl TrialFailure {
    /// A classified failure; with `log`, its last lines are attached.
    pub fn new(
        class: FailureClass,
        role: Option<Role>,
        message: String,
        log: Option<&std::path::Path>,
    ) -> Self {
        TrialFailure {
            class,
            role,
            message,
            log_tail: log.map(LogTail::read),
        }
    }

    /// A config-class failure (nothing started yet, or our own file system trouble), with the
    /// message of `error`.
    pub fn config(error: impl fmt::Display) -> Self {
        TrialFailure::new(FailureClass::Config, None, error.to_string(), None)
    }
}

/// The last lines of a log.
#[derive(Debug, Clone, Serialize)]
pub struct LogTail {
    /// The log file.
    pub path: PathBuf,
    /// Its last lines (at most ~40).
    pub text: String,
}

impl LogTail {
    /// The last [`TAIL_LINES`] lines of `path` (`(empty)` for an empty file, a note when
    /// unreadable).
    pub fn read(path: &std::path::Path) -> LogTail {
        let text = match tail(path, TAIL_LINES) {
            Some(t) if t.trim().is_empty() => "(empty)".to_string(),
            Some(t) => t,
            None => format!("(cannot read {})", path.display()),
        };
        LogTail {
            path: path.to_path_buf(),
            text,
        }
    }
}

impl fmt::Display for TrialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.class)?;
        if let Some(role) = self.role {
            write!(f, " {role}:")?;
        }
        write!(f, " {}", self.message)?;
        if let Some(tail) = &self.log_tail {
            // The lines that explain it first, then the tail they came from.
            let explaining = super::log_explain::explaining_lines(&tail.text);
            if !explaining.is_empty() {
                write!(f, "\n--- what explains it ---\n{}", explaining.join("\n"))?;
            }
            write!(
                f,
                "\n--- last lines of {} ---\n{}",
                tail.path.display(),
                tail.text.trim_end()
            )?;
        }
        Ok(())
    }
}

/// The status of a finished trial.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TrialStatus {
    /// Every metric present, no failed requests, no gating regression.
    Passed,
    /// Skipped, with the reason (e.g. not enough GPUs).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Failed.
    Failed(TrialFailure),
}

/// One trial's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TrialOutcome {
    /// Trial name.
    pub trial: String,
    /// Status.
    pub status: TrialStatus,
    /// Wall time.
    pub duration: Duration,
    /// The trial's output directory, when it got that far.
    pub output_dir: Option<PathBuf>,
    /// Lines worth showing after the run (headline metrics, results and verdict).
    pub summary: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_says_empty_or_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        std::fs::write(&p, "").unwrap();
        assert_eq!(LogTail::read(&p).text, "(empty)");
        std::fs::write(&p, "a\nb\n").unwrap();
        assert_eq!(LogTail::read(&p).text, "a\nb");
        assert!(
            LogTail::read(&dir.path().join("none"))
                .text
                .contains("cannot read")
        );
    }
}
