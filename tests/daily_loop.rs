//! The perf engineer's daily loop through the harness binary (`tests/perf.rs`): a typo is never
//! a green run, an empty selection fails unless asked for, two name filters work, misspelt
//! knobs are named, skipped trials are `<skipped>` in JUnit, and test-list trials carry
//! pytest's names there.

use std::path::Path;
use std::process::Output;

const GOOD: &str = "metadata:\n  model_name: tiny\nbenchmark:\n  concurrency_list: 1\n  input_length: 8\n  output_length: 4\nhardware:\n  gpus_per_node: 1\n  num_ctx_servers: 1\n  num_gen_servers: 1\nworker_config:\n  ctx: {}\n  gen: {}\n";

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("configs");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ok-one.yaml"), GOOD).unwrap();
    std::fs::write(d.join("ok-two.yaml"), GOOD).unwrap();
    dir
}

fn harness(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = crate::harness_bin::harness_cmd();
    cmd.args(args)
        .env("PERF_CONFIG_DIRS", dir.join("configs"))
        .env("PERF_OUTPUT_DIR", dir.join("out"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_DB", dir.join("perf.sqlite"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_exact_typo_fails_with_a_suggestion() {
    let dir = fixture();
    let o = harness(dir.path(), &["--exact", "disagg-ok-onw"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("did you mean \"disagg-ok-one\""),
        "{}",
        text(&o)
    );
    // A substring meant for this harness fails too.
    let o = harness(dir.path(), &["disagg_upload-ok-thre"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A word that may be meant for another test binary only gets a loud notice.
    let o = harness(dir.path(), &["some_unit_test"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("NOTE: the name filter"), "{}", text(&o));
}

#[test]
fn an_empty_test_list_fails_unless_allowed() {
    let dir = fixture();
    let list = dir.path().join("empty.txt");
    std::fs::write(&list, "# nothing here\n\n").unwrap();
    let list = list.to_str().unwrap();
    let o = harness(dir.path(), &["--list"], &[("PERF_TESTLIST", list)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("PERF_ALLOW_EMPTY"), "{}", text(&o));
    let o = harness(
        dir.path(),
        &["--list"],
        &[("PERF_TESTLIST", list), ("PERF_ALLOW_EMPTY", "1")],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn two_filters_both_families_and_misspelt_knobs() {
    let dir = fixture();
    let o = harness(
        dir.path(),
        &["--list", "--format", "terse", "ok-one", "ok-two"],
        &[("PERF_SCAL", "smoke")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "disagg_upload-ok-one: test\naggr_upload-ctx_only-ok-one: test\n\
         disagg_upload-ok-two: test\naggr_upload-ctx_only-ok-two: test\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown environment variable PERF_SCAL (did you mean PERF_SCALE?)"),
        "{err}"
    );
    let o = harness(
        dir.path(),
        &["--list", "--format", "terse"],
        &[("PERF_ALL_FAMILIES", "1")],
    );
    // Both families of both configs, each with its ctx_only pair.
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 8);
}

#[test]
fn test_list_trials_carry_pytest_names_in_junit() {
    let dir = fixture();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        "perf/test_perf_sanity.py::test_e2e[disagg_upload-ok-one]\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let o = harness(
        dir.path(),
        &[],
        &[
            ("PERF_TESTLIST", list.to_str().unwrap()),
            ("PERF_JUNIT", junit.to_str().unwrap()),
            ("PERF_SCALE", "smoke"),
            ("PERF_PROGRESS", "lines"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let root = crate::support::xml::parse(&xml).unwrap();
    let case = root.find_all("testcase")[0];
    assert_eq!(case.attr("classname"), Some("perf.test_perf_sanity"));
    assert_eq!(case.attr("name"), Some("test_e2e[disagg_upload-ok-one]"));
    // Live progress on stderr (typed events → lines off a terminal), then the headline numbers
    // as the trial finishes; nothing of it on stdout.
    let err = String::from_utf8_lossy(&o.stderr);
    for phase in [
        "files written",
        "worker(s) up",
        "router ready at",
        "client 1/1",
    ] {
        assert!(err.contains(phase), "no {phase:?} in\n{err}");
    }
    assert!(err.contains("req/s"), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("router ready"));
}

#[test]
fn run_flags_stand_for_the_environment_knobs() {
    let help = crate::support::perfsanity_cmd()
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (flag, var) in [
        ("--scale", "PERF_SCALE"),
        ("--testlist", "PERF_TESTLIST"),
        ("--toolchain", "PERF_TOOLCHAIN"),
        ("--junit", "PERF_JUNIT"),
    ] {
        assert!(
            help.contains(flag) && help.contains(&format!("env: {var}")),
            "{help}"
        );
    }
    let dir = fixture();
    let junit = dir.path().join("run.xml");
    let o = crate::support::perfsanity_cmd()
        .args(["run", "--scale", "bogus", "disagg-ok-one"])
        .env("PERF_CONFIG_DIRS", dir.path().join("configs"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("PERF_SCALE"), "{}", text(&o));
    let o = crate::support::perfsanity_cmd()
        .args(["run", "--scale", "smoke", "--toolchain", "sim", "--junit"])
        .arg(&junit)
        .arg("disagg-ok-one")
        .env("PERF_CONFIG_DIRS", dir.path().join("configs"))
        .env("PERF_OUTPUT_DIR", dir.path().join("out"))
        .env("PERF_DB", dir.path().join("perf.sqlite"))
        .env("PERF_PROGRESS", "off")
        .env_remove("PERF_TESTLIST")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("disagg-ok-one")
    );
}

#[test]
fn a_trial_measured_in_the_same_session_is_not_a_baseline() {
    use crate::support::*;
    use perfsanity::plan::Scale;
    use perfsanity::plan::toolchain::Toolchain;
    use perfsanity::results::record_trial_at;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.sqlite");
    let config = own_config();
    let mut o = PlanOpts::new(OWN_STEM, &dir.path().join("out"));
    o.toolchain = Toolchain::Trtllm;
    o.scale = Scale::Full;
    let real = plan(&config, o);
    let mut ctx = context(&db, None, pr_ci(), "gb200");
    let start = day_ms("2025-05-02");
    let history_of = |ctx: &perfsanity::results::ResultsContext, k: f64, at: i64| {
        let r = record_trial_at(ctx, &real, &config, &own_results(&real, k), at).unwrap();
        r.verdict
            .cases
            .iter()
            .map(|c| c.history_docs)
            .sum::<usize>()
    };
    // Yesterday's run is history.
    assert_eq!(history_of(&ctx, 1.0, start - 86_400_000), 0);
    ctx.session_started_ms = Some(start);
    assert!(
        history_of(&ctx, 1.0, start + 1_000) > 0,
        "earlier sessions count"
    );
    // A sibling measured a minute later in the same session does not.
    let first = history_of(&ctx, 0.5, start + 60_000);
    let fresh = {
        let mut c = context(&dir.path().join("fresh.sqlite"), None, pr_ci(), "gb200");
        c.session_started_ms = Some(start);
        history_of(&c, 1.0, start + 1_000);
        history_of(&c, 0.5, start + 60_000)
    };
    assert_eq!(
        fresh, 0,
        "a fresh database has no baseline for the second trial"
    );
    assert_eq!(first, 2, "only the earlier session's records (two clients)");
}

/// `perfsanity run --tee` copies each client's output to stdout (through the edge's writer: the
/// runner itself never prints); without it the output only reaches the client's log.
#[test]
fn tee_copies_the_client_output_to_stdout() {
    let dir = fixture();
    let run = |tee: bool| {
        let mut cmd = crate::support::perfsanity_cmd();
        cmd.args(["run", "--scale", "smoke", "--toolchain", "sim"]);
        if tee {
            cmd.arg("--tee");
        }
        cmd.arg("disagg-ok-one")
            .env("PERF_CONFIG_DIRS", dir.path().join("configs"))
            .env("PERF_OUTPUT_DIR", dir.path().join("out"))
            .env("PERF_DB", dir.path().join("perf.sqlite"))
            .env("PERF_PROGRESS", "off");
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let block = "Serving Benchmark Result";
    assert!(
        run(true).contains(block),
        "--tee: no client output on stdout"
    );
    assert!(
        !run(false).contains(block),
        "client output on stdout without --tee"
    );
}
