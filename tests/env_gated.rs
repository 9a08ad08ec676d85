//! The integration tests that need something of the machine at run time: a SLURM cluster
//! (`tests/slurm_local.rs`, `tests/slurm_aggr_local.rs`), an installed third-party benchmark
//! client (`tests/sim_third_party.rs`), a headless browser (`tests/report_browser.rs`) and
//! PyYAML (`tests/yaml_pyyaml.rs`). A `harness = false` binary (libtest-mimic, the same CLI as
//! libtest, so `--list`, filters and nextest work) because only here can a test be marked
//! *ignored at run time*: when a prerequisite is missing its tests are reported as ignored, with
//! the reason on stderr, never as passed. With the prerequisite's `PERFSANITY_REQUIRE_*=1` (set
//! by `.ci/run`) they run anyway and fail, naming what is missing.

mod sim_support;
mod support;

mod report_browser;
mod sim_third_party;
mod slurm_aggr_local;
mod slurm_local;
mod yaml_pyyaml;

use libtest_mimic::{Arguments, Failed, Trial};

/// A set of tests and what they need.
struct Gate {
    /// Module of the tests (the test name's prefix).
    module: &'static str,
    /// What is missing, if anything.
    missing: fn() -> Option<String>,
    /// `=1` makes a missing prerequisite a failure.
    require: &'static str,
    tests: &'static [(&'static str, fn())],
}

const GATES: [Gate; 5] = [
    Gate {
        module: "slurm_local",
        missing: slurm_local::missing,
        require: "PERFSANITY_REQUIRE_SLURM",
        tests: slurm_local::TESTS,
    },
    Gate {
        module: "sim_third_party",
        missing: sim_third_party::missing,
        require: "PERFSANITY_REQUIRE_THIRD_PARTY",
        tests: sim_third_party::TESTS,
    },
    Gate {
        module: "slurm_aggr_local",
        missing: slurm_aggr_local::missing,
        require: "PERFSANITY_REQUIRE_SLURM",
        tests: slurm_aggr_local::TESTS,
    },
    Gate {
        module: "report_browser",
        missing: report_browser::missing,
        require: "PERFSANITY_REQUIRE_CHROMIUM",
        tests: report_browser::TESTS,
    },
    Gate {
        module: "yaml_pyyaml",
        missing: yaml_pyyaml::missing,
        require: "PERFSANITY_REQUIRE_PYYAML",
        tests: yaml_pyyaml::TESTS,
    },
];

/// The trials of one gate: ignored when its prerequisite is missing and not required; failing
/// at once when it is missing and required.
fn trials(gate: &Gate, filtered_out: bool) -> Vec<Trial> {
    // A gate whose tests are all filtered out is not probed (`sinfo` can take seconds).
    let missing = if filtered_out { None } else { (gate.missing)() };
    let required = std::env::var(gate.require).as_deref() == Ok("1");
    if let Some(reason) = &missing {
        if required {
            eprintln!("{}: {}=1 but {reason}", gate.module, gate.require);
        } else {
            eprintln!(
                "NOTICE: {}: tests IGNORED: {reason} ({}=1 makes this a failure)",
                gate.module, gate.require
            );
        }
    }
    gate.tests
        .iter()
        .map(|&(name, test)| {
            let reason = missing.clone();
            Trial::test(format!("{}::{name}", gate.module), move || {
                if let Some(reason) = reason {
                    return Err(Failed::from(format!("not runnable here: {reason}")));
                }
                test();
                Ok(())
            })
            .with_ignored_flag(missing.is_some() && !required)
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let selected = |gate: &Gate| {
        gate.tests.iter().any(|(name, _)| {
            let full = format!("{}::{name}", gate.module);
            match &args.filter {
                None => true,
                Some(f) if args.exact => full == *f,
                Some(f) => full.contains(f.as_str()),
            }
        })
    };
    let all = GATES
        .iter()
        .flat_map(|gate| trials(gate, !selected(gate)))
        .collect();
    libtest_mimic::run(&args, all).exit();
}
