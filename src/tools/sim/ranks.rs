//! Attention data parallelism: one scheduler per attention-DP rank, stepped in lock-step.
//!
//! With `enable_attention_dp: true` TensorRT-LLM runs one scheduler per rank
//! (`tensor_parallel_size` of them); `max_batch_size` and `max_num_tokens` are per-rank limits
//! (upstream names such configs `dep<N>_bs<B>` and drives them at concurrency `N × B`), a new
//! request goes to the rank with the fewest active requests, and every rank runs each forward
//! pass together with the others (the MoE layers exchange tokens), so an iteration lasts as long
//! as its busiest rank's. [`Ranks`] models exactly that over one [`Batcher`] per rank; with one
//! rank it is the plain batcher.
//!
//! With `TLLM_BENCHMARK_REQ_QUEUES_SIZE = N` and several ranks the gate counts schedulable
//! generation requests over all ranks against `min(N, ranks × max_batch_size)`.

use std::time::{Duration, Instant};

use super::latency::{BatchShape, LatencyModel};
use super::scheduler::{Batch, Batcher, Counters, EngineRequest, Limits, Sink, Step};
use super::spec::SpecParams;

/// One iteration over every rank that runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RanksBatch {
    /// Totals over the ranks (what the iteration log reports).
    pub total: Batch,
    /// The shape that sets the iteration's length: the rank whose step is the longest.
    pub slowest: BatchShape,
}

/// What the engine should do next (as [`Step`], over all ranks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RanksStep {
    /// Nothing is active on any rank.
    Idle,
    /// Only KV transfers are in flight; the earliest completes then.
    WaitUntil(Instant),
    /// The queue-size gate holds the forward pass.
    Hold {
        /// Generation requests schedulable now (all ranks).
        schedulable: u64,
        /// Needed to open the gate.
        threshold: u64,
    },
    /// Run a forward pass on the ranks that have work.
    Run(RanksBatch),
}

/// The per-rank batchers of one engine.
#[derive(Debug)]
pub struct Ranks<S> {
    ranks: Vec<Batcher<S>>,
    /// Engine-wide queue gate (several ranks only; one rank keeps it in its batcher).
    gate_threshold: Option<u64>,
    /// Ranks that ran in the iteration planned last.
    ran: Vec<bool>,
}

impl<S: Sink> Ranks<S> {
    /// `count` ranks (at least 1), each with `limits`; `queue_gate` as for [`Batcher::new`].
    pub fn new(
        count: u64,
        limits: Limits,
        queue_gate: Option<u64>,
        spec: Option<SpecParams>,
    ) -> Self {
        let count = count.max(1);
        let (rank_gate, gate_threshold) = if count == 1 {
            (queue_gate, None)
        } else {
            let capacity = limits.max_batch_size.saturating_mul(count);
            (None, queue_gate.filter(|&n| n > 0).map(|n| n.min(capacity)))
        };
        let ranks = (0..count)
            .map(|_| Batcher::new(limits, rank_gate).with_speculation(spec))
            .collect();
        Self {
            ranks,
            gate_threshold,
            ran: vec![false; count as usize],
        }
    }

    /// Hands a request to the rank with the fewest active requests (the lowest index on a tie).
    pub fn push(&mut self, req: EngineRequest<S>, now: Instant, kv_transfer: Duration) {
        let rank = self
            .ranks
            .iter_mut()
            .min_by_key(|b| b.active())
            .expect("at least one rank");
        rank.push(req, now, kv_transfer);
    }

    /// Requests known to any rank.
    pub fn active(&self) -> usize {
        self.ranks.iter().map(Batcher::active).sum()
    }

    /// Requests on each rank (waiting, transferring or running).
    #[cfg(test)]
    pub fn active_per_rank(&self) -> Vec<usize> {
        self.ranks.iter().map(Batcher::active).collect()
    }

