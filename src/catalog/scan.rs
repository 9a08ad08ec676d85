//! The catalog: config folders scanned into a sorted list of config files, one per stem.
//!
//! Default folders are `test_configs/disagg/perf` and `test_configs/wideep/perf` under the project
//! root; `PERF_CONFIG_DIRS=dir1:dir2` replaces them. A stem found in two folders is a catalog
//! problem naming both files (both trials of that stem fail with it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config folders used when `PERF_CONFIG_DIRS` is not set, relative to the project root.
pub const DEFAULT_CONFIG_DIRS: &[&str] = &["test_configs/disagg/perf", "test_configs/wideep/perf"];

/// One config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// File name without `.yaml` / `.yml`.
    pub stem: String,
    /// Full path.
    pub path: PathBuf,
    /// Family, from the folder layout (`disagg`, `wideep`, or the folder name).
    pub family: String,
    /// Set when the same stem exists in another folder too.
    pub duplicate: Option<PathBuf>,
    /// Set when the file is there but cannot be used (a dangling symlink, not a regular file, a
    /// name that is not UTF-8 or not a plain file name): its trials fail with this message.
    pub unusable: Option<String>,
}

/// All config files of the configured folders, sorted by stem.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The folders scanned.
    pub dirs: Vec<PathBuf>,
    /// Config files, sorted by stem (a duplicated stem appears once, with `duplicate` set).
    pub configs: Vec<ConfigFile>,
}

/// The folders could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A configured folder does not exist or cannot be read.
    #[error("config folder {}: {message}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No config files at all.
    #[error("no *.yaml configs found in {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))]
    Empty {
        /// The folders scanned.
        dirs: Vec<PathBuf>,
    },
}

impl Catalog {
    /// Scans `dirs` (non-recursive; `*.yaml` and `*.yml`).
    pub fn scan(dirs: &[PathBuf]) -> Result<Self, CatalogError> {
        let mut by_stem: BTreeMap<String, ConfigFile> = BTreeMap::new();
        for dir in dirs {
            let read = std::fs::read_dir(dir).map_err(|e| CatalogError::Folder {
                dir: dir.clone(),
                message: format!("cannot read: {e} (set PERF_CONFIG_DIRS to override)"),
            })?;
            let mut files = Vec::new();
            for entry in read {
                let entry = entry.map_err(|e| CatalogError::Folder {
                    dir: dir.clone(),
                    message: format!("cannot list: {e}"),
                })?;
                if let Some(found) = yaml_entry(&entry.path()) {
                    files.push(found);
                }
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
            let family = family_of(dir);
            for found in files {
                let FoundFile {
                    stem,
                    path,
                    unusable,
                } = found;
                match by_stem.get_mut(&stem) {
                    Some(existing) => {
                        if existing.duplicate.is_none() {
                            existing.duplicate = Some(path);
                        }
                    }
                    None => {
                        by_stem.insert(
                            stem.clone(),
                            ConfigFile {
                                stem,
                                path,
                                family: family.clone(),
                                duplicate: None,
                                unusable,
                            },
                        );
                    }
                }
            }
        }
        if by_stem.is_empty() {
            return Err(CatalogError::Empty {
                dirs: dirs.to_vec(),
            });
        }
        Ok(Catalog {
            dirs: dirs.to_vec(),
            configs: by_stem.into_values().collect(),
        })
    }

    /// All stems.
    pub fn stems(&self) -> Vec<&str> {
        self.configs.iter().map(|c| c.stem.as_str()).collect()
    }

    /// The config with `stem`.
    pub fn get(&self, stem: &str) -> Option<&ConfigFile> {
        self.configs
            .binary_search_by(|c| c.stem.as_str().cmp(stem))
            .ok()
            .map(|i| &self.configs[i])
    }
}

/// A directory entry named like a config (`*.yaml` / `*.yml`), usable or not.
struct FoundFile {
    stem: String,
    path: PathBuf,
    unusable: Option<String>,
}

/// The config file at `path` when its name ends in `.yaml` / `.yml` (other names are not
/// configs and are skipped). Anything that keeps a config-named entry from being read — a
/// dangling symlink, a folder or FIFO, a name that is not UTF-8 or not a plain path component —
/// is kept as an unusable entry, so it fails loudly instead of vanishing from the catalog.
fn yaml_entry(path: &Path) -> Option<FoundFile> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))?
        .to_string();
    let shown = crate::util::terminal::escape_controls(&path.to_string_lossy()).into_owned();
    let unusable = if path.file_name()?.to_str().is_none() {
        Some(format!("{shown}: the file name is not UTF-8"))
    } else if let Err(e) = crate::util::path_component::check_component("config stem", &stem) {
        Some(format!("{shown}: {e}"))
    } else {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => None,
            Ok(m) if m.is_dir() => Some(format!("{shown}: is a folder, expected a config file")),
            Ok(_) => Some(format!("{shown}: is not a regular file")),
            Err(e) if path.symlink_metadata().is_ok() => Some(format!(
                "{shown}: dangling symlink (its target cannot be read: {e})"
            )),
            Err(e) => Some(format!("{shown}: cannot read: {e}")),
        }
    };
    Some(FoundFile {
        stem,
        path: path.to_path_buf(),
        unusable,
    })
}

