//! Regression math with hand-computed histories (upstream-perf-sanity.md §6.5–6.6): daily means,
//! the 3-day trailing rolling mean, P95 / P5, stored baselines and thresholds, overrides, gated
//! metrics per mode, the pre-merge exemption, FUNCTIONAL-ONLY stages, no history and a failed
//! history query.

use crate::support::day_ms;
use perfsanity::results::history::Doc;
use perfsanity::results::regression::{
    BaselineSource, RegressionSettings, ThresholdSource, computed_baseline, daily_means,
    evaluate_case, failing_policy, gated_metrics, rolling_mean,
};
use perfsanity::results::regression::{ThresholdOverrides, parse_threshold_overrides};
use perfsanity::results::{FieldValue, HistorySource, Record, evaluate_verdict};
use serde_json::{Value, json};

const CASE: &str = "e2e-stem-con8_iter1_isl1024_osl128";

fn record(case: &str, post_merge: bool, metrics: &[(&str, f64)]) -> Record {
    let mut r = Record::new();
    r.set("s_gpu_type", "h200");
    r.set("s_runtime", "multi_node_disagg_server");
    r.set("s_test_case_name", case);
    r.set("s_branch", "main");
    r.set("b_is_post_merge", post_merge);
    for (k, v) in metrics {
        r.set(*k, *v);
    }
    r
}

fn doc(case: &str, date: &str, extra: Value) -> Doc {
    let mut d = json!({
        "_id": format!("{case}-{date}-{}", extra),
        "s_gpu_type": "h200",
        "s_runtime": "multi_node_disagg_server",
        "s_test_case_name": case,
        "s_branch": "main",
        "b_is_post_merge": true,
        "b_is_valid": true,
        "b_is_baseline": false,
        "ts_created": day_ms(date),
        "@timestamp": day_ms(date),
    })
    .as_object()
    .unwrap()
    .clone();
    for (k, v) in extra.as_object().unwrap() {
        d.insert(k.clone(), v.clone());
    }
    d
}

