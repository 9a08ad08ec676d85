//! The batch script of one trial: `#SBATCH` header from the [`JobLayout`] and [`SiteOptions`],
//! then upstream's launch order (spec `upstream-perf-sanity.md` §1.4.1) — `GEN_i` then `CTX_i`
//! worker steps pinned to their node slices, the router with `--overlap`, the benchmark in the
//! foreground, `scancel` of the job on failure — each step running
//! `perfsanity run --role <ROLE> <trial>`.
//!
//! Every value from the config or the environment is quoted ([`super::quote`]) and sits in one
//! block of literal assignments; nothing from a YAML file is ever expanded by bash or sbatch.
//! What the aggregated trial's script ([`super::aggr`]) says the same way — the opening, the
//! setup, an `srun` step, the end — is written by `script_parts`; this file has the
//! disaggregated trial's own steps. Pure: inputs in, text out.

use std::fmt::Write;
use std::path::Path;

use crate::plan::toolchain::Toolchain;
use crate::plan::{Plan, Role};

use super::error::SlurmError;
use super::job_env::JobEnv;
use super::layout::{JobLayout, WorkerStep};
use super::quote::bash_word;
use super::script_parts::{
    COMPLETED, Opening, Placement, SETUP_ALLOCATION, SETUP_START, Step, foreground_step, opening,
    srun_step, trial_file,
};
use super::site::SiteOptions;

pub use super::script_parts::{LITERALS_BEGIN, LITERALS_END, job_output_pattern, result_file};

/// File name of the script `perfsanity slurm submit` writes into the trial directory.
pub const SCRIPT_FILE: &str = "slurm_launch.sh";
/// Log of the router step (upstream's name).
pub const ROUTER_LOG: &str = "disagg_server.log";
/// Log of the benchmark step.
pub const BENCHMARK_LOG: &str = "benchmark.log";

/// Inputs of [`render_script`].
pub struct ScriptInputs<'a> {
    /// The trial's plan (topology, workers, files).
    pub plan: &'a Plan,
    /// Site options.
    pub site: &'a SiteOptions,
    /// Program, working directory and exported variables.
    pub job_env: &'a JobEnv,
}

/// `"$TRIAL_DIR"/<name>` when `path` is directly in the trial directory, else the quoted path.
fn in_trial_dir(plan: &Plan, path: &Path, what: &str) -> Result<String, SlurmError> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) if parent == plan.output_dir => {
            Ok(trial_file(&bash_word(name, what)?))
        }
        _ => bash_word(&path.to_string_lossy(), what),
    }
}

/// The opening of the script (header, `#SBATCH` lines, literals, shell helpers).
fn script_opening(
    out: &mut String,
    inputs: &ScriptInputs<'_>,
    layout: &JobLayout,
) -> Result<(), SlurmError> {
    let plan = inputs.plan;
    let topo = &plan.topology;
    let mut layout_lines: Vec<String> = [("GEN", &topo.gen_workers), ("CTX", &topo.ctx)]
        .into_iter()
        .map(|(name, w)| {
            format!(
                "{name}: {} worker(s) x {} node(s), {} GPU(s) each (tp {}, pp {}, cp {}; ep {} not counted)",
                w.count, w.nodes_per_worker, w.gpus_per_worker, w.tp, w.pp, w.cp, w.ep
            )
        })
        .collect();
    layout_lines.push(format!(
        "allocation: {} node(s) x {} GPU(s) = {} GPUs",
        layout.total_nodes, layout.gpus_per_node, layout.total_tasks
    ));
    let head = Opening {
        kind: "trial",
        trial: &plan.trial,
        config_path: &plan.config_path,
        config_note: format!(
            " (benchmark mode {}, from {})",
            plan.mode.as_str(),
            plan.mode_source
        ),
        layout_rule: "GPUs per worker = tp x pp x cp; nodes per worker = ceil(GPUs / gpus_per_node); \
                      gen workers take the first nodes, then ctx",
        layout_lines,
        output_dir: &plan.output_dir,
        status_file: Some(in_trial_dir(plan, &plan.status_file, "the status file")?),
        nodes: layout.total_nodes,
        tasks: layout.total_tasks,
        gpus_per_node: layout.gpus_per_node,
        toolchain: plan.toolchain,
        launch_unset: &plan.launch_env.unset,
        site: inputs.site,
        job_env: inputs.job_env,
    };
    opening(out, &head, |_| Ok(()))
}

const SETUP_STATUS: &str = r#"# A status file of an earlier run would tell the new workers to stop at once.
rm -f -- "$STATUS_FILE"
"#;

const RANK0_ONLY: &str = r#"# Multi-rank worker steps, sim toolchain: rank 0 plays the role (the simulator is one process per
# worker); the other ranks hold their slot until the benchmark's status file appears, as MPI
# ranks live as long as their server.
RANK0_ONLY=(bash -c 'if [ "${SLURM_PROCID:-0}" = 0 ]; then exec "${@:2}"; fi; while [ ! -e "$1" ]; do sleep 2; done' perfsanity-rank)
"#;

