//! The `sim:` section of a perf YAML: latency-model knobs and per-role fault injection.
//!
//! The plan writes the whole section as JSON to `<tod>/sim-config.json` and passes it to every
//! simulated process with `--sim-config`; the config validator calls
//! [`SimConfig::from_json_value`] at config-check time, so a typo under `sim:` is rejected before
//! anything runs. Every struct denies unknown keys, and every error names the key path
//! (`sim.latency.step_base_ms`) and what was expected. Defaults are in `docs/SIMULATOR.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a `sim:` section was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SimConfigError {
    /// Key path, always starting with `sim` (e.g. `sim.faults.GEN_0.http_500_every`).
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl SimConfigError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The whole `sim:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Latency model of simulated workers (and readiness delay).
    #[serde(default)]
    pub latency: LatencyConfig,
    /// Fault injection per role (`CTX_0`, `GEN_1`, `DISAGG_SERVER`, `AGGR_0`).
    #[serde(default)]
    pub faults: BTreeMap<String, FaultConfig>,
}

/// Knobs of the latency model (see `docs/SIMULATOR.md` for the formulas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Simulated model-load time: `/health` answers 503 until it has passed (ms).
    pub load_delay_ms: f64,
    /// Fixed cost of one scheduler iteration that runs a forward pass (ms).
    pub step_base_ms: f64,
    /// Added per generation (decode) request in the iteration's batch (µs).
    pub step_per_gen_request_us: f64,
    /// Added per context (prefill) token in the iteration's batch (µs).
    pub step_per_ctx_token_us: f64,
    /// Added per draft token verified in the iteration's batch (µs); speculative decoding only.
    pub step_per_draft_token_us: f64,
    /// Probability that a draft token is accepted (given that the ones before it were), when
    /// `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS` does not force the count.
    pub spec_acceptance_rate: f64,
    /// Fixed KV-cache transfer delay of a `generation_only` request (ms).
    pub kv_transfer_base_ms: f64,
    /// Added per prompt token of a `generation_only` request (µs).
    pub kv_transfer_per_token_us: f64,
    /// Relative jitter: each step time is scaled by a uniform factor in `[1-j, 1+j]`; `0` = none.
    pub jitter: f64,
    /// Seed of the jitter generator (mixed with the role name so workers differ).
    pub seed: u64,
    /// How often a gen worker gated by `TLLM_BENCHMARK_REQ_QUEUES_SIZE` re-checks its queue (ms).
    pub req_queue_poll_ms: f64,
    /// Longest a gen worker waits for `TLLM_BENCHMARK_REQ_QUEUES_SIZE` requests before it starts
    /// decoding anyway with a warning (ms). Upstream waits forever.
    pub req_queue_max_wait_ms: f64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            load_delay_ms: 200.0,
            step_base_ms: 4.0,
            step_per_gen_request_us: 8.0,
            step_per_ctx_token_us: 4.0,
            step_per_draft_token_us: 2.0,
            spec_acceptance_rate: 0.7,
            kv_transfer_base_ms: 1.0,
            kv_transfer_per_token_us: 0.2,
            jitter: 0.0,
            seed: 0,
            req_queue_poll_ms: 100.0,
            req_queue_max_wait_ms: 30_000.0,
        }
    }
}

/// Faults injected into one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Exit with this code right at start, before binding or reporting an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_at_start: Option<u8>,
    /// Crash (exit code 1, no cleanup) right after the n-th completion request finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_after_requests: Option<u64>,
    /// `/health` answers 503 forever.
    #[serde(default)]
    pub never_ready: bool,
    /// The engine freezes (connections stay open, nothing more is sent) once it has produced
    /// this many output tokens in total. Workers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_tokens: Option<u64>,
    /// Every n-th completion request is answered with HTTP 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_500_every: Option<u64>,
    /// Panic (inside the request handler) right after the n-th completion request finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_after_requests: Option<u64>,
    /// At start, start a chain of this many descendant processes (a child, its child, …), each
    /// in a new session, that live until killed: what a real `trtllm-serve`'s own helper
    /// processes look like to the runner (1..=8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_descendants: Option<u32>,
    /// SIGTERM is logged and ignored, so only SIGKILL (or SIGINT) stops the process.
    #[serde(default)]
    pub ignore_sigterm: bool,
}

/// Longest chain `sim.faults.<ROLE>.spawn_descendants` may ask for.
pub const MAX_DESCENDANTS: u32 = 8;

/// The kind of process a role name designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// `CTX_<i>`: context worker.
    Context,
    /// `GEN_<i>`: generation worker.
    Generation,
    /// `AGGR_<s>`: aggregated server.
    Aggregated,
    /// `DISAGG_SERVER`: the router.
    Router,
}

/// Classifies a role name; `None` when it is not one of the four accepted shapes.
pub fn role_kind(role: &str) -> Option<RoleKind> {
    if role == "DISAGG_SERVER" {
        return Some(RoleKind::Router);
    }
    let numbered = |prefix: &str| {
        role.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered("CTX_") {
        Some(RoleKind::Context)
    } else if numbered("GEN_") {
        Some(RoleKind::Generation)
    } else if numbered("AGGR_") {
        Some(RoleKind::Aggregated)
    } else {
        None
    }
}

impl SimConfig {
    /// Parses and validates the `sim:` section given as JSON.
    pub fn from_json_value(v: &serde_json::Value) -> Result<SimConfig, SimConfigError> {
        let config: SimConfig = serde_path_to_error::deserialize(v).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." || inner.is_empty() {
                "sim".to_string()
            } else {
                format!("sim.{inner}")
            };
            SimConfigError::at(path, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a `sim-config.json` file written by the plan.
    pub fn from_json_file(path: &Path) -> Result<SimConfig, SimConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimConfigError::at("sim", format!("cannot read {file}: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SimConfigError::at("sim", format!("{file} is not valid JSON: {e}")))?;
        Self::from_json_value(&value)
    }

    /// The faults configured for `role` (none when the role has no entry).
    pub fn faults_for(&self, role: Option<&str>) -> FaultConfig {
        role.and_then(|r| self.faults.get(r))
            .cloned()
            .unwrap_or_default()
    }

    fn validate(&self) -> Result<(), SimConfigError> {
        const MAX_LATENCY_PARAM: f64 = 3_600_000.0;
        let l = &self.latency;
        let non_negative = [
            ("load_delay_ms", l.load_delay_ms),
            ("step_base_ms", l.step_base_ms),
            ("step_per_gen_request_us", l.step_per_gen_request_us),
            ("step_per_ctx_token_us", l.step_per_ctx_token_us),
            ("step_per_draft_token_us", l.step_per_draft_token_us),
            ("kv_transfer_base_ms", l.kv_transfer_base_ms),
            ("kv_transfer_per_token_us", l.kv_transfer_per_token_us),
            ("req_queue_max_wait_ms", l.req_queue_max_wait_ms),
        ];
        for (key, value) in non_negative {
            // Capped so every latency the model derives stays a representable duration.
            if !(0.0..=MAX_LATENCY_PARAM).contains(&value) {
                return Err(SimConfigError::at(
                    format!("sim.latency.{key}"),
                    format!("expected a number from 0 to {MAX_LATENCY_PARAM}, got {value}"),
                ));
            }
        }
        if !(l.req_queue_poll_ms > 0.0 && l.req_queue_poll_ms <= MAX_LATENCY_PARAM) {
            return Err(SimConfigError::at(
                "sim.latency.req_queue_poll_ms",
                format!("expected a finite number > 0, got {}", l.req_queue_poll_ms),
            ));
        }
        if !(l.spec_acceptance_rate.is_finite() && (0.0..=1.0).contains(&l.spec_acceptance_rate)) {
            return Err(SimConfigError::at(
                "sim.latency.spec_acceptance_rate",
                format!(
                    "expected a probability in [0, 1], got {}",
                    l.spec_acceptance_rate
                ),
            ));
        }
        if !(l.jitter.is_finite() && (0.0..1.0).contains(&l.jitter)) {
            return Err(SimConfigError::at(
                "sim.latency.jitter",
                format!("expected a fraction in [0, 1), got {}", l.jitter),
            ));
        }
        for (role, faults) in &self.faults {
            let path = format!("sim.faults.{role}");
            let Some(kind) = role_kind(role) else {
                return Err(SimConfigError::at(
                    path,
                    "unknown role: expected CTX_<i>, GEN_<i>, AGGR_<i> or DISAGG_SERVER",
                ));
            };
            let positive = [
                ("exit_after_requests", faults.exit_after_requests),
                ("stall_after_tokens", faults.stall_after_tokens),
                ("http_500_every", faults.http_500_every),
                ("panic_after_requests", faults.panic_after_requests),
            ];
            if let Some(n) = faults.spawn_descendants
                && !(1..=MAX_DESCENDANTS).contains(&n)
            {
                return Err(SimConfigError::at(
                    format!("{path}.spawn_descendants"),
                    format!("expected an integer in 1..={MAX_DESCENDANTS}, got {n}"),
                ));
            }
            for (key, value) in positive {
                if value == Some(0) {
                    return Err(SimConfigError::at(
                        format!("{path}.{key}"),
                        "expected an integer >= 1, got 0",
                    ));
                }
            }
            if kind == RoleKind::Router && faults.stall_after_tokens.is_some() {
                return Err(SimConfigError::at(
                    format!("{path}.stall_after_tokens"),
                    "not supported for the router (it does not count tokens); put it on a GEN_<i> role",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_section_gives_defaults() {
        let c = SimConfig::from_json_value(&json!({})).unwrap();
        assert_eq!(c, SimConfig::default());
        assert_eq!(c.latency.step_base_ms, 4.0);
    }

    #[test]
    fn full_section_parses() {
        let c = SimConfig::from_json_value(&json!({
            "latency": {"step_base_ms": 2, "jitter": 0.1, "seed": 7},
            "faults": {"GEN_1": {"http_500_every": 3, "never_ready": true},
                       "DISAGG_SERVER": {"exit_at_start": 3}}
        }))
        .unwrap();
        assert_eq!(c.latency.step_base_ms, 2.0);
        assert_eq!(c.faults_for(Some("GEN_1")).http_500_every, Some(3));
        assert!(c.faults_for(Some("GEN_1")).never_ready);
        assert_eq!(c.faults_for(Some("GEN_0")), FaultConfig::default());
        assert_eq!(c.faults_for(None), FaultConfig::default());
    }

    #[test]
    fn typo_names_the_key_path() {
        let e = SimConfig::from_json_value(&json!({"latency": {"step_bas_ms": 2}})).unwrap_err();
        assert_eq!(e.path, "sim.latency.step_bas_ms");
        assert!(e.message.contains("unknown field `step_bas_ms`"), "{e}");
        assert!(
            e.message.contains("step_base_ms"),
            "the message lists valid keys: {e}"
        );
        let e = SimConfig::from_json_value(&json!({"faults": {"GEN_0": {"stall_after": 1}}}))
            .unwrap_err();
        assert_eq!(e.path, "sim.faults.GEN_0.stall_after");
        let e = SimConfig::from_json_value(&json!({"latncy": {}})).unwrap_err();
        assert_eq!(e.path, "sim.latncy");
    }

    #[test]
    fn wrong_types_and_values_are_rejected() {
        let e =
            SimConfig::from_json_value(&json!({"latency": {"step_base_ms": "fast"}})).unwrap_err();
        assert_eq!(e.path, "sim.latency.step_base_ms");
        let e = SimConfig::from_json_value(&json!({"latency": {"jitter": 1.5}})).unwrap_err();
        assert_eq!(e.path, "sim.latency.jitter");
        let e = SimConfig::from_json_value(&json!({"latency": {"step_base_ms": -1}})).unwrap_err();
        assert_eq!(e.path, "sim.latency.step_base_ms");
        let e = SimConfig::from_json_value(&json!({"latency": {"spec_acceptance_rate": 1.2}}))
            .unwrap_err();
        assert_eq!(e.path, "sim.latency.spec_acceptance_rate");
        let e = SimConfig::from_json_value(&json!({"latency": {"step_per_draft_token_us": -3}}))
            .unwrap_err();
        assert_eq!(e.path, "sim.latency.step_per_draft_token_us");
        let e = SimConfig::from_json_value(&json!({"faults": {"GEN_0": {"exit_at_start": 300}}}))
            .unwrap_err();
        assert_eq!(e.path, "sim.faults.GEN_0.exit_at_start");
        let e = SimConfig::from_json_value(&json!({"faults": {"GEN_0": {"http_500_every": 0}}}))
            .unwrap_err();
        assert_eq!(e.path, "sim.faults.GEN_0.http_500_every");
        let e = SimConfig::from_json_value(&json!({"faults": {"GEN0": {}}})).unwrap_err();
        assert_eq!(e.path, "sim.faults.GEN0");
        let e = SimConfig::from_json_value(
            &json!({"faults": {"DISAGG_SERVER": {"stall_after_tokens": 4}}}),
        )
        .unwrap_err();
        assert_eq!(e.path, "sim.faults.DISAGG_SERVER.stall_after_tokens");
        assert!(
            e.to_string()
                .starts_with("sim.faults.DISAGG_SERVER.stall_after_tokens: ")
        );
    }

    #[test]
    fn role_kinds() {
        assert_eq!(role_kind("CTX_0"), Some(RoleKind::Context));
        assert_eq!(role_kind("GEN_12"), Some(RoleKind::Generation));
        assert_eq!(role_kind("AGGR_0"), Some(RoleKind::Aggregated));
        assert_eq!(role_kind("DISAGG_SERVER"), Some(RoleKind::Router));
        assert_eq!(role_kind("GEN_"), None);
        assert_eq!(role_kind("BENCHMARK"), None);
    }
}
