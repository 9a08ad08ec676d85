//! The one way a test starts our binaries: a cleared environment, so nothing from the
//! developer's shell (a `PERF_TRIAL_TIMEOUT_S`, a `PERF_TESTLIST`, a gateway URL) leaks into a
//! test, plus only what any process needs to run. Each test then adds the knobs it is about.

use std::process::Command;

/// Variables passed through from the test's own environment when set: what a process needs to
/// find programs, a home and a temp dir, and to print a backtrace.
const PASS_THROUGH: [&str; 7] = [
    "PATH",
    "HOME",
    "USER",
    "TMPDIR",
    "LANG",
    "RUST_BACKTRACE",
    "LLVM_PROFILE_FILE",
];

/// `program` with a cleared environment plus [`PASS_THROUGH`].
pub fn clean_cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for var in PASS_THROUGH {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// The `perfsanity` binary, in a clean environment, run from the crate root.
pub fn perfsanity_cmd() -> Command {
    let mut cmd = clean_cmd(env!("CARGO_BIN_EXE_perfsanity"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// `perfsanity bench` with the builtin tokenizer and a model path that does not exist (the
/// client needs neither), in a clean environment; each test adds its dataset and load flags.
pub fn bench_cmd() -> Command {
    let mut cmd = perfsanity_cmd();
    cmd.args([
        "bench",
        "--tokenizer-fallback",
        "builtin",
        "--model",
        "/nonexistent/m",
    ]);
    cmd
}
