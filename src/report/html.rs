//! `perfsanity report`: an HTML page (plus one SVG file per chart) from the results history.
//!
//! The page opens with an overview table — every trial, its verdict, key metrics and a trend
//! arrow — linking to one section per config (the `disagg_upload-` and `disagg-` trials of a
//! config share it): the latest run's records and regression verdict, throughput against
//! latency across its concurrency levels, and per test case each key metric's history against
//! the regression gate. The gate is [`crate::results::regression::gate`], the verdict's own
//! function, computed from the case's *earlier* runs only (never the run being judged) and with
//! the same threshold overrides. Simulator, smoke and real runs are separate series: a case is
//! its test case name, toolchain, scale and GPU type.
//!
//! Four steps, one function each: [`read_store`], [`layout`] (with [`case_figures`] drawing
//! the gate), [`render`] (an askama template, `templates/report.html`, which escapes every
//! value), and [`publish`], which builds the report in a temporary folder and swaps it in, so
//! an earlier report is never lost to a failed one. The page is well-formed XHTML-compatible
//! HTML, so it can be checked with an XML parser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use askama::Template;

use crate::results::field;
use crate::results::history::{Doc, latest_baseline_threshold};
use crate::results::regression::{BaselineSource, RegressionSettings, gate, is_maximize};
use crate::results::store::{Row, Store, StoreError};

use super::plots::{HistoryPoint, LoadPoint, PlotError, metric_history, throughput_vs_latency};

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
pub enum ReportError {
    /// The history database could not be read.
    #[error("report: {0}")]
    Store(#[from] StoreError),
    /// The history has no records of the trial asked for.
    #[error(
        "report: no records of trial {trial:?} in {}{}; `perfsanity results show` lists what \
         is stored",
        db.display(),
        closest.as_ref().map(|n| format!(" (did you mean {n:?}?)")).unwrap_or_default()
    )]
    NoSuchTrial {
        /// The trial asked for.
        trial: String,
        /// The history database.
        db: PathBuf,
        /// The closest stored trial name, if any is close.
        closest: Option<String>,
    },
    /// A chart could not be drawn.
    #[error("report: {0}")]
    Plot(#[from] PlotError),
    /// The page template failed.
    #[error("report: cannot render the page: {0}")]
    Render(#[source] askama::Error),
    /// A file or folder could not be written.
    #[error("report: cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

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
    d.entry(field::CREATED)
        .or_insert(serde_json::Value::from(row.created_ms));
    d.entry("@timestamp")
        .or_insert(serde_json::Value::from(row.created_ms));
    d
}

/// Runs of a case before its history is charted (one point is not a history).
pub const MIN_RUNS_FOR_HISTORY: usize = 2;

/// The config a trial runs: its name without the `disagg_upload-` / `disagg-` family prefix.
pub fn config_of(trial: &str) -> &str {
    trial
        .strip_prefix("disagg_upload-")
        .or_else(|| trial.strip_prefix("disagg-"))
        .unwrap_or(trial)
}

/// What the report covers and how it judges.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Only this trial.
    pub trial: Option<String>,
    /// The regression settings the verdict uses (threshold overrides).
    pub regression: RegressionSettings,
}

/// One chart: its SVG text, and how the page shows it.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File name under `plots/`.
    pub file: String,
    /// SVG text.
    pub svg: String,
    /// `src` attribute.
    pub src: String,
    /// `alt` text.
    pub alt: String,
    /// Caption.
    pub caption: String,
}

/// A row of the overview table.
#[derive(Debug, Clone)]
pub struct OverviewRow {
    /// Trial name.
    pub trial: String,
    /// Section anchor.
    pub anchor: String,
    /// `pass`, `REGRESSION`, `no history`.
    pub verdict: String,
    /// CSS class of the verdict.
    pub verdict_class: String,
    /// Latest run time.
    pub latest: String,
    /// `toolchain/scale`.
    pub kind: String,
    /// Runs (batches) stored.
    pub runs: usize,
    /// Output token throughput of the latest run's first client.
    pub throughput: String,
    /// Mean TTFT.
    pub ttft: String,
    /// Mean TPOT.
    pub tpot: String,
    /// ↑ ↓ → or ·.
    pub trend: String,
    /// What the arrow compares.
    pub trend_title: String,
}

