//! End-to-end runs of the native client against the in-process scripted server.
//!
//! The server records when it handed each chunk to HTTP on the same monotonic clock the client
//! stamps socket reads with, so every client figure is checked against what really happened:
//! causality (never earlier than the server sent), delivery delay, and the upstream metric
//! values. Tolerances are loose enough for a busy 2-core machine; the exactness of the formulas
//! themselves is covered by unit tests with hand-computed cases.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use perfsanity::measure::{OutputProblem, check_client_output, parse_client_output};
use perfsanity::tools::bench::dataset::{Prompt, RandomSpec, random_standard};
use perfsanity::tools::bench::scripted_server::{
    FailMode, Script, ScriptedServer, write_wordlevel_tokenizer,
};
use perfsanity::tools::bench::{BenchArgs, BenchError, BenchReport, execute};
use perfsanity::util::stats;
use perfsanity::util::tokenizer::Tokenizer;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1e3)
}

fn server(script: Script) -> ScriptedServer {
    ScriptedServer::start(script, 0, 0).expect("server starts")
}

fn try_run(srv: &ScriptedServer, extra: &[&str]) -> (String, Result<BenchReport, BenchError>) {
    let port = srv.addr.port().to_string();
    let mut argv = vec![
        "bench",
        "--tokenizer-fallback",
        "builtin",
        "--model",
        "/nonexistent/model",
        "--port",
        &port,
        "--disable-tqdm",
        "--ignore-eos",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
    ];
    let has_dataset = extra.contains(&"--dataset-name");
    if !has_dataset {
        argv.extend([
            "--dataset-name",
            "random",
            "--random-ids",
            "--tokenize-on-client",
        ]);
        argv.extend(["--random-input-len", "16"]);
    }
    argv.extend_from_slice(extra);
    let opts = Cli::try_parse_from(argv).unwrap().args.resolve().unwrap();
    let mut out = Vec::new();
    let res = execute(&opts, &mut out);
    (String::from_utf8(out).unwrap(), res)
}

fn run(srv: &ScriptedServer, extra: &[&str]) -> (String, BenchReport) {
    let (out, res) = try_run(srv, extra);
    (out, res.expect("run succeeds"))
}

#[test]
fn metrics_match_what_the_server_did() {
    let srv = server(Script {
        ttft: ms(20.0),
        gaps: vec![ms(3.0), ms(6.0), ms(9.0)],
        ..Script::default()
    });
    let (out, rep) = run(
        &srv,
        &[
            "--random-output-len",
            "30",
            "--num-prompts",
            "24",
            "--max-concurrency",
            "8",
            "--no-test-input",
        ],
    );
    let s = &rep.summary;
    assert_eq!(
        (s.completed, s.failed, s.total_output),
        (24, 0, 24 * 30),
        "{out}"
    );

    // Match client requests to server records by their first prompt token.
    let spec = RandomSpec {
        num_prompts: 24,
        input_len: 16,
        output_len: 30,
        range_ratio: 0.0,
        prefix_len: 0,
        seed: 0,
    };
    let prompts = random_standard(&spec, &Tokenizer::synthetic(), true).unwrap();
    let served = srv.state.served();
    assert_eq!(served.len(), 24);
    let abs = |ns: u64| rep.epoch + Duration::from_nanos(ns);
    let (mut delivery_ms, mut client_itl, mut server_gap, mut ttft_excess) =
        (vec![], vec![], vec![], vec![]);
    for (raw, outcome) in rep.raw.iter().zip(&rep.outcomes) {
        let Prompt::Ids(ids) = &prompts[raw.index].prompt else {
            unreachable!()
        };
        let truth = served
            .iter()
            .filter(|t| t.prompt_head == Some(u64::from(ids[0])))
            // Prompts may share their first token: the one that arrived right after the send.
            .min_by_key(|t| {
                let sent = abs(raw.sent_ns);
                if t.arrival >= sent {
                    t.arrival.duration_since(sent)
                } else {
                    Duration::MAX
                }
            })
            .expect("server saw this request");
        let chunks: Vec<Instant> = raw
            .events
            .iter()
            .filter(|e| e.has_choices)
            .map(|e| abs(e.t_ns))
            .collect();
        assert_eq!(chunks.len(), truth.chunk_sent.len());
        for (c, t) in chunks.iter().zip(&truth.chunk_sent) {
            assert!(c >= t, "a chunk was stamped before the server sent it");
            delivery_ms.push(c.duration_since(*t).as_secs_f64() * 1e3);
        }
        client_itl.extend_from_slice(&outcome.itl);
        server_gap.extend(
            truth
                .chunk_sent
                .windows(2)
                .map(|w| w[1].duration_since(w[0]).as_secs_f64()),
        );
        let server_ttft = truth.chunk_sent[0]
            .duration_since(truth.arrival)
            .as_secs_f64();
        assert!(
            outcome.ttft >= server_ttft,
            "client TTFT below the server's"
        );
        ttft_excess.push((outcome.ttft - server_ttft) * 1e3);
    }
    assert!(
        stats::median(&delivery_ms) < 1.0,
        "median delivery {delivery_ms:?}"
    );
    let (c, t) = (stats::mean(&client_itl), stats::mean(&server_gap));
    assert!(((c - t) / t).abs() < 0.01, "mean ITL {c} vs server {t}");
    assert!((s.itl.mean / 1e3 - t).abs() / t < 0.01);
    // The tail is exact unless the client fell so far behind that reads merged chunks — and
    // then the run must say so.
    let p99_truth = stats::percentile(&server_gap, 99.0) * 1e3;
    assert!(
        (s.itl.percentiles[0].1 - p99_truth).abs() < 1.5 || !rep.health.over_budget.is_empty(),
        "p99 ITL off without a warning: {out}"
    );
    assert!(
        stats::mean(&ttft_excess) < 5.0,
        "TTFT excess {ttft_excess:?}"
    );
    // The server kept to its script: gaps average (3+6+9)/3 ms.
    assert!((t * 1e3 - 6.0).abs() < 0.3, "server mean gap {t}");
    // Closed loop: 8 slots, all used.
    assert_eq!(rep.health.slots, 8);
    assert!(rep.health.achieved_concurrency_peak <= 8);
    assert!(rep.health.achieved_concurrency_mean > 4.0);
    assert_eq!(
        rep.health.connections_opened, 8,
        "one keep-alive connection per slot"
    );
    assert!(
        rep.health.kernel_timestamps,
        "chunks carry kernel receive times"
    );
    assert_eq!(rep.health.unstamped_reads, 0);
    assert!(check_client_output(&out).is_ok());
}

