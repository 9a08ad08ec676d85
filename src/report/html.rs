//! `perfsanity report`: an HTML page (plus one SVG file per chart) from the results history.
//!
//! Per trial: the latest run's records, its regression verdict, throughput against latency
//! across its concurrency levels, and — per test case — each key metric's history over time
//! against its baseline (stored, else computed the way the verdict computes it) and the pre-merge
//! gate. Simulator, smoke and real runs are separate series: a case is its test case name,
//! toolchain, scale and GPU type. The page is well-formed XHTML-compatible HTML, so it can be
//! checked with an XML parser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::history::{Doc, latest_baseline_threshold};
use crate::results::regression::{PRE_MERGE_THRESHOLD, computed_baseline, is_maximize};
use crate::results::store::{Row, Store};

use super::plots::{HistoryPoint, LoadPoint, metric_history, throughput_vs_latency};

/// Metrics charted over time (those a record has).
pub const HISTORY_METRICS: [(&str, &str); 9] = [
    ("d_token_throughput", "output token throughput (tok/s)"),
    ("d_total_token_throughput", "total token throughput (tok/s)"),
    ("d_user_throughput", "user throughput (tok/s)"),
    ("d_mean_ttft", "mean TTFT (ms)"),
    ("d_mean_tpot", "mean TPOT (ms)"),
    ("d_mean_e2el", "mean E2E latency (ms)"),
    ("d_al", "mean accepted length"),
    (
        "d_mean_gen_worker_per_iter_device_step_time",
        "mean device step time (ms)",
    ),
    (
        "d_median_gen_worker_per_iter_device_step_time",
        "median device step time (ms)",
    ),
];

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
#[error("report: {0}")]
pub struct ReportError(pub String);

/// What was written.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// `index.html`.
    pub index: PathBuf,
    /// Every SVG written.
    pub plots: Vec<PathBuf>,
    /// Trials covered.
    pub trials: usize,
    /// Records covered.
    pub records: usize,
}

/// HTML text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn slug(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    s.chars().take(80).collect()
}

fn fmt_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "–".to_string())
}

fn row_doc(row: &Row) -> Doc {
    let mut d = row.record.to_json_map();
    d.entry("ts_created")
        .or_insert(serde_json::Value::from(row.created_ms));
    d.entry("@timestamp")
        .or_insert(serde_json::Value::from(row.created_ms));
    d
}

struct Writer {
    dir: PathBuf,
    plots: Vec<PathBuf>,
}

impl Writer {
    fn svg(&mut self, name: &str, svg: &str) -> Result<String, ReportError> {
        let file = format!("{:03}-{}.svg", self.plots.len(), slug(name));
        let path = self.dir.join("plots").join(&file);
        std::fs::write(&path, svg)
            .map_err(|e| ReportError(format!("cannot write {}: {e}", path.display())))?;
        self.plots.push(path);
        Ok(format!("plots/{file}"))
    }
}

fn records_table(rows: &[&Row]) -> String {
    let mut h = String::from(
        "<table>\n<tr><th>client</th><th>concurrency</th><th>tok/s</th><th>total tok/s</th>\
         <th>user tok/s</th><th>mean TTFT ms</th><th>mean TPOT ms</th><th>mean E2EL ms</th>\
         <th>regression</th><th>upload</th></tr>\n",
    );
    for r in rows {
        let rec = &r.record;
        let regression = match rec.bool("b_is_regression") {
            Some(true) => "<span class=\"bad\">yes</span>",
            _ if rec.str("s_regression_info").is_some_and(|s| !s.is_empty()) => "no",
            _ => "–",
        };
        let mut upload = r.state.as_str().to_string();
        if !r.note.is_empty() {
            upload = format!("{upload}: {}", r.note);
        }
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(rec.str("s_client_name").unwrap_or(&r.test_case_name)),
            num(rec.f64("l_concurrency")).trim_end_matches(".00"),
            num(rec.f64("d_token_throughput")),
            num(rec.f64("d_total_token_throughput")),
            num(rec.f64("d_user_throughput")),
            num(rec.f64("d_mean_ttft")),
            num(rec.f64("d_mean_tpot")),
            num(rec.f64("d_mean_e2el")),
            regression,
            escape(&upload),
        ));
    }
    h.push_str("</table>\n");
    h
}

