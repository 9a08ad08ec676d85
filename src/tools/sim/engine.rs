//! The engine thread: one per worker, it owns the [`Batcher`] and the clock.
//!
//! Iterations are paced by absolute deadlines: iteration `i+1` starts at the deadline of
//! iteration `i`, not "after the work", so bookkeeping time never accumulates into drift. The
//! thread sleeps with `nanosleep` (timer slack set to 1 µs) instead of using tokio's
//! millisecond timer wheel, and does only O(batch) bookkeeping per iteration: turning tokens into
//! SSE bytes happens in each request's HTTP task. Requests reach the thread over a channel and
//! join the next iteration, as in an in-flight-batching executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::iter_log::{IterationRecord, format_line};
use super::latency::LatencyModel;
use super::log;
use super::ranks::{Ranks, RanksStep};
use super::scheduler::{EngineEvent, EngineRequest, Limits};
use super::spec::SpecParams;

/// A request as submitted by an HTTP handler.
pub type Submission = EngineRequest<UnboundedSender<EngineEvent>>;

enum Msg {
    Submit(Submission),
    Shutdown,
}

/// Live counters for `/metrics` and `/server_info`.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Iterations that ran a forward pass.
    pub iterations: AtomicU64,
    /// Output tokens produced.
    pub tokens: AtomicU64,
    /// Requests currently known to the engine.
    pub active_requests: AtomicU64,
    /// Iterations that started more than 1 ms late.
    pub late_iterations: AtomicU64,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineParams {
    /// Batching limits (per attention-DP rank).
    pub limits: Limits,
    /// Attention-DP ranks, each with its own scheduler (1 without attention DP).
    pub attention_dp_ranks: u64,
    /// `TLLM_BENCHMARK_REQ_QUEUES_SIZE` when it applies to this worker.
    pub queue_gate: Option<u64>,
    /// Step-time model.
    pub latency: LatencyModel,
    /// Print iteration lines.
    pub print_iter_log: bool,
    /// Freeze after this many output tokens (fault injection).
    pub stall_after_tokens: Option<u64>,
    /// Speculative decoding, when the engine config enables it.
    pub spec: Option<SpecParams>,
}

/// Cheap, cloneable handle to the engine thread.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: Sender<Msg>,
    /// Live counters.
    pub stats: Arc<EngineStats>,
}

impl EngineHandle {
    /// Hands a request to the engine; false when the engine has stopped.
    pub fn submit(&self, request: Submission) -> bool {
        self.tx.send(Msg::Submit(request)).is_ok()
    }

    /// Asks the engine thread to stop; pending requests see their channel close.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// Starts the engine thread.
pub fn spawn(params: EngineParams) -> EngineHandle {
    let (tx, rx) = channel();
    let stats = Arc::new(EngineStats::default());
    let thread_stats = stats.clone();
    std::thread::Builder::new()
        .name("sim-engine".into())
        .spawn(move || EngineLoop::new(params, rx, thread_stats).run())
        .expect("spawning the engine thread");
    EngineHandle { tx, stats }
}

/// How far behind schedule an iteration may start before the clock is re-synchronised instead
/// of catching up with shortened iterations.
const CATCH_UP_LIMIT: Duration = Duration::from_millis(5);

struct EngineLoop {
    batcher: Ranks<UnboundedSender<EngineEvent>>,
    params: EngineParams,
    rx: Receiver<Msg>,
    stats: Arc<EngineStats>,
    iter: u64,
    prev_device_ms: Option<f64>,
    next_start: Option<Instant>,
    last_end: Option<Instant>,
    hold_since: Option<Instant>,
    stalled: Vec<Submission>,
    is_stalled: bool,
}

impl EngineLoop {
    fn new(params: EngineParams, rx: Receiver<Msg>, stats: Arc<EngineStats>) -> Self {
        Self {
            batcher: Ranks::new(
                params.attention_dp_ranks,
                params.limits,
                params.queue_gate,
                params.spec,
            ),
            params,
            rx,
            stats,
            iter: 0,
            prev_device_ms: None,
            next_start: None,
            last_end: None,
            hold_since: None,
            stalled: Vec::new(),
            is_stalled: false,
        }
    }

