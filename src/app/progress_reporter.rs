//! Shows the runner's progress events on stderr (stdout stays for `--list`, JSON and libtest's
//! report): an indicatif bar per trial on a terminal, plain timestamped lines otherwise.
//! `PERF_PROGRESS` chooses: `auto` (default), `bar`, `lines` or `off`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::run::progress::{ProgressEvent, ProgressSink};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar per trial (terminals).
    Bar,
    /// One timestamped line per event.
    Lines,
    /// Nothing.
    Off,
}

impl ProgressMode {
    /// `PERF_PROGRESS` (`auto`, `bar`, `lines`, `off`); `auto` is a bar when stderr is a terminal.
    pub fn parse(value: Option<&str>, stderr_is_terminal: bool) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or("") {
            "" | "auto" if stderr_is_terminal => Ok(ProgressMode::Bar),
            "" | "auto" | "lines" => Ok(ProgressMode::Lines),
            "bar" => Ok(ProgressMode::Bar),
            "off" | "0" => Ok(ProgressMode::Off),
            other => Err(format!(
                "PERF_PROGRESS={other:?}: expected auto, bar, lines or off"
            )),
        }
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(
            std::env::var("PERF_PROGRESS").ok().as_deref(),
            std::io::stderr().is_terminal(),
        )
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// The text of one event (one line, without time stamp).
pub fn describe(event: &ProgressEvent) -> String {
    match event {
        ProgressEvent::FilesWritten { trial, output_dir } => {
            format!("{trial}: files written to {output_dir}")
        }
        ProgressEvent::WorkerUp {
            trial,
            role,
            address,
        } => format!("{trial}: {role} up at {address}"),
        ProgressEvent::WorkersUp { trial, workers } => {
            format!("{trial}: {workers} worker(s) up")
        }
        ProgressEvent::RouterReady { trial, address } => {
            format!("{trial}: router ready at {address}")
        }
        ProgressEvent::ClientStarted {
            trial,
            position,
            of,
            name,
            requests_done,
            requests_total,
            eta,
        } => format!(
            "{trial}: client {position}/{of} ({name}) started, requests {requests_done}/{requests_total}{}",
            eta.map(|e| format!(", ETA {}", secs(e)))
                .unwrap_or_default()
        ),
        ProgressEvent::ClientFinished {
            trial,
            position,
            of,
            requests_done,
            requests_total,
            took,
        } => format!(
            "{trial}: client {position}/{of} done in {}, requests {requests_done}/{requests_total}",
            secs(*took)
        ),
        ProgressEvent::StillWaiting {
            trial,
            phase,
            waited,
            limit_s,
            limit_source,
            left,
        } => format!(
            "perfsanity: {trial}: {phase} for {} s (trial limit {limit_s} s, {limit_source}; {} s \
             left)",
            waited.as_secs(),
            left.as_secs()
        ),
        ProgressEvent::Warning { trial, message } => format!("perfsanity: {trial}: {message}"),
    }
}

fn trial_of(event: &ProgressEvent) -> &str {
    match event {
        ProgressEvent::FilesWritten { trial, .. }
        | ProgressEvent::WorkerUp { trial, .. }
        | ProgressEvent::WorkersUp { trial, .. }
        | ProgressEvent::RouterReady { trial, .. }
        | ProgressEvent::ClientStarted { trial, .. }
        | ProgressEvent::ClientFinished { trial, .. }
        | ProgressEvent::StillWaiting { trial, .. }
        | ProgressEvent::Warning { trial, .. } => trial,
    }
}

/// Events shown as a plain stderr line in every mode, `off` included: they are not progress but
/// something the user waits on or must know.
fn always_shown(event: &ProgressEvent) -> bool {
    matches!(
        event,
        ProgressEvent::StillWaiting { .. } | ProgressEvent::Warning { .. }
    )
}

/// The stderr reporter.
pub struct Reporter {
    mode: ProgressMode,
    bars: MultiProgress,
    by_trial: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    /// A reporter in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        Reporter {
            mode,
            bars: MultiProgress::new(),
            by_trial: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, event: &ProgressEvent) {
        let trial = trial_of(event).to_string();
        let mut bars = self.by_trial.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(trial.clone()).or_insert_with(|| {
            let b = self.bars.add(ProgressBar::new(0));
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(trial.clone());
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        let text = describe(event);
        let msg = text.split_once(": ").map_or(text.as_str(), |(_, m)| m);
        match event {
            ProgressEvent::ClientStarted { of, position, .. } => {
                bar.set_length(*of as u64);
                bar.set_position(*position as u64 - 1);
            }
            ProgressEvent::ClientFinished { of, position, .. } => {
                bar.set_position(*position as u64);
                if position == of {
                    bar.finish_and_clear();
                    bars.remove(&trial);
                    return;
                }
            }
            _ => {}
        }
        if let Some(bar) = bars.get(&trial) {
            bar.set_message(msg.to_string());
        }
    }
}

impl ProgressSink for Reporter {
    fn event(&self, event: ProgressEvent) {
        if always_shown(&event) {
            let line = describe(&event);
            if self.mode == ProgressMode::Bar {
                self.bars.suspend(|| eprintln!("{line}"));
            } else {
                eprintln!("{line}");
            }
            return;
        }
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Lines => {
                let now = jiff::Timestamp::now().strftime("%H:%M:%SZ");
                eprintln!("[{now}] {}", describe(&event));
            }
            ProgressMode::Bar => self.bar(&event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_lines() {
        assert_eq!(ProgressMode::parse(None, true), Ok(ProgressMode::Bar));
        assert_eq!(ProgressMode::parse(None, false), Ok(ProgressMode::Lines));
        assert_eq!(
            ProgressMode::parse(Some("off"), true),
            Ok(ProgressMode::Off)
        );
        assert!(ProgressMode::parse(Some("loud"), true).is_err());
        let line = describe(&ProgressEvent::ClientStarted {
            trial: "t".into(),
            position: 2,
            of: 3,
            name: "c".into(),
            requests_done: 8,
            requests_total: 24,
            eta: Some(Duration::from_secs(20)),
        });
        assert_eq!(line, "t: client 2/3 (c) started, requests 8/24, ETA 20 s");
    }
}
