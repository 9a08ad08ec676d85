//! The steps a trial is made of, shared by the single-host runner ([`super::local`]), role
//! mode ([`super::role`]) and the aggregated runner ([`super::aggr`]): spawning workers and the
//! router, waiting for rendezvous files and readiness, running the clients, and turning their
//! output into metrics.
//!
//! Every wait is a short poll through [`Graph::wait_for`], which also watches every process
//! the graph owns, the interrupt flag, the liveness watch and the trial deadline — so a dying
//! or stalled server fails the trial at once, naming its role, with its log tail. The clients
//! run in [`run_client_loop`], for every runtime: progress events, the liveness watch, every
//! client failure class, and each finished client kept at once ([`keep_client`]). What these
//! need of a plan is [`RunnablePlan`], which the disaggregated [`Plan`] and the aggregated
//! `AggrPlan` implement.

use crate::util::deadline::deadline_after;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::gpus::GpuLease;
use super::health::HealthProbe;

use super::process::{GRACE, Launch, ManagedChild, describe_status, spawn};
use super::signals::interrupted;
use super::watch::{DEFAULT_TRIAL_LIMIT_S, Target, Watch, WatchSettings};
use crate::measure::gen_log::device_step_stats;
use crate::measure::{ClientMetrics, check_client_output, parse_client_output};
use crate::plan::toolchain::ClientKind;
use crate::plan::{ClientSpec, DatasetPlan, Plan, ProcessSpec, Role, Timeouts};
use crate::results::outcome::{FailureClass, LogTail, TrialFailure};
use crate::run::progress::ProgressEvent;

/// Poll interval of every wait.
pub const POLL: Duration = Duration::from_millis(10);
/// How long the benchmark waits for `gen_server_<i>.done` sentinels (upstream: 120 s, soft).
pub const SENTINEL_WAIT: Duration = Duration::from_secs(120);

/// A callback given every finished client so far.
pub type OnClientFinished<'a> = dyn Fn(&[ClientRun]) + Sync + 'a;

/// What the runner needs besides the plan.
pub struct RunContext<'a> {
    /// When the trial started (before planning): the clock of the [`Timeline`] and of the
    /// trial time limit.
    pub started: Instant,
    /// Our own executable (runs `perfsanity sim` / `perfsanity bench`).
    pub self_exe: &'a Path,
    /// Copy client output to the terminal (`--nocapture`).
    pub tee: bool,
    /// Where copied output goes (the edge's stdout).
    pub stdout: super::process::OutputCopy,
    /// GPUs of this host (trtllm toolchain).
    pub gpus: Option<&'a super::gpus::GpuPool>,
    /// Where progress events go.
    pub progress: &'a dyn crate::run::progress::ProgressSink,
    /// Each client's result as soon as it finished (kept when a later client fails).
    pub finished: std::sync::Mutex<Vec<ClientRun>>,
    /// Called with every finished client so far, each time one finishes (writes them out).
    pub on_client_finished: Option<&'a OnClientFinished<'a>>,
    /// The liveness watch and progress-line knobs.
    pub watch: WatchSettings,
    /// `SLURM_LOCALID` of this task (expanded into launch env values).
    pub slurm_local_id: Option<&'a str>,
}

/// One client run's result.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// Client index (an aggregated trial's: `cmd_idx`, the index across the trial).
    pub index: u32,
    /// Its complete output (with the gen_only device-step block appended).
    pub output: String,
    /// Metrics parsed from it.
    pub metrics: ClientMetrics,
}

/// Milestones of a run, for the harness-overhead benchmark (seconds since the trial started,
/// i.e. before its config was read and its plan built).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// First worker spawned.
    pub first_spawn_s: f64,
    /// Every worker reported its address.
    pub workers_reported_s: f64,
    /// Router answered `/health` 200.
    pub router_ready_s: f64,
    /// First client spawned.
    pub first_client_s: f64,
    /// Last client exited.
    pub clients_done_s: f64,
    /// Every process reaped.
    pub all_reaped_s: f64,
    /// Each client's process: spawned and exited.
    pub clients: Vec<ClientSpan>,
    /// Metrics parsed and results recorded (the trial's end; set by the executor).
    pub recorded_s: f64,
}

/// One client process's life, in seconds since the trial started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ClientSpan {
    /// Spawned.
    pub spawned_s: f64,
    /// Exit observed.
    pub exited_s: f64,
}

impl Timeline {
    /// Harness overhead: set-up before the first worker, the gap between server readiness and
    /// the first client, the gaps between consecutive clients, and teardown after the last
    /// client. Server start-up and the clients' own run time are not overhead.
    pub fn overhead_s(&self) -> f64 {
        let between: f64 = self
            .clients
            .windows(2)
            .map(|w| w[1].spawned_s - w[0].exited_s)
            .sum();
        self.first_spawn_s
            + (self.first_client_s - self.router_ready_s)
            + between
            + (self.all_reaped_s - self.clients_done_s)
    }
}