/// Token throughput per day: day 1 has two runs (100, 110 → 105), then 90, 120, 100, 130.
/// Rolling means: 105, 97.5, 105, 103.33…, 116.66…; P95 (k = 3.8) = 105 + 0.8 × 11.66… =
/// 114.333…. Mean TTFT per day 200, 180, 260, 220 → rolling 200, 190, 213.33…, 220 → P5
/// (k = 0.15) = 190 + 0.15 × 10 = 191.5.
fn history() -> Vec<Doc> {
    vec![
        doc(
            CASE,
            "2025-03-01",
            json!({"d_token_throughput": 100.0, "d_mean_ttft": 190.0}),
        ),
        doc(
            CASE,
            "2025-03-01",
            json!({"d_token_throughput": 110.0, "d_mean_ttft": 210.0}),
        ),
        doc(
            CASE,
            "2025-03-02",
            json!({"d_token_throughput": 90.0, "d_mean_ttft": 180.0}),
        ),
        doc(
            CASE,
            "2025-03-03",
            json!({"d_token_throughput": 120.0, "d_mean_ttft": 260.0}),
        ),
        doc(
            CASE,
            "2025-03-04",
            json!({"d_token_throughput": 100.0, "d_mean_ttft": 220.0}),
        ),
        doc(CASE, "2025-03-05", json!({"d_token_throughput": 130.0})),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn settings(gated: &[&str]) -> RegressionSettings {
    RegressionSettings {
        gated: gated.iter().map(|s| s.to_string()).collect(),
        overrides: ThresholdOverrides::new(),
    }
}

#[test]
fn daily_rolling_percentile_baselines() {
    let h = history();
    assert_eq!(
        daily_means(&h, "d_token_throughput"),
        vec![105.0, 90.0, 120.0, 100.0, 130.0]
    );
    let r = rolling_mean(&[105.0, 90.0, 120.0, 100.0, 130.0], 3);
    assert!(
        close(r[3], 310.0 / 3.0) && close(r[4], 350.0 / 3.0),
        "{r:?}"
    );
    let (b, days) = computed_baseline(&h, "d_token_throughput").unwrap();
    assert!(close(b, 105.0 + 0.8 * (350.0 / 3.0 - 105.0)), "{b}");
    assert_eq!(days, 5);
    let (b, days) = computed_baseline(&h, "d_mean_ttft").unwrap();
    assert!(close(b, 191.5), "{b}");
    assert_eq!(days, 4);
    assert!(computed_baseline(&h, "d_p99_itl").is_none());
    // Baseline documents never feed a computed baseline; string timestamps group by date.
    let mut with_baseline = h.clone();
    with_baseline.push(doc(
        CASE,
        "2025-03-06",
        json!({"d_token_throughput": 1.0e6, "b_is_baseline": true}),
    ));
    let mut string_ts = doc(CASE, "2025-03-06", json!({"d_token_throughput": 60.0}));
    string_ts.remove("ts_created");
    string_ts.insert("@timestamp".into(), json!("2025-03-06T23:59:59.000Z"));
    with_baseline.push(string_ts);
    assert_eq!(
        daily_means(&with_baseline, "d_token_throughput"),
        vec![105.0, 90.0, 120.0, 100.0, 130.0, 60.0]
    );
}

#[test]
fn pre_merge_gate_with_computed_baseline() {
    let h = history();
    let base = 105.0 + 0.8 * (350.0 / 3.0 - 105.0);
    // Gate = base × 0.9 = 102.9.
    let bad = record(
        CASE,
        false,
        &[("d_token_throughput", 102.0), ("d_mean_ttft", 300.0)],
    );
    let v = evaluate_case(&bad, &h, &settings(&["d_token_throughput"]));
    assert!(v.is_regression);
    let c = &v.checks[0];
    assert_eq!(c.metric, "d_token_throughput");
    assert!(close(c.baseline, base));
    assert_eq!(c.baseline_source, BaselineSource::Computed { days: 5 });
    assert_eq!(c.threshold, 0.10);
    assert_eq!(c.threshold_source, ThresholdSource::Default);
    assert!(c.regressive);
    // The TTFT line is there (P5 baseline 191.5) but TTFT is not gated.
    let ttft = v.checks.iter().find(|c| c.metric == "d_mean_ttft").unwrap();
    assert!(close(ttft.baseline, 191.5));
    assert!(!ttft.regressive);
    assert_eq!(
        v.regression_info,
        format!(
            "Regression in {CASE}:\n  d_token_throughput: value=102.0000 baseline=114.3333 threshold=10.00% diff=-10.79%\n  d_mean_ttft: value=300.0000 baseline=191.5000 threshold=10.00% diff=-56.66%"
        )
    );
    let ok = record(CASE, false, &[("d_token_throughput", 103.0)]);
    assert!(!evaluate_case(&ok, &h, &settings(&["d_token_throughput"])).is_regression);
}

#[test]
fn post_merge_uses_five_percent() {
    let h = history();
    // Post-merge gate = 114.333 × 0.95 = 108.617: 108 regresses, 109 does not.
    let r = record(CASE, true, &[("d_token_throughput", 108.0)]);
    let v = evaluate_case(&r, &h, &settings(&["d_token_throughput"]));
    assert!(v.is_regression);
    assert_eq!(v.checks[0].threshold, 0.05);
    let r = record(CASE, true, &[("d_token_throughput", 109.0)]);
    assert!(!evaluate_case(&r, &h, &settings(&["d_token_throughput"])).is_regression);
}

#[test]
fn stored_baselines_thresholds_and_overrides() {
    let mut h = history();
    // The latest document *with* baselines wins, even when newer documents lack them;
    // a non-positive stored baseline falls back to the computed one.
    h.push(doc(
        CASE,
        "2025-03-06",
        json!({"d_token_throughput": 140.0, "d_baseline_token_throughput": 150.0,
               "d_threshold_pre_merge_token_throughput": 0.2,
               "d_baseline_mean_ttft": -1.0}),
    ));
    h.push(doc(
        CASE,
        "2025-03-07",
        json!({"d_token_throughput": 141.0}),
    ));
    let gated = settings(&["d_token_throughput"]);
    // Gate 150 × 0.8 = 120.
    let v = evaluate_case(
        &record(CASE, false, &[("d_token_throughput", 119.0)]),
        &h,
        &gated,
    );
    assert!(v.is_regression);
    assert_eq!(v.checks[0].baseline, 150.0);
    assert_eq!(v.checks[0].baseline_source, BaselineSource::Stored);
    assert_eq!(v.checks[0].threshold, 0.2);
    assert_eq!(v.checks[0].threshold_source, ThresholdSource::Stored);
    let v = evaluate_case(
        &record(
            CASE,
            false,
            &[("d_token_throughput", 121.0), ("d_mean_ttft", 200.0)],
        ),
        &h,
        &gated,
    );
    assert!(!v.is_regression);
    let ttft = v.checks.iter().find(|c| c.metric == "d_mean_ttft").unwrap();
    assert!(matches!(
        ttft.baseline_source,
        BaselineSource::Computed { .. }
    ));
    // The per-metric override wins: 2 % of 150 ⇒ gate 147.
    let mut o = gated.clone();
    o.overrides = parse_threshold_overrides("token_throughput=0.02").unwrap();
    let v = evaluate_case(
        &record(CASE, false, &[("d_token_throughput", 146.0)]),
        &h,
        &o,
    );
    assert!(v.is_regression);
    assert_eq!(v.checks[0].threshold_source, ThresholdSource::Override);
    assert!(parse_threshold_overrides("bogus=0.1").is_err());
    assert!(parse_threshold_overrides("d_mean_ttft=5").is_err());
    assert_eq!(
        parse_threshold_overrides("d_mean_ttft=0.2, al=0.05")
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn gated_metrics_per_mode() {
    let h = vec![doc(
        CASE,
        "2025-03-01",
        json!({"d_token_throughput": 100.0, "d_total_token_throughput": 500.0, "d_al": 3.0,
               "d_mean_gen_worker_per_iter_device_step_time": 10.0,
               "d_median_gen_worker_per_iter_device_step_time": 10.0}),
    )];
    // gen_only: throughput may collapse, device step time decides.
    let gen_only = settings(
        &gated_metrics(true, false)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let r = record(
        CASE,
        false,
        &[
            ("d_token_throughput", 10.0),
            ("d_mean_gen_worker_per_iter_device_step_time", 10.5),
        ],
    );
    assert!(!evaluate_case(&r, &h, &gen_only).is_regression);
    let r = record(
        CASE,
        false,
        &[("d_median_gen_worker_per_iter_device_step_time", 11.2)],
    );
    assert!(evaluate_case(&r, &h, &gen_only).is_regression);
    // Spec decoding gates d_al (maximize): 3.0 × 0.9 = 2.7.
    let spec = settings(
        &gated_metrics(false, true)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(evaluate_case(&record(CASE, false, &[("d_al", 2.6)]), &h, &spec).is_regression);
    assert!(!evaluate_case(&record(CASE, false, &[("d_al", 2.6)]), &h, &gen_only).is_regression);
}

fn verdict(
    records: &mut [Record],
    history: Result<Vec<Doc>, String>,
    stage: &str,
) -> perfsanity::results::RegressionVerdict {
    let post_merge = records[0].bool("b_is_post_merge").unwrap();
    evaluate_verdict(
        records,
        history,
        HistorySource::Gateway {
            project: "p".into(),
        },
        &settings(&["d_token_throughput", "d_total_token_throughput"]),
        failing_policy(stage, None, None, post_merge),
    )
}

#[test]
fn trial_verdicts() {
    // A pre-merge regression fails the trial with upstream's message.
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 90.0)])];
    let v = verdict(&mut recs, Ok(history()), "");
    assert!(v.fails_trial);
    assert!(
        v.failure_message()
            .unwrap()
            .starts_with(&format!("Regression in {CASE}:"))
    );
    assert_eq!(recs[0].bool("b_is_regression"), Some(true));
    assert!(
        recs[0]
            .str("s_regression_info")
            .unwrap()
            .contains("d_token_throughput: value=90.0000")
    );
    let text = v.lines().join("\n");
    assert!(text.contains("REGRESSION"), "{text}");
    assert!(text.contains("the trial FAILS"), "{text}");

    // FUNCTIONAL-ONLY: same numbers, never fails.
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 90.0)])];
    let v = verdict(&mut recs, Ok(history()), "GB200-Disagg-FUNCTIONAL-ONLY-1");
    assert!(!v.fails_trial && v.any_regression());
    assert!(v.lines().join("\n").contains("FUNCTIONAL-ONLY"));

    // Post-merge regressions warn only.
    let mut recs = vec![record(CASE, true, &[("d_token_throughput", 90.0)])];
    let v = verdict(&mut recs, Ok(history()), "");
    assert!(!v.fails_trial && v.any_regression());

    // No history: nothing compared, empty info, no failure.
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 1.0)])];
    let other = vec![doc(
        "another-case",
        "2025-03-01",
        json!({"d_token_throughput": 100.0}),
    )];
    let v = verdict(&mut recs, Ok(other), "");
    assert!(!v.fails_trial);
    assert_eq!(v.cases[0].history_docs, 0);
    assert_eq!(recs[0].str("s_regression_info"), Some(""));
    assert_eq!(recs[0].bool("b_is_regression"), Some(false));
    assert!(v.lines().join("\n").contains("no history"));

    // A failed query is reported, not silently skipped — and records are left untouched.
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 1.0)])];
    let v = verdict(&mut recs, Err("GET http://gw/…: HTTP 503".into()), "");
    assert!(!v.fails_trial);
    assert!(v.query_error.is_some());
    assert!(recs[0].get("s_regression_info").is_none());
    let text = v.lines().join("\n");
    assert!(
        text.contains("NOT performed") && text.contains("HTTP 503"),
        "{text}"
    );
}

