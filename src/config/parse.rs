//! From YAML text to a validated [`PerfConfig`]: one pass that reads every section strictly and
//! collects every problem, then the cross-section rules (required keys, legacy fallbacks,
//! conflicting values). Soft upstream-validator rules become warnings, not errors.

use std::path::Path;

use crate::util::yaml::{Mapping, Node, Value};

use super::concurrency::parse_concurrency_list;
use super::env_string::{EnvList, merge, parse_env_string};
use super::error::{ConfigError, Problems};
use super::model::*;
use super::reader::{Section, describe};

const TOP_KEYS: &[&str] = &[
    "metadata",
    "slurm",
    "benchmark",
    "hardware",
    "environment",
    "profiling",
    "accuracy",
    "sequence",
    "worker_config",
    "internal_request_auth_key",
    "router_config",
    "ctx_router_config",
    "gen_router_config",
    "server_config_extra",
    "sim",
];
const METADATA_KEYS: &[&str] = &[
    "model_name",
    "precision",
    "model_dir_name",
    "supported_gpus",
    "script_file",
    "benchmark_type",
    "config_index",
    "dataset_file",
    "accuracy",
    "metrics",
];
const SLURM_KEYS: &[&str] = &[
    "script_file",
    "partition",
    "account",
    "job_time",
    "job_name",
    "extra_args",
    "set_segment",
    "numa_bind",
    "timeout",
];
const BENCHMARK_KEYS: &[&str] = &[
    "mode",
    "use_nv_sa_benchmark",
    "multi_round",
    "benchmark_ratio",
    "streaming",
    "concurrency_list",
    "input_length",
    "output_length",
    "dataset_file",
    "dataset_fallback",
    "benchmark_client",
    "only_run_accuracy",
    "enable_benchmark",
    "env_var",
];
const HARDWARE_KEYS: &[&str] = &[
    "gpus_per_node",
    "num_ctx_servers",
    "num_gen_servers",
    "supported_gpus",
];
const ENVIRONMENT_KEYS: &[&str] = &[
    "container_mount",
    "container_image",
    "model_path",
    "trtllm_repo",
    "build_wheel",
    "cuda_architectures",
    "trtllm_wheel_path",
    "work_dir",
    "log_dir",
    "dataset_file",
    "worker_env_var",
    "ctx_worker_env_var",
    "gen_worker_env_var",
    "server_env_var",
    "client_env_var",
    "benchmark_env_var",
];
const PROFILING_KEYS: &[&str] = &["nsys_on", "ctx_profile_range", "gen_profile_range"];
const ACCURACY_KEYS: &[&str] = &[
    "enable_accuracy_test",
    "env_var",
    "tasks",
    "model",
    "model_args_extra",
];
const SEQUENCE_KEYS: &[&str] = &["input_length", "output_length"];
const WORKER_CONFIG_KEYS: &[&str] = &["ctx", "gen", "eplb_num_slots"];

/// Reads and parses a config file.
pub fn load_perf_config(path: &Path) -> Result<PerfConfig, ConfigError> {
    let text = crate::util::bounded_read::read_text_capped(
        path,
        crate::util::bounded_read::MAX_CONFIG_BYTES,
    )
    .map_err(|e| ConfigError::single(path, "", 0, e.to_string()))?;
    parse_perf_config(&text, path)
}

