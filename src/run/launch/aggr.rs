//! Running an [`AggrPlan`] on one host (upstream-perf-sanity.md §1.3): for each server in turn —
//! stale files removed, `trtllm-serve` started in its own process group, its address file, `GET
//! /health` → 200, `/server_info` telemetry into `startup_metrics.<s>.json`, its clients one after
//! another against `localhost:<port>`, then the server stopped — before the next server starts.
//!
//! The waits, the liveness watch and the client loop are the disaggregated runner's own
//! ([`Graph`], [`run_client_loop`]; [`AggrPlan`] is a [`RunnablePlan`]): every wait polls every
//! 10 ms and checks the server, the interrupt flag, the liveness watch (`PERF_STALL_S`, while the
//! clients run) and the trial deadline (`TIMEOUT (N)` / `PERF_TRIAL_TIMEOUT_S`, else upstream's
//! 3600 s, as for every trial), and prints the `PERF_PROGRESS_S` line; a server that
//! exits before its address file exists is `launch`, after it `crash`; a client failure is
//! attributed to the server when the server died under it; each finished client is kept at once
//! ([`keep_client`]), so a later failure loses none. The server is owned by the graph, so it is
//! stopped on every path out of this module.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::gpus::GpuLease;
use super::health::HealthProbe;
use super::process::{Launch, spawn};
use super::steps::{
    ClientRun, Graph, RunContext, RunnablePlan, Timeline, keep_client, read_address, remove_files,
    run_client_loop,
};
use super::watch::Target;
use crate::measure::{ClientMetrics, parse_client_output};
use crate::plan::prepare::write_aggr_plan_files;
use crate::plan::toolchain::{ClientKind, Toolchain};
use crate::plan::{
    AggrClientPlan, AggrPlan, AggrServerPlan, ClientSpec, DatasetPlan, Role, Timeouts,
};
use crate::results::outcome::{FailureClass, TrialFailure};

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

impl RunnablePlan for AggrPlan {
    fn trial(&self) -> &str {
        &self.trial
    }

    fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    fn address_file(&self, role: Role) -> Option<&Path> {
        self.servers
            .iter()
            .find(|s| s.process.role == role)
            .map(|s| s.process.address_file.as_path())
    }

    fn output_dir(&self) -> &Path {
        &self.output_dir
    }

    /// Single-host aggregated runs have no launcher environment (upstream's pytest starts the
    /// server itself), so nothing is removed.
    fn launch_unset(&self) -> &[String] {
        &[]
    }

    /// In `cmd_idx` order: server by server.
    fn client_list(&self) -> Vec<(&ClientSpec, String)> {
        self.clients()
            .map(|(s, c)| {
                (
                    &c.spec,
                    format!(
                        "client {} ({}) of server {}",
                        c.spec.index, c.spec.name, s.name
                    ),
                )
            })
            .collect()
    }

    fn gen_logs(&self) -> &[PathBuf] {
        &[]
    }

    /// No router: a failing client is the client's own failure (unless its server died).
    fn blamed_role(&self) -> Option<(Role, String)> {
        None
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
    let mut graph = Graph::new(plan, ctx);
    let mut timeline = Timeline::default();
    let mut clients = Vec::new();
    let mut next = 0;
    for server in &plan.servers {
        let lease = gpu_lease(plan, server, ctx)?;
        if server.index == 0 {
            timeline.first_spawn_s = graph.elapsed();
        }
        spawn_server(&mut graph, server, ctx, lease.as_ref())?;
        let (host, port) = await_server(&mut graph, server)?;
        if server.index == 0 {
            timeline.workers_reported_s = graph.elapsed();
            timeline.router_ready_s = timeline.workers_reported_s;
        }
        super::startup::record_aggr_startup_metrics(server);
        let role = server.process.role;
        let targets = vec![Target {
            role,
            pid: graph.pid_of(role),
            address: format!("{host}:{port}"),
            worker: true,
        }];
        let first = next;
        next += server.clients.len();
        run_client_loop(
            &mut graph,
            ctx,
            (&host, port),
            targets,
            first..next,
            &mut timeline,
            |position, done| {
                let client = &server.clients[position - first];
                let metrics = parse_client_output(&done.output, client.kind == ClientKind::NvSa);
                check_metrics(server, client, &metrics)?;
                keep_client(
                    ctx,
                    ClientRun {
                        index: client.cmd_idx,
                        output: done.output.clone(),
                        metrics: metrics.clone(),
                    },
                );
                clients.push(AggrClientRun {
                    server: server.index,
                    client: client.spec.index,
                    cmd_idx: client.cmd_idx,
                    output: done.output,
                    metrics,
                });
                Ok(())
            },
        )?;
        // Upstream: SIGTERM the server and wait for it before the next one starts.
        graph.stop_all();
        graph.servers.clear();
        drop(lease);
    }
    timeline.all_reaped_s = graph.elapsed();
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

/// Starts the server (its stale address file removed first) and adds it to the graph.
fn spawn_server(
    graph: &mut Graph<'_, AggrPlan>,
    server: &AggrServerPlan,
    ctx: &RunContext<'_>,
    lease: Option<&GpuLease<'_>>,
) -> Result<(), TrialFailure> {
    let plan = graph.plan;
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
    let child = spawn(Launch {
        role: Some(p.role),
        // The name failures give it: `AGGR_<s> (server <name>) exited with …`.
        name: format!("{} (server {})", p.role, server.name),
        argv: &p.argv,
        extra_args: Vec::new(),
        env: &p.env,
        env_remove: plan.launch_unset(),
        extra_env,
        log: &p.log_file,
        cwd: &plan.output_dir,
        self_exe: ctx.self_exe,
        tee: None,
        slurm_local_id: ctx.slurm_local_id,
    })
    .map_err(|e| TrialFailure::new(FailureClass::Launch, Some(p.role), e.to_string(), None))?;
    graph.servers.push(child);
    Ok(())
}

/// Waits for the server's address file, then `GET /health` → 200; returns its address.
fn await_server(
    graph: &mut Graph<'_, AggrPlan>,
    server: &AggrServerPlan,
) -> Result<(String, u16), TrialFailure> {
    let plan = graph.plan;
    let p = &server.process;
    let timeouts = &plan.timeouts;
    let (_, port) = graph.wait_for(
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
    // Upstream talks to the aggregated server on localhost, whatever it reported.
    let health = HealthProbe::new("localhost", port)?;
    graph.wait_for(
        &format!("waiting for server {} to become ready", server.name),
        Some(Duration::from_secs(timeouts.ready_s)),
        |_| {
            TrialFailure::new(
                FailureClass::NeverReady,
                Some(p.role),
                format!(
                    "{} did not answer 200 within {} s ({}; last answer: {})",
                    health.url(),
                    timeouts.ready_s,
                    timeouts.ready_source,
                    health.last_answer()
                ),
                Some(&p.log_file),
            )
        },
        || health.ready(),
    )?;
    Ok(("localhost".to_string(), port))
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
