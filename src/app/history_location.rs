//! Where the project and its result history are: the project root is the nearest ancestor
//! holding `test_configs/` (as cargo walks up to `Cargo.toml`) or `PERF_PROJECT_ROOT`; the
//! history's default home is `<root>/perf-history/` (see [`crate::results::context`]), and a
//! history left at the old place under `target/` is moved there once.

use std::path::{Path, PathBuf};

use crate::app::settings::{EnvSource, find_project_root};
use crate::results::context::{default_db_path, legacy_db_path};

/// `PERF_PROJECT_ROOT`, else the nearest ancestor of `cwd` with `test_configs/`, else `cwd`.
pub fn project_root(env: &dyn EnvSource, cwd: &Path) -> PathBuf {
    match env
        .var("PERF_PROJECT_ROOT")
        .filter(|v| !v.trim().is_empty())
    {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { cwd.join(p) }
        }
        None => find_project_root(cwd),
    }
}

/// A hint when `root` has no `test_configs/` and no `PERF_CONFIG_DIRS` says where configs are.
pub fn root_hint(env: &dyn EnvSource, root: &Path) -> Option<String> {
    if root.join("test_configs").is_dir()
        || env
            .var("PERF_CONFIG_DIRS")
            .is_some_and(|v| !v.trim().is_empty())
    {
        return None;
    }
    Some(format!(
        "note: no test_configs/ in {} or any folder above it; run perfsanity inside the project, \
         or set PERF_PROJECT_ROOT=<project> (or PERF_CONFIG_DIRS)",
        root.display()
    ))
}

/// Moves a history database from `<target>/perf-results.sqlite` (and its `-wal`/`-shm`
/// companions) to `<root>/perf-history/` when the new place has none yet and `PERF_DB` is
/// unset. Returns what it did, for stderr.
pub fn migrate_legacy_db(
    env: &dyn EnvSource,
    project_root: &Path,
    target_dir: &Path,
) -> Result<Option<String>, String> {
    if env.var("PERF_DB").is_some_and(|v| !v.trim().is_empty()) {
        return Ok(None);
    }
    let old = legacy_db_path(target_dir);
    let new = default_db_path(project_root);
    if !old.is_file() || new.exists() {
        return Ok(None);
    }
    let dir = new.parent().expect("the default path has a folder");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", old.display()));
        let to = PathBuf::from(format!("{}{suffix}", new.display()));
        if from.is_file() {
            move_file(&from, &to)?;
        }
    }
    Ok(Some(format!(
        "note: moved the result history from {} to {} (cargo clean no longer deletes it)",
        old.display(),
        new.display()
    )))
}

fn move_file(from: &Path, to: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot move {} to {}: {e}", from.display(), to.display());
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map_err(fail)?;
    std::fs::remove_file(from).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_history_moves_out_of_target_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let target = root.join("target");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("perf-results.sqlite"), b"db").unwrap();
        let env: [(&str, &str); 0] = [];
        let note = migrate_legacy_db(&env, root, &target).unwrap().unwrap();
        assert!(note.contains("perf-history"), "{note}");
        assert_eq!(
            std::fs::read(root.join("perf-history/perf-results.sqlite")).unwrap(),
            b"db"
        );
        assert!(!target.join("perf-results.sqlite").exists());
        assert_eq!(migrate_legacy_db(&env, root, &target).unwrap(), None);
        // With PERF_DB set nothing moves.
        std::fs::write(target.join("perf-results.sqlite"), b"x").unwrap();
        let env = [("PERF_DB", "/elsewhere.sqlite")];
        assert_eq!(migrate_legacy_db(&env, root, &target).unwrap(), None);
    }

    #[test]
    fn the_root_is_found_by_walking_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("test_configs")).unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let env: [(&str, &str); 0] = [];
        assert_eq!(project_root(&env, &deep), dir.path());
        assert_eq!(root_hint(&env, dir.path()), None);
        let env = [("PERF_PROJECT_ROOT", "/x/y")];
        assert_eq!(project_root(&env, &deep), Path::new("/x/y"));
        let env: [(&str, &str); 0] = [];
        assert!(
            root_hint(&env, &deep)
                .unwrap()
                .contains("PERF_PROJECT_ROOT")
        );
    }
}
