//! The aggregated family (issue 14): upstream's aggregated configs and every ctx_only /
//! gen_only_no_context id plan with upstream's argv, engine config and env (the §2.3 example
//! byte for byte); every entry of upstream's `l0_*.yml` test lists is a runnable trial or a
//! missing config; aggregated config errors name file, line, key path and a "did you mean";
//! aggregated trials run end to end on the simulator and record upstream's fields.
//!
//! Tests that read `../shared/upstream` print a NOTICE and return when it is absent.

use std::path::{Path, PathBuf};

use perfsanity::app::commands::selected_trials;
use perfsanity::app::settings::Settings;
use perfsanity::catalog::trial_id::AggrKind;
use perfsanity::config::{load_aggregated_config, load_perf_config, parse_aggregated_config};
use perfsanity::plan::prepare::{KeyMode, plan_trial, prepare_aggr_trial};
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{AggrPlan, AggrRequest, AggrSource, PlanInputs, build_aggr_plan};
use perfsanity::util::yaml::Value;

const LLAMA_STEM: &str = "llama_v3_3_70b_instruct_fp4_blackwell";
const LLAMA_SERVER: &str = "llama70b_fp4_tp4_512_32";
const LLAMA_DIR: &str = "/models/modelopt-hf-model-hub/Llama-3.3-70B-Instruct-fp4";

/// The upstream corpus; the tests that read it carry the `perfsanity_upstream` gate, so they
/// are reported ignored (never passed) where it is absent.
fn upstream() -> Option<PathBuf> {
    Some(crate::support::upstream_dir())
}

fn inputs<'a>(toolchain: Toolchain, exists: &'a dyn Fn(&Path) -> bool) -> PlanInputs<'a> {
    crate::support::plan_inputs(toolchain, exists)
}

