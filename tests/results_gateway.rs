//! Uploads against a loopback stand-in for upstream's gateway (its real counterpart is internal to
//! NVIDIA; `support/gateway.rs` implements the documented contract): a successful post, then
//! connection refused, HTTP 500 and a gateway that never answers — in every failure case the
//! records stay pending and a later push delivers each exactly once. Credentials must never
//! show up in results, messages, logs, the database or artifacts. Simulator and smoke-scale
//! records never reach the gateway.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::support::gateway::{Mode, StandIn, refused_url};
use crate::support::*;
use perfsanity::config::PerfConfig;
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Plan, Scale};
use perfsanity::results::gateway::{POC_PROJECT, gateway_from_env};
use perfsanity::results::store::DEFAULT_LOCK_WAIT;
use perfsanity::results::{
    GatewaySettings, ResultsContext, Store, TrialResults, UploadOutcome, UploadState, push_pending,
    record_trial,
};
use serde_json::{Value, json};

#[derive(Clone)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged by this test binary (all levels, `log` records included).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Buf(b.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Fixture {
    dir: tempfile::TempDir,
    config: PerfConfig,
    plan: Plan,
}

fn fixture(toolchain: Toolchain, scale: Scale) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = own_config();
    let mut o = PlanOpts::new(OWN_STEM, &dir.path().join("out"));
    o.toolchain = toolchain;
    o.scale = scale;
    let plan = plan(&config, o);
    Fixture { dir, config, plan }
}

impl Fixture {
    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("perf.sqlite")
    }

    fn ctx(&self, gateway: Option<GatewaySettings>) -> ResultsContext {
        let gpu = if self.plan.toolchain == Toolchain::Sim {
            "sim"
        } else {
            "gb200"
        };
        context(&self.db(), gateway, pr_ci(), gpu)
    }

    fn record(&self, gateway: Option<GatewaySettings>) -> TrialResults {
        record_trial(
            &self.ctx(gateway),
            &self.plan,
            &self.config,
            &own_results(&self.plan, 1.0),
        )
        .unwrap()
    }

    fn rows(&self) -> Vec<perfsanity::results::store::Row> {
        Store::open(&self.db(), DEFAULT_LOCK_WAIT)
            .unwrap()
            .all(None)
            .unwrap()
    }
}

/// Asserts no secret appears in the results, the database files, the artifacts or the logs.
fn assert_no_leak(f: &Fixture, results: &TrialResults, gw: &StandIn, extra: &[String]) {
    let secrets = [gw.password.clone(), gw.user.clone(), {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", gw.user, gw.password))
    }];
    let captured = String::from_utf8_lossy(&logs().lock().unwrap()).to_string();
    assert!(
        captured.contains("record(s)") || captured.contains("attempt"),
        "logs are captured"
    );
    let mut texts = vec![
        format!("{results:?}"),
        results.lines().join("\n"),
        format!(
            "{:?}",
            f.ctx(Some(fast_gateway(&gw.base_url, &gw.user, &gw.password)))
        ),
        String::from_utf8_lossy(&logs().lock().unwrap()).to_string(),
    ];
    texts.extend(extra.iter().cloned());
    for entry in std::fs::read_dir(f.dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            texts.push(String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).to_string());
        }
    }
    let artifacts = f.plan.output_dir.join("perf_records.json");
    texts.push(std::fs::read_to_string(&artifacts).unwrap());
    for t in &texts {
        for s in &secrets {
            assert!(!t.contains(s.as_str()), "secret {s:?} leaked into:\n{t}");
        }
    }
}

