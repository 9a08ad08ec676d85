//! Running a [`Plan`] on one host, in upstream's order: generated files → `GEN_i` then `CTX_i`
//! workers → their address files → `server_config.<s>.yaml` → router → its address and
//! `/health` → each client in turn → `benchmark_status.<s>.txt` = `Done` → stop everything →
//! gen logs and metrics.
//!
//! Every wait is a short poll that also watches every started process and the trial deadline,
//! so a dying server fails the trial at once, naming its role, with its log tail. Children are
//! owned by [`ManagedChild`] guards: whatever path leaves this module (return, `?`, panic), they
//! are stopped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::gpus::{GpuLease, GpuPool};
use super::logs::log_tail;
use super::process::{GRACE, Launch, ManagedChild, describe_status, spawn};
use super::signals::interrupted;
use crate::measure::gen_log::device_step_stats;
use crate::measure::{ClientMetrics, check_client_output, parse_client_output};
use crate::outcome::{FailureClass, TrialFailure};
use crate::plan::{DatasetPlan, Plan, Role};
use crate::toolchain::{ClientKind, Toolchain};
use crate::trial::write_plan_files;

/// Poll interval of every wait.
pub const POLL: Duration = Duration::from_millis(10);
/// Timeout of one `/health` request.
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the runner needs besides the plan.
pub struct RunContext<'a> {
    /// Our own executable (runs `perfsanity sim` / `perfsanity bench`).
    pub self_exe: &'a Path,
    /// Copy client output to the terminal (`--nocapture`).
    pub tee: bool,
    /// GPUs of this host (trtllm toolchain).
    pub gpus: Option<&'a GpuPool>,
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

/// Milestones of a run, for the harness-overhead benchmark (seconds since the trial started).
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
}

impl Timeline {
    /// Harness overhead: set-up before the first worker, the gap between server readiness and
    /// the first client, and teardown after the last client.
    pub fn overhead_s(&self) -> f64 {
        self.first_spawn_s
            + (self.first_client_s - self.router_ready_s)
            + (self.all_reaped_s - self.clients_done_s)
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Client results in order.
    pub clients: Vec<ClientRun>,
    /// Milestones.
    pub timeline: Timeline,
}

fn failure(class: FailureClass, role: Option<Role>, message: String, log: Option<&Path>) -> TrialFailure {
    TrialFailure {
        class,
        role,
        message,
        log_tail: log.map(log_tail),
    }
}

/// The processes of a running trial.
struct Graph<'a> {
    plan: &'a Plan,
    servers: Vec<ManagedChild>,
    started: Instant,
    deadline: Option<Instant>,
}

