//! [`record_trial`]: the one call a runner makes after a trial's clients finished, and
//! [`push_pending`], which `perfsanity results push` uses to deliver what a failed upload left.
//!
//! Order matters for "never lose data": records are stored first (state `held` when they are
//! meant for the gateway), then history is read and the verdict added, then the final state is
//! set, then the upload is attempted. A copy of the records also goes to
//! `<output_dir>/perf_records.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::PerfConfig;
use crate::plan::toolchain::Toolchain;
use crate::plan::{Plan, Role, Scale};
use crate::results::outcome::{FailureClass, TrialFailure};

use super::ResultsError;
use super::context::ResultsContext;
use super::field;
use super::gateway::{GatewaySettings, post_records, precheck, query_history};
use super::history::{
    LOOKBACK_DAYS, MATCH_KEYS, common_values, lookback_start_ms, query_body, record_doc,
};
use super::record::{ClientResult, RecordInputs, build_records, check_metrics, spec_decoding};
use super::regression::{RegressionSettings, failing_policy, gated_metrics};
use super::startup::read_observations;
use super::store::{NewRow, Store, UploadState, now_ms};
use super::typecheck::check_batch;
use super::value::Record;
use super::verdict::{HistorySource, RegressionVerdict, evaluate_verdict};

/// Whether a trial's records go to the gateway, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadIntent {
    /// Upload to this project.
    Upload {
        /// Project (index).
        project: String,
    },
    /// Never uploaded (simulator or smoke-scale numbers must not reach the shared database).
    Skip(String),
    /// Not asked for (not an `_upload` trial, or no gateway configured).
    NotRequested(String),
}

/// Decides the upload intent of a trial.
pub fn upload_intent(plan: &Plan, gateway: Option<&GatewaySettings>) -> UploadIntent {
    upload_intent_of(&TrialMeta::of_plan(plan, false), gateway)
}

/// What the results path needs to know about a trial (disaggregated or aggregated).
#[derive(Debug, Clone)]
pub struct TrialMeta<'a> {
    /// Trial name.
    pub trial: &'a str,
    /// `_upload` trial.
    pub upload: bool,
    /// Toolchain.
    pub toolchain: Toolchain,
    /// Scale.
    pub scale: Scale,
    /// Where `perf_records.json` goes.
    pub output_dir: &'a Path,
    /// gen_only gating (device step time).
    pub gen_only: bool,
    /// Some client is spec-decoding (`d_al` gated).
    pub spec_decoding: bool,
}

impl<'a> TrialMeta<'a> {
    /// The meta of a disaggregated plan.
    pub fn of_plan(plan: &'a Plan, spec_decoding: bool) -> Self {
        TrialMeta {
            trial: &plan.trial,
            upload: plan.upload,
            toolchain: plan.toolchain,
            scale: plan.scale,
            output_dir: &plan.output_dir,
            gen_only: plan.mode.is_gen_only(),
            spec_decoding,
        }
    }
}

/// Decides the upload intent of a trial from its meta.
pub fn upload_intent_of(plan: &TrialMeta<'_>, gateway: Option<&GatewaySettings>) -> UploadIntent {
    if !plan.upload {
        return UploadIntent::NotRequested(format!("{} is not an _upload trial", plan.trial));
    }
    if plan.toolchain == Toolchain::Sim {
        return UploadIntent::Skip("simulator run".to_string());
    }
    if plan.scale == Scale::Smoke {
        return UploadIntent::Skip("smoke scale".to_string());
    }
    match gateway {
        None => UploadIntent::NotRequested("OPEN_SEARCH_DB_BASE_URL is not set".to_string()),
        Some(g) => UploadIntent::Upload {
            project: g.project.clone(),
        },
    }
}

/// What happened to the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Delivered.
    Uploaded {
        /// Records delivered.
        records: usize,
        /// Project.
        project: String,
    },
    /// Not delivered; the records are pending for `perfsanity results push`.
    Pending {
        /// Why.
        reason: String,
    },
    /// Not asked for.
    NotRequested {
        /// Why.
        reason: String,
    },
    /// Never uploaded by design (simulator / smoke scale).
    Skipped {
        /// Why.
        reason: String,
    },
    /// The records failed the gateway's type check and were not sent.
    Refused {
        /// Which fields.
        reason: String,
    },
}

