//! Watching a trial while its clients run: a role that stops (SIGSTOP: alive and silent), stops
//! answering `/health`, or — a worker — stops making progress while it holds requests, fails
//! the trial naming that role, instead of hanging until the trial limit (or the router's own
//! 10800 s request timeout) and being blamed on the client. Also the progress line every long
//! wait prints. Their knobs (`PERF_STALL_S`, `PERF_PROGRESS_S`) come parsed in
//! [`WatchSettings`].
//!
//! The probes run on a thread of their own, so an unresponsive server never slows the runner's
//! 10 ms poll; [`Watch::verdict`] reads what they found.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plan::Role;

pub use crate::plan::settings::{DEFAULT_PROGRESS_S, DEFAULT_STALL_S, WatchSettings};

/// Default trial time limit when neither the test list's `TIMEOUT (N)` nor
/// `PERF_TRIAL_TIMEOUT_S` sets one: upstream's pytest `--timeout=3600`.
pub const DEFAULT_TRIAL_LIMIT_S: u64 = 3600;
/// Time between two rounds of probes.
const TICK: Duration = Duration::from_millis(500);
/// Timeout of one probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One role to watch.
#[derive(Debug, Clone)]
pub struct Target {
    /// The role.
    pub role: Role,
    /// Its process, when this host started it (checked for the stopped state).
    pub pid: Option<i32>,
    /// `host:port` it serves.
    pub address: String,
    /// A worker (its `/metrics` iteration counter is watched).
    pub worker: bool,
}

/// What the probes found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// The role at fault.
    pub role: Role,
    /// What is wrong.
    pub message: String,
}

/// A running watch (stops its thread when dropped).
pub struct Watch {
    verdict: Arc<Mutex<Option<Stall>>>,
    stop: Arc<AtomicBool>,
}

/// Why the liveness watch could not start (the trial then runs unwatched, and says so).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The probes' HTTP client could not be built.
    #[error("the liveness watch (PERF_STALL_S) cannot start: no HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Its thread could not be started.
    #[error("the liveness watch (PERF_STALL_S) cannot start: no thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Watch {
    /// Starts watching `targets`; `Ok(None)` when the watch is off (`stall` zero, no targets).
    pub fn start(targets: Vec<Target>, stall: Duration) -> Result<Option<Watch>, WatchError> {
        if stall.is_zero() || targets.is_empty() {
            return Ok(None);
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(WatchError::Client)?;
        let verdict = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (v, s) = (Arc::clone(&verdict), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("perfsanity-watch".into())
            .spawn(move || probe_loop(&http, targets, stall, &v, &s))
            .map_err(WatchError::Thread)?;
        Ok(Some(Watch { verdict, stop }))
    }

    /// The first stall found, if any.
    pub fn verdict(&self) -> Option<Stall> {
        self.verdict
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Per-target state of the probe loop.
struct Seen {
    answered: Instant,
    stopped_since: Option<Instant>,
    iter: Option<u64>,
    active: u64,
    progressed: Instant,
}

fn probe_loop(
    http: &reqwest::blocking::Client,
    targets: Vec<Target>,
    stall: Duration,
    verdict: &Mutex<Option<Stall>>,
    stop: &AtomicBool,
) {
    let now = Instant::now();
    let mut seen: Vec<Seen> = targets
        .iter()
        .map(|_| Seen {
            answered: now,
            stopped_since: None,
            iter: None,
            active: 0,
            progressed: now,
        })
        .collect();
    while !stop.load(Ordering::SeqCst) {
        for (t, s) in targets.iter().zip(seen.iter_mut()) {
            if let Some(found) = probe(http, t, s, stall) {
                *verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
                return;
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
        std::thread::sleep(TICK);
    }
}

fn probe(
    http: &reqwest::blocking::Client,
    t: &Target,
    s: &mut Seen,
    stall: Duration,
) -> Option<Stall> {
    let now = Instant::now();
    let stall_s = stall.as_secs();
    if let Some(pid) = t.pid {
        if process_stopped(pid) {
            let since = *s.stopped_since.get_or_insert(now);
            if now.duration_since(since) >= stall {
                return Some(Stall {
                    role: t.role,
                    message: format!(
                        "{} (pid {pid}) is stopped (SIGSTOP or a debugger) and has been for {stall_s} s \
                         (PERF_STALL_S)",
                        t.role
                    ),
                });
            }
            // A stopped process cannot answer: do not count it twice.
            return None;
        }
        s.stopped_since = None;
    }
    let health = format!("http://{}/health", t.address);
    if http.get(&health).send().is_ok() {
        s.answered = Instant::now();
    } else if now.duration_since(s.answered) >= stall {
        return Some(Stall {
            role: t.role,
            message: format!(
                "{} has not answered {health} for {stall_s} s (PERF_STALL_S) while the clients ran",
                t.role
            ),
        });
    }
    if !t.worker {
        return None;
    }
    let metrics = http
        .get(format!("http://{}/metrics", t.address))
        .send()
        .ok()
        .and_then(|r| r.text().ok())
        .and_then(|body| last_iteration(&body));
    match metrics {
        Some((iter, active)) => {
            if s.iter != Some(iter) || active == 0 {
                s.progressed = Instant::now();
            }
            s.iter = Some(iter);
            s.active = active;
        }
        // An empty list (no iteration since the last query) counts as no progress only while
        // the worker was last seen holding requests.
        None if s.active == 0 => s.progressed = Instant::now(),
        None => {}
    }
    if s.active > 0 && now.duration_since(s.progressed) >= stall {
        return Some(Stall {
            role: t.role,
            message: format!(
                "{}'s engine made no progress for {stall_s} s (PERF_STALL_S) with {} request(s) \
                 in flight (stuck at iteration {}): the streams it serves stopped",
                t.role,
                s.active,
                s.iter.unwrap_or(0)
            ),
        });
    }
    None
}

/// `(iteration, active requests)` of the last entry of a `/metrics` answer (trtllm-serve's
/// iteration-stats list: `[{"iter": …, "numActiveRequests": …}, …]`).
pub fn last_iteration(body: &str) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let last = v.as_array()?.last()?;
    Some((
        last.get("iter")?.as_u64()?,
        last.get("numActiveRequests")?.as_u64()?,
    ))
}

/// True when `/proc/<pid>/stat` says the process is stopped (`T`) or traced (`t`).
pub fn process_stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_state(&s))
        .is_some_and(|c| c == 'T' || c == 't')
}

/// The state letter of a `/proc/<pid>/stat` line (after the parenthesised command name, which
/// may itself hold spaces and parentheses).
pub fn stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_survives_odd_names() {
        assert_eq!(stat_state("42 (sleep) S 1 42"), Some('S'));
        assert_eq!(stat_state("42 (a) b (T) c) T 1 42"), Some('T'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn metrics_last_entry() {
        assert_eq!(
            last_iteration(
                r#"[{"iter":1,"numActiveRequests":0},{"iter":7,"numActiveRequests":2}]"#
            ),
            Some((7, 2))
        );
        assert_eq!(last_iteration("[]"), None);
        assert_eq!(last_iteration("not json"), None);
    }

    #[test]
    fn a_stopped_process_is_seen_stopped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!process_stopped(pid));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while !process_stopped(pid) {
            assert!(Instant::now() < until, "never seen stopped");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
