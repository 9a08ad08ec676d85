//! Building upstream's disagg record (upstream-perf-sanity.md §6.2–6.3): one record per client
//! run, in upstream's field order — runtime fields, `ctx_`/`gen_` server fields, client fields,
//! `s_test_case_name`, metrics, startup fields, job info, `s_stage_name`, `s_test_list` — then
//! `_id`.
//!
//! Metric decisions: every one of the 16 base metrics becomes `d_<name>` as a float. A metric the
//! client legitimately does not report (upstream's "None", e.g. the NV SA client's user
//! throughput) is **omitted** from the record: upstream would send `null`, which the gateway's
//! type check rejects for the whole batch (gotcha 3). `d_al` appears only for spec-decoding runs
//! that reported it (gotcha 14); the device-step statistics only for gen_only runs.

use indexmap::IndexMap;

use crate::config::{BenchmarkMode, PerfConfig};
use crate::plan::toolchain::ClientKind;
use crate::plan::{ClientSpec, Plan};

use super::context::CiEnv;
use super::field;
use super::job_info::job_info;
use super::pyjson::assign_id;
use super::server_fields::{WorkerDefaults, infixed, server_fields};
use super::startup::startup_fields;
use super::value::Record;

/// Upstream's 16 base metrics, in parse order (`d_<name>` in the record).
pub use crate::measure::BASE_METRICS;

/// The spec-decoding metric (mean accepted length).
pub const SPEC_DECODING_METRIC: &str = "al";

/// The gen_only device-step statistics, in log-line order.
pub const GEN_ONLY_METRICS: [&str; 5] = [
    "mean_gen_worker_per_iter_device_step_time",
    "median_gen_worker_per_iter_device_step_time",
    "std_gen_worker_per_iter_device_step_time",
    "p75_gen_worker_per_iter_device_step_time",
    "p99_gen_worker_per_iter_device_step_time",
];

/// Upstream's runtime label of every disagg record.
pub const DISAGG_RUNTIME: &str = "multi_node_disagg_server";

/// One client run's parsed metrics, keyed by upstream's metric names (`seq_throughput`, …,
/// `al`, `mean_gen_worker_per_iter_device_step_time`, …). `None` is upstream's "None": known to
/// be absent (the SA client's user throughput).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientResult {
    /// The plan's client index `c`.
    pub client_index: u32,
    /// Metric name → value.
    pub metrics: IndexMap<String, Option<f64>>,
}

/// Whether any worker of the plan runs speculative decoding (upstream's `spec_decoding`, which
/// becomes `b_eos` and gates `d_al`).
pub fn spec_decoding(config: &PerfConfig) -> bool {
    config.ctx_worker.spec_decoding_type.is_some() || config.gen_worker.spec_decoding_type.is_some()
}

/// `e2e` or `gen_only` (gen_only_no_context is upstream's gen_only with zero context servers).
pub fn benchmark_mode_label(mode: BenchmarkMode) -> &'static str {
    match mode {
        BenchmarkMode::E2e => "e2e",
        BenchmarkMode::GenOnly | BenchmarkMode::GenOnlyNoContext => "gen_only",
    }
}

pub(super) fn metric_of(result: &ClientResult, name: &str, sa: bool) -> Option<Option<f64>> {
    match result.metrics.get(name) {
        Some(v) => Some(*v),
        // The SA client prints no user throughput: upstream records it as "None".
        None if sa && name == "user_throughput" && !result.metrics.is_empty() => Some(None),
        None => None,
    }
}

/// Upstream's pre-upload check failed (§5.4): its problems, in upstream's wording, shown as one
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join(" "))]
pub struct MetricsError {
    /// One sentence per problem (never empty).
    pub problems: Vec<String>,
}

