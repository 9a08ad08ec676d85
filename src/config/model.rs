//! The typed perf config: the disaggregated / WideEP YAML layout shared by
//! `test_configs/disagg/perf` and `test_configs/wideep/perf`.
//!
//! Sections we interpret are typed and strict; `worker_config.{ctx,gen}`, the router blocks,
//! `server_config_extra` and `sim` are kept as YAML trees, because upstream passes worker blocks
//! to the engine untouched (and adds engine keys all the time).

use std::path::PathBuf;

use serde::Serialize;

use super::env_string::EnvList;
use crate::util::yaml::{Mapping, Node};

/// A parsed, validated perf config.
#[derive(Debug, Clone, Serialize)]
pub struct PerfConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `metadata`.
    pub metadata: Metadata,
    /// `slurm`.
    pub slurm: SlurmSection,
    /// `benchmark` (with legacy `sequence` / `metadata` / `environment` fallbacks applied).
    pub benchmark: BenchmarkSection,
    /// `hardware`.
    pub hardware: Hardware,
    /// `environment`.
    pub environment: Environment,
    /// `profiling`.
    pub profiling: Profiling,
    /// `accuracy`.
    pub accuracy: Accuracy,
    /// `worker_config.ctx`.
    pub ctx_worker: WorkerSection,
    /// `worker_config.gen`.
    pub gen_worker: WorkerSection,
    /// Top-level `internal_request_auth_key` (else one is generated per output dir).
    pub internal_request_auth_key: Option<String>,
    /// Top-level `router_config` (copied into both server groups of the router config).
    pub router_config: Option<Node>,
    /// Top-level `ctx_router_config` (overrides `router_config` for context servers).
    pub ctx_router_config: Option<Node>,
    /// Top-level `gen_router_config` (overrides `router_config` for generation servers).
    pub gen_router_config: Option<Node>,
    /// Top-level `server_config_extra`, merged last into `server_config.<s>.yaml`.
    pub server_config_extra: Option<Mapping>,
    /// Top-level `sim` section, for the embedded simulator only (never given to real servers).
    pub sim: Option<Node>,
    /// Soft findings: upstream validator rules that do not stop a run.
    pub warnings: Vec<String>,
}

/// `metadata`.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// `metadata.model_name` (required).
    pub model_name: String,
    /// `metadata.precision`.
    pub precision: Option<String>,
    /// `metadata.model_dir_name`: directory under `LLM_MODELS_ROOT`.
    pub model_dir_name: Option<String>,
    /// `metadata.supported_gpus`.
    pub supported_gpus: Vec<String>,
    /// `metadata.benchmark_type` (informational).
    pub benchmark_type: Option<String>,
}

/// `slurm`.
#[derive(Debug, Clone, Serialize)]
pub struct SlurmSection {
    /// `slurm.partition`.
    pub partition: Option<String>,
    /// `slurm.account`.
    pub account: Option<String>,
    /// `slurm.job_time` (sbatch `--time`).
    pub job_time: Option<String>,
    /// `slurm.job_name`.
    pub job_name: Option<String>,
    /// `slurm.extra_args`: extra sbatch arguments, whitespace-separated.
    pub extra_args: Option<String>,
    /// `slurm.set_segment`.
    pub set_segment: Option<bool>,
    /// `slurm.numa_bind`: prefix worker argv with `numactl "-m 0,1"`.
    pub numa_bind: bool,
    /// `slurm.timeout` in seconds (default 10800): every disagg wait and the router's `-t/-r`.
    pub timeout_s: u64,
    /// `slurm.script_file` (informational).
    pub script_file: Option<String>,
}

/// The benchmark mode a trial runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkMode {
    /// Context + generation workers, full requests.
    E2e,
    /// Generation-focused: one client (first concurrency, one round), no warmup,
    /// device-step-time metrics from the gen workers' iteration logs.
    GenOnly,
    /// As `GenOnly` but without context workers (`TRTLLM_DISAGG_BENCHMARK_GEN_ONLY=1`).
    GenOnlyNoContext,
}

impl BenchmarkMode {
    /// The YAML / test-id spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchmarkMode::E2e => "e2e",
            BenchmarkMode::GenOnly => "gen_only",
            BenchmarkMode::GenOnlyNoContext => "gen_only_no_context",
        }
    }

    /// Parses the YAML / test-id spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "e2e" => Some(BenchmarkMode::E2e),
            "gen_only" => Some(BenchmarkMode::GenOnly),
            "gen_only_no_context" => Some(BenchmarkMode::GenOnlyNoContext),
            _ => None,
        }
    }

    /// gen_only or gen_only_no_context.
    pub fn is_gen_only(self) -> bool {
        !matches!(self, BenchmarkMode::E2e)
    }
}

/// What to do when a standard-mode dataset file cannot be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFallback {
    /// Fail the plan, naming every path tried (default).
    Error,
    /// Use a consistent random-dataset command and warn.
    Random,
}

/// A string value together with the key it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Dotted key path it was read from (e.g. `metadata.dataset_file`).
    pub key: String,
}