/// A row of a section's records table.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// Client name.
    pub client: String,
    /// Concurrency.
    pub concurrency: String,
    /// tok/s.
    pub throughput: String,
    /// total tok/s.
    pub total_throughput: String,
    /// user tok/s.
    pub user_throughput: String,
    /// mean TTFT.
    pub ttft: String,
    /// mean TPOT.
    pub tpot: String,
    /// mean E2EL.
    pub e2el: String,
    /// yes / no / –.
    pub regression: String,
    /// CSS class.
    pub regression_class: String,
    /// Upload state and note.
    pub upload: String,
}

/// Charts of one test case.
#[derive(Debug, Clone)]
pub struct CaseBlock {
    /// Test case name.
    pub title: String,
    /// `toolchain/scale`.
    pub kind: String,
    /// GPU type.
    pub gpu: String,
    /// Its history charts.
    pub figures: Vec<Figure>,
    /// Said instead of charts (a single run has no history to chart).
    pub note: String,
}

/// One config's section.
#[derive(Debug, Clone)]
pub struct Section {
    /// Anchor.
    pub anchor: String,
    /// The config.
    pub title: String,
    /// Its trials, comma-separated.
    pub trials: String,
    /// Latest run time.
    pub latest: String,
    /// `toolchain/scale` of the latest run.
    pub kind: String,
    /// GPU type of the latest run.
    pub gpu: String,
    /// Artifacts folder of the latest run.
    pub artifacts: String,
    /// Latest run's records.
    pub rows: Vec<RecordRow>,
    /// The stored verdict text of the latest run.
    pub verdict: String,
    /// Throughput-vs-latency chart of the latest run.
    pub figures: Vec<Figure>,
    /// Per-case history charts.
    pub cases: Vec<CaseBlock>,
}

/// The whole page.
#[derive(Debug, Clone, Template)]
#[template(path = "report.html")]
pub struct Page {
    /// Database path.
    pub db: String,
    /// Records covered.
    pub records: usize,
    /// Trials covered.
    pub trial_count: usize,
    /// Generation time.
    pub generated: String,
    /// Overview table.
    pub overview: Vec<OverviewRow>,
    /// Sections, most recently run config first.
    pub sections: Vec<Section>,
}

impl Page {
    /// Every chart of the page, in page order.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.sections.iter().flat_map(|s| {
            s.figures
                .iter()
                .chain(s.cases.iter().flat_map(|c| c.figures.iter()))
        })
    }
}

/// Step 1: the rows to report. Asking for a trial the history does not have is an error that
/// names the closest trial it does have.
pub fn read_store(store: &Store, trial: Option<&str>) -> Result<Vec<Row>, ReportError> {
    let rows = store.all(trial)?;
    if let Some(wanted) = trial
        && rows.is_empty()
    {
        let all = store.all(None)?;
        let mut names: Vec<&str> = all.iter().map(|r| r.trial.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(ReportError::NoSuchTrial {
            trial: wanted.to_string(),
            db: store.path().to_path_buf(),
            closest: crate::config::reader::closest(wanted, &names).map(|n| n.to_string()),
        });
    }
    Ok(rows)
}

fn batches(rows: &[&Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.batch) {
            out.push(r.batch.clone());
        }
    }
    out
}

fn trend(latest: Option<f64>, previous: Option<f64>) -> (&'static str, String) {
    match (latest, previous) {
        (Some(l), Some(p)) if p > 0.0 => {
            let change = (l - p) / p * 100.0;
            let arrow = if change > 2.0 {
                "↑"
            } else if change < -2.0 {
                "↓"
            } else {
                "→"
            };
            (arrow, format!("{change:+.1} % against the run before"))
        }
        _ => ("·", "no earlier run".to_string()),
    }
}