/// Upstream's pre-upload failure check (§5.4), one message with every problem, in upstream's
/// wording. Results for client indices the plan does not have are problems too.
pub fn check_metrics(
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
) -> Result<(), MetricsError> {
    let s = plan.server_index;
    let sa = plan.client_kind == ClientKind::NvSa;
    let spec = spec_decoding(config);
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in clients {
        if !plan.clients.iter().any(|c| c.index == r.client_index) {
            problems.push(format!(
                "Server {s} Client {} is not a client of this plan ({} clients).",
                r.client_index,
                plan.clients.len()
            ));
        }
        if !seen.insert(r.client_index) {
            problems.push(format!(
                "Server {s} Client {} has two results.",
                r.client_index
            ));
        }
    }
    if clients.len() != plan.clients.len() {
        problems.push(format!(
            "Server {s}'s perf results number: {} is not equal to client number: {}.",
            clients.len(),
            plan.clients.len()
        ));
    }
    for r in clients {
        let c = r.client_index;
        let missing: Vec<&str> = BASE_METRICS
            .iter()
            .copied()
            .filter(|m| metric_of(r, m, sa).is_none())
            .collect();
        if !missing.is_empty() {
            let parsed: Vec<String> = r
                .metrics
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("'{k}': {}", super::pyjson::py_float_repr(*v)),
                    None => format!("'{k}': None"),
                })
                .collect();
            problems.push(format!(
                "Some metrics in Server {s} Client {c} are missing: [{}]. The parsed metrics is {{{}}}.",
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                parsed.join(", ")
            ));
        }
        // The NV SA client never prints the acceptance length, so upstream's check can only
        // fail there (3 upstream disagg/perf configs are SA + MTP); it applies to the standard
        // client only (the plan warns).
        if spec && !sa && !matches!(r.metrics.get(SPEC_DECODING_METRIC), Some(Some(_))) {
            problems.push(format!(
                "Speculative decoding test Server {s} Client {c} is missing 'Mean Avg Decoded Tokens per Iter' in benchmark output."
            ));
        }
        if plan.mode.is_gen_only() && !matches!(r.metrics.get(GEN_ONLY_METRICS[0]), Some(Some(_))) {
            problems.push(format!(
                "gen_only test Server {s} Client {c} is missing 'prev_device_step_time' in gen_server_*.log under {}.",
                plan.output_dir.display()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MetricsError { problems })
    }
}

/// What a record needs besides the plan, the config and the metrics.
#[derive(Debug, Clone)]
pub struct RecordInputs<'a> {
    /// `s_gpu_type`.
    pub gpu_type: &'a str,
    /// CI job variables and `stageName`.
    pub ci: &'a CiEnv,
    /// Startup observations (`startup_metrics.<s>.json`), possibly empty.
    pub startup: &'a [serde_json::Value],
}

/// Records of one trial, plus notes about values that needed attention.
#[derive(Debug, Clone)]
pub struct BuiltRecords {
    /// One record per client result, in client order, `_id` set.
    pub records: Vec<Record>,
    /// Test case name of each record's client (same order).
    pub client_indices: Vec<u32>,
    /// Anything worth telling the user (odd YAML values, unparsable globalVars, …).
    pub notes: Vec<String>,
}

fn env_join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn client_fields(plan: &Plan, config: &PerfConfig, client: &ClientSpec, spec: bool) -> Record {
    let mut r = Record::new();
    r.set("s_client_name", client.name.clone());
    r.set("l_concurrency", client.concurrency);
    r.set("l_iterations", client.iterations);
    r.set("l_isl", client.isl);
    r.set("l_osl", client.osl);
    r.set("d_random_range_ratio", plan.range_ratio);
    r.set(
        "s_dataset_file",
        config
            .benchmark
            .dataset_file
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_default(),
    );
    r.set("s_backend", "openai");
    r.set("b_use_chat_template", false);
    r.set("b_streaming", config.benchmark.streaming);
    r.set("b_trust_remote_code", true);
    r.set(
        "b_use_nv_sa_benchmark",
        plan.client_kind == ClientKind::NvSa,
    );
    // The NV SA client always sends an un-measured probe request first.
    r.set(
        "b_warmup",
        client.warmup || plan.client_kind == ClientKind::NvSa,
    );
    r.set("s_benchmark_client", "");
    r.set("b_eos", spec);
    r.set("s_client_log_link", "");
    r.set(
        "s_client_env_vars",
        config.environment.client_env_var.clone(),
    );
    r
}

