//! SIGINT / SIGTERM to the harness (Ctrl-C, or nextest's timeout) tear down every process group
//! we started, then exit: SIGTERM to all groups, up to the grace period for them to go, SIGKILL
//! for the rest. A second signal skips the grace period (SIGKILL at once) but still lets the
//! run report: the trials report `interrupted` and JUnit is written, only sooner. Running
//! trials see [`interrupted`] and
//! report themselves as interrupted, trials not yet started do not start, and the process ends
//! with 128 + signal ([`interrupted_exit_code`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::process::{GRACE, live_groups, signal_all};

/// How long the main thread gets, once every group is stopped, to report and exit by itself.
const REPORT_WAIT: Duration = Duration::from_secs(2);

static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// A second signal arrived: no more grace.
static HURRY: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit code a process that was interrupted must end with (`128 + signal`: 143 for
/// SIGTERM, 130 for SIGINT), whichever thread gets to exit first — the handler's teardown or
/// the main thread once every trial has reported.
pub fn interrupted_exit_code() -> Option<u8> {
    interrupted().and_then(|sig| u8::try_from(128 + sig).ok())
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
                        // Second signal: no more grace, but the report still comes (the
                        // teardown thread's fallback exit stays the bound).
                        HURRY.store(true, Ordering::SeqCst);
                        eprintln!(
                            "perfsanity: second signal: killing {} process group(s) now; the \
                             run reports as interrupted",
                            live_groups().len()
                        );
                        signal_all(Signal::SIGKILL);
                        super::tree::kill_run();
                        continue;
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
    // A stopped process acts on SIGTERM only once continued.
    signal_all(Signal::SIGCONT);
    let deadline = Instant::now() + GRACE;
    while !live_groups().is_empty() && Instant::now() < deadline && !HURRY.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_all(Signal::SIGKILL);
    super::tree::kill_run();
    // The trial threads see `interrupted()`, reap their children and report; the main thread
    // then ends the process with 128 + sig itself (`interrupted_exit_code`), after the report is
    // printed. This exit is the fallback for a run that cannot get there (a trial blocked
    // outside the runner's waits, e.g. in an upload).
    std::thread::sleep(REPORT_WAIT);
    std::process::exit(128 + sig);
}