/// Parses config text (`path` is used for messages and stored in the result).
pub fn parse_perf_config(text: &str, path: &Path) -> Result<PerfConfig, ConfigError> {
    let root = super::error::load_yaml(text, path)?;
    let mut p = Problems::default();
    let top = match &root.value {
        Value::Map(_) => Section::new("", Some(&root), &mut p),
        Value::Null => {
            return Err(ConfigError::single(
                path,
                "",
                1,
                "the file is empty; expected a perf config mapping with metadata, benchmark, \
                 hardware and worker_config sections",
            ));
        }
        other => {
            return Err(ConfigError::single(
                path,
                "",
                root.line,
                format!(
                    "expected a mapping at the top level, found {}",
                    other.type_name()
                ),
            ));
        }
    };
    top.finish(&mut p, TOP_KEYS);

    let metadata_sec = Section::new("metadata", top.node("metadata"), &mut p)
        .at_line(top.map().key("metadata").map_or(1, |k| k.line));
    let slurm_sec = Section::new("slurm", top.node("slurm"), &mut p)
        .at_line(top.map().key("slurm").map_or(1, |k| k.line));
    let bench_sec = Section::new("benchmark", top.node("benchmark"), &mut p)
        .at_line(top.map().key("benchmark").map_or(1, |k| k.line));
    let hw_sec = Section::new("hardware", top.node("hardware"), &mut p)
        .at_line(top.map().key("hardware").map_or(1, |k| k.line));
    let env_sec = Section::new("environment", top.node("environment"), &mut p)
        .at_line(top.map().key("environment").map_or(1, |k| k.line));
    let prof_sec = Section::new("profiling", top.node("profiling"), &mut p)
        .at_line(top.map().key("profiling").map_or(1, |k| k.line));
    let acc_sec = Section::new("accuracy", top.node("accuracy"), &mut p)
        .at_line(top.map().key("accuracy").map_or(1, |k| k.line));
    let seq_sec = Section::new("sequence", top.node("sequence"), &mut p)
        .at_line(top.map().key("sequence").map_or(1, |k| k.line));
    let wc_sec = Section::new("worker_config", top.node("worker_config"), &mut p)
        .at_line(top.map().key("worker_config").map_or(1, |k| k.line));
    for (sec, keys) in [
        (&metadata_sec, METADATA_KEYS),
        (&slurm_sec, SLURM_KEYS),
        (&bench_sec, BENCHMARK_KEYS),
        (&hw_sec, HARDWARE_KEYS),
        (&env_sec, ENVIRONMENT_KEYS),
        (&prof_sec, PROFILING_KEYS),
        (&acc_sec, ACCURACY_KEYS),
        (&seq_sec, SEQUENCE_KEYS),
        (&wc_sec, WORKER_CONFIG_KEYS),
    ] {
        sec.finish(&mut p, keys);
    }
    let mut warnings = Vec::new();

    let metadata = read_metadata(&metadata_sec, &mut p);
    let slurm = read_slurm(&slurm_sec, &mut p);
    let environment = read_environment(&env_sec, &mut p);
    let benchmark = read_benchmark(&bench_sec, &seq_sec, &metadata_sec, &env_sec, &mut p);
    let hardware = read_hardware(&hw_sec, benchmark.as_ref().map(|b| b.mode), &mut p);
    let profiling = Profiling {
        nsys_on: prof_sec.bool(&mut p, "nsys_on").unwrap_or(false),
    };
    let accuracy = read_accuracy(&acc_sec, &mut p);
    if profiling.nsys_on {
        warnings.push(
            "profiling.nsys_on is true: nsys profiling is not wired into perfsanity's launchers; \
             the run is not profiled"
                .to_string(),
        );
    }
    if accuracy.enabled {
        warnings.push(
            "accuracy.enable_accuracy_test is true: perfsanity does not run lm_eval accuracy \
             tasks; only performance is measured"
                .to_string(),
        );
    }

    let needs_ctx = hardware.as_ref().is_some_and(|h| h.num_ctx_servers > 0);
    let ctx_worker = read_worker(&wc_sec, "ctx", needs_ctx, &mut p);
    let gen_worker = read_worker(&wc_sec, "gen", true, &mut p);

    let internal_request_auth_key = top.string(&mut p, "internal_request_auth_key");
    let router_config = top.node("router_config").filter(|n| !n.is_null()).cloned();
    let ctx_router_config = top
        .node("ctx_router_config")
        .filter(|n| !n.is_null())
        .cloned();
    let gen_router_config = top
        .node("gen_router_config")
        .filter(|n| !n.is_null())
        .cloned();
    for key in ["router_config", "ctx_router_config", "gen_router_config"] {
        if let Some(n) = top.node(key)
            && !matches!(n.value, Value::Map(_) | Value::Null)
        {
            p.push(
                key,
                n.line,
                format!("expected a mapping, found {}", describe(&n.value)),
            );
        }
    }
    let server_config_extra = read_server_config_extra(top.node("server_config_extra"), &mut p);
    let sim = top.node("sim").filter(|n| !n.is_null()).cloned();
    if let Some(node) = &sim
        && let Err(e) = crate::config::sim_section::SimConfig::from_json_value(&node.to_json())
    {
        let inner = e
            .path
            .strip_prefix("sim")
            .unwrap_or(&e.path)
            .trim_start_matches('.');
        let line = line_of_path(node, inner).unwrap_or(node.line);
        p.push(&e.path, line, e.message);
    }

    super::bounds::check_bounds(&root, &mut p);
    super::nul_bytes::check_no_nul(&root, &mut p);
    p.into_result(path)?;
    // Every `None` below was recorded as a problem above, so `into_result` returned early.
    let (Some(metadata), Some(benchmark), Some(hardware), Some(gen_worker)) =
        (metadata, benchmark, hardware, gen_worker)
    else {
        unreachable_problem(path)?
    };
    let ctx_worker = ctx_worker.unwrap_or_else(|| empty_worker(0));
    let config = PerfConfig {
        path: path.to_path_buf(),
        metadata,
        slurm,
        benchmark,
        hardware,
        environment,
        profiling,
        accuracy,
        ctx_worker,
        gen_worker,
        internal_request_auth_key,
        router_config,
        ctx_router_config,
        gen_router_config,
        server_config_extra,
        sim,
        warnings,
    };
    Ok(with_validator_warnings(config))
}

