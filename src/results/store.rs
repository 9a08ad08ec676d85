//! The embedded history: every record in a SQLite database (`PERF_DB`), written before any
//! upload is attempted, with its upload state, so no number is ever lost to a network problem.
//!
//! One row per record: the record JSON exactly as built (and as it would be uploaded), the trial,
//! the test case, the toolchain and scale (kept here, never in the uploaded record), the creation
//! time, the trial's artifacts directory, and the upload state machine:
//!
//! ```text
//! held ──► pending ──► uploading ──► uploaded
//!   │         ▲            │
//!   │         └────────────┘  (failed attempt: back to pending, with the error)
//!   └──► skipped (simulator / smoke) · not_requested · refused (type check)
//! ```
//!
//! `held` covers the short window in which the regression verdict is added to a stored record;
//! `uploading` is a claim, so two pushes never send the same row. Credentials are never stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::field;
use super::value::Record;

/// Schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// A claim or hold older than this is considered abandoned (its process died).
pub const STALE_AFTER_MS: i64 = 60 * 60 * 1000;

/// Upload state of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Stored; the verdict is being added (then pending or a final state).
    Held,
    /// Waiting to be uploaded (after a failure, `note` says why).
    Pending,
    /// Claimed by an upload in progress.
    Uploading,
    /// Delivered.
    Uploaded,
    /// Never uploaded: simulator or smoke-scale run.
    Skipped,
    /// Not an upload trial, or no gateway configured.
    NotRequested,
    /// Failed the gateway's type check; never sent.
    Refused,
}

impl UploadState {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Held => "held",
            UploadState::Pending => "pending",
            UploadState::Uploading => "uploading",
            UploadState::Uploaded => "uploaded",
            UploadState::Skipped => "skipped",
            UploadState::NotRequested => "not_requested",
            UploadState::Refused => "refused",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => UploadState::Held,
            "pending" => UploadState::Pending,
            "uploading" => UploadState::Uploading,
            "uploaded" => UploadState::Uploaded,
            "skipped" => UploadState::Skipped,
            "not_requested" => UploadState::NotRequested,
            "refused" => UploadState::Refused,
            _ => return None,
        })
    }
}

/// Default of `PERF_DB_LOCK_WAIT_S`: how long a write waits for another process's lock on the
/// history database before it fails.
pub const DEFAULT_LOCK_WAIT_S: u64 = 30;
/// [`DEFAULT_LOCK_WAIT_S`] as a duration.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(DEFAULT_LOCK_WAIT_S);
/// Upper bound of `PERF_DB_LOCK_WAIT_S` (one day).
pub const MAX_LOCK_WAIT_S: u64 = 24 * 3600;

/// `PERF_DB_LOCK_WAIT_S` is not a whole number of seconds in range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "PERF_DB_LOCK_WAIT_S={value:?}: expected a whole number of seconds in 0..={MAX_LOCK_WAIT_S}"
)]
pub struct LockWaitError {
    /// The value (trimmed).
    pub value: String,
}

/// `PERF_DB_LOCK_WAIT_S` from `value` (unset or empty: the default).
pub fn parse_lock_wait(value: Option<&str>) -> Result<Duration, LockWaitError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LOCK_WAIT),
        Some(v) => match v.parse::<u64>() {
            Ok(s) if s <= MAX_LOCK_WAIT_S => Ok(Duration::from_secs(s)),
            _ => Err(LockWaitError {
                value: v.to_string(),
            }),
        },
    }
}

/// Names the lock when SQLite gave up waiting for it.
fn explain_lock(message: &str, lock_wait: Duration) -> String {
    if message.contains("database is locked") || message.contains("database is busy") {
        format!(
            "{message} (another process holds this database's write lock — a concurrent run or \
             `perfsanity results push`; waited {} s, PERF_DB_LOCK_WAIT_S)",
            lock_wait.as_secs()
        )
    } else {
        message.to_string()
    }
}

/// A store failure, naming the database.
#[derive(Debug, thiserror::Error)]
#[error("results database {}: {}", path.display(), explain_lock(message, *lock_wait))]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
    /// How long a write waited for another process's lock (named when the lock was the
    /// problem).
    pub lock_wait: Duration,
}

impl StoreError {
    fn new(path: &Path, lock_wait: Duration, message: impl std::fmt::Display) -> Self {
        StoreError {
            path: path.to_path_buf(),
            message: message.to_string(),
            lock_wait,
        }
    }
}

