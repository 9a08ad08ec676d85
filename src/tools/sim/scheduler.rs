//! Continuous (in-flight) batching: which requests run in the next iteration, and what each
//! iteration produces.
//!
//! Pure state machine, driven by the engine thread (`engine.rs`) which owns the clock. Policy,
//! modelled on TensorRT-LLM's PyTorch executor with `GUARANTEED_NO_EVICT` and FCFS:
//!
//! * every admitted request in the decode phase runs each iteration and produces one token, or
//!   with speculative decoding `1 + a` tokens (capped by what is left of `max_tokens`), where `a`
//!   of the drafts proposed in its previous iteration are accepted (`spec.rs`); the iteration
//!   that produces a request's first token counts as its first decoding iteration, as in
//!   TensorRT-LLM;
//! * requests are admitted in arrival order while fewer than `max_batch_size` run and their
//!   context tokens fit in what is left of `max_num_tokens` (prompts are split over iterations
//!   only with `enable_chunked_prefill`);
//! * a `generation_only` request first spends its KV-transfer time outside the batch; when it is
//!   admitted its first token (computed by the context worker) is returned at once and it decodes
//!   from the next token on, its first step verifying the draft tokens the context worker sent;
//! * tokens are streamed when a request has produced 1 token, whenever its count reaches or passes
//!   the next multiple of `stream_interval`, and when it finishes, or only at the end when not
//!   streaming;
//! * with `TLLM_BENCHMARK_REQ_QUEUES_SIZE = N` on a disaggregated worker, no forward pass runs
//!   until `min(N, max_batch_size)` generation requests are schedulable; after that the gate
//!   stays open (upstream `can_forward`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::latency::BatchShape;
use super::spec::{AcceptanceRng, SpecParams};

/// What kind of work a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Prefill then decode (aggregated serving).
    Full,
    /// `context_only`: prefill, return the first token, finish.
    ContextOnly,
    /// `generation_only`: KV transfer, then decode from the given first token.
    GenerationOnly,
}

/// A progress report sent to the request's HTTP handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineEvent {
    /// Index of the first token in this report (0 = first output token).
    pub start: u64,
    /// Number of tokens in this report.
    pub count: u64,
    /// Decoding iterations the request has run so far (the one that produced its first token
    /// included): `avg_decoded_tokens_per_iter` = `(start + count) / iterations`.
    pub iterations: u64,
    /// The request is complete.
    pub finished: bool,
}

/// Where a request's events go; `send` returns false when nobody listens any more.
pub trait Sink {
    /// Delivers an event; false when the receiver is gone (client disconnected).
    fn send(&self, event: EngineEvent) -> bool;
    /// True when the receiver is gone.
    fn is_closed(&self) -> bool;
}

impl Sink for tokio::sync::mpsc::UnboundedSender<EngineEvent> {
    fn send(&self, event: EngineEvent) -> bool {
        tokio::sync::mpsc::UnboundedSender::send(self, event).is_ok()
    }
    fn is_closed(&self) -> bool {
        tokio::sync::mpsc::UnboundedSender::is_closed(self)
    }
}

/// A request handed to the engine.
#[derive(Debug)]
pub struct EngineRequest<S> {
    /// Prompt length in tokens.
    pub prompt_tokens: u64,
    /// Output tokens to produce (>= 1).
    pub max_tokens: u64,
    /// Kind of work.
    pub kind: RequestKind,
    /// Stream intermediate tokens (otherwise only the final event is sent).
    pub streaming: bool,
    /// Draft tokens a `generation_only` request brings from the context worker; its first
    /// decoding step verifies (at most the draft length of) them.
    pub draft_tokens: u64,
    /// Seed of the request's draft-acceptance stream (sampled acceptance only).
    pub accept_seed: u64,
    /// Event receiver.
    pub sink: S,
}

/// Engine limits from the engine config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most requests in one iteration.
    pub max_batch_size: u64,
    /// Most tokens in one iteration.
    pub max_num_tokens: u64,
    /// Tokens per streamed chunk.
    pub stream_interval: u64,
    /// Split long prompts over iterations.
    pub chunked_prefill: bool,
}