fn unreachable_problem<T>(path: &Path) -> Result<T, ConfigError> {
    Err(ConfigError::single(
        path,
        "",
        0,
        "internal error: a required section was missing but no problem was recorded",
    ))
}

/// Line of a dotted path (e.g. `faults.CTX_0.exit_at_start`) inside `node`.
fn line_of_path(node: &Node, dotted: &str) -> Option<usize> {
    let mut cur = node;
    let mut line = node.line;
    for part in dotted.split('.').filter(|s| !s.is_empty()) {
        match &cur.value {
            Value::Map(m) => {
                let key = m.key(part)?;
                line = key.line;
                cur = m.get(part)?;
            }
            Value::Seq(items) => {
                cur = items.get(part.trim_matches(['[', ']']).parse::<usize>().ok()?)?;
                line = cur.line;
            }
            _ => return Some(line),
        }
    }
    Some(line)
}

fn read_metadata(s: &Section<'_>, p: &mut Problems) -> Option<Metadata> {
    let model_name = s.string(p, "model_name");
    if model_name.is_none() && s.node("model_name").is_none_or(is_unset) {
        let line = s.node("model_name").map_or(s.line(), |n| n.line);
        p.push(
            "metadata.model_name",
            line,
            "required key missing; expected the model name (e.g. deepseek_r1_0528_fp4_v2)",
        );
    }
    if let Some(n) = s.node("config_index")
        && !matches!(n.value, Value::Int(_) | Value::Null)
    {
        p.push(
            "metadata.config_index",
            n.line,
            format!("expected an integer, found {}", describe(&n.value)),
        );
    }
    let _ = s.string(p, "script_file");
    let _ = s.string(p, "dataset_file");
    Some(Metadata {
        model_name: model_name?,
        precision: s.string(p, "precision"),
        model_dir_name: s.string(p, "model_dir_name"),
        supported_gpus: s.string_list(p, "supported_gpus"),
        benchmark_type: s.string(p, "benchmark_type"),
    })
}

fn is_unset(node: &Node) -> bool {
    match &node.value {
        Value::Null => true,
        Value::Str(s) => s.is_empty() || super::reader::is_placeholder(s),
        _ => false,
    }
}

