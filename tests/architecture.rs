//! The module graph, checked: a plain text scan of every `crate::<module>` path under `src/`
//! (comments skipped) gives the edges between top-level modules, and each must go down the
//! pipeline (`docs/DESIGN.md`): `app` → `run` → `report` → `results` → `measure` → `plan` →
//! `catalog` → `config` → `util`, with `tools` (simulator, native client) beside the stages on
//! `util` and the `sim:` schema (`config::sim_section`) only. A downward-only graph has no
//! cycles. Edges that still go up are listed in
//! [`KNOWN_UPWARD`], each with the file that makes it; the test also fails when one of them is
//! gone, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, lowest first; each may import only modules to its left, with the
/// exception of `tools`, which may import only `util`.
const LAYERS: [&str; 10] = [
    "util", "tools", "config", "catalog", "plan", "measure", "results", "report", "run", "app",
];

/// Upward imports that are still there: (importing file, imported module). `Settings` (the
/// resolved knobs, a value) is still defined in `app::settings`; the trial outcome types in
/// `run::outcome`; the plan checks a custom dataset with the native client's parser.
const KNOWN_UPWARD: &[(&str, &str)] = &[
    ("plan/dataset_check.rs", "tools"),
    ("plan/prepare.rs", "app"),
    ("report/junit.rs", "run"),
    ("results/mod.rs", "run"),
    ("results/partial.rs", "run"),
    ("results/trial.rs", "run"),
    ("run/execute.rs", "app"),
    ("run/slurm/job_env.rs", "app"),
    ("run/slurm/mod.rs", "app"),
];

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|m| *m == module)
        .unwrap_or_else(|| panic!("src/{module} is not in LAYERS: give it a place"))
}

/// Whether `from` may import `to` (`path`: what follows `crate::`): downward only; the tools
/// stand apart (they import only `util` and the `sim:` schema, and only the process-running
/// stages and the edge use them).
fn allowed(from: &str, to: &str, path: &str) -> bool {
    if from == "tools" {
        return to == "util" || path.starts_with("config::sim_section");
    }
    if to == "tools" {
        return matches!(from, "run" | "app");
    }
    rank(to) < rank(from)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import against the rule: (file relative to `src/`, imported top-level module) with the
/// importing module.
fn upward_edges() -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeMap::new();
    for path in files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some((from, _)) = rel.split_once('/') else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let path: String = code[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let to = path.split("::").next().unwrap_or_default().to_string();
                if !to.is_empty() && to != from && !allowed(from, &to, &path) {
                    edges.insert((rel.clone(), to), from.to_string());
                }
            }
        }
    }
    edges
}

#[test]
fn every_import_goes_down_the_pipeline() {
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(f, m)| (f.to_string(), m.to_string()))
        .collect();
    let mut wrong = Vec::new();
    let mut seen_known = BTreeSet::new();
    for ((file, to), from) in upward_edges() {
        if known.contains(&(file.clone(), to.clone())) {
            seen_known.insert((file, to));
        } else {
            wrong.push(format!("src/{file}: `{from}` imports `crate::{to}`"));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the pipeline (docs/DESIGN.md, \"Module graph\"):\n{}",
        wrong.join("\n")
    );
    let gone: Vec<_> = known.difference(&seen_known).collect();
    assert!(
        gone.is_empty(),
        "fixed upward imports still listed in KNOWN_UPWARD (remove them): {gone:?}"
    );
}

#[test]
fn the_allowed_graph_has_no_cycles() {
    // Downward-only edges cannot form a cycle; this checks the rule itself, so a future edit of
    // `allowed` that lets two modules import each other fails here.
    for a in LAYERS {
        for b in LAYERS {
            assert!(
                !(a != b && allowed(a, b, b) && allowed(b, a, a)),
                "{a} and {b} may import each other"
            );
        }
    }
}
