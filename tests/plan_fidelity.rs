//! Plans match what upstream gives a real cluster: the model path as upstream resolves it, the
//! NV SA client's range ratio, the launch environment of every role, the AgentX artifact dir,
//! the simulator-only configs under the TensorRT-LLM toolchain, and the runner removing the
//! launcher's variables from a child's environment.

use std::path::Path;

use perfsanity::config::{PerfConfig, load_perf_config, parse_perf_config};
use perfsanity::plan::launch_env::UCX_UNSET;
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Plan, PlanError, PlanInputs, TrialRequest, build_plan, render_text};

fn request(stem: &str) -> TrialRequest {
    TrialRequest {
        trial: format!("disagg-{stem}"),
        test_list_id: format!("disagg-{stem}"),
        stem: stem.to_string(),
        upload: false,
        mode_override: None,
        time_limit_s: None,
    }
}

fn plan_with(
    config: &PerfConfig,
    toolchain: Toolchain,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Plan, PlanError> {
    build_plan(
        config,
        &request("t"),
        &PlanInputs {
            auth_key: "ab".repeat(32),
            ..crate::support::plan_inputs(toolchain, exists)
        },
    )
}

fn own(rel: &str) -> PerfConfig {
    load_perf_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

const LLAMA: &str =
    "test_configs/disagg/perf/llama3.3-70b-fp8_1k1k_ctx1_tp2_gen1_tp4_bs64_mtp0-UCX.yaml";

fn small(extra_benchmark: &str, model: &str) -> PerfConfig {
    let text = format!(
        "metadata:\n  model_name: {model}\nbenchmark:\n  concurrency_list: 2\n  input_length: 100\n  \
         output_length: 10\n{extra_benchmark}hardware:\n  gpus_per_node: 4\n  num_ctx_servers: 1\n  \
         num_gen_servers: 1\nworker_config:\n  ctx: {{tensor_parallel_size: 1}}\n  gen: {{tensor_parallel_size: 1}}\n"
    );
    parse_perf_config(&text, Path::new("small.yaml")).unwrap()
}

#[test]
fn model_path_follows_upstreams_dictionary_under_the_models_root() {
    let config = own(LLAMA);
    assert_eq!(config.metadata.model_name, "llama_v3.3_70b_instruct_fp8");
    // A models root laid out as upstream's CI has it: only MODEL_PATH_DICT's directory exists.
    let upstream_layout =
        |p: &Path| p == Path::new("/models/modelopt-hf-model-hub/Llama-3.3-70B-Instruct-fp8");
    let plan = plan_with(&config, Toolchain::Trtllm, &upstream_layout).unwrap();
    assert_eq!(
        plan.model_path,
        "/models/modelopt-hf-model-hub/Llama-3.3-70B-Instruct-fp8"
    );
    assert!(
        plan.workers
            .iter()
            .all(|w| w.argv.contains(&plan.model_path))
    );
    assert!(plan.clients[0].argv.contains(&plan.model_path));
    // metadata.model_dir_name wins where it exists.
    let both = |p: &Path| p.starts_with("/models/");
    let plan = plan_with(&config, Toolchain::Trtllm, &both).unwrap();
    assert_eq!(
        plan.model_path,
        "/models/llama-3.3-models/Llama-3.3-70B-Instruct-FP8"
    );
    // Nowhere: a plan error naming every path tried, in order.
    let none = |_: &Path| false;
    let err = plan_with(&config, Toolchain::Trtllm, &none).unwrap_err();
    let text = err.to_string();
    let first = text
        .find("/models/llama-3.3-models/Llama-3.3-70B-Instruct-FP8")
        .expect(&text);
    let second = text
        .find("/models/modelopt-hf-model-hub/Llama-3.3-70B-Instruct-fp8")
        .expect(&text);
    assert!(first < second, "{text}");
    assert!(text.contains("metadata.model_name"), "{text}");
    // The simulator loads no model: the bare name stands.
    let plan = plan_with(&config, Toolchain::Sim, &none).unwrap();
    assert_eq!(plan.model_path, "llama_v3.3_70b_instruct_fp8");
}

#[test]
fn hugging_face_ids_only_when_asked_for() {
    let none = |_: &Path| false;
    let hf = small("", "nemotron_3_ultra_550b_nvfp4");
    let plan = plan_with(&hf, Toolchain::Trtllm, &none).unwrap();
    assert_eq!(
        plan.model_path,
        "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4"
    );
    let plain = small("", "qwen3_8b");
    let err = plan_with(&plain, Toolchain::Trtllm, &none).unwrap_err();
    assert!(err.to_string().contains("/models/Qwen3/Qwen3-8B"), "{err}");
}

#[test]
fn nv_sa_ratio_defaults_to_0_8_and_a_zero_lower_bound_is_an_error() {
    let any = |_: &Path| true;
    let sa = small("  use_nv_sa_benchmark: true\n", "org/m");
    let plan = plan_with(&sa, Toolchain::Trtllm, &any).unwrap();
    assert_eq!(plan.range_ratio, 0.8);
    assert!(
        plan.range_ratio_reason.contains("not set"),
        "{}",
        plan.range_ratio_reason
    );
    let argv = &plan.clients[0].argv;
    let at = argv
        .iter()
        .position(|a| a == "--random-range-ratio")
        .unwrap();
    assert_eq!(argv[at + 1], "0.8");
    let text = render_text(&plan);
    assert!(
        text.contains("range ratio") && text.contains("0.8 (benchmark.benchmark_ratio is not set"),
        "{text}"
    );

    // The standard client keeps upstream's 0.0.
    let std = small("  use_nv_sa_benchmark: false\n", "org/m");
    let plan = plan_with(&std, Toolchain::Trtllm, &|_: &Path| false).unwrap();
    assert_eq!(plan.range_ratio, 0.0);

    // Written ratios are used; one that lets SA lengths reach 0 names the key.
    let explicit = small(
        "  use_nv_sa_benchmark: true\n  benchmark_ratio: 0.5\n",
        "org/m",
    );
    assert_eq!(
        plan_with(&explicit, Toolchain::Trtllm, &any)
            .unwrap()
            .range_ratio,
        0.5
    );
    let zero = small(
        "  use_nv_sa_benchmark: true\n  benchmark_ratio: 0\n",
        "org/m",
    );
    let err = plan_with(&zero, Toolchain::Sim, &any)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`benchmark.benchmark_ratio`") && err.contains("down to 0"),
        "{err}"
    );
    // Output length 10 with r = 0.05: ⌊0.5⌋ = 0.
    let tiny = small(
        "  use_nv_sa_benchmark: true\n  benchmark_ratio: 0.05\n",
        "org/m",
    );
    let err = plan_with(&tiny, Toolchain::Sim, &any)
        .unwrap_err()
        .to_string();
    assert!(err.contains("output length 10"), "{err}");
}

#[test]
fn every_role_gets_upstreams_launch_environment() {
    let config = own(LLAMA);
    let any = |_: &Path| true;
    let plan = plan_with(&config, Toolchain::Trtllm, &any).unwrap();
    assert_eq!(plan.launch_env.unset, UCX_UNSET.map(String::from).to_vec());
    let get = |env: &Vec<(String, String)>, k: &str| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    for w in &plan.workers {
        assert_eq!(
            get(&w.env, "FLASHINFER_JIT_DIR").as_deref(),
            Some("/tmp/flashinfer_jit_cache_${SLURM_LOCALID}"),
            "{}",
            w.role
        );
        assert_eq!(get(&w.env, "HF_HOME").as_deref(), Some("/tmp/hf_home"));
        assert_eq!(get(&w.env, "TRTLLM_PRESERVE_UCX_ENV").as_deref(), Some("1"));
        // The YAML worker env still arrives.
        assert!(get(&w.env, "TLLM_LOG_LEVEL").is_some(), "{:?}", w.env);
    }
    let router = &plan.router.process.env;
    assert_eq!(get(router, "TRTLLM_PRESERVE_UCX_ENV").as_deref(), Some("1"));
    assert_eq!(get(router, "FLASHINFER_JIT_DIR"), None, "workers only");
    for c in &plan.clients {
        assert_eq!(get(&c.env, "TRTLLM_PRESERVE_UCX_ENV").as_deref(), Some("1"));
        assert_eq!(
            get(&c.env, "TRTLLM_AGENTX_ARTIFACT_DIR"),
            Some(format!("/out/disagg-t/agentx.0.{}", c.index))
        );
    }
    let text = render_text(&plan);
    assert!(
        text.contains("unset UCX_CUDA_IPC_ENABLE_MNNVL UCX_TLS UCX_NET_DEVICES"),
        "{text}"
    );
    assert!(text.contains("FLASHINFER_JIT_DIR="), "{text}");
}

#[test]
fn simulator_only_configs_are_ignored_under_trtllm() {
    use perfsanity::plan::sim_only::ignore_reason;
    let sim = own("test_configs/disagg/perf/sim-e2e-nvsa_ctx1_gen2.yaml");
    let reason = ignore_reason(&sim, Toolchain::Trtllm).expect("ignored");
    assert!(
        reason.contains("simulator-only") && reason.contains("sim_tiny_llm"),
        "{reason}"
    );
    assert_eq!(ignore_reason(&sim, Toolchain::Sim), None);
    assert_eq!(ignore_reason(&own(LLAMA), Toolchain::Trtllm), None);
}

#[test]
fn the_runner_removes_the_launchers_variables() {
    use perfsanity::run::launch::process::{Launch, spawn};
    // HOME is in every test environment; removing it stands for removing UCX_TLS.
    assert!(std::env::var_os("HOME").is_some());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("env.log");
    let argv = vec!["env".to_string()];
    let env = vec![(
        "JIT".to_string(),
        "/tmp/flashinfer_jit_cache_${SLURM_LOCALID}".to_string(),
    )];
    let remove = vec!["HOME".to_string()];
    let mut child = spawn(Launch {
        role: None,
        name: "env".into(),
        argv: &argv,
        extra_args: Vec::new(),
        env: &env,
        extra_env: Vec::new(),
        env_remove: &remove,
        log: &log,
        cwd: dir.path(),
        self_exe: Path::new("/nonexistent"),
        tee: None,
        slurm_local_id: Some("3"),
    })
    .unwrap();
    let status =
        crate::support::wait_until(std::time::Duration::from_secs(30), || child.try_status())
            .expect("env exits");
    assert!(status.success());
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(!out.lines().any(|l| l.starts_with("HOME=")), "{out}");
    assert!(
        out.lines().any(|l| l == "JIT=/tmp/flashinfer_jit_cache_3"),
        "{out}"
    );
}
