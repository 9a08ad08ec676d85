//! Reports without screenshots: the JUnit file Jenkins reads (one case per trial, failure class,
//! message and log tail), and the HTML report — well-formed, every chart an SVG file that parses
//! and draws something, throughput-vs-latency and history charts present.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::xml::{Element, parse};
use crate::support::*;
use assert_cmd::Command;
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Role, Scale};
use perfsanity::report::{write_html_report, write_junit};
use perfsanity::results::outcome::{
    FailureClass, LogTail, TrialFailure, TrialOutcome, TrialStatus,
};
use perfsanity::results::store::DEFAULT_LOCK_WAIT;
use perfsanity::results::{Store, record_trial_at};

fn outcomes() -> Vec<TrialOutcome> {
    vec![
        TrialOutcome {
            trial: "disagg_upload-a".into(),
            status: TrialStatus::Passed,
            duration: Duration::from_millis(1500),
            output_dir: Some(PathBuf::from("/out/disagg_upload-a")),
            summary: Default::default(),
        },
        TrialOutcome {
            trial: "disagg-b".into(),
            status: TrialStatus::Ignored {
                reason: "needs 16 GPUs, this host has 0".into(),
            },
            duration: Duration::ZERO,
            output_dir: None,
            summary: Default::default(),
        },
        TrialOutcome {
            trial: "disagg-c".into(),
            status: TrialStatus::Failed(TrialFailure {
                class: FailureClass::NeverReady,
                role: Some(Role::Gen(0)),
                message: "server did not report its address within 60s\n(second line)".into(),
                log_tail: Some(LogTail {
                    path: PathBuf::from("/out/disagg-c/trtllm-serve.GEN_0.0.log"),
                    text: "loading weights\nCUDA error: out of memory <&>\n".into(),
                }),
            }),
            duration: Duration::from_secs(61),
            output_dir: Some(PathBuf::from("/out/disagg-c")),
            summary: Default::default(),
        },
        TrialOutcome {
            trial: "disagg_upload-d".into(),
            status: TrialStatus::Failed(TrialFailure {
                class: FailureClass::Regression,
                role: Some(Role::Benchmark),
                message: "Regression in e2e-d-con8:\n  d_token_throughput: value=90.0000 baseline=114.3333 threshold=10.00% diff=-21.28%".into(),
                log_tail: None,
            }),
            duration: Duration::from_secs(5),
            output_dir: None,
            summary: Default::default(),
        },
    ]
}

#[test]
fn junit_has_one_case_per_trial_with_class_message_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports/perf.xml");
    write_junit(&path, &outcomes()).unwrap();
    let root = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(root.name, "testsuites");
    let suite = &root.find_all("testsuite")[0];
    assert_eq!(suite.attr("tests"), Some("4"));
    assert_eq!(suite.attr("failures"), Some("2"));
    assert_eq!(suite.attr("skipped"), Some("1"));
    let cases = suite.find_all("testcase");
    let names: Vec<&str> = cases.iter().map(|c| c.attr("name").unwrap()).collect();
    assert_eq!(
        names,
        ["disagg_upload-a", "disagg-b", "disagg-c", "disagg_upload-d"]
    );
    assert!(
        cases
            .iter()
            .all(|c| c.attr("classname") == Some("perfsanity"))
    );
    assert_eq!(cases[0].attr("time"), Some("1.500"));
    assert!(cases[0].find_all("failure").is_empty());
    assert_eq!(
        cases[1].find_all("skipped")[0].attr("message"),
        Some("needs 16 GPUs, this host has 0")
    );
    let f: &Element = cases[2].find_all("failure")[0];
    assert_eq!(f.attr("type"), Some("never_ready"));
    assert_eq!(
        f.attr("message"),
        Some("GEN_0: server did not report its address within 60s")
    );
    assert!(f.text.contains("(second line)"), "{}", f.text);
    assert!(
        f.text.contains("CUDA error: out of memory <&>"),
        "{}",
        f.text
    );
    let out = &cases[2].find_all("system-out")[0].text;
    assert!(out.contains("trtllm-serve.GEN_0.0.log") && out.contains("out of memory <&>"));
    let r = cases[3].find_all("failure")[0];
    assert_eq!(r.attr("type"), Some("regression"));
    assert!(r.text.contains("d_token_throughput: value=90.0000"));
    // Properties carry the artifacts directory.
    let props = cases[2].find_all("property");
    assert_eq!(props[0].attr("value"), Some("/out/disagg-c"));
}

/// A history with three real runs of two clients, a simulator run and a smoke run.
fn history(dir: &Path) -> (PathBuf, String) {
    let db = dir.join("perf.sqlite");
    let config = own_config();
    let mk = |toolchain, scale| own_plan(&config, &dir.join("out"), toolchain, scale);
    let real = mk(Toolchain::Trtllm, Scale::Full);
    let ctx = context(&db, None, pr_ci(), "gb200");
    for (k, d) in [
        (1.0, "2025-05-01"),
        (1.05, "2025-05-02"),
        (0.7, "2025-05-03"),
    ] {
        record_trial_at(&ctx, &real, &config, &own_results(&real, k), day_ms(d)).unwrap();
    }
    let sim_ctx = context(&db, None, pr_ci(), "sim");
    let sim = mk(Toolchain::Sim, Scale::Full);
    record_trial_at(
        &sim_ctx,
        &sim,
        &config,
        &own_results(&sim, 3.0),
        day_ms("2025-04-30"),
    )
    .unwrap();
    let smoke = mk(Toolchain::Trtllm, Scale::Smoke);
    record_trial_at(
        &ctx,
        &smoke,
        &config,
        &own_results(&smoke, 0.1),
        day_ms("2025-04-30"),
    )
    .unwrap();
    (db, real.trial)
}

