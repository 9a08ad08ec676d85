//! Upstream's client-output scraping: the metric regexes and the output validation.
//!
//! Rules reproduced from upstream-perf-sanity.md §5.1–5.2:
//! * the output is split on `\n`; on each line the metrics are tried in table order, metrics
//!   already found are skipped, and the **first** regex that matches sets its metric and ends
//!   the line — so a line yields at most one metric and the first occurrence of a metric wins;
//! * for the SA client, when any metric was found but `user_throughput` was not, it is recorded
//!   as "None" (absent but known, so it is not reported as missing);
//! * validation: `Failed requests: N` with N > 0, the `!FAILED REQUESTS!` / `!CHECK LOG FOR
//!   ERRORS!` markers, and — only without a `Failed requests:` line — the SA check
//!   `num_prompts=N` (from the printed argparse Namespace) against `Successful requests: S`.

use std::fmt;
use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;

/// The 16 metrics every client run must report (upstream `PERF_METRIC_LOG_QUERIES` minus the
/// optional ones), in upstream's order.
pub const BASE_METRICS: [&str; 16] = [
    "seq_throughput",
    "token_throughput",
    "total_token_throughput",
    "user_throughput",
    "mean_ttft",
    "median_ttft",
    "p99_ttft",
    "mean_itl",
    "median_itl",
    "p99_itl",
    "mean_tpot",
    "median_tpot",
    "p99_tpot",
    "mean_e2el",
    "median_e2el",
    "p99_e2el",
];

/// Metric name → label prefix (the text before `\s+(-?[\d\.]+)`), in upstream's table order:
/// the 16 base metrics, `al` (speculative decoding) and the five gen-worker device-step metrics.
const QUERIES: [(&str, &str); 22] = [
    ("seq_throughput", r"Request throughput \(req\/s\):"),
    ("token_throughput", r"Output token throughput \(tok\/s\):"),
    (
        "total_token_throughput",
        r"Total Token throughput \(tok\/s\):",
    ),
    ("user_throughput", r"User throughput \(tok\/s\):"),
    ("mean_ttft", r"Mean TTFT \(ms\):"),
    ("median_ttft", r"Median TTFT \(ms\):"),
    ("p99_ttft", r"P99 TTFT \(ms\):"),
    ("mean_itl", r"Mean ITL \(ms\):"),
    ("median_itl", r"Median ITL \(ms\):"),
    ("p99_itl", r"P99 ITL \(ms\):"),
    ("mean_tpot", r"Mean TPOT \(ms\):"),
    ("median_tpot", r"Median TPOT \(ms\):"),
    ("p99_tpot", r"P99 TPOT \(ms\):"),
    ("mean_e2el", r"Mean E2EL \(ms\):"),
    ("median_e2el", r"Median E2EL \(ms\):"),
    ("p99_e2el", r"P99 E2EL \(ms\):"),
    ("al", r"Mean Avg Decoded Tokens per Iter:"),
    (
        "mean_gen_worker_per_iter_device_step_time",
        r"Average Per Iter Device Step Time \(ms\):",
    ),
    (
        "median_gen_worker_per_iter_device_step_time",
        r"Median Per Iter Device Step Time \(ms\):",
    ),
    (
        "std_gen_worker_per_iter_device_step_time",
        r"Stdev Per Iter Device Step Time \(ms\):",
    ),
    (
        "p75_gen_worker_per_iter_device_step_time",
        r"P75 Per Iter Device Step Time \(ms\):",
    ),
    (
        "p99_gen_worker_per_iter_device_step_time",
        r"P99 Per Iter Device Step Time \(ms\):",
    ),
];

static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    QUERIES
        .iter()
        .map(|(name, label)| {
            let re = Regex::new(&format!(r"{label}\s+(-?[\d\.]+)")).expect("static regex");
            (*name, re)
        })
        .collect()
});

static FAILED_REQUESTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Failed requests:\s+(\d+)").expect("static regex"));
static SUCCESSFUL_REQUESTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Successful requests:\s+(\d+)").expect("static regex"));
static NUM_PROMPTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"num_prompts=(\d+)").expect("static regex"));

/// Metrics scraped from one client run, in the order they were found.
///
/// A value of `None` is upstream's `"None"`: known to be absent (the SA client prints no
/// `User throughput` line), which counts as present for the missing-metric check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMetrics {
    values: IndexMap<&'static str, Option<f64>>,
}

