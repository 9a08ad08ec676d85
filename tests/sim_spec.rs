//! Speculative decoding in the simulated workers, driven over HTTP as separate processes:
//! `speculative_config` (`max_draft_len` and the legacy `num_nextn_predict_layers`),
//! `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS`, the seeded acceptance model, the
//! `avg_decoded_tokens_per_iter` field on every completions/chat choice (streamed or not, also
//! through the disaggregated router), the iteration log, and start-up errors.

use std::time::Duration;

use crate::sim_support::*;
use regex::Regex;
use serde_json::{Value, json};

const FORCE: &str = "TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS";

fn fast_sim(dir: &std::path::Path) -> std::path::PathBuf {
    write_sim_config(
        dir,
        &json!({"latency": {"load_delay_ms": 50, "step_base_ms": 1.0}}),
    )
}

/// What TensorRT-LLM reports: a C++ float quotient, printed by Python as a double.
fn upstream_avg(tokens: u64, iterations: u64) -> f64 {
    f64::from(tokens as f32 / iterations as f32)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn avg_of(choice: &Value) -> f64 {
    choice["avg_decoded_tokens_per_iter"]
        .as_f64()
        .unwrap_or_else(|| panic!("no average in {choice}"))
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn worker(
    dir: &std::path::Path,
    role: &str,
    engine_yaml: &str,
    sim: &std::path::Path,
    envs: &[(&str, &str)],
) -> Worker {
    let engine = write_engine_config(dir, &format!("{role}.yml"), engine_yaml);
    let mut w = start_worker(dir, role, "m", &engine, Some(sim), envs);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    w
}

#[test]
fn forced_acceptance_with_max_draft_len_streams_exact_averages() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fast_sim(dir.path());
    let engine = "print_iter_log: true\nstream_interval: 4\nmax_batch_size: 8\n\
                  speculative_config:\n  decoding_type: Eagle3\n  max_draft_len: 3\n  \
                  speculative_model: some/eagle3-head\n";
    let w = worker(dir.path(), "AGGR_0", engine, &sim, &[(FORCE, "2")]);
    let client = http();
    // 1 token from the prefill iteration, then 10 steps of 1 + 2 accepted = 31 tokens in 11
    // decoding iterations.
    let r = post_sse(
        &client,
        &w.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": [1, 2, 3, 4], "max_tokens": 31, "stream": true,
                "stream_options": {"include_usage": true}}),
    );
    assert!(r.done(), "{}", r.raw);
    let events = r.json_events();
    let (usage, chunks) = events.split_last().unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 31);
    let mut so_far = 0;
    let mut ends = Vec::new();
    for e in chunks {
        let choice = &e["choices"][0];
        so_far += words(choice["text"].as_str().unwrap());
        ends.push(so_far);
        let iterations = 1 + (so_far - 1) / 3;
        assert!(
            close(avg_of(choice), upstream_avg(so_far, iterations)),
            "after {so_far} tokens: {choice}"
        );
    }
    // stream_interval 4 counts tokens: a chunk whenever 4, 8, 12, … is reached or passed.
    assert_eq!(ends, vec![1, 4, 10, 13, 16, 22, 25, 28, 31], "{}", r.raw);
    assert!(
        r.raw.contains(&format!(
            "\"avg_decoded_tokens_per_iter\":{}}}",
            upstream_avg(31, 11)
        )),
        "{}",
        r.raw
    );

    // The iteration log: one prefill iteration, then 10 whose batch holds 1 + 3 draft tokens.
    // (The last line is printed just after the last chunk is handed over: poll for it.)
    let ngen = Regex::new(r"'num_generation_tokens':\s*(\d+)").unwrap();
    let busy_lines = |log: &str| -> Vec<u64> {
        log.lines()
            .filter(|l| {
                l.contains("prev_device_step_time") && !l.contains("num_scheduled_requests = 0")
            })
            .map(|l| ngen.captures(l).unwrap()[1].parse().unwrap())
            .collect()
    };
    crate::support::wait_until(Duration::from_secs(5), || {
        (busy_lines(&w.process.log_text()).len() >= 11).then_some(())
    });
    let log = w.process.log_text();
    assert_eq!(busy_lines(&log), [vec![0], vec![4; 10]].concat(), "{log}");
    assert!(
        log.contains("speculative decoding Eagle3: 3 draft tokens per step"),
        "{log}"
    );

    // Non-streaming: the final average.
    let full: Value = client
        .post(format!("http://{}/v1/completions", w.addr))
        .json(&json!({"model": "m", "prompt": "a b", "max_tokens": 10}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["usage"]["completion_tokens"], 10);
    assert!(
        close(avg_of(&full["choices"][0]), upstream_avg(10, 4)),
        "{full}"
    );
}