/// A finished benchmark.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Client results in order.
    pub clients: Vec<ClientRun>,
    /// Milestones.
    pub timeline: Timeline,
}

/// What the shared steps ([`Graph`], [`run_client_loop`]) need of a plan. The disaggregated
/// [`Plan`] and the aggregated `AggrPlan` both provide it, so both runners wait, watch and run
/// their clients by the same code.
pub trait RunnablePlan {
    /// Trial name (progress lines and events).
    fn trial(&self) -> &str;
    /// Time limits (`trial_s`, `trial_source`: the trial limit).
    fn timeouts(&self) -> &Timeouts;
    /// The address file `role` publishes: a server that exits before it exists never came up
    /// (the runner removes stale ones before starting a role).
    fn address_file(&self, role: Role) -> Option<&Path>;
    /// Where every process runs.
    fn output_dir(&self) -> &Path;
    /// Variables removed from every child's inherited environment.
    fn launch_unset(&self) -> &[String];
    /// Every client of the trial in run order, each with how messages name it.
    fn client_list(&self) -> Vec<(&ClientSpec, String)>;
    /// Logs whose sizes are taken before each client starts (gen_only's device step time).
    fn gen_logs(&self) -> &[PathBuf];
    /// The role a client failure is blamed on besides the client, with the line that says so
    /// (the router's log naming a worker).
    fn blamed_role(&self) -> Option<(Role, String)>;
}

impl RunnablePlan for Plan {
    fn trial(&self) -> &str {
        &self.trial
    }

    fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    fn address_file(&self, role: Role) -> Option<&Path> {
        match role {
            Role::DisaggServer => Some(&self.router.process.address_file),
            _ => self
                .workers
                .iter()
                .find(|w| w.role == role)
                .map(|w| w.address_file.as_path()),
        }
    }

    fn output_dir(&self) -> &Path {
        &self.output_dir
    }

    fn launch_unset(&self) -> &[String] {
        &self.launch_env.unset
    }

    fn client_list(&self) -> Vec<(&ClientSpec, String)> {
        self.clients
            .iter()
            .map(|c| (c, format!("client {} ({})", c.index, c.name)))
            .collect()
    }

    fn gen_logs(&self) -> &[PathBuf] {
        &self.gen_logs
    }

    fn blamed_role(&self) -> Option<(Role, String)> {
        router_blames(&self.router.process.log_file, &published_workers(self))
    }
}

/// The processes this host owns for a trial, plus its clock.
pub struct Graph<'a, P = Plan> {
    /// The plan.
    pub plan: &'a P,
    /// Servers started here (dropped = stopped).
    pub servers: Vec<ManagedChild>,
    /// Trial start.
    pub started: Instant,
    /// Trial deadline (test list `TIMEOUT`, `PERF_TRIAL_TIMEOUT_S`, else the default).
    pub deadline: Option<Instant>,
    /// The trial limit in seconds and where it came from.
    limit: (u64, String),
    /// `PERF_STALL_S` / `PERF_PROGRESS_S`.
    knobs: WatchSettings,
    /// Where the progress lines of long waits go.
    progress: &'a dyn crate::run::progress::ProgressSink,
    /// The liveness watch while clients run.
    watch: Option<Watch>,
}

impl<'a, P: RunnablePlan> Graph<'a, P> {
    /// A graph for `plan` whose clock (and trial deadline) started at `ctx.started`.
    pub fn new(plan: &'a P, ctx: &RunContext<'a>) -> Self {
        let started = ctx.started;
        let timeouts = plan.timeouts();
        let limit = match timeouts.trial_s {
            Some(s) => (s, timeouts.trial_source.clone()),
            None => (
                DEFAULT_TRIAL_LIMIT_S,
                "the default, upstream's pytest --timeout".to_string(),
            ),
        };
        Graph {
            plan,
            servers: Vec::new(),
            started,
            // An unrepresentable instant (a limit of centuries) is no limit.
            deadline: deadline_after(started, Duration::from_secs(limit.0)),
            limit,
            knobs: ctx.watch,
            progress: ctx.progress,
            watch: None,
        }
    }

    /// Starts the liveness watch over `targets` (while the clients run).
    pub fn watch(&mut self, targets: Vec<Target>) {
        self.watch = match Watch::start(targets, self.knobs.stall) {
            Ok(watch) => watch,
            Err(e) => {
                // The trial can still measure; it only loses the early `stalled` verdict.
                self.progress.event(ProgressEvent::Warning {
                    trial: self.plan.trial().to_string(),
                    message: e.to_string(),
                });
                None
            }
        };
    }

