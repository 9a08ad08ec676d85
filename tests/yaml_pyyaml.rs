//! Every YAML file perfsanity writes for TensorRT-LLM loads in PyYAML (what TensorRT-LLM and
//! upstream read them with) to the same data, types and key order as perfsanity reads it; and
//! passthrough engine options arrive as PyYAML reads the config they came from (YAML 1.1 types,
//! merge-key order, strings with line-separator characters).
//!
//! Needs `python3` with PyYAML: `${PERFSANITY_PYVENV:-/opt/perfsanity-venv}/bin/python` (CI
//! installs it with scripts/install-python-tools.sh), else `python3` on PATH. Without it the test
//! is reported ignored by `tests/env_gated.rs`, or fails when `PERFSANITY_REQUIRE_PYYAML=1` (CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use perfsanity::config::{PerfConfig, load_perf_config, parse_perf_config};
use perfsanity::plan::{engine_config, engine_config_text};
use perfsanity::util::yaml::{Node, Value, load_str};
use serde_json::{Value as J, json};

/// Prints each file's PyYAML data as JSON with mappings as `{"map": [[key, value], …]}` (order
/// kept) and floats marked, one line per file.
const DUMP: &str = r#"
import json, sys, yaml
def conv(v):
    if isinstance(v, dict):
        return {"map": [[str(k), conv(x)] for k, x in v.items()]}
    if isinstance(v, list):
        return [conv(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return {"float": repr(v)}
    return {"other": repr(v)}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        print(json.dumps(conv(yaml.safe_load(f))))
"#;

fn python_with_pyyaml() -> Option<PathBuf> {
    let venv = std::env::var("PERFSANITY_PYVENV").unwrap_or_else(|_| "/opt/perfsanity-venv".into());
    for candidate in [
        Path::new(&venv).join("bin/python"),
        PathBuf::from("python3"),
    ] {
        let ok = Command::new(&candidate)
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(candidate);
        }
    }
    None
}

/// The tests of this module, for `tests/env_gated.rs`.
pub const TESTS: &[(&str, fn())] = &[
    (
        "written_files_load_in_pyyaml_to_the_same_data",
        written_files_load_in_pyyaml_to_the_same_data,
    ),
    (
        "passthrough_options_arrive_as_pyyaml_reads_the_config",
        passthrough_options_arrive_as_pyyaml_reads_the_config,
    ),
];

/// What is missing for these tests, if anything.
pub fn missing() -> Option<String> {
    python_with_pyyaml()
        .is_none()
        .then(|| "no python3 with PyYAML (run scripts/install-python-tools.sh)".to_string())
}

fn pyyaml_read(python: &Path, files: &[PathBuf]) -> Vec<J> {
    let out = Command::new(python)
        .arg("-c")
        .arg(DUMP)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Our node in the same shape as [`DUMP`] prints.
fn shape(node: &Node) -> J {
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!({ "float": python_repr(*f) }),
        Value::Str(s) => json!(s),
        Value::Seq(items) => J::Array(items.iter().map(shape).collect()),
        Value::Map(m) => {
            json!({ "map": m.iter().map(|(k, v)| json!([k, shape(v)])).collect::<Vec<_>>() })
        }
    }
}

/// Python's `repr` of a float (PyYAML's writer form minus its `.0` before an exponent).
fn python_repr(f: f64) -> String {
    perfsanity::util::yaml::python_float(f).replace(".0e", "e")
}

fn configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![
        root.join("test_configs/disagg/perf"),
        root.join("test_configs/wideep/perf"),
        root.join("../shared/upstream/perf-sanity/disaggregated"),
    ];
    dirs.retain(|d| d.is_dir());
    let mut out = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Engine configs of a config's workers: (file, our reading of it).
fn write_engine_configs(config: &PerfConfig, dir: &Path, tag: &str) -> Vec<(PathBuf, Node)> {
    let mut out = Vec::new();
    for (kind, worker) in [("ctx", &config.ctx_worker), ("gen", &config.gen_worker)] {
        let map = engine_config(
            worker,
            Some("k"),
            Some(Path::new("/m")),
            Some(Path::new("/r")),
            &mut Vec::new(),
        );
        let text = engine_config_text(&map);
        let path = dir.join(format!("{tag}.{kind}.yml"));
        std::fs::write(&path, &text).unwrap();
        out.push((path, load_str(&text).unwrap()));
    }
    out
}

fn written_files_load_in_pyyaml_to_the_same_data() {
    let python = python_with_pyyaml().expect("checked by the gate");
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    for (i, path) in configs().iter().enumerate() {
        let config = load_perf_config(path).unwrap();
        written.extend(write_engine_configs(&config, dir.path(), &format!("c{i}")));
    }
    written.extend(write_engine_configs(&tricky(), dir.path(), "tricky"));
    assert!(written.len() >= 20, "{} files", written.len());
    let files: Vec<PathBuf> = written.iter().map(|(p, _)| p.clone()).collect();
    let theirs = pyyaml_read(&python, &files);
    for ((path, ours), theirs) in written.iter().zip(&theirs) {
        assert_eq!(&shape(ours), theirs, "{}", path.display());
    }
}

const TRICKY: &str = "metadata:
  model_name: org/m
benchmark:
  use_nv_sa_benchmark: false
hardware:
  gpus_per_node: 4
  num_ctx_servers: 1
  num_gen_servers: 1
worker_config:
  ctx: &base
    tensor_parallel_size: 1
    enable_chunked_prefill: yes
    print_iter_log: off
    max_num_tokens: 1_000
  gen:
    <<: *base
    max_num_tokens: 2_048
    mode_bits: 017
    stream_interval: 1:30
    kv_fraction: 1e-5
    free_gpu_memory_fraction: 0.85
    tiny: 1.0e-05
    not_octal: 08
    on_flag: On
    quoted_yes: 'yes'
    text: \"a\\u2028b\\u2029c\\x85d é\"
    nested:
      list: [yes, no, 0x1F, 0b101, ~]
";

fn tricky() -> PerfConfig {
    parse_perf_config(TRICKY, Path::new("tricky.yaml")).unwrap()
}

fn passthrough_options_arrive_as_pyyaml_reads_the_config() {
    let python = python_with_pyyaml().expect("checked by the gate");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tricky.yaml");
    std::fs::write(&source, TRICKY).unwrap();
    let written = write_engine_configs(&tricky(), dir.path(), "t");
    let gen_file = written[1].0.clone();
    let read = pyyaml_read(&python, &[source, gen_file]);
    // upstream: yaml.safe_load(config)["worker_config"]["gen"], harness-only keys removed.
    let J::Array(top) = &read[0]["map"] else {
        panic!()
    };
    let worker_config = &top.iter().find(|p| p[0] == "worker_config").unwrap()[1];
    let J::Array(groups) = &worker_config["map"] else {
        panic!()
    };
    let upstream_gen = &groups.iter().find(|p| p[0] == "gen").unwrap()[1]["map"];
    let J::Array(engine) = &read[1]["map"] else {
        panic!()
    };
    let ours: Vec<&J> = engine
        .iter()
        .filter(|p| p[0] != "internal_request_auth_key")
        .collect();
    let theirs: Vec<&J> = upstream_gen.as_array().unwrap().iter().collect();
    let names: Vec<&J> = theirs.iter().map(|p| &p[0]).collect();
    assert_eq!(
        ours, theirs,
        "engine options (order and types) as PyYAML gives them; keys {names:?}"
    );
    // And the facts the issue names, spelled out.
    let get = |k: &str| ours.iter().find(|p| p[0] == k).map(|p| p[1].clone());
    assert_eq!(get("enable_chunked_prefill"), Some(json!(true)));
    assert_eq!(get("print_iter_log"), Some(json!(false)));
    assert_eq!(get("max_num_tokens"), Some(json!(2048)));
    assert_eq!(get("mode_bits"), Some(json!(15)));
    assert_eq!(get("stream_interval"), Some(json!(90)));
    assert_eq!(get("kv_fraction"), Some(json!("1e-5")));
    assert_eq!(get("text"), Some(json!("a\u{2028}b\u{2029}c\u{85}d é")));
}
