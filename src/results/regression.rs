//! Regression verdicts (upstream-perf-sanity.md §6.5–6.6).
//!
//! For each record with history: every maximize/minimize metric it carries is compared with a
//! baseline — the stored `d_baseline_<metric>` of the most recent history document that has
//! baselines, else one computed from history (mean per calendar day → trailing 3-day rolling mean
//! → P95 for maximize metrics, P5 for minimize metrics) — under a threshold (stored
//! `d_threshold_{post,pre}_merge_<metric>`, else 5 % post-merge / 10 % pre-merge; a
//! `PERF_REGRESSION_THRESHOLDS` override wins over both). Only the gated metrics of the mode make
//! a record regressive. A pre-merge regression fails the trial unless failing is off
//! (`FUNCTIONAL-ONLY` stage, override) or the latest post-merge value of the same case would
//! itself miss the pre-merge gate (upstream's exemption). Post-merge regressions only warn.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field;
use super::history::{Doc, latest, latest_baseline_threshold, timestamp_ms};
use super::value::Record;
use crate::util::stats::percentile;

/// Larger is better (TPOT included: an upstream quirk kept for comparable history, gotcha 2).
pub const MAXIMIZE_METRICS: [&str; 8] = [
    "d_seq_throughput",
    "d_token_throughput",
    "d_total_token_throughput",
    "d_user_throughput",
    "d_mean_tpot",
    "d_median_tpot",
    "d_p99_tpot",
    "d_al",
];

/// Smaller is better.
pub const MINIMIZE_METRICS: [&str; 14] = [
    "d_mean_ttft",
    "d_median_ttft",
    "d_p99_ttft",
    "d_mean_itl",
    "d_median_itl",
    "d_p99_itl",
    "d_mean_e2el",
    "d_median_e2el",
    "d_p99_e2el",
    "d_mean_gen_worker_per_iter_device_step_time",
    "d_median_gen_worker_per_iter_device_step_time",
    "d_std_gen_worker_per_iter_device_step_time",
    "d_p75_gen_worker_per_iter_device_step_time",
    "d_p99_gen_worker_per_iter_device_step_time",
];

/// Default post-merge threshold.
pub const POST_MERGE_THRESHOLD: f64 = 0.05;
/// Default pre-merge threshold.
pub const PRE_MERGE_THRESHOLD: f64 = 0.10;
/// Rolling window of the computed baseline, in days.
pub const ROLLING_WINDOW: usize = 3;

/// Every metric the verdict looks at, maximize first.
pub fn all_metrics() -> Vec<&'static str> {
    MAXIMIZE_METRICS
        .iter()
        .chain(MINIMIZE_METRICS.iter())
        .copied()
        .collect()
}

/// True for a metric of either list.
pub fn is_known_metric(metric: &str) -> bool {
    all_metrics().contains(&metric)
}

/// Per-metric threshold overrides (`PERF_REGRESSION_THRESHOLDS`), keyed by `d_` metric name.
pub type ThresholdOverrides = BTreeMap<String, f64>;

/// Why a `PERF_REGRESSION_THRESHOLDS` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// An item is not `<metric>=<fraction>`.
    #[error("{0:?}: expected <metric>=<fraction>")]
    NotAPair(String),
    /// The metric is not one the verdict looks at.
    #[error(
        "{0}: not a regression metric; expected one of {known}",
        known = all_metrics().join(", ")
    )]
    UnknownMetric(String),
    /// The value is not a fraction strictly between 0 and 1.
    #[error("{0:?}: expected a fraction between 0 and 1 (0.05 = 5 %)")]
    NotAFraction(String),
}

/// Parses `PERF_REGRESSION_THRESHOLDS`: `metric=fraction` pairs separated by commas or
/// whitespace; the metric may omit its `d_` prefix (`token_throughput=0.08`).
pub fn parse_threshold_overrides(text: &str) -> Result<ThresholdOverrides, ThresholdError> {
    let mut out = ThresholdOverrides::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (metric, value) = item
            .split_once('=')
            .ok_or_else(|| ThresholdError::NotAPair(item.to_string()))?;
        let metric = if metric.starts_with("d_") {
            metric.to_string()
        } else {
            format!("d_{metric}")
        };
        if !is_known_metric(&metric) {
            return Err(ThresholdError::UnknownMetric(metric));
        }
        let v: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| *v > 0.0 && *v < 1.0)
            .ok_or_else(|| ThresholdError::NotAFraction(item.to_string()))?;
        out.insert(metric, v);
    }
    Ok(out)
}

