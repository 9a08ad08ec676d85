//! gen_only's device-step-time metric (upstream-perf-sanity.md §5.3): per-iteration
//! `prev_device_step_time` values from the generation workers' logs, with upstream's filtering
//! (warm-up iterations, idle predecessors), the dominant `num_generation_tokens` bucket, and
//! mean / median / sample std / P75 / P99 averaged across files.
//!
//! Logs can be gigabytes, so they are read in chunks of whole lines (never held whole; reading
//! stops at the row cap), lines are found with `memchr`'s SIMD substring search (searchers
//! built once) and the few fields are read by hand; the field matchers follow upstream's
//! regexes (first match wins, the lazy `.*?` of the regexes becomes "the first occurrence
//! after").

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::LazyLock;

use memchr::memmem;

use crate::util::stats;

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

/// One kept row: `(num_generation_tokens, prev_device_step_time)`.
pub type Row = (Option<u64>, f64);

/// The substring searchers, built once (building a `Finder` costs more than matching a line).
struct Needles {
    step: memmem::Finder<'static>,
    iter: memmem::Finder<'static>,
    global_rank: memmem::Finder<'static>,
    scheduled: memmem::Finder<'static>,
    ngen: memmem::Finder<'static>,
}

static NEEDLES: LazyLock<Needles> = LazyLock::new(|| Needles {
    step: memmem::Finder::new(STEP_KEY),
    iter: memmem::Finder::new(b"iter"),
    global_rank: memmem::Finder::new(b"global_rank"),
    scheduled: memmem::Finder::new(b"num_scheduled_requests"),
    ngen: memmem::Finder::new(NGEN_KEY),
});

const STEP_KEY: &[u8] = b"prev_device_step_time";
const NGEN_KEY: &[u8] = b"'num_generation_tokens':";

/// A rank's previous iteration line: `Some((iter, Some(scheduled)))`, or unknown.
type Predecessor = Option<(u64, Option<u64>)>;

/// Row extraction over a log fed in pieces of whole lines; the per-rank predecessor state
/// carries over between pieces, so feeding a log in any split at line boundaries gives the
/// rows of feeding it whole.
struct RowScanner {
    /// Rows kept at most ([`MAX_ROWS_PER_FILE`]).
    cap: usize,
    rows: Vec<Row>,
    /// Predecessor per rank.
    predecessors: Vec<(Option<u64>, Predecessor)>,
}

impl RowScanner {
    fn new(cap: usize) -> Self {
        RowScanner {
            cap,
            rows: Vec::new(),
            predecessors: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.rows.len() >= self.cap
    }

    /// Scans `bytes`, which starts at a line start and ends at a line end (after a `\n`, or at
    /// the end of the log). Stops at the row cap.
    fn feed(&mut self, bytes: &[u8]) {
        let needles = &*NEEDLES;
        let mut pos = 0;
        while let Some(hit) = needles.step.find(&bytes[pos..]) {
            let at = pos + hit;
            let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            pos = end.min(bytes.len());
            if self.full() {
                break;
            }
            self.line(&bytes[start..end], at - start, needles);
        }
    }

    /// One line holding `prev_device_step_time`, whose first occurrence is at `step_at`.
    fn line(&mut self, line: &[u8], step_at: usize, needles: &Needles) {
        let rank = field_after(line, &needles.global_rank, 0).map(|(v, _)| v);
        let slot = match self.predecessors.iter().position(|(r, _)| *r == rank) {
            Some(i) => i,
            None => {
                self.predecessors.push((rank, None));
                self.predecessors.len() - 1
            }
        };
        let previous = self.predecessors[slot].1;
        let iter = iter_value(line, &needles.iter);
        let scheduled = iter.and_then(|(_, after)| field_after(line, &needles.scheduled, after));
        self.predecessors[slot].1 = match (iter, scheduled) {
            (Some((i, _)), Some((s, _))) => Some((i, Some(s))),
            _ => None,
        };
        let Some((iter, after_iter)) = iter else {
            return;
        };
        // The first occurrence at or after the iter field: `step_at` itself when it lies there.
        let from = if step_at >= after_iter {
            step_at
        } else {
            after_iter
        };
        let Some(value) = step_time(line, from, &needles.step) else {
            return;
        };
        if iter < 5 {
            return;
        }
        if let Some((prev_iter, Some(0))) = previous
            && prev_iter + 1 == iter
        {
            return;
        }
        let ngen = ngen_value(line, &needles.ngen);
        self.rows.push((ngen, value));
    }
}

/// Rows of one log: `(num_generation_tokens, prev_device_step_time)`.
pub fn scan_rows(bytes: &[u8]) -> Vec<Row> {
    let mut scanner = RowScanner::new(MAX_ROWS_PER_FILE);
    scanner.feed(bytes);
    scanner.rows
}

/// Read size of [`scan_file`]: large enough that syscalls do not matter, small enough to stay
/// in cache-friendly territory and never hold a multi-GB log in memory.
const READ_CHUNK: usize = 4 << 20;

/// Rows of the log at `path` from byte `offset` to its end, read in chunks of whole lines;
/// reading stops once the row cap is reached. Same rows as [`scan_rows`] over the same bytes.
pub fn scan_file(path: &Path, offset: u64) -> std::io::Result<Vec<Row>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(offset.min(len)))?;
    scan_read(file, READ_CHUNK, MAX_ROWS_PER_FILE)
}

