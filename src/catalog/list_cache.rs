//! What `perfsanity list` needs from each config (mode, client, topology shape, or the parse
//! error), cached between runs like a build system caches its work: an entry is reused only
//! while the file's size, modification time and inode are unchanged and the cache was written
//! by this very `perfsanity` executable. Parsing YAML is most of `list`'s cost; with the cache a
//! second listing of an unchanged tree stats files instead of parsing them.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::shape::Shape;
use crate::config::{BenchmarkMode, ConfigError, PerfConfig};

/// A config as `list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// `benchmark.mode` spelled as in YAML.
    pub mode: String,
    /// NV SA client (`use_nv_sa_benchmark`, absent = true).
    pub nv_sa: bool,
    /// What sizing needs.
    pub shape: Shape,
}

impl ConfigSummary {
    /// The summary of a parsed config.
    pub fn of(config: &PerfConfig) -> Self {
        ConfigSummary {
            mode: config.benchmark.mode.as_str().to_string(),
            nv_sa: config.benchmark.use_nv_sa_benchmark.unwrap_or(true),
            shape: Shape::of(config),
        }
    }

    /// The YAML's mode.
    pub fn benchmark_mode(&self) -> BenchmarkMode {
        BenchmarkMode::parse(&self.mode).unwrap_or(BenchmarkMode::E2e)
    }
}

/// A summary, or why the config is invalid. The error is cached as it is (file and problems);
/// a cache written by another executable, whatever its format, is never read back (see
/// [`summaries`]), so this type may change without a format version.
pub type Summary = Result<ConfigSummary, ConfigError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        size: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        inode: m.ino(),
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    /// Identity of the executable that wrote it (path and stamp).
    writer: String,
    entries: HashMap<PathBuf, (Stamp, Summary)>,
}

fn writer_identity() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| stamp(&exe).map(|s| format!("{} {s:?}", exe.display())))
        .unwrap_or_default()
}

/// Summaries of `paths` (in order), parsing only files the cache does not know in their
/// current state; `cache` = where the cache lives (`None` = parse everything, keep nothing).
pub fn summaries(
    paths: &[PathBuf],
    cache: Option<&Path>,
    parse: impl Fn(&[PathBuf]) -> Vec<Summary>,
) -> Vec<Summary> {
    let Some(cache) = cache else {
        return parse(paths);
    };
    let writer = writer_identity();
    let mut file: CacheFile = std::fs::read(cache)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|f: &CacheFile| !writer.is_empty() && f.writer == writer)
        .unwrap_or_default();
    let stamps: Vec<Option<Stamp>> = paths.iter().map(|p| stamp(p)).collect();
    let misses: Vec<PathBuf> = paths
        .iter()
        .zip(&stamps)
        .filter(|(p, s)| {
            s.is_none()
                || file
                    .entries
                    .get(*p)
                    .is_none_or(|(cached, _)| Some(cached) != s.as_ref())
        })
        .map(|(p, _)| p.clone())
        .collect();
    let parsed = parse(&misses);
    let mut fresh: HashMap<PathBuf, Summary> = misses.into_iter().zip(parsed).collect();
    let changed = !fresh.is_empty();
    let out: Vec<Summary> = paths
        .iter()
        .zip(&stamps)
        .map(|(p, s)| match fresh.remove(p) {
            Some(summary) => {
                if let Some(s) = s {
                    file.entries.insert(p.clone(), (s.clone(), summary.clone()));
                }
                summary
            }
            None => file.entries[p].1.clone(),
        })
        .collect();
    if changed {
        file.writer = writer;
        // Best effort: a cache that cannot be written only costs the next run a re-parse.
        if let Some(dir) = cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(bytes) = serde_json::to_vec(&file) {
            let _ = crate::util::fs::write_atomic(cache, &bytes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn reparses_only_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "2").unwrap();
        let cache = dir.path().join("cache/list.json");
        let parsed = Cell::new(0);
        let parse = |ps: &[PathBuf]| {
            parsed.set(parsed.get() + ps.len());
            ps.iter()
                .map(|p| {
                    Err(ConfigError::single(
                        p,
                        "",
                        0,
                        std::fs::read_to_string(p).unwrap(),
                    ))
                })
                .collect()
        };
        let paths = vec![a.clone(), b.clone()];
        let first = summaries(&paths, Some(&cache), parse);
        assert_eq!(parsed.get(), 2);
        assert_eq!(summaries(&paths, Some(&cache), parse), first);
        assert_eq!(parsed.get(), 2, "unchanged files come from the cache");
        std::fs::write(&b, "22").unwrap();
        let third = summaries(&paths, Some(&cache), parse);
        assert_eq!(parsed.get(), 3, "only the changed file is parsed again");
        assert_eq!(third[1], Err(ConfigError::single(&b, "", 0, "22")));
        assert_eq!(
            third[1].as_ref().unwrap_err().to_string(),
            format!("{}: 22", b.display())
        );
        assert_eq!(summaries(&paths, None, parse).len(), 2);
        assert_eq!(parsed.get(), 5, "no cache: everything is parsed");
    }
}
