//! Metrics computed after the run from raw samples, with upstream's definitions (§6.3).
//!
//! [`outcome`] turns one [`RawRequest`] into what upstream's request function would have
//! returned (TTFT, per-chunk ITL, latency, success), following the backend's rules;
//! [`summarize`] then applies `calculate_metrics`: population std, numpy-linear percentiles,
//! empty lists treated as `[0]`, TPOT only for outputs longer than one token, goodput.
//! [`client_health`] summarises the client's own delays, which upstream never reports.

use indexmap::IndexMap;

use super::args::{Backend, Flavor, Goodput};
use super::driver::RunOutput;
use super::record::{NO_USAGE, RawRequest};
use crate::util::stats;

/// Upstream's error text for a stream without any `choices` chunk.
pub const NO_VALID_CHUNK: &str =
    "Never received a valid chunk to calculate TTFT.This response will be marked as failed!";

/// One request as upstream's request function reports it (times in seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOutcome {
    /// Success flag.
    pub success: bool,
    /// Time to first token (−1 for non-streaming).
    pub ttft: f64,
    /// Gaps between consecutive chunks.
    pub itl: Vec<f64>,
    /// End-to-end latency.
    pub latency: f64,
    /// `usage.completion_tokens`, if the server sent it.
    pub usage_tokens: Option<u64>,
    /// Error message (empty on success).
    pub error: String,
    /// Error type for grouping (None on success).
    pub error_kind: Option<String>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn since(t: u64, start: u64) -> f64 {
    secs(t.saturating_sub(start))
}

/// Interprets one raw record with the backend's rules.
pub fn outcome(rec: &RawRequest, backend: Backend, streaming: bool) -> RequestOutcome {
    let mut o = RequestOutcome {
        success: false,
        ttft: 0.0,
        itl: Vec::new(),
        latency: 0.0,
        usage_tokens: None,
        error: String::new(),
        error_kind: None,
    };
    if let Some(f) = &rec.failure {
        o.error = f.message.clone();
        o.error_kind = Some(f.kind.clone());
        return o;
    }
    let st = rec.sent_ns;
    if !streaming {
        o.success = true;
        o.ttft = -1.0;
        o.latency = since(rec.end_ns, st);
        o.usage_tokens = rec.usage_tokens;
        return o;
    }
    match backend {
        Backend::Completions => {
            let mut last: Option<u64> = None;
            for e in &rec.events {
                if e.has_choices {
                    match last {
                        None => o.ttft = since(e.t_ns, st),
                        Some(prev) => o.itl.push(secs(e.t_ns.saturating_sub(prev))),
                    }
                    last = Some(e.t_ns);
                } else if e.usage_tokens != NO_USAGE {
                    o.usage_tokens = Some(u64::from(e.usage_tokens));
                }
            }
            o.latency = last.map_or(0.0, |t| since(t, st));
            o.success = last.is_some();
            if !o.success {
                o.error = NO_VALID_CHUNK.to_string();
                o.error_kind = Some("NoValidChunk".to_string());
            }
        }
        Backend::Chat => {
            let mut recent = st;
            let mut seen_first = false;
            for e in &rec.events {
                if e.has_choices {
                    if !seen_first {
                        o.ttft = since(e.t_ns, st);
                        seen_first = true;
                    } else {
                        o.itl.push(secs(e.t_ns.saturating_sub(recent)));
                    }
                } else if e.usage_tokens != NO_USAGE {
                    o.usage_tokens = Some(u64::from(e.usage_tokens));
                }
                recent = e.t_ns;
            }
            o.latency = since(recent, st);
            o.success = true;
        }
    }
    o
}

/// Output length of a successful request: usage when non-zero, else the tokenizer's count of
/// the generated text (standard); the SA client uses usage as is (0 when absent).
pub fn output_len(
    flavor: Flavor,
    o: &RequestOutcome,
    text: &str,
    count_tokens: &dyn Fn(&str) -> usize,
) -> u64 {
    match (flavor, o.usage_tokens) {
        (_, Some(n)) if n > 0 => n,
        (Flavor::Sa, _) => o.usage_tokens.unwrap_or(0),
        (Flavor::Standard, _) => count_tokens(text) as u64,
    }
}

/// Mean, median, std and percentiles of one metric, in ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Population std.
    pub std: f64,
    /// `(p, value)` for each selected percentile.
    pub percentiles: Vec<(f64, f64)>,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// Statistics of `values` × `scale`, with upstream's empty-list-as-`[0]` rule.