fn read_slurm(s: &Section<'_>, p: &mut Problems) -> SlurmSection {
    let timeout_s = s.u64(p, "timeout").unwrap_or(10_800);
    if timeout_s == 0 {
        p.push(
            "slurm.timeout",
            s.node("timeout").map_or(0, |n| n.line),
            "expected a positive number of seconds, found 0",
        );
    }
    SlurmSection {
        partition: s.string(p, "partition"),
        account: s.string(p, "account"),
        job_time: s.string(p, "job_time"),
        job_name: s.string(p, "job_name"),
        extra_args: s.string(p, "extra_args"),
        set_segment: s.bool(p, "set_segment"),
        numa_bind: s.bool(p, "numa_bind").unwrap_or(false),
        timeout_s,
        script_file: s.string(p, "script_file"),
    }
}

fn env_field(s: &Section<'_>, p: &mut Problems, key: &str) -> (String, EnvList) {
    let text = s.string(p, key).unwrap_or_default();
    match parse_env_string(&text) {
        Ok(env) => (text, env),
        Err(e) => {
            let line = s.node(key).map_or(0, |n| n.line);
            p.push(&s.key_path(key), line, e.to_string());
            (text, EnvList::new())
        }
    }
}

fn read_environment(s: &Section<'_>, p: &mut Problems) -> Environment {
    for key in [
        "model_path",
        "trtllm_repo",
        "cuda_architectures",
        "trtllm_wheel_path",
        "work_dir",
        "log_dir",
        "dataset_file",
    ] {
        let _ = s.string(p, key);
    }
    let _ = s.bool(p, "build_wheel");
    let (worker_env_var, worker_env) = env_field(s, p, "worker_env_var");
    let (ctx_worker_env_var, ctx_only) = env_field(s, p, "ctx_worker_env_var");
    let (gen_worker_env_var, gen_only) = env_field(s, p, "gen_worker_env_var");
    let (server_env_var, server_env) = env_field(s, p, "server_env_var");
    let (client_env_var, client_env) = env_field(s, p, "client_env_var");
    let (benchmark_env_var, benchmark_env) = env_field(s, p, "benchmark_env_var");
    Environment {
        container_image: s.string(p, "container_image"),
        container_mount: s.string(p, "container_mount"),
        ctx_env: merge(&worker_env, &ctx_only),
        gen_env: merge(&worker_env, &gen_only),
        worker_env_var,
        ctx_worker_env_var,
        gen_worker_env_var,
        server_env_var,
        client_env_var,
        benchmark_env_var,
        server_env,
        client_env,
        benchmark_env,
    }
}

/// A positive integer key of `s` (default 1); 0 is a problem.
pub(super) fn positive(s: &Section<'_>, p: &mut Problems, key: &str) -> u64 {
    match s.u64(p, key) {
        Some(0) => {
            p.push(
                &s.key_path(key),
                s.node(key).map_or(0, |n| n.line),
                "expected a positive integer, found 0",
            );
            1
        }
        Some(v) => v,
        None => 1,
    }
}

/// `benchmark.dataset_fallback` of the section `s`: `random`, `error`, or unset.
pub(super) fn dataset_fallback(s: &Section<'_>, p: &mut Problems) -> Option<DatasetFallback> {
    match s.string(p, "dataset_fallback").as_deref() {
        None => None,
        Some("random") => Some(DatasetFallback::Random),
        Some("error") => Some(DatasetFallback::Error),
        Some(other) => {
            p.push(
                "benchmark.dataset_fallback",
                s.node("dataset_fallback").map_or(0, |n| n.line),
                format!("unknown value {other:?}; expected `random` or `error`"),
            );
            None
        }
    }
}

