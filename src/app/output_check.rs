//! Checking where results go before the first trial starts: a `PERF_DB` that cannot be opened
//! as a database or a `PERF_JUNIT` that is a folder would otherwise be found only after every
//! trial ran, and the measurements of the whole run would have nowhere to go.
//!
//! The checks create nothing: an existing database is opened read-only, a file that does not
//! exist yet needs its nearest existing ancestor to be a writable folder.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

fn shown(path: &Path) -> String {
    crate::util::terminal::escape_controls(&path.to_string_lossy()).into_owned()
}

/// A file that will be created later at `path`: it must not be a folder, and its nearest
/// existing ancestor must be a folder this process may write to.
fn check_creatable(what: &str, path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path);
    if let Ok(m) = &meta {
        if m.is_dir() {
            return Err(format!(
                "{what}={}: is a folder, expected a file",
                shown(path)
            ));
        }
        if !m.is_file() {
            return Err(format!("{what}={}: is not a regular file", shown(path)));
        }
    }
    let folder = if meta.is_ok() {
        path.parent()
    } else {
        path.ancestors().skip(1).find(|a| a.exists())
    }
    .filter(|p| !p.as_os_str().is_empty())
    .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(format!(
            "{what}={}: {} is not a folder",
            shown(path),
            shown(folder)
        ));
    }
    nix::unistd::access(folder, nix::unistd::AccessFlags::W_OK).map_err(|e| {
        format!(
            "{what}={}: cannot write in {}: {e}",
            shown(path),
            shown(folder)
        )
    })
}

/// The results database: creatable, and when it exists, an SQLite database. A database that
/// is busy (another run writing) is not this check's concern.
pub fn check_db(path: &Path) -> Result<(), String> {
    check_creatable("PERF_DB", path)?;
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("PERF_DB={}: cannot open: {e}", shown(path)))?;
    match conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "PERF_DB={}: not a usable results database: {e}",
            shown(path)
        )),
    }
}

/// The JUnit report's path: creatable.
pub fn check_junit(path: &Path) -> Result<(), String> {
    check_creatable("PERF_JUNIT", path)
}

/// `PERF_JUNIT`, when set: where the harness writes its JUnit report.
pub fn junit_path_from_env(env: &dyn crate::app::settings::EnvSource) -> Option<PathBuf> {
    env.var("PERF_JUNIT")
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
}

/// Both checks: the results database at `db_path` and `PERF_JUNIT` when `env` sets it.
pub fn check_outputs(
    db_path: &Path,
    env: &dyn crate::app::settings::EnvSource,
) -> Result<(), String> {
    check_db(db_path)?;
    match junit_path_from_env(env) {
        Some(junit) => check_junit(&junit),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_garbage_and_missing_parents() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_junit(&d.join("new/deeper/junit.xml")).is_ok());
        let e = check_junit(d).unwrap_err();
        assert!(
            e.contains("PERF_JUNIT=") && e.contains("is a folder"),
            "{e}"
        );
        std::fs::write(d.join("file"), "").unwrap();
        let e = check_junit(&d.join("file/junit.xml")).unwrap_err();
        assert!(e.contains("is not a folder"), "{e}");

        assert!(check_db(&d.join("perf.db")).is_ok());
        let e = check_db(d).unwrap_err();
        assert!(e.contains("PERF_DB=") && e.contains("is a folder"), "{e}");
        std::fs::write(d.join("garbage.db"), vec![b'x'; 4096]).unwrap();
        let e = check_db(&d.join("garbage.db")).unwrap_err();
        assert!(e.contains("not a usable results database"), "{e}");
        let store = crate::results::store::Store::open(
            &d.join("real.db"),
            crate::results::store::DEFAULT_LOCK_WAIT,
        )
        .unwrap();
        drop(store);
        assert!(check_db(&d.join("real.db")).is_ok());
    }
}
