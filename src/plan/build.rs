//! [`build_plan`]: config + trial + environment → [`Plan`], with upstream's exact argv
//! (upstream-perf-sanity.md §4) and file names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dataset::{self, DatasetContext, DatasetGenSpec, DatasetPlan, join_paths};
use super::engine_config::{engine_config, engine_config_text};
use super::router_config::RouterConfigTemplate;
use super::scale::Scale;
use super::settings::{DISAGG_READY_TIMEOUT_KNOB, READY_TIMEOUT_KNOB, ReadyTimeouts};
use super::topology::Topology;
use super::{ClientSpec, GeneratedFile, Plan, ProcessSpec, Role, RouterSpec, Timeouts};
use crate::config::env_string::{EnvList, merge, set};
use crate::config::{BenchmarkMode, DatasetFallback, PerfConfig, Sourced, WorkerSection};
use crate::plan::toolchain::{ClientKind, Toolchain, client_prefix, router_prefix, worker_prefix};
use crate::util::yaml::python_float;

/// Which trial to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialRequest {
    /// Trial name.
    pub trial: String,
    /// The id as written in a test list (else the trial name).
    pub test_list_id: String,
    /// Config stem.
    pub stem: String,
    /// `_upload` trial.
    pub upload: bool,
    /// Mode label from an upstream id (overrides `benchmark.mode`).
    pub mode_override: Option<BenchmarkMode>,
    /// Whole-trial limit from the test list, seconds.
    pub time_limit_s: Option<u64>,
}

/// The environment a plan is built in (all the I/O results the builder needs, so it stays pure).
pub struct PlanInputs<'a> {
    /// `PERF_OUTPUT_DIR`: the trial's files go to `<output_root>/<trial>/`.
    pub output_root: PathBuf,
    /// `LLM_MODELS_ROOT`.
    pub models_root: Option<PathBuf>,
    /// `LLM_ROOT` (upstream repo root; joins relative load-balancer paths).
    pub repo_root: Option<PathBuf>,
    /// Directory relative dataset paths are resolved from.
    pub cwd: PathBuf,
    /// Where the simulator toolchain generates missing datasets.
    pub sim_dataset_root: PathBuf,
    /// Toolchain.
    pub toolchain: Toolchain,
    /// Load scale.
    pub scale: Scale,
    /// This host's name (workers `--host`, router `hostname`).
    pub hostname: String,
    /// `SLURM_JOB_ID` (rendezvous dir scope; `local` when unset).
    pub job_id: Option<String>,
    /// The shared auth key (read from / to be written to `internal_request_auth_key.txt`).
    pub auth_key: String,
    /// `PERF_DATASET_FALLBACK=random`.
    pub dataset_fallback_env: bool,
    /// Upstream's server-ready timeout knobs, parsed.
    pub ready_timeouts: ReadyTimeouts,
    /// Existence check for model dirs and datasets.
    pub exists: &'a dyn Fn(&Path) -> bool,
}

/// Why a plan cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Standard mode and the dataset file is nowhere.
    #[error(
        "{}: `{key}`: dataset file {value:?} not found; tried {tried}. Put the file there, fix \
         the path, or set `benchmark.dataset_fallback: random` (or PERF_DATASET_FALLBACK=random) \
         to run the random dataset instead",
        config.display()
    )]
    DatasetMissing {
        /// The config file.
        config: PathBuf,
        /// Config key.
        key: String,
        /// Configured value.
        value: String,
        /// Paths tried, joined.
        tried: String,
    },
    /// The config asks for something perfsanity cannot run.
    #[error("{}: {message}", config.display())]
    Unsupported {
        /// The config file.
        config: PathBuf,
        /// What and why.
        message: String,
    },
    /// TensorRT-LLM toolchain and the model directory is nowhere.
    #[error(
        "{}: `metadata.model_name`: model {model_name:?} not found; tried {tried}. Set \
         LLM_MODELS_ROOT to the models root, set `metadata.model_dir_name` to the directory \
         under it, or give a Hugging Face id (`org/name`) as model_name to have trtllm-serve \
         download it",
        config.display()
    )]
    ModelMissing {
        /// The config file.
        config: PathBuf,
        /// `metadata.model_name`.
        model_name: String,
        /// Paths tried, joined.
        tried: String,
    },
}

