//! Upstream's *aggregated* perf-sanity layout (`metadata`, `hardware`, `server_configs[]` with
//! `client_configs[]`). perfsanity runs disaggregated graphs only, but it validates aggregated
//! files with the same strictness so a shared config tree can be checked in one pass: harness
//! keys are typed, client entries reject unknown keys, engine keys pass through.

use std::path::Path;

use crate::util::yaml::Value;

use super::error::{ConfigError, Problems};
use super::reader::{Section, describe};

const TOP_KEYS: &[&str] = &["metadata", "hardware", "server_configs"];
const METADATA_KEYS: &[&str] = &["model_name", "supported_gpus"];
const HARDWARE_KEYS: &[&str] = &["gpus_per_node"];
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

/// One server entry of an aggregated config.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedServer {
    /// `name` (empty when unset, as upstream).
    pub name: String,
    /// GPUs: `gpus`, else tp × pp × cp.
    pub gpus: u64,
    /// Client entries (concurrency values, in order).
    pub client_concurrency: Vec<u64>,
}

/// A validated aggregated config.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedConfig {
    /// `metadata.model_name` (default empty, as upstream).
    pub model_name: String,
    /// `hardware.gpus_per_node` (default 0, as upstream).
    pub gpus_per_node: u64,
    /// `server_configs`.
    pub servers: Vec<AggregatedServer>,
}

/// Parses an aggregated config file's text.
pub fn parse_aggregated_config(text: &str, path: &Path) -> Result<AggregatedConfig, ConfigError> {
    let root = super::error::load_yaml(text, path)?;
    let mut p = Problems::default();
    let top = Section::new("", Some(&root), &mut p);
    top.finish(&mut p, TOP_KEYS);
    let metadata = Section::new("metadata", top.node("metadata"), &mut p);
    metadata.finish(&mut p, METADATA_KEYS);
    let hardware = Section::new("hardware", top.node("hardware"), &mut p);
    hardware.finish(&mut p, HARDWARE_KEYS);
    let model_name = metadata.string(&mut p, "model_name").unwrap_or_default();
    let _ = metadata.string_list(&mut p, "supported_gpus");
    let gpus_per_node = hardware.u64(&mut p, "gpus_per_node").unwrap_or(0);
    let mut servers = Vec::new();
    match top.node("server_configs").map(|n| (&n.value, n.line)) {
        Some((Value::Seq(items), _)) => {
            for (i, item) in items.iter().enumerate() {
                let path_s = format!("server_configs[{i}]");
                let s = Section::new(&path_s, Some(item), &mut p);
                let positive = |key: &str, p: &mut Problems| s.u64(p, key).unwrap_or(1).max(1);
                let (tp, pp, cp) = (
                    positive("tensor_parallel_size", &mut p),
                    positive("pipeline_parallel_size", &mut p),
                    positive("context_parallel_size", &mut p),
                );
                let _ = s.u64(&mut p, "moe_expert_parallel_size");
                let _ = s.string(&mut p, "server_env_var");
                let gpus = s
                    .u64(&mut p, "gpus")
                    .unwrap_or(tp.saturating_mul(pp).saturating_mul(cp));
                let mut client_concurrency = Vec::new();
                match s.node("client_configs").map(|n| (&n.value, n.line)) {
                    Some((Value::Seq(clients), _)) => {
                        for (j, client) in clients.iter().enumerate() {
                            let cpath = format!("{path_s}.client_configs[{j}]");
                            let c = Section::new(&cpath, Some(client), &mut p);
                            c.finish(&mut p, CLIENT_KEYS);
                            for key in ["iterations", "isl", "osl"] {
                                let _ = c.u64(&mut p, key);
                            }
                            for key in ["use_chat_template", "streaming", "trust_remote_code"] {
                                let _ = c.bool(&mut p, key);
                            }
                            let _ = c.f64(&mut p, "random_range_ratio");
                            client_concurrency.push(c.u64(&mut p, "concurrency").unwrap_or(1));
                        }
                    }
                    Some((other, line)) => p.push(
                        &format!("{path_s}.client_configs"),
                        line,
                        format!(
                            "expected a list of client entries, found {}",
                            describe(other)
                        ),
                    ),
                    None => p.push(
                        &format!("{path_s}.client_configs"),
                        s.line(),
                        "required key missing; expected a list of client entries",
                    ),
                }
                servers.push(AggregatedServer {
                    name: s.string(&mut p, "name").unwrap_or_default(),
                    gpus,
                    client_concurrency,
                });
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
    p.into_result(path)?;
    Ok(AggregatedConfig {
        model_name,
        gpus_per_node,
        servers,
    })
}
