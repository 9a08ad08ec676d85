//! The SLURM launcher on a real Slurm (`scripts/local-slurm.sh up`: 4 nodes, each its own
//! network and UTS namespace). Sim-sized trials go through `perfsanity slurm submit` → `sbatch`;
//! checked independently of our own status code: every role ran as its own srun step (sacct),
//! on its node slice (sacct node lists and the host names the workers reported), multi-rank
//! steps ran the role once, the benchmark's metrics came back, a failing worker ends the trial
//! as a failed trial (not a cancellation), SIGTERM to the submitter cancels the job, and sbatch
//! reads hostile `#SBATCH` values literally.
//!
//! Part of the `env_gated` test binary: without a usable cluster the tests are reported as
//! *ignored* (with the reason); with `PERFSANITY_REQUIRE_SLURM=1` (CI) they fail instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::wait::poll_until;
use crate::support::{perfsanity_cmd, wait_until};

/// The cluster runs one 4-node job at a time: the tests take turns.
static CLUSTER: Mutex<()> = Mutex::new(());

/// Every test of this file, for `tests/env_gated.rs`.
pub const TESTS: &[(&str, fn())] = &[
    (
        "trials_run_as_srun_steps_on_their_node_slices",
        trials_run_as_srun_steps_on_their_node_slices,
    ),
    (
        "sigterm_to_the_submitter_cancels_the_job",
        sigterm_to_the_submitter_cancels_the_job,
    ),
    (
        "sbatch_reads_hostile_directives_literally",
        sbatch_reads_hostile_directives_literally,
    ),
];

/// Why these tests cannot run here, if they cannot: fewer than 4 usable SLURM nodes.
pub fn missing() -> Option<String> {
    let usable = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N %T"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let mut nodes: Vec<&str> = text
                .lines()
                .filter(|l| {
                    ["idle", "mixed", "allocated", "completing"]
                        .iter()
                        .any(|s| l.ends_with(&format!(" {s}")))
                })
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            nodes.sort();
            nodes.dedup();
            nodes.len()
        })
        .unwrap_or(0);
    (usable < 4).then(|| {
        format!(
            "no usable SLURM with >= 4 nodes (found {usable}); bring one up with \
             `scripts/local-slurm.sh up`"
        )
    })
}

/// The cluster, for one test at a time.
fn cluster() -> std::sync::MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn hostnames(nodelist: &str) -> Vec<String> {
    run("scontrol", &["show", "hostnames", nodelist])
        .lines()
        .map(str::to_string)
        .collect()
}

/// A work area on the filesystem every node shares (the whole machine here).
fn work_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).unwrap();
    tempfile::Builder::new()
        .prefix("slurm-local-")
        .tempdir_in(base)
        .unwrap()
}

/// A sim-sized config: `gpn` GPUs per node, `ctx` = (count, tp), `gen_workers` = (count, tp),
/// plus an optional `sim:` section.
fn sim_config(gpn: u64, ctx: (u64, u64), gen_workers: (u64, u64), sim: &str) -> String {
    format!(
        "metadata:\n  model_name: sim_tiny_llm\nslurm:\n  job_time: '00:05:00'\n  timeout: 120\n\
         benchmark:\n  mode: e2e\n  use_nv_sa_benchmark: true\n  multi_round: 1\n  \
         concurrency_list: '2'\n  input_length: 32\n  output_length: 8\nhardware:\n  \
         gpus_per_node: {gpn}\n  num_ctx_servers: {}\n  num_gen_servers: {}\nworker_config:\n  gen:\n    \
         tensor_parallel_size: {}\n    max_batch_size: 16\n    max_num_tokens: 256\n    max_seq_len: 512\n    \
         print_iter_log: true\n    cache_transceiver_config:\n      backend: DEFAULT\n  ctx:\n    \
         tensor_parallel_size: {}\n    max_batch_size: 4\n    max_num_tokens: 512\n    max_seq_len: 512\n    \
         cache_transceiver_config:\n      backend: DEFAULT\n{sim}",
        ctx.0, gen_workers.0, gen_workers.1, ctx.1
    )
}

struct Setup {
    work: tempfile::TempDir,
    configs: PathBuf,
    out: PathBuf,
}

fn setup(configs: &[(&str, String)]) -> Setup {
    let work = work_dir();
    let dir = work.path().join("configs");
    std::fs::create_dir_all(&dir).unwrap();
    for (stem, text) in configs {
        std::fs::write(dir.join(format!("{stem}.yaml")), text).unwrap();
    }
    let out = work.path().join("out");
    Setup {
        configs: dir,
        out,
        work,
    }
}

