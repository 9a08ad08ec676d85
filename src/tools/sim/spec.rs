//! Speculative decoding (MTP, Eagle, NGram, …) as the simulator models it: how many draft tokens
//! a decoding step verifies, how many of them are accepted, and the per-request
//! `avg_decoded_tokens_per_iter` TensorRT-LLM reports.
//!
//! * The engine config's `speculative_config` gives the draft length `k` (`engine_config.rs`).
//! * `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS=n` (parsed as a float, then truncated, as the
//!   perf-sanity harness records it) makes every step accept `min(n, drafts)` tokens.
//! * Otherwise a per-request seeded generator accepts each draft token with probability
//!   `latency.spec_acceptance_rate`, stopping at the first rejection (drafts are a chain).
//! * `avg_decoded_tokens_per_iter` = generated tokens / decoding iterations, in single precision
//!   like the C++ `LlmRequest::getAvgDecodedTokensPerIter`; the iteration that produced the
//!   first token counts as one.
//!
//! Pure: the scheduler owns the state, this module only decides.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The worker environment variable that forces the number of accepted draft tokens.
pub const FORCE_ACCEPTED_ENV: &str = "TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS";

/// How many draft tokens a step accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Acceptance {
    /// Exactly this many (capped by the drafts verified).
    Forced(u64),
    /// Each draft token with this probability, stopping at the first rejection.
    Sampled(f64),
}

/// Speculative decoding on one worker (only built when the draft length is at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecParams {
    /// Draft tokens proposed (and verified next step) per decoding step.
    pub draft_len: u64,
    /// Acceptance rule.
    pub acceptance: Acceptance,
}

impl SpecParams {
    /// Speculation with `draft_len` drafts per step; `None` when `draft_len` is 0 (speculation
    /// off). `forced` wins over `rate`.
    pub fn new(draft_len: u64, forced: Option<u64>, rate: f64) -> Option<Self> {
        (draft_len > 0).then_some(Self {
            draft_len,
            acceptance: match forced {
                Some(n) => Acceptance::Forced(n),
                None => Acceptance::Sampled(rate),
            },
        })
    }

    /// Accepted tokens out of `drafts` verified in one step (`rng` is only drawn from when
    /// acceptance is sampled).
    pub fn accepted(&self, drafts: u64, rng: &mut AcceptanceRng) -> u64 {
        match self.acceptance {
            Acceptance::Forced(n) => n.min(drafts),
            Acceptance::Sampled(rate) => {
                let mut accepted = 0;
                while accepted < drafts && rng.0.random::<f64>() < rate {
                    accepted += 1;
                }
                accepted
            }
        }
    }
}

/// A request's own acceptance stream, so its draws do not depend on what else is batched.
#[derive(Debug, Clone)]
pub struct AcceptanceRng(ChaCha8Rng);

impl AcceptanceRng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }
}

/// Why `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS` was rejected; each message names the
/// variable and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForcedAcceptedError {
    /// Not a number.
    #[error("{env}={raw:?}: expected a non-negative number (e.g. 3 or 2.0)", env = FORCE_ACCEPTED_ENV)]
    NotANumber {
        /// The value as set.
        raw: String,
    },
    /// Negative, infinite or NaN.
    #[error("{env}={raw:?}: expected a finite number >= 0", env = FORCE_ACCEPTED_ENV)]
    OutOfRange {
        /// The value as set.
        raw: String,
    },
    /// 10^9 or more.
    #[error(
        "{env}={raw:?}: implausibly large (draft lengths are small integers)",
        env = FORCE_ACCEPTED_ENV
    )]
    TooLarge {
        /// The value as set.
        raw: String,
    },
}

