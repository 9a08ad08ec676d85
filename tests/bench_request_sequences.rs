//! `perfsanity bench` draws exactly the requests the Python clients draw: per-request input and
//! output lengths and prompt token ids compared with sequences recorded from the real clients
//! (`tests/fixtures/request_sequences/record.py` says how they were recorded and how to
//! re-record them).

use std::path::Path;

use perfsanity::tools::bench::dataset::{
    Prompt, RandomSpec, SampleRequest, load_custom, random_sa, random_standard,
};
use perfsanity::util::tokenizer::Tokenizer;
use serde_json::Value;

fn fixtures() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/request_sequences/sequences.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn spec(case: &Value) -> RandomSpec {
    RandomSpec {
        num_prompts: case["num_prompts"].as_u64().unwrap() as usize,
        input_len: case["input_len"].as_u64().unwrap() as u32,
        output_len: case["output_len"].as_u64().unwrap() as u32,
        range_ratio: case["range_ratio"].as_f64().unwrap(),
        prefix_len: case["prefix_len"].as_u64().unwrap() as u32,
        seed: case["seed"].as_u64().unwrap(),
    }
}

fn ids(req: &SampleRequest, t: &Tokenizer) -> Vec<u32> {
    match &req.prompt {
        Prompt::Ids(ids) => ids.clone(),
        Prompt::Text(text) => t.encode(text, false),
    }
}

/// Compares one random case: lengths, then the prompt (prefix + consecutive ids from the
/// recorded first id).
fn compare(label: &str, case: &Value, got: &[SampleRequest], t: &Tokenizer) -> (u64, u64) {
    let vocab = u64::from(t.vocab_size());
    let prefix: Vec<u32> = case["prefix_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let want = case["requests"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{label}: request count");
    let (mut total_in, mut total_out) = (0, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let prompt_len = w[0].as_u64().unwrap();
        let output_len = w[1].as_u64().unwrap();
        assert_eq!(
            (g.prompt_len, u64::from(g.output_len)),
            (prompt_len, output_len),
            "{label}: request {i} lengths"
        );
        let mut expected = prefix.clone();
        if let Some(first) = w[2].as_u64() {
            let inner = prompt_len - prefix.len() as u64;
            expected.extend((0..inner).map(|j| ((first + j) % vocab) as u32));
        }
        assert_eq!(ids(g, t), expected, "{label}: request {i} prompt ids");
        total_in += prompt_len;
        total_out += output_len;
    }
    (total_in, total_out)
}

#[test]
fn sa_flavor_matches_the_sa_client() {
    let t = Tokenizer::synthetic();
    let all = fixtures();
    let cases = all["sa"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for (k, case) in cases.iter().enumerate() {
        let got = random_sa(&spec(case), &t).unwrap();
        compare(&format!("sa case {k}"), case, &got, &t);
    }
}

#[test]
fn standard_random_ids_match_tensorrt_llm() {
    let t = Tokenizer::synthetic();
    let all = fixtures();
    for (k, case) in all["standard"].as_array().unwrap().iter().enumerate() {
        let s = spec(case);
        let got = random_standard(&s, &t, true).unwrap();
        compare(&format!("standard case {k}"), case, &got, &t);
        // Text prompts (no --tokenize-on-client) carry the same ids.
        let text = random_standard(&s, &t, false).unwrap();
        compare(&format!("standard text case {k}"), case, &text, &t);
    }
}

/// The recorder's custom dataset: line k has (k % 7) + 1 words `t<10k + w>`, max_tokens k + 1.
fn custom_file(dir: &Path, lines: u64) -> std::path::PathBuf {
    let text: String = (0..lines)
        .map(|k| {
            let words: Vec<String> = (0..(k % 7) + 1)
                .map(|w| format!("t{}", k * 10 + w))
                .collect();
            format!(
                "{}\n",
                serde_json::json!({"input": {"messages": [
                    {"role": "system", "content": ""},
                    {"role": "user", "content": words.join(" ")}
                ], "max_tokens": k + 1}})
            )
        })
        .collect();
    let path = dir.join(format!("custom-{lines}.jsonl"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn trtllm_custom_subset_matches_tensorrt_llm() {
    let t = Tokenizer::synthetic();
    let dir = tempfile::tempdir().unwrap();
    let all = fixtures();
    for (k, case) in all["custom"].as_array().unwrap().iter().enumerate() {
        let path = custom_file(dir.path(), case["lines"].as_u64().unwrap());
        let n = case["num_prompts"].as_u64().unwrap() as usize;
        let got = load_custom(&path, n, case["seed"].as_u64().unwrap(), &t).unwrap();
        let want = case["requests"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "custom case {k}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let line = w[0].as_u64().unwrap();
            let Prompt::Text(text) = &g.prompt else {
                panic!("custom prompts are text")
            };
            assert_eq!(
                t.encode(text, false).first().copied(),
                Some((line * 10) as u32),
                "custom case {k}: request {i} is line {line}"
            );
            assert_eq!(g.prompt_len, w[1].as_u64().unwrap(), "custom case {k}: {i}");
            assert_eq!(u64::from(g.output_len), w[2].as_u64().unwrap());
        }
    }
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: perfsanity::tools::bench::BenchArgs,
}

/// The whole SA client run of sim-e2e-nvsa_ctx1_gen2.yaml's first client (concurrency 2, two
/// rounds) sends the recorded requests: its totals are the recorded client's.
#[test]
fn sa_client_run_totals_are_the_recorded_clients() {
    use clap::Parser;
    use perfsanity::tools::bench::execute;
    use perfsanity::tools::bench::scripted_server::{Script, ScriptedServer};
    let all = fixtures();
    let case = all["sa"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["input_len"] == 48 && c["num_prompts"] == 4)
        .expect("the sim-e2e-nvsa case is recorded");
    let want = case["requests"].as_array().unwrap();
    let sum = |k: usize| want.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    let srv = ScriptedServer::start(
        Script {
            ttft: std::time::Duration::from_millis(1),
            gaps: vec![std::time::Duration::from_millis(1)],
            ..Script::default()
        },
        0,
        0,
    )
    .unwrap();
    let port = srv.addr.port().to_string();
    let argv = [
        "bench",
        "--flavor",
        "sa",
        "--tokenizer-fallback",
        "builtin",
        "--model",
        "/nonexistent/model",
        "--port",
        &port,
        "--disable-tqdm",
        "--dataset-name",
        "random",
        "--num-prompts",
        "4",
        "--max-concurrency",
        "2",
        "--random-input-len",
        "48",
        "--random-output-len",
        "24",
        "--random-range-ratio",
        "0.5",
        "--ignore-eos",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
    ];
    let opts = Cli::try_parse_from(argv).unwrap().args.resolve().unwrap();
    let mut out = Vec::new();
    let rep = execute(&opts, &mut out).unwrap();
    let s = &rep.summary;
    assert_eq!(
        (s.completed, s.total_input, s.total_output),
        (4, sum(0), sum(1)),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
