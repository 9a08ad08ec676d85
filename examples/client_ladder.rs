//! Client scaling ladder: `perfsanity bench` pinned to some cores against the scripted server
//! pinned to others, each run's ITL compared with the server's truth (when it handed each chunk
//! to HTTP), plus the client's own overload flag — the measurement behind `docs/BENCHMARKS.md`
//! ("Client across cores").
//!
//! ```sh
//! cargo build --release --bin perfsanity --example client_ladder
//! target/release/examples/client_ladder --bin target/release/perfsanity \
//!   --server-cpus 8-15 --server-threads 8 --client-cpus 0-3 \
//!   --run 'c256:256:' --run 'c4096:4096:--threads 4' --json ladder.jsonl
//! ```
//!
//! `--run LABEL:CONCURRENCY:EXTRA ARGS` (space-separated extra client flags) may repeat; every
//! run sends `--rounds × concurrency` requests of `--output-len` tokens, one token per chunk
//! every `--gap-ms`. Truth p99 is numpy-linear over every actual gap; the client's figures come
//! from its `--save-result` JSON; CPU is the child's user + system time.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use perfsanity::tools::bench::scripted_server::{
    Script, ScriptedServer, write_wordlevel_tokenizer,
};
use perfsanity::util::stats;
use serde_json::{Value, json};

#[derive(Parser)]
struct Opts {
    /// The perfsanity binary.
    #[arg(long)]
    bin: PathBuf,
    /// CPUs of this process and its server (e.g. `8-15`).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Server runtime worker threads (0 = single-threaded).
    #[arg(long, default_value_t = 8)]
    server_threads: usize,
    /// CPUs of each client process (e.g. `0-3`).
    #[arg(long)]
    client_cpus: Option<String>,
    /// Runs: `LABEL:CONCURRENCY:EXTRA CLIENT ARGS`.
    #[arg(long = "run", required = true)]
    runs: Vec<String>,
    /// Requests per run = rounds × concurrency.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Output tokens per request.
    #[arg(long, default_value_t = 500)]
    output_len: u32,
    /// Gap between chunks (ms).
    #[arg(long, default_value_t = 10.0)]
    gap_ms: f64,
    /// Arrival → first chunk (ms).
    #[arg(long, default_value_t = 50.0)]
    ttft_ms: f64,
    /// Append one JSON object per run to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// `0-3,8` → [0, 1, 2, 3, 8].
fn cpu_list(text: &str) -> Vec<usize> {
    text.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().expect("cpu"), b.parse().expect("cpu"));
                (a..=b).collect::<Vec<_>>()
            }
            None => vec![part.parse().expect("cpu")],
        })
        .collect()
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

fn pin_self(cpus: &[usize]) {
    let set = cpu_set(cpus);
    // SAFETY: a valid set of the right size for the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(rc, 0, "sched_setaffinity {cpus:?}");
}

fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn run_one(
    o: &Opts,
    server: &ScriptedServer,
    tokdir: &Path,
    outdir: &Path,
    spec: &str,
) -> Option<Value> {
    let mut parts = spec.splitn(3, ':');
    let label = parts.next()?.to_string();
    let conc: usize = parts.next()?.parse().expect("concurrency");
    let extra: Vec<&str> = parts.next().unwrap_or("").split_whitespace().collect();
    let file = format!("{label}.json");
    let _ = server.state.take_served();
    let mut cmd = Command::new(&o.bin);
    cmd.arg("bench")
        .arg("--model")
        .arg(tokdir)
        .args([
            "--dataset-name",
            "random",
            "--random-ids",
            "--no-test-input",
        ])
        .args(["--random-input-len", "64", "--random-range-ratio", "0"])
        .args([
            "--random-output-len",
            &o.output_len.to_string(),
            "--ignore-eos",
        ])
        .args(["--num-prompts", &(o.rounds * conc).to_string()])
        .args(["--max-concurrency", &conc.to_string()])
        .args([
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--disable-tqdm",
        ])
        .args(["--save-result", "--result-dir"])
        .arg(outdir)
        .args(["--result-filename", &file])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.addr.port().to_string(),
        ])
        .args(&extra);
    if let Some(c) = &o.client_cpus {
        let set = cpu_set(&cpu_list(c));
        // SAFETY: sched_setaffinity is async-signal-safe; `set` is a copied plain value.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let cpu0 = children_cpu();
    let out = cmd.output().expect("client starts");
    let cpu_s = children_cpu() - cpu0;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let j: Value = match std::fs::read_to_string(outdir.join(&file)) {
        Ok(t) => serde_json::from_str(&t).ok()?,
        Err(_) => {
            eprintln!(
                "{label}: no result ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
    };
    let served = server.state.take_served();
    let summary = server.state.summary();
    let gaps: Vec<f64> = served
        .iter()
        .flat_map(|r| {
            r.chunk_sent
                .windows(2)
                .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
                .collect::<Vec<_>>()
        })
        .collect();
    let chunks: u64 = served.iter().map(|r| r.chunk_sent.len() as u64).sum();
    let late: Vec<f64> = served
        .iter()
        .flat_map(|r| {
            r.chunk_sent
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let due = r.arrival
                        + Duration::from_secs_f64(o.ttft_ms / 1e3)
                        + Duration::from_secs_f64(o.gap_ms / 1e3 * k as f64);
                    t.saturating_duration_since(due).as_secs_f64() * 1e3
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let health = &j["perfsanity_client"]["client_health"];
    let truth_mean = stats::mean(&gaps);
    let truth_p99 = stats::percentile(&gaps, 99.0);
    let truth_median = stats::median(&gaps);
    let duration = j["duration"].as_f64().unwrap_or(0.0);
    let row = json!({
        "label": label,
        "concurrency": conc,
        "extra_args": extra,
        "exit": out.status.code(),
        "chunks": chunks,
        "duration_s": duration,
        "chunks_per_s": chunks as f64 / duration.max(1e-9),
        "client_cpu_s": cpu_s,
        "cpu_us_per_chunk": cpu_s / chunks.max(1) as f64 * 1e6,
        "truth_mean_itl_ms": truth_mean,
        "truth_median_itl_ms": truth_median,
        "truth_p99_itl_ms": truth_p99,
        "client_mean_itl_ms": j["mean_itl_ms"],
        "client_median_itl_ms": j["median_itl_ms"],
        "client_p99_itl_ms": j["p99_itl_ms"],
        "mean_itl_err_pct": (j["mean_itl_ms"].as_f64()? - truth_mean) / truth_mean * 100.0,
        "p99_itl_err_ms": j["p99_itl_ms"].as_f64()? - truth_p99,
        "median_itl_err_ms": j["median_itl_ms"].as_f64()? - truth_median,
        "server_p99_late_ms": stats::percentile(&late, 99.0),
        "server_max_late_ms": summary.max_late_ms,
        "flagged": health["lag_over_budget"],
        "reasons": health["lag_over_budget_reasons"],
        "merged_itl_share": health["merged_itl_share"],
        "merged_itl_samples": health["merged_itl_samples"],
        "arrival_to_handling_p99_ms": health["arrival_to_handling_ms"]["p99"],
        "run_queue_probe_p99_ms": health["run_queue_delay_probe_ms"]["p99"],
        "failed": j["perfsanity_client"]["failed_requests"],
    });
    Some(row)
}

fn main() {
    let o = Opts::parse();
    perfsanity::util::rlimit::raise_open_files_limit();
    if let Some(c) = &o.server_cpus {
        pin_self(&cpu_list(c));
    }
    let script = Script {
        ttft: Duration::from_secs_f64(o.ttft_ms / 1e3),
        gaps: vec![Duration::from_secs_f64(o.gap_ms / 1e3)],
        ..Script::default()
    };
    let server = ScriptedServer::start(script, 0, o.server_threads).expect("server");
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokdir = tmp.path().join("tokenizer");
    write_wordlevel_tokenizer(&tokdir, 32_000).expect("tokenizer");
    println!(
        "| run | concurrency | client args | chunks/s | client CPU s | us/chunk | mean ITL err | \
         p99 ITL − truth (ms) | median ITL − truth (ms) | merged gaps | flagged | server p99 late (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for spec in &o.runs {
        let Some(r) = run_one(&o, &server, &tokdir, tmp.path(), spec) else {
            continue;
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:+.3} % | {:+.3} | {:+.3} | {:.3} % | {} | {:.2} |",
            r["label"].as_str().unwrap_or(""),
            r["concurrency"],
            r["extra_args"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default(),
            r["chunks_per_s"].as_f64().unwrap_or(0.0),
            r["client_cpu_s"].as_f64().unwrap_or(0.0),
            r["cpu_us_per_chunk"].as_f64().unwrap_or(0.0),
            r["mean_itl_err_pct"].as_f64().unwrap_or(0.0),
            r["p99_itl_err_ms"].as_f64().unwrap_or(0.0),
            r["median_itl_err_ms"].as_f64().unwrap_or(0.0),
            r["merged_itl_share"].as_f64().unwrap_or(0.0) * 100.0,
            r["flagged"],
            r["server_p99_late_ms"].as_f64().unwrap_or(0.0),
        );
        if let Some(path) = &o.json {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("json file");
            let _ = writeln!(f, "{r}");
        }
    }
}
