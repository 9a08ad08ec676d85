//! The batch script of an aggregated trial, as upstream's aggregated launcher runs one
//! (spec `upstream-perf-sanity.md` §1.3, `upstream-ci-scripts.md` §3.2): the whole harness is
//! **one** `srun -N <nodes> --ntasks=<world> --ntasks-per-node=<gpus per node> --mpi=pmix
//! --kill-on-bad-exit=1` step. With more than one node the command is wrapped in
//! `trtllm-llmapi-launch`, which runs `perfsanity run <trial>` (servers in turn, their clients,
//! the records) on rank 0 and turns every other rank into an engine worker of the same MPI world;
//! on one node the step is a single task running `perfsanity run` (a single-node multi-GPU
//! `trtllm-serve` spawns its own workers).
//!
//! Sizing: a server needs `gpus` GPUs on nodes of `gpus_per_node` (0 = the server's `gpus`,
//! upstream's fallback); `nodes = ⌈gpus / gpus_per_node⌉`, `world = gpus`, tasks per node =
//! `min(gpus, gpus_per_node)`. A trial of several servers runs them one after another in the
//! same step, so the job is sized for the largest.
//!
//! With the sim toolchain `trtllm-llmapi-launch` is the simulator's stand-in
//! (`perfsanity sim … trtllm-llmapi-launch`, `tools/sim/llmapi_launch.rs`): the other ranks hold
//! their slot until rank 0 has exited. When the step fails, the script names the rank Slurm
//! reports first (`srun: error: <node>: task <r>: Exited with exit code <c>`): rank 0 is the
//! harness, any other rank an engine worker whose death ended the step.
//!
//! Pure: inputs in, text out.

use std::fmt::Write;
use std::path::PathBuf;

use crate::plan::toolchain::Toolchain;

use super::error::SlurmError;
use super::job_env::JobEnv;
use super::quote::{bash_word, bash_words};
use super::script_parts::{
    COMPLETED, Opening, Placement, SETUP_ALLOCATION, SETUP_START, Step, foreground_step, opening,
    trial_file,
};
use super::site::SiteOptions;

/// Log of the aggregated step (every rank's output and srun's own messages).
pub const AGGR_LOG: &str = "aggr_server.log";
/// Upstream's launcher program, which the simulator also stands in for.
const LLMAPI_LAUNCH_PROGRAM: &str = "trtllm-llmapi-launch";
/// The `sim:` section the launcher stand-in reads (written by the script, in the trial directory).
pub const LAUNCH_SIM_CONFIG: &str = "llmapi-launch-sim-config.json";
/// `srun --job-name` of the aggregated step (one `sacct` line).
pub const AGGR_STEP: &str = "AGGR";

/// One server's size, as the plan resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSize {
    /// Server name (for the script's comments).
    pub name: String,
    /// GPUs: `gpus`, else tp × pp × cp.
    pub gpus: u64,
    /// GPUs per node: `hardware.gpus_per_node` (which overrides the server's), else the server's
    /// `gpus_per_node`, else its `gpus`.
    pub gpus_per_node: u64,
}

/// The one step of an aggregated job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggrLayout {
    /// `-N` and `#SBATCH --nodes`.
    pub nodes: u64,
    /// `--ntasks` of the step: the MPI world (the largest server's GPUs).
    pub world: u64,
    /// `--ntasks-per-node` of the step: min(world, gpus per node).
    pub tasks_per_node: u64,
    /// `#SBATCH --ntasks-per-node` / `--gpus-per-node`.
    pub gpus_per_node: u64,
}

impl AggrLayout {
    /// The layout for `servers` (the largest by nodes, then GPUs, sizes the job).
    pub fn of(servers: &[ServerSize]) -> Self {
        let layout = |s: &ServerSize| {
            let gpus = s.gpus.max(1);
            let gpn = if s.gpus_per_node == 0 {
                gpus
            } else {
                s.gpus_per_node
            };
            AggrLayout {
                nodes: gpus.div_ceil(gpn),
                world: gpus,
                tasks_per_node: gpus.min(gpn),
                gpus_per_node: gpn,
            }
        };
        servers
            .iter()
            .map(layout)
            .max_by_key(|l| (l.nodes, l.world))
            .unwrap_or(AggrLayout {
                nodes: 1,
                world: 1,
                tasks_per_node: 1,
                gpus_per_node: 1,
            })
    }

    /// More than one node: the harness runs inside `trtllm-llmapi-launch`.
    pub fn multi_node(&self) -> bool {
        self.nodes > 1
    }
}

/// What the aggregated script needs from the plan.
#[derive(Debug, Clone)]
pub struct AggrJob {
    /// Trial name (`perfsanity run <trial>`).
    pub trial: String,
    /// The config file (comment only).
    pub config_path: PathBuf,
    /// Trial directory (shared by every node).
    pub output_dir: PathBuf,
    /// Toolchain the plan resolved.
    pub toolchain: Toolchain,
    /// The plan's `sim-config.json` content when the sim toolchain has one (rank faults). The
    /// script writes it into the trial directory itself before the step starts: the harness
    /// writes its own copy only once it runs, on rank 0, after every rank has started.
    pub sim_config_json: Option<String>,
    /// Selected servers, in run order.
    pub servers: Vec<ServerSize>,
}