/// Builds the records of a trial. Call [`check_metrics`] first: a base metric that is absent
/// (not `None`) is skipped here with a note.
pub fn build_records(
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
    inputs: &RecordInputs<'_>,
) -> BuiltRecords {
    let mut notes = Vec::new();
    let spec = spec_decoding(config);
    let sa = plan.client_kind == ClientKind::NvSa;
    let num_ctx = plan.topology.ctx.count;
    let num_gen = plan.topology.gen_workers.count;
    let defaults = WorkerDefaults {
        name: &plan.server_name,
        model_name: &config.metadata.model_name,
        gpus_per_node: config.hardware.gpus_per_node,
    };
    let env = &config.environment;
    let ctx = server_fields(
        &config.ctx_worker,
        "ctx",
        &defaults,
        &env_join(&[&env.worker_env_var, &env.ctx_worker_env_var]),
        &env.ctx_env,
        &mut notes,
    );
    let gen_fields = server_fields(
        &config.gen_worker,
        "gen",
        &defaults,
        &env_join(&[&env.worker_env_var, &env.gen_worker_env_var]),
        &env.gen_env,
        &mut notes,
    );
    let (job, job_notes) = job_info(inputs.ci);
    notes.extend(job_notes);

    let mut ordered: Vec<&ClientResult> = clients.iter().collect();
    ordered.sort_by_key(|r| r.client_index);
    let mut records = Vec::new();
    let mut client_indices = Vec::new();
    for result in ordered {
        let Some(client) = plan.clients.iter().find(|c| c.index == result.client_index) else {
            notes.push(format!(
                "client {} is not in the plan; its metrics were not recorded",
                result.client_index
            ));
            continue;
        };
        let mut r = Record::new();
        r.set(field::GPU_TYPE, inputs.gpu_type);
        r.set(field::RUNTIME, DISAGG_RUNTIME);
        r.set("s_benchmark_mode", benchmark_mode_label(plan.mode));
        r.set("s_server_env_var", env.server_env_var.clone());
        r.set("l_num_ctx_servers", num_ctx);
        r.set("l_num_gen_servers", num_gen);
        if num_ctx > 0 {
            r.extend(&infixed(&ctx, "ctx"));
        }
        if num_gen > 0 {
            r.extend(&infixed(&gen_fields, "gen"));
        }
        r.extend(&client_fields(plan, config, client, spec));
        r.set(field::TEST_CASE_NAME, client.test_case_name.clone());

        for name in BASE_METRICS {
            match metric_of(result, name, sa) {
                Some(Some(v)) => r.set(format!("d_{name}"), v),
                Some(None) => notes.push(format!(
                    "{}: {name} was not reported by the client; d_{name} is omitted from the \
                     record (upstream would send null, which the gateway refuses)",
                    client.test_case_name
                )),
                None => notes.push(format!(
                    "{}: {name} is missing; d_{name} is not recorded",
                    client.test_case_name
                )),
            }
        }
        if spec && let Some(Some(al)) = result.metrics.get(SPEC_DECODING_METRIC) {
            r.set("d_al", *al);
        }
        if plan.mode.is_gen_only() {
            for name in GEN_ONLY_METRICS {
                if let Some(Some(v)) = result.metrics.get(name) {
                    r.set(format!("d_{name}"), *v);
                }
            }
        }
        r.extend(&startup_fields(inputs.startup, Some("ctx"), num_ctx));
        r.extend(&startup_fields(inputs.startup, Some("gen"), num_gen));

        r.extend(&job);
        apply_client_check(&mut r, &result.metrics);
        r.set("s_stage_name", inputs.ci.stage_name.clone());
        r.set("s_test_list", plan.test_list_id.clone());
        assign_id(&mut r);
        records.push(r);
        client_indices.push(client.index);
    }
    BuiltRecords {
        records,
        client_indices,
        notes,
    }
}

/// The client check's findings on a record: a run whose client fell behind is not a valid
/// measurement (`b_is_valid: false`, so it never serves as a baseline), and merged reads are
/// said with their share (`d_merged_itl_share_pct`; tail ITL percentiles are not measured then).
pub fn apply_client_check(r: &mut Record, metrics: &IndexMap<String, Option<f64>>) {
    use crate::measure::{CLIENT_FELL_BEHIND, MERGED_ITL_SHARE_PCT};
    if matches!(metrics.get(CLIENT_FELL_BEHIND), Some(Some(_))) {
        r.set(field::IS_VALID, false);
        r.set("b_client_fell_behind", true);
    }
    if let Some(Some(share)) = metrics.get(MERGED_ITL_SHARE_PCT) {
        r.set("d_merged_itl_share_pct", *share);
    }
}

#[cfg(test)]
mod client_check_tests {
    use super::*;

    #[test]
    fn a_flagged_client_run_makes_its_record_invalid() {
        let mut r = Record::new();
        r.set(field::IS_VALID, true);
        let mut metrics: IndexMap<String, Option<f64>> = IndexMap::new();
        metrics.insert(crate::measure::MERGED_ITL_SHARE_PCT.to_string(), Some(0.8));
        metrics.insert(crate::measure::CLIENT_FELL_BEHIND.to_string(), Some(1.0));
        apply_client_check(&mut r, &metrics);
        assert_eq!(r.bool(field::IS_VALID), Some(false));
        assert_eq!(r.bool("b_client_fell_behind"), Some(true));

        let mut clean = Record::new();
        clean.set(field::IS_VALID, true);
        apply_client_check(&mut clean, &IndexMap::new());
        assert_eq!(clean.bool(field::IS_VALID), Some(true));
        assert_eq!(clean.bool("b_client_fell_behind"), None);
    }
}
