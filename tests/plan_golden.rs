//! Golden plans: argv element by element and generated file contents, checked against the
//! derivations of upstream-perf-sanity.md §2.4 (the h200 Qwen3-32B example) and against one of
//! our own configs (NV SA client, numactl, MTP through a YAML anchor).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use perfsanity::config::{BenchmarkMode, load_perf_config, parse_perf_config};
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{
    DatasetPlan, Plan, PlanError, PlanInputs, Role, Scale, TrialRequest, build_plan,
};

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
use crate::support::qwen_config;

const QWEN_STEM: &str = "h200_qwen3-32b-fp8_4k1k_con128_ctx1_tp1_gen1_tp2_eplb0_mtp0_ccb-DEFAULT";

fn request(stem: &str, upload: bool, mode: Option<BenchmarkMode>) -> TrialRequest {
    let trial = format!("{}-{stem}", if upload { "disagg_upload" } else { "disagg" });
    TrialRequest {
        test_list_id: trial.clone(),
        trial,
        stem: stem.to_string(),
        upload,
        mode_override: mode,
        time_limit_s: None,
    }
}

fn inputs<'a>(toolchain: Toolchain, exists: &'a dyn Fn(&Path) -> bool) -> PlanInputs<'a> {
    PlanInputs {
        job_id: Some("777".into()),
        auth_key: KEY.into(),
        ..crate::support::plan_inputs(toolchain, exists)
    }
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn qwen_exists(p: &Path) -> bool {
    let present: HashSet<&str> = [
        "/models/Qwen3-32B-FP8",
        "/models/datasets/perf-ci/qwen3_32b-4k1k-20480-ratio-1_for_serve.json",
    ]
    .into_iter()
    .collect();
    present.contains(p.to_str().unwrap())
}