fn perfsanity(s: &Setup, args: &[&str]) -> Command {
    let mut cmd = perfsanity_cmd();
    cmd.args(args)
        .current_dir(s.work.path())
        .env("PERF_CONFIG_DIRS", &s.configs)
        .env("PERF_OUTPUT_DIR", &s.out)
        .env("PERF_DB", s.work.path().join("perf.sqlite"))
        .env("PERF_TOOLCHAIN", "sim")
        .env("PERF_SLURM_CONTAINER", "off");
    cmd
}

/// One `sacct` step row: (name, state, exit code, node names, tasks).
pub(crate) type StepRow = (String, String, String, Vec<String>, String);

/// The job steps `sacct` knows of now (not the `.batch` and `.extern` ones).
pub(crate) fn sacct_steps(job: &str) -> Vec<StepRow> {
    let text = run(
        "sacct",
        &[
            "-j",
            job,
            "-n",
            "-P",
            "-o",
            "JobID,JobName,State,ExitCode,NodeList,NTasks",
        ],
    );
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 6
                && f[0].contains('.')
                && !f[0].ends_with(".batch")
                && !f[0].ends_with(".extern"))
            .then(|| {
                (
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].to_string(),
                    hostnames(f[4]),
                    f[5].to_string(),
                )
            })
        })
        .collect()
}

/// The steps of a job once `enough` says they are all recorded (the accounting database lags
/// slurmctld by about a second), else the last read after 15 s.
pub(crate) fn steps_when(job: &str, enough: impl Fn(&[StepRow]) -> bool) -> Vec<StepRow> {
    let mut last = Vec::new();
    let rows = poll_until(Duration::from_secs(15), Duration::from_millis(500), || {
        let rows = sacct_steps(job);
        if enough(&rows) {
            return Some(rows);
        }
        last = rows;
        None
    });
    rows.unwrap_or(last)
}

/// `sacct` steps of a disaggregated trial's job (its five roles).
fn steps(job: &str) -> Vec<StepRow> {
    steps_when(job, |rows| rows.len() >= 5)
}

pub(crate) fn job_field(job: &str, field: &str) -> String {
    run("sacct", &["-j", job, "-X", "-n", "-P", "-o", field])
        .trim()
        .to_string()
}

pub(crate) fn job_id_of(output: &str, trial: &str) -> String {
    let prefix = format!("submitted {trial} as job ");
    output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id for {trial} in:\n{output}"))
        .to_string()
}

