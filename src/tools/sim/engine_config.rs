//! The worker's engine config (`--config <engine.yml>`): upstream's LLM-API YAML.
//!
//! Any key may appear (it is the file a real `trtllm-serve` reads); the simulator reads only what
//! shapes its behaviour and ignores the rest. A key it reads with the wrong type is an error that
//! names the file and the key. `speculative_config` is read for its `decoding_type` and draft
//! length (see [`SpeculativeConfig`]).

use std::path::Path;

use serde_json::Value;

use super::yaml_json::{KeyError, Keys, load_file};

/// What the simulator takes from the engine config (CLI values first, the file overrides them, as
/// in `trtllm-serve`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Most requests scheduled in one iteration.
    pub max_batch_size: u64,
    /// Most tokens (context tokens + one per generation request) in one iteration.
    pub max_num_tokens: u64,
    /// Longest prompt + output; `None` = unbounded.
    pub max_seq_len: Option<u64>,
    /// Tokens per streamed chunk (TensorRT-LLM default 10).
    pub stream_interval: u64,
    /// Print one iteration line per scheduler iteration.
    pub print_iter_log: bool,
    /// Recorded for `/server_info`; the timing model does not change with it.
    pub disable_overlap_scheduler: bool,
    /// Split prompts longer than `max_num_tokens` over several iterations.
    pub enable_chunked_prefill: bool,
    /// Tensor-parallel size (reported in `/server_info`; the attention-DP rank count).
    pub tensor_parallel_size: u64,
    /// `enable_attention_dp`: one scheduler per rank, limits per rank.
    pub enable_attention_dp: bool,
    /// Shared secret used to authenticate protected disaggregated fields.
    pub internal_request_auth_key: Option<String>,
    /// `cache_transceiver_config` is present (the worker serves disaggregated requests).
    pub cache_transceiver: bool,
    /// `speculative_config`, when present.
    pub speculative: Option<SpeculativeConfig>,
}

/// The parts of `speculative_config` the simulator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeculativeConfig {
    /// `decoding_type` (`MTP`, `Eagle`, `Eagle3`, `NGram`, …), as written.
    pub decoding_type: String,
    /// Draft tokens per step: `max_draft_len`, else the legacy MTP key
    /// `num_nextn_predict_layers`, else 1 for MTP (upstream's `MTPDecodingConfig` default) and 0
    /// for other types (no speculation).
    pub draft_len: u64,
}

impl SpeculativeConfig {
    fn from_value(v: &Value) -> Result<Self, KeyError> {
        let k = Keys::new(v, "speculative_config.");
        let decoding_type = k.string("decoding_type")?.ok_or_else(|| {
            KeyError::invalid(
                "speculative_config.decoding_type",
                "field required (e.g. MTP, Eagle3, NGram)",
            )
        })?;
        let is_mtp = decoding_type.eq_ignore_ascii_case("mtp");
        let draft_len = match (
            k.uint("max_draft_len")?,
            k.uint("num_nextn_predict_layers")?,
        ) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) if is_mtp => 1,
            (None, None) => 0,
        };
        Ok(Self {
            decoding_type,
            draft_len,
        })
    }
}

/// CLI values that the engine config may override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineCliDefaults {
    /// `--max_batch_size`.
    pub max_batch_size: u64,
    /// `--max_num_tokens`.
    pub max_num_tokens: u64,
    /// `--max_seq_len`.
    pub max_seq_len: Option<u64>,
    /// `--tensor_parallel_size`.
    pub tensor_parallel_size: u64,
    /// `--enable_chunked_prefill`.
    pub enable_chunked_prefill: bool,
}

impl Default for EngineCliDefaults {
    fn default() -> Self {
        Self {
            max_batch_size: 2048,
            max_num_tokens: 8192,
            max_seq_len: None,
            tensor_parallel_size: 1,
            enable_chunked_prefill: false,
        }
    }
}

