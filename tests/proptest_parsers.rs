//! Property tests for the four parsers that read what users and servers write: the config
//! parser (and the YAML loader under it), the test-list parser, the `trtllm_custom` dataset
//! parser and the bench client's SSE parser. Properties: never panic on any input; errors carry
//! a position inside the input; nothing is dropped silently; round trips hold where they exist.
//!
//! The case count is bounded so `cargo test` (and `.ci/run`) stays fast: 64 cases per property
//! unless `PROPTEST_CASES` asks for more (e.g. `PROPTEST_CASES=5000` for a local soak).

use std::path::Path;

use proptest::prelude::*;

use perfsanity::catalog::testlist::{parse_test_db, parse_txt};
use perfsanity::config::parse_perf_config;
use perfsanity::tools::bench::record::RawRequest;
use perfsanity::tools::bench::sse::SseParser;
use perfsanity::util::custom_dataset::parse_custom;
use perfsanity::util::yaml::{KeyOrder, Mapping, Node, Value, load_str, to_yaml_string};

/// Cases per property: `PROPTEST_CASES`, else 64; failures are not persisted to files.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c.failure_persistence = None;
    c
}

const GOOD: &str = "metadata:\n  model_name: tiny\nbenchmark:\n  mode: e2e\n  concurrency_list: '1 2'\n  \
                    multi_round: 2\n  input_length: 64\n  output_length: 16\nhardware:\n  \
                    gpus_per_node: 4\n  num_ctx_servers: 1\n  num_gen_servers: 2\nworker_config:\n  \
                    ctx:\n    tensor_parallel_size: 2\n  gen:\n    tensor_parallel_size: 4\n    \
                    moe_expert_parallel_size: 4\n";

/// Lines as YAML counts them: `\r\n`, a lone `\r` and `\n` each end one (YAML 1.2 §5.4), so
/// `"a\rb"` is two lines and an error on the second is inside the file.
fn line_count(text: &str) -> usize {
    let breaks = text.replace("\r\n", "\n").matches(['\n', '\r']).count();
    (breaks + 1).max(1)
}

/// Text that looks like YAML: keys, indentation, flow brackets, anchors, quotes, numbers.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(", ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("#".to_string()),
        Just("---\n".to_string()),
        Just("benchmark".to_string()),
        Just("hardware".to_string()),
        Just("worker_config".to_string()),
        Just("tensor_parallel_size".to_string()),
        Just("concurrency_list".to_string()),
        "-?[0-9]{1,22}",
        "[a-z_]{1,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