fn read_benchmark(
    s: &Section<'_>,
    seq: &Section<'_>,
    metadata: &Section<'_>,
    env: &Section<'_>,
    p: &mut Problems,
) -> Option<BenchmarkSection> {
    let mode = match s.string(p, "mode") {
        None => Some(BenchmarkMode::E2e),
        Some(m) => BenchmarkMode::parse(&m).or_else(|| {
            p.push(
                "benchmark.mode",
                s.node("mode").map_or(0, |n| n.line),
                format!("unknown mode {m:?}; expected one of: e2e, gen_only, gen_only_no_context"),
            );
            None
        }),
    };
    let concurrency_list = match s.node("concurrency_list") {
        None => Some(vec![1]),
        Some(n) => parse_concurrency_list(n)
            .map_err(|e| p.push("benchmark.concurrency_list", n.line, e.to_string()))
            .ok(),
    };
    let multi_round = s.u64(p, "multi_round").unwrap_or(1);
    if multi_round == 0 {
        p.push(
            "benchmark.multi_round",
            s.node("multi_round").map_or(0, |n| n.line),
            "expected a positive integer, found 0",
        );
    }
    let benchmark_ratio = s.f64(p, "benchmark_ratio").unwrap_or(0.0);
    if !(0.0..=1.0).contains(&benchmark_ratio) {
        p.push(
            "benchmark.benchmark_ratio",
            s.node("benchmark_ratio").map_or(0, |n| n.line),
            format!("expected a ratio in [0, 1), found {benchmark_ratio}"),
        );
    }
    let input_length = length(s, seq, "input_length", p);
    let output_length = length(s, seq, "output_length", p);
    let dataset_file = dataset_file(s, metadata, env, p);
    let dataset_fallback = dataset_fallback(s, p);
    if let Some(client) = s.string(p, "benchmark_client") {
        p.push(
            "benchmark.benchmark_client",
            s.node("benchmark_client").map_or(0, |n| n.line),
            format!(
                "benchmark client {client:?} is not supported; perfsanity runs the standard \
                 benchmark_serving client or the NV SA client (benchmark.use_nv_sa_benchmark)"
            ),
        );
    }
    let _ = s.bool(p, "only_run_accuracy");
    let _ = s.bool(p, "enable_benchmark");
    let env_var = s.string_map(p, "env_var");
    Some(BenchmarkSection {
        mode: mode?,
        use_nv_sa_benchmark: s.bool(p, "use_nv_sa_benchmark"),
        multi_round,
        benchmark_ratio,
        benchmark_ratio_set: s.node("benchmark_ratio").is_some(),
        streaming: s.bool(p, "streaming").unwrap_or(true),
        concurrency_list: concurrency_list?,
        input_length,
        output_length,
        dataset_file,
        dataset_fallback,
        env_var,
    })
}

fn length(s: &Section<'_>, seq: &Section<'_>, key: &str, p: &mut Problems) -> Sourced<u64> {
    let new = s.u64(p, key);
    let old = seq.u64(p, key);
    match (new, old) {
        (Some(a), Some(b)) if a != b => {
            p.push(
                &s.key_path(key),
                s.node(key).map_or(0, |n| n.line),
                format!("conflicts with sequence.{key} ({b}); keep one of them"),
            );
            Sourced {
                value: a,
                key: s.key_path(key),
            }
        }
        (Some(a), _) => Sourced {
            value: a,
            key: s.key_path(key),
        },
        (None, Some(b)) => Sourced {
            value: b,
            key: seq.key_path(key),
        },
        (None, None) => Sourced {
            value: 1024,
            key: "default".to_string(),
        },
    }
}

fn dataset_file(
    bench: &Section<'_>,
    metadata: &Section<'_>,
    env: &Section<'_>,
    p: &mut Problems,
) -> Option<Sourced<String>> {
    let candidates: Vec<Sourced<String>> = [bench, metadata, env]
        .iter()
        .filter_map(|sec| {
            sec.string(p, "dataset_file").map(|value| Sourced {
                value,
                key: sec.key_path("dataset_file"),
            })
        })
        .collect();
    let first = candidates.first()?.clone();
    for other in &candidates[1..] {
        if other.value != first.value {
            p.push(
                &first.key,
                0,
                format!(
                    "{:?} conflicts with {} ({:?}); keep one dataset file",
                    first.value, other.key, other.value
                ),
            );
        }
    }
    Some(first)
}

