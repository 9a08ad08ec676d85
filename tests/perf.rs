//! The perf harness: one trial per config (see `perfsanity::app::harness`).

fn main() -> std::process::ExitCode {
    perfsanity::app::harness::main(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_perfsanity"))
}