pub fn stat(values: &[f64], scale: f64, percentiles: &[f64]) -> Stat {
    let zero = [0.0];
    let v = if values.is_empty() { &zero[..] } else { values };
    let sorted = stats::sorted(v);
    Stat {
        mean: stats::mean(v) * scale,
        median: stats::percentile_sorted(&sorted, 50.0) * scale,
        std: stats::std_population(v) * scale,
        percentiles: percentiles
            .iter()
            .map(|&p| (p, stats::percentile_sorted(&sorted, p) * scale))
            .collect(),
        min: sorted[0] * scale,
        max: sorted[sorted.len() - 1] * scale,
    }
}

/// The numbers of upstream's result block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Requests attempted.
    pub total_requests: usize,
    /// Successful requests.
    pub completed: usize,
    /// Failed requests.
    pub failed: usize,
    /// Benchmark duration (s).
    pub duration: f64,
    /// Σ prompt_len over successful requests.
    pub total_input: u64,
    /// Σ output_len.
    pub total_output: u64,
    /// completed / duration.
    pub request_throughput: f64,
    /// good / duration, when SLOs were given.
    pub request_goodput: Option<f64>,
    /// total_output / duration.
    pub output_throughput: f64,
    /// (total_input + total_output) / duration.
    pub total_token_throughput: f64,
    /// Mean over successful requests of output_len / latency.
    pub user_throughput: f64,
    /// TTFT (ms).
    pub ttft: Stat,
    /// TPOT (ms).
    pub tpot: Stat,
    /// ITL (ms).
    pub itl: Stat,
    /// E2EL (ms).
    pub e2el: Stat,
    /// Avg decoded tokens per iteration (unitless), when the server sent it.
    pub avg_decoded: Option<Stat>,
    /// Per-request output lengths (0 for failures).
    pub output_lens: Vec<u64>,
    /// Failure count per error type, in first-seen order.
    pub errors: IndexMap<String, usize>,
    /// The first failure's type and message (printed so a failed run says why).
    pub first_error: Option<String>,
}

/// Applies upstream's `calculate_metrics` to the outcomes.
pub fn summarize(
    outcomes: &[RequestOutcome],
    prompt_lens: &[u64],
    output_lens: Vec<u64>,
    avg_decoded: &[Option<f64>],
    duration_s: f64,
    percentiles: &[f64],
    goodput: &Goodput,
) -> Summary {
    let mut s = Summary {
        total_requests: outcomes.len(),
        duration: duration_s,
        ..Summary::default()
    };
    let (mut ttfts, mut tpots, mut all_tpots, mut itls, mut e2els, mut tput_user, mut decoded) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, o) in outcomes.iter().enumerate() {
        if !o.success {
            s.failed += 1;
            if s.first_error.is_none() {
                s.first_error = Some(format!(
                    "{}: {}",
                    o.error_kind.as_deref().unwrap_or("Error"),
                    o.error
                ));
            }
            *s.errors
                .entry(o.error_kind.clone().unwrap_or_else(|| "Error".into()))
                .or_default() += 1;
            continue;
        }
        let out = output_lens[i];
        s.completed += 1;
        s.total_input += prompt_lens[i];
        let mut tpot = 0.0;
        if out > 1 {
            tpot = (o.latency - o.ttft) / (out - 1) as f64;
            tpots.push(tpot);
        }
        all_tpots.push(tpot);
        itls.extend_from_slice(&o.itl);
        ttfts.push(o.ttft);
        e2els.push(o.latency);
        if o.latency > 0.0 {
            tput_user.push(out as f64 / o.latency);
        }
        if let Some(a) = avg_decoded[i] {
            decoded.push(a);
        }
    }
    s.total_output = output_lens.iter().sum();
    s.output_lens = output_lens;
    let d = duration_s.max(f64::MIN_POSITIVE);
    s.request_throughput = s.completed as f64 / d;
    s.output_throughput = s.total_output as f64 / d;
    s.total_token_throughput = (s.total_input + s.total_output) as f64 / d;
    s.user_throughput = if tput_user.is_empty() {
        0.0
    } else {
        stats::mean(&tput_user)
    };
    if goodput.is_set() {
        let good = (0..ttfts.len())
            .filter(|&k| {
                goodput.ttft_ms.is_none_or(|slo| ttfts[k] <= slo / 1000.0)
                    && goodput
                        .tpot_ms
                        .is_none_or(|slo| all_tpots[k] <= slo / 1000.0)
                    && goodput.e2el_ms.is_none_or(|slo| e2els[k] <= slo / 1000.0)
            })
            .count();
        s.request_goodput = Some(good as f64 / d);
    }
    s.ttft = stat(&ttfts, 1000.0, percentiles);
    s.tpot = stat(&tpots, 1000.0, percentiles);
    s.itl = stat(&itls, 1000.0, percentiles);
    s.e2el = stat(&e2els, 1000.0, percentiles);
    s.avg_decoded = (!decoded.is_empty()).then(|| stat(&decoded, 1.0, percentiles));
    s
}