impl fmt::Display for UploadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadOutcome::Uploaded { records, project } => {
                write!(f, "uploaded {records} record(s) to {project}")
            }
            UploadOutcome::Pending { reason } => write!(
                f,
                "upload failed, records kept as pending (run `perfsanity results push` later): {reason}"
            ),
            UploadOutcome::NotRequested { reason } => write!(f, "not uploaded: {reason}"),
            UploadOutcome::Skipped { reason } => write!(
                f,
                "skipped: {reason} (simulator and smoke-scale numbers never go to the shared database)"
            ),
            UploadOutcome::Refused { reason } => {
                write!(
                    f,
                    "upload refused by the type check (records kept): {reason}"
                )
            }
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Row id in the history database.
    pub row_id: i64,
    /// Upstream `_id`.
    pub record_id: String,
    /// `s_test_case_name`.
    pub test_case_name: String,
}

/// Everything the runner needs to know about a trial's results.
#[derive(Debug, Clone)]
pub struct TrialResults {
    /// The batch id of this call in the history database.
    pub batch: String,
    /// The history database.
    pub db_path: PathBuf,
    /// Records stored, in client order.
    pub records: Vec<StoredRecord>,
    /// Upload outcome.
    pub upload: UploadOutcome,
    /// Regression verdict.
    pub verdict: RegressionVerdict,
    /// Things worth telling the user (odd config values, unreadable startup telemetry, …).
    pub notes: Vec<String>,
}

impl TrialResults {
    /// A `Regression` failure when the verdict fails the trial.
    pub fn regression_failure(&self) -> Option<TrialFailure> {
        self.verdict.failure_message().map(|message| TrialFailure {
            class: FailureClass::Regression,
            role: Some(Role::Benchmark),
            message,
            log_tail: None,
        })
    }

    /// Human-readable summary: records, upload, verdict, notes.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "results: {} record(s) stored in {} (batch {})",
            self.records.len(),
            self.db_path.display(),
            self.batch
        )];
        out.push(format!("results: {}", self.upload));
        out.extend(self.verdict.lines());
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

pub(crate) fn batch_id(trial: &str, now: i64) -> String {
    let tag: u32 = rand::random();
    format!("{trial}@{now}-{tag:08x}")
}

