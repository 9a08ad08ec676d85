//! Command-line flags of `perfsanity bench` and `perfsanity dataset gen`, and their resolution
//! into [`BenchOptions`].
//!
//! The flags are upstream's (`benchmark_serving` and the SA `bench_serving` variant) so a plan's
//! argv runs unchanged; defaults that differ between the two clients are resolved here from
//! `--flavor`. Parsing (clap) is kept apart from the resolved, validated options the run uses.

use std::path::PathBuf;

use super::error::BenchError;
use super::limits::{self, LimitError};

/// Which upstream client `perfsanity bench` stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// TensorRT-LLM `tensorrt_llm.serve.scripts.benchmark_serving`.
    Standard,
    /// The NV SA client `kedarpotdar-nv/bench_serving` (`benchmark_serving.py`).
    Sa,
}

/// What to do when the tokenizer directory has no `tokenizer.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenizerFallback {
    /// Use the built-in synthetic tokenizer (the simulator's), logging it once.
    Builtin,
}

/// Where chunk timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimestampSource {
    /// The kernel's receive timestamp of the bytes (`SO_TIMESTAMPNS`), falling back to `read`.
    Kernel,
    /// The moment the client read the bytes from the socket.
    Read,
}

/// Command-line arguments of `perfsanity bench …`; the flags are boxed to keep the CLI's
/// command enum small, and reachable through `Deref`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The flags.
    #[command(flatten)]
    pub flags: Box<BenchFlags>,
}

impl std::ops::Deref for BenchArgs {
    type Target = BenchFlags;
    fn deref(&self) -> &BenchFlags {
        &self.flags
    }
}

