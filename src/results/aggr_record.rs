//! Upstream's aggregated record (upstream-perf-sanity.md §6.2): one record per client run, in
//! upstream's field order — `s_gpu_type`, `s_runtime` (`aggr_server`, or
//! `multi_node_aggr_server` whenever the server's `gpus` differ from `gpus_per_node`), the
//! server's fields (no infix), client fields, `s_test_case_name` (`<server>-<client>`), metrics,
//! startup fields (no prefix, one server expected), job info, `s_stage_name`, `s_test_list` —
//! then `_id`. Records are stored, judged and uploaded by the same path as disaggregated ones
//! ([`persist_records`]); history matches on upstream's newest keys (`s_test_case_name`,
//! `s_gpu_type`, `s_runtime`, `s_branch`).

use crate::plan::toolchain::ClientKind;
use crate::plan::{AggrClientPlan, AggrPlan, AggrServerPlan};

use super::ResultsError;
use super::context::ResultsContext;
use super::field;
use super::job_info::job_info;
use super::pyjson::assign_id;
use super::record::{
    BASE_METRICS, BuiltRecords, ClientResult, MetricsError, RecordInputs, SPEC_DECODING_METRIC,
    metric_of,
};
use super::server_fields::{WorkerDefaults, server_fields};
use super::startup::{read_observations, startup_fields};
use super::store::now_ms;
use super::trial::{TrialMeta, TrialResults, persist_records};
use super::value::Record;

/// One aggregated client run's parsed metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AggrClientResult {
    /// Server index `s`.
    pub server: u32,
    /// The metrics (`client_index` = the client's index within its server).
    pub result: ClientResult,
}

fn find<'p>(
    plan: &'p AggrPlan,
    r: &AggrClientResult,
) -> Option<(&'p AggrServerPlan, &'p AggrClientPlan)> {
    let server = plan.servers.iter().find(|s| s.index == r.server)?;
    let client = server
        .clients
        .iter()
        .find(|c| c.spec.index == r.result.client_index)?;
    Some((server, client))
}

