//! Text printed by the client: upstream's result block (byte for byte), the lines printed
//! before the run, and our client-health section after the block.
//!
//! Layout rules (upstream-disagg-and-benchmark.md §6.4): labels `{:<40}`, a space, values
//! `{:<10}` (floats `.2f`), headers centred in 50 fill characters with the odd one on the
//! right. The SA flavor prints the SA client's block: no Total/Failed/User-throughput lines,
//! no Std Dev lines, no decoded-tokens section. Lines after the block never reuse a label the
//! upstream regexes look for.

use std::fmt::Write as _;

use super::args::{BenchOptions, Flavor, MetricKind};
use super::metrics::{ClientHealth, Stat, Summary};

fn int_line(out: &mut String, label: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<40} {:<10}", label, v.to_string());
}

fn f2_line(out: &mut String, label: &str, v: f64) {
    let _ = writeln!(out, "{:<40} {:<10}", label, format!("{v:.2}"));
}

/// `P99`, `P99.9`: integer form when the percentile is integral (Python `str(int(p))`).
pub fn percentile_word(p: f64) -> String {
    if p == p.trunc() {
        format!("{}", p as i64)
    } else {
        python_float(p)
    }
}

/// Python's `repr(float)` for the values we print (`1.0`, `0.8`, `inf`).
pub fn python_float(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if x.is_nan() {
        "nan".to_string()
    } else if x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn metric_section(out: &mut String, flavor: Flavor, kind: MetricKind, s: &Stat) {
    let (name, header) = match kind {
        MetricKind::Ttft => ("TTFT", "Time to First Token"),
        MetricKind::Tpot => ("TPOT", "Time per Output Token (excl. 1st token)"),
        MetricKind::Itl => ("ITL", "Inter-token Latency"),
        MetricKind::E2el => ("E2EL", "End-to-end Latency"),
    };
    let _ = writeln!(out, "{header:-^50}");
    f2_line(out, &format!("Mean {name} (ms):"), s.mean);
    f2_line(out, &format!("Median {name} (ms):"), s.median);
    if flavor == Flavor::Standard {
        f2_line(out, &format!("Std Dev {name} (ms):"), s.std);
    }
    for (p, v) in &s.percentiles {
        f2_line(out, &format!("P{} {name} (ms):", percentile_word(*p)), *v);
    }
}

/// The result block, from the `=== Serving Benchmark Result ===` header to the closing rule.
pub fn result_block(opts: &BenchOptions, s: &Summary) -> String {
    let mut out = String::new();
    let standard = opts.flavor == Flavor::Standard;
    let _ = writeln!(out, "{:=^50}", " Serving Benchmark Result ");
    if standard {
        int_line(&mut out, "Total requests:", s.total_requests);
    }
    int_line(&mut out, "Successful requests:", s.completed);
    if standard {
        int_line(&mut out, "Failed requests:", s.failed);
    }
    f2_line(&mut out, "Benchmark duration (s):", s.duration);
    int_line(&mut out, "Total input tokens:", s.total_input);
    int_line(&mut out, "Total generated tokens:", s.total_output);
    f2_line(
        &mut out,
        "Request throughput (req/s):",
        s.request_throughput,
    );
    if let Some(g) = s.request_goodput {
        f2_line(&mut out, "Request goodput (req/s):", g);
    }
    f2_line(
        &mut out,
        "Output token throughput (tok/s):",
        s.output_throughput,
    );
    f2_line(
        &mut out,
        "Total Token throughput (tok/s):",
        s.total_token_throughput,
    );
    if standard {
        f2_line(&mut out, "User throughput (tok/s):", s.user_throughput);
        if s.failed > 0 {
            out.push_str("=======================!FAILED REQUESTS!=======================\n");
            let _ = writeln!(out, "Total failed requests: {}", s.failed);
            out.push_str("=====================!CHECK LOG FOR ERRORS!====================\n");
        }
        if let Some(a) = s.avg_decoded.as_ref().filter(|a| a.mean > 0.0) {
            let _ = writeln!(out, "{:-^50}", "Avg Decoded Tokens per Iter");
            f2_line(&mut out, "Mean Avg Decoded Tokens per Iter:", a.mean);
            f2_line(&mut out, "Median Avg Decoded Tokens per Iter:", a.median);
            f2_line(&mut out, "Std Dev Avg Decoded Tokens per Iter:", a.std);
            f2_line(&mut out, "Min Avg Decoded Tokens per Iter:", a.min);
            f2_line(&mut out, "Max Avg Decoded Tokens per Iter:", a.max);
            for (p, v) in &a.percentiles {
                f2_line(
                    &mut out,
                    &format!("P{} Avg Decoded Tokens per Iter:", percentile_word(*p)),
                    *v,
                );
            }
        }
    }
    for kind in &opts.metrics {
        let stat = match kind {
            MetricKind::Ttft => &s.ttft,
            MetricKind::Tpot => &s.tpot,
            MetricKind::Itl => &s.itl,
            MetricKind::E2el => &s.e2el,
        };
        metric_section(&mut out, opts.flavor, *kind, stat);
    }
    out.push_str(&"=".repeat(50));
    out.push('\n');
    out
}

/// Standard client: the error histogram and failure count printed before the block.
pub fn error_lines(s: &Summary) -> String {
    let mut out = String::new();
    for (kind, n) in &s.errors {
        let _ = writeln!(out, "Error type: {kind}, Count: {n} requests");
    }
    if let Some(first) = &s.first_error {
        let _ = writeln!(out, "First error: {first}");
    }
    let _ = writeln!(out, "Total failed requests: {}", s.failed);
    out
}

/// The traffic lines printed before the run.
pub fn traffic_lines(opts: &BenchOptions) -> String {
    let b = opts.args.burstiness;
    let dist = if b == 1.0 {
        "Poisson process"
    } else {
        "Gamma distribution"
    };
    format!(
        "Traffic request rate: {}\nBurstiness factor: {} ({dist})\nMaximum request concurrency: {}\n",
        python_float(opts.request_rate),
        python_float(b),
        opts.args
            .max_concurrency
            .map_or("None".to_string(), |c| c.to_string()),
    )
}

/// A Python value as `repr` prints it.
enum Py {
    Str(String),
    OptStr(Option<String>),
    Int(i128),
    OptInt(Option<i128>),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Py {
    fn repr(&self) -> String {
        match self {
            Py::Str(s) => py_str(s),
            Py::OptStr(o) => o.as_deref().map_or("None".into(), py_str),
            Py::Int(i) => i.to_string(),
            Py::OptInt(o) => o.map_or("None".into(), |i| i.to_string()),
            Py::Float(f) => python_float(*f),
            Py::Bool(b) => if *b { "True" } else { "False" }.into(),
            Py::List(v) if v.is_empty() => "None".into(),
            Py::List(v) => format!(
                "[{}]",
                v.iter().map(|s| py_str(s)).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The argparse `Namespace(…)` line both upstream clients print first, fields in argument
/// definition order (Python ≥ 3.9 prints them unsorted). For `--flavor sa` it is the SA client's
/// exact field list, with its defaults for options we do not implement; for the standard client
/// the order follows upstream's flag list. Upstream's harness reads `num_prompts=N` from it to
/// detect SA failures.
pub fn namespace_line(opts: &BenchOptions) -> String {
    let a = &opts.args;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let common = |name: &str| -> Py {
        match name {
            "backend" => Py::Str(opts.backend_name.clone()),
            "base_url" => Py::OptStr(a.base_url.clone()),
            "host" => Py::Str(a.host.clone()),
            "port" => Py::Int(i128::from(a.port)),
            "endpoint" => Py::Str(a.endpoint.clone()),
            "dataset_name" => Py::OptStr(a.dataset_name.clone()),
            "dataset_path" => Py::OptStr(path(&a.dataset_path)),
            "max_concurrency" => Py::OptInt(a.max_concurrency.map(|c| c as i128)),
            "model" => Py::Str(a.model.clone()),
            "tokenizer" => Py::OptStr(a.tokenizer.clone()),
            "num_prompts" => Py::Int(a.num_prompts as i128),
            "request_rate" => Py::Float(opts.request_rate),
            "burstiness" => Py::Float(a.burstiness),
            "seed" => Py::Int(i128::from(a.seed)),
            "trust_remote_code" => Py::Bool(a.trust_remote_code),
            "disable_tqdm" => Py::Bool(a.disable_tqdm),
            "save_result" => Py::Bool(a.save_result),
            "save_detailed" => Py::Bool(a.save_detailed),
            "metadata" => Py::List(a.metadata.clone()),
            "result_dir" => Py::OptStr(path(&a.result_dir)),
            "result_filename" => Py::OptStr(a.result_filename.clone()),
            "ignore_eos" => Py::Bool(a.ignore_eos),
            "percentile_metrics" => Py::Str(a.percentile_metrics.clone()),
            "metric_percentiles" => Py::Str(a.metric_percentiles.clone()),
            "goodput" => Py::List(a.goodput.clone()),
            "random_input_len" => Py::Int(i128::from(a.random_input_len)),
            "random_output_len" => Py::Int(i128::from(a.random_output_len)),
            "random_range_ratio" => Py::Float(opts.range_ratio),
            "random_prefix_len" => Py::Int(i128::from(a.random_prefix_len)),
            "random_ids" => Py::Bool(a.random_ids),
            "tokenize_on_client" => Py::Bool(a.tokenize_on_client),
            "use_chat_template" => Py::Bool(a.use_chat_template),
            "served_model_name" => Py::OptStr(a.served_model_name.clone()),
            "non_streaming" => Py::Bool(a.non_streaming),
            "no_test_input" => Py::Bool(a.no_test_input),
            "tokenizer_mode" => Py::Str("auto".into()),
            "best_of" => Py::Int(1),
            "use_beam_search" | "profile" => Py::Bool(false),
            "sonnet_input_len" => Py::Int(550),
            "sonnet_output_len" => Py::Int(150),
            "sonnet_prefix_len" => Py::Int(200),
            _ => Py::OptStr(None),
        }
    };
    const SA: [&str; 44] = [
        "backend",
        "base_url",
        "host",
        "port",
        "endpoint",
        "dataset",
        "dataset_name",
        "dataset_path",
        "max_concurrency",
        "model",
        "tokenizer",
        "best_of",
        "use_beam_search",
        "num_prompts",
        "logprobs",
        "request_rate",
        "burstiness",
        "seed",
        "trust_remote_code",
        "disable_tqdm",
        "profile",
        "save_result",
        "metadata",
        "result_dir",
        "result_filename",
        "ignore_eos",
        "percentile_metrics",
        "metric_percentiles",
        "goodput",
        "sonnet_input_len",
        "sonnet_output_len",
        "sonnet_prefix_len",
        "sharegpt_output_len",
        "random_input_len",
        "random_output_len",
        "random_range_ratio",
        "random_prefix_len",
        "use_chat_template",
        "hf_subset",
        "hf_split",
        "hf_output_len",
        "tokenizer_mode",
        "served_model_name",
        "lora_modules",
    ];
    const STANDARD: [&str; 38] = [
        "backend",
        "base_url",
        "host",
        "port",
        "endpoint",
        "dataset_name",
        "dataset_path",
        "max_concurrency",
        "model",
        "tokenizer",
        "num_prompts",
        "logprobs",
        "request_rate",
        "burstiness",
        "seed",
        "trust_remote_code",
        "disable_tqdm",
        "profile",
        "save_result",
        "save_detailed",
        "metadata",
        "result_dir",
        "result_filename",
        "ignore_eos",
        "percentile_metrics",
        "metric_percentiles",
        "goodput",
        "random_input_len",
        "random_output_len",
        "random_range_ratio",
        "random_prefix_len",
        "random_ids",
        "tokenize_on_client",
        "tokenizer_mode",
        "served_model_name",
        "non_streaming",
        "no_test_input",
        "use_chat_template",
    ];
    let names: &[&str] = match opts.flavor {
        Flavor::Sa => &SA,
        Flavor::Standard => &STANDARD,
    };
    let body: Vec<String> = names
        .iter()
        .map(|k| format!("{k}={}", common(k).repr()))
        .collect();
    format!("Namespace({})\n", body.join(", "))
}

/// Which centre a spread line leads with.
enum Centre {
    Mean,
    Median,
}

/// One `<label>, ms (<centre> / p99 / max): a / b / c` line of the health section.
fn spread_line(out: &mut String, label: &str, centre: Centre, s: &Stat, decimals: usize) {
    let (name, value) = match centre {
        Centre::Mean => ("mean", s.mean),
        Centre::Median => ("median", s.median),
    };
    let p99 = s.percentiles.get(1).map_or(0.0, |p| p.1);
    let _ = writeln!(
        out,
        "{label}, ms ({name} / p99 / max): {value:.decimals$} / {p99:.decimals$} / {:.decimals$}",
        s.max
    );
}

/// Says that some chunk gaps were not measured (printed only when reads merged chunks).
pub fn merged_line(h: &ClientHealth) -> String {
    format!(
        "Merged reads: {} of {} chunk gaps came in one read with the previous chunk ({:.3} %, \
         flagged above {:.3} %); those gaps are not measured, and the median/percentile ITL \
         above counts them",
        h.merged_itl_samples,
        h.itl_samples,
        h.merged_share() * 100.0,
        h.merged_limit_share * 100.0
    )
}

/// Our section after the block: achieved concurrency, client-side queueing, client lag, CPU.
pub fn health_section(h: &ClientHealth, cpu_seconds: Option<f64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:-^50}", " perfsanity client check ");
    let _ = writeln!(
        out,
        "Concurrency slots / achieved mean / peak: {} / {:.2} / {}",
        h.slots, h.achieved_concurrency_mean, h.achieved_concurrency_peak
    );
    spread_line(
        &mut out,
        "Client queue wait before send",
        Centre::Mean,
        &h.slot_wait_ms,
        2,
    );
    if let Some(d) = &h.dispatch_late_ms {
        spread_line(&mut out, "Dispatch timer lateness", Centre::Mean, d, 3);
    }
    spread_line(
        &mut out,
        "Arrival to handling",
        Centre::Mean,
        &h.handle_lag_ms,
        3,
    );
    let _ = writeln!(
        out,
        "Chunk timestamps: {} ({} reads without one); median chunk gap {:.2} ms",
        if h.kernel_timestamps {
            "kernel receive time"
        } else {
            "read time"
        },
        h.unstamped_reads,
        h.median_chunk_gap_ms
    );
    if h.merged_itl_samples > 0 {
        let _ = writeln!(out, "{}", merged_line(h));
    }
    spread_line(
        &mut out,
        "Run-queue delay probe",
        Centre::Median,
        &h.queue_delay_ms,
        3,
    );
    spread_line(
        &mut out,
        "Timer wake lateness probe",
        Centre::Median,
        &h.timer_late_ms,
        3,
    );
    let _ = writeln!(
        out,
        "Connections opened / streamed events: {} / {}",
        h.connections_opened, h.events
    );
    if let Some(cpu) = cpu_seconds {
        let per = if h.events > 0 {
            cpu / h.events as f64 * 1e6
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "Client CPU time, s: {cpu:.3} ({per:.2} us per streamed event)"
        );
    }
    out.push_str(&"-".repeat(50));
    out.push('\n');
    if !h.over_budget.is_empty() {
        let _ = writeln!(
            out,
            "WARNING: the client fell behind ({}); latencies in this run may include \
             client-side delay.",
            h.over_budget.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mean: f64, median: f64, p99: f64, max: f64) -> Stat {
        Stat {
            mean,
            median,
            percentiles: vec![(50.0, median), (99.0, p99)],
            max,
            ..Stat::default()
        }
    }

    #[test]
    fn health_section_lines() {
        let h = ClientHealth {
            slots: 4,
            achieved_concurrency_mean: 3.5,
            achieved_concurrency_peak: 4,
            slot_wait_ms: stat(1.234, 0.0, 5.678, 9.0),
            dispatch_late_ms: Some(stat(0.1234, 0.0, 0.5, 1.0)),
            handle_lag_ms: stat(0.01, 0.0, 0.02, 0.03),
            queue_delay_ms: stat(0.0, 0.004, 0.05, 0.5),
            timer_late_ms: stat(0.0, 1.05, 1.2, 2.0),
            connections_opened: 4,
            events: 1000,
            kernel_timestamps: true,
            median_chunk_gap_ms: 10.0,
            ..ClientHealth::default()
        };
        let text = health_section(&h, Some(0.5));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2..8],
            [
                "Client queue wait before send, ms (mean / p99 / max): 1.23 / 5.68 / 9.00",
                "Dispatch timer lateness, ms (mean / p99 / max): 0.123 / 0.500 / 1.000",
                "Arrival to handling, ms (mean / p99 / max): 0.010 / 0.020 / 0.030",
                "Chunk timestamps: kernel receive time (0 reads without one); median chunk gap 10.00 ms",
                "Run-queue delay probe, ms (median / p99 / max): 0.004 / 0.050 / 0.500",
                "Timer wake lateness probe, ms (median / p99 / max): 1.050 / 1.200 / 2.000",
            ]
        );
        assert!(text.contains("Client CPU time, s: 0.500 (500.00 us per streamed event)"));
        assert!(!text.contains("Merged reads"));
        let merged = ClientHealth {
            itl_samples: 1000,
            merged_itl_samples: 3,
            merged_limit_share: 0.005,
            ..h
        };
        let text = health_section(&merged, None);
        assert_eq!(
            text.lines().nth(6),
            Some(
                "Merged reads: 3 of 1000 chunk gaps came in one read with the previous chunk \
                 (0.300 %, flagged above 0.500 %); those gaps are not measured, and the \
                 median/percentile ITL above counts them"
            )
        );
    }
}