#[derive(Debug)]
struct Slot<S> {
    req: EngineRequest<S>,
    produced: u64,
    emitted: u64,
    prefilled: u64,
    decoding: bool,
    sched_decode: bool,
    sched_ctx: u64,
    /// Decoding iterations so far.
    iterations: u64,
    /// Drafts the next decoding step verifies.
    next_drafts: u64,
    /// Drafts the scheduled decoding step verifies.
    sched_drafts: u64,
    /// Acceptance stream; present when speculative decoding is on.
    rng: Option<AcceptanceRng>,
}

impl<S: Sink> Slot<S> {
    fn new(req: EngineRequest<S>, spec: Option<&SpecParams>) -> Self {
        let rng = spec.map(|_| AcceptanceRng::new(req.accept_seed));
        Self {
            req,
            produced: 0,
            emitted: 0,
            prefilled: 0,
            decoding: false,
            sched_decode: false,
            sched_ctx: 0,
            iterations: 0,
            next_drafts: 0,
            sched_drafts: 0,
            rng,
        }
    }

    /// The first token exists (prefill done, or received from a context worker): one decoding
    /// iteration, and `drafts` drafts for the next step.
    fn first_token(&mut self, drafts: u64) {
        self.produced = 1;
        self.iterations = 1;
        self.decoding = true;
        self.next_drafts = drafts;
    }

    /// Applies the scheduled decoding step; returns the tokens it produced (at least 1).
    fn decode(&mut self, spec: Option<&SpecParams>) -> u64 {
        let accepted = match (spec, self.rng.as_mut()) {
            (Some(p), Some(rng)) => p.accepted(self.sched_drafts, rng),
            _ => 0,
        };
        let left = self.req.max_tokens.saturating_sub(self.produced).max(1);
        let step = (1 + accepted).min(left);
        self.produced += step;
        self.iterations += 1;
        self.next_drafts = spec.map_or(0, |p| p.draft_len);
        step
    }

    fn finished(&self) -> bool {
        self.produced >= self.req.max_tokens
            || (self.req.kind == RequestKind::ContextOnly && self.produced >= 1)
    }

    /// Sends pending tokens if the streaming rule says so; false when the client is gone.
    fn emit(&mut self, stream_interval: u64) -> bool {
        let finished = self.finished();
        // A step may add several tokens (speculative decoding), so "every stream_interval
        // tokens" means "whenever the count reaches or passes the next multiple".
        let due = finished
            || (self.req.streaming
                && (self.produced == 1
                    || self.produced / stream_interval > self.emitted / stream_interval));
        if !due || self.produced == self.emitted && !finished {
            return true;
        }
        let event = EngineEvent {
            start: self.emitted,
            count: self.produced - self.emitted,
            iterations: self.iterations,
            finished,
        };
        self.emitted = self.produced;
        self.req.sink.send(event)
    }
}

/// One iteration's schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Cost-relevant shape.
    pub shape: BatchShape,
    /// Requests scheduled (context + generation).
    pub num_scheduled: u64,
}

/// What the engine should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing is active: block until a request arrives.
    Idle,
    /// Only KV transfers are in flight: an empty iteration until the earliest completes.
    WaitUntil(Instant),
    /// The `TLLM_BENCHMARK_REQ_QUEUES_SIZE` gate holds the forward pass.
    Hold {
        /// Generation requests schedulable now.
        schedulable: u64,
        /// Needed to open the gate.
        threshold: u64,
    },
    /// Run a forward pass over this batch.
    Run(Batch),
}

/// Counters reported in iteration log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests received since the previous iteration.
    pub fetched_this_iter: u64,
    /// Requests received in total.
    pub fetched_total: u64,
    /// Output tokens produced in total.
    pub tokens_total: u64,
}

/// The batching state machine.
#[derive(Debug)]
pub struct Batcher<S> {
    limits: Limits,
    queue: VecDeque<Slot<S>>,
    transferring: Vec<(Instant, Slot<S>)>,
    running: Vec<Slot<S>>,
    gate_threshold: Option<u64>,
    counters: Counters,
    spec: Option<SpecParams>,
}

