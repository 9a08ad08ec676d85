//! Shows the events of `perfsanity slurm submit` (`crate::run::slurm::events`) on stdout: one
//! or more lines per event, each escaped for the terminal (trial names and log tails come from
//! files we do not control) and flushed at once, so a reader of the pipe sees every state change
//! as it happens. `docs/SLURM.md` shows the text.

use std::io::Write;

use signal_hook::consts::SIGINT;

use crate::run::slurm::events::{Evidence, JobReport, LogTail, SlurmEvent, SlurmEventSink};
use crate::run::slurm::script::SCRIPT_FILE;
use crate::util::terminal::escape_lines;

/// Writes every event to stdout.
#[derive(Debug, Default)]
pub struct StdoutReporter;

impl SlurmEventSink for StdoutReporter {
    fn event(&self, event: SlurmEvent) {
        // A closed stdout (the reader went away) must not stop the submitter from following
        // or cancelling its jobs.
        let _ = write_event(&mut std::io::stdout().lock(), &event);
    }
}

/// Writes `event` as text to `out`, escaping and flushing line by line.
pub fn write_event(out: &mut dyn Write, event: &SlurmEvent) -> std::io::Result<()> {
    for line in render(event) {
        writeln!(out, "{}", escape_lines(&line))?;
        out.flush()?;
    }
    Ok(())
}

/// The lines of `event`, not yet escaped.
pub fn render(event: &SlurmEvent) -> Vec<String> {
    match event {
        SlurmEvent::Submitted {
            trial,
            job_id,
            script,
            trial_dir,
        } => vec![format!(
            "submitted {trial} as job {job_id} (script {}, output {}/slurm-{job_id}.out)",
            script.display(),
            trial_dir.display()
        )],
        SlurmEvent::NotSubmitted { trial, error } => vec![format!("ERROR {trial}: {error}")],
        SlurmEvent::SubmitDone {
            submitted,
            not_submitted,
        } => vec![format!(
            "{submitted} job(s) submitted, {not_submitted} trial(s) not submitted"
        )],
        SlurmEvent::StateChanged {
            at,
            job_id,
            trial,
            state,
            exit_code,
            elapsed,
        } => {
            let mut line = format!(
                "[{}] job {job_id} {trial}: {state}",
                at.strftime("%H:%M:%S")
            );
            if let Some(code) = exit_code {
                line.push_str(&format!(", exit code {code}"));
            }
            if let Some(t) = elapsed {
                line.push_str(&format!(", elapsed {t}"));
            }
            vec![line]
        }
        SlurmEvent::JobEnded(report) => job_report(report),
        SlurmEvent::JobLost {
            job_id,
            trial,
            verdict,
        } => vec![format!(
            "{} {trial} (job {job_id}): {verdict}",
            verdict.label()
        )],
        SlurmEvent::Cancelling { signal, job_ids } => {
            let name = if *signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            vec![format!(
                "perfsanity slurm: received {name}; cancelling job(s) {}",
                job_ids.join(" ")
            )]
        }
        SlurmEvent::CancelFailed { error } => vec![format!("perfsanity slurm: {error}")],
        SlurmEvent::NotEnded {
            job_id,
            trial,
            waited,
        } => vec![format!(
            "job {job_id} {trial}: still not ended {} s after scancel; check `squeue -j {job_id}`",
            waited.as_secs()
        )],
        SlurmEvent::Summary {
            trials,
            passed,
            failed,
        } => vec![format!(
            "{trials} trial(s): {passed} passed, {failed} failed or not run"
        )],
    }
}

/// `<LABEL> <trial> (job <id>): <verdict>`, the allocation, the steps, the files, and the
/// evidence: results and the benchmark's log tail, or the log that explains the failure.
fn job_report(r: &JobReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {} (job {}): {}",
        r.verdict.label(),
        r.trial,
        r.job_id,
        r.verdict
    )];
    if let Some(nodes) = &r.allocation {
        lines.push(format!("  allocation: {nodes}"));
    }
    if !r.steps.is_empty() {
        let list: Vec<String> = r
            .steps
            .iter()
            .filter(|s| !matches!(s.name.as_str(), "batch" | "extern"))
            .map(|s| format!("{} {} {} on {}", s.name, s.raw_state, s.exit_code, s.nodes))
            .collect();
        lines.push(format!("  steps: {}", list.join("; ")));
    }
    lines.push(format!(
        "  files: {} (job output slurm-{}.out, script {SCRIPT_FILE})",
        r.trial_dir.display(),
        r.job_id
    ));
    match &r.evidence {
        Evidence::Passed {
            records,
            client_logs,
            summary,
        } => {
            lines.push(match records {
                Some((path, n)) => format!("  results: {} ({n} record(s))", path.display()),
                None => "  results: no perf_records.json was written by this job".to_string(),
            });
            if !client_logs.is_empty() {
                lines.push(format!("  client logs: {}", client_logs.join(", ")));
            }
            tail_lines(summary, &mut lines);
        }
        Evidence::TrialFailed { log } => {
            lines.push(format!("  last lines of {}:", log.path.display()));
            tail_lines(log, &mut lines);
        }
        Evidence::Job {
            state,
            source,
            output,
        } => {
            lines.push(format!(
                "  state {state} from {source}; last lines of {}:",
                output.path.display()
            ));
            tail_lines(output, &mut lines);
        }
    }
    lines
}

