//! Issue 5's proof: the runner under faults. Each case runs one fixture trial
//! (`tests/fixtures/runner/`, simulator faults under `sim.faults`) through the real perf harness
//! binary — or `perfsanity run` — and checks that the trial fails fast, with the right failure
//! class, the role at fault and that role's log tail in the message, and that no process the
//! run started is left afterwards (every process whose working directory or command line lies
//! in the run's private temp dir; the runner starts every child there).
//!
//! Issue 15 grew it (classes 4, 6, 8–13): whole process trees (a grandchild in another session)
//! under `kill -9` and every other exit path, a second SIGTERM, two runs on one trial folder, a
//! stopped router and a frozen generation worker, progress lines and the default trial limit, a
//! panicking worker, the role at fault behind the router, and finished clients' records kept.
//!
//! Each case prints one `fault-matrix |` line (case, class, role, time to failure) for
//! `docs/BENCHMARKS.md`:
//! `cargo test --release --test runner_faults -- --nocapture --test-threads 1 2>&1 | grep fault-matrix`

use crate::harness_bin::harness_cmd;
use crate::support::{perfsanity_cmd, wait_until as poll_for};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runner");
/// The aggregated fixtures (a folder named `aggregated` holds aggregated-layout configs).
const AGGR_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/runner/aggregated"
);
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
        Trial::launch(dir, entry, format!("disagg-{stem}"), FIXTURES, env)
    }

    /// The aggregated trial `aggr-<stem>` of [`AGGR_FIXTURES`].
    fn start_aggr(entry: Entry, stem: &str, env: &[(&str, &str)]) -> Trial {
        let dir = tempfile::tempdir().unwrap();
        Trial::launch(dir, entry, format!("aggr-{stem}"), AGGR_FIXTURES, env)
    }

    fn launch(
        dir: tempfile::TempDir,
        entry: Entry,
        trial: String,
        configs: &str,
        env: &[(&str, &str)],
    ) -> Trial {
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
            .env("PERF_CONFIG_DIRS", configs)
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
        let Some(status) = poll_for(left, || self.child.try_wait().unwrap()) else {
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
        let shown = poll_for(Duration::from_secs(60), || {
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

// ---- Issue 15: classes 4, 6, 8–11, 13 -------------------------------------------------------

/// The shared wait for a condition, naming `what` when it does not hold within `limit`;
/// returns how long it took.
fn wait_for_condition(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let began = Instant::now();
    poll_for(limit, || cond().then_some(()))
        .unwrap_or_else(|| panic!("{what}: not within {limit:?}"));
    began.elapsed()
}

/// The pid of the one process of `t` whose command line contains `needle`.
fn pid_with(t: &Trial, needle: &str) -> i32 {
    let found: Vec<i32> = t
        .processes()
        .iter()
        .filter(|p| p.contains(needle))
        .filter_map(|p| p.split_once(' ')?.0.parse().ok())
        .collect();
    assert_eq!(found.len(), 1, "one process with {needle:?}: {found:?}");
    found[0]
}

/// Starts `stem`, waits until its client streams and GEN_0's grandchild (`__descendant 1`,
/// in a session of its own) runs.
fn start_with_grandchild(entry: Entry, stem: &str) -> (Trial, usize) {
    let mut t = Trial::start(entry, stem, &[]);
    let client_log = t.trial_dir().join("trtllm-benchmark.0.0.log");
    t.wait_for_text(&client_log, "Starting main benchmark run");
    wait_for_condition("the grandchild starts", Duration::from_secs(20), || {
        t.processes().iter().any(|p| p.contains("__descendant 1"))
    });
    let running = t.processes();
    assert!(
        running.len() >= 6,
        "3 servers, a client, GEN_0's child and grandchild: {running:#?}"
    );
    (t, running.len())
}

/// Class 8: GEN_0 starts a child that starts a grandchild, each in a new session (outside the
/// worker's process group). A healthy trial ends with neither left.
#[test]
fn grandchildren_are_gone_after_a_healthy_trial() {
    let mut t = Trial::start(Entry::Harness, "fault-descendants", &[]);
    let f = t.finish();
    assert!(f.status.success(), "{}", f.stdout);
    let log = std::fs::read_to_string(t.trial_dir().join("trtllm-serve.GEN_0.0.log")).unwrap();
    assert!(log.contains("spawn_descendants=2 started"), "{log}");
    assert_eq!(t.processes(), Vec::<String>::new(), "survivors");
    println!(
        "fault-matrix | grandchild, healthy trial (GEN_0 spawn_descendants: 2) | passed | — | {:.2} s, 0 survivors",
        f.elapsed.as_secs_f64()
    );
}

/// Class 8: `kill -9` of the harness mid-trial. Nothing can run in the harness; its watchdog
/// sees the pipe close and kills every process of the run, grandchildren included.
#[test]
fn grandchildren_are_gone_after_kill_9_of_the_harness() {
    let (mut t, running) = start_with_grandchild(Entry::Harness, "fault-descendants-stall");
    let signalled = Instant::now();
    kill(Pid::from_raw(t.child.id() as i32), Signal::SIGKILL).unwrap();
    let f = t.finish();
    assert_eq!(f.status.code(), None, "killed by a signal");
    let gone = wait_for_condition(
        "every process of the killed run is gone",
        Duration::from_secs(10),
        || t.processes().is_empty(),
    );
    let _ = signalled;
    println!(
        "fault-matrix | SIGKILL to the harness, GEN_0 with a grandchild in another session | killed (no report possible) | — | all {running} processes gone {:.2} s after the harness died, 0 survivors",
        gone.as_secs_f64()
    );
}

/// Class 8 on the other exit paths: SIGTERM to `perfsanity run`, and a crash of the worker
/// that owns the grandchild.
#[test]
fn grandchildren_are_gone_after_sigterm_to_perfsanity_run() {
    let (mut t, running) = start_with_grandchild(Entry::Cli, "fault-descendants-stall");
    kill(Pid::from_raw(t.child.id() as i32), Signal::SIGTERM).unwrap();
    let f = t.finish();
    assert_eq!(f.status.code(), Some(143), "{}", f.stdout);
    assert_eq!(t.processes(), Vec::<String>::new(), "survivors at exit");
    println!(
        "fault-matrix | SIGTERM to `perfsanity run`, GEN_0 with a grandchild | interrupted (exit 143) | — | {running} processes, 0 survivors at exit"
    );
}

#[test]
fn grandchildren_are_gone_after_their_worker_is_killed() {
    let (mut t, _) = start_with_grandchild(Entry::Harness, "fault-descendants-stall");
    let gen0 = pid_with(&t, "--role GEN_0");
    kill(Pid::from_raw(gen0), Signal::SIGKILL).unwrap();
    let f = t.finish();
    assert_eq!(f.status.code(), Some(101), "{}", f.stdout);
    let text = failure_text(&f.stdout, &t.trial);
    assert!(
        text.starts_with("[crash] GEN_0: GEN_0 exited with signal SIGKILL"),
        "{text}"
    );
    assert_eq!(t.processes(), Vec::<String>::new(), "survivors at exit");
    println!(
        "fault-matrix | SIGKILL of GEN_0 (which has a grandchild) | crash | GEN_0 | {:.2} s, 0 survivors",
        f.elapsed.as_secs_f64()
    );
}

/// Class 11: a second SIGTERM skips the grace period but not the report: `interrupted`,
/// exit 143, and the JUnit file.
#[test]
fn a_second_sigterm_still_reports_and_writes_junit() {
    let junit = tempfile::tempdir().unwrap();
    let junit_path = junit.path().join("junit.xml");
    let mut t = Trial::start(
        Entry::Harness,
        "fault-ignore-sigterm",
        &[("PERF_JUNIT", junit_path.to_str().unwrap())],
    );
    let client_log = t.trial_dir().join("trtllm-benchmark.0.0.log");
    t.wait_for_text(&client_log, "Starting main benchmark run");
    let harness = Pid::from_raw(t.child.id() as i32);
    let signalled = Instant::now();
    kill(harness, Signal::SIGTERM).unwrap();
    // GEN_0 ignores the SIGTERM, so the teardown sits in its 3 s grace period: the second
    // signal must end it early, and still let the run report.
    let gen_log = t.trial_dir().join("trtllm-serve.GEN_0.0.log");
    t.wait_for_text(&gen_log, "SIGTERM ignored");
    kill(harness, Signal::SIGTERM).unwrap();
    let f = t.finish();
    let after = signalled.elapsed();
    assert!(
        after < Duration::from_secs(3),
        "exit {after:?} after the first signal: the 3 s grace was not cut short"
    );
    assert_eq!(f.status.code(), Some(143), "{}", f.stdout);
    assert!(
        f.stdout.contains("[interrupted] interrupted by signal 15"),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout.contains("perfsanity: second signal: killing"),
        "the second signal took its own path\n{}",
        f.stdout
    );
    let xml = std::fs::read_to_string(&junit_path).expect("JUnit written");
    assert!(xml.contains("interrupted"), "{xml}");
    assert_eq!(t.processes(), Vec::<String>::new(), "processes left");
    println!(
        "fault-matrix | two SIGTERMs to the harness mid-trial (GEN_0 ignores SIGTERM) | interrupted (exit 143), JUnit written | — | {:.2} s after the first signal (grace 3 s), 0 survivors",
        after.as_secs_f64()
    );
}

/// Class 9: a second run on the same `PERF_OUTPUT_DIR` and trial fails at once, naming the
/// run that holds the folder, and leaves that run's files alone.
#[test]
fn a_second_run_on_the_same_trial_folder_is_refused() {
    let mut first = Trial::start(Entry::Harness, "fault-stall", &[]);
    let client_log = first.trial_dir().join("trtllm-benchmark.0.0.log");
    first.wait_for_text(&client_log, "Starting main benchmark run");
    let gen_addr = first.trial_dir().join("hostnames-local-0/GEN_0.txt");
    let before = std::fs::read_to_string(&gen_addr).unwrap();
    let mut cmd = harness_cmd();
    cmd.args(["--exact", &first.trial])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERF_CONFIG_DIRS", FIXTURES)
        .env("PERF_OUTPUT_DIR", first.dir.path().join("out"))
        .env("PERF_DB", first.dir.path().join("second.sqlite"))
        .env("PERF_SIM_DATASETS", first.dir.path().join("datasets"))
        .env("PERF_TOOLCHAIN", "sim");
    let began = Instant::now();
    let out = cmd.output().unwrap();
    let took = began.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(101), "{text}");
    let holder = format!("pid {} on host ", first.child.id());
    assert!(
        text.contains("[busy] ") && text.contains(&holder) && text.contains(" since "),
        "the refusal names the holder ({holder}):\n{text}"
    );
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first run goes on"
    );
    assert_eq!(std::fs::read_to_string(&gen_addr).unwrap(), before);
    assert!(took < FAST, "refused after {took:?}");
    kill(Pid::from_raw(first.child.id() as i32), Signal::SIGTERM).unwrap();
    let f = first.finish();
    assert_eq!(f.status.code(), Some(143), "{}", f.stdout);
    assert_eq!(first.processes(), Vec::<String>::new(), "processes left");
    println!(
        "fault-matrix | second harness on the same PERF_OUTPUT_DIR and trial | busy (names pid, host, start) | — | {:.2} s, first run untouched, 0 survivors",
        took.as_secs_f64()
    );
}

/// Class 10: a SIGSTOPped router (alive, silent) fails the trial naming it.
#[test]
fn a_stopped_router_is_named() {
    let mut t = Trial::start(Entry::Harness, "runner-long", &[("PERF_STALL_S", "2")]);
    let client_log = t.trial_dir().join("trtllm-benchmark.0.0.log");
    t.wait_for_text(&client_log, "Starting main benchmark run");
    let router = pid_with(&t, "--role DISAGG_SERVER");
    let stopped = Instant::now();
    kill(Pid::from_raw(router), Signal::SIGSTOP).unwrap();
    let f = t.finish();
    let after = stopped.elapsed();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "SIGSTOP of the router mid-run (PERF_STALL_S=2)",
            class: "stalled",
            roles: &["DISAGG_SERVER"],
            log: "trtllm-serve.DISAGG_SERVER.0.log",
            tail_has: "all servers are ready",
            message_has: "is stopped (SIGSTOP or a debugger)",
            at_least: Duration::from_secs(2),
        },
    );
    assert!(after >= Duration::from_secs(2) && after < FAST, "{after:?}");
    println!(
        "fault-matrix | (same case, from the SIGSTOP) | stalled | DISAGG_SERVER | {:.2} s after the SIGSTOP",
        after.as_secs_f64()
    );
}

