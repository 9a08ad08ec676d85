//! The human dry-run: a [`Plan`] printed so a perf engineer can read every command, every
//! environment addition and every generated file before a GPU is touched. The layout pieces it
//! shares with the aggregated dry-run live in [`super::render_parts`].

use std::fmt::Write;

use super::Plan;
use super::render_parts::{
    client_command, client_head, field, files, identity, process, timeouts, toolchain,
    upload_and_output, warnings,
};

/// The dry-run text of a plan.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.topology;
    identity(&mut out, &plan.trial, &plan.test_list_id, &plan.config_path);
    field(
        &mut out,
        "Mode",
        format!("{} (from {})", plan.mode.as_str(), plan.mode_source),
    );
    field(&mut out, "Benchmark", &plan.benchmark_mode_label);
    field(&mut out, "  because", &plan.benchmark_mode_reason);
    field(
        &mut out,
        "  range ratio",
        format!(
            "{} ({})",
            crate::util::yaml::python_float(plan.range_ratio),
            plan.range_ratio_reason
        ),
    );
    toolchain(&mut out, plan.toolchain, &plan.scale);
    field(&mut out, "Model", &plan.model_path);
    field(
        &mut out,
        "Launch env",
        format!(
            "every role: unset {} (upstream's launcher; ${{SLURM_LOCALID}} below is the step's \
             rank on its node)",
            plan.launch_env.unset.join(" ")
        ),
    );
    upload_and_output(&mut out, plan.upload, &plan.output_dir);
    for (name, wt) in [("ctx", &t.ctx), ("gen", &t.gen_workers)] {
        field(
            &mut out,
            if name == "ctx" { "Topology" } else { "" },
            format!(
                "{name} × {}: tp {} × pp {} × cp {} = {} GPU(s) each (ep {}), {} node(s) each",
                wt.count, wt.tp, wt.pp, wt.cp, wt.gpus_per_worker, wt.ep, wt.nodes_per_worker
            ),
        );
    }
    field(
        &mut out,
        "",
        format!(
            "allocation: {} node(s) × {} GPUs/node = {} GPUs; workers use {} GPU(s)",
            t.total_nodes, t.gpus_per_node, t.total_gpus, t.gpus_used
        ),
    );
    timeouts(
        &mut out,
        &format!("waits {} s (slurm.timeout)", plan.timeouts.wait_s),
        "router",
        &plan.timeouts,
    );
    warnings(&mut out, &plan.warnings);
    let _ = writeln!(out, "\nProcesses, in launch order");
    for p in &plan.workers {
        process(&mut out, p);
        let _ = writeln!(out, "    reports address to: {}", p.address_file.display());
    }
    process(&mut out, &plan.router.process);
    let _ = writeln!(
        out,
        "    starts after every worker reported; ready when GET /health → 200"
    );
    for c in &plan.clients {
        client_head(&mut out, c, "");
        client_command(&mut out, c, " --host <router host> --port <router port>");
    }
    files(&mut out, &plan.files);
    let _ = writeln!(
        out,
        "--- {} (written by DISAGG_SERVER once every worker reported its address)",
        plan.router.config_path.display()
    );
    out.push_str(&plan.router.config.render_placeholder());
    out
}
