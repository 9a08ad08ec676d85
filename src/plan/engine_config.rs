//! The engine config a worker reads (`extra-llm-api-config.<ctx|gen>.<name>.yml`): the YAML
//! worker block passed through in order, the shared auth key first, harness-only keys removed,
//! model-relative paths joined as upstream joins them.

use std::path::Path;

use crate::config::{HARNESS_ONLY_WORKER_KEYS, WorkerSection};
use crate::util::yaml::{KeyOrder, Mapping, Node, Value, to_yaml_string};

/// Builds the engine config mapping for one worker kind (or aggregated server).
///
/// `auth_key` is written first when given (disaggregated workers; aggregated servers have none).
/// `models_root` joins `speculative_config.speculative_model`; `repo_root` (upstream's
/// `LLM_ROOT`) joins a relative `moe_config.load_balancer` path. Each join that cannot be made
/// (root unknown) is reported in `notes`.
pub fn engine_config(
    worker: &WorkerSection,
    auth_key: Option<&str>,
    models_root: Option<&Path>,
    repo_root: Option<&Path>,
    notes: &mut Vec<String>,
) -> Mapping {
    let mut out = Mapping::default();
    if let Some(auth_key) = auth_key {
        out.insert(
            "internal_request_auth_key",
            Node::synthetic(Value::Str(auth_key.to_string())),
        );
    }
    for (key, node) in &worker.options.entries {
        if HARNESS_ONLY_WORKER_KEYS.contains(&key.name.as_str()) {
            continue;
        }
        out.insert(&key.name, node.clone());
    }
    join_nested(
        &mut out,
        "speculative_config",
        "speculative_model",
        models_root,
        "LLM_MODELS_ROOT",
        notes,
    );
    join_nested(
        &mut out,
        "moe_config",
        "load_balancer",
        repo_root,
        "LLM_ROOT",
        notes,
    );
    out
}

fn join_nested(
    map: &mut Mapping,
    outer: &str,
    inner: &str,
    root: Option<&Path>,
    root_name: &str,
    notes: &mut Vec<String>,
) {
    let Some(Node {
        value: Value::Map(outer_map),
        ..
    }) = map
        .entries
        .iter_mut()
        .find(|(k, _)| k.name == outer)
        .map(|(_, v)| v)
    else {
        return;
    };
    let Some(node) = outer_map
        .entries
        .iter_mut()
        .find(|(k, _)| k.name == inner)
        .map(|(_, v)| v)
    else {
        return;
    };
    let Value::Str(rel) = &node.value else { return };
    if rel.is_empty() || Path::new(rel).is_absolute() {
        return;
    }
    match root {
        Some(root) => node.value = Value::Str(root.join(rel).display().to_string()),
        None => notes.push(format!(
            "{outer}.{inner} {rel:?} is relative and {root_name} is not set; passed unchanged"
        )),
    }
}

/// The engine config as YAML text (document order, PyYAML layout).
pub fn engine_config_text(map: &Mapping) -> String {
    to_yaml_string(
        &Node::synthetic(Value::Map(map.clone())),
        KeyOrder::Insertion,
    )
}
