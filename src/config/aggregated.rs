//! Upstream's *aggregated* perf-sanity layout (`metadata`, `hardware`, `server_configs[]` with
//! `client_configs[]`), typed: every server entry becomes an [`AggrServer`] whose engine block is
//! the entry itself (harness-only keys are dropped when the engine config is written, everything
//! else passes through in order), and every client entry an [`AggrClient`].
//!
//! perfsanity adds two optional top-level sections the seed design reads for aggregated configs:
//! `benchmark` (`use_nv_sa_benchmark`, default true; `benchmark_ratio`, default 0.8;
//! `dataset_fallback`) and `environment` (`server_env_var`, `client_env_var`), plus `sim`. A file
//! without a `benchmark` section is upstream's layout and runs exactly as upstream runs it
//! (each client's own `use_nv_sa_benchmark`, default false; `random_range_ratio`, default 0.0).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::util::yaml::{Mapping, Node, Value};

use super::env_string::{EnvList, merge, parse_env_string};
use super::error::{ConfigError, Problems};
use super::model::{DatasetFallback, Sourced, WorkerSection};
use super::parse::{dataset_fallback, positive};
use super::reader::{Section, describe};

const TOP_KEYS: &[&str] = &[
    "metadata",
    "hardware",
    "server_configs",
    "benchmark",
    "environment",
    "sim",
];
const METADATA_KEYS: &[&str] = &["model_name", "supported_gpus", "model_dir_name"];
const HARDWARE_KEYS: &[&str] = &["gpus_per_node"];
const BENCHMARK_KEYS: &[&str] = &["use_nv_sa_benchmark", "benchmark_ratio", "dataset_fallback"];
const ENVIRONMENT_KEYS: &[&str] = &["server_env_var", "client_env_var"];
const CLIENT_KEYS: &[&str] = &[
    "name",
    "concurrency",
    "iterations",
    "isl",
    "osl",
    "random_range_ratio",
    "backend",
    "use_chat_template",
    "streaming",
    "trust_remote_code",
    "dataset_file",
    "use_nv_sa_benchmark",
    "benchmark_client",
    "client_env_var",
    "accuracy_config",
    "only_run_accuracy",
    "warmup",
];

/// The seed design's default for `benchmark.use_nv_sa_benchmark` in aggregated configs.
pub const AGGR_DEFAULT_USE_NV_SA: bool = true;
/// The seed design's default for `benchmark.benchmark_ratio` in aggregated configs.
pub const AGGR_DEFAULT_BENCHMARK_RATIO: f64 = 0.8;

/// perfsanity's `benchmark` section of an aggregated config (the seed design's keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggrBenchmark {
    /// `use_nv_sa_benchmark` (default true): the client kind of every client that does not set
    /// its own.
    pub use_nv_sa_benchmark: bool,
    /// Whether `use_nv_sa_benchmark` was written (for the plan's reason).
    pub use_nv_sa_written: bool,
    /// `benchmark_ratio` (default 0.8): the random-length ratio of every client that does not set
    /// `random_range_ratio`.
    pub benchmark_ratio: f64,
    /// `dataset_fallback`.
    pub dataset_fallback: Option<DatasetFallback>,
}

/// One client entry of a server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggrClient {
    /// `name` (derived `con<c>_iter<i>_isl<isl>_osl<osl>` when unset).
    pub name: String,
    /// `concurrency` (default 1).
    pub concurrency: u64,
    /// `iterations` (default 1).
    pub iterations: u64,
    /// `isl` (default 1024).
    pub isl: u64,
    /// `osl` (default 1024).
    pub osl: u64,
    /// `random_range_ratio` as written.
    pub random_range_ratio: Option<f64>,
    /// `backend` (default `openai`).
    pub backend: String,
    /// `use_chat_template` (default false).
    pub use_chat_template: bool,
    /// `streaming` (default true).
    pub streaming: bool,
    /// `trust_remote_code` (default true).
    pub trust_remote_code: bool,
    /// `dataset_file` (a `<placeholder>` or empty string reads as unset).
    pub dataset_file: Option<Sourced<String>>,
    /// `use_nv_sa_benchmark` as written.
    pub use_nv_sa_benchmark: Option<bool>,
    /// `client_env_var` as written.
    pub client_env_var: String,
    /// `environment.client_env_var` + `client_env_var`, parsed.
    pub env: EnvList,
    /// Line of the entry.
    pub line: usize,
}

