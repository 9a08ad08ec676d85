//! Log lines in TensorRT-LLM's shape (`[MM/DD/YYYY-HH:MM:SS] [TRT-LLM] [I] …`) on stdout/stderr.
//!
//! The runner redirects both streams into the role's log file. Messages never contain upstream's
//! error keywords (`RuntimeError`, `ValueError`, `OSError`, …) in normal operation: the harness
//! fails readiness on any line that does.

use std::io::Write;

/// Severity letter as TensorRT-LLM prints it.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    /// `[I]`
    Info,
    /// `[W]`
    Warning,
    /// `[E]`
    Error,
}

fn timestamp() -> String {
    jiff::ZonedDateTime::now()
        .strftime("%m/%d/%Y-%H:%M:%S")
        .to_string()
}

/// Current local time as `YYYY-MM-DD HH:MM:SS` (the iteration log's `timestamp =` field).
pub fn iso_timestamp() -> String {
    jiff::ZonedDateTime::now()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Writes one line; errors (closed stdout) are ignored: logging must never kill a server.
pub fn line(level: Level, message: &str) {
    let tag = match level {
        Level::Info => "I",
        Level::Warning => "W",
        Level::Error => "E",
    };
    let text = format!("[{}] [TRT-LLM] [{tag}] {message}\n", timestamp());
    let _ = match level {
        Level::Info => std::io::stdout().lock().write_all(text.as_bytes()),
        Level::Warning | Level::Error => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Writes a pre-formatted line to stdout with the timestamp prefix only.
pub fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[{}] {text}", timestamp());
}

/// Info line.
pub fn info(message: &str) {
    line(Level::Info, message);
}

/// Warning line.
pub fn warn(message: &str) {
    line(Level::Warning, message);
}

/// Error line.
pub fn error(message: &str) {
    line(Level::Error, message);
}