/// A small YAML tree with unambiguous scalars (ints, bools, plain words, null).
fn tree() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        "[a-z][a-z0-9_ .-]{0,12}[a-z0-9]".prop_map(Value::Str),
        "[ -~]{0,16}".prop_map(Value::Str),
    ]
    .prop_map(Node::synthetic);
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(|v| Node::synthetic(Value::Seq(v))),
            prop::collection::btree_map("[a-z][a-z0-9_]{0,10}", inner, 1..6).prop_map(|m| {
                let mut map = Mapping::default();
                for (k, v) in m {
                    map.insert(&k, v);
                }
                Node::synthetic(Value::Map(map))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parser_never_panics_and_errors_point_inside_the_file(text in yamlish()) {
        if let Err(e) = parse_perf_config(&text, Path::new("p.yaml")) {
            prop_assert!(!e.problems.is_empty());
            for p in &e.problems {
                prop_assert!(p.line <= line_count(&text) + 1, "{e} in {text:?}");
                prop_assert!(!p.message.is_empty());
            }
        }
    }

    #[test]
    fn mutated_configs_give_errors_naming_a_key_or_line(
        line in 0usize..18,
        value in prop_oneof![
            "-?[0-9]{1,22}",
            "[a-z ]{0,8}",
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("~".to_string()),
            Just("0".to_string()),
            Just("9223372036854775807".to_string()),
        ],
    ) {
        let mut lines: Vec<String> = GOOD.lines().map(str::to_string).collect();
        let i = line % lines.len();
        if let Some((key, _)) = lines[i].split_once(':') {
            lines[i] = format!("{key}: {value}");
        }
        let text = lines.join("\n") + "\n";
        if let Err(e) = parse_perf_config(&text, Path::new("m.yaml")) {
            for p in &e.problems {
                prop_assert!(p.line > 0 || !p.key_path.is_empty(), "{e}\n{text}");
                prop_assert!(p.line <= line_count(&text) + 1, "{e}");
            }
        }
    }

    #[test]
    fn yaml_trees_round_trip_through_the_emitter(node in tree()) {
        let text = to_yaml_string(&node, KeyOrder::Insertion);
        let back = load_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back.to_json(), node.to_json(), "{}", text);
    }

    #[test]
    fn txt_lists_drop_no_line(lines in prop::collection::vec(
        prop_oneof![
            "disagg(_upload)?-[a-z0-9_-]{1,16}( TIMEOUT \\([0-9]{1,21}\\))?( # [ -~]{0,10})?",
            "perf/test_perf_sanity.py::test_e2e\\[[ -~]{0,20}\\]",
            "[ -~]{0,30}",
            any::<String>(),
        ],
        0..30,
    )) {
        let text = lines.join("\n");
        let list = parse_txt(&text, Path::new("l.txt"));
        let content_lines = text
            .lines()
            .filter(|l| !l.split_once('#').map_or(*l, |(b, _)| b).trim().is_empty())
            .count();
        prop_assert_eq!(list.entries.len() + list.problems.len(), content_lines);
        for p in &list.problems {
            prop_assert!(p.line >= 1 && p.line <= line_count(&text));
        }
    }

    #[test]
    fn txt_lists_round_trip(entries in prop::collection::vec(
        ("disagg(_upload)?-[a-z0-9_]{1,8}(-[a-z0-9_]{1,8})?", prop::option::of(1u64..=43_200)),
        1..20,
    )) {
        let text: String = entries
            .iter()
            .map(|(id, t)| match t {
                Some(m) => format!("{id} TIMEOUT ({m})  # note\n"),
                None => format!("{id}\n"),
            })
            .collect();
        let list = parse_txt(&text, Path::new("l.txt"));
        prop_assert!(list.problems.is_empty(), "{:?}", list.problems);
        let got: Vec<(String, Option<u64>)> =
            list.entries.iter().map(|e| (e.id.clone(), e.timeout_minutes)).collect();
        prop_assert_eq!(got, entries.clone());
        // The same ids as a test-db YAML list.
        let yaml = format!(
            "version: 0.0.1\nctx:\n- condition: {{}}\n  tests:\n{}",
            entries.iter().map(|(id, _)| format!("  - {id}\n")).collect::<String>()
        );
        let db = parse_test_db(&yaml, Path::new("l.yml")).unwrap();
        prop_assert_eq!(db.entries.len(), entries.len());
        prop_assert_eq!(db.entries[0].line, 5);
    }

    #[test]
    fn test_db_parser_never_panics(text in yamlish()) {
        if let Err(e) = parse_test_db(&text, Path::new("l.yml")) {
            prop_assert!(e.line.is_none_or(|l| l <= line_count(&text) + 1), "{e}");
        }
    }

    #[test]
    fn dataset_parser_never_panics_and_names_a_line(text in prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just(r#"{"input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "x"}], "max_tokens": 3}}"#.to_string()),
                Just(r#"{"input": {"messages": [], "max_tokens": 3}}"#.to_string()),
                Just(r#"{"input": {"messages": [{}, {}], "max_tokens": -1}}"#.to_string()),
                "[ -~]{0,40}",
                Just(String::new()),
            ],
            0..10,
        ).prop_map(|v| v.join("\n")),
    ]) {
        if let Err(e) = parse_custom(Path::new("d.jsonl"), &text) {
            let msg = e.to_string();
            let line: usize = msg
                .split("d.jsonl:")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            prop_assert!(line >= 1 && line <= line_count(&text), "{msg}");
        }
    }

    #[test]
    fn dataset_lines_round_trip(rows in prop::collection::vec((any::<String>(), any::<u32>()), 1..12)) {
        let text: String = rows
            .iter()
            .map(|(prompt, max_tokens)| {
                serde_json::json!({"input": {"messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": prompt},
                ], "max_tokens": max_tokens}})
                .to_string()
                    + "\n"
            })
            .collect();
        let parsed = parse_custom(Path::new("d.jsonl"), &text).unwrap();
        let got: Vec<(String, u32)> = parsed.into_iter().map(|e| (e.prompt, e.max_tokens)).collect();
        prop_assert_eq!(got, rows);
    }

    #[test]
    fn sse_parser_never_panics_on_any_bytes(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
    ) {
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        for (i, f) in frames.iter().enumerate() {
            if p.feed(f, i as u64, 0, &mut rec).is_err() {
                return Ok(());
            }
        }
        let _ = p.finish(99, &mut rec);
    }

    #[test]
    fn sse_results_do_not_depend_on_frame_boundaries(
        chunks in prop::collection::vec(any::<String>(), 1..10),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut body = String::new();
        for c in &chunks {
            body.push_str(&format!("data: {}{eol}{eol}", serde_json::json!({"choices": [{"text": c}]})));
        }
        body.push_str(&format!("data: [DONE]{eol}"));
        let bytes = body.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        let mut last = 0;
        for (i, &at) in points.iter().chain([bytes.len()].iter()).enumerate() {
            p.feed(&bytes[last..at], i as u64, 0, &mut rec).unwrap();
            last = at;
        }
        p.finish(1000, &mut rec).unwrap();
        prop_assert_eq!(rec.text, chunks.concat());
        prop_assert_eq!(rec.events.len(), chunks.len());
    }
}
