//! [`build_plan`]: config + trial + environment → [`Plan`], with upstream's exact argv
//! (upstream-perf-sanity.md §4) and file names.

use std::path::{Path, PathBuf};

use super::dataset::{self, DatasetContext, DatasetGenSpec, DatasetPlan, join_paths};
use super::engine_config::{engine_config, engine_config_text};
use super::router_config::RouterConfigTemplate;
use super::scale::Scale;
use super::topology::Topology;
use super::{ClientSpec, GeneratedFile, Plan, ProcessSpec, Role, RouterSpec, Timeouts};
use crate::config::env_string::{EnvList, merge, set};
use crate::config::{BenchmarkMode, PerfConfig, WorkerSection};
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
    /// `TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT`.
    pub disagg_ready_timeout_env: Option<String>,
    /// `TRTLLM_TEST_SERVER_READY_TIMEOUT`.
    pub ready_timeout_env: Option<String>,
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
    /// An environment knob has a bad value.
    #[error("{0}")]
    BadEnv(String),
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

fn ready_timeout(inputs: &PlanInputs<'_>) -> Result<(u64, String), PlanError> {
    for (name, value) in [
        (
            "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT",
            &inputs.disagg_ready_timeout_env,
        ),
        (
            "TRTLLM_TEST_SERVER_READY_TIMEOUT",
            &inputs.ready_timeout_env,
        ),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            return match v.parse::<u64>() {
                Ok(s) if s > 0 => Ok((s, name.to_string())),
                _ => Err(PlanError::BadEnv(format!(
                    "{name}={v:?} is not a positive number of seconds"
                ))),
            };
        }
    }
    Ok((READY_TIMEOUT_DEFAULT_S, "default".to_string()))
}