/// One server entry (`server_configs[i]`), or the single server of a ctx_only trial.
#[derive(Debug, Clone, Serialize)]
pub struct AggrServer {
    /// `name` (derived from the engine options when unset, as upstream derives it).
    pub name: String,
    /// `model_name` (else `metadata.model_name`).
    pub model_name: String,
    /// `gpus` (else tp × pp × cp; `world_size` is not considered, as upstream).
    pub gpus: u64,
    /// `hardware.gpus_per_node`, or `gpus` when that is 0 (upstream overwrites the entry's own).
    pub gpus_per_node: u64,
    /// `server_env_var` as one string (what the record's `s_server_env_var` holds).
    pub server_env_var: String,
    /// Server env additions.
    pub env: EnvList,
    /// The engine block: the entry's keys in order (harness-only keys are dropped when the engine
    /// config is written), its parallelism, `backend`, speculative decoding.
    pub engine: WorkerSection,
    /// Client entries, in order.
    pub clients: Vec<AggrClient>,
    /// `extra_llm_api_config_path`: a YAML (relative to upstream's repo root `LLM_ROOT`, or
    /// absolute) merged under the entry's keys when the plan is prepared.
    pub extra_llm_api_config_path: Option<Sourced<String>>,
}

impl AggrServer {
    /// Merges an external engine config under this entry (upstream's `extra_llm_api_config_path`
    /// rule): the external file's keys first, in its order; a key the entry also sets keeps the
    /// entry's value, at the external key's position.
    pub fn merge_extra_config(&mut self, external: &Mapping) {
        let mut merged = Mapping::default();
        for (key, node) in &external.entries {
            let value = self.engine.options.get(&key.name).unwrap_or(node);
            merged.insert(&key.name, value.clone());
        }
        for (key, node) in &self.engine.options.entries {
            if external.get(&key.name).is_none() {
                merged.insert(&key.name, node.clone());
            }
        }
        self.engine.options = merged;
    }

    /// Upstream's `spec_decoding`: a `speculative_config.decoding_type` is set.
    pub fn spec_decoding(&self) -> bool {
        self.engine.spec_decoding_type.is_some()
    }
}

/// A validated aggregated config.
#[derive(Debug, Clone, Serialize)]
pub struct AggregatedConfig {
    /// The file.
    pub path: PathBuf,
    /// `metadata.model_name` (default empty, as upstream).
    pub model_name: String,
    /// `metadata.model_dir_name` (model directory under `LLM_MODELS_ROOT`), if set.
    pub model_dir_name: Option<String>,
    /// `metadata.supported_gpus`.
    pub supported_gpus: Vec<String>,
    /// `hardware.gpus_per_node` (default 0, as upstream).
    pub gpus_per_node: u64,
    /// perfsanity's `benchmark` section, when the file has one.
    pub benchmark: Option<AggrBenchmark>,
    /// `environment.server_env_var` as written.
    pub server_env_var: String,
    /// `environment.client_env_var` as written.
    pub client_env_var: String,
    /// `sim`: simulator settings (simulator toolchain only).
    pub sim: Option<Node>,
    /// `server_configs`, in order.
    pub servers: Vec<AggrServer>,
    /// Things a perf engineer should know.
    pub warnings: Vec<String>,
}

