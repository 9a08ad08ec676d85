//! Measurements that must not be lost: [`record_partial`] ([`record_partial_aggr`] for an
//! aggregated trial) stores the records of the clients that finished before a later client (or a
//! server under it) failed — marked `b_is_valid: false` and `s_trial_outcome`, state
//! `not_requested`, so they never serve as a baseline, never gate and never upload;
//! [`write_unfinished`] ([`write_unfinished_aggr`]) writes them to the trial's
//! `perf_records.json` as each client finishes; and [`import_records`] stores a
//! `perf_records.json` that a failed store (or a killed runner) left in a trial's folder
//! (`perfsanity results import`).

use std::path::{Path, PathBuf};

use crate::config::PerfConfig;
use crate::plan::{AggrPlan, Plan};
use crate::results::outcome::TrialFailure;

use super::ResultsError;
use super::StoreError;
use super::aggr_record::{AggrClientResult, aggr_meta, build_aggr_records_in};
use super::context::ResultsContext;
use super::field;
use super::record::ClientResult;
use super::store::{NewRow, Store, UploadState, now_ms};
use super::trial::{
    ArtifactError, TrialMeta, batch_id, build_trial_records, insert_records, stored_records,
};
use super::value::{Record, RecordParseError};

/// Field that carries a partial record's trial outcome (`failed: <class> (<role>)`).
pub const OUTCOME_FIELD: &str = "s_trial_outcome";

/// The outcome text stored with partial records.
pub fn outcome_text(failure: &TrialFailure) -> String {
    match failure.role {
        Some(role) => format!("failed: {} ({role})", failure.class),
        None => format!("failed: {}", failure.class),
    }
}

/// Marks a record as the measurement of a failed trial.
pub fn mark_partial(record: &mut Record, outcome: &str) {
    record.set(field::IS_VALID, false);
    record.set(OUTCOME_FIELD, outcome.to_string());
}

/// Stores the finished clients' results of a failed trial; returns summary lines.
pub fn record_partial(
    ctx: &ResultsContext,
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
    failure: &TrialFailure,
) -> Result<Vec<String>, ResultsError> {
    let mut notes = Vec::new();
    let (records, indices) = build_trial_records(ctx, plan, config, clients, &mut notes);
    store_partial(
        ctx,
        &TrialMeta::of_plan(plan, false),
        records,
        &indices,
        notes,
        failure,
    )
}

/// [`record_partial`] for an aggregated trial (`results`: its finished clients).
pub fn record_partial_aggr(
    ctx: &ResultsContext,
    plan: &AggrPlan,
    results: &[AggrClientResult],
    failure: &TrialFailure,
) -> Result<Vec<String>, ResultsError> {
    let built = build_aggr_records_in(ctx, plan, results);
    store_partial(
        ctx,
        &aggr_meta(plan),
        built.records,
        &built.client_indices,
        built.notes,
        failure,
    )
}

/// Marks `records` with the failed trial's outcome, stores them (`not_requested`) and writes
/// them to the trial's `perf_records.json`; returns summary lines.
fn store_partial(
    ctx: &ResultsContext,
    meta: &TrialMeta<'_>,
    mut records: Vec<Record>,
    indices: &[u32],
    notes: Vec<String>,
    failure: &TrialFailure,
) -> Result<Vec<String>, ResultsError> {
    let now = now_ms();
    let outcome = outcome_text(failure);
    for r in &mut records {
        mark_partial(r, &outcome);
    }
    let note =
        format!("partial: the trial {outcome}; kept for the record, never gates, never uploads");
    let batch = batch_id(meta.trial, now);
    let (_, row_ids) = insert_records(
        ctx,
        meta,
        &batch,
        &records,
        indices,
        (UploadState::NotRequested, &note),
        "",
        now,
    )?;
    let _ = super::trial::write_artifact(meta.output_dir, &records);
    let mut lines = vec![format!(
        "results: {} finished client record(s) of this failed trial kept in {} (batch {batch}; \
         b_is_valid false, {OUTCOME_FIELD} {outcome:?}; never uploaded)",
        stored_records(&row_ids, &records).len(),
        ctx.db_path.display()
    )];
    lines.extend(notes.into_iter().map(|n| format!("note: {n}")));
    Ok(lines)
}

/// The outcome text of records written while their trial still ran.
pub const UNFINISHED: &str = "unfinished: the trial was still running";

/// Writes the finished clients' records of a trial that is still running to its
/// `perf_records.json`, marked [`UNFINISHED`], so a runner killed outright (`kill -9`) leaves
/// them for `perfsanity results import`. The trial's own end replaces the file.
pub fn write_unfinished(
    ctx: &ResultsContext,
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
) -> Result<PathBuf, ArtifactError> {
    let mut notes = Vec::new();
    let (records, _) = build_trial_records(ctx, plan, config, clients, &mut notes);
    write_marked_unfinished(&plan.output_dir, records)
}

