//! Fault injection at run time: the counters behind `sim.faults.<ROLE>`.
//!
//! `exit_at_start` and `never_ready` are read where the process starts and answers `/health`;
//! `stall_after_tokens` lives in the engine; this module counts requests for `http_500_every`,
//! `exit_after_requests` and `panic_after_requests`, starts the `spawn_descendants` chain, and
//! holds the panic hook that turns any panic into the process's failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::FaultConfig;
use super::log;

/// Exit code of a simulated crash (`exit_after_requests`).
pub const CRASH_EXIT_CODE: i32 = 1;
/// Exit code after a panic (Rust's own for a panicking `main`).
pub const PANIC_EXIT_CODE: i32 = 101;
/// The hidden `perfsanity` verb a `spawn_descendants` process runs.
pub const DESCENDANT_VERB: &str = "__descendant";

/// Any panic, on any thread (a tokio task's included, which would otherwise only drop that
/// connection), prints its message as usual and ends the process with [`PANIC_EXIT_CODE`].
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        // Once more after any backtrace, so a log's last lines always say what happened.
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        log::error(&format!(
            "[sim] panic: {message:?} at {location}; exiting with code {PANIC_EXIT_CODE}"
        ));
        std::process::exit(PANIC_EXIT_CODE);
    }));
}

/// Starts the first process of a `spawn_descendants` chain of `depth` processes.
pub fn spawn_descendants(depth: u32) -> std::io::Result<()> {
    spawn_descendant(depth)?;
    log::info(&format!(
        "[sim] fault injection: spawn_descendants={depth} started"
    ));
    Ok(())
}

fn spawn_descendant(depth: u32) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([DESCENDANT_VERB, &depth.to_string()])
        .stdin(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; the descendant leaves our session and group, as a
    // daemonising helper would.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn().map(drop)
}

/// `perfsanity __descendant <depth>`: starts the rest of the chain, then sleeps until killed.
pub fn descendant_main(depth: u32) -> std::process::ExitCode {
    if depth > 1
        && let Err(e) = spawn_descendant(depth - 1)
    {
        eprintln!("perfsanity {DESCENDANT_VERB}: cannot start the next descendant: {e}");
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Per-process fault state.
#[derive(Debug, Default)]
pub struct Faults {
    config: FaultConfig,
    received: AtomicU64,
    finished: AtomicU64,
}

impl Faults {
    /// Wraps the role's fault config.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// `/health` must never say ready.
    pub fn never_ready(&self) -> bool {
        self.config.never_ready
    }

    /// Counts an incoming completion request; true when it must be answered with HTTP 500.
    pub fn take_http_500(&self) -> bool {
        let n = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        self.config
            .http_500_every
            .is_some_and(|every| n.is_multiple_of(every))
    }

    /// Counts a finished request; the n-th one (per `exit_after_requests`) makes the process
    /// exit shortly after, long enough for the last bytes to leave the socket.
    pub fn request_finished(&self) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.panic_after_requests == Some(n) {
            panic!("fault injection: panic_after_requests={n} reached");
        }
        if self.config.exit_after_requests == Some(n) {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                log::error(&format!(
                    "[sim] fault injection: exit_after_requests={n} reached; exiting with code \
                     {CRASH_EXIT_CODE}"
                ));
                std::process::exit(CRASH_EXIT_CODE);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_fails() {
        let f = Faults::new(FaultConfig {
            http_500_every: Some(3),
            ..Default::default()
        });
        let hits: Vec<bool> = (0..6).map(|_| f.take_http_500()).collect();
        assert_eq!(hits, vec![false, false, true, false, false, true]);
        let none = Faults::new(FaultConfig::default());
        assert!(!(0..10).any(|_| none.take_http_500()));
    }
}