    /// Ends the liveness watch.
    pub fn unwatch(&mut self) {
        self.watch = None;
    }

    /// The process of `role`, when this host started it.
    pub fn pid_of(&self, role: Role) -> Option<i32> {
        self.servers
            .iter()
            .find(|c| c.role == Some(role))
            .map(ManagedChild::pid)
    }

    /// Seconds since the trial started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Fails when a server has exited, the run was interrupted or the trial is out of time.
    pub fn check(&mut self, phase: &str) -> Result<(), TrialFailure> {
        if let Some(sig) = interrupted() {
            return Err(TrialFailure::new(
                FailureClass::Interrupted,
                None,
                format!("interrupted by signal {sig} while {phase}"),
                None,
            ));
        }
        let plan = self.plan;
        for child in &mut self.servers {
            if let Some(status) = child.try_status() {
                // A server that dies before publishing its address never came up (bad host,
                // port in use, bad config, missing model): a launch failure. After that, a
                // crash.
                let reported = child
                    .role
                    .and_then(|r| plan.address_file(r))
                    .is_some_and(|f| read_address(f).is_some());
                let (class, when) = if reported {
                    (FailureClass::Crash, "")
                } else {
                    (FailureClass::Launch, " before reporting its address")
                };
                let panicked = crate::util::log_file::panic_message(&child.log)
                    .map(|m| format!(" after a panic: {m},"))
                    .unwrap_or_default();
                return Err(TrialFailure::new(
                    class,
                    child.role,
                    format!(
                        "{} exited with {}{when}{panicked} while {phase} (it was still needed)",
                        child.name,
                        describe_status(&status)
                    ),
                    Some(&child.log),
                ));
            }
        }
        if let Some(stall) = self.watch.as_ref().and_then(Watch::verdict) {
            let log = self.log_of(stall.role);
            return Err(TrialFailure::new(
                FailureClass::Stalled,
                Some(stall.role),
                format!("{} while {phase}", stall.message),
                log.as_deref(),
            ));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(TrialFailure::new(
                FailureClass::Timeout,
                None,
                format!(
                    "trial time limit of {} s ({}) reached while {phase}{}",
                    self.limit.0,
                    self.limit.1,
                    self.server_log_ends()
                ),
                None,
            ));
        }
        Ok(())
    }

    /// The last line of every server's log, so a timeout names what each server was doing
    /// (a hung worker's own last words are usually the explanation).
    fn server_log_ends(&self) -> String {
        let mut out = String::new();
        for child in &self.servers {
            let last = crate::util::log_file::tail(&child.log, 1).unwrap_or_default();
            let last = last.trim();
            out.push_str(&format!(
                "\n  {}: {}",
                child.name,
                if last.is_empty() { "(empty log)" } else { last }
            ));
        }
        if out.is_empty() {
            out
        } else {
            format!("; last line of each server's log:{out}")
        }
    }

