//! YAML files (engine config, router `server_config`) read into `serde_json::Value` with the
//! crate's one YAML loader (`crate::util::yaml`: PyYAML's scalar types and merge order, as
//! `trtllm-serve` reads these files).
//!
//! The simulator only reads a handful of keys from files written by upstream-shaped tooling, so a
//! plain JSON tree (aliases already resolved) is the simplest thing to look keys up in.

use std::path::Path;

use serde_json::{Map, Value};

use crate::util::yaml::YamlError;

/// Why a YAML file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path} is not valid YAML: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (with line and column).
        source: YamlError,
    },
}

/// A key of a mapping the simulator reads is mistyped, out of range or unsupported; the message
/// names the key (with its section prefix) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The document is not a mapping.
    #[error("expected a mapping at the top level, got {got}")]
    NotAMapping {
        /// The value found, as JSON.
        got: String,
    },
    /// A key holds a value of the wrong type.
    #[error("{key}: expected {expected}, got {got}")]
    WrongType {
        /// The key, with its section prefix.
        key: String,
        /// The expected type (`a non-negative integer`).
        expected: &'static str,
        /// The value found, as JSON.
        got: String,
    },
    /// A key is missing, out of range or names a feature the simulator does not have.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, with its section prefix.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl KeyError {
    /// The document (or a section) `v` is not a mapping.
    pub fn not_a_mapping(v: &Value) -> Self {
        KeyError::NotAMapping { got: v.to_string() }
    }

    /// `key` is invalid: `message` says why.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Loads a one-document YAML file; an empty file is an empty mapping.
pub fn load_file(path: &Path) -> Result<Value, YamlFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| YamlFileError::Read {
        path: shown.clone(),
        source,
    })?;
    load_str(&text).map_err(|source| YamlFileError::Parse {
        path: shown,
        source,
    })
}

/// Loads a one-document YAML string; an empty string is an empty mapping.
pub fn load_str(text: &str) -> Result<Value, YamlError> {
    let node = crate::util::yaml::load_str(text)?;
    Ok(Some(node.to_json())
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Typed look-ups of optional keys with errors that name the key and the expected type.
pub struct Keys<'a> {
    /// The mapping being read.
    pub map: &'a Value,
    /// Prefix used in error messages (`"context_servers."`, or `""` at top level).
    pub prefix: String,
}

impl<'a> Keys<'a> {
    /// Wraps a mapping.
    pub fn new(map: &'a Value, prefix: impl Into<String>) -> Self {
        Self {
            map,
            prefix: prefix.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn expected(&self, key: &str, what: &'static str, got: &Value) -> KeyError {
        KeyError::WrongType {
            key: format!("{}{key}", self.prefix),
            expected: what,
            got: got.to_string(),
        }
    }

    /// An optional non-negative integer.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, KeyError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.expected(key, "a non-negative integer", v)),
        }
    }

    /// An optional boolean.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, KeyError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.expected(key, "true or false", v)),
        }
    }

    /// An optional string (numbers are accepted and rendered, as PyYAML users expect).
    pub fn string(&self, key: &str) -> Result<Option<String>, KeyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(self.expected(key, "a string", v)),
        }
    }

    /// An optional mapping.
    pub fn mapping(&self, key: &str) -> Result<Option<&'a Value>, KeyError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_object() => Ok(Some(v)),
            Some(v) => Err(self.expected(key, "a mapping", v)),
        }
    }

    /// An optional list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, KeyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.expected(key, "a list of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.expected(key, "a list of strings", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_scalars_sequences_and_aliases() {
        let v =
            load_str("a: 1\nb: 2.5\nc: true\nd: null\ne: [x, 3]\nf: &x {g: h}\ni: *x\n").unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], 2.5);
        assert_eq!(v["c"], true);
        assert!(v["d"].is_null());
        assert_eq!(v["e"][0], "x");
        assert_eq!(v["i"]["g"], "h");
        assert_eq!(load_str("").unwrap(), serde_json::json!({}));
        assert!(load_str("a: [1, 2").is_err());
    }

    /// The simulator reads these files as `trtllm-serve` does, with PyYAML (YAML 1.1): `yes`
    /// and `on` are booleans, `0x10` an integer, merge keys merge.
    #[test]
    fn reads_yaml_as_pyyaml_does() {
        let v = load_str("a: yes\nb: on\nc: 0x10\nbase: &b {x: 1}\nd: {<<: *b, y: 2}\n").unwrap();
        assert_eq!(v["a"], true);
        assert_eq!(v["b"], true);
        assert_eq!(v["c"], 16);
        assert_eq!(v["d"], serde_json::json!({"x": 1, "y": 2}));
    }

    #[test]
    fn keys_report_wrong_types() {
        let v = load_str("n: abc\nb: 3\nl: [1]\n").unwrap();
        let k = Keys::new(&v, "ctx.");
        assert_eq!(k.uint("missing").unwrap(), None);
        assert_eq!(
            k.uint("n").unwrap_err().to_string(),
            "ctx.n: expected a non-negative integer, got \"abc\""
        );
        assert!(k.boolean("b").is_err());
        assert!(k.strings("l").is_err());
        assert_eq!(k.string("b").unwrap().as_deref(), Some("3"));
    }
}
