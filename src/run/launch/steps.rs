//! The steps a trial is made of, shared by the single-host runner ([`super::local`]) and role
//! mode ([`super::role`]): spawning workers and the router, waiting for rendezvous files and
//! readiness, running the clients, and turning their output into metrics.
//!
//! Every wait is a short poll through [`Graph::wait_for`], which also watches every process
//! the graph owns, the interrupt flag and the trial deadline — so a dying server fails the
//! trial at once, naming its role, with its log tail.

use crate::util::deadline::deadline_after;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::gpus::GpuLease;
use super::logs::log_tail;
use super::process::{GRACE, Launch, ManagedChild, describe_status, spawn};
use super::signals::interrupted;
use crate::measure::gen_log::device_step_stats;
use crate::measure::{ClientMetrics, check_client_output, parse_client_output};
use crate::plan::toolchain::ClientKind;
use crate::plan::{ClientSpec, DatasetPlan, Plan, ProcessSpec, Role};
use crate::run::outcome::{FailureClass, TrialFailure};
use crate::run::progress::ProgressEvent;

/// Poll interval of every wait.
pub const POLL: Duration = Duration::from_millis(10);
/// Timeout of one `/health` request.
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the benchmark waits for `gen_server_<i>.done` sentinels (upstream: 120 s, soft).
pub const SENTINEL_WAIT: Duration = Duration::from_secs(120);

/// What the runner needs besides the plan.
pub struct RunContext<'a> {
    /// When the trial started (before planning): the clock of the [`Timeline`] and of the
    /// trial time limit.
    pub started: Instant,
    /// Our own executable (runs `perfsanity sim` / `perfsanity bench`).
    pub self_exe: &'a Path,
    /// Copy client output to the terminal (`--nocapture`).
    pub tee: bool,
    /// GPUs of this host (trtllm toolchain).
    pub gpus: Option<&'a super::gpus::GpuPool>,
    /// Where progress events go.
    pub progress: &'a dyn crate::run::progress::ProgressSink,
}

/// One client run's result.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// Client index.
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

/// A classified failure.
pub fn failure(
    class: FailureClass,
    role: Option<Role>,
    message: String,
    log: Option<&Path>,
) -> TrialFailure {
    TrialFailure {
        class,
        role,
        message,
        log_tail: log.map(log_tail),
    }
}

/// A config-class failure (nothing started yet, or our own file system trouble).
pub fn config_failure(message: String) -> TrialFailure {
    failure(FailureClass::Config, None, message, None)
}

/// The processes this host owns for a trial, plus its clock.
pub struct Graph<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Servers started here (dropped = stopped).
    pub servers: Vec<ManagedChild>,
    /// Trial start.
    pub started: Instant,
    /// Trial deadline (test list `TIMEOUT`).
    pub deadline: Option<Instant>,
}

impl<'a> Graph<'a> {
    /// A graph for `plan` whose clock (and trial deadline) started at `started`.
    pub fn new(plan: &'a Plan, started: Instant) -> Self {
        Graph {
            plan,
            servers: Vec::new(),
            started,
            deadline: plan
                .timeouts
                .trial_s
                .and_then(|s| deadline_after(started, Duration::from_secs(s))),
        }
    }