const READY_TIMEOUT_DEFAULT_S: u64 = 3600;

pub(super) fn ready_timeout(inputs: &PlanInputs<'_>) -> (u64, String) {
    ready_timeout_from(&[
        (DISAGG_READY_TIMEOUT_KNOB, inputs.ready_timeouts.disagg),
        (READY_TIMEOUT_KNOB, inputs.ready_timeouts.any),
    ])
}

/// The first set knob of `knobs` (in precedence order) in whole seconds and its name, else the
/// default.
pub(super) fn ready_timeout_from(knobs: &[(&str, Option<Duration>)]) -> (u64, String) {
    knobs
        .iter()
        .find_map(|(name, value)| value.map(|v| (v.as_secs(), name.to_string())))
        .unwrap_or_else(|| (READY_TIMEOUT_DEFAULT_S, "default".to_string()))
}

/// Builds the plan of `request` for `config`.
pub fn build_plan(
    config: &PerfConfig,
    request: &TrialRequest,
    inputs: &PlanInputs<'_>,
) -> Result<Plan, PlanError> {
    let (mode, mode_source) = resolve_mode(config, request);
    let no_context = mode == BenchmarkMode::GenOnlyNoContext;
    let topology = Topology::of(config, no_context);
    let scale = inputs.scale;
    let mut warnings = config.warnings.clone();
    check_frontends(config)?;
    let (client_kind, kind_reason) = choose_client_kind(
        config.benchmark.use_nv_sa_benchmark,
        "benchmark.use_nv_sa_benchmark",
    );
    let spec_decoding = config.gen_worker.spec_decoding_type.is_some()
        || (!no_context && config.ctx_worker.spec_decoding_type.is_some());
    warnings.extend(client_kind_warnings(client_kind, spec_decoding, mode));
    let mut runs = ClientRuns::of(config, mode, scale);
    let ratio_choice = super::range_ratio::choose(config, client_kind, runs.isl, runs.osl)
        .map_err(|m| unsupported(config, m))?;
    runs.ratio = ratio_choice.ratio;
    let dataset = decide_dataset(
        config.benchmark.dataset_file.as_ref(),
        config.benchmark.dataset_fallback,
        "benchmark.dataset_file",
        client_kind,
        runs.gen_spec(),
        inputs,
    )
    .map_err(|e| e.with_config(&config.path))?;
    warnings.extend(dataset.warning.clone());
    if matches!(dataset.plan, DatasetPlan::Random { .. }) && runs.ratio >= 1.0 {
        return Err(unsupported(config, ratio_message(runs.ratio)));
    }

    let s = 0u32;
    let output_dir = inputs.output_root.join(&request.trial);
    let job = inputs.job_id.clone().unwrap_or_else(|| "local".to_string());
    let rendezvous_dir = output_dir.join(format!("hostnames-{job}-{s}"));
    let server_name = format!("{}-{}", mode.as_str(), request.stem);
    let model_path = model_path(config, inputs, &mut warnings)?;

    let mut files = Vec::new();
    let auth_key = auth_key_file(config, inputs, &output_dir, &mut files);
    let ctx_config = (topology.ctx.count > 0).then(|| {
        engine_config_file(
            "ctx",
            &config.ctx_worker,
            Some(&auth_key),
            &server_name,
            &output_dir,
            inputs,
            &mut files,
            &mut warnings,
        )
    });
    let gen_config = engine_config_file(
        "gen",
        &config.gen_worker,
        Some(&auth_key),
        &server_name,
        &output_dir,
        inputs,
        &mut files,
        &mut warnings,
    );
    let sim_config_path = sim_config_file(config.sim.as_ref(), inputs, &output_dir, &mut files);

    let numactl = config.slurm.numa_bind && inputs.toolchain == Toolchain::Trtllm;
    if config.slurm.numa_bind && inputs.toolchain == Toolchain::Sim {
        warnings.push(
            "slurm.numa_bind: the numactl \"-m 0,1\" prefix applies to the trtllm toolchain only"
                .to_string(),
        );
    }
    let gen_env = gen_worker_env(
        config,
        mode,
        &topology,
        runs.concurrencies[0],
        &mut warnings,
    );
    let worker_ctx = WorkerContext {
        inputs,
        numactl,
        sim_config: sim_config_path.as_deref(),
        model_path: &model_path,
        rendezvous_dir: &rendezvous_dir,
        output_dir: &output_dir,
        s,
    };
    let workers = worker_processes(
        config,
        &topology,
        &worker_ctx,
        &gen_config,
        ctx_config.as_deref(),
        &gen_env,
    );

    let wait_s = config.slurm.timeout_s;
    let (ready_env_s, ready_source) = ready_timeout(inputs);
    let router = router_spec(
        config,
        &topology,
        &worker_ctx,
        &auth_key,
        wait_s,
        no_context,
    );

    let client_env = client_env(&config.environment.client_env, &config.benchmark.env_var);
    let warmup = mode == BenchmarkMode::E2e && client_kind == ClientKind::Standard;
    let clients = client_specs(
        &runs,
        &ClientCommand {
            toolchain: inputs.toolchain,
            kind: client_kind,
            model_path: &model_path,
            warmup,
            options: ClientOptions::disaggregated(config.benchmark.streaming),
            dataset: &dataset.plan,
        },
        &server_name,
        &client_env,
        &output_dir,
        s,
    );

    let gen_logs = (0..topology.gen_workers.count)
        .map(|i| output_dir.join(format!("gen_server_{i}.log")))
        .collect();
    warnings.extend(smoke_warning(scale));

    Ok(Plan {
        trial: request.trial.clone(),
        test_list_id: request.test_list_id.clone(),
        stem: request.stem.clone(),
        config_path: config.path.clone(),
        upload: request.upload,
        mode,
        mode_source,
        server_name,
        client_kind,
        benchmark_mode_label: dataset.label.to_string(),
        benchmark_mode_reason: format!("{kind_reason}; {}", dataset.reason),
        range_ratio: runs.ratio,
        range_ratio_reason: ratio_choice.reason,
        launch_env: super::launch_env::LaunchEnv::upstream(),
        dataset: dataset.plan,
        toolchain: inputs.toolchain,
        scale,
        model_path,
        server_index: s,
        status_file: output_dir.join(format!("benchmark_status.{s}.txt")),
        rendezvous_dir,
        output_dir,
        topology,
        files,
        workers,
        router,
        clients,
        timeouts: Timeouts {
            wait_s,
            ready_s: wait_s.min(ready_env_s),
            ready_source,
            trial_s: request.time_limit_s,
            trial_source: "test list TIMEOUT".to_string(),
        },
        gen_logs,
        spec_decoding,
        warnings,
    })
}

