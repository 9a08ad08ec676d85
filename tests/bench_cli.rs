//! The `perfsanity bench` and `perfsanity dataset gen` binaries: exit codes, error messages,
//! and clean logs (no progress bar when stderr is not a terminal).

use std::time::Duration;

use assert_cmd::Command;
use perfsanity::measure::{check_client_output, parse_client_output};
use perfsanity::tools::bench::scripted_server::{Script, ScriptedServer};

fn bench() -> Command {
    let mut c = Command::from_std(crate::support::perfsanity_cmd());
    c.arg("bench");
    c
}

fn quick_server(fail_every: Option<u64>) -> ScriptedServer {
    ScriptedServer::start(
        Script {
            ttft: Duration::from_millis(2),
            gaps: vec![Duration::from_millis(1)],
            fail_every,
            ..Script::default()
        },
        0,
        0,
    )
    .unwrap()
}

const PLAN_ARGS: [&str; 24] = [
    "--tokenizer-fallback",
    "builtin",
    "--model",
    "/nonexistent/m",
    "--tokenizer",
    "/nonexistent/m",
    "--num-prompts",
    "8",
    "--max-concurrency",
    "4",
    "--percentile-metrics",
    "ttft,tpot,itl,e2el",
    "--ignore-eos",
    "--dataset-name",
    "random",
    "--random-ids",
    "--tokenize-on-client",
    "--random-input-len",
    "8",
    "--random-output-len",
    "4",
    "--random-range-ratio",
    "0.0",
    "--trust-remote-code",
];

#[test]
fn plan_command_runs_and_logs_cleanly() {
    let srv = quick_server(None);
    let out = bench()
        .args(PLAN_ARGS)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &srv.addr.port().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        parse_client_output(&stdout, false)
            .missing_base_metrics()
            .is_empty()
    );
    assert!(check_client_output(&stdout).is_ok());
    // One log line about the fallback tokenizer, and no progress bar.
    assert_eq!(
        stderr,
        "perfsanity bench: no tokenizer.json in /nonexistent/m; using the built-in synthetic \
         tokenizer (--tokenizer-fallback builtin)\n"
    );
}

#[test]
fn failing_test_request_exits_non_zero() {
    let srv = quick_server(Some(1));
    let out = bench()
        .args(PLAN_ARGS)
        .args(["--port", &srv.addr.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("perfsanity bench: error: Initial test run failed"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_get_one_clear_error() {
    let out = bench().args(["--model", "m", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));

    let out = bench()
        .args(["--model", "m", "--dataset-name", "random", "--random-ids"])
        .args(["--random-range-ratio", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--random-range-ratio: must be < 1.0"),
        "{stderr}"
    );

    let out = bench()
        .args([
            "--model",
            "/missing",
            "--dataset-name",
            "random",
            "--random-ids",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tokenizer.json in /missing"));
}

#[test]
fn dataset_gen_writes_the_upstream_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::from_std(crate::support::perfsanity_cmd())
        .args(["dataset", "gen", "--num-prompts", "5", "--input-len", "16"])
        .args([
            "--output-len",
            "4",
            "--range-ratio",
            "1",
            "--tokenizer",
            "builtin",
        ])
        .args(["--model-name", "deepseek-r1", "--output-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.path().join("deepseek-r1-16-4-5-ratio-1_for_serve.json");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        path.display().to_string()
    );
    assert_eq!(std::fs::read_to_string(path).unwrap().lines().count(), 5);
    let bad = Command::from_std(crate::support::perfsanity_cmd())
        .args(["dataset", "gen", "--num-prompts", "5", "--input-len", "16"])
        .args(["--output-len", "4", "--tokenizer", "/nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn localhost_reaches_an_ipv4_only_server() {
    let srv = quick_server(None);
    let out = bench()
        .args(PLAN_ARGS)
        .args([
            "--host",
            "localhost",
            "--port",
            &srv.addr.port().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Successful requests:                     8 "));
}