/// Class 10/13: a frozen generation worker (alive, `/health` 200) stalls the streams; the
/// trial fails naming it, long before the trial limit.
#[test]
fn a_frozen_generation_worker_is_named() {
    let mut t = Trial::start(Entry::Harness, "fault-stall", &[("PERF_STALL_S", "2")]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "frozen generation worker (GEN_0 stall_after_tokens: 12, PERF_STALL_S=2)",
            class: "stalled",
            roles: &["GEN_0"],
            log: "trtllm-serve.GEN_0.0.log",
            tail_has: "stall_after_tokens=12 reached",
            message_has: "GEN_0's engine made no progress for 2 s",
            at_least: Duration::from_secs(2),
        },
    );
}

/// Class 4: the progress line of a long wait names the phase and the trial limit — the
/// default one (upstream's 3600 s) when nothing sets it.
#[test]
fn long_waits_print_progress_with_the_default_limit() {
    let mut t = Trial::start(
        Entry::Harness,
        "fault-stall",
        &[("PERF_PROGRESS_S", "1"), ("PERF_STALL_S", "3")],
    );
    let f = t.finish();
    assert!(
        f.stdout.contains(
            "perfsanity: disagg-fault-stall: client 0 (con2_iter4_isl16_osl8) was running for 1 s \
             (trial limit 3600 s, the default, upstream's pytest --timeout;"
        ),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("[stalled] GEN_0:"), "{}", f.stdout);
}