/// Parses `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS`: a number (`3`, `3.0`, `2.7`), truncated to
/// its integer part; 0 (or a value below 1) means "not forced", as upstream treats 0.
pub fn parse_forced_accepted(raw: &str) -> Result<Option<u64>, ForcedAcceptedError> {
    let text = raw.trim();
    let value: f64 = text
        .parse()
        .map_err(|_| ForcedAcceptedError::NotANumber { raw: raw.into() })?;
    if !value.is_finite() || value < 0.0 {
        return Err(ForcedAcceptedError::OutOfRange { raw: raw.into() });
    }
    let truncated = value.trunc();
    if truncated >= 1.0e9 {
        return Err(ForcedAcceptedError::TooLarge { raw: raw.into() });
    }
    Ok(Some(truncated as u64).filter(|&n| n > 0))
}

/// `avg_decoded_tokens_per_iter` after `tokens` generated tokens over `iterations` decoding
/// iterations: a single-precision quotient widened to `f64` (the value Python prints), 0 before
/// the first iteration.
pub fn avg_decoded_tokens_per_iter(tokens: u64, iterations: u64) -> f64 {
    if iterations == 0 {
        return 0.0;
    }
    f64::from(tokens as f32 / iterations as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_draft_length_means_no_speculation() {
        assert_eq!(SpecParams::new(0, Some(3), 0.7), None);
        let p = SpecParams::new(3, Some(5), 0.7).unwrap();
        assert_eq!(p.acceptance, Acceptance::Forced(5));
        let p = SpecParams::new(3, None, 0.7).unwrap();
        assert_eq!(p.acceptance, Acceptance::Sampled(0.7));
    }

    #[test]
    fn forced_acceptance_is_capped_by_the_drafts() {
        let p = SpecParams::new(3, Some(2), 0.0).unwrap();
        let mut rng = AcceptanceRng::new(1);
        assert_eq!(p.accepted(3, &mut rng), 2);
        assert_eq!(p.accepted(1, &mut rng), 1);
        assert_eq!(p.accepted(0, &mut rng), 0);
        let p = SpecParams::new(3, Some(9), 0.0).unwrap();
        assert_eq!(p.accepted(3, &mut rng), 3);
    }

    #[test]
    fn sampled_acceptance_is_reproducible_bounded_and_near_the_chain_mean() {
        let p = SpecParams::new(3, None, 0.7).unwrap();
        let draw = |seed| {
            let mut rng = AcceptanceRng::new(seed);
            (0..20_000)
                .map(|_| p.accepted(3, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(42);
        assert_eq!(a, draw(42));
        assert_ne!(a, draw(43));
        assert!(a.iter().all(|&x| x <= 3));
        // E[accepted] for a chain of 3 with p = 0.7: 0.7 + 0.49 + 0.343 = 1.533.
        let mean = a.iter().sum::<u64>() as f64 / a.len() as f64;
        assert!((mean - 1.533).abs() < 0.03, "{mean}");
        let never = SpecParams::new(3, None, 0.0).unwrap();
        let always = SpecParams::new(3, None, 1.0).unwrap();
        let mut rng = AcceptanceRng::new(7);
        assert_eq!(never.accepted(3, &mut rng), 0);
        assert_eq!(always.accepted(3, &mut rng), 3);
    }

    #[test]
    fn force_variable_parses_like_the_harness() {
        assert_eq!(parse_forced_accepted("3"), Ok(Some(3)));
        assert_eq!(parse_forced_accepted(" 2.9 "), Ok(Some(2)));
        assert_eq!(parse_forced_accepted("1e0"), Ok(Some(1)));
        assert_eq!(parse_forced_accepted("0"), Ok(None));
        assert_eq!(parse_forced_accepted("0.5"), Ok(None));
        for bad in ["", "three", "-1", "inf", "nan", "1e30"] {
            let e = parse_forced_accepted(bad).unwrap_err().to_string();
            assert!(e.starts_with(FORCE_ACCEPTED_ENV), "{bad}: {e}");
        }
    }

    #[test]
    fn average_is_single_precision_like_upstream() {
        assert_eq!(avg_decoded_tokens_per_iter(0, 0), 0.0);
        assert_eq!(avg_decoded_tokens_per_iter(4, 1), 4.0);
        // 41 / 11 in f32, widened: what Python prints for the C++ float.
        assert_eq!(avg_decoded_tokens_per_iter(41, 11), 3.7272727489471436);
    }
}
