//! The batch script of one trial: `#SBATCH` header from the [`JobLayout`] and [`SiteOptions`],
//! then upstream's launch order (spec `upstream-perf-sanity.md` §1.4.1) — `GEN_i` then `CTX_i`
//! worker steps pinned to their node slices, the router with `--overlap`, the benchmark in the
//! foreground, `scancel` of the job on failure — each step running
//! `perfsanity run --role <ROLE> <trial>`.
//!
//! Every value from the config or the environment is quoted ([`super::quote`]) and sits in one
//! block of literal assignments; nothing from a YAML file is ever expanded by bash or sbatch.
//! Pure: inputs in, text out.

use std::fmt::Write;
use std::path::Path;

use crate::plan::toolchain::Toolchain;
use crate::plan::{Plan, Role};

use super::error::SlurmError;
use super::job_env::JobEnv;
use super::layout::{JobLayout, WorkerStep};
use super::quote::{bash_word, bash_words, sbatch_option, sbatch_word};
use super::site::SiteOptions;

/// File name of the script `perfsanity slurm submit` writes into the trial directory.
pub const SCRIPT_FILE: &str = "slurm_launch.sh";
/// First line of the literal-settings block (tests run that block on its own).
pub const LITERALS_BEGIN: &str =
    "# ---- literal settings: every value is quoted, nothing below is expanded ----";
/// Last line of the literal-settings block.
pub const LITERALS_END: &str = "# ---- end of literal settings ----";
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

/// Job stdout/stderr file in the trial directory (`%j` = job id).
pub fn job_output_pattern(trial_dir: &Path) -> String {
    // `%` starts a Slurm filename pattern: a literal one is written `%%`.
    format!(
        "{}/slurm-%j.out",
        trial_dir.to_string_lossy().replace('%', "%%")
    )
}

/// Per-job result file the script writes (`key=value` lines) for the submitter.
pub fn result_file(trial_dir: &Path, job_id: &str) -> std::path::PathBuf {
    trial_dir.join(format!("slurm-{job_id}.result"))
}

/// A comment line's text: control characters (a newline would end the comment) become `?`.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `"$TRIAL_DIR"/<name>` when `path` is directly in the trial directory, else the quoted path.
fn in_trial_dir(plan: &Plan, path: &Path, what: &str) -> Result<String, SlurmError> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) if parent == plan.output_dir => {
            Ok(format!("\"$TRIAL_DIR\"/{}", bash_word(name, what)?))
        }
        _ => bash_word(&path.to_string_lossy(), what),
    }
}

