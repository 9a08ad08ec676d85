//! Watching a trial while its clients run: a role that stops (SIGSTOP: alive and silent), stops
//! answering `/health`, or — a worker — stops making progress while it holds requests, fails
//! the trial naming that role, instead of hanging until the trial limit (or the router's own
//! 10800 s request timeout) and being blamed on the client. Also the progress line every long
//! wait prints, and the knobs of both (`PERF_STALL_S`, `PERF_PROGRESS_S`).
//!
//! The probes run on a thread of their own, so an unresponsive server never slows the runner's
//! 10 ms poll; [`Watch::verdict`] reads what they found.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plan::Role;

/// Default of `PERF_STALL_S`: how long a role may be stopped, unanswering or (a worker holding
/// requests) without a new iteration before the trial fails. Long enough for a real engine's
/// slowest iteration (a long prefill) on a busy node.
pub const DEFAULT_STALL_S: u64 = 300;
/// Default of `PERF_PROGRESS_S`: how often a long wait prints a progress line.
pub const DEFAULT_PROGRESS_S: u64 = 60;
/// Default trial time limit when neither the test list's `TIMEOUT (N)` nor
/// `PERF_TRIAL_TIMEOUT_S` sets one: upstream's pytest `--timeout=3600`.
pub const DEFAULT_TRIAL_LIMIT_S: u64 = 3600;
/// Upper bound of the `PERF_STALL_S` / `PERF_PROGRESS_S` knobs (a week).
const MAX_KNOB_S: u64 = 7 * 24 * 3600;
/// Time between two rounds of probes.
const TICK: Duration = Duration::from_millis(500);
/// Timeout of one probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The watch knobs, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// `PERF_STALL_S` (0: no liveness watch).
    pub stall: Duration,
    /// `PERF_PROGRESS_S` (0: no progress lines).
    pub progress: Duration,
}

impl WatchSettings {
    /// Reads `PERF_STALL_S` and `PERF_PROGRESS_S` (unset or empty: the defaults).
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var_os(k))
    }

    /// Same, from any lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self, String> {
        let knob = |name: &str, default: u64| -> Result<Duration, String> {
            let Some(raw) = get(name) else {
                return Ok(Duration::from_secs(default));
            };
            let text = raw
                .to_str()
                .ok_or_else(|| format!("{name}: not valid UTF-8"))?;
            if text.trim().is_empty() {
                return Ok(Duration::from_secs(default));
            }
            match text.trim().parse::<u64>() {
                Ok(s) if s <= MAX_KNOB_S => Ok(Duration::from_secs(s)),
                _ => Err(format!(
                    "{name}={text:?}: expected a whole number of seconds in 0..={MAX_KNOB_S} \
                     (0 turns it off)"
                )),
            }
        };
        Ok(WatchSettings {
            stall: knob("PERF_STALL_S", DEFAULT_STALL_S)?,
            progress: knob("PERF_PROGRESS_S", DEFAULT_PROGRESS_S)?,
        })
    }
}

/// Validates every knob of issue 15's runner hardening (`PERF_STALL_S`, `PERF_PROGRESS_S`,
/// `PERF_DB_LOCK_WAIT_S`), for `perfsanity check` and before a trial starts any process.
pub fn check_env() -> Result<(), String> {
    WatchSettings::from_env()?;
    let lock = std::env::var_os("PERF_DB_LOCK_WAIT_S");
    let lock = match &lock {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok_or_else(|| "PERF_DB_LOCK_WAIT_S: not valid UTF-8".to_string())?,
        ),
    };
    crate::results::store::parse_lock_wait(lock)
        .map(drop)
        .map_err(|e| e.to_string())
}

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

impl Watch {
    /// Starts watching `targets`; `None` when the watch is off.
    pub fn start(targets: Vec<Target>, stall: Duration) -> Option<Watch> {
        if stall.is_zero() || targets.is_empty() {
            return None;
        }
        let verdict = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (v, s) = (Arc::clone(&verdict), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("perfsanity-watch".into())
            .spawn(move || probe_loop(targets, stall, &v, &s))
            .ok()?;
        Some(Watch { verdict, stop })
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
    targets: Vec<Target>,
    stall: Duration,
    verdict: &Mutex<Option<Stall>>,
    stop: &AtomicBool,
) {
    let Ok(http) = reqwest::blocking::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
    else {
        return;
    };
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
            if let Some(found) = probe(&http, t, s, stall) {
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
    fn knobs_default_parse_and_reject() {
        let none = WatchSettings::from_lookup(|_| None).unwrap();
        assert_eq!(none.stall, Duration::from_secs(DEFAULT_STALL_S));
        assert_eq!(none.progress, Duration::from_secs(DEFAULT_PROGRESS_S));
        let set = WatchSettings::from_lookup(|k| {
            Some(if k == "PERF_STALL_S" { "2" } else { "0" }.into())
        })
        .unwrap();
        assert_eq!(set.stall, Duration::from_secs(2));
        assert!(set.progress.is_zero());
        for bad in ["-1", "2s", "99999999999999999999", "604801"] {
            let e = WatchSettings::from_lookup(|k| (k == "PERF_STALL_S").then(|| bad.into()))
                .unwrap_err();
            assert!(e.starts_with("PERF_STALL_S="), "{e}");
        }
    }

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
