//! [`build_aggr_plan`]: the plan of an aggregated-runtime trial (upstream-perf-sanity.md §1.3,
//! §4): for each selected server, in YAML order, one `trtllm-serve <model> --backend <b> --config
//! <tod>/extra-llm-api-config.aggr.<server>.yml --host localhost --port 0 --report_addr
//! <tod>/trtllm-serve.<s>.addr`, then that server's clients one after another.
//!
//! A ctx_only trial is the same graph with one server derived from a disaggregated config's
//! context worker ([`crate::config::ctx_only_server`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::build::{
    ClientCommand, ClientOptions, PlanError, PlanInputs, client_env, client_kind_warnings,
    decide_dataset, engine_config_file, ratio_message, ready_timeout_from, resolve_model_path,
    serve_args, sim_config_file, smoke_warning,
};
use super::{ClientSpec, DatasetGenSpec, DatasetPlan, GeneratedFile, ProcessSpec, Role, Timeouts};
use crate::catalog::trial_id::AggrKind;
use crate::config::{
    AggrClient, AggrServer, AggregatedConfig, BenchmarkMode, DatasetFallback, PerfConfig,
    ctx_only_server,
};
use crate::plan::scale::Scale;
use crate::plan::settings::{AGG_READY_TIMEOUT_KNOB, READY_TIMEOUT_KNOB};
use crate::plan::toolchain::{ClientKind, Toolchain, worker_prefix};
use crate::util::yaml::Node;

/// Upstream's whole-run bound of aggregated trials (`DEFAULT_TIMEOUT`): address-file wait.
pub const AGGR_WAIT_S: u64 = 10800;
/// `s_runtime` of an aggregated record whose server uses every GPU of its node(s).
pub const AGGR_RUNTIME: &str = "aggr_server";
/// `s_runtime` when the server's `gpus` differ from `gpus_per_node` (upstream's rule, §6.2).
pub const MULTI_NODE_AGGR_RUNTIME: &str = "multi_node_aggr_server";

/// Which aggregated trial to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggrRequest {
    /// Trial name.
    pub trial: String,
    /// The id as a test list wrote it (else the trial name).
    pub test_list_id: String,
    /// Config stem.
    pub stem: String,
    /// `_upload` trial.
    pub upload: bool,
    /// Servers (aggregated config) or ctx_only (disaggregated config).
    pub kind: AggrKind,
    /// Whole-trial limit from the test list, seconds.
    pub time_limit_s: Option<u64>,
}