    /// Seconds since the trial started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Fails when a server has exited, the run was interrupted or the trial is out of time.
    pub fn check(&mut self, phase: &str) -> Result<(), TrialFailure> {
        if let Some(sig) = interrupted() {
            return Err(failure(
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
                let reported = child.role.is_some_and(|r| address_reported(plan, r));
                let (class, when) = if reported {
                    (FailureClass::Crash, "")
                } else {
                    (FailureClass::Launch, " before reporting its address")
                };
                return Err(failure(
                    class,
                    child.role,
                    format!(
                        "{} exited with {}{when} while {phase} (it was still needed)",
                        child.name,
                        describe_status(&status)
                    ),
                    Some(&child.log),
                ));
            }
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(failure(
                FailureClass::Timeout,
                None,
                format!(
                    "trial time limit of {} s ({}) reached while {phase}{}",
                    plan.timeouts.trial_s.unwrap_or(0),
                    plan.timeouts.trial_source,
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
            let last = super::logs::tail(&child.log, 1).unwrap_or_default();
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
        let until = limit.and_then(|l| deadline_after(Instant::now(), l));
        loop {
            if let Some(v) = probe() {
                return Ok(v);
            }
            self.check(phase)?;
            if until.is_some_and(|u| Instant::now() >= u) {
                return Err(on_timeout(self));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops every server (SIGTERM to all groups first, so they shut down in parallel).
    pub fn stop_all(&mut self) {
        for child in &mut self.servers {
            if child.try_status().is_none() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.pid()),
                    nix::sys::signal::Signal::SIGTERM,
                );
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

/// True when `role` has published its address file in this run (the runner removes stale
/// ones before starting a role).
fn address_reported(plan: &Plan, role: Role) -> bool {
    let file = match role {
        Role::DisaggServer => Some(&plan.router.process.address_file),
        _ => plan
            .workers
            .iter()
            .find(|w| w.role == role)
            .map(|w| &w.address_file),
    };
    file.is_some_and(|f| read_address(f).is_some())
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
        super::dataset::ensure_generated(path, spec, &plan.model_path).map_err(config_failure)?;
    }
    Ok(())
}

/// Where a worker's output goes besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenLog {
    /// Link `gen_server_<i>.log` to the worker's log (single host: we are the launcher).
    Link,
    /// Copy the worker's output to our stdout (a SLURM launcher redirects it there).
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
        tee: matches!(w.role, Role::Gen(_)) && gen_log == GenLog::Stdout,
    })
    .map_err(|e| failure(FailureClass::Launch, Some(w.role), e.to_string(), None))?;
    graph.servers.push(child);
    if let (Role::Gen(g), GenLog::Link) = (w.role, gen_log) {
        // The gen_only metric reads gen_server_<i>.log, as on SLURM: same file, second name.
        let link = &plan.gen_logs[g as usize];
        remove_files(std::slice::from_ref(link))
            .and_then(|()| std::fs::hard_link(&w.log_file, link))
            .map_err(|e| config_failure(format!("cannot link {}: {e}", link.display())))?;
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
            failure(
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
    crate::plan::prepare::write_atomic(
        &plan.router.config_path,
        plan.router.config.render(&ctx_urls, &gen_urls).as_bytes(),
    )
    .map_err(|e| {
        config_failure(format!(
            "cannot write {}: {e}",
            plan.router.config_path.display()
        ))
    })
}

/// Starts the router (its stale address file removed first) and adds it to the graph.
pub fn spawn_router(graph: &mut Graph<'_>, ctx: &RunContext<'_>) -> Result<(), TrialFailure> {
    let plan = graph.plan;
    let r = &plan.router.process;
    remove_files(std::slice::from_ref(&r.address_file))
        .map_err(|e| config_failure(format!("cannot remove {}: {e}", r.address_file.display())))?;
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
        tee: false,
    })
    .map_err(|e| {
        failure(
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
            failure(
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
    let http = reqwest::blocking::Client::builder()
        .timeout(HEALTH_REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| config_failure(format!("cannot create an HTTP client: {e}")))?;
    let health_url = format!("http://{host}:{port}/health");
    let last_status = std::cell::Cell::new(None);
    graph.wait_for(
        "waiting for the router to become ready",
        Some(Duration::from_secs(plan.timeouts.ready_s)),
        |_| {
            failure(
                FailureClass::NeverReady,
                Some(Role::DisaggServer),
                format!(
                    "{health_url} did not answer 200 within {} s (last answer: {})",
                    plan.timeouts.ready_s,
                    last_status
                        .get()
                        .map_or("none".to_string(), |s: u16| s.to_string())
                ),
                Some(&router_log),
            )
        },
        || {
            let status = http
                .get(&health_url)
                .send()
                .ok()
                .map(|r| r.status().as_u16());
            last_status.set(status.or(last_status.get()));
            (status == Some(200)).then_some(())
        },
    )?;
    Ok((host, port))
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
    let mut outputs = Vec::new();
    let requests_total: u64 = plan.clients.iter().map(|c| c.num_prompts).sum();
    let mut requests_done = 0;
    for (i, c) in plan.clients.iter().enumerate() {
        let spent = Duration::from_secs_f64(graph.elapsed() - timeline.first_client_s);
        ctx.progress.event(ProgressEvent::ClientStarted {
            trial: plan.trial.clone(),
            position: i + 1,
            of: plan.clients.len(),
            name: c.name.clone(),
            requests_done,
            requests_total,
            eta: crate::run::progress::eta(spent, i, plan.clients.len() - i),
        });
        let gen_offsets: Vec<u64> = plan
            .gen_logs
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect();
        let spawned_s = graph.elapsed();
        if i == 0 {
            timeline.first_client_s = spawned_s;
        }
        let mut client = spawn(Launch {
            role: Some(Role::Benchmark),
            name: format!("client {} ({})", c.index, c.name),
            argv: &c.argv,
            extra_args: vec![
                "--host".into(),
                host.to_string(),
                "--port".into(),
                port.to_string(),
            ],
            env: &c.env,
            extra_env: Vec::new(),
            env_remove: &plan.launch_env.unset,
            log: &c.log_file,
            cwd: &plan.output_dir,
            self_exe: ctx.self_exe,
            tee: ctx.tee,
        })
        .map_err(|e| {
            failure(
                FailureClass::Launch,
                Some(Role::Benchmark),
                e.to_string(),
                None,
            )
        })?;
        let status = graph.wait_for(
            &format!("client {} ({}) was running", c.index, c.name),
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
                    f.log_tail = Some(log_tail(&c.log_file));
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
            graph.check(&format!("client {} ({}) was running", c.index, c.name))?;
        }
        if !status.success() {
            return Err(failure(
                FailureClass::Client,
                Some(Role::Benchmark),
                format!(
                    "client {} ({}) exited with {}",
                    c.index,
                    c.name,
                    describe_status(&status)
                ),
                Some(&c.log_file),
            ));
        }
        if let Err(problem) = check_client_output(&output) {
            return Err(failure(
                FailureClass::FailedRequests,
                Some(Role::Benchmark),
                format!("client {} ({}): {problem}", c.index, c.name),
                Some(&c.log_file),
            ));
        }
        requests_done += c.num_prompts;
        ctx.progress.event(ProgressEvent::ClientFinished {
            trial: plan.trial.clone(),
            position: i + 1,
            of: plan.clients.len(),
            requests_done,
            requests_total,
            took: Duration::from_secs_f64(graph.elapsed() - spawned_s),
        });
        outputs.push(ClientOutput {
            spec: c,
            output,
            gen_offsets,
        });
    }
    timeline.clients_done_s = graph.elapsed();
    Ok(outputs)
}

/// Marks the benchmark done for every role (`benchmark_status.<s>.txt` = `Done`).
pub fn write_status_done(plan: &Plan) {
    let _ = crate::plan::prepare::write_atomic(&plan.status_file, b"Done");
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

/// Upstream's `check_test_failure` (§5.4): all 16 metrics; `al` for spec decoding (standard
/// client); the device step time for gen_only.
fn check_metrics(
    plan: &Plan,
    index: u32,
    name: &str,
    metrics: &ClientMetrics,
    log: &Path,
) -> Result<(), TrialFailure> {
    let mut problems = Vec::new();
    let missing = metrics.missing_base_metrics();
    if !missing.is_empty() {
        problems.push(format!(
            "metrics missing from the client output: {}",
            missing.join(", ")
        ));
    }
    if plan.spec_decoding && plan.client_kind == ClientKind::Standard && !metrics.contains("al") {
        problems.push(
            "speculative decoding is configured but 'Mean Avg Decoded Tokens per Iter' is missing"
                .to_string(),
        );
    }
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
    Err(failure(
        FailureClass::MissingMetric,
        Some(Role::Benchmark),
        format!("client {index} ({name}): {}", problems.join("; ")),
        Some(log),
    ))
}