fn read_hardware(
    s: &Section<'_>,
    mode: Option<BenchmarkMode>,
    p: &mut Problems,
) -> Option<Hardware> {
    let _ = s.string_list(p, "supported_gpus");
    let required = |key: &str, min: u64, p: &mut Problems| -> Option<u64> {
        // `key:` with no value is as missing as no key (found by tests/proptest_parsers.rs).
        match s.node(key).filter(|n| !n.is_null()) {
            None => {
                p.push(
                    &s.key_path(key),
                    s.line(),
                    format!("required key missing; expected an integer ≥ {min}"),
                );
                None
            }
            Some(n) => {
                let v = s.u64(p, key)?;
                if v < min {
                    p.push(
                        &s.key_path(key),
                        n.line,
                        format!("expected an integer ≥ {min}, found {v}"),
                    );
                    return None;
                }
                Some(v)
            }
        }
    };
    let no_context = mode == Some(BenchmarkMode::GenOnlyNoContext);
    let gpus_per_node = required("gpus_per_node", 1, p);
    let num_gen_servers = required("num_gen_servers", 1, p);
    let num_ctx_servers = if no_context {
        // gen_only_no_context runs without context servers, whatever the YAML says.
        let _ = s.u64(p, "num_ctx_servers");
        Some(0)
    } else {
        required("num_ctx_servers", 1, p)
    };
    Some(Hardware {
        gpus_per_node: gpus_per_node?,
        num_ctx_servers: num_ctx_servers?,
        num_gen_servers: num_gen_servers?,
    })
}

fn read_accuracy(s: &Section<'_>, p: &mut Problems) -> Accuracy {
    let _ = s.string(p, "model");
    let _ = s.string(p, "model_args_extra");
    let _ = s.string_map(p, "env_var");
    if let Some(tasks) = s.node("tasks")
        && !matches!(tasks.value, Value::Map(_) | Value::Str(_) | Value::Null)
    {
        p.push(
            "accuracy.tasks",
            tasks.line,
            format!(
                "expected a mapping of tasks (or a legacy task name), found {}",
                describe(&tasks.value)
            ),
        );
    }
    Accuracy {
        enabled: s.bool(p, "enable_accuracy_test").unwrap_or(false),
    }
}

fn empty_worker(line: usize) -> WorkerSection {
    WorkerSection {
        options: Mapping::default(),
        line,
        tp: 1,
        pp: 1,
        cp: 1,
        ep: 1,
        backend: "pytorch".to_string(),
        max_batch_size: None,
        print_iter_log: false,
        spec_decoding_type: None,
    }
}

fn read_worker(
    wc: &Section<'_>,
    role: &str,
    required: bool,
    p: &mut Problems,
) -> Option<WorkerSection> {
    let key_path = format!("worker_config.{role}");
    let node = wc.node(role);
    let Some(node) = node.filter(|n| !n.is_null()) else {
        if required {
            p.push(
                &key_path,
                node.map_or(wc.line(), |n| n.line),
                format!(
                    "required section missing; expected the {} worker's engine options \
                     (tensor_parallel_size, max_batch_size, …)",
                    if role == "ctx" {
                        "context"
                    } else {
                        "generation"
                    }
                ),
            );
            return None;
        }
        return Some(empty_worker(0));
    };
    let key_line = wc.map().key(role).map_or(node.line, |k| k.line);
    let sec = Section::new(&key_path, Some(node), p).at_line(key_line);
    if !sec.is_present() {
        return None;
    }
    let positive = |key: &str, p: &mut Problems| positive(&sec, p, key);
    let tp = positive("tensor_parallel_size", p);
    let pp = positive("pipeline_parallel_size", p);
    let cp = positive("context_parallel_size", p);
    let ep = positive("moe_expert_parallel_size", p);
    let max_batch_size = sec.u64(p, "max_batch_size");
    let _ = sec.u64(p, "max_num_tokens");
    let _ = sec.u64(p, "max_seq_len");
    let _ = sec.u64(p, "stream_interval");
    let print_iter_log = sec.bool(p, "print_iter_log").unwrap_or(false);
    let backend = sec
        .string(p, "backend")
        .unwrap_or_else(|| "pytorch".to_string());
    let spec_sec = Section::new(
        "speculative_config",
        sec.node("speculative_config"),
        &mut Problems::default(),
    );
    let spec_decoding_type = spec_sec.string(&mut Problems::default(), "decoding_type");
    if let Some(n) = sec.node("extra_llm_api_config_path") {
        p.push(
            &sec.key_path("extra_llm_api_config_path"),
            n.line,
            "extra_llm_api_config_path is not supported; put the engine options in this block",
        );
    }
    Some(WorkerSection {
        options: sec.map().clone(),
        line: node.line,
        tp,
        pp,
        cp,
        ep,
        backend,
        max_batch_size,
        print_iter_log,
        spec_decoding_type,
    })
}