impl AggrJob {
    /// What the script needs from an aggregated plan.
    pub fn of(plan: &crate::plan::AggrPlan) -> Self {
        AggrJob {
            trial: plan.trial.clone(),
            config_path: plan.config_path.clone(),
            output_dir: plan.output_dir.clone(),
            toolchain: plan.toolchain,
            sim_config_json: plan
                .servers
                .iter()
                .find_map(|s| sim_config_in_argv(&s.process.argv))
                .and_then(|path| plan.files.iter().find(|f| f.path == path))
                .map(|f| f.content.clone()),
            servers: plan
                .servers
                .iter()
                .map(|s| ServerSize {
                    name: s.name.clone(),
                    gpus: s.gpus,
                    gpus_per_node: s.gpus_per_node,
                })
                .collect(),
        }
    }
}

/// Inputs of [`render_aggr_script`].
pub struct AggrScriptInputs<'a> {
    /// The trial.
    pub job: &'a AggrJob,
    /// Site options.
    pub site: &'a SiteOptions,
    /// Program, working directory and exported variables.
    pub job_env: &'a JobEnv,
}

/// The opening of the script (header, `#SBATCH` lines, literals, shell helpers).
fn aggr_opening(
    out: &mut String,
    inputs: &AggrScriptInputs<'_>,
    layout: &AggrLayout,
) -> Result<(), SlurmError> {
    let job = inputs.job;
    let mut layout_lines: Vec<String> = job
        .servers
        .iter()
        .map(|s| {
            format!(
                "server {}: {} GPU(s), {} per node",
                s.name, s.gpus, s.gpus_per_node
            )
        })
        .collect();
    layout_lines.push(format!(
        "step: {} node(s), {} rank(s), {} per node{}",
        layout.nodes,
        layout.world,
        layout.tasks_per_node,
        if layout.multi_node() {
            "; rank 0 runs the harness inside trtllm-llmapi-launch"
        } else {
            "; one task runs the harness"
        }
    ));
    let head = Opening {
        kind: "aggregated trial",
        trial: &job.trial,
        config_path: &job.config_path,
        config_note: String::new(),
        layout_rule: "one step of world = GPUs of the largest server; nodes = ceil(GPUs / gpus_per_node)",
        layout_lines,
        output_dir: &job.output_dir,
        status_file: None,
        nodes: layout.nodes,
        tasks: layout.nodes * layout.gpus_per_node,
        gpus_per_node: layout.gpus_per_node,
        toolchain: job.toolchain,
        launch_unset: &[],
        site: inputs.site,
        job_env: inputs.job_env,
    };
    opening(out, &head, |out| sim_launch_literals(out, job, layout))
}

/// With the sim toolchain on several nodes: `SIM_LLMAPI_LAUNCH`, the simulator's stand-in for
/// `trtllm-llmapi-launch`, and `SIM_CONFIG_JSON`, its sim section, when the plan has one.
fn sim_launch_literals(
    out: &mut String,
    job: &AggrJob,
    layout: &AggrLayout,
) -> Result<(), SlurmError> {
    if job.toolchain != Toolchain::Sim || !layout.multi_node() {
        return Ok(());
    }
    let mut words = vec!["sim".to_string()];
    if let Some(json) = &job.sim_config_json {
        let _ = writeln!(
            out,
            "SIM_CONFIG_JSON={}",
            bash_word(json.trim_end(), "the sim section")?
        );
        words.push("--sim-config".to_string());
        words.push(
            job.output_dir
                .join(LAUNCH_SIM_CONFIG)
                .to_string_lossy()
                .into_owned(),
        );
    }
    words.push("--rendezvous".to_string());
    words.push(job.output_dir.to_string_lossy().into_owned());
    words.push(LLMAPI_LAUNCH_PROGRAM.to_string());
    let _ = writeln!(
        out,
        "# The simulator's stand-in for trtllm-llmapi-launch (rank 0 runs the harness)."
    );
    let _ = writeln!(
        out,
        "SIM_LLMAPI_LAUNCH=({})",
        bash_words(&words, "the simulator launcher")?
    );
    Ok(())
}

/// Names the rank Slurm reports first when the step fails.
const FAILED_RANK: &str = r#"
# failed_rank LOG: "rank R on NODE exited C" from srun's first report of a task that exited
# non-zero (the cause; the ranks srun then ended are reported as Killed/Terminated).
failed_rank() {
    local line node task code
    line=$(grep -m1 -E '^srun: error: [^:]+: tasks? [0-9][0-9,-]*: Exited with exit code [0-9]+' "$1")
    [ -n "$line" ] || return 1
    node=$(sed -E 's/^srun: error: ([^:]+): .*/\1/' <<<"$line")
    task=$(sed -E 's/^.*: tasks? ([0-9]+).*/\1/' <<<"$line")
    code=$(sed -E 's/.*Exited with exit code ([0-9]+).*/\1/' <<<"$line")
    if [ "$task" = 0 ]; then
        printf 'rank 0 (the harness) on %s exited %s' "$node" "$code"
    else
        printf 'rank %s (an engine worker) on %s exited %s; srun ended the other ranks' "$task" "$node" "$code"
    fi
}
"#;

