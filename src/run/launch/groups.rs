//! The process groups this run owns, in a process-wide table: the runner registers each child's
//! group when it starts it and removes it once the child is reaped; the signal handler and the
//! tree sweep read it (which of the processes they find are managed children).

use std::collections::HashSet;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Process groups currently alive, for the signal handler.
static LIVE_GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Adds `pgid` (a child we started in its own group).
pub fn register(pgid: i32) {
    let mut guard = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(pgid);
}

/// Removes `pgid` (its leader was reaped).
pub fn unregister(pgid: i32) {
    let mut guard = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(set) = guard.as_mut() {
        set.remove(&pgid);
    }
}

/// Every live group (snapshot).
pub fn live_groups() -> Vec<i32> {
    let guard = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

/// Sends `signal` to every live group (used by the signal handler).
pub fn signal_all(signal: Signal) {
    for pgid in live_groups() {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}