#[test]
fn legacy_mtp_depth_and_chat_with_acceptance_capped_at_the_draft_length() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fast_sim(dir.path());
    let engine = "stream_interval: 1\nspeculative_config:\n  decoding_type: MTP\n  \
                  num_nextn_predict_layers: 2\n";
    // 5.0 is parsed as a float and truncated; it exceeds the depth, so 2 are accepted.
    let w = worker(dir.path(), "AGGR_0", engine, &sim, &[(FORCE, "5.0")]);
    let client = http();
    let r = post_sse(
        &client,
        &w.addr,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "user", "content": "x y z"}],
                "max_completion_tokens": 13, "stream": true}),
    );
    assert!(r.done(), "{}", r.raw);
    let events = r.json_events();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        events[0]["choices"][0]
            .get("avg_decoded_tokens_per_iter")
            .is_none(),
        "the role chunk carries no average, as upstream"
    );
    let mut so_far = 0;
    let mut per_chunk = Vec::new();
    for e in &events[1..] {
        let choice = &e["choices"][0];
        let n = words(choice["delta"]["content"].as_str().unwrap());
        so_far += n;
        per_chunk.push(n);
        assert!(
            close(avg_of(choice), upstream_avg(so_far, 1 + (so_far - 1) / 3)),
            "{choice}"
        );
    }
    assert_eq!(per_chunk, vec![1, 3, 3, 3, 3], "1 + 2 accepted per step");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );

    let full: Value = client
        .post(format!("http://{}/v1/chat/completions", w.addr))
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 7}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["usage"]["completion_tokens"], 7);
    assert!(
        close(avg_of(&full["choices"][0]), upstream_avg(7, 3)),
        "{full}"
    );
    let log = w.process.log_text();
    assert!(log.contains("capped at the draft length"), "{log}");
}

/// Averages of three sequential non-streaming requests on a fresh worker (in its own
/// directory, so it reports its own address).
fn sampled_averages(role: &str, seed: u64) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let sim = write_sim_config(
        dir,
        &json!({"latency": {"load_delay_ms": 50, "step_base_ms": 0.5, "seed": seed,
                            "spec_acceptance_rate": 0.6}}),
    );
    let engine = "speculative_config: {decoding_type: MTP, max_draft_len: 3}\n";
    let w = worker(dir, role, engine, &sim, &[]);
    let client = http();
    (0..3)
        .map(|_| {
            let full: Value = client
                .post(format!("http://{}/v1/completions", w.addr))
                .json(&json!({"model": "m", "prompt": [1, 2], "max_tokens": 64}))
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert_eq!(full["usage"]["completion_tokens"], 64);
            avg_of(&full["choices"][0])
        })
        .collect()
}

#[test]
fn seeded_acceptance_is_reproducible_and_within_bounds() {
    let first = sampled_averages("AGGR_0", 11);
    let again = sampled_averages("AGGR_0", 11);
    assert_eq!(first, again, "same seed, role and request order");
    for avg in &first {
        // Between 1 (nothing accepted) and 1 + k, and here well inside: the chain mean with
        // p = 0.6, k = 3 is 1 + 0.6 + 0.36 + 0.216 ≈ 2.18 tokens per step.
        assert!((1.0..=4.0).contains(avg), "{first:?}");
        assert!(*avg > 1.3 && *avg < 3.2, "{first:?}");
    }
    assert_ne!(
        first,
        sampled_averages("AGGR_0", 12),
        "another seed, other draws"
    );
}

#[test]
fn without_speculation_the_field_stays_null() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fast_sim(dir.path());
    // No speculative_config (the force variable alone changes nothing), and a draft length of 0.
    for (role, engine) in [
        ("AGGR_0", "stream_interval: 2\n"),
        (
            "AGGR_1",
            "stream_interval: 2\nspeculative_config: {decoding_type: Eagle3}\n",
        ),
    ] {
        let w = worker(dir.path(), role, engine, &sim, &[(FORCE, "3")]);
        let client = http();
        let r = post_sse(
            &client,
            &w.addr,
            "/v1/completions",
            &json!({"model": "m", "prompt": "a", "max_tokens": 5, "stream": true}),
        );
        assert!(r.done());
        let events = r.json_events();
        assert_eq!(
            events.len(),
            4,
            "1 + 1 + 2 + 1 tokens, one per step: {}",
            r.raw
        );
        for e in &events {
            let choice = &e["choices"][0];
            assert!(
                choice
                    .as_object()
                    .unwrap()
                    .contains_key("avg_decoded_tokens_per_iter")
            );
            assert!(choice["avg_decoded_tokens_per_iter"].is_null(), "{}", r.raw);
        }
        let chat = post_sse(
            &client,
            &w.addr,
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": "a"}],
                    "max_tokens": 3, "stream": true}),
        );
        assert!(chat.done());
        assert!(
            !chat.raw.contains("avg_decoded_tokens_per_iter"),
            "{}",
            chat.raw
        );
        let full: Value = client
            .post(format!("http://{}/v1/completions", w.addr))
            .json(&json!({"model": "m", "prompt": "a", "max_tokens": 3}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(full["choices"][0]["avg_decoded_tokens_per_iter"].is_null());
        let log = w.process.log_text();
        assert!(!log.contains("draft tokens per step"), "{log}");
    }
}