/// The batch script of an aggregated trial.
pub fn render_aggr_script(inputs: &AggrScriptInputs<'_>) -> Result<String, SlurmError> {
    let job = inputs.job;
    let layout = AggrLayout::of(&job.servers);
    let mut out = String::new();
    aggr_opening(&mut out, inputs, &layout)?;
    out.push_str(FAILED_RANK);
    out.push_str(SETUP_START);
    out.push_str(SETUP_ALLOCATION);
    if job.toolchain == Toolchain::Sim && layout.multi_node() && job.sim_config_json.is_some() {
        let _ = writeln!(
            out,
            "\n# The launcher stand-in's sim section (rank faults), readable before the harness runs."
        );
        let _ = writeln!(
            out,
            "printf '%s\\n' \"$SIM_CONFIG_JSON\" >{} || abort setup 1 \"cannot write $TRIAL_DIR/{LAUNCH_SIM_CONFIG}\"",
            trial_file(LAUNCH_SIM_CONFIG)
        );
    }
    let wrapper = match (job.toolchain, layout.multi_node()) {
        (_, false) => "",
        (Toolchain::Trtllm, true) => "\"${LLMAPI_LAUNCH[@]}\" ",
        (Toolchain::Sim, true) => "\"$PERFSANITY_BIN\" \"${SIM_LLMAPI_LAUNCH[@]}\" ",
    };
    let _ = writeln!(
        out,
        "\n# {AGGR_STEP}: the harness{} — servers in turn, their clients, the records.",
        if layout.multi_node() {
            " on rank 0 of one MPI world; the other ranks are engine workers"
        } else {
            ", one task"
        }
    );
    let (world, per_node) = if layout.multi_node() {
        (layout.world, layout.tasks_per_node)
    } else {
        (1, 1)
    };
    foreground_step(
        &mut out,
        &Step {
            name: AGGR_STEP,
            as_role: false,
            placement: Placement::Slice {
                first: 0,
                nodes: layout.nodes,
                tasks: world,
                per_node,
            },
            wrapper,
            log: &trial_file(AGGR_LOG),
        },
        &format!("step_exit_{AGGR_STEP}"),
    );
    let _ = writeln!(out, "if [ \"$rc\" != 0 ]; then");
    let _ = writeln!(
        out,
        "    why=$(failed_rank {}) || why=\"the step exited $rc\"",
        trial_file(AGGR_LOG)
    );
    let _ = writeln!(
        out,
        "    abort {AGGR_STEP} \"$rc\" \"$why (see $TRIAL_DIR/{AGGR_LOG})\""
    );
    let _ = writeln!(out, "fi");
    out.push_str(COMPLETED);
    Ok(out)
}

/// The sim-config path in a sim worker's argv (`--sim-config <path>`), if any.
pub fn sim_config_in_argv(argv: &[String]) -> Option<PathBuf> {
    argv.windows(2)
        .find(|w| w[0] == "--sim-config")
        .map(|w| PathBuf::from(&w[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(gpus: u64, gpn: u64) -> ServerSize {
        ServerSize {
            name: format!("s{gpus}"),
            gpus,
            gpus_per_node: gpn,
        }
    }

    #[test]
    fn layout_follows_the_launcher_math() {
        // Upstream's 2-node GB200 DEP8: 8 GPUs on 4-GPU nodes.
        let l = AggrLayout::of(&[server(8, 4)]);
        assert_eq!(
            (l.nodes, l.world, l.tasks_per_node, l.gpus_per_node),
            (2, 8, 4, 4)
        );
        assert!(l.multi_node());
        // TP4 on an 8-GPU node: one node, single task.
        let l = AggrLayout::of(&[server(4, 8)]);
        assert_eq!((l.nodes, l.world, l.tasks_per_node), (1, 4, 4));
        assert!(!l.multi_node());
        // gpus_per_node 0 falls back to the server's GPUs (upstream).
        let l = AggrLayout::of(&[server(16, 0)]);
        assert_eq!((l.nodes, l.gpus_per_node), (1, 16));
        // Several servers: the largest sizes the job.
        let l = AggrLayout::of(&[server(4, 4), server(8, 4), server(2, 4)]);
        assert_eq!((l.nodes, l.world), (2, 8));
        // 6 GPUs on 4-GPU nodes: 2 nodes, exactly 6 ranks.
        let l = AggrLayout::of(&[server(6, 4)]);
        assert_eq!((l.nodes, l.world, l.tasks_per_node), (2, 6, 4));
    }

    #[test]
    fn sim_config_is_found_in_argv() {
        let argv: Vec<String> = [
            "perfsanity",
            "sim",
            "--role",
            "AGGR_0",
            "--sim-config",
            "/t/s.json",
            "trtllm-serve",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(sim_config_in_argv(&argv), Some(PathBuf::from("/t/s.json")));
        assert_eq!(sim_config_in_argv(&argv[..4]), None);
    }
}
