//! Server fields of a record (upstream-perf-sanity.md §2.1 defaults, §6.2 names), computed from
//! a worker's engine options as written in `worker_config.{ctx,gen}` plus the keys upstream
//! injects (`name`, `model_name`, `gpus_per_node`; YAML keys win), and the `ctx_`/`gen_` infix.
//!
//! Values keep the YAML's type except where the DB type demands otherwise: a YAML integer in a
//! `d_` field becomes a float (upstream's gotcha 4), an integral float in an `l_` field becomes an
//! integer. Anything else of the wrong type is kept as written and noted; the type check then
//! refuses the upload with the field's name instead of sending bad data.

use crate::config::WorkerSection;
use crate::config::env_string::{EnvList, get};
use crate::util::yaml::{Mapping, Node, Value};

use super::pyjson::py_float_repr;
use super::value::{FieldValue, Record};

/// What upstream injects into a disagg worker block before its own keys.
#[derive(Debug, Clone)]
pub struct WorkerDefaults<'a> {
    /// `<mode>-<stem>`.
    pub name: &'a str,
    /// `metadata.model_name`.
    pub model_name: &'a str,
    /// `hardware.gpus_per_node`.
    pub gpus_per_node: u64,
}

/// Collects fields and notes about values that needed attention.
struct Builder<'a> {
    options: &'a Mapping,
    role: &'a str,
    record: Record,
    notes: &'a mut Vec<String>,
}

fn raw(node: &Node) -> Option<FieldValue> {
    Some(match &node.value {
        Value::Null => FieldValue::Null,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Int(i) => FieldValue::Int(*i),
        Value::Float(f) => FieldValue::Float(*f),
        Value::Str(s) => FieldValue::Str(s.clone()),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// Python `str()` of a scalar list element.
fn py_str(node: &Node) -> String {
    match &node.value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => py_float_repr(*f),
        Value::Str(s) => s.clone(),
        Value::Seq(_) => "[…]".to_string(),
        Value::Map(_) => "{…}".to_string(),
    }
}

/// A sub-mapping; absent or null count as `{}`.
fn sub<'m>(options: &'m Mapping, key: &str) -> Option<&'m Mapping> {
    options.get(key).and_then(Node::as_map)
}

impl Builder<'_> {
    fn note(&mut self, key: &str, message: String) {
        self.notes
            .push(format!("worker_config.{}.{key}: {message}", self.role));
    }

    /// A value in the DB type of `field` (by its prefix), noting anything it cannot convert.
    fn typed(&mut self, field: &str, yaml_key: &str, node: &Node) -> FieldValue {
        let Some(value) = raw(node) else {
            self.note(
                yaml_key,
                format!(
                    "{} is not a scalar; recorded as null for {field}",
                    node.value.type_name()
                ),
            );
            return FieldValue::Null;
        };
        let converted = match (&field[..2], value) {
            ("d_", FieldValue::Int(i)) => FieldValue::Float(i as f64),
            ("l_", FieldValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                FieldValue::Int(f as i64)
            }
            (_, v) => v,
        };
        let ok = matches!(
            (&field[..2], &converted),
            ("d_", FieldValue::Float(_))
                | ("l_", FieldValue::Int(_) | FieldValue::Bool(_))
                | ("s_", FieldValue::Str(_))
                | ("b_", FieldValue::Bool(_))
        );
        if !ok {
            self.note(
                yaml_key,
                format!(
                    "{} for {field} is {}; kept as written (the upload type check will refuse it)",
                    node.value.type_name(),
                    converted.type_name()
                ),
            );
        }
        converted
    }

    /// Sets `field` from `map[key]`, or `default` when absent or null.
    fn from(
        &mut self,
        field: &str,
        map: Option<&Mapping>,
        path: &str,
        key: &str,
        default: FieldValue,
    ) {
        let value = match map.and_then(|m| m.get(key)).filter(|n| !n.is_null()) {
            Some(node) => {
                let yaml_key = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                self.typed(field, &yaml_key, node)
            }
            None => default,
        };
        self.record.set(field, value);
    }

    fn top(&mut self, field: &str, key: &str, default: FieldValue) {
        let options = self.options;
        self.from(field, Some(options), "", key, default);
    }
}