/// The client's own delays: what upstream hides or never measures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientHealth {
    /// Concurrency slots (workers).
    pub slots: usize,
    /// Σ request time / duration.
    pub achieved_concurrency_mean: f64,
    /// Most requests in flight at once.
    pub achieved_concurrency_peak: usize,
    /// Wait for a free slot after the intended dispatch time (ms).
    pub slot_wait_ms: Stat,
    /// Lateness of the dispatch timer, finite rates only (ms).
    pub dispatch_late_ms: Option<Stat>,
    /// Bytes arrived (kernel) → event handled by the client (ms).
    pub handle_lag_ms: Stat,
    /// Probe: run-queue delay of a ready task (ms).
    pub queue_delay_ms: Stat,
    /// Probe: timer wake lateness (ms; includes the 1 ms timer granularity).
    pub timer_late_ms: Stat,
    /// New connections opened.
    pub connections_opened: usize,
    /// Streamed events received.
    pub events: u64,
    /// Chunk times are kernel receive timestamps (else read times).
    pub kernel_timestamps: bool,
    /// Reads without a kernel timestamp (their chunks carry the read time).
    pub unstamped_reads: u64,
    /// Median gap between consecutive chunks of a stream that arrived apart (ms).
    pub median_chunk_gap_ms: f64,
    /// Budget for the p99 lags (ms).
    pub lag_budget_ms: f64,
    /// Gaps between consecutive `choices` events of a stream (ITL samples, all requests).
    pub itl_samples: u64,
    /// Of those, gaps whose later event came in the same socket read as the earlier one: both
    /// carry one arrival time, so the gap (and the one before it) is not a measurement.
    pub merged_itl_samples: u64,
    /// Share of merged gaps above which the run is flagged ([`merge_limit_share`]).
    pub merged_limit_share: f64,
    /// Why the run is flagged (empty when within budget).
    pub over_budget: Vec<String>,
}

/// A kernel-stamped run is flagged when merged gaps exceed this share of the ITL tail beyond
/// the highest reported percentile (p99 ⇒ 0.5 % of all gaps). Each merged read puts one gap at
/// zero and stretches the one before it, so below this share the inflated gaps stay inside the
/// tail and cannot move the percentile off the measured ones by more than the percentile's
/// own neighbourhood; from one full tail's share on, they *are* the percentile.
pub const MERGED_SHARE_OF_TAIL: f64 = 0.5;

/// The merged-gap share above which a run is flagged, for `highest_percentile` (e.g. 99).
pub fn merge_limit_share(highest_percentile: f64) -> f64 {
    let tail = (100.0 - highest_percentile.clamp(50.0, 100.0)) / 100.0;
    MERGED_SHARE_OF_TAIL * tail
}

/// (ITL samples, merged ones) over all requests.
pub fn merged_gaps(reqs: &[RawRequest]) -> (u64, u64) {
    let (mut gaps, mut merged) = (0u64, 0u64);
    for r in reqs {
        let mut seen_first = false;
        for e in r.events.iter().filter(|e| e.has_choices) {
            if seen_first {
                gaps += 1;
                merged += u64::from(e.merged);
            }
            seen_first = true;
        }
    }
    (gaps, merged)
}

impl ClientHealth {
    /// Merged gaps / all gaps (0 without gaps).
    pub fn merged_share(&self) -> f64 {
        if self.itl_samples == 0 {
            0.0
        } else {
            self.merged_itl_samples as f64 / self.itl_samples as f64
        }
    }
}

