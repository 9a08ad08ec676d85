//! Request datasets: upstream's `random` (both clients' semantics) and `trtllm_custom` (the file
//! format itself is [`crate::util::custom_dataset`]).
//!
//! Everything here is pure and seeded: the same flags give the same requests as the Python
//! client each flavor stands in for — the SA client draws with numpy's legacy generator
//! (`np.random.seed` + `randint`), TensorRT-LLM's `RandomDataset` with a seeded
//! `torch.Generator`, its `CustomDataset` with `random.seed` + `random.shuffle`
//! ([`super::py_random`]). `tests/bench_request_sequences.rs` checks them against sequences
//! recorded from the real clients.

use std::path::Path;

use super::error::BenchError;
use super::py_random::{NumpyLegacy, PyRandom, TorchCpu};
use crate::util::custom_dataset::parse_custom;
use crate::util::tokenizer::Tokenizer;

/// What is sent as the prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Text prompt.
    Text(String),
    /// Token ids (`--tokenize-on-client`).
    Ids(Vec<u32>),
}

/// One request of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Prompt length as upstream's sampler records it (not re-tokenised by the server).
    pub prompt_len: u64,
    /// `max_tokens` of the request.
    pub output_len: u32,
}

/// Settings of the `random` dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomSpec {
    /// Number of prompts.
    pub num_prompts: usize,
    /// Input length L_in.
    pub input_len: u32,
    /// Output length L_out.
    pub output_len: u32,
    /// Range ratio r.
    pub range_ratio: f64,
    /// Random prefix length.
    pub prefix_len: u32,
    /// Seed.
    pub seed: u64,
}

/// Inclusive length range of the standard client: `[⌊L(1−r)⌋, ⌊L(1+r)⌋]`.
pub fn standard_len_range(len: u32, r: f64) -> (u32, u32) {
    let l = f64::from(len);
    (
        (l * (1.0 - r)).floor() as u32,
        (l * (1.0 + r)).floor() as u32,
    )
}

/// Inclusive length range of the SA client: `[⌊L·r⌋, L]`.
pub fn sa_len_range(len: u32, r: f64) -> (u32, u32) {
    (((f64::from(len)) * r).floor() as u32, len)
}

struct Draws {
    prefix: Vec<u32>,
    input_lens: Vec<u32>,
    output_lens: Vec<u32>,
    offsets: Vec<u32>,
}

fn to_u32(v: Vec<i64>) -> Vec<u32> {
    v.into_iter().map(|x| x as u32).collect()
}

/// The SA client's draws, in its order: prefix, input lengths, output lengths, offsets (numpy's
/// legacy generator; `randint` of an empty prefix draws nothing).
fn draw_numpy(
    spec: &RandomSpec,
    vocab: u32,
    input: (u32, u32),
    output: (u32, u32),
) -> Result<Draws, BenchError> {
    let mut g = NumpyLegacy::seed(spec.seed)?;
    let n = spec.num_prompts;
    let vocab = i64::from(vocab);
    let mut range =
        |(lo, hi): (u32, u32), count| to_u32(g.randint(i64::from(lo), i64::from(hi) + 1, count));
    let prefix = range((0, (vocab - 1) as u32), spec.prefix_len as usize);
    let input_lens = range(input, n);
    let output_lens = range(output, n);
    let offsets = range((0, (vocab - 1) as u32), n);
    Ok(Draws {
        prefix,
        input_lens,
        output_lens,
        offsets,
    })
}

/// TensorRT-LLM `RandomDataset`'s draws, in its order (seeded `torch.Generator`; no prefix
/// draw when the prefix is empty).
fn draw_torch(spec: &RandomSpec, vocab: u32, input: (u32, u32), output: (u32, u32)) -> Draws {
    let mut g = TorchCpu::manual_seed(spec.seed);
    let n = spec.num_prompts;
    let mut range =
        |(lo, hi): (u32, u32), count| to_u32(g.randint(i64::from(lo), i64::from(hi) + 1, count));
    let prefix = if spec.prefix_len > 0 {
        range((0, vocab - 1), spec.prefix_len as usize)
    } else {
        Vec::new()
    };
    let input_lens = range(input, n);
    let output_lens = range(output, n);
    let offsets = range((0, vocab - 1), n);
    Draws {
        prefix,
        input_lens,
        output_lens,
        offsets,
    }
}