fn header(
    out: &mut String,
    inputs: &ScriptInputs<'_>,
    layout: &JobLayout,
) -> Result<(), SlurmError> {
    let plan = inputs.plan;
    let site = inputs.site;
    let topo = &plan.topology;
    let trial_dir = plan.output_dir.to_string_lossy();
    let _ = writeln!(out, "#!/bin/bash");
    let _ = writeln!(
        out,
        "# perfsanity batch script for trial {}",
        comment(&plan.trial)
    );
    let _ = writeln!(
        out,
        "# config: {} (benchmark mode {}, from {})",
        comment(&plan.config_path.to_string_lossy()),
        plan.mode.as_str(),
        comment(&plan.mode_source)
    );
    let _ = writeln!(
        out,
        "# layout: GPUs per worker = tp x pp x cp; nodes per worker = ceil(GPUs / gpus_per_node); \
         gen workers take the first nodes, then ctx"
    );
    for (name, w) in [("GEN", &topo.gen_workers), ("CTX", &topo.ctx)] {
        let _ = writeln!(
            out,
            "#   {name}: {} worker(s) x {} node(s), {} GPU(s) each (tp {}, pp {}, cp {}; ep {} not counted)",
            w.count, w.nodes_per_worker, w.gpus_per_worker, w.tp, w.pp, w.cp, w.ep
        );
    }
    let _ = writeln!(
        out,
        "#   allocation: {} node(s) x {} GPU(s) = {} GPUs",
        layout.total_nodes, layout.gpus_per_node, layout.total_tasks
    );
    let _ = writeln!(
        out,
        "# Submit with `perfsanity slurm submit`, which writes this script to the trial directory;"
    );
    let _ = writeln!(
        out,
        "# with plain sbatch create the output directory first: mkdir -p {}",
        comment(&trial_dir)
    );
    if let Some(note) = &site.container_note {
        let _ = writeln!(out, "# note: {}", comment(note));
    }
    let mut directives: Vec<String> = vec![
        sbatch_option("job-name", &site.job_name.value, &site.job_name.source)?,
        format!("--nodes={}", layout.total_nodes),
        format!("--ntasks={}", layout.total_tasks),
        format!("--ntasks-per-node={}", layout.gpus_per_node),
    ];
    if site.gpus_per_node_flag {
        directives.push(format!("--gpus-per-node={}", layout.gpus_per_node));
    }
    for (name, value) in [
        ("partition", &site.partition),
        ("account", &site.account),
        ("time", &site.time),
    ] {
        if let Some(v) = value {
            directives.push(sbatch_option(name, &v.value, &v.source)?);
        }
    }
    if site.segment {
        directives.push(format!("--segment={}", layout.total_nodes));
    }
    directives.push(sbatch_option(
        "output",
        &job_output_pattern(&plan.output_dir),
        "PERF_OUTPUT_DIR",
    )?);
    for d in directives {
        let _ = writeln!(out, "#SBATCH {d}");
    }
    if !site.extra_args.is_empty() {
        let words = site
            .extra_args
            .iter()
            .map(|a| sbatch_word(a, &site.extra_args_source))
            .collect::<Result<Vec<_>, _>>()?;
        let _ = writeln!(out, "#SBATCH {}", words.join(" "));
    }
    Ok(())
}

fn literals(
    out: &mut String,
    inputs: &ScriptInputs<'_>,
    layout: &JobLayout,
) -> Result<(), SlurmError> {
    let plan = inputs.plan;
    let env = inputs.job_env;
    let site = inputs.site;
    let _ = writeln!(out, "{LITERALS_BEGIN}");
    let _ = writeln!(out, "TRIAL={}", bash_word(&plan.trial, "the trial name")?);
    let _ = writeln!(
        out,
        "TRIAL_DIR={}",
        bash_word(&plan.output_dir.to_string_lossy(), "PERF_OUTPUT_DIR")?
    );
    let _ = writeln!(
        out,
        "STATUS_FILE={}",
        in_trial_dir(plan, &plan.status_file, "the status file")?
    );
    let _ = writeln!(
        out,
        "WORKDIR={}",
        bash_word(&env.workdir.to_string_lossy(), "the project root")?
    );
    let _ = writeln!(out, "TOTAL_NODES={}", layout.total_nodes);
    for (name, value) in &env.exports {
        let _ = writeln!(out, "export {name}={}", bash_word(value, name)?);
    }
    let _ = writeln!(out, "unset {}", env.unset.join(" "));
    launch_env_unset(out, plan);
    match &site.container {
        Some(c) => {
            let mut flags = vec![format!("--container-image={}", c.image.value)];
            if let Some(m) = &c.mounts {
                flags.push(format!("--container-mounts={}", m.value));
            }
            flags.push(format!(
                "--container-workdir={}",
                env.workdir.to_string_lossy()
            ));
            let _ = writeln!(
                out,
                "CONTAINER_FLAGS=({})",
                bash_words(&flags, "the container settings")?
            );
        }
        None => {
            let _ = writeln!(out, "CONTAINER_FLAGS=()");
        }
    }
    let mpi = match &site.mpi {
        Some(m) => bash_word(&format!("--mpi={m}"), "PERF_SLURM_MPI")?,
        None => String::new(),
    };
    let _ = writeln!(out, "WORKER_MPI=({mpi})");
    if plan.toolchain == Toolchain::Trtllm {
        let _ = writeln!(
            out,
            "LLMAPI_LAUNCH=({})",
            bash_words(&site.llmapi_launch, "PERF_SLURM_LLMAPI_LAUNCH")?
        );
    }
    let _ = writeln!(out, "{LITERALS_END}");
    Ok(())
}