/// The config an aggregated trial is built from.
#[derive(Debug, Clone, Copy)]
pub enum AggrSource<'a> {
    /// An aggregated config (`server_configs[]`).
    Aggregated(&'a AggregatedConfig),
    /// A disaggregated config run as ctx_only.
    CtxOnly(&'a PerfConfig),
}

/// A complete aggregated trial.
#[derive(Debug, Clone, Serialize)]
pub struct AggrPlan {
    /// Trial name.
    pub trial: String,
    /// The id as the test list wrote it (upstream's `s_test_list`).
    pub test_list_id: String,
    /// Config stem.
    pub stem: String,
    /// Config file.
    pub config_path: PathBuf,
    /// Upload the records when a database is configured.
    pub upload: bool,
    /// What runs.
    pub kind: AggrKind,
    /// Toolchain.
    pub toolchain: Toolchain,
    /// Load scale.
    pub scale: Scale,
    /// `<output_root>/<trial>`.
    pub output_dir: PathBuf,
    /// Files written before anything starts.
    pub files: Vec<GeneratedFile>,
    /// Servers in run order.
    pub servers: Vec<AggrServerPlan>,
    /// Time limits (`wait_s` bounds the address file, `ready_s` the `/health` wait).
    pub timeouts: Timeouts,
    /// Things a perf engineer should read before spending GPU hours.
    pub warnings: Vec<String>,
}

/// One server and its clients.
#[derive(Debug, Clone, Serialize)]
pub struct AggrServerPlan {
    /// `s`: index among the selected servers.
    pub index: u32,
    /// Server name (`s_server_name`, file names).
    pub name: String,
    /// Model path given to the server and its clients.
    pub model_path: String,
    /// The `trtllm-serve` process.
    pub process: ProcessSpec,
    /// `extra-llm-api-config.aggr.<server>.yml`.
    pub engine_config: PathBuf,
    /// GPUs (`gpus`, else tp × pp × cp).
    pub gpus: u64,
    /// `hardware.gpus_per_node` (else `gpus`).
    pub gpus_per_node: u64,
    /// Nodes: ⌈gpus / gpus_per_node⌉.
    pub nodes: u64,
    /// `s_runtime` of its records.
    pub runtime: &'static str,
    /// Speculative decoding configured (clients report `al`).
    pub spec_decoding: bool,
    /// `startup_metrics.<s>.json`.
    pub startup_metrics: PathBuf,
    /// Clients, run one after another.
    pub clients: Vec<AggrClientPlan>,
    /// The server entry as parsed (record fields).
    #[serde(skip)]
    pub config: AggrServer,
}

/// One client run.
#[derive(Debug, Clone, Serialize)]
pub struct AggrClientPlan {
    /// The run (name, argv, env, log `trtllm-benchmark.<s>.<c>.log`).
    pub spec: ClientSpec,
    /// Upstream's `cmd_idx`: the client's position across all servers of the trial.
    pub cmd_idx: u32,
    /// Which client runs.
    pub kind: ClientKind,
    /// Random-length ratio used (`d_random_range_ratio`).
    pub random_range_ratio: f64,
    /// The dataset decision.
    pub dataset: DatasetPlan,
    /// "NV SA (random)", "Standard (dataset)" or "Standard (random)".
    pub benchmark_mode_label: String,
    /// Why that client and dataset.
    pub benchmark_mode_reason: String,
    /// The client entry as parsed (record fields).
    #[serde(skip)]
    pub config: AggrClient,
}

impl AggrPlan {
    /// Every client of the trial, in run order.
    pub fn clients(&self) -> impl Iterator<Item = (&AggrServerPlan, &AggrClientPlan)> {
        self.servers
            .iter()
            .flat_map(|s| s.clients.iter().map(move |c| (s, c)))
    }

    /// Total GPUs the largest server needs (servers run one at a time).
    pub fn gpus_used(&self) -> u64 {
        self.servers.iter().map(|s| s.gpus).max().unwrap_or(0)
    }

    /// Nodes the largest server needs.
    pub fn nodes_used(&self) -> u64 {
        self.servers.iter().map(|s| s.nodes).max().unwrap_or(0)
    }
}

/// GPUs the largest server of an aggregated-runtime trial needs (servers run one at a time);
/// `None` when the config does not load (the trial then fails with the config error).
pub fn aggr_gpus_needed(path: &Path, kind: &AggrKind) -> Option<u64> {
    match kind {
        AggrKind::Servers(selection) => {
            let config = crate::config::load_aggregated_config(path).ok()?;
            let servers = select_servers(&config, selection.as_deref()).ok()?;
            servers.iter().map(|s| s.gpus).max()
        }
        AggrKind::CtxOnly => {
            let config = crate::config::load_perf_config(path).ok()?;
            Some(config.ctx_worker.gpus_per_worker())
        }
    }
}

/// The servers a trial selects, in YAML order. Unknown names are an error naming the servers
/// the file has.
pub fn select_servers<'c>(
    config: &'c AggregatedConfig,
    selection: Option<&[String]>,
) -> Result<Vec<&'c AggrServer>, PlanError> {
    let Some(names) = selection else {
        return Ok(config.servers.iter().collect());
    };
    let known = config.server_names();
    for name in names {
        if !known.contains(&name.as_str()) {
            let hint = crate::config::reader::closest(name, &known)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            return Err(PlanError::Unsupported {
                config: config.path.clone(),
                message: format!(
                    "no server named {name:?} in server_configs{hint}; servers: {}",
                    known.join(", ")
                ),
            });
        }
    }
    Ok(config
        .servers
        .iter()
        .filter(|s| names.contains(&s.name))
        .collect())
}

