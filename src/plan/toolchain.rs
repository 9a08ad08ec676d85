//! Toolchains: which programs run the servers and the client.
//!
//! `trtllm` runs the real `trtllm-serve` and upstream's Python benchmark clients; `sim` runs
//! perfsanity's embedded simulator and native client. Only the argv *prefix* differs: every
//! argument after it is the same, so the embedded default exercises the real command lines.

use std::path::Path;

use serde::Serialize;

use crate::plan::Role;

/// The resolved toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Toolchain {
    /// Real TensorRT-LLM.
    Trtllm,
    /// Embedded simulator and native client.
    Sim,
}

impl Toolchain {
    /// `trtllm` / `sim`.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolchain::Trtllm => "trtllm",
            Toolchain::Sim => "sim",
        }
    }
}

/// Which benchmark client a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// TensorRT-LLM's `benchmark_serving` (`random` or `trtllm_custom` dataset).
    Standard,
    /// The external NV SA `bench_serving` client (random dataset).
    NvSa,
}

/// The program name the runner maps to its own executable.
pub const SELF_PROGRAM: &str = "perfsanity";

/// Where upstream clones the SA client.
pub const SA_CLIENT_SCRIPT: &str = "/tmp/bench_serving/benchmark_serving.py";

/// argv prefix of a worker (up to and including `trtllm-serve`).
pub fn worker_prefix(toolchain: Toolchain, role: Role, sim_config: Option<&Path>) -> Vec<String> {
    match toolchain {
        Toolchain::Trtllm => vec!["trtllm-serve".to_string()],
        Toolchain::Sim => sim_prefix(role, sim_config),
    }
}

/// argv prefix of the router (up to and including `disaggregated`).
pub fn router_prefix(toolchain: Toolchain, sim_config: Option<&Path>) -> Vec<String> {
    let mut argv = worker_prefix(toolchain, Role::DisaggServer, sim_config);
    argv.push("disaggregated".to_string());
    argv
}

fn sim_prefix(role: Role, sim_config: Option<&Path>) -> Vec<String> {
    let mut argv = vec![
        SELF_PROGRAM.to_string(),
        "sim".to_string(),
        "--role".to_string(),
        role.to_string(),
    ];
    if let Some(path) = sim_config {
        argv.push("--sim-config".to_string());
        argv.push(path.display().to_string());
    }
    argv.push("trtllm-serve".to_string());
    argv
}

/// argv prefix of a benchmark client.
pub fn client_prefix(toolchain: Toolchain, kind: ClientKind) -> Vec<String> {
    let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    match (toolchain, kind) {
        (Toolchain::Trtllm, ClientKind::Standard) => v(&[
            "python",
            "-m",
            "tensorrt_llm.serve.scripts.benchmark_serving",
        ]),
        (Toolchain::Trtllm, ClientKind::NvSa) => v(&["python", SA_CLIENT_SCRIPT]),
        (Toolchain::Sim, ClientKind::Standard) => {
            v(&[SELF_PROGRAM, "bench", "--tokenizer-fallback", "builtin"])
        }
        (Toolchain::Sim, ClientKind::NvSa) => v(&[
            SELF_PROGRAM,
            "bench",
            "--flavor",
            "sa",
            "--tokenizer-fallback",
            "builtin",
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            worker_prefix(
                Toolchain::Sim,
                Role::Gen(1),
                Some(Path::new("/o/sim-config.json"))
            ),
            [
                "perfsanity",
                "sim",
                "--role",
                "GEN_1",
                "--sim-config",
                "/o/sim-config.json",
                "trtllm-serve"
            ]
        );
        assert_eq!(
            router_prefix(Toolchain::Trtllm, None),
            ["trtllm-serve", "disaggregated"]
        );
    }
}
