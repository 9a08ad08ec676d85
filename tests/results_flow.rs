//! `record_trial` end to end on the embedded history: records stored before anything else,
//! verdicts from earlier local runs, simulator / smoke / real histories never mixed, store
//! failures that still keep the records, the environment knobs, and the `results` CLI verbs.

use std::path::Path;

use crate::support::gateway::StandIn;
use crate::support::*;
use assert_cmd::Command;
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Plan, Scale};
use perfsanity::results::outcome::FailureClass;
use perfsanity::results::store::{DEFAULT_LOCK_WAIT, STALE_AFTER_MS};
use perfsanity::results::{
    ClientResult, HistorySource, ResultsContext, ResultsError, Store, TrialResults, UploadOutcome,
    UploadState, record_trial_at,
};

fn plan_for(root: &Path, toolchain: Toolchain, scale: Scale, upload: bool) -> Plan {
    let config = own_config();
    let mut o = PlanOpts::new(OWN_STEM, &root.join("out"));
    o.toolchain = toolchain;
    o.scale = scale;
    o.upload = upload;
    plan(&config, o)
}

fn run(ctx: &ResultsContext, plan: &Plan, k: f64, date: &str) -> TrialResults {
    record_trial_at(
        ctx,
        plan,
        &own_config(),
        &own_results(plan, k),
        day_ms(date),
    )
    .unwrap()
}

#[test]
fn local_history_gives_real_runs_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    let ctx = context(&db, None, pr_ci(), "gb200");
    let real = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, true);
    let first = run(&ctx, &real, 1.0, "2025-05-01");
    assert_eq!(
        first.upload,
        UploadOutcome::NotRequested {
            reason: "OPEN_SEARCH_DB_BASE_URL is not set".into()
        }
    );
    assert!(first.verdict.cases.iter().all(|c| c.history_docs == 0));
    assert!(matches!(
        first.verdict.source,
        HistorySource::Embedded { .. }
    ));
    run(&ctx, &real, 1.02, "2025-05-02");
    run(&ctx, &real, 0.98, "2025-05-03");
    // Within 10 %: passes, each case compared against three local runs.
    let ok = run(&ctx, &real, 0.97, "2025-05-04");
    assert!(!ok.verdict.fails_trial);
    assert!(ok.verdict.cases.iter().all(|c| c.history_docs == 3));
    // Throughput down 40 %: a pre-merge real run fails, with a Regression failure.
    let bad = run(&ctx, &real, 0.6, "2025-05-05");
    assert!(bad.verdict.fails_trial, "{}", bad.lines().join("\n"));
    let failure = bad.regression_failure().unwrap();
    assert_eq!(failure.class, FailureClass::Regression);
    assert!(
        failure.message.contains("d_token_throughput"),
        "{}",
        failure.message
    );
    // The stored record carries the verdict.
    let store = Store::open(&db, DEFAULT_LOCK_WAIT).unwrap();
    let rows = store.batch_rows(&bad.batch).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.record.bool("b_is_regression") == Some(true))
    );
    assert!(rows.iter().all(|r| r.state == UploadState::NotRequested));
    assert!(
        store
            .verdict(&bad.batch)
            .unwrap()
            .unwrap()
            .contains("FAILS")
    );
    // Older than 90 days: out of the window.
    let later = run(&ctx, &real, 0.6, "2025-12-01");
    assert!(later.verdict.cases.iter().all(|c| c.history_docs == 0));
}