impl ClientMetrics {
    /// The value of `metric`: `None` if not found, `Some(None)` if absent-but-known.
    pub fn get(&self, metric: &str) -> Option<Option<f64>> {
        self.values.get(metric).copied()
    }

    /// The numeric value of `metric`, if it was found with a number.
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.get(metric).flatten()
    }

    /// True when `metric` was found (including absent-but-known `"None"` values).
    pub fn contains(&self, metric: &str) -> bool {
        self.values.contains_key(metric)
    }

    /// The base metrics that were not found, in upstream's order.
    pub fn missing_base_metrics(&self) -> Vec<&'static str> {
        BASE_METRICS
            .iter()
            .copied()
            .filter(|m| !self.contains(m))
            .collect()
    }

    /// Iterates `(name, value)` in discovery order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<f64>)> + '_ {
        self.values.iter().map(|(k, v)| (*k, *v))
    }

    /// Number of metrics found.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Scrapes metrics from a client's output (upstream §5.1).
///
/// `sa_client` enables the SA rule: metrics found but no `user_throughput` ⇒ `"None"`.
pub fn parse_client_output(text: &str, sa_client: bool) -> ClientMetrics {
    let mut values: IndexMap<&'static str, Option<f64>> = IndexMap::new();
    for line in text.split('\n') {
        for (name, re) in COMPILED.iter() {
            if values.contains_key(name) {
                continue;
            }
            if let Some(caps) = re.captures(line) {
                // Upstream converts with float(); a capture such as "1.2.3" would raise there.
                // We skip the value but still end the line, as the regex did match.
                if let Ok(v) = caps[1].parse::<f64>() {
                    values.insert(name, Some(v));
                }
                break;
            }
        }
    }
    scrape_client_check(text, &mut values);
    if sa_client && !values.is_empty() && !values.contains_key("user_throughput") {
        values.insert("user_throughput", None);
    }
    ClientMetrics { values }
}

/// `1.0` when `perfsanity bench`'s client check flagged the run (its `WARNING: the client fell
/// behind` line): the client's own lag may be in the latencies, so the run's records are
/// marked invalid. Not an upstream metric; upstream's clients never print the line.
pub const CLIENT_FELL_BEHIND: &str = "client_fell_behind";
/// The share of chunk gaps (percent) that arrived in one read with the previous chunk
/// (`Merged reads:` line): those gaps, and tail ITL percentiles built from them, are not
/// measurements.
pub const MERGED_ITL_SHARE_PCT: &str = "merged_itl_share_pct";

static MERGED_READS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Merged reads: \d+ of \d+ chunk gaps came in one read with the previous chunk \(([0-9.]+) %")
        .expect("static regex")
});

/// Adds the client-check findings of `perfsanity bench` ([`CLIENT_FELL_BEHIND`],
/// [`MERGED_ITL_SHARE_PCT`]) when its output has them.
fn scrape_client_check(text: &str, values: &mut IndexMap<&'static str, Option<f64>>) {
    for line in text.lines() {
        if line.starts_with("WARNING: the client fell behind") {
            values.insert(CLIENT_FELL_BEHIND, Some(1.0));
        } else if let Some(caps) = MERGED_READS.captures(line)
            && let Ok(v) = caps[1].parse::<f64>()
        {
            values.insert(MERGED_ITL_SHARE_PCT, Some(v));
        }
    }
}

/// Why a client's output marks the run as failed (upstream §5.2); `Display` gives upstream's
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputProblem {
    /// `Failed requests: N` with N > 0.
    #[error("Benchmark output contains {0} failed requests.")]
    FailedRequests(u64),
    /// `!FAILED REQUESTS!` or `!CHECK LOG FOR ERRORS!` present.
    #[error("Benchmark output contains failure markers.")]
    FailureMarkers,
    /// SA client: fewer successful requests than `num_prompts`.
    #[error("SA benchmark: {failed} of {num_prompts} requests failed ({successful} successful).")]
    SaRequestsFailed {
        /// `num_prompts − successful`.
        failed: u64,
        /// From the printed `Namespace(… num_prompts=N …)`.
        num_prompts: u64,
        /// From `Successful requests:`.
        successful: u64,
    },
}

