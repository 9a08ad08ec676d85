//! The latency model: how long one scheduler iteration and one KV-cache transfer take.
//!
//! Pure arithmetic over [`LatencyConfig`] plus a seeded jitter generator, so the formulas are
//! unit-tested and documented in one place (`docs/SIMULATOR.md`):
//!
//! * iteration = `step_base_ms + step_per_gen_request_us·G/1000 + step_per_ctx_token_us·T/1000
//!   + step_per_draft_token_us·D/1000` where `G` = generation requests, `T` = context tokens and
//!   `D` = draft tokens verified (speculative decoding) in the batch;
//! * KV transfer = `kv_transfer_base_ms + kv_transfer_per_token_us·P/1000` for a prompt of `P`;
//! * each iteration is scaled by a uniform factor in `[1 − jitter, 1 + jitter]`.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::LatencyConfig;

/// The batch shape that determines an iteration's cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Generation (decode) requests.
    pub gen_requests: u64,
    /// Draft tokens the generation requests verify (speculative decoding; 0 otherwise).
    pub draft_tokens: u64,
    /// Context (prefill) requests.
    pub ctx_requests: u64,
    /// Context tokens processed.
    pub ctx_tokens: u64,
}

/// Step-time calculator with its own jitter stream.
#[derive(Debug, Clone)]
pub struct LatencyModel {
    config: LatencyConfig,
    rng: ChaCha8Rng,
}

impl LatencyModel {
    /// A model seeded with `config.seed` mixed with `stream` (e.g. a hash of the role name).
    pub fn new(config: LatencyConfig, stream: u64) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ stream.rotate_left(17));
        Self { config, rng }
    }

    /// Nominal (jitter-free) iteration time in milliseconds.
    pub fn nominal_step_ms(&self, batch: BatchShape) -> f64 {
        self.config.step_base_ms
            + self.config.step_per_gen_request_us * batch.gen_requests as f64 / 1000.0
            + self.config.step_per_ctx_token_us * batch.ctx_tokens as f64 / 1000.0
            + self.config.step_per_draft_token_us * batch.draft_tokens as f64 / 1000.0
    }

    /// Iteration time with jitter applied.
    pub fn step(&mut self, batch: BatchShape) -> Duration {
        let nominal = self.nominal_step_ms(batch);
        let factor = if self.config.jitter > 0.0 {
            self.rng
                .random_range(1.0 - self.config.jitter..=1.0 + self.config.jitter)
        } else {
            1.0
        };
        Duration::from_secs_f64((nominal * factor).max(0.0) / 1000.0)
    }

    /// KV-cache transfer time of a `generation_only` request with `prompt_tokens` tokens.
    pub fn kv_transfer(&self, prompt_tokens: u64) -> Duration {
        let ms = self.config.kv_transfer_base_ms
            + self.config.kv_transfer_per_token_us * prompt_tokens as f64 / 1000.0;
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// Simulated model-load time.
    pub fn load_delay(&self) -> Duration {
        Duration::from_secs_f64(self.config.load_delay_ms / 1000.0)
    }

    /// The knobs this model was built from.
    pub fn config(&self) -> &LatencyConfig {
        &self.config
    }
}

/// Stable 64-bit FNV-1a hash, used to derive per-role seeds.
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_time_grows_with_batch_and_prompt() {
        let m = LatencyModel::new(LatencyConfig::default(), 0);
        let empty = m.nominal_step_ms(BatchShape::default());
        assert_eq!(empty, 4.0);
        let decode = m.nominal_step_ms(BatchShape {
            gen_requests: 256,
            ..Default::default()
        });
        assert!((decode - (4.0 + 256.0 * 8.0 / 1000.0)).abs() < 1e-9);
        let prefill = m.nominal_step_ms(BatchShape {
            ctx_requests: 1,
            ctx_tokens: 1000,
            ..Default::default()
        });
        assert!((prefill - 8.0).abs() < 1e-9);
        let speculative = m.nominal_step_ms(BatchShape {
            gen_requests: 10,
            draft_tokens: 30,
            ..Default::default()
        });
        assert!((speculative - (4.0 + 0.08 + 0.06)).abs() < 1e-9);
        assert_eq!(m.kv_transfer(1000), Duration::from_secs_f64(0.0012));
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible() {
        let config = LatencyConfig {
            jitter: 0.2,
            seed: 42,
            ..Default::default()
        };
        let mut a = LatencyModel::new(config.clone(), 1);
        let mut b = LatencyModel::new(config, 1);
        let shape = BatchShape::default();
        for _ in 0..100 {
            let x = a.step(shape);
            assert_eq!(x, b.step(shape));
            let ms = x.as_secs_f64() * 1000.0;
            assert!((3.2 - 1e-9..=4.8 + 1e-9).contains(&ms), "{ms}");
        }
    }
}