    /// Polls `probe` until it yields, watching processes and deadlines; `limit` bounds this wait.
    pub fn wait_for<T>(
        &mut self,
        phase: &str,
        limit: Option<Duration>,
        on_timeout: impl FnOnce(&Self) -> TrialFailure,
        mut probe: impl FnMut() -> Option<T>,
    ) -> Result<T, TrialFailure> {
        let began = Instant::now();
        let until = limit.and_then(|l| deadline_after(began, l));
        let every = self.knobs.progress;
        let mut next_line = deadline_after(began, every).filter(|_| !every.is_zero());
        loop {
            if let Some(v) = probe() {
                return Ok(v);
            }
            self.check(phase)?;
            if next_line.is_some_and(|t| Instant::now() >= t) {
                self.progress.event(self.still_waiting(phase, began));
                next_line = next_line.and_then(|t| deadline_after(t, every));
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Err(on_timeout(self));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The progress event of a wait in `phase` that began at `began`.
    fn still_waiting(&self, phase: &str, began: Instant) -> ProgressEvent {
        ProgressEvent::StillWaiting {
            trial: self.plan.trial().to_string(),
            phase: phase.to_string(),
            waited: began.elapsed(),
            limit_s: self.limit.0,
            limit_source: self.limit.1.clone(),
            left: self
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or_default(),
        }
    }

    /// Stops every server (SIGTERM to all groups first, so they shut down in parallel).
    pub fn stop_all(&mut self) {
        for child in &mut self.servers {
            if child.try_status().is_none() {
                let group = nix::unistd::Pid::from_raw(child.pid());
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
                // A stopped process acts on SIGTERM only once continued.
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGCONT);
            }
        }
        for child in &mut self.servers {
            child.stop(GRACE);
        }
    }

    fn log_of(&self, role: Role) -> Option<PathBuf> {
        self.servers
            .iter()
            .find(|c| c.role == Some(role))
            .map(|c| c.log.clone())
    }
}

/// Reads an address file: `host:port`, split at the last `:`.
pub fn read_address(path: &Path) -> Option<(String, u16)> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    let (host, port) = text.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// Removes `paths` that exist (a missing file is fine).
pub fn remove_files(paths: &[PathBuf]) -> std::io::Result<()> {
    for p in paths {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Generates a simulator dataset the plan points at, if needed.
pub fn ensure_dataset(plan: &Plan) -> Result<(), TrialFailure> {
    if let DatasetPlan::Generated { path, spec, .. } = &plan.dataset {
        super::dataset::ensure_generated(path, spec, &plan.model_path)
            .map_err(TrialFailure::config)?;
    }
    Ok(())
}

/// Where a worker's output goes besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenLog {
    /// Link `gen_server_<i>.log` to the worker's log (single host: we are the launcher).
    Link,
    /// Copy the worker's output to the run's stdout (`RunContext::stdout`; a SLURM launcher redirects it there).
    Stdout,
}

/// Starts one worker and adds it to the graph.
pub fn spawn_worker(
    graph: &mut Graph<'_>,
    w: &ProcessSpec,
    ctx: &RunContext<'_>,
    lease: Option<&GpuLease<'_>>,
    gen_log: GenLog,
) -> Result<(), TrialFailure> {
    let plan = graph.plan;
    let extra_env = lease
        .map(|l| {
            vec![(
                "CUDA_VISIBLE_DEVICES".to_string(),
                l.devices(w.first_gpu, w.gpus),
            )]
        })
        .unwrap_or_default();
    let child = spawn(Launch {
        role: Some(w.role),
        name: w.role.to_string(),
        argv: &w.argv,
        extra_args: Vec::new(),
        env: &w.env,
        extra_env,
        env_remove: &plan.launch_env.unset,
        log: &w.log_file,
        cwd: &plan.output_dir,
        self_exe: ctx.self_exe,
        tee: (matches!(w.role, Role::Gen(_)) && gen_log == GenLog::Stdout)
            .then(|| ctx.stdout.clone()),
        slurm_local_id: ctx.slurm_local_id,
    })
    .map_err(|e| TrialFailure::new(FailureClass::Launch, Some(w.role), e.to_string(), None))?;
    graph.servers.push(child);
    if let (Role::Gen(g), GenLog::Link) = (w.role, gen_log) {
        // The gen_only metric reads gen_server_<i>.log, as on SLURM: same file, second name.
        let link = &plan.gen_logs[g as usize];
        remove_files(std::slice::from_ref(link))
            .and_then(|()| std::fs::hard_link(&w.log_file, link))
            .map_err(|e| TrialFailure::config(format!("cannot link {}: {e}", link.display())))?;
    }
    Ok(())
}

/// Waits until every worker in `workers` has reported its address; `(role, host:port)`.
pub fn await_worker_addresses(
    graph: &mut Graph<'_>,
    workers: &[(Role, PathBuf)],
    mut on_up: impl FnMut(Role, &str),
) -> Result<Vec<(Role, String)>, TrialFailure> {
    let wait_s = graph.plan.timeouts.wait_s;
    let mut seen: Vec<Role> = Vec::new();
    graph.wait_for(
        "waiting for the workers to report their addresses",
        Some(Duration::from_secs(wait_s)),
        |g| {
            let missing: Vec<Role> = workers
                .iter()
                .filter(|(_, f)| read_address(f).is_none())
                .map(|(r, _)| *r)
                .collect();
            let first = missing.first().copied();
            let log = first.and_then(|r| g.log_of(r));
            TrialFailure::new(
                FailureClass::NeverReady,
                first,
                format!(
                    "{} did not report an address within {wait_s} s (slurm.timeout)",
                    missing
                        .iter()
                        .map(Role::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                log.as_deref(),
            )
        },
        || {
            let found: Vec<Option<(Role, String)>> = workers
                .iter()
                .map(|(r, f)| read_address(f).map(|(h, p)| (*r, format!("{h}:{p}"))))
                .collect();
            for (role, addr) in found.iter().flatten() {
                if !seen.contains(role) {
                    seen.push(*role);
                    on_up(*role, addr);
                }
            }
            found.into_iter().collect::<Option<Vec<_>>>()
        },
    )
}

/// Writes `server_config.<s>.yaml` with the worker URLs in role-index order.
pub fn write_router_config(plan: &Plan, addresses: &[(Role, String)]) -> Result<(), TrialFailure> {
    let urls = |pick: fn(Role) -> Option<u32>| {
        let mut v: Vec<(u32, String)> = addresses
            .iter()
            .filter_map(|(r, a)| pick(*r).map(|i| (i, a.clone())))
            .collect();
        v.sort();
        v.into_iter().map(|(_, a)| a).collect::<Vec<_>>()
    };
    let ctx_urls = urls(|r| if let Role::Ctx(i) = r { Some(i) } else { None });
    let gen_urls = urls(|r| if let Role::Gen(i) = r { Some(i) } else { None });
    crate::util::fs::write_atomic(
        &plan.router.config_path,
        plan.router.config.render(&ctx_urls, &gen_urls).as_bytes(),
    )
    .map_err(|e| {
        TrialFailure::config(format!(
            "cannot write {}: {e}",
            plan.router.config_path.display()
        ))
    })
}

/// Starts the router (its stale address file removed first) and adds it to the graph.
pub fn spawn_router(graph: &mut Graph<'_>, ctx: &RunContext<'_>) -> Result<(), TrialFailure> {
    let plan = graph.plan;
    let r = &plan.router.process;
    remove_files(std::slice::from_ref(&r.address_file)).map_err(|e| {
        TrialFailure::config(format!("cannot remove {}: {e}", r.address_file.display()))
    })?;
    let router = spawn(Launch {
        role: Some(Role::DisaggServer),
        name: "DISAGG_SERVER".to_string(),
        argv: &r.argv,
        extra_args: Vec::new(),
        env: &r.env,
        extra_env: Vec::new(),
        env_remove: &plan.launch_env.unset,
        log: &r.log_file,
        cwd: &plan.output_dir,
        self_exe: ctx.self_exe,
        tee: None,
        slurm_local_id: ctx.slurm_local_id,
    })
    .map_err(|e| {
        TrialFailure::new(
            FailureClass::Launch,
            Some(Role::DisaggServer),
            e.to_string(),
            None,
        )
    })?;
    graph.servers.push(router);
    Ok(())
}

/// Waits for the router's address file and for `GET /health` → 200; returns its address.
pub fn await_router(graph: &mut Graph<'_>) -> Result<(String, u16), TrialFailure> {
    let plan = graph.plan;
    let r = &plan.router.process;
    let router_log = r.log_file.clone();
    let (host, port) = graph.wait_for(
        "waiting for the router to report its address",
        Some(Duration::from_secs(plan.timeouts.wait_s)),
        |_| {
            TrialFailure::new(
                FailureClass::NeverReady,
                Some(Role::DisaggServer),
                format!(
                    "the router did not report an address to {} within {} s",
                    r.address_file.display(),
                    plan.timeouts.wait_s
                ),
                Some(&router_log),
            )
        },
        || read_address(&r.address_file),
    )?;
    let health = HealthProbe::new(&host, port)?;
    graph.wait_for(
        "waiting for the router to become ready",
        Some(Duration::from_secs(plan.timeouts.ready_s)),
        |g| {
            let message = format!(
                "{} did not answer 200 within {} s (last answer: {})",
                health.url(),
                plan.timeouts.ready_s,
                health.last_answer()
            );
            // The router waits for its workers: one that is not ready is the role at fault.
            match unready_workers(plan, health.client()).into_iter().next() {
                Some((role, why)) => TrialFailure::new(
                    FailureClass::NeverReady,
                    Some(role),
                    format!("{role} never became ready behind the router ({why}): {message}"),
                    g.log_of(role).as_deref(),
                ),
                None => TrialFailure::new(
                    FailureClass::NeverReady,
                    Some(Role::DisaggServer),
                    message,
                    Some(&router_log),
                ),
            }
        },
        || health.ready(),
    )?;
    Ok((host, port))
}

/// Workers whose `/health` does not answer 200, with what it answered.
fn unready_workers(plan: &Plan, http: &reqwest::blocking::Client) -> Vec<(Role, String)> {
    plan.workers
        .iter()
        .filter_map(|w| {
            let Some((h, p)) = read_address(&w.address_file) else {
                return Some((w.role, "no address published".to_string()));
            };
            let url = format!("http://{h}:{p}/health");
            match http.get(&url).send() {
                Ok(r) if r.status().as_u16() == 200 => None,
                Ok(r) => Some((w.role, format!("{url} answers {}", r.status().as_u16()))),
                Err(e) => Some((w.role, format!("{url} does not answer: {e}"))),
            }
        })
        .collect()
}

/// Checks that each worker's published address is served by that worker's own process tree
/// and nobody else's: another server that took (or shares, `SO_REUSEPORT`) the address would get
/// the router's requests. Only the listeners the kernel would hand a connection to that address
/// count (bound to it exactly, else a wildcard on its port); an address this host shows no
/// listener for (a remote host) is not checked.
pub fn verify_worker_ports(
    graph: &Graph<'_>,
    addresses: &[(Role, String)],
) -> Result<(), TrialFailure> {
    for (role, address) in addresses {
        let Some(child) = graph.servers.iter().find(|c| c.role == Some(*role)) else {
            continue;
        };
        let Some((host, port)) = address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        else {
            continue;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(resolved) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) else {
            continue;
        };
        let inodes = super::ports::serving_inodes(&resolved.collect::<Vec<_>>());
        if inodes.is_empty() {
            continue;
        }
        let (foreign, ours) = super::ports::split_holders(&inodes, |pid| {
            pid == child.pid() || super::tree::in_tree(pid, child.mark())
        });
        let foreign: Vec<String> = foreign
            .into_iter()
            .map(super::ports::describe_pid)
            .collect();
        if !foreign.is_empty() || !ours {
            let who = if foreign.is_empty() {
                "a process this user cannot inspect".to_string()
            } else {
                foreign.join(", ")
            };
            return Err(TrialFailure::new(
                FailureClass::Launch,
                Some(*role),
                format!(
                    "{role} published {address}, but port {port} is served by {who}{}: another \
                     server took its port",
                    if ours {
                        " as well as by it"
                    } else {
                        ", not by it"
                    }
                ),
                Some(&child.log),
            ));
        }
    }
    Ok(())
}

/// The worker the router's log blames: the last line of its tail that names a worker's
/// address (`(role, line)`). The router knows which worker failed a request; the client only
/// sees the failure.
pub fn router_blames(router_log: &Path, workers: &[(Role, String)]) -> Option<(Role, String)> {
    let tail = crate::util::log_file::tail(router_log, crate::util::log_file::TAIL_LINES)?;
    tail.lines()
        .rev()
        .filter(|l| is_problem_line(l))
        .find_map(|line| {
            workers
                .iter()
                .find(|(_, addr)| line.contains(addr.as_str()))
                .map(|(role, _)| (*role, line.trim().to_string()))
        })
}

/// A warning or error line (TensorRT-LLM's `[W]` / `[E]`, Python's `WARNING` / `ERROR`).
fn is_problem_line(line: &str) -> bool {
    ["[W]", "[E]", "WARNING", "ERROR", "Error", "error:"]
        .iter()
        .any(|tag| line.contains(tag))
}

/// Worker addresses as published (`host:port`).
fn published_workers(plan: &Plan) -> Vec<(Role, String)> {
    plan.workers
        .iter()
        .filter_map(|w| read_address(&w.address_file).map(|(h, p)| (w.role, format!("{h}:{p}"))))
        .collect()
}

/// A client failure, with the role the plan blames (the router's log naming a worker) when it
/// names one.
fn client_failure<P: RunnablePlan>(
    plan: &P,
    class: FailureClass,
    message: String,
    client_log: &Path,
) -> TrialFailure {
    match plan.blamed_role() {
        Some((role, line)) => TrialFailure::new(
            class,
            Some(role),
            format!("{message}; the router's log blames {role}: {line}"),
            Some(client_log),
        ),
        None => TrialFailure::new(class, Some(Role::Benchmark), message, Some(client_log)),
    }
}

/// A client's raw output and the gen-log offsets taken before it started.
pub struct ClientOutput<'p> {
    /// The client.
    pub spec: &'p ClientSpec,
    /// Its output.
    pub output: String,
    /// Byte sizes of the `gen_server_<i>.log` files just before it started.
    pub gen_offsets: Vec<u64>,
}

/// Runs every client in turn against `host:port`.
pub fn run_clients<'p>(
    graph: &mut Graph<'p>,
    ctx: &RunContext<'_>,
    host: &str,
    port: u16,
    timeline: &mut Timeline,
) -> Result<Vec<ClientOutput<'p>>, TrialFailure> {
    let plan = graph.plan;
    let targets = watch_targets(graph, host, port);
    let mut outputs = Vec::new();
    run_client_loop(
        graph,
        ctx,
        (host, port),
        targets,
        0..plan.clients.len(),
        timeline,
        |_, done| {
            keep_finished(plan, ctx, &done);
            outputs.push(done);
            Ok(())
        },
    )?;
    Ok(outputs)
}

/// Every role with a published address: the workers and the router at `host:port`.
fn watch_targets(graph: &Graph<'_>, host: &str, port: u16) -> Vec<Target> {
    let plan = graph.plan;
    let mut targets: Vec<Target> = plan
        .workers
        .iter()
        .filter_map(|w| {
            let (h, p) = read_address(&w.address_file)?;
            Some(Target {
                role: w.role,
                pid: graph.pid_of(w.role),
                address: format!("{h}:{p}"),
                worker: true,
            })
        })
        .collect();
    targets.push(Target {
        role: Role::DisaggServer,
        pid: graph.pid_of(Role::DisaggServer),
        address: format!("{host}:{port}"),
        worker: false,
    });
    targets
}

/// Runs the clients at `positions` (indices into [`RunnablePlan::client_list`]) one after
/// another against `host:port`, with the liveness watch over `targets` while they run — the
/// client loop of every runtime. Each wait prints the `PERF_PROGRESS_S` line; each client is
/// announced to `ctx.progress`; a client that fails is classified (a dead or stalled server
/// first). `finished` is given each client that finished cleanly, with its position, and may
/// still fail the trial (missing metrics).
pub fn run_client_loop<'p, P: RunnablePlan>(
    graph: &mut Graph<'p, P>,
    ctx: &RunContext<'_>,
    at: (&str, u16),
    targets: Vec<Target>,
    positions: Range<usize>,
    timeline: &mut Timeline,
    finished: impl FnMut(usize, ClientOutput<'p>) -> Result<(), TrialFailure>,
) -> Result<(), TrialFailure> {
    graph.watch(targets);
    let ran = each_client(graph, ctx, at, positions, timeline, finished);
    graph.unwatch();
    ran
}

fn each_client<'p, P: RunnablePlan>(
    graph: &mut Graph<'p, P>,
    ctx: &RunContext<'_>,
    (host, port): (&str, u16),
    positions: Range<usize>,
    timeline: &mut Timeline,
    mut finished: impl FnMut(usize, ClientOutput<'p>) -> Result<(), TrialFailure>,
) -> Result<(), TrialFailure> {
    let plan: &'p P = graph.plan;
    let clients = plan.client_list();
    let of = clients.len();
    let requests_total: u64 = clients.iter().map(|(c, _)| c.num_prompts).sum();
    let mut requests_done: u64 = clients
        .iter()
        .take(positions.start)
        .map(|(c, _)| c.num_prompts)
        .sum();
    for i in positions {
        let Some((c, label)) = clients.get(i) else {
            break;
        };
        let c: &'p ClientSpec = c;
        let spent = Duration::from_secs_f64(graph.elapsed() - timeline.first_client_s);
        ctx.progress.event(ProgressEvent::ClientStarted {
            trial: plan.trial().to_string(),
            position: i + 1,
            of,
            name: c.name.clone(),
            requests_done,
            requests_total,
            eta: crate::run::progress::eta(spent, i, of - i),
        });
        let gen_offsets: Vec<u64> = plan
            .gen_logs()
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect();
        let spawned_s = graph.elapsed();
        if i == 0 {
            timeline.first_client_s = spawned_s;
        }
        let mut client = spawn(Launch {
            role: Some(Role::Benchmark),
            name: label.clone(),
            argv: &c.argv,
            extra_args: vec![
                "--host".into(),
                host.to_string(),
                "--port".into(),
                port.to_string(),
            ],
            env: &c.env,
            extra_env: Vec::new(),
            env_remove: plan.launch_unset(),
            log: &c.log_file,
            cwd: plan.output_dir(),
            self_exe: ctx.self_exe,
            tee: ctx.tee.then(|| ctx.stdout.clone()),
            slurm_local_id: ctx.slurm_local_id,
        })
        .map_err(|e| {
            TrialFailure::new(
                FailureClass::Launch,
                Some(Role::Benchmark),
                e.to_string(),
                None,
            )
        })?;
        let phase = format!("{label} was running");
        let status = graph.wait_for(
            &phase,
            None,
            |_| unreachable!("no limit"),
            || client.try_status(),
        );
        let status = match status {
            Ok(s) => s,
            Err(mut f) => {
                client.stop(GRACE);
                if f.class == FailureClass::Timeout {
                    f.role = Some(Role::Benchmark);
                    f.log_tail = Some(LogTail::read(&c.log_file));
                }
                return Err(f);
            }
        };
        timeline.clients.push(ClientSpan {
            spawned_s,
            exited_s: graph.elapsed(),
        });
        let output =
            String::from_utf8_lossy(&std::fs::read(&c.log_file).unwrap_or_default()).into_owned();
        let client_ok = status.success() && check_client_output(&output).is_ok();
        if !client_ok {
            // The client's failure is often the echo of a server that died under it (the client
            // may even notice first): a dead server is the root cause, so it is reported.
            graph.check(&phase)?;
        }
        // `perfsanity bench` exits 3 when requests failed: the output check below names them.
        let failed_requests_exit =
            status.code() == Some(i32::from(crate::tools::bench::limits::EXIT_FAILED_REQUESTS));
        if !status.success() && !failed_requests_exit {
            return Err(client_failure(
                plan,
                FailureClass::Client,
                format!("{label} exited with {}", describe_status(&status)),
                &c.log_file,
            ));
        }
        if let Err(problem) = check_client_output(&output) {
            return Err(client_failure(
                plan,
                FailureClass::FailedRequests,
                format!("{label}: {problem}"),
                &c.log_file,
            ));
        }
        requests_done += c.num_prompts;
        ctx.progress.event(ProgressEvent::ClientFinished {
            trial: plan.trial().to_string(),
            position: i + 1,
            of,
            requests_done,
            requests_total,
            took: Duration::from_secs_f64(graph.elapsed() - spawned_s),
        });
        if failed_requests_exit {
            return Err(client_failure(
                plan,
                FailureClass::FailedRequests,
                format!(
                    "{label} exited with {}: some requests failed",
                    describe_status(&status)
                ),
                &c.log_file,
            ));
        }
        finished(
            i,
            ClientOutput {
                spec: c,
                output,
                gen_offsets,
            },
        )?;
    }
    timeline.clients_done_s = graph.elapsed();
    Ok(())
}

/// Keeps a finished client's metrics in `ctx.finished` right away, so a later failure does
/// not discard them (the main path recomputes them once every gen log is complete).
fn keep_finished(plan: &Plan, ctx: &RunContext<'_>, done: &ClientOutput<'_>) {
    let copy = ClientOutput {
        spec: done.spec,
        output: done.output.clone(),
        gen_offsets: done.gen_offsets.clone(),
    };
    if let Ok(runs) = finish_metrics(plan, vec![copy]) {
        for run in runs {
            keep_client(ctx, run);
        }
    }
}

/// Adds a finished client's result to `ctx.finished` and hands every finished client so far to
/// `ctx.on_client_finished` (which writes their records), so a later failure — or a `kill -9`
/// of the runner — loses none of them.
pub fn keep_client(ctx: &RunContext<'_>, run: ClientRun) {
    let mut finished = ctx.finished.lock().unwrap_or_else(|e| e.into_inner());
    finished.push(run);
    if let Some(write) = ctx.on_client_finished {
        write(&finished);
    }
}

/// Marks the benchmark done for every role (`benchmark_status.<s>.txt` = `Done`).
pub fn write_status_done(plan: &Plan) {
    let _ = crate::util::fs::write_atomic(&plan.status_file, b"Done");
}

/// True when `path` was written at or after `since` (a file from an earlier run does not count).
pub fn written_since(path: &Path, since: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since)
}

/// Metrics of every client: the gen_only device-step block appended first (as upstream does,
/// to the output and to the log), then upstream's regexes and its completeness check.
pub fn finish_metrics(
    plan: &Plan,
    outputs: Vec<ClientOutput<'_>>,
) -> Result<Vec<ClientRun>, TrialFailure> {
    let sa = plan.client_kind == ClientKind::NvSa;
    let mut clients = Vec::new();
    for ClientOutput {
        spec: c,
        mut output,
        gen_offsets,
    } in outputs
    {
        if plan.mode.is_gen_only() {
            let logs: Vec<(&PathBuf, u64)> = plan.gen_logs.iter().zip(gen_offsets).collect();
            if let Some(stats) = device_step_stats(&logs) {
                let block = stats.block();
                output.push_str(&block);
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&c.log_file) {
                    let _ = f.write_all(block.as_bytes());
                }
            }
        }
        let metrics = parse_client_output(&output, sa);
        check_metrics(plan, c.index, &c.name, &metrics, &c.log_file)?;
        clients.push(ClientRun {
            index: c.index,
            output,
            metrics,
        });
    }
    Ok(clients)
}

