//! A real third-party benchmark client (NVIDIA AIPerf, installed by
//! `scripts/install-python-tools.sh`) against the simulated disaggregated graph: it must finish
//! with zero failed requests and see exactly the token counts it asked for.
//!
//! The client lives in `${PERFSANITY_PYVENV:-/opt/perfsanity-venv}`. Part of the `env_gated` test
//! binary: when the client is missing the test is reported as *ignored* (with the reason), or
//! fails if `PERFSANITY_REQUIRE_THIRD_PARTY=1` (CI).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sim_support::*;
use serde_json::json;

/// Every test of this file, for `tests/env_gated.rs`.
pub const TESTS: &[(&str, fn())] = &[(
    "aiperf_runs_clean_against_the_simulated_router",
    aiperf_runs_clean_against_the_simulated_router,
)];

fn aiperf() -> PathBuf {
    let venv = std::env::var("PERFSANITY_PYVENV").unwrap_or_else(|_| "/opt/perfsanity-venv".into());
    Path::new(&venv).join("bin/aiperf")
}

/// Why this test cannot run here, if it cannot: the client is not installed.
pub fn missing() -> Option<String> {
    let bin = aiperf();
    (!bin.is_file()).then(|| {
        format!(
            "the third-party client is not installed ({} missing); run \
             scripts/install-python-tools.sh",
            bin.display()
        )
    })
}

/// A Hugging Face tokenizer whose vocabulary is exactly the simulator's synthetic one
/// (`t<i>` ↔ id `i`), so AIPerf counts prompt and output tokens as the simulator does, offline.
fn synthetic_hf_tokenizer(dir: &Path) -> PathBuf {
    let path = dir.join("synthetic-tokenizer");
    std::fs::create_dir_all(&path).unwrap();
    let mut vocab = serde_json::Map::new();
    for i in 0..32_000u32 {
        vocab.insert(format!("t{i}"), json!(i));
    }
    vocab.insert("[UNK]".into(), json!(32_000));
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 32000, "content": "[UNK]", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(path.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(
        path.join("tokenizer_config.json"),
        json!({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]",
               "model_max_length": 1_000_000})
        .to_string(),
    )
    .unwrap();
    path
}

struct Run {
    summary: serde_json::Value,
    output: String,
}

fn run_aiperf(
    bin: &Path,
    dir: &Path,
    tag: &str,
    url: &str,
    tokenizer: &Path,
    extra: &[&str],
) -> Run {
    let artifacts = dir.join(format!("aiperf-{tag}"));
    let log = dir.join(format!("aiperf-{tag}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "profile",
        "--model",
        "sim-model",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--url",
        url,
        "--streaming",
        "--concurrency",
        "8",
        "--request-count",
        "48",
        "--synthetic-input-tokens-mean",
        "64",
        "--synthetic-input-tokens-stddev",
        "0",
        "--output-tokens-mean",
        "32",
        "--output-tokens-stddev",
        "0",
        "--extra-inputs",
        "ignore_eos:true",
        "--random-seed",
        "7",
        "--ui-type",
        "none",
        "--artifact-dir",
        artifacts.to_str().unwrap(),
    ])
    .args(extra)
    // Not HF_HUB_OFFLINE: AIPerf's offline mode only looks in the hub cache, not at local
    // directories; a local path loads without network access anyway.
    .env_remove("HF_HUB_OFFLINE")
    .env_remove("TRANSFORMERS_OFFLINE")
    .env("NO_COLOR", "1")
    .stdin(Stdio::null())
    .stdout(out.try_clone().unwrap())
    .stderr(out)
    .process_group(0);
    let mut child = cmd.spawn().expect("spawning aiperf");
    let Some(status) =
        crate::support::wait_until(Duration::from_secs(300), || child.try_wait().unwrap())
    else {
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        panic!(
            "aiperf did not finish in 300 s; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
    };
    // AIPerf's worker processes live in its process group; make sure none outlive it.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "aiperf failed ({status}):\n{output}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("profile_export_aiperf.json"))
            .unwrap_or_else(|e| panic!("no AIPerf summary ({e}):\n{output}")),
    )
    .unwrap();
    Run { summary, output }
}

fn assert_clean(run: &Run, isl: f64, osl: f64) {
    let s = &run.summary;
    assert_eq!(s["request_count"]["avg"], 48.0, "{}", run.output);
    let error_rate = s["request_error_rate"]["avg"].as_f64().unwrap_or(0.0);
    assert_eq!(error_rate, 0.0, "failed requests:\n{}", run.output);
    let errors = s["error_summary"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(errors, 0, "error summary: {}", s["error_summary"]);
    assert_eq!(s["was_cancelled"], false);
    assert_eq!(s["output_sequence_length"]["avg"], osl, "{}", run.output);
    assert_eq!(s["input_sequence_length"]["avg"], isl, "{}", run.output);
    assert_eq!(s["usage_completion_tokens"]["avg"], osl);
    assert_eq!(s["usage_prompt_tokens"]["avg"], isl);
}

pub fn aiperf_runs_clean_against_the_simulated_router() {
    let bin = aiperf();
    let dir = tempfile::tempdir().unwrap();
    let sim = write_sim_config(
        dir.path(),
        &json!({"latency": {"load_delay_ms": 100, "step_base_ms": 3.0}}),
    );
    let engine = "internal_request_auth_key: k\nprint_iter_log: true\nmax_batch_size: 16\n\
                  max_num_tokens: 4096\ncache_transceiver_config:\n  backend: DEFAULT\n";
    let engine = write_engine_config(dir.path(), "engine.yml", engine);
    let mut ctx = start_worker(dir.path(), "CTX_0", "sim-model", &engine, Some(&sim), &[]);
    let mut gen0 = start_worker(dir.path(), "GEN_0", "sim-model", &engine, Some(&sim), &[]);
    let mut gen1 = start_worker(dir.path(), "GEN_1", "sim-model", &engine, Some(&sim), &[]);
    for w in [&mut ctx, &mut gen0, &mut gen1] {
        w.process.wait_healthy(&w.addr, Duration::from_secs(20));
    }
    let config = write_server_config(dir.path(), &[&ctx.addr], &[&gen0.addr, &gen1.addr], "k");
    let mut router = start_router(dir.path(), &config, Some(&sim), &[]);
    router
        .process
        .wait_healthy(&router.addr, Duration::from_secs(20));
    let tokenizer = synthetic_hf_tokenizer(dir.path());
    let url = format!("http://{}", router.addr);

    let completions = run_aiperf(
        &bin,
        dir.path(),
        "completions",
        &url,
        &tokenizer,
        &["--endpoint-type", "completions"],
    );
    assert_clean(&completions, 64.0, 32.0);
    let chat = run_aiperf(
        &bin,
        dir.path(),
        "chat",
        &url,
        &tokenizer,
        &["--endpoint-type", "chat"],
    );
    assert_clean(&chat, 64.0, 32.0);

    // The graph really served them: every worker still healthy, iteration logs written.
    for w in [&mut ctx, &mut gen0, &mut gen1, &mut router] {
        assert!(w.process.try_wait().is_none(), "{} died", w.process.name);
    }
    assert!(gen0.process.log_text().contains("prev_device_step_time"));
    assert!(gen1.process.log_text().contains("prev_device_step_time"));
}
