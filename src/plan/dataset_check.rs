//! Checking a plan's dataset file before anything starts: a folder, an empty file or a file
//! that is not `trtllm_custom` JSON Lines is reported by `perfsanity check` and fails the trial
//! before the first worker is launched, instead of failing the client minutes later.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DatasetPlan;
use crate::util::custom_dataset::{CustomDatasetError, parse_custom};

/// How much of a dataset file is read and parsed up front (whole lines within this many bytes;
/// the client parses the rest when it loads the file).
pub const DATASET_PREFLIGHT_BYTES: u64 = 1024 * 1024;

/// Why a plan's dataset cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetCheckError {
    /// The file the config names is not a usable `trtllm_custom` file.
    #[error("dataset file ({key}) {source}")]
    File {
        /// The config key that names it.
        key: String,
        /// What is wrong with it.
        source: DatasetFileError,
    },
    /// A folder sits where the simulator would generate its stand-in.
    #[error(
        "dataset file ({key}): the generated stand-in's path {} is a folder",
        shown(path)
    )]
    StandInIsFolder {
        /// The config key that names the dataset.
        key: String,
        /// The stand-in's path.
        path: PathBuf,
    },
}

/// Why a file is not `trtllm_custom` JSON Lines (each message starts with the path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetFileError {
    /// It cannot be looked at (missing, no permission).
    #[error("{}: {message}", shown(path))]
    Stat {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// It is a folder.
    #[error("{}: is a folder, expected a JSONL file", shown(path))]
    Folder {
        /// The path.
        path: PathBuf,
    },
    /// It is a device, socket or pipe.
    #[error("{}: is not a regular file", shown(path))]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// It cannot be read.
    #[error("{}: cannot read: {message}", shown(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// A line is not UTF-8.
    #[error("{}:{line}: not UTF-8 text", shown(path))]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A line is not a `trtllm_custom` request.
    #[error(transparent)]
    Line(#[from] CustomDatasetError),
    /// It holds no request.
    #[error(
        "{}: holds no requests; expected trtllm_custom JSON Lines",
        shown(path)
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Checks the dataset a plan names: an existing file must be a `trtllm_custom` JSONL file with
/// at least one request; a generated stand-in's path must not be taken by a folder.
pub fn check_dataset(dataset: &DatasetPlan) -> Result<(), DatasetCheckError> {
    match dataset {
        DatasetPlan::File { path, key } => {
            check_jsonl_file(path).map_err(|source| DatasetCheckError::File {
                key: key.clone(),
                source,
            })
        }
        DatasetPlan::Generated { path, key, .. } if path.is_dir() => {
            Err(DatasetCheckError::StandInIsFolder {
                key: key.clone(),
                path: path.clone(),
            })
        }
        _ => Ok(()),
    }
}

fn shown(path: &Path) -> String {
    crate::util::terminal::escape_controls(&path.to_string_lossy()).into_owned()
}

/// `path` is a regular file whose leading lines parse as `trtllm_custom` requests.
pub fn check_jsonl_file(path: &Path) -> Result<(), DatasetFileError> {
    let path_buf = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|e| DatasetFileError::Stat {
        path: path_buf(),
        message: e.to_string(),
    })?;
    if meta.is_dir() {
        return Err(DatasetFileError::Folder { path: path_buf() });
    }
    if !meta.is_file() {
        return Err(DatasetFileError::NotAFile { path: path_buf() });
    }
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(DATASET_PREFLIGHT_BYTES).read_to_end(&mut head))
        .map_err(|e| DatasetFileError::Read {
            path: path_buf(),
            message: e.to_string(),
        })?;
    // Only whole lines: a long file is cut at the last newline inside the window.
    if meta.len() > head.len() as u64 {
        let end = head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        head.truncate(end);
    }
    let text = match std::str::from_utf8(&head) {
        Ok(t) => t,
        Err(e) => {
            let line = head[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            return Err(DatasetFileError::NotUtf8 {
                path: path_buf(),
                line,
            });
        }
    };
    let entries = parse_custom(path, text)?;
    if entries.is_empty() && meta.len() <= DATASET_PREFLIGHT_BYTES {
        return Err(DatasetFileError::Empty { path: path_buf() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}], "max_tokens": 8}}"#;

    #[test]
    fn folders_empty_files_and_non_jsonl_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        assert!(check_jsonl_file(&file("ok.jsonl", &format!("{LINE}\n\n{LINE}\n"))).is_ok());
        let e = check_jsonl_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_jsonl_file(&file("empty.jsonl", "\n\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no requests"), "{e}");
        let e = check_jsonl_file(&file("csv.jsonl", &format!("{LINE}\na,b,c\n")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("csv.jsonl") && e.contains('2'), "{e}");
        let e = check_jsonl_file(&dir.path().join("missing.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.jsonl"), "{e}");
        // A long file is checked on its leading whole lines only.
        let long: String = std::iter::repeat_n(format!("{LINE}\n"), 20_000).collect();
        assert!(check_jsonl_file(&file("long.jsonl", &format!("{long}not json"))).is_ok());
        let plan = DatasetPlan::File {
            path: dir.path().to_path_buf(),
            key: "benchmark.dataset_file".to_string(),
        };
        let e = check_dataset(&plan).unwrap_err().to_string();
        assert!(
            e.starts_with("dataset file (benchmark.dataset_file)"),
            "{e}"
        );
    }
}