/// A record to insert.
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    /// The record.
    pub record: &'a Record,
    /// Trial name.
    pub trial: &'a str,
    /// Client index.
    pub client_index: u32,
    /// `trtllm` / `sim`.
    pub toolchain: &'a str,
    /// `full` / `smoke`.
    pub scale: &'a str,
    /// The trial's output directory.
    pub artifacts: &'a Path,
}

/// One stored row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Row id (local key).
    pub row_id: i64,
    /// Record `_id`.
    pub record_id: String,
    /// One `record_trial` call.
    pub batch: String,
    /// Trial name.
    pub trial: String,
    /// `s_test_case_name`.
    pub test_case_name: String,
    /// Client index.
    pub client_index: u32,
    /// Toolchain.
    pub toolchain: String,
    /// Scale.
    pub scale: String,
    /// `s_gpu_type`.
    pub gpu_type: String,
    /// Creation time, epoch ms.
    pub created_ms: i64,
    /// The record.
    pub record: Record,
    /// Upload state.
    pub state: UploadState,
    /// Why (skip reason, last error, refusal).
    pub note: String,
    /// Upload attempts made.
    pub attempts: i64,
    /// When it was delivered.
    pub uploaded_ms: Option<i64>,
    /// Target project (for uploads).
    pub project: String,
    /// Artifacts directory.
    pub artifacts: String,
}

/// The history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    lock_wait: Duration,
}

/// Now, epoch ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

const COLUMNS: &str = "row_id, record_id, batch, trial, test_case_name, client_index, toolchain, \
     scale, gpu_type, created_ms, record_json, upload_state, upload_note, upload_attempts, \
     uploaded_ms, project, artifacts";

