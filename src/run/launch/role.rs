//! Role mode: one process plays one role of a trial (`DISAGG_SERVING_TYPE` = `CTX_<i>`, `GEN_<i>`,
//! `DISAGG_SERVER` or `BENCHMARK`), meeting the other roles through upstream's shared-filesystem
//! rendezvous — `hostnames-<job>-<s>/<ROLE>.txt`, `DISAGG_SERVER.<s>.addr`,
//! `benchmark_status.<s>.txt`, `gen_server_<i>.log` / `.done` — so it can stand beside an
//! upstream role. Workers and the router run until the benchmark writes `Done`; the benchmark
//! measures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::steps::{
    GenLog, Graph, RunContext, RunReport, SENTINEL_WAIT, Timeline, ensure_dataset, finish_metrics,
    read_address, remove_files, run_clients, spawn_router, spawn_worker, write_router_config,
    write_status_done, written_since,
};
use crate::plan::{GeneratedFile, Plan, Role};
use crate::results::outcome::{FailureClass, TrialFailure};

/// How long a non-primary worker waits for its engine config (upstream: 600 s).
const CONFIG_WAIT: Duration = Duration::from_secs(600);

/// Runs `role` of `plan`. The benchmark returns its report; other roles return `None` once the
/// benchmark has written `Done`. `launcher_gen_logs`: a launcher (SLURM) captures the gen
/// workers' output as `gen_server_<i>.log` and writes the `.done` sentinels; otherwise this
/// process does.
pub fn run_role(
    plan: &Plan,
    role: Role,
    ctx: &RunContext<'_>,
    launcher_gen_logs: bool,
) -> Result<Option<RunReport>, TrialFailure> {
    let started = SystemTime::now();
    std::fs::create_dir_all(&plan.rendezvous_dir).map_err(|e| {
        TrialFailure::config(format!(
            "cannot create {}: {e}",
            plan.rendezvous_dir.display()
        ))
    })?;
    write_shared_files(plan, role)?;
    match role {
        Role::Ctx(_) | Role::Gen(_) => {
            run_worker(plan, role, ctx, launcher_gen_logs, started).map(|()| None)
        }
        Role::DisaggServer => run_router(plan, ctx, started).map(|()| None),
        Role::Benchmark => run_benchmark(plan, ctx).map(Some),
        Role::Aggr(_) => Err(TrialFailure::config(format!(
            "{role} is an aggregated server, not a role of the disaggregated trial {}",
            plan.trial
        ))),
    }
}

fn is_engine_config(file: &GeneratedFile, kind: &str) -> bool {
    file.path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(&format!("extra-llm-api-config.{kind}.")))
}

/// Files every role may write (identical content, atomic): the simulator config; and the
/// engine config of a worker kind, written by that kind's primary worker only (upstream).
fn write_shared_files(plan: &Plan, role: Role) -> Result<(), TrialFailure> {
    for file in &plan.files {
        let mine = match role {
            Role::Ctx(0) => is_engine_config(file, "ctx"),
            Role::Gen(0) => is_engine_config(file, "gen"),
            _ => false,
        };
        let shared = file.path.file_name().and_then(|n| n.to_str()) == Some("sim-config.json");
        if mine || shared {
            crate::util::fs::write_atomic(&file.path, file.content.as_bytes()).map_err(|e| {
                TrialFailure::config(format!("cannot write {}: {e}", file.path.display()))
            })?;
        }
    }
    Ok(())
}

fn wait_on_status(
    graph: &mut Graph<'_>,
    role: Role,
    started: SystemTime,
) -> Result<(), TrialFailure> {
    let plan = graph.plan;
    let log = graph.servers.first().map(|c| c.log.clone());
    graph.wait_for(
        "waiting for the benchmark to finish",
        Some(Duration::from_secs(plan.timeouts.wait_s)),
        |_| {
            TrialFailure::new(
                FailureClass::Timeout,
                Some(role),
                format!(
                    "timeout waiting for {} after {} s (slurm.timeout)",
                    plan.status_file.display(),
                    plan.timeouts.wait_s
                ),
                log.as_deref(),
            )
        },
        || written_since(&plan.status_file, started).then_some(()),
    )
}

fn run_worker(
    plan: &Plan,
    role: Role,
    ctx: &RunContext<'_>,
    launcher_gen_logs: bool,
    started: SystemTime,
) -> Result<(), TrialFailure> {
    let w = plan
        .workers
        .iter()
        .find(|w| w.role == role)
        .ok_or_else(|| {
            TrialFailure::config(format!(
                "role {role} is not part of this trial ({} context and {} generation workers)",
                plan.topology.ctx.count, plan.topology.gen_workers.count
            ))
        })?;
    let mut graph = Graph::new(plan, ctx);
    // Non-primary workers wait for the engine config their primary writes.
    let config_path = engine_config_of(w.argv.as_slice());
    if let Some(path) = config_path.filter(|_| !matches!(role, Role::Ctx(0) | Role::Gen(0))) {
        let p = path.clone();
        graph.wait_for(
            "waiting for the engine config",
            Some(CONFIG_WAIT),
            |_| {
                TrialFailure::new(
                    FailureClass::NeverReady,
                    Some(role),
                    format!(
                        "timed out waiting for config file {} after {} s",
                        p.display(),
                        CONFIG_WAIT.as_secs()
                    ),
                    None,
                )
            },
            || path.is_file().then_some(()),
        )?;
    }
    remove_files(std::slice::from_ref(&w.address_file)).map_err(|e| {
        TrialFailure::config(format!("cannot remove {}: {e}", w.address_file.display()))
    })?;
    let gen_log = if launcher_gen_logs {
        GenLog::Stdout
    } else {
        GenLog::Link
    };
    spawn_worker(&mut graph, w, ctx, None, gen_log)?;
    let result = wait_on_status(&mut graph, role, started);
    graph.stop_all();
    if let (Role::Gen(i), GenLog::Link) = (role, gen_log) {
        let _ = std::fs::File::create(plan.gen_logs[i as usize].with_extension("done"));
    }
    result
}

