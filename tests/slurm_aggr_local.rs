//! Multi-node aggregated trials on a real Slurm (`scripts/local-slurm.sh up`: 4 nodes, each its
//! own network and UTS namespace). A 2-node aggregated sim trial (DEP8 on 4-GPU nodes) goes
//! through `perfsanity slurm submit --wait` → `sbatch`: one `AGGR` srun step of 8 ranks on two
//! nodes, the harness on rank 0 (first node) inside the simulator's `trtllm-llmapi-launch`
//! stand-in, the other seven ranks holding their slots until it exits, records back. A second
//! trial whose rank 5 dies ends as a failed trial naming rank 5. Checked with `sacct` and the
//! trial's files, not only with our own status output.
//!
//! Run by `tests/env_gated.rs`: without a usable cluster the tests are reported ignored; with
//! `PERFSANITY_REQUIRE_SLURM=1` (CI) they fail instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::slurm_local::{job_field, job_id_of, steps_when};

/// A 2-node aggregated sim config: one DEP8 server on 4-GPU nodes, upstream's layout.
fn two_node_config(faults: &str) -> String {
    format!(
        "metadata:\n  model_name: sim_tiny_llm\n  supported_gpus:\n  - SIM\nhardware:\n  gpus_per_node: 4\n\
         server_configs:\n  - name: \"tiny_dep8\"\n    tensor_parallel_size: 8\n    \
         moe_expert_parallel_size: 8\n    pipeline_parallel_size: 1\n    enable_attention_dp: true\n    \
         max_batch_size: 2\n    max_num_tokens: 128\n    max_seq_len: 512\n    \
         enable_chunked_prefill: true\n    print_iter_log: true\n    client_configs:\n      \
         - name: \"con8_iter1_random\"\n        concurrency: 8\n        iterations: 1\n        \
         isl: 64\n        osl: 16\n        random_range_ratio: 0.5\n        backend: \"openai\"\n\
         sim:\n  latency:\n    load_delay_ms: 100\n{faults}"
    )
}

struct Setup {
    work: tempfile::TempDir,
    configs: PathBuf,
    out: PathBuf,
}

/// Configs in a folder named `aggregated` (upstream's layout is chosen by the folder) on the
/// filesystem every node shares.
fn setup(configs: &[(&str, String)]) -> Setup {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).unwrap();
    let work = tempfile::Builder::new()
        .prefix("slurm-aggr-")
        .tempdir_in(base)
        .unwrap();
    let dir = work.path().join("aggregated");
    std::fs::create_dir_all(&dir).unwrap();
    for (stem, text) in configs {
        std::fs::write(dir.join(format!("{stem}.yaml")), text).unwrap();
    }
    let out = work.path().join("out");
    Setup {
        configs: dir,
        out,
        work,
    }
}

