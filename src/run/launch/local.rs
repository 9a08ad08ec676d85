//! Running a whole [`Plan`] on one host, in upstream's order: generated files → `GEN_i` then
//! `CTX_i` workers → their address files → `server_config.<s>.yaml` → router → its address and
//! `/health` → each client in turn → `benchmark_status.<s>.txt` = `Done` → stop everything →
//! gen logs and metrics. Children are owned by guards: whatever path leaves this function
//! (return, `?`, panic), they are stopped. The executor writes the [`Timeline`] to
//! `timeline.json` once the results are recorded.

use super::gpus::GpuLease;
use super::steps::{
    GenLog, Graph, RunContext, RunReport, Timeline, await_router, await_worker_addresses,
    ensure_dataset, finish_metrics, remove_files, run_clients, spawn_router, spawn_worker,
    verify_worker_ports, write_router_config, write_status_done,
};
use crate::plan::Plan;
use crate::plan::prepare::write_plan_files;
use crate::plan::toolchain::Toolchain;
use crate::results::outcome::TrialFailure;
use crate::run::progress::ProgressEvent;

/// Removes what a previous run of the same trial left behind (address files, status file, logs),
/// so no wait can be satisfied by a stale file. The auth key is kept.
fn clean_stale(plan: &Plan) -> std::io::Result<()> {
    if plan.rendezvous_dir.exists() {
        std::fs::remove_dir_all(&plan.rendezvous_dir)?;
    }
    std::fs::create_dir_all(&plan.rendezvous_dir)?;
    let mut stale = vec![plan.status_file.clone(), plan.router.config_path.clone()];
    for log in &plan.gen_logs {
        stale.push(log.clone());
        stale.push(log.with_extension("done"));
    }
    stale.extend(plan.clients.iter().map(|c| c.log_file.clone()));
    remove_files(&stale)
}

/// Runs the plan. `Err` is the classified failure.
pub fn run_plan(plan: &Plan, ctx: &RunContext<'_>) -> Result<RunReport, TrialFailure> {
    let mut graph = Graph::new(plan, ctx);
    write_plan_files(plan).map_err(|e| TrialFailure::config(e.to_string()))?;
    clean_stale(plan).map_err(|e| {
        TrialFailure::config(format!("cannot prepare {}: {e}", plan.output_dir.display()))
    })?;
    ensure_dataset(plan)?;
    ctx.progress.event(ProgressEvent::FilesWritten {
        trial: plan.trial.clone(),
        output_dir: plan.output_dir.display().to_string(),
    });
    let lease: Option<GpuLease<'_>> = match (plan.toolchain, ctx.gpus) {
        (Toolchain::Trtllm, Some(pool)) if plan.topology.gpus_used > 0 => Some(
            pool.acquire(plan.topology.gpus_used as usize)
                .ok_or_else(|| {
                    TrialFailure::config(format!(
                        "needs {} GPUs, this host shows {}; run it through SLURM",
                        plan.topology.gpus_used,
                        pool.len()
                    ))
                })?,
        ),
        _ => None,
    };
    let mut timeline = Timeline {
        first_spawn_s: graph.elapsed(),
        ..Timeline::default()
    };
    for w in &plan.workers {
        spawn_worker(&mut graph, w, ctx, lease.as_ref(), GenLog::Link)?;
    }
    let files: Vec<_> = plan
        .workers
        .iter()
        .map(|w| (w.role, w.address_file.clone()))
        .collect();
    let addresses = await_worker_addresses(&mut graph, &files, |role, address| {
        ctx.progress.event(ProgressEvent::WorkerUp {
            trial: plan.trial.clone(),
            role: role.to_string(),
            address: address.to_string(),
        })
    })?;
    verify_worker_ports(&graph, &addresses)?;
    timeline.workers_reported_s = graph.elapsed();
    ctx.progress.event(ProgressEvent::WorkersUp {
        trial: plan.trial.clone(),
        workers: addresses.len(),
    });
    write_router_config(plan, &addresses)?;
    spawn_router(&mut graph, ctx)?;
    let (host, port) = await_router(&mut graph)?;
    timeline.router_ready_s = graph.elapsed();
    ctx.progress.event(ProgressEvent::RouterReady {
        trial: plan.trial.clone(),
        address: format!("{host}:{port}"),
    });
    super::startup::record_startup_metrics(plan);
    let outputs = run_clients(&mut graph, ctx, &host, port, &mut timeline)?;

    // Done: tell every role, stop them, mark the gen logs complete.
    write_status_done(plan);
    graph.stop_all();
    for log in &plan.gen_logs {
        let _ = std::fs::File::create(log.with_extension("done"));
    }
    drop(lease);
    timeline.all_reaped_s = graph.elapsed();
    let clients = finish_metrics(plan, outputs)?;
    Ok(RunReport { clients, timeline })
}
