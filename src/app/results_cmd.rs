//! `perfsanity results show` and `perfsanity results push`: read the embedded history, and
//! deliver what failed uploads left pending.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::app::commands::Outcome;
use crate::app::settings::{EnvSource, ProcessEnv};

use crate::results::context::default_db_path;
use crate::results::field;
use crate::results::gateway::gateway_from_env;
use crate::results::push_pending;
use crate::results::store::{Row, Store, UploadState, parse_lock_wait};

/// `perfsanity results …`.
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Print stored records as a table (newest last).
    Show(ShowArgs),
    /// Upload every pending record (failed or interrupted uploads) to the gateway, once each.
    Push,
    /// Store a trial's `perf_records.json` that a failed store left (next to its plan.json).
    Import {
        /// The `perf_records.json` file.
        file: PathBuf,
    },
}

/// `perfsanity results show` options.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Only records of this trial (e.g. disagg_upload-<stem>).
    #[arg(long)]
    pub trial: Option<String>,
    /// Show the newest N records.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Print one JSON object per record (row metadata + the record) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print the regression verdict of each batch shown.
    #[arg(long)]
    pub verdict: bool,
}

/// The history database of the CLI: `PERF_DB`, else `<project root>/perf-history/perf-results.sqlite`.
pub fn db_path(env: &dyn EnvSource) -> PathBuf {
    if let Some(p) = env.var("PERF_DB").filter(|p| !p.trim().is_empty()) {
        return PathBuf::from(p);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = crate::app::history_location::project_root(env, &cwd);
    default_db_path(&root)
}

/// Opens the history database at `path`, waiting for another process's lock as long as
/// `PERF_DB_LOCK_WAIT_S` says. A bad value is reported as the store names its problems
/// (`results database <path>: PERF_DB_LOCK_WAIT_S=…`).
pub(crate) fn open_store(path: &Path) -> Result<Store, String> {
    // The history commands do not build a whole `Settings` (they need no config folders or
    // toolchain): this knob is read here, at the edge, the same way.
    let lock_wait = parse_lock_wait(std::env::var("PERF_DB_LOCK_WAIT_S").ok().as_deref())
        .map_err(|e| format!("results database {}: {e}", path.display()))?;
    Store::open(path, lock_wait).map_err(|e| e.to_string())
}

fn fail(message: String) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: message,
        ok: false,
    }
}

/// Runs a `results` command against the process environment.
pub fn run(cmd: &ResultsCommand) -> Outcome {
    run_with_env(cmd, &ProcessEnv)
}

/// Runs a `results` command against `env`.
pub fn run_with_env(cmd: &ResultsCommand, env: &dyn EnvSource) -> Outcome {
    let path = db_path(env);
    match cmd {
        ResultsCommand::Show(args) => {
            if !path.exists() {
                return fail(format!(
                    "no results database at {} (set PERF_DB, or run a trial first)",
                    path.display()
                ));
            }
            match open_store(&path) {
                Ok(store) => show(&store, args),
                Err(e) => fail(e),
            }
        }
        ResultsCommand::Push => push(env, &path),
        ResultsCommand::Import { file } => import(&path, file),
    }
}

fn import(db: &Path, file: &Path) -> Outcome {
    let report = open_store(db).and_then(|mut store| {
        crate::results::partial::import_records(&mut store, file).map_err(|e| e.to_string())
    });
    match report {
        Ok(r) => Outcome {
            stdout: format!(
                "imported {} record(s) from {} into {} (batch {}, state {})\n",
                r.records,
                file.display(),
                db.display(),
                r.batch,
                r.state.as_str()
            ),
            stderr: String::new(),
            ok: true,
        },
        Err(e) => fail(format!("perfsanity results import: {e}")),
    }
}

fn fmt_num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".to_string())
}

fn fmt_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn state_text(row: &Row) -> String {
    let mut s = row.state.as_str().to_string();
    if !row.note.is_empty() && row.state != UploadState::Uploaded {
        let note: String = row.note.chars().take(60).collect();
        s.push_str(": ");
        s.push_str(&note);
        if row.note.chars().count() > 60 {
            s.push('…');
        }
    }
    s
}