impl ConfigFile {
    /// Why this config's trials cannot run (an unusable file or a duplicated stem), if anything.
    pub fn duplicate_error(&self) -> Option<String> {
        if let Some(problem) = &self.unusable {
            return Some(problem.clone());
        }
        self.duplicate.as_ref().map(|other| {
            format!(
                "config stem {:?} exists in two folders: {} and {}; rename one of them",
                self.stem,
                self.path.display(),
                other.display()
            )
        })
    }
}

fn family_of(dir: &Path) -> String {
    // test_configs/<family>/perf → <family>; otherwise the folder's own name.
    let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    if name == "perf"
        && let Some(parent) = dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
    {
        return parent.to_string();
    }
    name.to_string()
}

/// The config folders: `PERF_CONFIG_DIRS` (colon-separated) or the defaults under `root`.
pub fn config_dirs(root: &Path, perf_config_dirs: Option<&str>) -> Vec<PathBuf> {
    match perf_config_dirs.filter(|s| !s.trim().is_empty()) {
        Some(list) => list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let p = PathBuf::from(s);
                if p.is_absolute() { p } else { root.join(p) }
            })
            .collect(),
        None => DEFAULT_CONFIG_DIRS.iter().map(|d| root.join(d)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_sorted_and_detects_duplicates() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("test_configs/disagg/perf");
        let b = root.path().join("test_configs/wideep/perf");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        for (dir, name) in [
            (&a, "z-1.yaml"),
            (&a, "a_2.yaml"),
            (&b, "z-1.yaml"),
            (&b, "m.yml"),
        ] {
            std::fs::write(dir.join(name), "x: 1\n").unwrap();
        }
        std::fs::write(a.join("notes.txt"), "").unwrap();
        let cat = Catalog::scan(&config_dirs(root.path(), None)).unwrap();
        assert_eq!(cat.stems(), ["a_2", "m", "z-1"]);
        assert!(cat.get("a_2").unwrap().duplicate_error().is_none());
        assert_eq!(cat.get("m").unwrap().family, "wideep");
        let dup = cat.get("z-1").unwrap().duplicate_error().unwrap();
        assert!(dup.contains("disagg/perf/z-1.yaml") && dup.contains("wideep/perf/z-1.yaml"));
        assert!(matches!(
            Catalog::scan(&[root.path().join("nope")]),
            Err(CatalogError::Folder { .. })
        ));
    }

    #[test]
    fn unusable_entries_stay_in_the_catalog_with_their_reason() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("good.yaml"), "x: 1\n").unwrap();
        std::os::unix::fs::symlink(d.join("missing.yaml"), d.join("dangling.yaml")).unwrap();
        std::fs::create_dir(d.join("folder.yml")).unwrap();
        nix::unistd::mkfifo(&d.join("pipe.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::write(d.join("esc\u{1b}[2J.yaml"), "x: 1\n").unwrap();
        let raw = std::ffi::OsStr::from_bytes(b"bad\xff.yaml");
        std::fs::write(d.join(raw), "x: 1\n").unwrap();
        let cat = Catalog::scan(&[d.to_path_buf()]).unwrap();
        assert_eq!(cat.configs.len(), 6, "{:?}", cat.stems());
        let why = |stem: &str| cat.get(stem).unwrap().duplicate_error().unwrap_or_default();
        assert_eq!(why("good"), "");
        assert!(
            why("dangling").contains("dangling symlink"),
            "{}",
            why("dangling")
        );
        assert!(why("folder").contains("is a folder"), "{}", why("folder"));
        assert!(
            why("pipe").contains("not a regular file"),
            "{}",
            why("pipe")
        );
        let esc = why("esc\u{1b}[2J");
        assert!(
            esc.contains("control character") && !esc.contains('\u{1b}'),
            "{esc}"
        );
        assert!(
            why("bad\u{fffd}").contains("not UTF-8"),
            "{}",
            why("bad\u{fffd}")
        );
    }
}