fn unsupported(config: &PerfConfig, message: String) -> PlanError {
    PlanError::Unsupported {
        config: config.path.clone(),
        message,
    }
}

pub(super) fn ratio_message(ratio: f64) -> String {
    format!(
        "benchmark.benchmark_ratio {ratio} must be < 1 for the standard client's random dataset"
    )
}

/// The benchmark mode and where it came from: a test-list label wins over `benchmark.mode`.
fn resolve_mode(config: &PerfConfig, request: &TrialRequest) -> (BenchmarkMode, String) {
    match request.mode_override {
        Some(m) => (m, format!("test-list id label `{}`", m.as_str())),
        None => (
            config.benchmark.mode,
            if config.benchmark.mode == BenchmarkMode::E2e {
                "benchmark.mode (e2e unless set)".to_string()
            } else {
                "benchmark.mode".to_string()
            },
        ),
    }
}

/// `num_serve_frontends > 1` needs harness-reserved ports, which perfsanity does not implement.
fn check_frontends(config: &PerfConfig) -> Result<(), PlanError> {
    for (name, worker) in [("ctx", &config.ctx_worker), ("gen", &config.gen_worker)] {
        if let Some(n) = worker.options.get("num_serve_frontends")
            && n.as_i64().is_some_and(|v| v > 1)
        {
            return Err(unsupported(
                config,
                format!(
                    "worker_config.{name}.num_serve_frontends > 1 needs harness-reserved ports, \
                     which perfsanity does not implement"
                ),
            ));
        }
    }
    Ok(())
}

/// The client kind and the reason, from a `use_nv_sa_benchmark` setting (`key` names it).
/// Absent means true: the seed design's backward-compatible default.
pub(super) fn choose_client_kind(setting: Option<bool>, key: &str) -> (ClientKind, String) {
    match setting {
        Some(true) => (ClientKind::NvSa, format!("{key}: true")),
        Some(false) => (ClientKind::Standard, format!("{key}: false")),
        None => (
            ClientKind::NvSa,
            format!(
                "{key} is not set; perfsanity defaults it to true (the seed design's \
                 backward-compatible default)"
            ),
        ),
    }
}