/// The upstream example's plan (needs `../shared/upstream`: see `support::upstream_dir`).
fn qwen_plan(toolchain: Toolchain, mode: Option<BenchmarkMode>) -> Plan {
    build_plan(
        &qwen_config(),
        &request(QWEN_STEM, true, mode),
        &inputs(toolchain, &qwen_exists),
    )
    .unwrap()
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn upstream_example_e2e_commands() {
    let plan = qwen_plan(Toolchain::Trtllm, Some(BenchmarkMode::E2e));
    let tod = format!("/out/disagg_upload-{QWEN_STEM}");
    let n = format!("e2e-{QWEN_STEM}");
    assert_eq!(plan.server_name, n);
    assert_eq!(plan.benchmark_mode_label, "Standard (dataset)");
    let roles: Vec<Role> = plan.workers.iter().map(|w| w.role).collect();
    assert_eq!(
        roles,
        [Role::Gen(0), Role::Ctx(0)],
        "GEN workers start first"
    );
    let ctx = &plan.workers[1];
    assert_eq!(
        ctx.argv,
        v(&[
            "numactl",
            "-m 0,1",
            "trtllm-serve",
            "/models/Qwen3-32B-FP8",
            "--backend",
            "pytorch",
            "--config",
            &format!("{tod}/extra-llm-api-config.ctx.{n}.yml"),
            "--host",
            "node-a",
            "--port",
            "0",
            "--report_addr",
            &format!("{tod}/hostnames-777-0/CTX_0.txt"),
        ])
    );
    assert_eq!(
        plan.router.process.argv,
        v(&[
            "trtllm-serve",
            "disaggregated",
            "-c",
            &format!("{tod}/server_config.0.yaml"),
            "-t",
            "10800",
            "-r",
            "10800",
            "--report_addr",
            &format!("{tod}/hostnames-777-0/DISAGG_SERVER.0.addr"),
        ])
    );
    assert_eq!(
        plan.router.process.env,
        vec![
            ("TRTLLM_PRESERVE_UCX_ENV".to_string(), "1".to_string()),
            ("TRTLLM_SERVER_DISABLE_GC".to_string(), "1".to_string())
        ],
        "upstream's launcher env, then server_env_var"
    );
    assert_eq!(plan.clients.len(), 1);
    let c = &plan.clients[0];
    assert_eq!(c.name, "con128_iter10_isl4096_osl1024");
    assert_eq!(
        c.test_case_name,
        format!("{n}-con128_iter10_isl4096_osl1024")
    );
    assert!(c.warmup, "e2e warms up: no --no-test-input");
    assert_eq!(
        c.argv,
        v(&[
            "python",
            "-m",
            "tensorrt_llm.serve.scripts.benchmark_serving",
            "--model",
            "/models/Qwen3-32B-FP8",
            "--tokenizer",
            "/models/Qwen3-32B-FP8",
            "--num-prompts",
            "1280",
            "--max-concurrency",
            "128",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--ignore-eos",
            "--dataset-name",
            "trtllm_custom",
            "--dataset-path",
            "/models/datasets/perf-ci/qwen3_32b-4k1k-20480-ratio-1_for_serve.json",
            "--backend",
            "openai",
            "--trust-remote-code",
        ])
    );
    assert_eq!(
        c.log_file,
        PathBuf::from(format!("{tod}/trtllm-benchmark.0.0.log"))
    );
    // Upstream's launcher env first (UCX preserved, per-rank JIT cache, HF_HOME), then the
    // YAML's worker env.
    assert_eq!(
        plan.workers[0].env[3],
        ("TLLM_LOG_LEVEL".to_string(), "INFO".to_string())
    );
    assert_eq!(plan.workers[0].env[1].0, "FLASHINFER_JIT_DIR");
    assert_eq!(plan.workers[0].env.len(), 9);
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn upstream_example_generated_files() {
    let plan = qwen_plan(Toolchain::Trtllm, None);
    let tod = format!("/out/disagg_upload-{QWEN_STEM}");
    let file = |suffix: &str| {
        plan.files
            .iter()
            .find(|f| f.path == format!("{tod}/{suffix}"))
            .unwrap_or_else(|| panic!("no {suffix}"))
            .content
            .clone()
    };
    assert_eq!(file("internal_request_auth_key.txt"), format!("{KEY}\n"));
    let expected_ctx = format!(
        "internal_request_auth_key: {KEY}
print_iter_log: true
tensor_parallel_size: 1
pipeline_parallel_size: 1
context_parallel_size: 1
enable_attention_dp: false
enable_chunked_prefill: false
trust_remote_code: true
max_batch_size: 1
max_num_tokens: 7808
max_seq_len: 7808
cuda_graph_config:
  enable_padding: true
  max_batch_size: 256
kv_cache_config:
  enable_block_reuse: false
  free_gpu_memory_fraction: 0.9
  dtype: fp8
cache_transceiver_config:
  backend: DEFAULT
disable_overlap_scheduler: true
"
    );
    assert_eq!(
        file(&format!("extra-llm-api-config.ctx.e2e-{QWEN_STEM}.yml")),
        expected_ctx
    );
    let gen_file = file(&format!("extra-llm-api-config.gen.e2e-{QWEN_STEM}.yml"));
    assert!(gen_file.starts_with(&format!(
        "internal_request_auth_key: {KEY}\nprint_iter_log: true\ntensor_parallel_size: 2\n"
    )));
    assert!(gen_file.ends_with(
        "cache_transceiver_config:\n  backend: DEFAULT\ndisable_overlap_scheduler: false\n"
    ));
    let router = plan
        .router
        .config
        .render(&["node-b:8001".into()], &["node-c:8002".into()]);
    assert_eq!(
        router,
        format!(
            "backend: pytorch
context_servers:
  num_instances: 1
  urls:
  - node-b:8001
generation_servers:
  num_instances: 1
  urls:
  - node-c:8002
hostname: node-a
internal_request_auth_key: {KEY}
port: 0
"
        )
    );
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn upstream_example_gen_only_variant() {
    let plan = qwen_plan(Toolchain::Trtllm, Some(BenchmarkMode::GenOnly));
    let c = &plan.clients[0];
    assert_eq!(c.name, "con128_iter1_isl4096_osl1024");
    assert!(!c.warmup);
    assert!(c.argv.contains(&"--no-test-input".to_string()));
    assert_eq!(c.num_prompts, 128);
    assert!(plan.files.iter().any(|f| {
        f.path
            .ends_with(format!("extra-llm-api-config.gen.gen_only-{QWEN_STEM}.yml"))
    }));
    let gen_env = &plan.workers[0].env;
    assert!(gen_env.contains(&("TLLM_BENCHMARK_REQ_QUEUES_SIZE".into(), "128".into())));
    assert!(gen_env.contains(&(
        "TRTLLM_DISABLE_KV_CACHE_TRANSFER_OVERLAP".into(),
        "1".into()
    )));
    assert!(
        !plan.workers[1]
            .env
            .iter()
            .any(|(k, _)| k == "TLLM_BENCHMARK_REQ_QUEUES_SIZE"),
        "ctx workers never get the queue size"
    );
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn simulator_changes_only_the_program_prefix() {
    let real = qwen_plan(Toolchain::Trtllm, None);
    let sim = qwen_plan(Toolchain::Sim, None);
    for (r, s) in real.workers.iter().zip(&sim.workers) {
        // trtllm: numactl "-m 0,1" trtllm-serve …; sim: perfsanity sim --role R trtllm-serve …
        let r_tail = &r.argv[3..];
        let s_pos = s.argv.iter().position(|a| a == "trtllm-serve").unwrap();
        assert_eq!(
            &s.argv[..s_pos],
            v(&["perfsanity", "sim", "--role", &r.role.to_string()])
        );
        assert_eq!(&s.argv[s_pos + 1..], r_tail);
    }
    let r = &real.router.process.argv;
    let s = &sim.router.process.argv;
    assert_eq!(&s[s.len() - r.len() + 1..], &r[1..]);
    let rc = &real.clients[0].argv;
    let sc = &sim.clients[0].argv;
    assert_eq!(
        &sc[..4],
        v(&["perfsanity", "bench", "--tokenizer-fallback", "builtin"])
    );
    assert_eq!(&sc[4..], &rc[3..]);
}

fn own_config(rel: &str) -> perfsanity::config::PerfConfig {
    load_perf_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn own_nv_sa_config_with_anchor_and_numactl() {
    let stem = "deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL";
    let config = own_config(&format!("test_configs/disagg/perf/{stem}.yaml"));
    let none = |_: &Path| false;
    let err = build_plan(
        &config,
        &request(stem, false, None),
        &inputs(Toolchain::Trtllm, &none),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::ModelMissing { model_name, tried, .. }
            if model_name == "deepseek_r1_0528_fp4_v2"
                && tried == "/models/DeepSeek-R1/DeepSeek-R1-0528-FP4-v2"),
        "model dir absent → plan error naming the path tried: {err}"
    );
    let model = |p: &Path| p == Path::new("/models/DeepSeek-R1/DeepSeek-R1-0528-FP4-v2");
    let plan = build_plan(
        &config,
        &request(stem, false, None),
        &inputs(Toolchain::Trtllm, &model),
    )
    .unwrap();
    assert_eq!(plan.benchmark_mode_label, "NV SA (random)");
    assert_eq!(plan.dataset, DatasetPlan::SaRandom);
    assert_eq!(
        plan.model_path,
        "/models/DeepSeek-R1/DeepSeek-R1-0528-FP4-v2"
    );
    let t = plan.topology;
    assert_eq!(
        (t.ctx.count, t.ctx.gpus_per_worker, t.ctx.nodes_per_worker),
        (4, 4, 1)
    );
    assert_eq!(
        (
            t.gen_workers.count,
            t.gen_workers.gpus_per_worker,
            t.gen_workers.nodes_per_worker
        ),
        (1, 16, 4)
    );
    assert_eq!((t.total_nodes, t.total_gpus, t.gpus_used), (8, 32, 32));
    let roles: Vec<String> = plan.workers.iter().map(|w| w.role.to_string()).collect();
    assert_eq!(roles, ["GEN_0", "CTX_0", "CTX_1", "CTX_2", "CTX_3"]);
    assert_eq!(
        plan.workers[1].first_gpu, 16,
        "ctx GPUs come after the gen worker's"
    );
    let concurrencies: Vec<(u64, u64)> = plan
        .clients
        .iter()
        .map(|c| (c.concurrency, c.num_prompts))
        .collect();
    assert_eq!(concurrencies, [(16, 128), (64, 512), (256, 2048)]);
    assert_eq!(
        plan.clients[0].argv,
        v(&[
            "python",
            "/tmp/bench_serving/benchmark_serving.py",
            "--model",
            "/models/DeepSeek-R1/DeepSeek-R1-0528-FP4-v2",
            "--dataset-name",
            "random",
            "--num-prompts",
            "128",
            "--max-concurrency",
            "16",
            "--random-input-len",
            "8192",
            "--random-output-len",
            "1024",
            "--random-range-ratio",
            "0.8",
            "--save-result",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--ignore-eos",
            "--backend",
            "openai",
            "--trust-remote-code",
        ])
    );
    assert!(
        !plan.clients[0].warmup,
        "the SA client never gets the warmup request"
    );
    assert_eq!(
        &plan.workers[0].argv[..3],
        v(&["numactl", "-m 0,1", "trtllm-serve"])
    );
    let gen_env = &plan.workers[0].env;
    assert!(gen_env.contains(&("MIMALLOC_PURGE_DELAY".into(), "0".into())));
    assert!(
        !plan.workers[1]
            .env
            .iter()
            .any(|(k, _)| k == "MIMALLOC_PURGE_DELAY")
    );
    // The anchored speculative_config reaches both engine configs.
    for f in plan
        .files
        .iter()
        .filter(|f| f.path.to_string_lossy().contains("extra-llm-api-config"))
    {
        assert!(
            f.content.contains(
                "speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: 3\n"
            ),
            "{}",
            f.content
        );
    }
}

#[test]
fn standard_dataset_missing_fails_or_falls_back_consistently() {
    let stem = "deepseek-r1-fp4_1k1k_ctx2_dep4_gen1_dep32_bs64_eplb288_mtp0-NIXL";
    let config = own_config(&format!("test_configs/wideep/perf/{stem}.yaml"));
    let none = |_: &Path| false;
    let err = build_plan(
        &config,
        &request(stem, true, None),
        &inputs(Toolchain::Trtllm, &none),
    )
    .unwrap_err();
    let PlanError::DatasetMissing { key, tried, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(key, "benchmark.dataset_file");
    let text = err.to_string();
    assert!(
        text.contains("/models/datasets/perf-ci/deepseek_r1-1k1k-16384-ratio-1_for_serve.json"),
        "{text}"
    );
    assert!(
        text.contains("/repo/datasets/perf-ci/deepseek_r1-1k1k-16384-ratio-1_for_serve.json"),
        "{text}"
    );
    assert!(tried.contains(", "));

    let model_only = |p: &Path| p.starts_with("/models/DeepSeek-R1");
    let mut fallback = inputs(Toolchain::Trtllm, &model_only);
    fallback.dataset_fallback_env = true;
    let plan = build_plan(&config, &request(stem, true, None), &fallback).unwrap();
    assert_eq!(plan.benchmark_mode_label, "Standard (random)");
    let argv = &plan.clients[0].argv;
    assert!(
        !argv.contains(&"trtllm_custom".to_string()),
        "never trtllm_custom with random flags"
    );
    assert!(!argv.contains(&"--dataset-path".to_string()));
    for flag in [
        "random",
        "--random-ids",
        "--tokenize-on-client",
        "--random-input-len",
        "--random-range-ratio",
    ] {
        assert!(
            argv.contains(&flag.to_string()),
            "{flag} missing in {argv:?}"
        );
    }
    assert!(plan.warnings.iter().any(|w| w.contains("RANDOM dataset")));

    let plan = build_plan(
        &config,
        &request(stem, true, None),
        &inputs(Toolchain::Sim, &none),
    )
    .unwrap();
    let DatasetPlan::Generated { path, spec, .. } = &plan.dataset else {
        panic!("{:?}", plan.dataset)
    };
    assert_eq!(
        path,
        &PathBuf::from(
            "/repo/target/perf-datasets/full/datasets/perf-ci/deepseek_r1-1k1k-16384-ratio-1_for_serve.json"
        )
    );
    assert_eq!(
        (spec.num_prompts, spec.input_len, spec.output_len),
        (2048, 1024, 1024)
    );
    assert!(
        plan.clients[0]
            .argv
            .windows(2)
            .any(|w| w[0] == "--dataset-path" && w[1] == path.to_string_lossy())
    );
}

#[test]
fn smoke_scale_caps_the_load_and_says_so() {
    let stem = "llama3.3-70b-fp8_1k1k_ctx1_tp2_gen1_tp4_bs64_mtp0-UCX";
    let config = own_config(&format!("test_configs/disagg/perf/{stem}.yaml"));
    let none = |_: &Path| false;
    let mut smoke = inputs(Toolchain::Sim, &none);
    smoke.scale = Scale::Smoke;
    let plan = build_plan(&config, &request(stem, true, None), &smoke).unwrap();
    let clients: Vec<(u64, u64, u64, u64)> = plan
        .clients
        .iter()
        .map(|c| (c.concurrency, c.iterations, c.isl, c.osl))
        .collect();
    assert_eq!(clients, [(4, 1, 128, 32)], "8 16 32 64 all cap to 4");
    assert!(plan.warnings.iter().any(|w| w.contains("PERF_SCALE=smoke")));
}

#[test]
fn legacy_layout_and_defaults() {
    let text = "metadata:\n  model_name: org/m\nbenchmark:\n  concurrency_list: 3\nsequence:\n  input_length: 100\n  output_length: 10\nhardware:\n  gpus_per_node: 2\n  num_ctx_servers: 1\n  num_gen_servers: 1\nworker_config:\n  ctx: {tensor_parallel_size: 2}\n  gen: {tensor_parallel_size: 4, moe_expert_parallel_size: 16}\n";
    let config = parse_perf_config(text, Path::new("legacy.yaml")).unwrap();
    assert_eq!(config.benchmark.input_length.value, 100);
    assert_eq!(config.benchmark.input_length.key, "sequence.input_length");
    assert_eq!(config.benchmark.use_nv_sa_benchmark, None);
    let none = |_: &Path| false;
    let plan = build_plan(
        &config,
        &request("legacy", false, None),
        &inputs(Toolchain::Trtllm, &none),
    )
    .unwrap();
    assert_eq!(
        plan.benchmark_mode_label, "NV SA (random)",
        "absent use_nv_sa_benchmark means true"
    );
    assert!(plan.benchmark_mode_reason.contains("defaults it to true"));
    assert_eq!(
        plan.model_path, "org/m",
        "a Hugging Face id, asked for explicitly"
    );
    assert!(plan.warnings.iter().any(|w| w.contains("Hugging Face id")));
    assert_eq!(plan.range_ratio, 0.8, "the NV SA client's default");
    // EP never multiplies GPU counts: gen = tp 4 → 2 nodes of 2 GPUs.
    assert_eq!(plan.topology.gen_workers.gpus_per_worker, 4);
    assert_eq!(plan.topology.total_nodes, 1 + 2);
}