pub fn trials_run_as_srun_steps_on_their_node_slices() {
    let _cluster = cluster();
    // 4 nodes: GEN_0 and GEN_1 (TP2 on 2-GPU nodes: 1 node, 2 ranks each), CTX_0 (TP4: 2 nodes,
    // 4 ranks). And a 3-node trial whose GEN_1 exits at start.
    let ok = "sim-slurm-e2e";
    let bad = "sim-slurm-gen-crash";
    // gen_only: its device-step metric is read from the gen_server_<i>.log files the launcher
    // writes (srun output) once their .done sentinels exist.
    let gen_only = "sim-gen-only-dataset_ctx1_gen2";
    let gen_only_yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("test_configs/wideep/perf/{gen_only}.yaml")),
    )
    .unwrap();
    let s = setup(&[
        (ok, sim_config(2, (1, 4), (2, 2), "")),
        (gen_only, gen_only_yaml),
        (
            bad,
            sim_config(
                1,
                (1, 1),
                (2, 1),
                "sim:\n  faults:\n    GEN_1:\n      exit_at_start: 3\n",
            ),
        ),
    ]);
    let list = s.work.path().join("list.txt");
    std::fs::write(
        &list,
        format!("disagg-{ok}\ndisagg-{bad}\ndisagg-{gen_only}\n"),
    )
    .unwrap();
    let started = Instant::now();
    let out = perfsanity(
        &s,
        &[
            "slurm",
            "submit",
            "--wait",
            "--poll",
            "0.5",
            "--testlist",
            list.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "{stdout}{stderr}(submit --wait took {:.1} s)",
        elapsed.as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "one of two trials fails:\n{stdout}{stderr}"
    );

    // --- the good trial: every role an srun step on its slice.
    let trial = format!("disagg-{ok}");
    let job = job_id_of(&stdout, &trial);
    assert!(
        stdout.contains(&format!("PASS {trial} (job {job}): passed")),
        "{stdout}"
    );
    assert_eq!(job_field(&job, "State"), "COMPLETED");
    assert_eq!(job_field(&job, "ExitCode"), "0:0");
    let nodes = hostnames(&job_field(&job, "NodeList"));
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    let ok_steps = steps(&job);
    let step = |name: &str| {
        ok_steps
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no step {name} in {ok_steps:?}"))
    };
    for (name, slice, tasks) in [
        ("GEN_0", &nodes[0..1], "2"),
        ("GEN_1", &nodes[1..2], "2"),
        ("CTX_0", &nodes[2..4], "4"),
    ] {
        let s = step(name);
        assert_eq!((s.1.as_str(), s.2.as_str()), ("COMPLETED", "0:0"), "{s:?}");
        assert_eq!(s.3, slice, "{name} ran on its slice");
        assert_eq!(s.4, tasks, "{name} tasks");
    }
    for name in ["DISAGG_SERVER", "BENCHMARK"] {
        let s = step(name);
        assert_eq!(
            (s.1.as_str(), s.2.as_str(), s.3.len()),
            ("COMPLETED", "0:0", 1),
            "{s:?}"
        );
        assert!(nodes.contains(&s.3[0]));
    }
    assert_eq!(ok_steps.len(), 5, "exactly one step per role: {ok_steps:?}");

    // The workers themselves reported their node's host name (each node is its own UTS
    // namespace), so the role really ran there — rank 0, on the slice's first node.
    let trial_dir = s.out.join(&trial);
    let rendezvous = trial_dir.join(format!("hostnames-{job}-0"));
    for (role, node) in [
        ("GEN_0", &nodes[0]),
        ("GEN_1", &nodes[1]),
        ("CTX_0", &nodes[2]),
    ] {
        let addr = std::fs::read_to_string(rendezvous.join(format!("{role}.txt"))).unwrap();
        let host = addr.trim().rsplit_once(':').unwrap().0.to_string();
        assert_eq!(&host, node, "{role} reported {addr:?}");
    }
    // Multi-rank steps ran the role once (rank 0): one role summary per step log, one
    // simulated server per worker.
    for (log, role) in [("gen_server_0.log", "GEN_0"), ("ctx_server_0.log", "CTX_0")] {
        let text = std::fs::read_to_string(trial_dir.join(log)).unwrap();
        assert_eq!(
            text.matches(&format!("{role} done (the benchmark finished)"))
                .count(),
            1,
            "{log}:\n{text}"
        );
        assert_eq!(
            text.matches("1 trial(s), 0 failed").count(),
            1,
            "{log}:\n{text}"
        );
        let server_log =
            std::fs::read_to_string(trial_dir.join(format!("trtllm-serve.{role}.0.log"))).unwrap();
        assert_eq!(
            server_log
                .matches(&format!("simulated trtllm-serve worker {role} "))
                .count(),
            1,
            "{role}:\n{server_log}"
        );
    }
    assert!(trial_dir.join("gen_server_0.done").exists());
    assert!(trial_dir.join("gen_server_1.done").exists());
    // The benchmark's results came back: a fresh record with real numbers.
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(trial_dir.join("perf_records.json")).unwrap(),
    )
    .unwrap();
    let record = &records.as_array().unwrap()[0];
    for metric in [
        "d_seq_throughput",
        "d_token_throughput",
        "d_mean_ttft",
        "d_mean_itl",
        "d_mean_e2el",
    ] {
        let v = record[metric].as_f64().unwrap_or(0.0);
        assert!(v > 0.0, "{metric} = {:?}", record[metric]);
    }
    assert!(
        stdout.contains("results: ") && stdout.contains("perf_records.json (1 record(s))"),
        "{stdout}"
    );
    let result = std::fs::read_to_string(trial_dir.join(format!("slurm-{job}.result"))).unwrap();
    assert!(result.contains("outcome=completed"), "{result}");

    // --- gen_only: the launcher's gen logs carried the iteration lines into the record.
    let trial = format!("disagg-{gen_only}");
    let job = job_id_of(&stdout, &trial);
    assert!(
        stdout.contains(&format!("PASS {trial} (job {job}): passed")),
        "{stdout}"
    );
    let trial_dir = s.out.join(&trial);
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(trial_dir.join("perf_records.json")).unwrap(),
    )
    .unwrap();
    let step_time = records[0]["d_mean_gen_worker_per_iter_device_step_time"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(step_time > 0.0, "{}", records[0]);
    for i in 0..2 {
        let log = std::fs::read_to_string(trial_dir.join(format!("gen_server_{i}.log"))).unwrap();
        assert!(
            log.contains("iter = "),
            "gen_server_{i}.log has no iteration lines"
        );
        assert!(trial_dir.join(format!("gen_server_{i}.done")).exists());
    }
    assert_eq!(steps(&job).len(), 5);

    // --- the failing trial: the script cancels its own job; that is a failed trial, at GEN_1.
    let trial = format!("disagg-{bad}");
    let job = job_id_of(&stdout, &trial);
    assert!(
        job_field(&job, "State").starts_with("CANCELLED"),
        "upstream-style failure path"
    );
    assert!(
        stdout.contains(&format!("FAIL {trial} (job {job}): trial failed at GEN_1")),
        "{stdout}"
    );
    let crashed = steps(&job);
    let gen1 = crashed.iter().find(|s| s.0 == "GEN_1").expect("GEN_1 step");
    assert!(gen1.1 == "FAILED" || gen1.2 != "0:0", "{gen1:?}");
    assert!(
        stdout.contains("last lines of") && stdout.contains("gen_server_1.log"),
        "{stdout}"
    );
}

