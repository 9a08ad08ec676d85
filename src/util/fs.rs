//! File-system helpers shared by the stages.

use std::path::Path;

/// Writes `bytes` to a temp sibling and renames it over `path`, so a reader sees the old file or
/// the whole new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
