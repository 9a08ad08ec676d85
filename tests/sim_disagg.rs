//! The disaggregated graph: context + generation workers behind the simulated router, each a
//! real process talking HTTP. Two-step requests, round robin, authentication between router and
//! workers, gen_only benchmark mode, the `TLLM_BENCHMARK_REQ_QUEUES_SIZE` gate, and a worker
//! that dies mid-stream.

use std::time::{Duration, Instant};

use crate::sim_support::*;
use serde_json::json;

const CTX_ENGINE: &str = "internal_request_auth_key: k1\nprint_iter_log: true\nmax_batch_size: 4\n\
                          max_num_tokens: 4096\ncache_transceiver_config:\n  backend: DEFAULT\n\
                          disable_overlap_scheduler: true\n";
const GEN_ENGINE: &str = "internal_request_auth_key: k1\nprint_iter_log: true\nmax_batch_size: 16\n\
                          max_num_tokens: 4096\nstream_interval: 2\ncache_transceiver_config:\n  \
                          backend: DEFAULT\n";

struct Graph {
    _dir: tempfile::TempDir,
    ctx: Vec<Worker>,
    gens: Vec<Worker>,
    router: Worker,
}

fn graph(
    num_ctx: usize,
    num_gen: usize,
    sim: serde_json::Value,
    router_env: &[(&str, &str)],
) -> Graph {
    graph_with(num_ctx, num_gen, sim, router_env, &[], "k1")
}

fn graph_with(
    num_ctx: usize,
    num_gen: usize,
    sim: serde_json::Value,
    router_env: &[(&str, &str)],
    gen_env: &[(&str, &str)],
    router_key: &str,
) -> Graph {
    let dir = tempfile::tempdir().unwrap();
    let sim = write_sim_config(dir.path(), &sim);
    let ctx_engine = write_engine_config(dir.path(), "ctx.yml", CTX_ENGINE);
    let gen_engine = write_engine_config(dir.path(), "gen.yml", GEN_ENGINE);
    let ctx: Vec<Worker> = (0..num_ctx)
        .map(|i| {
            start_worker(
                dir.path(),
                &format!("CTX_{i}"),
                "m",
                &ctx_engine,
                Some(&sim),
                &[],
            )
        })
        .collect();
    let gens: Vec<Worker> = (0..num_gen)
        .map(|i| {
            start_worker(
                dir.path(),
                &format!("GEN_{i}"),
                "m",
                &gen_engine,
                Some(&sim),
                gen_env,
            )
        })
        .collect();
    let ctx_urls: Vec<&str> = ctx.iter().map(|w| w.addr.as_str()).collect();
    let gen_urls: Vec<&str> = gens.iter().map(|w| w.addr.as_str()).collect();
    let config = write_server_config(dir.path(), &ctx_urls, &gen_urls, router_key);
    let mut router = start_router(dir.path(), &config, Some(&sim), router_env);
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    Graph {
        _dir: dir,
        ctx,
        gens,
        router,
    }
}

fn fast() -> serde_json::Value {
    json!({"latency": {"load_delay_ms": 100, "step_base_ms": 2.0}})
}

fn metrics_tokens(w: &Worker) -> u64 {
    let m: serde_json::Value = http()
        .get(format!("http://{}/metrics", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    m[0]["numGeneratedTokens"].as_u64().unwrap()
}

#[test]
fn router_health_waits_for_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let slow = write_sim_config(dir.path(), &json!({"latency": {"load_delay_ms": 1500}}));
    let ctx_engine = write_engine_config(dir.path(), "ctx.yml", CTX_ENGINE);
    let gen_engine = write_engine_config(dir.path(), "gen.yml", GEN_ENGINE);
    let mut ctx = start_worker(dir.path(), "CTX_0", "m", &ctx_engine, None, &[]);
    let mut genw = start_worker(dir.path(), "GEN_0", "m", &gen_engine, Some(&slow), &[]);
    let config = write_server_config(dir.path(), &[&ctx.addr], &[&genw.addr], "k1");
    let router = start_router(dir.path(), &config, None, &[]);
    ctx.process.wait_healthy(&ctx.addr, Duration::from_secs(20));
    let client = http();
    let status = client
        .get(format!("http://{}/health", router.addr))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 503, "the generation worker is still loading");
    genw.process
        .wait_healthy(&genw.addr, Duration::from_secs(20));
    let mut router = router;
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
}