fn table(rows: &[Row]) -> String {
    let header = [
        "row",
        "created (UTC)",
        "trial",
        "client",
        "run",
        "tok/s",
        "total tok/s",
        "mean TTFT ms",
        "mean TPOT ms",
        "regr",
        "upload",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let regression = match (
            r.record.bool(field::IS_REGRESSION),
            r.record.str(field::REGRESSION_INFO),
        ) {
            (Some(true), _) => "YES".to_string(),
            (_, Some(info)) if !info.is_empty() => "no".to_string(),
            _ => "-".to_string(),
        };
        cells.push(vec![
            r.row_id.to_string(),
            fmt_time(r.created_ms),
            r.trial.clone(),
            r.record
                .str("s_client_name")
                .unwrap_or(&r.test_case_name)
                .to_string(),
            format!("{}/{}", r.toolchain, r.scale),
            fmt_num(r.record.f64("d_token_throughput")),
            fmt_num(r.record.f64("d_total_token_throughput")),
            fmt_num(r.record.f64("d_mean_ttft")),
            fmt_num(r.record.f64("d_mean_tpot")),
            regression,
            state_text(r),
        ]);
    }
    render_table(cells)
}

/// The rows as a table that fits the terminal (comfy-table: columns shrink and wrap to the
/// terminal's width; unbounded when stdout is not a terminal, so pipes get whole lines).
fn render_table(mut cells: Vec<Vec<String>>) -> String {
    use comfy_table::{ContentArrangement, Table, presets::NOTHING};
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !cells.is_empty() {
        table.set_header(cells.remove(0));
    }
    for row in cells {
        table.add_row(row);
    }
    let mut out: String = table
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

fn show(store: &Store, args: &ShowArgs) -> Outcome {
    let rows = match store.recent(args.trial.as_deref(), args.last) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let mut out = String::new();
    if args.json {
        for r in &rows {
            let v = serde_json::json!({
                "row_id": r.row_id,
                "batch": r.batch,
                "trial": r.trial,
                "created_ms": r.created_ms,
                "toolchain": r.toolchain,
                "scale": r.scale,
                "upload_state": r.state.as_str(),
                "upload_note": r.note,
                "upload_attempts": r.attempts,
                "artifacts": r.artifacts,
                "record": r.record,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
        return Outcome {
            stdout: out,
            stderr: String::new(),
            ok: true,
        };
    }
    if rows.is_empty() {
        out.push_str("no records");
        if let Some(t) = &args.trial {
            out.push_str(&format!(" for trial {t}"));
        }
        out.push('\n');
    } else {
        out.push_str(&table(&rows));
    }
    if args.verdict {
        let mut seen = Vec::new();
        for r in &rows {
            if seen.contains(&r.batch) {
                continue;
            }
            seen.push(r.batch.clone());
            if let Ok(Some(v)) = store.verdict(&r.batch)
                && !v.is_empty()
            {
                out.push_str(&format!(
                    "\n{} ({}):\n{v}\n",
                    r.trial,
                    fmt_time(r.created_ms)
                ));
            }
        }
    }
    if let Ok(counts) = store.state_counts() {
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        out.push_str(&format!(
            "\n{}: {}\n",
            store.path().display(),
            counts.join(", ")
        ));
    }
    Outcome {
        stdout: out,
        stderr: String::new(),
        ok: true,
    }
}

fn push(env: &dyn EnvSource, path: &std::path::Path) -> Outcome {
    let gateway = match gateway_from_env(env) {
        Ok(Some(g)) => g,
        Ok(None) => {
            return fail(
                "OPEN_SEARCH_DB_BASE_URL is not set: there is no gateway to push to".to_string(),
            );
        }
        Err(e) => return fail(e.to_string()),
    };
    if !path.exists() {
        return Outcome {
            stdout: format!(
                "no results database at {}: nothing to push\n",
                path.display()
            ),
            stderr: String::new(),
            ok: true,
        };
    }
    let mut store = match open_store(path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let report = match push_pending(&mut store, &gateway) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let mut out = format!("pushed {} record(s)\n", report.uploaded);
    let mut err = String::new();
    if report.refused > 0 {
        err.push_str(&format!(
            "{} record(s) refused by the type check (kept, never sent; see `perfsanity results show`)\n",
            report.refused
        ));
    }
    for (batch, n, reason) in &report.failed {
        err.push_str(&format!(
            "{n} record(s) of {batch} still pending: {reason}\n"
        ));
    }
    if report.uploaded == 0 && report.failed.is_empty() && report.refused == 0 {
        out = "nothing pending\n".to_string();
    }
    Outcome {
        stdout: out,
        stderr: err,
        ok: report.failed.is_empty() && report.refused == 0,
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn every_cell_is_on_its_row() {
        let cells = vec![
            vec!["row".to_string(), "trial".to_string()],
            vec!["1".to_string(), "disagg_upload-x".to_string()],
        ];
        let text = render_table(cells);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("row") && lines[0].contains("trial"));
        assert!(lines[1].contains('1') && lines[1].contains("disagg_upload-x"));
    }
}
