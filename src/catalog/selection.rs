//! Which trials exist: every catalog config (two trials per stem), or exactly the entries of a
//! test list. Anything that cannot run — a duplicated stem, a listed id with no config, a bad
//! test-list line — still becomes a trial, one that fails with the reason, so nothing is
//! silently dropped from a run.

use std::path::PathBuf;

use crate::catalog::scan::Catalog;
use crate::catalog::testlist::Testlist;
use crate::catalog::trial_id::{labelled_trial_name, resolve, trial_name};
use crate::config::{BenchmarkMode, load_perf_config};

/// One trial to list and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialSpec {
    /// Trial name (what `cargo test` filters match).
    pub name: String,
    /// Config stem, when the trial has a config.
    pub stem: Option<String>,
    /// Config file.
    pub config_path: Option<PathBuf>,
    /// `_upload` trial.
    pub upload: bool,
    /// Mode label from an upstream id.
    pub mode_override: Option<BenchmarkMode>,
    /// The id as the test list wrote it (upstream's `s_test_list`), else the trial name.
    pub test_list_id: String,
    /// Whole-trial time limit from the test list, seconds.
    pub time_limit_s: Option<u64>,
    /// Where the trial was selected (test-list file and line), for messages.
    pub origin: Option<String>,
    /// When set, the trial fails with this message without running anything.
    pub preflight_error: Option<String>,
}

/// Every trial of the catalog: `disagg_upload-<stem>` and `disagg-<stem>` per config, sorted.
pub fn all_trials(catalog: &Catalog) -> Vec<TrialSpec> {
    let mut out = Vec::with_capacity(catalog.configs.len() * 2);
    for config in &catalog.configs {
        for upload in [true, false] {
            let name = trial_name(upload, &config.stem);
            out.push(TrialSpec {
                test_list_id: name.clone(),
                name,
                stem: Some(config.stem.clone()),
                config_path: Some(config.path.clone()),
                upload,
                mode_override: None,
                time_limit_s: None,
                origin: None,
                preflight_error: config.duplicate_error(),
            });
        }
    }
    out
}

/// Exactly the trials of a test list, in list order.
pub fn testlist_trials(catalog: &Catalog, list: &Testlist) -> Vec<TrialSpec> {
    let stems = catalog.stems();
    let file_name = list
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| list.path.display().to_string());
    let mut out: Vec<TrialSpec> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut yaml_modes: std::collections::HashMap<String, Option<BenchmarkMode>> =
        Default::default();
    for entry in &list.entries {
        let origin = format!("{}:{}", list.path.display(), entry.line);
        let time_limit_s = entry.timeout_minutes.map(|m| m.saturating_mul(60));
        let spec = match resolve(&entry.id, &stems) {
            Ok(id) => {
                let config = catalog
                    .get(&id.stem)
                    .expect("resolved stems are in the catalog");
                // A label equal to the YAML's own mode keeps the plain trial name. Each config
                // is read once however often the list names it.
                let yaml_mode = match id.mode_label {
                    None => None,
                    Some(_) => *yaml_modes.entry(id.stem.clone()).or_insert_with(|| {
                        load_perf_config(&config.path)
                            .ok()
                            .map(|c| c.benchmark.mode)
                    }),
                };
                let name = match id.mode_label {
                    Some(label) if yaml_mode.is_some_and(|m| m != label) => {
                        labelled_trial_name(id.upload, label, &id.stem)
                    }
                    _ => trial_name(id.upload, &id.stem),
                };
                TrialSpec {
                    name,
                    stem: Some(id.stem.clone()),
                    config_path: Some(config.path.clone()),
                    upload: id.upload,
                    mode_override: id.mode_label,
                    test_list_id: entry.id.clone(),
                    time_limit_s,
                    origin: Some(origin.clone()),
                    preflight_error: config.duplicate_error(),
                }
            }
            Err(e) => TrialSpec {
                name: entry.id.to_string(),
                stem: None,
                config_path: None,
                upload: false,
                mode_override: None,
                test_list_id: entry.id.clone(),
                time_limit_s,
                origin: Some(origin.clone()),
                preflight_error: Some(format!("{origin}: {e}")),
            },
        };
        if let Some(first_line) = seen.get(&spec.name) {
            out.push(TrialSpec {
                name: format!("{file_name}:{}:{}", entry.line, spec.name),
                preflight_error: Some(format!(
                    "{origin}: {} is listed twice (first at line {first_line})",
                    entry.id
                )),
                ..spec
            });
            continue;
        }
        seen.insert(spec.name.clone(), entry.line);
        out.push(spec);
    }
    for problem in &list.problems {
        out.push(TrialSpec {
            name: format!("testlist:{file_name}:{}", problem.line),
            stem: None,
            config_path: None,
            upload: false,
            mode_override: None,
            test_list_id: String::new(),
            time_limit_s: None,
            origin: Some(format!("{}:{}", list.path.display(), problem.line)),
            preflight_error: Some(format!(
                "{}:{}: {}",
                list.path.display(),
                problem.line,
                problem.message
            )),
        });
    }
    out
}
