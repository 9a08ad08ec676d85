//! Values that become one component of a path (job ids, config stems, trial names, server
//! names): checked before they are joined, so `SLURM_JOB_ID=../../x` or a stem with a control
//! character can never place a file outside the trial's folder or garble a file name.

/// Longest accepted component, in bytes (the usual file-name limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Checks that `value` (described as `what` in the message) is usable as a single path
/// component: not empty, not `.` or `..`, no `/`, no NUL or other control character, at most
/// [`MAX_COMPONENT_BYTES`] bytes.
pub fn check_component(what: &str, value: &str) -> Result<(), String> {
    let shown = crate::util::terminal::escape_controls(value);
    let problem = if value.is_empty() {
        Some("is empty".to_string())
    } else if value == "." || value == ".." {
        Some("is a relative folder reference".to_string())
    } else if value.contains('/') {
        Some("contains `/`".to_string())
    } else if value.chars().any(crate::util::terminal::is_unsafe_char) {
        Some("contains a control character".to_string())
    } else if value.len() > MAX_COMPONENT_BYTES {
        Some(format!("is longer than {MAX_COMPONENT_BYTES} bytes"))
    } else {
        None
    };
    match problem {
        Some(p) => Err(format!(
            "{what} {shown:?} {p}; it becomes part of a file name, so it must be a single plain \
             path component"
        )),
        None => Ok(()),
    }
}

/// Checks a SLURM job id: 1 to 64 characters from `[A-Za-z0-9_.+-]`, not starting with `.`
/// (SLURM's ids are digits, with `_` for array tasks and `+` for heterogeneous components).
pub fn check_job_id(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what}={:?} is not a job id; expected 1 to 64 characters from [A-Za-z0-9_.+-] \
             (it becomes part of the trial's rendezvous folder name)",
            crate::util::terminal::escape_controls(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        for ok in ["disagg-a_b", "hostnames-123-0", "x.y", "…"] {
            assert!(check_component("stem", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\0b",
            "a\u{1b}b",
            &"x".repeat(256),
        ] {
            let e = check_component("stem", bad).unwrap_err();
            assert!(e.starts_with("stem "), "{e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn job_ids() {
        for ok in ["12345", "12345_7", "99+1", "local"] {
            assert!(check_job_id("SLURM_JOB_ID", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../../x",
            "..",
            ".hidden",
            "1 2",
            "a/b",
            &"9".repeat(65),
        ] {
            let e = check_job_id("SLURM_JOB_ID", bad).unwrap_err();
            assert!(e.contains("SLURM_JOB_ID="), "{e}");
        }
    }
}
