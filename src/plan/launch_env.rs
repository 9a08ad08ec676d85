//! The launch environment upstream's SLURM launcher gives every role on top of the YAML's env
//! strings (TensorRT-LLM `jenkins/scripts/perf/cluster_env.py` and
//! `jenkins/scripts/perf/disaggregated/submit.py`; spec upstream-perf-sanity.md §4.6): every role
//! (workers, router, benchmark client) starts with the leaking UCX variables removed and
//! `TRTLLM_PRESERVE_UCX_ENV=1` (the default-cluster rule: no cluster-specific UCX exports);
//! workers also get a per-rank FlashInfer JIT cache and a node-local `HF_HOME`, before the YAML's
//! worker env (which may override them). Kept as data — names removed, pairs added — so the plan,
//! the dry-run, the local runner and the batch script all apply the same lists.

use serde::Serialize;

use crate::config::env_string::{EnvList, merge};

/// `BASE_UCX_UNSET`: removed from every role's environment.
pub const UCX_UNSET: [&str; 8] = [
    "UCX_CUDA_IPC_ENABLE_MNNVL",
    "UCX_TLS",
    "UCX_NET_DEVICES",
    "UCX_TCP_AF_PRIO",
    "UCX_IB_GID_INDEX",
    "UCX_IB_TRAFFIC_CLASS",
    "UCX_IB_SL",
    "UCX_IB_MLX5_DEVX",
];

/// `PRESERVE_UCX_ENV`: added to every role's environment.
pub const EVERY_ROLE_ENV: [(&str, &str); 1] = [("TRTLLM_PRESERVE_UCX_ENV", "1")];

/// The placeholder the runner replaces with the step's `SLURM_LOCALID` (empty when unset, as the
/// launcher's shell expands it).
pub const SLURM_LOCALID_REF: &str = "${SLURM_LOCALID}";

/// Added to every worker's environment before the YAML worker env.
pub const WORKER_ENV: [(&str, &str); 2] = [
    (
        "FLASHINFER_JIT_DIR",
        "/tmp/flashinfer_jit_cache_${SLURM_LOCALID}",
    ),
    ("HF_HOME", "/tmp/hf_home"),
];

/// What every role's environment loses (the additions are in each process's env list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchEnv {
    /// Variables removed from every role's inherited environment.
    pub unset: Vec<String>,
}

impl LaunchEnv {
    /// Upstream's launch environment.
    pub fn upstream() -> Self {
        LaunchEnv {
            unset: UCX_UNSET.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn pairs(items: &[(&str, &str)]) -> EnvList {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A worker's env: the launcher's additions, then the YAML's (the YAML wins a conflict, as a
/// later assignment does in upstream's shell prefix).
pub fn worker_env(yaml: &EnvList) -> EnvList {
    let mut base = pairs(&EVERY_ROLE_ENV);
    base.extend(pairs(&WORKER_ENV));
    merge(&base, yaml)
}

/// The router's or a client's env: the launcher's additions, then the YAML's.
pub fn role_env(yaml: &EnvList) -> EnvList {
    merge(&pairs(&EVERY_ROLE_ENV), yaml)
}

/// Client `c` of server `s`: [`role_env`] plus `TRTLLM_AGENTX_ARTIFACT_DIR=<tod>/agentx.<s>.<c>`,
/// which upstream's benchmark role sets for every client.
pub fn client_env(yaml: &EnvList, output_dir: &std::path::Path, s: u32, c: usize) -> EnvList {
    let mut env = role_env(yaml);
    crate::config::env_string::set(
        &mut env,
        "TRTLLM_AGENTX_ARTIFACT_DIR",
        &output_dir
            .join(format!("agentx.{s}.{c}"))
            .display()
            .to_string(),
    );
    env
}

/// `value` with [`SLURM_LOCALID_REF`] replaced by `local_id` (empty when `None`).
pub fn expand(value: &str, local_id: Option<&str>) -> String {
    value.replace(SLURM_LOCALID_REF, local_id.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_the_launcher_env_before_the_yaml_env() {
        let yaml = vec![
            ("TLLM_LOG_LEVEL".to_string(), "INFO".to_string()),
            ("HF_HOME".to_string(), "/data/hf".to_string()),
        ];
        let env = worker_env(&yaml);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "TRTLLM_PRESERVE_UCX_ENV",
                "FLASHINFER_JIT_DIR",
                "HF_HOME",
                "TLLM_LOG_LEVEL"
            ]
        );
        assert_eq!(env[2].1, "/data/hf", "the YAML wins");
        assert_eq!(role_env(&Vec::new()).len(), 1);
        assert_eq!(
            expand(WORKER_ENV[0].1, Some("3")),
            "/tmp/flashinfer_jit_cache_3"
        );
        assert_eq!(expand(WORKER_ENV[0].1, None), "/tmp/flashinfer_jit_cache_");
        assert_eq!(
            LaunchEnv::upstream().unset[..3],
            ["UCX_CUDA_IPC_ENABLE_MNNVL", "UCX_TLS", "UCX_NET_DEVICES"]
        );
    }
}