impl<'a> Graph<'a> {
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Fails when a server has exited, the run was interrupted or the trial is out of time.
    fn check(&mut self, phase: &str) -> Result<(), TrialFailure> {
        if let Some(sig) = interrupted() {
            return Err(failure(
                FailureClass::Interrupted,
                None,
                format!("interrupted by signal {sig} while {phase}"),
                None,
            ));
        }
        for child in &mut self.servers {
            if let Some(status) = child.try_status() {
                return Err(failure(
                    FailureClass::Crash,
                    child.role,
                    format!(
                        "{} exited with {} while {phase} (it was still needed)",
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
                    "trial time limit of {} s (test list TIMEOUT) reached while {phase}",
                    self.plan.timeouts.trial_s.unwrap_or(0)
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Polls `probe` until it yields, watching processes and deadlines.
    fn wait_for<T>(
        &mut self,
        phase: &str,
        limit: Option<Duration>,
        on_timeout: impl FnOnce(&Self) -> TrialFailure,
        mut probe: impl FnMut() -> Option<T>,
    ) -> Result<T, TrialFailure> {
        let until = limit.map(|l| Instant::now() + l);
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
    fn stop_all(&mut self) {
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
}

/// Reads an address file: `host:port`, split at the last `:`.
pub fn read_address(path: &Path) -> Option<(String, u16)> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    let (host, port) = text.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

fn http_get_status(client: &reqwest::blocking::Client, url: &str) -> Option<u16> {
    client.get(url).send().ok().map(|r| r.status().as_u16())
}

/// Removes what a previous run of the same trial left behind (address files, status file, logs),
/// so no wait can be satisfied by a stale file. The auth key is kept.
fn clean_stale(plan: &Plan) -> std::io::Result<()> {
    if plan.rendezvous_dir.exists() {
        std::fs::remove_dir_all(&plan.rendezvous_dir)?;
    }
    std::fs::create_dir_all(&plan.rendezvous_dir)?;
    let mut stale: Vec<PathBuf> = vec![plan.status_file.clone(), plan.router.config_path.clone()];
    for log in &plan.gen_logs {
        stale.push(log.clone());
        stale.push(log.with_extension("done"));
    }
    stale.extend(plan.clients.iter().map(|c| c.log_file.clone()));
    for p in stale {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Runs the plan. `Err` is the classified failure.
pub fn run_plan(plan: &Plan, ctx: &RunContext<'_>) -> Result<RunReport, TrialFailure> {
    let started = Instant::now();
    let config_failure = |message: String| failure(FailureClass::Config, None, message, None);
    write_plan_files(plan).map_err(|e| config_failure(e.to_string()))?;
    clean_stale(plan).map_err(|e| {
        config_failure(format!("cannot prepare {}: {e}", plan.output_dir.display()))
    })?;
    if let DatasetPlan::Generated { path, spec, .. } = &plan.dataset {
        super::dataset::ensure_generated(path, spec, &plan.model_path).map_err(config_failure)?;
    }
    let lease: Option<GpuLease<'_>> = match (plan.toolchain, ctx.gpus) {
        (Toolchain::Trtllm, Some(pool)) if plan.topology.gpus_used > 0 => Some(
            pool.acquire(plan.topology.gpus_used as usize).ok_or_else(|| {
                config_failure(format!(
                    "needs {} GPUs, this host shows {}; run it through SLURM",
                    plan.topology.gpus_used,
                    pool.len()
                ))
            })?,
        ),
        _ => None,
    };
    let mut timeline = Timeline::default();
    let mut graph = Graph {
        plan,
        servers: Vec::new(),
        started,
        deadline: plan.timeouts.trial_s.map(|s| started + Duration::from_secs(s)),
    };
    let wait = Duration::from_secs(plan.timeouts.wait_s);

    // Workers: GEN_i, then CTX_i.
    timeline.first_spawn_s = graph.elapsed();
    for (i, w) in plan.workers.iter().enumerate() {
        let extra_env = lease
            .as_ref()
            .map(|l| vec![("CUDA_VISIBLE_DEVICES".to_string(), l.devices(w.first_gpu, w.gpus))])
            .unwrap_or_default();
        let child = spawn(Launch {
            role: Some(w.role),
            name: w.role.to_string(),
            argv: &w.argv,
            extra_args: Vec::new(),
            env: &w.env,
            extra_env,
            log: &w.log_file,
            cwd: &plan.output_dir,
            self_exe: ctx.self_exe,
            tee: false,
        })
        .map_err(|e| failure(FailureClass::Launch, Some(w.role), e.to_string(), None))?;
        if let Role::Gen(g) = w.role {
            // The gen_only metric reads gen_server_<i>.log, as on SLURM: same file, second name.
            let gen_log = &plan.gen_logs[g as usize];
            std::fs::hard_link(&w.log_file, gen_log).map_err(|e| {
                config_failure(format!("cannot link {}: {e}", gen_log.display()))
            })?;
        }
        graph.servers.push(child);
        let _ = i;
    }

    // Every worker reports its address.
    let addresses: Vec<(Role, String)> = {
        let files: Vec<(Role, PathBuf)> =
            plan.workers.iter().map(|w| (w.role, w.address_file.clone())).collect();
        graph.wait_for(
            "waiting for the workers to report their addresses",
            Some(wait),
            |g| {
                let missing: Vec<&(Role, PathBuf)> =
                    files.iter().filter(|(_, f)| read_address(f).is_none()).collect();
                let first = missing.first().map(|(r, _)| *r);
                let log = first.and_then(|r| g.servers.iter().find(|c| c.role == Some(r)).map(|c| c.log.clone()));
                failure(
                    FailureClass::NeverReady,
                    first,
                    format!(
                        "{} did not report an address within {} s (slurm.timeout)",
                        missing.iter().map(|(r, _)| r.to_string()).collect::<Vec<_>>().join(", "),
                        plan.timeouts.wait_s
                    ),
                    log.as_deref(),
                )
            },
            || {
                files
                    .iter()
                    .map(|(r, f)| read_address(f).map(|(h, p)| (*r, format!("{h}:{p}"))))
                    .collect::<Option<Vec<_>>>()
            },
        )?
    };
    timeline.workers_reported_s = graph.elapsed();

    // Router config and router.
    let urls = |kind: fn(Role) -> Option<u32>| {
        let mut v: Vec<(u32, String)> = addresses
            .iter()
            .filter_map(|(r, a)| kind(*r).map(|i| (i, a.clone())))
            .collect();
        v.sort();
        v.into_iter().map(|(_, a)| a).collect::<Vec<_>>()
    };
    let ctx_urls = urls(|r| if let Role::Ctx(i) = r { Some(i) } else { None });
    let gen_urls = urls(|r| if let Role::Gen(i) = r { Some(i) } else { None });
    crate::trial::write_atomic(
        &plan.router.config_path,
        plan.router.config.render(&ctx_urls, &gen_urls).as_bytes(),
    )
    .map_err(|e| config_failure(format!("cannot write {}: {e}", plan.router.config_path.display())))?;
    let r = &plan.router.process;
    let router = spawn(Launch {
        role: Some(Role::DisaggServer),
        name: "DISAGG_SERVER".to_string(),
        argv: &r.argv,
        extra_args: Vec::new(),
        env: &r.env,
        extra_env: Vec::new(),
        log: &r.log_file,
        cwd: &plan.output_dir,
        self_exe: ctx.self_exe,
        tee: false,
    })
    .map_err(|e| failure(FailureClass::Launch, Some(Role::DisaggServer), e.to_string(), None))?;
    graph.servers.push(router);
    let router_log = r.log_file.clone();
    let (host, port) = graph.wait_for(
        "waiting for the router to report its address",
        Some(wait),
        |_| {
            failure(
                FailureClass::NeverReady,
                Some(Role::DisaggServer),
                format!("the router did not report an address within {} s", plan.timeouts.wait_s),
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
                    last_status.get().map_or("none".to_string(), |s: u16| s.to_string())
                ),
                Some(&router_log),
            )
        },
        || {
            let status = http_get_status(&http, &health_url);
            last_status.set(status.or(last_status.get()));
            (status == Some(200)).then_some(())
        },
    )?;
    timeline.router_ready_s = graph.elapsed();

    // Clients, one after the other.
    let mut outputs = Vec::new();
    for (i, c) in plan.clients.iter().enumerate() {
        let offsets: Vec<u64> = plan
            .gen_logs
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect();
        if i == 0 {
            timeline.first_client_s = graph.elapsed();
        }
        let mut client = spawn(Launch {
            role: Some(Role::Benchmark),
            name: format!("client {} ({})", c.index, c.name),
            argv: &c.argv,
            extra_args: vec!["--host".into(), host.clone(), "--port".into(), port.to_string()],
            env: &c.env,
            extra_env: Vec::new(),
            log: &c.log_file,
            cwd: &plan.output_dir,
            self_exe: ctx.self_exe,
            tee: ctx.tee,
        })
        .map_err(|e| failure(FailureClass::Launch, Some(Role::Benchmark), e.to_string(), None))?;
        let status = graph.wait_for(
            &format!("client {} ({}) was running", c.index, c.name),
            None,
            |_| unreachable_timeout(),
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
        let output = String::from_utf8_lossy(&std::fs::read(&c.log_file).unwrap_or_default()).into_owned();
        if !status.success() {
            return Err(failure(
                FailureClass::Client,
                Some(Role::Benchmark),
                format!("client {} ({}) exited with {}", c.index, c.name, describe_status(&status)),
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
        outputs.push((c, output, offsets));
    }
    timeline.clients_done_s = graph.elapsed();

    // Done: tell every role, stop them, mark the gen logs complete.
    let _ = std::fs::write(&plan.status_file, "Done");
    graph.stop_all();
    for log in &plan.gen_logs {
        let _ = std::fs::File::create(log.with_extension("done"));
    }
    drop(lease);
    timeline.all_reaped_s = graph.elapsed();

    // Metrics.
    let sa = plan.client_kind == ClientKind::NvSa;
    let mut clients = Vec::new();
    for (c, mut output, offsets) in outputs {
        if plan.mode.is_gen_only() {
            let logs: Vec<(&PathBuf, u64)> = plan.gen_logs.iter().zip(offsets).collect();
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
    let _ = std::fs::write(
        plan.output_dir.join("timeline.json"),
        serde_json::to_string_pretty(&timeline).unwrap_or_default(),
    );
    Ok(RunReport { clients, timeline })
}

fn unreachable_timeout() -> TrialFailure {
    failure(
        FailureClass::Timeout,
        Some(Role::Benchmark),
        "the client ran past the harness's internal limit".to_string(),
        None,
    )
}

/// Upstream's `check_test_failure` (§5.4): all 16 metrics; `al` for spec decoding; the device
/// step time for gen_only.
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
        problems.push(format!("metrics missing from the client output: {}", missing.join(", ")));
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
