//! Child processes we own: each in its own process group, output redirected to a log file,
//! registered in the process-wide table of [`super::groups`] so a signal handler can tear every
//! group down, and stopped with SIGTERM → grace → SIGKILL by a guard that also runs on panic.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::groups::{live_groups, register, unregister};
use crate::config::env_string::EnvList;
use crate::plan::Role;

/// Time between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// How a child is started.
pub struct Launch<'a> {
    /// Role (for messages).
    pub role: Option<Role>,
    /// Human name for messages (e.g. `CTX_0`, `client 0`).
    pub name: String,
    /// argv; `argv[0] == "perfsanity"` is replaced by `self_exe`.
    pub argv: &'a [String],
    /// Extra arguments appended at run time (`--host h --port p`).
    pub extra_args: Vec<String>,
    /// Environment additions.
    pub env: &'a EnvList,
    /// More environment additions decided at run time (`CUDA_VISIBLE_DEVICES`).
    pub extra_env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (the plan's launch env).
    pub env_remove: &'a [String],
    /// stdout + stderr go here (truncated).
    pub log: &'a Path,
    /// Working directory.
    pub cwd: &'a Path,
    /// Our own executable.
    pub self_exe: &'a Path,
    /// Where a copy of the output goes besides the log (`--nocapture`, a launcher's gen
    /// workers), if anywhere.
    pub tee: Option<OutputCopy>,
    /// `SLURM_LOCALID` of this task (expanded into the env values that name it).
    pub slurm_local_id: Option<&'a str>,
}

/// Where the runner copies a child's output besides its log: given by the edge (our stdout), so
/// the runner never writes to the terminal itself.
pub type OutputCopy = std::sync::Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {name} ({program}): {source}")]
pub struct SpawnError {
    /// Process name.
    pub name: String,
    /// Program.
    pub program: String,
    /// OS error.
    #[source]
    pub source: std::io::Error,
}

/// A running child in its own process group; stopped on drop.
pub struct ManagedChild {
    /// Role, when a server.
    pub role: Option<Role>,
    /// Name for messages.
    pub name: String,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
    pgid: i32,
    /// `PERFSANITY_TREE` of this child's tree ([`super::tree`]).
    mark: String,
    status: Option<ExitStatus>,
    tee_thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a child.
pub fn spawn(launch: Launch<'_>) -> Result<ManagedChild, SpawnError> {
    let program =
        if launch.argv.first().map(String::as_str) == Some(crate::plan::toolchain::SELF_PROGRAM) {
            launch.self_exe.display().to_string()
        } else {
            launch.argv.first().cloned().unwrap_or_default()
        };
    let err = |source: std::io::Error| SpawnError {
        name: launch.name.clone(),
        program: program.clone(),
        source,
    };
    let log = File::create(launch.log).map_err(err)?;
    // The edge showed any problem already (it calls this first); here it is only a fallback.
    let _ = super::tree::ensure_owner(launch.self_exe);
    let mark = super::tree::next_mark();
    let mut cmd = Command::new(&program);
    cmd.args(launch.argv.iter().skip(1))
        .args(&launch.extra_args)
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .process_group(0);
    for k in launch.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in launch.env.iter().chain(launch.extra_env.iter()) {
        cmd.env(k, crate::plan::launch_env::expand(v, launch.slurm_local_id));
    }
    cmd.env(super::tree::TREE_ENV, &mark);
    if launch.tee.is_some() {
        cmd.stdout(Stdio::piped())
            .stderr(log.try_clone().map_err(err)?);
    } else {
        cmd.stdout(log.try_clone().map_err(err)?)
            .stderr(log.try_clone().map_err(err)?);
    }
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL this child if the
    // thread that spawned it dies (the last line of defence when the harness itself is
    // SIGKILLed and cannot run its teardown).
    unsafe {
        cmd.pre_exec(|| {
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(err)?;
    let pgid = child.id() as i32;
    register(pgid);
    let copy = launch.tee.clone();
    let tee_thread = child.stdout.take().zip(copy).map(|(mut out, copy)| {
        let mut log = log;
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut buf = [0u8; 8192];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = log.write_all(&buf[..n]);
                copy(&buf[..n]);
            }
        })
    });
    Ok(ManagedChild {
        role: launch.role,
        name: launch.name,
        log: launch.log.to_path_buf(),
        child,
        pgid,
        mark,
        status: None,
        tee_thread,
    })
}

impl ManagedChild {
    /// The exit status, if it has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.status = Some(s);
            // What it left behind must not outlive it (nor hold the tee pipe open).
            super::tree::kill_tree(&self.mark);
            self.finish_tee();
        }
        self.status
    }

    /// The `PERFSANITY_TREE` mark of its tree.
    pub fn mark(&self) -> &str {
        &self.mark
    }

    /// Process id (= process group id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    fn finish_tee(&mut self) {
        if let Some(t) = self.tee_thread.take() {
            let _ = t.join();
        }
    }

    /// SIGTERM the group, wait up to `grace`, then SIGKILL it; reaps the child.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let already = self.try_status();
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        // A stopped (SIGSTOPped) process only acts on SIGTERM once continued.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGCONT);
        let deadline = Instant::now() + grace;
        while self.try_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Kill whatever is left of the group (grandchildren included), exited or not.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        // Then whatever of its tree left the group (a new session, a double fork).
        super::tree::kill_tree(&self.mark);
        self.finish_tee();
        unregister(self.pgid);
        already.or(self.status)
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if self.status.is_none() || live_groups().contains(&self.pgid) {
            self.stop(GRACE);
        }
    }
}

/// "exit code N" / "signal SIGKILL" for messages.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!(
            "signal {}",
            Signal::try_from(sig)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| sig.to_string())
        ),
        _ => "an unknown status".to_string(),
    }
}
