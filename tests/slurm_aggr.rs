//! Aggregated trials' batch scripts without a cluster: `perfsanity slurm script` for every
//! upstream aggregated config (read from `../shared/upstream` at run time) checked against
//! upstream's launcher facts — one `srun -N <nodes> --ntasks=<world> --ntasks-per-node=<gpn>
//! --mpi=pmix --kill-on-bad-exit=1` step, wrapped in `trtllm-llmapi-launch` when it spans nodes —
//! then the 2-node script executed by bash with stand-in `srun`/`scontrol`/`scancel` that record
//! their argv: the success path, an engine-worker rank that dies (the script names it), and the
//! harness failing on rank 0.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn upstream_aggregated() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [
        "../shared/upstream/perf-sanity/aggregated",
        "../../shared/upstream/perf-sanity/aggregated",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.is_dir());
    if found.is_none() {
        eprintln!("NOTICE: upstream aggregated configs are absent; the golden checks did not run");
    }
    found
}

/// A stand-in for upstream's repository root holding the one file an upstream aggregated config
/// merges from it (`llama3_1_8b_fp8_ad_hopper`'s `extra_llm_api_config_path`). Its engine keys do
/// not change the GPU count (upstream ignores `world_size` for it), so an empty mapping will do.
fn llm_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir
            .path()
            .join("examples/auto_deploy/model_registry/configs/llama3_1_8b.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{}\n").unwrap();
        dir
    });
    root.path().to_path_buf()
}

/// A models root laid out as upstream's CI has it: every directory of `MODEL_PATH_DICT`
/// (`data/model_paths.json`), empty (the trtllm toolchain's plan checks that the model exists).
fn models_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let facts: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("data/model_paths.json"),
            )
            .unwrap(),
        )
        .unwrap();
        for rel in facts["model_path_dict"].as_object().unwrap().values() {
            std::fs::create_dir_all(dir.path().join(rel.as_str().unwrap())).unwrap();
        }
        dir
    });
    root.path().to_path_buf()
}

/// `perfsanity slurm script <trial>` with `configs` as the config folder.
fn script(configs: &Path, out: &Path, toolchain: &str, trial: &str) -> String {
    try_script(configs, out, toolchain, trial)
        .unwrap_or_else(|e| panic!("slurm script {trial}: {e}"))
}

/// [`script`], or the command's error output.
fn try_script(configs: &Path, out: &Path, toolchain: &str, trial: &str) -> Result<String, String> {
    let o = crate::support::perfsanity_cmd()
        .args(["slurm", "script", trial])
        .env("PERF_CONFIG_DIRS", configs)
        .env("PERF_OUTPUT_DIR", out)
        .env("PERF_TOOLCHAIN", toolchain)
        .env("PERF_DATASET_FALLBACK", "random")
        .env("PERFSANITY_BIN", "/opt/perfsanity/bin/perfsanity")
        .env("LLM_ROOT", llm_root())
        .env("LLM_MODELS_ROOT", models_root())
        .env_remove("PERF_TESTLIST")
        .env_remove("PERF_SLURM_MPI")
        .env_remove("PERF_SLURM_LLMAPI_LAUNCH")
        .env_remove("PERF_SLURM_GPUS")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(String::from_utf8(o.stdout).unwrap())
}

fn directive(script: &str, name: &str) -> Option<String> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH "))
        .find_map(|l| l.strip_prefix(&format!("--{name}=")).map(String::from))
}

/// The AGGR srun line and the command line after it.
fn aggr_step(script: &str) -> (String, String) {
    let lines: Vec<&str> = script.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("srun --job-name=AGGR "))
        .expect("an AGGR srun step");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with("srun "))
            .count(),
        1,
        "exactly one srun step"
    );
    (lines[i].to_string(), lines[i + 1].trim().to_string())
}

