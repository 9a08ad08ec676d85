//! The printed result block against golden files, and upstream's regexes against our output.
//!
//! The golden files were produced by `tests/golden/bench_block_oracle.py`, which formats the
//! same numbers with Python's own `str.format` specs that upstream uses, so byte-equality here
//! means byte-equality with upstream's printing (including `.2f` half-even rounding, centred
//! headers and trailing padding).

use clap::Parser;
use perfsanity::measure::{OutputProblem, check_client_output, parse_client_output};
use perfsanity::tools::bench::BenchArgs;
use perfsanity::tools::bench::metrics::{Stat, Summary};
use perfsanity::tools::bench::report::{namespace_line, result_block};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn opts(extra: &[&str]) -> perfsanity::tools::bench::BenchOptions {
    let mut argv = vec![
        "bench",
        "--model",
        "/models/m",
        "--dataset-name",
        "random",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "99,99.9",
        "--num-prompts",
        "10",
    ];
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).args.resolve().unwrap()
}

fn stat(mean: f64, median: f64, std: f64, p99: f64, p999: f64) -> Stat {
    Stat {
        mean,
        median,
        std,
        percentiles: vec![(99.0, p99), (99.9, p999)],
        min: 0.0,
        max: 0.0,
    }
}

fn summary(failed: usize) -> Summary {
    Summary {
        total_requests: 10,
        completed: 10 - failed,
        failed,
        duration: 12.345,
        total_input: 9000,
        total_output: 8765,
        request_throughput: 0.7290400972,
        request_goodput: None,
        output_throughput: 710.004,
        total_token_throughput: 1439.0,
        user_throughput: 95.125,
        ttft: stat(50.126, 50.0, 1.005, 55.555, 56.0),
        tpot: stat(10.0, 10.0, 0.0, 10.5, 10.6),
        itl: stat(10.004, 9.999, 0.3, 12.0, 13.0),
        e2el: stat(1040.0, 1039.5, 2.5, 1050.0, 1051.0),
        avg_decoded: None,
        output_lens: vec![],
        errors: Default::default(),
        first_error: None,
    }
}

#[test]
fn standard_block_is_byte_identical_to_upstream_formatting() {
    let o = opts(&["--random-ids", "--goodput", "ttft:100"]);
    let mut s = summary(1);
    s.request_goodput = Some(0.405);
    s.avg_decoded = Some(Stat {
        mean: 2.5,
        median: 2.4,
        std: 0.25,
        percentiles: vec![(99.0, 2.99)],
        min: 2.0,
        max: 3.0,
    });
    let golden = include_str!("golden/bench_block_standard.txt");
    assert_eq!(result_block(&o, &s), golden);
}

#[test]
fn sa_block_is_byte_identical_to_the_sa_client() {
    let o = opts(&["--flavor", "sa"]);
    let golden = include_str!("golden/bench_block_sa.txt");
    assert_eq!(result_block(&o, &summary(0)), golden);
}

#[test]
fn upstream_regexes_read_the_block_back() {
    let o = opts(&["--random-ids"]);
    let text = result_block(&o, &summary(0));
    let m = parse_client_output(&text, false);
    assert!(m.missing_base_metrics().is_empty(), "{m}");
    assert_eq!(m.value("seq_throughput"), Some(0.73));
    assert_eq!(m.value("user_throughput"), Some(95.12));
    assert_eq!(m.value("mean_ttft"), Some(50.13));
    assert_eq!(m.value("p99_ttft"), Some(55.55));
    assert_eq!(m.value("median_e2el"), Some(1039.5));
    assert_eq!(check_client_output(&text), Ok(()));

    let failed = result_block(&o, &summary(2));
    assert_eq!(
        check_client_output(&failed),
        Err(OutputProblem::FailedRequests(2))
    );
}

#[test]
fn sa_block_with_namespace_line_flags_missing_requests() {
    let o = opts(&["--flavor", "sa"]);
    let text = format!("{}{}", namespace_line(&o), result_block(&o, &summary(3)));
    assert!(text.contains("num_prompts=10"));
    assert!(!text.contains("Failed requests:"));
    assert_eq!(
        check_client_output(&text).unwrap_err().to_string(),
        "SA benchmark: 3 of 10 requests failed (7 successful)."
    );
    let m = parse_client_output(&text, true);
    assert_eq!(m.get("user_throughput"), Some(None));
    assert!(m.missing_base_metrics().is_empty());
}

#[test]
fn sa_namespace_line_equals_the_real_sa_clients() {
    // `tests/golden/sa_namespace_line.txt` is the first line the SA client
    // (kedarpotdar-nv/bench_serving @ f3ea022a) printed for this very command.
    let argv = [
        "bench",
        "--flavor",
        "sa",
        "--model",
        "/tmp/tok",
        "--dataset-name",
        "random",
        "--random-input-len",
        "32",
        "--random-output-len",
        "20",
        "--num-prompts",
        "8",
        "--max-concurrency",
        "4",
        "--ignore-eos",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--save-result",
        "--port",
        "18140",
        "--disable-tqdm",
    ];
    let o = Cli::parse_from(argv).args.resolve().unwrap();
    assert_eq!(
        namespace_line(&o),
        include_str!("golden/sa_namespace_line.txt")
    );
}

#[test]
fn standard_namespace_line_carries_the_plan_values() {
    let o = opts(&["--random-ids", "--max-concurrency", "4"]);
    let line = namespace_line(&o);
    assert!(line.starts_with("Namespace(backend='openai', base_url=None, host='127.0.0.1', "));
    assert!(line.contains(" max_concurrency=4, "));
    assert!(line.contains(" num_prompts=10, "));
    assert!(line.contains(" request_rate=inf, "));
    assert!(line.contains(" random_ids=True, "));
    assert!(line.ends_with(")\n"));
}