/// [`scan_file`] over any reader, reading `chunk` bytes at a time, keeping at most `cap` rows.
fn scan_read(mut file: impl Read, chunk: usize, cap: usize) -> std::io::Result<Vec<Row>> {
    let mut scanner = RowScanner::new(cap);
    let mut buf = vec![0u8; chunk.max(1)];
    let mut filled = 0;
    while !scanner.full() {
        if filled == buf.len() {
            // One line longer than the buffer: grow until it fits.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // End of the log: what is left is its last line, without a newline.
            scanner.feed(&buf[..filled]);
            break;
        }
        let new = filled;
        filled += n;
        if let Some(nl) = memchr::memrchr(b'\n', &buf[new..filled]).map(|i| new + i) {
            scanner.feed(&buf[..=nl]);
            buf.copy_within(nl + 1..filled, 0);
            filled -= nl + 1;
        }
    }
    Ok(scanner.rows)
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
fn iter_value(line: &[u8], finder: &memmem::Finder<'_>) -> Option<(u64, usize)> {
    let mut from = 0;
    while let Some(hit) = finder.find(&line[from..]) {
        let at = from + hit;
        let i = skip_ws(line, at + finder.needle().len());
        if i < line.len() && line[i] == b'=' {
            let i = skip_ws(line, i + 1);
            if let Some((v, j)) = digits(line, i)
                && j < line.len()
                && line[j] == b','
            {
                return Some((v, j + 1));
            }
        }
        from = at + 1;
    }
    None
}

/// `<name>\s*=\s*(\d+)` at or after `from` (`finder` searches for `<name>`).
fn field_after(line: &[u8], finder: &memmem::Finder<'_>, from: usize) -> Option<(u64, usize)> {
    let mut at_from = from;
    while let Some(hit) = finder.find(&line[at_from..]) {
        let at = at_from + hit;
        let i = skip_ws(line, at + finder.needle().len());
        if i < line.len()
            && line[i] == b'='
            && let Some(found) = digits(line, skip_ws(line, i + 1))
        {
            return Some(found);
        }
        at_from = at + 1;
    }
    None
}

/// `prev_device_step_time\s*=\s*([\d.]+)\s*ms` after the iter field.
fn step_time(line: &[u8], from: usize, finder: &memmem::Finder<'_>) -> Option<f64> {
    let mut at_from = from;
    loop {
        // The caller usually starts right at an occurrence: no search needed then.
        let hit = if line[at_from..].starts_with(STEP_KEY) {
            0
        } else {
            finder.find(&line[at_from..])?
        };
        let at = at_from + hit;
        let i = skip_ws(line, at + STEP_KEY.len());
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
                return parse_decimal(&line[i..j]);
            }
        }
        at_from = at + 1;
    }
}

