//! Stand-in for TensorRT-LLM's `trtllm-llmapi-launch` on the simulator toolchain.
//!
//! Upstream wraps a multi-node aggregated trial's harness in `trtllm-llmapi-launch` inside one
//! `srun` of `world` tasks: rank 0 runs the command (the harness, which starts `trtllm-serve`),
//! every other rank becomes an MPI engine worker that lives as long as rank 0's command. A
//! simulated server is one process, so here the other ranks only hold their slot: they wait until
//! rank 0 has exited (rank 0 writes `<rendezvous>/llmapi-launch.<job>.<step>.exit` with its exit
//! code, atomically, on a filesystem every node shares) and then exit 0. If rank 0 dies without
//! writing it, `srun --kill-on-bad-exit=1` ends them.
//!
//! `sim.faults.RANK_<r>.exit_at_start: <code>` makes rank `r` exit with that code at once — an
//! engine worker that dies — so the failure path (srun cancels the step, the batch script names
//! the rank) can be exercised.
//!
//! The rank is `SLURM_PROCID` (else `PMIX_RANK`, `OMPI_COMM_WORLD_RANK`, else 0), the world size
//! `SLURM_NTASKS` (else `PMIX_SIZE`, `OMPI_COMM_WORLD_SIZE`, else 1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use super::config::SimConfig;
use super::log;

/// How often a waiting rank looks for rank 0's exit file.
const POLL: Duration = Duration::from_millis(200);

/// What `perfsanity sim [--sim-config F] --rendezvous DIR trtllm-llmapi-launch <command…>` runs.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The wrapped command (rank 0 runs it).
    pub command: Vec<String>,
    /// Shared directory for rank 0's exit file.
    pub rendezvous: PathBuf,
    /// The `sim:` section (faults per rank).
    pub sim: SimConfig,
}

/// An environment variable that should hold a non-negative integer does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: expected a non-negative integer")]
pub struct EnvIntError {
    /// The variable.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl EnvIntError {
    /// Parses `value` of variable `name` (trimmed) as a non-negative integer.
    pub fn parse(name: &str, value: &str) -> Result<u64, Self> {
        value.trim().parse().map_err(|_| EnvIntError {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// Where this task sits in the MPI world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankInfo {
    /// This task's rank.
    pub rank: u64,
    /// Tasks in the world.
    pub world: u64,
    /// Names this launch: `<job>.<step>` under SLURM, else `local`.
    pub tag: String,
}

impl RankInfo {
    /// Reads the rank, world size and job/step ids from `get` (the environment).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvIntError> {
        let number = |names: &[&str], default: u64| -> Result<u64, EnvIntError> {
            for name in names {
                if let Some(v) = get(name).filter(|v| !v.trim().is_empty()) {
                    return EnvIntError::parse(name, &v);
                }
            }
            Ok(default)
        };
        let rank = number(&["SLURM_PROCID", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"], 0)?;
        let world = number(&["SLURM_NTASKS", "PMIX_SIZE", "OMPI_COMM_WORLD_SIZE"], 1)?;
        let tag = match (get("SLURM_JOB_ID"), get("SLURM_STEP_ID")) {
            (Some(job), Some(step)) => format!("{}.{}", safe(&job), safe(&step)),
            (Some(job), None) => safe(&job),
            _ => "local".to_string(),
        };
        Ok(Self { rank, world, tag })
    }

    /// Rank 0's exit file.
    pub fn exit_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("llmapi-launch.{}.exit", self.tag))
    }
}

/// Keeps `[A-Za-z0-9_-]` of an id so it can go into a file name.
fn safe(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Runs this task's part; returns the exit code.
pub fn run(options: LaunchOptions) -> u8 {
    let info = match RankInfo::from_env(|k| std::env::var(k).ok()) {
        Ok(i) => i,
        Err(m) => {
            log::error(&format!("[sim] trtllm-llmapi-launch: {m}"));
            return 2;
        }
    };
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    if info.rank == 0 {
        return run_rank0(&options, &info, &host);
    }
    let faults = options.sim.faults_for(Some(&format!("RANK_{}", info.rank)));
    if let Some(code) = faults.exit_at_start {
        log::error(&format!(
            "[sim] trtllm-llmapi-launch: rank {} of {} on {host}: fault injection \
             exit_at_start={code}; the engine worker dies",
            info.rank, info.world
        ));
        return code;
    }
    let exit_file = info.exit_file(&options.rendezvous);
    log::info(&format!(
        "[sim] trtllm-llmapi-launch: rank {} of {} on {host} stands in for an MPI engine worker; \
         waiting for rank 0 to exit ({})",
        info.rank,
        info.world,
        exit_file.display()
    ));
    while !exit_file.exists() {
        std::thread::sleep(POLL);
    }
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    log::info(&format!(
        "[sim] trtllm-llmapi-launch: rank {}: rank 0 exited {}; done",
        info.rank,
        code.trim()
    ));
    0
}

fn run_rank0(options: &LaunchOptions, info: &RankInfo, host: &str) -> u8 {
    let Some((program, args)) = options.command.split_first() else {
        log::error("[sim] trtllm-llmapi-launch: expected a command to run on rank 0");
        return 2;
    };
    log::info(&format!(
        "[sim] trtllm-llmapi-launch: rank 0 of {} on {host} runs {program}",
        info.world
    ));
    let exit_file = info.exit_file(&options.rendezvous);
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            log::error(&format!(
                "[sim] trtllm-llmapi-launch: cannot run {program}: {e}"
            ));
            publish_exit(&exit_file, 127);
            return 127;
        }
    };
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // SAFETY: the handler only reads an atomic and calls kill(2).
    unsafe {
        libc::signal(libc::SIGTERM, forward as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, forward as *const () as libc::sighandler_t);
    }
    let code = match child.wait() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        }
        Err(_) => 1,
    };
    let code = u8::try_from(code).unwrap_or(1);
    publish_exit(&exit_file, code);
    code
}

/// Writes rank 0's exit code atomically (temp sibling + rename).
fn publish_exit(path: &Path, code: u8) {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result =
        std::fs::write(&tmp, format!("{code}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        log::error(&format!(
            "[sim] trtllm-llmapi-launch: cannot write {}: {e}; the other ranks wait until srun \
             ends them",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn info(vars: &[(&str, &str)]) -> Result<RankInfo, EnvIntError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RankInfo::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn rank_and_world_come_from_slurm_then_pmix() {
        let i = info(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "8"),
            ("PMIX_RANK", "5"),
            ("SLURM_JOB_ID", "42"),
            ("SLURM_STEP_ID", "0"),
        ])
        .unwrap();
        assert_eq!((i.rank, i.world, i.tag.as_str()), (3, 8, "42.0"));
        assert_eq!(
            i.exit_file(Path::new("/t")),
            PathBuf::from("/t/llmapi-launch.42.0.exit")
        );
        let i = info(&[("PMIX_RANK", "2"), ("PMIX_SIZE", "4")]).unwrap();
        assert_eq!((i.rank, i.world, i.tag.as_str()), (2, 4, "local"));
        let i = info(&[]).unwrap();
        assert_eq!((i.rank, i.world), (0, 1));
        let e = info(&[("SLURM_PROCID", "one")]).unwrap_err().to_string();
        assert_eq!(e, "SLURM_PROCID=\"one\": expected a non-negative integer");
        let i = info(&[("SLURM_JOB_ID", "4/../2"), ("SLURM_STEP_ID", "x y")]).unwrap();
        assert_eq!(i.tag, "42.xy", "ids are kept file-name safe");
    }
}