/// Median of the positive gaps between consecutive events of each request (ms).
pub fn median_chunk_gap_ms(reqs: &[RawRequest]) -> f64 {
    let gaps: Vec<f64> = reqs
        .iter()
        .flat_map(|r| {
            r.events
                .windows(2)
                .map(|w| w[1].t_ns.saturating_sub(w[0].t_ns))
                .filter(|&g| g > 0)
                .map(|g| g as f64 / 1e6)
        })
        .collect();
    if gaps.is_empty() {
        0.0
    } else {
        stats::median(&gaps)
    }
}

/// Summarises the client's delays from the raw run. With kernel timestamps the client's lag
/// does not move chunk times, so the run is flagged only when reads fell behind the streams;
/// with read timestamps any run-queue delay beyond the budget enters the timings.
pub fn client_health(
    run: &RunOutput,
    lag_budget_ms: f64,
    kernel_timestamps: bool,
    highest_percentile: f64,
) -> ClientHealth {
    let ms = |ns: u64| ns as f64 / 1e6;
    let pct = [50.0, 99.0];
    let reqs = &run.requests;
    let busy: f64 = reqs
        .iter()
        .map(|r| r.end_ns.saturating_sub(r.sent_ns) as f64)
        .sum();
    let mut edges: Vec<(u64, i32)> = reqs
        .iter()
        .flat_map(|r| [(r.sent_ns, 1), (r.end_ns.max(r.sent_ns), -1)])
        .collect();
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut cur, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        cur += d;
        peak = peak.max(cur);
    }
    let slot: Vec<f64> = reqs.iter().map(|r| ms(r.slot_wait_ns)).collect();
    let finite = reqs.iter().any(|r| r.scheduled_ns != reqs[0].scheduled_ns);
    let late: Vec<f64> = reqs.iter().map(|r| ms(r.timer_late_ns)).collect();
    let lag: Vec<f64> = reqs
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.lag_ns as f64 / 1e6))
        .collect();
    let q: Vec<f64> = run.lag.queue_delay_ns.iter().map(|&n| ms(n)).collect();
    let t: Vec<f64> = run.lag.timer_late_ns.iter().map(|&n| ms(n)).collect();
    let mut h = ClientHealth {
        slots: run.workers,
        achieved_concurrency_mean: busy / (run.duration_ns.max(1) as f64),
        achieved_concurrency_peak: peak.max(0) as usize,
        slot_wait_ms: stat(&slot, 1.0, &pct),
        dispatch_late_ms: finite.then(|| stat(&late, 1.0, &pct)),
        handle_lag_ms: stat(&lag, 1.0, &pct),
        queue_delay_ms: stat(&q, 1.0, &pct),
        timer_late_ms: stat(&t, 1.0, &pct),
        connections_opened: reqs.iter().filter(|r| r.connect_ns.is_some()).count(),
        events: lag.len() as u64,
        kernel_timestamps,
        unstamped_reads: 0,
        median_chunk_gap_ms: median_chunk_gap_ms(reqs),
        lag_budget_ms,
        itl_samples: 0,
        merged_itl_samples: 0,
        merged_limit_share: merge_limit_share(highest_percentile),
        over_budget: Vec::new(),
    };
    (h.itl_samples, h.merged_itl_samples) = merged_gaps(reqs);
    let p99 = |s: &Stat| s.percentiles[1].1;
    let share = h.merged_share();
    if share > h.merged_limit_share {
        h.over_budget.push(format!(
            "{} of {} chunk gaps ({:.2} %) came in one read with the stream's previous chunk, \
             above {:.2} %: ITL percentiles are not measured",
            h.merged_itl_samples,
            h.itl_samples,
            share * 100.0,
            h.merged_limit_share * 100.0
        ));
    }
    if kernel_timestamps {
        // Chunk times are arrival times: the client's lag moves none of them; only merged
        // reads (above) distort what is measured.
    } else if p99(&h.queue_delay_ms) > lag_budget_ms {
        h.over_budget.push(format!(
            "p99 run-queue delay {:.2} ms with read-time stamps",
            p99(&h.queue_delay_ms)
        ));
    }
    if let Some(d) = &h.dispatch_late_ms {
        // The timer wheel adds up to 1 ms by design; count only lateness beyond that.
        if p99(d) > lag_budget_ms + 1.0 {
            h.over_budget
                .push(format!("p99 dispatch timer lateness {:.2} ms", p99(d)));
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::bench::record::{ChunkEvent, Failure};

    fn ev(t_ms: u64, choices: bool, usage: u32) -> ChunkEvent {
        ChunkEvent {
            t_ns: t_ms * 1_000_000,
            lag_ns: 0,
            text_end: 0,
            usage_tokens: usage,
            has_choices: choices,
            merged: false,
        }
    }

    fn rec(events: Vec<ChunkEvent>) -> RawRequest {
        RawRequest {
            sent_ns: 0,
            end_ns: 1_000_000_000,
            status: Some(200),
            events,
            ..RawRequest::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn completions_rules() {
        let r = rec(vec![
            ev(50, true, NO_USAGE),
            ev(60, true, NO_USAGE),
            ev(75, true, NO_USAGE),
            ev(80, false, 3),
        ]);
        let o = outcome(&r, Backend::Completions, true);
        assert!(o.success);
        assert!(close(o.ttft, 0.050));
        assert_eq!(o.itl.len(), 2);
        assert!(close(o.itl[0], 0.010) && close(o.itl[1], 0.015));
        assert!(
            close(o.latency, 0.075),
            "latency ends at the last choices chunk"
        );
        assert_eq!(o.usage_tokens, Some(3));

        let empty = outcome(&rec(vec![ev(5, false, 0)]), Backend::Completions, true);
        assert!(!empty.success);
        assert_eq!(empty.error, NO_VALID_CHUNK);
    }

    #[test]
    fn chat_rules_count_any_chunk_for_latency() {
        let r = rec(vec![
            ev(50, true, NO_USAGE),
            ev(60, true, NO_USAGE),
            ev(70, false, 2),
        ]);
        let o = outcome(&r, Backend::Chat, true);
        assert!(o.success);
        assert!(close(o.latency, 0.070));
        assert_eq!(o.itl.len(), 1);
        let ok_without_chunks = outcome(&rec(vec![]), Backend::Chat, true);
        assert!(ok_without_chunks.success);
    }

    #[test]
    fn failures_and_non_streaming() {
        let mut r = rec(vec![]);
        r.failure = Some(Failure::new("HTTPStatus", "Internal Server Error"));
        let o = outcome(&r, Backend::Completions, true);
        assert!(!o.success);
        assert_eq!(o.error_kind.as_deref(), Some("HTTPStatus"));
        let mut r = rec(vec![]);
        r.usage_tokens = Some(9);
        let o = outcome(&r, Backend::Completions, false);
        assert!(o.success && close(o.ttft, -1.0) && close(o.latency, 1.0));
        assert_eq!(o.usage_tokens, Some(9));
    }

    #[test]
    fn output_len_rules_per_flavor() {
        let mut o = outcome(
            &rec(vec![ev(1, true, NO_USAGE)]),
            Backend::Completions,
            true,
        );
        let count = |t: &str| t.split_whitespace().count();
        assert_eq!(output_len(Flavor::Standard, &o, "a b c", &count), 3);
        assert_eq!(output_len(Flavor::Sa, &o, "a b c", &count), 0);
        o.usage_tokens = Some(0);
        assert_eq!(output_len(Flavor::Standard, &o, "a b", &count), 2);
        o.usage_tokens = Some(7);
        assert_eq!(output_len(Flavor::Sa, &o, "a b", &count), 7);
    }

    fn done(ttft: f64, itl: Vec<f64>, latency: f64) -> RequestOutcome {
        RequestOutcome {
            success: true,
            ttft,
            itl,
            latency,
            usage_tokens: None,
            error: String::new(),
            error_kind: None,
        }
    }

    #[test]
    fn summary_matches_hand_computation() {
        // Two successes and one failure over 2 s.
        let outcomes = vec![
            done(0.1, vec![0.1, 0.2], 0.4),
            done(0.3, vec![0.4], 0.7),
            RequestOutcome {
                success: false,
                error_kind: Some("HTTPStatus".into()),
                ..done(0.0, vec![], 0.0)
            },
        ];
        let s = summarize(
            &outcomes,
            &[10, 20, 30],
            vec![4, 2, 0],
            &[Some(2.0), None, None],
            2.0,
            &[50.0, 99.0],
            &Goodput {
                ttft_ms: Some(200.0),
                ..Goodput::default()
            },
        );
        assert_eq!((s.total_requests, s.completed, s.failed), (3, 2, 1));
        assert_eq!((s.total_input, s.total_output), (30, 6));
        assert!(close(s.request_throughput, 1.0));
        assert!(close(s.output_throughput, 3.0));
        assert!(close(s.total_token_throughput, 18.0));
        assert!(close(s.request_goodput.unwrap(), 0.5));
        // user throughput: mean(4/0.4, 2/0.7)
        assert!(close(s.user_throughput, (10.0 + 2.0 / 0.7) / 2.0));
        // TTFT ms: [100, 300] → mean 200, median 200, std 100, p99 = 100 + 0.99·200 = 298.
        assert!(close(s.ttft.mean, 200.0) && close(s.ttft.std, 100.0));
        assert!(close(s.ttft.percentiles[1].1, 298.0));
        // TPOT: (0.4-0.1)/3 = 100 ms and (0.7-0.3)/1 = 400 ms.
        assert!(close(s.tpot.mean, 250.0));
        // ITL pooled [100, 200, 400]: median 200, std = sqrt(((−133.3)²+(−33.3)²+166.7²)/3).
        assert!(close(s.itl.median, 200.0));
        assert!((s.itl.std - 124.7219128924647).abs() < 1e-6);
        assert_eq!(s.errors.get("HTTPStatus"), Some(&1));
        assert_eq!(s.avg_decoded.as_ref().map(|a| a.mean), Some(2.0));
    }

    #[test]
    fn lag_flags_depend_on_the_timestamp_source() {
        use crate::tools::bench::driver::{LagSamples, RunOutput};
        // 300 chunks 10 ms apart, handled `lag_ms` late; every `merge_every`-th one came in one
        // read with the chunk before it.
        let slow = |lag_ms: u32, merge_every: u64| RunOutput {
            requests: vec![rec((0..300)
                .map(|k| ChunkEvent {
                    lag_ns: lag_ms * 1_000_000,
                    merged: merge_every > 0 && k > 0 && k % merge_every == 0,
                    ..ev(k * 10, true, NO_USAGE)
                })
                .collect())],
            duration_ns: 1_000_000_000,
            lag: LagSamples {
                timer_late_ns: vec![1_000_000; 10],
                queue_delay_ns: vec![5_000_000; 10],
            },
            workers: 1,
        };
        // Read stamps: a 5 ms run-queue delay is over a 1 ms budget.
        let h = client_health(&slow(0, 0), 1.0, false, 99.0);
        assert_eq!(h.over_budget.len(), 1, "{:?}", h.over_budget);
        // Kernel stamps: any handling delay moves no chunk time while reads stay apart…
        let h = client_health(&slow(9, 0), 1.0, true, 99.0);
        assert!(h.over_budget.is_empty(), "{:?}", h.over_budget);
        assert_eq!((h.itl_samples, h.merged_itl_samples), (299, 0));
        // …one merged gap in 299 (0.33 %) is within half the p99 tail…
        let h = client_health(&slow(1, 250), 1.0, true, 99.0);
        assert_eq!(h.merged_itl_samples, 1);
        assert!(h.over_budget.is_empty(), "{:?}", h.over_budget);
        // …but not of a p99.9 tail, nor are 1 in 20 of p99's.
        assert_eq!(
            client_health(&slow(1, 250), 1.0, true, 99.9)
                .over_budget
                .len(),
            1
        );
        let h = client_health(&slow(1, 20), 1.0, true, 99.0);
        assert!(
            h.over_budget[0].contains("14 of 299 chunk gaps (4.68 %) came in one read"),
            "{:?}",
            h.over_budget
        );
        assert_eq!(h.events, 300);
    }

    #[test]
    fn median_gap_ignores_chunks_that_arrived_together() {
        let r = rec(vec![
            ev(0, true, 0),
            ev(10, true, 0),
            ev(30, true, 0),
            ev(30, false, 2),
        ]);
        assert!((median_chunk_gap_ms(&[r]) - 15.0).abs() < 1e-9);
        assert_eq!(median_chunk_gap_ms(&[]), 0.0);
    }

    #[test]
    fn empty_lists_are_zero() {
        let s = summarize(&[], &[], vec![], &[], 1.0, &[99.0], &Goodput::default());
        assert_eq!(s.ttft.mean, 0.0);
        assert_eq!(s.itl.percentiles, vec![(99.0, 0.0)]);
        assert_eq!(s.request_goodput, None);
        let one_token = summarize(
            &[done(0.1, vec![], 0.1)],
            &[1],
            vec![1],
            &[None],
            1.0,
            &[99.0],
            &Goodput::default(),
        );
        assert_eq!(one_token.tpot.mean, 0.0, "TPOT skips output_len ≤ 1");
    }
}
