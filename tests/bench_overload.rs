//! The client's overload check against the truth, on a two-rung ladder: a clean run and one
//! whose only client thread is stalled on purpose (`--inject-stall-ms`). For every run: a p99
//! ITL error against the scripted server's send times above 1 ms must be flagged, one below
//! 0.1 ms must not. Not a timing test: on a busy machine the clean run may be disturbed too,
//! and then its flag must still agree with its error; only the stalled run must be flagged.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use perfsanity::tools::bench::scripted_server::{Script, ScriptedServer};
use perfsanity::util::stats;
use serde_json::Value;

struct Rung {
    p99_err_ms: f64,
    /// Share of the server's own gaps under 0.1 ms: chunks it handed over together (a stalled
    /// server thread on a busy machine). They share a TCP segment, and the client counts them
    /// as merged like any other — it cannot tell the two apart.
    server_bunched: f64,
    limit: f64,
    flagged: bool,
    merged_share: f64,
    reasons: String,
}

fn rung(server: &ScriptedServer, dir: &Path, name: &str, extra: &[&str]) -> Rung {
    let _ = server.state.take_served();
    let file = format!("{name}.json");
    let out = Command::from_std(crate::support::cmd::bench_cmd())
        .args([
            "--dataset-name",
            "random",
            "--random-ids",
            "--no-test-input",
        ])
        .args(["--random-input-len", "8", "--random-output-len", "60"])
        .args(["--random-range-ratio", "0", "--ignore-eos"])
        .args([
            "--num-prompts",
            "16",
            "--max-concurrency",
            "8",
            "--threads",
            "1",
        ])
        .args([
            "--percentile-metrics",
            "itl",
            "--save-result",
            "--result-dir",
        ])
        .arg(dir)
        .args(["--result-filename", &file])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.addr.port().to_string(),
        ])
        .args(extra)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(&file)).unwrap()).unwrap();
    let gaps: Vec<f64> = server
        .state
        .take_served()
        .iter()
        .flat_map(|r| {
            r.chunk_sent
                .windows(2)
                .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
                .collect::<Vec<_>>()
        })
        .collect();
    let h = &j["perfsanity_client"]["client_health"];
    let bunched = gaps.iter().filter(|&&g| g < 0.1).count() as f64 / gaps.len().max(1) as f64;
    Rung {
        p99_err_ms: j["p99_itl_ms"].as_f64().unwrap() - stats::percentile(&gaps, 99.0),
        server_bunched: bunched,
        limit: h["merged_itl_limit_share"].as_f64().unwrap(),
        flagged: h["lag_over_budget"].as_bool().unwrap(),
        merged_share: h["merged_itl_share"].as_f64().unwrap(),
        reasons: h["lag_over_budget_reasons"].to_string(),
    }
}

fn assert_agrees_with_truth(name: &str, r: &Rung) {
    let what = format!(
        "{name}: p99 ITL error {:+.3} ms, merged {:.2} %, flagged {} {}",
        r.p99_err_ms,
        r.merged_share * 100.0,
        r.flagged,
        r.reasons
    );
    eprintln!("{what}");
    if r.p99_err_ms.abs() > 1.0 {
        assert!(r.flagged, "missed overload: {what}");
    }
    if r.p99_err_ms.abs() < 0.1 {
        if r.server_bunched > r.limit {
            eprintln!(
                "{name}: the server itself sent {:.2} % of its chunks together (a busy machine); \
                 the client counts those as merged too, so a flag here is not a false alarm",
                r.server_bunched * 100.0
            );
        } else {
            assert!(!r.flagged, "false alarm: {what}");
        }
    }
}

#[test]
fn the_overload_check_agrees_with_the_truth() {
    let server = ScriptedServer::start(
        Script {
            ttft: Duration::from_millis(10),
            gaps: vec![Duration::from_millis(10)],
            ..Script::default()
        },
        0,
        0,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clean = rung(&server, dir.path(), "clean", &[]);
    assert_agrees_with_truth("clean", &clean);
    // The client's one thread blocks 40 ms in every 160: chunks of every stream pile up and
    // come back in one read, 3–4 at a time.
    let stalled = rung(&server, dir.path(), "stalled", &["--inject-stall-ms", "40"]);
    assert_agrees_with_truth("stalled", &stalled);
    assert!(
        stalled.flagged,
        "the stalled run must be flagged: {}",
        stalled.reasons
    );
}