/// The flags of `perfsanity bench …` (upstream's flags plus a few of our own).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchFlags {
    /// Client to mimic: `standard` (TensorRT-LLM benchmark_serving) or `sa` (NV SA bench_serving).
    #[arg(long, value_enum, default_value = "standard")]
    pub flavor: Flavor,
    /// Allow the built-in synthetic tokenizer when the tokenizer directory has no tokenizer.json.
    #[arg(long, value_enum)]
    pub tokenizer_fallback: Option<TokenizerFallback>,
    /// With read-time stamps: warn (and flag the JSON) when the client's p99 run-queue delay
    /// exceeds this many ms; with any stamps: when p99 dispatch lateness exceeds it by > 1 ms.
    #[arg(long, default_value_t = 1.0)]
    pub client_lag_budget_ms: f64,
    /// Client threads (default: one per 128 connections, at most the CPUs this process may
    /// run on — its affinity mask, or a cgroup CPU quota if lower).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How the threads run the connections: one single-threaded runtime per thread, each with
    /// its share (per-core, default) or one work-stealing runtime (shared).
    #[arg(long, value_enum, default_value = "per-core", hide = true)]
    pub client_runtime: super::driver::RuntimeMode,
    /// A request not complete this many seconds after it was sent fails (`Timeout`).
    #[arg(long, default_value_t = super::limits::DEFAULT_REQUEST_TIMEOUT_S)]
    pub request_timeout_s: f64,
    /// While requests run, print a progress line on stderr this often (seconds; 0 = never).
    #[arg(long, default_value_t = super::limits::DEFAULT_PROGRESS_INTERVAL_S)]
    pub progress_interval_s: f64,
    /// Test hook: block every client thread for this many ms, then let it run 3× as long,
    /// over and over (an injected scheduler stall, for testing the overload check).
    #[arg(long, default_value_t = 0.0, hide = true)]
    pub inject_stall_ms: f64,
    /// Exit 0 even when requests failed (upstream's behaviour); by default failed requests make
    /// the exit status 3.
    #[arg(long)]
    pub allow_failed_requests: bool,
    /// Chunk timestamps: `kernel` receive time (default) or `read` time.
    #[arg(long, value_enum, default_value = "kernel")]
    pub timestamp_source: TimestampSource,

    /// Model name sent in requests (and tokenizer directory unless --tokenizer).
    #[arg(long)]
    pub model: String,
    /// Tokenizer directory (holding tokenizer.json); defaults to --model.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Model name used in the API instead of --model.
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Base URL (`http://host:port`) instead of --host/--port.
    #[arg(long)]
    pub base_url: Option<String>,
    /// API endpoint path.
    #[arg(long, default_value = "/v1/completions")]
    pub endpoint: String,
    /// Request format: `openai` (completions) or `openai-chat`; SA also accepts its
    /// OpenAI-completions aliases (`vllm`, `sglang`, …). Default: openai (standard), vllm (SA).
    #[arg(long)]
    pub backend: Option<String>,
    /// Dataset: `random` or `trtllm_custom` (standard only).
    #[arg(long)]
    pub dataset_name: Option<String>,
    /// Dataset file (trtllm_custom JSON Lines).
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    /// Random dataset: input length.
    #[arg(long, default_value_t = 1024)]
    pub random_input_len: u32,
    /// Random dataset: output length.
    #[arg(long, default_value_t = 128)]
    pub random_output_len: u32,
    /// Random dataset: length range ratio (standard: < 1, lengths in [L(1-r), L(1+r)];
    /// SA: lengths in [L·r, L], default 1.0).
    #[arg(long)]
    pub random_range_ratio: Option<f64>,
    /// Random dataset: fixed random prefix length.
    #[arg(long, default_value_t = 0)]
    pub random_prefix_len: u32,
    /// Random dataset: synthesise token ids (required: ShareGPT sampling is not supported).
    #[arg(long)]
    pub random_ids: bool,
    /// Send prompts as token-id lists instead of text.
    #[arg(long)]
    pub tokenize_on_client: bool,
    /// Number of requests.
    #[arg(long, default_value_t = 1000)]
    pub num_prompts: usize,
    /// Maximum requests in flight (closed loop); unlimited when absent.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Request rate (req/s); `inf` sends all at once (subject to --max-concurrency).
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    /// Gamma shape of request gaps (1.0 = Poisson); only with a finite --request-rate.
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// Ask the server to ignore EOS.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Metrics to summarise: comma list of ttft,tpot,itl,e2el.
    #[arg(long, default_value = "ttft,tpot,itl")]
    pub percentile_metrics: String,
    /// Percentiles to report: comma list (e.g. 50,90,99).
    #[arg(long, default_value = "99")]
    pub metric_percentiles: String,
    /// Goodput SLOs as KEY:ms pairs (ttft, tpot, e2el).
    #[arg(long, num_args = 1..)]
    pub goodput: Vec<String>,
    /// Use non-streaming requests (standard only).
    #[arg(long)]
    pub non_streaming: bool,
    /// Wrap prompts with the model's chat template.
    #[arg(long)]
    pub use_chat_template: bool,
    /// Accepted for compatibility (no remote code is ever run).
    #[arg(long)]
    pub trust_remote_code: bool,
    /// Skip the initial test request (standard only).
    #[arg(long)]
    pub no_test_input: bool,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the result JSON.
    #[arg(long)]
    pub save_result: bool,
    /// Directory of the result JSON.
    #[arg(long)]
    pub result_dir: Option<PathBuf>,
    /// File name of the result JSON.
    #[arg(long)]
    pub result_filename: Option<String>,
    /// Add per-request lists and raw events to the result JSON (standard only).
    #[arg(long)]
    pub save_detailed: bool,
    /// Disable the progress bar.
    #[arg(long)]
    pub disable_tqdm: bool,
    /// KEY=VALUE pairs copied into the result JSON.
    #[arg(long, num_args = 0..)]
    pub metadata: Vec<String>,
}

/// Command-line arguments of `perfsanity dataset gen …`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetGenArgs {
    /// Number of prompts (lines).
    #[arg(long)]
    pub num_prompts: usize,
    /// Input length in tokens.
    #[arg(long)]
    pub input_len: u32,
    /// Output length (`max_tokens`).
    #[arg(long)]
    pub output_len: u32,
    /// Length ratio r: lengths uniform in [⌊L·r⌋, L] (r = 1 ⇒ fixed lengths).
    #[arg(long, default_value_t = 1.0)]
    pub range_ratio: f64,
    /// Tokenizer directory (tokenizer.json); `builtin` for the synthetic tokenizer.
    #[arg(long)]
    pub tokenizer: String,
    /// Model name used in the file name (default: the tokenizer directory's name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory.
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
}

