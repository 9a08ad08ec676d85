//! Running an [`AggrPlan`] on one host (upstream-perf-sanity.md §1.3): for each server in turn —
//! stale files removed, `trtllm-serve` started in its own process group, its address file, `GET
//! /health` → 200, `/server_info` telemetry into `startup_metrics.<s>.json`, its clients one after
//! another against `localhost:<port>`, then the server stopped — before the next server starts.
//!
//! The failure classes, timeouts and teardown are the disaggregated runner's: every wait polls
//! every 10 ms and checks the server, the interrupt flag and the trial deadline; a server that
//! exits before its address file exists is `launch`, after it `crash`; a client failure is
//! attributed to the server when the server died under it. The server is owned by a guard, so it
//! is stopped on every path out of this module.

use std::path::Path;
use std::time::{Duration, Instant};

use super::gpus::GpuLease;

use super::process::{GRACE, Launch, ManagedChild, describe_status, spawn};
use super::signals::interrupted;
use super::steps::{ClientSpan, POLL, RunContext, Timeline, read_address, remove_files};
use crate::measure::{ClientMetrics, check_client_output, parse_client_output};
use crate::plan::prepare::write_aggr_plan_files;
use crate::plan::toolchain::{ClientKind, Toolchain};
use crate::plan::{AggrClientPlan, AggrPlan, AggrServerPlan, DatasetPlan, Role};
use crate::results::outcome::{FailureClass, LogTail, TrialFailure};

/// Timeout of one `/health` request.
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One client run of an aggregated trial.
#[derive(Debug, Clone)]
pub struct AggrClientRun {
    /// Server index `s`.
    pub server: u32,
    /// Client index `c` within the server.
    pub client: u32,
    /// Index across the trial (upstream's `cmd_idx`).
    pub cmd_idx: u32,
    /// Complete output.
    pub output: String,
    /// Metrics parsed from it.
    pub metrics: ClientMetrics,
}

/// A finished aggregated trial.
#[derive(Debug, Clone)]
pub struct AggrRunReport {
    /// Every client run, in order.
    pub clients: Vec<AggrClientRun>,
    /// Milestones (the first server's start-up; every client's span).
    pub timeline: Timeline,
}

/// One running server and the trial's clock: what every wait watches.
struct Watch<'a> {
    plan: &'a AggrPlan,
    server: &'a AggrServerPlan,
    child: ManagedChild,
    started: Instant,
    deadline: Option<Instant>,
}

