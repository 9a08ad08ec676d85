//! Reading a whole input file with a size cap: configs and test lists are read into memory
//! whole, so a runaway file (a 1.5 GB "config") must be refused with a clear error instead of
//! being read. Caps are in docs/LIMITS.md.

use std::io::Read;
use std::path::Path;

/// Largest config file accepted (upstream's biggest configs are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Largest test list accepted (upstream's biggest lists are a few hundred KiB).
pub const MAX_TESTLIST_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` as UTF-8 text of at most `cap` bytes. The error is a message without the path
/// (callers add it in their own format).
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read file: {e}"))?;
    if meta.is_dir() {
        return Err("is a directory, expected a file".to_string());
    }
    if meta.len() > cap {
        return Err(too_big(meta.len(), cap));
    }
    // The length can change between stat and read (or be unknown for special files): read at
    // most one byte past the cap to tell.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64, cap));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_big(len: u64, cap: u64) -> String {
    format!("file is {len} bytes or more; the limit is {cap} bytes (docs/LIMITS.md)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_directories_and_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "x: 1\n").unwrap();
        assert_eq!(read_text_capped(&f, 5).unwrap(), "x: 1\n");
        assert!(
            read_text_capped(&f, 4)
                .unwrap_err()
                .contains("limit is 4 bytes")
        );
        assert!(
            read_text_capped(dir.path(), 100)
                .unwrap_err()
                .contains("directory")
        );
        std::fs::write(&f, b"ok\xff").unwrap();
        assert!(read_text_capped(&f, 100).unwrap_err().contains("offset 2"));
        let e = read_text_capped(&dir.path().join("missing"), 100).unwrap_err();
        assert!(e.starts_with("cannot read file"), "{e}");
    }
}