/// `  | <line>` for each line of the tail, or one saying the log cannot be read.
fn tail_lines(tail: &LogTail, lines: &mut Vec<String>) {
    match &tail.lines {
        Some(tail_lines) => lines.extend(tail_lines.iter().map(|l| format!("  | {l}"))),
        None => lines.push(format!("  | ({} cannot be read)", tail.path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use signal_hook::consts::{SIGINT, SIGTERM};

    use super::*;
    use crate::run::slurm::error::{SlurmCommandError, SubmitError};
    use crate::run::slurm::state::{JobState, StepRecord, Verdict};

    fn text(events: Vec<SlurmEvent>) -> String {
        let mut out = Vec::new();
        for e in &events {
            write_event(&mut out, e).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    fn step(name: &str, state: &str, exit: &str, nodes: &str) -> StepRecord {
        StepRecord {
            step_id: format!("42.{name}"),
            name: name.to_string(),
            state: JobState::parse(state),
            raw_state: state.to_string(),
            exit_code: exit.to_string(),
            nodes: nodes.to_string(),
        }
    }

    fn tail(path: &str, lines: &[&str]) -> LogTail {
        LogTail {
            path: PathBuf::from(path),
            lines: Some(lines.iter().map(|l| l.to_string()).collect()),
        }
    }

    #[test]
    fn a_passing_run_reads_as_before() {
        let out = text(vec![
            SlurmEvent::Submitted {
                trial: "disagg-a".into(),
                job_id: "42".into(),
                script: "/o/disagg-a/slurm_launch.sh".into(),
                trial_dir: "/o/disagg-a".into(),
            },
            SlurmEvent::NotSubmitted {
                trial: "disagg-b".into(),
                error: SubmitError::NoJobId {
                    output: "huh".into(),
                },
            },
            SlurmEvent::StateChanged {
                at: jiff::civil::time(9, 5, 7, 0),
                job_id: "42".into(),
                trial: "disagg-a".into(),
                state: "RUNNING".into(),
                exit_code: None,
                elapsed: None,
            },
            SlurmEvent::StateChanged {
                at: jiff::civil::time(13, 0, 59, 0),
                job_id: "42".into(),
                trial: "disagg-a".into(),
                state: "COMPLETED".into(),
                exit_code: Some("0:0".into()),
                elapsed: Some("00:01:02".into()),
            },
            SlurmEvent::JobEnded(JobReport {
                job_id: "42".into(),
                trial: "disagg-a".into(),
                trial_dir: "/o/disagg-a".into(),
                verdict: Verdict::Passed,
                allocation: Some("node[1-4]".into()),
                steps: vec![
                    step("batch", "COMPLETED", "0:0", "node1"),
                    step("GEN_0", "COMPLETED", "0:0", "node2"),
                    step("BENCHMARK", "COMPLETED", "0:0", "node1"),
                    step("extern", "COMPLETED", "0:0", "node[1-4]"),
                ],
                evidence: Evidence::Passed {
                    records: Some(("/o/disagg-a/perf_records.json".into(), 2)),
                    client_logs: vec![
                        "trtllm-benchmark.0.1.log".into(),
                        "trtllm-benchmark.0.2.log".into(),
                    ],
                    summary: tail("/o/disagg-a/benchmark.log", &["done", "bad \u{1b}[31m"]),
                },
            }),
            SlurmEvent::Summary {
                trials: 2,
                passed: 1,
                failed: 1,
            },
        ]);
        assert_eq!(
            out,
            "submitted disagg-a as job 42 (script /o/disagg-a/slurm_launch.sh, output \
             /o/disagg-a/slurm-42.out)\n\
             ERROR disagg-b: sbatch printed no job id: \"huh\"\n\
             [09:05:07] job 42 disagg-a: RUNNING\n\
             [13:00:59] job 42 disagg-a: COMPLETED, exit code 0:0, elapsed 00:01:02\n\
             PASS disagg-a (job 42): passed\n  \
             allocation: node[1-4]\n  \
             steps: GEN_0 COMPLETED 0:0 on node2; BENCHMARK COMPLETED 0:0 on node1\n  \
             files: /o/disagg-a (job output slurm-42.out, script slurm_launch.sh)\n  \
             results: /o/disagg-a/perf_records.json (2 record(s))\n  \
             client logs: trtllm-benchmark.0.1.log, trtllm-benchmark.0.2.log\n  \
             | done\n  \
             | bad \\u001b[31m\n\
             2 trial(s): 1 passed, 1 failed or not run\n"
        );
    }

    #[test]
    fn failures_show_the_log_that_explains_them() {
        let out = text(vec![
            SlurmEvent::JobEnded(JobReport {
                job_id: "7".into(),
                trial: "t".into(),
                trial_dir: "/o/t".into(),
                verdict: Verdict::TrialFailed {
                    stage: "GEN_1".into(),
                    message: "exit 3".into(),
                },
                allocation: None,
                steps: Vec::new(),
                evidence: Evidence::TrialFailed {
                    log: tail("/o/t/gen_server_1.log", &["boom"]),
                },
            }),
            SlurmEvent::JobEnded(JobReport {
                job_id: "8".into(),
                trial: "u".into(),
                trial_dir: "/o/u".into(),
                verdict: Verdict::TimedOut,
                allocation: None,
                steps: Vec::new(),
                evidence: Evidence::Job {
                    state: "TIMEOUT".into(),
                    source: "sacct",
                    output: LogTail {
                        path: "/o/u/slurm-8.out".into(),
                        lines: None,
                    },
                },
            }),
            SlurmEvent::JobEnded(JobReport {
                job_id: "9".into(),
                trial: "v".into(),
                trial_dir: "/o/v".into(),
                verdict: Verdict::Passed,
                allocation: None,
                steps: Vec::new(),
                evidence: Evidence::Passed {
                    records: None,
                    client_logs: Vec::new(),
                    summary: tail("/o/v/benchmark.log", &[]),
                },
            }),
            SlurmEvent::JobLost {
                job_id: "10".into(),
                trial: "w".into(),
                verdict: Verdict::Lost {
                    detail: "gone".into(),
                },
            },
            SlurmEvent::SubmitDone {
                submitted: 3,
                not_submitted: 0,
            },
        ]);
        assert_eq!(
            out,
            "FAIL t (job 7): trial failed at GEN_1: exit 3\n  \
             files: /o/t (job output slurm-7.out, script slurm_launch.sh)\n  \
             last lines of /o/t/gen_server_1.log:\n  \
             | boom\n\
             TIMEOUT u (job 8): the job hit its time limit (--time)\n  \
             files: /o/u (job output slurm-8.out, script slurm_launch.sh)\n  \
             state TIMEOUT from sacct; last lines of /o/u/slurm-8.out:\n  \
             | (/o/u/slurm-8.out cannot be read)\n\
             PASS v (job 9): passed\n  \
             files: /o/v (job output slurm-9.out, script slurm_launch.sh)\n  \
             results: no perf_records.json was written by this job\n\
             LOST w (job 10): lost track of the job: gone\n\
             3 job(s) submitted, 0 trial(s) not submitted\n"
        );
    }

    #[test]
    fn cancelling_names_the_signal_and_the_jobs() {
        let out = text(vec![
            SlurmEvent::Cancelling {
                signal: SIGTERM,
                job_ids: vec!["5".into(), "6".into()],
            },
            SlurmEvent::Cancelling {
                signal: SIGINT,
                job_ids: vec!["5".into()],
            },
            SlurmEvent::CancelFailed {
                error: SlurmCommandError::Failed {
                    command: "scancel 5 6".into(),
                    output: "no".into(),
                },
            },
            SlurmEvent::NotEnded {
                job_id: "6".into(),
                trial: "t\nx".into(),
                waited: Duration::from_secs(30),
            },
        ]);
        assert_eq!(
            out,
            "perfsanity slurm: received SIGTERM; cancelling job(s) 5 6\n\
             perfsanity slurm: received SIGINT; cancelling job(s) 5\n\
             perfsanity slurm: scancel 5 6: no\n\
             job 6 t\nx: still not ended 30 s after scancel; check `squeue -j 6`\n"
        );
    }
}
