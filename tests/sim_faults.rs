//! Every fault knob of `sim.faults.<ROLE>`, on workers and on the router, plus rejection of a
//! malformed `--sim-config`.

use std::time::{Duration, Instant};

use crate::sim_support::*;
use serde_json::json;

const ENGINE: &str =
    "max_batch_size: 8\nmax_num_tokens: 1024\nstream_interval: 1\ninternal_request_auth_key: k\n";

fn setup(sim: serde_json::Value) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sim = write_sim_config(dir.path(), &sim);
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    (dir, sim, engine)
}

fn complete(addr: &str) -> reqwest::blocking::Response {
    http()
        .post(format!("http://{addr}/v1/completions"))
        .json(&json!({"model": "m", "prompt": [1, 2], "max_tokens": 2}))
        .send()
        .unwrap()
}

#[test]
fn exit_at_start_exits_before_reporting() {
    let (dir, sim, engine) = setup(json!({"faults": {"CTX_0": {"exit_at_start": 3},
                                                     "DISAGG_SERVER": {"exit_at_start": 4}}}));
    let report = dir.path().join("hostnames/CTX_0.txt");
    let mut p = SimProcess::spawn(
        dir.path(),
        "CTX_0",
        &[
            "sim",
            "--role",
            "CTX_0",
            "--sim-config",
            sim.to_str().unwrap(),
            "trtllm-serve",
            "m",
            "--config",
            engine.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--report_addr",
            report.to_str().unwrap(),
        ],
        &[],
    );
    let status = p.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(!report.exists());
    assert!(p.log_text().contains("exit_at_start=3"));
    let config = write_server_config(dir.path(), &["127.0.0.1:9"], &["127.0.0.1:9"], "k");
    let mut r = SimProcess::spawn(
        dir.path(),
        "DISAGG_SERVER",
        &[
            "sim",
            "--role",
            "DISAGG_SERVER",
            "--sim-config",
            sim.to_str().unwrap(),
            "trtllm-serve",
            "disaggregated",
            "-c",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        r.wait_timeout(Duration::from_secs(10)).unwrap().code(),
        Some(4)
    );
}

#[test]
fn exit_after_requests_crashes_after_the_nth_request() {
    let (dir, sim, engine) = setup(json!({"latency": {"load_delay_ms": 50},
                                          "faults": {"GEN_0": {"exit_after_requests": 2}}}));
    let mut w = start_worker(dir.path(), "GEN_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    assert_eq!(complete(&w.addr).status(), 200);
    assert!(w.process.try_wait().is_none());
    let r = post_sse(
        &http(),
        &w.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": [1], "max_tokens": 3, "stream": true}),
    );
    assert!(r.done(), "the 2nd request is answered in full: {}", r.raw);
    let status = w.process.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(w.process.log_text().contains("exit_after_requests=2"));
}

#[test]
fn never_ready_keeps_health_at_503() {
    let (dir, sim, engine) = setup(json!({"latency": {"load_delay_ms": 50},
                                          "faults": {"GEN_0": {"never_ready": true},
                                                     "DISAGG_SERVER": {"never_ready": true}}}));
    let mut w = start_worker(dir.path(), "GEN_0", "m", &engine, Some(&sim), &[]);
    let mut ctx = start_worker(dir.path(), "CTX_0", "m", &engine, Some(&sim), &[]);
    ctx.process.wait_healthy(&ctx.addr, Duration::from_secs(20));
    // The moment the worker would have become ready: its model is loaded.
    w.process
        .wait_log("fault injection: never_ready", Duration::from_secs(20));
    let client = http();
    let health = client
        .get(format!("http://{}/health", w.addr))
        .send()
        .unwrap();
    assert_eq!(health.status(), 503);
    let info: serde_json::Value = client
        .get(format!("http://{}/server_info", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["ready"], false);
    assert!(w.process.log_text().contains("never_ready"));

    // The router is itself never ready, even with healthy workers behind it.
    let mut healthy_gen = start_worker(dir.path(), "GEN_1", "m", &engine, Some(&sim), &[]);
    healthy_gen
        .process
        .wait_healthy(&healthy_gen.addr, Duration::from_secs(20));
    let config = write_server_config(dir.path(), &[&ctx.addr], &[&healthy_gen.addr], "k");
    let mut router = start_router(dir.path(), &config, Some(&sim), &[]);
    // The moment the router would have become ready: it has seen every worker healthy.
    router
        .process
        .wait_log("[sim] all servers are ready", Duration::from_secs(20));
    let health = client
        .get(format!("http://{}/health", router.addr))
        .send()
        .unwrap();
    assert_eq!(health.status(), 503);
}

#[test]
fn stall_after_tokens_freezes_the_stream_but_not_the_process() {
    let (dir, sim, engine) = setup(json!({"latency": {"load_delay_ms": 50, "step_base_ms": 2},
                                          "faults": {"AGGR_0": {"stall_after_tokens": 5}}}));
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = post_sse(
        &client,
        &w.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": [1], "max_tokens": 50, "stream": true}),
    );
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(!r.done(), "{}", r.raw);
    assert!(r.error.is_some(), "the client timed out waiting");
    assert_eq!(r.text().split_whitespace().count(), 5, "{}", r.raw);
    assert!(w.process.try_wait().is_none());
    let health = http()
        .get(format!("http://{}/health", w.addr))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200, "a hung engine still answers /health");
    assert!(w.process.log_text().contains("stall_after_tokens=5"));
}

#[test]
fn http_500_every_fails_every_nth_request_on_workers_and_router() {
    let (dir, sim, engine) = setup(json!({"latency": {"load_delay_ms": 50},
                                          "faults": {"GEN_0": {"http_500_every": 2},
                                                     "DISAGG_SERVER": {"http_500_every": 3}}}));
    let mut w = start_worker(dir.path(), "GEN_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let codes: Vec<u16> = (0..4)
        .map(|_| complete(&w.addr).status().as_u16())
        .collect();
    assert_eq!(codes, vec![200, 500, 200, 500]);
    let body: serde_json::Value = complete(&w.addr).json().unwrap();
    assert_eq!(body["object"], "text_completion", "5th is fine: {body}");
    let err: serde_json::Value = complete(&w.addr).json().unwrap();
    assert_eq!(err["code"], 500);
    assert!(err["message"].as_str().unwrap().contains("http_500_every"));

    let mut ctx = start_worker(dir.path(), "CTX_0", "m", &engine, Some(&sim), &[]);
    let mut gen1 = start_worker(dir.path(), "GEN_1", "m", &engine, Some(&sim), &[]);
    ctx.process.wait_healthy(&ctx.addr, Duration::from_secs(20));
    gen1.process
        .wait_healthy(&gen1.addr, Duration::from_secs(20));
    let config = write_server_config(dir.path(), &[&ctx.addr], &[&gen1.addr], "k");
    let mut router = start_router(dir.path(), &config, Some(&sim), &[]);
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    let codes: Vec<u16> = (0..3)
        .map(|_| complete(&router.addr).status().as_u16())
        .collect();
    assert_eq!(codes, vec![200, 200, 500]);
}

#[test]
fn router_exit_after_requests() {
    let (dir, sim, engine) = setup(json!({"latency": {"load_delay_ms": 50},
                                          "faults": {"DISAGG_SERVER": {"exit_after_requests": 1}}}));
    let mut ctx = start_worker(dir.path(), "CTX_0", "m", &engine, Some(&sim), &[]);
    let mut gen0 = start_worker(dir.path(), "GEN_0", "m", &engine, Some(&sim), &[]);
    ctx.process.wait_healthy(&ctx.addr, Duration::from_secs(20));
    gen0.process
        .wait_healthy(&gen0.addr, Duration::from_secs(20));
    let config = write_server_config(dir.path(), &[&ctx.addr], &[&gen0.addr], "k");
    let mut router = start_router(dir.path(), &config, Some(&sim), &[]);
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    assert_eq!(complete(&router.addr).status(), 200);
    let status = router.process.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn malformed_sim_config_is_rejected_with_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sim: &str| {
        let path = dir.path().join("sim-config.json");
        std::fs::write(&path, sim).unwrap();
        let out = crate::support::clean_cmd(bin())
            .args([
                "sim",
                "--role",
                "GEN_0",
                "--sim-config",
                path.to_str().unwrap(),
                "trtllm-serve",
                "m",
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(r#"{"latency": {"step_bas_ms": 1}}"#);
    assert_eq!(code, Some(2));
    assert!(err.contains("sim.latency.step_bas_ms"), "{err}");
    let (code, err) = run(r#"{"faults": {"GEN_0": {"http_500_every": "often"}}}"#);
    assert_eq!(code, Some(2));
    assert!(err.contains("sim.faults.GEN_0.http_500_every"), "{err}");
    let (code, err) = run("{not json");
    assert_eq!(code, Some(2));
    assert!(err.contains("not valid JSON"), "{err}");
}
