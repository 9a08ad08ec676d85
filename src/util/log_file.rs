//! The end of a (possibly huge) log file, read from its end: its last lines and its last Rust
//! panic. Failure messages attach them (`crate::results::outcome::LogTail`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Lines of log tail attached to a failure.
pub const TAIL_LINES: usize = 40;

/// The last `n` lines of `path` (reads at most the final 256 KiB). `None` when unreadable.
pub fn tail(path: &Path, n: usize) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let window = len.min(256 * 1024);
    f.seek(SeekFrom::Start(len - window)).ok()?;
    let mut buf = Vec::with_capacity(window as usize);
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    Some(lines[start..].join("\n"))
}

/// How far back from a log's end a panic is looked for.
const PANIC_SEARCH_LINES: usize = 2000;

/// The last Rust panic in the end of `path`: `"<message>" at <location>` (the message is the
/// line after `thread '…' [(id)] panicked at <location>:`). `None` when the tail holds no panic.
pub fn panic_message(path: &Path) -> Option<String> {
    // A backtrace (RUST_BACKTRACE) runs to hundreds of lines after the panic line.
    let text = tail(path, PANIC_SEARCH_LINES)?;
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("thread '") && l.contains(" panicked at "))?;
    let location = lines[at]
        .split_once(" panicked at ")
        .map(|(_, loc)| loc.trim_end_matches(':').trim())
        .unwrap_or_default();
    let message = lines.get(at + 1).map_or("", |m| m.trim());
    Some(format!("{message:?} at {location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        std::fs::write(
            &p,
            "INFO up\nthread 'tokio-runtime-worker' (812) panicked at src/tools/sim/faults.rs:9:13:\n\
             fault injection: panic_after_requests=4 reached\nnote: run with RUST_BACKTRACE=1\n",
        )
        .unwrap();
        assert_eq!(
            panic_message(&p).unwrap(),
            "\"fault injection: panic_after_requests=4 reached\" at src/tools/sim/faults.rs:9:13"
        );
        std::fs::write(&p, "INFO fine\n").unwrap();
        assert_eq!(panic_message(&p), None);
    }

    #[test]
    fn last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        assert_eq!(tail(&p, 2).unwrap(), "line 98\nline 99");
        assert_eq!(tail(&dir.path().join("none"), 2), None);
    }
}
