//! JUnit XML (`PERF_JUNIT=<path>`): one test case per trial, for Jenkins.
//!
//! A failed trial becomes a `<failure>` whose `type` is the failure class (`never_ready`,
//! `crash`, `regression`, …), whose `message` is the failure's first line and whose body is the
//! whole failure with the log tail; the tail also goes to the case's `system-out`, which is what
//! Jenkins shows next to a failed test. Ignored trials are `<skipped>` with the reason.
//!
//! Names: a trial selected from a test list is named as upstream's pytest named it
//! (`classname="perf.test_perf_sanity" name="test_e2e[<id>]"`), so Jenkins' test history and
//! waive lists keyed on `perf/test_perf_sanity.py::test_e2e[…]` keep working; a catalog trial
//! is `classname="perfsanity" name="<trial>"`.

use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::results::outcome::{TrialOutcome, TrialStatus};

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

/// pytest's class name for upstream's perf-sanity module (rootdir `tests/integration/defs`).
pub const PYTEST_CLASSNAME: &str = "perf.test_perf_sanity";

/// A test case's JUnit identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseName {
    /// `classname`.
    pub classname: String,
    /// `name`.
    pub name: String,
}

impl CaseName {
    /// A catalog trial: `perfsanity` / the trial name.
    pub fn catalog(trial: &str) -> Self {
        CaseName {
            classname: SUITE_NAME.to_string(),
            name: trial.to_string(),
        }
    }

    /// A test-list trial, named as pytest named `perf/test_perf_sanity.py::test_e2e[<id>]`.
    pub fn pytest(test_list_id: &str) -> Self {
        CaseName {
            classname: PYTEST_CLASSNAME.to_string(),
            name: format!("test_e2e[{test_list_id}]"),
        }
    }
}

/// JUnit names by trial name (trials absent from the map get [`CaseName::catalog`]).
pub type CaseNames = std::collections::BTreeMap<String, CaseName>;

/// JUnit names of `specs`: pytest's for trials from a test list, catalog names otherwise.
pub fn case_names(specs: &[crate::catalog::selection::TrialSpec]) -> CaseNames {
    specs
        .iter()
        .filter(|s| s.origin.is_some() && !s.test_list_id.is_empty())
        .map(|s| (s.name.clone(), CaseName::pytest(&s.test_list_id)))
        .collect()
}

/// The failure message Jenkins shows in its list: the first line, continued while it only
/// introduces what follows (`config error:` alone says nothing), at most 400 characters.
pub fn failure_headline(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
        if !out.ends_with(':') {
            break;
        }
    }
    if out.chars().count() > 400 {
        out = out.chars().take(399).collect::<String>() + "…";
    }
    out
}

/// The JUnit report of `outcomes` (catalog names).
pub fn junit_report(outcomes: &[TrialOutcome]) -> Report {
    junit_report_named(outcomes, &CaseNames::new())
}

/// The JUnit report of `outcomes`, each case named by `names`.
pub fn junit_report_named(outcomes: &[TrialOutcome], names: &CaseNames) -> Report {
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
                let mut message = failure_headline(&f.message);
                if let Some(role) = f.role {
                    message = format!("{role}: {message}");
                }
                s.set_message(message);
                s.set_description(f.to_string());
                s
            }
        };
        let id = names
            .get(&o.trial)
            .cloned()
            .unwrap_or_else(|| CaseName::catalog(&o.trial));
        let mut case = TestCase::new(id.name.as_str(), status);
        case.set_classname(id.classname.as_str());
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
    write_junit_named(path, outcomes, &CaseNames::new())
}

/// As [`write_junit`], each case named by `names`.
pub fn write_junit_named(
    path: &Path,
    outcomes: &[TrialOutcome],
    names: &CaseNames,
) -> Result<(), JunitError> {
    let err = |message: String| JunitError {
        path: path.to_path_buf(),
        message,
    };
    let xml = junit_report_named(outcomes, names)
        .to_string()
        .map_err(|e| err(e.to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    crate::plan::prepare::write_atomic(path, xml.as_bytes()).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_failure_message_carries_the_error() {
        assert_eq!(
            failure_headline("config error:\n  broken.yaml:4: unknown key\n  more"),
            "config error: broken.yaml:4: unknown key"
        );
        assert_eq!(failure_headline("server exited\ntail"), "server exited");
        assert_eq!(
            CaseName::pytest("disagg_upload-e2e-x"),
            CaseName {
                classname: "perf.test_perf_sanity".into(),
                name: "test_e2e[disagg_upload-e2e-x]".into()
            }
        );
    }
}
