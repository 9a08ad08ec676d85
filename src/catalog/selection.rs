//! Which trials exist: every catalog config (upstream's id families, §3.1 order: aggregated
//! configs first — whole file, then each server — then each disaggregated config with its
//! ctx_only trials), or exactly the entries of a test list. Anything that cannot run — a duplicated stem, a listed id with no config, a bad
//! test-list line — still becomes a trial, one that fails with the reason, so nothing is
//! silently dropped from a run.

use std::path::PathBuf;

use crate::catalog::scan::{Catalog, ConfigFile};
use crate::catalog::testlist::Testlist;
use crate::catalog::trial_id::{
    AggrKind, IdError, KnownStems, NodeIdError, ResolvedId, aggr_trial_name, id_from_node_id,
    labelled_trial_name, resolve_id, trial_name,
};
use crate::config::{BenchmarkMode, load_aggregated_config, load_perf_config};

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
    /// Set for aggregated-runtime trials: which servers (aggregated configs) or ctx_only.
    pub aggr: Option<AggrKind>,
}

impl TrialSpec {
    /// A catalog trial of `config` named `name`.
    fn of_config(
        config: &ConfigFile,
        name: String,
        upload: bool,
        mode_override: Option<BenchmarkMode>,
        aggr: Option<AggrKind>,
    ) -> Self {
        TrialSpec {
            test_list_id: name.clone(),
            name,
            stem: Some(config.stem.clone()),
            config_path: Some(config.path.clone()),
            upload,
            mode_override,
            time_limit_s: None,
            origin: None,
            preflight_error: config.duplicate_error(),
            aggr,
        }
    }
}

/// The catalog's stems by layout, for [`resolve_id`].
pub fn known_stems(catalog: &Catalog) -> (Vec<&str>, Vec<&str>) {
    catalog.stems_by_layout()
}

/// Every trial of the catalog, in upstream's generation order (§3.1): for each aggregated stem
/// and prefix (`aggr_upload`, `aggr`) the whole file, then each server in YAML order (an
/// aggregated config that does not parse yields only the whole-file trials, which fail with the
/// error); then for each disaggregated stem `disagg_upload-<stem>`, `disagg-<stem>` and its
/// ctx_only trials. Like upstream, gen_only_no_context ids are not generated (they need
/// `print_iter_log` on the gen workers, which not every config has); a test list or
/// `perfsanity plan|run <id>` selects them.
pub fn all_trials(catalog: &Catalog) -> Vec<TrialSpec> {
    let mut out = Vec::with_capacity(catalog.configs.len() * 6);
    for config in catalog.configs.iter().filter(|c| c.is_aggregated()) {
        let servers: Vec<String> = load_aggregated_config(&config.path)
            .map(|c| c.servers.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        for upload in [true, false] {
            let all = AggrKind::Servers(None);
            out.push(TrialSpec::of_config(
                config,
                aggr_trial_name(upload, &config.stem, &all),
                upload,
                None,
                Some(all),
            ));
            for server in &servers {
                let one = AggrKind::Servers(Some(vec![server.clone()]));
                out.push(TrialSpec::of_config(
                    config,
                    aggr_trial_name(upload, &config.stem, &one),
                    upload,
                    None,
                    Some(one),
                ));
            }
        }
    }
    for config in catalog.configs.iter().filter(|c| !c.is_aggregated()) {
        for upload in [true, false] {
            out.push(TrialSpec::of_config(
                config,
                trial_name(upload, &config.stem),
                upload,
                None,
                None,
            ));
        }
        for upload in [true, false] {
            out.push(TrialSpec::of_config(
                config,
                aggr_trial_name(upload, &config.stem, &AggrKind::CtxOnly),
                upload,
                None,
                Some(AggrKind::CtxOnly),
            ));
        }
    }
    out
}

/// The trial a resolved upstream id names, with its config: the one place an id becomes a
/// [`TrialSpec`]. Aggregated-runtime ids are named by their family; a mode label equal to the
/// YAML's own mode keeps the plain trial name, a different one names the trial after the label.
/// `yaml_mode` (the config's own `benchmark.mode`) is asked only when the id carries a label.
pub fn spec_of_id(
    id: &ResolvedId,
    config: &ConfigFile,
    test_list_id: &str,
    yaml_mode: impl FnOnce() -> Option<BenchmarkMode>,
) -> TrialSpec {
    let name = match (&id.aggr, id.mode_label) {
        (Some(kind), _) => aggr_trial_name(id.upload, &id.stem, kind),
        (None, Some(label)) if yaml_mode().is_some_and(|m| m != label) => {
            labelled_trial_name(id.upload, label, &id.stem)
        }
        (None, _) => trial_name(id.upload, &id.stem),
    };
    TrialSpec {
        test_list_id: test_list_id.to_string(),
        ..TrialSpec::of_config(config, name, id.upload, id.mode_label, id.aggr.clone())
    }
}

/// Why a trial named on the command line was not found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FindTrialError {
    /// Not a trial name, an upstream id or a pytest node id.
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
    /// An id that does not resolve against the catalog's stems.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The id resolved to a stem the catalog holds no config for.
    #[error("no config for {wanted:?}")]
    NoConfig {
        /// The name as given.
        wanted: String,
    },
}

/// The trial `wanted` names: a trial name of `trials`, an upstream id or a pytest node id.
pub fn find_trial(
    catalog: &Catalog,
    trials: &[TrialSpec],
    wanted: &str,
) -> Result<TrialSpec, FindTrialError> {
    if let Some(t) = trials.iter().find(|t| t.name == wanted) {
        return Ok(t.clone());
    }
    let id = id_from_node_id(wanted)?;
    let (disagg, aggr) = known_stems(catalog);
    let stems = KnownStems {
        disagg: &disagg,
        aggr: &aggr,
    };
    let resolved = resolve_id(id, stems)?;
    let config = catalog
        .get(&resolved.stem)
        .ok_or_else(|| FindTrialError::NoConfig {
            wanted: wanted.to_string(),
        })?;
    Ok(spec_of_id(&resolved, config, id, || {
        load_perf_config(&config.path)
            .ok()
            .map(|c| c.benchmark.mode)
    }))
}

/// Exactly the trials of a test list, in list order.
pub fn testlist_trials(catalog: &Catalog, list: &Testlist) -> Vec<TrialSpec> {
    let (disagg, aggr) = known_stems(catalog);
    let stems = KnownStems {
        disagg: &disagg,
        aggr: &aggr,
    };
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
        let spec = match resolve_id(&entry.id, stems) {
            Ok(id) => {
                let config = catalog
                    .get(&id.stem)
                    .expect("resolved stems are in the catalog");
                TrialSpec {
                    time_limit_s,
                    origin: Some(origin.clone()),
                    ..spec_of_id(&id, config, &entry.id, || {
                        // Each config is read once however often the list names it.
                        *yaml_modes.entry(id.stem.clone()).or_insert_with(|| {
                            load_perf_config(&config.path)
                                .ok()
                                .map(|c| c.benchmark.mode)
                        })
                    })
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
                aggr: None,
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
            aggr: None,
        });
    }
    out
}