/// True for a larger-is-better metric.
pub fn is_maximize(metric: &str) -> bool {
    MAXIMIZE_METRICS.contains(&metric)
}

/// The gated metrics: gen_only runs gate on the mean and median device step time; every other
/// run on token throughput and total token throughput, plus `d_al` with spec decoding.
pub fn gated_metrics(gen_only: bool, spec_decoding: bool) -> Vec<String> {
    let v: Vec<&str> = if gen_only {
        vec![
            "d_mean_gen_worker_per_iter_device_step_time",
            "d_median_gen_worker_per_iter_device_step_time",
        ]
    } else if spec_decoding {
        vec!["d_token_throughput", "d_total_token_throughput", "d_al"]
    } else {
        vec!["d_token_throughput", "d_total_token_throughput"]
    };
    v.into_iter().map(String::from).collect()
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    }
}

fn is_baseline_doc(d: &Doc) -> bool {
    matches!(d.get(field::IS_BASELINE), Some(Value::Bool(true)))
}

/// Calendar day (UTC) of a document: `ts_created`, else `@timestamp`; numbers as epoch s/ms,
/// strings by their first 10 characters (upstream rule).
fn day_key(d: &Doc) -> Option<String> {
    let ts = d
        .get(field::CREATED)
        .filter(|v| !v.is_null() && *v != &Value::Bool(false))
        .or_else(|| d.get("@timestamp"))?;
    match ts {
        Value::String(s) => Some(s.chars().take(10).collect()),
        Value::Number(_) => {
            let ms = timestamp_ms(ts)?;
            let t = jiff::Timestamp::from_millisecond(ms).ok()?;
            Some(
                t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .date()
                    .to_string(),
            )
        }
        _ => None,
    }
}

/// Mean value of `metric` per calendar day, in day order (baseline documents excluded).
pub fn daily_means(docs: &[Doc], metric: &str) -> Vec<f64> {
    let mut by_day: BTreeMap<String, Vec<f64>> = Default::default();
    for d in docs.iter().filter(|d| !is_baseline_doc(d)) {
        let Some(v) = number(d.get(metric)) else {
            continue;
        };
        let Some(day) = day_key(d) else { continue };
        by_day.entry(day).or_default().push(v);
    }
    by_day
        .values()
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        .collect()
}

/// Trailing rolling mean, same length (early windows are shorter).
pub fn rolling_mean(values: &[f64], window: usize) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let w = &values[i.saturating_sub(window.saturating_sub(1))..=i];
            w.iter().sum::<f64>() / w.len() as f64
        })
        .collect()
}

/// The computed baseline of `metric` and the number of days it used: P95 (maximize) or P5
/// (minimize) of the rolling daily means. `None` without usable history.
pub fn computed_baseline(docs: &[Doc], metric: &str) -> Option<(f64, usize)> {
    let daily = daily_means(docs, metric);
    if daily.is_empty() {
        return None;
    }
    let smoothed = rolling_mean(&daily, ROLLING_WINDOW);
    let p = if is_maximize(metric) { 95.0 } else { 5.0 };
    Some((percentile(&smoothed, p), daily.len()))
}

/// Percentage change, positive = better.
pub fn diff_percent(metric: &str, new: f64, base: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else if is_maximize(metric) {
        (new - base) / base * 100.0
    } else {
        (base - new) / base * 100.0
    }
}

/// True when `new` misses the gate `base × (1 ∓ threshold)`.
pub fn breaches(metric: &str, new: f64, base: f64, threshold: f64) -> bool {
    if is_maximize(metric) {
        new < base * (1.0 - threshold)
    } else {
        new > base * (1.0 + threshold)
    }
}