/// Validates a client's output (upstream §5.2). Empty output is not checked.
pub fn check_client_output(text: &str) -> Result<(), OutputProblem> {
    if text.is_empty() {
        return Ok(());
    }
    let failed_line = FAILED_REQUESTS.captures(text);
    if let Some(caps) = &failed_line {
        let n: u64 = caps[1].parse().unwrap_or(u64::MAX);
        if n > 0 {
            return Err(OutputProblem::FailedRequests(n));
        }
    }
    if text.contains("!FAILED REQUESTS!") || text.contains("!CHECK LOG FOR ERRORS!") {
        return Err(OutputProblem::FailureMarkers);
    }
    if failed_line.is_none()
        && let (Some(s), Some(n)) = (
            SUCCESSFUL_REQUESTS.captures(text),
            NUM_PROMPTS.captures(text),
        )
    {
        let successful: u64 = s[1].parse().unwrap_or(0);
        let num_prompts: u64 = n[1].parse().unwrap_or(0);
        if num_prompts > successful {
            return Err(OutputProblem::SaRequestsFailed {
                failed: num_prompts - successful,
                num_prompts,
                successful,
            });
        }
    }
    Ok(())
}

impl fmt::Display for ClientMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Python dict repr, as upstream embeds the parsed dict in its messages.
        f.write_str("{")?;
        for (i, (k, v)) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match v {
                Some(x) => write!(f, "'{k}': {}", python_float(*x))?,
                None => write!(f, "'{k}': 'None'")?,
            }
        }
        f.write_str("}")
    }
}