/// Request format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `/v1/completions`, text or token-id `prompt`.
    Completions,
    /// `/v1/chat/completions`, `messages`.
    Chat,
}

/// Dataset selection.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetChoice {
    /// Synthetic token-id prompts.
    Random,
    /// JSON Lines file.
    TrtllmCustom(PathBuf),
}

/// Metric summarised in the printed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Time to first token.
    Ttft,
    /// Time per output token.
    Tpot,
    /// Inter-token (inter-chunk) latency.
    Itl,
    /// End-to-end latency.
    E2el,
}

impl MetricKind {
    /// The name used on the command line and in JSON keys.
    pub fn key(self) -> &'static str {
        match self {
            MetricKind::Ttft => "ttft",
            MetricKind::Tpot => "tpot",
            MetricKind::Itl => "itl",
            MetricKind::E2el => "e2el",
        }
    }
}

/// Goodput service-level objectives in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Goodput {
    /// TTFT SLO.
    pub ttft_ms: Option<f64>,
    /// TPOT SLO.
    pub tpot_ms: Option<f64>,
    /// E2EL SLO.
    pub e2el_ms: Option<f64>,
}

impl Goodput {
    /// True when any SLO is set.
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2el_ms.is_some()
    }
}

/// Validated options of one run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The original flags (echoed in the Namespace line).
    pub args: BenchArgs,
    /// Client flavor.
    pub flavor: Flavor,
    /// Backend name as given (or the flavor's default), used in JSON and file names.
    pub backend_name: String,
    /// Request format.
    pub backend: Backend,
    /// `host:port` to connect to.
    pub authority: String,
    /// Request path (endpoint).
    pub path: String,
    /// Model name in requests.
    pub request_model: String,
    /// Tokenizer directory.
    pub tokenizer_dir: String,
    /// Dataset.
    pub dataset: DatasetChoice,
    /// Range ratio after flavor defaults.
    pub range_ratio: f64,
    /// Requests per second (`f64::INFINITY` for inf).
    pub request_rate: f64,
    /// Selected metrics in print order.
    pub metrics: Vec<MetricKind>,
    /// Selected percentiles.
    pub percentiles: Vec<f64>,
    /// Goodput SLOs.
    pub goodput: Goodput,
    /// Streaming requests.
    pub streaming: bool,
    /// Send the initial test request.
    pub test_input: bool,
    /// Metadata pairs.
    pub metadata: Vec<(String, String)>,
    /// Client threads and runtime layout.
    pub threads: super::driver::Threads,
    /// Per-request time limit.
    pub request_timeout: std::time::Duration,
    /// Progress line period (None = off).
    pub progress_every: Option<std::time::Duration>,
    /// Injected thread stall (test hook).
    pub inject_stall: Option<std::time::Duration>,
}

const SA_COMPLETION_BACKENDS: [&str; 6] =
    ["vllm", "openai", "lmdeploy", "scalellm", "sglang", "dynamo"];

impl BenchArgs {
    /// Validates the flags and applies the flavor's defaults.
    pub fn resolve(&self) -> Result<BenchOptions, BenchError> {
        self.flags.resolve(self)
    }
}

