//! Atomic file writes, one helper for the whole crate: the bytes go to a temporary sibling
//! (`tempfile`, same folder so the rename stays on one file system) which is then persisted
//! over the target, so a reader sees the old file or the new one, never half of one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Whether the data reaches the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Rename only (plan files, caches, reports).
    Rename,
    /// `fsync` the file, then rename (files other processes wait for: addresses, keys).
    Synced,
}

/// Writes `bytes` to `path` atomically, with the permissions `std::fs::write` would give
/// (`0o666` less the umask). The parent folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Durability::Rename)
}

/// [`write_atomic`] with a choice of durability.
pub fn write_atomic_with(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    if durability == Durability::Synced {
        file.as_file().sync_all()?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_with_ordinary_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic_with(&p, b"two", Durability::Synced).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let reference = dir.path().join("b.txt");
        std::fs::write(&reference, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&reference), "as std::fs::write would");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left behind");
        assert!(write_atomic(&dir.path().join("no/such/dir/x"), b"").is_err());
    }
}