/// What a perf engineer should know about the client choice.
pub(super) fn client_kind_warnings(
    kind: ClientKind,
    spec_decoding: bool,
    mode: BenchmarkMode,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if kind == ClientKind::NvSa && spec_decoding {
        warnings.push(
            "speculative decoding with the NV SA client: that client does not report the \
             acceptance length ('Mean Avg Decoded Tokens per Iter'), so `al` is neither required \
             nor recorded for this trial (upstream's check would fail it)"
                .to_string(),
        );
    }
    if kind == ClientKind::NvSa && mode.is_gen_only() {
        warnings.push(format!(
            "the NV SA client runs a {} benchmark; upstream's SLURM submit tool rejects SA for \
             gen_only — consider benchmark.use_nv_sa_benchmark: false",
            mode.as_str()
        ));
    }
    warnings
}

/// The client runs of a disaggregated trial: one per concurrency (only the first for gen_only),
/// at the trial's scale.
pub(super) struct ClientRuns {
    /// `--max-concurrency` of each run.
    pub concurrencies: Vec<u64>,
    /// Rounds per run.
    pub iterations: u64,
    /// Input length.
    pub isl: u64,
    /// Output length.
    pub osl: u64,
    /// Random-length range ratio.
    pub ratio: f64,
}

impl ClientRuns {
    fn of(config: &PerfConfig, mode: BenchmarkMode, scale: Scale) -> Self {
        let concurrencies = scale.concurrencies(&config.benchmark.concurrency_list);
        let (concurrencies, iterations) = if mode.is_gen_only() {
            (vec![concurrencies[0]], 1)
        } else {
            (concurrencies, scale.rounds(config.benchmark.multi_round))
        };
        ClientRuns {
            concurrencies,
            iterations,
            isl: scale.input_len(config.benchmark.input_length.value),
            osl: scale.output_len(config.benchmark.output_length.value),
            ratio: config.benchmark.benchmark_ratio,
        }
    }

    /// What a generated stand-in dataset must hold for these runs.
    pub fn gen_spec(&self) -> DatasetGenSpec {
        DatasetGenSpec {
            num_prompts: self
                .concurrencies
                .iter()
                .map(|c| c * self.iterations)
                .max()
                .unwrap_or(1),
            input_len: self.isl,
            output_len: self.osl,
            // Generated stand-ins have fixed lengths, like upstream's `ratio-1` files.
            range_ratio: 1.0,
            seed: 0,
        }
    }
}

/// The dataset decision with its dry-run label, reason and warning.
pub(super) struct DatasetChoice {
    pub plan: DatasetPlan,
    pub label: &'static str,
    pub reason: String,
    pub warning: Option<String>,
}

/// A dataset that cannot be found, before the config path is attached.
pub(super) struct DatasetMissing {
    key: String,
    value: String,
    tried: String,
}

impl DatasetMissing {
    pub fn with_config(self, config: &Path) -> PlanError {
        PlanError::DatasetMissing {
            config: config.to_path_buf(),
            key: self.key,
            value: self.value,
            tried: self.tried,
        }
    }
}

/// Decides the dataset of one client kind from a configured file (if any).
pub(super) fn decide_dataset(
    file: Option<&Sourced<String>>,
    fallback: Option<DatasetFallback>,
    file_key: &str,
    client: ClientKind,
    gen_spec: DatasetGenSpec,
    inputs: &PlanInputs<'_>,
) -> Result<DatasetChoice, DatasetMissing> {
    let (plan, warning) = dataset::decide(
        file,
        fallback,
        file_key,
        &DatasetContext {
            client,
            toolchain: inputs.toolchain,
            models_root: inputs.models_root.as_deref(),
            cwd: &inputs.cwd,
            sim_dataset_root: &inputs.sim_dataset_root.join(inputs.scale.as_str()),
            fallback_env: inputs.dataset_fallback_env,
            exists: inputs.exists,
            gen_spec,
        },
    )
    .map_err(|m| DatasetMissing {
        key: m.key,
        value: m.value,
        tried: join_paths(&m.tried),
    })?;
    let (label, reason) = match &plan {
        DatasetPlan::SaRandom => (
            "NV SA (random)",
            "the SA client always uses random prompts".to_string(),
        ),
        DatasetPlan::File { path, key } => (
            "Standard (dataset)",
            format!("dataset {} from {key}", path.display()),
        ),
        DatasetPlan::Generated { path, key, .. } => (
            "Standard (dataset)",
            format!(
                "{key} is not on this machine; the simulator toolchain generates a synthetic \
                 trtllm_custom file at {}",
                path.display()
            ),
        ),
        DatasetPlan::Random { reason } => ("Standard (random)", reason.clone()),
    };
    Ok(DatasetChoice {
        plan,
        label,
        reason,
        warning,
    })
}