/// How a client's kind, ratio and dataset fallback are decided for one source.
struct ClientRules<'a> {
    source: AggrSource<'a>,
    server_index: usize,
}

impl ClientRules<'_> {
    /// The client kind and why: a client's own `use_nv_sa_benchmark` wins; else the perfsanity
    /// `benchmark` section (default true); else upstream's default (false). ctx_only follows the
    /// disaggregated rule (`benchmark.use_nv_sa_benchmark`, default true).
    fn kind(&self, client: &AggrClient, j: usize) -> (ClientKind, String) {
        let key = format!(
            "server_configs[{}].client_configs[{j}].use_nv_sa_benchmark",
            self.server_index
        );
        let of = |b: bool| {
            if b {
                ClientKind::NvSa
            } else {
                ClientKind::Standard
            }
        };
        match self.source {
            AggrSource::CtxOnly(c) => super::build::choose_client_kind(
                c.benchmark.use_nv_sa_benchmark,
                "benchmark.use_nv_sa_benchmark",
            ),
            AggrSource::Aggregated(config) => match (client.use_nv_sa_benchmark, &config.benchmark)
            {
                (Some(b), _) => (of(b), format!("{key}: {b}")),
                (None, Some(bench)) if bench.use_nv_sa_written => (
                    of(bench.use_nv_sa_benchmark),
                    format!(
                        "benchmark.use_nv_sa_benchmark: {}",
                        bench.use_nv_sa_benchmark
                    ),
                ),
                (None, Some(bench)) => (
                    of(bench.use_nv_sa_benchmark),
                    "benchmark.use_nv_sa_benchmark is not set; perfsanity defaults it to true for \
                     an aggregated config with a benchmark section (the seed design's default)"
                        .to_string(),
                ),
                (None, None) => (
                    ClientKind::Standard,
                    format!(
                        "{key} is not set and the file has no benchmark section (upstream's \
                         layout): upstream's default, false"
                    ),
                ),
            },
        }
    }

    /// `random_range_ratio`, else `benchmark.benchmark_ratio` (0.8 unless set), else 0.0.
    fn ratio(&self, client: &AggrClient) -> f64 {
        match (client.random_range_ratio, self.source) {
            (Some(r), _) => r,
            (None, AggrSource::Aggregated(c)) => {
                c.benchmark.as_ref().map_or(0.0, |b| b.benchmark_ratio)
            }
            (None, AggrSource::CtxOnly(c)) => c.benchmark.benchmark_ratio,
        }
    }

    fn dataset_fallback(&self) -> Option<DatasetFallback> {
        match self.source {
            AggrSource::Aggregated(c) => c.benchmark.as_ref().and_then(|b| b.dataset_fallback),
            AggrSource::CtxOnly(c) => c.benchmark.dataset_fallback,
        }
    }
}

/// The ratio a ctx_only client runs with: the one ratio that keeps its single output token
/// (standard client: lengths in [⌊L(1−r)⌋, ⌊L(1+r)⌋], so r = 0; NV SA: [⌊L·r⌋, L], so r = 1).
/// Any other ratio draws zero-token requests for `osl = 1`, which servers reject. `None` when
/// the configured ratio already is that one.
pub fn ctx_only_ratio(kind: ClientKind, configured: f64) -> Option<f64> {
    let fixed = match kind {
        ClientKind::Standard => 0.0,
        ClientKind::NvSa => 1.0,
    };
    (configured != fixed).then_some(fixed)
}

