//! Values that become one component of a path (job ids, config stems, trial names, server
//! names): checked before they are joined, so `SLURM_JOB_ID=../../x` or a stem with a control
//! character can never place a file outside the trial's folder or garble a file name.

/// Longest accepted component, in bytes (the usual file-name limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// What makes a value unusable as a single path component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentProblem {
    /// The value is empty.
    Empty,
    /// `.` or `..`.
    RelativeReference,
    /// Contains `/`.
    Slash,
    /// Contains NUL or another control character.
    ControlCharacter,
    /// Longer than [`MAX_COMPONENT_BYTES`].
    TooLong,
}

impl std::fmt::Display for ComponentProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentProblem::Empty => f.write_str("is empty"),
            ComponentProblem::RelativeReference => f.write_str("is a relative folder reference"),
            ComponentProblem::Slash => f.write_str("contains `/`"),
            ComponentProblem::ControlCharacter => f.write_str("contains a control character"),
            ComponentProblem::TooLong => write!(f, "is longer than {MAX_COMPONENT_BYTES} bytes"),
        }
    }
}

/// A value that cannot be one path component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {shown:?} {problem}; it becomes part of a file name, so it must be a single plain \
     path component"
)]
pub struct ComponentError {
    /// What the value is (`config stem`, `trial name`, …).
    pub what: String,
    /// The value, control characters escaped.
    pub shown: String,
    /// What is wrong with it.
    pub problem: ComponentProblem,
}

/// A value that is not a SLURM job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what}={shown:?} is not a job id; expected 1 to 64 characters from [A-Za-z0-9_.+-] (it \
     becomes part of the trial's rendezvous folder name)"
)]
pub struct JobIdError {
    /// Where the id came from (`SLURM_JOB_ID`).
    pub what: String,
    /// The value, control characters escaped.
    pub shown: String,
}

/// Checks that `value` (described as `what` in the message) is usable as a single path
/// component: not empty, not `.` or `..`, no `/`, no NUL or other control character, at most
/// [`MAX_COMPONENT_BYTES`] bytes.
pub fn check_component(what: &str, value: &str) -> Result<(), ComponentError> {
    let problem = if value.is_empty() {
        ComponentProblem::Empty
    } else if value == "." || value == ".." {
        ComponentProblem::RelativeReference
    } else if value.contains('/') {
        ComponentProblem::Slash
    } else if value.chars().any(crate::util::terminal::is_unsafe_char) {
        ComponentProblem::ControlCharacter
    } else if value.len() > MAX_COMPONENT_BYTES {
        ComponentProblem::TooLong
    } else {
        return Ok(());
    };
    Err(ComponentError {
        what: what.to_string(),
        shown: crate::util::terminal::escape_controls(value).into_owned(),
        problem,
    })
}

/// Checks a SLURM job id: 1 to 64 characters from `[A-Za-z0-9_.+-]`, not starting with `.`
/// (SLURM's ids are digits, with `_` for array tasks and `+` for heterogeneous components).
pub fn check_job_id(what: &str, value: &str) -> Result<(), JobIdError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(JobIdError {
            what: what.to_string(),
            shown: crate::util::terminal::escape_controls(value).into_owned(),
        })
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
            let e = check_component("stem", bad).unwrap_err().to_string();
            assert!(e.starts_with("stem "), "{e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            check_component("stem", "a/b").unwrap_err().to_string(),
            "stem \"a/b\" contains `/`; it becomes part of a file name, so it must be a single \
             plain path component"
        );
        assert_eq!(
            check_component("stem", &"x".repeat(256))
                .unwrap_err()
                .problem
                .to_string(),
            "is longer than 255 bytes"
        );
        assert_eq!(
            check_job_id("SLURM_JOB_ID", "a/b").unwrap_err().to_string(),
            "SLURM_JOB_ID=\"a/b\" is not a job id; expected 1 to 64 characters from \
             [A-Za-z0-9_.+-] (it becomes part of the trial's rendezvous folder name)"
        );
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
            let e = check_job_id("SLURM_JOB_ID", bad).unwrap_err().to_string();
            assert!(e.contains("SLURM_JOB_ID="), "{e}");
        }
    }
}