/// The shared auth key: the YAML's, or the generated one (its file kept when it exists).
fn auth_key_file(
    config: &PerfConfig,
    inputs: &PlanInputs<'_>,
    output_dir: &Path,
    files: &mut Vec<GeneratedFile>,
) -> String {
    match &config.internal_request_auth_key {
        Some(k) => k.clone(),
        None => {
            files.push(GeneratedFile {
                path: output_dir.join("internal_request_auth_key.txt"),
                purpose: "shared router/worker auth key (kept when it already exists)".to_string(),
                content: format!("{}\n", inputs.auth_key),
                keep_existing: true,
            });
            inputs.auth_key.clone()
        }
    }
}

/// Writes `extra-llm-api-config.<kind>.<server>.yml` into `files` and returns its path.
#[allow(clippy::too_many_arguments)]
pub(super) fn engine_config_file(
    kind: &str,
    worker: &WorkerSection,
    auth_key: Option<&str>,
    server_name: &str,
    output_dir: &Path,
    inputs: &PlanInputs<'_>,
    files: &mut Vec<GeneratedFile>,
    warnings: &mut Vec<String>,
) -> PathBuf {
    let path = output_dir.join(format!("extra-llm-api-config.{kind}.{server_name}.yml"));
    let map = engine_config(
        worker,
        auth_key,
        inputs.models_root.as_deref(),
        inputs.repo_root.as_deref(),
        warnings,
    );
    files.push(GeneratedFile {
        path: path.clone(),
        purpose: if kind == "aggr" {
            format!("engine config of aggregated server {server_name}")
        } else {
            format!("engine config of every {} worker", kind.to_uppercase())
        },
        content: engine_config_text(&map),
        keep_existing: false,
    });
    path
}

/// The YAML's `sim:` section as `<tod>/sim-config.json` (simulator toolchain only).
pub(super) fn sim_config_file(
    sim: Option<&crate::util::yaml::Node>,
    inputs: &PlanInputs<'_>,
    output_dir: &Path,
    files: &mut Vec<GeneratedFile>,
) -> Option<PathBuf> {
    match (sim, inputs.toolchain) {
        (Some(sim), Toolchain::Sim) => {
            let path = output_dir.join("sim-config.json");
            files.push(GeneratedFile {
                path: path.clone(),
                purpose: "the YAML's sim: section, for the embedded simulator only".to_string(),
                content: format!(
                    "{}\n",
                    serde_json::to_string_pretty(sim).unwrap_or_default()
                ),
                keep_existing: false,
            });
            Some(path)
        }
        _ => None,
    }
}

/// The generation workers' env: the YAML's, plus upstream's gen_only launcher additions.
fn gen_worker_env(
    config: &PerfConfig,
    mode: BenchmarkMode,
    topology: &Topology,
    first_concurrency: u64,
    warnings: &mut Vec<String>,
) -> EnvList {
    let mut gen_env = config.environment.gen_env.clone();
    if mode.is_gen_only() {
        // Each gen worker decodes only once TLLM_BENCHMARK_REQ_QUEUES_SIZE requests are queued
        // on it. Upstream sets it to the client concurrency, which round robin splits over the
        // gen workers: with more than one the gate never opens. We set each worker's share,
        // which is upstream's value whenever there is one gen worker.
        let workers = topology.gen_workers.count.max(1);
        let queue_size = first_concurrency.div_ceil(workers);
        if workers > 1 {
            warnings.push(format!(
                "gen_only with {workers} generation workers: TLLM_BENCHMARK_REQ_QUEUES_SIZE is \
                 each worker's share of the concurrency ({queue_size} of {first_concurrency}); \
                 upstream would set {first_concurrency} and never start decoding"
            ));
        }
        set(
            &mut gen_env,
            "TRTLLM_DISABLE_KV_CACHE_TRANSFER_OVERLAP",
            "1",
        );
        set(
            &mut gen_env,
            "TLLM_BENCHMARK_REQ_QUEUES_SIZE",
            &queue_size.to_string(),
        );
    }
    if mode == BenchmarkMode::GenOnlyNoContext {
        set(&mut gen_env, "TRTLLM_DISAGG_BENCHMARK_GEN_ONLY", "1");
    }
    gen_env
}