fn prompt_ids(d: &Draws, i: usize, vocab: u32) -> Vec<u32> {
    let mut ids = d.prefix.clone();
    let base = u64::from(d.offsets[i]) + i as u64;
    ids.extend((0..u64::from(d.input_lens[i])).map(|j| ((base + j) % u64::from(vocab)) as u32));
    ids
}

/// TensorRT-LLM `RandomDataset` with `--random-ids`: symmetric lengths, ids
/// `(offset + i + j) mod vocab`, decoded to text unless `as_ids` (`--tokenize-on-client`).
pub fn random_standard(
    spec: &RandomSpec,
    tokenizer: &Tokenizer,
    as_ids: bool,
) -> Result<Vec<SampleRequest>, BenchError> {
    if spec.range_ratio >= 1.0 {
        return Err(BenchError::Dataset(format!(
            "random_range_ratio must be < 1.0, got {}",
            spec.range_ratio
        )));
    }
    let vocab = tokenizer.vocab_size().max(1);
    let input = standard_len_range(spec.input_len, spec.range_ratio);
    let output = standard_len_range(spec.output_len, spec.range_ratio);
    let d = draw_torch(spec, vocab, input, output);
    Ok((0..spec.num_prompts)
        .map(|i| {
            let ids = prompt_ids(&d, i, vocab);
            SampleRequest {
                prompt: if as_ids {
                    Prompt::Ids(ids)
                } else {
                    Prompt::Text(tokenizer.decode(&ids))
                },
                prompt_len: u64::from(spec.prefix_len) + u64::from(d.input_lens[i]),
                output_len: d.output_lens[i],
            }
        })
        .collect())
}

/// The SA client's random dataset: lengths in `[⌊L·r⌋, L]`; the decoded prompt is re-encoded,
/// truncated to `prefix + len` tokens and decoded again.
pub fn random_sa(
    spec: &RandomSpec,
    tokenizer: &Tokenizer,
) -> Result<Vec<SampleRequest>, BenchError> {
    if spec.range_ratio > 1.0 {
        return Err(BenchError::Dataset(format!(
            "random_range_ratio must be ≤ 1.0, got {}",
            spec.range_ratio
        )));
    }
    let vocab = tokenizer.vocab_size().max(1);
    let input = sa_len_range(spec.input_len, spec.range_ratio);
    let output = sa_len_range(spec.output_len, spec.range_ratio);
    let d = draw_numpy(spec, vocab, input, output)?;
    Ok((0..spec.num_prompts)
        .map(|i| {
            let ids = prompt_ids(&d, i, vocab);
            let keep = (spec.prefix_len + d.input_lens[i]) as usize;
            let mut re = tokenizer.encode(&tokenizer.decode(&ids), false);
            re.truncate(keep);
            SampleRequest {
                prompt: Prompt::Text(tokenizer.decode(&re)),
                prompt_len: u64::from(spec.prefix_len) + u64::from(d.input_lens[i]),
                output_len: d.output_lens[i],
            }
        })
        .collect())
}

