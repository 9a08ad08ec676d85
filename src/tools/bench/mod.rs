//! Native benchmark client: a drop-in `benchmark_serving` (standard or SA flavor) that records
//! raw timestamps in a tight loop and computes upstream's metrics afterwards.
//!
//! Stages of one run, each in its own module: [`args`] (flags → options), [`dataset`]
//! (prompts), [`payload`] (request bodies), [`driver`] + [`client`] + [`sse`] (the hot loop,
//! raw samples in [`record`]), [`metrics`] (upstream definitions, client health), [`report`]
//! and [`result_json`] (printed block, JSON). [`scripted_server`] is the deterministic server
//! the tests and benchmarks measure against.

pub mod args;
pub mod client;
pub mod dataset;
pub mod dataset_gen;
pub mod driver;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod payload;
pub mod py_random;
pub mod record;
pub mod report;
pub mod result_json;
pub mod scripted_server;
pub mod sse;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;

pub use args::{BenchArgs, BenchOptions, DatasetGenArgs, Flavor, TokenizerFallback};
pub use error::BenchError;

use crate::util::tokenizer::Tokenizer;
use args::DatasetChoice;
use client::Target;
use dataset::{RandomSpec, SampleRequest};
use metrics::{ClientHealth, RequestOutcome, Summary};
use payload::PayloadSpec;
use record::{NO_USAGE, RawRequest};

/// What a finished run produced (for callers that embed the client).
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Upstream metrics.
    pub summary: Summary,
    /// The client's own delays.
    pub health: ClientHealth,
    /// Per-request outcomes.
    pub outcomes: Vec<RequestOutcome>,
    /// Raw samples.
    pub raw: Vec<RawRequest>,
    /// Client CPU seconds spent during the load (whole process).
    pub cpu_seconds: Option<f64>,
    /// The result file, if written.
    pub result_path: Option<PathBuf>,
    /// Origin of every `*_ns` time in `raw`.
    pub epoch: Instant,
}