/// What every worker process of a trial shares.
struct WorkerContext<'a> {
    inputs: &'a PlanInputs<'a>,
    numactl: bool,
    sim_config: Option<&'a Path>,
    model_path: &'a str,
    rendezvous_dir: &'a Path,
    output_dir: &'a Path,
    s: u32,
}

/// One worker: `[numactl "-m 0,1"] trtllm-serve <model> --backend … --config … --host <host>
/// --port 0 --report_addr <rendezvous>/<ROLE>.txt`.
fn worker_process(
    cx: &WorkerContext<'_>,
    role: Role,
    worker: &WorkerSection,
    engine_cfg: &Path,
    env: &EnvList,
    gpus: u64,
    first_gpu: u64,
) -> ProcessSpec {
    let mut argv = Vec::new();
    if cx.numactl {
        argv.push("numactl".to_string());
        argv.push("-m 0,1".to_string());
    }
    argv.extend(worker_prefix(cx.inputs.toolchain, role, cx.sim_config));
    let address_file = cx.rendezvous_dir.join(format!("{role}.txt"));
    argv.extend(serve_args(
        cx.model_path,
        &worker.backend,
        engine_cfg,
        &cx.inputs.hostname,
        &address_file,
    ));
    ProcessSpec {
        role,
        argv,
        env: super::launch_env::worker_env(env),
        log_file: cx
            .output_dir
            .join(format!("trtllm-serve.{role}.{}.log", cx.s)),
        address_file,
        gpus,
        first_gpu,
    }
}

/// `<model> --backend <b> --config <file> --host <host> --port 0 --report_addr <file>`.
pub(super) fn serve_args(
    model_path: &str,
    backend: &str,
    engine_cfg: &Path,
    host: &str,
    address_file: &Path,
) -> Vec<String> {
    vec![
        model_path.to_string(),
        "--backend".to_string(),
        backend.to_string(),
        "--config".to_string(),
        engine_cfg.display().to_string(),
        "--host".to_string(),
        host.to_string(),
        "--port".to_string(),
        "0".to_string(),
        "--report_addr".to_string(),
        address_file.display().to_string(),
    ]
}

/// Workers in launch order: `GEN_i` first, then `CTX_i` (upstream's launch order and GPU
/// packing).
fn worker_processes(
    config: &PerfConfig,
    topology: &Topology,
    cx: &WorkerContext<'_>,
    gen_config: &Path,
    ctx_config: Option<&Path>,
    gen_env: &EnvList,
) -> Vec<ProcessSpec> {
    let mut workers = Vec::new();
    let gen_gpus = topology.gen_workers.gpus_per_worker;
    let ctx_gpus = topology.ctx.gpus_per_worker;
    for i in 0..topology.gen_workers.count {
        workers.push(worker_process(
            cx,
            Role::Gen(i as u32),
            &config.gen_worker,
            gen_config,
            gen_env,
            gen_gpus,
            i * gen_gpus,
        ));
    }
    if let Some(ctx_config) = ctx_config {
        for i in 0..topology.ctx.count {
            workers.push(worker_process(
                cx,
                Role::Ctx(i as u32),
                &config.ctx_worker,
                ctx_config,
                &config.environment.ctx_env,
                ctx_gpus,
                topology.gen_workers.gpus() + i * ctx_gpus,
            ));
        }
    }
    workers
}