/// Upstream's aggregated configs: stem → (nodes, world, gpus per node), from the launcher math
/// (`nodes = ⌈gpus / hardware.gpus_per_node⌉`, world = the largest server's GPUs).
const UPSTREAM: &[(&str, u64, u64, u64)] = &[
    ("deepseek_r1_fp4_v2_2_nodes_grace_blackwell", 2, 8, 4),
    ("deepseek_r1_fp4_v2_grace_blackwell", 1, 4, 4),
    ("deepseek_v32_fp4_blackwell", 1, 8, 8),
    ("dynamo_qwen3_32b_fp8_hopper", 1, 2, 8),
    ("gpt_oss_120b_fp4_grace_blackwell", 1, 4, 4),
    ("host_perf_deepseek_v3_lite", 1, 1, 1),
    ("host_perf_llama8b_spec_decode", 1, 1, 1),
    ("k25_thinking_fp4_blackwell", 1, 8, 8),
    ("llama3_1_8b_fp8_ad_hopper", 1, 1, 1),
    ("llama_v3_3_70b_instruct_fp4_blackwell", 1, 4, 8),
];

#[test]
fn every_upstream_aggregated_config_gets_the_launcher_layout() {
    let Some(configs) = upstream_aggregated() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut stems: Vec<String> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    let known: Vec<&str> = UPSTREAM.iter().map(|u| u.0).collect();
    assert_eq!(
        stems, known,
        "the golden table covers every upstream aggregated config"
    );
    for &(stem, nodes, world, gpn) in UPSTREAM {
        let trial = format!("aggr_upload-{stem}");
        let s = script(&configs, out.path(), "trtllm", &trial);
        let what = format!("{trial}:\n{s}");
        assert_eq!(directive(&s, "nodes"), Some(nodes.to_string()), "{what}");
        assert_eq!(
            directive(&s, "ntasks"),
            Some((nodes * gpn).to_string()),
            "{what}"
        );
        assert_eq!(
            directive(&s, "ntasks-per-node"),
            Some(gpn.to_string()),
            "{what}"
        );
        assert_eq!(
            directive(&s, "gpus-per-node"),
            Some(gpn.to_string()),
            "{what}"
        );
        let (srun, command) = aggr_step(&s);
        assert!(
            srun.contains("\"${WORKER_MPI[@]}\" --kill-on-bad-exit=1 ")
                && s.contains("WORKER_MPI=('--mpi=pmix')"),
            "{what}"
        );
        if nodes > 1 {
            assert!(
                srun.contains(&format!(
                    " -N {nodes} -w \"$(slice 0 {nodes})\" --ntasks={world} --ntasks-per-node={} ",
                    world.min(gpn)
                )),
                "{what}"
            );
            assert!(s.contains("LLMAPI_LAUNCH=(trtllm-llmapi-launch)"), "{what}");
            assert_eq!(
                command,
                "\"${LLMAPI_LAUNCH[@]}\" \"$PERFSANITY_BIN\" run \"$TRIAL\" &>\"$TRIAL_DIR\"/aggr_server.log",
                "{what}"
            );
        } else {
            assert!(
                srun.contains(" -N 1 -w \"$(slice 0 1)\" --ntasks=1 --ntasks-per-node=1 "),
                "{what}"
            );
            assert_eq!(
                command, "\"$PERFSANITY_BIN\" run \"$TRIAL\" &>\"$TRIAL_DIR\"/aggr_server.log",
                "single node: no launcher; {what}"
            );
        }
    }
}

// ------------------------------------------------------------------ running the script

const STUB_SRUN: &str = r#"#!/bin/bash
f="$STUB_LOG/srun.$$"
for a in "$@"; do printf '%s\0' "$a"; done >"$f"
case "$STUB_MODE" in
  ok) echo "step ran"; exit 0 ;;
  rank5)
    echo "[sim] rank 5 of 8 on node2: fault injection exit_at_start=7" >&2
    echo "srun: error: node2: task 5: Exited with exit code 7" >&2
    echo "srun: error: node2: tasks 4,6-7: Terminated" >&2
    echo "srun: error: node1: task 0: Exited with exit code 143" >&2
    exit 7 ;;
  harness)
    echo "srun: error: node1: task 0: Exited with exit code 1" >&2
    echo "srun: error: node1: tasks 1-3: Killed" >&2
    exit 1 ;;
esac
"#;

const STUB_SCONTROL: &str = r#"#!/bin/bash
printf 'node1\nnode2\n'
"#;

