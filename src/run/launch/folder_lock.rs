//! One run per trial folder: a run holds an exclusive `flock` on `<trial dir>/.perfsanity.lock`
//! (role mode: `.perfsanity.<ROLE>.lock`, since a trial's roles share the folder) for as long as
//! it runs the trial, and writes who it is into the file. A second run on the same
//! `PERF_OUTPUT_DIR` and trial fails at once naming the holder, instead of truncating the
//! first one's logs, deleting its address files or pointing its router at the other's servers.
//! The kernel drops the lock when the holder dies, however it dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::plan::Role;

/// A held folder lock (released on drop).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

/// Why the folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error(
        "{dir} is in use by another run ({holder}); lock file {file}. Wait for it, or give this \
         run its own PERF_OUTPUT_DIR"
    )]
    Held {
        /// The trial folder.
        dir: String,
        /// `pid N on host H since T`, as the holder wrote it.
        holder: String,
        /// The lock file.
        file: String,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot lock {file}: {source}")]
    Io {
        /// The lock file.
        file: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The lock file of `dir` for a whole trial (`role` = `None`) or one role of it.
pub fn lock_path(dir: &Path, role: Option<Role>) -> PathBuf {
    match role {
        None => dir.join(".perfsanity.lock"),
        Some(r) => dir.join(format!(".perfsanity.{r}.lock")),
    }
}

/// Takes the lock of `dir` (creating the folder), or says who holds it. Never waits.
pub fn lock_folder(dir: &Path, role: Option<Role>) -> Result<FolderLock, LockError> {
    let path = lock_path(dir, role);
    let io = |source: std::io::Error| LockError::Io {
        file: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                dir: dir.display().to_string(),
                holder: if holder.is_empty() {
                    "it has not written its name yet".to_string()
                } else {
                    holder.to_string()
                },
                file: path.display().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(holder_line().as_bytes()).map_err(io)?;
    Ok(FolderLock { _file: file })
}

/// `pid N on host H since <RFC 3339 time>`.
fn holder_line() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "?".to_string());
    format!(
        "pid {} on host {host} since {}\n",
        std::process::id(),
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let trial = dir.path().join("disagg-x");
        let first = lock_folder(&trial, None).unwrap();
        let e = lock_folder(&trial, None).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {} on host ", std::process::id())) && e.contains(" since "),
            "{e}"
        );
        assert!(e.contains(".perfsanity.lock"), "{e}");
        // Roles of one trial lock separately.
        let gen0 = lock_folder(&trial, Some(Role::Gen(0))).unwrap();
        assert!(lock_folder(&trial, Some(Role::Gen(0))).is_err());
        drop((first, gen0));
        lock_folder(&trial, None).unwrap();
    }
}