/// Writes `<out_dir>/index.html` and `<out_dir>/plots/*.svg` from `store`.
pub fn write_html_report(
    store: &Store,
    out_dir: &Path,
    trial: Option<&str>,
) -> Result<ReportSummary, ReportError> {
    let rows = store.all(trial).map_err(|e| ReportError(e.to_string()))?;
    let plots_dir = out_dir.join("plots");
    std::fs::create_dir_all(&plots_dir)
        .map_err(|e| ReportError(format!("cannot create {}: {e}", plots_dir.display())))?;
    // Remove charts of an earlier report so the directory matches the page.
    if let Ok(entries) = std::fs::read_dir(&plots_dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "svg") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut w = Writer {
        dir: out_dir.to_path_buf(),
        plots: Vec::new(),
    };

    // Trials, most recently run first.
    let mut by_trial: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_trial.entry(r.trial.as_str()).or_default().push(r);
    }
    let mut trials: Vec<(&str, Vec<&Row>)> = by_trial.into_iter().collect();
    trials.sort_by_key(|(_, rs)| std::cmp::Reverse(rs.iter().map(|r| r.created_ms).max()));

    let mut body = String::new();
    body.push_str(&format!(
        "<p>History database: <code>{}</code> — {} record(s), {} trial(s). Generated {}.</p>\n",
        escape(&store.path().display().to_string()),
        rows.len(),
        trials.len(),
        fmt_time(crate::results::store::now_ms())
    ));
    if trials.is_empty() {
        body.push_str("<p>No records yet.</p>\n");
    }
    for (trial_name, trial_rows) in &trials {
        let last = trial_rows.last().expect("groups are non-empty");
        let latest: Vec<&Row> = trial_rows
            .iter()
            .copied()
            .filter(|r| r.batch == last.batch)
            .collect();
        body.push_str(&format!(
            "<section>\n<h2 id=\"{}\">{}</h2>\n<p>Latest run {} · {}/{} · GPU {} · artifacts <code>{}</code></p>\n",
            escape(&slug(trial_name)),
            escape(trial_name),
            fmt_time(last.created_ms),
            escape(&last.toolchain),
            escape(&last.scale),
            escape(&last.gpu_type),
            escape(&last.artifacts),
        ));
        body.push_str(&records_table(&latest));
        if let Ok(Some(verdict)) = store.verdict(&last.batch)
            && !verdict.is_empty()
        {
            body.push_str(&format!("<pre>{}</pre>\n", escape(&verdict)));
        }
        let load: Vec<LoadPoint> = latest
            .iter()
            .filter_map(|r| {
                Some(LoadPoint {
                    latency_ms: r.record.f64("d_mean_e2el")?,
                    throughput: r.record.f64("d_token_throughput")?,
                    label: format!("c={}", r.record.f64("l_concurrency").unwrap_or(0.0)),
                })
            })
            .collect();
        if !load.is_empty() {
            let svg = throughput_vs_latency(
                &format!("{trial_name}: throughput vs latency"),
                "mean end-to-end latency (ms)",
                "output token throughput (tok/s)",
                &load,
            )
            .map_err(ReportError)?;
            let src = w.svg(&format!("{trial_name}-load"), &svg)?;
            body.push_str(&format!(
                "<figure><img src=\"{src}\" alt=\"throughput vs latency across concurrency\"/>\
                 <figcaption>Output token throughput against mean end-to-end latency, one point \
                 per concurrency level (latest run).</figcaption></figure>\n"
            ));
        }

        // History per case (test case × toolchain × scale × GPU).
        let mut cases: BTreeMap<(String, String, String, String), Vec<&Row>> = BTreeMap::new();
        for r in trial_rows {
            cases
                .entry((
                    r.test_case_name.clone(),
                    r.toolchain.clone(),
                    r.scale.clone(),
                    r.gpu_type.clone(),
                ))
                .or_default()
                .push(r);
        }
        for ((case, toolchain, scale, gpu), case_rows) in &cases {
            body.push_str(&format!(
                "<h3>{} <small>({}/{}, {})</small></h3>\n",
                escape(case),
                escape(toolchain),
                escape(scale),
                escape(gpu)
            ));
            let docs: Vec<Doc> = case_rows.iter().map(|r| row_doc(r)).collect();
            let stored = latest_baseline_threshold(&docs);
            for (metric, label) in HISTORY_METRICS {
                let points: Vec<HistoryPoint> = case_rows
                    .iter()
                    .filter_map(|r| {
                        Some(HistoryPoint {
                            time_ms: r.created_ms,
                            value: r.record.f64(metric)?,
                            regression: r.record.bool("b_is_regression").unwrap_or(false),
                        })
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let suffix = &metric[2..];
                let stored_baseline = stored
                    .get(&format!("d_baseline_{suffix}"))
                    .and_then(serde_json::Value::as_f64)
                    .filter(|b| *b > 0.0);
                let baseline = stored_baseline
                    .or_else(|| computed_baseline(&docs, metric).map(|(b, _)| b))
                    .filter(|b| *b > 0.0);
                let threshold = stored
                    .get(&format!("d_threshold_pre_merge_{suffix}"))
                    .and_then(serde_json::Value::as_f64)
                    .filter(|t| *t > 0.0)
                    .unwrap_or(PRE_MERGE_THRESHOLD);
                let gate = baseline.map(|b| {
                    if is_maximize(metric) {
                        b * (1.0 - threshold)
                    } else {
                        b * (1.0 + threshold)
                    }
                });
                let svg =
                    metric_history(&format!("{case}: {metric}"), label, &points, baseline, gate)
                        .map_err(ReportError)?;
                let src = w.svg(&format!("{metric}-{toolchain}-{scale}-{case}"), &svg)?;
                let baseline_text = match (stored_baseline, baseline) {
                    (Some(b), _) => format!("stored baseline {b:.2}"),
                    (None, Some(b)) => format!(
                        "baseline {b:.2} ({} of 3-day rolling daily means)",
                        if is_maximize(metric) { "P95" } else { "P5" }
                    ),
                    (None, None) => "no baseline".to_string(),
                };
                body.push_str(&format!(
                    "<figure><img src=\"{src}\" alt=\"{} history\"/><figcaption>{} over {} run(s); \
                     {}; gate at {:.0} % (pre-merge).</figcaption></figure>\n",
                    escape(metric),
                    escape(label),
                    points.len(),
                    escape(&baseline_text),
                    threshold * 100.0
                ));
            }
        }
        body.push_str("</section>\n");
    }

    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <title>perfsanity report</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}\n\
         th:first-child, td:first-child {{ text-align: left; }}\n\
         pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}\n\
         figure {{ display: inline-block; margin: 0.5em; }}\n\
         .bad {{ color: #b00; font-weight: bold; }}\n\
         </style>\n</head>\n<body>\n<h1>perfsanity report</h1>\n{body}</body>\n</html>\n"
    );
    let index = out_dir.join("index.html");
    std::fs::write(&index, html)
        .map_err(|e| ReportError(format!("cannot write {}: {e}", index.display())))?;
    Ok(ReportSummary {
        index,
        plots: w.plots,
        trials: trials.len(),
        records: rows.len(),
    })
}
