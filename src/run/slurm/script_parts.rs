//! The parts both batch scripts share — the disaggregated trial's ([`super::script`]) and the
//! aggregated trial's ([`super::aggr`]) — so that each rule of the generated text lives once:
//! the opening ([`opening`]: comment header, `#SBATCH` directives, `set -uo pipefail`, the block
//! of literal settings with the job's environment, container and MPI options, the shell
//! helpers), the setup every body starts with, one `srun` step ([`srun_step`]), a foreground
//! step's exit record ([`foreground_step`]) and the end of a completed job ([`COMPLETED`]).
//!
//! Every value from the config or the environment is quoted ([`super::quote`]); comment text has
//! its control characters replaced. Pure: inputs in, text out.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::plan::toolchain::Toolchain;

use super::error::SlurmError;
use super::job_env::JobEnv;
use super::quote::{bash_word, bash_words, sbatch_option, sbatch_word};
use super::site::SiteOptions;

/// First line of the literal-settings block (tests run that block on its own).
pub const LITERALS_BEGIN: &str =
    "# ---- literal settings: every value is quoted, nothing below is expanded ----";
/// Last line of the literal-settings block.
pub const LITERALS_END: &str = "# ---- end of literal settings ----";

/// Job stdout/stderr file in the trial directory (`%j` = job id).
pub fn job_output_pattern(trial_dir: &Path) -> String {
    // `%` starts a Slurm filename pattern: a literal one is written `%%`.
    format!(
        "{}/slurm-%j.out",
        trial_dir.to_string_lossy().replace('%', "%%")
    )
}

/// Per-job result file the script writes (`key=value` lines) for the submitter: the script's
/// `RESULT_FILE` (the shell helpers' first line).
pub fn result_file(trial_dir: &Path, job_id: &str) -> PathBuf {
    trial_dir.join(format!("slurm-{job_id}.result"))
}

/// `"$TRIAL_DIR"/<name>`: a file of the trial directory as the script names it (`name` is
/// already a bash word).
pub fn trial_file(name: &str) -> String {
    format!("\"$TRIAL_DIR\"/{name}")
}

/// A comment line's text: control characters (a newline would end the comment) become `?`.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What the opening of a batch script says about its job.
pub struct Opening<'a> {
    /// What the job runs, for the title: `trial` or `aggregated trial`.
    pub kind: &'a str,
    /// Trial name (`TRIAL`).
    pub trial: &'a str,
    /// The config file (comment only).
    pub config_path: &'a Path,
    /// Said after the config path in the comment (e.g. the benchmark mode), or empty.
    pub config_note: String,
    /// How the job is sized (comment after `# layout: `).
    pub layout_rule: &'a str,
    /// The sizes, one comment line each under the rule.
    pub layout_lines: Vec<String>,
    /// Trial directory (`TRIAL_DIR`, `#SBATCH --output`).
    pub output_dir: &'a Path,
    /// `STATUS_FILE`, already a bash word, where the script has one.
    pub status_file: Option<String>,
    /// `#SBATCH --nodes` and `TOTAL_NODES`.
    pub nodes: u64,
    /// `#SBATCH --ntasks`.
    pub tasks: u64,
    /// `#SBATCH --ntasks-per-node` (and `--gpus-per-node` where the site asks for it).
    pub gpus_per_node: u64,
    /// Toolchain the plan resolved (the trtllm toolchain gets `LLMAPI_LAUNCH`).
    pub toolchain: Toolchain,
    /// What upstream's launcher removes from every role (`launch_unset`; may be empty).
    pub launch_unset: &'a [String],
    /// Site options.
    pub site: &'a SiteOptions,
    /// Program, working directory and exported variables.
    pub job_env: &'a JobEnv,
}

