//! The lines of a log tail that explain a failure (errors, tracebacks, panics, kills), so a
//! `[crash]` shows them before the raw tail instead of after forty lines of iteration logs.

/// Words that mark an explaining line (matched case-insensitively).
const MARKERS: &[&str] = &[
    "error",
    "exception",
    "traceback",
    "panic",
    "fatal",
    "killed",
    "out of memory",
    "oom",
    "segmentation fault",
    "abort",
    "assert",
];

/// At most this many explaining lines are shown.
pub const MAX_EXPLAINING_LINES: usize = 8;

/// The explaining lines of `tail`, in order, at most [`MAX_EXPLAINING_LINES`] (the last ones:
/// the closest to the failure).
pub fn explaining_lines(tail: &str) -> Vec<&str> {
    let hits: Vec<&str> = tail
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            MARKERS.iter().any(|m| lower.contains(m))
        })
        .collect();
    let skip = hits.len().saturating_sub(MAX_EXPLAINING_LINES);
    hits.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_that_matter_come_out() {
        let tail = "iter 1 ok\niter 2 ok\nRuntimeError: CUDA error: out of memory\niter 3\n";
        assert_eq!(
            explaining_lines(tail),
            ["RuntimeError: CUDA error: out of memory"]
        );
        let many: String = (0..20).map(|i| format!("error {i}\n")).collect();
        let lines = explaining_lines(&many);
        assert_eq!(lines.len(), MAX_EXPLAINING_LINES);
        assert_eq!(lines.last(), Some(&"error 19"));
    }

    #[test]
    fn a_crash_shows_the_explaining_lines_before_the_tail() {
        use crate::results::outcome::{FailureClass, LogTail, TrialFailure};
        let f = TrialFailure {
            class: FailureClass::Crash,
            role: None,
            message: "GEN_0 exited with signal 9".into(),
            log_tail: Some(LogTail {
                path: "gen.log".into(),
                text: "iter 1\niter 2\nKilled: out of memory\niter 3\n".into(),
            }),
        };
        let text = f.to_string();
        let explain = text
            .find("--- what explains it ---\nKilled: out of memory")
            .unwrap();
        let tail = text.find("--- last lines of gen.log ---").unwrap();
        assert!(explain < tail, "{text}");
    }
}
