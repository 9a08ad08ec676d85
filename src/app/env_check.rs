//! Environment knobs that are set but unusable. `std::env::var` reports a value that is not
//! UTF-8 the same way as an unset one, so without this check a garbled `PERF_TESTLIST` would
//! silently run the whole catalog. Every knob perfsanity reads — `PERF_*`, `PERFSANITY_*` and the
//! upstream names below — must be UTF-8 when it is set; flags must be spelled as documented.

use std::ffi::OsString;

/// Knobs without the `PERF_` / `PERFSANITY_` prefix that perfsanity reads.
pub const OTHER_KNOBS: &[&str] = &[
    "SLURM_JOB_ID",
    "SLURM_LOCALID",
    "LLM_MODELS_ROOT",
    "LLM_ROOT",
    "DISAGG_SERVING_TYPE",
    "TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT",
    "TRTLLM_TEST_AGG_SERVER_READY_TIMEOUT",
    "TRTLLM_TEST_SERVER_READY_TIMEOUT",
    "CARGO_TARGET_DIR",
];

/// Longest `PERF_TRIAL_TIMEOUT_S` accepted (30 days): a trial's deadline is "now + limit".
pub const MAX_TRIAL_TIMEOUT_S: u64 = 30 * 86_400;

/// True for a variable perfsanity reads.
pub fn is_knob(name: &str) -> bool {
    name.starts_with("PERF_") || name.starts_with("PERFSANITY_") || OTHER_KNOBS.contains(&name)
}

/// One message per knob among `vars` that is set to a value that is not UTF-8.
pub fn non_utf8_knobs(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            (is_knob(&name) && value.to_str().is_none()).then(|| {
                format!(
                    "{name} is set but its value is not UTF-8 ({:?}); set it to a UTF-8 value or \
                     unset it",
                    value.to_string_lossy()
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// An on/off flag (`PERF_LAUNCHER_GEN_LOGS`): unset, empty or `0` is off, `1` is on, anything
/// else is an error rather than a silent "off".
pub fn flag(name: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::trim) {
        None | Some("" | "0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(format!(
            "{name}={:?}: expected 1 (on) or 0 (off)",
            crate::util::terminal::escape_controls(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn non_utf8_values_of_knobs_are_reported() {
        let bad = OsString::from_vec(b"list\xff.txt".to_vec());
        let vars = [
            (OsString::from("PERF_TESTLIST"), bad.clone()),
            (OsString::from("SLURM_JOB_ID"), bad.clone()),
            (OsString::from("UNRELATED"), bad),
            (OsString::from("PERF_SCALE"), OsString::from("smoke")),
        ];
        let found = non_utf8_knobs(vars);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("PERF_TESTLIST is set but"),
            "{found:?}"
        );
        assert!(found[1].starts_with("SLURM_JOB_ID is set but"), "{found:?}");
    }

    #[test]
    fn flags() {
        assert_eq!(flag("F", None), Ok(false));
        assert_eq!(flag("F", Some("0")), Ok(false));
        assert_eq!(flag("F", Some("1")), Ok(true));
        assert!(flag("F", Some("yes")).unwrap_err().contains("F=\"yes\""));
    }
}