/// The runner's knobs are parsed with the other settings: a bad one stops the run before any
/// trial is planned or any process started (exit 2, the knob named), like `PERF_TRIAL_TIMEOUT_S`.
#[test]
fn bad_runner_knobs_are_rejected_before_any_trial() {
    for (knob, value, needle) in [
        (
            "PERF_STALL_S",
            "2m",
            "PERF_STALL_S=\"2m\": expected a whole number of seconds",
        ),
        (
            "PERF_DB_LOCK_WAIT_S",
            "soon",
            "PERF_DB_LOCK_WAIT_S=\"soon\": expected a whole number",
        ),
    ] {
        let mut t = Trial::start(Entry::Harness, "runner-ok", &[(knob, value)]);
        let f = t.finish();
        assert_eq!(f.status.code(), Some(2), "{}", f.stdout);
        assert!(f.stdout.contains(needle), "{}", f.stdout);
        // Refused before any process started: no server log exists.
        assert!(!t.trial_dir().join("trtllm-serve.GEN_0.0.log").exists());
        assert_eq!(t.processes(), Vec::<String>::new());
    }
    // `perfsanity check` reports it too.
    let out = crate::support::perfsanity_cmd()
        .arg("check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERF_CONFIG_DIRS", FIXTURES)
        .env_remove("PERF_TESTLIST")
        .env("PERF_PROGRESS_S", "-1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("PERF_PROGRESS_S=\"-1\": expected a whole number of seconds"),
        "{text}"
    );
}

