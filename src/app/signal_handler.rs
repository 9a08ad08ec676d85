//! SIGINT / SIGTERM to the harness or `perfsanity run` (Ctrl-C, or nextest's timeout): a handler
//! thread that says on stderr what it does, has the runner tear down every process group it
//! owns (`crate::run::launch::signals`), and ends the process with 128 + signal when the run
//! cannot report by itself. A second signal skips the grace period (SIGKILL at once) but still
//! lets the run report: the trials report `interrupted` and JUnit is written, only sooner.

use std::sync::OnceLock;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::run::launch::signals::{
    Received, kill_everything_now, live_group_count, note, stop_everything,
};

/// How long the main thread gets, once every group is stopped, to report and exit by itself.
const REPORT_WAIT: Duration = Duration::from_secs(2);

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handler once per process (idempotent).
pub fn install() {
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
            eprintln!("perfsanity: cannot install the SIGINT/SIGTERM handler");
            return;
        };
        std::thread::Builder::new()
            .name("perfsanity-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    match note(sig) {
                        Received::First => {
                            eprintln!(
                                "perfsanity: received {}, stopping {} process group(s)",
                                if sig == SIGINT { "SIGINT" } else { "SIGTERM" },
                                live_group_count()
                            );
                            std::thread::spawn(move || teardown_and_exit(sig));
                        }
                        Received::Again => {
                            // No more grace, but the report still comes (the teardown thread's
                            // fallback exit stays the bound).
                            eprintln!(
                                "perfsanity: second signal: killing {} process group(s) now; the \
                                 run reports as interrupted",
                                live_group_count()
                            );
                            kill_everything_now();
                        }
                    }
                }
            })
            .ok();
    });
}

fn teardown_and_exit(sig: i32) {
    stop_everything();
    // The trial threads see `interrupted()`, reap their children and report; the main thread
    // then ends the process with 128 + sig itself (`interrupted_exit_code`), after the report is
    // printed. This exit is the fallback for a run that cannot get there (a trial blocked
    // outside the runner's waits, e.g. in an upload).
    std::thread::sleep(REPORT_WAIT);
    std::process::exit(128 + sig);
}