/// Why a trial's `perf_records.json` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The trial's folder could not be created.
    #[error("{}: {source}", dir.display())]
    CreateDir {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The records could not be serialised.
    #[error("{0}")]
    Serialise(#[source] serde_json::Error),
    /// The file could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where the records of a trial went when the history database refused them.
#[derive(Debug, thiserror::Error)]
pub enum SavedRecords {
    /// Written to the trial's `perf_records.json`.
    #[error(
        "the records were written to {} (`perfsanity results import` stores them)",
        .0.display()
    )]
    Written(PathBuf),
    /// Not written anywhere.
    #[error("writing them to the artifacts directory failed too: {0}")]
    Lost(#[source] ArtifactError),
}

pub(crate) fn write_artifact(dir: &Path, records: &[Record]) -> Result<PathBuf, ArtifactError> {
    let path = dir.join("perf_records.json");
    std::fs::create_dir_all(dir).map_err(|source| ArtifactError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let text = serde_json::to_string_pretty(records).map_err(ArtifactError::Serialise)?;
    std::fs::write(&path, text + "\n").map_err(|source| ArtifactError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// [`record_trial_at`] at the current time.
pub fn record_trial(
    ctx: &ResultsContext,
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
) -> Result<TrialResults, ResultsError> {
    record_trial_at(ctx, plan, config, clients, now_ms())
}

/// Records a trial's client results as of `now` (epoch ms): build, store, verdict, upload.
pub fn record_trial_at(
    ctx: &ResultsContext,
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
    now: i64,
) -> Result<TrialResults, ResultsError> {
    check_metrics(plan, config, clients)?;
    let mut notes = Vec::new();
    let (records, client_indices) = build_trial_records(ctx, plan, config, clients, &mut notes);
    persist_records(
        ctx,
        &TrialMeta::of_plan(plan, spec_decoding(config)),
        records,
        &client_indices,
        notes,
        now,
    )
}

/// Stores built records, adds the regression verdict, sets the final state and uploads: the part
/// of recording both runtimes (disaggregated and aggregated) share.
pub fn persist_records(
    ctx: &ResultsContext,
    meta: &TrialMeta<'_>,
    mut records: Vec<Record>,
    client_indices: &[u32],
    mut notes: Vec<String>,
    now: i64,
) -> Result<TrialResults, ResultsError> {
    let intent = upload_intent_of(meta, ctx.gateway.as_ref());
    let project = match &intent {
        UploadIntent::Upload { project } => project.clone(),
        _ => String::new(),
    };
    let batch = Batch {
        meta,
        id: batch_id(meta.trial, now),
        intent,
        project,
        now,
    };
    let (mut store, row_ids) = store_records(ctx, &batch, &records, client_indices)?;
    let verdict = regression_verdict(ctx, &batch, &store, &mut records);
    let (state, note) = final_state(ctx, &batch, &records);
    for (row_id, record) in row_ids.iter().zip(&records) {
        store.update_record(*row_id, record, state, &note)?;
    }
    if let Err(e) = write_artifact(meta.output_dir, &records) {
        notes.push(format!("could not write perf_records.json: {e}"));
    }
    let _ = store.set_verdict(&batch.id, &verdict.lines().join("\n"));
    let upload = deliver(ctx, &mut store, &batch, state, note, &row_ids)?;
    Ok(TrialResults {
        records: stored_records(&row_ids, &records),
        batch: batch.id,
        db_path: ctx.db_path.clone(),
        upload,
        verdict,
        notes,
    })
}

/// One `persist_records` call: the trial, batch id, upload intent and clock.
struct Batch<'a> {
    meta: &'a TrialMeta<'a>,
    id: String,
    intent: UploadIntent,
    project: String,
    now: i64,
}

/// The records of `clients` and their client indices; notes what was odd.
pub(crate) fn build_trial_records(
    ctx: &ResultsContext,
    plan: &Plan,
    config: &PerfConfig,
    clients: &[ClientResult],
    notes: &mut Vec<String>,
) -> (Vec<Record>, Vec<u32>) {
    let startup = read_observations(&plan.output_dir, plan.server_index).unwrap_or_else(|e| {
        notes.push(format!("startup telemetry ignored: {e}"));
        Vec::new()
    });
    let built = build_records(
        plan,
        config,
        clients,
        &RecordInputs {
            gpu_type: &ctx.gpu_type,
            ci: &ctx.ci,
            startup: &startup,
        },
    );
    notes.extend(built.notes);
    (built.records, built.client_indices)
}

/// Stores the records before anything else (state `held` when meant for the gateway). When the
/// store fails, the records go to `perf_records.json` for `perfsanity results import`.
fn store_records(
    ctx: &ResultsContext,
    batch: &Batch<'_>,
    records: &[Record],
    client_indices: &[u32],
) -> Result<(Store, Vec<i64>), ResultsError> {
    // Only records meant for the gateway are `held`: a crash before the final state must never
    // make a later push send a simulator, smoke or non-upload record.
    let (initial, note) = match &batch.intent {
        UploadIntent::Upload { .. } => (UploadState::Held, ""),
        UploadIntent::Skip(reason) => (UploadState::Skipped, reason.as_str()),
        UploadIntent::NotRequested(reason) => (UploadState::NotRequested, reason.as_str()),
    };
    insert_records(
        ctx,
        batch.meta,
        &batch.id,
        records,
        client_indices,
        (initial, note),
        &batch.project,
        batch.now,
    )
}

/// Inserts `records` as batch `batch_id` in `state`; on failure writes them to the trial's
/// `perf_records.json` and says so in the error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_records(
    ctx: &ResultsContext,
    plan: &TrialMeta<'_>,
    batch_id: &str,
    records: &[Record],
    client_indices: &[u32],
    (state, note): (UploadState, &str),
    project: &str,
    now: i64,
) -> Result<(Store, Vec<i64>), ResultsError> {
    let stored = (|| -> Result<(Store, Vec<i64>), super::StoreError> {
        let mut store = Store::open(&ctx.db_path, ctx.db_lock_wait)?;
        let rows: Vec<NewRow<'_>> = records
            .iter()
            .zip(client_indices)
            .map(|(record, &client_index)| NewRow {
                record,
                trial: plan.trial,
                client_index,
                toolchain: plan.toolchain.as_str(),
                scale: plan.scale.as_str(),
                artifacts: plan.output_dir,
            })
            .collect();
        let ids = store.insert_batch(batch_id, &rows, state, note, project, now)?;
        Ok((store, ids))
    })();
    stored.map_err(|source| {
        let saved = match write_artifact(plan.output_dir, records) {
            Ok(p) => SavedRecords::Written(p),
            Err(w) => SavedRecords::Lost(w),
        };
        ResultsError::NotStored { source, saved }
    })
}

/// History (the gateway for real full-scale runs, else the embedded database) and the
/// regression verdict, which also annotates `records`.
fn regression_verdict(
    ctx: &ResultsContext,
    batch: &Batch<'_>,
    store: &Store,
    records: &mut [Record],
) -> RegressionVerdict {
    let (plan, now) = (batch.meta, batch.now);
    let real_full = plan.toolchain == Toolchain::Trtllm && plan.scale == Scale::Full;
    let (source, history) = match (&ctx.gateway, real_full) {
        (Some(g), true) => {
            let docs: Vec<_> = records.iter().map(record_doc).collect();
            let body = query_body(&common_values(&docs, &MATCH_KEYS), now);
            (
                HistorySource::Gateway {
                    project: g.project.clone(),
                },
                query_history(g, &body).map_err(|e| e.to_string()),
            )
        }
        _ => (
            HistorySource::Embedded {
                db: ctx.db_path.clone(),
                toolchain: plan.toolchain.as_str().to_string(),
                scale: plan.scale.as_str().to_string(),
            },
            store
                .history_docs(
                    plan.toolchain.as_str(),
                    plan.scale.as_str(),
                    lookback_start_ms(now, LOOKBACK_DAYS),
                    &batch.id,
                )
                .map(|docs| {
                    docs.into_iter()
                        .filter(|d| {
                            d.get(field::IS_VALID) != Some(&serde_json::Value::Bool(false))
                                && d.get(field::IS_BASELINE) != Some(&serde_json::Value::Bool(true))
                                && before_session(d, ctx.session_started_ms)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
        ),
    };
    let post_merge = records
        .first()
        .and_then(|r| r.bool(field::IS_POST_MERGE))
        .unwrap_or(false);
    let local_only = match (plan.toolchain, plan.scale) {
        (Toolchain::Sim, _) => Some("simulator run"),
        (_, Scale::Smoke) => Some("smoke-scale run"),
        _ => None,
    };
    let policy = failing_policy(
        &ctx.ci.stage_name,
        ctx.fail_on_regression,
        local_only,
        post_merge,
    );
    let settings = RegressionSettings {
        gated: gated_metrics(plan.gen_only, plan.spec_decoding),
        overrides: ctx.threshold_overrides.clone(),
    };
    evaluate_verdict(records, history, source, &settings, policy)
}

/// The final upload state of the batch and its note.
fn final_state(
    ctx: &ResultsContext,
    batch: &Batch<'_>,
    records: &[Record],
) -> (UploadState, String) {
    match &batch.intent {
        UploadIntent::Skip(reason) => (UploadState::Skipped, reason.clone()),
        UploadIntent::NotRequested(reason) => (UploadState::NotRequested, reason.clone()),
        UploadIntent::Upload { .. } => match check_batch(records) {
            Err(problems) => (UploadState::Refused, problems.join("; ")),
            Ok(()) => match ctx.gateway.as_ref().map(|g| precheck(g, &batch.project)) {
                Some(Err(reason)) => (UploadState::Pending, reason.to_string()),
                _ => (UploadState::Pending, String::new()),
            },
        },
    }
}

/// Uploads the batch when it is meant for the gateway and may go.
fn deliver(
    ctx: &ResultsContext,
    store: &mut Store,
    batch: &Batch<'_>,
    state: UploadState,
    note: String,
    row_ids: &[i64],
) -> Result<UploadOutcome, ResultsError> {
    Ok(match (&batch.intent, state) {
        _ if row_ids.is_empty() => UploadOutcome::NotRequested {
            reason: "no client results to record".to_string(),
        },
        (UploadIntent::Skip(reason), _) => UploadOutcome::Skipped {
            reason: reason.clone(),
        },
        (UploadIntent::NotRequested(reason), _) => UploadOutcome::NotRequested {
            reason: reason.clone(),
        },
        (UploadIntent::Upload { .. }, UploadState::Refused) => {
            UploadOutcome::Refused { reason: note }
        }
        (UploadIntent::Upload { .. }, _) if !note.is_empty() => {
            UploadOutcome::Pending { reason: note }
        }
        (UploadIntent::Upload { project }, _) => {
            let gateway = ctx
                .gateway
                .as_ref()
                .expect("an upload intent implies a gateway");
            upload_batch(store, gateway, project, &batch.id, batch.now)?
        }
    })
}

/// What the runner reports of each stored row.
pub(crate) fn stored_records(row_ids: &[i64], records: &[Record]) -> Vec<StoredRecord> {
    row_ids
        .iter()
        .zip(records)
        .map(|(row_id, r)| StoredRecord {
            row_id: *row_id,
            record_id: r.str(field::ID).unwrap_or("").to_string(),
            test_case_name: r.str(field::TEST_CASE_NAME).unwrap_or("").to_string(),
        })
        .collect()
}

fn claim_tag(now: i64) -> String {
    let tag: u64 = rand::random();
    format!("{}-{now}-{tag:016x}", std::process::id())
}

/// Claims and posts the pending rows of `batch`.
fn upload_batch(
    store: &mut Store,
    gateway: &GatewaySettings,
    project: &str,
    batch: &str,
    now: i64,
) -> Result<UploadOutcome, ResultsError> {
    let rows = store.claim_uploadable(&claim_tag(now), Some(batch), now)?;
    if rows.is_empty() {
        return Ok(UploadOutcome::Pending {
            reason: "no record could be claimed for upload (another push holds them)".to_string(),
        });
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.row_id).collect();
    let recs: Vec<Record> = rows.into_iter().map(|r| r.record).collect();
    let outcome = post_records(gateway, project, &recs);
    let failure = outcome.result.err().map(|e| e.to_string());
    store.finish_upload(
        &ids,
        failure.as_deref().map_or(Ok(()), Err),
        outcome.attempts,
        now_ms(),
    )?;
    Ok(match failure {
        None => UploadOutcome::Uploaded {
            records: ids.len(),
            project: project.to_string(),
        },
        Some(reason) => UploadOutcome::Pending { reason },
    })
}

/// The result of a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Records delivered.
    pub uploaded: usize,
    /// Records still pending, with the reason per batch.
    pub failed: Vec<(String, usize, String)>,
    /// Records refused by the type check now (never sent).
    pub refused: usize,
}

/// Sends every pending record (and abandoned held / uploading ones) of real full-scale runs,
/// one request per batch, to the project recorded with it.
pub fn push_pending(
    store: &mut Store,
    gateway: &GatewaySettings,
) -> Result<PushReport, ResultsError> {
    let now = now_ms();
    let rows = store.claim_uploadable(&claim_tag(now), None, now)?;
    let mut report = PushReport::default();
    let mut groups: Vec<(String, String, Vec<super::store::Row>)> = Vec::new();
    for row in rows {
        let project = if row.project.is_empty() {
            gateway.project.clone()
        } else {
            row.project.clone()
        };
        match groups
            .iter_mut()
            .find(|(b, p, _)| *b == row.batch && *p == project)
        {
            Some(g) => g.2.push(row),
            None => groups.push((row.batch.clone(), project, vec![row])),
        }
    }
    for (batch, project, rows) in groups {
        let ids: Vec<i64> = rows.iter().map(|r| r.row_id).collect();
        let recs: Vec<Record> = rows.into_iter().map(|r| r.record).collect();
        if let Err(problems) = check_batch(&recs) {
            let reason = problems.join("; ");
            for id in &ids {
                let rec = &recs[ids.iter().position(|x| x == id).unwrap_or(0)];
                store.update_record(*id, rec, UploadState::Refused, &reason)?;
            }
            report.refused += ids.len();
            continue;
        }
        if let Err(e) = precheck(gateway, &project) {
            let reason = e.to_string();
            store.finish_upload(&ids, Err(&reason), 0, now_ms())?;
            report.failed.push((batch, ids.len(), reason));
            continue;
        }
        let outcome = post_records(gateway, &project, &recs);
        let failure = outcome.result.err().map(|e| e.to_string());
        store.finish_upload(
            &ids,
            failure.as_deref().map_or(Ok(()), Err),
            outcome.attempts,
            now_ms(),
        )?;
        match failure {
            None => report.uploaded += ids.len(),
            Some(reason) => report.failed.push((batch, ids.len(), reason)),
        }
    }
    Ok(report)
}

/// True when `doc` was created before the run session began (or there is no session bound).
fn before_session(doc: &super::history::Doc, session_started_ms: Option<i64>) -> bool {
    let created = doc
        .get(field::CREATED)
        .and_then(super::history::timestamp_ms);
    match (session_started_ms, created) {
        (Some(start), Some(t)) => t < start,
        _ => true,
    }
}