impl Watch<'_> {
    fn role(&self) -> Role {
        self.server.process.role
    }

    /// Fails when the server has exited, the run was interrupted or the trial is out of time.
    fn check(&mut self, phase: &str) -> Result<(), TrialFailure> {
        if let Some(sig) = interrupted() {
            return Err(TrialFailure::new(
                FailureClass::Interrupted,
                None,
                format!("interrupted by signal {sig} while {phase}"),
                None,
            ));
        }
        if let Some(status) = self.child.try_status() {
            let reported = read_address(&self.server.process.address_file).is_some();
            let (class, when) = if reported {
                (FailureClass::Crash, "")
            } else {
                (FailureClass::Launch, " before reporting its address")
            };
            return Err(TrialFailure::new(
                class,
                Some(self.role()),
                format!(
                    "{} (server {}) exited with {}{when} while {phase} (it was still needed)",
                    self.role(),
                    self.server.name,
                    describe_status(&status)
                ),
                Some(&self.server.process.log_file),
            ));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let last =
                crate::util::log_file::tail(&self.server.process.log_file, 1).unwrap_or_default();
            return Err(TrialFailure::new(
                FailureClass::Timeout,
                None,
                format!(
                    "trial time limit of {} s ({}) reached while {phase}; last line of {}'s log: {}",
                    self.plan.timeouts.trial_s.unwrap_or(0),
                    self.plan.timeouts.trial_source,
                    self.role(),
                    if last.trim().is_empty() {
                        "(empty log)"
                    } else {
                        last.trim()
                    }
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Polls `probe` until it yields, watching the server and the deadlines.
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
}

/// Removes what an earlier run of the same trial left (address files, logs, telemetry), so no
/// wait can be satisfied by a stale file.
fn clean_stale(plan: &AggrPlan) -> std::io::Result<()> {
    let mut stale = Vec::new();
    for s in &plan.servers {
        stale.push(s.process.address_file.clone());
        stale.push(s.startup_metrics.clone());
        stale.extend(s.clients.iter().map(|c| c.spec.log_file.clone()));
    }
    remove_files(&stale)
}

/// Generates every simulator dataset the plan points at.
fn ensure_datasets(plan: &AggrPlan) -> Result<(), TrialFailure> {
    for (server, client) in plan.clients() {
        if let DatasetPlan::Generated { path, spec, .. } = &client.dataset {
            super::dataset::ensure_generated(path, spec, &server.model_path)
                .map_err(TrialFailure::config)?;
        }
    }
    Ok(())
}

/// Runs the plan. `Err` is the classified failure.
pub fn run_aggr_plan(plan: &AggrPlan, ctx: &RunContext<'_>) -> Result<AggrRunReport, TrialFailure> {
    write_aggr_plan_files(plan).map_err(|e| TrialFailure::config(e.to_string()))?;
    clean_stale(plan).map_err(|e| {
        TrialFailure::config(format!("cannot prepare {}: {e}", plan.output_dir.display()))
    })?;
    ensure_datasets(plan)?;
    let deadline = plan
        .timeouts
        .trial_s
        .map(|s| ctx.started + Duration::from_secs(s));
    let mut timeline = Timeline::default();
    let mut clients = Vec::new();
    for server in &plan.servers {
        let lease = gpu_lease(plan, server, ctx)?;
        if server.index == 0 {
            timeline.first_spawn_s = ctx.started.elapsed().as_secs_f64();
        }
        let child = spawn_server(plan, server, ctx, lease.as_ref())?;
        let mut watch = Watch {
            plan,
            server,
            child,
            started: ctx.started,
            deadline,
        };
        let (host, port) = await_server(&mut watch)?;
        if server.index == 0 {
            timeline.workers_reported_s = ctx.started.elapsed().as_secs_f64();
            timeline.router_ready_s = timeline.workers_reported_s;
        }
        super::startup::record_aggr_startup_metrics(server);
        for client in &server.clients {
            let spawned_s = watch.started.elapsed().as_secs_f64();
            if clients.is_empty() {
                timeline.first_client_s = spawned_s;
            }
            let output = run_client(&mut watch, ctx, client, &host, port)?;
            timeline.clients.push(ClientSpan {
                spawned_s,
                exited_s: watch.started.elapsed().as_secs_f64(),
            });
            let metrics = parse_client_output(&output, client.kind == ClientKind::NvSa);
            check_metrics(server, client, &metrics)?;
            clients.push(AggrClientRun {
                server: server.index,
                client: client.spec.index,
                cmd_idx: client.cmd_idx,
                output,
                metrics,
            });
        }
        timeline.clients_done_s = watch.started.elapsed().as_secs_f64();
        // Upstream: SIGTERM the server and wait for it before the next one starts.
        watch.child.stop(GRACE);
        drop(lease);
    }
    timeline.all_reaped_s = ctx.started.elapsed().as_secs_f64();
    Ok(AggrRunReport { clients, timeline })
}

fn gpu_lease<'p>(
    plan: &AggrPlan,
    server: &AggrServerPlan,
    ctx: &RunContext<'p>,
) -> Result<Option<GpuLease<'p>>, TrialFailure> {
    match (plan.toolchain, ctx.gpus) {
        (Toolchain::Trtllm, Some(pool)) if server.gpus > 0 => {
            pool.acquire(server.gpus as usize).map(Some).ok_or_else(|| {
                TrialFailure::config(format!(
                    "server {} needs {} GPUs, this host shows {}; run it through SLURM",
                    server.name,
                    server.gpus,
                    pool.len()
                ))
            })
        }
        _ => Ok(None),
    }
}

fn spawn_server(
    plan: &AggrPlan,
    server: &AggrServerPlan,
    ctx: &RunContext<'_>,
    lease: Option<&GpuLease<'_>>,
) -> Result<ManagedChild, TrialFailure> {
    let p = &server.process;
    remove_files(std::slice::from_ref(&p.address_file)).map_err(|e| {
        TrialFailure::config(format!("cannot remove {}: {e}", p.address_file.display()))
    })?;
    let extra_env = lease
        .map(|l| {
            vec![(
                "CUDA_VISIBLE_DEVICES".to_string(),
                l.devices(p.first_gpu, p.gpus),
            )]
        })
        .unwrap_or_default();
    spawn(Launch {
        role: Some(p.role),
        name: format!("{} ({})", p.role, server.name),
        argv: &p.argv,
        extra_args: Vec::new(),
        env: &p.env,
        // Single-host aggregated runs have no launcher environment (upstream's pytest starts
        // the server itself), so nothing is removed.
        env_remove: &[],
        extra_env,
        log: &p.log_file,
        cwd: &plan.output_dir,
        self_exe: ctx.self_exe,
        tee: false,
        slurm_local_id: ctx.slurm_local_id,
    })
    .map_err(|e| TrialFailure::new(FailureClass::Launch, Some(p.role), e.to_string(), None))
}

/// Waits for the server's address file, then `GET /health` → 200; returns its address.
fn await_server(watch: &mut Watch<'_>) -> Result<(String, u16), TrialFailure> {
    let server = watch.server;
    let p = &server.process;
    let timeouts = &watch.plan.timeouts;
    let (_, port) = watch.wait_for(
        &format!("waiting for server {} to report its address", server.name),
        Some(Duration::from_secs(timeouts.wait_s)),
        |_| {
            TrialFailure::new(
                FailureClass::NeverReady,
                Some(p.role),
                format!(
                    "server {} did not report an address to {} within {} s",
                    server.name,
                    p.address_file.display(),
                    timeouts.wait_s
                ),
                Some(&p.log_file),
            )
        },
        || read_address(&p.address_file),
    )?;
    let http = reqwest::blocking::Client::builder()
        .timeout(HEALTH_REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| TrialFailure::config(format!("cannot create an HTTP client: {e}")))?;
    // Upstream talks to the aggregated server on localhost, whatever it reported.
    let health_url = format!("http://localhost:{port}/health");
    let last_status = std::cell::Cell::new(None);
    watch.wait_for(
        &format!("waiting for server {} to become ready", server.name),
        Some(Duration::from_secs(timeouts.ready_s)),
        |_| {
            TrialFailure::new(
                FailureClass::NeverReady,
                Some(p.role),
                format!(
                    "{health_url} did not answer 200 within {} s ({}; last answer: {})",
                    timeouts.ready_s,
                    timeouts.ready_source,
                    last_status
                        .get()
                        .map_or("none".to_string(), |s: u16| s.to_string())
                ),
                Some(&p.log_file),
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
    Ok(("localhost".to_string(), port))
}

/// Runs one client to completion against `host:port`; its output, or the classified failure.
fn run_client(
    watch: &mut Watch<'_>,
    ctx: &RunContext<'_>,
    client: &AggrClientPlan,
    host: &str,
    port: u16,
) -> Result<String, TrialFailure> {
    let c = &client.spec;
    let label = format!(
        "client {} ({}) of server {}",
        c.index, c.name, watch.server.name
    );
    let mut child = spawn(Launch {
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
        env_remove: &[],
        extra_env: Vec::new(),
        log: &c.log_file,
        cwd: &watch.plan.output_dir,
        self_exe: ctx.self_exe,
        tee: ctx.tee,
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
    let status = match watch.wait_for(
        &phase,
        None,
        |_| unreachable!("no limit"),
        || child.try_status(),
    ) {
        Ok(s) => s,
        Err(mut f) => {
            child.stop(GRACE);
            if f.class == FailureClass::Timeout {
                f.role = Some(Role::Benchmark);
                f.log_tail = Some(LogTail::read(&c.log_file));
            }
            return Err(f);
        }
    };
    let output =
        String::from_utf8_lossy(&std::fs::read(&c.log_file).unwrap_or_default()).into_owned();
    let checked = check_client_output(&output);
    if !status.success() || checked.is_err() {
        // A dead server is the root cause of a failing client.
        watch.check(&phase)?;
    }
    if !status.success() {
        return Err(TrialFailure::new(
            FailureClass::Client,
            Some(Role::Benchmark),
            format!("{label} exited with {}", describe_status(&status)),
            Some(&c.log_file),
        ));
    }
    if let Err(problem) = checked {
        return Err(TrialFailure::new(
            FailureClass::FailedRequests,
            Some(Role::Benchmark),
            format!("{label}: {problem}"),
            Some(&c.log_file),
        ));
    }
    Ok(output)
}

/// Upstream's `check_test_failure` (§5.4) for one aggregated client: the 16 base metrics, and
/// `al` for a spec-decoding server measured by the standard client.
fn check_metrics(
    server: &AggrServerPlan,
    client: &AggrClientPlan,
    metrics: &ClientMetrics,
) -> Result<(), TrialFailure> {
    let problems = super::steps::metric_problems(
        metrics,
        server.spec_decoding && client.kind == ClientKind::Standard,
    );
    if problems.is_empty() {
        return Ok(());
    }
    Err(TrialFailure::new(
        FailureClass::MissingMetric,
        Some(Role::Benchmark),
        format!(
            "client {} ({}) of server {}: {}",
            client.spec.index,
            client.spec.name,
            server.name,
            problems.join("; ")
        ),
        Some(Path::new(&client.spec.log_file)),
    ))
}
