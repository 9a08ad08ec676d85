//! `cargo bench --bench gen_log_scan`: throughput of the gen_only device-step metric
//! (`measure::gen_log::device_step_stats`) on generated generation-worker logs, in GB/s of log
//! consumed. Prints the figures recorded in docs/BENCHMARKS.md ("Log scanning").
//!
//! Two logs, written to a temp dir and deleted afterwards:
//!
//! * **mixed** (default 4 GB): what a verbose multi-rank gen worker writes — TensorRT-LLM
//!   iteration lines (rank 0, `print_iter_log: true`, the simulator's exact format) between
//!   runs of other lines (uvicorn access lines, executor and NCCL info, warnings, long JSON-ish
//!   request dumps). One iteration line per ~9 KB keeps the file under the 500,000-row cap, so
//!   every byte is scanned.
//! * **dense**: nothing but iteration lines, 499,000 of them (just under the cap, ~165 MB): the
//!   per-byte worst case, where every line is parsed.
//!
//! Each log is measured with its pages in the page cache ("warm": parsing cost) and, after
//! `posix_fadvise(DONTNEED)` evicts them, from disk ("cold": this machine's disk). The
//! generator also computes the expected statistics and the run asserts them, so a faster scan
//! that changes the answer fails here.
//!
//! Options: `--gb <N>` (size of the mixed log, default 4), `--runs <N>` (default 3),
//! `--case mixed|dense` (only one log), `--dir <path>` (where the logs go; default the system
//! temp dir).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use perfsanity::measure::gen_log::{MAX_ROWS_PER_FILE, StepTimeStats, device_step_stats};

/// Other lines of a gen worker log, cycled through in a scrambled order.
const OTHER: &[&str] = &[
    "INFO:     10.0.0.17:53312 - \"POST /v1/completions HTTP/1.1\" 200 OK",
    "[11/28/2026-15:17:09] [TRT-LLM] [I] [_torch] scheduled 12 generation requests, 0 context requests; kv cache blocks free 18234 / 20480",
    "vm-gpu-03:2291:2345 [3] NCCL INFO Channel 07/32 : 0[0] -> 1[1] via P2P/CUMEM/read",
    "[11/28/2026-15:17:09] [TRT-LLM] [W] [_torch] request 8812 exceeded the stream_interval budget; flushing 4 tokens early",
    "[11/28/2026-15:17:10] [TRT-LLM] [I] [_torch][RANK 3] MoE load balancer: expert statistics updated (288 slots, 256 experts, imbalance 1.07)",
    "[11/28/2026-15:17:10] [TRT-LLM] [I] [disagg] generation-only request ctx_request_id=88123 received KV cache from vm-gpu-01:8336 in 1.84 ms (512 blocks)",
    "[11/28/2026-15:17:10] [TRT-LLM] [I] [_torch] Request {'request_id': 88124, 'prompt_len': 1024, 'max_tokens': 1024, 'sampling_params': {'temperature': 0.0, 'top_p': 1.0, 'top_k': 0, 'ignore_eos': True, 'stop': None}, 'disaggregated_params': {'request_type': 'generation_only', 'first_gen_tokens': [7], 'ctx_request_id': 1}}",
    "vm-gpu-03:2291:2345 [3] NCCL INFO comm 0x5581c2a0 rank 3 nRanks 16 nNodes 4 localRanks 4 localRank 3 MNNVL 1 - Init COMPLETE",
    "",
    "[11/28/2026-15:17:11] [TRT-LLM] [I] [_torch][RANK 7] host step took 6.8 ms; num_generation_tokens budget 8192, used 4096 (no iteration stats on this rank)",
    "[11/28/2026-15:17:11] [TRT-LLM] [E] [_torch] Traceback (most recent call last): RuntimeError: cudaStreamSynchronize(stream) failed: an illegal memory access was encountered (injected for this benchmark; harmless text)",
    "    at tensorrt_llm._torch.pyexecutor.py_executor._executor_loop (py_executor.py:1423): iter = not a number here, prev_device_step_time mentioned in prose only",
];

/// Iteration-line shape of `src/sim/iter_log.rs` (TensorRT-LLM's format).
fn iteration_line(out: &mut Vec<u8>, iter: u64, scheduled: u64, prev_ms: Option<f64>, ngen: u64) {
    let prev = match prev_ms {
        Some(v) => format!("{v}ms"),
        None => "N/A".to_string(),
    };
    let _ = writeln!(
        out,
        "[11/28/2026-15:17:09] [TRT-LLM] [I] [_torch][RANK 0] iter = {iter}, global_rank = 0, rank = 0, \
         num_scheduled_requests = {scheduled}, kv_cache_util = N/A, currank_total_requests = {scheduled}/{scheduled}, \
         host_step_time = 4.28ms, prev_device_step_time = {prev}, timestamp = 2026-11-28 15:17:09, \
         states = {{'num_ctx_requests': 0, 'num_ctx_tokens': 0, 'num_generation_tokens': {ngen}}}"
    );
}

