//! The perf harness: one trial per config (see `perfsanity::harness`).

fn main() -> std::process::ExitCode {
    perfsanity::harness::main(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_perfsanity"))
}