fn ids(results: &TrialResults) -> Vec<String> {
    results
        .records
        .iter()
        .map(|r| r.record_id.clone())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn successful_post_delivers_each_record_once() {
    let _ = logs();
    let gw = StandIn::start();
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    let results = f.record(Some(fast_gateway(&gw.base_url, &gw.user, &gw.password)));
    assert_eq!(
        results.upload,
        UploadOutcome::Uploaded {
            records: 2,
            project: perfsanity::results::gateway::PROD_PROJECT.into()
        }
    );
    assert_eq!(sorted(gw.accepted_ids()), sorted(ids(&results)));
    // Protocol: one search (history first), one post of a JSON array with proxy basic auth.
    let seen = gw.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].path,
        "/opensearch/df-swdl-trtllm-infra-ci-prod-perf_sanity_info-*/_search"
    );
    let q: Value = serde_json::from_str(&seen[0].body).unwrap();
    let must = q["query"]["bool"]["must"].as_array().unwrap();
    assert!(must.contains(&json!({"term": {"b_is_post_merge": true}})));
    assert!(must.contains(&json!({"term": {"s_gpu_type": "gb200"}})));
    assert_eq!(q["size"], 5000);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(
        seen[1].path,
        "/dataflow2/swdl-trtllm-infra-ci-prod-perf_sanity_info/posting"
    );
    assert_eq!(seen[1].content_type.as_deref(), Some("application/json"));
    assert!(seen[1].proxy_authorization.is_some());
    // The stand-in refuses integers in d_ fields, so acceptance proves floats on the wire; and
    // the uploaded documents are exactly the stored records (with the verdict fields).
    let rows = f.rows();
    assert!(
        rows.iter()
            .all(|r| r.state == UploadState::Uploaded && r.attempts == 1)
    );
    for doc in gw.docs() {
        let row = rows
            .iter()
            .find(|r| Some(r.record_id.as_str()) == doc["_id"].as_str())
            .unwrap();
        for (k, v) in row.record.to_json_map() {
            assert_eq!(doc[&k], v, "{k}");
        }
        assert!(doc.get("s_perf_toolchain").is_none() && doc.get("s_perf_scale").is_none());
        assert_eq!(doc["s_regression_info"], "");
    }
    // Nothing is pending: a push sends nothing.
    let mut store = Store::open(&f.db(), DEFAULT_LOCK_WAIT).unwrap();
    let report = push_pending(
        &mut store,
        &fast_gateway(&gw.base_url, &gw.user, &gw.password),
    )
    .unwrap();
    assert_eq!(report.uploaded, 0);
    assert_eq!(gw.accepted_ids().len(), 2);
    assert_no_leak(&f, &results, &gw, &[]);
}

/// A failure case: the first upload fails, records stay pending with the reason; a later push to a
/// healthy gateway delivers each record exactly once, and a second push sends nothing.
fn fails_then_push_delivers_once(
    failing: &GatewaySettings,
    expect_reason: &str,
    failing_stand_in: Option<&StandIn>,
) {
    let _ = logs();
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    let started = Instant::now();
    let results = f.record(Some(failing.clone()));
    assert!(
        started.elapsed().as_secs() < 30,
        "bounded by timeouts × attempts"
    );
    let UploadOutcome::Pending { reason } = &results.upload else {
        panic!("expected pending, got {:?}", results.upload);
    };
    assert!(reason.contains(expect_reason), "{reason}");
    assert!(reason.contains("after 2 attempt(s)"), "{reason}");
    // The history query failed too, and the verdict says so.
    assert!(results.verdict.query_error.is_some());
    assert!(results.lines().join("\n").contains("NOT performed"));
    let rows = f.rows();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.state, UploadState::Pending);
        assert_eq!(r.attempts, 2);
        assert!(r.note.contains(expect_reason), "{}", r.note);
    }
    if let Some(s) = failing_stand_in {
        assert!(s.accepted_ids().is_empty());
    }

    let healthy = StandIn::start();
    let settings = fast_gateway(&healthy.base_url, &healthy.user, &healthy.password);
    let mut store = Store::open(&f.db(), DEFAULT_LOCK_WAIT).unwrap();
    let report = push_pending(&mut store, &settings).unwrap();
    assert_eq!(report.uploaded, 2, "{report:?}");
    assert!(report.failed.is_empty());
    assert_eq!(sorted(healthy.accepted_ids()), sorted(ids(&results)));
    let again = push_pending(&mut store, &settings).unwrap();
    assert_eq!(again.uploaded, 0);
    assert_eq!(healthy.accepted_ids().len(), 2, "each record exactly once");
    assert!(f.rows().iter().all(|r| r.state == UploadState::Uploaded));
    assert_no_leak(&f, &results, &healthy, std::slice::from_ref(reason));
}

