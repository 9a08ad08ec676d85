//! The simulated `trtllm-serve` worker, driven over HTTP as a separate process: address
//! reporting, readiness, streaming format, usage, token-id prompts, chat, errors, iteration log,
//! the real-tokenizer path, CLI errors and SIGTERM.

mod sim_support;

use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::json;
use sim_support::*;

const ENGINE: &str = "print_iter_log: true\nmax_batch_size: 8\nmax_num_tokens: 512\n\
                      stream_interval: 4\nkv_cache_config:\n  dtype: fp8\n";

fn fast_sim(dir: &std::path::Path) -> std::path::PathBuf {
    write_sim_config(
        dir,
        &json!({"latency": {"load_delay_ms": 300, "step_base_ms": 2.0}}),
    )
}

#[test]
fn report_addr_then_not_ready_then_ready() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = write_sim_config(dir.path(), &json!({"latency": {"load_delay_ms": 1500}}));
    let started = Instant::now();
    let mut w = start_worker(dir.path(), "CTX_0", "some-model", &engine, Some(&sim), &[]);
    let addr_file = dir.path().join("hostnames/CTX_0.txt");
    let text = std::fs::read_to_string(&addr_file).unwrap();
    assert!(
        text.starts_with("127.0.0.1:") && text.ends_with('\n'),
        "{text:?}"
    );
    assert!(!w.addr.ends_with(":0"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("hostnames"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");
    let client = http();
    let early = client
        .get(format!("http://{}/health", w.addr))
        .send()
        .unwrap();
    assert_eq!(early.status(), 503, "health before the load delay");
    let early_req = client
        .post(format!("http://{}/v1/completions", w.addr))
        .json(&json!({"model": "m", "prompt": "hi", "max_tokens": 1}))
        .send()
        .unwrap();
    assert_eq!(early_req.status(), 503);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let models: serde_json::Value = client
        .get(format!("http://{}/v1/models", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "some-model");
    let info: serde_json::Value = client
        .get(format!("http://{}/server_info", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["engine_config"]["max_batch_size"], 8);
    assert!(
        info["startup_metrics"]["model_loader"]["total_model_loading_seconds"]
            .as_f64()
            .unwrap()
            >= 1.4
    );
    let log = w.process.log_text();
    assert_eq!(
        log.matches("built-in synthetic tokenizer").count(),
        1,
        "synthetic fallback logged once: {log}"
    );
}

#[test]
fn streaming_completions_follow_stream_interval_and_report_usage() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = fast_sim(dir.path());
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let client = http();
    let body = json!({"model": "my-model", "prompt": [11, 12, 13, 14, 15], "max_tokens": 10,
                      "temperature": 0.0, "repetition_penalty": 1.0, "logprobs": null,
                      "stream": true, "stream_options": {"include_usage": true},
                      "ignore_eos": true});
    let r = post_sse(&client, &w.addr, "/v1/completions", &body);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/event-stream"),
        "{}",
        r.content_type
    );
    assert!(r.done(), "ends with [DONE]: {}", r.raw);
    assert!(r.error.is_none());
    let events = r.json_events();
    // stream_interval 4: tokens arrive after token 1, 4, 8 and at the end (10).
    let counts: Vec<usize> = events
        .iter()
        .filter(|e| !e["choices"].as_array().unwrap().is_empty())
        .map(|e| {
            e["choices"][0]["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count()
        })
        .collect();
    assert_eq!(counts, vec![1, 3, 4, 2], "{}", r.raw);
    for e in &events[..events.len() - 1] {
        assert_eq!(e["object"], "text_completion");
        assert_eq!(e["model"], "my-model");
        assert!(e["id"].as_str().unwrap().starts_with("cmpl-"));
        assert!(e["usage"].is_null());
    }
    let last_choice = &events[events.len() - 2]["choices"][0];
    assert_eq!(last_choice["finish_reason"], "length");
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(events.last().unwrap()["choices"], json!([]));
    assert_eq!(usage["prompt_tokens"], 5);
    assert_eq!(usage["completion_tokens"], 10);
    assert_eq!(usage["total_tokens"], 15);
    // The streamed text re-tokenizes to exactly the reported count (synthetic tokenizer).
    assert_eq!(r.text().split_whitespace().count(), 10);

    // Without include_usage there is no usage chunk.
    let body = json!({"model": "m", "prompt": "one two three", "max_tokens": 3, "stream": true});
    let r = post_sse(&client, &w.addr, "/v1/completions", &body);
    assert!(r.done());
    assert!(r.json_events().iter().all(|e| e["usage"].is_null()));
}

#[test]
fn chat_and_non_streaming_responses() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = fast_sim(dir.path());
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let client = http();
    let body = json!({"model": "m", "messages": [{"role": "user",
                      "content": [{"type": "text", "text": "four words of prompt"}]}],
                      "max_completion_tokens": 6, "stream": true,
                      "stream_options": {"include_usage": true}});
    let r = post_sse(&client, &w.addr, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200);
    assert!(r.done(), "{}", r.raw);
    assert!(
        r.raw.starts_with("data: {") && r.raw.contains("]} \n\n"),
        "{}",
        r.raw
    );
    let events = r.json_events();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0]["object"], "chat.completion.chunk");
    assert!(events[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(r.text().split_whitespace().count(), 6);
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 6);

    let full: serde_json::Value = client
        .post(format!("http://{}/v1/chat/completions", w.addr))
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 5}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["object"], "chat.completion");
    assert_eq!(full["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        full["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        5
    );
    assert_eq!(full["usage"]["completion_tokens"], 5);

    let full: serde_json::Value = client
        .post(format!("http://{}/v1/completions", w.addr))
        .json(&json!({"model": "m", "prompt": [[1, 2, 3]], "max_tokens": 7}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["object"], "text_completion");
    assert_eq!(full["usage"]["prompt_tokens"], 3);
    assert_eq!(full["usage"]["completion_tokens"], 7);
    assert_eq!(full["choices"][0]["finish_reason"], "length");
}

#[test]
fn malformed_requests_get_400_json_and_the_worker_survives() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(
        dir.path(),
        "engine.yml",
        "max_num_tokens: 16\nmax_seq_len: 24\n",
    );
    let sim = fast_sim(dir.path());
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let client = http();
    let url = format!("http://{}/v1/completions", w.addr);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON"),
        ("[1,2]".into(), "JSON object"),
        (r#"{"prompt":"x"}"#.into(), "model"),
        (r#"{"model":"m","prompt":"x","max_tokens":"ten"}"#.into(), "max_tokens"),
        (r#"{"model":"m","prompt":"x","frobnicate":true}"#.into(), "frobnicate"),
        (r#"{"model":"m","prompt":"x","stream_options":{"include_usage":true}}"#.into(), "Stream options"),
        (r#"{"model":"m","prompt":"x","n":3}"#.into(), "not supported"),
        (format!(r#"{{"model":"m","prompt":{:?}}}"#, vec![1; 20]), "max_num_tokens"),
        (r#"{"model":"m","prompt":[1,2,3],"max_tokens":30}"#.into(), "max_seq_len"),
        (r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"generation_only"}}"#.into(), "first_gen_tokens"),
        // What an NV SA client with benchmark_ratio 0 can send; TensorRT-LLM refuses both.
        (r#"{"model":"m","prompt":"","max_tokens":2}"#.into(), "must not be empty"),
        (r#"{"model":"m","prompt":"x","max_tokens":0}"#.into(), "at least 1"),
    ];
    for (body, needle) in cases {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let json: serde_json::Value = resp.json().unwrap();
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
        assert_eq!(json["object"], "error");
        assert_eq!(json["code"], 400);
    }
    let ok = client
        .post(&url)
        .json(&json!({"model": "m", "prompt": "still alive", "max_tokens": 2}))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(w.process.try_wait().is_none());
}

#[test]
fn iteration_log_lines_match_upstream_regexes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = write_sim_config(
        dir.path(),
        &json!({"latency": {"load_delay_ms": 50, "step_base_ms": 3.0,
                            "step_per_gen_request_us": 0, "step_per_ctx_token_us": 0}}),
    );
    let mut w = start_worker(dir.path(), "GEN_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let client = http();
    for _ in 0..2 {
        let r = post_sse(
            &client,
            &w.addr,
            "/v1/completions",
            &json!({"model": "m", "prompt": [1, 2], "max_tokens": 12, "stream": true}),
        );
        assert!(r.done());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = w.process.log_text();
    let row = Regex::new(r"iter\s*=\s*(\d+),.*?prev_device_step_time\s*=\s*([\d.]+)\s*ms").unwrap();
    let ngen = Regex::new(r"'num_generation_tokens':\s*(\d+)").unwrap();
    let sched = Regex::new(r"iter\s*=\s*(\d+),.*?num_scheduled_requests\s*=\s*(\d+)").unwrap();
    let rank = Regex::new(r"global_rank\s*=\s*(\d+)").unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("prev_device_step_time"))
        .collect();
    // 2 requests × (1 prefill + 11 decode iterations) + 1 idle iteration between them.
    assert_eq!(lines.len(), 25, "{log}");
    assert!(
        lines[0].contains("prev_device_step_time = N/A"),
        "{}",
        lines[0]
    );
    let mut last_iter = None;
    let mut idle = 0;
    let mut device_times = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let s = sched.captures(line).unwrap();
        let iter: u64 = s[1].parse().unwrap();
        assert_eq!(iter, i as u64);
        assert!(last_iter.is_none_or(|l| l < iter));
        last_iter = Some(iter);
        assert_eq!(&rank.captures(line).unwrap()[1], "0");
        assert!(ngen.captures(line).is_some(), "{line}");
        if &s[2] == "0" {
            idle += 1;
        }
        if let Some(c) = row.captures(line) {
            device_times.push(c[2].parse::<f64>().unwrap());
        }
    }
    assert_eq!(
        idle, 1,
        "one idle iteration while waiting for the 2nd request"
    );
    // The idle iteration's length shows up as the next line's device time (nvbug 6627789
    // shape); every other device time is the configured 3 ms step.
    let long: Vec<_> = device_times.iter().filter(|t| **t > 50.0).collect();
    assert_eq!(long.len(), 1, "{device_times:?}");
    assert!(
        device_times
            .iter()
            .filter(|t| **t <= 50.0)
            .all(|t| (*t - 3.0).abs() < 1e-6),
        "{device_times:?}"
    );
}

#[test]
fn hugging_face_tokenizer_is_used_when_the_model_dir_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_hf_model(dir.path());
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = fast_sim(dir.path());
    let mut w = start_worker(
        dir.path(),
        "AGGR_0",
        model.to_str().unwrap(),
        &engine,
        Some(&sim),
        &[],
    );
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let full: serde_json::Value = http()
        .post(format!("http://{}/v1/completions", w.addr))
        .json(
            &json!({"model": "tiny-model", "prompt": "the quick brown fox jumps",
                      "max_tokens": 4}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(full["usage"]["prompt_tokens"], 5);
    let text = full["choices"][0]["text"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 4, "{text:?}");
    let log = w.process.log_text();
    assert!(log.contains("Hugging Face tokenizer"), "{log}");
    assert!(!log.contains("synthetic"), "{log}");
    let models: serde_json::Value = http()
        .get(format!("http://{}/v1/models", w.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "tiny-model");
}

#[test]
fn sigterm_stops_the_worker_within_one_second_even_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write_engine_config(dir.path(), "engine.yml", ENGINE);
    let sim = fast_sim(dir.path());
    let mut w = start_worker(dir.path(), "AGGR_0", "m", &engine, Some(&sim), &[]);
    w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    let addr = w.addr.clone();
    let (streaming, in_flight) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        post_sse_notify(
            &http(),
            &addr,
            "/v1/completions",
            &json!({"model": "m", "prompt": "x", "max_tokens": 5000, "stream": true}),
            move || streaming.send(()).unwrap(),
        )
    });
    in_flight
        .recv_timeout(Duration::from_secs(10))
        .expect("the stream started");
    let sent = Instant::now();
    w.process.signal(libc::SIGTERM);
    let status = w
        .process
        .wait_timeout(Duration::from_secs(5))
        .expect("worker exits after SIGTERM");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert!(status.success(), "{status}");
    let r = reader.join().unwrap();
    assert!(!r.done(), "the long stream was cut, not completed");
    assert!(w.process.log_text().contains("received SIGTERM"));

    let mut w = start_worker(dir.path(), "AGGR_1", "m", &engine, Some(&sim), &[]);
    let sent = Instant::now();
    w.process.signal(libc::SIGINT);
    let status = w.process.wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert!(status.success());
}

#[test]
fn command_line_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["sim", "trtllm-serve", "m", "--no_such_flag", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no_such_flag"));
    let out = run(&["sim", "trtllm-serve", "m", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report_addr"));
    let out = run(&[
        "sim",
        "trtllm-serve",
        "m",
        "--metadata_server_config_file",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported by the simulator"));
    let out = run(&["sim", "--role", "WORKER", "trtllm-serve", "m"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["sim", "--role", "DISAGG_SERVER", "trtllm-serve", "m"]);
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("engine.yml");
    std::fs::write(&bad, "max_batch_size: many\n").unwrap();
    let report = dir.path().join("a.txt");
    let out = run(&[
        "sim",
        "trtllm-serve",
        "m",
        "--config",
        bad.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--report_addr",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("engine.yml") && stderr.contains("max_batch_size"),
        "{stderr}"
    );
    assert!(!report.exists());
}