/// The router: `trtllm-serve disaggregated -c <server_config.<s>.yaml> -t <wait> -r <wait>
/// --report_addr <rendezvous>/DISAGG_SERVER.<s>.addr`, and its config template.
fn router_spec(
    config: &PerfConfig,
    topology: &Topology,
    cx: &WorkerContext<'_>,
    auth_key: &str,
    wait_s: u64,
    no_context: bool,
) -> RouterSpec {
    let s = cx.s;
    let router_config_path = cx.output_dir.join(format!("server_config.{s}.yaml"));
    let router_address = cx.rendezvous_dir.join(format!("DISAGG_SERVER.{s}.addr"));
    let mut router_argv = router_prefix(cx.inputs.toolchain, cx.sim_config);
    router_argv.extend([
        "-c".to_string(),
        router_config_path.display().to_string(),
        "-t".to_string(),
        wait_s.to_string(),
        "-r".to_string(),
        wait_s.to_string(),
        "--report_addr".to_string(),
        router_address.display().to_string(),
    ]);
    let mut router_env = config.environment.server_env.clone();
    if no_context {
        set(&mut router_env, "TRTLLM_DISAGG_BENCHMARK_GEN_ONLY", "1");
    }
    let router_node = |specific: &Option<crate::util::yaml::Node>| {
        specific.clone().or_else(|| config.router_config.clone())
    };
    RouterSpec {
        process: ProcessSpec {
            role: Role::DisaggServer,
            argv: router_argv,
            env: super::launch_env::role_env(&router_env),
            log_file: cx
                .output_dir
                .join(format!("trtllm-serve.DISAGG_SERVER.{s}.log")),
            address_file: router_address,
            gpus: 0,
            first_gpu: 0,
        },
        config_path: router_config_path,
        config: RouterConfigTemplate {
            hostname: cx.inputs.hostname.clone(),
            auth_key: auth_key.to_string(),
            num_ctx: topology.ctx.count,
            num_gen: topology.gen_workers.count,
            ctx_router: router_node(&config.ctx_router_config),
            gen_router: router_node(&config.gen_router_config),
            extra: config.server_config_extra.clone().unwrap_or_default(),
        },
    }
}

/// Client env: the configured lists, with `PYTHONUNBUFFERED=1` unless set.
pub(super) fn client_env(base: &EnvList, extra: &EnvList) -> EnvList {
    let mut env = merge(base, extra);
    if !env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
        env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
    }
    env
}

/// The client flags upstream takes from a client entry (disaggregated configs fix all but
/// `streaming`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientOptions {
    /// `--backend` (omitted when empty).
    pub backend: String,
    /// `--use-chat-template`.
    pub use_chat_template: bool,
    /// `false` → `--non-streaming`.
    pub streaming: bool,
    /// `--trust-remote-code`.
    pub trust_remote_code: bool,
}

impl ClientOptions {
    /// A disaggregated config's client: `openai`, no chat template, remote code trusted.
    pub fn disaggregated(streaming: bool) -> Self {
        ClientOptions {
            backend: "openai".to_string(),
            use_chat_template: false,
            streaming,
            trust_remote_code: true,
        }
    }
}

/// Everything that shapes a client argv besides its load.
pub(super) struct ClientCommand<'a> {
    pub toolchain: Toolchain,
    pub kind: ClientKind,
    pub model_path: &'a str,
    pub warmup: bool,
    pub options: ClientOptions,
    pub dataset: &'a DatasetPlan,
}

impl ClientCommand<'_> {
    /// The full argv (prefix included) of one run.
    pub fn argv(
        &self,
        num_prompts: u64,
        concurrency: u64,
        isl: u64,
        osl: u64,
        ratio: f64,
    ) -> Vec<String> {
        let mut argv = client_prefix(self.toolchain, self.kind);
        argv.extend(client_args(
            self.kind,
            self.model_path,
            num_prompts,
            concurrency,
            isl,
            osl,
            ratio,
            self.warmup,
            &self.options,
            self.dataset,
        ));
        argv
    }
}

