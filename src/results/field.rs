//! Names of the record fields that more than one module reads or writes: one constant per name,
//! so a field is spelled once. (Fields written in one place only — most metric and job fields —
//! stay literal next to the code that fills them; `docs/RESULTS.md` lists them all.)

/// The record's id: an MD5 of the record without it (`pyjson::md5_of_record`).
pub const ID: &str = "_id";
/// The test case (`<trial-label>-<client name>`), the first history match key.
pub const TEST_CASE_NAME: &str = "s_test_case_name";
/// GPU type (`nvidia-smi` name or `sim`), a history match key.
pub const GPU_TYPE: &str = "s_gpu_type";
/// Runtime (`trtllm-serve`…), a history match key.
pub const RUNTIME: &str = "s_runtime";
/// Branch of the CI job, a history match key.
pub const BRANCH: &str = "s_branch";
/// Whether the record comes from a post-merge job.
pub const IS_POST_MERGE: &str = "b_is_post_merge";
/// Whether the record is a baseline.
pub const IS_BASELINE: &str = "b_is_baseline";
/// Whether the record counts for history.
pub const IS_VALID: &str = "b_is_valid";
/// Whether the regression check flagged this record.
pub const IS_REGRESSION: &str = "b_is_regression";
/// The regression check's explanation.
pub const REGRESSION_INFO: &str = "s_regression_info";
/// Creation time (epoch ms).
pub const CREATED: &str = "ts_created";