impl Store {
    /// Opens (creating and migrating) the database at `path`; a write waits up to `lock_wait`
    /// for another process's lock (`PERF_DB_LOCK_WAIT_S`, [`parse_lock_wait`]; the caller reads
    /// it).
    pub fn open(path: &Path, lock_wait: Duration) -> Result<Self, StoreError> {
        let err = |message: String| StoreError::new(path, lock_wait, message);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(format!("cannot create {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        conn.busy_timeout(lock_wait)
            .map_err(|e| err(e.to_string()))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            lock_wait,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(&self.path, self.lock_wait, e)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        // WAL lets `results show` read while a trial writes; ignore filesystems that refuse it.
        let _ = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0));
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(self.err(format!(
                "schema version {version} is newer than this perfsanity understands \
                 ({SCHEMA_VERSION}); use a newer perfsanity or another PERF_DB"
            )));
        }
        if version < 1 {
            self.conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS records (
                        row_id INTEGER PRIMARY KEY AUTOINCREMENT,
                        record_id TEXT NOT NULL,
                        batch TEXT NOT NULL,
                        trial TEXT NOT NULL,
                        test_case_name TEXT NOT NULL,
                        client_index INTEGER NOT NULL,
                        toolchain TEXT NOT NULL,
                        scale TEXT NOT NULL,
                        gpu_type TEXT NOT NULL,
                        created_ms INTEGER NOT NULL,
                        record_json TEXT NOT NULL,
                        upload_state TEXT NOT NULL,
                        upload_note TEXT NOT NULL DEFAULT '',
                        upload_attempts INTEGER NOT NULL DEFAULT 0,
                        uploaded_ms INTEGER,
                        project TEXT NOT NULL DEFAULT '',
                        artifacts TEXT NOT NULL DEFAULT '',
                        claim TEXT,
                        claim_ms INTEGER
                     );
                     CREATE INDEX IF NOT EXISTS records_case ON records(test_case_name, toolchain, scale, created_ms);
                     CREATE INDEX IF NOT EXISTS records_state ON records(upload_state);
                     CREATE INDEX IF NOT EXISTS records_trial ON records(trial, created_ms);
                     CREATE TABLE IF NOT EXISTS batches (
                        batch TEXT PRIMARY KEY,
                        trial TEXT NOT NULL,
                        created_ms INTEGER NOT NULL,
                        artifacts TEXT NOT NULL DEFAULT '',
                        verdict TEXT NOT NULL DEFAULT ''
                     );
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| self.err(format!("cannot create the schema: {e}")))?;
        }
        Ok(())
    }

    /// Inserts one batch of records in state `state` (one transaction). Returns the row ids.
    pub fn insert_batch(
        &mut self,
        batch: &str,
        rows: &[NewRow<'_>],
        state: UploadState,
        note: &str,
        project: &str,
        created_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let (path, lock_wait) = (self.path.clone(), self.lock_wait);
        let err = |e: rusqlite::Error| StoreError::new(&path, lock_wait, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut ids = Vec::new();
        if let Some(first) = rows.first() {
            tx.execute(
                "INSERT OR IGNORE INTO batches (batch, trial, created_ms, artifacts) VALUES (?1, ?2, ?3, ?4)",
                params![batch, first.trial, created_ms, first.artifacts.display().to_string()],
            )
            .map_err(err)?;
        }
        for row in rows {
            tx.execute(
                "INSERT INTO records (record_id, batch, trial, test_case_name, client_index, \
                 toolchain, scale, gpu_type, created_ms, record_json, upload_state, upload_note, \
                 project, artifacts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    row.record.str(field::ID).unwrap_or(""),
                    batch,
                    row.trial,
                    row.record.str(field::TEST_CASE_NAME).unwrap_or(""),
                    row.client_index,
                    row.toolchain,
                    row.scale,
                    row.record.str(field::GPU_TYPE).unwrap_or(""),
                    created_ms,
                    row.record.to_json_string(),
                    state.as_str(),
                    note,
                    project,
                    row.artifacts.display().to_string(),
                ],
            )
            .map_err(err)?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// Replaces a row's record and sets its state.
    pub fn update_record(
        &self,
        row_id: i64,
        record: &Record,
        state: UploadState,
        note: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE records SET record_json = ?1, upload_state = ?2, upload_note = ?3 WHERE row_id = ?4",
                params![record.to_json_string(), state.as_str(), note, row_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Stores a batch's verdict text.
    pub fn set_verdict(&self, batch: &str, verdict: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE batches SET verdict = ?1 WHERE batch = ?2",
                params![verdict, batch],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A batch's verdict text.
    pub fn verdict(&self, batch: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT verdict FROM batches WHERE batch = ?1",
                params![batch],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn rows(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let raw = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    (
                        r.get::<_, String>(12)?,
                        r.get::<_, i64>(13)?,
                        r.get::<_, Option<i64>>(14)?,
                        r.get::<_, String>(15)?,
                        r.get::<_, String>(16)?,
                    ),
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in raw {
            let (
                row_id,
                record_id,
                batch,
                trial,
                test_case_name,
                client_index,
                toolchain,
                scale,
                gpu_type,
                created_ms,
                json,
                state,
                (note, attempts, uploaded_ms, project, artifacts),
            ) = item.map_err(|e| self.err(e))?;
            let record =
                Record::from_json_str(&json).map_err(|e| self.err(format!("row {row_id}: {e}")))?;
            let state = UploadState::parse(&state)
                .ok_or_else(|| self.err(format!("row {row_id}: unknown upload state {state:?}")))?;
            out.push(Row {
                row_id,
                record_id,
                batch,
                trial,
                test_case_name,
                client_index: client_index as u32,
                toolchain,
                scale,
                gpu_type,
                created_ms,
                record,
                state,
                note,
                attempts,
                uploaded_ms,
                project,
                artifacts,
            });
        }
        Ok(out)
    }

    /// The newest `limit` rows (optionally of one trial), oldest first.
    pub fn recent(&self, trial: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let mut rows = match trial {
            Some(t) => self.rows(
                &format!(
                    "SELECT {COLUMNS} FROM records WHERE trial = ?1 ORDER BY created_ms DESC, row_id DESC LIMIT ?2"
                ),
                &[&t, &limit],
            )?,
            None => self.rows(
                &format!(
                    "SELECT {COLUMNS} FROM records ORDER BY created_ms DESC, row_id DESC LIMIT ?1"
                ),
                &[&limit],
            )?,
        };
        rows.reverse();
        Ok(rows)
    }

    /// Every row (optionally of one trial), oldest first.
    pub fn all(&self, trial: Option<&str>) -> Result<Vec<Row>, StoreError> {
        self.recent(trial, usize::MAX)
    }

    /// Rows of one batch, in client order.
    pub fn batch_rows(&self, batch: &str) -> Result<Vec<Row>, StoreError> {
        self.rows(
            &format!("SELECT {COLUMNS} FROM records WHERE batch = ?1 ORDER BY client_index"),
            &[&batch],
        )
    }

    /// History candidates for the embedded regression check: rows of the same toolchain and
    /// scale created since `since_ms`, excluding `exclude_batch`, as documents with
    /// `ts_created` / `@timestamp` set from the row (only when the record lacks them).
    pub fn history_docs(
        &self,
        toolchain: &str,
        scale: &str,
        since_ms: i64,
        exclude_batch: &str,
    ) -> Result<Vec<super::history::Doc>, StoreError> {
        let rows = self.rows(
            &format!(
                "SELECT {COLUMNS} FROM records WHERE toolchain = ?1 AND scale = ?2 \
                 AND created_ms >= ?3 AND batch != ?4 ORDER BY created_ms, row_id"
            ),
            &[&toolchain, &scale, &since_ms, &exclude_batch],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut doc = row.record.to_json_map();
                doc.entry(field::CREATED)
                    .or_insert(serde_json::Value::from(row.created_ms));
                doc.entry("@timestamp")
                    .or_insert(serde_json::Value::from(row.created_ms));
                doc
            })
            .collect())
    }

    /// Claims rows for upload: `pending` rows plus abandoned `held` / `uploading` rows (older
    /// than [`STALE_AFTER_MS`]), real full-scale only, optionally of one batch. Claimed rows are
    /// `uploading` under `claim` until [`Store::finish_upload`].
    pub fn claim_uploadable(
        &mut self,
        claim: &str,
        batch: Option<&str>,
        now: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let stale = now - STALE_AFTER_MS;
        let (path, lock_wait) = (self.path.clone(), self.lock_wait);
        let err = |e: rusqlite::Error| StoreError::new(&path, lock_wait, e);
        let tx = self.conn.transaction().map_err(err)?;
        let sql = "UPDATE records SET upload_state = 'uploading', claim = ?1, claim_ms = ?2 \
                   WHERE toolchain = 'trtllm' AND scale = 'full' AND (?3 IS NULL OR batch = ?3) AND ( \
                     upload_state = 'pending' \
                     OR (upload_state = 'held' AND created_ms < ?4) \
                     OR (upload_state = 'uploading' AND claim_ms < ?4))";
        tx.execute(sql, params![claim, now, batch, stale])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        self.rows(
            &format!("SELECT {COLUMNS} FROM records WHERE claim = ?1 AND upload_state = 'uploading' ORDER BY batch, client_index"),
            &[&claim],
        )
    }

    /// Ends an upload attempt of claimed rows: `Ok` marks them uploaded, `Err(reason)` puts them
    /// back to pending with the reason. `attempts` is added to each row's count.
    pub fn finish_upload(
        &mut self,
        row_ids: &[i64],
        result: Result<(), &str>,
        attempts: u32,
        now: i64,
    ) -> Result<(), StoreError> {
        let (path, lock_wait) = (self.path.clone(), self.lock_wait);
        let err = |e: rusqlite::Error| StoreError::new(&path, lock_wait, e);
        let tx = self.conn.transaction().map_err(err)?;
        for id in row_ids {
            match result {
                Ok(()) => tx.execute(
                    "UPDATE records SET upload_state = 'uploaded', upload_note = '', uploaded_ms = ?1, \
                     upload_attempts = upload_attempts + ?2, claim = NULL WHERE row_id = ?3",
                    params![now, attempts, id],
                ),
                Err(reason) => tx.execute(
                    "UPDATE records SET upload_state = 'pending', upload_note = ?1, \
                     upload_attempts = upload_attempts + ?2, claim = NULL WHERE row_id = ?3",
                    params![reason, attempts, id],
                ),
            }
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Counts rows per upload state.
    pub fn state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT upload_state, COUNT(*) FROM records GROUP BY upload_state ORDER BY upload_state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn lock_wait_knob() {
        assert_eq!(parse_lock_wait(None).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_lock_wait(Some(" ")).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_lock_wait(Some("0")).unwrap(), Duration::ZERO);
        for bad in ["-1", "30s", "86401"] {
            let e = parse_lock_wait(Some(bad)).unwrap_err().to_string();
            assert!(e.starts_with("PERF_DB_LOCK_WAIT_S="), "{e}");
        }
    }

    /// A write blocked by another connection's exclusive lock fails after the configured wait
    /// with a message that names the lock and the knob.
    #[test]
    fn a_locked_database_fails_naming_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        drop(Store::open(&path, Duration::ZERO).unwrap());
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let mut store = Store::open(&path, Duration::from_millis(200)).unwrap();
        let record = Record::new();
        let row = NewRow {
            record: &record,
            trial: "t",
            client_index: 0,
            toolchain: "sim",
            scale: "smoke",
            artifacts: dir.path(),
        };
        let began = std::time::Instant::now();
        let e = store
            .insert_batch("b", &[row], UploadState::Skipped, "", "", 0)
            .unwrap_err()
            .to_string();
        assert!(began.elapsed() >= Duration::from_millis(200));
        assert!(
            e.contains("database is locked") && e.contains("PERF_DB_LOCK_WAIT_S"),
            "{e}"
        );
    }
}