/// Class 6: a worker that panics (in a request handler) fails the trial as that role's crash,
/// with the panic message.
#[test]
fn a_panicking_worker_shows_its_panic() {
    let mut t = Trial::start(Entry::Harness, "fault-panic", &[]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "worker panics mid-run (GEN_0 panic_after_requests: 3)",
            class: "crash",
            roles: &["GEN_0"],
            log: "trtllm-serve.GEN_0.0.log",
            tail_has: "[sim] panic: \"fault injection: panic_after_requests=3 reached\" at src/tools/sim/faults.rs",
            message_has: "exited with exit code 101 after a panic: \"fault injection: panic_after_requests=3 reached\"",
            at_least: Duration::ZERO,
        },
    );
}

/// Class 13: a worker that never becomes ready behind the router is named, not the router.
#[test]
fn an_unready_worker_behind_the_router_is_named() {
    let mut t = Trial::start(
        Entry::Harness,
        "fault-gen-never-ready",
        &[("TRTLLM_TEST_DISAGG_SERVER_READY_TIMEOUT", "2")],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "worker never ready behind the router (GEN_0 never_ready, ready timeout 2 s)",
            class: "never_ready",
            roles: &["GEN_0"],
            log: "trtllm-serve.GEN_0.0.log",
            tail_has: "",
            message_has: "GEN_0 never became ready behind the router (http://",
            at_least: Duration::from_secs(2),
        },
    );
}

