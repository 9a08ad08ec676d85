//! Config errors: every problem names the file, the key path, the line and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// Dotted key path, e.g. `benchmark.concurrency_list` (empty for the whole document).
    pub key_path: String,
    /// 1-based line in the file (0 when unknown).
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// All problems of one config file (serializable: `perfsanity list` caches it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The problems, in document order (never empty).
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// An error with a single problem.
    pub fn single(file: &Path, key_path: &str, line: usize, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Problem {
                key_path: key_path.to_string(),
                line,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if p.line > 0 {
                write!(f, ":{}", p.line)?;
            }
            if p.key_path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": `{}`: {}", p.key_path, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while a document is read, so one run reports all of them.
#[derive(Debug, Default)]
pub struct Problems {
    items: Vec<Problem>,
}

impl Problems {
    /// Records a problem.
    pub fn push(&mut self, key_path: &str, line: usize, message: impl Into<String>) {
        self.items.push(Problem {
            key_path: key_path.to_string(),
            line,
            message: message.into(),
        });
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Turns the collected problems into an error for `file` (sorted by line), or `Ok`.
    pub fn into_result(mut self, file: &Path) -> Result<(), ConfigError> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.items.sort_by_key(|p| p.line);
        Err(ConfigError {
            file: file.to_path_buf(),
            problems: self.items,
        })
    }
}

/// Parses YAML text, turning a syntax error into a [`ConfigError`] for `file`.
pub fn load_yaml(text: &str, file: &Path) -> Result<crate::util::yaml::Node, ConfigError> {
    crate::util::yaml::load_str(text).map_err(|e| {
        ConfigError::single(
            file,
            "",
            e.line,
            format!("{} (column {})", e.message, e.col),
        )
    })
}