fn overview_row(trial: &str, rows: &[&Row]) -> OverviewRow {
    let order = batches(rows);
    let last = rows.last().expect("groups are non-empty");
    let first_of = |batch: &str| rows.iter().find(|r| r.batch == batch).copied();
    let latest = first_of(&last.batch).unwrap_or(last);
    let previous = order
        .len()
        .checked_sub(2)
        .and_then(|i| first_of(&order[i]))
        .filter(|p| p.test_case_name == latest.test_case_name);
    let regressive = rows
        .iter()
        .filter(|r| r.batch == last.batch)
        .any(|r| r.record.bool(field::IS_REGRESSION) == Some(true));
    let judged = rows.iter().filter(|r| r.batch == last.batch).any(|r| {
        r.record
            .str(field::REGRESSION_INFO)
            .is_some_and(|s| !s.is_empty())
    });
    let (verdict, class) = match (regressive, judged) {
        (true, _) => ("REGRESSION", "bad"),
        (false, true) => ("pass", "good"),
        (false, false) => ("no history", ""),
    };
    let (arrow, why) = trend(
        latest.record.f64("d_token_throughput"),
        previous.and_then(|p| p.record.f64("d_token_throughput")),
    );
    OverviewRow {
        trial: trial.to_string(),
        anchor: slug(config_of(trial)),
        verdict: verdict.to_string(),
        verdict_class: class.to_string(),
        latest: fmt_time(last.created_ms),
        kind: format!("{}/{} ({})", last.toolchain, last.scale, last.gpu_type),
        runs: order.len(),
        throughput: num(latest.record.f64("d_token_throughput")),
        ttft: num(latest.record.f64("d_mean_ttft")),
        tpot: num(latest.record.f64("d_mean_tpot")),
        trend: arrow.to_string(),
        trend_title: why,
    }
}

fn record_row(r: &Row) -> RecordRow {
    let rec = &r.record;
    let (regression, class) = match rec.bool(field::IS_REGRESSION) {
        Some(true) => ("yes", "bad"),
        _ if rec
            .str(field::REGRESSION_INFO)
            .is_some_and(|s| !s.is_empty()) =>
        {
            ("no", "")
        }
        _ => ("–", ""),
    };
    let mut upload = r.state.as_str().to_string();
    if !r.note.is_empty() {
        upload = format!("{upload}: {}", r.note);
    }
    RecordRow {
        client: rec
            .str("s_client_name")
            .unwrap_or(&r.test_case_name)
            .to_string(),
        concurrency: num(rec.f64("l_concurrency"))
            .trim_end_matches(".00")
            .to_string(),
        throughput: num(rec.f64("d_token_throughput")),
        total_throughput: num(rec.f64("d_total_token_throughput")),
        user_throughput: num(rec.f64("d_user_throughput")),
        ttft: num(rec.f64("d_mean_ttft")),
        tpot: num(rec.f64("d_mean_tpot")),
        e2el: num(rec.f64("d_mean_e2el")),
        regression: regression.to_string(),
        regression_class: class.to_string(),
        upload,
    }
}

fn figure(name: &str, svg: String, alt: String, caption: String) -> Figure {
    let file = format!("{}.svg", slug(name));
    Figure {
        src: format!("plots/{file}"),
        file,
        svg,
        alt,
        caption,
    }
}

fn load_figure(config: &str, latest: &[&Row]) -> Result<Option<Figure>, ReportError> {
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
    if load.is_empty() {
        return Ok(None);
    }
    let svg = throughput_vs_latency(
        &format!("{config}: throughput vs latency"),
        "mean end-to-end latency (ms)",
        "output token throughput (tok/s)",
        &load,
    )?;
    Ok(Some(figure(
        &format!("{config}-load"),
        svg,
        "throughput vs latency across concurrency".to_string(),
        "Output token throughput against mean end-to-end latency, one point per concurrency \
         level (latest run)."
            .to_string(),
    )))
}