fn python_float(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: &str = "\
============ Serving Benchmark Result ============
Total requests:                          8         
Successful requests:                     8         
Failed requests:                         0         
Benchmark duration (s):                  1.23      
Request throughput (req/s):              6.50      
Output token throughput (tok/s):         100.25    
Total Token throughput (tok/s):          300.00    
User throughput (tok/s):                 12.50     
---------------Time to First Token----------------
Mean TTFT (ms):                          50.10     
Median TTFT (ms):                        50.00     
Std Dev TTFT (ms):                       0.30      
P99 TTFT (ms):                           51.00     
-----Time per Output Token (excl. 1st token)------
Mean TPOT (ms):                          10.00     
Median TPOT (ms):                        10.00     
Std Dev TPOT (ms):                       0.00      
P99 TPOT (ms):                           10.50     
---------------Inter-token Latency----------------
Mean ITL (ms):                           10.01     
Median ITL (ms):                         10.00     
Std Dev ITL (ms):                        0.10      
P99 ITL (ms):                            11.00     
----------------End-to-end Latency----------------
Mean E2EL (ms):                          200.00    
Median E2EL (ms):                        199.00    
Std Dev E2EL (ms):                       1.00      
P99 E2EL (ms):                           205.00    
==================================================
";

    #[test]
    fn parses_the_sixteen_base_metrics() {
        let m = parse_client_output(STANDARD, false);
        assert!(m.missing_base_metrics().is_empty(), "{m}");
        assert_eq!(m.value("seq_throughput"), Some(6.5));
        assert_eq!(m.value("user_throughput"), Some(12.5));
        assert_eq!(m.value("p99_e2el"), Some(205.0));
        assert_eq!(m.value("median_itl"), Some(10.0));
        assert!(!m.contains("al"));
        assert_eq!(m.len(), 16);
    }

    #[test]
    fn first_occurrence_wins_and_one_metric_per_line() {
        let text = "Mean TTFT (ms): 1.0\nMean TTFT (ms): 2.0\n\
                    Mean ITL (ms): 3.0 Median ITL (ms): 4.0\nMedian ITL (ms): 5.0";
        let m = parse_client_output(text, false);
        assert_eq!(m.value("mean_ttft"), Some(1.0));
        assert_eq!(m.value("mean_itl"), Some(3.0));
        // The line carrying both ITL labels only yields the first table entry.
        assert_eq!(m.value("median_itl"), Some(5.0));
    }

    #[test]
    fn table_order_decides_within_a_line() {
        // `mean_ttft` is tried before `median_ttft`, wherever each label sits in the line.
        let m = parse_client_output("Median TTFT (ms): 9 Mean TTFT (ms): 7", false);
        assert_eq!(m.value("mean_ttft"), Some(7.0));
        assert!(!m.contains("median_ttft"));
    }

    #[test]
    fn sa_user_throughput_absent_but_known() {
        let sa: String = STANDARD
            .lines()
            .filter(|l| !l.starts_with("User throughput"))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = parse_client_output(&sa, true);
        assert_eq!(m.get("user_throughput"), Some(None));
        assert!(m.missing_base_metrics().is_empty());
        let m = parse_client_output(&sa, false);
        assert_eq!(m.missing_base_metrics(), vec!["user_throughput"]);
        // Nothing found at all: no "None" is invented.
        assert!(parse_client_output("nothing here", true).is_empty());
    }

    #[test]
    fn optional_metrics_and_negative_values() {
        let text = "Mean Avg Decoded Tokens per Iter:        2.50\n\
                    Average Per Iter Device Step Time (ms): 6.94\n\
                    Median Per Iter Device Step Time (ms): 6.9000\n\
                    Stdev Per Iter Device Step Time (ms): 0.1000\n\
                    P75 Per Iter Device Step Time (ms): 7.0000\n\
                    P99 Per Iter Device Step Time (ms): 7.5000\n\
                    Mean TTFT (ms):                          -1000.00  ";
        let m = parse_client_output(text, false);
        assert_eq!(m.value("al"), Some(2.5));
        assert_eq!(
            m.value("mean_gen_worker_per_iter_device_step_time"),
            Some(6.94)
        );
        assert_eq!(
            m.value("p75_gen_worker_per_iter_device_step_time"),
            Some(7.0)
        );
        assert_eq!(
            m.value("p99_gen_worker_per_iter_device_step_time"),
            Some(7.5)
        );
        assert_eq!(m.value("mean_ttft"), Some(-1000.0));
    }

    #[test]
    fn unparsable_capture_is_skipped_but_ends_the_line() {
        let m = parse_client_output("Mean TTFT (ms): 1.2.3\nMean TTFT (ms): 4", false);
        assert_eq!(m.value("mean_ttft"), Some(4.0));
    }

    #[test]
    fn validation_follows_upstream_order_and_messages() {
        assert_eq!(check_client_output(""), Ok(()));
        assert_eq!(check_client_output(STANDARD), Ok(()));
        let failed = STANDARD.replace(
            "Failed requests:                         0",
            "Failed requests:                         3",
        );
        let err = check_client_output(&failed).unwrap_err();
        assert_eq!(err, OutputProblem::FailedRequests(3));
        assert_eq!(
            err.to_string(),
            "Benchmark output contains 3 failed requests."
        );
        let marked =
            format!("{STANDARD}=====================!CHECK LOG FOR ERRORS!====================\n");
        assert_eq!(
            check_client_output(&marked).unwrap_err().to_string(),
            "Benchmark output contains failure markers."
        );
        assert_eq!(
            check_client_output("x !FAILED REQUESTS! y"),
            Err(OutputProblem::FailureMarkers)
        );
    }

    #[test]
    fn sa_num_prompts_check_only_without_failed_line() {
        let sa = "Namespace(backend='vllm', num_prompts=10, seed=0)\n\
                  Successful requests:                     7         \n";
        let err = check_client_output(sa).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SA benchmark: 3 of 10 requests failed (7 successful)."
        );
        let ok = "Namespace(num_prompts=7)\nSuccessful requests:                     7\n";
        assert_eq!(check_client_output(ok), Ok(()));
        // With a `Failed requests:` line the SA rule is not applied.
        let standard = "Namespace(num_prompts=10)\nSuccessful requests: 7\nFailed requests: 0\n";
        assert_eq!(check_client_output(standard), Ok(()));
    }

    #[test]
    fn display_is_a_python_dict() {
        let m = parse_client_output("Mean TTFT (ms): 50\nMean ITL (ms): 1.5", true);
        assert_eq!(
            m.to_string(),
            "{'mean_ttft': 50.0, 'mean_itl': 1.5, 'user_throughput': 'None'}"
        );
    }
}

#[cfg(test)]
mod client_check_tests {
    use super::*;

    #[test]
    fn a_flagged_run_and_merged_reads_are_scraped() {
        let text = "Merged reads: 3 of 600 chunk gaps came in one read with the previous chunk \
                    (0.500 %, flagged above 0.500 %); those gaps are not measured\n\
                    WARNING: the client fell behind (merged reads); latencies may include it.\n";
        let m = parse_client_output(text, false);
        assert_eq!(m.get(CLIENT_FELL_BEHIND), Some(Some(1.0)));
        assert_eq!(m.get(MERGED_ITL_SHARE_PCT), Some(Some(0.5)));
        let clean = parse_client_output("Successful requests: 3\n", false);
        assert_eq!(clean.get(CLIENT_FELL_BEHIND), None);
        assert_eq!(clean.get(MERGED_ITL_SHARE_PCT), None);
    }
}
