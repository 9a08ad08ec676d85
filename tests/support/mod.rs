//! Shared fixtures of the results/report tests: plans built from real configs, client metrics,
//! results contexts, and a loopback stand-in for upstream's gateway.
#![allow(dead_code)]

pub mod cmd;
pub mod gateway;
pub mod wait;
pub mod xml;

pub use cmd::{clean_cmd, perfsanity_cmd};
pub use wait::wait_until;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use perfsanity::config::{BenchmarkMode, PerfConfig, load_perf_config, parse_perf_config};
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Plan, PlanInputs, Scale, TrialRequest, build_plan};
use perfsanity::results::regression::ThresholdOverrides;
use perfsanity::results::{CiEnv, ClientResult, GatewaySettings, ResultsContext};

pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const QWEN_STEM: &str =
    "h200_qwen3-32b-fp8_4k1k_con128_ctx1_tp1_gen1_tp2_eplb0_mtp0_ccb-DEFAULT";

/// `shared/upstream`: `../shared/upstream` from the crate root (a git worktree sits one level
/// deeper). A test that calls this carries
/// `#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]` (see `build.rs`),
/// so it only runs where the corpus is present or required; a missing corpus is then a failure.
pub fn upstream_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["../shared/upstream", "../../shared/upstream"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "{}/../shared/upstream is missing (PERFSANITY_REQUIRE_UPSTREAM=1 or a build that \
                 found it made this test run)",
                root.display()
            )
        })
}

/// The spec's worked example (§2.4), read from the upstream copy at run time.
pub fn qwen_config() -> PerfConfig {
    let path = upstream_dir()
        .join("perf-sanity/disaggregated")
        .join(format!("{QWEN_STEM}.yaml"));
    load_perf_config(&path).expect("the upstream example parses")
}

/// A small config of our own: MTP spec decoding through an anchor, the NV SA client, two
/// concurrencies, a YAML integer in a float field, a load balancer given as a file path, an
/// `eagle3_layers_to_capture` integer and a forced accepted-token count in the worker env.
pub const OWN_YAML: &str = r#"
metadata:
  model_name: DeepSeek-R1-Tiny
  precision: fp4
  model_dir_name: DeepSeek-R1-Tiny
benchmark:
  mode: e2e
  use_nv_sa_benchmark: true
  multi_round: 2
  benchmark_ratio: 0.8
  streaming: true
  concurrency_list: '4 16'
  input_length: 1024
  output_length: 128
hardware:
  gpus_per_node: 4
  num_ctx_servers: 2
  num_gen_servers: 1
environment:
  worker_env_var: "TLLM_LOG_LEVEL=INFO TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS=2.9"
  gen_worker_env_var: "MIMALLOC_PURGE_DELAY=0"
  server_env_var: "TRTLLM_SERVER_DISABLE_GC=1"
  client_env_var: "A=1"
worker_config:
  gen:
    tensor_parallel_size: 4
    moe_expert_parallel_size: 4
    enable_attention_dp: true
    max_batch_size: 64
    max_num_tokens: 256
    max_seq_len: 2048
    print_iter_log: true
    cuda_graph_config:
      batch_sizes: [1, 2, 4]
    kv_cache_config:
      free_gpu_memory_fraction: 1
    moe_config:
      backend: CUTLASS
      load_balancer: configs/eplb.yaml
    cache_transceiver_config:
      backend: UCX
      max_tokens_in_buffer: 4096
    speculative_config: &mtp
      decoding_type: MTP
      num_nextn_predict_layers: 3
      eagle3_layers_to_capture: 7
  ctx:
    tensor_parallel_size: 2
    max_batch_size: 1
    max_num_tokens: 4096
    max_seq_len: 2048
    cuda_graph_config: null
    disable_overlap_scheduler: true
    moe_config:
      load_balancer:
        num_slots: 288
        layer_updates_per_iter: 1
    cache_transceiver_config:
      backend: UCX
    speculative_config: *mtp
"#;

pub const OWN_STEM: &str = "tiny-r1_1k128_ctx2_tp2_gen1_dep4_mtp3-UCX";

