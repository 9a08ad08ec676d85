//! SIGINT / SIGTERM to the harness (Ctrl-C, or nextest's timeout) tear down every process group
//! we started, then exit: SIGTERM to all groups, up to the grace period for them to go, SIGKILL
//! for the rest. A second signal skips the grace period. Running trials see [`interrupted`] and
//! report themselves as interrupted.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::process::{GRACE, live_groups, signal_all};

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Installs the handler once per process (idempotent).
pub fn install() {
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
            eprintln!("perfsanity: cannot install the SIGINT/SIGTERM handler");
            return;
        };
        std::thread::Builder::new()
            .name("perfsanity-signals".into())
            .spawn(move || {
                let mut first = None;
                for sig in signals.forever() {
                    if first.is_some() {
                        // Second signal: no more grace.
                        signal_all(Signal::SIGKILL);
                        std::process::exit(128 + sig);
                    }
                    first = Some(sig);
                    RECEIVED.store(sig, Ordering::SeqCst);
                    eprintln!(
                        "perfsanity: received {}, stopping {} process group(s)",
                        if sig == SIGINT { "SIGINT" } else { "SIGTERM" },
                        live_groups().len()
                    );
                    std::thread::spawn(move || teardown_and_exit(sig));
                }
            })
            .ok();
    });
}

fn teardown_and_exit(sig: i32) {
    signal_all(Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while !live_groups().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_all(Signal::SIGKILL);
    // Give trial threads a moment to reap their children and print their failure.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !live_groups().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::process::exit(128 + sig);
}
