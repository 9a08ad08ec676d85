//! `PERF_SCALE`: full scale (the default, exactly what the YAML says) or `smoke`, which caps
//! concurrency, rounds and lengths for a quick local check. The scale is part of every plan, is
//! printed in the dry-run and recorded with results, so a smoke number is never mistaken for a
//! real one.

use serde::Serialize;

/// Concurrency cap of the smoke scale.
pub const SMOKE_MAX_CONCURRENCY: u64 = 4;
/// Input-length cap of the smoke scale.
pub const SMOKE_MAX_INPUT_LEN: u64 = 128;
/// Output-length cap of the smoke scale.
pub const SMOKE_MAX_OUTPUT_LEN: u64 = 32;

/// How much of the configured load a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Exactly the YAML's load.
    #[default]
    Full,
    /// Capped load for quick checks.
    Smoke,
}

/// A `PERF_SCALE` value that names no scale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PERF_SCALE={0:?} is not a scale; expected full or smoke")]
pub struct UnknownScale(pub String);

impl Scale {
    /// Parses `PERF_SCALE` (unset or empty = full).
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownScale> {
        match value.map(str::trim).unwrap_or("") {
            "" | "full" => Ok(Scale::Full),
            "smoke" => Ok(Scale::Smoke),
            other => Err(UnknownScale(other.to_string())),
        }
    }

    /// `full` / `smoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Smoke => "smoke",
        }
    }

    /// One line describing what the scale does.
    pub fn describe(self) -> String {
        match self {
            Scale::Full => "full (as configured)".to_string(),
            Scale::Smoke => format!(
                "smoke (concurrency ≤ {SMOKE_MAX_CONCURRENCY}, 1 round, input ≤ \
                 {SMOKE_MAX_INPUT_LEN} tokens, output ≤ {SMOKE_MAX_OUTPUT_LEN} tokens)"
            ),
        }
    }

    /// The concurrency values to run (smoke: capped and de-duplicated, order kept).
    pub fn concurrencies(self, configured: &[u64]) -> Vec<u64> {
        match self {
            Scale::Full => configured.to_vec(),
            Scale::Smoke => {
                let mut out: Vec<u64> = Vec::new();
                for c in configured.iter().map(|c| (*c).min(SMOKE_MAX_CONCURRENCY)) {
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Rounds per client.
    pub fn rounds(self, configured: u64) -> u64 {
        match self {
            Scale::Full => configured,
            Scale::Smoke => 1,
        }
    }

    /// Input length.
    pub fn input_len(self, configured: u64) -> u64 {
        match self {
            Scale::Full => configured,
            Scale::Smoke => configured.min(SMOKE_MAX_INPUT_LEN),
        }
    }

    /// Output length.
    pub fn output_len(self, configured: u64) -> u64 {
        match self {
            Scale::Full => configured,
            Scale::Smoke => configured.min(SMOKE_MAX_OUTPUT_LEN),
        }
    }
}
