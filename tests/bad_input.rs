//! Bad input gets one clear error naming the file and the key or line — never a panic, never a
//! silent default. A table of broken configs, catalogs, test lists, ids and env knobs.

use std::path::{Path, PathBuf};

use perfsanity::app::settings::Settings;
use perfsanity::catalog::scan::Catalog;
use perfsanity::catalog::selection::{all_trials, testlist_trials};
use perfsanity::catalog::testlist::{load_testlist, parse_test_db};
use perfsanity::config::parse_perf_config;

/// A small valid config; each case below breaks one thing.
const GOOD: &str = "\
metadata:
  model_name: tiny
benchmark:
  mode: e2e
  use_nv_sa_benchmark: false
  multi_round: 2
  concurrency_list: '1 2'
  input_length: 64
  output_length: 16
hardware:
  gpus_per_node: 1
  num_ctx_servers: 1
  num_gen_servers: 1
environment:
  worker_env_var: A=1 B=2
worker_config:
  ctx:
    tensor_parallel_size: 1
  gen:
    tensor_parallel_size: 1
";

fn with(find: &str, replace: &str) -> String {
    assert!(GOOD.contains(find), "test table bug: {find:?} not in GOOD");
    GOOD.replacen(find, replace, 1)
}

#[test]
fn good_config_is_good() {
    parse_perf_config(GOOD, Path::new("good.yaml")).unwrap();
}

