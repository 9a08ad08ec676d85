//! The harness binary itself (`tests/perf.rs`), run as a process: `--list`, filters, `--exact`,
//! and — the regression that datatest-stable once had — a failing trial must make the binary
//! exit non-zero, with the error in its output.

use crate::harness_bin::harness_cmd;

use std::path::Path;
use std::process::Output;

const GOOD: &str = "metadata:\n  model_name: tiny\nbenchmark:\n  concurrency_list: 1\n  input_length: 8\n  output_length: 4\nhardware:\n  gpus_per_node: 1\n  num_ctx_servers: 1\n  num_gen_servers: 1\nworker_config:\n  ctx: {}\n  gen: {}\n";

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("configs");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ok-one.yaml"), GOOD).unwrap();
    std::fs::write(
        d.join("broken.yaml"),
        GOOD.replace("concurrency_list", "concurency_list"),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    harness_cmd()
        .args(args)
        .env("PERF_CONFIG_DIRS", dir.join("configs"))
        .env("PERF_OUTPUT_DIR", dir.join("out"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_DB", dir.join("perf.sqlite"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn list_prints_one_line_per_trial_for_nextest() {
    let dir = fixture();
    let o = run(dir.path(), &["--list", "--format", "terse"]);
    assert!(o.status.success());
    // Each config once: the `disagg-` twins run only when named (or PERF_ALL_FAMILIES=1).
    assert_eq!(
        stdout(&o),
        "disagg_upload-broken: test\naggr_upload-ctx_only-broken: test\n\
         disagg_upload-ok-one: test\naggr_upload-ctx_only-ok-one: test\n"
    );
    let o = run(dir.path(), &["--list", "--format", "terse", "--ignored"]);
    assert_eq!(stdout(&o), "", "nothing is ignored on the simulator");
}

#[test]
fn a_failing_trial_fails_the_binary() {
    let dir = fixture();
    let o = run(dir.path(), &["broken"]);
    assert_eq!(o.status.code(), Some(101), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("broken.yaml:4: `benchmark.concurency_list`: unknown key"),
        "{text}"
    );
    // disagg_upload and the ctx_only trial of the broken config.
    assert!(text.contains("2 failed"), "{text}");
}

#[test]
fn filters_and_exact_select_trials() {
    let dir = fixture();
    let o = run(dir.path(), &["--exact", "disagg-ok-one"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("1 passed") && text.contains("0 failed"),
        "{text}"
    );
    assert!(dir.path().join("out/disagg-ok-one/plan.json").is_file());
    assert!(!dir.path().join("out/disagg_upload-ok-one").exists());
    let o = run(dir.path(), &["ok-one"]);
    assert!(stdout(&o).contains("2 passed"), "{}", stdout(&o));
}
