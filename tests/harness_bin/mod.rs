//! The perf harness binary (`tests/perf.rs`) for tests that run it as a process: built with the
//! test's own profile through cargo's JSON messages (a no-op build when `cargo test` already
//! built it), so `cargo test --release` never compiles a second, debug copy of the crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of the perf harness executable.
pub fn perf_harness() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut args = vec!["build", "--test", "perf", "--message-format=json"];
        if !cfg!(debug_assertions) {
            args.push("--release");
        }
        let out = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["target"]["name"] == "perf" && m["executable"].is_string())
            .map(|m| PathBuf::from(m["executable"].as_str().unwrap_or_default()))
            .next_back()
            .expect("cargo reported the perf executable")
    })
}

/// The perf harness binary, in a clean environment (`support::cmd`), run from the crate root.
pub fn harness_cmd() -> Command {
    let mut cmd = crate::support::cmd::clean_cmd(perf_harness());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}