impl AggregatedConfig {
    /// Server names in YAML order (what trial ids select by).
    pub fn server_names(&self) -> Vec<&str> {
        self.servers.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Reads and parses an aggregated config file.
pub fn load_aggregated_config(path: &Path) -> Result<AggregatedConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single(path, "", 0, format!("cannot read file: {e}")))?;
    parse_aggregated_config(&text, path)
}

/// Parses an aggregated config file's text.
pub fn parse_aggregated_config(text: &str, path: &Path) -> Result<AggregatedConfig, ConfigError> {
    let root = super::error::load_yaml(text, path)?;
    if !matches!(root.value, Value::Map(_)) {
        return Err(ConfigError::single(
            path,
            "",
            root.line.max(1),
            format!(
                "expected an aggregated config mapping (metadata, hardware, server_configs), \
                 found {}",
                describe(&root.value)
            ),
        ));
    }
    let mut p = Problems::default();
    let top = Section::new("", Some(&root), &mut p);
    top.finish(&mut p, TOP_KEYS);
    let section = |key: &'static str, p: &mut Problems| {
        Section::new(key, top.node(key), p).at_line(top.map().key(key).map_or(1, |k| k.line))
    };
    let metadata = section("metadata", &mut p);
    metadata.finish(&mut p, METADATA_KEYS);
    let hardware = section("hardware", &mut p);
    hardware.finish(&mut p, HARDWARE_KEYS);
    let bench = section("benchmark", &mut p);
    bench.finish(&mut p, BENCHMARK_KEYS);
    let environment = section("environment", &mut p);
    environment.finish(&mut p, ENVIRONMENT_KEYS);

    let model_name = metadata.string(&mut p, "model_name").unwrap_or_default();
    let model_dir_name = metadata.string(&mut p, "model_dir_name");
    let supported_gpus = metadata.string_list(&mut p, "supported_gpus");
    let gpus_per_node = hardware.u64(&mut p, "gpus_per_node").unwrap_or(0);
    let benchmark = bench.is_present().then(|| read_benchmark(&bench, &mut p));
    let (server_env_var, server_env) = env_field(&environment, &mut p, "server_env_var");
    let (client_env_var, client_env) = env_field(&environment, &mut p, "client_env_var");
    let sim = top.node("sim").filter(|n| !n.is_null()).cloned();
    if let Some(node) = &sim
        && let Err(e) = crate::config::sim_section::SimConfig::from_json_value(&node.to_json())
    {
        p.push(&e.path, node.line, e.message);
    }

    let shared = Shared {
        model_name: &model_name,
        gpus_per_node,
        server_env: &server_env,
        server_env_var: &server_env_var,
        client_env: &client_env,
        client_env_var: &client_env_var,
    };
    let mut warnings = Vec::new();
    let mut servers = Vec::new();
    match top.node("server_configs").map(|n| (&n.value, n.line)) {
        Some((Value::Seq(items), _)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(server) = read_server(i, item, &shared, &mut p, &mut warnings) {
                    servers.push(server);
                }
            }
        }
        Some((other, line)) => p.push(
            "server_configs",
            line,
            format!(
                "expected a list of server entries, found {}",
                describe(other)
            ),
        ),
        None => p.push(
            "server_configs",
            root.line,
            "required key missing; expected a list of server entries",
        ),
    }
    check_unique_names(&servers, items_lines(top.node("server_configs")), &mut p);
    p.into_result(path)?;
    Ok(AggregatedConfig {
        path: path.to_path_buf(),
        model_name,
        model_dir_name,
        supported_gpus,
        gpus_per_node,
        benchmark,
        server_env_var,
        client_env_var,
        sim,
        servers,
        warnings,
    })
}

/// What every server entry inherits from the top level.
struct Shared<'a> {
    model_name: &'a str,
    gpus_per_node: u64,
    server_env: &'a EnvList,
    server_env_var: &'a str,
    client_env: &'a EnvList,
    client_env_var: &'a str,
}