/// Upstream's pre-upload failure check (§5.4) over every server, in upstream's wording.
pub fn check_aggr_metrics(
    plan: &AggrPlan,
    results: &[AggrClientResult],
) -> Result<(), MetricsError> {
    let mut problems = Vec::new();
    for server in &plan.servers {
        let s = server.index;
        let mine: Vec<&AggrClientResult> = results.iter().filter(|r| r.server == s).collect();
        if mine.len() != server.clients.len() {
            problems.push(format!(
                "Server {s}'s perf results number: {} is not equal to client number: {}.",
                mine.len(),
                server.clients.len()
            ));
        }
    }
    for r in results {
        let (s, c) = (r.server, r.result.client_index);
        let Some((server, client)) = find(plan, r) else {
            problems.push(format!(
                "Server {s} Client {c} is not a client of this plan."
            ));
            continue;
        };
        let sa = client.kind == ClientKind::NvSa;
        let missing: Vec<&str> = BASE_METRICS
            .iter()
            .copied()
            .filter(|m| metric_of(&r.result, m, sa).is_none())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "Some metrics in Server {s} Client {c} are missing: [{}].",
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if server.spec_decoding
            && !sa
            && !matches!(r.result.metrics.get(SPEC_DECODING_METRIC), Some(Some(_)))
        {
            problems.push(format!(
                "Speculative decoding test Server {s} Client {c} is missing 'Mean Avg Decoded Tokens per Iter' in benchmark output."
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MetricsError { problems })
    }
}

fn client_fields(client: &AggrClientPlan, spec: bool) -> Record {
    let c = &client.config;
    let mut r = Record::new();
    r.set("s_client_name", client.spec.name.clone());
    r.set("l_concurrency", client.spec.concurrency);
    r.set("l_iterations", client.spec.iterations);
    r.set("l_isl", client.spec.isl);
    r.set("l_osl", client.spec.osl);
    r.set("d_random_range_ratio", client.random_range_ratio);
    r.set(
        "s_dataset_file",
        c.dataset_file
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_default(),
    );
    r.set("s_backend", c.backend.clone());
    r.set("b_use_chat_template", c.use_chat_template);
    r.set("b_streaming", c.streaming);
    r.set("b_trust_remote_code", c.trust_remote_code);
    r.set("b_use_nv_sa_benchmark", client.kind == ClientKind::NvSa);
    r.set("b_warmup", client.spec.warmup);
    r.set("s_benchmark_client", "");
    r.set("b_eos", spec);
    r.set("s_client_log_link", "");
    r.set("s_client_env_vars", c.client_env_var.clone());
    r
}

/// Builds the records of an aggregated trial, ordered by `cmd_idx`. Call [`check_aggr_metrics`]
/// first. `client_indices` of the result holds each record's `cmd_idx`.
pub fn build_aggr_records(
    plan: &AggrPlan,
    results: &[AggrClientResult],
    inputs: &RecordInputs<'_>,
) -> BuiltRecords {
    let mut notes = Vec::new();
    let (job, job_notes) = job_info(inputs.ci);
    notes.extend(job_notes);
    let mut found: Vec<(&AggrServerPlan, &AggrClientPlan, &AggrClientResult)> = results
        .iter()
        .filter_map(|r| find(plan, r).map(|(s, c)| (s, c, r)))
        .collect();
    found.sort_by_key(|(_, c, _)| c.cmd_idx);
    let mut records = Vec::new();
    let mut client_indices = Vec::new();
    for (server, client, result) in found {
        let cfg = &server.config;
        let defaults = WorkerDefaults {
            name: &server.name,
            model_name: &cfg.model_name,
            gpus_per_node: server.gpus_per_node,
        };
        let fields = server_fields(
            &cfg.engine,
            "aggr",
            &defaults,
            &cfg.server_env_var,
            &cfg.env,
            &mut notes,
        );
        let sa = client.kind == ClientKind::NvSa;
        let spec = server.spec_decoding;
        let mut r = Record::new();
        r.set(field::GPU_TYPE, inputs.gpu_type);
        r.set(field::RUNTIME, server.runtime);
        r.extend(&fields);
        r.extend(&client_fields(client, spec));
        r.set(field::TEST_CASE_NAME, client.spec.test_case_name.clone());
        for name in BASE_METRICS {
            match metric_of(&result.result, name, sa) {
                Some(Some(v)) => r.set(format!("d_{name}"), v),
                Some(None) => notes.push(format!(
                    "{}: {name} was not reported by the client; d_{name} is omitted from the \
                     record (upstream would send null, which the gateway refuses)",
                    client.spec.test_case_name
                )),
                None => notes.push(format!(
                    "{}: {name} is missing; d_{name} is not recorded",
                    client.spec.test_case_name
                )),
            }
        }
        if spec && let Some(Some(al)) = result.result.metrics.get(SPEC_DECODING_METRIC) {
            r.set("d_al", *al);
        }
        let observations = read_observations(&plan.output_dir, server.index).unwrap_or_else(|e| {
            notes.push(format!("startup telemetry ignored: {e}"));
            Vec::new()
        });
        r.extend(&startup_fields(&observations, None, 1));
        r.extend(&job);
        super::record::apply_client_check(&mut r, &result.result.metrics);
        r.set("s_stage_name", inputs.ci.stage_name.clone());
        r.set("s_test_list", plan.test_list_id.clone());
        assign_id(&mut r);
        records.push(r);
        client_indices.push(client.cmd_idx);
    }
    BuiltRecords {
        records,
        client_indices,
        notes,
    }
}

/// Records an aggregated trial's client results: check, build, then the shared store / verdict /
/// upload path.
pub fn record_aggr_trial(
    ctx: &ResultsContext,
    plan: &AggrPlan,
    results: &[AggrClientResult],
) -> Result<TrialResults, ResultsError> {
    check_aggr_metrics(plan, results)?;
    let built = build_aggr_records_in(ctx, plan, results);
    persist_records(
        ctx,
        &aggr_meta(plan),
        built.records,
        &built.client_indices,
        built.notes,
        now_ms(),
    )
}

/// [`build_aggr_records`] with the context's GPU type and CI environment.
pub(crate) fn build_aggr_records_in(
    ctx: &ResultsContext,
    plan: &AggrPlan,
    results: &[AggrClientResult],
) -> BuiltRecords {
    build_aggr_records(
        plan,
        results,
        &RecordInputs {
            gpu_type: &ctx.gpu_type,
            ci: &ctx.ci,
            startup: &[],
        },
    )
}

/// What the results path needs to know about an aggregated trial.
pub(crate) fn aggr_meta(plan: &AggrPlan) -> TrialMeta<'_> {
    TrialMeta {
        trial: &plan.trial,
        upload: plan.upload,
        toolchain: plan.toolchain,
        scale: plan.scale,
        output_dir: &plan.output_dir,
        gen_only: false,
        spec_decoding: plan.servers.iter().any(|s| s.spec_decoding),
    }
}