fn engine_config_of(argv: &[String]) -> Option<PathBuf> {
    argv.windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| PathBuf::from(&w[1]))
}

fn run_router(plan: &Plan, ctx: &RunContext<'_>, started: SystemTime) -> Result<(), TrialFailure> {
    let mut graph = Graph::new(plan, ctx);
    // Address files of an earlier run in the same rendezvous dir would be taken for live
    // workers: only files newer than that run's status file count.
    let stale_before = std::fs::metadata(&plan.status_file)
        .and_then(|m| m.modified())
        .ok()
        .filter(|t| *t <= started);
    let workers: Vec<(Role, PathBuf)> = plan
        .workers
        .iter()
        .map(|w| (w.role, w.address_file.clone()))
        .collect();
    let fresh = |p: &Path| stale_before.is_none_or(|t| written_since(p, t));
    let addresses = {
        let files: Vec<(Role, PathBuf)> = workers.clone();
        let wait_s = plan.timeouts.wait_s;
        graph.wait_for(
            "waiting for the workers' hostname files",
            Some(Duration::from_secs(wait_s)),
            |_| {
                TrialFailure::new(
                    FailureClass::NeverReady,
                    Some(Role::DisaggServer),
                    format!(
                        "time out: hostname files are not ready after {wait_s} s (missing: {})",
                        files
                            .iter()
                            .filter(|(_, f)| !(fresh(f) && read_address(f).is_some()))
                            .map(|(r, _)| r.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                )
            },
            || {
                workers
                    .iter()
                    .map(|(r, f)| {
                        fresh(f)
                            .then(|| read_address(f))
                            .flatten()
                            .map(|(h, p)| (*r, format!("{h}:{p}")))
                    })
                    .collect::<Option<Vec<_>>>()
            },
        )?
    };
    write_router_config(plan, &addresses)?;
    spawn_router(&mut graph, ctx)?;
    let result = wait_on_status(&mut graph, Role::DisaggServer, started);
    graph.stop_all();
    result
}

fn run_benchmark(plan: &Plan, ctx: &RunContext<'_>) -> Result<RunReport, TrialFailure> {
    let mut graph = Graph::new(plan, ctx);
    remove_files(std::slice::from_ref(&plan.status_file)).map_err(|e| {
        TrialFailure::config(format!("cannot remove {}: {e}", plan.status_file.display()))
    })?;
    crate::plan::prepare::write_plan_files(plan)
        .map_err(|e| TrialFailure::config(e.to_string()))?;
    let outcome = benchmark_steps(&mut graph, ctx);
    // Whatever happened, tell every other role to stop (upstream writes it in `finally`).
    write_status_done(plan);
    let (outputs, mut timeline) = outcome?;
    // gen_only: the gen logs are complete once their `.done` sentinels exist (bounded, soft).
    if plan.mode.is_gen_only() {
        let until = Instant::now() + SENTINEL_WAIT;
        while Instant::now() < until
            && !plan
                .gen_logs
                .iter()
                .all(|l| l.with_extension("done").exists())
        {
            std::thread::sleep(super::steps::POLL * 10);
        }
    }
    timeline.all_reaped_s = graph.elapsed();
    let clients = finish_metrics(plan, outputs)?;
    Ok(RunReport { clients, timeline })
}

type BenchmarkOutputs<'p> = (Vec<super::steps::ClientOutput<'p>>, Timeline);

fn benchmark_steps<'p>(
    graph: &mut Graph<'p>,
    ctx: &RunContext<'_>,
) -> Result<BenchmarkOutputs<'p>, TrialFailure> {
    let plan = graph.plan;
    ensure_dataset(plan)?;
    let mut timeline = Timeline::default();
    // The router's address file may be stale until DISAGG_SERVER replaces it: keep reading it
    // until the address it names answers /health with 200.
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| TrialFailure::config(format!("cannot create an HTTP client: {e}")))?;
    let addr_file = &plan.router.process.address_file;
    let limit = plan.timeouts.wait_s.max(plan.timeouts.ready_s);
    let (host, port) = graph.wait_for(
        "waiting for the router",
        Some(Duration::from_secs(limit)),
        |_| {
            TrialFailure::new(
                FailureClass::NeverReady,
                Some(Role::DisaggServer),
                format!(
                    "the router did not become ready within {limit} s (address file {})",
                    addr_file.display()
                ),
                None,
            )
        },
        || {
            let (h, p) = read_address(addr_file)?;
            let url = format!("http://{h}:{p}/health");
            let ok = http
                .get(&url)
                .send()
                .ok()
                .is_some_and(|r| r.status().as_u16() == 200);
            ok.then_some((h, p))
        },
    )?;
    timeline.router_ready_s = graph.elapsed();
    super::startup::record_startup_metrics(plan);
    let outputs = run_clients(graph, ctx, &host, port, &mut timeline)?;
    Ok((outputs, timeline))
}