#[test]
fn server_errors_are_counted_and_marked() {
    let srv = server(Script {
        ttft: ms(1.0),
        gaps: vec![ms(1.0)],
        fail_every: Some(4),
        fail_mode: FailMode::Status(500),
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (out, rep) = run(
        &srv,
        &[
            "--random-output-len",
            "5",
            "--num-prompts",
            "20",
            "--max-concurrency",
            "4",
            "--no-test-input",
            "--save-result",
            "--result-dir",
            d,
            "--result-filename",
            "r.json",
        ],
    );
    assert_eq!((rep.summary.completed, rep.summary.failed), (15, 5));
    assert!(out.contains(
        "Error type: HTTPStatus, Count: 5 requests\nFirst error: HTTPStatus: Internal Server Error"
    ));
    assert!(out.contains("\nTotal failed requests: 5\n"));
    assert!(out.contains("=======================!FAILED REQUESTS!=======================\nTotal failed requests: 5\n=====================!CHECK LOG FOR ERRORS!====================\n"));
    assert_eq!(
        check_client_output(&out),
        Err(OutputProblem::FailedRequests(5))
    );
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(j["completed"], 15);
    assert_eq!(j["perfsanity_client"]["failed_requests"], 5);
}

#[test]
fn dropped_and_empty_streams_fail() {
    let drop_srv = server(Script {
        ttft: ms(1.0),
        gaps: vec![ms(1.0)],
        fail_every: Some(3),
        fail_mode: FailMode::Disconnect { after_chunks: 2 },
        ..Script::default()
    });
    let (_, rep) = run(
        &drop_srv,
        &[
            "--random-output-len",
            "6",
            "--num-prompts",
            "9",
            "--max-concurrency",
            "3",
            "--no-test-input",
        ],
    );
    assert_eq!(rep.summary.failed, 3);
    assert_eq!(rep.summary.errors.get("BodyError"), Some(&3));

    let empty_srv = server(Script {
        ttft: ms(1.0),
        fail_every: Some(2),
        fail_mode: FailMode::NoChunks,
        ..Script::default()
    });
    let (_, rep) = run(
        &empty_srv,
        &[
            "--random-output-len",
            "4",
            "--num-prompts",
            "6",
            "--max-concurrency",
            "2",
            "--no-test-input",
        ],
    );
    assert_eq!(rep.summary.errors.get("NoValidChunk"), Some(&3));
    assert!(
        rep.outcomes
            .iter()
            .any(|o| o.error.starts_with("Never received a valid chunk"))
    );
}

#[test]
fn failing_test_request_aborts_with_upstreams_message() {
    let srv = server(Script {
        fail_every: Some(1),
        ..Script::default()
    });
    let (_, res) = try_run(&srv, &["--random-output-len", "4", "--num-prompts", "4"]);
    let err = res.unwrap_err().to_string();
    // Upstream's message, then the server's own words (our addition).
    assert!(
        err.starts_with(
            "Initial test run failed - Please make sure benchmark arguments are correctly \
             specified. Error: Internal Server Error"
        ),
        "{err}"
    );
    assert_eq!(
        srv.state.summary().requests,
        1,
        "nothing sent after the test request"
    );
}

#[test]
fn printed_metrics_equal_the_saved_json() {
    let srv = server(Script {
        ttft: ms(3.0),
        gaps: vec![ms(1.0), ms(2.0)],
        tokens_per_chunk: 2,
        avg_decoded_tokens_per_iter: Some(2.5),
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (out, _) = run(
        &srv,
        &[
            "--random-output-len",
            "12",
            "--num-prompts",
            "12",
            "--max-concurrency",
            "4",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            d,
            "--result-filename",
            "r.json",
        ],
    );
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let m = parse_client_output(&out, false);
    assert!(m.missing_base_metrics().is_empty());
    let pairs = [
        ("seq_throughput", "request_throughput"),
        ("token_throughput", "output_throughput"),
        ("total_token_throughput", "total_token_throughput"),
        ("user_throughput", "user_throughput"),
    ];
    let mut all: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    for metric in ["ttft", "itl", "tpot", "e2el"] {
        for stat in ["mean", "median", "p99"] {
            all.push((format!("{stat}_{metric}"), format!("{stat}_{metric}_ms")));
        }
    }
    for (printed, key) in all {
        let json = j[&key].as_f64().unwrap_or_else(|| panic!("{key} in JSON"));
        let shown: f64 = format!("{json:.2}").parse().unwrap();
        assert_eq!(m.value(&printed), Some(shown), "{printed} vs {key}");
    }
    assert_eq!(m.value("al"), Some(2.5));
    assert_eq!(j["avg_decoded_tokens_per_iter"]["mean"], 2.5);
    assert_eq!(j["request_rate"], "inf");
    assert!(j.get("request_goodput:").unwrap().is_null());

    // Raw events reproduce the ITLs and the output lengths offline.
    let reqs = j["perfsanity_client"]["requests"].as_array().unwrap();
    let mut itls = vec![];
    for (r, lens) in reqs.iter().zip(j["output_lens"].as_array().unwrap()) {
        let chunks: Vec<&Value> = r["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["choices"] == true)
            .collect();
        let t: Vec<f64> = chunks.iter().map(|c| c["t_ms"].as_f64().unwrap()).collect();
        itls.extend(t.windows(2).map(|w| w[1] - w[0]));
        let tokens: u64 = chunks.iter().map(|c| c["tokens"].as_u64().unwrap()).sum();
        assert_eq!(tokens, lens.as_u64().unwrap());
    }
    assert!((stats::mean(&itls) - j["mean_itl_ms"].as_f64().unwrap()).abs() < 1e-3);
    assert_eq!(j["itls"].as_array().unwrap().len(), 12);
    assert_eq!(j["e2els"].as_array().unwrap().len(), 12);
}

#[test]
fn sa_flavor_prints_and_saves_like_the_sa_client() {
    let srv = server(Script {
        ttft: ms(2.0),
        gaps: vec![ms(1.0)],
        fail_every: Some(5),
        ..Script::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (out, rep) = run(
        &srv,
        &[
            "--flavor",
            "sa",
            "--dataset-name",
            "random",
            "--random-input-len",
            "20",
            "--random-output-len",
            "8",
            "--random-range-ratio",
            "0.5",
            "--num-prompts",
            "8",
            "--max-concurrency",
            "2",
            "--save-result",
            "--result-dir",
            d,
        ],
    );
    // The SA client always sends a test request first: arrivals 1..=9, failure at 5.
    assert_eq!(srv.state.summary().requests, 9);
    assert_eq!(rep.summary.failed, 1);
    assert!(out.starts_with("Namespace(") && out.contains("num_prompts=8"));
    assert!(!out.contains("Failed requests:") && !out.contains("User throughput"));
    assert!(!out.contains("Std Dev"));
    assert_eq!(
        check_client_output(&out).unwrap_err().to_string(),
        "SA benchmark: 1 of 8 requests failed (7 successful)."
    );
    assert!(
        parse_client_output(&out, true)
            .missing_base_metrics()
            .is_empty()
    );
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("vllm-infqps-concurrency2-model-") && n.ends_with(".json"))
        .expect("default SA result name");
    let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
    let j: Value = serde_json::from_str(&text).unwrap();
    let ordered: indexmap::IndexMap<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(j["best_of"], 1);
    assert!(j.get("user_throughput").is_none() && j.get("e2els").is_none());
    assert_eq!(j["itls"].as_array().unwrap().len(), 8);
    let keys: Vec<&String> = ordered.keys().collect();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(pos("max_concurrency") < pos("duration") && pos("mean_ttft_ms") < pos("std_ttft_ms"));
    // SA lengths: [⌊20·0.5⌋, 20] in, [4, 8] out.
    let lens = j["input_lens"].as_array().unwrap();
    assert!(
        lens.iter()
            .all(|l| (10..=20).contains(&l.as_u64().unwrap()))
    );
}

#[test]
fn custom_dataset_chat_and_non_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let gen_args = perfsanity::tools::bench::DatasetGenArgs {
        num_prompts: 6,
        input_len: 10,
        output_len: 7,
        range_ratio: 0.5,
        tokenizer: "builtin".into(),
        model_name: Some("m".into()),
        seed: 1,
        output_dir: dir.path().to_path_buf(),
    };
    let path = perfsanity::tools::bench::dataset_gen::generate(&gen_args).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let expected_out: u64 = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["input"]["max_tokens"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let srv = server(Script {
        ttft: ms(1.0),
        gaps: vec![ms(1.0)],
        ..Script::default()
    });
    let p = path.to_str().unwrap();
    let base = [
        "--dataset-name",
        "trtllm_custom",
        "--dataset-path",
        p,
        "--num-prompts",
        "100",
    ];
    let (out, rep) = run(&srv, &base);
    assert!(out.contains("CustomDataset.load_data() started..."));
    assert_eq!(rep.summary.completed, 6, "no oversampling");
    assert_eq!(
        rep.summary.total_output, expected_out,
        "max_tokens honoured"
    );

    let mut chat = base.to_vec();
    chat.extend(["--backend", "openai-chat"]);
    let (_, rep) = run(&srv, &chat);
    assert_eq!(
        (rep.summary.completed, rep.summary.total_output),
        (6, expected_out)
    );

    let mut non_streaming = base.to_vec();
    non_streaming.push("--non-streaming");
    let (out, rep) = run(&srv, &non_streaming);
    assert_eq!(rep.summary.total_output, expected_out);
    assert!(out.contains("Mean TTFT (ms):                          -1000.00  \n"));
}

#[test]
fn finite_rate_real_tokenizer_and_missing_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    write_wordlevel_tokenizer(dir.path(), 1000).unwrap();
    let srv = server(Script {
        ttft: ms(1.0),
        gaps: vec![ms(1.0)],
        ..Script::default()
    });
    let port = srv.addr.port().to_string();
    let argv = [
        "bench",
        "--model",
        "m",
        "--tokenizer",
        dir.path().to_str().unwrap(),
        "--port",
        &port,
        "--dataset-name",
        "random",
        "--random-ids",
        "--random-input-len",
        "12",
        "--random-output-len",
        "3",
        "--num-prompts",
        "10",
        "--request-rate",
        "400",
        "--max-concurrency",
        "4",
        "--disable-tqdm",
    ];
    let opts = Cli::try_parse_from(argv).unwrap().args.resolve().unwrap();
    let mut out = Vec::new();
    let rep = execute(&opts, &mut out).unwrap();
    assert_eq!(rep.summary.completed, 10);
    assert_eq!(rep.summary.total_input, 120);
    assert!(
        rep.health.dispatch_late_ms.is_some(),
        "finite rate: dispatch lateness recorded"
    );
    assert!(
        rep.raw
            .windows(2)
            .all(|w| w[0].scheduled_ns <= w[1].scheduled_ns)
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Traffic request rate: 400.0\n"));

    let missing = Cli::try_parse_from([
        "bench",
        "--model",
        "/no/such/dir",
        "--dataset-name",
        "random",
        "--random-ids",
    ])
    .unwrap()
    .args
    .resolve()
    .unwrap();
    let err = execute(&missing, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("no tokenizer.json in /no/such/dir")
            && err.contains("--tokenizer-fallback builtin"),
        "{err}"
    );
    assert!(Path::new(dir.path()).join("tokenizer.json").exists());
}
