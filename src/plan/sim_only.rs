//! Configs that only the simulator can run: `metadata.supported_gpus` lists only `SIM` (the CPU
//! trials shipped for CI, whose model does not exist for TensorRT-LLM). With the TensorRT-LLM
//! toolchain they are listed as ignored, with this reason, instead of failing.

use crate::config::PerfConfig;

use super::toolchain::Toolchain;

/// The `supported_gpus` entry of simulator-only configs.
pub const SIM_GPU: &str = "SIM";

/// Why `config` cannot run under `toolchain`, if it cannot.
pub fn ignore_reason(config: &PerfConfig, toolchain: Toolchain) -> Option<String> {
    let gpus = &config.metadata.supported_gpus;
    let sim_only = !gpus.is_empty() && gpus.iter().all(|g| g.eq_ignore_ascii_case(SIM_GPU));
    (sim_only && toolchain == Toolchain::Trtllm).then(|| {
        format!(
            "simulator-only config (metadata.supported_gpus: [{SIM_GPU}]; model {:?} exists for \
             the simulator only); run it with PERF_TOOLCHAIN=sim",
            config.metadata.model_name
        )
    })
}
