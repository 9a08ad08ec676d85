//! The worker's engine config (`--config <engine.yml>`): upstream's LLM-API YAML.
//!
//! Any key may appear (it is the file a real `trtllm-serve` reads); the simulator reads only what
//! shapes its behaviour and ignores the rest. A key it reads with the wrong type is an error that
//! names the file and the key.

use std::path::Path;

use serde_json::Value;

use super::yaml_json::{Keys, load_file};

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
    /// Tensor-parallel size (reported in `/server_info`).
    pub tensor_parallel_size: u64,
    /// Shared secret used to authenticate protected disaggregated fields.
    pub internal_request_auth_key: Option<String>,
    /// `cache_transceiver_config` is present (the worker serves disaggregated requests).
    pub cache_transceiver: bool,
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
    #[error("{path}: {message}")]
    Key {
        /// The engine config file.
        path: String,
        /// Key and what was expected.
        message: String,
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
        Self::from_value(&value, cli).map_err(|message| EngineConfigError::Key {
            path: path.display().to_string(),
            message,
        })
    }

    /// Reads the keys from an already-parsed YAML tree.
    pub fn from_value(v: &Value, cli: EngineCliDefaults) -> Result<Self, String> {
        if !v.is_object() {
            return Err(format!("expected a mapping at the top level, got {v}"));
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
            internal_request_auth_key: k.string("internal_request_auth_key")?,
            cache_transceiver: v
                .get("cache_transceiver_config")
                .is_some_and(|x| !x.is_null()),
        };
        for (key, value) in [
            ("max_batch_size", config.max_batch_size),
            ("max_num_tokens", config.max_num_tokens),
            ("stream_interval", config.stream_interval),
        ] {
            if value == 0 {
                return Err(format!("{key}: expected an integer >= 1, got 0"));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::yaml_json::load_str;

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
    fn bad_values_name_the_key() {
        let v = load_str("max_batch_size: lots\n").unwrap();
        let e = EngineConfig::from_value(&v, EngineCliDefaults::default()).unwrap_err();
        assert!(e.starts_with("max_batch_size: expected"), "{e}");
        let v = load_str("stream_interval: 0\n").unwrap();
        assert!(EngineConfig::from_value(&v, EngineCliDefaults::default()).is_err());
    }
}
