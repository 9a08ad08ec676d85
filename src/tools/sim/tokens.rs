//! Prompt token counting and the simulated model's output tokens.
//!
//! Prompts are counted with the shared [`Tokenizer`] (the model directory's `tokenizer.json`, or
//! the built-in synthetic one) so the simulator and the benchmark client agree on lengths.
//! Output token `k` of a request is a deterministic function of a per-request seed; its text is
//! pre-escaped for JSON so building an SSE chunk is string concatenation. With the synthetic
//! tokenizer token `i` is the word ` t<i>`, which re-tokenizes to exactly one token.

use std::fmt::Write as _;

use crate::util::tokenizer::{SYNTHETIC_VOCAB_SIZE, Tokenizer};

/// Output vocabulary: how token ids are chosen and rendered.
pub struct OutputVocab {
    tokenizer: Tokenizer,
    /// For Hugging Face tokenizers: (id, JSON-escaped text) of plain words that decode
    /// stably one token at a time.
    pool: Vec<(u32, String)>,
}

impl std::fmt::Debug for OutputVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OutputVocab({:?}, pool {})",
            self.tokenizer,
            self.pool.len()
        )
    }
}

const HF_POOL_TEXT: &str = " the quick brown fox jumps over the lazy dog and then runs back home \
    to rest in the warm sun while birds sing in the tall green trees";

impl OutputVocab {
    /// Builds the vocabulary around `tokenizer`.
    pub fn new(tokenizer: Tokenizer) -> Self {
        let pool = if tokenizer.is_synthetic() {
            Vec::new()
        } else {
            let ids = tokenizer.encode(HF_POOL_TEXT, false);
            let mut pool = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for id in ids {
                let text = tokenizer.decode(&[id]);
                if !text.trim().is_empty() && seen.insert(id) {
                    // Decoding drops a leading space for some tokenizers; re-add one so
                    // consecutive tokens stay separate words.
                    let text = if text.starts_with(' ') {
                        text
                    } else {
                        format!(" {text}")
                    };
                    pool.push((id, json_escape(&text)));
                }
            }
            if pool.is_empty() {
                pool.push((0, json_escape(&tokenizer.decode(&[0]))));
            }
            pool
        };
        Self { tokenizer, pool }
    }

    /// Token ids of a text prompt.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        self.tokenizer.encode(text, add_special_tokens)
    }

    /// Id of output token `k` of a request with `seed`.
    pub fn token_id(&self, seed: u64, k: u64) -> u32 {
        let mixed = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(k.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mixed = (mixed ^ (mixed >> 29)) >> 8;
        if self.pool.is_empty() {
            (mixed % u64::from(SYNTHETIC_VOCAB_SIZE)) as u32
        } else {
            self.pool[(mixed % self.pool.len() as u64) as usize].0
        }
    }

    /// Appends the JSON-escaped text of token `id` to `out`.
    pub fn push_text(&self, id: u32, out: &mut String) {
        if self.pool.is_empty() {
            let _ = write!(out, " t{}", id % SYNTHETIC_VOCAB_SIZE);
        } else if let Some((_, text)) = self.pool.iter().find(|(i, _)| *i == id) {
            out.push_str(text);
        } else {
            out.push_str(&json_escape(&self.tokenizer.decode(&[id])));
        }
    }
}

/// Escapes `text` for use inside a JSON string literal (without the quotes).
pub fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("strings always serialise");
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_output_round_trips_to_one_token_each() {
        let v = OutputVocab::new(Tokenizer::synthetic());
        let mut text = String::new();
        let ids: Vec<u32> = (0..50).map(|k| v.token_id(7, k)).collect();
        for &id in &ids {
            v.push_text(id, &mut text);
        }
        assert_eq!(v.encode(&text, false), ids);
        assert_ne!(v.token_id(7, 0), v.token_id(8, 0));
        assert_eq!(v.token_id(7, 3), v.token_id(7, 3));
    }

    #[test]
    fn escapes_json() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