#[test]
fn history_is_matched_per_case_gpu_runtime_branch() {
    let mut h = history();
    // Same case on another GPU, branch or runtime: never compared.
    for (k, v) in [
        ("s_gpu_type", "b200"),
        ("s_branch", "release/1.3"),
        ("s_runtime", "aggr_server"),
    ] {
        let mut d = doc(CASE, "2025-03-08", json!({"d_token_throughput": 1.0e9}));
        d.insert(k.into(), json!(v));
        h.push(d);
    }
    let other_case = "e2e-stem-con64_iter1_isl1024_osl128";
    h.push(doc(
        other_case,
        "2025-03-01",
        json!({"d_token_throughput": 1000.0}),
    ));
    let mut recs = vec![
        record(CASE, false, &[("d_token_throughput", 104.0)]),
        record(other_case, false, &[("d_token_throughput", 1000.0)]),
    ];
    let v = verdict(&mut recs, Ok(h), "");
    assert_eq!(v.cases[0].history_docs, 6);
    assert_eq!(v.cases[1].history_docs, 1);
    assert!(!v.any_regression(), "{:#?}", v.cases);
}

#[test]
fn pre_merge_exemption_when_reference_already_regressed() {
    // Baseline from history ≈ 114.33; the latest post-merge value (95) misses the pre-merge gate
    // (102.9) itself, so a PR measuring 96 is exempt.
    let mut h = history();
    h.push(doc(CASE, "2025-03-06", json!({"d_token_throughput": 95.0})));
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 96.0)])];
    // Recompute expectations: with day 6 = 95 the rolling means are 105, 97.5, 105, 103.33,
    // 116.67, 108.33 → P95 (k = 4.75) = 108.33 + 0.75 × 8.33 = 114.58; gate 103.13.
    let v = verdict(&mut recs, Ok(h.clone()), "");
    assert!(v.any_regression());
    assert!(!v.fails_trial, "{:#?}", v.cases);
    assert!(v.cases[0].exempt.as_deref().unwrap().contains("exempt"));
    assert!(v.lines().join("\n").contains("exempt"));
    // The record still says what was measured.
    assert_eq!(recs[0].bool("b_is_regression"), Some(true));

    // An unusable latest value (0) does not exempt.
    let mut h2 = history();
    h2.push(doc(CASE, "2025-03-06", json!({"d_token_throughput": 0.0})));
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 96.0)])];
    let v = verdict(&mut recs, Ok(h2), "");
    assert!(v.fails_trial);
}