/// Builds the plan of `request` for `config`.
pub fn build_plan(
    config: &PerfConfig,
    request: &TrialRequest,
    inputs: &PlanInputs<'_>,
) -> Result<Plan, PlanError> {
    let unsupported = |message: String| PlanError::Unsupported {
        config: config.path.clone(),
        message,
    };
    let (mode, mode_source) = match request.mode_override {
        Some(m) => (m, format!("test-list id label `{}`", m.as_str())),
        None => (
            config.benchmark.mode,
            if config.benchmark.mode == BenchmarkMode::E2e {
                "benchmark.mode (e2e unless set)".to_string()
            } else {
                "benchmark.mode".to_string()
            },
        ),
    };
    let no_context = mode == BenchmarkMode::GenOnlyNoContext;
    let topology = Topology::of(config, no_context);
    let scale = inputs.scale;
    let mut warnings = config.warnings.clone();

    for (name, worker) in [("ctx", &config.ctx_worker), ("gen", &config.gen_worker)] {
        if let Some(n) = worker.options.get("num_serve_frontends")
            && n.as_i64().is_some_and(|v| v > 1)
        {
            return Err(unsupported(format!(
                "worker_config.{name}.num_serve_frontends > 1 needs harness-reserved ports, \
                     which perfsanity does not implement"
            )));
        }
    }

    // Client kind and the reason.
    let (client_kind, kind_reason) = match config.benchmark.use_nv_sa_benchmark {
        Some(true) => (
            ClientKind::NvSa,
            "benchmark.use_nv_sa_benchmark: true".to_string(),
        ),
        Some(false) => (
            ClientKind::Standard,
            "benchmark.use_nv_sa_benchmark: false".to_string(),
        ),
        None => (
            ClientKind::NvSa,
            "benchmark.use_nv_sa_benchmark is not set; perfsanity defaults it to true (the seed \
             design's backward-compatible default)"
                .to_string(),
        ),
    };
    let spec_decoding = config.gen_worker.spec_decoding_type.is_some()
        || (!no_context && config.ctx_worker.spec_decoding_type.is_some());
    if client_kind == ClientKind::NvSa && spec_decoding {
        warnings.push(
            "speculative decoding with the NV SA client: that client does not report the \
             acceptance length ('Mean Avg Decoded Tokens per Iter'), so `al` is neither required \
             nor recorded for this trial (upstream's check would fail it)"
                .to_string(),
        );
    }
    if client_kind == ClientKind::NvSa && mode.is_gen_only() {
        warnings.push(format!(
            "the NV SA client runs a {} benchmark; upstream's SLURM submit tool rejects SA for \
             gen_only — consider benchmark.use_nv_sa_benchmark: false",
            mode.as_str()
        ));
    }

    // Client runs.
    let concurrencies = scale.concurrencies(&config.benchmark.concurrency_list);
    let (concurrencies, iterations) = if mode.is_gen_only() {
        (vec![concurrencies[0]], 1)
    } else {
        (concurrencies, scale.rounds(config.benchmark.multi_round))
    };
    let isl = scale.input_len(config.benchmark.input_length.value);
    let osl = scale.output_len(config.benchmark.output_length.value);
    let ratio_choice =
        super::range_ratio::choose(config, client_kind, isl, osl).map_err(unsupported)?;
    let ratio = ratio_choice.ratio;
    let max_prompts = concurrencies
        .iter()
        .map(|c| c * iterations)
        .max()
        .unwrap_or(1);

    let exists = inputs.exists;
    let (dataset, dataset_warning) = dataset::decide(
        config,
        &DatasetContext {
            client: client_kind,
            toolchain: inputs.toolchain,
            models_root: inputs.models_root.as_deref(),
            cwd: &inputs.cwd,
            sim_dataset_root: &inputs.sim_dataset_root.join(scale.as_str()),
            fallback_env: inputs.dataset_fallback_env,
            exists,
            gen_spec: DatasetGenSpec {
                num_prompts: max_prompts,
                input_len: isl,
                output_len: osl,
                // Generated stand-ins have fixed lengths, like upstream's `ratio-1` files.
                range_ratio: 1.0,
                seed: 0,
            },
        },
    )
    .map_err(|m| PlanError::DatasetMissing {
        config: config.path.clone(),
        key: m.key,
        value: m.value,
        tried: join_paths(&m.tried),
    })?;
    warnings.extend(dataset_warning);
    let (label, dataset_reason) = match &dataset {
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
    if matches!(dataset, DatasetPlan::Random { .. }) && ratio >= 1.0 {
        return Err(unsupported(format!(
            "benchmark.benchmark_ratio {ratio} must be < 1 for the standard client's random \
             dataset"
        )));
    }

    // Paths.
    let s = 0u32;
    let output_dir = inputs.output_root.join(&request.trial);
    let job = inputs.job_id.clone().unwrap_or_else(|| "local".to_string());
    let rendezvous_dir = output_dir.join(format!("hostnames-{job}-{s}"));
    let server_name = format!("{}-{}", mode.as_str(), request.stem);
    let model_path = resolve_model_path(config, inputs, &mut warnings)?;

    // Files.
    let mut files = Vec::new();
    let auth_key = match &config.internal_request_auth_key {
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
    };
    let mut notes = Vec::new();
    let mut engine_file = |kind: &str, worker: &WorkerSection, files: &mut Vec<GeneratedFile>| {
        let path = output_dir.join(format!("extra-llm-api-config.{kind}.{server_name}.yml"));
        let map = engine_config(
            worker,
            &auth_key,
            inputs.models_root.as_deref(),
            inputs.repo_root.as_deref(),
            &mut notes,
        );
        files.push(GeneratedFile {
            path: path.clone(),
            purpose: format!("engine config of every {} worker", kind.to_uppercase()),
            content: engine_config_text(&map),
            keep_existing: false,
        });
        path
    };
    let ctx_config =
        (topology.ctx.count > 0).then(|| engine_file("ctx", &config.ctx_worker, &mut files));
    let gen_config = engine_file("gen", &config.gen_worker, &mut files);
    warnings.append(&mut notes);
    let sim_config_path = match (&config.sim, inputs.toolchain) {
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
    };

    // Workers: GEN_i first, then CTX_i (upstream launch order and GPU packing).
    let mut workers = Vec::new();
    let numactl = config.slurm.numa_bind && inputs.toolchain == Toolchain::Trtllm;
    if config.slurm.numa_bind && inputs.toolchain == Toolchain::Sim {
        warnings.push(
            "slurm.numa_bind: the numactl \"-m 0,1\" prefix applies to the trtllm toolchain only"
                .to_string(),
        );
    }
    let first_concurrency = concurrencies[0];
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
    if no_context {
        set(&mut gen_env, "TRTLLM_DISAGG_BENCHMARK_GEN_ONLY", "1");
    }
    let worker_spec = |role: Role,
                       worker: &WorkerSection,
                       engine_cfg: &Path,
                       env: &EnvList,
                       gpus: u64,
                       first_gpu: u64| {
        let mut argv = Vec::new();
        if numactl {
            argv.push("numactl".to_string());
            argv.push("-m 0,1".to_string());
        }
        argv.extend(worker_prefix(
            inputs.toolchain,
            role,
            sim_config_path.as_deref(),
        ));
        let address_file = rendezvous_dir.join(format!("{role}.txt"));
        argv.extend([
            model_path.clone(),
            "--backend".to_string(),
            worker.backend.clone(),
            "--config".to_string(),
            engine_cfg.display().to_string(),
            "--host".to_string(),
            inputs.hostname.clone(),
            "--port".to_string(),
            "0".to_string(),
            "--report_addr".to_string(),
            address_file.display().to_string(),
        ]);
        ProcessSpec {
            role,
            argv,
            env: super::launch_env::worker_env(env),
            log_file: output_dir.join(format!("trtllm-serve.{role}.{s}.log")),
            address_file,
            gpus,
            first_gpu,
        }
    };
    let gen_gpus = topology.gen_workers.gpus_per_worker;
    let ctx_gpus = topology.ctx.gpus_per_worker;
    for i in 0..topology.gen_workers.count {
        workers.push(worker_spec(
            Role::Gen(i as u32),
            &config.gen_worker,
            &gen_config,
            &gen_env,
            gen_gpus,
            i * gen_gpus,
        ));
    }
    if let Some(ctx_config) = &ctx_config {
        for i in 0..topology.ctx.count {
            workers.push(worker_spec(
                Role::Ctx(i as u32),
                &config.ctx_worker,
                ctx_config,
                &config.environment.ctx_env,
                ctx_gpus,
                topology.gen_workers.gpus() + i * ctx_gpus,
            ));
        }
    }

    // Router.
    let wait_s = config.slurm.timeout_s;
    let (ready_env_s, ready_source) = ready_timeout(inputs)?;
    let router_config_path = output_dir.join(format!("server_config.{s}.yaml"));
    let router_address = rendezvous_dir.join(format!("DISAGG_SERVER.{s}.addr"));
    let mut router_argv = router_prefix(inputs.toolchain, sim_config_path.as_deref());
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
    let router = RouterSpec {
        process: ProcessSpec {
            role: Role::DisaggServer,
            argv: router_argv,
            env: super::launch_env::role_env(&router_env),
            log_file: output_dir.join(format!("trtllm-serve.DISAGG_SERVER.{s}.log")),
            address_file: router_address,
            gpus: 0,
            first_gpu: 0,
        },
        config_path: router_config_path,
        config: RouterConfigTemplate {
            hostname: inputs.hostname.clone(),
            auth_key: auth_key.clone(),
            num_ctx: topology.ctx.count,
            num_gen: topology.gen_workers.count,
            ctx_router: router_node(&config.ctx_router_config),
            gen_router: router_node(&config.gen_router_config),
            extra: config.server_config_extra.clone().unwrap_or_default(),
        },
    };

    // Clients.
    let mut client_env = merge(&config.environment.client_env, &config.benchmark.env_var);
    if !client_env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
        client_env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
    }
    let warmup = mode == BenchmarkMode::E2e && client_kind == ClientKind::Standard;
    let clients = concurrencies
        .iter()
        .enumerate()
        .map(|(c, &concurrency)| {
            let num_prompts = concurrency * iterations;
            let name = format!("con{concurrency}_iter{iterations}_isl{isl}_osl{osl}");
            let mut argv = client_prefix(inputs.toolchain, client_kind);
            argv.extend(client_args(
                client_kind,
                &model_path,
                num_prompts,
                concurrency,
                isl,
                osl,
                ratio,
                warmup,
                config.benchmark.streaming,
                &dataset,
            ));
            ClientSpec {
                index: c as u32,
                test_case_name: format!("{server_name}-{name}"),
                name,
                concurrency,
                iterations,
                num_prompts,
                isl,
                osl,
                warmup,
                argv,
                env: super::launch_env::client_env(&client_env, &output_dir, s, c),
                log_file: output_dir.join(format!("trtllm-benchmark.{s}.{c}.log")),
            }
        })
        .collect();

    let gen_logs = (0..topology.gen_workers.count)
        .map(|i| output_dir.join(format!("gen_server_{i}.log")))
        .collect();
    if scale == Scale::Smoke {
        warnings.push(format!(
            "PERF_SCALE=smoke: load is capped — {}; numbers are not comparable with full-scale \
             runs",
            scale.describe()
        ));
    }

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
        benchmark_mode_label: label.to_string(),
        benchmark_mode_reason: format!("{kind_reason}; {dataset_reason}"),
        range_ratio: ratio,
        range_ratio_reason: ratio_choice.reason,
        launch_env: super::launch_env::LaunchEnv::upstream(),
        dataset,
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

fn resolve_model_path(
    config: &PerfConfig,
    inputs: &PlanInputs<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, PlanError> {
    let found = super::model_path::resolve(
        config,
        inputs.models_root.as_deref(),
        inputs.toolchain,
        inputs.exists,
    )
    .map_err(|m| PlanError::ModelMissing {
        config: config.path.clone(),
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
    streaming: bool,
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
            push(&["--backend", "openai"]);
            if !streaming {
                push(&["--non-streaming"]);
            }
            push(&["--trust-remote-code"]);
        }
        ClientKind::NvSa => {
            push(&["--model", model_path, "--dataset-name", "random"]);
            push(&["--num-prompts", &n, "--max-concurrency", &c]);
            push(&["--random-input-len", &il, "--random-output-len", &ol]);
            push(&["--random-range-ratio", &r, "--save-result"]);
            push(&["--percentile-metrics", "ttft,tpot,itl,e2el", "--ignore-eos"]);
            push(&["--backend", "openai", "--trust-remote-code"]);
        }
    }
    a
}