    fn run(mut self) {
        set_timer_slack();
        loop {
            if !self.drain() {
                return;
            }
            if self.is_stalled {
                match self.rx.recv() {
                    Ok(Msg::Submit(r)) => self.stalled.push(r),
                    Ok(Msg::Shutdown) | Err(_) => return,
                }
                continue;
            }
            let now = Instant::now();
            let keep = match self.batcher.plan(now, &self.params.latency) {
                RanksStep::Idle => self.idle(now, None),
                RanksStep::WaitUntil(t) => self.idle(now, Some(t)),
                RanksStep::Hold {
                    schedulable,
                    threshold,
                } => self.hold(now, schedulable, threshold),
                RanksStep::Run(ranks_batch) => {
                    let batch = ranks_batch.total;
                    self.hold_since = None;
                    let start = match self.next_start {
                        Some(t) if now < t + CATCH_UP_LIMIT => t,
                        Some(_) => {
                            self.stats.late_iterations.fetch_add(1, Ordering::Relaxed);
                            now
                        }
                        None => now,
                    };
                    // Ranks step together: the busiest one sets the iteration's length.
                    let step = self.params.latency.step(ranks_batch.slowest);
                    let deadline = start + step;
                    sleep_until(deadline);
                    self.batcher.complete();
                    let end = Instant::now();
                    let counters = self.batcher.counters();
                    self.log_iteration(IterationRecord {
                        iter: self.iter,
                        num_scheduled_requests: batch.num_scheduled,
                        fetched_this_iter: counters.fetched_this_iter,
                        fetched_total: counters.fetched_total,
                        host_step_time_ms: ms(end - self.last_end.unwrap_or(now)),
                        prev_device_step_time_ms: self.prev_device_ms,
                        num_ctx_requests: batch.shape.ctx_requests,
                        num_ctx_tokens: batch.shape.ctx_tokens,
                        // As TensorRT-LLM counts them: one per generation request plus its
                        // draft tokens.
                        num_generation_tokens: batch.shape.gen_requests + batch.shape.draft_tokens,
                    });
                    self.prev_device_ms = Some(ms(step));
                    self.iter += 1;
                    self.next_start = Some(deadline);
                    self.last_end = Some(end);
                    self.stats.iterations.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .tokens
                        .store(counters.tokens_total, Ordering::Relaxed);
                    if let Some(limit) = self.params.stall_after_tokens
                        && counters.tokens_total >= limit
                    {
                        log::warn(&format!(
                            "[sim] fault injection: stall_after_tokens={limit} reached; the \
                             engine stops producing tokens (connections stay open)"
                        ));
                        self.is_stalled = true;
                    }
                    true
                }
            };
            self.stats
                .active_requests
                .store(self.batcher.active() as u64, Ordering::Relaxed);
            if !keep {
                return;
            }
        }
    }

    /// Moves queued submissions into the batcher; false on shutdown.
    fn drain(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Submit(r)) => self.accept(r),
                Ok(Msg::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn accept(&mut self, r: Submission) {
        if self.is_stalled {
            self.stalled.push(r);
            return;
        }
        let kv = self.params.latency.kv_transfer(r.prompt_tokens);
        self.batcher.push(r, Instant::now(), kv);
    }

    /// An iteration with nothing to run: block until a request arrives (or a KV transfer
    /// completes). Once the engine has run, such an iteration is logged with zero scheduled
    /// requests and its length becomes the next line's device time, as on real hardware.
    fn idle(&mut self, now: Instant, until: Option<Instant>) -> bool {
        let msg = match until {
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => self.rx.recv_timeout(t.saturating_duration_since(now)),
        };
        match msg {
            Ok(Msg::Submit(r)) => self.accept(r),
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let end = Instant::now();
        if self.iter > 0 {
            let counters = self.batcher.counters();
            self.log_iteration(IterationRecord {
                iter: self.iter,
                num_scheduled_requests: 0,
                fetched_this_iter: counters.fetched_this_iter,
                fetched_total: counters.fetched_total,
                host_step_time_ms: ms(end - self.last_end.unwrap_or(now)),
                prev_device_step_time_ms: self.prev_device_ms,
                num_ctx_requests: 0,
                num_ctx_tokens: 0,
                num_generation_tokens: 0,
            });
            self.prev_device_ms = Some(ms(end - self.last_end.unwrap_or(now)));
            self.iter += 1;
        }
        self.next_start = None;
        self.last_end = Some(end);
        true
    }

    /// The `TLLM_BENCHMARK_REQ_QUEUES_SIZE` gate holds: wait a poll interval, as upstream's
    /// executor sleeps, without advancing the iteration counter.
    fn hold(&mut self, now: Instant, schedulable: u64, threshold: u64) -> bool {
        let config = self.params.latency.config().clone();
        let since = *self.hold_since.get_or_insert(now);
        if now - since >= Duration::from_secs_f64(config.req_queue_max_wait_ms / 1000.0) {
            log::warn(&format!(
                "[sim] TLLM_BENCHMARK_REQ_QUEUES_SIZE: only {schedulable} of {threshold} \
                 generation requests after {} ms; decoding anyway (upstream would keep waiting)",
                config.req_queue_max_wait_ms
            ));
            self.batcher.open_gate();
            return true;
        }
        let poll = Duration::from_secs_f64(config.req_queue_poll_ms / 1000.0);
        log::info(&format!(
            "sleep {} seconds, scheduled_gen_batch: {schedulable}",
            poll.as_secs_f64()
        ));
        match self.rx.recv_timeout(poll) {
            Ok(Msg::Submit(r)) => self.accept(r),
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let end = Instant::now();
        let counters = self.batcher.counters();
        self.log_iteration(IterationRecord {
            iter: self.iter,
            num_scheduled_requests: schedulable,
            fetched_this_iter: counters.fetched_this_iter,
            fetched_total: counters.fetched_total,
            host_step_time_ms: ms(end - self.last_end.unwrap_or(now)),
            prev_device_step_time_ms: self.prev_device_ms,
            num_ctx_requests: 0,
            num_ctx_tokens: 0,
            num_generation_tokens: schedulable,
        });
        self.last_end = Some(end);
        self.next_start = None;
        true
    }

    fn log_iteration(&self, record: IterationRecord) {
        if self.params.print_iter_log {
            log::raw(&format_line(&record, &log::iso_timestamp()));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sleeps until `deadline` with the kernel's high-resolution timer.
fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Lowers this thread's timer slack from the default 50 µs to 1 µs so sleeps end on time.
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long argument and only affects this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}