/// `float(text)` for `text` made of ASCII digits and dots: `None` unless it has at least one
/// digit and at most one dot. Short values (≤ 15 digits, ≤ 22 after the dot: what logs print)
/// take Clinger's fast path — an exact integer divided by an exact power of ten, one correctly
/// rounded IEEE operation, so the same bits as a full parse; anything longer is parsed in full.
fn parse_decimal(text: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut dot: Option<usize> = None;
    for (i, &b) in text.iter().enumerate() {
        if b == b'.' {
            if dot.replace(i).is_some() {
                return None;
            }
        } else {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    let fraction_digits = dot.map_or(0, |d| text.len() - d - 1);
    if digits <= 15 && fraction_digits < POW10.len() {
        return Some(mantissa as f64 / POW10[fraction_digits]);
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `'num_generation_tokens':\s*(\d+)`.
fn ngen_value(line: &[u8], finder: &memmem::Finder<'_>) -> Option<u64> {
    let at = finder.find(line)?;
    digits(line, skip_ws(line, at + NGEN_KEY.len())).map(|(v, _)| v)
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
    // Unstable sort: under `total_cmp` equal values are identical bits, so the order is the
    // stable sort's, and it is faster on half a million rows.
    let mut sorted = values.clone();
    sorted.sort_unstable_by(f64::total_cmp);
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
        .filter_map(|(path, offset)| file_stats(&scan_file(path.as_ref(), *offset).ok()?))
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

    /// A log with every shape the scanner cares about: several ranks, idle predecessors, N/A
    /// values, decoy mentions, a line longer than small read chunks, no final newline.
    fn awkward_log() -> String {
        let mut log = String::from("start\n\n");
        for i in 0..40u64 {
            let sched = if i % 6 == 3 { 0 } else { 1 + i % 3 };
            let step = if i % 9 == 4 {
                "N/A ".to_string()
            } else {
                format!("{}.5", i)
            };
            log.push_str(&line(i, sched, &step, sched * 2));
            log.push_str(&line(i, 1, "3.25", 2).replace("global_rank = 0", "global_rank = 1"));
            if i % 5 == 0 {
                log.push_str("prev_device_step_time mentioned without a row\n");
                log.push_str(&"x".repeat(300));
                log.push('\n');
            }
        }
        log.push_str(line(40, 1, "9.0", 2).trim_end());
        log
    }

    #[test]
    fn chunked_reading_gives_the_rows_of_the_whole_log() {
        let log = awkward_log();
        let whole = scan_rows(log.as_bytes());
        assert!(whole.len() > 40, "{whole:?}");
        for chunk in [1, 2, 3, 7, 64, 100, 333, 1000, 1 << 20] {
            let rows = scan_read(log.as_bytes(), chunk, MAX_ROWS_PER_FILE).unwrap();
            assert_eq!(rows, whole, "chunk {chunk}");
        }
        // From an offset (even mid-line), as the per-client scan does.
        for offset in [
            0,
            1,
            57,
            log.len() / 2,
            log.len() - 5,
            log.len(),
            log.len() + 10,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("g.log");
            std::fs::write(&p, &log).unwrap();
            let from = offset.min(log.len());
            assert_eq!(
                scan_file(&p, offset as u64).unwrap(),
                scan_rows(&log.as_bytes()[from..]),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn decimal_fast_path_matches_the_full_parse() {
        let mut cases: Vec<String> = [
            "0",
            "5",
            "5.",
            ".5",
            "4.008",
            "6.94",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "0.000000000000000000001",
            "1.7976931348623157",
            "00012.500",
            "999999999999999.9",
            "3.14159265358979",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut r: u64 = 1;
        for _ in 0..20_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let int = r % 100_000;
            let frac_len = (r >> 20) % 12;
            let frac = (r >> 32) % 10u64.pow(frac_len as u32).max(1);
            cases.push(format!("{int}.{frac:0width$}", width = frac_len as usize));
        }
        for c in &cases {
            let want: f64 = c.parse().unwrap();
            assert_eq!(
                parse_decimal(c.as_bytes()).map(f64::to_bits),
                Some(want.to_bits()),
                "{c}"
            );
        }
        for bad in ["", ".", "..", "1.2.3", "1..2"] {
            assert_eq!(parse_decimal(bad.as_bytes()), None, "{bad}");
            assert!(bad.parse::<f64>().is_err());
        }
    }

    #[test]
    fn reading_stops_at_the_row_cap() {
        struct Counting<'a>(&'a [u8], usize);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let log: String = (5..1005).map(|i| line(i, 1, "2.0", 1)).collect();
        let mut reader = Counting(log.as_bytes(), 0);
        let rows = scan_read(&mut reader, 4096, 10).unwrap();
        assert_eq!(rows.len(), 10);
        assert!(
            reader.1 <= 2 * 4096,
            "read {} of {} bytes",
            reader.1,
            log.len()
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