/// Why the engine config was rejected.
#[derive(Debug, thiserror::Error)]
pub enum EngineConfigError {
    /// Could not read or parse the file.
    #[error(transparent)]
    File(#[from] super::yaml_json::YamlFileError),
    /// A key has the wrong type or value.
    #[error("{path}: {source}")]
    Key {
        /// The engine config file.
        path: String,
        /// Key and what was expected.
        source: KeyError,
    },
}

impl EngineConfig {
    /// Reads `path` (if any) on top of the CLI values.
    pub fn load(path: Option<&Path>, cli: EngineCliDefaults) -> Result<Self, EngineConfigError> {
        let Some(path) = path else {
            return Ok(Self::from_value(&Value::Object(Default::default()), cli)
                .expect("an empty config is valid"));
        };
        let value = load_file(path)?;
        Self::from_value(&value, cli).map_err(|source| EngineConfigError::Key {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads the keys from an already-parsed YAML tree.
    pub fn from_value(v: &Value, cli: EngineCliDefaults) -> Result<Self, KeyError> {
        if !v.is_object() {
            return Err(KeyError::not_a_mapping(v));
        }
        let k = Keys::new(v, "");
        let config = Self {
            max_batch_size: k.uint("max_batch_size")?.unwrap_or(cli.max_batch_size),
            max_num_tokens: k.uint("max_num_tokens")?.unwrap_or(cli.max_num_tokens),
            max_seq_len: k.uint("max_seq_len")?.or(cli.max_seq_len),
            stream_interval: k.uint("stream_interval")?.unwrap_or(10),
            print_iter_log: k.boolean("print_iter_log")?.unwrap_or(false),
            disable_overlap_scheduler: k.boolean("disable_overlap_scheduler")?.unwrap_or(false),
            enable_chunked_prefill: k
                .boolean("enable_chunked_prefill")?
                .unwrap_or(cli.enable_chunked_prefill),
            tensor_parallel_size: k
                .uint("tensor_parallel_size")?
                .unwrap_or(cli.tensor_parallel_size),
            enable_attention_dp: k.boolean("enable_attention_dp")?.unwrap_or(false),
            internal_request_auth_key: k.string("internal_request_auth_key")?,
            cache_transceiver: v
                .get("cache_transceiver_config")
                .is_some_and(|x| !x.is_null()),
            speculative: k
                .mapping("speculative_config")?
                .map(SpeculativeConfig::from_value)
                .transpose()?,
        };
        for (key, value) in [
            ("max_batch_size", config.max_batch_size),
            ("max_num_tokens", config.max_num_tokens),
            ("stream_interval", config.stream_interval),
        ] {
            if value == 0 {
                return Err(KeyError::invalid(key, "expected an integer >= 1, got 0"));
            }
        }
        if config.tensor_parallel_size == 0 {
            return Err(KeyError::invalid(
                "tensor_parallel_size",
                "expected an integer >= 1, got 0",
            ));
        }
        Ok(config)
    }

    /// Schedulers the engine runs: `tensor_parallel_size` with attention DP, else 1.
    pub fn attention_dp_ranks(&self) -> u64 {
        if self.enable_attention_dp {
            self.tensor_parallel_size
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::sim::yaml_json::load_str;

    #[test]
    fn reads_known_keys_and_ignores_the_rest() {
        let v = load_str(
            "internal_request_auth_key: abc\nprint_iter_log: true\nmax_batch_size: 128\n\
             max_num_tokens: 7808\ncuda_graph_config:\n  enable_padding: true\n\
             kv_cache_config: {dtype: fp8}\nstream_interval: 4\n",
        )
        .unwrap();
        let c = EngineConfig::from_value(&v, EngineCliDefaults::default()).unwrap();
        assert_eq!(c.max_batch_size, 128);
        assert_eq!(c.max_num_tokens, 7808);
        assert_eq!(c.stream_interval, 4);
        assert!(c.print_iter_log);
        assert_eq!(c.internal_request_auth_key.as_deref(), Some("abc"));
    }

    #[test]
    fn defaults_follow_trtllm() {
        let c = EngineConfig::load(None, EngineCliDefaults::default()).unwrap();
        assert_eq!(c.stream_interval, 10);
        assert_eq!(c.max_batch_size, 2048);
        assert!(!c.print_iter_log);
    }

    #[test]
    fn speculative_config_draft_length() {
        let read = |yaml: &str| {
            let v = load_str(yaml).unwrap();
            EngineConfig::from_value(&v, EngineCliDefaults::default()).map(|c| c.speculative)
        };
        assert_eq!(read("max_batch_size: 4\n").unwrap(), None);
        assert_eq!(read("speculative_config: null\n").unwrap(), None);
        let c = read("speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: 3\n")
            .unwrap()
            .unwrap();
        assert_eq!((c.decoding_type.as_str(), c.draft_len), ("MTP", 3));
        let c = read("speculative_config: {decoding_type: MTP, max_draft_len: 2, num_nextn_predict_layers: 3}\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.draft_len, 2, "max_draft_len wins");
        let c = read("speculative_config: {decoding_type: MTP}\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.draft_len, 1, "upstream's MTP default");
        let c = read("speculative_config: {decoding_type: Eagle3}\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.draft_len, 0);
        let c = read(
            "speculative_config: {decoding_type: Eagle3, max_draft_len: 4, speculative_model: x}\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.decoding_type.as_str(), c.draft_len), ("Eagle3", 4));
    }

    #[test]
    fn bad_speculative_config_names_the_key() {
        let read = |yaml: &str| {
            let v = load_str(yaml).unwrap();
            EngineConfig::from_value(&v, EngineCliDefaults::default())
                .unwrap_err()
                .to_string()
        };
        assert!(
            read("speculative_config: MTP\n").starts_with("speculative_config: expected a mapping")
        );
        assert!(
            read("speculative_config: {max_draft_len: 3}\n")
                .starts_with("speculative_config.decoding_type: field required")
        );
        assert!(
            read("speculative_config: {decoding_type: MTP, max_draft_len: three}\n")
                .starts_with("speculative_config.max_draft_len: expected a non-negative integer")
        );
        assert!(
            read("speculative_config: {decoding_type: MTP, num_nextn_predict_layers: -1}\n")
                .starts_with("speculative_config.num_nextn_predict_layers: expected")
        );
        assert!(
            read("speculative_config: {decoding_type: [MTP]}\n")
                .starts_with("speculative_config.decoding_type: expected a string")
        );
    }

    #[test]
    fn attention_dp_ranks_follow_tensor_parallel_size() {
        let read = |yaml: &str| {
            let v = load_str(yaml).unwrap();
            EngineConfig::from_value(&v, EngineCliDefaults::default())
        };
        let c = read("tensor_parallel_size: 8\nenable_attention_dp: true\n").unwrap();
        assert_eq!(c.attention_dp_ranks(), 8);
        let c = read("tensor_parallel_size: 8\nenable_attention_dp: false\n").unwrap();
        assert_eq!(c.attention_dp_ranks(), 1);
        let c = read("enable_attention_dp: true\n").unwrap();
        assert_eq!(c.attention_dp_ranks(), 1, "tp defaults to 1");
        let e = read("enable_attention_dp: yes please\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("enable_attention_dp: expected"), "{e}");
        let e = read("tensor_parallel_size: 0\n").unwrap_err().to_string();
        assert_eq!(e, "tensor_parallel_size: expected an integer >= 1, got 0");
    }

    #[test]
    fn bad_values_name_the_key() {
        let v = load_str("max_batch_size: lots\n").unwrap();
        let e = EngineConfig::from_value(&v, EngineCliDefaults::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("max_batch_size: expected"), "{e}");
        let v = load_str("stream_interval: 0\n").unwrap();
        assert_eq!(
            EngineConfig::from_value(&v, EngineCliDefaults::default())
                .unwrap_err()
                .to_string(),
            "stream_interval: expected an integer >= 1, got 0"
        );
        let v = load_str("[1]\n").unwrap();
        assert_eq!(
            EngineConfig::from_value(&v, EngineCliDefaults::default())
                .unwrap_err()
                .to_string(),
            "expected a mapping at the top level, got [1]"
        );
    }
}
