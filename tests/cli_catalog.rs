//! The catalog commands as a user runs them: `perfsanity list`, `plan`, `check`.

use std::path::Path;

use assert_cmd::Command;

fn perfsanity(dir: &Path) -> Command {
    let mut cmd = Command::from_std(crate::support::perfsanity_cmd());
    cmd.env("PERF_OUTPUT_DIR", dir.join("out"))
        .env("PERF_TOOLCHAIN", "sim");
    cmd
}

#[test]
fn list_json_covers_every_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = perfsanity(dir.path())
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let configs = ["disagg", "wideep"]
        .iter()
        .map(|f| {
            std::fs::read_dir(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("test_configs")
                    .join(f)
                    .join("perf"),
            )
            .unwrap()
            .count()
        })
        .sum::<usize>();
    // Each config once: per disaggregated config disagg_upload and aggr_upload-ctx_only, per
    // aggregated config the whole-file aggr_upload trial; the twins and per-server trials are
    // selectable by name, not listed by default.
    let aggr_configs =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("test_configs/aggr/perf"))
            .unwrap()
            .count();
    assert_eq!(rows.len(), 2 * configs + aggr_configs);
    assert!(rows.iter().all(|r| r["error"].is_null()), "{rows:#?}");
    let sa = rows
        .iter()
        .find(|r| r["name"] == "disagg_upload-sim-e2e-nvsa_ctx1_gen2")
        .unwrap();
    assert_eq!(
        (
            sa["mode"].as_str(),
            sa["client"].as_str(),
            sa["gpus"].as_u64()
        ),
        (Some("e2e"), Some("nv_sa"), Some(3))
    );
}

#[test]
fn plan_prints_the_whole_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = perfsanity(dir.path())
        .args([
            "plan",
            "disagg_upload-gen_only-sim-gen-only-dataset_ctx1_gen2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Trial        disagg_upload-sim-gen-only-dataset_ctx1_gen2",
        "Benchmark    Standard (dataset)",
        "  GEN_0  [GPU slot 0]",
        "  GEN_1  [GPU slot 1]",
        "  CTX_0  [GPU slot 2]",
        "$ perfsanity sim --role GEN_0 trtllm-serve sim_tiny_llm --backend pytorch --config",
        // Upstream's launcher env first, then the YAML's.
        "env additions: TRTLLM_PRESERVE_UCX_ENV=1 FLASHINFER_JIT_DIR=",
        "HF_HOME=/tmp/hf_home TLLM_LOG_LEVEL=INFO TRTLLM_SERVER_DISABLE_GC=1 TRTLLM_DISABLE_KV_CACHE_TRANSFER_OVERLAP=1 TLLM_BENCHMARK_REQ_QUEUES_SIZE=4",
        "Launch env   every role: unset UCX_CUDA_IPC_ENABLE_MNNVL UCX_TLS UCX_NET_DEVICES",
        "--no-test-input --dataset-name trtllm_custom --dataset-path",
        "--- ",
        "server_config.0.yaml",
        "  - <GEN_1 host:port>",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    // A dry-run writes nothing.
    assert!(!dir.path().join("out").exists());
    let json = perfsanity(dir.path())
        .args([
            "plan",
            "--json",
            "perf/test_perf_sanity.py::test_e2e[disagg-sim-e2e-nvsa_ctx1_gen2]",
        ])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plan["client_kind"], "nv_sa");
    assert_eq!(plan["workers"].as_array().unwrap().len(), 3);
}

#[test]
fn unknown_trial_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = perfsanity(dir.path())
        .args(["plan", "disagg-sim-e2e-nvsa_ctx1_gen3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no config named \"sim-e2e-nvsa_ctx1_gen3\"")
            && err.contains("did you mean \"sim-e2e-nvsa_ctx1_gen2\""),
        "{err}"
    );
}

#[test]
fn check_passes_on_our_configs_and_fails_on_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = perfsanity(dir.path()).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("x.yaml"),
        "metadata: {model_name: m}\nhardware: {gpus_per_node: 1}\n",
    )
    .unwrap();
    let out = perfsanity(dir.path())
        .arg("check")
        .env("PERF_CONFIG_DIRS", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ERROR  disagg_upload-x")
            && text.contains("`hardware.num_gen_servers`: required key missing"),
        "{text}"
    );
}
