//! Startup telemetry (upstream-perf-sanity.md §5.5): once the servers are ready, ask every worker
//! for `GET /server_info` and scan its log for checkpoint I/O policy lines, and save the
//! observations as `<tod>/startup_metrics.<s>.json` for the records. Informational only: an
//! unreachable worker becomes an `error` entry, never a failed trial.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::steps::read_address;
use crate::plan::{Plan, Role};

/// Per-request timeout (upstream: 30 s).
const SERVER_INFO_TIMEOUT: Duration = Duration::from_secs(30);

/// Loader fields upstream records (numbers only).
const LOADER_FIELDS: [&str; 8] = [
    "total_model_loading_seconds",
    "checkpoint_preparation_seconds",
    "weight_population_seconds",
    "checkpoint_finalization_seconds",
    "draft_checkpoint_preparation_seconds",
    "draft_weight_population_seconds",
    "draft_checkpoint_finalization_seconds",
    "post_load_processing_seconds",
];

/// The checkpoint phases summed into `checkpoint_pipeline_seconds` (when all are present).
const PIPELINE: [&str; 3] = [
    "checkpoint_preparation_seconds",
    "weight_population_seconds",
    "checkpoint_finalization_seconds",
];

/// The draft phases summed into `draft_checkpoint_pipeline_seconds`.
const DRAFT_PIPELINE: [&str; 3] = [
    "draft_checkpoint_preparation_seconds",
    "draft_weight_population_seconds",
    "draft_checkpoint_finalization_seconds",
];

/// Numeric startup metrics from a `/server_info` body.
pub fn metrics_from_server_info(body: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let startup = body.get("startup_metrics");
    for (section, prefix) in [("model_loader", ""), ("draft_model_loader", "draft_model_")] {
        let Some(loader) = startup
            .and_then(|s| s.get(section))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for field in LOADER_FIELDS {
            if let Some(v) = loader.get(field).filter(|v| v.is_number()) {
                out.insert(format!("{prefix}{field}"), v.clone());
            }
        }
    }
    for (phases, total_key) in [
        (PIPELINE, "checkpoint_pipeline_seconds"),
        (DRAFT_PIPELINE, "draft_checkpoint_pipeline_seconds"),
    ] {
        let total: Option<f64> = phases
            .iter()
            .map(|n| out.get(*n).and_then(Value::as_f64))
            .sum();
        if let Some(t) = total {
            out.insert(total_key.into(), json!(t));
        }
    }
    out
}

fn policy_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"Checkpoint I/O policy: requested=(?P<requested>[^,]+), selected=(?P<selected>[^,]+), activated=(?P<activated>True|False), effective=(?P<effective>[^,]+), fallback_reason=(?P<fallback_reason>.*)\.",
        )
        .expect("static regex")
    })
}

/// Every checkpoint I/O policy line of a log.
pub fn policies_from_log(text: &str) -> Vec<Value> {
    policy_re()
        .captures_iter(text)
        .map(|c| {
            json!({
                "requested": &c["requested"],
                "selected": &c["selected"],
                "activated": &c["activated"] == "True",
                "effective": &c["effective"],
                "fallback_reason": &c["fallback_reason"],
            })
        })
        .collect()
}

fn observe(http: &reqwest::blocking::Client, role: Role, address: &Path, log: &Path) -> Value {
    let kind = match role {
        Role::Ctx(_) => "ctx",
        Role::Aggr(_) => "aggr",
        _ => "gen",
    };
    let base = json!({"role": kind, "server_name": role.to_string()});
    let error = |e: String| {
        let mut v = base.clone();
        v["error"] = json!(e);
        v
    };
    let Some((host, port)) = read_address(address) else {
        return error(format!(
            "FileNotFoundError: no address in {}",
            address.display()
        ));
    };
    let body = match http
        .get(format!("http://{host}:{port}/server_info"))
        .header("Accept", "application/json")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json::<Value>())
    {
        Ok(b) if b.is_object() => b,
        Ok(_) => return error("ValueError: /server_info did not return a JSON object".into()),
        Err(e) => return error(format!("ConnectionError: {e}")),
    };
    let mut v = base;
    v["metrics"] = Value::Object(metrics_from_server_info(&body));
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    v["checkpoint_io_policies"] = Value::Array(policies_from_log(&text));
    v
}

/// Collects and writes `startup_metrics.<s>.json` (best effort; returns what it wrote).
pub fn record_startup_metrics(plan: &Plan) -> Vec<Value> {
    let Ok(http) = reqwest::blocking::Client::builder()
        .timeout(SERVER_INFO_TIMEOUT)
        .no_proxy()
        .build()
    else {
        return Vec::new();
    };
    let observations: Vec<Value> = plan
        .workers
        .iter()
        .map(|w| observe(&http, w.role, &w.address_file, &w.log_file))
        .collect();
    let path = plan
        .output_dir
        .join(format!("startup_metrics.{}.json", plan.server_index));
    let _ = crate::util::fs::write_atomic(
        &path,
        serde_json::to_string_pretty(&observations)
            .unwrap_or_default()
            .as_bytes(),
    );
    observations
}

/// Collects and writes `startup_metrics.<s>.json` of one aggregated server (best effort).
pub fn record_aggr_startup_metrics(server: &crate::plan::AggrServerPlan) -> Vec<Value> {
    let Ok(http) = reqwest::blocking::Client::builder()
        .timeout(SERVER_INFO_TIMEOUT)
        .no_proxy()
        .build()
    else {
        return Vec::new();
    };
    let p = &server.process;
    let observations = vec![observe(&http, p.role, &p.address_file, &p.log_file)];
    let _ = crate::plan::prepare::write_atomic(
        &server.startup_metrics,
        serde_json::to_string_pretty(&observations)
            .unwrap_or_default()
            .as_bytes(),
    );
    observations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_fields_and_policies() {
        let body = json!({"startup_metrics": {
            "model_loader": {"total_model_loading_seconds": 3.5, "checkpoint_preparation_seconds": 1,
                "weight_population_seconds": 2, "checkpoint_finalization_seconds": 0.5,
                "post_load_processing_seconds": true},
            "draft_model_loader": {"total_model_loading_seconds": 1.0}}});
        let m = metrics_from_server_info(&body);
        assert_eq!(m["total_model_loading_seconds"], json!(3.5));
        assert_eq!(m["checkpoint_pipeline_seconds"], json!(3.5));
        assert_eq!(m["draft_model_total_model_loading_seconds"], json!(1.0));
        assert!(
            !m.contains_key("post_load_processing_seconds"),
            "booleans are not numbers"
        );
        assert!(!m.contains_key("draft_checkpoint_pipeline_seconds"));
        let p = policies_from_log(
            "x\n[I] Checkpoint I/O policy: requested=auto, selected=mmap, activated=True, effective=mmap, fallback_reason=none.\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["activated"], json!(true));
        assert_eq!(p[0]["selected"], json!("mmap"));
    }
}
