//! Hostile input, class by class (issue 15): every setting that is present but unusable is an
//! error; numbers that would wrap are config errors naming the key; nesting, key counts and file
//! sizes are bounded; what can be checked is checked before the first process starts; values
//! that become paths are checked, and what reaches the terminal is escaped. Each test closes a
//! class with more than the one example the issue gave.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

const GOOD: &str = "metadata:\n  model_name: tiny\nbenchmark:\n  concurrency_list: 1\n  \
                    input_length: 8\n  output_length: 4\nhardware:\n  gpus_per_node: 1\n  \
                    num_ctx_servers: 1\n  num_gen_servers: 1\nworker_config:\n  ctx: {}\n  gen: {}\n";

/// A temp folder with `configs/ok.yaml` (valid).
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(configs.join("ok.yaml"), GOOD).unwrap();
    (dir, configs)
}

fn perfsanity(dir: &Path) -> Command {
    let mut cmd = Command::from_std(crate::support::perfsanity_cmd());
    cmd.current_dir(dir)
        .env("PERF_CONFIG_DIRS", dir.join("configs"))
        .env("PERF_OUTPUT_DIR", dir.join("out"))
        .env("PERF_DB", dir.join("perf.sqlite"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("CARGO_TARGET_DIR", dir.join("target"));
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn check(dir: &Path, env: &[(&str, &OsStr)]) -> Output {
    let mut cmd = perfsanity(dir);
    cmd.arg("check");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

// ---- class 1: no silent fallbacks -------------------------------------------------------------

#[test]
fn knobs_that_are_set_but_unusable_are_errors() {
    let (dir, _) = fixture();
    let d = dir.path();
    let list = d.join("list.txt");
    std::fs::write(&list, "disagg-ok\n").unwrap();
    let not_utf8 = OsStr::from_bytes(b"list\xff.txt");
    for (name, value, expected) in [
        (
            "PERF_TESTLIST",
            not_utf8,
            "PERF_TESTLIST is set but its value is not UTF-8",
        ),
        ("PERF_SCALE", not_utf8, "PERF_SCALE is set but"),
        ("PERF_OUTPUT_DIR", not_utf8, "PERF_OUTPUT_DIR is set but"),
        ("SLURM_JOB_ID", not_utf8, "SLURM_JOB_ID is set but"),
        (
            "PERF_LAUNCHER_GEN_LOGS",
            OsStr::new("yes"),
            "PERF_LAUNCHER_GEN_LOGS=\"yes\"",
        ),
        (
            "PERF_ALLOW_EMPTY_TESTLIST",
            OsStr::new("true"),
            "PERF_ALLOW_EMPTY_TESTLIST=",
        ),
        (
            "PERF_TRIAL_TIMEOUT_S",
            OsStr::new("18446744073709551615"),
            "at most 2592000",
        ),
        (
            "PERF_TRIAL_TIMEOUT_S",
            OsStr::new("0"),
            "PERF_TRIAL_TIMEOUT_S",
        ),
    ] {
        for verb in ["list", "check"] {
            let o = perfsanity(d).arg(verb).env(name, value).output().unwrap();
            assert_eq!(o.status.code(), Some(2), "{name} {verb}: {}", text(&o));
            assert!(text(&o).contains(expected), "{name} {verb}: {}", text(&o));
            assert!(!text(&o).contains("panicked"), "{}", text(&o));
        }
    }
}

#[test]
fn empty_and_comment_only_test_lists_select_nothing_and_fail() {
    let (dir, _) = fixture();
    let d = dir.path();
    for (name, body) in [
        ("empty.txt", ""),
        ("comments.txt", "# nothing yet\n\n   # still nothing\n"),
        (
            "db.yml",
            "version: 0.0.1\nctx:\n- condition: {}\n  tests: []\n",
        ),
    ] {
        let list = d.join(name);
        std::fs::write(&list, body).unwrap();
        for verb in ["list", "check"] {
            let o = perfsanity(d)
                .arg(verb)
                .env("PERF_TESTLIST", &list)
                .output()
                .unwrap();
            assert!(!o.status.success(), "{name} {verb}: {}", text(&o));
            assert!(
                text(&o).contains("selects no tests"),
                "{name}: {}",
                text(&o)
            );
        }
        let o = perfsanity(d)
            .arg("list")
            .env("PERF_TESTLIST", &list)
            .env("PERF_ALLOW_EMPTY_TESTLIST", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(text(&o).contains("0 trials"), "{}", text(&o));
    }
}

#[test]
fn unusable_config_files_are_named_not_skipped() {
    let (dir, configs) = fixture();
    let d = dir.path();
    std::os::unix::fs::symlink(d.join("nowhere.yaml"), configs.join("dangling.yaml")).unwrap();
    std::fs::create_dir(configs.join("folder.yaml")).unwrap();
    let o = check(d, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("dangling.yaml: dangling symlink"), "{t}");
    assert!(t.contains("folder.yaml: is a folder"), "{t}");
    assert!(t.contains("10 checked, 8 error(s)"), "{t}");
    let o = perfsanity(d).arg("list").output().unwrap();
    // Each config once (the `disagg-` twins are listed with PERF_ALL_FAMILIES=1).
    assert!(text(&o).contains("6 trials, 4 invalid"), "{}", text(&o));
}

// ---- class 2: arithmetic --------------------------------------------------------------------

#[test]
fn numbers_that_would_wrap_are_config_errors_naming_the_key() {
    let (dir, configs) = fixture();
    let d = dir.path();
    let cases = [
        (
            "tp-pp",
            GOOD.replace(
                "  gen: {}\n",
                "  gen: {tensor_parallel_size: 4294967296, pipeline_parallel_size: 4294967296}\n",
            ),
            "`worker_config.gen.tensor_parallel_size`: 4294967296 is above the limit",
        ),
        (
            "product",
            GOOD.replace(
                "  gen: {}\n",
                "  gen: {tensor_parallel_size: 65536, context_parallel_size: 65536}\n",
            ),
            "exceeds 65536 GPUs per worker",
        ),
        (
            "servers",
            GOOD.replace("num_gen_servers: 1", "num_gen_servers: 9223372036854775807"),
            "`hardware.num_gen_servers`: 9223372036854775807 is above the limit of 4096",
        ),
        (
            "prompts",
            GOOD.replace(
                "concurrency_list: 1",
                "concurrency_list: 1048576\n  multi_round: 1048576",
            ),
            "1048576 × multi_round 1048576",
        ),
        (
            "length",
            GOOD.replace("input_length: 8", "input_length: 0"),
            "`benchmark.input_length`: expected a positive number of tokens, found 0",
        ),
        (
            "slurm",
            GOOD.to_string() + "slurm:\n  timeout: 18446744073709551\n",
            "`slurm.timeout`: 18446744073709551 is above the limit of 2592000",
        ),
    ];
    for (stem, body, _) in &cases {
        std::fs::write(configs.join(format!("{stem}.yaml")), body).unwrap();
    }
    let o = check(d, &[]);
    let t = text(&o);
    assert!(!o.status.success() && !t.contains("panicked"), "{t}");
    for (stem, _, expected) in &cases {
        assert!(
            t.contains(&format!("ERROR  disagg_upload-{stem}")),
            "{stem}: {t}"
        );
        assert!(t.contains(expected), "{stem}: {expected}\n{t}");
    }
    assert!(t.contains("ok     disagg_upload-ok"), "{t}");
}

#[test]
fn test_list_timeouts_are_bounded() {
    let (dir, _) = fixture();
    let d = dir.path();
    let list = d.join("list.txt");
    std::fs::write(
        &list,
        "disagg-ok TIMEOUT (18446744073709551615)\ndisagg_upload-ok TIMEOUT (43201)\n",
    )
    .unwrap();
    let o = check(d, &[("PERF_TESTLIST", list.as_os_str())]);
    let t = text(&o);
    assert!(
        t.contains("list.txt:1: TIMEOUT (18446744073709551615) is not a number"),
        "{t}"
    );
    assert!(t.contains("list.txt:2: TIMEOUT (43201)"), "{t}");
    std::fs::write(&list, "disagg-ok TIMEOUT (43200)\n").unwrap();
    let o = check(d, &[("PERF_TESTLIST", list.as_os_str())]);
    assert!(o.status.success(), "{}", text(&o));
}

// ---- class 3: bounded resources -------------------------------------------------------------

#[test]
fn deep_nesting_and_huge_files_are_refused_per_config() {
    let (dir, configs) = fixture();
    let d = dir.path();
    let deep = format!("{GOOD}sim: {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
    std::fs::write(configs.join("deep.yaml"), deep).unwrap();
    // 50k compact nested block sequences: a stack overflow (abort, exit 134) before the limit.
    std::fs::write(configs.join("deep_block.yaml"), "- ".repeat(50_000) + "1\n").unwrap();
    let big = std::fs::File::create(configs.join("big.yaml")).unwrap();
    big.set_len(5 * 1024 * 1024).unwrap();
    let o = check(d, &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("ok     disagg_upload-ok"), "{t}");
    assert!(t.contains("ERROR  disagg_upload-deep\n"), "{t}");
    assert!(
        t.contains("deep_block.yaml:1: collections nested deeper than 128"),
        "{t}"
    );
    assert!(t.contains("the limit is 4194304 bytes"), "{t}");
    assert!(t.contains("8 checked, 6 error(s)"), "{t}");
}

#[test]
fn many_keys_and_many_test_list_lines_load() {
    // Linear, not quadratic: 100k keys and 100k list lines load (the timings are in
    // docs/LIMITS.md; no timed assertion here).
    let keys: String = (0..100_000).map(|i| format!("k{i}: {i}\n")).collect();
    let root = perfsanity::util::yaml::load_str(&keys).unwrap();
    assert_eq!(root.as_map().unwrap().len(), 100_000);
    let dup = format!("{keys}k99999: again\n");
    let e = perfsanity::util::yaml::load_str(&dup).unwrap_err();
    assert_eq!(e.line, 100_001);

    let (dir, _) = fixture();
    let catalog = perfsanity::catalog::scan::Catalog::scan(&[dir.path().join("configs")]).unwrap();
    let lines: String = (0..100_000).map(|i| format!("disagg-nope{i}\n")).collect();
    let list = perfsanity::catalog::testlist::parse_txt(&lines, Path::new("l.txt"));
    let trials = perfsanity::catalog::selection::testlist_trials(&catalog, &list);
    assert_eq!(trials.len(), 100_000);
    assert!(trials.iter().all(|t| t.preflight_error.is_some()));
}

#[test]
fn one_bad_config_fails_one_trial_and_junit_is_still_written() {
    let (dir, configs) = fixture();
    let d = dir.path();
    std::fs::write(configs.join("deep.yaml"), "- ".repeat(50_000) + "1\n").unwrap();
    let junit = d.join("junit.xml");
    let o = crate::harness_bin::harness_cmd()
        .args(["deep"])
        .env("PERF_CONFIG_DIRS", &configs)
        .env("PERF_OUTPUT_DIR", d.join("out"))
        .env("PERF_DB", d.join("perf.sqlite"))
        .env("PERF_JUNIT", &junit)
        .env("PERF_TOOLCHAIN", "sim")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(101), "{t}");
    assert!(t.contains("nested deeper than 128"), "{t}");
    // Each config once per runtime: `disagg_upload-deep` and `aggr_upload-ctx_only-deep`
    // (the twins run only when named).
    assert!(t.contains("2 failed"), "{t}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
}

// ---- checked before anything starts ---------------------------------------------------------

#[test]
fn outputs_and_datasets_are_checked_up_front() {
    let (dir, configs) = fixture();
    let d = dir.path();
    // PERF_JUNIT that is a folder, PERF_DB that is not a database.
    let o = check(d, &[("PERF_JUNIT", d.as_os_str())]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("PERF_JUNIT=") && text(&o).contains("is a folder"),
        "{}",
        text(&o)
    );
    let garbage = d.join("garbage.sqlite");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let o = check(d, &[("PERF_DB", garbage.as_os_str())]);
    assert!(
        text(&o).contains("not a usable results database"),
        "{}",
        text(&o)
    );
    let o = perfsanity(d)
        .args(["run", "disagg-ok"])
        .env("PERF_JUNIT", d)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("PERF_JUNIT="), "{}", text(&o));
    assert!(
        !d.join("out/disagg-ok").exists(),
        "nothing may start: {}",
        text(&o)
    );

    // A dataset that is a folder, and one that is not JSON Lines.
    std::fs::create_dir(d.join("data_dir.jsonl")).unwrap();
    std::fs::write(d.join("data.csv"), "a,b,c\n1,2,3\n").unwrap();
    for (stem, file, expected) in [
        (
            "dsdir",
            "data_dir.jsonl",
            "is a folder, expected a JSONL file",
        ),
        ("dscsv", "data.csv", "data.csv:1"),
    ] {
        let body = GOOD.replace(
            "  output_length: 4\n",
            &format!(
                "  output_length: 4\n  use_nv_sa_benchmark: false\n  dataset_file: {}\n",
                d.join(file).display()
            ),
        );
        std::fs::write(configs.join(format!("{stem}.yaml")), body).unwrap();
        let o = check(d, &[]);
        assert!(
            text(&o).contains(&format!("ERROR  disagg_upload-{stem}")),
            "{}",
            text(&o)
        );
        assert!(text(&o).contains(expected), "{stem}: {}", text(&o));
    }
}

// ---- class 7: paths and terminals -----------------------------------------------------------

#[test]
fn job_ids_and_names_cannot_leave_the_trial_folder() {
    let (dir, configs) = fixture();
    let d = dir.path();
    for bad in ["../../x", "..", "a/b", ".hidden", "1\n2"] {
        let o = perfsanity(d)
            .args(["plan", "disagg-ok"])
            .env("SLURM_JOB_ID", bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
        assert!(text(&o).contains("is not a job id"), "{}", text(&o));
    }
    let o = perfsanity(d)
        .args(["plan", "disagg-ok", "--json"])
        .env("SLURM_JOB_ID", "4242_7")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hostnames-4242_7-0"), "{}", text(&o));
    // A stem with an escape sequence: named (escaped), never raw.
    std::fs::write(configs.join("evil\u{1b}[2J\r.yaml"), GOOD).unwrap();
    let o = check(d, &[]);
    let out = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    assert!(
        !out.contains(&0x1b) && !out.contains(&b'\r'),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("evil\\u001b[2J\\r"), "{}", text(&o));
    assert!(
        text(&o).contains("contains a control character"),
        "{}",
        text(&o)
    );
}

#[test]
fn control_characters_in_lists_and_yaml_strings_are_escaped() {
    let (dir, configs) = fixture();
    let d = dir.path();
    std::fs::write(
        configs.join("bad_mode.yaml"),
        GOOD.replace(
            "concurrency_list: 1",
            "concurrency_list: 1\n  mode: \"e2e\\e]0;pwned\\a\"",
        ),
    )
    .unwrap();
    let list = d.join("list.txt");
    std::fs::write(&list, "disagg-ok\ndisagg-\u{1b}[31mred\u{9b}\n").unwrap();
    let o = check(d, &[("PERF_TESTLIST", list.as_os_str())]);
    let out = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    assert!(!out.contains(&0x1b) && !out.contains(&0x07), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&out).contains('\u{9b}'),
        "{}",
        text(&o)
    );
    // Debug-quoted ids arrive escaped already (`\u{1b}`); either escape is fine, raw is not.
    assert!(text(&o).contains("[31mred\\u"), "{}", text(&o));
    let o = check(d, &[]);
    let out = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    assert!(!out.contains(&0x1b) && !out.contains(&0x07), "{}", text(&o));
    assert!(text(&o).contains("]0;pwned\\u"), "{}", text(&o));
}

#[test]
fn required_keys_given_no_value_are_reported_as_missing() {
    // Found by tests/proptest_parsers.rs: `gpus_per_node:` with no value used to end in an
    // "internal error" instead of naming the key.
    let text = GOOD.replace("gpus_per_node: 1", "gpus_per_node:");
    let e = perfsanity::config::parse_perf_config(&text, Path::new("n.yaml")).unwrap_err();
    let t = e.to_string();
    assert!(
        t.contains("`hardware.gpus_per_node`: required key missing"),
        "{t}"
    );
    assert!(!t.contains("internal error"), "{t}");
}

#[test]
fn nul_bytes_in_config_strings_are_found_by_check() {
    let (dir, configs) = fixture();
    let d = dir.path();
    let body = GOOD.to_string() + "environment:\n  worker_env_var: \"A=1\\0B=2\"\n";
    std::fs::write(configs.join("nul.yaml"), body).unwrap();
    let o = check(d, &[]);
    let t = text(&o);
    assert!(
        t.contains("`environment.worker_env_var`: contains a NUL byte"),
        "{t}"
    );
    assert!(t.contains("ok     disagg_upload-ok"), "{t}");
}