/// `benchmark`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkSection {
    /// `benchmark.mode` (default e2e).
    pub mode: BenchmarkMode,
    /// `benchmark.use_nv_sa_benchmark` as written (absent = `None`).
    pub use_nv_sa_benchmark: Option<bool>,
    /// `benchmark.multi_round` (default 1).
    pub multi_round: u64,
    /// `benchmark.benchmark_ratio` (default 0.0): random-length range ratio.
    pub benchmark_ratio: f64,
    /// Whether `benchmark.benchmark_ratio` was written (the NV SA client's default differs).
    pub benchmark_ratio_set: bool,
    /// `benchmark.streaming` (default true).
    pub streaming: bool,
    /// `benchmark.concurrency_list` (default `[1]`).
    pub concurrency_list: Vec<u64>,
    /// Input length (`benchmark.input_length`, legacy `sequence.input_length`; default 1024).
    pub input_length: Sourced<u64>,
    /// Output length (`benchmark.output_length`, legacy `sequence.output_length`; default 1024).
    pub output_length: Sourced<u64>,
    /// Dataset file (`benchmark.dataset_file`, legacy `metadata.dataset_file` /
    /// `environment.dataset_file`), placeholders removed.
    pub dataset_file: Option<Sourced<String>>,
    /// `benchmark.dataset_fallback` (perfsanity extension; default error).
    pub dataset_fallback: Option<DatasetFallback>,
    /// `benchmark.env_var`: extra client environment (upstream's SLURM framework).
    pub env_var: EnvList,
}

/// `hardware`.
#[derive(Debug, Clone, Serialize)]
pub struct Hardware {
    /// `hardware.gpus_per_node` (required, ≥ 1).
    pub gpus_per_node: u64,
    /// `hardware.num_ctx_servers` (0 for gen_only_no_context).
    pub num_ctx_servers: u64,
    /// `hardware.num_gen_servers` (≥ 1).
    pub num_gen_servers: u64,
}

/// `environment`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    /// `environment.container_image` (pyxis), placeholders removed.
    pub container_image: Option<String>,
    /// `environment.container_mount` (pyxis `src:dst,…`).
    pub container_mount: Option<String>,
    /// `environment.worker_env_var` (raw string).
    pub worker_env_var: String,
    /// `environment.ctx_worker_env_var` (raw string).
    pub ctx_worker_env_var: String,
    /// `environment.gen_worker_env_var` (raw string).
    pub gen_worker_env_var: String,
    /// `environment.server_env_var` (raw string; the router's environment).
    pub server_env_var: String,
    /// `environment.client_env_var` (raw string).
    pub client_env_var: String,
    /// `environment.benchmark_env_var` (raw string; SLURM launcher only).
    pub benchmark_env_var: String,
    /// Context worker env: `worker_env_var` + `ctx_worker_env_var`.
    pub ctx_env: EnvList,
    /// Generation worker env: `worker_env_var` + `gen_worker_env_var`.
    pub gen_env: EnvList,
    /// Router env: `server_env_var`.
    pub server_env: EnvList,
    /// Client env: `client_env_var`.
    pub client_env: EnvList,
    /// Benchmark-role env: `benchmark_env_var`.
    pub benchmark_env: EnvList,
}

/// `profiling`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Profiling {
    /// `profiling.nsys_on`.
    pub nsys_on: bool,
}

/// `accuracy`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Accuracy {
    /// `accuracy.enable_accuracy_test`.
    pub enabled: bool,
}

/// `worker_config.ctx` or `worker_config.gen`: the engine options, passed through untouched,
/// plus the few values the harness itself needs.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerSection {
    /// The block as written (document order).
    pub options: Mapping,
    /// Line of the block (0 when absent).
    pub line: usize,
    /// `tensor_parallel_size` (default 1).
    pub tp: u64,
    /// `pipeline_parallel_size` (default 1).
    pub pp: u64,
    /// `context_parallel_size` (default 1).
    pub cp: u64,
    /// `moe_expert_parallel_size` (default 1; never multiplies GPU counts).
    pub ep: u64,
    /// `backend` (harness key, default `pytorch`): `trtllm-serve --backend`.
    pub backend: String,
    /// `max_batch_size` if set.
    pub max_batch_size: Option<u64>,
    /// `print_iter_log` (default false).
    pub print_iter_log: bool,
    /// `speculative_config.decoding_type` when set (spec decoding ⇒ the `al` metric).
    pub spec_decoding_type: Option<String>,
}

impl WorkerSection {
    /// GPUs one worker uses: tp × pp × cp (EP lives inside the TP world).
    pub fn gpus_per_worker(&self) -> u64 {
        self.tp * self.pp * self.cp
    }
}

/// Keys of a worker block that belong to the harness, never to the engine config (§2.1).
pub const HARNESS_ONLY_WORKER_KEYS: &[&str] = &[
    "name",
    "model_name",
    "concurrency",
    "gpus",
    "gpus_per_node",
    "match_mode",
    "client_configs",
    "backend",
    "extra_llm_api_config_path",
    "server_env_var",
    "mode",
    "disagg_run_type",
];
