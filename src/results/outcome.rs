//! What happened to a trial: passed, ignored (with the reason) or failed with a *class*, the role
//! at fault and the log tail that explains it. The runner produces outcomes; the harness, JUnit
//! and the reports consume them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::plan::toolchain::Toolchain;
use crate::plan::{Role, Scale};
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
    /// What it reports besides its status (headline metrics, results and verdict).
    pub summary: TrialSummary,
}

/// The numbers people look at first for one client run (absent when the client did not report
/// them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientHeadline {
    /// The client's name (`con:8_iter:10_…`).
    pub client: String,
    /// Requests per second.
    pub seq_throughput: Option<f64>,
    /// Output tokens per second.
    pub token_throughput: Option<f64>,
    /// Mean time to first token, ms.
    pub mean_ttft: Option<f64>,
    /// Mean inter-token latency, ms.
    pub mean_itl: Option<f64>,
    /// Mean end-to-end latency, ms.
    pub mean_e2el: Option<f64>,
    /// Mean device step time of the gen workers, ms (from their logs).
    pub gen_device_step: Option<f64>,
    /// Mean acceptance length (speculative decoding).
    pub al: Option<f64>,
}

/// What a trial reports besides its status, as data; the edge shows it ([`TrialSummary::lines`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrialSummary {
    /// Role mode: the role this process played finished (the benchmark did).
    pub role_done: Option<Role>,
    /// The toolchain and scale the trial ran with, once it ran its clients.
    pub ran_with: Option<(Toolchain, Scale)>,
    /// One headline per client that finished.
    pub clients: Vec<ClientHeadline>,
    /// What the results stage reported: records stored, upload, verdict and notes — or, for a
    /// failed trial, the finished clients' records.
    pub results: Vec<String>,
}

impl TrialSummary {
    /// The summary as text lines, each naming `trial`.
    pub fn lines(&self, trial: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(role) = self.role_done {
            out.push(format!("{trial}: {role} done (the benchmark finished)"));
        }
        if let Some((toolchain, scale)) = &self.ran_with {
            out.push(format!(
                "{trial}: toolchain {}, scale {}",
                toolchain.as_str(),
                scale.describe()
            ));
        }
        out.extend(self.clients.iter().map(|c| c.line(trial)));
        out.extend(self.results.iter().cloned());
        out
    }
}

impl ClientHeadline {
    /// `<trial> <client>: R req/s, T output tok/s, TTFT mean … ms, ITL mean … ms, E2EL mean … ms`
    /// (`n/a` for a missing number), then the gen device step and AL when known.
    pub fn line(&self, trial: &str) -> String {
        let v = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.2}"));
        let mut line = format!(
            "{trial} {}: {} req/s, {} output tok/s, TTFT mean {} ms, ITL mean {} ms, E2EL mean {} \
             ms",
            self.client,
            v(self.seq_throughput),
            v(self.token_throughput),
            v(self.mean_ttft),
            v(self.mean_itl),
            v(self.mean_e2el),
        );
        if let Some(step) = self.gen_device_step {
            line.push_str(&format!(", gen device step mean {step:.2} ms"));
        }
        if let Some(al) = self.al {
            line.push_str(&format!(", AL {al:.2}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_renders_as_the_lines_people_read() {
        let summary = TrialSummary {
            role_done: None,
            ran_with: Some((Toolchain::Sim, Scale::Full)),
            clients: vec![ClientHeadline {
                client: "con:1".into(),
                seq_throughput: Some(1.234),
                token_throughput: Some(50.0),
                mean_ttft: Some(12.0),
                mean_itl: None,
                mean_e2el: Some(99.999),
                gen_device_step: Some(3.0),
                al: Some(1.5),
            }],
            results: vec!["results: stored".into()],
        };
        assert_eq!(
            summary.lines("t"),
            [
                "t: toolchain sim, scale full (as configured)",
                "t con:1: 1.23 req/s, 50.00 output tok/s, TTFT mean 12.00 ms, ITL mean n/a ms, \
                 E2EL mean 100.00 ms, gen device step mean 3.00 ms, AL 1.50",
                "results: stored",
            ]
        );
        let role = TrialSummary {
            role_done: Some(Role::Gen(0)),
            ..TrialSummary::default()
        };
        assert_eq!(role.lines("t"), ["t: GEN_0 done (the benchmark finished)"]);
    }

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