#[test]
fn two_step_requests_stream_through_the_router() {
    let g = graph(1, 1, fast(), &[]);
    let client = http();
    let body = json!({"model": "m", "prompt": "a b c d e f g h", "max_tokens": 9, "stream": true,
                      "stream_options": {"include_usage": true}, "ignore_eos": true});
    let r = post_sse(&client, &g.router.addr, "/v1/completions", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.done(), "{}", r.raw);
    assert_eq!(r.text().split_whitespace().count(), 9, "{}", r.raw);
    let events = r.json_events();
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 8);
    assert_eq!(usage["completion_tokens"], 9);
    // The first token was computed by the context worker, the rest by the generation worker.
    assert_eq!(metrics_tokens(&g.ctx[0]), 1);
    assert_eq!(metrics_tokens(&g.gens[0]), 9);
    let ctx_log = g.ctx[0].process.log_text();
    assert!(ctx_log.contains("'num_ctx_tokens': 8"), "{ctx_log}");

    let chat = post_sse(
        &client,
        &g.router.addr,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "user", "content": "one two three"}],
                "max_tokens": 4, "stream": true}),
    );
    assert!(chat.done(), "{}", chat.raw);
    assert_eq!(
        chat.json_events()[0]["choices"][0]["delta"]["role"],
        "assistant"
    );
    assert_eq!(chat.text().split_whitespace().count(), 4);

    let full: serde_json::Value = client
        .post(format!("http://{}/v1/completions", g.router.addr))
        .json(&json!({"model": "m", "prompt": [5, 6, 7], "max_tokens": 3}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["usage"]["completion_tokens"], 3);
    assert_eq!(full["usage"]["prompt_tokens"], 3);
    assert_eq!(
        full["choices"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        3
    );
}

#[test]
fn round_robin_across_workers() {
    let g = graph(2, 2, fast(), &[]);
    let client = http();
    for _ in 0..4 {
        let r = client
            .post(format!("http://{}/v1/completions", g.router.addr))
            .json(&json!({"model": "m", "prompt": [1, 2], "max_tokens": 5}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for w in &g.ctx {
        assert_eq!(metrics_tokens(w), 2, "each context worker got 2 requests");
    }
    for w in &g.gens {
        assert_eq!(
            metrics_tokens(w),
            10,
            "each generation worker got 2 requests"
        );
    }
}

#[test]
fn mismatched_auth_keys_fail_like_upstream() {
    let g = graph_with(1, 1, fast(), &[], &[], "not-the-workers-key");
    let r = http()
        .post(format!("http://{}/v1/completions", g.router.addr))
        .json(&json!({"model": "m", "prompt": [1, 2], "max_tokens": 3}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Invalid internal disaggregated request authentication"),
        "{body}"
    );
}

#[test]
fn gen_only_benchmark_mode_skips_context_servers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = write_sim_config(dir.path(), &fast());
    let gen_engine = write_engine_config(dir.path(), "gen.yml", GEN_ENGINE);
    let mut genw = start_worker(dir.path(), "GEN_0", "m", &gen_engine, Some(&sim), &[]);
    // A context URL nobody listens on: in gen_only mode the router must not need it.
    let config = write_server_config(dir.path(), &["127.0.0.1:9"], &[&genw.addr], "k1");
    let mut router = start_router(
        dir.path(),
        &config,
        Some(&sim),
        &[("TRTLLM_DISAGG_BENCHMARK_GEN_ONLY", "1")],
    );
    genw.process
        .wait_healthy(&genw.addr, Duration::from_secs(20));
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    let r = post_sse(
        &http(),
        &router.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": [1, 2, 3, 4], "max_tokens": 6, "stream": true,
                "stream_options": {"include_usage": true}}),
    );
    assert!(r.done(), "{}", r.raw);
    let events = r.json_events();
    // Upstream hard-codes first_gen_tokens = [7]: the first streamed token is t7.
    assert_eq!(events[0]["choices"][0]["text"], " t7");
    assert_eq!(events.last().unwrap()["usage"]["completion_tokens"], 6);
    assert!(
        router
            .process
            .log_text()
            .contains("context servers skipped")
    );
}

#[test]
fn req_queues_size_gate_holds_decoding_until_the_batch_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let sim = write_sim_config(
        dir.path(),
        &json!({"latency": {"load_delay_ms": 50, "step_base_ms": 2.0, "req_queue_poll_ms": 50}}),
    );
    let gen_engine = write_engine_config(dir.path(), "gen.yml", GEN_ENGINE);
    let mut genw = start_worker(
        dir.path(),
        "GEN_0",
        "m",
        &gen_engine,
        Some(&sim),
        &[("TLLM_BENCHMARK_REQ_QUEUES_SIZE", "3")],
    );
    let config = write_server_config(dir.path(), &["127.0.0.1:9"], &[&genw.addr], "k1");
    let mut router = start_router(
        dir.path(),
        &config,
        Some(&sim),
        &[("TRTLLM_DISAGG_BENCHMARK_GEN_ONLY", "1")],
    );
    genw.process
        .wait_healthy(&genw.addr, Duration::from_secs(20));
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    let addr = router.addr.clone();
    let send = move |delay_ms: u64| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay_ms));
            let r = post_sse(
                &http(),
                &addr,
                "/v1/completions",
                &json!({"model": "m", "prompt": [1, 2], "max_tokens": 4, "stream": true}),
            );
            (Instant::now(), r)
        })
    };
    let started = Instant::now();
    let handles: Vec<_> = [0, 0, 400].into_iter().map(send).collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (_, r) in &results {
        assert!(r.done(), "{}", r.raw);
    }
    // Nothing could finish before the third request arrived (~400 ms).
    for (first_event, r) in results.iter().map(|(_, r)| (r.events[0].at, r)) {
        assert!(
            first_event.duration_since(started) >= Duration::from_millis(380),
            "{:?} {}",
            first_event.duration_since(started),
            r.raw
        );
    }
    let log = genw.process.log_text();
    assert!(log.contains("scheduled_gen_batch: 2"), "{log}");
    assert!(
        log.contains("num_scheduled_requests = 3,") && log.contains("'num_generation_tokens': 3}"),
        "the first forward pass runs the full batch: {log}"
    );
}