/// Loads, shuffles (`random.seed(seed)` + `random.shuffle`, as TensorRT-LLM's `CustomDataset`)
/// and samples a `trtllm_custom` file: the first `num_prompts` entries after the shuffle, never
/// oversampling; `prompt_len` counts special tokens.
pub fn load_custom(
    path: &Path,
    num_prompts: usize,
    seed: u64,
    tokenizer: &Tokenizer,
) -> Result<Vec<SampleRequest>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::DatasetIo {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries = parse_custom(path, &text)?;
    PyRandom::seed(seed).shuffle(&mut entries);
    entries.truncate(num_prompts);
    Ok(entries
        .into_iter()
        .map(|e| SampleRequest {
            prompt_len: tokenizer.encode(&e.prompt, true).len() as u64,
            prompt: Prompt::Text(e.prompt),
            output_len: e.max_tokens,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: usize, r: f64) -> RandomSpec {
        RandomSpec {
            num_prompts: n,
            input_len: 100,
            output_len: 10,
            range_ratio: r,
            prefix_len: 0,
            seed: 0,
        }
    }

    #[test]
    fn length_ranges_match_upstream() {
        assert_eq!(standard_len_range(1024, 0.8), (204, 1843));
        assert_eq!(standard_len_range(1024, 0.0), (1024, 1024));
        assert_eq!(sa_len_range(1024, 0.8), (819, 1024));
        assert_eq!(sa_len_range(1024, 1.0), (1024, 1024));
    }

    #[test]
    fn standard_random_ids_follow_the_formula() {
        let t = Tokenizer::synthetic();
        let reqs = random_standard(&spec(50, 0.5), &t, true).unwrap();
        assert_eq!(reqs.len(), 50);
        for r in &reqs {
            let Prompt::Ids(ids) = &r.prompt else {
                panic!()
            };
            assert!((50..=150).contains(&ids.len()));
            assert_eq!(r.prompt_len, ids.len() as u64);
            assert!((5..=15).contains(&r.output_len));
            // Consecutive ids, starting at offset + i.
            for w in ids.windows(2) {
                assert_eq!(
                    w[1],
                    (w[0] + 1) % crate::util::tokenizer::SYNTHETIC_VOCAB_SIZE
                );
            }
        }
        // Deterministic per seed, different across seeds.
        assert_eq!(reqs, random_standard(&spec(50, 0.5), &t, true).unwrap());
        let mut other = spec(50, 0.5);
        other.seed = 1;
        assert_ne!(reqs, random_standard(&other, &t, true).unwrap());
        assert!(random_standard(&spec(1, 1.0), &t, true).is_err());
    }

    #[test]
    fn standard_text_prompt_round_trips_with_the_synthetic_tokenizer() {
        let t = Tokenizer::synthetic();
        let mut s = spec(3, 0.0);
        s.prefix_len = 4;
        let reqs = random_standard(&s, &t, false).unwrap();
        for r in &reqs {
            let Prompt::Text(text) = &r.prompt else {
                panic!()
            };
            assert_eq!(t.encode(text, false).len() as u64, r.prompt_len);
            assert_eq!(r.prompt_len, 104);
        }
    }

    #[test]
    fn sa_lengths_are_in_lr_to_l() {
        let t = Tokenizer::synthetic();
        let reqs = random_sa(&spec(200, 0.8), &t).unwrap();
        assert!(reqs.iter().all(|r| (80..=100).contains(&r.prompt_len)));
        assert!(reqs.iter().all(|r| (8..=10).contains(&r.output_len)));
        assert!(reqs.iter().any(|r| r.prompt_len < 100));
        let fixed = random_sa(&spec(5, 1.0), &t).unwrap();
        assert!(
            fixed
                .iter()
                .all(|r| r.prompt_len == 100 && r.output_len == 10)
        );
    }

    #[test]
    fn custom_sampling_shuffles_without_oversampling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        let lines: String = (0..10)
            .map(|i| {
                format!(
                    "{{\"input\": {{\"messages\": [{{\"content\": \"\"}}, {{\"content\": \"w{i} x\"}}], \"max_tokens\": {}}}}}\n",
                    i + 1
                )
            })
            .collect();
        std::fs::write(&path, lines).unwrap();
        let t = Tokenizer::synthetic();
        let all = load_custom(&path, 100, 0, &t).unwrap();
        assert_eq!(all.len(), 10, "no oversampling");
        let mut max_tokens: Vec<u32> = all.iter().map(|r| r.output_len).collect();
        assert_ne!(max_tokens, (1..=10).collect::<Vec<_>>(), "shuffled");
        max_tokens.sort();
        assert_eq!(max_tokens, (1..=10).collect::<Vec<_>>());
        assert!(all.iter().all(|r| r.prompt_len == 2));
        assert_eq!(load_custom(&path, 3, 0, &t).unwrap(), all[..3].to_vec());
        let missing = load_custom(&dir.path().join("nope.json"), 1, 0, &t).unwrap_err();
        assert!(missing.to_string().contains("nope.json"));
    }
}
