//! Upper bounds of `perfsanity bench`'s size flags and its default time limits, in one place so
//! `docs/BENCH_CLIENT.md` ("Limits") and the checks agree. A value beyond a bound is a flag error
//! naming the flag, never a panic or a multi-GB allocation.

use std::time::Duration;

/// Most requests one run may send (`--num-prompts`): 100× upstream's largest configs
/// (concurrency 9,832 × a few rounds).
pub const MAX_NUM_PROMPTS: usize = 10_000_000;

/// Longest prompt or output one request may ask for, in tokens (`--random-input-len`,
/// `--random-output-len`, `--random-prefix-len`): 16× the longest context upstream tests.
pub const MAX_TOKENS_PER_REQUEST: u64 = 1 << 21;

/// Most prompt tokens one random dataset may hold (prompts × longest prompt): about 1–2 GB of
/// request bodies.
pub const MAX_TOTAL_PROMPT_TOKENS: u64 = 1 << 28;

/// Most requests in flight (`--max-concurrency`); each holds a socket.
pub const MAX_CONCURRENCY: usize = 1 << 20;

/// Most client threads (`--threads`).
pub const MAX_THREADS: usize = 1024;

/// Connections per client thread by default: one thread handles ~100k chunks/s with exact
/// timings (`docs/BENCHMARKS.md`, *Client across cores*), 128 streams of up to a few hundred
/// chunks/s each stay far below that, and fewer threads cost less CPU per chunk at low
/// concurrency (each thread wakes for its own chunks and probes).
pub const CONNECTIONS_PER_THREAD: usize = 128;

/// Default `--threads`: one per [`CONNECTIONS_PER_THREAD`] connections, at most `cpus`.
pub fn default_threads(cpus: usize, connections: usize) -> usize {
    connections
        .div_ceil(CONNECTIONS_PER_THREAD)
        .clamp(1, cpus.max(1))
}

/// Default `--request-timeout-s`: upstream's client gives a request 6 hours (aiohttp's total
/// timeout), and so do we.
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 6.0 * 3600.0;

/// Longest time limit a flag may set (one year), so seconds always fit a `Duration`.
pub const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

/// Default `--progress-interval-s`: a line on stderr every minute while requests run.
pub const DEFAULT_PROGRESS_INTERVAL_S: f64 = 60.0;

/// Exit status when the run finished but some requests failed (without
/// `--allow-failed-requests`); other errors exit 1, flag errors 2.
pub const EXIT_FAILED_REQUESTS: u8 = 3;

/// A flag value beyond its bound.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// Not a positive, finite number of seconds up to [`MAX_TIMEOUT_S`].
    #[error("{value} is not a number of seconds in (0, {max}]", max = MAX_TIMEOUT_S)]
    Seconds {
        /// The value given.
        value: f64,
    },
    /// A count above its bound.
    #[error("{value} is above the limit of {max}")]
    AboveLimit {
        /// The value given.
        value: u64,
        /// The bound.
        max: u64,
    },
}

/// A duration flag in seconds: positive, finite, at most [`MAX_TIMEOUT_S`].
pub fn seconds(value: f64) -> Result<Duration, LimitError> {
    if value.is_finite() && value > 0.0 && value <= MAX_TIMEOUT_S {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(LimitError::Seconds { value })
    }
}

/// Checks a count against its bound.
pub fn at_most(value: u64, max: u64) -> Result<(), LimitError> {
    if value > max {
        Err(LimitError::AboveLimit { value, max })
    } else {
        Ok(())
    }
}

/// The longest prompt the random dataset can draw: prefix + ⌊L·(1 + r)⌋ (standard) or
/// prefix + L (SA), saturating.
pub fn longest_random_prompt(prefix: u32, input_len: u32, range_ratio: f64, sa: bool) -> u64 {
    let body = if sa {
        f64::from(input_len)
    } else {
        (f64::from(input_len) * (1.0 + range_ratio)).floor()
    };
    u64::from(prefix).saturating_add(body as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded() {
        assert_eq!(seconds(1.5), Ok(Duration::from_millis(1500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(
            seconds(-1.0).unwrap_err().to_string(),
            "-1 is not a number of seconds in (0, 31536000]"
        );
        assert_eq!(
            at_most(5, 4).unwrap_err().to_string(),
            "5 is above the limit of 4"
        );
    }

    #[test]
    fn default_threads_follow_connections_up_to_the_cpus() {
        assert_eq!(default_threads(4, 1), 1);
        assert_eq!(default_threads(4, 128), 1);
        assert_eq!(default_threads(4, 129), 2);
        assert_eq!(default_threads(4, 4096), 4);
        assert_eq!(default_threads(0, 4096), 1);
    }

    #[test]
    fn longest_prompt() {
        assert_eq!(longest_random_prompt(10, 100, 0.5, false), 160);
        assert_eq!(longest_random_prompt(10, 100, 0.5, true), 110);
        assert_eq!(
            longest_random_prompt(u32::MAX, u32::MAX, 0.99, false),
            u64::from(u32::MAX) + (f64::from(u32::MAX) * 1.99) as u64
        );
    }
}