impl<S: Sink> Batcher<S> {
    /// An empty batcher; `queue_gate` is `TLLM_BENCHMARK_REQ_QUEUES_SIZE` when it applies.
    pub fn new(limits: Limits, queue_gate: Option<u64>) -> Self {
        Self {
            limits,
            queue: VecDeque::new(),
            transferring: Vec::new(),
            running: Vec::new(),
            gate_threshold: queue_gate
                .filter(|&n| n > 0)
                .map(|n| n.min(limits.max_batch_size)),
            counters: Counters::default(),
            spec: None,
        }
    }

    /// Turns speculative decoding on (`None` keeps one token per step).
    pub fn with_speculation(mut self, spec: Option<SpecParams>) -> Self {
        self.spec = spec;
        self
    }

    fn draft_len(&self) -> u64 {
        self.spec.map_or(0, |p| p.draft_len)
    }

    /// Accepts a request; `kv_transfer` is the transfer time of a `generation_only` request.
    pub fn push(&mut self, req: EngineRequest<S>, now: Instant, kv_transfer: Duration) {
        self.counters.fetched_this_iter += 1;
        self.counters.fetched_total += 1;
        let slot = Slot::new(req, self.spec.as_ref());
        if slot.req.kind == RequestKind::GenerationOnly {
            self.transferring.push((now + kv_transfer, slot));
        } else {
            self.queue.push_back(slot);
        }
    }