const HARNESS_OWNED_ROUTER_KEYS: &[&str] = &[
    "port",
    "hostname",
    "internal_request_auth_key",
    "context_servers",
    "generation_servers",
];

fn read_server_config_extra(node: Option<&Node>, p: &mut Problems) -> Option<Mapping> {
    let node = node.filter(|n| !n.is_null())?;
    let Value::Map(m) = &node.value else {
        p.push(
            "server_config_extra",
            node.line,
            format!("expected a mapping, found {}", describe(&node.value)),
        );
        return None;
    };
    for (key, _) in &m.entries {
        if HARNESS_OWNED_ROUTER_KEYS.contains(&key.name.as_str()) {
            p.push(
                &format!("server_config_extra.{}", key.name),
                key.line,
                format!(
                    "server_config_extra may not override harness-owned keys ({})",
                    HARNESS_OWNED_ROUTER_KEYS.join(", ")
                ),
            );
        }
    }
    if let Some(n) = m.get("num_workers")
        && n.as_i64().is_some_and(|v| v > 1)
    {
        p.push(
            "server_config_extra.num_workers",
            n.line,
            "num_workers > 1 selects a disaggregated server fleet, which cannot report a \
                 kernel-assigned port; remove it",
        );
    }
    if let Some(n) = m.get("disagg_coordinator_url")
        && n.as_str().is_some_and(|s| !s.is_empty())
    {
        p.push(
            "server_config_extra.disagg_coordinator_url",
            n.line,
            "disagg_coordinator_url selects a disaggregated server fleet, which cannot report \
                 a kernel-assigned port; remove it",
        );
    }
    Some(m.clone())
}

/// Upstream's ConfigValidator rules (§2.10) as warnings: real configs drift from them, so they
/// must not stop a run, but a perf engineer should see them before spending GPU hours.
fn with_validator_warnings(mut c: PerfConfig) -> PerfConfig {
    let isl = c.benchmark.input_length.value;
    let osl = c.benchmark.output_length.value;
    let get_u64 =
        |w: &WorkerSection, key: &str| w.options.get(key).and_then(Node::as_i64).map(|v| v as u64);
    if c.hardware.num_ctx_servers > 0
        && let Some(seq) = get_u64(&c.ctx_worker, "max_seq_len")
        && seq <= isl
    {
        c.warnings.push(format!(
            "worker_config.ctx.max_seq_len ({seq}) should exceed the input length ({isl})"
        ));
    }
    if let Some(seq) = get_u64(&c.gen_worker, "max_seq_len")
        && seq <= isl + osl
    {
        c.warnings.push(format!(
            "worker_config.gen.max_seq_len ({seq}) should exceed input + output length ({})",
            isl + osl
        ));
    }
    if let Some(bs) = c.gen_worker.max_batch_size {
        let attention_dp = c
            .gen_worker
            .options
            .get("enable_attention_dp")
            .and_then(Node::as_bool)
            .unwrap_or(false);
        let limit = if attention_dp {
            bs * c.gen_worker.tp
        } else {
            bs
        };
        for &con in &c.benchmark.concurrency_list {
            if con > limit {
                c.warnings.push(format!(
                    "benchmark.concurrency_list value {con} exceeds what the gen worker can batch \
                     ({limit} = max_batch_size{})",
                    if attention_dp {
                        " × tensor_parallel_size"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    if !c.benchmark.streaming {
        c.warnings.push(
            "benchmark.streaming is false: TTFT and ITL are not measurable (upstream reports \
             TTFT = -1000 ms)"
                .to_string(),
        );
    }
    c
}
