//! The dry-run of an aggregated trial ([`AggrPlan`]): every server with its command, env, GPU
//! slice and engine config, then its clients with the client kind and dataset each one runs and
//! why — the same information the disaggregated dry-run gives, in the same layout (the pieces
//! both print live in [`super::render_parts`]).

use std::fmt::Write;

use super::AggrPlan;
use super::render_parts::{
    client_command, client_head, field, files, identity, process, timeouts, toolchain,
    upload_and_output, warnings,
};
use crate::catalog::trial_id::AggrKind;

/// The dry-run text of an aggregated plan.
pub fn render_aggr_text(plan: &AggrPlan) -> String {
    let mut out = String::new();
    identity(&mut out, &plan.trial, &plan.test_list_id, &plan.config_path);
    field(
        &mut out,
        "Runtime",
        match &plan.kind {
            AggrKind::Servers(None) => "aggregated: every server of the file, in order".to_string(),
            AggrKind::Servers(Some(names)) => {
                format!("aggregated: server(s) {}", names.join(", "))
            }
            AggrKind::CtxOnly => {
                "aggregated ctx_only: one server from worker_config.ctx, output length 1"
                    .to_string()
            }
        },
    );
    toolchain(&mut out, plan.toolchain, &plan.scale);
    upload_and_output(&mut out, plan.upload, &plan.output_dir);
    timeouts(
        &mut out,
        &format!("address file {} s", plan.timeouts.wait_s),
        "server",
        &plan.timeouts,
    );
    warnings(&mut out, &plan.warnings);
    let _ = writeln!(
        out,
        "\nServers, one after another (each stopped before the next starts)"
    );
    for s in &plan.servers {
        let _ = writeln!(
            out,
            "\n[{}] {} — model {}, {} GPU(s), {} GPUs/node, {} node(s), s_runtime {}",
            s.index, s.name, s.model_path, s.gpus, s.gpus_per_node, s.nodes, s.runtime
        );
        process(&mut out, &s.process);
        let _ = writeln!(
            out,
            "    reports address to: {}; ready when GET /health → 200",
            s.process.address_file.display()
        );
        for c in &s.clients {
            client_head(&mut out, &c.spec, &format!(" (cmd_idx {})", c.cmd_idx));
            let _ = writeln!(
                out,
                "    benchmark: {} because {}",
                c.benchmark_mode_label, c.benchmark_mode_reason
            );
            client_command(&mut out, &c.spec, " --host localhost --port <server port>");
        }
    }
    files(&mut out, &plan.files);
    out
}