impl BenchFlags {
    fn resolve(&self, original: &BenchArgs) -> Result<BenchOptions, BenchError> {
        let bad = |flag: &str, msg: String| BenchError::Flag {
            flag: flag.to_string(),
            message: msg,
        };
        let sa = self.flavor == Flavor::Sa;
        if sa {
            for (given, flag) in [
                (self.random_ids, "--random-ids"),
                (self.tokenize_on_client, "--tokenize-on-client"),
                (self.non_streaming, "--non-streaming"),
                (self.no_test_input, "--no-test-input"),
                (self.save_detailed, "--save-detailed"),
            ] {
                if given {
                    return Err(bad(
                        flag,
                        "not a flag of the SA client (kedarpotdar-nv/bench_serving); the real \
                         client would reject this command, so --flavor sa does too"
                            .into(),
                    ));
                }
            }
        }
        let backend_name = self
            .backend
            .clone()
            .unwrap_or_else(|| if sa { "vllm" } else { "openai" }.to_string());
        let backend = match backend_name.as_str() {
            "openai-chat" => Backend::Chat,
            "openai" => Backend::Completions,
            b if sa && SA_COMPLETION_BACKENDS.contains(&b) => Backend::Completions,
            other => {
                let expected = if sa {
                    "vllm, openai, openai-chat, lmdeploy, scalellm, sglang or dynamo"
                } else {
                    "openai or openai-chat"
                };
                return Err(bad(
                    "--backend",
                    format!("unsupported backend '{other}' (expected {expected})"),
                ));
            }
        };
        // Upstream's standard client forces the chat endpoint for openai-chat.
        let path = if backend == Backend::Chat && !sa {
            "/v1/chat/completions".to_string()
        } else {
            self.endpoint.clone()
        };
        if !path.starts_with('/') {
            return Err(bad("--endpoint", format!("'{path}' must start with '/'")));
        }
        let authority = match &self.base_url {
            Some(url) => parse_base_url(url)?,
            None => format_authority(&self.host, self.port),
        };
        let dataset_name = self.dataset_name.clone().ok_or_else(|| {
            bad(
                "--dataset-name",
                "missing (perfsanity bench supports 'random' and, for the standard client, \
                 'trtllm_custom')"
                    .into(),
            )
        })?;
        let dataset = match dataset_name.as_str() {
            "random" => {
                if !sa && !self.random_ids {
                    return Err(bad(
                        "--dataset-name",
                        "'random' without --random-ids samples ShareGPT text, which perfsanity \
                         bench does not support; add --random-ids"
                            .into(),
                    ));
                }
                DatasetChoice::Random
            }
            "trtllm_custom" if !sa => {
                let p = self.dataset_path.clone().ok_or_else(|| {
                    bad(
                        "--dataset-path",
                        "required with --dataset-name trtllm_custom".into(),
                    )
                })?;
                DatasetChoice::TrtllmCustom(p)
            }
            other => {
                let expected = if sa {
                    "random"
                } else {
                    "random or trtllm_custom"
                };
                return Err(bad(
                    "--dataset-name",
                    format!("unsupported dataset '{other}' (expected {expected})"),
                ));
            }
        };
        let range_ratio = self
            .random_range_ratio
            .unwrap_or(if sa { 1.0 } else { 0.0 });
        if !range_ratio.is_finite() || range_ratio < 0.0 {
            return Err(bad(
                "--random-range-ratio",
                format!("{range_ratio} is not a non-negative number"),
            ));
        }
        if !sa && dataset == DatasetChoice::Random && range_ratio >= 1.0 {
            return Err(bad(
                "--random-range-ratio",
                format!(
                    "must be < 1.0 for the standard client (lengths span [L(1-r), L(1+r)]); got \
                     {range_ratio}"
                ),
            ));
        }
        if sa && range_ratio > 1.0 {
            return Err(bad(
                "--random-range-ratio",
                format!(
                    "must be ≤ 1.0 for the SA client (lengths span [L·r, L]); got {range_ratio}"
                ),
            ));
        }
        let request_rate: f64 = self.request_rate.parse().map_err(|_| {
            bad(
                "--request-rate",
                format!("'{}' is not a number or inf", self.request_rate),
            )
        })?;
        if request_rate.is_nan() || request_rate <= 0.0 {
            return Err(bad(
                "--request-rate",
                format!("{request_rate} must be positive"),
            ));
        }
        if !(self.burstiness > 0.0 && self.burstiness.is_finite()) {
            return Err(bad(
                "--burstiness",
                format!("{} must be a positive number", self.burstiness),
            ));
        }
        if self.num_prompts == 0 {
            return Err(bad("--num-prompts", "must be at least 1".into()));
        }
        if self.max_concurrency == Some(0) {
            return Err(bad("--max-concurrency", "must be at least 1".into()));
        }
        self.check_sizes(sa, dataset == DatasetChoice::Random, range_ratio)?;
        let threads = self.threads_choice()?;
        let request_timeout = limits::seconds(self.request_timeout_s)
            .map_err(limit_error("--request-timeout-s", ""))?;
        let inject_stall = if self.inject_stall_ms == 0.0 {
            None
        } else {
            Some(
                limits::seconds(self.inject_stall_ms / 1e3)
                    .map_err(limit_error("--inject-stall-ms", ""))?,
            )
        };
        let progress_every = if self.progress_interval_s == 0.0 {
            None
        } else {
            Some(
                limits::seconds(self.progress_interval_s)
                    .map_err(limit_error("--progress-interval-s", " (or 0 = never)"))?,
            )
        };
        let metrics = parse_metrics(&self.percentile_metrics)?;
        let percentiles = parse_percentiles(&self.metric_percentiles)?;
        let goodput = parse_goodput(&self.goodput)?;
        let metadata = self
            .metadata
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| bad("--metadata", format!("'{kv}' is not KEY=VALUE")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if backend == Backend::Chat && self.tokenize_on_client {
            return Err(bad(
                "--tokenize-on-client",
                "token-id prompts are only supported with the completions backend".into(),
            ));
        }
        if self.client_lag_budget_ms.is_nan() || self.client_lag_budget_ms < 0.0 {
            return Err(bad(
                "--client-lag-budget-ms",
                "must be a non-negative number".into(),
            ));
        }
        Ok(BenchOptions {
            args: original.clone(),
            flavor: self.flavor,
            backend_name,
            backend,
            authority,
            path,
            request_model: self
                .served_model_name
                .clone()
                .unwrap_or_else(|| self.model.clone()),
            tokenizer_dir: self.tokenizer.clone().unwrap_or_else(|| self.model.clone()),
            dataset,
            range_ratio,
            request_rate,
            metrics,
            percentiles,
            goodput,
            streaming: !self.non_streaming,
            test_input: !self.no_test_input,
            metadata,
            threads,
            request_timeout,
            progress_every,
            inject_stall,
        })
    }

    /// Size flags within [`limits`]: counts and lengths that would otherwise overflow or
    /// allocate without bound.
    fn check_sizes(&self, sa: bool, random: bool, range_ratio: f64) -> Result<(), BenchError> {
        let bad = |flag: &str, msg: String| BenchError::Flag {
            flag: flag.to_string(),
            message: msg,
        };
        limits::at_most(self.num_prompts as u64, limits::MAX_NUM_PROMPTS as u64)
            .map_err(limit_error("--num-prompts", ""))?;
        if let Some(c) = self.max_concurrency {
            limits::at_most(c as u64, limits::MAX_CONCURRENCY as u64)
                .map_err(limit_error("--max-concurrency", ""))?;
        }
        for (flag, v) in [
            ("--random-input-len", self.random_input_len),
            ("--random-output-len", self.random_output_len),
            ("--random-prefix-len", self.random_prefix_len),
        ] {
            limits::at_most(u64::from(v), limits::MAX_TOKENS_PER_REQUEST)
                .map_err(limit_error(flag, " tokens"))?;
        }
        if random {
            let longest = limits::longest_random_prompt(
                self.random_prefix_len,
                self.random_input_len,
                range_ratio,
                sa,
            );
            let total = longest.saturating_mul(self.num_prompts as u64);
            if total > limits::MAX_TOTAL_PROMPT_TOKENS {
                return Err(bad(
                    "--num-prompts",
                    format!(
                        "{} prompts of up to {longest} tokens is {total} prompt tokens, above the \
                         limit of {} (MAX_TOTAL_PROMPT_TOKENS)",
                        self.num_prompts,
                        limits::MAX_TOTAL_PROMPT_TOKENS
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `--threads` (default: the CPUs this process may use) and the runtime layout.
    fn threads_choice(&self) -> Result<super::driver::Threads, BenchError> {
        let count = match self.threads {
            Some(0) => {
                return Err(BenchError::Flag {
                    flag: "--threads".into(),
                    message: "must be at least 1".into(),
                });
            }
            Some(n) => {
                limits::at_most(n as u64, limits::MAX_THREADS as u64)
                    .map_err(limit_error("--threads", ""))?;
                n
            }
            None => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let workers = self.max_concurrency.unwrap_or(self.num_prompts);
                limits::default_threads(cpus, workers)
            }
        };
        Ok(super::driver::Threads {
            count,
            mode: self.client_runtime,
        })
    }
}

/// A flag error: the flag and what is wrong with its value.
fn flag_error(flag: &str, message: String) -> BenchError {
    BenchError::Flag {
        flag: flag.to_string(),
        message,
    }
}

/// Maps a bound check of `flag` to its flag error; `note` follows the bound's message.
fn limit_error<'a>(flag: &'a str, note: &'static str) -> impl Fn(LimitError) -> BenchError + 'a {
    move |source| BenchError::FlagLimit {
        flag: flag.to_string(),
        source,
        note,
    }
}

fn format_authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `--base-url http://host[:port][/]` → `host:port`. Only plain HTTP is supported.
fn parse_base_url(url: &str) -> Result<String, BenchError> {
    let bad = |message| flag_error("--base-url", message);
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        bad(format!(
            "'{url}' must start with http:// (https is not supported by perfsanity bench)"
        ))
    })?;
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') {
        return Err(bad(format!(
            "'{url}' must be http://host[:port] without a path (use --endpoint for the path)"
        )));
    }
    let has_port = if let Some(v6) = hostport.strip_prefix('[') {
        v6.contains("]:")
    } else {
        hostport.contains(':')
    };
    if has_port {
        Ok(hostport.to_string())
    } else {
        Ok(format!("{hostport}:80"))
    }
}

/// `--percentile-metrics`.
fn parse_metrics(list: &str) -> Result<Vec<MetricKind>, BenchError> {
    let mut chosen = Vec::new();
    for name in list.split(',') {
        let m = match name.trim() {
            "ttft" => MetricKind::Ttft,
            "tpot" => MetricKind::Tpot,
            "itl" => MetricKind::Itl,
            "e2el" => MetricKind::E2el,
            other => {
                return Err(flag_error(
                    "--percentile-metrics",
                    format!(
                        "unknown metric '{other}' (expected a comma list of ttft, tpot, itl, e2el)"
                    ),
                ));
            }
        };
        chosen.push(m);
    }
    // Printed in upstream's fixed order, whatever the order given.
    Ok([
        MetricKind::Ttft,
        MetricKind::Tpot,
        MetricKind::Itl,
        MetricKind::E2el,
    ]
    .into_iter()
    .filter(|m| chosen.contains(m))
    .collect())
}

/// `--metric-percentiles`.
fn parse_percentiles(list: &str) -> Result<Vec<f64>, BenchError> {
    let bad = |message| flag_error("--metric-percentiles", message);
    list.split(',')
        .map(|p| {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| bad(format!("'{p}' is not a number")))?;
            if (0.0..=100.0).contains(&v) {
                Ok(v)
            } else {
                Err(bad(format!("{v} is outside [0, 100]")))
            }
        })
        .collect()
}

/// `--goodput KEY:VALUE…`.
fn parse_goodput(pairs: &[String]) -> Result<Goodput, BenchError> {
    let bad = |message| flag_error("--goodput", message);
    let mut g = Goodput::default();
    for pair in pairs {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| bad(format!("'{pair}' is not KEY:VALUE (e.g. ttft:500)")))?;
        let v: f64 = v
            .parse()
            .map_err(|_| bad(format!("'{pair}': '{v}' is not a number of milliseconds")))?;
        if v < 0.0 {
            return Err(bad(format!("'{pair}': the SLO must be non-negative")));
        }
        match k {
            "ttft" => g.ttft_ms = Some(v),
            "tpot" => g.tpot_ms = Some(v),
            "e2el" => g.e2el_ms = Some(v),
            other => {
                return Err(bad(format!(
                    "unknown SLO '{other}' (expected ttft, tpot or e2el)"
                )));
            }
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchOptions, String> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn standard_plan_command_resolves() {
        let o = parse(&[
            "--model",
            "/m",
            "--tokenizer",
            "/m",
            "--num-prompts",
            "8",
            "--max-concurrency",
            "4",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--ignore-eos",
            "--no-test-input",
            "--dataset-name",
            "random",
            "--random-ids",
            "--tokenize-on-client",
            "--random-input-len",
            "1024",
            "--random-output-len",
            "1024",
            "--random-range-ratio",
            "0.8",
            "--backend",
            "openai",
            "--trust-remote-code",
            "--host",
            "10.0.0.1",
            "--port",
            "8333",
        ])
        .unwrap();
        assert_eq!(o.authority, "10.0.0.1:8333");
        assert_eq!(o.metrics.len(), 4);
        assert_eq!(o.range_ratio, 0.8);
        assert!(!o.test_input && o.streaming);
        assert_eq!(o.request_rate, f64::INFINITY);
    }

    #[test]
    fn sa_defaults_and_rejections() {
        let o = parse(&[
            "--flavor",
            "sa",
            "--model",
            "/m",
            "--dataset-name",
            "random",
            "--num-prompts",
            "4",
            "--save-result",
        ])
        .unwrap();
        assert_eq!(o.backend_name, "vllm");
        assert_eq!(o.range_ratio, 1.0);
        assert!(o.test_input);
        let e = parse(&[
            "--flavor",
            "sa",
            "--model",
            "/m",
            "--dataset-name",
            "random",
            "--no-test-input",
        ])
        .unwrap_err();
        assert!(
            e.contains("--no-test-input") && e.contains("SA client"),
            "{e}"
        );
        let e = parse(&[
            "--flavor",
            "sa",
            "--model",
            "/m",
            "--dataset-name",
            "trtllm_custom",
        ])
        .unwrap_err();
        assert!(e.contains("unsupported dataset"), "{e}");
    }

    #[test]
    fn clear_errors_for_bad_values() {
        let e = parse(&[
            "--model",
            "m",
            "--dataset-name",
            "random",
            "--random-ids",
            "--random-range-ratio",
            "1.0",
        ])
        .unwrap_err();
        assert!(
            e.contains("--random-range-ratio") && e.contains("< 1.0"),
            "{e}"
        );
        let e = parse(&["--model", "m", "--dataset-name", "random"]).unwrap_err();
        assert!(e.contains("--random-ids"), "{e}");
        let e = parse(&[
            "--model",
            "m",
            "--dataset-name",
            "random",
            "--random-ids",
            "--goodput",
            "ttft:x",
        ])
        .unwrap_err();
        assert!(e.contains("--goodput"), "{e}");
        let e = parse(&[
            "--model",
            "m",
            "--dataset-name",
            "random",
            "--random-ids",
            "--percentile-metrics",
            "ttft,foo",
        ])
        .unwrap_err();
        assert!(e.contains("unknown metric 'foo'"), "{e}");
        let e = parse(&["--model", "m", "--bogus-flag"]).unwrap_err();
        assert!(e.contains("--bogus-flag"), "{e}");
        let e = parse(&["--model", "m", "--dataset-name", "trtllm_custom"]).unwrap_err();
        assert!(e.contains("--dataset-path"), "{e}");
    }

    #[test]
    fn goodput_rate_and_base_url() {
        let o = parse(&[
            "--model",
            "m",
            "--dataset-name",
            "random",
            "--random-ids",
            "--goodput",
            "ttft:500",
            "e2el:2000",
            "--request-rate",
            "12.5",
            "--base-url",
            "http://localhost:9000/",
            "--backend",
            "openai-chat",
        ])
        .unwrap();
        assert_eq!(o.goodput.ttft_ms, Some(500.0));
        assert_eq!(o.goodput.e2el_ms, Some(2000.0));
        assert_eq!(o.request_rate, 12.5);
        assert_eq!(o.authority, "localhost:9000");
        assert_eq!(o.path, "/v1/chat/completions");
        assert_eq!(parse_base_url("http://h").unwrap(), "h:80");
    }
}