/// [`write_unfinished`] for an aggregated trial (`results`: its finished clients).
pub fn write_unfinished_aggr(
    ctx: &ResultsContext,
    plan: &AggrPlan,
    results: &[AggrClientResult],
) -> Result<PathBuf, ArtifactError> {
    let built = build_aggr_records_in(ctx, plan, results);
    write_marked_unfinished(&plan.output_dir, built.records)
}

/// Marks `records` [`UNFINISHED`] and writes them to `dir`'s `perf_records.json`.
fn write_marked_unfinished(dir: &Path, mut records: Vec<Record>) -> Result<PathBuf, ArtifactError> {
    for r in &mut records {
        mark_partial(r, UNFINISHED);
    }
    super::trial::write_artifact(dir, &records)
}

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Batch id.
    pub batch: String,
    /// Records stored.
    pub records: usize,
    /// Their upload state.
    pub state: UploadState,
}

/// Why `perfsanity results import` stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The records file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The records file is not a JSON array.
    #[error("{}: expected a JSON array of records: {source}", path.display())]
    NotAnArray {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// One element of the array is not a record.
    #[error("{}: record {index}: {source}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// Index in the array.
        index: usize,
        /// What is wrong with it.
        source: RecordParseError,
    },
    /// The array is empty.
    #[error("{}: no records", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The trial's `plan.json` (beside the records) cannot be read.
    #[error(
        "{}: {source} (the trial's plan names its trial, toolchain and scale)",
        path.display()
    )]
    ReadPlan {
        /// The plan file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trial's `plan.json` is not JSON.
    #[error("{}: {source}", path.display())]
    BadPlan {
        /// The plan file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The trial's `plan.json` lacks a string it needs.
    #[error("{}: no string {key:?}", path.display())]
    PlanField {
        /// The plan file.
        path: PathBuf,
        /// The missing key.
        key: &'static str,
    },
    /// A record is already in the history database.
    #[error("{}: record {id} is already in {}; nothing imported", path.display(), db.display())]
    Duplicate {
        /// The records file.
        path: PathBuf,
        /// The record's `_id`.
        id: String,
        /// The history database.
        db: PathBuf,
    },
    /// The history database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Stores the records of `file` (a trial's `perf_records.json`, next to its `plan.json`) in
/// `store` as a new batch: `pending` when the trial's records are meant for the gateway (a real,
/// full-scale `_upload` trial, not a partial record), else `not_requested`. Records whose `_id`
/// is already stored are refused (nothing is stored twice).
pub fn import_records(store: &mut Store, file: &Path) -> Result<ImportReport, ImportError> {
    let path = || file.to_path_buf();
    let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read {
        path: path(),
        source,
    })?;
    let array: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|source| ImportError::NotAnArray {
            path: path(),
            source,
        })?;
    let records = array
        .iter()
        .enumerate()
        .map(|(index, v)| {
            Record::from_json_str(&v.to_string()).map_err(|source| ImportError::BadRecord {
                path: path(),
                index,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if records.is_empty() {
        return Err(ImportError::Empty { path: path() });
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let plan_path = dir.join("plan.json");
    let plan_text =
        std::fs::read_to_string(&plan_path).map_err(|source| ImportError::ReadPlan {
            path: plan_path.clone(),
            source,
        })?;
    let plan: serde_json::Value =
        serde_json::from_str(&plan_text).map_err(|source| ImportError::BadPlan {
            path: plan_path.clone(),
            source,
        })?;
    let field = |key: &'static str| -> Result<String, ImportError> {
        plan[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ImportError::PlanField {
                path: plan_path.clone(),
                key,
            })
    };
    let (trial, toolchain, scale) = (field("trial")?, field("toolchain")?, field("scale")?);
    let known: std::collections::HashSet<String> =
        store.all(None)?.into_iter().map(|r| r.record_id).collect();
    if let Some(dup) = records
        .iter()
        .filter_map(|r| r.str(field::ID))
        .find(|id| known.contains(*id))
    {
        return Err(ImportError::Duplicate {
            path: path(),
            id: dup.to_string(),
            db: store.path().to_path_buf(),
        });
    }
    let partial = records.iter().any(|r| r.get(OUTCOME_FIELD).is_some());
    let upload = plan["upload"].as_bool() == Some(true)
        && toolchain == "trtllm"
        && scale == "full"
        && !partial;
    let (state, note) = if upload {
        (
            UploadState::Pending,
            format!(
                "imported from {}; `perfsanity results push` uploads it",
                file.display()
            ),
        )
    } else {
        (
            UploadState::NotRequested,
            format!("imported from {}", file.display()),
        )
    };
    let now = now_ms();
    let batch = batch_id(&trial, now);
    let rows: Vec<NewRow<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, record)| NewRow {
            record,
            trial: &trial,
            client_index: u32::try_from(i).unwrap_or(u32::MAX),
            toolchain: &toolchain,
            scale: &scale,
            artifacts: dir,
        })
        .collect();
    store.insert_batch(&batch, &rows, state, &note, "", now)?;
    Ok(ImportReport {
        batch,
        records: records.len(),
        state,
    })
}