#[test]
fn config_errors_name_file_key_and_line() {
    // (case, text, substrings the one error must contain)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "yaml syntax",
            with("  mode: e2e\n", "  mode: [e2e\n"),
            vec!["bad.yaml:", "YAML syntax error"],
        ),
        (
            "duplicate key",
            with("  multi_round: 2\n", "  multi_round: 2\n  multi_round: 3\n"),
            vec!["bad.yaml:7", "duplicated key"],
        ),
        (
            "typo key",
            with("  concurrency_list:", "  concurency_list:"),
            vec![
                "bad.yaml:7",
                "`benchmark.concurency_list`",
                "did you mean `concurrency_list`",
            ],
        ),
        (
            "unknown section",
            with("hardware:", "hardwares:\n  x: 1\nhardware:"),
            vec!["bad.yaml:10", "`hardwares`", "unknown key"],
        ),
        (
            "wrong type",
            with("multi_round: 2", "multi_round: two"),
            vec![
                "bad.yaml:6",
                "`benchmark.multi_round`",
                "expected a non-negative integer",
                "\"two\"",
            ],
        ),
        (
            "bad concurrency token",
            with("'1 2'", "'1 two'"),
            vec!["bad.yaml:7", "`benchmark.concurrency_list`", "\"two\""],
        ),
        (
            "empty concurrency",
            with("'1 2'", "' '"),
            vec!["bad.yaml:7", "`benchmark.concurrency_list`", "empty"],
        ),
        (
            "zero concurrency",
            with("'1 2'", "[1, 0]"),
            vec![
                "bad.yaml:7",
                "`benchmark.concurrency_list`",
                "positive integer",
            ],
        ),
        (
            "concurrency mapping",
            with("'1 2'", "{a: 1}"),
            vec!["bad.yaml:7", "`benchmark.concurrency_list`", "a mapping"],
        ),
        (
            "missing model",
            with("  model_name: tiny\n", "  precision: fp8\n"),
            vec!["bad.yaml:", "`metadata.model_name`", "required key missing"],
        ),
        (
            "missing gpus_per_node",
            with("  gpus_per_node: 1\n", ""),
            vec!["bad.yaml:10", "`hardware.gpus_per_node`", "required"],
        ),
        (
            "missing gen block",
            with("  gen:\n    tensor_parallel_size: 1\n", ""),
            vec![
                "bad.yaml:",
                "`worker_config.gen`",
                "required section missing",
            ],
        ),
        (
            "bad mode",
            with("mode: e2e", "mode: e2e_only"),
            vec!["bad.yaml:4", "`benchmark.mode`", "e2e, gen_only"],
        ),
        (
            "bare env word",
            with("A=1 B=2", "A=1 oops"),
            vec!["bad.yaml:15", "`environment.worker_env_var`", "\"oops\""],
        ),
        (
            "unbalanced quote",
            with("A=1 B=2", "A=\"1 B=2"),
            vec!["bad.yaml:15", "`environment.worker_env_var`", "unbalanced"],
        ),
        (
            "server_config_extra port",
            format!("{GOOD}server_config_extra:\n  port: 8000\n"),
            vec!["bad.yaml:22", "`server_config_extra.port`", "harness-owned"],
        ),
        (
            "worker tp as string",
            with(
                "  ctx:\n    tensor_parallel_size: 1",
                "  ctx:\n    tensor_parallel_size: '4'",
            ),
            vec![
                "bad.yaml:18",
                "`worker_config.ctx.tensor_parallel_size`",
                "integer",
            ],
        ),
        (
            "ratio out of range",
            with(
                "  multi_round: 2\n",
                "  multi_round: 2\n  benchmark_ratio: 1.5\n",
            ),
            vec!["bad.yaml:7", "`benchmark.benchmark_ratio`", "[0, 1)"],
        ),
        (
            "unsupported client",
            with(
                "  multi_round: 2\n",
                "  multi_round: 2\n  benchmark_client: agentx\n",
            ),
            vec![
                "bad.yaml:7",
                "`benchmark.benchmark_client`",
                "not supported",
            ],
        ),
        (
            "conflicting lengths",
            format!("{GOOD}sequence:\n  input_length: 128\n"),
            vec![
                "bad.yaml:8",
                "`benchmark.input_length`",
                "conflicts with sequence.input_length",
            ],
        ),
        (
            "bad fallback",
            with(
                "  multi_round: 2\n",
                "  multi_round: 2\n  dataset_fallback: maybe\n",
            ),
            vec!["bad.yaml:7", "`benchmark.dataset_fallback`", "random"],
        ),
        (
            "section not a mapping",
            with(
                "environment:\n  worker_env_var: A=1 B=2\n",
                "environment: [1]\n",
            ),
            vec!["bad.yaml:14", "`environment`", "expected a mapping"],
        ),
        (
            "top-level list",
            "- a\n- b\n".to_string(),
            vec!["bad.yaml:1", "top level"],
        ),
        ("empty file", String::new(), vec!["bad.yaml:1", "empty"]),
        (
            "bool as string",
            with("use_nv_sa_benchmark: false", "use_nv_sa_benchmark: 'no'"),
            vec![
                "bad.yaml:5",
                "`benchmark.use_nv_sa_benchmark`",
                "true or false",
            ],
        ),
        (
            "num_gen zero",
            with("num_gen_servers: 1", "num_gen_servers: 0"),
            vec!["bad.yaml:13", "`hardware.num_gen_servers`", "≥ 1"],
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, text, needles) in cases {
        let err = match parse_perf_config(&text, Path::new("bad.yaml")) {
            Ok(_) => panic!("case {name:?}: accepted\n{text}"),
            Err(e) => e.to_string(),
        };
        for needle in needles {
            assert!(
                err.contains(needle),
                "case {name:?}: {needle:?} not in:\n{err}"
            );
        }
    }
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn duplicate_stem_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "test_configs/disagg/perf/same.yaml", GOOD);
    let b = write(dir.path(), "test_configs/wideep/perf/same.yaml", GOOD);
    let cat = Catalog::scan(&perfsanity::catalog::scan::config_dirs(dir.path(), None)).unwrap();
    let trials = all_trials(&cat);
    // disagg_upload/disagg and the aggregated-runtime ctx_only pair.
    assert_eq!(trials.len(), 4);
    for t in &trials {
        let e = t.preflight_error.as_deref().unwrap();
        assert!(
            e.contains(&a.display().to_string()) && e.contains(&b.display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn testlist_problems_become_failing_trials() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "test_configs/disagg/perf/tiny-one.yaml", GOOD);
    write(dir.path(), "test_configs/wideep/perf/tiny-two.yaml", GOOD);
    let list = write(
        dir.path(),
        "list.txt",
        "disagg-tiny-one\ndisagg_upload-tiny-on TIMEOUT (5)\nperf/test_perf.py::test_perf[x]\nfoo bar baz\n\
         disagg-tiny-one TIMEOUT (soon)\naggr_upload-llama-x\ndisagg-tiny-one\n",
    );
    let cat = Catalog::scan(&perfsanity::catalog::scan::config_dirs(dir.path(), None)).unwrap();
    let trials = testlist_trials(&cat, &load_testlist(&list).unwrap());
    let failing: Vec<(String, String)> = trials
        .iter()
        .filter_map(|t| t.preflight_error.clone().map(|e| (t.name.clone(), e)))
        .collect();
    let expect = [
        ("list.txt:2", "did you mean \"tiny-one\""),
        ("list.txt:3", "not a perf-sanity test"),
        ("list.txt:4", "unexpected text"),
        ("list.txt:5", "TIMEOUT (soon)"),
        ("list.txt:6", "no config named \"llama\""),
        ("list.txt:7", "listed twice (first at line 1)"),
    ];
    assert_eq!(failing.len(), expect.len(), "{failing:#?}");
    for (loc, needle) in expect {
        assert!(
            failing
                .iter()
                .any(|(_, e)| e.contains(loc) && e.contains(needle)),
            "no failing trial with {loc} and {needle:?}: {failing:#?}"
        );
    }
    assert_eq!(
        trials
            .iter()
            .filter(|t| t.preflight_error.is_none())
            .count(),
        1
    );
}

#[test]
fn test_db_structure_errors_name_the_line() {
    let err = parse_test_db(
        "version: 1\nsuite:\n- tests: [a]\n  when: post\n",
        Path::new("l.yml"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("l.yml:4") && err.to_string().contains("\"when\""),
        "{err}"
    );
    let err = parse_test_db("version: 1\nsuite: 7\n", Path::new("l.yml")).unwrap_err();
    assert!(err.to_string().contains("l.yml:2"), "{err}");
    let err =
        parse_test_db("version: 1\nsuite:\n- condition: {}\n", Path::new("l.yml")).unwrap_err();
    assert!(err.to_string().contains("no `tests`"), "{err}");
}

#[test]
fn bad_env_knobs_are_rejected() {
    let root = Path::new("/nonexistent-root");
    for (env, needle) in [
        ([("PERF_TOOLCHAIN", "gpu")], "PERF_TOOLCHAIN=\"gpu\""),
        ([("PERF_SCALE", "tiny")], "PERF_SCALE=\"tiny\""),
        ([("PERF_DATASET_FALLBACK", "yes")], "PERF_DATASET_FALLBACK"),
        (
            [("PERF_TESTLIST", "/no/such/list.txt")],
            "PERF_TESTLIST=/no/such/list.txt",
        ),
        // Timeouts are parsed into durations here, before any trial is planned.
        (
            [("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT", "soon")],
            "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT=\"soon\" is not a positive number",
        ),
        (
            [("TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT", "-5")],
            "TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT=\"-5\"",
        ),
        (
            [("PERF_STALL_S", "2m")],
            "PERF_STALL_S=\"2m\": expected a whole number of seconds",
        ),
        (
            [("PERF_DB_LOCK_WAIT_S", "soon")],
            "PERF_DB_LOCK_WAIT_S=\"soon\": expected a whole number",
        ),
    ] {
        let err = Settings::from_env(&env, root, &root.join("target")).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}