fn request(stem: &str, kind: AggrKind) -> AggrRequest {
    let trial = perfsanity::catalog::trial_id::aggr_trial_name(true, stem, &kind);
    AggrRequest {
        test_list_id: trial.clone(),
        trial,
        stem: stem.to_string(),
        upload: true,
        kind,
        time_limit_s: None,
    }
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn llama_plan(exists: &dyn Fn(&Path) -> bool) -> Option<AggrPlan> {
    let path = upstream()?
        .join("perf-sanity/aggregated")
        .join(format!("{LLAMA_STEM}.yaml"));
    let config = load_aggregated_config(&path).expect("upstream example parses");
    Some(
        build_aggr_plan(
            AggrSource::Aggregated(&config),
            &request(
                LLAMA_STEM,
                AggrKind::Servers(Some(vec![LLAMA_SERVER.into()])),
            ),
            &inputs(Toolchain::Trtllm, exists),
        )
        .expect("plan builds"),
    )
}

/// §2.3, derived for `aggr_upload-llama_v3_3_70b_instruct_fp4_blackwell-llama70b_fp4_tp4_512_32`.
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn section_2_3_example_byte_for_byte() {
    let Some(plan) = llama_plan(&|p| p == Path::new(LLAMA_DIR)) else {
        return;
    };
    let tod = "/out/aggr_upload-llama_v3_3_70b_instruct_fp4_blackwell-llama70b_fp4_tp4_512_32";
    assert_eq!(plan.servers.len(), 1);
    let s = &plan.servers[0];
    let engine = format!("{tod}/extra-llm-api-config.aggr.llama70b_fp4_tp4_512_32.yml");
    let file = plan
        .files
        .iter()
        .find(|f| f.path == Path::new(&engine))
        .expect("engine config file");
    assert_eq!(
        file.content,
        "tensor_parallel_size: 4\npipeline_parallel_size: 1\nmax_batch_size: 512\n\
         max_num_tokens: 2048\ncuda_graph_config:\n  enable_padding: true\n  max_batch_size: 512\n\
         kv_cache_config:\n  enable_block_reuse: false\n  free_gpu_memory_fraction: 0.9\n"
    );
    // §4.1: MODEL_PATH_DICT[model_name] under LLM_MODELS_ROOT.
    let mp = s.model_path.clone();
    assert_eq!(mp, LLAMA_DIR);
    let mut expected = vec!["trtllm-serve".to_string(), mp.clone()];
    expected.extend(v(&[
        "--backend",
        "pytorch",
        "--config",
        &engine,
        "--host",
        "localhost",
        "--port",
        "0",
        "--report_addr",
        &format!("{tod}/trtllm-serve.0.addr"),
    ]));
    assert_eq!(s.process.argv, expected);
    assert!(s.process.env.is_empty());
    assert_eq!(
        s.process.log_file,
        Path::new(&format!("{tod}/trtllm-serve.0.log"))
    );
    let c = &s.clients[0];
    let mut client = v(&[
        "python",
        "-m",
        "tensorrt_llm.serve.scripts.benchmark_serving",
    ]);
    client.extend(v(&[
        "--model",
        &mp,
        "--tokenizer",
        &mp,
        "--num-prompts",
        "5120",
        "--max-concurrency",
        "512",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--ignore-eos",
        "--no-test-input",
        "--dataset-name",
        "random",
        "--random-ids",
        "--tokenize-on-client",
        "--random-input-len",
        "512",
        "--random-output-len",
        "32",
        "--random-range-ratio",
        "0.0",
        "--backend",
        "openai",
        "--trust-remote-code",
    ]));
    assert_eq!(c.spec.argv, client);
    assert_eq!(
        c.spec.test_case_name,
        "llama70b_fp4_tp4_512_32-con512_iter10_512_32"
    );
    assert_eq!(
        c.spec.log_file,
        Path::new(&format!("{tod}/trtllm-benchmark.0.0.log"))
    );
    assert_eq!(
        c.spec.env,
        vec![("PYTHONUNBUFFERED".to_string(), "1".to_string())]
    );
    // gpus 4 ≠ gpus_per_node 8: upstream's multi-node label.
    assert_eq!(s.runtime, "multi_node_aggr_server");
    assert_eq!((s.gpus, s.gpus_per_node, s.nodes), (4, 8, 1));
    assert_eq!((plan.timeouts.wait_s, plan.timeouts.ready_s), (10800, 3600));
}

/// Aggregated servers resolve their model as disaggregated workers do (§4.1): with the
/// TensorRT-LLM toolchain a model directory that is nowhere is a plan error naming the paths.
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn aggregated_model_path_rule() {
    let Some(dir) = upstream() else { return };
    let path = dir
        .join("perf-sanity/aggregated")
        .join(format!("{LLAMA_STEM}.yaml"));
    let config = load_aggregated_config(&path).unwrap();
    let e = build_aggr_plan(
        AggrSource::Aggregated(&config),
        &request(LLAMA_STEM, AggrKind::Servers(None)),
        &inputs(Toolchain::Trtllm, &|_| false),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(LLAMA_DIR), "{e}");
}

/// Every server of every upstream aggregated config: argv shape, engine config = the entry minus
/// harness-only keys, in order, and upstream's names.
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn every_upstream_aggregated_config_plans_as_upstream() {
    let Some(dir) = upstream() else { return };
    let harness = perfsanity::config::HARNESS_ONLY_WORKER_KEYS;
    let mut servers_seen = 0;
    for entry in std::fs::read_dir(dir.join("perf-sanity/aggregated")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let config = load_aggregated_config(&path)
            .unwrap_or_else(|e| panic!("upstream config rejected:\n{e}"));
        let plan = build_aggr_plan(
            AggrSource::Aggregated(&config),
            &request(&stem, AggrKind::Servers(None)),
            &inputs(Toolchain::Trtllm, &|_| true),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(plan.servers.len(), config.servers.len());
        let text = std::fs::read_to_string(&path).unwrap();
        let root = perfsanity::util::yaml::load_str(&text).unwrap();
        let Value::Seq(entries) = &root.as_map().unwrap().get("server_configs").unwrap().value
        else {
            panic!("server_configs")
        };
        let mut cmd_idx = 0;
        for (s, (server, yaml)) in plan.servers.iter().zip(entries).enumerate() {
            servers_seen += 1;
            let expected_keys: Vec<&str> = yaml
                .as_map()
                .unwrap()
                .entries
                .iter()
                .map(|(k, _)| k.name.as_str())
                .filter(|k| !harness.contains(k))
                .collect();
            let file = plan
                .files
                .iter()
                .find(|f| f.path == server.engine_config)
                .unwrap();
            let engine = perfsanity::util::yaml::load_str(&file.content).unwrap();
            let keys: Vec<&str> = engine
                .as_map()
                .unwrap()
                .entries
                .iter()
                .map(|(k, _)| k.name.as_str())
                .collect();
            assert_eq!(keys, expected_keys, "{stem} server {s}");
            assert_eq!(
                server.engine_config.file_name().unwrap().to_str().unwrap(),
                format!("extra-llm-api-config.aggr.{}.yml", server.name)
            );
            let argv = &server.process.argv;
            assert_eq!(argv[0], "trtllm-serve");
            assert_eq!(argv[2..4], v(&["--backend", &server.config.engine.backend]));
            assert_eq!(
                argv[6..],
                v(&[
                    "--host",
                    "localhost",
                    "--port",
                    "0",
                    "--report_addr",
                    &format!("/out/aggr_upload-{stem}/trtllm-serve.{s}.addr")
                ])
            );
            // Env: the entry's server_env_var, nothing else.
            let yaml_env = yaml
                .as_map()
                .unwrap()
                .get("server_env_var")
                .and_then(|n| n.as_str())
                .unwrap_or("");
            assert_eq!(
                server.process.env,
                perfsanity::config::env_string::parse_env_string(yaml_env).unwrap()
            );
            for c in &server.clients {
                assert_eq!(c.cmd_idx, cmd_idx, "cmd_idx counts clients across servers");
                cmd_idx += 1;
                assert_eq!(
                    c.spec.test_case_name,
                    format!("{}-{}", server.name, c.spec.name)
                );
                assert_eq!(
                    c.spec.argv[0], "python",
                    "upstream's layout: standard client"
                );
                assert!(!c.spec.warmup, "aggregated servers do not warm up");
            }
        }
    }
    assert!(servers_seen >= 10, "only {servers_seen} servers planned");
}

/// ctx_only of every upstream disaggregated config: one server `ctx_only-<stem>` from the ctx
/// worker without `cache_transceiver_config` and without an auth key, the ctx worker env, osl 1
/// on the random dataset with warmup. gen_only_no_context plans as the zero-ctx disagg graph.
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn every_ctx_only_and_gen_only_no_context_id_plans() {
    let Some(dir) = upstream() else { return };
    for entry in std::fs::read_dir(dir.join("perf-sanity/disaggregated")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let config = load_perf_config(&path).unwrap();
        let plan = build_aggr_plan(
            AggrSource::CtxOnly(&config),
            &request(&stem, AggrKind::CtxOnly),
            &inputs(Toolchain::Trtllm, &|_| true),
        )
        .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let s = &plan.servers[0];
        assert_eq!(s.name, format!("ctx_only-{stem}"));
        let file = plan
            .files
            .iter()
            .find(|f| f.path == s.engine_config)
            .unwrap();
        assert!(
            file.path
                .ends_with(format!("extra-llm-api-config.aggr.ctx_only-{stem}.yml")),
            "{}",
            file.path.display()
        );
        assert!(!file.content.contains("cache_transceiver_config"), "{stem}");
        assert!(
            !file.content.contains("internal_request_auth_key"),
            "{stem}"
        );
        let first_ctx_key = config.ctx_worker.options.entries[0].0.name.clone();
        assert!(
            file.content.starts_with(&format!("{first_ctx_key}:")),
            "{stem}: ctx keys in YAML order"
        );
        assert_eq!(s.process.env, config.environment.ctx_env, "{stem}");
        assert_eq!(
            s.clients.len(),
            config.benchmark.concurrency_list.len(),
            "{stem}"
        );
        for c in &s.clients {
            assert_eq!(c.spec.osl, 1);
            assert_eq!(c.spec.isl, config.benchmark.input_length.value);
            assert!(
                matches!(
                    c.dataset,
                    perfsanity::plan::DatasetPlan::Random { .. }
                        | perfsanity::plan::DatasetPlan::SaRandom
                ),
                "{stem}: ctx_only always runs the random dataset"
            );
            assert_eq!(
                c.spec.warmup,
                c.kind == perfsanity::plan::toolchain::ClientKind::Standard
            );
        }
        // gen_only_no_context: the disaggregated graph with no context worker.
        let dplan = crate::support::plan(
            &config,
            crate::support::PlanOpts {
                mode: Some(perfsanity::config::BenchmarkMode::GenOnlyNoContext),
                ..crate::support::PlanOpts::new(&stem, Path::new("/out"))
            },
        );
        assert!(
            dplan
                .workers
                .iter()
                .all(|w| matches!(w.role, perfsanity::plan::Role::Gen(_))),
            "{stem}"
        );
    }
}

fn upstream_settings(dir: &Path, list: Option<&Path>, out: &Path) -> Settings {
    let dirs = format!(
        "{}:{}",
        dir.join("perf-sanity/aggregated").display(),
        dir.join("perf-sanity/disaggregated").display()
    );
    let list = list.map(|l| l.display().to_string()).unwrap_or_default();
    let out = out.display().to_string();
    let env = [
        ("PERF_CONFIG_DIRS", dirs.as_str()),
        ("PERF_TOOLCHAIN", "sim"),
        ("PERF_TESTLIST", list.as_str()),
        ("PERF_OUTPUT_DIR", out.as_str()),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Settings::from_env(&env, root, &root.join("target")).expect("settings")
}

/// Done-when: with PERF_CONFIG_DIRS at upstream's two folders, every entry of every
/// `l0_*.yml` test list is a plannable trial or says `no config named "<stem>"` — never "not
/// supported". (An id listed in two condition groups of one file, e.g. pre_merge and
/// post_merge, is flagged as listed twice; its first entry is the runnable trial.)
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn every_upstream_test_list_entry_runs_or_names_the_missing_config() {
    let Some(dir) = upstream() else { return };
    let out = tempfile::tempdir().unwrap();
    let mut lists: Vec<PathBuf> = std::fs::read_dir(dir.join("test-lists"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("l0_") && n.ends_with(".yml"))
        })
        .collect();
    lists.sort();
    assert!(!lists.is_empty());
    let (mut runnable, mut missing) = (0, 0);
    let mut aggr_ids = 0;
    for list in &lists {
        let settings = upstream_settings(&dir, Some(list), out.path());
        let (_, trials) = selected_trials(&settings).expect("catalog and list load");
        assert!(!trials.is_empty(), "{}", list.display());
        for spec in &trials {
            if let Some(err) = &spec.preflight_error {
                assert!(
                    err.contains("no config named") || err.contains("is listed twice"),
                    "{}: {err}",
                    spec.name
                );
                assert!(!err.contains("not supported"), "{err}");
                if err.contains("no config named") {
                    missing += 1;
                }
                continue;
            }
            let planned = match &spec.aggr {
                Some(_) => {
                    aggr_ids += 1;
                    prepare_aggr_trial(&settings, spec).map(|_| ())
                }
                None => plan_trial(&settings, spec, KeyMode::ReadOnly).map(|_| ()),
            };
            planned.unwrap_or_else(|e| panic!("{} ({}): {e}", spec.name, list.display()));
            runnable += 1;
        }
    }
    eprintln!("{runnable} runnable, {missing} missing configs, {aggr_ids} aggregated-runtime");
    assert!(runnable >= 25, "{runnable}");
    assert!(aggr_ids >= 25, "{aggr_ids}");
}

/// Without a test list, upstream's folders list upstream's id families in §3.1 order.
#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn upstream_folders_list_in_generation_order() {
    let Some(dir) = upstream() else { return };
    let out = tempfile::tempdir().unwrap();
    let settings = upstream_settings(&dir, None, out.path());
    let (_, trials) = selected_trials(&settings).unwrap();
    let names: Vec<&str> = trials.iter().map(|t| t.name.as_str()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} not listed"))
    };
    let whole = pos(&format!("aggr_upload-{LLAMA_STEM}"));
    let server = pos(&format!("aggr_upload-{LLAMA_STEM}-{LLAMA_SERVER}"));
    let plain = pos(&format!("aggr-{LLAMA_STEM}"));
    assert!(whole < server && server < plain);
    let qwen = crate::support::QWEN_STEM;
    let d = pos(&format!("disagg_upload-{qwen}"));
    let c = pos(&format!("aggr_upload-ctx_only-{qwen}"));
    assert!(plain < d && d < c, "aggregated first, then disagg families");
    // As upstream, gen_only_no_context is not generated, only selected.
    assert!(!names.iter().any(|n| n.contains("gen_only_no_context")));
}

