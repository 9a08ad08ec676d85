//! The HTML report in a real headless browser (Debian's `chromium`): the page renders, the
//! overview table is there, every chart loads, and a screenshot is kept as a CI artifact under
//! `target/ci-artifacts/` for a person to look at. Without Chromium the test says so on stderr
//! and returns, unless `PERFSANITY_REQUIRE_CHROMIUM=1` (CI), which makes absence a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use perfsanity::plan::Scale;
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::report::write_html_report;
use perfsanity::results::store::DEFAULT_LOCK_WAIT;
use perfsanity::results::{Store, record_trial_at};

const BROWSER_LIMIT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PERFSANITY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("ci-artifacts")
}

/// A history of one config: four real runs (the last one regressed), a simulator run.
fn history(dir: &Path) -> PathBuf {
    let db = dir.join("perf.sqlite");
    let config = own_config();
    let mk = |toolchain, scale| own_plan(&config, &dir.join("out"), toolchain, scale);
    let real = mk(Toolchain::Trtllm, Scale::Full);
    let ctx = context(&db, None, pr_ci(), "gb200");
    for (k, d) in [
        (1.0, "2025-05-01"),
        (1.05, "2025-05-02"),
        (0.98, "2025-05-04"),
        (0.7, "2025-05-05"),
    ] {
        record_trial_at(&ctx, &real, &config, &own_results(&real, k), day_ms(d)).unwrap();
    }
    let sim = mk(Toolchain::Sim, Scale::Full);
    let sim_ctx = context(&db, None, pr_ci(), "sim");
    record_trial_at(
        &sim_ctx,
        &sim,
        &config,
        &own_results(&sim, 3.0),
        day_ms("2025-05-05"),
    )
    .unwrap();
    db
}

/// Runs the browser with `args`, killing it after [`BROWSER_LIMIT`]; returns its stdout.
fn browse(browser: &Path, profile: &Path, args: &[String]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let deadline = Instant::now() + BROWSER_LIMIT;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    loop {
        match child.try_wait().unwrap() {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {BROWSER_LIMIT:?}",
                    browser.display()
                );
            }
            None => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
    reader.join().unwrap()
}

/// The tests of this module, for `tests/env_gated.rs`.
pub const TESTS: &[(&str, fn())] = &[(
    "the_report_renders_in_a_headless_browser",
    the_report_renders_in_a_headless_browser,
)];

/// What is missing for these tests, if anything.
pub fn missing() -> Option<String> {
    chromium()
        .is_none()
        .then(|| "no chromium on PATH (apt-get install chromium)".to_string())
}

fn the_report_renders_in_a_headless_browser() {
    let browser = chromium().expect("checked by the gate");
    let dir = tempfile::tempdir().unwrap();
    let db = history(dir.path());
    let out = artifacts().join("report");
    let summary =
        write_html_report(&Store::open(&db, DEFAULT_LOCK_WAIT).unwrap(), &out, None).unwrap();
    let url = format!("file://{}", summary.index.display());

    // The DOM after rendering: the overview first, every chart loaded (naturalWidth > 0 is
    // only known after layout, so the page's images are checked through their rendered DOM).
    let dom = browse(
        &browser,
        &dir.path().join("profile-dom"),
        &["--dump-dom".to_string(), url.clone()],
    );
    let overview = dom.find("id=\"overview\"").expect("an overview heading");
    let first_section = dom.find("<section").expect("a section");
    assert!(overview < first_section, "the overview comes first");
    assert!(
        dom.contains("class=\"bad\">REGRESSION<"),
        "the regressed real run is flagged in the overview"
    );
    assert_eq!(dom.matches("<img").count(), summary.plots.len());

    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &browser,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2200".to_string(),
            "--hide-scrollbars".to_string(),
            url,
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    // A blank page compresses to a few kilobytes; text, tables and charts do not.
    assert!(
        png.len() > 40_000,
        "screenshot of {} bytes looks empty",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
