//! The three seeded generators the Python benchmark clients draw their requests from, bit for
//! bit: MT19937 with the seeding of numpy's legacy `np.random.seed`, of `torch.Generator.
//! manual_seed` and of Python's `random.seed`, plus each library's way of turning 32-bit
//! outputs into bounded integers (numpy's masked rejection, torch's modulo, Python's
//! `_randbelow`). Golden sequences recorded from the real clients live in
//! `tests/fixtures/request_sequences/`.

const N: usize = 624;
const M: usize = 397;

/// The Mersenne Twister MT19937 (32-bit outputs).
#[derive(Clone)]
pub struct Mt19937 {
    mt: [u32; N],
    idx: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`: numpy's legacy integer seeding and torch's CPU generator.
    pub fn init_genrand(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, idx: N }
    }

    /// `init_by_array(key)`: Python's `random.seed`.
    pub fn init_by_array(key: &[u32]) -> Self {
        let mut g = Self::init_genrand(19_650_218);
        let mt = &mut g.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        g
    }

    fn twist(&mut self) {
        for k in 0..N {
            let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.idx = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= N {
            self.twist();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_u64_hi_lo(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        (hi << 32) | u64::from(self.next_u32())
    }
}

/// numpy's legacy `RandomState` after `np.random.seed(seed)` (seed in `0..2^32`).
pub struct NumpyLegacy(Mt19937);

/// A seed numpy's legacy generator refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("seed {seed} must be between 0 and 2**32 - 1 (numpy's limit)")]
pub struct SeedError {
    /// The seed given.
    pub seed: u64,
}

impl NumpyLegacy {
    /// `np.random.seed(seed)`; numpy refuses seeds ≥ 2^32, and so does this.
    pub fn seed(seed: u64) -> Result<Self, SeedError> {
        u32::try_from(seed)
            .map(|s| NumpyLegacy(Mt19937::init_genrand(s)))
            .map_err(|_| SeedError { seed })
    }

    /// `np.random.randint(low, high, size=count)` (int64; `high` exclusive; `low < high`):
    /// masked rejection sampling, and no draw at all when the range holds one value.
    pub fn randint(&mut self, low: i64, high: i64, count: usize) -> Vec<i64> {
        let rng = (high - 1 - low) as u64;
        let mask = if rng == 0 {
            0
        } else {
            u64::MAX >> rng.leading_zeros()
        };
        (0..count)
            .map(|_| {
                let v = if rng == 0 {
                    0
                } else if rng == 0xffff_ffff {
                    u64::from(self.0.next_u32())
                } else if rng < 0xffff_ffff {
                    loop {
                        let v = u64::from(self.0.next_u32()) & mask;
                        if v <= rng {
                            break v;
                        }
                    }
                } else {
                    loop {
                        let v = self.0.next_u64_hi_lo() & mask;
                        if v <= rng {
                            break v;
                        }
                    }
                };
                low.wrapping_add(v as i64)
            })
            .collect()
    }
}

/// A CPU `torch.Generator` after `manual_seed(seed)`, as far as `torch.randint` uses it.
pub struct TorchCpu(Mt19937);

impl TorchCpu {
    /// `torch.Generator().manual_seed(seed)`: MT19937 seeded with the low 32 bits.
    pub fn manual_seed(seed: u64) -> Self {
        TorchCpu(Mt19937::init_genrand(seed as u32))
    }

    /// `torch.randint(low, high, (count,), generator=g)` (`high` exclusive): one 32-bit draw per
    /// element (two when the range needs 64 bits), value `low + draw % range`.
    pub fn randint(&mut self, low: i64, high: i64, count: usize) -> Vec<i64> {
        let range = (high - low) as u64;
        (0..count)
            .map(|_| {
                let draw = if range >= 1 << 32 {
                    self.0.next_u64_hi_lo()
                } else {
                    u64::from(self.0.next_u32())
                };
                low.wrapping_add((draw % range) as i64)
            })
            .collect()
    }
}

/// Python's `random.Random` after `random.seed(seed)` (an int seed).
pub struct PyRandom(Mt19937);

impl PyRandom {
    /// `random.seed(seed)`: the seed's 32-bit words, least significant first, into
    /// `init_by_array` (`[0]` for zero).
    pub fn seed(seed: u64) -> Self {
        let mut key = vec![seed as u32];
        if seed >> 32 != 0 {
            key.push((seed >> 32) as u32);
        }
        PyRandom(Mt19937::init_by_array(&key))
    }

    /// `getrandbits(k)` for `1 ≤ k ≤ 64`.
    fn getrandbits(&mut self, k: u32) -> u64 {
        if k <= 32 {
            return u64::from(self.0.next_u32() >> (32 - k));
        }
        let lo = u64::from(self.0.next_u32());
        let hi = u64::from(self.0.next_u32() >> (64 - k));
        (hi << 32) | lo
    }

    /// `_randbelow(n)` for `n ≥ 1`: `getrandbits(n.bit_length())` until below `n`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(items)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_reference_outputs() {
        // The reference implementation's documented outputs (mt19937ar.out, init_by_array
        // {0x123, 0x234, 0x345, 0x456}) and the C++ std::mt19937 default-seed check value.
        let mut g = Mt19937::init_by_array(&[0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..3).map(|_| g.next_u32()).collect();
        assert_eq!(first, [1_067_595_299, 955_945_823, 477_289_528]);
        let mut d = Mt19937::init_genrand(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = d.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn python_random_seed_zero() {
        // random.seed(0); [random.getrandbits(32) for _ in range(2)] == [3626764237, 1654615998]
        let mut r = PyRandom::seed(0);
        assert_eq!(r.getrandbits(32), 3_626_764_237);
        assert_eq!(r.getrandbits(32), 1_654_615_998);
    }

    #[test]
    fn numpy_seed_limit_is_an_error() {
        assert_eq!(
            NumpyLegacy::seed(1 << 32).err().unwrap().to_string(),
            "seed 4294967296 must be between 0 and 2**32 - 1 (numpy's limit)"
        );
        assert!(NumpyLegacy::seed((1 << 32) - 1).is_ok());
    }
}
