//! Client overhead benchmark: CPU per streamed chunk and timing error against the scripted
//! server's own send times, for `perfsanity bench --flavor sa` and (optionally) the Python SA
//! client `kedarpotdar-nv/bench_serving`, given the very same argv.
//!
//! `cargo bench --bench bench_client` — knobs (environment):
//! * `BENCH_CONCURRENCY` (default `1,16,64,256,512`), `BENCH_OUTPUT_LEN` (200 tokens),
//!   `BENCH_ROUNDS` (prompts = rounds × concurrency, default 2), `BENCH_TTFT_MS` (50),
//!   `BENCH_GAP_MS` (10), `BENCH_SERVER_THREADS` (1; 0 = single-threaded server runtime);
//! * `PERFSANITY_SA_PYTHON` + `PERFSANITY_SA_CLIENT`: a Python interpreter and the SA
//!   client's `benchmark_serving.py` to run side by side (never vendored here).
//!
//! The server runs in this process on its own thread; each client is a child process, so its
//! CPU time (user + system, from `RUSAGE_CHILDREN`) is the client's alone. Truth comes from the
//! server's records of when it handed each chunk to HTTP: the mean and p99 of the actual gaps
//! and the actual arrival → first chunk time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use perfsanity::tools::bench::scripted_server::{
    Script, ScriptedServer, write_wordlevel_tokenizer,
};
use perfsanity::util::stats;
use serde_json::Value;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn children_cpu() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    tv(u.user_time()) + tv(u.system_time())
}