/// The opening of a batch script: the comment header, the `#SBATCH` lines, `set -uo pipefail`,
/// the literal-settings block (`more_literals` adds the caller's own assignments at its end) and
/// the shell helpers ([`FUNCTIONS`]).
pub fn opening(
    out: &mut String,
    o: &Opening<'_>,
    more_literals: impl FnOnce(&mut String) -> Result<(), SlurmError>,
) -> Result<(), SlurmError> {
    header(out, o);
    sbatch_directives(out, o)?;
    let _ = writeln!(out, "\nset -uo pipefail\n");
    let _ = writeln!(out, "{LITERALS_BEGIN}");
    let _ = writeln!(out, "TRIAL={}", bash_word(o.trial, "the trial name")?);
    let _ = writeln!(
        out,
        "TRIAL_DIR={}",
        bash_word(&o.output_dir.to_string_lossy(), "PERF_OUTPUT_DIR")?
    );
    if let Some(status_file) = &o.status_file {
        let _ = writeln!(out, "STATUS_FILE={status_file}");
    }
    let _ = writeln!(
        out,
        "WORKDIR={}",
        bash_word(&o.job_env.workdir.to_string_lossy(), "the project root")?
    );
    let _ = writeln!(out, "TOTAL_NODES={}", o.nodes);
    environment_literals(out, o)?;
    more_literals(out)?;
    let _ = writeln!(out, "{LITERALS_END}");
    out.push_str(FUNCTIONS);
    Ok(())
}

/// The comment lines: title, config, layout, how to submit, the site's container note.
fn header(out: &mut String, o: &Opening<'_>) {
    let _ = writeln!(out, "#!/bin/bash");
    let _ = writeln!(
        out,
        "# perfsanity batch script for {} {}",
        o.kind,
        comment(o.trial)
    );
    let _ = writeln!(
        out,
        "# config: {}{}",
        comment(&o.config_path.to_string_lossy()),
        comment(&o.config_note)
    );
    let _ = writeln!(out, "# layout: {}", o.layout_rule);
    for line in &o.layout_lines {
        let _ = writeln!(out, "#   {}", comment(line));
    }
    let _ = writeln!(
        out,
        "# Submit with `perfsanity slurm submit`, which writes this script to the trial directory;"
    );
    let _ = writeln!(
        out,
        "# with plain sbatch create the output directory first: mkdir -p {}",
        comment(&o.output_dir.to_string_lossy())
    );
    if let Some(note) = &o.site.container_note {
        let _ = writeln!(out, "# note: {}", comment(note));
    }
}