pub fn sigterm_to_the_submitter_cancels_the_job() {
    let _cluster = cluster();
    // GEN_0 never becomes ready: the job would run until slurm.timeout.
    let stem = "sim-slurm-hang";
    let s = setup(&[(
        stem,
        sim_config(
            1,
            (1, 1),
            (1, 1),
            "sim:\n  faults:\n    GEN_0:\n      never_ready: true\n",
        ),
    )]);
    let trial = format!("disagg-{stem}");
    let mut child = perfsanity(&s, &["slurm", "submit", "--wait", "--poll", "0.5", &trial])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let mut job = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if job.is_none() && line.starts_with("submitted ") {
            job = Some(job_id_of(&line, &trial));
        }
        if line.contains(": RUNNING") {
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran:\n{seen}");
    }
    let job = job.unwrap_or_else(|| panic!("no job id:\n{seen}"));
    // Let the roles start on their nodes, then stop the submitter as CI would.
    let rendezvous = s.out.join(&trial).join(format!("hostnames-{job}-0"));
    wait_until(Duration::from_secs(30), || {
        rendezvous.join("CTX_0.txt").exists().then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{seen}");
    assert!(seen.contains(&format!("cancelling job(s) {job}")), "{seen}");
    assert!(
        seen.contains(&format!(
            "CANCELLED {trial} (job {job}): cancelled from outside"
        )),
        "{seen}"
    );
    // Slurm agrees, and nothing of the trial is left on any node.
    assert!(job_field(&job, "State").starts_with("CANCELLED"));
    let mut left = String::new();
    let gone = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let out = Command::new("pgrep").args(["-f", &trial]).output().unwrap();
        left = String::from_utf8_lossy(&out.stdout).into_owned();
        left.is_empty().then_some(())
    });
    assert!(gone.is_some(), "processes left: {left}");
}

pub fn sbatch_reads_hostile_directives_literally() {
    let _cluster = cluster();
    let job_name = "job;$(touch PWNED) 'a b' \"q\" `id` \\x #h";
    let account = "acc $(touch PWNED)";
    let extra = "--comment='$(touch PWNED) it\"s `id`' --hold";
    let stem = "sim-slurm-hostile";
    let text = sim_config(1, (1, 1), (1, 1), "").replace(
        "slurm:\n",
        &format!(
            "slurm:\n  job_name: {}\n  account: {}\n  extra_args: {}\n",
            serde_json::to_string(job_name).unwrap(),
            serde_json::to_string(account).unwrap(),
            serde_json::to_string(extra).unwrap()
        ),
    );
    let s = setup(&[(stem, text)]);
    let trial = format!("disagg-{stem}");
    let out = perfsanity(&s, &["slurm", "submit", &trial])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = job_id_of(&stdout, &trial);
    let field = |f: &str| {
        run("squeue", &["-h", "-j", &job, "-o", f])
            .trim_end_matches('\n')
            .to_string()
    };
    let (name, acc, comment, state) = (field("%j"), field("%a"), field("%k"), field("%T"));
    run("scancel", &[&job]);
    assert_eq!(name, job_name);
    // An account unknown to the accounting database falls back to the user's default here
    // (no association enforcement), so only its harmlessness can be checked.
    assert!(acc == "root" || acc == account, "{acc}");
    assert_eq!(comment, "$(touch PWNED) it\"s `id`");
    assert_eq!(state, "PENDING", "--hold from extra_args");
    assert!(!s.work.path().join("PWNED").exists());
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR")).join("PWNED").exists());
}
