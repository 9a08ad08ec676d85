//! Reading a whole input file with a size cap: configs and test lists are read into memory
//! whole, so a runaway file (a 1.5 GB "config") must be refused with a clear error instead of
//! being read. Caps are in docs/LIMITS.md.

use std::io::Read;
use std::path::Path;

/// Largest config file accepted (upstream's biggest configs are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Largest test list accepted (upstream's biggest lists are a few hundred KiB).
pub const MAX_TESTLIST_BYTES: u64 = 16 * 1024 * 1024;

/// Why a capped file could not be read. The message does not name the file (callers add it in
/// their own format).
#[derive(Debug, thiserror::Error)]
pub enum ReadCappedError {
    /// Opening, stat-ing or reading failed.
    #[error("cannot read file: {0}")]
    Io(#[source] std::io::Error),
    /// The path is a directory.
    #[error("is a directory, expected a file")]
    Directory,
    /// The file is larger than the cap.
    #[error("file is {len} bytes or more; the limit is {cap} bytes (docs/LIMITS.md)")]
    TooBig {
        /// Bytes seen (at least this many).
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// The content is not UTF-8.
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
}

/// Reads `path` as UTF-8 text of at most `cap` bytes.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, ReadCappedError> {
    let file = std::fs::File::open(path).map_err(ReadCappedError::Io)?;
    let meta = file.metadata().map_err(ReadCappedError::Io)?;
    if meta.is_dir() {
        return Err(ReadCappedError::Directory);
    }
    if meta.len() > cap {
        return Err(ReadCappedError::TooBig {
            len: meta.len(),
            cap,
        });
    }
    // The length can change between stat and read (or be unknown for special files): read at
    // most one byte past the cap to tell.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadCappedError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadCappedError::TooBig {
            len: bytes.len() as u64,
            cap,
        });
    }
    String::from_utf8(bytes).map_err(|e| ReadCappedError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
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
                .to_string()
                .contains("limit is 4 bytes")
        );
        assert!(
            read_text_capped(dir.path(), 100)
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
        std::fs::write(&f, b"ok\xff").unwrap();
        assert_eq!(
            read_text_capped(&f, 100).unwrap_err().to_string(),
            "not UTF-8 text (invalid byte at offset 2)"
        );
        let e = read_text_capped(&dir.path().join("missing"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read file"), "{e}");
    }
}
