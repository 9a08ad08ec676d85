//! The dry-run of an aggregated trial ([`AggrPlan`]): every server with its command, env, GPU
//! slice and engine config, then its clients with the client kind and dataset each one runs and
//! why — the same information the disaggregated dry-run gives.

use std::fmt::Write;

use super::AggrPlan;
use super::render::{command_line, env_line, process};
use crate::catalog::trial_id::AggrKind;

/// The dry-run text of an aggregated plan.
pub fn render_aggr_text(plan: &AggrPlan) -> String {
    let mut out = String::new();
    let w = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "{k:<12} {v}");
    };
    w(&mut out, "Trial", plan.trial.clone());
    if plan.test_list_id != plan.trial {
        w(&mut out, "Listed as", plan.test_list_id.clone());
    }
    w(&mut out, "Config", plan.config_path.display().to_string());
    w(
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
    w(
        &mut out,
        "Toolchain",
        format!(
            "{} (scale: {})",
            plan.toolchain.as_str(),
            plan.scale.describe()
        ),
    );
    w(
        &mut out,
        "Upload",
        if plan.upload {
            "yes, when OPEN_SEARCH_DB_BASE_URL is set"
        } else {
            "no"
        }
        .to_string(),
    );
    w(
        &mut out,
        "Output dir",
        plan.output_dir.display().to_string(),
    );
    w(
        &mut out,
        "Timeouts",
        format!(
            "address file {} s; server ready {} s ({}); trial {}",
            plan.timeouts.wait_s,
            plan.timeouts.ready_s,
            plan.timeouts.ready_source,
            plan.timeouts
                .trial_s
                .map(|s| format!("{s} s ({})", plan.timeouts.trial_source))
                .unwrap_or_else(|| "unbounded".to_string())
        ),
    );
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings");
        for warning in &plan.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
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
            let spec = &c.spec;
            let _ = writeln!(
                out,
                "  BENCHMARK client {} (cmd_idx {}): {} (concurrency {}, {} prompts, warmup \
                 request: {})",
                spec.index,
                c.cmd_idx,
                spec.name,
                spec.concurrency,
                spec.num_prompts,
                if spec.warmup { "yes" } else { "no" }
            );
            let _ = writeln!(
                out,
                "    benchmark: {} because {}",
                c.benchmark_mode_label, c.benchmark_mode_reason
            );
            let _ = writeln!(
                out,
                "    $ {} --host localhost --port <server port>",
                command_line(&spec.argv)
            );
            let _ = writeln!(out, "    env additions: {}", env_line(&spec.env));
            let _ = writeln!(out, "    log: {}", spec.log_file.display());
        }
    }
    let _ = writeln!(out, "\nGenerated files");
    for f in &plan.files {
        let _ = writeln!(out, "--- {} ({})", f.path.display(), f.purpose);
        out.push_str(&f.content);
    }
    out
}