/// Step 2b: one case's history charts, each with the regression gate of its latest run —
/// [`gate`] over the runs *before* it, under `settings` (the verdict's threshold overrides).
pub fn case_figures(
    key: &str,
    case_rows: &[&Row],
    settings: &RegressionSettings,
) -> Result<Vec<Figure>, ReportError> {
    let last = case_rows.last().expect("cases are non-empty");
    let history: Vec<Doc> = case_rows
        .iter()
        .filter(|r| r.batch != last.batch)
        .map(|r| row_doc(r))
        .collect();
    let stored = latest_baseline_threshold(&history);
    let post_merge = last.record.bool(field::IS_POST_MERGE).unwrap_or(false);
    let case = &last.test_case_name;
    let mut out = Vec::new();
    for (metric, label) in HISTORY_METRICS {
        let points: Vec<HistoryPoint> = case_rows
            .iter()
            .filter_map(|r| {
                Some(HistoryPoint {
                    time_ms: r.created_ms,
                    value: r.record.f64(metric)?,
                    regression: r.record.bool(field::IS_REGRESSION).unwrap_or(false),
                })
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let g = if history.is_empty() {
            None
        } else {
            gate(metric, &history, &stored, post_merge, settings)
        };
        let svg = metric_history(
            &format!("{case}: {metric}"),
            label,
            &points,
            g.as_ref().map(|g| g.baseline),
            g.as_ref().map(|g| g.limit(metric)),
        )?;
        let gate_text = match &g {
            Some(g) => {
                let source = match g.baseline_source {
                    BaselineSource::Stored => "stored baseline".to_string(),
                    BaselineSource::Computed { days } => format!(
                        "baseline: {} of 3-day rolling daily means over {days} day(s) of earlier runs",
                        if is_maximize(metric) { "P95" } else { "P5" }
                    ),
                };
                format!(
                    "{source} {:.2}; gate at {:.1} % ({})",
                    g.baseline,
                    g.threshold * 100.0,
                    if post_merge {
                        "post-merge"
                    } else {
                        "pre-merge"
                    }
                )
            }
            None => "no baseline (no earlier run of this case)".to_string(),
        };
        out.push(figure(
            &format!("{metric}-{key}"),
            svg,
            format!("{metric} history"),
            format!("{label} over {} run(s); {gate_text}.", points.len()),
        ));
    }
    Ok(out)
}

/// Step 2: the page — overview rows for every trial, one section per config (most recently
/// run first), its cases and charts.
pub fn layout(
    store_path: &Path,
    rows: &[Row],
    settings: &RegressionSettings,
) -> Result<Page, ReportError> {
    let mut by_trial: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    let mut by_config: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_trial.entry(r.trial.as_str()).or_default().push(r);
        by_config.entry(config_of(&r.trial)).or_default().push(r);
    }
    let recency = |rs: &Vec<&Row>| std::cmp::Reverse(rs.iter().map(|r| r.created_ms).max());
    let mut trials: Vec<(&str, Vec<&Row>)> = by_trial.into_iter().collect();
    trials.sort_by_key(|(_, rs)| recency(rs));
    let mut configs: Vec<(&str, Vec<&Row>)> = by_config.into_iter().collect();
    configs.sort_by_key(|(_, rs)| recency(rs));

    let mut sections = Vec::new();
    for (config, config_rows) in &configs {
        let last = config_rows.last().expect("groups are non-empty");
        let latest: Vec<&Row> = config_rows
            .iter()
            .copied()
            .filter(|r| r.batch == last.batch)
            .collect();
        let mut names: Vec<&str> = config_rows.iter().map(|r| r.trial.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut cases: BTreeMap<(&str, &str, &str, &str), Vec<&Row>> = BTreeMap::new();
        for r in config_rows {
            cases
                .entry((&r.test_case_name, &r.toolchain, &r.scale, &r.gpu_type))
                .or_default()
                .push(r);
        }
        let mut blocks = Vec::new();
        for ((case, toolchain, scale, gpu), case_rows) in &cases {
            let key = format!("{toolchain}-{scale}-{gpu}-{case}");
            let runs = batches(case_rows).len();
            let (figures, note) = if runs < MIN_RUNS_FOR_HISTORY {
                let only = case_rows.last().expect("cases are non-empty");
                let value = num(only.record.f64("d_token_throughput"));
                (
                    Vec::new(),
                    format!(
                        "One run so far ({}, output {value} tok/s): history charts start with \
                         the second run.",
                        fmt_time(only.created_ms)
                    ),
                )
            } else {
                (case_figures(&key, case_rows, settings)?, String::new())
            };
            blocks.push(CaseBlock {
                title: case.to_string(),
                kind: format!("{toolchain}/{scale}"),
                gpu: gpu.to_string(),
                figures,
                note,
            });
        }
        sections.push(Section {
            anchor: slug(config),
            title: config.to_string(),
            trials: names.join(", "),
            latest: fmt_time(last.created_ms),
            kind: format!("{}/{}", last.toolchain, last.scale),
            gpu: last.gpu_type.clone(),
            artifacts: last.artifacts.clone(),
            rows: latest.iter().map(|r| record_row(r)).collect(),
            verdict: String::new(),
            figures: load_figure(config, &latest)?.into_iter().collect(),
            cases: blocks,
        });
    }
    let mut page = Page {
        db: store_path.display().to_string(),
        records: rows.len(),
        trial_count: trials.len(),
        generated: fmt_time(crate::results::store::now_ms()),
        overview: trials
            .iter()
            .flat_map(|(name, rs)| {
                // One row per kind of run: a simulator run never hides a real one, and each
                // trend compares runs of one kind.
                let mut kinds: BTreeMap<(&str, &str, &str), Vec<&Row>> = BTreeMap::new();
                for r in rs {
                    kinds
                        .entry((&r.toolchain, &r.scale, &r.gpu_type))
                        .or_default()
                        .push(r);
                }
                let mut kinds: Vec<Vec<&Row>> = kinds.into_values().collect();
                kinds.sort_by_key(|k| recency(k));
                kinds
                    .into_iter()
                    .map(|k| overview_row(name, &k))
                    .collect::<Vec<_>>()
            })
            .collect(),
        sections,
    };
    number_figures(&mut page);
    Ok(page)
}

/// Gives every chart a unique file name (names are cut to 80 characters, so two long case
/// names could meet).
fn number_figures(page: &mut Page) {
    let mut i = 0;
    for s in &mut page.sections {
        let case_figures = s.cases.iter_mut().flat_map(|c| c.figures.iter_mut());
        for f in s.figures.iter_mut().chain(case_figures) {
            f.file = format!("{i:03}-{}", f.file);
            f.src = format!("plots/{}", f.file);
            i += 1;
        }
    }
}

/// Step 3: the HTML text of `page`.
pub fn render(page: &Page) -> Result<String, ReportError> {
    page.render().map_err(ReportError::Render)
}

/// Step 4: writes `index.html` and `plots/*.svg` into a fresh folder beside `out_dir`, then
/// swaps it in (an atomic exchange where the system has one). The previous report is removed
/// only after the new one is complete.
pub fn publish(out_dir: &Path, html: &str, page: &Page) -> Result<Vec<PathBuf>, ReportError> {
    let io = |what: &Path, source: std::io::Error| ReportError::Write {
        path: what.to_path_buf(),
        source,
    };
    let parent = match out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".perf-report-new-")
        .tempdir_in(&parent)
        .map_err(|e| io(&parent, e))?;
    let plots = staging.path().join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| io(&plots, e))?;
    let mut written = Vec::new();
    for f in page.figures() {
        let path = plots.join(&f.file);
        std::fs::write(&path, &f.svg).map_err(|e| io(&path, e))?;
        written.push(out_dir.join("plots").join(&f.file));
    }
    let index = staging.path().join("index.html");
    std::fs::write(&index, html).map_err(|e| io(&index, e))?;
    let staged = staging.keep();
    swap_in(&staged, out_dir).map_err(|e| io(out_dir, e))?;
    Ok(written)
}

