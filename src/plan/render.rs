//! The human dry-run: a [`Plan`] printed so a perf engineer can read every command, every
//! environment addition and every generated file before a GPU is touched.

use std::fmt::Write;

use super::{Plan, ProcessSpec};
use crate::config::env_string::EnvList;

/// Shell-quotes one argv element (for display and generated scripts).
pub fn shell_quote(arg: &str) -> String {
    shlex::try_quote(arg)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", arg.replace('\'', "'\\''")))
}

/// One argv as a copy-pasteable shell command line.
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_line(env: &EnvList) -> String {
    if env.is_empty() {
        return "(none)".to_string();
    }
    env.iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn process(out: &mut String, p: &ProcessSpec) {
    let gpus = if p.gpus == 0 {
        String::new()
    } else if p.gpus == 1 {
        format!("  [GPU slot {}]", p.first_gpu)
    } else {
        format!("  [GPU slots {}-{}]", p.first_gpu, p.first_gpu + p.gpus - 1)
    };
    let _ = writeln!(out, "  {}{gpus}", p.role);
    let _ = writeln!(out, "    $ {}", command_line(&p.argv));
    let _ = writeln!(out, "    env additions: {}", env_line(&p.env));
    let _ = writeln!(out, "    log: {}", p.log_file.display());
}

/// The dry-run text of a plan.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.topology;
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
        "Mode",
        format!("{} (from {})", plan.mode.as_str(), plan.mode_source),
    );
    w(&mut out, "Benchmark", plan.benchmark_mode_label.clone());
    w(&mut out, "  because", plan.benchmark_mode_reason.clone());
    w(
        &mut out,
        "  range ratio",
        format!(
            "{} ({})",
            crate::util::yaml::python_float(plan.range_ratio),
            plan.range_ratio_reason
        ),
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
    w(&mut out, "Model", plan.model_path.clone());
    w(
        &mut out,
        "Launch env",
        format!(
            "every role: unset {} (upstream's launcher; ${{SLURM_LOCALID}} below is the step's \
             rank on its node)",
            plan.launch_env.unset.join(" ")
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
    for (name, wt) in [("ctx", &t.ctx), ("gen", &t.gen_workers)] {
        w(
            &mut out,
            if name == "ctx" { "Topology" } else { "" },
            format!(
                "{name} × {}: tp {} × pp {} × cp {} = {} GPU(s) each (ep {}), {} node(s) each",
                wt.count, wt.tp, wt.pp, wt.cp, wt.gpus_per_worker, wt.ep, wt.nodes_per_worker
            ),
        );
    }
    w(
        &mut out,
        "",
        format!(
            "allocation: {} node(s) × {} GPUs/node = {} GPUs; workers use {} GPU(s)",
            t.total_nodes, t.gpus_per_node, t.total_gpus, t.gpus_used
        ),
    );
    w(
        &mut out,
        "Timeouts",
        format!(
            "waits {} s (slurm.timeout); router ready {} s ({}); trial {}",
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
        let _ = writeln!(
            out,
            "  BENCHMARK client {}: {} (concurrency {}, {} prompts, warmup request: {})",
            c.index,
            c.name,
            c.concurrency,
            c.num_prompts,
            if c.warmup { "yes" } else { "no" }
        );
        let _ = writeln!(
            out,
            "    $ {} --host <router host> --port <router port>",
            command_line(&c.argv)
        );
        let _ = writeln!(out, "    env additions: {}", env_line(&c.env));
        let _ = writeln!(out, "    log: {}", c.log_file.display());
    }
    let _ = writeln!(out, "\nGenerated files");
    for f in &plan.files {
        let _ = writeln!(out, "--- {} ({})", f.path.display(), f.purpose);
        out.push_str(&f.content);
    }
    let _ = writeln!(
        out,
        "--- {} (written by DISAGG_SERVER once every worker reported its address)",
        plan.router.config_path.display()
    );
    out.push_str(&plan.router.config.render_placeholder());
    out
}