fn read_benchmark(s: &Section<'_>, p: &mut Problems) -> AggrBenchmark {
    let written = s.bool(p, "use_nv_sa_benchmark");
    let ratio = s
        .f64(p, "benchmark_ratio")
        .unwrap_or(AGGR_DEFAULT_BENCHMARK_RATIO);
    if !(0.0..=1.0).contains(&ratio) {
        p.push(
            "benchmark.benchmark_ratio",
            s.node("benchmark_ratio").map_or(0, |n| n.line),
            format!("expected a ratio in [0, 1], found {ratio}"),
        );
    }
    let dataset_fallback = dataset_fallback(s, p);
    AggrBenchmark {
        use_nv_sa_benchmark: written.unwrap_or(AGGR_DEFAULT_USE_NV_SA),
        use_nv_sa_written: written.is_some(),
        benchmark_ratio: ratio,
        dataset_fallback,
    }
}

fn env_field(s: &Section<'_>, p: &mut Problems, key: &str) -> (String, EnvList) {
    let text = s.string(p, key).unwrap_or_default();
    match parse_env_string(&text) {
        Ok(env) => (text, env),
        Err(e) => {
            p.push(
                &s.key_path(key),
                s.node(key).map_or(0, |n| n.line),
                e.to_string(),
            );
            (text, EnvList::new())
        }
    }
}

fn items_lines(node: Option<&Node>) -> Vec<usize> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().map(|n| n.line).collect(),
        _ => Vec::new(),
    }
}

/// Two servers with one name cannot be told apart by a trial id.
fn check_unique_names(servers: &[AggrServer], lines: Vec<usize>, p: &mut Problems) {
    for (i, s) in servers.iter().enumerate() {
        if let Some(first) = servers[..i].iter().position(|o| o.name == s.name) {
            p.push(
                &format!("server_configs[{i}].name"),
                lines.get(i).copied().unwrap_or(0),
                format!(
                    "server name {:?} is also the name of server_configs[{first}]; trial ids \
                     select servers by name, so names must be unique",
                    s.name
                ),
            );
        }
    }
}

/// Reads an engine block (a server entry or a disaggregated worker block used as one).
pub(crate) fn engine_block(s: &Section<'_>, line: usize, p: &mut Problems) -> WorkerSection {
    let tp = positive(s, p, "tensor_parallel_size");
    let pp = positive(s, p, "pipeline_parallel_size");
    let cp = positive(s, p, "context_parallel_size");
    let ep = positive(s, p, "moe_expert_parallel_size");
    let max_batch_size = s.u64(p, "max_batch_size");
    for key in ["max_num_tokens", "max_seq_len", "stream_interval"] {
        let _ = s.u64(p, key);
    }
    let print_iter_log = s.bool(p, "print_iter_log").unwrap_or(false);
    let backend = s
        .string(p, "backend")
        .unwrap_or_else(|| "pytorch".to_string());
    let spec_decoding_type = s
        .node("speculative_config")
        .and_then(Node::as_map)
        .and_then(|m| m.get("decoding_type"))
        .and_then(Node::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    WorkerSection {
        options: s.map().clone(),
        line,
        tp,
        pp,
        cp,
        ep,
        backend,
        max_batch_size,
        print_iter_log,
        spec_decoding_type,
    }
}

/// Upstream's derived server name:
/// `<model>_tp<tp>_ep<ep>_pp<pp>_cp<cp>_bs<mbs>_attn<attn>_moe<moe backend>` (+ `_spec<cache
/// transceiver backend>` when set).
pub fn derived_server_name(model_name: &str, engine: &WorkerSection) -> String {
    let o = &engine.options;
    let text = |n: Option<&Node>| match n.map(|n| &n.value) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    };
    let sub = |outer: &str, inner: &str| {
        o.get(outer)
            .and_then(Node::as_map)
            .and_then(|m| m.get(inner))
    };
    let mut name = format!(
        "{model_name}_tp{}_ep{}_pp{}_cp{}_bs{}_attn{}_moe{}",
        engine.tp,
        engine.ep,
        engine.pp,
        engine.cp,
        engine.max_batch_size.unwrap_or(512),
        o.get("attn_backend")
            .map_or_else(|| "TRTLLM".to_string(), |n| text(Some(n))),
        text(sub("moe_config", "backend")),
    );
    let ccb = text(sub("cache_transceiver_config", "backend"));
    if !ccb.is_empty() {
        name.push_str(&format!("_spec{ccb}"));
    }
    name
}

