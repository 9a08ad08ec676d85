//! Issue 5's proof: the runner under faults. Each case runs one fixture trial
//! (`tests/fixtures/runner/`, simulator faults under `sim.faults`) through the real perf harness
//! binary — or `perfsanity run` — and checks that the trial fails fast, with the right failure
//! class, the role at fault and that role's log tail in the message, and that no process the
//! run started is left afterwards (every process whose working directory or command line lies
//! in the run's private temp dir; the runner starts every child there).
//!
//! Each case prints one `fault-matrix |` line (case, class, role, time to failure) for
//! `docs/BENCHMARKS.md`:
//! `cargo test --release --test runner_faults -- --nocapture --test-threads 1 2>&1 | grep fault-matrix`

use crate::harness_bin::harness_cmd;
use crate::support::{perfsanity_cmd, wait_until};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runner");
/// "Fails fast": far below the fixtures' `slurm.timeout` (60 s), generous for a busy machine.
const FAST: Duration = Duration::from_secs(15);

/// Which entry point runs the trial.
#[derive(Clone, Copy)]
enum Entry {
    /// `tests/perf.rs --exact <trial>`.
    Harness,
    /// `perfsanity run <trial>`.
    Cli,
}

/// One trial run in a private temp dir.
struct Trial {
    dir: tempfile::TempDir,
    trial: String,
    child: Child,
    started: Instant,
}

/// A finished run.
struct Finished {
    status: ExitStatus,
    stdout: String,
    elapsed: Duration,
}

impl Trial {
    fn start(entry: Entry, stem: &str, env: &[(&str, &str)]) -> Trial {
        let dir = tempfile::tempdir().unwrap();
        Trial::start_in(dir, entry, stem, env)
    }

    fn start_in(dir: tempfile::TempDir, entry: Entry, stem: &str, env: &[(&str, &str)]) -> Trial {
        let trial = format!("disagg-{stem}");
        let mut cmd = match entry {
            Entry::Harness => {
                let mut c = harness_cmd();
                c.args(["--exact", &trial]);
                c
            }
            Entry::Cli => {
                let mut c = perfsanity_cmd();
                c.args(["run", &trial]);
                c
            }
        };
        let p = dir.path();
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(p.join("stdout.txt")).unwrap())
            .stderr(std::fs::File::create(p.join("stderr.txt")).unwrap())
            .env("PERF_CONFIG_DIRS", FIXTURES)
            .env("PERF_OUTPUT_DIR", p.join("out"))
            .env("PERF_DB", p.join("results.sqlite"))
            .env("PERF_SIM_DATASETS", p.join("datasets"))
            .env("PERF_TOOLCHAIN", "sim");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("the harness starts");
        Trial {
            dir,
            trial,
            child,
            started,
        }
    }

    fn trial_dir(&self) -> PathBuf {
        self.dir.path().join("out").join(&self.trial)
    }

    /// Waits for the run to end (bounded: a hung runner fails the test instead of hanging it).
    fn finish(&mut self) -> Finished {
        let limit = Duration::from_secs(120);
        let left = limit.saturating_sub(self.started.elapsed());
        let Some(status) = wait_until(left, || self.child.try_wait().unwrap()) else {
            let _ = self.child.kill();
            panic!("the run did not end within {limit:?}");
        };
        let elapsed = self.started.elapsed();
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        Finished {
            status,
            stdout: format!("{}{}", read("stdout.txt"), read("stderr.txt")),
            elapsed,
        }
    }

    /// Waits until `path` contains `needle` (polling a condition, bounded).
    fn wait_for_text(&mut self, path: &Path, needle: &str) {
        let shown = wait_until(Duration::from_secs(60), || {
            if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
                return Some(());
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!(
                    "the run ended ({s}) before {} showed {needle:?}",
                    path.display()
                );
            }
            None
        });
        assert!(
            shown.is_some(),
            "{} never showed {needle:?}",
            path.display()
        );
    }

    /// Processes whose working directory or command line lies in this run's temp dir.
    fn processes(&self) -> Vec<String> {
        processes_under(self.dir.path())
    }
}