/// What the scan must return: the dominant ngen bucket's mean, and the row count kept.
#[derive(Default)]
struct Expected {
    rows: usize,
    /// (ngen, count, sum) per bucket.
    buckets: Vec<(u64, usize, f64)>,
}

impl Expected {
    fn keep(&mut self, ngen: u64, value: f64) {
        self.rows += 1;
        match self.buckets.iter_mut().find(|b| b.0 == ngen) {
            Some(b) => {
                b.1 += 1;
                b.2 += value;
            }
            None => self.buckets.push((ngen, 1, value)),
        }
    }

    fn mean(&self) -> f64 {
        let best = self
            .buckets
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
            .expect("rows");
        best.2 / best.1 as f64
    }
}

/// Writes a log of about `target` bytes: an iteration line, then `other_bytes` of other lines,
/// repeated; stops before `max_rows` kept rows. Returns the size and the expected answer.
fn write_log(path: &Path, target: u64, other_bytes: usize, max_rows: usize) -> (u64, Expected) {
    let mut out = BufWriter::with_capacity(1 << 22, File::create(path).unwrap());
    let mut expected = Expected::default();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut written = 0u64;
    let mut line = Vec::with_capacity(1024);
    let mut prev_idle_iter: Option<u64> = None;
    let mut iter = 0u64;
    while written < target && expected.rows < max_rows {
        line.clear();
        let r = next();
        // Mostly a full batch of 64 (ngen 64); some partial batches; ~1 % idle iterations.
        let idle = r % 100 == 0;
        let (scheduled, ngen) = if idle {
            (0, 0)
        } else if r % 7 == 0 {
            (32, 32)
        } else {
            (64, 64)
        };
        let value = if iter == 0 || r % 997 == 0 {
            None
        } else {
            Some(6.0 + (r >> 40) as f64 % 2000.0 / 1000.0)
        };
        iteration_line(&mut line, iter, scheduled, value, ngen);
        let after_idle = prev_idle_iter.is_some_and(|p| p + 1 == iter);
        if let Some(v) = value
            && iter >= 5
            && !after_idle
        {
            expected.keep(ngen, v);
        }
        prev_idle_iter = idle.then_some(iter);
        iter += 1;
        let mut other = 0;
        while other < other_bytes {
            let pick = OTHER[(next() % OTHER.len() as u64) as usize];
            line.extend_from_slice(pick.as_bytes());
            line.push(b'\n');
            other += pick.len() + 1;
        }
        out.write_all(&line).unwrap();
        written += line.len() as u64;
    }
    out.flush().unwrap();
    (written, expected)
}

fn evict(path: &Path) {
    let f = File::open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise failed");
}

fn warm(path: &Path) {
    // Read it once so every page is cached.
    let _ = std::fs::read(path).map(|b| b.len());
}

fn measure(path: &Path, bytes: u64, expected: &Expected, cold: bool) -> f64 {
    if cold {
        evict(path);
    }
    let start = Instant::now();
    let stats: StepTimeStats = device_step_stats(&[(path, 0u64)]).expect("the log has usable rows");
    let secs = start.elapsed().as_secs_f64();
    let want = expected.mean();
    assert!(
        (stats.mean - want).abs() <= 1e-9 * want,
        "wrong answer: mean {} (expected {want})",
        stats.mean
    );
    bytes as f64 / secs / 1e9
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn summary(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.2} GB/s (min {:.2}, max {:.2})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list; nothing to list.
    }
    let gb: f64 = arg("--gb").map_or(4.0, |v| v.parse().expect("--gb <number>"));
    let runs: usize = arg("--runs").map_or(3, |v| v.parse().expect("--runs <number>"));
    let base: PathBuf = arg("--dir").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();

    let cases = [
        ("mixed", (gb * 1e9) as u64, 9_000, MAX_ROWS_PER_FILE - 1_000),
        ("dense", u64::MAX, 0, MAX_ROWS_PER_FILE - 1_000),
    ];
    println!("device_step_stats throughput ({runs} runs each; GB = 10^9 bytes)");
    let only = arg("--case");
    for (name, target, other, max_rows) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let path = dir.path().join(format!("gen_server_{name}.log"));
        let t = Instant::now();
        let (bytes, expected) = write_log(&path, target, other, max_rows);
        println!(
            "  {name}: {:.2} GB, {} kept rows, generated in {:.1} s",
            bytes as f64 / 1e9,
            expected.rows,
            t.elapsed().as_secs_f64()
        );
        warm(&path);
        let mut hot: Vec<f64> = (0..runs)
            .map(|_| measure(&path, bytes, &expected, false))
            .collect();
        let mut cold: Vec<f64> = (0..runs)
            .map(|_| measure(&path, bytes, &expected, true))
            .collect();
        println!("    warm (page cache): {}", summary(&mut hot));
        println!("    cold (from disk):  {}", summary(&mut cold));
        std::fs::remove_file(&path).unwrap();
    }
}
