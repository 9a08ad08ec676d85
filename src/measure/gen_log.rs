//! gen_only's device-step-time metric (upstream-perf-sanity.md §5.3): per-iteration
//! `prev_device_step_time` values from the generation workers' logs, with upstream's filtering
//! (warm-up iterations, idle predecessors), the dominant `num_generation_tokens` bucket, and
//! mean / median / sample std / P75 / P99 averaged across files.
//!
//! Logs can be gigabytes, so lines are found with `memchr`'s SIMD substring search and the few
//! fields are read by hand; the field matchers follow upstream's regexes (first match wins, the
//! lazy `.*?` of the regexes becomes "the first occurrence after").

use std::path::Path;

use memchr::memmem;

use crate::stats;

/// Rows kept per file, as upstream.
pub const MAX_ROWS_PER_FILE: usize = 500_000;

/// Device step-time statistics (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTimeStats {
    /// Mean.
    pub mean: f64,
    /// Median (P50).
    pub median: f64,
    /// Sample standard deviation (ddof 1).
    pub std: f64,
    /// P75.
    pub p75: f64,
    /// P99.
    pub p99: f64,
}

impl StepTimeStats {
    /// The block upstream appends to the client output (parsed back by the metric regexes).
    pub fn block(&self) -> String {
        format!(
            "\nAverage Per Iter Device Step Time (ms): {:.2}\nMedian Per Iter Device Step Time (ms): {:.4}\n\
             Stdev Per Iter Device Step Time (ms): {:.4}\nP75 Per Iter Device Step Time (ms): {:.4}\n\
             P99 Per Iter Device Step Time (ms): {:.4}\n",
            self.mean, self.median, self.std, self.p75, self.p99
        )
    }
}

/// Rows of one log: `(num_generation_tokens, prev_device_step_time)`.
pub fn scan_rows(bytes: &[u8]) -> Vec<(Option<u64>, f64)> {
    let finder = memmem::Finder::new(b"prev_device_step_time");
    let mut rows = Vec::new();
    // Predecessor per rank: Some((iter, Some(scheduled))) or unknown.
    let mut predecessors: Vec<(Option<u64>, Option<(u64, Option<u64>)>)> = Vec::new();
    let mut pos = 0;
    while let Some(hit) = finder.find(&bytes[pos..]) {
        let at = pos + hit;
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        pos = end.min(bytes.len());
        if rows.len() >= MAX_ROWS_PER_FILE {
            break;
        }
        let line = &bytes[start..end];
        let rank = field_after(line, b"global_rank", 0).map(|(v, _)| v);
        let slot = match predecessors.iter().position(|(r, _)| *r == rank) {
            Some(i) => i,
            None => {
                predecessors.push((rank, None));
                predecessors.len() - 1
            }
        };
        let previous = predecessors[slot].1;
        let iter = iter_value(line);
        let scheduled =
            iter.and_then(|(_, after)| field_after(line, b"num_scheduled_requests", after));
        predecessors[slot].1 = match (iter, scheduled) {
            (Some((i, _)), Some((s, _))) => Some((i, Some(s))),
            _ => None,
        };
        let Some((iter, after_iter)) = iter else {
            continue;
        };
        let Some(value) = step_time(line, after_iter) else {
            continue;
        };
        if iter < 5 {
            continue;
        }
        if let Some((prev_iter, Some(0))) = previous {
            if prev_iter + 1 == iter {
                continue;
            }
        }
        let ngen = ngen_value(line);
        rows.push((ngen, value));
    }
    rows
}

fn skip_ws(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && line[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn digits(line: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut j = i;
    let mut v: u64 = 0;
    while j < line.len() && line[j].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(line[j] - b'0'))?;
        j += 1;
    }
    (j > i).then_some((v, j))
}

/// `iter\s*=\s*(\d+),` — the first occurrence that matches; returns the value and the index
/// after the comma.
fn iter_value(line: &[u8]) -> Option<(u64, usize)> {
    let finder = memmem::Finder::new(b"iter");
    let mut from = 0;
    while let Some(hit) = finder.find(&line[from..]) {
        let at = from + hit;
        let i = skip_ws(line, at + 4);
        if i < line.len() && line[i] == b'=' {
            let i = skip_ws(line, i + 1);
            if let Some((v, j)) = digits(line, i) {
                if j < line.len() && line[j] == b',' {
                    return Some((v, j + 1));
                }
            }
        }
        from = at + 1;
    }
    None
}

/// `<name>\s*=\s*(\d+)` at or after `from`.
fn field_after(line: &[u8], name: &[u8], from: usize) -> Option<(u64, usize)> {
    let finder = memmem::Finder::new(name);
    let mut at_from = from;
    while let Some(hit) = finder.find(&line[at_from..]) {
        let at = at_from + hit;
        let i = skip_ws(line, at + name.len());
        if i < line.len() && line[i] == b'=' {
            if let Some(found) = digits(line, skip_ws(line, i + 1)) {
                return Some(found);
            }
        }
        at_from = at + 1;
    }
    None
}

/// `prev_device_step_time\s*=\s*([\d.]+)\s*ms` after the iter field.
fn step_time(line: &[u8], from: usize) -> Option<f64> {
    let finder = memmem::Finder::new(b"prev_device_step_time");
    let mut at_from = from;
    while let Some(hit) = finder.find(&line[at_from..]) {
        let at = at_from + hit;
        let i = skip_ws(line, at + b"prev_device_step_time".len());
        if i < line.len() && line[i] == b'=' {
            let i = skip_ws(line, i + 1);
            let mut j = i;
            while j < line.len() && (line[j].is_ascii_digit() || line[j] == b'.') {
                j += 1;
            }
            let k = skip_ws(line, j);
            if j > i && line[k..].starts_with(b"ms") {
                // `[\d.]+` may match text that is not a float ("1.2.3"): Python's float() fails
                // there too, so such a row is skipped.
                return std::str::from_utf8(&line[i..j]).ok()?.parse().ok();
            }
        }
        at_from = at + 1;
    }
    None
}

