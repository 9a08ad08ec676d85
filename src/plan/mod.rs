//! The plan: everything one trial will run, decided before anything runs.
//!
//! [`build_plan`] is pure — config + trial + [`PlanInputs`] in, [`Plan`] out. A plan holds every
//! process (role, argv, env additions, log and address files), every generated file with its
//! content, the client runs, the topology, timeouts and the benchmark mode with the reason it
//! was chosen. The runner only executes a plan; the dry-run only prints one.

mod aggregated;
pub mod auth_key;
mod build;
mod dataset;
pub mod dataset_check;
mod engine_config;
pub mod launch_env;
pub mod model_path;
pub mod prepare;
mod range_ratio;
mod render;
mod render_aggr;
mod render_parts;
mod role;
mod router_config;
mod scale;
pub mod settings;
pub mod sim_only;
pub mod toolchain;
mod topology;

use std::path::PathBuf;

use serde::Serialize;

pub use aggregated::{
    AGGR_RUNTIME, AGGR_WAIT_S, AggrClientPlan, AggrPlan, AggrRequest, AggrServerPlan, AggrSource,
    MULTI_NODE_AGGR_RUNTIME, aggr_gpus_needed, aggr_runtime, build_aggr_plan, select_servers,
};
pub use build::{PlanError, PlanInputs, TrialRequest, build_plan};
pub use dataset::{DatasetGenSpec, DatasetPlan};
pub use engine_config::{engine_config, engine_config_text};
pub use render::render_text;
pub use render_aggr::render_aggr_text;
pub use role::Role;
pub use router_config::RouterConfigTemplate;
pub use scale::Scale;
pub use topology::{Shape, Topology, WorkerTopology};

use crate::config::BenchmarkMode;
use crate::config::env_string::EnvList;
use crate::plan::toolchain::{ClientKind, Toolchain};

/// A complete, executable description of one trial.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Trial name (`disagg_upload-<stem>`, …).
    pub trial: String,
    /// The id as the test list wrote it (upstream's `s_test_list`), else the trial name.
    pub test_list_id: String,
    /// Config stem.
    pub stem: String,
    /// Config file.
    pub config_path: PathBuf,
    /// Upload the records when a database is configured.
    pub upload: bool,
    /// Benchmark mode.
    pub mode: BenchmarkMode,
    /// Where the mode came from (`benchmark.mode`, a test-list label, or the default).
    pub mode_source: String,
    /// Upstream's server name `N = <mode>-<stem>` (engine config file names, test case names).
    pub server_name: String,
    /// Which client runs.
    pub client_kind: ClientKind,
    /// "NV SA (random)", "Standard (dataset)" or "Standard (random)".
    pub benchmark_mode_label: String,
    /// Why that client and dataset were chosen.
    pub benchmark_mode_reason: String,
    /// The random-length range ratio the client is given.
    pub range_ratio: f64,
    /// Where [`Plan::range_ratio`] came from.
    pub range_ratio_reason: String,
    /// Variables removed from every role's environment (upstream's launcher).
    pub launch_env: launch_env::LaunchEnv,
    /// The dataset decision.
    pub dataset: DatasetPlan,
    /// Toolchain the argv prefixes are for.
    pub toolchain: Toolchain,
    /// Load scale.
    pub scale: Scale,
    /// Model path passed to servers and clients.
    pub model_path: String,
    /// Server index `s` (always 0: one server config per disagg YAML).
    pub server_index: u32,
    /// The trial's output directory (upstream's `test_output_dir`).
    pub output_dir: PathBuf,
    /// The rendezvous directory `hostnames-<job|local>-<s>`.
    pub rendezvous_dir: PathBuf,
    /// GPUs and nodes.
    pub topology: Topology,
    /// Files written before anything starts.
    pub files: Vec<GeneratedFile>,
    /// Workers in launch order: `GEN_i`, then `CTX_i`.
    pub workers: Vec<ProcessSpec>,
    /// The disaggregated router.
    pub router: RouterSpec,
    /// Benchmark client runs, in order.
    pub clients: Vec<ClientSpec>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Per-generation-worker logs the gen_only metric is read from (`gen_server_<i>.log`).
    pub gen_logs: Vec<PathBuf>,
    /// Speculative decoding is configured (the client must report `al`).
    pub spec_decoding: bool,
    /// `benchmark_status.<s>.txt`.
    pub status_file: PathBuf,
    /// Things a perf engineer should read before spending GPU hours.
    pub warnings: Vec<String>,
}

/// A file the plan writes.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedFile {
    /// Where.
    pub path: PathBuf,
    /// What it is for.
    pub purpose: String,
    /// Exact content.
    pub content: String,
    /// Keep an existing file instead of overwriting it (the shared auth key).
    pub keep_existing: bool,
}

/// One long-running server process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessSpec {
    /// Role.
    pub role: Role,
    /// Full argv; `argv[0]` is the program (`perfsanity` is resolved to our own executable).
    pub argv: Vec<String>,
    /// Environment additions on top of the inherited environment.
    pub env: EnvList,
    /// stdout + stderr.
    pub log_file: PathBuf,
    /// Where the server writes its `host:port` (`--report_addr`).
    pub address_file: PathBuf,
    /// GPUs it needs.
    pub gpus: u64,
    /// Its logical GPU slice on one host: `[first_gpu, first_gpu + gpus)` (gen first, then ctx).
    pub first_gpu: u64,
}

/// The router and its config template.
#[derive(Debug, Clone, Serialize)]
pub struct RouterSpec {
    /// The router process.
    pub process: ProcessSpec,
    /// `server_config.<s>.yaml`.
    pub config_path: PathBuf,
    /// Its content minus the worker URLs.
    pub config: RouterConfigTemplate,
}

/// One benchmark client run.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSpec {
    /// Client index `c`.
    pub index: u32,
    /// Upstream's client name `con<c>_iter<i>_isl<isl>_osl<osl>`.
    pub name: String,
    /// `s_test_case_name`: `<server name>-<client name>`.
    pub test_case_name: String,
    /// `--max-concurrency`.
    pub concurrency: u64,
    /// Rounds (`multi_round`, or 1 for gen_only).
    pub iterations: u64,
    /// `--num-prompts` = concurrency × iterations.
    pub num_prompts: u64,
    /// Input length (random dataset).
    pub isl: u64,
    /// Output length (random dataset).
    pub osl: u64,
    /// Whether the client sends its un-measured warmup request (no `--no-test-input`).
    pub warmup: bool,
    /// argv without the run-time `--host <h> --port <p>`.
    pub argv: Vec<String>,
    /// Environment additions.
    pub env: EnvList,
    /// `trtllm-benchmark.<s>.<c>.log`.
    pub log_file: PathBuf,
}

/// Time limits, in seconds, with where each came from.
#[derive(Debug, Clone, Serialize)]
pub struct Timeouts {
    /// `slurm.timeout`: address files, hostname files, status-file waits, router `-t/-r`.
    pub wait_s: u64,
    /// Router readiness: min(`slurm.timeout`, ready timeout).
    pub ready_s: u64,
    /// Where the ready timeout came from.
    pub ready_source: String,
    /// The whole trial (test list `TIMEOUT (N)`, or `PERF_TRIAL_TIMEOUT_S`), if any.
    pub trial_s: Option<u64>,
    /// Where the trial limit came from (`test list TIMEOUT` or `PERF_TRIAL_TIMEOUT_S`).
    pub trial_source: String,
}
