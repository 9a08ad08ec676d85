//! Embedded TensorRT-LLM simulator: a drop-in `trtllm-serve` worker and disaggregated router.
//!
//! `perfsanity sim [--role R] [--sim-config F] trtllm-serve …` runs the same process graph as real
//! TensorRT-LLM on a CPU-only machine: workers speak the OpenAI protocol with TensorRT-LLM's
//! field names (including `disaggregated_params`), pace tokens with a configurable latency model
//! driven by the engine config, print upstream's iteration log lines, and inject faults on
//! request; the router splits each request into a context and a generation call as
//! `trtllm-serve disaggregated` does. See `docs/SIMULATOR.md`.
//!
//! Layout: `cli` (argv) → `config` / `engine_config` / `server_config` (inputs) → `worker`
//! (HTTP) over `engine` (thread, clock) over `ranks` (attention-DP schedulers, pure) over
//! `scheduler` (batching, pure), `latency` and `spec` (speculative decoding, pure); `protocol` /
//! `encode` / `tokens` (bodies), `iter_log`, `auth`, `faults`, `report_addr`, `signals`, `log`;
//! `router` for the disaggregated server; `llmapi_launch`, the stand-in for
//! `trtllm-llmapi-launch` in multi-node aggregated SLURM jobs.

mod auth;
pub mod cli;
/// The `sim:` schema lives with the config format (`crate::config::sim_section`), so the config
/// stage validates it without importing the simulator.
pub use crate::config::sim_section as config;
mod encode;
mod engine;
pub mod engine_config;
pub mod faults;
pub mod iter_log;
pub mod latency;
pub mod llmapi_launch;
mod log;
pub mod protocol;
mod ranks;
mod report_addr;
mod router;
pub mod scheduler;
pub mod server_config;
mod signals;
pub mod spec;
mod tokens;
mod worker;
mod yaml_json;

use std::process::ExitCode;

pub use cli::SimArgs;
pub use config::{FaultConfig, LatencyConfig, SimConfig, SimConfigError};

use cli::{CliError, Command};
use config::{RoleKind, role_kind};

/// The launcher the simulator stands in for besides `trtllm-serve` (see [`llmapi_launch`]).
pub const LLMAPI_LAUNCH: &str = "trtllm-llmapi-launch";

/// Runs `perfsanity sim …`; the exit code is the simulated server's.
pub fn run(args: SimArgs) -> ExitCode {
    crate::util::rlimit::raise_open_files_limit();
    let sim = match &args.sim_config {
        Some(path) => match SimConfig::from_json_file(path) {
            Ok(c) => c,
            Err(e) => {
                log::error(&format!("[sim] --sim-config {}: {e}", path.display()));
                return ExitCode::from(2);
            }
        },
        None => SimConfig::default(),
    };
    if let Some(role) = &args.role
        && role_kind(role).is_none_or(|k| k == RoleKind::Rank)
    {
        log::error(&format!(
            "[sim] --role {role}: expected CTX_<i>, GEN_<i>, AGGR_<i> or DISAGG_SERVER"
        ));
        return ExitCode::from(2);
    }
    if args.command.first().map(String::as_str) == Some(LLMAPI_LAUNCH) {
        let Some(rendezvous) = args.rendezvous else {
            log::error(&format!(
                "[sim] {LLMAPI_LAUNCH} needs --rendezvous DIR (a directory every rank shares)"
            ));
            return ExitCode::from(2);
        };
        return ExitCode::from(llmapi_launch::run(llmapi_launch::LaunchOptions {
            command: args.command[1..].to_vec(),
            rendezvous,
            sim,
        }));
    }
    if args.rendezvous.is_some() {
        log::error(&format!(
            "[sim] --rendezvous belongs to `{LLMAPI_LAUNCH}`, not to `trtllm-serve`"
        ));
        return ExitCode::from(2);
    }
    let command = match cli::parse_command(&args.command) {
        Ok(c) => c,
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(CliError::Unsupported(m)) => {
            log::error(&format!("[sim] {m}"));
            return ExitCode::from(2);
        }
    };
    let is_router = matches!(command, Command::Disaggregated(_));
    if let Some(role) = &args.role {
        let role_is_router = role_kind(role) == Some(RoleKind::Router);
        if role_is_router != is_router {
            log::error(&format!(
                "[sim] --role {role} does not match `trtllm-serve{}`",
                if is_router {
                    " disaggregated"
                } else {
                    " <model>"
                }
            ));
            return ExitCode::from(2);
        }
    }
    let faults = sim.faults_for(args.role.as_deref());
    if let Some(code) = faults.exit_at_start {
        log::error(&format!(
            "[sim] fault injection: exit_at_start={code}; exiting before start-up"
        ));
        return ExitCode::from(code);
    }
    faults::install_panic_hook();
    signals::IGNORE_SIGTERM.store(faults.ignore_sigterm, std::sync::atomic::Ordering::Relaxed);
    if let Some(depth) = faults.spawn_descendants
        && let Err(e) = faults::spawn_descendants(depth)
    {
        log::error(&format!("[sim] fault injection: spawn_descendants: {e}"));
        return ExitCode::from(2);
    }
    let code = match command {
        Command::Serve(cli) => {
            let req_queues_size = match env_u64("TLLM_BENCHMARK_REQ_QUEUES_SIZE") {
                Ok(v) => v,
                Err(m) => {
                    log::error(&format!("[sim] {m}"));
                    return ExitCode::from(2);
                }
            };
            let force_accepted = match std::env::var(spec::FORCE_ACCEPTED_ENV) {
                Err(_) => None,
                Ok(v) if v.trim().is_empty() => None,
                Ok(v) => match spec::parse_forced_accepted(&v) {
                    Ok(n) => n,
                    Err(m) => {
                        log::error(&format!("[sim] {m}"));
                        return ExitCode::from(2);
                    }
                },
            };
            worker::run(worker::WorkerOptions {
                cli: *cli,
                sim,
                role: args.role,
                req_queues_size,
                force_accepted,
            })
        }
        Command::Disaggregated(cli) => router::run(router::RouterOptions {
            cli,
            sim,
            role: args.role,
            gen_only: std::env::var("TRTLLM_DISAGG_BENCHMARK_GEN_ONLY").as_deref() == Ok("1"),
        }),
    };
    ExitCode::from(code)
}

fn env_u64(name: &str) -> Result<Option<u64>, llmapi_launch::EnvIntError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => llmapi_launch::EnvIntError::parse(name, &v).map(Some),
    }
}