#[test]
fn disaggregated_requests_keep_the_average_through_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fast_sim(dir.path());
    let engine = "internal_request_auth_key: k1\nprint_iter_log: true\nstream_interval: 1\n\
                  cache_transceiver_config:\n  backend: DEFAULT\n\
                  speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: 3\n";
    let ctx = worker(dir.path(), "CTX_0", engine, &sim, &[(FORCE, "3")]);
    let genw = worker(dir.path(), "GEN_0", engine, &sim, &[(FORCE, "3")]);
    let client = http();

    // The context worker returns the drafts its MTP layers proposed after the first token.
    let ctx_only: Value = client
        .post(format!("http://{}/v1/completions", ctx.addr))
        .json(&json!({"model": "m", "prompt": [1, 2, 3], "max_tokens": 8,
                      "disaggregated_params": {"request_type": "context_only",
                                               "disagg_request_id": 5}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let choice = &ctx_only["choices"][0];
    assert_eq!(
        choice["disaggregated_params"]["draft_tokens"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{ctx_only}"
    );
    assert_eq!(avg_of(choice), 1.0);

    let config = write_server_config(dir.path(), &[&ctx.addr], &[&genw.addr], "k1");
    let mut router = start_router(dir.path(), &config, Some(&sim), &[]);
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    // The generation worker's first step verifies the context worker's 3 drafts, so every step
    // yields 4 tokens: 1 + 4 × 4 = 17 tokens in 5 iterations.
    let r = post_sse(
        &client,
        &router.addr,
        "/v1/completions",
        &json!({"model": "m", "prompt": "a b c d", "max_tokens": 17, "stream": true,
                "stream_options": {"include_usage": true}}),
    );
    assert!(r.done(), "{}", r.raw);
    let events = r.json_events();
    let (usage, chunks) = events.split_last().unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 17);
    let mut so_far = 0;
    for e in chunks {
        let choice = &e["choices"][0];
        so_far += words(choice["text"].as_str().unwrap());
        assert!(
            close(avg_of(choice), upstream_avg(so_far, 1 + (so_far - 1) / 4)),
            "{choice}"
        );
    }
    assert_eq!(so_far, 17);
    assert_eq!(chunks.len(), 5, "{}", r.raw);

    let chat = post_sse(
        &client,
        &router.addr,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "user", "content": "one two"}],
                "max_tokens": 9, "stream": true}),
    );
    assert!(chat.done(), "{}", chat.raw);
    let chat_events = chat.json_events();
    let last = &chat_events.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], "length");
    assert!(close(avg_of(last), upstream_avg(9, 3)), "{}", chat.raw);

    let full: Value = client
        .post(format!("http://{}/v1/completions", router.addr))
        .json(&json!({"model": "m", "prompt": [5, 6, 7], "max_tokens": 9}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["usage"]["completion_tokens"], 9);
    assert!(
        close(avg_of(&full["choices"][0]), upstream_avg(9, 3)),
        "{full}"
    );
}

#[test]
fn bad_speculation_settings_stop_the_worker_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let run = |engine_yaml: &str, force: &str| {
        let engine = write_engine_config(dir.path(), "engine.yml", engine_yaml);
        let report = dir.path().join("addr.txt");
        let out = crate::support::clean_cmd(bin())
            .args(["sim", "trtllm-serve", "m", "--config"])
            .arg(&engine)
            .args(["--host", "127.0.0.1", "--port", "0", "--report_addr"])
            .arg(&report)
            .env(FORCE, force)
            .output()
            .unwrap();
        assert!(!report.exists());
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let spec = "speculative_config: {decoding_type: MTP, max_draft_len: 3}\n";
    let (code, stderr) = run(spec, "three");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(FORCE) && stderr.contains("three"),
        "{stderr}"
    );
    let (code, stderr) = run(spec, "-1");
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = run(
        "speculative_config: {decoding_type: MTP, max_draft_len: x}\n",
        "",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("engine.yml") && stderr.contains("speculative_config.max_draft_len"),
        "{stderr}"
    );
    let (code, stderr) = run("speculative_config: {max_draft_len: 3}\n", "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("speculative_config.decoding_type"),
        "{stderr}"
    );
}
