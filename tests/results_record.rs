//! Golden records: the spec's worked example (upstream-perf-sanity.md §2.4, the h200 Qwen3-32B
//! disagg config) turned into upstream's record field by field (§2.1 defaults, §6.2 names,
//! §6.3 job info), the `_id` against digests computed by CPython's `json` + `hashlib`, the type
//! check, and the record decisions (SA user throughput, spec decoding, gen_only, floats).

use crate::support::*;
use perfsanity::config::BenchmarkMode;
use perfsanity::results::pyjson::{dumps_sorted_indent2, md5_of_record};
use perfsanity::results::record::{RecordInputs, build_records, check_metrics};
use perfsanity::results::typecheck::check_batch;
use perfsanity::results::{ClientResult, FieldValue, Record};

use FieldValue::{Bool as B, Float as D, Int as L, Str as S};

fn s(v: &str) -> FieldValue {
    S(v.to_string())
}

const WORKER_ENV: &str = "TLLM_LOG_LEVEL=INFO TRTLLM_SERVER_DISABLE_GC=1 TRTLLM_WORKER_DISABLE_GC=1 TRTLLM_ENABLE_PDL=1 ENROOT_ALLOW_DEV=yes TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL=True";

/// The server fields of §6.2 for one worker of the example, with §2.1 defaults where the YAML is
/// silent. `(prefix-less name, value)`.
fn worker_fields(
    tp: i64,
    max_batch_size: i64,
    cg_max_bs: i64,
    disable_overlap: bool,
) -> Vec<(&'static str, FieldValue)> {
    let name = format!("e2e-{QWEN_STEM}");
    vec![
        ("server_name", S(name)),
        ("model_name", s("qwen3_32b_fp8")),
        ("gpus", L(tp)),
        ("tp", L(tp)),
        ("ep", L(1)),
        ("pp", L(1)),
        ("cp", L(1)),
        ("gpus_per_node", L(8)),
        ("max_num_tokens", L(7808)),
        ("max_batch_size", L(max_batch_size)),
        ("max_seq_len", L(7808)),
        ("disable_overlap_scheduler", B(disable_overlap)),
        ("num_postprocess_workers", L(0)),
        ("stream_interval", L(10)),
        ("attn_backend", s("TRTLLM")),
        ("enable_chunked_prefill", B(false)),
        ("enable_attention_dp", B(false)),
        ("trust_remote_code", B(true)),
        ("enable_lm_head_tp_in_adp", B(false)),
        ("serving_backend", s("pytorch")),
        ("attention_dp_balance", B(false)),
        ("batching_wait_iters", L(0)),
        ("timeout_iters", L(60)),
        ("moe_backend", s("")),
        ("moe_max_num_tokens", L(0)),
        ("use_low_precision_moe_combine", B(false)),
        ("load_balancer_num_slots", L(0)),
        ("load_balancer_layer_updates_per_iter", L(0)),
        ("enable_cuda_graph", B(true)),
        ("enable_padding", B(true)),
        ("cuda_graph_max_batch_size", L(cg_max_bs)),
        ("cuda_graph_batch_sizes", s("")),
        ("kv_cache_dtype", s("fp8")),
        ("enable_block_reuse", B(false)),
        ("free_gpu_memory_fraction", D(0.9)),
        ("cache_transceiver_backend", s("DEFAULT")),
        ("cache_transceiver_max_tokens_in_buffer", L(0)),
        ("spec_decoding_type", s("")),
        ("num_nextn_predict_layers", L(0)),
        ("eagle3_layers_to_capture", s("")),
        ("max_draft_len", L(0)),
        ("force_num_accepted_tokens", L(0)),
        ("speculative_model_dir", s("")),
        ("eagle3_one_model", B(false)),
        ("server_log_link", s("")),
        ("server_env_var", s(WORKER_ENV)),
    ]
}

