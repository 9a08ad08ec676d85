//! The trial-level regression verdict: history (or the reason there is none) in, per-record
//! verdicts, the `s_regression_info` / `b_is_regression` / inherited baseline fields of the
//! records, and whether the trial fails, out. Pure.

use std::fmt;
use std::path::PathBuf;

use super::field;
use super::history::{Doc, MATCH_KEYS, assign, record_doc};
use super::regression::{
    BaselineSource, CaseVerdict, RegressionSettings, ThresholdSource, embed_baseline_fields,
    evaluate_case,
};
use super::value::Record;

/// Where history came from.
#[derive(Debug, Clone, PartialEq)]
pub enum HistorySource {
    /// The gateway's search endpoint.
    Gateway {
        /// The project queried.
        project: String,
    },
    /// The embedded SQLite history.
    Embedded {
        /// Database file.
        db: PathBuf,
        /// Toolchain the history was restricted to.
        toolchain: String,
        /// Scale the history was restricted to.
        scale: String,
    },
}

impl fmt::Display for HistorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistorySource::Gateway { project } => write!(f, "the gateway (project {project})"),
            HistorySource::Embedded {
                db,
                toolchain,
                scale,
            } => write!(
                f,
                "the embedded history {} (toolchain {toolchain}, scale {scale})",
                db.display()
            ),
        }
    }
}

/// The verdict of a trial.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionVerdict {
    /// Where history came from.
    pub source: HistorySource,
    /// The history query failed: no comparison was made (reported, never silently skipped).
    pub query_error: Option<String>,
    /// One verdict per record.
    pub cases: Vec<CaseVerdict>,
    /// Whether a regression may fail this trial.
    pub fail_on_regression: bool,
    /// Why (stage, override, pre/post-merge).
    pub policy: String,
    /// The trial fails.
    pub fails_trial: bool,
}

/// Applies history to `records` (setting `s_regression_info`, `b_is_regression` and, for
/// post-merge runs, inherited baselines) and decides the trial.
pub fn evaluate_verdict(
    records: &mut [Record],
    history: Result<Vec<Doc>, String>,
    source: HistorySource,
    settings: &RegressionSettings,
    policy: (bool, String),
) -> RegressionVerdict {
    let (fail_on_regression, policy) = policy;
    let docs = match history {
        Ok(d) => d,
        Err(e) => {
            return RegressionVerdict {
                source,
                query_error: Some(e),
                cases: Vec::new(),
                fail_on_regression,
                policy,
                fails_trial: false,
            };
        }
    };
    let record_docs: Vec<Doc> = records.iter().map(record_doc).collect();
    let per_record = assign(&record_docs, docs, &MATCH_KEYS);
    let mut cases = Vec::new();
    for (record, docs) in records.iter_mut().zip(per_record) {
        let case = evaluate_case(record, &docs, settings);
        record.set(field::REGRESSION_INFO, case.regression_info.clone());
        record.set(field::IS_REGRESSION, case.is_regression);
        if case.post_merge {
            embed_baseline_fields(record, &docs);
        }
        cases.push(case);
    }
    let fails_trial = fail_on_regression
        && cases
            .iter()
            .any(|c| c.is_regression && !c.post_merge && c.exempt.is_none());
    RegressionVerdict {
        source,
        query_error: None,
        cases,
        fail_on_regression,
        policy,
        fails_trial,
    }
}

impl RegressionVerdict {
    /// Upstream's failure text: the `s_regression_info` of every failing record.
    pub fn failure_message(&self) -> Option<String> {
        if !self.fails_trial {
            return None;
        }
        let parts: Vec<&str> = self
            .cases
            .iter()
            .filter(|c| c.is_regression && !c.post_merge && c.exempt.is_none())
            .map(|c| c.regression_info.as_str())
            .collect();
        Some(parts.join("\n"))
    }

    /// Any regressive record.
    pub fn any_regression(&self) -> bool {
        self.cases.iter().any(|c| c.is_regression)
    }

    /// A readable report: source, per-case metric lines with baseline and threshold origins,
    /// the decision and the policy behind it.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.query_error {
            out.push(format!(
                "regression check NOT performed: the history query to {} failed: {e}",
                self.source
            ));
            return out;
        }
        let docs: usize = self.cases.iter().map(|c| c.history_docs).sum();
        out.push(format!(
            "regression check against {}: {docs} matching history record(s)",
            self.source
        ));
        for case in &self.cases {
            if case.history_docs == 0 {
                out.push(format!(
                    "  {}: no history — nothing to compare with yet",
                    case.test_case_name
                ));
                continue;
            }
            out.push(format!(
                "  {} ({} history record(s)):",
                case.test_case_name, case.history_docs
            ));
            if case.checks.is_empty() {
                out.push("    no metric has a usable baseline".to_string());
            }
            for c in &case.checks {
                let baseline = match &c.baseline_source {
                    BaselineSource::Stored => "stored baseline".to_string(),
                    BaselineSource::Computed { days } => format!(
                        "{} of 3-day rolling daily means over {days} day(s)",
                        if super::regression::is_maximize(&c.metric) {
                            "P95"
                        } else {
                            "P5"
                        }
                    ),
                };
                let threshold = match c.threshold_source {
                    ThresholdSource::Override => "PERF_REGRESSION_THRESHOLDS",
                    ThresholdSource::Stored => "stored threshold",
                    ThresholdSource::Default if case.post_merge => "post-merge default",
                    ThresholdSource::Default => "pre-merge default",
                };
                let mark = match (c.gated, c.regressive) {
                    (true, true) => "  REGRESSION",
                    (true, false) => "  gated, ok",
                    _ => "",
                };
                out.push(format!(
                    "    {}   [{baseline}; {threshold}]{mark}",
                    c.info_line().trim_start()
                ));
            }
            if let Some(why) = &case.exempt {
                out.push(format!("    {why}"));
            }
        }
        let decision = if !self.any_regression() {
            "No regression data found.".to_string()
        } else if self.fails_trial {
            "regression: the trial FAILS".to_string()
        } else if self.cases.iter().all(|c| !c.is_regression || c.post_merge) {
            "regression on a post-merge run: reported as a warning".to_string()
        } else if self
            .cases
            .iter()
            .filter(|c| c.is_regression && !c.post_merge)
            .all(|c| c.exempt.is_some())
        {
            "regression exempt (the reference branch already regressed): warning only".to_string()
        } else {
            "regression: warning only".to_string()
        };
        out.push(format!("{decision} ({})", self.policy));
        out
    }
}