/// The part of upstream's `check_test_failure` (§5.4) every runtime shares: all 16 base metrics,
/// and `al` when `al_expected` (speculative decoding measured by the standard client).
pub(crate) fn metric_problems(metrics: &ClientMetrics, al_expected: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let missing = metrics.missing_base_metrics();
    if !missing.is_empty() {
        problems.push(format!(
            "metrics missing from the client output: {}",
            missing.join(", ")
        ));
    }
    if al_expected && !metrics.contains("al") {
        problems.push(
            "speculative decoding is configured but 'Mean Avg Decoded Tokens per Iter' is missing"
                .to_string(),
        );
    }
    problems
}

/// Upstream's `check_test_failure` (§5.4): all 16 metrics; `al` for spec decoding (standard
/// client); the device step time for gen_only.
fn check_metrics(
    plan: &Plan,
    index: u32,
    name: &str,
    metrics: &ClientMetrics,
    log: &Path,
) -> Result<(), TrialFailure> {
    let mut problems = metric_problems(
        metrics,
        plan.spec_decoding && plan.client_kind == ClientKind::Standard,
    );
    if plan.mode.is_gen_only() && !metrics.contains("mean_gen_worker_per_iter_device_step_time") {
        problems.push(
            "gen_only: no 'prev_device_step_time' iteration lines in gen_server_*.log (set \
             print_iter_log: true on the gen workers)"
                .to_string(),
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(TrialFailure::new(
        FailureClass::MissingMetric,
        Some(Role::Benchmark),
        format!("client {index} ({name}): {}", problems.join("; ")),
        Some(log),
    ))
}