/// Runs `perfsanity results …` against `db`.
fn results_cli(db: &Path, args: &[&str]) -> (bool, String) {
    let out = crate::support::perfsanity_cmd()
        .arg("results")
        .args(args)
        .env("PERF_DB", db)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Class 12: client 0 finishes, GEN_0 crashes under client 1. The trial fails as GEN_0's
/// crash, and client 0's measurement is kept — marked invalid with the trial's outcome, never
/// uploaded — and its `perf_records.json` can be imported into another history database.
/// The one record the trial stored in its database, as JSON text.
fn the_one_stored_row(t: &Trial) -> String {
    let db = t.dir.path().join("results.sqlite");
    let (ok, shown) = results_cli(&db, &["show", "--json"]);
    assert!(ok, "{shown}");
    let rows: Vec<serde_json::Value> = shown
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(rows.len(), 1, "{shown}");
    rows[0].to_string()
}

/// `perfsanity results import` of `artifact` into `db` stores its one record, not uploaded.
fn import_records(db: &Path, artifact: &Path) {
    let (ok, out) = results_cli(db, &["import", artifact.to_str().unwrap()]);
    assert!(
        ok && out.contains("imported 1 record(s)") && out.contains("state not_requested"),
        "{out}"
    );
}

/// The trial's `perf_records.json` imports into a fresh database once, and only once.
fn artifact_imports_once(t: &Trial) {
    let other = t.dir.path().join("other.sqlite");
    let artifact = t.trial_dir().join("perf_records.json");
    import_records(&other, &artifact);
    let (ok, out) = results_cli(&other, &["import", artifact.to_str().unwrap()]);
    assert!(!ok && out.contains("is already in"), "{out}");
}

/// A record kept from a trial that crashed later: invalid, its outcome naming `role`.
fn assert_kept_after_crash(row: &str, role: &str) {
    assert!(row.contains("\"b_is_valid\":false"), "{row}");
    assert!(
        row.contains(&format!("\"s_trial_outcome\":\"failed: crash ({role})\"")),
        "{row}"
    );
}

/// Once the trial's first client is recorded as unfinished in `perf_records.json`, SIGKILL to
/// the harness; returns that file once every process of the run is gone.
fn kill_harness_once_a_client_finished(t: &mut Trial) -> PathBuf {
    let artifact = t.trial_dir().join("perf_records.json");
    t.wait_for_text(&artifact, "unfinished: the trial was still running");
    kill(Pid::from_raw(t.child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = t.finish();
    wait_for_condition(
        "the killed run's processes are gone",
        Duration::from_secs(10),
        || t.processes().is_empty(),
    );
    artifact
}

#[test]
fn a_finished_clients_measurement_survives_a_later_failure() {
    let mut t = Trial::start(Entry::Harness, "fault-crash-second-client", &[]);
    let f = t.finish();
    assert_eq!(f.status.code(), Some(101), "{}", f.stdout);
    let text = failure_text(&f.stdout, &t.trial);
    assert!(text.starts_with("[crash] GEN_0:"), "{text}");
    assert!(
        text.contains("results: 1 finished client record(s) of this failed trial kept"),
        "{text}"
    );
    let row = the_one_stored_row(&t);
    assert_kept_after_crash(&row, "GEN_0");
    assert!(row.contains("not_requested"), "{row}");
    artifact_imports_once(&t);
    assert_eq!(t.processes(), Vec::<String>::new());
    println!(
        "fault-matrix | GEN_0 crashes under the second of two clients (exit_after_requests: 8) | crash | GEN_0 | {:.2} s, client 0's record kept (b_is_valid false), 0 survivors",
        f.elapsed.as_secs_f64()
    );
}

/// Class 13: failed requests caused by one worker are blamed on it: the router's log names the
/// worker's address, and the failure names the role behind it.
#[test]
fn failed_requests_name_the_worker_the_router_blames() {
    let mut t = Trial::start(Entry::Harness, "fault-gen-http-500", &[]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "worker error rate (GEN_0 http_500_every: 3)",
            class: "failed_requests",
            roles: &["GEN_0"],
            log: "trtllm-benchmark.0.0.log",
            tail_has: "Successful requests:",
            message_has: "the router's log blames GEN_0: ",
            at_least: Duration::ZERO,
        },
    );
    let text = failure_text(&f.stdout, &t.trial);
    assert!(text.contains("answered HTTP 500"), "{text}");
}

/// Class 12 under `kill -9`: client 0's record reaches `perf_records.json` as soon as it
/// finishes (marked unfinished), so killing the harness while client 1 hangs leaves it for
/// `perfsanity results import`.
#[test]
fn a_finished_clients_record_survives_kill_9_of_the_harness() {
    let mut t = Trial::start(Entry::Harness, "fault-stall-second-client", &[]);
    let artifact = kill_harness_once_a_client_finished(&mut t);
    let db = t.dir.path().join("imported.sqlite");
    import_records(&db, &artifact);
    let (ok, shown) = results_cli(&db, &["show", "--json"]);
    assert!(ok && shown.contains("\"b_is_valid\":false"), "{shown}");
    println!(
        "fault-matrix | SIGKILL to the harness while client 1 of 2 hangs | (killed) | — | client 0's record in perf_records.json (unfinished), imports; 0 survivors"
    );
}

// ---- Issue 11: the aggregated runner uses the same waits, watch and client loop ---------------

/// An aggregated server whose engine freezes (alive, `/health` 200) fails the trial as
/// `stalled`, naming `AGGR_0`, within `PERF_STALL_S` — not at the trial limit — and the client's
/// wait prints the progress line meanwhile.
#[test]
fn a_frozen_aggregated_server_is_named() {
    let mut t = Trial::start_aggr(
        Entry::Harness,
        "fault-aggr-stall",
        &[
            ("PERF_STALL_S", "2"),
            ("PERF_PROGRESS_S", "1"),
            ("PERF_TRIAL_TIMEOUT_S", "600"),
        ],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "frozen aggregated server (AGGR_0 stall_after_tokens: 12, PERF_STALL_S=2)",
            class: "stalled",
            roles: &["AGGR_0"],
            log: "trtllm-serve.0.log",
            tail_has: "stall_after_tokens=12 reached",
            message_has: "AGGR_0's engine made no progress for 2 s",
            at_least: Duration::from_secs(2),
        },
    );
    let text = failure_text(&f.stdout, &t.trial);
    assert!(
        text.contains("while client 0 (con2_iter4_16_8) of server tiny_stall was running"),
        "{text}"
    );
    assert!(
        f.stdout.contains(
            "perfsanity: aggr-fault-aggr-stall: client 0 (con2_iter4_16_8) of server tiny_stall \
             was running for 1 s (trial limit 600 s, PERF_TRIAL_TIMEOUT_S;"
        ),
        "{}",
        f.stdout
    );
}

/// Without the liveness watch, the same frozen aggregated server is bounded by the trial limit,
/// as a disaggregated trial is: `timeout`, naming the client, with the server's last log line.
#[test]
fn a_frozen_aggregated_server_is_bounded_by_the_trial_limit() {
    let mut t = Trial::start_aggr(
        Entry::Harness,
        "fault-aggr-stall",
        &[("PERF_STALL_S", "0"), ("PERF_TRIAL_TIMEOUT_S", "3")],
    );
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "frozen aggregated server (AGGR_0 stall_after_tokens: 12, PERF_TRIAL_TIMEOUT_S=3)",
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
        text.contains("  AGGR_0 (server tiny_stall): ")
            && text.contains("stall_after_tokens=12 reached"),
        "the stalled server's last line is missing:\n{text}"
    );
}

