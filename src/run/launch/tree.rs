//! Owning the whole process tree, not only our direct children. A server (a real `trtllm-serve`
//! included) may start processes of its own, and those may leave its process group or outlive
//! it; the parent-death signal covers direct children only. Three measures close that gap:
//!
//! * every child we start carries `PERFSANITY_TREE=<run token>/<child number>` in its
//!   environment, which its descendants inherit: [`kill_tree`] finds and kills a child's whole
//!   tree by that mark (after its group), whatever session or group they moved to;
//! * this process is a child subreaper, so orphaned descendants are re-parented to us (not to
//!   PID 1) while we live and [`kill_tree`] reaps them;
//! * a watchdog process (`perfsanity __watchdog <token>`, [`watch_run`]) holds the read end
//!   of a pipe only we write to; when we die in any way — `kill -9` included — the pipe closes
//!   and the watchdog kills every process carrying our run token.
//!
//! A descendant that clears its own environment escapes the mark; `docs/LIMITS.md` says so.

use std::io::Read;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The environment variable that marks every process of a run's trees.
pub const TREE_ENV: &str = "PERFSANITY_TREE";
/// The hidden `perfsanity` verb that runs the watchdog.
pub const WATCHDOG_VERB: &str = "__watchdog";
/// How long one [`kill_marked`] keeps sweeping while marked processes keep appearing (a tree
/// that forks as fast as we kill).
const SWEEP_LIMIT: Duration = Duration::from_secs(2);
/// How long a sweep waits for a SIGKILLed orphan of ours to die before reaping it.
const REAP_WAIT: Duration = Duration::from_millis(200);

static TOKEN: OnceLock<String> = OnceLock::new();
static NEXT_CHILD: AtomicU64 = AtomicU64::new(0);
/// The watchdog's stdin: never written; dropped only when this process exits.
static WATCHDOG: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// This run's token: `<pid>.<start time in ns>` (unique across runs on a host).
pub fn run_token() -> &'static str {
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}.{nanos}", std::process::id())
    })
}

/// A fresh mark for the next child: `<token>/<n>`.
pub fn next_mark() -> String {
    format!(
        "{}/{}",
        run_token(),
        NEXT_CHILD.fetch_add(1, Ordering::Relaxed)
    )
}

/// Once per process: become a child subreaper and start the watchdog (`self_exe`). Returns what
/// failed, the first time only (the edge shows it: `crate::app::from_env::own_process_tree` calls
/// this before any trial); the run goes on with the group and parent-death-signal protection only.
pub fn ensure_owner(self_exe: &Path) -> Vec<String> {
    static DONE: OnceLock<()> = OnceLock::new();
    let mut problems = Vec::new();
    DONE.get_or_init(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            problems.push(format!("cannot become a child subreaper: {e}"));
        }
        match spawn_watchdog(self_exe) {
            Ok(stdin) => {
                *WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(stdin);
            }
            Err(e) => problems.push(format!(
                "cannot start the watchdog ({} {WATCHDOG_VERB}): {e}; processes left by a \
                 server may survive a kill -9 of this run",
                self_exe.display()
            )),
        }
    });
    problems
}

fn spawn_watchdog(self_exe: &Path) -> std::io::Result<ChildStdin> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(self_exe)
        .args([WATCHDOG_VERB, run_token()])
        .env_remove(TREE_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .current_dir("/")
        // Its own group: Ctrl-C to our group, or killpg of it, must not take it down with us.
        .process_group(0)
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin pipe"))
}

/// The body of `perfsanity __watchdog <token>`: waits until its stdin closes (the run that
/// started it ended, however), then kills every process marked with `token`; returns how many.
/// SIGINT, SIGTERM and SIGHUP are ignored so that what stops the run does not stop its watchdog
/// first.
pub fn watch_run(token: &str) -> usize {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    kill_marked(&format!("{token}/"), true)
}

/// Kills every process of the tree marked `mark` (exact) and reaps those re-parented to us.
pub fn kill_tree(mark: &str) -> usize {
    kill_marked(mark, false)
}

