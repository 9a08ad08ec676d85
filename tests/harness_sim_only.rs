//! With the TensorRT-LLM toolchain, simulator-only configs (`metadata.supported_gpus: [SIM]`)
//! are listed as ignored, with the reason, instead of running and failing.

const CONFIG: &str = "metadata:\n  model_name: sim_tiny_llm\n  supported_gpus:\n  - SIM\nbenchmark:\n  concurrency_list: 1\n  input_length: 8\n  output_length: 4\nhardware:\n  gpus_per_node: 1\n  num_ctx_servers: 1\n  num_gen_servers: 1\nworker_config:\n  ctx: {}\n  gen: {}\n";

#[test]
fn sim_only_configs_are_ignored_with_trtllm() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(configs.join("sim-one.yaml"), CONFIG).unwrap();
    let run = |toolchain: &str, args: &[&str]| {
        crate::harness_bin::harness_cmd()
            .args(args)
            .env("PERF_CONFIG_DIRS", &configs)
            .env("PERF_OUTPUT_DIR", dir.path().join("out"))
            .env("PERF_TOOLCHAIN", toolchain)
            .env("PERF_DB", dir.path().join("perf.sqlite"))
            .env("CUDA_VISIBLE_DEVICES", "0")
            .output()
            .unwrap()
    };
    let ignored = run("trtllm", &["--list", "--format", "terse", "--ignored"]);
    assert_eq!(
        String::from_utf8_lossy(&ignored.stdout),
        "disagg_upload-sim-one: test\naggr_upload-ctx_only-sim-one: test\n",
        "{}",
        String::from_utf8_lossy(&ignored.stderr)
    );
    let o = run("trtllm", &["disagg-sim-one"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is ignored: simulator-only config"), "{err}");
    let sim = run("sim", &["--list", "--format", "terse", "--ignored"]);
    assert_eq!(String::from_utf8_lossy(&sim.stdout), "");
}
