//! Startup telemetry fields (upstream-perf-sanity.md §5.5, §6.2): informational fields built
//! from the observations a runner saved as `<tod>/startup_metrics.<s>.json` (a JSON list of
//! `{role, server_name, metrics: {...}, checkpoint_io_policies: [...]}` or `{role, server_name,
//! error}`). Without that file a disagg record still says how many servers were expected and that
//! none was observed, exactly as upstream's record does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::value::Record;

/// Why a startup telemetry file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The file exists but cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The file is JSON but not a list.
    #[error("{}: expected a JSON list", path.display())]
    NotAList {
        /// The file.
        path: PathBuf,
    },
}

/// Reads `<output_dir>/startup_metrics.<s>.json`; missing file = no observations. A file that
/// is not a JSON list is reported (`Err`) rather than silently ignored.
pub fn read_observations(output_dir: &Path, server_index: u32) -> Result<Vec<Value>, StartupError> {
    let path = output_dir.join(format!("startup_metrics.{server_index}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StartupError::Read { path, source }),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(StartupError::NotAList { path }),
        Err(source) => Err(StartupError::Parse { path, source }),
    }
}

fn is_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// The startup fields for `role` (`None` = aggregated, no prefix) with `expected` servers.
/// Empty when nothing was expected and nothing observed.
pub fn startup_fields(observations: &[Value], role: Option<&str>, expected: u64) -> Record {
    let selected: Vec<&Value> = observations
        .iter()
        .filter(|o| role.is_none() || o.get("role").and_then(Value::as_str) == role)
        .collect();
    let mut r = Record::new();
    if expected == 0 && selected.is_empty() {
        return r;
    }
    let p = role.map(|r| format!("{r}_")).unwrap_or_default();
    let has_error = |o: &Value| {
        o.get("error")
            .is_some_and(|e| !e.is_null() && e != "" && e != &Value::Bool(false))
    };
    let failed = selected.iter().filter(|o| has_error(o)).count();
    r.set(
        format!("l_{p}startup_metrics_expected_server_count"),
        expected,
    );
    r.set(
        format!("l_{p}startup_metrics_discovered_server_count"),
        selected.len() as u64,
    );
    r.set(
        format!("l_{p}startup_metrics_failed_server_count"),
        failed as u64,
    );
    r.set(
        format!("b_{p}startup_metrics_collection_complete"),
        selected.len() as u64 == expected && failed == 0,
    );
    let successful: Vec<&Value> = selected.iter().copied().filter(|o| !has_error(o)).collect();
    let names: BTreeSet<String> = successful
        .iter()
        .filter_map(|o| o.get("metrics").and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    for name in names {
        let max = successful
            .iter()
            .filter_map(|o| o.get("metrics").and_then(|m| m.get(&name)))
            .filter_map(is_number)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            });
        if let Some(max) = max {
            r.set(format!("d_{p}{name}"), max);
        }
    }
    let policies: Vec<&Value> = successful
        .iter()
        .filter_map(|o| o.get("checkpoint_io_policies").and_then(Value::as_array))
        .flatten()
        .collect();
    for field in ["requested", "selected", "effective"] {
        let values: BTreeSet<String> = policies
            .iter()
            .filter_map(|p| p.get(field))
            .filter_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Null | Value::String(_) | Value::Bool(false) => None,
                other => Some(other.to_string()),
            })
            .collect();
        if !values.is_empty() {
            r.set(
                format!("s_{p}checkpoint_io_policy_{field}"),
                values.into_iter().collect::<Vec<_>>().join(","),
            );
        }
    }
    let activated: Vec<bool> = policies
        .iter()
        .filter_map(|p| p.get("activated").and_then(Value::as_bool))
        .collect();
    if !activated.is_empty() {
        r.set(
            format!("l_{p}checkpoint_io_policy_status_count"),
            activated.len() as u64,
        );
        r.set(
            format!("l_{p}checkpoint_io_policy_activated_status_count"),
            activated.iter().filter(|a| **a).count() as u64,
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::value::FieldValue;

    #[test]
    fn counts_and_max() {
        let obs: Vec<Value> = serde_json::from_str(
            r#"[{"role": "ctx", "server_name": "CTX_0", "metrics": {"total_model_loading_seconds": 10}, "checkpoint_io_policies": [{"requested": "auto", "selected": "mmap", "activated": true, "effective": "mmap"}]},
                {"role": "ctx", "server_name": "CTX_1", "metrics": {"total_model_loading_seconds": 12.5}, "checkpoint_io_policies": []},
                {"role": "gen", "server_name": "GEN_0", "error": "OSError: boom"}]"#,
        )
        .unwrap();
        let ctx = startup_fields(&obs, Some("ctx"), 2);
        assert_eq!(
            ctx.get("d_ctx_total_model_loading_seconds"),
            Some(&FieldValue::Float(12.5))
        );
        assert_eq!(
            ctx.bool("b_ctx_startup_metrics_collection_complete"),
            Some(true)
        );
        assert_eq!(ctx.str("s_ctx_checkpoint_io_policy_selected"), Some("mmap"));
        assert_eq!(
            ctx.get("l_ctx_checkpoint_io_policy_activated_status_count"),
            Some(&FieldValue::Int(1))
        );
        let gen_fields = startup_fields(&obs, Some("gen"), 1);
        assert_eq!(
            gen_fields.get("l_gen_startup_metrics_failed_server_count"),
            Some(&FieldValue::Int(1))
        );
        assert_eq!(
            gen_fields.bool("b_gen_startup_metrics_collection_complete"),
            Some(false)
        );
        assert!(startup_fields(&[], Some("ctx"), 0).fields.is_empty());
        let none = startup_fields(&[], Some("gen"), 1);
        assert_eq!(
            none.get("l_gen_startup_metrics_discovered_server_count"),
            Some(&FieldValue::Int(0))
        );
        assert_eq!(none.fields.len(), 4);
    }
}
