//! Tokenizers shared by the simulator and the benchmark client.
//!
//! A real model directory carries a Hugging Face `tokenizer.json`, loaded with the `tokenizers`
//! crate. Without one (a laptop, CI, a config whose model is not on disk) the simulator and the
//! client must still agree on token counts, so both fall back to the same built-in
//! [`SyntheticTokenizer`]: token `i` is the word `t<i>`, so `encode(decode(ids)) == ids`.

use std::path::{Path, PathBuf};

/// Vocabulary size of the built-in synthetic tokenizer.
pub const SYNTHETIC_VOCAB_SIZE: u32 = 32_000;

/// Why a tokenizer could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The directory has no `tokenizer.json`.
    #[error("no tokenizer.json in {dir} (expected a Hugging Face model directory)")]
    Missing {
        /// The directory that was searched.
        dir: PathBuf,
    },
    /// The file exists but could not be parsed.
    #[error("cannot load {path}: {message}")]
    Invalid {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers crate said.
        message: String,
    },
}

/// A tokenizer: either a real Hugging Face one or the built-in synthetic one.
pub enum Tokenizer {
    /// The built-in synthetic tokenizer (no model files needed).
    Synthetic(SyntheticTokenizer),
    /// A Hugging Face `tokenizer.json`.
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Tokenizer {
    /// Loads `<dir>/tokenizer.json` (or `dir` itself when it names a file).
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let path = if dir.is_file() {
            dir.to_path_buf()
        } else {
            dir.join("tokenizer.json")
        };
        if !path.is_file() {
            return Err(TokenizerError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        tokenizers::Tokenizer::from_file(&path)
            .map(|t| Tokenizer::HuggingFace(Box::new(t)))
            .map_err(|e| TokenizerError::Invalid {
                path,
                message: e.to_string(),
            })
    }

    /// Loads the directory's tokenizer, or the synthetic one when the directory has none.
    /// The boolean is `true` when the synthetic fallback was used.
    pub fn from_dir_or_synthetic(dir: &Path) -> Result<(Self, bool), TokenizerError> {
        match Self::from_dir(dir) {
            Ok(t) => Ok((t, false)),
            Err(TokenizerError::Missing { .. }) => {
                Ok((Tokenizer::Synthetic(SyntheticTokenizer), true))
            }
            Err(e) => Err(e),
        }
    }

    /// The synthetic tokenizer.
    pub fn synthetic() -> Self {
        Tokenizer::Synthetic(SyntheticTokenizer)
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        match self {
            Tokenizer::Synthetic(s) => s.encode(text),
            Tokenizer::HuggingFace(t) => t
                .encode(text, add_special_tokens)
                .map(|e| e.get_ids().to_vec())
                // The tokenizers crate only fails on pathological inputs (e.g. truncation
                // misconfiguration); fall back to a whitespace count rather than aborting a run.
                .unwrap_or_else(|_| SyntheticTokenizer.encode(text)),
        }
    }

    /// Text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Synthetic(s) => s.decode(ids),
            Tokenizer::HuggingFace(t) => t.decode(ids, true).unwrap_or_default(),
        }
    }

    /// Vocabulary size (used to wrap random token ids).
    pub fn vocab_size(&self) -> u32 {
        match self {
            Tokenizer::Synthetic(_) => SYNTHETIC_VOCAB_SIZE,
            Tokenizer::HuggingFace(t) => t.get_vocab_size(true) as u32,
        }
    }

    /// One-line description for logs.
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Synthetic(_) => format!(
                "built-in synthetic tokenizer (vocab {SYNTHETIC_VOCAB_SIZE}, token i = word \"t<i>\")"
            ),
            Tokenizer::HuggingFace(t) => {
                format!("Hugging Face tokenizer (vocab {})", t.get_vocab_size(true))
            }
        }
    }

    /// True for the built-in synthetic tokenizer.
    pub fn is_synthetic(&self) -> bool {
        matches!(self, Tokenizer::Synthetic(_))
    }
}

/// The built-in tokenizer: token `i` ↔ the word `t<i>`; any other whitespace-separated word
/// maps to a stable hash modulo the vocabulary.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyntheticTokenizer;

impl SyntheticTokenizer {
    /// Text of one token, with the leading space that makes concatenation of per-token
    /// decodes equal to the decode of the whole sequence.
    pub fn token_text(id: u32) -> String {
        format!(" t{}", id % SYNTHETIC_VOCAB_SIZE)
    }

    /// Token ids of `text`: one per whitespace-separated word.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.split_whitespace().map(word_id).collect()
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::with_capacity(ids.len() * 6);
        for &id in ids {
            out.push_str(&Self::token_text(id));
        }
        out
    }
}

fn word_id(word: &str) -> u32 {
    if let Some(digits) = word.strip_prefix('t')
        && !digits.is_empty()
        && digits.len() <= 5
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(id) = digits.parse::<u32>()
        && id < SYNTHETIC_VOCAB_SIZE
    {
        return id;
    }
    // FNV-1a: stable across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in word.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SYNTHETIC_VOCAB_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_round_trips() {
        let t = SyntheticTokenizer;
        let ids = vec![0, 1, 31_999, 17, 17];
        assert_eq!(t.encode(&t.decode(&ids)), ids);
        let per_token: String = ids
            .iter()
            .map(|&i| SyntheticTokenizer::token_text(i))
            .collect();
        assert_eq!(per_token, t.decode(&ids));
    }

    #[test]
    fn synthetic_counts_words_of_free_text() {
        let t = SyntheticTokenizer;
        let ids = t.encode("Hello there,  general Kenobi\n");
        assert_eq!(ids.len(), 4);
        assert!(ids.iter().all(|&i| i < SYNTHETIC_VOCAB_SIZE));
        assert_eq!(ids, t.encode("Hello there, general Kenobi"));
    }

    #[test]
    fn missing_dir_falls_back_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Tokenizer::from_dir(dir.path()),
            Err(TokenizerError::Missing { .. })
        ));
        let (t, fell_back) = Tokenizer::from_dir_or_synthetic(dir.path()).unwrap();
        assert!(fell_back && t.is_synthetic());
    }
}