/// Our own config, parsed.
pub fn own_config() -> PerfConfig {
    parse_perf_config(OWN_YAML, Path::new(&format!("/configs/{OWN_STEM}.yaml")))
        .unwrap_or_else(|e| panic!("own config: {e}"))
}

/// Options of a plan.
pub struct PlanOpts<'a> {
    pub stem: &'a str,
    pub upload: bool,
    pub toolchain: Toolchain,
    pub scale: Scale,
    pub mode: Option<BenchmarkMode>,
    pub output_root: PathBuf,
    pub test_list_id: Option<String>,
}

impl<'a> PlanOpts<'a> {
    pub fn new(stem: &'a str, output_root: &Path) -> Self {
        PlanOpts {
            stem,
            upload: true,
            toolchain: Toolchain::Trtllm,
            scale: Scale::Full,
            mode: None,
            output_root: output_root.to_path_buf(),
            test_list_id: None,
        }
    }
}

/// Builds a plan (every model dir and dataset "exists").
/// The plan inputs every planning test starts from (struct-update the fields a test is about):
/// `/out`, models under `/models`, run from `/repo` on host `node-a`, no job id, an empty key.
pub fn plan_inputs<'a>(toolchain: Toolchain, exists: &'a dyn Fn(&Path) -> bool) -> PlanInputs<'a> {
    PlanInputs {
        output_root: PathBuf::from("/out"),
        models_root: Some(PathBuf::from("/models")),
        repo_root: None,
        cwd: PathBuf::from("/repo"),
        sim_dataset_root: PathBuf::from("/repo/target/perf-datasets"),
        toolchain,
        scale: Scale::Full,
        hostname: "node-a".into(),
        job_id: None,
        auth_key: String::new(),
        dataset_fallback_env: false,
        ready_timeouts: Default::default(),
        exists,
    }
}

/// The plan of [`own_config`] (stem [`OWN_STEM`]) under `out` with `toolchain` and `scale`.
pub fn own_plan(config: &PerfConfig, out: &Path, toolchain: Toolchain, scale: Scale) -> Plan {
    let mut o = PlanOpts::new(OWN_STEM, out);
    o.toolchain = toolchain;
    o.scale = scale;
    plan(config, o)
}

pub fn plan(config: &PerfConfig, o: PlanOpts<'_>) -> Plan {
    let trial = format!(
        "{}-{}",
        if o.upload { "disagg_upload" } else { "disagg" },
        o.stem
    );
    let exists = |_: &Path| true;
    let inputs = PlanInputs {
        output_root: o.output_root.clone(),
        sim_dataset_root: o.output_root.join("datasets"),
        scale: o.scale,
        auth_key: KEY.into(),
        ..plan_inputs(o.toolchain, &exists)
    };
    let request = TrialRequest {
        test_list_id: o.test_list_id.clone().unwrap_or_else(|| trial.clone()),
        trial,
        stem: o.stem.to_string(),
        upload: o.upload,
        mode_override: o.mode,
        time_limit_s: None,
    };
    build_plan(config, &request, &inputs).expect("plan builds")
}

/// The 16 base metrics with recognisable values scaled by `k`.
pub fn base_metrics(k: f64) -> IndexMap<String, Option<f64>> {
    let values = [
        ("seq_throughput", 2.5),
        ("token_throughput", 2560.0),
        ("total_token_throughput", 12800.0),
        ("user_throughput", 20.5),
        ("mean_ttft", 250.0),
        ("median_ttft", 240.0),
        ("p99_ttft", 900.0),
        ("mean_itl", 45.0),
        ("median_itl", 44.0),
        ("p99_itl", 80.0),
        ("mean_tpot", 46.0),
        ("median_tpot", 45.5),
        ("p99_tpot", 60.0),
        ("mean_e2el", 47000.0),
        ("median_e2el", 46800.0),
        ("p99_e2el", 52000.0),
    ];
    values
        .iter()
        .map(|(n, v)| (n.to_string(), Some(v * k)))
        .collect()
}

