//! The simulated worker as an aggregated server (prefill and decode in one engine), driven over
//! HTTP as a separate process with plain OpenAI completions requests: chunked prefill within the
//! `max_num_tokens` budget, the `max_batch_size` limit, attention-DP ranks stepping together, and
//! the iteration log that shows it.

use std::time::Duration;

use crate::sim_support::*;
use regex::Regex;
use serde_json::json;

/// An upstream-shaped aggregated engine config (keys as in
/// `perf-sanity/aggregated/*.yaml`), scaled down: DEP4, 8 requests and 256 tokens per rank.
const ENGINE_DEP4: &str = r#"tensor_parallel_size: 4
moe_expert_parallel_size: 4
pipeline_parallel_size: 1
max_batch_size: 8
max_num_tokens: 256
attn_backend: TRTLLM
enable_attention_dp: true
attention_dp_config:
  batching_wait_iters: 0
  enable_balance: true
  timeout_iters: 60
moe_config:
  backend: CUTLASS
cuda_graph_config:
  enable_padding: true
  max_batch_size: 8
kv_cache_config:
  dtype: fp8
  enable_block_reuse: false
  free_gpu_memory_fraction: 0.8
enable_chunked_prefill: true
stream_interval: 4
print_iter_log: true
"#;

const PROMPT: usize = 300;
const OUTPUT: u64 = 100;
const REQUESTS: usize = 64;

struct Line {
    scheduled: u64,
    ctx_requests: u64,
    ctx_tokens: u64,
    gen_tokens: u64,
    prev_device_ms: Option<f64>,
}

fn iteration_lines(log: &str) -> Vec<Line> {
    let re = Regex::new(
        r"num_scheduled_requests = (\d+),.*prev_device_step_time = (N/A|[\d.]+)(?:ms)?.*'num_ctx_requests': (\d+), 'num_ctx_tokens': (\d+), 'num_generation_tokens': (\d+)",
    )
    .unwrap();
    log.lines()
        .filter_map(|l| re.captures(l))
        .map(|c| Line {
            scheduled: c[1].parse().unwrap(),
            prev_device_ms: c[2].parse().ok(),
            ctx_requests: c[3].parse().unwrap(),
            ctx_tokens: c[4].parse().unwrap(),
            gen_tokens: c[5].parse().unwrap(),
        })
        .collect()
}

#[test]
fn aggregated_worker_chunks_prefill_within_budget_and_batch_limits_per_rank() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "extra-llm-api-config.aggr.0.yml", ENGINE_DEP4);
    // 5 ms per iteration + 4 µs per context token + 8 µs per generation request: each request
    // lives for 102+ iterations (0.5 s), so all 64 are in the engine together.
    let sim = write_sim_config(
        dir.path(),
        &json!({"latency": {"load_delay_ms": 50, "step_base_ms": 5.0}}),
    );
    let mut w = start_worker(dir.path(), "AGGR_0", "some-model", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let info: serde_json::Value = http()
        .get(format!("http://{}/server_info", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["engine_config"]["enable_attention_dp"], true);
    assert_eq!(info["engine_config"]["tensor_parallel_size"], 4);

    let addr = w.addr.clone();
    let handles: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let prompt: Vec<u64> = (0..PROMPT as u64)
                    .map(|t| 100 + (t + i as u64) % 500)
                    .collect();
                post_sse(
                    &http(),
                    &addr,
                    "/v1/completions",
                    &json!({"model": "some-model", "prompt": prompt, "max_tokens": OUTPUT,
                            "stream": true, "stream_options": {"include_usage": true}}),
                )
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.raw);
        assert!(r.done(), "{}", r.raw);
        let usage = r
            .json_events()
            .into_iter()
            .find_map(|e| e.get("usage").filter(|u| !u.is_null()).cloned())
            .expect("a usage chunk");
        assert_eq!(usage["prompt_tokens"], PROMPT as u64);
        assert_eq!(usage["completion_tokens"], OUTPUT);
        let finish: Vec<_> = r
            .json_events()
            .iter()
            .filter_map(|e| e["choices"][0]["finish_reason"].as_str().map(String::from))
            .collect();
        assert_eq!(finish, vec!["length".to_string()]);
    }

    let log = w.process.log_text();
    assert!(
        log.contains("attention DP: 4 ranks"),
        "start-up names the ranks: {log}"
    );
    let lines = iteration_lines(&log);
    assert!(!lines.is_empty(), "print_iter_log lines: {log}");
    let ranks = 4;
    for l in &lines {
        assert!(
            l.scheduled <= ranks * 8,
            "batch limit per rank: {}",
            l.scheduled
        );
        assert!(
            l.ctx_tokens + l.gen_tokens <= ranks * 256,
            "token budget per rank: {} + {}",
            l.ctx_tokens,
            l.gen_tokens
        );
        assert_eq!(l.scheduled, l.ctx_requests + l.gen_tokens);
    }
    let prefilled: u64 = lines.iter().map(|l| l.ctx_tokens).sum();
    assert_eq!(
        prefilled,
        (REQUESTS * PROMPT) as u64,
        "every prompt token prefilled once"
    );
    assert!(
        lines.iter().any(|l| l.scheduled == ranks * 8),
        "the batch fills all ranks"
    );
    assert!(
        lines.iter().any(|l| l.ctx_requests > 0 && l.gen_tokens > 0),
        "prefill chunks ride along with decodes"
    );
    assert!(
        lines.iter().any(|l| l.ctx_tokens > 256),
        "several ranks prefill in the same iteration"
    );
    // A 300-token prompt never fits one iteration (256 per rank): it is split into chunks.
    assert!(
        lines.iter().filter(|l| l.ctx_tokens > 0).count() >= 2 * (REQUESTS / 32),
        "chunked prefill"
    );
    // Ranks step together and the busiest one sets the pace: at most 256 context tokens and 8
    // requests per rank, so no step exceeds 5 + 256·0.004 + 8·0.008 ms even when the engine as
    // a whole prefills 1024 tokens.
    let busiest = 5.0 + 256.0 * 0.004 + 8.0 * 0.008;
    let device: Vec<f64> = lines
        .iter()
        .filter(|l| l.scheduled > 0)
        .filter_map(|l| l.prev_device_ms)
        .collect();
    let max = device.iter().cloned().fold(0.0, f64::max);
    assert!(
        max > 5.0 && max <= busiest + 1e-6,
        "slowest step {max} ms, bound {busiest} ms"
    );
}

#[test]
fn aggregated_prompt_over_budget_without_chunking_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(
        dir.path(),
        "engine.yml",
        "max_batch_size: 4\nmax_num_tokens: 64\nenable_chunked_prefill: false\n",
    );
    let sim = write_sim_config(dir.path(), &json!({"latency": {"load_delay_ms": 50}}));
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let prompt: Vec<u64> = (0..65).collect();
    let r = http()
        .post(format!("http://{}/v1/completions", w.addr))
        .json(&json!({"model": "m", "prompt": prompt, "max_tokens": 4}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("exceeds max_num_tokens (64)"),
        "{body}"
    );
    let fits: Vec<u64> = (0..64).collect();
    let r = http()
        .post(format!("http://{}/v1/completions", w.addr))
        .json(&json!({"model": "m", "prompt": fits, "max_tokens": 4}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 4);
}