#[test]
fn connection_refused_keeps_records_pending() {
    let gw = StandIn::start(); // only for its credentials
    // User info in the URL must not leak either.
    let url = refused_url().replace("http://", &format!("http://{}:{}@", gw.user, gw.password));
    let settings = fast_gateway(&url, &gw.user, &gw.password);
    fails_then_push_delivers_once(&settings, "cannot connect", None);
}

#[test]
fn http_500_keeps_records_pending() {
    let gw = StandIn::start();
    gw.set_post_mode(Mode::Status(500));
    gw.set_search_mode(Mode::Status(500));
    let settings = fast_gateway(&gw.base_url, &gw.user, &gw.password);
    fails_then_push_delivers_once(&settings, "HTTP 500", Some(&gw));
    // Bounded retries: two searches and two posts.
    let seen = gw.seen();
    assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 2);
    assert_eq!(seen.iter().filter(|s| s.method == "GET").count(), 2);
}

#[test]
fn timeout_keeps_records_pending() {
    let gw = StandIn::start();
    gw.set_post_mode(Mode::Hang);
    gw.set_search_mode(Mode::Hang);
    let settings = fast_gateway(&gw.base_url, &gw.user, &gw.password);
    fails_then_push_delivers_once(&settings, "timeout", Some(&gw));
}

#[test]
fn wrong_credentials_are_a_pending_upload_without_leaks() {
    let _ = logs();
    let gw = StandIn::start();
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    let results = f.record(Some(fast_gateway(
        &gw.base_url,
        &gw.user,
        "not-the-password",
    )));
    let UploadOutcome::Pending { reason } = &results.upload else {
        panic!("{:?}", results.upload)
    };
    assert!(reason.contains("407"), "{reason}");
    assert!(!reason.contains("not-the-password"));
    assert!(gw.accepted_ids().is_empty());
    assert_no_leak(&f, &results, &gw, std::slice::from_ref(reason));
}

#[test]
fn missing_credentials_leave_records_pending() {
    let gw = StandIn::start();
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    let mut settings = fast_gateway(&gw.base_url, &gw.user, &gw.password);
    settings.credentials = None;
    let results = f.record(Some(settings));
    let UploadOutcome::Pending { reason } = &results.upload else {
        panic!("{:?}", results.upload)
    };
    assert!(
        reason.contains("OPEN_SEARCH_DB_CREDENTIALS_USR"),
        "{reason}"
    );
    assert!(gw.seen().iter().all(|s| s.method != "POST"));
    assert!(f.rows().iter().all(|r| r.state == UploadState::Pending));
}

#[test]
fn sandbox_project_posts_without_auth() {
    let gw = StandIn::start();
    let env = [
        ("OPEN_SEARCH_DB_BASE_URL", gw.base_url.as_str()),
        ("USE_POC_DB", "TRUE"),
    ];
    let mut settings = gateway_from_env(&env).unwrap().unwrap();
    assert_eq!(settings.project, POC_PROJECT);
    settings.retry_pause = std::time::Duration::ZERO;
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    let results = f.record(Some(settings));
    assert!(
        matches!(results.upload, UploadOutcome::Uploaded { .. }),
        "{:?}",
        results.upload
    );
    let post = gw.seen().into_iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(post.path, format!("/dataflow2/{POC_PROJECT}/posting"));
    assert!(post.proxy_authorization.is_none() && post.authorization.is_none());
}

#[test]
fn simulator_and_smoke_records_never_reach_the_gateway() {
    for (toolchain, scale, reason) in [
        (Toolchain::Sim, Scale::Full, "simulator run"),
        (Toolchain::Sim, Scale::Smoke, "simulator run"),
        (Toolchain::Trtllm, Scale::Smoke, "smoke scale"),
    ] {
        let gw = StandIn::start();
        let f = fixture(toolchain, scale);
        let settings = fast_gateway(&gw.base_url, &gw.user, &gw.password);
        let results = f.record(Some(settings.clone()));
        assert_eq!(
            results.upload,
            UploadOutcome::Skipped {
                reason: reason.into()
            }
        );
        // Not even the history query goes out: their history is the local one.
        assert!(gw.seen().is_empty(), "{:?}", gw.seen());
        assert!(matches!(
            results.verdict.source,
            perfsanity::results::HistorySource::Embedded { .. }
        ));
        let rows = f.rows();
        assert!(
            rows.iter()
                .all(|r| r.state == UploadState::Skipped && r.note == reason)
        );
        assert!(rows.iter().all(|r| r.toolchain == toolchain.as_str()
            && r.scale == scale.as_str()
            && r.record.get("s_perf_toolchain").is_none()));
        if toolchain == Toolchain::Sim {
            assert!(
                rows.iter()
                    .all(|r| r.record.str("s_gpu_type") == Some("sim"))
            );
        }
        // A push never sends them.
        let mut store = Store::open(&f.db(), DEFAULT_LOCK_WAIT).unwrap();
        assert_eq!(push_pending(&mut store, &settings).unwrap().uploaded, 0);
        assert!(gw.seen().is_empty());
    }
}

