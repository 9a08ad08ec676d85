//! Simulator streaming benchmark: how many streamed tokens per CPU-second the simulated worker
//! sustains, and how far the inter-chunk gaps a client sees drift from the configured step time.
//!
//! Spawns the release `perfsanity sim trtllm-serve` worker, opens N concurrent streaming
//! requests with an async client in this process, records raw (arrival time, tokens) samples per
//! stream in the hot loop, and computes statistics afterwards. The worker's CPU time comes from
//! `/proc/<pid>/stat`, the load generator's from `getrusage`.
//!
//! ```text
//! cargo bench --bench sim_stream -- [--streams 256,1024] [--step-ms 10] [--tokens 1000]
//!                                   [--stream-interval 10]
//! ```

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

struct Options {
    streams: Vec<usize>,
    step_ms: f64,
    tokens: u64,
    stream_interval: u64,
}

fn parse_options() -> Options {
    let mut o = Options {
        streams: vec![256, 1024],
        step_ms: 10.0,
        tokens: 1000,
        stream_interval: 10,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--streams" => {
                o.streams = value
                    .split(',')
                    .map(|v| v.parse().expect("--streams"))
                    .collect()
            }
            "--step-ms" => o.step_ms = value.parse().expect("--step-ms"),
            "--tokens" => o.tokens = value.parse().expect("--tokens"),
            "--stream-interval" => o.stream_interval = value.parse().expect("--stream-interval"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

struct Worker {
    child: Child,
    addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn start_worker(dir: &Path, streams: usize, o: &Options) -> Worker {
    let engine = dir.join(format!("engine-{streams}.yml"));
    std::fs::write(
        &engine,
        format!(
            "max_batch_size: {streams}\nmax_num_tokens: 65536\nstream_interval: {}\n",
            o.stream_interval
        ),
    )
    .unwrap();
    let sim = dir.join("sim-config.json");
    std::fs::write(
        &sim,
        serde_json::json!({"latency": {"load_delay_ms": 10, "step_base_ms": o.step_ms,
                                       "step_per_gen_request_us": 0,
                                       "step_per_ctx_token_us": 0}})
        .to_string(),
    )
    .unwrap();
    let report = dir.join(format!("addr-{streams}.txt"));
    let log = std::fs::File::create(dir.join(format!("worker-{streams}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_perfsanity"))
        .args(["sim", "--role", "AGGR_0", "--sim-config"])
        .arg(&sim)
        .args(["trtllm-serve", "bench-model", "--config"])
        .arg(&engine)
        .args(["--host", "127.0.0.1", "--port", "0", "--report_addr"])
        .arg(&report)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&report)
            && text.ends_with('\n')
        {
            break text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "worker did not report its address"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let client = reqwest::blocking::Client::new();
    while client
        .get(format!("http://{addr}/health"))
        .send()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "worker not healthy");
        std::thread::sleep(Duration::from_millis(10));
    }
    Worker { child, addr }
}

/// CPU seconds (user + system) consumed so far by `pid`.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU seconds (user + system) consumed so far by this process.
fn self_cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn raise_fd_limit() {
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// Raw samples of one stream: (arrival, tokens in that read).
type Samples = Vec<(Instant, u64)>;

async fn one_stream(client: reqwest::Client, url: Arc<String>, tokens: u64) -> Samples {
    let body = serde_json::json!({"model": "bench-model", "prompt": [1, 2, 3, 4, 5, 6, 7, 8],
                                  "max_tokens": tokens, "stream": true, "ignore_eos": true});
    let resp = client.post(url.as_str()).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut samples = Vec::with_capacity(tokens as usize / 4 + 4);
    while let Some(frame) = stream.next().await {
        let frame = frame.unwrap();
        let now = Instant::now();
        let n = memchr::memmem::find_iter(&frame, b" t").count() as u64;
        if n > 0 {
            samples.push((now, n));
        }
    }
    samples
}

struct Report {
    streams: usize,
    wall: f64,
    tokens: u64,
    sim_cpu: f64,
    client_cpu: f64,
    drift_mean: f64,
    gap_p50: f64,
    gap_p99: f64,
    rel_err_p50: f64,
    rel_err_p99: f64,
    late: f64,
}

fn run_scenario(dir: &Path, streams: usize, o: &Options) -> Report {
    let worker = start_worker(dir, streams, o);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = Arc::new(format!("http://{}/v1/completions", worker.addr));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    let pid = worker.child.id();
    let cpu0 = process_cpu_seconds(pid);
    let self0 = self_cpu_seconds();
    let started = Instant::now();
    let all: Vec<Samples> = runtime.block_on(async {
        let tasks: Vec<_> = (0..streams)
            .map(|_| tokio::spawn(one_stream(client.clone(), url.clone(), o.tokens)))
            .collect();
        let mut out = Vec::with_capacity(streams);
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let wall = started.elapsed().as_secs_f64();
    let sim_cpu = process_cpu_seconds(pid) - cpu0;
    let client_cpu = self_cpu_seconds() - self0;
    let metrics: serde_json::Value =
        reqwest::blocking::get(format!("http://{}/metrics", worker.addr))
            .unwrap()
            .json()
            .unwrap();
    drop(worker);

    let step = o.step_ms / 1000.0;
    let mut tokens = 0;
    let mut actual_sum = 0.0;
    let mut expected_sum = 0.0;
    let mut gaps = Vec::new();
    let mut rel_errors = Vec::new();
    for samples in &all {
        tokens += samples.iter().map(|s| s.1).sum::<u64>();
        for pair in samples.windows(2) {
            let actual = pair[1].0.duration_since(pair[0].0).as_secs_f64();
            let expected = pair[1].1 as f64 * step;
            actual_sum += actual;
            expected_sum += expected;
            gaps.push(actual * 1000.0);
            rel_errors.push((actual / expected - 1.0).abs() * 100.0);
        }
    }
    assert_eq!(tokens, o.tokens * streams as u64, "every token arrived");
    let gaps = perfsanity::util::stats::sorted(&gaps);
    let rel = perfsanity::util::stats::sorted(&rel_errors);
    Report {
        streams,
        wall,
        tokens,
        sim_cpu,
        client_cpu,
        drift_mean: (actual_sum / expected_sum - 1.0) * 100.0,
        gap_p50: perfsanity::util::stats::percentile_sorted(&gaps, 50.0),
        gap_p99: perfsanity::util::stats::percentile_sorted(&gaps, 99.0),
        rel_err_p50: perfsanity::util::stats::percentile_sorted(&rel, 50.0),
        rel_err_p99: perfsanity::util::stats::percentile_sorted(&rel, 99.0),
        late: metrics[0]["numLateIterations"].as_f64().unwrap_or(0.0),
    }
}

fn main() {
    let o = parse_options();
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "sim_stream: step {} ms, stream_interval {}, {} tokens per request, {} cores",
        o.step_ms,
        o.stream_interval,
        o.tokens,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:>7} {:>8} {:>10} {:>9} {:>12} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>5}",
        "streams",
        "wall s",
        "tok/s",
        "sim CPU",
        "tok/s/core",
        "client CPU",
        "drift %",
        "gap p50",
        "gap p99",
        "|err| p50%",
        "|err| p99%",
        "late"
    );
    for &streams in &o.streams {
        let r = run_scenario(dir.path(), streams, &o);
        println!(
            "{:>7} {:>8.2} {:>10.0} {:>8.2}s {:>12.0} {:>9.2}s {:>+9.3} {:>7.2}ms {:>7.2}ms {:>10.2} {:>10.2} {:>5}",
            r.streams,
            r.wall,
            r.tokens as f64 / r.wall,
            r.sim_cpu,
            r.tokens as f64 / r.sim_cpu.max(1e-9),
            r.client_cpu,
            r.drift_mean,
            r.gap_p50,
            r.gap_p99,
            r.rel_err_p50,
            r.rel_err_p99,
            r.late
        );
    }
}