/// Where a baseline came from.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineSource {
    /// `d_baseline_<metric>` of the latest history document with baselines.
    Stored,
    /// Computed from this many days of history.
    Computed {
        /// Days with a value.
        days: usize,
    },
}

/// Where a threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdSource {
    /// `PERF_REGRESSION_THRESHOLDS`.
    Override,
    /// `d_threshold_{post,pre}_merge_<metric>` of the latest history document with baselines.
    Stored,
    /// 5 % post-merge / 10 % pre-merge.
    Default,
}

/// One metric compared with its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCheck {
    /// `d_` metric name.
    pub metric: String,
    /// New value.
    pub value: f64,
    /// Baseline.
    pub baseline: f64,
    /// Baseline origin.
    pub baseline_source: BaselineSource,
    /// Threshold as a fraction.
    pub threshold: f64,
    /// Threshold origin.
    pub threshold_source: ThresholdSource,
    /// Percentage change, positive = better.
    pub diff_percent: f64,
    /// Whether this metric can make the case regressive.
    pub gated: bool,
    /// Gated and outside the threshold.
    pub regressive: bool,
}

impl MetricCheck {
    /// Upstream's info line.
    pub fn info_line(&self) -> String {
        format!(
            "  {}: value={:.4} baseline={:.4} threshold={:.2}% diff={:+.2}%",
            self.metric,
            self.value,
            self.baseline,
            self.threshold * 100.0,
            self.diff_percent
        )
    }
}

/// The verdict of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseVerdict {
    /// `s_test_case_name`.
    pub test_case_name: String,
    /// History documents matched to this record.
    pub history_docs: usize,
    /// Metrics compared (empty without history).
    pub checks: Vec<MetricCheck>,
    /// Upstream's `s_regression_info` ("" without history).
    pub regression_info: String,
    /// Upstream's `b_is_regression`.
    pub is_regression: bool,
    /// Whether the run is post-merge.
    pub post_merge: bool,
    /// Pre-merge exemption, with its reason.
    pub exempt: Option<String>,
}

/// Settings of a verdict.
#[derive(Debug, Clone, Default)]
pub struct RegressionSettings {
    /// Gated metrics ([`gated_metrics`]).
    pub gated: Vec<String>,
    /// Per-metric threshold overrides.
    pub overrides: ThresholdOverrides,
}

fn threshold_for(
    metric: &str,
    post_merge: bool,
    stored: &Doc,
    settings: &RegressionSettings,
) -> (f64, ThresholdSource) {
    if let Some(t) = settings.overrides.get(metric) {
        return (*t, ThresholdSource::Override);
    }
    let suffix = &metric[2..];
    let key = if post_merge {
        format!("d_threshold_post_merge_{suffix}")
    } else {
        format!("d_threshold_pre_merge_{suffix}")
    };
    match number(stored.get(&key)) {
        Some(t) if t > 0.0 => (t, ThresholdSource::Stored),
        _ => (
            if post_merge {
                POST_MERGE_THRESHOLD
            } else {
                PRE_MERGE_THRESHOLD
            },
            ThresholdSource::Default,
        ),
    }
}

/// The regression gate of one metric: its baseline, its threshold and the limit a new value
/// must not cross (`baseline × (1 − t)` for maximize metrics, `baseline × (1 + t)` for minimize
/// metrics). The verdict, the HTML report and its plots all draw it from [`gate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Baseline.
    pub baseline: f64,
    /// Baseline origin.
    pub baseline_source: BaselineSource,
    /// Threshold as a fraction.
    pub threshold: f64,
    /// Threshold origin.
    pub threshold_source: ThresholdSource,
}

impl Gate {
    /// The value a new run must not cross.
    pub fn limit(&self, metric: &str) -> f64 {
        if is_maximize(metric) {
            self.baseline * (1.0 - self.threshold)
        } else {
            self.baseline * (1.0 + self.threshold)
        }
    }

    /// True when `value` misses this gate.
    pub fn breached_by(&self, metric: &str, value: f64) -> bool {
        breaches(metric, value, self.baseline, self.threshold)
    }
}

