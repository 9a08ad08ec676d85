//! Batch scripts without a cluster: node math against upstream's worked examples and every
//! upstream disaggregated config (read from `../shared/upstream` at run time), the scripts
//! executed by bash with stand-ins for `srun`/`scontrol`/`scancel` that record their argv (so the
//! node slices bash computes are checked, not just the text), the failure paths, hostile config
//! values, and the checked-in examples under `docs/examples/`.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perfsanity::app::settings::Settings;
use perfsanity::config::{BenchmarkMode, PerfConfig, load_perf_config, parse_perf_config};
use perfsanity::plan::toolchain::Toolchain;
use perfsanity::plan::{Plan, PlanInputs, TrialRequest, build_plan};
use perfsanity::run::slurm::quote::sbatch_split;
use perfsanity::run::slurm::script::{LITERALS_BEGIN, LITERALS_END};
use perfsanity::run::slurm::{JobEnv, JobLayout, ScriptInputs, SiteOptions, render_script};

use crate::support::{perfsanity_cmd, upstream_dir};

// ------------------------------------------------------------------ fixtures

/// Every upstream disaggregated / WideEP config (not aggregated configs, not test lists).
fn upstream_disagg_configs(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    all.retain(|p| {
        let s = p.to_string_lossy();
        !(s.contains("/aggregated/")
            || s.contains("test-lists/")
            || s.contains("testlists/")
            || s.ends_with("perf_test_cases.yaml"))
    });
    all.sort();
    all
}