fn check_report(out: &Path) -> (Element, Vec<Element>) {
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let root = parse(&html).unwrap_or_else(|e| panic!("index.html is not well-formed: {e}"));
    assert_eq!(root.name, "html");
    let mut svgs = Vec::new();
    for img in root.find_all("img") {
        let src = img.attr("src").unwrap();
        assert!(img.attr("alt").is_some());
        let text = std::fs::read_to_string(out.join(src)).unwrap_or_else(|e| panic!("{src}: {e}"));
        let svg = parse(&text).unwrap_or_else(|e| panic!("{src} does not parse: {e}"));
        assert_eq!(svg.name, "svg", "{src}");
        let drawn = svg.find_all("polyline").len()
            + svg.find_all("path").len()
            + svg.find_all("circle").len();
        assert!(drawn > 0, "{src} draws nothing");
        assert!(!svg.find_all("text").is_empty(), "{src} has no labels");
        svgs.push(svg);
    }
    (root, svgs)
}

#[test]
fn html_report_is_well_formed_with_parseable_svgs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, trial) = history(dir.path());
    let store = Store::open(&db, DEFAULT_LOCK_WAIT).unwrap();
    let out = dir.path().join("report");
    let summary = write_html_report(&store, &out, None).unwrap();
    assert_eq!(
        summary.records, 9,
        "3 real runs × 2 clients, 2 simulated, 1 smoke (capped concurrency)"
    );
    assert_eq!(summary.trials, 1, "one trial name; runs of three kinds");
    let (root, svgs) = check_report(&out);
    assert_eq!(svgs.len(), summary.plots.len());
    let text = root.all_text();
    assert!(text.contains(&trial));
    // Separate series per toolchain and scale: 2 real cases, 2 simulated, 1 smoke.
    let h3: Vec<String> = root.find_all("h3").iter().map(|h| h.all_text()).collect();
    assert_eq!(h3.len(), 5, "{h3:?}");
    assert!(h3.iter().any(|h| h.contains("sim/full")));
    assert!(h3.iter().any(|h| h.contains("trtllm/smoke")));
    // The latest run's verdict is on the page, and its throughput-vs-latency chart.
    assert!(
        root.find_all("pre")
            .iter()
            .any(|p| p.text.contains("regression check"))
    );
    let titles: Vec<String> = svgs.iter().map(|s| s.all_text()).collect();
    assert!(titles.iter().any(|t| t.contains("throughput vs latency")));
    // The load chart has one labelled point per concurrency level.
    let load = titles
        .iter()
        .position(|t| t.contains("throughput vs latency"))
        .unwrap();
    assert!(titles[load].contains("c=4") && titles[load].contains("c=16"));
    // History charts carry a baseline and a gate line in their legend.
    let hist = titles
        .iter()
        .find(|t| t.contains("d_token_throughput") && t.contains("baseline"))
        .expect("a token throughput history chart with a baseline");
    assert!(hist.contains("regression gate"));
    // The overview comes first: every trial, its verdict and a trend arrow, linked to its
    // section; the 30 % drop of the last real run is visible in the records table.
    let tables = root.find_all("table");
    let overview = tables[0].all_text();
    assert!(
        overview.contains(&trial) && overview.contains("REGRESSION"),
        "{overview}"
    );
    assert!(overview.contains('↓'), "{overview}");
    assert!(tables[1].all_text().contains("yes"));
    let link = root.find_all("a")[0]
        .attr("href")
        .unwrap()
        .trim_start_matches('#')
        .to_string();
    assert!(
        root.find_all("h2")
            .iter()
            .any(|h| h.attr("id") == Some(link.as_str()))
    );
    // The gate of the judged (latest) run comes from the runs before it, never from itself.
    assert!(
        text.contains("over 2 day(s) of earlier runs"),
        "the baseline of the 3-run case uses the 2 earlier days"
    );
}

#[test]
fn the_report_gate_follows_a_threshold_override() {
    use perfsanity::report::{ReportOptions, write_html_report_with};
    use perfsanity::results::regression::RegressionSettings;
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = history(dir.path());
    let store = Store::open(&db, DEFAULT_LOCK_WAIT).unwrap();
    let captions = |regression: RegressionSettings| {
        let out = dir.path().join("r");
        let options = ReportOptions {
            trial: None,
            regression,
        };
        write_html_report_with(&store, &out, &options).unwrap();
        let (root, _) = check_report(&out);
        root.find_all("figcaption")
            .iter()
            .map(|f| f.all_text())
            .find(|t| t.contains("output token throughput") && t.contains("earlier runs"))
            .unwrap()
    };
    assert!(captions(RegressionSettings::default()).contains("gate at 10.0 %"));
    let tight = RegressionSettings {
        overrides: [("d_token_throughput".to_string(), 0.03)]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    assert!(captions(tight).contains("gate at 3.0 %"));
}

#[test]
fn report_cli_writes_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (db, trial) = history(dir.path());
    let out = dir.path().join("cli-report");
    let o = Command::from_std(crate::support::perfsanity_cmd())
        .args(["report", "--out"])
        .arg(&out)
        .args(["--trial", &trial])
        .env("PERF_DB", &db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("index.html"));
    check_report(&out);
    // An unknown trial is an error with a suggestion, and the existing report stays whole.
    let before = std::fs::read_dir(out.join("plots")).unwrap().count();
    let typo = format!("{}x", trial);
    let o = Command::from_std(crate::support::perfsanity_cmd())
        .args(["report", "--out"])
        .arg(&out)
        .args(["--trial", &typo])
        .env("PERF_DB", &db)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("did you mean {trial:?}")), "{err}");
    assert_eq!(
        std::fs::read_dir(out.join("plots")).unwrap().count(),
        before
    );
    check_report(&out);
}