/// Failed requests of an aggregated trial's client are `failed_requests` (the client loop's
/// rule for `perfsanity bench`'s exit 3), not a bare `client` exit.
#[test]
fn aggregated_http_errors_are_failed_requests() {
    let mut t = Trial::start_aggr(Entry::Harness, "fault-aggr-http-500", &[]);
    let f = t.finish();
    check_failure(
        &t,
        &f,
        &Expect {
            case: "aggregated client error rate (AGGR_0 http_500_every: 3)",
            class: "failed_requests",
            roles: &["BENCHMARK"],
            log: "trtllm-benchmark.0.0.log",
            tail_has: "Successful requests:",
            message_has: "client 0 (con2_iter4_16_8) of server tiny_500: SA benchmark: ",
            at_least: Duration::ZERO,
        },
    );
}

/// An aggregated trial's client 0 finishes, AGGR_0 crashes under client 1: the trial fails as
/// AGGR_0's crash, client 0's record is kept (invalid, with the trial's outcome, never
/// uploaded), and its `perf_records.json` imports into another history database.
#[test]
fn a_finished_aggregated_clients_record_survives_a_later_failure() {
    let mut t = Trial::start_aggr(Entry::Harness, "fault-aggr-crash-second-client", &[]);
    let f = t.finish();
    assert_eq!(f.status.code(), Some(101), "{}", f.stdout);
    let text = failure_text(&f.stdout, &t.trial);
    assert!(
        text.starts_with("[crash] AGGR_0: AGGR_0 (server tiny_crash) exited with exit code 1"),
        "{text}"
    );
    assert!(
        text.contains("results: 1 finished client record(s) of this failed trial kept"),
        "{text}"
    );
    let row = the_one_stored_row(&t);
    assert_kept_after_crash(&row, "AGGR_0");
    assert!(
        row.contains("\"s_test_case_name\":\"tiny_crash-con1_iter2_16_8\""),
        "{row}"
    );
    assert!(row.contains("\"s_runtime\":\"aggr_server\""), "{row}");
    assert!(row.contains("not_requested"), "{row}");
    artifact_imports_once(&t);
    assert_eq!(t.processes(), Vec::<String>::new());
    println!(
        "fault-matrix | AGGR_0 crashes under the second of two clients (exit_after_requests: 6) | crash | AGGR_0 | {:.2} s, client 0's record kept (b_is_valid false), 0 survivors",
        f.elapsed.as_secs_f64()
    );
}

/// An aggregated trial's finished client reaches `perf_records.json` while the trial still runs
/// (marked unfinished): killing the harness under client 1 leaves it for `perfsanity results
/// import`.
#[test]
fn a_finished_aggregated_clients_record_survives_kill_9_of_the_harness() {
    // AGGR_0 freezes under client 1 and the liveness watch is off: the run hangs there.
    let mut t = Trial::start_aggr(
        Entry::Harness,
        "fault-aggr-stall-second-client",
        &[("PERF_STALL_S", "0")],
    );
    let artifact = kill_harness_once_a_client_finished(&mut t);
    let db = t.dir.path().join("imported.sqlite");
    import_records(&db, &artifact);
    let (ok, shown) = results_cli(&db, &["show", "--json"]);
    assert!(
        ok && shown.contains("\"b_is_valid\":false")
            && shown.contains("tiny_stall2-con1_iter2_16_8"),
        "{shown}"
    );
}
