//! Raising the open-file limit: a benchmark at concurrency 1,024 holds thousands of sockets
//! (client connections, router fan-out), more than the common soft limit of 1,024.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit (best effort).
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()?;
    }
    getrlimit(Resource::RLIMIT_NOFILE).ok().map(|(s, _)| s)
}