    /// True when no rank has anything to do.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ranks.iter().all(Batcher::is_empty)
    }

    /// Counters summed over the ranks.
    pub fn counters(&self) -> Counters {
        self.ranks
            .iter()
            .map(Batcher::counters)
            .fold(Counters::default(), |a, c| Counters {
                fetched_this_iter: a.fetched_this_iter + c.fetched_this_iter,
                fetched_total: a.fetched_total + c.fetched_total,
                tokens_total: a.tokens_total + c.tokens_total,
            })
    }

    /// Opens the queue-size gate for good.
    pub fn open_gate(&mut self) {
        self.gate_threshold = None;
        self.ranks.iter_mut().for_each(Batcher::open_gate);
    }

    /// Decides the next iteration; `latency` picks the slowest rank.
    pub fn plan(&mut self, now: Instant, latency: &LatencyModel) -> RanksStep {
        self.ran.iter_mut().for_each(|r| *r = false);
        if let Some(threshold) = self.gate_threshold {
            let schedulable: u64 = self.ranks.iter_mut().map(|b| b.schedulable(now)).sum();
            if schedulable < threshold {
                return if self.ranks.iter().all(|b| !b.has_queued_or_running()) {
                    self.plan_idle()
                } else {
                    RanksStep::Hold {
                        schedulable,
                        threshold,
                    }
                };
            }
            self.gate_threshold = None;
        }
        let mut total = Batch::default();
        let mut slowest = BatchShape::default();
        let mut slowest_ms = f64::NEG_INFINITY;
        let mut wait: Option<Instant> = None;
        let mut hold = None;
        for (i, rank) in self.ranks.iter_mut().enumerate() {
            match rank.plan(now) {
                Step::Run(batch) => {
                    self.ran[i] = true;
                    total.num_scheduled += batch.num_scheduled;
                    total.shape.gen_requests += batch.shape.gen_requests;
                    total.shape.draft_tokens += batch.shape.draft_tokens;
                    total.shape.ctx_requests += batch.shape.ctx_requests;
                    total.shape.ctx_tokens += batch.shape.ctx_tokens;
                    let ms = latency.nominal_step_ms(batch.shape);
                    if ms > slowest_ms {
                        slowest_ms = ms;
                        slowest = batch.shape;
                    }
                }
                Step::WaitUntil(t) => wait = Some(wait.map_or(t, |w| w.min(t))),
                Step::Hold {
                    schedulable,
                    threshold,
                } => hold = Some((schedulable, threshold)),
                Step::Idle => {}
            }
        }
        if self.ran.iter().any(|&r| r) {
            RanksStep::Run(RanksBatch { total, slowest })
        } else if let Some((schedulable, threshold)) = hold {
            RanksStep::Hold {
                schedulable,
                threshold,
            }
        } else if let Some(t) = wait {
            RanksStep::WaitUntil(t)
        } else {
            RanksStep::Idle
        }
    }

    fn plan_idle(&self) -> RanksStep {
        match self.ranks.iter().filter_map(|b| b.next_transfer()).min() {
            Some(t) => RanksStep::WaitUntil(t),
            None => RanksStep::Idle,
        }
    }

    /// Applies the iteration planned last on the ranks that ran.
    pub fn complete(&mut self) {
        for (rank, ran) in self.ranks.iter_mut().zip(&self.ran) {
            if *ran {
                rank.complete();
            }
        }
        self.ran.iter_mut().for_each(|r| *r = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::sim::config::LatencyConfig;
    use crate::tools::sim::scheduler::{EngineEvent, RequestKind};
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Log(Rc<RefCell<Vec<EngineEvent>>>);

    impl Sink for Log {
        fn send(&self, event: EngineEvent) -> bool {
            self.0.borrow_mut().push(event);
            true
        }
        fn is_closed(&self) -> bool {
            false
        }
    }

    fn limits(max_batch_size: u64, max_num_tokens: u64) -> Limits {
        Limits {
            max_batch_size,
            max_num_tokens,
            stream_interval: 10,
            chunked_prefill: true,
        }
    }

    fn req(log: &Log, prompt: u64, max_tokens: u64, kind: RequestKind) -> EngineRequest<Log> {
        EngineRequest {
            prompt_tokens: prompt,
            max_tokens,
            kind,
            streaming: true,
            draft_tokens: 0,
            accept_seed: 0,
            sink: log.clone(),
        }
    }

    fn model() -> LatencyModel {
        LatencyModel::new(LatencyConfig::default(), 0)
    }

    #[test]
    fn limits_are_per_rank_and_requests_spread_evenly() {
        let log = Log::default();
        let mut r = Ranks::new(4, limits(2, 100), None, None);
        let now = Instant::now();
        for _ in 0..10 {
            r.push(req(&log, 10, 5, RequestKind::Full), now, Duration::ZERO);
        }
        assert_eq!(r.active_per_rank(), vec![3, 3, 2, 2]);
        let RanksStep::Run(batch) = r.plan(now, &model()) else {
            panic!("expected a run")
        };
        // 2 per rank × 4 ranks start prefill; 2 requests wait for a free slot.
        assert_eq!(batch.total.shape.ctx_requests, 8);
        assert_eq!(batch.total.shape.ctx_tokens, 80);
        assert_eq!(
            batch.slowest.ctx_tokens, 20,
            "the busiest rank sets the pace"
        );
        r.complete();
        while !r.is_empty() {
            if let RanksStep::Run(b) = r.plan(now, &model()) {
                assert!(b.slowest.gen_requests + b.slowest.ctx_requests <= 2);
            }
            r.complete();
        }
        let finished = log.0.borrow().iter().filter(|e| e.finished).count();
        assert_eq!(finished, 10);
    }

    #[test]
    fn a_lone_prefill_costs_its_whole_prompt_on_one_rank() {
        let log = Log::default();
        let mut r = Ranks::new(8, limits(4, 4096), None, None);
        let now = Instant::now();
        r.push(req(&log, 1024, 2, RequestKind::Full), now, Duration::ZERO);
        let RanksStep::Run(batch) = r.plan(now, &model()) else {
            panic!("expected a run")
        };
        assert_eq!(batch.slowest.ctx_tokens, 1024);
        assert_eq!(batch.total.num_scheduled, 1);
    }

    #[test]
    fn queue_gate_counts_every_rank() {
        let log = Log::default();
        let mut r = Ranks::new(2, limits(4, 100), Some(6), None);
        let now = Instant::now();
        for _ in 0..5 {
            r.push(
                req(&log, 4, 3, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
        }
        assert_eq!(
            r.plan(now, &model()),
            RanksStep::Hold {
                schedulable: 5,
                threshold: 6
            }
        );
        r.push(
            req(&log, 4, 3, RequestKind::GenerationOnly),
            now,
            Duration::ZERO,
        );
        let RanksStep::Run(batch) = r.plan(now, &model()) else {
            panic!("the gate opens at 6 over both ranks")
        };
        assert_eq!(batch.total.shape.gen_requests, 6);
        assert_eq!(batch.slowest.gen_requests, 3);
    }

    #[test]
    fn gate_threshold_is_capped_at_the_engine_capacity() {
        let log = Log::default();
        let mut r = Ranks::new(2, limits(2, 100), Some(1024), None);
        let now = Instant::now();
        for _ in 0..4 {
            r.push(
                req(&log, 4, 3, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
        }
        assert!(matches!(r.plan(now, &model()), RanksStep::Run(_)));
    }

    #[test]
    fn one_rank_is_the_plain_batcher() {
        let now = Instant::now();
        let log = Log::default();
        let mut r = Ranks::new(1, limits(2, 100), Some(3), None);
        let mut b = Batcher::new(limits(2, 100), Some(3));
        for _ in 0..2 {
            r.push(
                req(&log, 4, 3, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
            b.push(
                req(&log, 4, 3, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
        }
        // max_batch_size 2 caps the gate at 2: both run.
        let RanksStep::Run(rb) = r.plan(now, &model()) else {
            panic!("expected a run")
        };
        let Step::Run(bb) = b.plan(now) else {
            panic!("expected a run")
        };
        assert_eq!(rb.total, bb);
        assert_eq!(rb.slowest, bb.shape);
    }
}