fn joined_list(node: Option<&Node>, int_as_list: bool) -> Result<String, String> {
    match node.map(|n| &n.value) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::Seq(items)) => Ok(items.iter().map(py_str).collect::<Vec<_>>().join(",")),
        Some(Value::Int(i)) if int_as_list => Ok(i.to_string()),
        Some(other) => Err(format!("expected a list, found {}", other.type_name())),
    }
}

/// `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS` in a role's env is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS={value:?} is not a number")]
pub struct ForceAcceptedError {
    /// The value.
    pub value: String,
}

/// Upstream's `l_force_num_accepted_tokens`: the integer part of
/// `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS` in the role's env (0 when unset).
pub fn force_num_accepted_tokens(env: &EnvList) -> Result<i64, ForceAcceptedError> {
    match get(env, "TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS") {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i64)
            .ok_or_else(|| ForceAcceptedError {
                value: v.to_string(),
            }),
    }
}

/// The server fields of one worker kind, un-infixed (`s_server_name`, `l_tp`, …), in upstream's
/// order. `env_string` is the role's env as one string (`worker_env_var` + role extra).
pub fn server_fields(
    worker: &WorkerSection,
    role: &str,
    defaults: &WorkerDefaults<'_>,
    env_string: &str,
    env: &EnvList,
    notes: &mut Vec<String>,
) -> Record {
    let o = &worker.options;
    let mut b = Builder {
        options: o,
        role,
        record: Record::new(),
        notes,
    };

    // Injected keys, overridable by the block itself.
    let name = o
        .get("name")
        .and_then(Node::as_str)
        .unwrap_or(defaults.name)
        .to_string();
    let model_name = o
        .get("model_name")
        .and_then(Node::as_str)
        .unwrap_or(defaults.model_name)
        .to_lowercase();
    let tp = worker.tp as i64;
    let pp = worker.pp as i64;
    let cp = worker.cp as i64;
    let ep = worker.ep as i64;
    b.record.set("s_server_name", name);
    b.record.set("s_model_name", model_name);
    b.top("l_gpus", "gpus", FieldValue::Int(tp * cp * pp));
    let gpus = b.record.get("l_gpus").cloned();
    b.record.set("l_tp", tp);
    b.record.set("l_ep", ep);
    b.record.set("l_pp", pp);
    b.record.set("l_cp", cp);
    // `gpus_per_node` (hardware, unless the block sets its own), `or gpus` when 0.
    let gpn = match o.get("gpus_per_node").filter(|n| !n.is_null()) {
        Some(node) => b.typed("l_gpus_per_node", "gpus_per_node", node),
        None => FieldValue::Int(defaults.gpus_per_node as i64),
    };
    let gpn = match (&gpn, gpus) {
        (FieldValue::Int(0), Some(g)) => g,
        _ => gpn,
    };
    b.record.set("l_gpus_per_node", gpn);
    b.top("l_max_num_tokens", "max_num_tokens", 2048i64.into());
    b.top("l_max_batch_size", "max_batch_size", 512i64.into());
    b.top("l_max_seq_len", "max_seq_len", 0i64.into());
    b.top(
        "b_disable_overlap_scheduler",
        "disable_overlap_scheduler",
        false.into(),
    );
    b.top(
        "l_num_postprocess_workers",
        "num_postprocess_workers",
        0i64.into(),
    );
    b.top("l_stream_interval", "stream_interval", 10i64.into());
    b.top("s_attn_backend", "attn_backend", "TRTLLM".into());
    b.top(
        "b_enable_chunked_prefill",
        "enable_chunked_prefill",
        false.into(),
    );
    b.top("b_enable_attention_dp", "enable_attention_dp", false.into());
    b.top("b_trust_remote_code", "trust_remote_code", false.into());
    b.top(
        "b_enable_lm_head_tp_in_adp",
        "enable_lm_head_tp_in_adp",
        false.into(),
    );
    b.record.set("s_serving_backend", worker.backend.clone());

    let adp = sub(o, "attention_dp_config");
    b.from(
        "b_attention_dp_balance",
        adp,
        "attention_dp_config",
        "enable_balance",
        false.into(),
    );
    b.from(
        "l_batching_wait_iters",
        adp,
        "attention_dp_config",
        "batching_wait_iters",
        0i64.into(),
    );
    b.from(
        "l_timeout_iters",
        adp,
        "attention_dp_config",
        "timeout_iters",
        60i64.into(),
    );

    let moe = sub(o, "moe_config");
    b.from("s_moe_backend", moe, "moe_config", "backend", "".into());
    b.from(
        "l_moe_max_num_tokens",
        moe,
        "moe_config",
        "max_num_tokens",
        0i64.into(),
    );
    b.from(
        "b_use_low_precision_moe_combine",
        moe,
        "moe_config",
        "use_low_precision_moe_combine",
        false.into(),
    );
    // load_balancer: an inline mapping, or a path string to an offline EPLB file (both 0).
    let lb = moe.and_then(|m| m.get("load_balancer"));
    let lb_map = lb.and_then(Node::as_map);
    if lb.and_then(Node::as_str).is_some() {
        b.record.set("l_load_balancer_num_slots", 0i64);
        b.record.set("l_load_balancer_layer_updates_per_iter", 0i64);
    } else {
        b.from(
            "l_load_balancer_num_slots",
            lb_map,
            "moe_config.load_balancer",
            "num_slots",
            0i64.into(),
        );
        b.from(
            "l_load_balancer_layer_updates_per_iter",
            lb_map,
            "moe_config.load_balancer",
            "layer_updates_per_iter",
            0i64.into(),
        );
    }

    // cuda_graph_config: present and non-empty ⇒ CUDA graphs on.
    let cg = o.get("cuda_graph_config");
    let cg_on = match cg.map(|n| &n.value) {
        None | Some(Value::Null) => false,
        Some(Value::Map(m)) => !m.is_empty(),
        Some(Value::Seq(s)) => !s.is_empty(),
        Some(Value::Str(s)) => !s.is_empty(),
        Some(Value::Bool(v)) => *v,
        Some(Value::Int(i)) => *i != 0,
        Some(Value::Float(f)) => *f != 0.0,
    };
    b.record.set("b_enable_cuda_graph", cg_on);
    let cg_map = if cg_on {
        cg.and_then(Node::as_map)
    } else {
        None
    };
    b.from(
        "b_enable_padding",
        cg_map,
        "cuda_graph_config",
        "enable_padding",
        true.into(),
    );
    b.from(
        "l_cuda_graph_max_batch_size",
        cg_map,
        "cuda_graph_config",
        "max_batch_size",
        0i64.into(),
    );
    let sizes = match joined_list(cg_map.and_then(|m| m.get("batch_sizes")), false) {
        Ok(s) => s,
        Err(e) => {
            b.note(
                "cuda_graph_config.batch_sizes",
                format!("{e}; recorded as \"\""),
            );
            String::new()
        }
    };
    b.record.set("s_cuda_graph_batch_sizes", sizes);

    let kv = sub(o, "kv_cache_config");
    b.from(
        "s_kv_cache_dtype",
        kv,
        "kv_cache_config",
        "dtype",
        "fp8".into(),
    );
    b.from(
        "b_enable_block_reuse",
        kv,
        "kv_cache_config",
        "enable_block_reuse",
        false.into(),
    );
    b.from(
        "d_free_gpu_memory_fraction",
        kv,
        "kv_cache_config",
        "free_gpu_memory_fraction",
        0.8f64.into(),
    );

    let ct = sub(o, "cache_transceiver_config");
    b.from(
        "s_cache_transceiver_backend",
        ct,
        "cache_transceiver_config",
        "backend",
        "".into(),
    );
    b.from(
        "l_cache_transceiver_max_tokens_in_buffer",
        ct,
        "cache_transceiver_config",
        "max_tokens_in_buffer",
        0i64.into(),
    );

    let spec = sub(o, "speculative_config");
    b.from(
        "s_spec_decoding_type",
        spec,
        "speculative_config",
        "decoding_type",
        "".into(),
    );
    // max_draft_len, falling back to the legacy num_nextn_predict_layers; both fields get it.
    let draft_key = if spec.and_then(|s| s.get("max_draft_len")).is_some() {
        "max_draft_len"
    } else {
        "num_nextn_predict_layers"
    };
    b.from(
        "l_num_nextn_predict_layers",
        spec,
        "speculative_config",
        draft_key,
        0i64.into(),
    );
    let draft = b
        .record
        .get("l_num_nextn_predict_layers")
        .cloned()
        .unwrap_or(FieldValue::Int(0));
    // Upstream treats any type other than a list or an integer as [].
    let layers =
        joined_list(spec.and_then(|s| s.get("eagle3_layers_to_capture")), true).unwrap_or_default();
    b.record.set("s_eagle3_layers_to_capture", layers);
    b.record.set("l_max_draft_len", draft);
    let force = match force_num_accepted_tokens(env) {
        Ok(v) => v,
        Err(e) => {
            b.notes.push(format!(
                "{role} worker env: {e}; l_force_num_accepted_tokens is 0"
            ));
            0
        }
    };
    b.record.set("l_force_num_accepted_tokens", force);
    b.from(
        "s_speculative_model_dir",
        spec,
        "speculative_config",
        "speculative_model",
        "".into(),
    );
    b.from(
        "b_eagle3_one_model",
        spec,
        "speculative_config",
        "eagle3_one_model",
        false.into(),
    );
    b.record.set("s_server_log_link", "");
    b.record.set("s_server_env_var", env_string.to_string());
    b.record
}