/// Runs `perfsanity bench …`.
pub fn run(args: BenchArgs) -> ExitCode {
    crate::util::rlimit::raise_open_files_limit();
    let mut stdout = std::io::stdout();
    let res = args
        .resolve()
        .and_then(|opts| execute(&opts, &mut stdout).map(|r| (r, opts)));
    match res {
        Ok((report, opts)) => exit_status(&report.summary, opts.args.allow_failed_requests),
        Err(e) => {
            let _ = stdout.flush();
            eprintln!("perfsanity bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a finished run: [`limits::EXIT_FAILED_REQUESTS`] when any request failed,
/// unless `--allow-failed-requests` asks for upstream's exit 0.
fn exit_status(summary: &Summary, allow_failed: bool) -> ExitCode {
    if summary.failed == 0 || allow_failed {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "perfsanity bench: {} of {} requests failed; exit status {} (--allow-failed-requests \
         exits 0 as upstream's client does)",
        summary.failed,
        summary.total_requests,
        limits::EXIT_FAILED_REQUESTS
    );
    ExitCode::from(limits::EXIT_FAILED_REQUESTS)
}

/// Runs `perfsanity dataset gen …`.
pub fn run_dataset_gen(args: DatasetGenArgs) -> ExitCode {
    match dataset_gen::generate(&args) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perfsanity dataset gen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_tokenizer(opts: &BenchOptions) -> Result<Tokenizer, BenchError> {
    let dir = Path::new(&opts.tokenizer_dir);
    match opts.args.tokenizer_fallback {
        Some(TokenizerFallback::Builtin) => {
            let (t, fell_back) = Tokenizer::from_dir_or_synthetic(dir)?;
            if fell_back {
                eprintln!(
                    "perfsanity bench: no tokenizer.json in {}; using the built-in synthetic \
                     tokenizer (--tokenizer-fallback builtin)",
                    dir.display()
                );
            }
            Ok(t)
        }
        None => Ok(Tokenizer::from_dir(dir)?),
    }
}

fn build_dataset(
    opts: &BenchOptions,
    tokenizer: &Tokenizer,
    out: &mut dyn Write,
) -> Result<Vec<SampleRequest>, BenchError> {
    if opts.args.use_chat_template {
        return Err(BenchError::Flag {
            flag: "--use-chat-template".into(),
            message: if tokenizer.is_synthetic() {
                "the built-in synthetic tokenizer has no chat template".into()
            } else {
                "rendering a model's Jinja chat template is not supported by perfsanity bench"
                    .into()
            },
        });
    }
    let a = &opts.args;
    match &opts.dataset {
        DatasetChoice::Random => {
            let spec = RandomSpec {
                num_prompts: a.num_prompts,
                input_len: a.random_input_len,
                output_len: a.random_output_len,
                range_ratio: opts.range_ratio,
                prefix_len: a.random_prefix_len,
                seed: a.seed,
            };
            match opts.flavor {
                Flavor::Standard => {
                    dataset::random_standard(&spec, tokenizer, a.tokenize_on_client)
                }
                Flavor::Sa => dataset::random_sa(&spec, tokenizer),
            }
        }
        DatasetChoice::TrtllmCustom(path) => {
            let _ = writeln!(out, "CustomDataset.load_data() started...");
            let t0 = Instant::now();
            let reqs = dataset::load_custom(path, a.num_prompts, a.seed, tokenizer)?;
            let _ = writeln!(
                out,
                "CustomDataset.load_data() completed in {:.2} seconds",
                t0.elapsed().as_secs_f64()
            );
            if reqs.is_empty() {
                return Err(BenchError::Dataset(format!(
                    "{} holds no requests",
                    path.display()
                )));
            }
            Ok(reqs)
        }
    }
}

/// Resolves `host:port` and picks the first address that accepts a connection (as aiohttp tries
/// every address), or the first address when none does (the requests then fail visibly).
async fn resolve(authority: &str) -> Result<std::net::SocketAddr, BenchError> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(authority)
        .await
        .map(|it| it.collect())
        .unwrap_or_default();
    let first = *addrs.first().ok_or_else(|| BenchError::Flag {
        flag: "--host".into(),
        message: format!("cannot resolve {authority}"),
    })?;
    if addrs.len() > 1 {
        for a in &addrs {
            let probe =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(a));
            if let Ok(Ok(_)) = probe.await {
                return Ok(*a);
            }
        }
    }
    Ok(first)
}

/// User + system CPU time of this process, in seconds.
pub fn process_cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(tv(u.user_time()) + tv(u.system_time()))
}

fn chunk_token_counts(raw: &[RawRequest], tokenizer: &Tokenizer) -> Vec<Vec<u64>> {
    raw.iter()
        .map(|r| {
            let mut prev_end = 0usize;
            let mut prev_usage: Option<u64> = None;
            r.events
                .iter()
                .map(|e| {
                    let end = e.text_end as usize;
                    let n = if e.usage_tokens != NO_USAGE && e.has_choices {
                        let u = u64::from(e.usage_tokens);
                        let d = u.saturating_sub(prev_usage.unwrap_or(0));
                        prev_usage = Some(u);
                        d
                    } else if e.has_choices {
                        let slice = r.text.get(prev_end..end).unwrap_or("");
                        tokenizer.encode(slice, false).len() as u64
                    } else {
                        0
                    };
                    prev_end = end;
                    n
                })
                .collect()
        })
        .collect()
}

/// Runs one benchmark with validated options, printing to `out` like the upstream client.
pub fn execute(opts: &BenchOptions, out: &mut dyn Write) -> Result<BenchReport, BenchError> {
    let _ = write!(out, "{}", report::namespace_line(opts));
    let _ = out.flush();
    let tokenizer = load_tokenizer(opts)?;
    let requests = build_dataset(opts, &tokenizer, out)?;
    let spec = PayloadSpec {
        flavor: opts.flavor,
        backend: opts.backend,
        model: opts.request_model.clone(),
        streaming: opts.streaming,
        ignore_eos: opts.args.ignore_eos,
    };
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new(requests.iter().map(|r| payload::body(&spec, r)).collect());
    let prompt_lens: Vec<u64> = requests.iter().map(|r| r.prompt_len).collect();
    drop(requests);

    // A small runtime for resolving and the test request; the load builds its own threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;

    let addr = rt.block_on(resolve(&opts.authority))?;
    let keeper = (opts.args.timestamp_source == args::TimestampSource::Kernel)
        .then(client::TimestampKeeper::start)
        .and_then(Result::ok);
    if keeper.as_ref().is_some_and(|k| !k.active) {
        eprintln!(
            "perfsanity bench: the kernel gives no receive timestamps here; chunks are stamped \
             with their read time"
        );
    }
    let epoch = Instant::now();
    let api_key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "None".into());
    let target = Arc::new(Target {
        addr,
        host: HeaderValue::from_str(&opts.authority).map_err(|_| BenchError::Flag {
            flag: "--host".into(),
            message: format!("'{}' is not a valid host", opts.authority),
        })?,
        path: opts.path.clone(),
        auth: HeaderValue::from_str(&format!("Bearer {api_key}"))
            .unwrap_or(HeaderValue::from_static("Bearer None")),
        streaming: opts.streaming,
        epoch,
        kernel_clock: client::KernelClock::new(epoch),
        kernel_timestamps: opts.args.timestamp_source == args::TimestampSource::Kernel,
        read_fallback: std::sync::atomic::AtomicBool::new(
            keeper.as_ref().is_some_and(|k| !k.active),
        ),
        unstamped_reads: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    });

    if opts.test_input {
        let _ = writeln!(out, "Starting initial single prompt test run...");
        let _ = out.flush();
        let mut rec = RawRequest::default();
        rt.block_on(async {
            let mut conn = None;
            let body = bodies[0].clone();
            let limit = Some(opts.request_timeout);
            client::send_with_timeout(&mut conn, &target, body, &mut rec, limit).await;
        });
        let o = metrics::outcome(&rec, opts.backend, opts.streaming);
        if !o.success {
            return Err(BenchError::TestRequest(o.error));
        }
        let _ = writeln!(
            out,
            "Initial test run completed. Starting main benchmark run..."
        );
    } else {
        let _ = writeln!(
            out,
            "Skipping initial test run. Starting main benchmark run..."
        );
    }
    let _ = write!(out, "{}", report::traffic_lines(opts));
    let _ = out.flush();

    let bar = (!opts.args.disable_tqdm && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(bodies.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.enable_steady_tick(Duration::from_millis(500));
        pb
    });
    let load = driver::LoadSpec {
        max_concurrency: opts.args.max_concurrency,
        request_rate: opts.request_rate,
        burstiness: opts.args.burstiness,
        seed: opts.args.seed,
        request_timeout: Some(opts.request_timeout),
        inject_stall: opts.inject_stall,
    };
    let progress = driver::Progress {
        // The bar already shows progress; the line is for logs.
        line_every: opts.progress_every.filter(|_| bar.is_none()),
        bar,
    };
    let cpu0 = process_cpu_seconds();
    let run = driver::run_load(target.clone(), bodies, load, opts.threads, progress)
        .map_err(BenchError::Runtime)?;
    let cpu_seconds = match (cpu0, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    drop(rt);

    let outcomes: Vec<RequestOutcome> = run
        .requests
        .iter()
        .map(|r| metrics::outcome(r, opts.backend, opts.streaming))
        .collect();
    let count = |t: &str| tokenizer.encode(t, false).len();
    let output_lens: Vec<u64> = outcomes
        .iter()
        .zip(&run.requests)
        .map(|(o, r)| {
            if o.success {
                metrics::output_len(opts.flavor, o, &r.text, &count)
            } else {
                0
            }
        })
        .collect();
    let avg: Vec<Option<f64>> = run
        .requests
        .iter()
        .map(|r| r.avg_decoded_tokens_per_iter)
        .collect();
    let summary = metrics::summarize(
        &outcomes,
        &prompt_lens,
        output_lens,
        &avg,
        run.duration_ns as f64 / 1e9,
        &opts.percentiles,
        &opts.goodput,
    );
    let kernel_stamps = target.kernel_timestamps
        && !target
            .read_fallback
            .load(std::sync::atomic::Ordering::Relaxed);
    let highest = opts.percentiles.iter().copied().fold(99.0, f64::max);
    let mut health =
        metrics::client_health(&run, opts.args.client_lag_budget_ms, kernel_stamps, highest);
    health.unstamped_reads = target
        .unstamped_reads
        .load(std::sync::atomic::Ordering::Relaxed);
    drop(keeper);
    if summary.completed == 0 {
        eprintln!(
            "perfsanity bench: warning: all requests failed; this is likely a misconfiguration \
             of the benchmark arguments or the server"
        );
    }
    // The standard client always prints its failure lines; the SA client never does, so its
    // flavor prints them only when something failed (its block counts successes alone).
    if opts.flavor == Flavor::Standard || summary.failed > 0 {
        let _ = write!(out, "{}", report::error_lines(&summary));
    }
    let _ = write!(out, "{}", report::result_block(opts, &summary));
    let _ = write!(out, "{}", report::health_section(&health, cpu_seconds));
    let _ = out.flush();

    let mut result_path = None;
    if opts.args.save_result {
        let date = jiff::ZonedDateTime::now()
            .strftime("%Y%m%d-%H%M%S")
            .to_string();
        let detailed = opts.args.save_detailed;
        let json = result_json::result_json(&result_json::ResultInputs {
            opts,
            summary: &summary,
            outcomes: &outcomes,
            prompt_lens: &prompt_lens,
            raw: &run.requests,
            health: &health,
            cpu_seconds,
            chunk_tokens: detailed.then(|| chunk_token_counts(&run.requests, &tokenizer)),
            date: date.clone(),
        });
        let path = result_json::result_path(opts, &date);
        let text = serde_json::to_string(&json).expect("serialisable JSON");
        std::fs::write(&path, text).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
        result_path = Some(path);
    }
    Ok(BenchReport {
        summary,
        health,
        outcomes,
        raw: run.requests,
        cpu_seconds,
        result_path,
        epoch: target.epoch,
    })
}
