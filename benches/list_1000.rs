//! `cargo bench --bench list_1000`: wall time of `perfsanity list` over a generated corpus of
//! 1,000 configs (copies of our own configs under distinct stems), next to the time Python's
//! PyYAML needs just to load the same files. Prints the figures recorded in docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIGS: usize = 1000;
const RUNS: usize = 15;

fn corpus(dir: &Path) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_configs");
    let mut sources: Vec<PathBuf> = ["disagg/perf", "wideep/perf"]
        .iter()
        .flat_map(|f| {
            std::fs::read_dir(root.join(f))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    sources.sort();
    let texts: Vec<String> = sources
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut bytes = 0;
    for i in 0..CONFIGS {
        let text = &texts[i % texts.len()];
        bytes += text.len();
        std::fs::write(dir.join(format!("corpus-{i:04}_ctx1_gen1.yaml")), text).unwrap();
    }
    bytes
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(mut cmd: impl FnMut() -> Command) -> (Duration, Duration) {
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = cmd().output().expect("command runs");
        samples.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let min = *samples.iter().min().unwrap();
    (median(samples), min)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list; nothing to list.
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = corpus(dir.path());
    println!(
        "corpus: {CONFIGS} configs, {:.1} MiB, in {}",
        bytes as f64 / 1048576.0,
        dir.path().display()
    );
    let exe = env!("CARGO_BIN_EXE_perfsanity");
    let target = tempfile::tempdir().unwrap();
    let list = |extra: &[&str]| {
        let mut c = Command::new(exe);
        c.arg("list")
            .args(extra)
            .env("PERF_CONFIG_DIRS", dir.path())
            .env("PERF_TOOLCHAIN", "sim")
            .env("CARGO_TARGET_DIR", target.path())
            .env_remove("PERF_TESTLIST");
        c
    };
    let (med, min) = time(|| list(&["--no-cache"]));
    println!(
        "perfsanity list --no-cache ({CONFIGS} configs parsed, 2,000 trials): median {:.1} ms, min {:.1} ms over {RUNS} runs",
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
    let _ = list(&[]).output(); // fills the summary cache
    let (med, min) = time(|| list(&[]));
    println!(
        "perfsanity list (unchanged tree, summaries cached): median {:.1} ms, min {:.1} ms over {RUNS} runs",
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
    let script = "import glob,sys,yaml\nfor p in sorted(glob.glob(sys.argv[1] + '/*.yaml')):\n    yaml.safe_load(open(p))\n";
    let has_pyyaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_pyyaml {
        let (med, min) = time(|| {
            let mut c = Command::new("python3");
            c.args(["-c", script, &dir.path().display().to_string()]);
            c
        });
        let (cmed, _) = time(|| {
            let mut c = Command::new("python3");
            c.args(["-c", "import glob,sys,yaml\ntry:\n    from yaml import CSafeLoader as L\nexcept ImportError:\n    sys.exit(3)\nfor p in sorted(glob.glob(sys.argv[1] + '/*.yaml')):\n    yaml.load(open(p), Loader=L)\n", &dir.path().display().to_string()]);
            c
        });
        println!(
            "python3 + PyYAML safe_load of the same files: median {:.1} ms, min {:.1} ms over {RUNS} runs",
            med.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3
        );
        println!(
            "python3 + PyYAML CSafeLoader (libyaml): median {:.1} ms",
            cmed.as_secs_f64() * 1e3
        );
    } else {
        println!("python3 with PyYAML not found: comparison skipped");
    }
}