impl Drop for Trial {
    fn drop(&mut self) {
        // A failed assertion must not leave the harness (and through it, its children) behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every live process (not ours) whose cwd or argv is inside `dir`: `pid cmdline`.
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let proc_dir = entry.path();
        let cmdline = std::fs::read(proc_dir.join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(proc_dir.join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cwd.starts_with(&needle) || cmdline.contains(&needle) {
            found.push(format!("{pid} {}", cmdline.trim()));
        }
    }
    found
}

/// The failure block libtest prints for `trial`: `[class] ROLE: message` + log tail.
fn failure_text<'a>(out: &'a str, trial: &str) -> &'a str {
    let header = format!("---- {trial} ----\n");
    let start = out
        .find(&header)
        .map(|i| i + header.len())
        .or_else(|| out.find(&format!("FAIL {trial}")))
        .unwrap_or_else(|| panic!("no failure reported for {trial}:\n{out}"));
    let rest = &out[start..];
    let end = rest.find("\n\nfailures:").unwrap_or(rest.len());
    &rest[..end]
}

/// What a failing case must show.
struct Expect<'a> {
    case: &'a str,
    class: &'a str,
    /// Accepted roles (the first one that died, when several must).
    roles: &'a [&'a str],
    /// Log whose tail must be attached (file name).
    log: &'a str,
    /// Text that must appear in that tail.
    tail_has: &'a str,
    /// Text that must appear in the message line.
    message_has: &'a str,
    /// Bounds of the time to failure.
    at_least: Duration,
}

fn check_failure(t: &Trial, f: &Finished, e: &Expect<'_>) {
    assert_eq!(
        f.status.code(),
        Some(101),
        "{}: a failed trial fails the harness\n{}",
        e.case,
        f.stdout
    );
    let text = failure_text(&f.stdout, &t.trial);
    let first = text
        .lines()
        .find(|l| l.starts_with('['))
        .unwrap_or_default();
    let class = first
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(c, _)| c)
        .unwrap_or_default();
    assert_eq!(class, e.class, "{}: failure class\n{text}", e.case);
    let role = first
        .split_once("] ")
        .and_then(|(_, r)| r.split_once(':'))
        .map(|(r, _)| r)
        .unwrap_or_default();
    assert!(
        e.roles.contains(&role),
        "{}: role {role:?}, expected one of {:?}\n{text}",
        e.case,
        e.roles
    );
    assert!(
        first.contains(e.message_has),
        "{}: message lacks {:?}\n{text}",
        e.case,
        e.message_has
    );
    let log_path = t.trial_dir().join(e.log.replace("{role}", role));
    let tail_header = format!("--- last lines of {} ---", log_path.display());
    let tail = text
        .split_once(&tail_header)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{}: no tail of {}\n{text}", e.case, log_path.display()));
    assert!(
        tail.contains(e.tail_has),
        "{}: the tail lacks {:?}\n{text}",
        e.case,
        e.tail_has
    );
    assert!(
        f.elapsed >= e.at_least && f.elapsed < FAST,
        "{}: failed after {:?}, expected between {:?} and {FAST:?}",
        e.case,
        f.elapsed,
        e.at_least
    );
    assert_eq!(
        t.processes(),
        Vec::<String>::new(),
        "{}: processes left",
        e.case
    );
    println!(
        "fault-matrix | {} | {} | {role} | {:.2} s",
        e.case,
        e.class,
        f.elapsed.as_secs_f64()
    );
}

#[test]
fn healthy_trial_passes_and_leaves_nothing() {
    let mut t = Trial::start(Entry::Harness, "runner-ok", &[]);
    let f = t.finish();
    assert!(f.status.success(), "{}", f.stdout);
    assert!(f.stdout.contains("1 passed"), "{}", f.stdout);
    let timeline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.trial_dir().join("timeline.json")).unwrap(),
    )
    .unwrap();
    let at = |k: &str| timeline[k].as_f64().unwrap();
    let order = [
        "first_spawn_s",
        "workers_reported_s",
        "router_ready_s",
        "first_client_s",
        "clients_done_s",
        "all_reaped_s",
        "recorded_s",
    ];
    assert!(
        order.windows(2).all(|w| at(w[0]) <= at(w[1])),
        "milestones out of order: {timeline}"
    );
    assert_eq!(timeline["clients"].as_array().unwrap().len(), 1);
    assert_eq!(t.processes(), Vec::<String>::new());
    println!(
        "fault-matrix | none (healthy trial) | passed | — | {:.2} s",
        f.elapsed.as_secs_f64()
    );
}