/// Builds the plan of `request`.
pub fn build_aggr_plan(
    source: AggrSource<'_>,
    request: &AggrRequest,
    inputs: &PlanInputs<'_>,
) -> Result<AggrPlan, PlanError> {
    let Selected {
        config_path,
        sim,
        mut warnings,
        servers,
        model_dir_name,
    } = match (source, &request.kind) {
        (AggrSource::Aggregated(c), AggrKind::Servers(selection)) => {
            let selected = select_servers(c, selection.as_deref())?;
            let with_index = selected
                .into_iter()
                .map(|s| {
                    let i = c.servers.iter().position(|o| o.name == s.name).unwrap_or(0);
                    (i, s.clone())
                })
                .collect();
            Selected {
                config_path: c.path.clone(),
                sim: c.sim.as_ref(),
                warnings: c.warnings.clone(),
                servers: with_index,
                model_dir_name: c.model_dir_name.as_deref(),
            }
        }
        (AggrSource::CtxOnly(c), AggrKind::CtxOnly) => {
            if c.hardware.num_ctx_servers == 0 {
                return Err(PlanError::Unsupported {
                    config: c.path.clone(),
                    message: "ctx_only runs the context worker, but hardware.num_ctx_servers is \
                              0 (worker_config.ctx is absent)"
                        .to_string(),
                });
            }
            Selected {
                config_path: c.path.clone(),
                sim: c.sim.as_ref(),
                warnings: c.warnings.clone(),
                servers: vec![(0, ctx_only_server(c, &request.stem))],
                model_dir_name: c.metadata.model_dir_name.as_deref(),
            }
        }
        (_, kind) => {
            return Err(PlanError::Unsupported {
                config: match source {
                    AggrSource::Aggregated(c) => c.path.clone(),
                    AggrSource::CtxOnly(c) => c.path.clone(),
                },
                message: format!("trial kind {kind:?} does not match the config's layout"),
            });
        }
    };
    let output_dir = inputs.output_root.join(&request.trial);
    let mut files = Vec::new();
    let sim_config = sim_config_file(sim, inputs, &output_dir, &mut files);
    let (ready_env_s, ready_source) = ready_timeout_from(&[
        (AGG_READY_TIMEOUT_KNOB, inputs.ready_timeouts.agg),
        (READY_TIMEOUT_KNOB, inputs.ready_timeouts.any),
    ]);
    let mut planned = Vec::new();
    let mut cmd_idx = 0u32;
    for (s, (yaml_index, server)) in servers.into_iter().enumerate() {
        let cx = ServerContext {
            inputs,
            config_path: &config_path,
            output_dir: &output_dir,
            sim_config: sim_config.as_deref(),
            model_dir_name,
            rules: ClientRules {
                source,
                server_index: yaml_index,
            },
            ctx_only: matches!(request.kind, AggrKind::CtxOnly),
        };
        let plan = plan_server(
            &cx,
            s as u32,
            server,
            &mut cmd_idx,
            &mut files,
            &mut warnings,
        )
        .map_err(|e| match e {
            ServerError::Plan(e) => e,
            ServerError::Dataset(m) => m.with_config(&config_path),
            ServerError::Ratio(message) => PlanError::Unsupported {
                config: config_path.clone(),
                message,
            },
        })?;
        planned.push(plan);
    }
    warnings.extend(smoke_warning(inputs.scale));
    Ok(AggrPlan {
        trial: request.trial.clone(),
        test_list_id: request.test_list_id.clone(),
        stem: request.stem.clone(),
        config_path,
        upload: request.upload,
        kind: request.kind.clone(),
        toolchain: inputs.toolchain,
        scale: inputs.scale,
        output_dir,
        files,
        servers: planned,
        timeouts: Timeouts {
            wait_s: AGGR_WAIT_S,
            ready_s: AGGR_WAIT_S.min(ready_env_s),
            ready_source,
            trial_s: request.time_limit_s,
            trial_source: "test list TIMEOUT".to_string(),
        },
        warnings,
    })
}

