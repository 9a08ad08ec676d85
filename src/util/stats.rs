//! Small, exact statistics shared by every stage that summarises samples.
//!
//! Upstream computes its figures with numpy: population standard deviation for the benchmark
//! client, sample standard deviation (ddof 1) for the gen-worker device step time, and
//! numpy's default *linear* percentile everywhere. These helpers reproduce those definitions
//! so the numbers we print, record and compare are the ones upstream would print.

/// Arithmetic mean; `0.0` for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Population standard deviation (numpy `std`, ddof 0); `0.0` for an empty slice.
pub fn std_population(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64;
    var.sqrt()
}

/// Sample standard deviation (Python `statistics.stdev`, ddof 1); `0.0` for fewer than two values.
pub fn std_sample(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() - 1) as f64;
    var.sqrt()
}

/// Returns a sorted copy (NaN-free input assumed; NaNs sort last).
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// numpy's default (`linear`) percentile of an already **sorted** slice, `p` in `[0, 100]`.
///
/// `k = p/100 × (n−1)`; interpolate between `floor(k)` and `min(floor(k)+1, n−1)`.
/// Returns `0.0` for an empty slice.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let k = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = k.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = k - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Percentile of unsorted values (sorts a copy).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    percentile_sorted(&sorted(values), p)
}

/// Median (the 50th linear percentile).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 75, 99, 100])
        let v = [4.0, 1.0, 3.0, 2.0];
        assert!(close(percentile(&v, 0.0), 1.0));
        assert!(close(percentile(&v, 25.0), 1.75));
        assert!(close(percentile(&v, 50.0), 2.5));
        assert!(close(percentile(&v, 75.0), 3.25));
        assert!(close(percentile(&v, 99.0), 3.97));
        assert!(close(percentile(&v, 100.0), 4.0));
        assert!(close(percentile(&[7.0], 99.0), 7.0));
        assert!(close(percentile(&[], 99.0), 0.0));
    }

    #[test]
    fn standard_deviations() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(std_population(&v), 2.0));
        assert!(close(std_sample(&v), 2.138089935299395));
        assert!(close(std_sample(&[3.0]), 0.0));
        assert!(close(std_population(&[]), 0.0));
        assert!(close(mean(&v), 5.0));
        assert!(close(median(&v), 4.5));
    }
}