struct Row {
    client: String,
    startup_cpu_s: f64,
    concurrency: usize,
    chunks: u64,
    cpu_s: f64,
    wall_s: f64,
    itl_err_pct: f64,
    p99_itl_err_ms: f64,
    ttft_excess_ms: f64,
    lag_flag: String,
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    name: &str,
    program: &[String],
    server: &ScriptedServer,
    tokdir: &Path,
    outdir: &Path,
    concurrency: usize,
    prompts: usize,
    output_len: u32,
) -> Option<Row> {
    let result = format!("{}-{concurrency}.json", name.replace([' ', '(', ')'], "_"));
    let _ = server.state.take_served();
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..])
        .arg("--model")
        .arg(tokdir)
        .args(["--dataset-name", "random", "--random-input-len", "64"])
        .args(["--random-output-len", &output_len.to_string()])
        .args(["--random-range-ratio", "1.0", "--ignore-eos"])
        .args(["--num-prompts", &prompts.to_string()])
        .args(["--max-concurrency", &concurrency.to_string()])
        .args([
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--disable-tqdm",
        ])
        .args(["--save-result", "--result-dir"])
        .arg(outdir)
        .args(["--result-filename", &result])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.addr.port().to_string(),
        ]);
    let cpu0 = children_cpu();
    let t0 = std::time::Instant::now();
    let out = cmd.output().expect("client starts");
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = children_cpu() - cpu0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "{name} at concurrency {concurrency} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(outdir.join(&result)).ok()?).ok()?;
    let mut served = server.state.take_served();
    // Both clients send one un-measured test request first: leave it out of the truth.
    if let Some(first) = served
        .iter()
        .enumerate()
        .min_by_key(|(_, r)| r.arrival)
        .map(|(i, _)| i)
    {
        served.remove(first);
    }
    let gaps: Vec<f64> = served
        .iter()
        .flat_map(|r| {
            r.chunk_sent
                .windows(2)
                .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
                .collect::<Vec<_>>()
        })
        .collect();
    let ttfts: Vec<f64> = served
        .iter()
        .filter_map(|r| {
            r.chunk_sent
                .first()
                .map(|c| c.duration_since(r.arrival).as_secs_f64() * 1e3)
        })
        .collect();
    let chunks: u64 = served.iter().map(|r| r.chunk_sent.len() as u64).sum();
    let truth_itl = stats::mean(&gaps);
    let client_itl = j["mean_itl_ms"].as_f64()?;
    let lag_flag = j["perfsanity_client"]["client_health"]["lag_over_budget"]
        .as_bool()
        .map_or("n/a".to_string(), |b| {
            if b { "over" } else { "ok" }.to_string()
        });
    Some(Row {
        startup_cpu_s: 0.0,
        client: name.to_string(),
        concurrency,
        chunks,
        cpu_s,
        wall_s,
        itl_err_pct: (client_itl - truth_itl) / truth_itl * 100.0,
        p99_itl_err_ms: j["p99_itl_ms"].as_f64()? - stats::percentile(&gaps, 99.0),
        ttft_excess_ms: j["mean_ttft_ms"].as_f64()? - stats::mean(&ttfts),
        lag_flag,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let conc: Vec<usize> = env_or("BENCH_CONCURRENCY", "1,16,64,256,512")
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .expect("BENCH_CONCURRENCY: comma list of integers")
        })
        .collect();
    let output_len: u32 = env_or("BENCH_OUTPUT_LEN", "200")
        .parse()
        .expect("BENCH_OUTPUT_LEN");
    let rounds: usize = env_or("BENCH_ROUNDS", "2").parse().expect("BENCH_ROUNDS");
    let ttft: f64 = env_or("BENCH_TTFT_MS", "50")
        .parse()
        .expect("BENCH_TTFT_MS");
    let gap: f64 = env_or("BENCH_GAP_MS", "10").parse().expect("BENCH_GAP_MS");
    let threads: usize = env_or("BENCH_SERVER_THREADS", "1")
        .parse()
        .expect("BENCH_SERVER_THREADS");
    let script = Script {
        ttft: Duration::from_secs_f64(ttft / 1e3),
        gaps: vec![Duration::from_secs_f64(gap / 1e3)],
        ..Script::default()
    };
    let server = ScriptedServer::start(script, 0, threads).expect("server");
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokdir = tmp.path().join("tokenizer");
    write_wordlevel_tokenizer(&tokdir, 32_000).expect("tokenizer");

    let mut clients: Vec<(String, Vec<String>)> = vec![(
        "perfsanity".into(),
        vec![
            env!("CARGO_BIN_EXE_perfsanity").into(),
            "bench".into(),
            "--flavor".into(),
            "sa".into(),
        ],
    )];
    clients.push((
        "perfsanity (read stamps)".into(),
        vec![
            env!("CARGO_BIN_EXE_perfsanity").into(),
            "bench".into(),
            "--flavor".into(),
            "sa".into(),
            "--timestamp-source".into(),
            "read".into(),
        ],
    ));
    if let (Ok(py), Ok(script)) = (
        std::env::var("PERFSANITY_SA_PYTHON"),
        std::env::var("PERFSANITY_SA_CLIENT"),
    ) {
        clients.push(("python-sa".into(), vec![py, script]));
    }
    println!(
        "server: ttft {ttft} ms, gap {gap} ms, {output_len} tokens/request, 1 token/chunk, \
         {rounds} × concurrency prompts; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Start-up cost (imports, tokenizer, dataset): one request of one token.
    let mut startup = std::collections::HashMap::new();
    for (name, program) in &clients {
        let r = run_one(name, program, &server, &tokdir, tmp.path(), 1, 1, 1);
        startup.insert(name.clone(), r.map_or(0.0, |r| r.cpu_s));
    }
    println!(
        "| client | concurrency | chunks | client CPU s (start-up) | CPU s per 1M chunks, start-up excluded | wall s | mean ITL error | p99 ITL − truth (ms) | mean TTFT − truth (ms) | lag flag |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &c in &conc {
        for (name, program) in &clients {
            let Some(mut r) = run_one(
                name,
                program,
                &server,
                &tokdir,
                tmp.path(),
                c,
                rounds * c,
                output_len,
            ) else {
                continue;
            };
            r.startup_cpu_s = startup[name];
            println!(
                "| {} | {} | {} | {:.2} ({:.2}) | {:.2} | {:.2} | {:+.2} % | {:+.2} | {:+.2} | {} |",
                r.client,
                r.concurrency,
                r.chunks,
                r.cpu_s,
                r.startup_cpu_s,
                (r.cpu_s - r.startup_cpu_s).max(0.0) / r.chunks.max(1) as f64 * 1e6,
                r.wall_s,
                r.itl_err_pct,
                r.p99_itl_err_ms,
                r.ttft_excess_ms,
                r.lag_flag
            );
        }
    }
}
