//! `cargo bench --bench runner_overhead`: what the runner adds around the processes of a trial,
//! from `timeline.json`, over the simulator-sized trials of `test_configs/` (`disagg-sim-*`), each
//! run several times with `perfsanity run` (release build). Prints the figures recorded in
//! docs/BENCHMARKS.md ("Runner").
//!
//! Harness overhead per trial (goal ≤ 0.5 s) is the sum of
//!
//! * set-up: trial start → first worker spawned (config, plan, files, dataset);
//! * hand-over: router ready → first client spawned;
//! * between clients: client i exited → client i+1 spawned;
//! * teardown: last client exited → every process reaped.
//!
//! Server start-up (spawn → router ready) and the clients' run time are the processes' own.
//! Also shown: the native client's own start + finish (its wall time minus the `Benchmark
//! duration` it reports: process start, tokenizer, prompts, the initial test request, printing —
//! an upper bound of what sits between "client spawned" and "first request" plus "last
//! response" and "client exited"), the work after reaping (gen-log metrics, SQLite record,
//! regression check), and what `perfsanity run` spends outside the trial (process start,
//! catalog of every config, exit).
//!
//! Options: `--runs <N>` (default 5), `--trial <name>` (only this one).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

const TRIALS: &[&str] = &[
    "disagg-sim-e2e-nvsa_ctx1_gen2",
    "disagg-sim-e2e-standard-random_ctx2_gen2",
    "disagg-sim-e2e-dataset_ctx1_gen1",
    "disagg-sim-gen-only-dataset_ctx1_gen2",
];

/// One run's figures, in seconds.
#[derive(Default, Clone, Copy)]
struct Figures {
    setup: f64,
    handover: f64,
    between: f64,
    teardown: f64,
    overhead: f64,
    servers_up: f64,
    client_own: f64,
    after_reap: f64,
    outside: f64,
    wall: f64,
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn benchmark_duration(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Benchmark duration (s):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no benchmark duration in {}", log.display()))
}

fn run_once(dir: &Path, trial: &str) -> Figures {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_perfsanity"))
        .args(["run", trial])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_OUTPUT_DIR", dir.join("out"))
        .env("PERF_DB", dir.join("results.sqlite"))
        .env("PERF_SIM_DATASETS", dir.join("datasets"))
        .env_remove("PERF_TESTLIST")
        .env_remove("PERF_CONFIG_DIRS")
        .env_remove("PERF_SCALE")
        .env_remove("OPEN_SEARCH_DB_BASE_URL")
        .output()
        .expect("perfsanity runs");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{trial} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let trial_dir = dir.join("out").join(trial);
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(trial_dir.join("timeline.json")).unwrap())
            .unwrap();
    let at = |k: &str| t[k].as_f64().unwrap();
    let clients: Vec<(f64, f64)> = t["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["spawned_s"].as_f64().unwrap(),
                c["exited_s"].as_f64().unwrap(),
            )
        })
        .collect();
    let between = clients.windows(2).map(|w| w[1].0 - w[0].1).sum::<f64>() + 0.0;
    let client_own: f64 = clients
        .iter()
        .enumerate()
        .map(|(i, (spawned, exited))| {
            let log = trial_dir.join(format!("trtllm-benchmark.0.{i}.log"));
            (exited - spawned) - benchmark_duration(&log)
        })
        .sum::<f64>()
        / clients.len() as f64;
    let f = Figures {
        setup: at("first_spawn_s"),
        handover: at("first_client_s") - at("router_ready_s"),
        between,
        teardown: at("all_reaped_s") - at("clients_done_s"),
        overhead: 0.0,
        servers_up: at("router_ready_s") - at("first_spawn_s"),
        client_own,
        after_reap: at("recorded_s") - at("all_reaped_s"),
        outside: wall - at("recorded_s"),
        wall,
    };
    Figures {
        overhead: f.setup + f.handover + f.between + f.teardown,
        ..f
    }
}

fn ms(v: f64) -> String {
    format!("{:.1}", v * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list; nothing to list.
    }
    let runs: usize = arg("--runs").map_or(5, |v| v.parse().expect("--runs <number>"));
    let only = arg("--trial");
    let dir = tempfile::tempdir().unwrap();
    println!(
        "runner overhead, {runs} runs per trial (median / max, milliseconds; `perfsanity run`, sim)"
    );
    println!(
        "| trial | clients | set-up | hand-over | between clients | teardown | **overhead** | servers up | client's own start+finish | after reaping | outside the trial | wall |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for trial in TRIALS {
        if only.as_deref().is_some_and(|o| o != *trial) {
            continue;
        }
        let figures: Vec<Figures> = (0..runs).map(|_| run_once(dir.path(), trial)).collect();
        let clients =
            std::fs::read_to_string(dir.path().join("out").join(trial).join("timeline.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|t| t["clients"].as_array().map(Vec::len))
                .unwrap_or(0);
        let col = |pick: fn(&Figures) -> f64| {
            let mut v: Vec<f64> = figures.iter().map(pick).collect();
            v.sort_by(f64::total_cmp);
            format!("{} / {}", ms(v[v.len() / 2]), ms(v[v.len() - 1]))
        };
        println!(
            "| {trial} | {clients} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} |",
            col(|f| f.setup),
            col(|f| f.handover),
            col(|f| f.between),
            col(|f| f.teardown),
            col(|f| f.overhead),
            col(|f| f.servers_up),
            col(|f| f.client_own),
            col(|f| f.after_reap),
            col(|f| f.outside),
            col(|f| f.wall),
        );
    }
}