#[test]
fn simulator_smoke_and_real_histories_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    let real = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, false);
    let smoke = plan_for(dir.path(), Toolchain::Trtllm, Scale::Smoke, false);
    let sim = plan_for(dir.path(), Toolchain::Sim, Scale::Full, false);
    let real_ctx = context(&db, None, pr_ci(), "gb200");
    // The simulator's "GPU" is `sim`, so even the match keys keep it apart.
    let sim_ctx = context(&db, None, pr_ci(), "sim");
    // Lots of fast simulator and smoke history.
    for d in ["2025-05-01", "2025-05-02", "2025-05-03"] {
        run(&sim_ctx, &sim, 100.0, d);
        run(&real_ctx, &smoke, 50.0, d);
    }
    // A real run has no history at all: nothing simulated or smoke-scale counts.
    let r = run(&real_ctx, &real, 1.0, "2025-05-04");
    assert!(
        r.verdict.cases.iter().all(|c| c.history_docs == 0),
        "{:#?}",
        r.verdict.cases
    );
    assert!(!r.verdict.fails_trial);
    // A real history entry does not feed a simulator verdict either: sim history only.
    let s = run(&sim_ctx, &sim, 100.0, "2025-05-05");
    assert!(s.verdict.cases.iter().all(|c| c.history_docs == 3));
    let HistorySource::Embedded {
        toolchain, scale, ..
    } = &s.verdict.source
    else {
        panic!()
    };
    assert_eq!((toolchain.as_str(), scale.as_str()), ("sim", "full"));
    // Smoke history is per scale.
    let m = run(&real_ctx, &smoke, 50.0, "2025-05-05");
    assert!(m.verdict.cases.iter().all(|c| c.history_docs == 3));
}

#[test]
fn simulator_regressions_are_informational_unless_asked() {
    let history = |fail: Option<bool>| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.sqlite");
        let sim = plan_for(dir.path(), Toolchain::Sim, Scale::Full, true);
        let mut ctx = context(&db, None, pr_ci(), "sim");
        ctx.fail_on_regression = fail;
        for d in ["2025-05-01", "2025-05-02"] {
            run(&ctx, &sim, 1.0, d);
        }
        (dir, ctx, sim)
    };
    let (_dir, ctx, sim) = history(None);
    let r = run(&ctx, &sim, 0.5, "2025-05-03");
    assert!(r.verdict.any_regression());
    assert!(!r.verdict.fails_trial);
    assert!(r.lines().join("\n").contains("simulator run"));
    assert_eq!(
        r.upload,
        UploadOutcome::Skipped {
            reason: "simulator run".into()
        }
    );
    let (_dir, ctx, sim) = history(Some(true));
    let r = run(&ctx, &sim, 0.5, "2025-05-03");
    assert!(r.verdict.fails_trial);
}

#[test]
fn non_upload_trials_and_missing_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dirs/perf.sqlite");
    let gw = StandIn::start();
    let ctx = context(
        &db,
        Some(fast_gateway(&gw.base_url, &gw.user, &gw.password)),
        pr_ci(),
        "gb200",
    );
    let plain = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, false);
    let r = run(&ctx, &plain, 1.0, "2025-05-01");
    assert!(
        matches!(&r.upload, UploadOutcome::NotRequested { reason } if reason.contains("not an _upload trial"))
    );
    // Regression is still checked for non-upload ids when the gateway is configured (gotcha 21).
    assert!(matches!(r.verdict.source, HistorySource::Gateway { .. }));
    assert!(gw.seen().iter().all(|s| s.method == "GET"));
    assert_eq!(
        Store::open(&db, DEFAULT_LOCK_WAIT)
            .unwrap()
            .all(None)
            .unwrap()
            .len(),
        2
    );

    // Missing metrics: upstream's message, class MissingMetric, nothing stored.
    let mut results: Vec<ClientResult> = own_results(&plain, 1.0);
    results[1].metrics.shift_remove("mean_ttft");
    let err =
        record_trial_at(&ctx, &plain, &own_config(), &results, day_ms("2025-05-02")).unwrap_err();
    assert_eq!(err.class(), FailureClass::MissingMetric);
    assert!(
        err.to_string()
            .contains("Client 1 are missing: ['mean_ttft']"),
        "{err}"
    );
    assert_eq!(
        Store::open(&db, DEFAULT_LOCK_WAIT)
            .unwrap()
            .all(None)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_broken_database_still_keeps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: SQLite cannot open it.
    let db = dir.path().join("perf.sqlite");
    std::fs::create_dir_all(&db).unwrap();
    let ctx = context(&db, None, pr_ci(), "gb200");
    let plan = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, true);
    let err = record_trial_at(&ctx, &plan, &own_config(), &own_results(&plan, 1.0), 0).unwrap_err();
    assert!(matches!(err, ResultsError::NotStored { .. }));
    assert_eq!(err.class(), FailureClass::Results);
    let artifact = plan.output_dir.join("perf_records.json");
    assert!(
        err.to_string().contains(&artifact.display().to_string()),
        "{err}"
    );
    let saved: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&artifact).unwrap()).unwrap();
    assert_eq!(saved.len(), 2);
    assert!(saved[0]["_id"].as_str().unwrap().len() == 32);
}

