//! The model path given to `trtllm-serve` and the clients, resolved as upstream resolves it
//! (upstream-perf-sanity.md §4.1): `metadata.model_dir_name` under the models root when a
//! config sets it (perfsanity's addition), then `MODEL_PATH_DICT[model_name]` under the models
//! root, then a Hugging Face id. The dictionaries are data: `data/model_paths.json`, transcribed
//! from upstream's `_model_paths.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use super::toolchain::Toolchain;
use crate::config::PerfConfig;

/// Upstream's models roots when `LLM_MODELS_ROOT` is unset, in the order it tries them.
pub const DEFAULT_MODELS_ROOTS: [&str; 2] = [
    "/home/scratch.trt_llm_data/llm-models/",
    "/scratch.trt_llm_data/llm-models/",
];

#[derive(Deserialize)]
struct ModelPaths {
    model_path_dict: BTreeMap<String, String>,
    hf_model_path: BTreeMap<String, String>,
}

fn tables() -> &'static ModelPaths {
    static TABLES: OnceLock<ModelPaths> = OnceLock::new();
    TABLES.get_or_init(|| {
        serde_json::from_str(include_str!("../../data/model_paths.json"))
            .expect("data/model_paths.json is checked by the unit tests")
    })
}

/// `MODEL_PATH_DICT[model_name]`: the directory under the models root.
pub fn model_dir_of(model_name: &str) -> Option<&'static str> {
    tables().model_path_dict.get(model_name).map(String::as_str)
}

/// `HF_MODEL_PATH[model_name]`: a Hugging Face repo id upstream downloads at run time.
pub fn hf_id_of(model_name: &str) -> Option<&'static str> {
    tables().hf_model_path.get(model_name).map(String::as_str)
}

/// The resolved model path and, when it is not a local directory, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelResolution {
    /// What `trtllm-serve` and the clients are given.
    pub path: String,
    /// A note for the plan's warnings when the path is not a directory that exists.
    pub note: Option<String>,
}

/// No directory exists and no Hugging Face id was asked for (TensorRT-LLM toolchain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMissing {
    /// `metadata.model_name`.
    pub model_name: String,
    /// Every directory tried, in order.
    pub tried: Vec<PathBuf>,
}

/// The candidate directories, in the order they are tried.
pub fn candidates(config: &PerfConfig, models_root: Option<&Path>) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = match models_root {
        Some(root) => vec![root.to_path_buf()],
        None => DEFAULT_MODELS_ROOTS.iter().map(PathBuf::from).collect(),
    };
    let dirs = config
        .metadata
        .model_dir_name
        .as_deref()
        .into_iter()
        .chain(model_dir_of(&config.metadata.model_name));
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        for root in &roots {
            let path = root.join(dir);
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Resolves the model path. A Hugging Face id is used only when asked for explicitly: an
/// `HF_MODEL_PATH` entry, or a `model_name` that is itself an id (`org/name`). With the simulator
/// toolchain the bare `model_name` stands (nothing loads it).
pub fn resolve(
    config: &PerfConfig,
    models_root: Option<&Path>,
    toolchain: Toolchain,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<ModelResolution, ModelMissing> {
    let tried = candidates(config, models_root);
    if let Some(found) = tried.iter().find(|p| exists(p)) {
        return Ok(ModelResolution {
            path: found.display().to_string(),
            note: None,
        });
    }
    let name = &config.metadata.model_name;
    let tried_text = super::dataset::join_paths(&tried);
    let hf_id = hf_id_of(name).or_else(|| name.contains('/').then_some(name.as_str()));
    if let Some(id) = hf_id {
        return Ok(ModelResolution {
            path: id.to_string(),
            note: Some(format!(
                "model `{name}` is used as the Hugging Face id {id:?} (no model directory: tried \
                 {tried_text}); trtllm-serve downloads it"
            )),
        });
    }
    if toolchain == Toolchain::Sim {
        return Ok(ModelResolution {
            path: name.clone(),
            note: None,
        });
    }
    Err(ModelMissing {
        model_name: name.clone(),
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_holds_upstreams_dictionaries() {
        assert_eq!(model_dir_of("qwen3_32b_fp8"), Some("Qwen3/Qwen3-32B-FP8"));
        assert_eq!(
            model_dir_of("llama_v3.3_70b_instruct_fp8"),
            Some("modelopt-hf-model-hub/Llama-3.3-70B-Instruct-fp8")
        );
        assert_eq!(
            model_dir_of("deepseek_r1_0528_fp4_v2"),
            Some("DeepSeek-R1/DeepSeek-R1-0528-FP4-v2/")
        );
        assert!(tables().model_path_dict.len() >= 80);
        assert_eq!(
            hf_id_of("nemotron_3_ultra_550b_nvfp4"),
            Some("nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4")
        );
        assert_eq!(model_dir_of("sim_tiny_llm"), None);
    }
}
