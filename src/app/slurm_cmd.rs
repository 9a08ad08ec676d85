//! `perfsanity slurm script <trial>` and `perfsanity slurm submit <trial>… | --testlist F
//! [--wait]`: the clap layer over [`crate::run::slurm::trial_script`] and
//! [`crate::run::slurm::submit`]. With `--wait` it installs the SIGINT/SIGTERM handler that asks
//! the submitter to cancel its jobs ([`CancelRequest`]); the submitter's events are shown by
//! [`StdoutReporter`]; the exit code is 0 only when every trial was submitted and (with `--wait`)
//! passed, 128 + signal when a signal cancelled the jobs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::app::commands::{find_trial, selected_trials};
use crate::app::settings::{EnvSource, ProcessEnv, Settings, find_project_root, target_dir};
use crate::app::slurm_reporter::StdoutReporter;
use crate::catalog::selection::TrialSpec;
use crate::run::slurm::cancel::CancelRequest;
use crate::run::slurm::submit::{Prepared, SubmitOptions, SubmitOutcome, submit};
use crate::run::slurm::trial_script;

/// `perfsanity slurm …`.
#[derive(Debug, Subcommand)]
pub enum SlurmCommand {
    /// Print the batch script of one trial (nothing is written or submitted).
    Script {
        /// Trial name (e.g. disagg-<stem>), upstream id or pytest node id.
        trial: String,
    },
    /// Write each trial's batch script to its output directory and submit it with sbatch.
    Submit {
        /// Trial names, upstream ids or pytest node ids.
        #[arg(required_unless_present = "testlist", conflicts_with = "testlist")]
        trials: Vec<String>,
        /// Submit every trial of this test list (txt or test-db YAML) instead.
        #[arg(long, value_name = "FILE")]
        testlist: Option<PathBuf>,
        /// Follow the jobs until they end; exit non-zero unless every trial passed.
        #[arg(long)]
        wait: bool,
        /// Seconds between status polls (default PERF_SLURM_POLL, else 10).
        #[arg(long, value_name = "SECONDS")]
        poll: Option<f64>,
    },
}

fn settings(testlist: Option<&Path>) -> Result<(Settings, PathBuf), String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let root = find_project_root(&cwd);
    let target = target_dir(&ProcessEnv, &root);
    let mut s = Settings::from_env(&ProcessEnv, &root, &target).map_err(|e| e.to_string())?;
    if let Some(list) = testlist {
        let list = if list.is_absolute() {
            list.to_path_buf()
        } else {
            cwd.join(list)
        };
        if !list.is_file() {
            return Err(format!("--testlist {}: no such file", list.display()));
        }
        s.testlist = Some(list);
    }
    Ok((s, cwd))
}

fn toolchain_note(settings: &Settings) {
    if ProcessEnv
        .var("PERF_TOOLCHAIN")
        .is_none_or(|v| v.trim().is_empty() || v.trim() == "auto")
    {
        eprintln!(
            "perfsanity slurm: note: PERF_TOOLCHAIN is not set; the steps use the {} toolchain \
             (chosen on this host). Set PERF_TOOLCHAIN=trtllm or sim to choose for the nodes.",
            settings.toolchain.as_str()
        );
    }
}

fn poll_interval(flag: Option<f64>) -> Result<Duration, String> {
    let (value, name) = match flag {
        Some(v) => (v.to_string(), "--poll"),
        None => match ProcessEnv
            .var("PERF_SLURM_POLL")
            .filter(|v| !v.trim().is_empty())
        {
            Some(v) => (v, "PERF_SLURM_POLL"),
            None => return Ok(Duration::from_secs(10)),
        },
    };
    match value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(crate::util::deadline::knob_seconds)
    {
        Some(d) => Ok(d),
        None => Err(format!(
            "{name}={value:?} is not a number of seconds in (0, {}]",
            crate::util::deadline::MAX_KNOB_SECONDS
        )),
    }
}

fn prepare(settings: &Settings, spec: &TrialSpec, cwd: &Path, exe: &Path) -> Prepared {
    let script = trial_script(settings, spec, &ProcessEnv, cwd, exe);
    Prepared {
        trial: spec.name.clone(),
        trial_dir: settings.output_root.join(&spec.name),
        workdir: settings.project_root.clone(),
        script,
    }
}

/// SIGINT and SIGTERM set `cancel` (to the signal's number) instead of ending the process, so
/// the submitter can cancel its jobs first.
fn watch_signals(cancel: &CancelRequest) {
    for sig in [SIGINT, SIGTERM] {
        if let Err(e) = signal_hook::flag::register_usize(sig, cancel.cell(), sig as usize) {
            eprintln!("perfsanity slurm: cannot handle signal {sig}: {e}");
        }
    }
}

/// 0 when every trial was submitted and (when followed) passed, 128 + signal when a signal
/// cancelled the jobs, else 1.
fn exit_code(outcome: SubmitOutcome) -> ExitCode {
    match outcome {
        SubmitOutcome::Interrupted { signal } => {
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
        }
        o if o.all_passed() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!(
        "perfsanity slurm: {}",
        crate::util::terminal::escape_lines(&message)
    );
    ExitCode::from(2)
}

/// Runs a `perfsanity slurm` command.
pub fn run(cmd: SlurmCommand) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot locate the perfsanity executable: {e}")),
    };
    match cmd {
        SlurmCommand::Script { trial } => {
            let (settings, cwd) = match settings(None) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let spec = match selected_trials(&settings).and_then(|(catalog, trials)| {
                find_trial(&catalog, &trials, &trial).map_err(|e| e.to_string())
            }) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            toolchain_note(&settings);
            match trial_script(&settings, &spec, &ProcessEnv, &cwd, &exe) {
                Ok(script) => {
                    print!("{script}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "perfsanity slurm script: {}",
                        crate::util::terminal::escape_lines(&e.to_string())
                    );
                    ExitCode::FAILURE
                }
            }
        }
        SlurmCommand::Submit {
            trials,
            testlist,
            wait,
            poll,
        } => {
            let (settings, cwd) = match settings(testlist.as_deref()) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let poll = match poll_interval(poll) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let (catalog, selected) = match selected_trials(&settings) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let specs: Vec<TrialSpec> = if testlist.is_some() {
                selected
            } else {
                match trials
                    .iter()
                    .map(|t| find_trial(&catalog, &selected, t))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(s) => s,
                    Err(e) => return fail(e.to_string()),
                }
            };
            toolchain_note(&settings);
            let prepared: Vec<Prepared> = specs
                .iter()
                .map(|s| prepare(&settings, s, &cwd, &exe))
                .collect();
            let options = SubmitOptions {
                wait,
                poll,
                unknown_limit: Duration::from_secs(120).max(poll * 4),
            };
            let cancel = CancelRequest::new();
            if wait {
                watch_signals(&cancel);
            }
            exit_code(submit(prepared, &options, &StdoutReporter, &cancel))
        }
    }
}