#[test]
fn schema_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    drop(Store::open(&db, DEFAULT_LOCK_WAIT).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, perfsanity::results::store::SCHEMA_VERSION);
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = Store::open(&db, DEFAULT_LOCK_WAIT)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("schema version 99") && err.contains("perf.sqlite"),
        "{err}"
    );
}

#[test]
fn context_from_env() {
    // The history lives at the project root, not under target/ (which `cargo clean` deletes).
    let target = Path::new("/repo");
    let ctx =
        ResultsContext::from_env_with_gpu(&[("BUILD_ID", "9")], target, "h200".into()).unwrap();
    assert_eq!(
        ctx.db_path,
        Path::new("/repo/perf-history/perf-results.sqlite")
    );
    assert!(ctx.gateway.is_none());
    assert_eq!(ctx.ci.build_id, "9");
    let env = [
        ("PERF_DB", "/tmp/x.sqlite"),
        ("OPEN_SEARCH_DB_BASE_URL", "http://gw.example/"),
        ("OPEN_SEARCH_DB_CREDENTIALS_USR", "u"),
        ("OPEN_SEARCH_DB_CREDENTIALS_PSW", "hunter2-pw"),
        ("PERF_DB_POST_TIMEOUT", "2.5"),
        ("PERF_DB_ATTEMPTS", "3"),
        ("PERF_FAIL_ON_REGRESSION", "0"),
        ("PERF_REGRESSION_THRESHOLDS", "token_throughput=0.08"),
        ("stageName", "A-FUNCTIONAL-ONLY"),
    ];
    let ctx = ResultsContext::from_env_with_gpu(&env, target, "h200".into()).unwrap();
    let g = ctx.gateway.as_ref().unwrap();
    assert_eq!(g.base_url, "http://gw.example");
    assert_eq!(g.post_timeout.as_millis(), 2500);
    assert_eq!(g.query_timeout.as_secs(), 10);
    assert_eq!(g.attempts, 3);
    assert_eq!(ctx.fail_on_regression, Some(false));
    assert_eq!(ctx.threshold_overrides["d_token_throughput"], 0.08);
    assert!(!format!("{ctx:?}").contains("hunter2-pw"));
    for (k, v) in [
        ("PERF_DB_ATTEMPTS", "9"),
        ("PERF_DB_QUERY_TIMEOUT", "soon"),
        ("PERF_FAIL_ON_REGRESSION", "maybe"),
        ("PERF_REGRESSION_THRESHOLDS", "token_throughput=10"),
        ("OPEN_SEARCH_DB_BASE_URL", "gw.example"),
    ] {
        // The first matching entry wins, so the knob under test comes first.
        let env = [(k, v), ("OPEN_SEARCH_DB_BASE_URL", "http://gw")];
        let err = ResultsContext::from_env_with_gpu(&env, target, "h200".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains(k), "{k}: {err}");
    }
    // The simulator never runs nvidia-smi: its GPU type is "sim".
    let ctx = ResultsContext::from_env(&[("X", "1")], target, Toolchain::Sim).unwrap();
    assert_eq!(ctx.gpu_type, "sim");
}

fn cli() -> Command {
    Command::from_std(crate::support::perfsanity_cmd())
}