/// The `#SBATCH` lines: job name, `--nodes`, `--ntasks`, `--ntasks-per-node`, `--gpus-per-node`,
/// site options, `--output` in the trial directory, extra arguments.
fn sbatch_directives(out: &mut String, o: &Opening<'_>) -> Result<(), SlurmError> {
    let site = o.site;
    let mut directives: Vec<String> = vec![
        sbatch_option("job-name", &site.job_name.value, &site.job_name.source)?,
        format!("--nodes={}", o.nodes),
        format!("--ntasks={}", o.tasks),
        format!("--ntasks-per-node={}", o.gpus_per_node),
    ];
    if site.gpus_per_node_flag {
        directives.push(format!("--gpus-per-node={}", o.gpus_per_node));
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
        directives.push(format!("--segment={}", o.nodes));
    }
    directives.push(sbatch_option(
        "output",
        &job_output_pattern(o.output_dir),
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

/// Literal assignments of the job's environment: exports, unsets (`launch_unset`: what the
/// launcher removes from every role), `CONTAINER_FLAGS`, `WORKER_MPI`, and with the trtllm
/// toolchain `LLMAPI_LAUNCH`.
fn environment_literals(out: &mut String, o: &Opening<'_>) -> Result<(), SlurmError> {
    let env = o.job_env;
    let site = o.site;
    for (name, value) in &env.exports {
        let _ = writeln!(out, "export {name}={}", bash_word(value, name)?);
    }
    let _ = writeln!(out, "unset {}", env.unset.join(" "));
    launch_env_unset(out, o.launch_unset);
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
    if o.toolchain == Toolchain::Trtllm {
        let _ = writeln!(
            out,
            "LLMAPI_LAUNCH=({})",
            bash_words(&site.llmapi_launch, "PERF_SLURM_LLMAPI_LAUNCH")?
        );
    }
    Ok(())
}

/// Upstream's launcher removes these from every role (the additions — per-rank
/// `FLASHINFER_JIT_DIR`, `HF_HOME`, `TRTLLM_PRESERVE_UCX_ENV` — are in each process's plan env,
/// applied by `perfsanity run --role` inside the step, where `SLURM_LOCALID` is the task's).
fn launch_env_unset(out: &mut String, unset: &[String]) {
    if !unset.is_empty() {
        let _ = writeln!(
            out,
            "# every role starts without the UCX settings of the submitting host"
        );
        let _ = writeln!(out, "unset {}", unset.join(" "));
    }
}

/// Shell helpers every script defines: `note`, `record`, `abort`, `step_ended`. `RESULT_FILE` is
/// [`result_file`].
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

/// Start of every script body: working directory, trial directory, result file.
pub const SETUP_START: &str = r#"
cd -- "$WORKDIR" || { echo "perfsanity: cannot cd to $WORKDIR" >&2; exit 1; }
mkdir -p -- "$TRIAL_DIR" || { echo "perfsanity: cannot create $TRIAL_DIR" >&2; exit 1; }
: >"$RESULT_FILE"
record "job_id=$SLURM_JOB_ID" "trial=$TRIAL"
"#;

/// The allocation: container name, node list (too short: abort), `slice FIRST COUNT`.
pub const SETUP_ALLOCATION: &str = r#"[ "${#CONTAINER_FLAGS[@]}" -gt 0 ] && CONTAINER_FLAGS+=("--container-name=perfsanity-$SLURM_JOB_ID")

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${#NODES[@]}" -lt "$TOTAL_NODES" ]; then
    abort setup 1 "the allocation has ${#NODES[@]} node(s) ($SLURM_JOB_NODELIST); this trial needs $TOTAL_NODES"
fi
record "nodes=${NODES[*]}"
# slice FIRST COUNT: NODES[FIRST] … NODES[FIRST+COUNT-1], comma-separated (for srun -w).
slice() { local IFS=,; printf '%s' "${NODES[*]:$1:$2}"; }
"#;

/// End of a completed job: record the outcome, exit 0.
pub const COMPLETED: &str = r#"record "outcome=completed"
note "trial $TRIAL finished"
exit 0
"#;

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `nodes` nodes of the allocation from node `first` (`slice`), `tasks` tasks, `per_node` per
    /// node, with the site's `WORKER_MPI`: a worker step, or the aggregated step.
    Slice {
        /// Index of the first node in the job's node list.
        first: u64,
        /// Nodes (`-N`).
        nodes: u64,
        /// `--ntasks`.
        tasks: u64,
        /// `--ntasks-per-node`.
        per_node: u64,
    },
    /// One task sharing the first node with the steps already there (`--overlap`): the router
    /// and the benchmark.
    Overlap,
}

/// One `srun` step running `perfsanity run`.
pub struct Step<'a> {
    /// `srun --job-name`, and the role with [`Step::as_role`].
    pub name: &'a str,
    /// True: `perfsanity run --role <name>` (a step of a disaggregated trial); false: the whole
    /// `perfsanity run` (the aggregated step).
    pub as_role: bool,
    /// Where it runs.
    pub placement: Placement,
    /// Words before the program (a launcher wrapper, each word followed by a space), or empty.
    pub wrapper: &'a str,
    /// Its log (stdout and stderr), already a bash word.
    pub log: &'a str,
}

/// The `srun` command of `step`: two lines, the second a continuation, each led by `indent`.
pub fn srun_step(out: &mut String, indent: &str, step: &Step<'_>) {
    let name = step.name;
    let place = match step.placement {
        Placement::Slice {
            first,
            nodes,
            tasks,
            per_node,
        } => format!(
            " \"${{WORKER_MPI[@]}}\" --kill-on-bad-exit=1 -N {nodes} -w \"$(slice {first} {nodes})\" \
             --ntasks={tasks} --ntasks-per-node={per_node}"
        ),
        Placement::Overlap => {
            " --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1".to_string()
        }
    };
    let _ = writeln!(
        out,
        "{indent}srun --job-name={name}{place} \"${{CONTAINER_FLAGS[@]}}\" \\"
    );
    let role = if step.as_role {
        format!(" --role {name}")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{indent}    {}\"$PERFSANITY_BIN\" run{role} \"$TRIAL\" &>{}",
        step.wrapper, step.log
    );
}

/// `step` in the foreground; its exit code is `$rc` and is recorded as `<exit_key>=<code>`.
pub fn foreground_step(out: &mut String, step: &Step<'_>, exit_key: &str) {
    srun_step(out, "", step);
    let _ = writeln!(out, "rc=$?");
    let _ = writeln!(out, "record \"{exit_key}=$rc\"");
}