const STUB_SCANCEL: &str = r#"#!/bin/bash
echo "$@" >>"$STUB_LOG/scancel"
"#;

struct Run {
    code: i32,
    srun: Vec<String>,
    result: String,
    cancelled: bool,
}

fn run(script: &str, trial_dir: &Path, work: &Path, mode: &str) -> Run {
    let bin = work.join("bin");
    let log = work.join(format!("log-{mode}"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    for (name, text) in [
        ("srun", STUB_SRUN),
        ("scontrol", STUB_SCONTROL),
        ("scancel", STUB_SCANCEL),
    ] {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let file = work.join(format!("script-{mode}.sh"));
    std::fs::write(&file, script).unwrap();
    let status = Command::new("bash")
        .arg(&file)
        .env("PATH", path)
        .env("STUB_LOG", &log)
        .env("STUB_MODE", mode)
        .env("SLURM_JOB_ID", "77")
        .env("SLURM_JOB_NODELIST", "node[1-2]")
        .status()
        .unwrap();
    let srun_file = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("srun.")
        })
        .expect("srun was called");
    let srun = std::fs::read(&srun_file)
        .unwrap()
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .collect();
    Run {
        code: status.code().unwrap_or(-1),
        srun,
        result: std::fs::read_to_string(trial_dir.join("slurm-77.result")).unwrap_or_default(),
        cancelled: log.join("scancel").exists(),
    }
}

#[test]
fn two_node_script_runs_one_world_and_names_a_dying_rank() {
    let Some(configs) = upstream_aggregated() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let stem = "deepseek_r1_fp4_v2_2_nodes_grace_blackwell";
    let trial = format!("aggr_upload-{stem}-r1_fp4_v2_dep8_mtp1_1k1k");
    let trial_dir = out.path().join(&trial);
    for (toolchain, wrapper) in [
        ("trtllm", vec!["trtllm-llmapi-launch".to_string()]),
        (
            "sim",
            vec![
                "/opt/perfsanity/bin/perfsanity".to_string(),
                "sim".to_string(),
                "--rendezvous".to_string(),
                trial_dir.display().to_string(),
                "trtllm-llmapi-launch".to_string(),
            ],
        ),
    ] {
        let s = script(&configs, out.path(), toolchain, &trial);
        let ok = run(&s, &trial_dir, work.path(), "ok");
        assert_eq!(ok.code, 0, "{toolchain}: {}", ok.result);
        let mut expected: Vec<String> = [
            "--job-name=AGGR",
            "--mpi=pmix",
            "--kill-on-bad-exit=1",
            "-N",
            "2",
            "-w",
            "node1,node2",
            "--ntasks=8",
            "--ntasks-per-node=4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expected.extend(wrapper.clone());
        expected.extend(
            ["/opt/perfsanity/bin/perfsanity", "run", trial.as_str()]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(ok.srun, expected, "{toolchain}: srun argv");
        assert!(ok.result.contains("step_exit_AGGR=0"), "{}", ok.result);
        assert!(ok.result.contains("outcome=completed"), "{}", ok.result);
        assert!(ok.result.contains("nodes=node1 node2"), "{}", ok.result);
        assert!(!ok.cancelled);
        std::fs::remove_dir_all(work.path().join("log-ok")).unwrap();
    }

    let s = script(&configs, out.path(), "sim", &trial);
    let dead = run(&s, &trial_dir, work.path(), "rank5");
    assert_eq!(dead.code, 1);
    assert!(dead.cancelled, "the job is cancelled");
    assert!(dead.result.contains("step_exit_AGGR=7"), "{}", dead.result);
    assert!(dead.result.contains("failed_stage=AGGR"), "{}", dead.result);
    assert!(
        dead.result.contains(
            "message=rank 5 (an engine worker) on node2 exited 7; srun ended the other ranks"
        ),
        "{}",
        dead.result
    );
    assert!(!dead.result.contains("outcome=completed"));

    let failed = run(&s, &trial_dir, work.path(), "harness");
    assert_eq!(failed.code, 1);
    assert!(
        failed
            .result
            .contains("message=rank 0 (the harness) on node1 exited 1"),
        "{}",
        failed.result
    );
}