fn plan_of(config: &PerfConfig, mode: Option<BenchmarkMode>, output_root: &Path) -> Plan {
    let stem = config
        .path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let trial = format!("disagg-{stem}");
    let no_files = |_: &Path| false;
    build_plan(
        config,
        &TrialRequest {
            trial: trial.clone(),
            test_list_id: trial,
            stem,
            upload: false,
            mode_override: mode,
            time_limit_s: None,
        },
        &PlanInputs {
            output_root: output_root.to_path_buf(),
            models_root: None,
            cwd: output_root.to_path_buf(),
            sim_dataset_root: output_root.join("datasets"),
            hostname: "login".into(),
            auth_key: "ab".repeat(32),
            ..crate::support::plan_inputs(Toolchain::Sim, &no_files)
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", config.path.display()))
}

/// The script of `plan` under `env` (PERF_SLURM_* knobs), with the project root `root`.
fn script_of(plan: &Plan, config: &PerfConfig, root: &Path, env: &[(&str, &str)]) -> String {
    let mut vars: Vec<(&str, &str)> = vec![("PERF_TOOLCHAIN", "sim")];
    vars.extend_from_slice(env);
    let source = Env(vars);
    let settings = Settings::from_env(&source, root, &root.join("target")).unwrap();
    let site = SiteOptions::resolve(config, &plan.trial, plan.timeouts.trial_s, &source).unwrap();
    let job_env = JobEnv::from_settings(
        &settings,
        &source,
        root,
        Path::new("/opt/perfsanity/bin/perfsanity"),
    )
    .unwrap();
    render_script(&ScriptInputs {
        plan,
        site: &site,
        job_env: &job_env,
    })
    .unwrap()
}

struct Env<'a>(Vec<(&'a str, &'a str)>);

impl perfsanity::app::settings::EnvSource for Env<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// A perf config of our own with the given shape (a copy of the sim CI config, resized).
fn shaped_config(
    gpn: u64,
    ctx: (u64, u64, u64),
    gen_workers: (u64, u64, u64),
    mode: &str,
) -> PerfConfig {
    let (num_ctx, ctx_tp, ctx_pp) = ctx;
    let (num_gen, gen_tp, gen_pp) = gen_workers;
    let text = format!(
        "metadata:\n  model_name: sim_tiny_llm\nbenchmark:\n  mode: {mode}\n  use_nv_sa_benchmark: false\n  \
         dataset_fallback: random\n  concurrency_list: '2'\n  input_length: 48\n  output_length: 24\n\
         hardware:\n  gpus_per_node: {gpn}\n  num_ctx_servers: {num_ctx}\n  num_gen_servers: {num_gen}\n\
         worker_config:\n  gen:\n    tensor_parallel_size: {gen_tp}\n    pipeline_parallel_size: {gen_pp}\n    \
         max_batch_size: 16\n    max_num_tokens: 256\n    max_seq_len: 512\n    enable_attention_dp: false\n    \
         cache_transceiver_config:\n      backend: DEFAULT\n  ctx:\n    tensor_parallel_size: {ctx_tp}\n    \
         pipeline_parallel_size: {ctx_pp}\n    max_batch_size: 4\n    max_num_tokens: 512\n    max_seq_len: 512\n"
    );
    parse_perf_config(&text, Path::new("/configs/shaped.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------------------------------ running scripts with stand-ins

const STUB_SRUN: &str = r#"#!/bin/bash
f=$(mktemp "$STUB_LOG/srun.XXXXXX") || exit 99
printf '%s\0' "$@" >"$f"
role=
for a in "$@"; do case $a in --job-name=*) role=${a#--job-name=} ;; esac; done
if [ "$role" = BENCHMARK ] && [ -n "${STUB_BENCH_SLEEP:-}" ]; then sleep "$STUB_BENCH_SLEEP"; fi
if [ -n "${STUB_FAIL_ROLE:-}" ] && [ "$role" = "$STUB_FAIL_ROLE" ]; then exit 3; fi
exit 0
"#;
const STUB_SCONTROL: &str = r#"#!/bin/bash
[ "$1 $2" = "show hostnames" ] || { echo "stub scontrol: unexpected $*" >&2; exit 1; }
for ((i = 0; i < STUB_NODES; i++)); do echo "n$i"; done
"#;
// Slurm kills every process of a cancelled job: here, the script's whole process group.
const STUB_SCANCEL: &str = r#"#!/bin/bash
printf '%s\0' "$@" >"$STUB_LOG/scancel.$$"
kill -TERM 0
"#;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// argv of every srun call.
    sruns: Vec<Vec<String>>,
    /// argv of every scancel call.
    scancels: Vec<Vec<String>>,
}

impl Run {
    /// The srun call of step `role`.
    fn step(&self, role: &str) -> Option<&Vec<String>> {
        let name = format!("--job-name={role}");
        self.sruns.iter().find(|a| a.contains(&name))
    }
}

fn value_after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

fn value_of<'a>(argv: &'a [String], prefix: &str) -> Option<&'a str> {
    argv.iter().find_map(|a| a.strip_prefix(prefix))
}

fn nul_words(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Runs `script` with bash, stand-in Slurm commands first on PATH and an allocation of `nodes`
/// nodes named n0, n1, …
fn run_script(script: &str, nodes: usize, work: &Path, extra_env: &[(&str, &str)]) -> Run {
    let stub_bin = work.join("stub-bin");
    let log = work.join("stub-log");
    let _ = std::fs::remove_dir_all(&log);
    std::fs::create_dir_all(&stub_bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    for (name, text) in [
        ("srun", STUB_SRUN),
        ("scontrol", STUB_SCONTROL),
        ("scancel", STUB_SCANCEL),
    ] {
        let p = stub_bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script_path = work.join("job.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(&script_path)
        .current_dir(work)
        .env(
            "PATH",
            format!("{}:{}", stub_bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SLURM_JOB_ID", "42")
        .env("SLURM_JOB_NODELIST", "n[0-99]")
        .env("STUB_NODES", nodes.to_string())
        .env("STUB_LOG", &log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
    let mut sruns = Vec::new();
    let mut scancels = Vec::new();
    for e in std::fs::read_dir(&log).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("srun.") {
            sruns.push(nul_words(&p));
        } else if name.starts_with("scancel.") {
            scancels.push(nul_words(&p));
        }
    }
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        sruns,
        scancels,
    }
}

fn bash_n(script: &str, work: &Path) {
    let p = work.join("syntax.sh");
    std::fs::write(&p, script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The words of every `#SBATCH` line, as sbatch reads them.
fn sbatch_directives(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH"))
        .flat_map(|rest| sbatch_split(rest).unwrap())
        .collect()
}

fn directive(script: &str, name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    sbatch_directives(script)
        .into_iter()
        .find_map(|w| w.strip_prefix(&prefix).map(str::to_string))
}

fn result_file(trial_dir: &Path) -> String {
    std::fs::read_to_string(trial_dir.join("slurm-42.result")).unwrap_or_default()
}

/// Checks a completed stand-in run of `plan`'s script against the layout: `#SBATCH --nodes` is
/// the sum of the worker steps' `-N`; the `-w` slices bash computed are disjoint, cover the
/// allocation, and give generation workers the first nodes; task counts follow the topology.
fn check_layout(plan: &Plan, script: &str, run: &Run, what: &str) {
    assert_eq!(run.code, Some(0), "{what}: {}\n{}", run.stdout, run.stderr);
    let topo = &plan.topology;
    let nodes: u64 = directive(script, "nodes").unwrap().parse().unwrap();
    let tasks: u64 = directive(script, "ntasks").unwrap().parse().unwrap();
    assert_eq!(nodes, topo.total_nodes, "{what}");
    assert_eq!(tasks, topo.total_nodes * topo.gpus_per_node, "{what}");
    assert_eq!(
        directive(script, "ntasks-per-node").unwrap(),
        topo.gpus_per_node.to_string()
    );
    let mut sum = 0;
    let mut seen: Vec<String> = Vec::new();
    for w in &plan.workers {
        let role = w.role.to_string();
        let argv = run
            .step(&role)
            .unwrap_or_else(|| panic!("{what}: no srun for {role}"));
        let kind = if role.starts_with("GEN") {
            &topo.gen_workers
        } else {
            &topo.ctx
        };
        let n: u64 = value_after(argv, "-N").unwrap().parse().unwrap();
        let slice: Vec<String> = value_after(argv, "-w")
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        assert_eq!(n, kind.nodes_per_worker, "{what} {role}");
        assert_eq!(slice.len() as u64, n, "{what} {role}: {slice:?}");
        assert_eq!(
            value_of(argv, "--ntasks=").unwrap(),
            kind.gpus_per_worker.to_string(),
            "{what} {role}"
        );
        assert_eq!(
            value_of(argv, "--ntasks-per-node=").unwrap(),
            kind.gpus_per_node_per_worker.to_string(),
            "{what} {role}"
        );
        assert!(argv.contains(&"--kill-on-bad-exit=1".to_string()));
        let tail: Vec<&str> = argv[argv.len() - 4..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            ["run", "--role", role.as_str(), plan.trial.as_str()],
            "{what}"
        );
        sum += n;
        seen.extend(slice);
    }
    assert_eq!(
        sum, nodes,
        "{what}: #SBATCH --nodes must be the sum of the worker steps' -N"
    );
    let expected: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    assert_eq!(
        seen, expected,
        "{what}: slices in launch order, disjoint and covering"
    );
    for role in ["DISAGG_SERVER", "BENCHMARK"] {
        let argv = run
            .step(role)
            .unwrap_or_else(|| panic!("{what}: no {role} step"));
        assert!(argv.contains(&"--overlap".to_string()), "{what} {role}");
        assert_eq!(value_after(argv, "-N"), Some("1"));
    }
    assert_eq!(
        run.sruns.len(),
        plan.workers.len() + 2,
        "{what}: one srun per role"
    );
    assert!(run.scancels.is_empty(), "{what}: nothing failed");
    let result = result_file(&plan.output_dir);
    assert!(result.contains("outcome=completed"), "{what}: {result}");
}

// ------------------------------------------------------------------ node math

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn node_math_matches_upstream_worked_examples() {
    // (config stem, mode override, nodes, GPUs) with gpus_per_node 4. Sources:
    // upstream-ci-scripts.md §3.3 (9 nodes / 36 GPUs; the WideEP gen_only twin needs 9 with the
    // launcher's math — calculate_hardware_nodes.py's 8 is bug F there) and
    // upstream-disagg-and-benchmark.md §4.1 (examples A, 8k1k, both 128k8k).
    let cases: &[(&str, Option<BenchmarkMode>, u64, u64)] = &[
        (
            "deepseek-r1-fp4_1k1k_ctx1_gen1_dep32_bs32_eplb0_mtp0_ccb-UCX",
            None,
            9,
            36,
        ),
        (
            "deepseek-r1-fp4_1k1k_ctx1_gen1_dep32_bs32_eplb288_mtp0_ccb-UCX",
            None,
            9,
            36,
        ),
        (
            "deepseek-r1-fp4_1k1k_ctx1_gen4_tep8_bs32_eplb0_mtp0_ccb-UCX",
            None,
            9,
            36,
        ),
        (
            "deepseek-r1-fp4_8k1k_ctx8_gen1_dep32_bs16_eplb0_mtp3_ccb-NIXL",
            None,
            16,
            64,
        ),
        (
            "deepseek-r1-fp4_128k8k_ctx1_pp8_gen1_dep16_bs1_eplb0_mtp3-Default",
            None,
            6,
            24,
        ),
        (
            "deepseek-r1-fp4_128k8k_ctx1_pp4_gen13_tep4_bs1_eplb0_mtp0-Default",
            None,
            14,
            56,
        ),
        // gen_only_no_context drops the context worker: the gen worker's 8 nodes only.
        (
            "deepseek-r1-fp4_1k1k_ctx1_gen1_dep32_bs32_eplb0_mtp0_ccb-UCX",
            Some(BenchmarkMode::GenOnlyNoContext),
            8,
            32,
        ),
    ];
    let root = upstream_dir();
    let configs = upstream_disagg_configs(&root);
    let out = tempfile::tempdir().unwrap();
    for (stem, mode, nodes, gpus) in cases {
        let path = configs
            .iter()
            .find(|p| p.file_stem().unwrap().to_string_lossy() == *stem)
            .unwrap_or_else(|| panic!("upstream config {stem} not found under {}", root.display()));
        let config = load_perf_config(path).unwrap();
        let plan = plan_of(&config, *mode, out.path());
        let layout = JobLayout::of(&plan);
        assert_eq!(
            (layout.total_nodes, layout.total_tasks),
            (*nodes, *gpus),
            "{stem} {mode:?}"
        );
        let script = script_of(&plan, &config, out.path(), &[]);
        assert_eq!(
            directive(&script, "nodes"),
            Some(nodes.to_string()),
            "{stem}"
        );
        assert_eq!(
            directive(&script, "ntasks"),
            Some(gpus.to_string()),
            "{stem}"
        );
    }
}

#[test]
fn node_math_whole_nodes_per_worker_not_packed() {
    // Packing would put 3 TP2 ctx workers on 2 four-GPU nodes and break `srun -N`; upstream's
    // launcher gives every worker whole nodes (bug F of the CI scripts).
    let cases = [
        // (gpn, (ctx count, tp, pp), (gen count, tp, pp), mode, nodes)
        (4, (3, 2, 1), (1, 4, 1), "e2e", 4),
        (4, (1, 2, 1), (1, 8, 1), "e2e", 3),
        (8, (1, 16, 1), (1, 16, 1), "e2e", 4),
        (4, (1, 1, 8), (2, 2, 1), "gen_only", 4),
        (4, (2, 4, 1), (1, 8, 1), "gen_only_no_context", 2),
        (4, (1, 6, 1), (1, 1, 1), "e2e", 3),
    ];
    let out = tempfile::tempdir().unwrap();
    for (gpn, ctx, gen_w, mode, nodes) in cases {
        let config = shaped_config(gpn, ctx, gen_w, mode);
        let plan = plan_of(&config, None, out.path());
        let layout = JobLayout::of(&plan);
        assert_eq!(layout.total_nodes, nodes, "{gpn} {ctx:?} {gen_w:?} {mode}");
        let covered: u64 = layout.workers.iter().map(|w| w.nodes).sum();
        assert_eq!(covered, nodes);
        // A worker whose GPUs are not a multiple of gpus_per_node starts exactly its world size.
        if ctx.1 * ctx.2 == 6 {
            let c = layout
                .workers
                .iter()
                .find(|w| w.role.to_string() == "CTX_0")
                .unwrap();
            assert_eq!((c.nodes, c.ntasks, c.ntasks_per_node), (2, 6, 4));
        }
    }
}

#[test]
fn gen_only_keeps_context_workers_and_gen_only_no_context_drops_them() {
    let work = tempfile::tempdir().unwrap();
    let config = shaped_config(2, (2, 2, 1), (2, 2, 1), "gen_only");
    let plan = plan_of(&config, None, work.path());
    assert_eq!(
        plan.topology.ctx.count, 2,
        "gen_only keeps ctx (upstream's launcher)"
    );
    let script = script_of(&plan, &config, work.path(), &[]);
    let run = run_script(&script, 4, work.path(), &[]);
    check_layout(&plan, &script, &run, "gen_only");
    assert!(run.step("CTX_1").is_some());

    let plan = plan_of(&config, Some(BenchmarkMode::GenOnlyNoContext), work.path());
    assert_eq!(plan.topology.ctx.count, 0);
    let script = script_of(&plan, &config, work.path(), &[]);
    assert!(script.contains("gen_only_no_context: no context workers"));
    let run = run_script(&script, 2, work.path(), &[]);
    check_layout(&plan, &script, &run, "gen_only_no_context");
    assert!(
        run.sruns
            .iter()
            .all(|a| !a.iter().any(|w| w.starts_with("--job-name=CTX")))
    );
}

#[test]
#[cfg_attr(not(perfsanity_upstream), ignore = "needs ../shared/upstream")]
fn every_upstream_disagg_config_lays_out_consistently() {
    let root = upstream_dir();
    let configs = upstream_disagg_configs(&root);
    assert!(
        configs.len() >= 20,
        "expected the upstream corpus, found {}",
        configs.len()
    );
    let work = tempfile::tempdir().unwrap();
    let mut modes_seen = BTreeSet::new();
    for path in &configs {
        let config = load_perf_config(path).unwrap_or_else(|e| panic!("{e}"));
        // The declared mode; for gen_only configs also gen_only_no_context (ctx dropped).
        let modes = if config.benchmark.mode == BenchmarkMode::GenOnly {
            vec![None, Some(BenchmarkMode::GenOnlyNoContext)]
        } else {
            vec![None]
        };
        for mode in modes {
            let plan = plan_of(&config, mode, work.path());
            modes_seen.insert(plan.mode.as_str());
            let script = script_of(&plan, &config, work.path(), &[]);
            bash_n(&script, work.path());
            let what = format!("{} ({})", path.display(), plan.mode.as_str());
            let run = run_script(
                &script,
                plan.topology.total_nodes as usize,
                work.path(),
                &[],
            );
            check_layout(&plan, &script, &run, &what);
            let ctx_steps = run
                .sruns
                .iter()
                .filter(|a| a.iter().any(|w| w.starts_with("--job-name=CTX_")))
                .count() as u64;
            let expected_ctx = if plan.mode == BenchmarkMode::GenOnlyNoContext {
                0
            } else {
                config.hardware.num_ctx_servers
            };
            assert_eq!(ctx_steps, expected_ctx, "{what}");
        }
    }
    assert!(
        modes_seen.contains("gen_only") && modes_seen.contains("e2e"),
        "{modes_seen:?}"
    );
}

// ------------------------------------------------------------------ failure paths

#[test]
fn failures_cancel_the_job_and_say_where() {
    let work = tempfile::tempdir().unwrap();
    let config = shaped_config(1, (1, 1, 1), (2, 1, 1), "e2e");
    let plan = plan_of(&config, None, work.path());
    let script = script_of(&plan, &config, work.path(), &[]);

    // The benchmark step fails: the script records it and scancels its own job.
    let run = run_script(&script, 3, work.path(), &[("STUB_FAIL_ROLE", "BENCHMARK")]);
    assert_eq!(run.scancels, vec![vec!["42".to_string()]], "{}", run.stdout);
    assert_ne!(run.code, Some(0));
    let result = result_file(&plan.output_dir);
    assert!(result.contains("benchmark_exit=3"), "{result}");
    assert!(result.contains("failed_stage=BENCHMARK"), "{result}");
    assert!(!result.contains("outcome=completed"));

    // A worker step fails before the benchmark finished: the job is cancelled at once, naming
    // the worker, instead of waiting for the benchmark to time out.
    let run = run_script(
        &script,
        3,
        work.path(),
        &[("STUB_FAIL_ROLE", "GEN_1"), ("STUB_BENCH_SLEEP", "20")],
    );
    assert_eq!(run.scancels.len(), 1, "{}\n{}", run.stdout, run.stderr);
    let result = result_file(&plan.output_dir);
    let first_failure = result
        .lines()
        .find(|l| l.starts_with("failed_stage="))
        .unwrap();
    assert_eq!(first_failure, "failed_stage=GEN_1", "{result}");
    assert!(result.contains("step_exit_GEN_1=3"));
    // The gen log's sentinel is written even for a failed step (the benchmark waits for it).
    assert!(plan.output_dir.join("gen_server_1.done").exists());

    // Fewer nodes than the layout needs.
    let run = run_script(&script, 2, work.path(), &[]);
    assert_eq!(run.scancels.len(), 1);
    assert!(
        run.sruns.is_empty(),
        "nothing may start on a short allocation"
    );
    let result = result_file(&plan.output_dir);
    assert!(result.contains("failed_stage=setup"), "{result}");
    assert!(result.contains("this trial needs 3"), "{result}");
}

#[test]
fn multi_rank_steps_run_the_role_on_rank_0_only() {
    let work = tempfile::tempdir().unwrap();
    let config = shaped_config(2, (1, 1, 1), (1, 4, 1), "e2e");
    let plan = plan_of(&config, None, work.path());
    let script = script_of(&plan, &config, work.path(), &[]);
    let run = run_script(&script, 3, work.path(), &[]);
    check_layout(&plan, &script, &run, "rank guard");
    let gen_step = run.step("GEN_0").unwrap();
    assert_eq!(value_of(gen_step, "--ntasks="), Some("4"));
    let i = gen_step
        .iter()
        .position(|a| a == "bash")
        .expect("the rank-0 wrapper");
    // Run the wrapper as rank 1 with the status file present: it must not start the role.
    let status = work.path().join("status");
    std::fs::write(&status, "Done").unwrap();
    let mut wrapper: Vec<String> = gen_step[i..].to_vec();
    let at = wrapper
        .iter()
        .position(|a| a.ends_with("benchmark_status.0.txt"))
        .unwrap();
    wrapper[at] = status.to_string_lossy().to_string();
    let prog = wrapper
        .iter()
        .position(|a| a == "/opt/perfsanity/bin/perfsanity")
        .unwrap();
    wrapper[prog] = "echo".to_string();
    let rank = |procid: &str| {
        let out = Command::new(&wrapper[0])
            .args(&wrapper[1..])
            .env("SLURM_PROCID", procid)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        rank("1"),
        (Some(0), String::new()),
        "rank 1 idles until Done, runs nothing"
    );
    let (code, out) = rank("0");
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("run --role GEN_0 {}", plan.trial));
    // The single-task ctx step has no wrapper.
    assert!(!run.step("CTX_0").unwrap().contains(&"bash".to_string()));
}

// ------------------------------------------------------------------ hostile values

const CANARY: &str = "PWNED";

#[test]
fn hostile_config_values_stay_literal() {
    let work = tempfile::tempdir().unwrap();
    let canary = work.path().join(CANARY);
    let c = canary.display().to_string();
    let partition = format!("p'a\"r $(touch {c}) `touch {c}` ; \\ #x ${{HOME}}");
    let account = format!("acc 'a b' $(touch {c});");
    let job_name = format!("job;$(touch {c}) it's");
    let extra = format!("--comment='$(touch {c}) \"x\" `id`' --nice=5");
    let env_string = format!("A='$(touch {c})' B=\"x;y `touch {c}`\"");
    let image = format!("img:$(touch {c})");
    let mounts = format!("/a b:/c,'/x':/y;`touch {c}`\n$(touch {c})");
    let json = |s: &str| serde_json::to_string(s).unwrap();
    let yaml = format!(
        "metadata:\n  model_name: sim_tiny_llm\nslurm:\n  partition: {}\n  account: {}\n  \
         job_name: {}\n  extra_args: {}\n  job_time: '00:05:00'\n  timeout: 60\n\
         benchmark:\n  mode: e2e\n  use_nv_sa_benchmark: true\n  concurrency_list: '2'\n  \
         input_length: 48\n  output_length: 24\nhardware:\n  gpus_per_node: 1\n  num_ctx_servers: 1\n  \
         num_gen_servers: 2\nenvironment:\n  worker_env_var: {}\n  server_env_var: {}\n  \
         container_image: {}\n  container_mount: {}\nworker_config:\n  gen:\n    \
         tensor_parallel_size: 1\n    max_batch_size: 16\n    max_num_tokens: 256\n    \
         max_seq_len: 512\n    cache_transceiver_config:\n      backend: DEFAULT\n  ctx:\n    \
         tensor_parallel_size: 1\n    max_batch_size: 4\n    max_num_tokens: 512\n    max_seq_len: 512\n",
        json(&partition),
        json(&account),
        json(&job_name),
        json(&extra),
        json(&env_string),
        json(&env_string),
        json(&image),
        json(&mounts),
    );
    let configs = work.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(configs.join("sim-hostile.yaml"), &yaml).unwrap();
    let out_root = work.path().join(format!("out $(touch {c}) 'q' 50%"));
    let bin = work.path().join("bin dir/perf`touch x`sanity");
    let trial = "disagg-sim-hostile";
    let generate = |extra_env: &[(&str, &str)]| {
        let mut cmd = perfsanity_cmd();
        cmd.args(["slurm", "script", trial])
            .current_dir(work.path())
            .env("PERF_CONFIG_DIRS", &configs)
            .env("PERF_OUTPUT_DIR", &out_root)
            .env("PERF_TOOLCHAIN", "sim")
            .env("PERFSANITY_BIN", &bin);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = generate(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    bash_n(&script, work.path());

    // sbatch reads the header literally.
    let words = sbatch_directives(&script);
    for expected in [
        format!("--partition={partition}"),
        format!("--account={account}"),
        format!("--job-name={job_name}"),
        format!("--comment=$(touch {c}) \"x\" `id`"),
        "--nice=5".to_string(),
        format!(
            "--output={}/{trial}/slurm-%j.out",
            out_root.display().to_string().replace('%', "%%")
        ),
    ] {
        assert!(words.contains(&expected), "{expected:?} not in {words:?}");
    }
    // Every header line is a directive or a comment: nothing a shell would run.
    let body_start = script.find("\nset -uo pipefail").unwrap();
    for line in script[..body_start].lines().skip(1) {
        assert!(line.starts_with('#'), "{line:?}");
    }

    // bash reads the literal block literally.
    let begin = script.find(LITERALS_BEGIN).unwrap();
    let end = script.find(LITERALS_END).unwrap();
    let block = &script[begin..end];
    let probe = format!(
        "set -u\n{block}\nprintf '%s\\0' \"$TRIAL_DIR\" \"$PERFSANITY_BIN\" \"${{CONTAINER_FLAGS[@]}}\" \
         \"$PERF_OUTPUT_DIR\"\n"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let trial_dir = out_root.join(trial);
    assert_eq!(
        values,
        vec![
            trial_dir.display().to_string(),
            bin.display().to_string(),
            format!("--container-image={image}"),
            format!("--container-mounts={mounts}"),
            format!("--container-workdir={}", work.path().display()),
            out_root.display().to_string(),
        ]
    );

    // With a container, each background step is followed by upstream's pause for container
    // start-up; the stand-in run below goes without it.
    assert_eq!(script.matches("\nsleep 5\n").count(), 4, "{script}");
    let script = String::from_utf8(generate(&[("PERF_SLURM_STEP_PAUSE", "0")]).stdout).unwrap();
    assert!(!script.contains("\nsleep 5\n"));

    // The whole script, run with stand-in Slurm commands: srun receives the literal values and
    // nothing was evaluated anywhere.
    let run = run_script(&script, 3, work.path(), &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let gen_step = run.step("GEN_0").unwrap();
    assert!(gen_step.contains(&format!("--container-mounts={mounts}")));
    assert!(gen_step.contains(&format!("--container-image={image}")));
    assert!(gen_step.contains(&"--container-name=perfsanity-42".to_string()));
    assert!(gen_step.contains(&bin.display().to_string()));
    assert!(result_file(&trial_dir).contains("outcome=completed"));
    assert!(!canary.exists(), "a config value was evaluated");
    assert!(!work.path().join("x").exists(), "a path was evaluated");

    // Containers off (the local cluster has no pyxis): no container flag anywhere.
    let out = generate(&[("PERF_SLURM_CONTAINER", "off")]);
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("CONTAINER_FLAGS=()"));
    assert!(script.contains("disabled by PERF_SLURM_CONTAINER=off"));

    // A newline cannot go into an #SBATCH line: one clear error naming the key.
    std::fs::write(
        configs.join("sim-hostile.yaml"),
        yaml.replace(&json(&partition), &json("batch\n#SBATCH --uid=0")),
    )
    .unwrap();
    let out = generate(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("slurm.partition in"), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert!(out.stdout.is_empty());
    // Same for an environment override.
    std::fs::write(configs.join("sim-hostile.yaml"), &yaml).unwrap();
    let out = generate(&[("PERF_SLURM_ACCOUNT", "a\rb")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERF_SLURM_ACCOUNT"));
    assert!(!canary.exists());
}

// ------------------------------------------------------------------ site options

#[test]
fn site_options_come_from_yaml_then_environment() {
    let work = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "test_configs/disagg/perf/deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL.yaml",
    );
    let config = load_perf_config(&path).unwrap();
    let plan = plan_of(&config, None, work.path());
    // YAML: placeholders mean unset; job_time, job_name and extra_args are used.
    let script = script_of(&plan, &config, work.path(), &[]);
    assert_eq!(directive(&script, "partition"), None);
    assert_eq!(directive(&script, "time").as_deref(), Some("02:00:00"));
    assert_eq!(
        directive(&script, "job-name").as_deref(),
        Some("perfsanity-dsr1-8k1k")
    );
    assert!(sbatch_directives(&script).contains(&"--gres=gpu:4".to_string()));
    assert_eq!(directive(&script, "segment"), None);
    assert!(script.contains("WORKER_MPI=('--mpi=pmix')"));
    // Environment overrides.
    let script = script_of(
        &plan,
        &config,
        work.path(),
        &[
            ("PERF_SLURM_PARTITION", "gb200"),
            ("PERF_SLURM_ACCOUNT", "perf team"),
            ("PERF_SLURM_TIME", "00:30:00"),
            ("PERF_SLURM_JOB_NAME", "nightly"),
            ("PERF_SLURM_EXTRA_ARGS", "--exclusive --comment='a b'"),
            ("PERF_SLURM_SEGMENT", "1"),
            ("PERF_SLURM_GPUS", "0"),
            ("PERF_SLURM_MPI", "none"),
        ],
    );
    assert_eq!(directive(&script, "partition").as_deref(), Some("gb200"));
    assert_eq!(directive(&script, "account").as_deref(), Some("perf team"));
    assert_eq!(directive(&script, "time").as_deref(), Some("00:30:00"));
    assert_eq!(directive(&script, "job-name").as_deref(), Some("nightly"));
    assert_eq!(directive(&script, "segment").as_deref(), Some("8"));
    assert_eq!(directive(&script, "gpus-per-node"), None);
    let words = sbatch_directives(&script);
    assert!(words.contains(&"--exclusive".to_string()));
    assert!(words.contains(&"--comment=a b".to_string()));
    assert!(!words.contains(&"--gres=gpu:4".to_string()));
    assert!(script.contains("WORKER_MPI=()"));
    // Bad knobs are errors naming the variable.
    let source = Env(vec![("PERF_SLURM_SEGMENT", "maybe")]);
    let err = SiteOptions::resolve(&config, "t", None, &source).unwrap_err();
    assert!(err.to_string().contains("PERF_SLURM_SEGMENT"), "{err}");
    let source = Env(vec![("PERF_SLURM_EXTRA_ARGS", "--comment='open")]);
    let err = SiteOptions::resolve(&config, "t", None, &source).unwrap_err();
    assert!(err.to_string().contains("unbalanced"), "{err}");
    // A test list's TIMEOUT gives --time when the YAML has none.
    let sim = load_perf_config(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("test_configs/disagg/perf/sim-e2e-standard-random_ctx2_gen2.yaml"),
    )
    .unwrap();
    let mut no_time = sim.clone();
    no_time.slurm.job_time = None;
    let site = SiteOptions::resolve(&no_time, "t", Some(90 * 60), &Env(vec![])).unwrap();
    assert_eq!(site.time.unwrap().value, "90");
}

// ------------------------------------------------------------------ checked-in examples

/// The two upstream-sized examples in `docs/examples/`, regenerated with placeholder site
/// values. `PERFSANITY_BLESS=1` rewrites them.
#[test]
fn docs_examples_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The WideEP config runs the standard client on a dataset, which must exist where the
    // script is generated: a stand-in file under a temporary models root, shown as
    // /shared/models in the example.
    let models = tempfile::tempdir().unwrap();
    let dataset = models
        .path()
        .join("datasets/perf-ci/deepseek_r1-1k1k-16384-ratio-1_for_serve.json");
    std::fs::create_dir_all(dataset.parent().unwrap()).unwrap();
    // The model directory both configs name (trtllm toolchain: a missing model is an error).
    std::fs::create_dir_all(models.path().join("DeepSeek-R1/DeepSeek-R1-0528-FP4-v2")).unwrap();
    // One valid trtllm_custom line: plans check a dataset file's leading lines.
    std::fs::write(
        &dataset,
        r#"{"input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}], "max_tokens": 8}}"#.to_string() + "\n",
    )
    .unwrap();
    for (trial, file) in [
        (
            "disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL",
            "slurm-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL.sh",
        ),
        (
            "disagg_upload-deepseek-r1-fp4_1k1k_ctx2_dep4_gen1_dep32_bs64_eplb288_mtp0-NIXL",
            "slurm-deepseek-r1-fp4_1k1k_ctx2_dep4_gen1_dep32_bs64_eplb288_mtp0-NIXL.sh",
        ),
    ] {
        let out = perfsanity_cmd()
            .args(["slurm", "script", trial])
            .current_dir(root)
            .envs(EXAMPLE_ENV.iter().copied())
            .env("LLM_MODELS_ROOT", models.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)
            .unwrap()
            .replace(&root.display().to_string(), "/path/to/perfsanity")
            .replace(&models.path().display().to_string(), "/shared/models");
        bash_n(&text, &std::env::temp_dir());
        let path = root.join("docs/examples").join(file);
        if std::env::var("PERFSANITY_BLESS").as_deref() == Ok("1") {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == text,
            "{} is out of date; regenerate with PERFSANITY_BLESS=1 cargo test --test slurm_script \
             docs_examples",
            path.display()
        );
    }
}

/// Site values of the examples (documented in docs/SLURM.md).
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("PERF_TOOLCHAIN", "trtllm"),
    ("PERFSANITY_BIN", "/shared/perfsanity/bin/perfsanity"),
    ("PERF_OUTPUT_DIR", "/shared/perf-output"),
    ("PERF_DB", "/shared/perf-results.sqlite"),
    ("PERF_SIM_DATASETS", "/shared/perf-datasets"),
    ("PERF_SLURM_PARTITION", "<partition>"),
    ("PERF_SLURM_ACCOUNT", "<account>"),
    ("PERF_SLURM_CONTAINER_IMAGE", "<container_image>"),
    (
        "PERF_SLURM_CONTAINER_MOUNTS",
        "/shared:/shared,/path/to/perfsanity:/path/to/perfsanity",
    ),
];