#[test]
fn worker_exiting_at_start_is_a_launch_failure() {
    let mut t = Trial::start(Entry::Harness, "fault-exit-at-start", &[]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "worker exits at start (GEN_0 exit_at_start: 3)",
            class: "launch",
            roles: &["GEN_0"],
            log: "trtllm-serve.GEN_0.0.log",
            tail_has: "exit_at_start=3",
            message_has: "exited with exit code 3 before reporting its address",
            at_least: Duration::ZERO,
        },
    );
}

#[test]
fn worker_crashing_mid_run_is_a_crash() {
    let mut t = Trial::start(Entry::Harness, "fault-crash-mid-run", &[]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "worker crashes mid-run (GEN_0 exit_after_requests: 3)",
            class: "crash",
            roles: &["GEN_0"],
            log: "trtllm-serve.GEN_0.0.log",
            tail_has: "exit_after_requests=3 reached",
            message_has: "exited with exit code 1 while client 0",
            at_least: Duration::ZERO,
        },
    );
}

/// The router never becomes ready; besides, the trial directory holds address files from a
/// "previous run" that point at a foreign server answering every request with 200. They must
/// neither satisfy the readiness wait nor reach the router config.
#[test]
fn router_never_ready_ignores_stale_foreign_addresses() {
    let foreign = TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign_addr = foreign.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let rendezvous = dir
        .path()
        .join("out/disagg-fault-router-never-ready/hostnames-local-0");
    std::fs::create_dir_all(&rendezvous).unwrap();
    for file in ["DISAGG_SERVER.0.addr", "GEN_0.txt", "CTX_0.txt"] {
        std::fs::write(rendezvous.join(file), format!("{foreign_addr}\n")).unwrap();
    }
    let mut t = Trial::start_in(
        dir,
        Entry::Harness,
        "fault-router-never-ready",
        &[("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT", "2")],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "router never ready (DISAGG_SERVER never_ready, ready timeout 2 s)",
            class: "never_ready",
            roles: &["DISAGG_SERVER"],
            log: "trtllm-serve.DISAGG_SERVER.0.log",
            tail_has: "all servers are ready",
            message_has: "did not answer 200 within 2 s (last answer: 503)",
            at_least: Duration::from_secs(2),
        },
    );
    foreign.set_nonblocking(true).unwrap();
    assert!(
        foreign.accept().is_err(),
        "the runner connected to the stale address {foreign_addr}"
    );
    let router_config =
        std::fs::read_to_string(t.trial_dir().join("server_config.0.yaml")).unwrap();
    assert!(
        !router_config.contains(&foreign_addr),
        "stale worker address in the router config:\n{router_config}"
    );
}

/// A stalled stream hangs the client; the trial limit (seconds, `PERF_TRIAL_TIMEOUT_S`) ends
/// it, and the message carries each server's last log line — the stalled worker's says why.
#[test]
fn stalled_stream_is_bounded_by_the_trial_limit() {
    let mut t = Trial::start(
        Entry::Harness,
        "fault-stall",
        &[("PERF_TRIAL_TIMEOUT_S", "3")],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "stalled stream (GEN_0 stall_after_tokens: 12, PERF_TRIAL_TIMEOUT_S=3)",
            class: "timeout",
            roles: &["BENCHMARK"],
            log: "trtllm-benchmark.0.0.log",
            tail_has: "Starting main benchmark run",
            message_has: "trial time limit of 3 s (PERF_TRIAL_TIMEOUT_S) reached while client 0",
            at_least: Duration::from_secs(3),
        },
    );
    let text = failure_text(&f.stdout, &t.trial);
    assert!(
        text.contains("  GEN_0: ") && text.contains("stall_after_tokens=12 reached"),
        "the stalled worker's last line is missing:\n{text}"
    );
}