#[test]
fn type_check_refusal_keeps_records_and_sends_nothing() {
    let gw = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = OWN_YAML.replace(
        "    max_batch_size: 64\n",
        "    max_batch_size: 64\n    attn_backend: 5\n",
    );
    let config =
        perfsanity::config::parse_perf_config(&yaml, Path::new("/configs/x.yaml")).unwrap();
    let plan = plan(&config, PlanOpts::new(OWN_STEM, &dir.path().join("out")));
    let ctx = context(
        &dir.path().join("db.sqlite"),
        Some(fast_gateway(&gw.base_url, &gw.user, &gw.password)),
        pr_ci(),
        "gb200",
    );
    let results = record_trial(&ctx, &plan, &config, &own_results(&plan, 1.0)).unwrap();
    let UploadOutcome::Refused { reason } = &results.upload else {
        panic!("{:?}", results.upload)
    };
    assert!(
        reason.contains("s_gen_attn_backend: expected str, found int (5)"),
        "{reason}"
    );
    assert!(
        results.notes.iter().any(|n| n.contains("attn_backend")),
        "{:?}",
        results.notes
    );
    assert!(gw.seen().iter().all(|s| s.method != "POST"));
    let store = Store::open(&ctx.db_path, DEFAULT_LOCK_WAIT).unwrap();
    let rows = store.all(None).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == UploadState::Refused));
}

#[test]
fn gateway_history_drives_a_failing_pre_merge_verdict() {
    let gw = StandIn::start();
    let f = fixture(Toolchain::Trtllm, Scale::Full);
    // Post-merge history of both cases, three days, at the values the run will beat by far.
    let mut docs = Vec::new();
    for (i, client) in f.plan.clients.iter().enumerate() {
        for day in 1..=3 {
            docs.push(json!({
                "_id": format!("hist-{i}-{day}"),
                "s_test_case_name": client.test_case_name,
                "s_gpu_type": "gb200",
                "s_runtime": "multi_node_disagg_server",
                "s_branch": "github-pr-9876",
                "b_is_valid": true, "b_is_post_merge": true, "b_is_baseline": false,
                "d_token_throughput": 2560.0 * (1.0 + i as f64) * 2.0,
                "d_total_token_throughput": 12800.0 * (1.0 + i as f64),
                "ts_created": day_ms(&format!("2099-01-0{day}")),
                "@timestamp": day_ms(&format!("2099-01-0{day}")),
            }));
        }
    }
    // Far-future timestamps stay inside the 90-day window of "now".
    gw.seed(docs);
    let results = f.record(Some(fast_gateway(&gw.base_url, &gw.user, &gw.password)));
    assert_eq!(
        results
            .verdict
            .cases
            .iter()
            .map(|c| c.history_docs)
            .sum::<usize>(),
        6
    );
    let failure = results
        .regression_failure()
        .expect("token throughput halved");
    assert_eq!(
        failure.class,
        perfsanity::results::outcome::FailureClass::Regression
    );
    assert!(
        failure
            .message
            .contains("d_token_throughput: value=2560.0000 baseline=5120.0000")
    );
    // Uploaded anyway, with the verdict inside.
    assert!(matches!(results.upload, UploadOutcome::Uploaded { .. }));
    let uploaded: Vec<Value> = gw
        .docs()
        .into_iter()
        .filter(|d| !d["_id"].as_str().unwrap().starts_with("hist-"))
        .collect();
    assert_eq!(uploaded.len(), 2);
    assert!(uploaded.iter().all(|d| d["b_is_regression"] == true));
}