/// Upstream's infix: keep the 2-character type prefix, insert `<role>_`
/// (`s_server_name` → `s_ctx_server_name`, `l_tp` → `l_gen_tp`).
pub fn infix(key: &str, role: &str) -> String {
    let (prefix, rest) = key.split_at(2.min(key.len()));
    format!("{prefix}{role}_{rest}")
}

/// `fields` with every key infixed.
pub fn infixed(fields: &Record, role: &str) -> Record {
    let mut out = Record::new();
    for (k, v) in &fields.fields {
        out.set(infix(k, role), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infix_rule() {
        assert_eq!(infix("s_server_name", "ctx"), "s_ctx_server_name");
        assert_eq!(infix("l_tp", "gen"), "l_gen_tp");
        assert_eq!(
            infix("d_free_gpu_memory_fraction", "ctx"),
            "d_ctx_free_gpu_memory_fraction"
        );
        // gotcha 5: the infixed key is s_gen_cache_…, not gen_s_cache_…
        assert_eq!(
            infix("s_cache_transceiver_backend", "gen"),
            "s_gen_cache_transceiver_backend"
        );
    }

    #[test]
    fn force_num_accepted_tokens_truncates() {
        let env = vec![(
            "TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS".to_string(),
            "2.7".to_string(),
        )];
        assert_eq!(force_num_accepted_tokens(&env), Ok(2));
        assert_eq!(force_num_accepted_tokens(&Vec::new()), Ok(0));
        let bad = vec![(
            "TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS".to_string(),
            "x".to_string(),
        )];
        assert!(force_num_accepted_tokens(&bad).is_err());
    }
}