/// Puts `staged` at `out_dir`, removing what was there only once the new folder is in place.
fn swap_in(staged: &Path, out_dir: &Path) -> std::io::Result<()> {
    if !out_dir.exists() {
        return std::fs::rename(staged, out_dir);
    }
    let exchanged = nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        staged,
        nix::fcntl::AT_FDCWD,
        out_dir,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    );
    if exchanged.is_err() {
        // No atomic exchange here: move the old report aside first, then the new one in.
        let aside = staged.with_extension("old");
        std::fs::rename(out_dir, &aside)?;
        std::fs::rename(staged, out_dir)?;
        return std::fs::remove_dir_all(&aside);
    }
    // After the exchange `staged` holds the previous report.
    std::fs::remove_dir_all(staged)
}

/// Writes `<out_dir>/index.html` and `<out_dir>/plots/*.svg` from `store` with default
/// regression settings.
pub fn write_html_report(
    store: &Store,
    out_dir: &Path,
    trial: Option<&str>,
) -> Result<ReportSummary, ReportError> {
    let options = ReportOptions {
        trial: trial.map(str::to_string),
        ..Default::default()
    };
    write_html_report_with(store, out_dir, &options)
}

/// Writes the report: [`read_store`] → [`layout`] → [`render`] → [`publish`].
pub fn write_html_report_with(
    store: &Store,
    out_dir: &Path,
    options: &ReportOptions,
) -> Result<ReportSummary, ReportError> {
    let rows = read_store(store, options.trial.as_deref())?;
    let mut page = layout(store.path(), &rows, &options.regression)?;
    for section in &mut page.sections {
        let batch = rows
            .iter()
            .filter(|r| config_of(&r.trial) == section.title)
            .max_by_key(|r| (r.created_ms, r.row_id))
            .map(|r| r.batch.clone());
        if let Some(batch) = batch
            && let Ok(Some(verdict)) = store.verdict(&batch)
        {
            section.verdict = verdict;
        }
    }
    let html = render(&page)?;
    let plots = publish(out_dir, &html, &page)?;
    Ok(ReportSummary {
        index: out_dir.join("index.html"),
        plots,
        trials: page.trial_count,
        records: rows.len(),
    })
}
