//! The `--save-result` JSON: upstream's keys in upstream's order (§6.5), plus one
//! `perfsanity_client` object with our client-health figures and, with `--save-detailed`, the
//! raw per-request samples from which every metric can be recomputed.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::args::{BenchOptions, Flavor, MetricKind};
use super::metrics::{ClientHealth, RequestOutcome, Stat, Summary};
use super::record::RawRequest;
use super::report::{percentile_word, python_float};

/// Inputs of the result JSON beyond the summary.
pub struct ResultInputs<'a> {
    /// Options of the run.
    pub opts: &'a BenchOptions,
    /// Upstream metrics.
    pub summary: &'a Summary,
    /// Per-request outcomes.
    pub outcomes: &'a [RequestOutcome],
    /// Prompt lengths.
    pub prompt_lens: &'a [u64],
    /// Raw records (text, events).
    pub raw: &'a [RawRequest],
    /// Client health.
    pub health: &'a ClientHealth,
    /// Client CPU seconds, when measured.
    pub cpu_seconds: Option<f64>,
    /// Per-request, per-event token counts (detailed mode).
    pub chunk_tokens: Option<Vec<Vec<u64>>>,
    /// `YYYYmmdd-HHMMSS`.
    pub date: String,
}

fn f(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn stat_keys(out: &mut IndexMap<String, Value>, flavor: Flavor, kind: MetricKind, s: &Stat) {
    let k = kind.key();
    let std = (format!("std_{k}_ms"), f(s.std));
    let mean = (format!("mean_{k}_ms"), f(s.mean));
    let median = (format!("median_{k}_ms"), f(s.median));
    let ordered = match flavor {
        Flavor::Standard => [std, mean, median],
        Flavor::Sa => [mean, median, std],
    };
    out.extend(ordered);
    for (p, v) in &s.percentiles {
        out.insert(format!("p{}_{k}_ms", percentile_word(*p)), f(*v));
    }
}

fn health_json(h: &ClientHealth, cpu: Option<f64>) -> Value {
    let st = |s: &Stat| json!({"mean": f(s.mean), "p50": f(s.percentiles[0].1), "p99": f(s.percentiles[1].1), "max": f(s.max)});
    json!({
        "concurrency_slots": h.slots,
        "achieved_concurrency_mean": f(h.achieved_concurrency_mean),
        "achieved_concurrency_peak": h.achieved_concurrency_peak,
        "client_queue_wait_ms": st(&h.slot_wait_ms),
        "dispatch_timer_late_ms": h.dispatch_late_ms.as_ref().map(st),
        "arrival_to_handling_ms": st(&h.handle_lag_ms),
        "run_queue_delay_probe_ms": st(&h.queue_delay_ms),
        "timer_wake_late_probe_ms": st(&h.timer_late_ms),
        "connections_opened": h.connections_opened,
        "streamed_events": h.events,
        "client_cpu_seconds": cpu.map(f),
        "client_cpu_us_per_event": cpu.filter(|_| h.events > 0).map(|c| f(c / h.events as f64 * 1e6)),
        "timestamps": if h.kernel_timestamps { "kernel" } else { "read" },
        "reads_without_kernel_timestamp": h.unstamped_reads,
        "median_chunk_gap_ms": f(h.median_chunk_gap_ms),
        "itl_samples": h.itl_samples,
        "merged_itl_samples": h.merged_itl_samples,
        "merged_itl_share": f(h.merged_share()),
        "merged_itl_limit_share": f(h.merged_limit_share),
        "itl_tail_measured": h.merged_itl_samples == 0,
        "lag_budget_ms": f(h.lag_budget_ms),
        "lag_over_budget": !h.over_budget.is_empty(),
        "lag_over_budget_reasons": h.over_budget,
    })
}

fn raw_json(raw: &[RawRequest], chunk_tokens: &[Vec<u64>]) -> Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    Value::Array(
        raw.iter()
            .zip(chunk_tokens)
            .map(|(r, toks)| {
                json!({
                    "index": r.index,
                    "scheduled_ms": ms(r.scheduled_ns),
                    "slot_wait_ms": ms(r.slot_wait_ns),
                    "timer_late_ms": ms(r.timer_late_ns),
                    "sent_ms": ms(r.sent_ns),
                    "connect_ms": r.connect_ns.map(ms),
                    "headers_ms": r.headers_ns.map(ms),
                    "end_ms": ms(r.end_ns),
                    "status": r.status,
                    "failure": r.failure,
                    "usage_completion_tokens": r.usage_tokens,
                    "chunks": r.events.iter().zip(toks).map(|(e, t)| json!({
                        "t_ms": ms(e.t_ns),
                        "lag_us": e.lag_ns as f64 / 1e3,
                        "choices": e.has_choices,
                        "merged": e.merged,
                        "tokens": t,
                        "usage_completion_tokens": (e.usage_tokens != super::record::NO_USAGE).then_some(e.usage_tokens),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Builds the result JSON object.
pub fn result_json(r: &ResultInputs<'_>) -> IndexMap<String, Value> {
    let o = r.opts;
    let s = r.summary;
    let mut m: IndexMap<String, Value> = IndexMap::new();
    m.insert("date".into(), json!(r.date));
    m.insert("backend".into(), json!(o.backend_name));
    m.insert("model_id".into(), json!(o.args.model));
    m.insert("tokenizer_id".into(), json!(o.tokenizer_dir));
    if o.flavor == Flavor::Sa {
        m.insert("best_of".into(), json!(1));
    }
    m.insert("num_prompts".into(), json!(o.args.num_prompts));
    for (k, v) in &o.metadata {
        m.insert(k.clone(), json!(v));
    }
    let rate = if o.request_rate.is_finite() {
        f(o.request_rate)
    } else {
        json!("inf")
    };
    let traffic = [
        ("request_rate".to_string(), rate),
        ("burstiness".to_string(), f(o.args.burstiness)),
        ("max_concurrency".to_string(), json!(o.args.max_concurrency)),
    ];
    if o.flavor == Flavor::Sa {
        m.extend(traffic.clone());
    }
    m.insert("duration".into(), f(s.duration));
    m.insert("completed".into(), json!(s.completed));
    m.insert("total_input_tokens".into(), json!(s.total_input));
    m.insert("total_output_tokens".into(), json!(s.total_output));
    m.insert("request_throughput".into(), f(s.request_throughput));
    m.insert(
        "request_goodput:".into(),
        s.request_goodput.map_or(Value::Null, f),
    );
    m.insert("output_throughput".into(), f(s.output_throughput));
    m.insert("total_token_throughput".into(), f(s.total_token_throughput));
    let detailed_lists = |m: &mut IndexMap<String, Value>, with_e2el: bool| {
        m.insert("input_lens".into(), json!(r.prompt_lens));
        m.insert("output_lens".into(), json!(s.output_lens));
        m.insert(
            "ttfts".into(),
            Value::Array(r.outcomes.iter().map(|x| f(x.ttft)).collect()),
        );
        m.insert(
            "itls".into(),
            Value::Array(
                r.outcomes
                    .iter()
                    .map(|x| Value::Array(x.itl.iter().map(|v| f(*v)).collect()))
                    .collect(),
            ),
        );
        if with_e2el {
            m.insert(
                "e2els".into(),
                Value::Array(r.outcomes.iter().map(|x| f(x.latency)).collect()),
            );
        }
        m.insert(
            "generated_texts".into(),
            Value::Array(r.raw.iter().map(|x| json!(x.text)).collect()),
        );
        m.insert(
            "errors".into(),
            Value::Array(r.outcomes.iter().map(|x| json!(x.error)).collect()),
        );
    };
    match o.flavor {
        Flavor::Standard => {
            m.insert("user_throughput".into(), f(s.user_throughput));
            let a = s
                .avg_decoded
                .clone()
                .unwrap_or_else(|| super::metrics::stat(&[], 1.0, &o.percentiles));
            let pcts: IndexMap<String, Value> = a
                .percentiles
                .iter()
                .map(|(p, v)| (format!("p{}", percentile_word(*p)), f(*v)))
                .collect();
            m.insert(
                "avg_decoded_tokens_per_iter".into(),
                json!({"mean": f(a.mean), "min": f(a.min), "max": f(a.max), "median": f(a.median), "std": f(a.std), "percentiles": pcts}),
            );
        }
        Flavor::Sa => detailed_lists(&mut m, false),
    }
    for kind in &o.metrics {
        let stat = match kind {
            MetricKind::Ttft => &s.ttft,
            MetricKind::Tpot => &s.tpot,
            MetricKind::Itl => &s.itl,
            MetricKind::E2el => &s.e2el,
        };
        stat_keys(&mut m, o.flavor, *kind, stat);
    }
    if o.flavor == Flavor::Standard {
        m.extend(traffic);
        if o.args.save_detailed {
            detailed_lists(&mut m, true);
        }
    }
    let mut ours = serde_json::Map::new();
    ours.insert(
        "flavor".into(),
        json!(match o.flavor {
            Flavor::Standard => "standard",
            Flavor::Sa => "sa",
        }),
    );
    ours.insert("total_requests".into(), json!(s.total_requests));
    ours.insert("failed_requests".into(), json!(s.failed));
    ours.insert("client_health".into(), health_json(r.health, r.cpu_seconds));
    if let Some(toks) = &r.chunk_tokens {
        ours.insert("requests".into(), raw_json(r.raw, toks));
    }
    m.insert("perfsanity_client".into(), Value::Object(ours));
    m
}

/// Where the result goes: `--result-dir`/`--result-filename`, else upstream's default name
/// `{backend}-{rate}qps[-concurrency{N}]-{basename(model)}-{date}.json` in the working directory.
pub fn result_path(opts: &BenchOptions, date: &str) -> PathBuf {
    let name = opts.args.result_filename.clone().unwrap_or_else(|| {
        let base = opts
            .args
            .model
            .rsplit('/')
            .next()
            .unwrap_or(&opts.args.model);
        let conc = opts
            .args
            .max_concurrency
            .map_or(String::new(), |c| format!("-concurrency{c}"));
        format!(
            "{}-{}qps{conc}-{base}-{date}.json",
            opts.backend_name,
            python_float(opts.request_rate)
        )
    });
    match &opts.args.result_dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    }
}