#[test]
fn a_worker_dying_mid_stream_becomes_a_clean_error() {
    let sim = json!({"latency": {"load_delay_ms": 100, "step_base_ms": 2.0},
                     "faults": {"GEN_0": {"exit_after_requests": 1}}});
    let mut g = graph(1, 1, sim, &[]);
    let addr = g.router.addr.clone();
    let (streaming, in_flight) = std::sync::mpsc::channel();
    let long = std::thread::spawn(move || {
        let started = Instant::now();
        let r = post_sse_notify(
            &http(),
            &addr,
            "/v1/completions",
            &json!({"model": "m", "prompt": [1], "max_tokens": 3000, "stream": true}),
            move || streaming.send(()).unwrap(),
        );
        (started.elapsed(), r)
    });
    in_flight
        .recv_timeout(Duration::from_secs(10))
        .expect("the long stream started");
    let short = post_sse(
        &http(),
        &g.router.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": [1], "max_tokens": 2, "stream": true}),
    );
    assert!(
        short.done(),
        "the request that triggers the crash completes: {}",
        short.raw
    );
    let (elapsed, r) = long.join().unwrap();
    assert!(elapsed < Duration::from_secs(5), "not hung: {elapsed:?}");
    assert_eq!(r.status, 200);
    assert!(!r.done());
    assert!(r.error.is_some(), "the body is aborted: {}", r.raw);
    let last = r.events.last().unwrap().json();
    assert_eq!(last["object"], "error");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("failed mid-stream"),
        "{last}"
    );
    let status = g.gens[0]
        .process
        .wait_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(status.code(), Some(1));
    // Later requests fail fast with a JSON error instead of hanging.
    let after = http()
        .post(format!("http://{}/v1/completions", g.router.addr))
        .json(&json!({"model": "m", "prompt": [1], "max_tokens": 2}))
        .send()
        .unwrap();
    assert_eq!(after.status(), 502);
    let body: serde_json::Value = after.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("generation server"),
        "{body}"
    );
    let health = http()
        .get(format!("http://{}/health", g.router.addr))
        .send()
        .unwrap();
    assert_eq!(health.status(), 503);
}
