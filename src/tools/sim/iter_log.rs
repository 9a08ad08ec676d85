//! Iteration log lines in TensorRT-LLM's format (`print_iter_log: true`).
//!
//! The gen_only device-step-time metric is parsed from these lines with upstream's regexes
//! (`upstream-perf-sanity.md` §5.3), so the text follows `py_executor.py` field by field:
//!
//! ```text
//! [TRT-LLM] [I] [_torch][RANK 0] iter = 7, global_rank = 0, rank = 0, num_scheduled_requests = 4,
//!   kv_cache_util = N/A, currank_total_requests = 0/4, host_step_time = 6.12ms,
//!   prev_device_step_time = 6.0ms, timestamp = 2026-01-02 03:04:05,
//!   states = {'num_ctx_requests': 0, 'num_ctx_tokens': 0, 'num_generation_tokens': 4}
//! ```
//! (one line). Floats are printed the way Python's `repr` prints them.

use std::fmt::Write as _;

/// One scheduler iteration as reported in the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationRecord {
    /// Iteration counter.
    pub iter: u64,
    /// Requests scheduled in this iteration.
    pub num_scheduled_requests: u64,
    /// Requests fetched during this iteration / in total.
    pub fetched_this_iter: u64,
    /// Requests fetched in total.
    pub fetched_total: u64,
    /// Wall time of this iteration (ms).
    pub host_step_time_ms: f64,
    /// Simulated device time of the previous iteration (ms); `None` prints `N/A`.
    pub prev_device_step_time_ms: Option<f64>,
    /// Context requests in the batch.
    pub num_ctx_requests: u64,
    /// Context tokens in the batch.
    pub num_ctx_tokens: u64,
    /// Generation tokens in the batch.
    pub num_generation_tokens: u64,
}

/// Formats a float the way Python's `repr(float)` does for ordinary magnitudes.
pub fn py_float(value: f64) -> String {
    let mut out = String::new();
    write_py_float(&mut out, value);
    out
}

/// Appends `value` as Python's `repr(float)` prints ordinary magnitudes (shortest round-trip
/// digits, `4.0` rather than `4`), without allocating.
pub fn write_py_float(out: &mut String, value: f64) {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        let _ = write!(out, "{value:.1}");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Formats one iteration line (without the trailing newline). `timestamp` is
/// `YYYY-MM-DD HH:MM:SS`.
pub fn format_line(r: &IterationRecord, timestamp: &str) -> String {
    let mut line = String::with_capacity(360);
    let prev = match r.prev_device_step_time_ms {
        Some(ms) => format!("{}ms", py_float(ms)),
        None => "N/A".to_string(),
    };
    let _ = write!(
        line,
        "[TRT-LLM] [I] [_torch][RANK 0] iter = {}, global_rank = 0, rank = 0, \
         num_scheduled_requests = {}, kv_cache_util = N/A, currank_total_requests = {}/{}, \
         host_step_time = {}ms, prev_device_step_time = {prev}, timestamp = {timestamp}, \
         states = {{'num_ctx_requests': {}, 'num_ctx_tokens': {}, 'num_generation_tokens': {}}}",
        r.iter,
        r.num_scheduled_requests,
        r.fetched_this_iter,
        r.fetched_total,
        py_float(r.host_step_time_ms),
        r.num_ctx_requests,
        r.num_ctx_tokens,
        r.num_generation_tokens,
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn record() -> IterationRecord {
        IterationRecord {
            iter: 12,
            num_scheduled_requests: 4,
            fetched_this_iter: 1,
            fetched_total: 9,
            host_step_time_ms: 6.125,
            prev_device_step_time_ms: Some(6.0),
            num_ctx_requests: 0,
            num_ctx_tokens: 0,
            num_generation_tokens: 4,
        }
    }

    /// The four regexes of upstream-perf-sanity.md §5.3, verbatim.
    #[test]
    fn matches_upstream_regexes() {
        let line = format_line(&record(), "2026-01-02 03:04:05");
        let row =
            Regex::new(r"iter\s*=\s*(\d+),.*?prev_device_step_time\s*=\s*([\d.]+)\s*ms").unwrap();
        let ngen = Regex::new(r"'num_generation_tokens':\s*(\d+)").unwrap();
        let sched = Regex::new(r"iter\s*=\s*(\d+),.*?num_scheduled_requests\s*=\s*(\d+)").unwrap();
        let rank = Regex::new(r"global_rank\s*=\s*(\d+)").unwrap();
        let c = row.captures(&line).unwrap();
        assert_eq!((&c[1], &c[2]), ("12", "6.0"));
        assert_eq!(&ngen.captures(&line).unwrap()[1], "4");
        assert_eq!(&sched.captures(&line).unwrap()[2], "4");
        assert_eq!(&rank.captures(&line).unwrap()[1], "0");
        assert!(line.contains("host_step_time = 6.125ms"));
    }

    #[test]
    fn first_iteration_has_no_device_time() {
        let mut r = record();
        r.prev_device_step_time_ms = None;
        let line = format_line(&r, "2026-01-02 03:04:05");
        assert!(line.contains("prev_device_step_time = N/A, "), "{line}");
        let row =
            Regex::new(r"iter\s*=\s*(\d+),.*?prev_device_step_time\s*=\s*([\d.]+)\s*ms").unwrap();
        assert!(row.captures(&line).is_none());
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(7.0), "7.0");
        assert_eq!(py_float(6.94), "6.94");
        assert_eq!(py_float(0.1 + 0.2), "0.30000000000000004");
    }
}