fn submit(s: &Setup, trials: &[&str]) -> (Option<i32>, String) {
    let started = Instant::now();
    let out = crate::support::perfsanity_cmd()
        .args(["slurm", "submit", "--wait", "--poll", "0.5"])
        .args(trials)
        .current_dir(s.work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("PERF_CONFIG_DIRS", &s.configs)
        .env("PERF_OUTPUT_DIR", &s.out)
        .env("PERF_DB", s.work.path().join("perf.sqlite"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_SLURM_CONTAINER", "off")
        .env("PERF_SLURM_TIME", "5")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{text}(submit --wait took {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    (out.status.code(), text)
}

/// The allocation as the batch script recorded it (`nodes=` in the result file, from
/// `scontrol show hostnames`; sacct's job-level node list can lag behind).
fn recorded_nodes(result: &str) -> Vec<String> {
    result
        .lines()
        .find_map(|l| l.strip_prefix("nodes="))
        .map(|n| n.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// `sacct` steps named `name`: (state, exit code, node names, tasks).
fn steps_named(job: &str, name: &str) -> Vec<(String, String, Vec<String>, String)> {
    steps_when(job, |rows| rows.iter().any(|r| r.0 == name))
        .into_iter()
        .filter(|r| r.0 == name)
        .map(|(_, state, exit, nodes, tasks)| (state, exit, nodes, tasks))
        .collect()
}

/// The tests of this module, for `tests/env_gated.rs`.
pub const TESTS: &[(&str, fn())] = &[
    (
        "two_node_aggregated_trial_runs_as_one_world",
        two_node_aggregated_trial_runs_as_one_world,
    ),
    (
        "a_dying_rank_fails_the_trial_naming_it",
        a_dying_rank_fails_the_trial_naming_it,
    ),
];

/// What is missing for these tests, if anything (the same cluster as `slurm_local`).
pub fn missing() -> Option<String> {
    crate::slurm_local::missing()
}

fn two_node_aggregated_trial_runs_as_one_world() {
    let stem = "sim_aggr_dep8_2_nodes";
    let s = setup(&[(stem, two_node_config(""))]);
    let trial = format!("aggr-{stem}");
    let (code, output) = submit(&s, &[&trial]);
    assert_eq!(code, Some(0), "{output}");
    let job = job_id_of(&output, &trial);
    assert!(
        output.contains(&format!("PASS {trial} (job {job}): passed")),
        "{output}"
    );
    assert_eq!(job_field(&job, "State"), "COMPLETED");
    let trial_dir = s.out.join(&trial);
    let result = std::fs::read_to_string(trial_dir.join(format!("slurm-{job}.result"))).unwrap();
    assert!(result.contains("outcome=completed"), "{result}");
    let nodes = recorded_nodes(&result);
    assert_eq!(nodes.len(), 2, "{result}");
    let steps = steps_named(&job, "AGGR");
    assert_eq!(steps.len(), 1, "one aggregated step: {steps:?}");
    let (state, exit, step_nodes, tasks) = &steps[0];
    assert_eq!((state.as_str(), exit.as_str()), ("COMPLETED", "0:0"));
    assert_eq!(step_nodes, &nodes, "the step spans both nodes");
    assert_eq!(tasks, "8", "one rank per GPU");

    let log = std::fs::read_to_string(trial_dir.join("aggr_server.log")).unwrap();
    // The harness ran once, on rank 0 on the first node; ranks 1-3 on node 1 and 4-7 on node 2
    // held their slots until it exited, then left on their own (exit 0).
    assert_eq!(
        log.matches("trtllm-llmapi-launch: rank 0 of 8 on ").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains(&format!("rank 0 of 8 on {} runs", nodes[0])),
        "{log}"
    );
    for rank in 1..8 {
        let node = &nodes[usize::from(rank >= 4)];
        assert!(
            log.contains(&format!(
                "rank {rank} of 8 on {node} stands in for an MPI engine worker"
            )),
            "rank {rank} on {node}: {log}"
        );
        assert!(
            log.contains(&format!("rank {rank}: rank 0 exited 0; done")),
            "rank {rank} waited for rank 0: {log}"
        );
    }
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(trial_dir.join("perf_records.json")).unwrap(),
    )
    .unwrap();
    assert!(
        records.as_array().is_some_and(|r| !r.is_empty()),
        "records: {records}"
    );
}

fn a_dying_rank_fails_the_trial_naming_it() {
    let stem = "sim_aggr_dep8_2_nodes_rank_dies";
    let s = setup(&[(
        stem,
        two_node_config("  faults:\n    RANK_5:\n      exit_at_start: 7\n"),
    )]);
    let trial = format!("aggr-{stem}");
    let (code, output) = submit(&s, &[&trial]);
    assert_eq!(code, Some(1), "{output}");
    let job = job_id_of(&output, &trial);
    assert!(
        output.contains(&format!("FAIL {trial} (job {job})")) && output.contains("AGGR"),
        "{output}"
    );
    let result =
        std::fs::read_to_string(s.out.join(&trial).join(format!("slurm-{job}.result"))).unwrap();
    let nodes = recorded_nodes(&result);
    assert_eq!(nodes.len(), 2, "{result}");
    // Ranks 4-7 run on the second node.
    let message = format!("rank 5 (an engine worker) on {} exited 7", nodes[1]);
    assert!(output.contains(&message), "{output}");
    assert!(
        job_field(&job, "State").starts_with("CANCELLED"),
        "the script cancels its own job"
    );
    assert!(result.contains("failed_stage=AGGR"), "{result}");
    assert!(result.contains(&message), "{result}");
    assert!(!result.contains("outcome=completed"), "{result}");
}