fn config_error(yaml: &str) -> String {
    parse_aggregated_config(yaml, Path::new("bad.yaml"))
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn aggregated_config_errors_name_file_line_key_and_suggestion() {
    let e = config_error(
        "hardware:\n  gpus_per_node: 8\nserver_configs:\n  - name: a\n    client_configs:\n      \
         - concurency: 4\n",
    );
    assert!(
        e.contains("bad.yaml:6: `server_configs[0].client_configs[0].concurency`")
            && e.contains("did you mean `concurrency`"),
        "{e}"
    );
    let e = config_error("hardware:\n  gpus_per_nod: 8\nserver_configs: []\n");
    assert!(
        e.contains("bad.yaml:2: `hardware.gpus_per_nod`") && e.contains("gpus_per_node"),
        "{e}"
    );
    let e = config_error(
        "server_configs:\n  - name: a\n    tensor_parallel_size: two\n    client_configs: [{}]\n",
    );
    assert!(
        e.contains("bad.yaml:3: `server_configs[0].tensor_parallel_size`"),
        "{e}"
    );
    let e = config_error(
        "server_configs:\n  - name: a\n    client_configs: [{}]\n  - name: a\n    client_configs: [{}]\n",
    );
    assert!(e.contains("also the name of server_configs[0]"), "{e}");
    let e = config_error("server_configs:\n  - name: a\n");
    assert!(
        e.contains("`server_configs[0].client_configs`: required key missing"),
        "{e}"
    );
    let e = config_error(
        "benchmark:\n  use_nv_sa_benchmark: maybe\nserver_configs:\n  - name: a\n    client_configs: [{}]\n",
    );
    assert!(
        e.contains("bad.yaml:2: `benchmark.use_nv_sa_benchmark`: expected true or false"),
        "{e}"
    );
}

#[test]
fn seed_benchmark_defaults_and_unknown_server_selection() {
    let yaml = "metadata:\n  model_name: m\nbenchmark: {}\nserver_configs:\n  - name: s-1\n    \
                client_configs:\n      - {concurrency: 2, isl: 8, osl: 4}\n      - {concurrency: 1, \
                use_nv_sa_benchmark: false, random_range_ratio: 0.25}\n";
    let config = parse_aggregated_config(yaml, Path::new("own.yaml")).unwrap();
    let plan = build_aggr_plan(
        AggrSource::Aggregated(&config),
        &request("own", AggrKind::Servers(None)),
        &inputs(Toolchain::Sim, &|_| true),
    )
    .unwrap();
    let c = &plan.servers[0].clients;
    // benchmark section present: NV SA with ratio 0.8 unless a client says otherwise.
    assert_eq!(c[0].kind, perfsanity::plan::toolchain::ClientKind::NvSa);
    assert_eq!(c[0].random_range_ratio, 0.8);
    assert!(
        c[0].spec
            .argv
            .windows(2)
            .any(|w| w == ["--random-range-ratio", "0.8"])
    );
    assert_eq!(c[1].kind, perfsanity::plan::toolchain::ClientKind::Standard);
    assert_eq!(c[1].random_range_ratio, 0.25);
    assert_eq!(c[0].spec.name, "con2_iter1_isl8_osl4");
    let e = build_aggr_plan(
        AggrSource::Aggregated(&config),
        &request("own", AggrKind::Servers(Some(vec!["s-2".into()]))),
        &inputs(Toolchain::Sim, &|_| true),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no server named \"s-2\"") && e.contains("did you mean \"s-1\""),
        "{e}"
    );
}