/// Kills every process of this run (all marks): the last sweep of a signal teardown.
pub fn kill_run() -> usize {
    kill_marked(&format!("{}/", run_token()), true)
}

/// SIGKILLs every live process (not this one) whose `PERFSANITY_TREE` equals `mark` (or starts
/// with it, when `prefix`), sweeping again until a sweep finds none (bounded by
/// [`SWEEP_LIMIT`]); reaps the ones that are our children. Returns how many were signalled.
fn kill_marked(mark: &str, prefix: bool) -> usize {
    let until = Instant::now() + SWEEP_LIMIT;
    let mut total = 0;
    loop {
        let found = marked_processes(mark, prefix);
        if found.is_empty() {
            return total;
        }
        for pid in &found {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        total += found.len();
        // Only our own children (re-parented orphans) can be reaped; others are a no-op. The
        // children the runner manages are left to their `ManagedChild`, which reaps them itself.
        let managed = super::groups::live_groups();
        let orphans: Vec<i32> = found.into_iter().filter(|p| !managed.contains(p)).collect();
        reap(&orphans);
        if Instant::now() >= until {
            return total;
        }
    }
}

/// True when process `pid` carries `mark` (exactly).
pub fn in_tree(pid: i32, mark: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| carries_mark(&env, mark, false))
}

/// Reaps those of `pids` that are our children (orphans re-parented to us, the subreaper) once
/// they are dead, waiting at most [`REAP_WAIT`]; others answer ECHILD at once.
fn reap(pids: &[i32]) {
    let until = Instant::now() + REAP_WAIT;
    let mut left: Vec<i32> = pids.to_vec();
    while !left.is_empty() && Instant::now() < until {
        left.retain(|pid| {
            matches!(
                waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Pids (not ours, not zombies) whose environment holds the mark.
pub fn marked_processes(mark: &str, prefix: bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| carries_mark(&env, mark, prefix))
        })
        .collect()
}

/// True when a `/proc/<pid>/environ` block holds `PERFSANITY_TREE=<mark>` (or a value starting
/// with `mark`, when `prefix`).
pub fn carries_mark(environ: &[u8], mark: &str, prefix: bool) -> bool {
    let key = format!("{TREE_ENV}=");
    environ.split(|&b| b == 0).any(|entry| {
        entry.strip_prefix(key.as_bytes()).is_some_and(|value| {
            if prefix {
                value.starts_with(mark.as_bytes())
            } else {
                value == mark.as_bytes()
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_match_exactly_or_by_prefix() {
        let env = b"A=1\0PERFSANITY_TREE=123.9/4\0B=2\0";
        assert!(carries_mark(env, "123.9/4", false));
        assert!(!carries_mark(env, "123.9/40", false));
        assert!(!carries_mark(env, "123.9/", false));
        assert!(carries_mark(env, "123.9/", true));
        assert!(!carries_mark(env, "123.8/", true));
        assert!(!carries_mark(
            b"XPERFSANITY_TREE=123.9/4\0",
            "123.9/4",
            false
        ));
    }

    #[test]
    fn marks_are_unique_within_a_run() {
        let a = next_mark();
        let b = next_mark();
        assert_ne!(a, b);
        assert!(a.starts_with(run_token()) && b.starts_with(run_token()));
    }

    /// A marked grandchild that left its parent's process group and session is found and
    /// killed by its mark.
    #[test]
    fn kill_tree_reaches_a_grandchild_in_another_session() {
        let mark = next_mark();
        let mut child = Command::new("sh")
            .args(["-c", "setsid sleep 60 & echo $!; wait"])
            .env(TREE_ENV, &mark)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        // Wait until the grandchild exec'd with the mark (polling, bounded).
        let until = Instant::now() + Duration::from_secs(10);
        while !marked_processes(&mark, false).contains(&grandchild) {
            assert!(
                Instant::now() < until,
                "the grandchild never showed its mark"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(kill_tree(&mark) >= 2);
        // kill_tree reaped it already (it is not a managed child), or we do.
        let _ = child.wait();
        let until = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .is_ok_and(|s| !s.contains(") Z"))
        {
            assert!(Instant::now() < until, "the grandchild survived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