/// The servers a trial runs (with their YAML index) and what they share from the config.
struct Selected<'a> {
    config_path: PathBuf,
    sim: Option<&'a Node>,
    warnings: Vec<String>,
    servers: Vec<(usize, AggrServer)>,
    model_dir_name: Option<&'a str>,
}

/// What every server of a trial shares.
struct ServerContext<'a> {
    inputs: &'a PlanInputs<'a>,
    config_path: &'a Path,
    output_dir: &'a Path,
    sim_config: Option<&'a Path>,
    model_dir_name: Option<&'a str>,
    rules: ClientRules<'a>,
    ctx_only: bool,
}

enum ServerError {
    Plan(PlanError),
    Dataset(super::build::DatasetMissing),
    Ratio(String),
}

/// `s_runtime`: `multi_node_aggr_server` whenever `gpus != gpus_per_node` (upstream's rule, also
/// for single-node servers using part of a node).
pub fn aggr_runtime(gpus: u64, gpus_per_node: u64) -> &'static str {
    if gpus != gpus_per_node {
        MULTI_NODE_AGGR_RUNTIME
    } else {
        AGGR_RUNTIME
    }
}

fn plan_server(
    cx: &ServerContext<'_>,
    s: u32,
    server: AggrServer,
    cmd_idx: &mut u32,
    files: &mut Vec<GeneratedFile>,
    warnings: &mut Vec<String>,
) -> Result<AggrServerPlan, ServerError> {
    let inputs = cx.inputs;
    if let Some(n) = server.engine.options.get("num_serve_frontends")
        && n.as_i64().is_some_and(|v| v > 1)
    {
        warnings.push(format!(
            "server {}: num_serve_frontends > 1 only changes how disaggregated workers reserve \
             ports; the aggregated server is started as upstream starts it",
            server.name
        ));
    }
    let model_path = resolve_model_path(
        cx.config_path,
        &server.model_name,
        cx.model_dir_name,
        inputs,
        warnings,
    )
    .map_err(ServerError::Plan)?;
    let engine_config = engine_config_file(
        "aggr",
        &server.engine,
        None,
        &server.name,
        cx.output_dir,
        inputs,
        files,
        warnings,
    );
    let role = Role::Aggr(s);
    let address_file = cx.output_dir.join(format!("trtllm-serve.{s}.addr"));
    let mut argv = worker_prefix(inputs.toolchain, role, cx.sim_config);
    argv.extend(serve_args(
        &model_path,
        &server.engine.backend,
        &engine_config,
        "localhost",
        &address_file,
    ));
    let gpus = server.gpus;
    let gpus_per_node = server.gpus_per_node;
    let nodes = gpus.div_ceil(gpus_per_node.max(1)).max(1);
    let spec_decoding = server.spec_decoding();
    let mut clients = Vec::new();
    for (j, client) in server.clients.iter().enumerate() {
        let (kind, kind_reason) = cx.rules.kind(client, j);
        warnings.extend(client_kind_warnings(
            kind,
            spec_decoding,
            BenchmarkMode::E2e,
        ));
        let mut ratio = cx.rules.ratio(client);
        if cx.ctx_only
            && let Some(fixed) = ctx_only_ratio(kind, ratio)
        {
            warnings.push(format!(
                "ctx_only: random range ratio {} instead of benchmark.benchmark_ratio {ratio}: \
                 with one output token any other ratio makes the client draw zero-token \
                 requests, which the server rejects (input lengths are then fixed too)",
                crate::util::yaml::python_float(fixed)
            ));
            ratio = fixed;
        }
        let scale = inputs.scale;
        let concurrency = scale.concurrencies(&[client.concurrency])[0];
        let iterations = scale.rounds(client.iterations);
        let (isl, osl) = (scale.input_len(client.isl), scale.output_len(client.osl));
        if kind == ClientKind::NvSa {
            // The SA client draws lengths in [⌊L·r⌋, L]; a zero lower bound sends empty prompts
            // or max_tokens 0, which TensorRT-LLM rejects (the disaggregated rule too).
            for (what, len) in [("input", isl), ("output", osl)] {
                if ((len as f64) * ratio).floor() < 1.0 {
                    return Err(ServerError::Ratio(format!(
                        "server {} client {}: random range ratio {ratio} with {what} length \
                         {len} lets the NV SA client draw {what} lengths down to 0; set \
                         random_range_ratio (or benchmark.benchmark_ratio) ≥ {}",
                        server.name,
                        client.name,
                        1.0 / len.max(1) as f64
                    )));
                }
            }
        }
        let num_prompts = concurrency * iterations;
        let dataset = decide_dataset(
            client.dataset_file.as_ref(),
            cx.rules.dataset_fallback(),
            &format!(
                "server_configs[{}].client_configs[{j}].dataset_file",
                cx.rules.server_index
            ),
            kind,
            DatasetGenSpec {
                num_prompts,
                input_len: isl,
                output_len: osl,
                range_ratio: 1.0,
                seed: 0,
            },
            inputs,
        )
        .map_err(ServerError::Dataset)?;
        warnings.extend(dataset.warning.clone());
        if matches!(dataset.plan, DatasetPlan::Random { .. }) && ratio >= 1.0 {
            return Err(ServerError::Ratio(format!(
                "server {}: {}",
                server.name,
                ratio_message(ratio)
            )));
        }
        // Warmup follows the mode (ctx_only warms up, plain aggregated servers do not), and
        // only the standard client has one.
        let warmup = cx.ctx_only && kind == ClientKind::Standard;
        let command = ClientCommand {
            toolchain: inputs.toolchain,
            kind,
            model_path: &model_path,
            warmup,
            options: ClientOptions {
                backend: client.backend.clone(),
                use_chat_template: client.use_chat_template,
                streaming: client.streaming,
                trust_remote_code: client.trust_remote_code,
            },
            dataset: &dataset.plan,
        };
        let argv = command.argv(num_prompts, concurrency, isl, osl, ratio);
        // A YAML client keeps its name (written or derived from the YAML); ctx_only clients are
        // named from the load actually run, like disaggregated clients.
        let name = if client.line > 0 {
            client.name.clone()
        } else {
            format!("con{concurrency}_iter{iterations}_isl{isl}_osl{osl}")
        };
        clients.push(AggrClientPlan {
            spec: ClientSpec {
                index: j as u32,
                test_case_name: format!("{}-{name}", server.name),
                name,
                concurrency,
                iterations,
                num_prompts,
                isl,
                osl,
                warmup,
                argv,
                env: client_env(&client.env, &Vec::new()),
                log_file: cx.output_dir.join(format!("trtllm-benchmark.{s}.{j}.log")),
            },
            cmd_idx: *cmd_idx,
            kind,
            random_range_ratio: ratio,
            benchmark_mode_label: dataset.label.to_string(),
            benchmark_mode_reason: format!("{kind_reason}; {}", dataset.reason),
            dataset: dataset.plan,
            config: client.clone(),
        });
        *cmd_idx += 1;
    }
    Ok(AggrServerPlan {
        index: s,
        name: server.name.clone(),
        model_path,
        process: ProcessSpec {
            role,
            argv,
            env: server.env.clone(),
            log_file: cx.output_dir.join(format!("trtllm-serve.{s}.log")),
            address_file,
            gpus,
            first_gpu: 0,
        },
        engine_config,
        gpus,
        gpus_per_node,
        nodes,
        runtime: aggr_runtime(gpus, gpus_per_node),
        spec_decoding,
        startup_metrics: cx.output_dir.join(format!("startup_metrics.{s}.json")),
        clients,
        config: server,
    })
}