/// An aggregated trial with two servers runs end to end on the simulator: each server is
/// started, its clients run, it is stopped before the next; records carry upstream's fields.
#[test]
fn aggregated_trial_runs_on_the_simulator_and_records_upstream_fields() {
    let out = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let status = crate::support::perfsanity_cmd()
        .args([
            "run",
            "aggr_upload-sim-aggr-nvsa",
            "aggr-ctx_only-sim-e2e-nvsa_ctx1_gen2",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_SCALE", "smoke")
        .env("PERF_OUTPUT_DIR", out.path())
        .env("CARGO_TARGET_DIR", target.path())
        .env_remove("PERF_TESTLIST")
        .env_remove("PERF_CONFIG_DIRS")
        .env_remove("OPEN_SEARCH_DB_BASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let tod = out.path().join("aggr_upload-sim-aggr-nvsa");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(tod.join("perf_records.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["s_test_case_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tiny_tp1_bs8-con2_iter2_48_24",
            "tiny_tp1_bs16-chunked-con4_iter1_64_16",
            "tiny_tp1_bs16-chunked-con1_iter2_32_32"
        ]
    );
    for r in &records {
        assert_eq!(r["s_runtime"], "aggr_server");
        assert_eq!(r["s_test_list"], "aggr_upload-sim-aggr-nvsa");
        assert_eq!(r["b_use_nv_sa_benchmark"], true);
        assert_eq!(r["l_startup_metrics_expected_server_count"], 1);
        assert!(r["d_token_throughput"].as_f64().unwrap() > 0.0);
        assert!(r.get("l_num_ctx_servers").is_none());
    }
    for f in [
        "trtllm-serve.0.log",
        "trtllm-serve.1.log",
        "trtllm-serve.0.addr",
        "trtllm-benchmark.1.1.log",
        "startup_metrics.1.json",
        "extra-llm-api-config.aggr.tiny_tp1_bs16-chunked.yml",
    ] {
        assert!(tod.join(f).exists(), "{f}");
    }
    let ctx = out.path().join("aggr-ctx_only-sim-e2e-nvsa_ctx1_gen2");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(ctx.join("perf_records.json")).unwrap())
            .unwrap();
    assert_eq!(
        records[0]["s_server_name"],
        "ctx_only-sim-e2e-nvsa_ctx1_gen2"
    );
    assert_eq!(records[0]["l_osl"], 1);
}
