//! Real upstream files (read from `../shared/upstream/`, never copied into the project) go through
//! our parsers: every disaggregated / WideEP config parses and plans, every aggregated config
//! validates, every test list parses without dropping a line.

use std::path::{Path, PathBuf};

use perfsanity::catalog::testlist::load_testlist;
use perfsanity::config::{parse_aggregated_config, parse_perf_config};
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{PlanInputs, TrialRequest, build_plan};

use crate::support::upstream_dir;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

enum Kind {
    Disagg,
    Aggregated,
    Testlist,
}

fn kind(path: &Path) -> Kind {
    let p = path.to_string_lossy();
    if p.contains("/aggregated/") {
        Kind::Aggregated
    } else if p.contains("test-lists/")
        || p.contains("testlists/")
        || p.ends_with("perf_test_cases.yaml")
    {
        Kind::Testlist
    } else {
        Kind::Disagg
    }
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn every_upstream_yaml_parses() {
    let root = upstream_dir();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 40,
        "expected the upstream corpus, found {} files",
        files.len()
    );
    let mut counts = [0usize; 3];
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        match kind(path) {
            Kind::Disagg => {
                counts[0] += 1;
                let config = parse_perf_config(&text, path)
                    .unwrap_or_else(|e| panic!("upstream config rejected:\n{e}"));
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                let no_files = |_: &Path| false;
                let plan = build_plan(
                    &config,
                    &TrialRequest {
                        trial: format!("disagg_upload-{stem}"),
                        test_list_id: format!("disagg_upload-{stem}"),
                        stem,
                        upload: true,
                        mode_override: None,
                        time_limit_s: None,
                    },
                    &PlanInputs {
                        models_root: None,
                        cwd: PathBuf::from("/work"),
                        sim_dataset_root: PathBuf::from("/sim-datasets"),
                        hostname: "node0".into(),
                        auth_key: "ab".repeat(32),
                        ..crate::support::plan_inputs(Toolchain::Sim, &no_files)
                    },
                )
                .unwrap_or_else(|e| panic!("{}: plan failed: {e}", path.display()));
                assert_eq!(
                    plan.workers.len() as u64,
                    config.hardware.num_ctx_servers + config.hardware.num_gen_servers,
                    "{}",
                    path.display()
                );
            }
            Kind::Aggregated => {
                counts[1] += 1;
                let config = parse_aggregated_config(&text, path)
                    .unwrap_or_else(|e| panic!("upstream aggregated config rejected:\n{e}"));
                assert!(!config.servers.is_empty(), "{}", path.display());
            }
            Kind::Testlist => {
                counts[2] += 1;
                let list = load_testlist(path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!list.entries.is_empty(), "{}: no entries", path.display());
                for entry in &list.entries {
                    assert!(!entry.id.contains(' '), "{}: {entry:?}", path.display());
                }
            }
        }
    }
    assert!(
        counts.iter().all(|c| *c > 0),
        "corpus kinds seen: {counts:?}"
    );
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn txt_testlists_lose_no_line() {
    let root = upstream_dir();
    for name in ["debug_cases.txt", "debug_single_agg.txt"] {
        let path = root.join("jenkins_test/testlists").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let list = load_testlist(&path).unwrap();
        let test_lines = text
            .lines()
            .filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty())
            .count();
        assert_eq!(
            list.entries.len() + list.problems.len(),
            test_lines,
            "{name}: every non-comment line is an entry or a reported problem"
        );
        // debug_cases.txt lists perf-sanity ids; debug_single_agg.txt only other pytest
        // modules, each of which must come back as a problem naming its line.
        assert_eq!(
            list.entries.is_empty(),
            name == "debug_single_agg.txt",
            "{name}"
        );
    }
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn upstream_test_db_timeouts_and_labels() {
    let root = upstream_dir();
    let path = root
        .join("test-lists/l0_gb200_multi_nodes_perf_sanity_ctx1_node1_gpu4_gen1_node2_gpu8.yml");
    let list = load_testlist(&path).unwrap();
    // Seven active lines; the commented-out ones are YAML comments.
    assert_eq!(list.entries.len(), 7, "{:?}", list.entries);
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    assert!(list.entries.iter().all(|e| e.timeout_minutes == Some(120)));
    assert!(
        list.entries[0]
            .id
            .starts_with("disagg_upload-gen_only-gb200_deepseek-r1-fp4_1k1k_con1024")
    );
}