fn infixed(role: &str, fields: Vec<(&'static str, FieldValue)>) -> Vec<(String, FieldValue)> {
    fields
        .into_iter()
        .map(|(name, v)| {
            let prefix = match &v {
                S(_) => "s",
                L(_) => "l",
                D(_) => "d",
                B(_) => "b",
                FieldValue::Null => unreachable!(),
            };
            (format!("{prefix}_{role}_{name}"), v)
        })
        .collect()
}

/// The expected record of the example's one client, hand-derived from the spec.
fn expected_qwen_record() -> Vec<(String, FieldValue)> {
    let mut e: Vec<(String, FieldValue)> = vec![
        ("s_gpu_type".into(), s("h200")),
        ("s_runtime".into(), s("multi_node_disagg_server")),
        ("s_benchmark_mode".into(), s("e2e")),
        ("s_server_env_var".into(), s("TRTLLM_SERVER_DISABLE_GC=1")),
        ("l_num_ctx_servers".into(), L(1)),
        ("l_num_gen_servers".into(), L(1)),
    ];
    e.extend(infixed("ctx", worker_fields(1, 1, 256, true)));
    e.extend(infixed("gen", worker_fields(2, 128, 128, false)));
    let client = "con128_iter10_isl4096_osl1024";
    e.extend([
        ("s_client_name".into(), s(client)),
        ("l_concurrency".into(), L(128)),
        ("l_iterations".into(), L(10)),
        ("l_isl".into(), L(4096)),
        ("l_osl".into(), L(1024)),
        ("d_random_range_ratio".into(), D(0.0)),
        (
            "s_dataset_file".into(),
            s("datasets/perf-ci/qwen3_32b-4k1k-20480-ratio-1_for_serve.json"),
        ),
        ("s_backend".into(), s("openai")),
        ("b_use_chat_template".into(), B(false)),
        ("b_streaming".into(), B(true)),
        ("b_trust_remote_code".into(), B(true)),
        ("b_use_nv_sa_benchmark".into(), B(false)),
        ("b_warmup".into(), B(true)),
        ("s_benchmark_client".into(), s("")),
        ("b_eos".into(), B(false)),
        ("s_client_log_link".into(), s("")),
        ("s_client_env_vars".into(), s("")),
        (
            "s_test_case_name".into(),
            S(format!("e2e-{QWEN_STEM}-{client}")),
        ),
    ]);
    for (name, v) in base_metrics(1.0) {
        e.push((format!("d_{name}"), D(v.unwrap())));
    }
    for role in ["ctx", "gen"] {
        e.extend([
            (
                format!("l_{role}_startup_metrics_expected_server_count"),
                L(1),
            ),
            (
                format!("l_{role}_startup_metrics_discovered_server_count"),
                L(0),
            ),
            (
                format!("l_{role}_startup_metrics_failed_server_count"),
                L(0),
            ),
            (
                format!("b_{role}_startup_metrics_collection_complete"),
                B(false),
            ),
        ]);
    }
    e.extend([
        ("b_is_baseline".into(), B(false)),
        ("b_is_valid".into(), B(true)),
        ("_id".into(), s("")),
        ("s_host_node_name".into(), s("node-a")),
        ("s_build_id".into(), s("101")),
        (
            "s_build_url".into(),
            s("https://jenkins.example/job/LLM/job/main/job/L0_MergeRequest_PR/101/"),
        ),
        ("s_job_name".into(), s("LLM/main/L0_MergeRequest_PR")),
        ("s_job_id".into(), s("4242")),
        (
            "s_job_url".into(),
            s("https://prod.example/job/LLM/job/main/job/L0_MergeRequest_PR/"),
        ),
        ("s_branch".into(), s("github-pr-9876")),
        ("s_commit".into(), s("abc123")),
        ("b_is_post_merge".into(), B(false)),
        ("b_is_pr_job".into(), B(true)),
        ("s_trigger_mr_user".into(), s("octocat")),
        (
            "s_trigger_mr_link".into(),
            s("https://github.com/NVIDIA/TensorRT-LLM/pull/9876"),
        ),
        ("s_trigger_mr_id".into(), s("9876")),
        ("s_trigger_mr_commit".into(), s("abc123")),
        (
            "s_artifact_url".into(),
            s("https://urm.nvidia.com/artifactory/sw-tensorrt-generic/llm-artifacts/LLM/main/L0_MergeRequest_PR/4242"),
        ),
        ("b_is_regression".into(), B(false)),
        (
            "s_stage_name".into(),
            s("H200-PyTorch-PerfSanity-Disagg-1"),
        ),
        (
            "s_test_list".into(),
            S(format!("disagg_upload-e2e-{QWEN_STEM}")),
        ),
    ]);
    e
}

/// `_id` of the expected record, computed by CPython 3.11:
/// `hashlib.md5(json.dumps(rec, sort_keys=True, indent=2).encode()).hexdigest()` over the
/// record above with `"_id": ""` (script in docs/RESULTS.md, "Checking `_id` against Python").
const QWEN_RECORD_ID: &str = "ca6c2d2675f70c4c926b877d1b6ed978";

/// The spec example's record (needs `../shared/upstream`: see `support::upstream_dir`).
fn qwen_record() -> Record {
    let config = qwen_config();
    let dir = tempfile::tempdir().unwrap();
    let mut o = PlanOpts::new(QWEN_STEM, dir.path());
    o.test_list_id = Some(format!("disagg_upload-e2e-{QWEN_STEM}"));
    let plan = plan(&config, o);
    assert_eq!(plan.clients.len(), 1);
    let results = vec![ClientResult {
        client_index: 0,
        metrics: base_metrics(1.0),
    }];
    check_metrics(&plan, &config, &results).unwrap();
    let ci = pr_ci();
    let built = build_records(
        &plan,
        &config,
        &results,
        &RecordInputs {
            gpu_type: "h200",
            ci: &ci,
            startup: &[],
        },
    );
    assert!(built.notes.is_empty(), "{:?}", built.notes);
    assert_eq!(built.records.len(), 1);
    built.records.into_iter().next().unwrap()
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn golden_record_of_the_spec_example() {
    let record = qwen_record();
    let expected = expected_qwen_record();
    let got: Vec<(&String, &FieldValue)> = record.fields.iter().collect();
    for (i, (k, v)) in expected.iter().enumerate() {
        if k == "_id" {
            continue;
        }
        assert_eq!(got.get(i).map(|g| g.0), Some(k), "field #{i}");
        assert_eq!(got[i].1, v, "value of {k}");
    }
    assert_eq!(got.len(), expected.len(), "extra fields");
    // _id: the hash of the record with `_id: ""`, as upstream computes it.
    let mut blank = record.clone();
    blank.set("_id", "");
    assert_eq!(record.str("_id"), Some(md5_of_record(&blank).as_str()));
    assert!(check_batch(&[record]).is_ok());
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn record_id_matches_python() {
    let record = qwen_record();
    assert_eq!(record.str("_id"), Some(QWEN_RECORD_ID));
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn record_id_is_stable_and_sensitive() {
    let record = qwen_record();
    let again = qwen_record();
    assert_eq!(record.str("_id"), again.str("_id"));
    // Field order does not matter (sorted keys); any value does.
    let mut reordered = Record::new();
    for (k, v) in record.fields.iter().rev() {
        reordered.set(k.clone(), v.clone());
    }
    reordered.set("_id", "");
    let mut blank = record.clone();
    blank.set("_id", "");
    assert_eq!(md5_of_record(&reordered), md5_of_record(&blank));
    blank.set("d_mean_ttft", 250.00000000000003);
    assert_ne!(md5_of_record(&blank), record.str("_id").unwrap());
}

/// Small records whose Python digests were computed with CPython 3.11 (see docs/RESULTS.md).
#[test]
fn python_json_text_and_digests() {
    let mut r = Record::new();
    r.set("s_b", "é\"x\\\n");
    r.set("d_a", 1.0);
    r.set("l_c", 3i64);
    r.set("b_d", true);
    r.set("d_e", 1e16);
    r.set("d_f", 0.00001);
    r.set("_id", "");
    assert_eq!(
        dumps_sorted_indent2(&r),
        "{\n  \"_id\": \"\",\n  \"b_d\": true,\n  \"d_a\": 1.0,\n  \"d_e\": 1e+16,\n  \"d_f\": 1e-05,\n  \"l_c\": 3,\n  \"s_b\": \"\\u00e9\\\"x\\\\\\n\"\n}"
    );
    assert_eq!(md5_of_record(&r), "ff9f3ca4db58d4ca39596c4a27583429");
    assert_eq!(dumps_sorted_indent2(&Record::new()), "{}");
    assert_eq!(
        md5_of_record(&Record::new()),
        "99914b932bd37a50b983c5e7c90ae93b"
    );
}

fn own(
    mode: Option<BenchmarkMode>,
    results: impl Fn(&perfsanity::plan::Plan) -> Vec<ClientResult>,
) -> (perfsanity::plan::Plan, Vec<Record>, Vec<String>) {
    let config = own_config();
    let dir = tempfile::tempdir().unwrap();
    let mut o = PlanOpts::new(OWN_STEM, dir.path());
    o.mode = mode;
    let plan = plan(&config, o);
    let results = results(&plan);
    check_metrics(&plan, &config, &results).unwrap();
    let ci = perfsanity::results::CiEnv::default();
    let built = build_records(
        &plan,
        &config,
        &results,
        &RecordInputs {
            gpu_type: "gb200",
            ci: &ci,
            startup: &[],
        },
    );
    (plan, built.records, built.notes)
}

fn sa_results(plan: &perfsanity::plan::Plan, al: bool, gen_only: bool) -> Vec<ClientResult> {
    plan.clients
        .iter()
        .map(|c| {
            let mut m = base_metrics(1.0 + c.index as f64);
            // The SA client prints no user throughput: the runner may pass None or omit it.
            if c.index == 0 {
                m.insert("user_throughput".into(), None);
            } else {
                m.shift_remove("user_throughput");
            }
            if al {
                m.insert("al".into(), Some(2.75));
            }
            if gen_only {
                for (i, n) in [
                    "mean_gen_worker_per_iter_device_step_time",
                    "median_gen_worker_per_iter_device_step_time",
                    "std_gen_worker_per_iter_device_step_time",
                    "p75_gen_worker_per_iter_device_step_time",
                    "p99_gen_worker_per_iter_device_step_time",
                ]
                .iter()
                .enumerate()
                {
                    m.insert(n.to_string(), Some(10.0 + i as f64));
                }
            }
            ClientResult {
                client_index: c.index,
                metrics: m,
            }
        })
        .collect()
}

#[test]
fn own_config_record_decisions() {
    let (plan, records, notes) = own(None, |p| sa_results(p, true, false));
    assert_eq!(records.len(), 2);
    let r = &records[0];
    // SA client: user throughput omitted (never null), noted.
    assert!(r.get("d_user_throughput").is_none());
    assert!(
        notes.iter().any(|n| n.contains("user_throughput")),
        "{notes:?}"
    );
    assert_eq!(r.bool("b_use_nv_sa_benchmark"), Some(true));
    assert_eq!(
        r.bool("b_warmup"),
        Some(true),
        "the SA client always sends its probe request first"
    );
    // Spec decoding: b_eos and d_al.
    assert_eq!(r.bool("b_eos"), Some(true));
    assert_eq!(r.get("d_al"), Some(&FieldValue::Float(2.75)));
    // YAML integers in float fields are floats (gotcha 4).
    assert_eq!(r.get("d_random_range_ratio"), Some(&FieldValue::Float(0.8)));
    assert_eq!(
        r.get("d_gen_free_gpu_memory_fraction"),
        Some(&FieldValue::Float(1.0))
    );
    assert_eq!(
        r.get("d_ctx_free_gpu_memory_fraction"),
        Some(&FieldValue::Float(0.8))
    );
    // Load balancer: a file path ⇒ 0 slots; a mapping ⇒ its values.
    assert_eq!(r.get("l_gen_load_balancer_num_slots"), Some(&L(0)));
    assert_eq!(r.get("l_ctx_load_balancer_num_slots"), Some(&L(288)));
    assert_eq!(
        r.get("l_ctx_load_balancer_layer_updates_per_iter"),
        Some(&L(1))
    );
    // CUDA graphs: null ⇒ off with defaults; a mapping ⇒ on with its batch sizes.
    assert_eq!(r.bool("b_ctx_enable_cuda_graph"), Some(false));
    assert_eq!(r.bool("b_gen_enable_cuda_graph"), Some(true));
    assert_eq!(r.str("s_gen_cuda_graph_batch_sizes"), Some("1,2,4"));
    // Speculative config through a YAML anchor; legacy num_nextn_predict_layers; int eagle3.
    assert_eq!(r.get("l_ctx_max_draft_len"), Some(&L(3)));
    assert_eq!(r.get("l_gen_num_nextn_predict_layers"), Some(&L(3)));
    assert_eq!(r.str("s_gen_eagle3_layers_to_capture"), Some("7"));
    assert_eq!(r.str("s_gen_spec_decoding_type"), Some("MTP"));
    // Forced accepted tokens: integer part of the env value.
    assert_eq!(r.get("l_gen_force_num_accepted_tokens"), Some(&L(2)));
    // Env strings as upstream joins them.
    assert_eq!(
        r.str("s_gen_server_env_var"),
        Some(
            "TLLM_LOG_LEVEL=INFO TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS=2.9 MIMALLOC_PURGE_DELAY=0"
        )
    );
    assert_eq!(r.str("s_client_env_vars"), Some("A=1"));
    // gpus_per_node 4; gpus = tp × cp × pp; model name lower-cased.
    assert_eq!(r.get("l_gen_gpus"), Some(&L(4)));
    assert_eq!(r.get("l_ctx_gpus"), Some(&L(2)));
    assert_eq!(r.str("s_ctx_model_name"), Some("deepseek-r1-tiny"));
    assert_eq!(r.get("l_num_ctx_servers"), Some(&L(2)));
    assert_eq!(
        r.get("l_ctx_startup_metrics_expected_server_count"),
        Some(&L(2))
    );
    // No device-step metrics outside gen_only.
    assert!(
        r.fields
            .keys()
            .all(|k| !k.contains("gen_worker_per_iter_device_step_time"))
    );
    // Client order and names.
    assert_eq!(
        records[1].str("s_test_case_name"),
        Some(plan.clients[1].test_case_name.as_str())
    );
    assert_eq!(records[1].get("l_concurrency"), Some(&L(16)));
    // Every record passes the gateway's type check.
    check_batch(&records).unwrap();
    // Every d_ field is a float, every l_ an integer.
    for r in &records {
        for (k, v) in &r.fields {
            if k.starts_with("d_") {
                assert!(matches!(v, FieldValue::Float(_)), "{k} = {v:?}");
            }
            if k.starts_with("l_") {
                assert!(matches!(v, FieldValue::Int(_)), "{k} = {v:?}");
            }
        }
    }
}

#[test]
fn gen_only_records_device_step_statistics() {
    let (_, records, _) = own(Some(BenchmarkMode::GenOnly), |p| sa_results(p, true, true));
    assert_eq!(records.len(), 1, "gen_only runs the first concurrency only");
    let r = &records[0];
    assert_eq!(r.str("s_benchmark_mode"), Some("gen_only"));
    assert_eq!(
        r.get("d_mean_gen_worker_per_iter_device_step_time"),
        Some(&D(10.0))
    );
    assert_eq!(
        r.get("d_p99_gen_worker_per_iter_device_step_time"),
        Some(&D(14.0))
    );
    let (_, records, _) = own(Some(BenchmarkMode::GenOnlyNoContext), |p| {
        sa_results(p, true, true)
    });
    let r = &records[0];
    assert_eq!(r.str("s_benchmark_mode"), Some("gen_only"));
    assert_eq!(r.get("l_num_ctx_servers"), Some(&L(0)));
    assert!(
        r.get("s_ctx_server_name").is_none(),
        "no ctx fields without ctx servers"
    );
    assert!(
        r.get("l_ctx_startup_metrics_expected_server_count")
            .is_none()
    );
}

#[test]
fn failure_check_messages_follow_upstream() {
    let config = own_config();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(&config, PlanOpts::new(OWN_STEM, dir.path()));
    // One client missing, a metric absent; spec decoding (MTP) without al.
    let mut m = base_metrics(1.0);
    m.shift_remove("p99_e2el");
    let results = vec![ClientResult {
        client_index: 0,
        metrics: m,
    }];
    let err = check_metrics(&plan, &config, &results)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Server 0's perf results number: 1 is not equal to client number: 2."),
        "{err}"
    );
    assert!(
        err.contains("Some metrics in Server 0 Client 0 are missing: ['p99_e2el']."),
        "{err}"
    );
    // The NV SA client never prints the acceptance length: the al check applies to the
    // standard client only (since 0f0b7e1), and this config is SA.
    assert!(!err.contains("Speculative decoding test"), "{err}");
    let err = check_metrics(
        &plan,
        &config,
        &[ClientResult {
            client_index: 7,
            metrics: base_metrics(1.0),
        }],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Client 7 is not a client of this plan"),
        "{err}"
    );
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn type_check_refuses_what_upstream_refuses() {
    let mut record = qwen_record();
    record.set("d_mean_ttft", 250i64);
    record.set("d_p99_ttft", FieldValue::Null);
    record.set("mystery", "x");
    let problems = check_batch(&[record]).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("d_mean_ttft: expected float, found int (250)"));
    assert!(problems[1].contains("d_p99_ttft: expected float, found NoneType"));
    assert!(problems[2].contains("mystery: unknown key"));
}