#[test]
fn post_merge_records_inherit_positive_stored_baselines() {
    let mut h = history();
    h.push(doc(
        CASE,
        "2025-03-06",
        json!({"d_token_throughput": 140.0, "d_baseline_token_throughput": 150,
               "d_threshold_post_merge_token_throughput": 0.07,
               "d_baseline_mean_ttft": -1}),
    ));
    let mut recs = vec![record(CASE, true, &[("d_token_throughput", 149.0)])];
    verdict(&mut recs, Ok(h.clone()), "");
    // Inherited as floats (an integer 150 in history must not make our record fail the type
    // check); the -1 baseline is not inherited.
    assert_eq!(
        recs[0].get("d_baseline_token_throughput"),
        Some(&FieldValue::Float(150.0))
    );
    assert_eq!(
        recs[0].get("d_threshold_post_merge_token_throughput"),
        Some(&FieldValue::Float(0.07))
    );
    assert!(recs[0].get("d_baseline_mean_ttft").is_none());
    // Pre-merge records never carry them.
    let mut recs = vec![record(CASE, false, &[("d_token_throughput", 149.0)])];
    verdict(&mut recs, Ok(h), "");
    assert!(recs[0].get("d_baseline_token_throughput").is_none());
}

#[test]
fn failing_policy_precedence() {
    assert!(failing_policy("", None, None, false).0);
    assert!(!failing_policy("", None, None, true).0);
    assert!(!failing_policy("X-FUNCTIONAL-ONLY", Some(true), None, false).0);
    assert!(!failing_policy("", Some(false), None, false).0);
    assert!(!failing_policy("", None, Some("simulator run"), false).0);
    assert!(failing_policy("", Some(true), Some("simulator run"), false).0);
}