/// The gate of `metric` against `history` — documents of the case's earlier runs only, never
/// the run being judged. `stored` is [`latest_baseline_threshold`] of that history. `None`
/// without a usable (> 0) baseline.
pub fn gate(
    metric: &str,
    history: &[Doc],
    stored: &Doc,
    post_merge: bool,
    settings: &RegressionSettings,
) -> Option<Gate> {
    let suffix = &metric[2..];
    let (baseline, baseline_source) = match number(stored.get(&format!("d_baseline_{suffix}"))) {
        Some(b) if b > 0.0 => (b, BaselineSource::Stored),
        _ => match computed_baseline(history, metric) {
            Some((b, days)) if b > 0.0 => (b, BaselineSource::Computed { days }),
            _ => return None,
        },
    };
    let (threshold, threshold_source) = threshold_for(metric, post_merge, stored, settings);
    Some(Gate {
        baseline,
        baseline_source,
        threshold,
        threshold_source,
    })
}

/// Evaluates one record against its history documents.
pub fn evaluate_case(record: &Record, docs: &[Doc], settings: &RegressionSettings) -> CaseVerdict {
    let name = record
        .str(field::TEST_CASE_NAME)
        .unwrap_or("unknown")
        .to_string();
    let post_merge = record.bool(field::IS_POST_MERGE).unwrap_or(false);
    let mut verdict = CaseVerdict {
        test_case_name: name.clone(),
        history_docs: docs.len(),
        checks: Vec::new(),
        regression_info: String::new(),
        is_regression: false,
        post_merge,
        exempt: None,
    };
    if docs.is_empty() {
        return verdict;
    }
    let stored = latest_baseline_threshold(docs);
    for metric in all_metrics() {
        let Some(value) = record.f64(metric) else {
            continue;
        };
        let Some(g) = gate(metric, docs, &stored, post_merge, settings) else {
            continue;
        };
        let gated = settings.gated.iter().any(|m| m == metric);
        verdict.checks.push(MetricCheck {
            metric: metric.to_string(),
            value,
            diff_percent: diff_percent(metric, value, g.baseline),
            gated,
            regressive: gated && g.breached_by(metric, value),
            baseline: g.baseline,
            baseline_source: g.baseline_source,
            threshold: g.threshold,
            threshold_source: g.threshold_source,
        });
    }
    let mut lines = vec![format!("Regression in {name}:")];
    lines.extend(verdict.checks.iter().map(MetricCheck::info_line));
    verdict.regression_info = lines.join("\n");
    verdict.is_regression = verdict.checks.iter().any(|c| c.regressive);

    if verdict.is_regression && !post_merge {
        verdict.exempt = exemption(docs, &verdict.checks);
    }
    verdict
}

/// Upstream's pre-merge exemption: the latest post-merge document of the case, re-evaluated
/// against the same baselines and pre-merge thresholds, misses the gate too. Unusable values
/// (absent, non-numeric, ≤ 0) never exempt.
fn exemption(docs: &[Doc], checks: &[MetricCheck]) -> Option<String> {
    let latest_doc = latest(docs)?;
    for c in checks.iter().filter(|c| c.gated) {
        let Some(v) = number(latest_doc.get(&c.metric)).filter(|v| *v > 0.0) else {
            continue;
        };
        if breaches(&c.metric, v, c.baseline, c.threshold) {
            let id = latest_doc
                .get(field::ID)
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Some(format!(
                "exempt: the latest post-merge record ({id}) has {}={:.4}, which misses the same \
                 gate (baseline {:.4}, threshold {:.2}%) — the regression is already on the \
                 reference branch",
                c.metric,
                v,
                c.baseline,
                c.threshold * 100.0
            ));
        }
    }
    None
}

