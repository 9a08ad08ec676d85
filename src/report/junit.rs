//! JUnit XML (`PERF_JUNIT=<path>`): one test case per trial, for Jenkins.
//!
//! A failed trial becomes a `<failure>` whose `type` is the failure class (`never_ready`,
//! `crash`, `regression`, …), whose `message` is the failure's first line and whose body is the
//! whole failure with the log tail; the tail also goes to the case's `system-out`, which is what
//! Jenkins shows next to a failed test. Ignored trials are `<skipped>` with the reason.

use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::run::outcome::{TrialOutcome, TrialStatus};

/// Name of the report and of its one suite.
pub const SUITE_NAME: &str = "perfsanity";

/// Why a JUnit file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the JUnit report {}: {message}", path.display())]
pub struct JunitError {
    /// The target file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The JUnit report of `outcomes`.
pub fn junit_report(outcomes: &[TrialOutcome]) -> Report {
    let mut suite = TestSuite::new(SUITE_NAME);
    let mut total = std::time::Duration::ZERO;
    for o in outcomes {
        total += o.duration;
        let status = match &o.status {
            TrialStatus::Passed => TestCaseStatus::success(),
            TrialStatus::Ignored { reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.as_str());
                s
            }
            TrialStatus::Failed(f) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type(f.class.as_str());
                let mut message = first_line(&f.message).to_string();
                if let Some(role) = f.role {
                    message = format!("{role}: {message}");
                }
                s.set_message(message);
                s.set_description(f.to_string());
                s
            }
        };
        let mut case = TestCase::new(o.trial.as_str(), status);
        case.set_classname(SUITE_NAME);
        case.set_time(o.duration);
        if let Some(dir) = &o.output_dir {
            case.add_property(("output_dir", dir.display().to_string().as_str()));
        }
        if let TrialStatus::Failed(f) = &o.status
            && let Some(tail) = &f.log_tail
        {
            case.set_system_out(format!(
                "--- last lines of {} ---\n{}",
                tail.path.display(),
                tail.text.trim_end()
            ));
        }
        suite.add_test_case(case);
    }
    suite.set_time(total);
    let mut report = Report::new(SUITE_NAME);
    report.set_time(total);
    report.add_test_suite(suite);
    report
}

/// Writes the JUnit report of `outcomes` to `path` (parent directories created; the file is
/// replaced atomically).
pub fn write_junit(path: &Path, outcomes: &[TrialOutcome]) -> Result<(), JunitError> {
    let err = |message: String| JunitError {
        path: path.to_path_buf(),
        message,
    };
    let xml = junit_report(outcomes)
        .to_string()
        .map_err(|e| err(e.to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    crate::plan::prepare::write_atomic(path, xml.as_bytes()).map_err(|e| err(e.to_string()))
}
