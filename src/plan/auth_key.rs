//! The shared `internal_request_auth_key.txt`: 64 hex characters that the router and every
//! worker of a trial must agree on. As upstream does, the first role to need it creates it under
//! an exclusive `flock` on `<file>.lock`; later roles (and re-runs) reuse it.

use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// File name inside the trial's output directory.
pub const AUTH_KEY_FILE: &str = "internal_request_auth_key.txt";

/// Shown by dry-runs when no key exists yet.
pub const AUTH_KEY_PLACEHOLDER: &str = "<64 hex characters, generated at launch>";

fn valid(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Path of the key file in `output_dir`.
pub fn key_path(output_dir: &Path) -> PathBuf {
    output_dir.join(AUTH_KEY_FILE)
}

/// The existing key, if a valid one is there (dry-runs).
pub fn read_key(output_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(key_path(output_dir)).ok()?;
    let key = text.trim();
    valid(key).then(|| key.to_string())
}

/// Reads the key, creating it first when absent or invalid (creates `output_dir` too).
pub fn obtain_key(output_dir: &Path) -> std::io::Result<String> {
    std::fs::create_dir_all(output_dir)?;
    let lock_path = output_dir.join(format!("{AUTH_KEY_FILE}.lock"));
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| std::io::Error::from(errno))?;
    let path = key_path(output_dir);
    if let Ok(mut f) = std::fs::File::open(&path) {
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        if valid(text.trim()) {
            return Ok(text.trim().to_string());
        }
    }
    let bytes: [u8; 32] = rand::random();
    let key = hex::encode(bytes);
    crate::util::fs::write_atomic_with(
        &path,
        format!("{key}\n").as_bytes(),
        crate::util::fs::Durability::Synced,
    )?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("trial");
        assert_eq!(read_key(&out), None);
        let a = obtain_key(&out).unwrap();
        assert!(valid(&a));
        assert_eq!(obtain_key(&out).unwrap(), a);
        assert_eq!(read_key(&out), Some(a));
        std::fs::write(key_path(&out), "garbage\n").unwrap();
        assert_ne!(obtain_key(&out).unwrap(), "garbage");
    }
}