/// End of a successful script, before [`COMPLETED`]: wait for the other steps.
const WAIT_FOR_STEPS: &str = r#"note "the benchmark finished; waiting up to 120 s for the other steps to see Done"
deadline=$((SECONDS + 120))
for pid in "${BACKGROUND[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
done
if [ "$SECONDS" -ge "$deadline" ]; then
    note "some steps are still running; the job ends anyway and Slurm stops them"
    record "lingering_steps=1"
fi
"#;

/// A background step: `body` in a subshell, its pid in `BACKGROUND`, then the site's pause.
fn background_step(out: &mut String, pause_s: u64, body: impl FnOnce(&mut String)) {
    let _ = writeln!(out, "(");
    body(out);
    let _ = writeln!(out, ") &");
    let _ = writeln!(out, "BACKGROUND+=($!)");
    if pause_s > 0 {
        let _ = writeln!(out, "sleep {pause_s}");
    }
}

fn worker_step(
    out: &mut String,
    plan: &Plan,
    step: &WorkerStep,
    pause_s: u64,
) -> Result<(), SlurmError> {
    let role = step.role.to_string();
    let (log, done) = match step.role {
        Role::Gen(i) => {
            let log = &plan.gen_logs[i as usize];
            (
                in_trial_dir(plan, log, "the gen log")?,
                Some(in_trial_dir(
                    plan,
                    &log.with_extension("done"),
                    "the gen sentinel",
                )?),
            )
        }
        Role::Ctx(i) => (trial_file(&format!("ctx_server_{i}.log")), None),
        _ => unreachable!("worker steps are GEN_i or CTX_i"),
    };
    let last = step.first_node + step.nodes - 1;
    let _ = writeln!(
        out,
        "\n# {role}: node(s) {}-{last} of the allocation, {} task(s), {} per node, {} GPU(s)",
        step.first_node, step.ntasks, step.ntasks_per_node, step.gpus
    );
    if let Some(done) = &done {
        let _ = writeln!(out, "rm -f -- {done}");
    }
    let wrapper = match plan.toolchain {
        Toolchain::Trtllm => "\"${LLMAPI_LAUNCH[@]}\" ",
        Toolchain::Sim if step.ntasks > 1 => "\"${RANK0_ONLY[@]}\" \"$STATUS_FILE\" ",
        Toolchain::Sim => "",
    };
    background_step(out, pause_s, |out| {
        srun_step(
            out,
            "    ",
            &Step {
                name: &role,
                as_role: true,
                placement: Placement::Slice {
                    first: step.first_node,
                    nodes: step.nodes,
                    tasks: step.ntasks,
                    per_node: step.ntasks_per_node,
                },
                wrapper,
                log: &log,
            },
        );
        let _ = writeln!(out, "    rc=$?");
        if let Some(done) = &done {
            let _ = writeln!(out, "    touch -- {done}");
        }
        let _ = writeln!(out, "    step_ended {role} \"$rc\"");
    });
    Ok(())
}

/// The batch script of `inputs.plan`.
pub fn render_script(inputs: &ScriptInputs<'_>) -> Result<String, SlurmError> {
    let plan = inputs.plan;
    let layout = JobLayout::of(plan);
    let mut out = String::new();
    script_opening(&mut out, inputs, &layout)?;
    out.push_str(SETUP_START);
    out.push_str(SETUP_STATUS);
    out.push_str(SETUP_ALLOCATION);
    if plan.toolchain == Toolchain::Sim && layout.workers.iter().any(|w| w.ntasks > 1) {
        out.push('\n');
        out.push_str(RANK0_ONLY);
    }
    if plan.mode == crate::config::BenchmarkMode::GenOnlyNoContext {
        let _ = writeln!(
            out,
            "\n# gen_only_no_context: no context workers (upstream's launcher skips them)."
        );
    }
    for step in &layout.workers {
        worker_step(&mut out, plan, step, inputs.site.step_pause_s)?;
    }
    let _ = writeln!(
        out,
        "\n# DISAGG_SERVER: the router, one task sharing the first node (--overlap)."
    );
    let router_log = trial_file(ROUTER_LOG);
    background_step(&mut out, inputs.site.step_pause_s, |out| {
        srun_step(
            out,
            "    ",
            &Step {
                name: "DISAGG_SERVER",
                as_role: true,
                placement: Placement::Overlap,
                wrapper: "",
                log: &router_log,
            },
        );
        let _ = writeln!(out, "    step_ended DISAGG_SERVER \"$?\"");
    });
    let _ = writeln!(
        out,
        "\n# BENCHMARK in the foreground: runs the clients, records the results, writes Done."
    );
    foreground_step(
        &mut out,
        &Step {
            name: "BENCHMARK",
            as_role: true,
            placement: Placement::Overlap,
            wrapper: "",
            log: &trial_file(BENCHMARK_LOG),
        },
        "benchmark_exit",
    );
    let _ = writeln!(
        out,
        "[ \"$rc\" = 0 ] || abort BENCHMARK \"$rc\" \"the benchmark step exited $rc (see $TRIAL_DIR/{BENCHMARK_LOG})\""
    );
    out.push_str(WAIT_FOR_STEPS);
    out.push_str(COMPLETED);
    Ok(out)
}