    /// True when no request is waiting, transferring or running.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.transferring.is_empty() && self.running.is_empty()
    }

    /// Requests known to the engine (waiting, transferring or running).
    pub fn active(&self) -> usize {
        self.queue.len() + self.transferring.len() + self.running.len()
    }

    /// Counters for the iteration log.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Opens the queue-size gate for good (after its wait limit).
    pub fn open_gate(&mut self) {
        self.gate_threshold = None;
    }

    /// Generation requests schedulable at `now` (KV transfers finished by then included).
    pub fn schedulable(&mut self, now: Instant) -> u64 {
        self.finish_transfers(now);
        self.schedulable_generation()
    }

    /// True when a request waits for a slot or runs (KV transfers in flight not counted).
    pub fn has_queued_or_running(&self) -> bool {
        !self.queue.is_empty() || !self.running.is_empty()
    }

    /// When the earliest KV transfer in flight completes.
    pub fn next_transfer(&self) -> Option<Instant> {
        self.transferring.iter().map(|(t, _)| *t).min()
    }

    /// Decides the next iteration at time `now`.
    pub fn plan(&mut self, now: Instant) -> Step {
        self.finish_transfers(now);
        self.queue.retain(|s| !s.req.sink.is_closed());
        self.running.retain(|s| !s.req.sink.is_closed());
        if self.running.is_empty() && self.queue.is_empty() {
            return match self.transferring.iter().map(|(t, _)| *t).min() {
                Some(t) => Step::WaitUntil(t),
                None => Step::Idle,
            };
        }
        if let Some(threshold) = self.gate_threshold {
            let schedulable = self.schedulable_generation();
            if schedulable < threshold {
                return Step::Hold {
                    schedulable,
                    threshold,
                };
            }
            self.gate_threshold = None;
        }
        Step::Run(self.schedule())
    }

    /// Applies the results of the iteration planned last: tokens are produced and reported.
    pub fn complete(&mut self) {
        let si = self.limits.stream_interval;
        let spec = self.spec;
        let draft_len = self.draft_len();
        let mut produced = 0;
        self.running.retain_mut(|slot| {
            if slot.sched_decode {
                produced += slot.decode(spec.as_ref());
            }
            if slot.sched_ctx > 0 {
                slot.prefilled += slot.sched_ctx;
                if slot.prefilled >= slot.req.prompt_tokens {
                    slot.first_token(draft_len);
                    produced += 1;
                }
            }
            slot.sched_decode = false;
            slot.sched_drafts = 0;
            slot.sched_ctx = 0;
            let alive = slot.emit(si);
            alive && !slot.finished()
        });
        self.counters.tokens_total += produced;
        self.counters.fetched_this_iter = 0;
    }

    fn finish_transfers(&mut self, now: Instant) {
        if self.transferring.iter().all(|(t, _)| *t > now) {
            return;
        }
        let mut done: Vec<(Instant, Slot<S>)> = Vec::new();
        let mut i = 0;
        while i < self.transferring.len() {
            if self.transferring[i].0 <= now {
                done.push(self.transferring.swap_remove(i));
            } else {
                i += 1;
            }
        }
        done.sort_by_key(|(t, _)| *t);
        self.queue.extend(done.into_iter().map(|(_, s)| s));
    }

    fn schedulable_generation(&self) -> u64 {
        let decoding = self.running.iter().filter(|s| s.decoding).count() as u64;
        let ready = self
            .queue
            .iter()
            .filter(|s| s.req.kind == RequestKind::GenerationOnly)
            .count() as u64;
        (decoding + ready).min(self.limits.max_batch_size)
    }

    fn schedule(&mut self) -> Batch {
        let mut budget = self.limits.max_num_tokens;
        let mut shape = BatchShape::default();
        for slot in &mut self.running {
            if slot.decoding {
                slot.sched_decode = true;
                slot.sched_drafts = slot.next_drafts;
                budget = budget.saturating_sub(1 + slot.next_drafts);
                shape.gen_requests += 1;
                shape.draft_tokens += slot.next_drafts;
            }
        }
        for slot in &mut self.running {
            if !slot.decoding {
                let chunk = (slot.req.prompt_tokens - slot.prefilled).min(budget);
                if chunk > 0 {
                    slot.sched_ctx = chunk;
                    budget -= chunk;
                    shape.ctx_requests += 1;
                    shape.ctx_tokens += chunk;
                }
            }
        }
        let si = self.limits.stream_interval;
        let draft_len = self.draft_len();
        while (self.running.len() as u64) < self.limits.max_batch_size {
            let Some(head) = self.queue.front() else {
                break;
            };
            if head.req.kind == RequestKind::GenerationOnly {
                if budget == 0 {
                    break;
                }
                let mut slot = self.queue.pop_front().expect("head exists");
                // The context worker computed the first token (and the drafts it verifies
                // next): return it now.
                let drafts = draft_len.min(slot.req.draft_tokens);
                slot.first_token(drafts);
                self.counters.tokens_total += 1;
                if !slot.emit(si) || slot.finished() {
                    continue;
                }
                slot.sched_decode = true;
                slot.sched_drafts = drafts;
                budget = budget.saturating_sub(1 + drafts);
                shape.gen_requests += 1;
                shape.draft_tokens += drafts;
                self.running.push(slot);
            } else {
                let remaining = head.req.prompt_tokens;
                let chunk = if self.limits.chunked_prefill {
                    remaining.min(budget)
                } else if remaining <= budget {
                    remaining
                } else {
                    0
                };
                if chunk == 0 {
                    break;
                }
                let mut slot = self.queue.pop_front().expect("head exists");
                slot.sched_ctx = chunk;
                budget -= chunk;
                shape.ctx_requests += 1;
                shape.ctx_tokens += chunk;
                self.running.push(slot);
            }
        }
        Batch {
            shape,
            num_scheduled: shape.gen_requests + shape.ctx_requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Log(Rc<RefCell<Vec<EngineEvent>>>, Rc<RefCell<bool>>);

    impl Sink for Log {
        fn send(&self, event: EngineEvent) -> bool {
            self.0.borrow_mut().push(event);
            !*self.1.borrow()
        }
        fn is_closed(&self) -> bool {
            *self.1.borrow()
        }
    }

    fn limits(max_batch_size: u64, max_num_tokens: u64, stream_interval: u64) -> Limits {
        Limits {
            max_batch_size,
            max_num_tokens,
            stream_interval,
            chunked_prefill: false,
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

    fn run(b: &mut Batcher<Log>, now: Instant) -> Batch {
        match b.plan(now) {
            Step::Run(batch) => {
                b.complete();
                batch
            }
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn full_request_streams_by_interval() {
        let log = Log::default();
        let mut b = Batcher::new(limits(8, 100, 4), None);
        let now = Instant::now();
        b.push(req(&log, 10, 9, RequestKind::Full), now, Duration::ZERO);
        let first = run(&mut b, now);
        assert_eq!(first.shape.ctx_tokens, 10);
        assert_eq!(first.num_scheduled, 1);
        while !b.is_empty() {
            let batch = run(&mut b, now);
            assert_eq!(batch.shape.gen_requests, 1);
        }
        let events = log.0.borrow().clone();
        let counts: Vec<_> = events
            .iter()
            .map(|e| (e.start, e.count, e.finished))
            .collect();
        assert_eq!(
            counts,
            vec![(0, 1, false), (1, 3, false), (4, 4, false), (8, 1, true)]
        );
        assert_eq!(b.counters().tokens_total, 9);
    }

    #[test]
    fn batch_size_and_token_budget_bound_admission() {
        let log = Log::default();
        let mut b = Batcher::new(limits(2, 25, 10), None);
        let now = Instant::now();
        for _ in 0..3 {
            b.push(req(&log, 10, 5, RequestKind::Full), now, Duration::ZERO);
        }
        let first = run(&mut b, now);
        assert_eq!(first.shape.ctx_requests, 2);
        let second = run(&mut b, now);
        assert_eq!(
            (second.shape.gen_requests, second.shape.ctx_requests),
            (2, 0)
        );
        let long = Log::default();
        let mut b = Batcher::new(limits(4, 8, 10), None);
        b.push(req(&long, 20, 2, RequestKind::Full), now, Duration::ZERO);
        assert!(matches!(
            b.plan(now),
            Step::Run(Batch {
                num_scheduled: 0,
                ..
            })
        ));
    }

    #[test]
    fn chunked_prefill_splits_long_prompts() {
        let log = Log::default();
        let mut b = Batcher::new(
            Limits {
                chunked_prefill: true,
                ..limits(4, 8, 10)
            },
            None,
        );
        let now = Instant::now();
        b.push(req(&log, 20, 1, RequestKind::Full), now, Duration::ZERO);
        let chunks: Vec<_> = (0..3).map(|_| run(&mut b, now).shape.ctx_tokens).collect();
        assert_eq!(chunks, vec![8, 8, 4]);
        assert!(b.is_empty());
        assert_eq!(log.0.borrow().len(), 1);
    }

    #[test]
    fn context_only_finishes_after_prefill() {
        let log = Log::default();
        let mut b = Batcher::new(limits(4, 100, 10), None);
        let now = Instant::now();
        b.push(
            req(&log, 10, 50, RequestKind::ContextOnly),
            now,
            Duration::ZERO,
        );
        run(&mut b, now);
        assert!(b.is_empty());
        assert_eq!(
            log.0.borrow().as_slice(),
            &[EngineEvent {
                start: 0,
                count: 1,
                iterations: 1,
                finished: true
            }]
        );
    }

    #[test]
    fn generation_only_waits_for_transfer_then_returns_first_token() {
        let log = Log::default();
        let mut b = Batcher::new(limits(4, 100, 10), None);
        let now = Instant::now();
        let ready = now + Duration::from_millis(5);
        b.push(
            req(&log, 10, 3, RequestKind::GenerationOnly),
            now,
            Duration::from_millis(5),
        );
        assert_eq!(b.plan(now), Step::WaitUntil(ready));
        let batch = run(&mut b, ready);
        assert_eq!(batch.shape.gen_requests, 1);
        run(&mut b, ready);
        assert!(b.is_empty());
        let counts: Vec<_> = log.0.borrow().iter().map(|e| (e.start, e.count)).collect();
        assert_eq!(counts, vec![(0, 1), (1, 2)]);
    }

    #[test]
    fn queue_gate_holds_until_threshold_then_stays_open() {
        let log = Log::default();
        let mut b = Batcher::new(limits(8, 100, 10), Some(3));
        let now = Instant::now();
        for _ in 0..2 {
            b.push(
                req(&log, 4, 5, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
        }
        assert_eq!(
            b.plan(now),
            Step::Hold {
                schedulable: 2,
                threshold: 3
            }
        );
        assert!(log.0.borrow().is_empty());
        b.push(
            req(&log, 4, 5, RequestKind::GenerationOnly),
            now,
            Duration::ZERO,
        );
        assert_eq!(run(&mut b, now).shape.gen_requests, 3);
        b.push(req(&log, 4, 5, RequestKind::Full), now, Duration::ZERO);
        assert!(matches!(b.plan(now), Step::Run(_)));
    }

    #[test]
    fn gate_threshold_is_capped_at_max_batch_size() {
        let log = Log::default();
        let mut b = Batcher::new(limits(2, 100, 10), Some(64));
        let now = Instant::now();
        for _ in 0..2 {
            b.push(
                req(&log, 4, 5, RequestKind::GenerationOnly),
                now,
                Duration::ZERO,
            );
        }
        assert!(matches!(b.plan(now), Step::Run(_)));
    }

    #[test]
    fn disconnected_clients_are_dropped() {
        let log = Log::default();
        let mut b = Batcher::new(limits(4, 100, 1), None);
        let now = Instant::now();
        b.push(req(&log, 4, 100, RequestKind::Full), now, Duration::ZERO);
        run(&mut b, now);
        *log.1.borrow_mut() = true;
        assert_eq!(b.plan(now), Step::Idle);
        assert!(b.is_empty());
    }

    #[test]
    fn non_streaming_reports_only_the_end() {
        let log = Log::default();
        let mut b = Batcher::new(limits(4, 100, 1), None);
        let now = Instant::now();
        let mut r = req(&log, 4, 5, RequestKind::Full);
        r.streaming = false;
        b.push(r, now, Duration::ZERO);
        while !b.is_empty() {
            run(&mut b, now);
        }
        assert_eq!(
            log.0.borrow().as_slice(),
            &[EngineEvent {
                start: 0,
                count: 5,
                iterations: 5,
                finished: true
            }]
        );
    }

    fn spec(draft_len: u64, forced: Option<u64>, rate: f64) -> Option<SpecParams> {
        SpecParams::new(draft_len, forced, rate)
    }

    fn drain(b: &mut Batcher<Log>, now: Instant) -> Vec<Batch> {
        let mut batches = Vec::new();
        while !b.is_empty() {
            batches.push(run(b, now));
        }
        batches
    }

    #[test]
    fn forced_acceptance_decodes_one_plus_n_per_step() {
        let log = Log::default();
        let mut b = Batcher::new(limits(8, 100, 10), None).with_speculation(spec(3, Some(2), 0.0));
        let now = Instant::now();
        // 1 (prefill) + 3 × 3 + a last step capped at 1 token = 11 tokens in 5 iterations.
        b.push(req(&log, 4, 11, RequestKind::Full), now, Duration::ZERO);
        let batches = drain(&mut b, now);
        assert_eq!(batches.len(), 5);
        assert_eq!(batches[0].shape.ctx_tokens, 4);
        for batch in &batches[1..] {
            assert_eq!(
                (batch.shape.gen_requests, batch.shape.draft_tokens),
                (1, 3),
                "every decoding step verifies the full draft"
            );
        }
        let events: Vec<_> = log
            .0
            .borrow()
            .iter()
            .map(|e| (e.start, e.count, e.iterations, e.finished))
            .collect();
        // stream_interval 10: token 1, then the step that reaches 10 (1+3+3+3), then the end.
        assert_eq!(
            events,
            vec![(0, 1, 1, false), (1, 9, 4, false), (10, 1, 5, true)]
        );
        assert_eq!(b.counters().tokens_total, 11);
    }

    #[test]
    fn stream_interval_counts_tokens_even_when_steps_jump() {
        let log = Log::default();
        let mut b = Batcher::new(limits(8, 100, 4), None).with_speculation(spec(2, Some(2), 0.0));
        let now = Instant::now();
        b.push(req(&log, 4, 12, RequestKind::Full), now, Duration::ZERO);
        drain(&mut b, now);
        // Counts after each step: 1, 4, 7, 10, 12. Chunks when 4 and 8 are reached or passed.
        let ends: Vec<_> = log.0.borrow().iter().map(|e| e.start + e.count).collect();
        assert_eq!(ends, vec![1, 4, 10, 12]);
    }

    #[test]
    fn sampled_acceptance_is_reproducible_per_request() {
        let outcome = |seed: u64| {
            let log = Log::default();
            let mut b = Batcher::new(limits(8, 100, 1), None).with_speculation(spec(3, None, 0.6));
            let now = Instant::now();
            let mut r = req(&log, 4, 200, RequestKind::Full);
            r.accept_seed = seed;
            b.push(r, now, Duration::ZERO);
            drain(&mut b, now);
            log.0.borrow().clone()
        };
        let a = outcome(5);
        assert_eq!(a, outcome(5));
        assert_ne!(a, outcome(6));
        let last = a.last().unwrap();
        assert_eq!(last.start + last.count, 200);
        for e in &a[1..] {
            assert!((1..=4).contains(&e.count), "1 + up to 3 accepted: {e:?}");
        }
        let avg = 200.0 / last.iterations as f64;
        assert!(avg > 1.5 && avg < 3.5, "{avg}");
    }

    #[test]
    fn generation_only_first_step_verifies_the_context_drafts() {
        let now = Instant::now();
        let shapes = |draft_tokens: u64| {
            let log = Log::default();
            let mut b =
                Batcher::new(limits(8, 100, 1), None).with_speculation(spec(3, Some(3), 0.0));
            let mut r = req(&log, 4, 9, RequestKind::GenerationOnly);
            r.draft_tokens = draft_tokens;
            b.push(r, now, Duration::ZERO);
            let drafts: Vec<_> = drain(&mut b, now)
                .iter()
                .map(|b| b.shape.draft_tokens)
                .collect();
            let events: Vec<_> = log
                .0
                .borrow()
                .iter()
                .map(|e| (e.start + e.count, e.iterations))
                .collect();
            (drafts, events)
        };
        // With the context worker's 3 drafts: 1 → 5 → 9 in iterations 1, 2, 3.
        assert_eq!(shapes(3), (vec![3, 3], vec![(1, 1), (5, 2), (9, 3)]));
        // Without drafts the first step can only produce its own token.
        assert_eq!(
            shapes(0),
            (vec![0, 3, 3], vec![(1, 1), (2, 2), (6, 3), (9, 4)])
        );
    }

    /// Upstream-sized aggregated load (concurrency 1024, prompts up to 4k, `max_num_tokens`
    /// 8192, `max_batch_size` 512, chunked prefill): every iteration respects the token budget
    /// and the batch limit, every running decode is scheduled every iteration, and every request
    /// gets exactly its output.
    #[test]
    fn aggregated_load_respects_budget_batch_limit_and_chunks() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let l = Limits {
            chunked_prefill: true,
            ..limits(512, 8192, 10)
        };
        let mut b = Batcher::new(l, None);
        let now = Instant::now();
        let logs: Vec<(Log, u64, u64)> = (0..1024)
            .map(|_| {
                (
                    Log::default(),
                    rng.random_range(1..=4096u64),
                    rng.random_range(1..=1024u64),
                )
            })
            .collect();
        for (log, prompt, out) in &logs {
            b.push(
                req(log, *prompt, *out, RequestKind::Full),
                now,
                Duration::ZERO,
            );
        }
        let (mut iterations, mut mixed, mut chunked_ctx, mut full_batches) = (0, 0, 0, 0);
        let mut prefill_tokens = 0;
        while !b.is_empty() {
            let decoding_before = b.running.iter().filter(|s| s.decoding).count() as u64;
            let batch = run(&mut b, now);
            iterations += 1;
            let s = batch.shape;
            assert!(s.ctx_tokens + s.gen_requests <= 8192, "{s:?}");
            assert!(batch.num_scheduled <= 512, "{batch:?}");
            assert_eq!(s.gen_requests, decoding_before, "decode is never starved");
            assert!(b.running.len() <= 512);
            mixed += u64::from(s.ctx_requests > 0 && s.gen_requests > 0);
            full_batches += u64::from(batch.num_scheduled == 512);
            prefill_tokens += s.ctx_tokens;
            chunked_ctx += u64::from(s.ctx_tokens + s.gen_requests == 8192);
        }
        let total_prompt: u64 = logs.iter().map(|(_, p, _)| p).sum();
        assert_eq!(
            prefill_tokens, total_prompt,
            "every prompt token prefilled once"
        );
        for (log, _, out) in &logs {
            let events = log.0.borrow();
            let last = events.last().expect("a finished event");
            assert!(last.finished);
            assert_eq!(last.start + last.count, *out);
        }
        assert!(mixed > 0, "prefill chunks ride along with decodes");
        assert!(chunked_ctx > 0, "chunks fill the budget exactly");
        assert!(full_batches > 0, "the batch limit is reached");
        // ~2.1M prompt tokens at ≤ 8192 per iteration.
        assert!(iterations as u64 >= total_prompt / 8192, "{iterations}");
    }

    #[test]
    fn chunk_takes_what_the_decodes_leave() {
        let now = Instant::now();
        let l = Limits {
            chunked_prefill: true,
            ..limits(8, 100, 10)
        };
        let mut b = Batcher::new(l, None);
        let a = Log::default();
        for _ in 0..3 {
            b.push(req(&a, 10, 50, RequestKind::Full), now, Duration::ZERO);
        }
        assert_eq!(run(&mut b, now).shape.ctx_tokens, 30);
        let long = Log::default();
        b.push(req(&long, 250, 5, RequestKind::Full), now, Duration::ZERO);
        // Three decodes take 3 of the 100 tokens; the long prompt gets 97, 97, then 56.
        let chunks: Vec<_> = (0..3).map(|_| run(&mut b, now).shape.ctx_tokens).collect();
        assert_eq!(chunks, vec![97, 97, 56]);
        assert_eq!(
            long.0.borrow().len(),
            1,
            "first token only after the last chunk"
        );
    }

    #[test]
    fn without_chunking_a_prompt_waits_for_a_budget_it_fits_in() {
        let now = Instant::now();
        let mut b = Batcher::new(limits(8, 100, 10), None);
        let a = Log::default();
        b.push(req(&a, 60, 3, RequestKind::Full), now, Duration::ZERO);
        b.push(req(&a, 60, 3, RequestKind::Full), now, Duration::ZERO);
        b.push(req(&a, 30, 3, RequestKind::Full), now, Duration::ZERO);
        // FCFS: the second prompt does not fit beside the first, and the third does not jump it.
        let first = run(&mut b, now);
        assert_eq!((first.shape.ctx_requests, first.shape.ctx_tokens), (1, 60));
        let second = run(&mut b, now);
        assert_eq!(
            (second.shape.gen_requests, second.shape.ctx_tokens),
            (1, 90)
        );
    }

    #[test]
    fn draft_tokens_use_the_token_budget() {
        let log = Log::default();
        let mut b = Batcher::new(limits(8, 10, 10), None).with_speculation(spec(3, Some(0), 0.0));
        let now = Instant::now();
        b.push(req(&log, 2, 50, RequestKind::Full), now, Duration::ZERO);
        b.push(req(&log, 2, 50, RequestKind::Full), now, Duration::ZERO);
        assert_eq!(run(&mut b, now).shape.ctx_requests, 2);
        // Two decoding requests take 2 × (1 + 3) of the 10 tokens: a third prompt of 3 waits.
        b.push(req(&log, 3, 50, RequestKind::Full), now, Duration::ZERO);
        let batch = run(&mut b, now);
        assert_eq!(
            (
                batch.shape.gen_requests,
                batch.shape.draft_tokens,
                batch.shape.ctx_requests
            ),
            (2, 6, 0)
        );
    }
}