const FUNCTIONS: &str = r#"
RESULT_FILE="$TRIAL_DIR/slurm-$SLURM_JOB_ID.result"
BACKGROUND=()

note() { printf '[perfsanity %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# record KEY=VALUE…: facts for `perfsanity slurm submit` (which step failed, exit codes).
record() { printf '%s\n' "$@" >>"$RESULT_FILE"; }
# abort STAGE CODE MESSAGE: record why, then cancel the whole job (every step dies with it).
abort() {
    record "failed_stage=$1" "failed_exit=$2" "message=$3"
    note "FAILED ($1): $3; cancelling job $SLURM_JOB_ID"
    scancel "$SLURM_JOB_ID"
    exit 1
}
# step_ended ROLE CODE: a background step ended. A failure before the benchmark has finished
# cancels the job at once instead of letting the benchmark wait for it until slurm.timeout.
step_ended() {
    record "step_exit_$1=$2"
    if [ "$2" != 0 ] && [ ! -e "$STATUS_FILE" ]; then
        abort "$1" "$2" "step $1 exited $2 before the benchmark finished (see its log in $TRIAL_DIR)"
    fi
}
"#;

const SETUP: &str = r#"
cd -- "$WORKDIR" || { echo "perfsanity: cannot cd to $WORKDIR" >&2; exit 1; }
mkdir -p -- "$TRIAL_DIR" || { echo "perfsanity: cannot create $TRIAL_DIR" >&2; exit 1; }
: >"$RESULT_FILE"
record "job_id=$SLURM_JOB_ID" "trial=$TRIAL"
# A status file of an earlier run would tell the new workers to stop at once.
rm -f -- "$STATUS_FILE"
[ "${#CONTAINER_FLAGS[@]}" -gt 0 ] && CONTAINER_FLAGS+=("--container-name=perfsanity-$SLURM_JOB_ID")

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${#NODES[@]}" -lt "$TOTAL_NODES" ]; then
    abort setup 1 "the allocation has ${#NODES[@]} node(s) ($SLURM_JOB_NODELIST); this trial needs $TOTAL_NODES"
fi
record "nodes=${NODES[*]}"
# slice FIRST COUNT: NODES[FIRST] … NODES[FIRST+COUNT-1], comma-separated (for srun -w).
slice() { local IFS=,; printf '%s' "${NODES[*]:$1:$2}"; }
"#;

const RANK0_ONLY: &str = r#"# Multi-rank worker steps, sim toolchain: rank 0 plays the role (the simulator is one process per
# worker); the other ranks hold their slot until the benchmark's status file appears, as MPI
# ranks live as long as their server.
RANK0_ONLY=(bash -c 'if [ "${SLURM_PROCID:-0}" = 0 ]; then exec "${@:2}"; fi; while [ ! -e "$1" ]; do sleep 2; done' perfsanity-rank)
"#;

const EPILOGUE: &str = r#"note "the benchmark finished; waiting up to 120 s for the other steps to see Done"
deadline=$((SECONDS + 120))
for pid in "${BACKGROUND[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
done
if [ "$SECONDS" -ge "$deadline" ]; then
    note "some steps are still running; the job ends anyway and Slurm stops them"
    record "lingering_steps=1"
fi
record "outcome=completed"
note "trial $TRIAL finished"
exit 0
"#;

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
        Role::Ctx(i) => (format!("\"$TRIAL_DIR\"/ctx_server_{i}.log"), None),
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
    let _ = writeln!(out, "(");
    let _ = writeln!(
        out,
        "    srun --job-name={role} \"${{WORKER_MPI[@]}}\" --kill-on-bad-exit=1 -N {} -w \"$(slice {} {})\" \
         --ntasks={} --ntasks-per-node={} \"${{CONTAINER_FLAGS[@]}}\" \\",
        step.nodes, step.first_node, step.nodes, step.ntasks, step.ntasks_per_node
    );
    let _ = writeln!(
        out,
        "        {wrapper}\"$PERFSANITY_BIN\" run --role {role} \"$TRIAL\" &>{log}"
    );
    let _ = writeln!(out, "    rc=$?");
    if let Some(done) = &done {
        let _ = writeln!(out, "    touch -- {done}");
    }
    let _ = writeln!(out, "    step_ended {role} \"$rc\"");
    let _ = writeln!(out, ") &");
    let _ = writeln!(out, "BACKGROUND+=($!)");
    if pause_s > 0 {
        let _ = writeln!(out, "sleep {pause_s}");
    }
    Ok(())
}

/// Upstream's launcher removes these from every role (the additions — per-rank
/// `FLASHINFER_JIT_DIR`, `HF_HOME`, `TRTLLM_PRESERVE_UCX_ENV` — are in each process's plan env,
/// applied by `perfsanity run --role` inside the step, where `SLURM_LOCALID` is the task's).
fn launch_env_unset(out: &mut String, plan: &Plan) {
    if !plan.launch_env.unset.is_empty() {
        let _ = writeln!(
            out,
            "# every role starts without the UCX settings of the submitting host"
        );
        let _ = writeln!(out, "unset {}", plan.launch_env.unset.join(" "));
    }
}

/// The batch script of `inputs.plan`.
pub fn render_script(inputs: &ScriptInputs<'_>) -> Result<String, SlurmError> {
    let plan = inputs.plan;
    let layout = JobLayout::of(plan);
    let mut out = String::new();
    header(&mut out, inputs, &layout)?;
    let _ = writeln!(out, "\nset -uo pipefail\n");
    literals(&mut out, inputs, &layout)?;
    out.push_str(FUNCTIONS);
    out.push_str(SETUP);
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
    let _ = writeln!(out, "(");
    let _ = writeln!(
        out,
        "    srun --job-name=DISAGG_SERVER --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 \
         \"${{CONTAINER_FLAGS[@]}}\" \\"
    );
    let _ = writeln!(
        out,
        "        \"$PERFSANITY_BIN\" run --role DISAGG_SERVER \"$TRIAL\" &>\"$TRIAL_DIR\"/{ROUTER_LOG}"
    );
    let _ = writeln!(out, "    step_ended DISAGG_SERVER \"$?\"");
    let _ = writeln!(out, ") &");
    let _ = writeln!(out, "BACKGROUND+=($!)");
    if inputs.site.step_pause_s > 0 {
        let _ = writeln!(out, "sleep {}", inputs.site.step_pause_s);
    }
    let _ = writeln!(
        out,
        "\n# BENCHMARK in the foreground: runs the clients, records the results, writes Done."
    );
    let _ = writeln!(
        out,
        "srun --job-name=BENCHMARK --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 \
         \"${{CONTAINER_FLAGS[@]}}\" \\"
    );
    let _ = writeln!(
        out,
        "    \"$PERFSANITY_BIN\" run --role BENCHMARK \"$TRIAL\" &>\"$TRIAL_DIR\"/{BENCHMARK_LOG}"
    );
    let _ = writeln!(out, "rc=$?");
    let _ = writeln!(out, "record \"benchmark_exit=$rc\"");
    let _ = writeln!(
        out,
        "[ \"$rc\" = 0 ] || abort BENCHMARK \"$rc\" \"the benchmark step exited $rc (see $TRIAL_DIR/{BENCHMARK_LOG})\""
    );
    out.push_str(EPILOGUE);
    Ok(out)
}