/// Post-merge records inherit the latest stored baselines and thresholds (only values > 0;
/// always as floats).
pub fn embed_baseline_fields(record: &mut Record, docs: &[Doc]) {
    let stored = latest_baseline_threshold(docs);
    for metric in all_metrics() {
        let suffix = &metric[2..];
        for key in [
            format!("d_baseline_{suffix}"),
            format!("d_threshold_post_merge_{suffix}"),
            format!("d_threshold_pre_merge_{suffix}"),
        ] {
            if let Some(v) = number(stored.get(&key)).filter(|v| *v > 0.0) {
                record.set(key, v);
            }
        }
    }
}

/// Whether a regression may fail the trial, and why.
pub fn failing_policy(
    stage_name: &str,
    override_: Option<bool>,
    local_only_run: Option<&str>,
    post_merge: bool,
) -> (bool, String) {
    if stage_name.contains("FUNCTIONAL-ONLY") {
        return (
            false,
            format!("stage {stage_name:?} is FUNCTIONAL-ONLY: regressions never fail it"),
        );
    }
    if let Some(v) = override_ {
        return (v, format!("PERF_FAIL_ON_REGRESSION={}", u8::from(v)));
    }
    if let Some(kind) = local_only_run {
        return (
            false,
            format!("{kind}: the verdict is informational (set PERF_FAIL_ON_REGRESSION=1 to gate)"),
        );
    }
    if post_merge {
        (
            false,
            "post-merge run: regressions are warnings".to_string(),
        )
    } else {
        (
            true,
            "pre-merge run: a regression of a gated metric fails the trial".to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_and_percentile() {
        assert_eq!(
            rolling_mean(&[3.0, 6.0, 9.0, 12.0], 3),
            vec![3.0, 4.5, 6.0, 9.0]
        );
        assert!(rolling_mean(&[], 3).is_empty());
        assert_eq!(diff_percent("d_token_throughput", 90.0, 100.0), -10.0);
        assert_eq!(diff_percent("d_mean_ttft", 110.0, 100.0), -10.0);
        assert_eq!(diff_percent("d_mean_ttft", 110.0, 0.0), 0.0);
        assert!(breaches("d_token_throughput", 89.9, 100.0, 0.1));
        assert!(!breaches("d_token_throughput", 90.0, 100.0, 0.1));
        assert!(breaches("d_mean_ttft", 110.1, 100.0, 0.1));
    }

    #[test]
    fn the_gate_follows_a_threshold_override() {
        let mut stored = Doc::new();
        stored.insert("d_baseline_token_throughput".into(), 100.0.into());
        stored.insert("d_baseline_mean_ttft".into(), 50.0.into());
        let history = vec![stored.clone()];
        let plain = RegressionSettings::default();
        let g = gate("d_token_throughput", &history, &stored, false, &plain).unwrap();
        assert_eq!(g.threshold_source, ThresholdSource::Default);
        assert!((g.limit("d_token_throughput") - 90.0).abs() < 1e-9);
        let tight = RegressionSettings {
            overrides: [("d_token_throughput".to_string(), 0.02)]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let g = gate("d_token_throughput", &history, &stored, false, &tight).unwrap();
        assert_eq!(g.threshold_source, ThresholdSource::Override);
        assert!((g.limit("d_token_throughput") - 98.0).abs() < 1e-9);
        assert!(g.breached_by("d_token_throughput", 97.0));
        let g = gate("d_mean_ttft", &history, &stored, true, &plain).unwrap();
        assert!(
            (g.limit("d_mean_ttft") - 52.5).abs() < 1e-9,
            "post-merge 5 %, minimize"
        );
        assert!(gate("d_al", &history, &stored, false, &plain).is_none());
    }

    #[test]
    fn gating_lists() {
        assert_eq!(
            gated_metrics(false, true),
            ["d_token_throughput", "d_total_token_throughput", "d_al"]
        );
        assert_eq!(gated_metrics(true, true).len(), 2);
        let (fail, why) = failing_policy("GB200-FUNCTIONAL-ONLY-1", Some(true), None, false);
        assert!(!fail, "{why}");
        assert!(failing_policy("", None, None, false).0);
        assert!(!failing_policy("", None, None, true).0);
        assert!(!failing_policy("", None, Some("simulator run"), false).0);
        assert!(failing_policy("", Some(true), Some("simulator run"), false).0);
    }
}