/// One client per concurrency, named `con<c>_iter<i>_isl<isl>_osl<osl>`.
fn client_specs(
    runs: &ClientRuns,
    command: &ClientCommand<'_>,
    server_name: &str,
    env: &EnvList,
    output_dir: &Path,
    s: u32,
) -> Vec<ClientSpec> {
    let (iterations, isl, osl) = (runs.iterations, runs.isl, runs.osl);
    runs.concurrencies
        .iter()
        .enumerate()
        .map(|(c, &concurrency)| {
            let num_prompts = concurrency * iterations;
            let name = format!("con{concurrency}_iter{iterations}_isl{isl}_osl{osl}");
            ClientSpec {
                index: c as u32,
                test_case_name: format!("{server_name}-{name}"),
                name,
                concurrency,
                iterations,
                num_prompts,
                isl,
                osl,
                warmup: command.warmup,
                argv: command.argv(num_prompts, concurrency, isl, osl, runs.ratio),
                env: super::launch_env::client_env(env, output_dir, s, c),
                log_file: output_dir.join(format!("trtllm-benchmark.{s}.{c}.log")),
            }
        })
        .collect()
}

/// The smoke-scale notice.
pub(super) fn smoke_warning(scale: Scale) -> Option<String> {
    (scale == Scale::Smoke).then(|| {
        format!(
            "PERF_SCALE=smoke: load is capped — {}; numbers are not comparable with full-scale \
             runs",
            scale.describe()
        )
    })
}

pub(super) fn model_path(
    config: &PerfConfig,
    inputs: &PlanInputs<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, PlanError> {
    resolve_model_path(
        &config.path,
        &config.metadata.model_name,
        config.metadata.model_dir_name.as_deref(),
        inputs,
        warnings,
    )
}

/// The model path servers and clients get (upstream's `MODEL_PATH_DICT` rule, see
/// [`super::model_path`]), for disaggregated workers and aggregated servers alike.
pub(super) fn resolve_model_path(
    config_path: &Path,
    model_name: &str,
    model_dir_name: Option<&str>,
    inputs: &PlanInputs<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, PlanError> {
    let found = super::model_path::resolve_name(
        model_name,
        model_dir_name,
        inputs.models_root.as_deref(),
        inputs.toolchain,
        inputs.exists,
    )
    .map_err(|m| PlanError::ModelMissing {
        config: config_path.to_path_buf(),
        model_name: m.model_name,
        tried: join_paths(&m.tried),
    })?;
    warnings.extend(found.note);
    Ok(found.path)
}

#[allow(clippy::too_many_arguments)]
fn client_args(
    kind: ClientKind,
    model_path: &str,
    num_prompts: u64,
    concurrency: u64,
    isl: u64,
    osl: u64,
    ratio: f64,
    warmup: bool,
    options: &ClientOptions,
    dataset: &DatasetPlan,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let (n, c, il, ol, r) = (
        num_prompts.to_string(),
        concurrency.to_string(),
        isl.to_string(),
        osl.to_string(),
        python_float(ratio),
    );
    match kind {
        ClientKind::Standard => {
            push(&["--model", model_path, "--tokenizer", model_path]);
            push(&["--num-prompts", &n, "--max-concurrency", &c]);
            push(&["--percentile-metrics", "ttft,tpot,itl,e2el", "--ignore-eos"]);
            if !warmup {
                push(&["--no-test-input"]);
            }
            match dataset.file() {
                Some(path) => {
                    let p = path.display().to_string();
                    push(&["--dataset-name", "trtllm_custom", "--dataset-path", &p]);
                }
                None => {
                    push(&[
                        "--dataset-name",
                        "random",
                        "--random-ids",
                        "--tokenize-on-client",
                    ]);
                    push(&["--random-input-len", &il, "--random-output-len", &ol]);
                    push(&["--random-range-ratio", &r]);
                }
            }
            if !options.backend.is_empty() {
                push(&["--backend", &options.backend]);
            }
            if options.use_chat_template {
                push(&["--use-chat-template"]);
            }
            if !options.streaming {
                push(&["--non-streaming"]);
            }
            if options.trust_remote_code {
                push(&["--trust-remote-code"]);
            }
        }
        ClientKind::NvSa => {
            push(&["--model", model_path, "--dataset-name", "random"]);
            push(&["--num-prompts", &n, "--max-concurrency", &c]);
            push(&["--random-input-len", &il, "--random-output-len", &ol]);
            push(&["--random-range-ratio", &r, "--save-result"]);
            push(&["--percentile-metrics", "ttft,tpot,itl,e2el", "--ignore-eos"]);
            if !options.backend.is_empty() {
                push(&["--backend", &options.backend]);
            }
            if options.trust_remote_code {
                push(&["--trust-remote-code"]);
            }
            if options.use_chat_template {
                push(&["--use-chat-template"]);
            }
        }
    }
    a
}
