//! Misspelt knobs: every `PERF_*` variable perfsanity does not know is named on stderr, with the
//! known one it most resembles, so `PERF_SCAL=smoke` is not silently a full-scale run.

/// Every `PERF_*` variable perfsanity reads (README, "Environment"). `PERF_SLURM_*` are the
/// SLURM launcher's.
pub const KNOWN_PERF_VARS: &[&str] = &[
    "PERF_ALL_FAMILIES",
    "PERF_ALLOW_EMPTY",
    "PERF_ALLOW_EMPTY_TESTLIST",
    "PERF_CONFIG_DIRS",
    "PERF_DATASET_FALLBACK",
    "PERF_DB",
    "PERF_DB_ATTEMPTS",
    "PERF_DB_LOCK_WAIT_S",
    "PERF_DB_POST_TIMEOUT",
    "PERF_DB_QUERY_TIMEOUT",
    "PERF_FAIL_ON_REGRESSION",
    "PERF_HOSTNAME",
    "PERF_JUNIT",
    "PERF_LAUNCHER_GEN_LOGS",
    "PERF_OUTPUT_DIR",
    "PERF_PROGRESS",
    "PERF_PROGRESS_S",
    "PERF_PROJECT_ROOT",
    "PERF_REGRESSION_THRESHOLDS",
    "PERF_SCALE",
    "PERF_SIM_DATASETS",
    "PERF_SLURM_ACCOUNT",
    "PERF_SLURM_CONTAINER",
    "PERF_SLURM_CONTAINER_IMAGE",
    "PERF_SLURM_CONTAINER_MOUNTS",
    "PERF_SLURM_EXTRA_ARGS",
    "PERF_SLURM_GPUS",
    "PERF_SLURM_JOB_NAME",
    "PERF_SLURM_LLMAPI_LAUNCH",
    "PERF_SLURM_MPI",
    "PERF_SLURM_PARTITION",
    "PERF_SLURM_POLL",
    "PERF_SLURM_SEGMENT",
    "PERF_SLURM_STEP_PAUSE",
    "PERF_SLURM_TIME",
    "PERF_STALL_S",
    "PERF_TESTLIST",
    "PERF_TOOLCHAIN",
    "PERF_TRIAL_TIMEOUT_S",
];

/// One warning line per unknown `PERF_*` name among `names`, in the order given.
pub fn unknown_perf_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| n.starts_with("PERF_") && !KNOWN_PERF_VARS.contains(n))
        .map(|n| {
            let hint = crate::config::reader::closest(n, KNOWN_PERF_VARS)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            format!("warning: unknown environment variable {n}{hint}; it has no effect")
        })
        .collect()
}

/// The warnings for the process environment.
pub fn process_env_warnings() -> Vec<String> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    unknown_perf_vars(names.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_knob_is_named_with_the_real_one() {
        let w = unknown_perf_vars(["PERF_SCAL", "PERF_SCALE", "PATH", "PERF_ZZZZZZZZZZZZZZZ"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("PERF_SCAL ") && w[0].contains("did you mean PERF_SCALE?"));
        assert!(!w[1].contains("did you mean"), "{}", w[1]);
    }

    /// One list of knobs: every `PERF_*` name the README's knob tables document is known here,
    /// and every name known here is documented (a knob missing from this list is warned about
    /// as having "no effect" while it works).
    #[test]
    fn the_known_knobs_are_the_documented_ones() {
        let readme = include_str!("../../README.md");
        let documented: std::collections::BTreeSet<&str> = readme
            .lines()
            .filter(|l| l.starts_with('|'))
            .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .filter(|w| w.starts_with("PERF_") && w.len() > "PERF_".len())
            .collect();
        let known: std::collections::BTreeSet<&str> = KNOWN_PERF_VARS.iter().copied().collect();
        let undocumented: Vec<_> = known.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&known).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "known but not in README's tables: {undocumented:?}; in README's tables but not \
             known (warned as having no effect): {unknown:?}"
        );
    }
}