/// `'num_generation_tokens':\s*(\d+)`.
fn ngen_value(line: &[u8]) -> Option<u64> {
    let key = b"'num_generation_tokens':";
    let at = memmem::find(line, key)?;
    digits(line, skip_ws(line, at + key.len())).map(|(v, _)| v)
}

/// Statistics of one file's rows: the most common ngen bucket (ties → larger ngen), or all rows
/// when none has an ngen.
pub fn file_stats(rows: &[(Option<u64>, f64)]) -> Option<StepTimeStats> {
    if rows.is_empty() {
        return None;
    }
    let values: Vec<f64> = if rows.iter().all(|(n, _)| n.is_none()) {
        rows.iter().map(|(_, v)| *v).collect()
    } else {
        let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
        for (n, _) in rows {
            if let Some(n) = n {
                *counts.entry(*n).or_default() += 1;
            }
        }
        let (&best, _) = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .expect("non-empty");
        rows.iter()
            .filter(|(n, _)| *n == Some(best))
            .map(|(_, v)| *v)
            .collect()
    };
    let sorted = stats::sorted(&values);
    Some(StepTimeStats {
        mean: stats::mean(&values),
        median: stats::percentile_sorted(&sorted, 50.0),
        std: stats::std_sample(&values),
        p75: stats::percentile_sorted(&sorted, 75.0),
        p99: stats::percentile_sorted(&sorted, 99.0),
    })
}

/// Reads each log from its start offset and averages the per-file statistics (unweighted) over
/// files with at least one row. Missing files are skipped, as upstream.
pub fn device_step_stats(logs: &[(impl AsRef<Path>, u64)]) -> Option<StepTimeStats> {
    let per_file: Vec<StepTimeStats> = logs
        .iter()
        .filter_map(|(path, offset)| {
            let bytes = std::fs::read(path.as_ref()).ok()?;
            let from = (*offset as usize).min(bytes.len());
            file_stats(&scan_rows(&bytes[from..]))
        })
        .collect();
    if per_file.is_empty() {
        return None;
    }
    let n = per_file.len() as f64;
    let avg = |f: fn(&StepTimeStats) -> f64| per_file.iter().map(f).sum::<f64>() / n;
    Some(StepTimeStats {
        mean: avg(|s| s.mean),
        median: avg(|s| s.median),
        std: avg(|s| s.std),
        p75: avg(|s| s.p75),
        p99: avg(|s| s.p99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(iter: u64, sched: u64, step: &str, ngen: u64) -> String {
        format!(
            "[TRT-LLM] [I] [_torch][RANK 0] iter = {iter}, global_rank = 0, rank = 0, \
             num_scheduled_requests = {sched}, host_step_time = 6.79ms, prev_device_step_time = {step}ms, \
             timestamp = x, states = {{'num_ctx_requests': 0, 'num_ctx_tokens': 0, 'num_generation_tokens': {ngen}}}\n"
        )
    }

    #[test]
    fn filters_like_upstream() {
        let mut log = String::from("noise line\n");
        for i in 0..5 {
            log.push_str(&line(i, 4, "99.0", 4)); // warm-up: skipped (iter < 5)
        }
        log.push_str(&line(5, 4, "10.0", 4));
        log.push_str(&line(6, 0, "11.0", 0)); // idle iteration (its own value is kept)
        log.push_str(&line(7, 4, "50.0", 4)); // predecessor idle and adjacent: skipped
        log.push_str(&line(8, 4, "12.0", 4));
        log.push_str(&line(9, 4, "N/A ", 4)); // no value: skipped
        log.push_str(&line(10, 2, "14.0", 2));
        let rows = scan_rows(log.as_bytes());
        assert_eq!(
            rows,
            [
                (Some(4), 10.0),
                (Some(0), 11.0),
                (Some(4), 12.0),
                (Some(2), 14.0)
            ]
        );
        // Dominant bucket: ngen 4 → [10, 12].
        let s = file_stats(&rows).unwrap();
        assert_eq!((s.mean, s.median), (11.0, 11.0));
        assert!((s.std - std::f64::consts::SQRT_2).abs() < 1e-12);
        assert!((s.p99 - 11.98).abs() < 1e-12);
        assert!(
            s.block()
                .contains("\nAverage Per Iter Device Step Time (ms): 11.00\n")
        );
        assert!(
            s.block()
                .contains("Median Per Iter Device Step Time (ms): 11.0000\n")
        );
    }

    #[test]
    fn ties_prefer_larger_ngen_and_files_average() {
        let rows = [(Some(2), 1.0), (Some(8), 5.0)];
        assert_eq!(file_stats(&rows).unwrap().mean, 5.0);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        std::fs::write(
            &a,
            format!("{}{}", line(5, 1, "2.0", 1), line(6, 1, "4.0", 1)),
        )
        .unwrap();
        let head = line(5, 1, "100.0", 1);
        std::fs::write(&b, format!("{head}{}", line(6, 1, "6.0", 1))).unwrap();
        let stats = device_step_stats(&[
            (a, 0),
            (b, head.len() as u64),
            (dir.path().join("missing"), 0),
        ])
        .unwrap();
        assert_eq!(stats.mean, (3.0 + 6.0) / 2.0);
        assert_eq!(stats.std, (std::f64::consts::SQRT_2 + 0.0) / 2.0);
        assert!(device_step_stats(&[(dir.path().join("missing"), 0)]).is_none());
    }
}