/// One result per client of `plan`, throughput scaled by `throughput_k`, latency by `latency_k`.
pub fn results_for(plan: &Plan, throughput_k: f64, latency_k: f64) -> Vec<ClientResult> {
    plan.clients
        .iter()
        .map(|c| {
            let mut m = base_metrics(1.0);
            for (name, v) in m.iter_mut() {
                let k = if name.contains("throughput") {
                    throughput_k
                } else {
                    latency_k
                };
                *v = v.map(|x| x * k * (1.0 + c.index as f64));
            }
            ClientResult {
                client_index: c.index,
                metrics: m,
            }
        })
        .collect()
}

/// A deterministic pre-merge PR job environment.
pub fn pr_ci() -> CiEnv {
    CiEnv {
        host_node_name: "node-a".into(),
        build_id: "101".into(),
        build_url: "https://jenkins.example/job/LLM/job/main/job/L0_MergeRequest_PR/101/".into(),
        job_name: "LLM/main/L0_MergeRequest_PR".into(),
        global_vars: Some(
            r#"{"action_info": {"parents": [{"url": "https://prod.example/job/LLM/job/main/job/L0_MergeRequest_PR/", "build_number": 4242}], "trigger_info": "by <a href=\"u\" target=\"_blank\">octocat</a><br/>Git Commit: abc123"}, "github_pr_api_url": "https://api.github.com/repos/NVIDIA/TensorRT-LLM/pulls/9876", "build_branch": "github-pr-9876"}"#
                .into(),
        ),
        gitlab_commit: "abc123".into(),
        stage_name: "H200-PyTorch-PerfSanity-Disagg-1".into(),
    }
}

/// A post-merge job environment on `main`.
pub fn post_merge_ci() -> CiEnv {
    CiEnv {
        global_vars: Some(
            r#"{"action_info": {"parents": [{"url": "https://prod.example/job/LLM/job/main/job/L0_PostMerge/", "build_number": 77}]}, "build_branch": "main"}"#
                .into(),
        ),
        stage_name: "H200-PyTorch-PerfSanity-Post-Merge-1".into(),
        ..CiEnv::default()
    }
}

/// A context with the given pieces.
pub fn context(
    db: &Path,
    gateway: Option<GatewaySettings>,
    ci: CiEnv,
    gpu: &str,
) -> ResultsContext {
    ResultsContext {
        ci,
        gateway,
        db_path: db.to_path_buf(),
        gpu_type: gpu.to_string(),
        fail_on_regression: None,
        threshold_overrides: ThresholdOverrides::new(),
        session_started_ms: None,
        db_lock_wait: perfsanity::results::store::DEFAULT_LOCK_WAIT,
    }
}

/// Epoch ms of `YYYY-MM-DD` at noon UTC.
pub fn day_ms(date: &str) -> i64 {
    let dt: jiff::civil::DateTime = format!("{date}T12:00:00").parse().unwrap();
    dt.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Results for our own config's plan (NV SA client: no user throughput; MTP: `al`), throughput
/// scaled by `throughput_k`.
pub fn own_results(plan: &Plan, throughput_k: f64) -> Vec<ClientResult> {
    let mut out = results_for(plan, throughput_k, 1.0);
    for r in &mut out {
        r.metrics.shift_remove("user_throughput");
        r.metrics.insert("al".into(), Some(2.5));
    }
    out
}

/// Gateway settings for a stand-in at `base_url` with its credentials and short timeouts.
pub fn fast_gateway(base_url: &str, user: &str, password: &str) -> GatewaySettings {
    let mut g = GatewaySettings::new(base_url, perfsanity::results::gateway::PROD_PROJECT);
    g.credentials = Some(perfsanity::results::Credentials {
        user: perfsanity::results::Secret::new(user),
        password: perfsanity::results::Secret::new(password),
    });
    g.post_timeout = std::time::Duration::from_millis(400);
    g.query_timeout = std::time::Duration::from_millis(400);
    g.attempts = 2;
    g.retry_pause = std::time::Duration::ZERO;
    g
}
