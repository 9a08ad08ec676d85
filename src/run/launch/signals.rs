//! The runner's side of SIGINT / SIGTERM (the handler itself is the edge's,
//! `crate::app::signal_handler`): which signal interrupted the run, and tearing down every
//! process group we started — SIGTERM to all groups, up to the grace period for them to go,
//! SIGKILL for the rest, then a sweep of the whole tree. Running trials see [`interrupted`] and
//! report themselves as interrupted, trials not yet started do not start, and the process ends
//! with 128 + signal ([`interrupted_exit_code`]).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::groups::{live_groups, signal_all};
use super::process::GRACE;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// A second signal arrived: no more grace.
static HURRY: AtomicBool = AtomicBool::new(false);

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

/// Whether a signal was the run's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The first: the run is now interrupted.
    First,
    /// A later one: no more grace.
    Again,
}

/// Notes that `sig` arrived.
pub fn note(sig: i32) -> Received {
    if RECEIVED
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        Received::First
    } else {
        HURRY.store(true, Ordering::SeqCst);
        Received::Again
    }
}

/// How many process groups we own right now.
pub fn live_group_count() -> usize {
    live_groups().len()
}

/// Stops every group we own: SIGTERM (and SIGCONT, which a stopped process needs to act on
/// it), the grace period unless a second signal came, then SIGKILL and a sweep of the tree.
pub fn stop_everything() {
    signal_all(Signal::SIGTERM);
    signal_all(Signal::SIGCONT);
    let deadline = Instant::now() + GRACE;
    while !live_groups().is_empty() && Instant::now() < deadline && !HURRY.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_everything_now();
}

/// SIGKILL to every group we own and a sweep of the whole tree.
pub fn kill_everything_now() {
    signal_all(Signal::SIGKILL);
    super::tree::kill_run();
}
