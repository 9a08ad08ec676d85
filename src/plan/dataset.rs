//! Which data the client sends: the NV SA client's random prompts, a `trtllm_custom` dataset file
//! (found under `LLM_MODELS_ROOT`, then as given), a file the simulator toolchain generates, or a
//! random dataset for the standard client — never `trtllm_custom` mixed with random flags.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{DatasetFallback, Sourced};
use crate::plan::toolchain::{ClientKind, Toolchain};

/// What a generated dataset must contain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetGenSpec {
    /// Lines (requests) in the file.
    pub num_prompts: u64,
    /// Input length in tokens.
    pub input_len: u64,
    /// Output length (`max_tokens`).
    pub output_len: u64,
    /// Length range ratio.
    pub range_ratio: f64,
    /// Shuffle / sampling seed.
    pub seed: u64,
}

/// The dataset decision of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetPlan {
    /// NV SA client: random prompts with its own semantics (lengths in [⌊L·r⌋, L]).
    SaRandom,
    /// Standard client with `--dataset-name random`.
    Random {
        /// Why random.
        reason: String,
    },
    /// Standard client with `--dataset-name trtllm_custom --dataset-path <path>`.
    File {
        /// The resolved file.
        path: PathBuf,
        /// Config key it came from.
        key: String,
    },
    /// Simulator toolchain: the configured file does not exist, so the runner generates a
    /// synthetic one at `path` before the clients run.
    Generated {
        /// Where it is (or will be) generated.
        path: PathBuf,
        /// Config key of the file it stands in for.
        key: String,
        /// What to generate.
        spec: DatasetGenSpec,
    },
}

impl DatasetPlan {
    /// The dataset file the client reads, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            DatasetPlan::File { path, .. } | DatasetPlan::Generated { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// A standard-mode dataset that cannot be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDataset {
    /// Config key.
    pub key: String,
    /// The configured value.
    pub value: String,
    /// Every path tried, in order.
    pub tried: Vec<PathBuf>,
}

/// Inputs of the dataset decision.
pub struct DatasetContext<'a> {
    /// The client kind.
    pub client: ClientKind,
    /// Toolchain.
    pub toolchain: Toolchain,
    /// `LLM_MODELS_ROOT`.
    pub models_root: Option<&'a Path>,
    /// Directory relative paths are taken from ("as given").
    pub cwd: &'a Path,
    /// Root of simulator-generated datasets.
    pub sim_dataset_root: &'a Path,
    /// `PERF_DATASET_FALLBACK=random`.
    pub fallback_env: bool,
    /// Existence check.
    pub exists: &'a dyn Fn(&Path) -> bool,
    /// What a generated file must hold.
    pub gen_spec: DatasetGenSpec,
}

/// Decides the dataset from the configured file (`benchmark.dataset_file` or a client entry's
/// `dataset_file`) and `benchmark.dataset_fallback`; `file_key` names the key for messages. `Ok((plan, warning))`.
pub fn decide(
    file: Option<&Sourced<String>>,
    configured_fallback: Option<DatasetFallback>,
    file_key: &str,
    ctx: &DatasetContext<'_>,
) -> Result<(DatasetPlan, Option<String>), MissingDataset> {
    if ctx.client == ClientKind::NvSa {
        return Ok((DatasetPlan::SaRandom, None));
    }
    let Some(file) = file else {
        return Ok((
            DatasetPlan::Random {
                reason: format!("no dataset file is configured ({file_key})"),
            },
            None,
        ));
    };
    let given = Path::new(&file.value);
    let mut tried = Vec::new();
    if given.is_absolute() {
        tried.push(given.to_path_buf());
    } else {
        if let Some(root) = ctx.models_root {
            tried.push(root.join(given));
        }
        tried.push(ctx.cwd.join(given));
    }
    if let Some(found) = tried.iter().find(|p| (ctx.exists)(p)) {
        return Ok((
            DatasetPlan::File {
                path: found.clone(),
                key: file.key.clone(),
            },
            None,
        ));
    }
    if ctx.toolchain == Toolchain::Sim {
        let rel = if given.is_absolute() {
            PathBuf::from(given.file_name().unwrap_or_default())
        } else {
            given.to_path_buf()
        };
        return Ok((
            DatasetPlan::Generated {
                path: ctx.sim_dataset_root.join(rel),
                key: file.key.clone(),
                spec: ctx.gen_spec.clone(),
            },
            None,
        ));
    }
    let fallback = configured_fallback == Some(DatasetFallback::Random)
        || (ctx.fallback_env && configured_fallback != Some(DatasetFallback::Error));
    if fallback {
        let tried_text = join_paths(&tried);
        let source = if configured_fallback == Some(DatasetFallback::Random) {
            "benchmark.dataset_fallback: random"
        } else {
            "PERF_DATASET_FALLBACK=random"
        };
        return Ok((
            DatasetPlan::Random {
                reason: format!(
                    "dataset file {:?} ({}) not found (tried {tried_text}); falling back to the \
                     random dataset because of {source}",
                    file.value, file.key
                ),
            },
            Some(format!(
                "dataset file {:?} not found; running the RANDOM dataset instead ({source}) — \
                 the workload differs from the configured one",
                file.value
            )),
        ));
    }
    Err(MissingDataset {
        key: file.key.clone(),
        value: file.value.clone(),
        tried,
    })
}

/// Paths joined for messages.
pub fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