fn read_server(
    i: usize,
    item: &Node,
    shared: &Shared<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<AggrServer> {
    let path = format!("server_configs[{i}]");
    let s = Section::new(&path, Some(item), p);
    if !s.is_present() {
        return None;
    }
    let mut engine = engine_block(&s, item.line, p);
    let extra_llm_api_config_path = s
        .string(p, "extra_llm_api_config_path")
        .map(|value| Sourced {
            value,
            key: s.key_path("extra_llm_api_config_path"),
        });
    for key in ["match_mode", "mode", "disagg_run_type", "concurrency"] {
        let _ = s.string(p, key);
    }
    // Upstream overwrites every entry's gpus_per_node with hardware.gpus_per_node.
    if let Some(n) = engine.options.remove("gpus_per_node") {
        warnings.push(format!(
            "{path}.gpus_per_node (line {}) is ignored: upstream overwrites it with \
             hardware.gpus_per_node",
            n.line
        ));
    }
    let model_name = s
        .string(p, "model_name")
        .unwrap_or_else(|| shared.model_name.to_string());
    let gpus = s.u64(p, "gpus").unwrap_or(
        engine
            .tp
            .saturating_mul(engine.pp)
            .saturating_mul(engine.cp),
    );
    let gpus_per_node = if shared.gpus_per_node == 0 {
        gpus
    } else {
        shared.gpus_per_node
    };
    let name = match s.node("name") {
        Some(_) => s.string(p, "name").unwrap_or_default(),
        None => derived_server_name(&model_name, &engine),
    };
    if name.is_empty() {
        p.push(
            &s.key_path("name"),
            s.node("name").map_or(item.line, |n| n.line),
            "expected a non-empty server name (trial ids select servers by name)",
        );
    }
    let (own_env_var, own_env) = env_field(&s, p, "server_env_var");
    let server_env_var = [shared.server_env_var, own_env_var.as_str()]
        .iter()
        .filter(|t| !t.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut clients = Vec::new();
    match s.node("client_configs").map(|n| (&n.value, n.line)) {
        Some((Value::Seq(items), _)) => {
            for (j, client) in items.iter().enumerate() {
                if let Some(c) = read_client(&path, j, client, shared, p, warnings) {
                    clients.push(c);
                }
            }
            if items.is_empty() {
                p.push(
                    &s.key_path("client_configs"),
                    s.node("client_configs").map_or(item.line, |n| n.line),
                    "expected at least one client entry",
                );
            }
        }
        Some((other, line)) => p.push(
            &s.key_path("client_configs"),
            line,
            format!(
                "expected a list of client entries, found {}",
                describe(other)
            ),
        ),
        None => p.push(
            &s.key_path("client_configs"),
            item.line,
            "required key missing; expected a list of client entries",
        ),
    }
    Some(AggrServer {
        name,
        model_name,
        gpus,
        gpus_per_node,
        server_env_var,
        env: merge(shared.server_env, &own_env),
        engine,
        clients,
        extra_llm_api_config_path,
    })
}

fn read_client(
    server_path: &str,
    j: usize,
    node: &Node,
    shared: &Shared<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<AggrClient> {
    let path = format!("{server_path}.client_configs[{j}]");
    let c = Section::new(&path, Some(node), p);
    c.finish(p, CLIENT_KEYS);
    if !c.is_present() {
        return None;
    }
    let concurrency = c.u64(p, "concurrency").unwrap_or(1);
    let iterations = c.u64(p, "iterations").unwrap_or(1);
    for (key, value) in [("concurrency", concurrency), ("iterations", iterations)] {
        if value == 0 {
            p.push(
                &c.key_path(key),
                c.node(key).map_or(node.line, |n| n.line),
                "expected a positive integer, found 0",
            );
        }
    }
    let isl = c.u64(p, "isl").unwrap_or(1024);
    let osl = c.u64(p, "osl").unwrap_or(1024);
    let random_range_ratio = c.f64(p, "random_range_ratio");
    if let Some(r) = random_range_ratio
        && !(0.0..=1.0).contains(&r)
    {
        p.push(
            &c.key_path("random_range_ratio"),
            c.node("random_range_ratio").map_or(0, |n| n.line),
            format!("expected a ratio in [0, 1], found {r}"),
        );
    }
    if let Some(client) = c.string(p, "benchmark_client") {
        p.push(
            &c.key_path("benchmark_client"),
            c.node("benchmark_client").map_or(0, |n| n.line),
            format!(
                "benchmark client {client:?} is not supported; perfsanity runs the standard \
                 benchmark_serving client or the NV SA client (use_nv_sa_benchmark)"
            ),
        );
    }
    if c.bool(p, "only_run_accuracy") == Some(true) {
        p.push(
            &c.key_path("only_run_accuracy"),
            c.node("only_run_accuracy").map_or(0, |n| n.line),
            "only_run_accuracy needs lm_eval, which perfsanity does not run",
        );
    }
    if let Some(n) = c.node("accuracy_config")
        && !matches!(n.value, Value::Map(_) | Value::Null)
    {
        p.push(
            &c.key_path("accuracy_config"),
            n.line,
            format!("expected a mapping, found {}", describe(&n.value)),
        );
    } else if c
        .node("accuracy_config")
        .and_then(Node::as_map)
        .and_then(|m| m.get("enable_accuracy_test"))
        .and_then(Node::as_bool)
        == Some(true)
    {
        warnings.push(format!(
            "{path}.accuracy_config enables lm_eval accuracy tasks; perfsanity does not run them, \
             only performance is measured"
        ));
    }
    if c.node("warmup").is_some() {
        warnings.push(format!(
            "{path}.warmup is ignored: warmup follows from the mode, as upstream"
        ));
    }
    let dataset_file = c.string(p, "dataset_file").map(|value| Sourced {
        value,
        key: c.key_path("dataset_file"),
    });
    let (client_env_var, own_env) = env_field(&c, p, "client_env_var");
    let client_env_var = [shared.client_env_var, client_env_var.as_str()]
        .iter()
        .filter(|t| !t.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Some(AggrClient {
        name: c
            .string(p, "name")
            .unwrap_or_else(|| format!("con{concurrency}_iter{iterations}_isl{isl}_osl{osl}")),
        concurrency,
        iterations,
        isl,
        osl,
        random_range_ratio,
        backend: c
            .string(p, "backend")
            .unwrap_or_else(|| "openai".to_string()),
        use_chat_template: c.bool(p, "use_chat_template").unwrap_or(false),
        streaming: c.bool(p, "streaming").unwrap_or(true),
        trust_remote_code: c.bool(p, "trust_remote_code").unwrap_or(true),
        dataset_file,
        use_nv_sa_benchmark: c.bool(p, "use_nv_sa_benchmark"),
        client_env_var,
        env: merge(shared.client_env, &own_env),
        line: node.line,
    })
}

/// A mapping without the keys in `drop`.
pub(crate) fn without(map: &Mapping, drop: &[&str]) -> Mapping {
    let mut out = map.clone();
    for key in drop {
        out.remove(key);
    }
    out
}