#[test]
fn cli_show_and_push() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    let gw = StandIn::start();
    // Record against a dead gateway: pending.
    let dead = fast_gateway(
        &crate::support::gateway::refused_url(),
        &gw.user,
        &gw.password,
    );
    let ctx = context(&db, Some(dead), pr_ci(), "gb200");
    let plan = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, true);
    let now = perfsanity::results::store::now_ms();
    let r = record_trial_at(&ctx, &plan, &own_config(), &own_results(&plan, 1.0), now).unwrap();
    assert!(matches!(r.upload, UploadOutcome::Pending { .. }));

    let out = cli()
        .args(["results", "show", "--trial", &plan.trial, "--verdict"])
        .env("PERF_DB", &db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("con4_iter2_isl1024_osl128"), "{text}");
    assert!(text.contains("pending: POST"), "{text}");
    assert!(text.contains("trtllm/full"), "{text}");
    assert!(text.contains("regression check NOT performed"), "{text}");
    assert!(text.contains("2 pending"), "{text}");

    let out = cli()
        .args(["results", "show", "--json", "--last", "1"])
        .env("PERF_DB", &db)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["upload_state"], "pending");
    assert_eq!(
        lines[0]["record"]["s_test_case_name"],
        r.records[1].test_case_name
    );

    // Push without a gateway: a clear error.
    let out = cli()
        .args(["results", "push"])
        .env("PERF_DB", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPEN_SEARCH_DB_BASE_URL is not set"));

    // Push to the stand-in: delivered once; a second push has nothing to do.
    let push = || {
        cli()
            .args(["results", "push"])
            .env("PERF_DB", &db)
            .env("OPEN_SEARCH_DB_BASE_URL", &gw.base_url)
            .env("OPEN_SEARCH_DB_CREDENTIALS_USR", &gw.user)
            .env("OPEN_SEARCH_DB_CREDENTIALS_PSW", &gw.password)
            .output()
            .unwrap()
    };
    let out = push();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pushed 2 record(s)\n");
    let out = push();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nothing pending\n");
    let mut ids = gw.accepted_ids();
    ids.sort();
    let mut want: Vec<String> = r.records.iter().map(|x| x.record_id.clone()).collect();
    want.sort();
    assert_eq!(ids, want);

    // No database: show says so.
    let out = cli()
        .args(["results", "show"])
        .env("PERF_DB", dir.path().join("absent.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no results database"));
}

#[test]
fn abandoned_holds_and_claims_are_pushed_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    let plan = plan_for(dir.path(), Toolchain::Trtllm, Scale::Full, true);
    let config = own_config();
    let ci = pr_ci();
    let built = perfsanity::results::build_records(
        &plan,
        &config,
        &own_results(&plan, 1.0),
        &perfsanity::results::record::RecordInputs {
            gpu_type: "gb200",
            ci: &ci,
            startup: &[],
        },
    );
    let mut store = Store::open(&db, DEFAULT_LOCK_WAIT).unwrap();
    let long_ago = perfsanity::results::store::now_ms() - 2 * STALE_AFTER_MS;
    let rows: Vec<_> = built
        .records
        .iter()
        .map(|r| perfsanity::results::store::NewRow {
            record: r,
            trial: &plan.trial,
            client_index: 0,
            toolchain: "trtllm",
            scale: "full",
            artifacts: &plan.output_dir,
        })
        .collect();
    // A process died between storing and deciding (held), another mid-upload (uploading).
    store
        .insert_batch("b1", &rows[..1], UploadState::Held, "", "", long_ago)
        .unwrap();
    store
        .insert_batch("b2", &rows[1..], UploadState::Pending, "", "", long_ago)
        .unwrap();
    let claimed = store
        .claim_uploadable("dead-process", Some("b2"), long_ago)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // A fresh held row (a trial in progress right now) is left alone.
    store
        .insert_batch(
            "b3",
            &rows[..1],
            UploadState::Held,
            "",
            "",
            perfsanity::results::store::now_ms(),
        )
        .unwrap();
    let gw = StandIn::start();
    let report = perfsanity::results::push_pending(
        &mut store,
        &fast_gateway(&gw.base_url, &gw.user, &gw.password),
    )
    .unwrap();
    assert_eq!(report.uploaded, 2, "{report:?}");
    let states: Vec<(String, UploadState)> = store
        .all(None)
        .unwrap()
        .into_iter()
        .map(|r| (r.batch, r.state))
        .collect();
    assert!(
        states.contains(&("b3".into(), UploadState::Held)),
        "{states:?}"
    );
}
