//! The random-length range ratio each client is given, and why. The NV SA client draws lengths
//! uniformly in `[⌊L·r⌋, L]`, so upstream's default `r = 0.0` makes it send empty prompts and
//! `max_tokens: 0`, which TensorRT-LLM rejects; for that client an unset ratio is the seed
//! design's 0.8, and a ratio whose lower bound is 0 is a plan error. The standard client's range
//! `[⌊L(1−r)⌋, ⌊L(1+r)⌋]` is symmetric, so upstream's 0.0 stays.

use crate::config::PerfConfig;
use crate::plan::toolchain::ClientKind;

/// The NV SA client's ratio when `benchmark.benchmark_ratio` is not set.
pub const NV_SA_DEFAULT_RATIO: f64 = 0.8;

/// Upstream's ratio when `benchmark.benchmark_ratio` is not set.
pub const UPSTREAM_DEFAULT_RATIO: f64 = 0.0;

/// The chosen ratio and the reason shown in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioChoice {
    /// The ratio given to the client.
    pub ratio: f64,
    /// Where it came from.
    pub reason: String,
}

/// Chooses the ratio for `client` with the (scaled) input and output lengths; `Err` carries the
/// message of a config whose SA lengths can reach 0.
pub fn choose(
    config: &PerfConfig,
    client: ClientKind,
    isl: u64,
    osl: u64,
) -> Result<RatioChoice, String> {
    let set = config.benchmark.benchmark_ratio_set;
    let configured = config.benchmark.benchmark_ratio;
    let choice = match (client, set) {
        (_, true) => RatioChoice {
            ratio: configured,
            reason: "benchmark.benchmark_ratio".to_string(),
        },
        (ClientKind::Standard, false) => RatioChoice {
            ratio: UPSTREAM_DEFAULT_RATIO,
            reason: "benchmark.benchmark_ratio is not set: upstream's default 0.0 (the standard \
                     client's range [L(1−r), L(1+r)] is then exactly L)"
                .to_string(),
        },
        (ClientKind::NvSa, false) => RatioChoice {
            ratio: NV_SA_DEFAULT_RATIO,
            reason: "benchmark.benchmark_ratio is not set: 0.8 for the NV SA client (it draws \
                     lengths in [⌊L·r⌋, L]; upstream's default 0.0 would send empty prompts and \
                     max_tokens 0, which TensorRT-LLM rejects)"
                .to_string(),
        },
    };
    if client == ClientKind::NvSa {
        for (name, len) in [("input", isl), ("output", osl)] {
            let low = (len as f64 * choice.ratio).floor();
            if low < 1.0 {
                return Err(format!(
                    "`benchmark.benchmark_ratio`: {} with {name} length {len} lets the NV SA \
                     client draw {name} lengths down to 0 ([⌊{len}·{}⌋, {len}]); TensorRT-LLM \
                     rejects empty prompts and max_tokens 0 — set benchmark_ratio ≥ {}",
                    choice.ratio,
                    choice.ratio,
                    1.0 / len.max(1) as f64
                ));
            }
        }
    }
    Ok(choice)
}