#[test]
fn http_errors_are_failed_requests() {
    let mut t = Trial::start(Entry::Harness, "fault-http-500", &[]);
    let f = t.finish();
    // Completion requests 1 (the client's initial test), 2..9 (the run): every 3rd fails.
    check_failure(
        &t,
        &f,
        &Expect {
            case: "client error rate (DISAGG_SERVER http_500_every: 3)",
            class: "failed_requests",
            roles: &["BENCHMARK"],
            log: "trtllm-benchmark.0.0.log",
            tail_has: "Successful requests:                     5",
            message_has: "SA benchmark: 3 of 8 requests failed (5 successful)",
            at_least: Duration::ZERO,
        },
    );
}

/// `PERF_HOSTNAME` names the host workers bind and publish. An address that is not this
/// machine's (TEST-NET-1, RFC 5737; on a cluster: a node name resolving to another node) cannot
/// be bound: the workers exit before reporting an address, a launch failure.
#[test]
fn unbindable_host_is_a_launch_failure() {
    let mut t = Trial::start(
        Entry::Harness,
        "runner-ok",
        &[("PERF_HOSTNAME", "192.0.2.1")],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "address clash (PERF_HOSTNAME=192.0.2.1, not this host's)",
            class: "launch",
            roles: &["GEN_0", "CTX_0"],
            log: "trtllm-serve.{role}.0.log",
            tail_has: "failed to bind socket to 192.0.2.1:0",
            message_has: "exited with exit code 1 before reporting its address",
            at_least: Duration::ZERO,
        },
    );
}

/// SIGTERM / SIGINT to the runner mid-trial (servers up, client streaming, one worker stalled):
/// exit status 128 + signal, the trial reported as interrupted, every child gone.
fn interrupt(entry: Entry, signal: Signal, code: i32, case: &str) {
    let mut t = Trial::start(entry, "fault-stall", &[]);
    let client_log = t.trial_dir().join("trtllm-benchmark.0.0.log");
    t.wait_for_text(&client_log, "Starting main benchmark run");
    let running = t.processes();
    assert!(
        running.len() >= 4,
        "expected 3 servers and a client to be running: {running:#?}"
    );
    let signalled = Instant::now();
    kill(Pid::from_raw(t.child.id() as i32), signal).unwrap();
    let f = t.finish();
    let after_signal = signalled.elapsed();
    assert_eq!(f.status.code(), Some(code), "{case}\n{}", f.stdout);
    assert!(
        f.stdout.contains("[interrupted] interrupted by signal"),
        "{case}: the trial is reported as interrupted\n{}",
        f.stdout
    );
    assert!(after_signal < FAST, "{case}: exit took {after_signal:?}");
    assert_eq!(
        t.processes(),
        Vec::<String>::new(),
        "{case}: processes left"
    );
    println!(
        "fault-matrix | {case} | interrupted (exit {code}) | — | {:.2} s after the signal ({} processes stopped)",
        after_signal.as_secs_f64(),
        running.len()
    );
}

#[test]
fn sigterm_to_the_harness_stops_everything() {
    interrupt(
        Entry::Harness,
        Signal::SIGTERM,
        143,
        "SIGTERM to the harness mid-trial",
    );
}

#[test]
fn sigint_to_the_harness_stops_everything() {
    interrupt(
        Entry::Harness,
        Signal::SIGINT,
        130,
        "SIGINT to the harness mid-trial",
    );
}

#[test]
fn sigterm_to_perfsanity_run_stops_everything() {
    interrupt(
        Entry::Cli,
        Signal::SIGTERM,
        143,
        "SIGTERM to `perfsanity run` mid-trial",
    );
}

#[test]
fn bad_trial_timeout_knob_is_rejected() {
    let mut t = Trial::start(
        Entry::Harness,
        "runner-ok",
        &[("PERF_TRIAL_TIMEOUT_S", "3m")],
    );
    let f = t.finish();
    assert_eq!(f.status.code(), Some(2), "{}", f.stdout);
    assert!(
        f.stdout
            .contains("PERF_TRIAL_TIMEOUT_S=\"3m\": expected a positive whole number of seconds"),
        "{}",
        f.stdout
    );
}
