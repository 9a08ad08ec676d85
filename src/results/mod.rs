//! Results: upstream-schema records, the embedded SQLite history, uploads that never lose data,
//! and regression verdicts (upstream-perf-sanity.md §6).
//!
//! The runner calls one function, [`record_trial`], after a trial's clients finished and their
//! metrics were parsed. It builds one record per client run ([`record`]), stores every record in
//! the history database before anything else ([`store`]), reads history (the gateway's search
//! endpoint when configured for a real full-scale run, else the embedded history of the same
//! toolchain and scale — [`history`]), adds the regression verdict ([`regression`]), type-checks
//! ([`typecheck`]) and uploads ([`gateway`]). A failed upload leaves the records `pending` for
//! `perfsanity results push`. Simulator and smoke-scale records are stored but never uploaded.
//!
//! Every part is a separate, testable function; `record_trial` only sequences them.

pub mod aggr_record;
pub mod context;
pub mod field;
pub mod gateway;
pub mod gpu;
pub mod history;
pub mod job_info;
pub mod log_explain;
pub mod outcome;
pub mod partial;
pub mod pyjson;
pub mod record;
pub mod regression;
pub mod server_fields;
pub mod startup;
pub mod store;
pub mod typecheck;
pub mod value;

mod trial;
mod verdict;

pub use aggr_record::{
    AggrClientResult, build_aggr_records, check_aggr_metrics, record_aggr_trial,
};
pub use context::{CiEnv, ContextError, ResultsContext};
pub use gateway::{Credentials, GatewaySettings, Secret};
pub use record::{ClientResult, MetricsError, build_records, check_metrics};
pub use store::{Store, StoreError, UploadState};
pub use trial::{
    ArtifactError, PushReport, SavedRecords, StoredRecord, TrialResults, UploadIntent,
    UploadOutcome, push_pending, record_trial, record_trial_at, upload_intent,
};
pub use value::{FieldValue, Record};
pub use verdict::{HistorySource, RegressionVerdict, evaluate_verdict};

use crate::results::outcome::FailureClass;

/// Why the results stage failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Upstream's pre-upload check failed (§5.4): results missing or incomplete.
    #[error("{0}")]
    Metrics(#[from] MetricsError),
    /// The history database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The history database failed while a trial's records were being stored; `saved` says
    /// where the records went instead (the artifacts directory, for `perfsanity results import`).
    #[error("{source}; {saved}")]
    NotStored {
        /// The store failure.
        source: StoreError,
        /// Where the records are now.
        saved: SavedRecords,
    },
    /// An environment knob is invalid.
    #[error("{0}")]
    Env(#[from] ContextError),
}

impl ResultsError {
    /// The failure class a runner should report.
    pub fn class(&self) -> FailureClass {
        match self {
            ResultsError::Metrics(_) => FailureClass::MissingMetric,
            ResultsError::Store(_) | ResultsError::NotStored { .. } => FailureClass::Results,
            ResultsError::Env(_) => FailureClass::Config,
        }
    }
}
