//! The load loop: a fixed set of workers, one keep-alive connection each, that take request
//! indices in order and record raw samples.
//!
//! The workers are spread over `--threads` OS threads, each running its own single-threaded
//! tokio runtime with its share of the workers (`RuntimeMode::PerCore`, the default), or over one
//! multi-threaded runtime (`RuntimeMode::Shared`). Every thread takes the next request index
//! from one shared counter, so the closed loop stays one loop; each runtime has its own probe.
//!
//! `--max-concurrency N` means N workers (closed loop: a request starts when one ends); without
//! it there is one worker per request. With a finite `--request-rate` each request has an
//! intended dispatch time (gamma gaps, shape = burstiness, as upstream); a free worker sleeps
//! until then, a busy pool makes the request wait for a slot — both delays are recorded, so
//! client-side queueing is never hidden inside TTFT. A probe task measures how late the
//! runtime wakes timers and how long a ready task waits to run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use super::client::{Connection, Target, ns_since, send_with_timeout};
use super::record::RawRequest;

/// How requests are released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSpec {
    /// Maximum requests in flight (`None` = one worker per request).
    pub max_concurrency: Option<usize>,
    /// Requests per second (`f64::INFINITY` = all at once).
    pub request_rate: f64,
    /// Gamma shape of the gaps.
    pub burstiness: f64,
    /// Seed of the gap draws.
    pub seed: u64,
    /// A request not complete after this long (from its send) fails with kind `Timeout`.
    pub request_timeout: Option<Duration>,
    /// Test hook: block each runtime's thread this long, then let it run 3× as long, repeatedly.
    pub inject_stall: Option<Duration>,
}

/// How the workers are spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeMode {
    /// One single-threaded runtime per thread, each with its share of the connections.
    PerCore,
    /// One multi-threaded (work-stealing) runtime over all threads.
    Shared,
}

/// Threads of the load and how they are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads {
    /// OS threads (≥ 1); never more than the workers.
    pub count: usize,
    /// Runtime layout.
    pub mode: RuntimeMode,
}

/// What the load reports while it runs.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// A progress bar (terminal only).
    pub bar: Option<ProgressBar>,
    /// Print a progress line on stderr this often while requests are still running.
    pub line_every: Option<Duration>,
}

/// Samples of the client's own scheduling delay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagSamples {
    /// How late each probe timer fired (includes the timer wheel's 1 ms granularity).
    pub timer_late_ns: Vec<u64>,
    /// How long the probe waited in the run queue after yielding.
    pub queue_delay_ns: Vec<u64>,
}

/// Everything the load loop recorded.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// One record per request, in dataset order.
    pub requests: Vec<RawRequest>,
    /// From the first dispatch to the end of the last response.
    pub duration_ns: u64,
    /// Client scheduling-delay samples.
    pub lag: LagSamples,
    /// Number of workers (concurrency slots).
    pub workers: usize,
}

/// Intended dispatch offsets: all zero for an infinite rate, else cumulative gamma gaps
/// (the first request at 0, as upstream sleeps after yielding each request).
pub fn schedule(n: usize, rate: f64, burstiness: f64, seed: u64) -> Vec<u64> {
    if !rate.is_finite() {
        return vec![0; n];
    }
    let theta = 1.0 / (rate * burstiness);
    let gamma = Gamma::new(burstiness, theta).expect("validated positive shape and scale");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0f64;
    (0..n)
        .map(|_| {
            let at = (t * 1e9) as u64;
            t += gamma.sample(&mut rng);
            at
        })
        .collect()
}

const PROBE_PERIOD: Duration = Duration::from_millis(5);

async fn lag_probe(stop: Arc<AtomicBool>) -> LagSamples {
    let mut samples = LagSamples::default();
    let mut next = tokio::time::Instant::now() + PROBE_PERIOD;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        let woke = tokio::time::Instant::now();
        samples
            .timer_late_ns
            .push(woke.saturating_duration_since(next).as_nanos() as u64);
        let before = Instant::now();
        tokio::task::yield_now().await;
        samples
            .queue_delay_ns
            .push(before.elapsed().as_nanos() as u64);
        next += PROBE_PERIOD;
        if next < woke {
            next = woke + PROBE_PERIOD;
        }
    }
    samples
}

/// What every worker of a run shares.
struct Shared {
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    sched: Vec<u64>,
    next: AtomicUsize,
    done: AtomicUsize,
    start_ns: u64,
    timeout: Option<Duration>,
    stall: Option<Duration>,
}

/// The injected stall: the whole thread blocks, as it would under a CPU hog.
async fn staller(stall: Duration, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(stall * 3).await;
        std::thread::sleep(stall);
    }
}

/// One worker: takes request indices until none are left, on one keep-alive connection.
async fn worker(sh: Arc<Shared>) -> Vec<RawRequest> {
    let mut conn: Option<Connection> = None;
    let mut out = Vec::new();
    loop {
        let i = sh.next.fetch_add(1, Ordering::Relaxed);
        if i >= sh.bodies.len() {
            break;
        }
        let due = sh.start_ns + sh.sched[i];
        let mut rec = RawRequest {
            index: i,
            scheduled_ns: due,
            events: Vec::new(),
            ..RawRequest::default()
        };
        let now = ns_since(sh.target.epoch);
        if now < due {
            tokio::time::sleep_until((sh.target.epoch + Duration::from_nanos(due)).into()).await;
            rec.timer_late_ns = ns_since(sh.target.epoch).saturating_sub(due);
        } else {
            rec.slot_wait_ns = now - due;
        }
        send_with_timeout(
            &mut conn,
            &sh.target,
            sh.bodies[i].clone(),
            &mut rec,
            sh.timeout,
        )
        .await;
        sh.done.fetch_add(1, Ordering::Relaxed);
        out.push(rec);
    }
    out
}

/// Runs `workers` workers and a lag probe on the current runtime.
async fn run_workers(sh: Arc<Shared>, workers: usize) -> (Vec<RawRequest>, LagSamples) {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(lag_probe(stop.clone()));
    let stall = sh.stall.map(|d| tokio::spawn(staller(d, stop.clone())));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(sh.clone()));
    }
    let mut requests = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok(part) => requests.extend(part),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let lag = probe.await.unwrap_or_default();
    if let Some(s) = stall {
        let _ = s.await;
    }
    (requests, lag)
}

/// Splits `workers` over `threads` as evenly as possible.
pub fn shares(workers: usize, threads: usize) -> Vec<usize> {
    let t = threads.clamp(1, workers.max(1));
    (0..t)
        .map(|i| workers / t + usize::from(i < workers % t))
        .collect()
}

/// Draws the bar and prints a progress line every `line_every` until `stop`.
fn watch(sh: Arc<Shared>, progress: Progress, stop: Arc<AtomicBool>) {
    let tick = Duration::from_millis(200);
    let started = Instant::now();
    let mut next_line = progress.line_every.map(|d| started + d);
    let total = sh.bodies.len();
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(tick);
        let done = sh.done.load(Ordering::Relaxed);
        if let Some(pb) = &progress.bar {
            pb.set_position(done as u64);
        }
        if let (Some(at), Some(every)) = (next_line, progress.line_every)
            && Instant::now() >= at
            && !stop.load(Ordering::Relaxed)
        {
            let started_reqs = sh.next.load(Ordering::Relaxed).min(total);
            eprintln!(
                "perfsanity bench: {done}/{total} requests done, {} in flight, {:.0} s elapsed",
                started_reqs.saturating_sub(done),
                started.elapsed().as_secs_f64()
            );
            next_line = Some(at + every);
        }
    }
    if let Some(pb) = &progress.bar {
        pb.set_position(sh.done.load(Ordering::Relaxed) as u64);
        pb.finish();
    }
}

/// Runs the load against `target` on `threads`; `bodies[i]` is request i. Call from outside
/// any tokio runtime: it builds its own.
pub fn run_load(
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    load: LoadSpec,
    threads: Threads,
    progress: Progress,
) -> std::io::Result<RunOutput> {
    let n = bodies.len();
    let workers = load.max_concurrency.unwrap_or(n).min(n).max(1);
    let split = shares(workers, threads.count);
    let sh = Arc::new(Shared {
        sched: schedule(n, load.request_rate, load.burstiness, load.seed),
        start_ns: ns_since(target.epoch),
        target,
        bodies,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        timeout: load.request_timeout,
        stall: load.inject_stall,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (sh, stop) = (sh.clone(), stop.clone());
        std::thread::spawn(move || watch(sh, progress, stop))
    };
    let parts: std::io::Result<Vec<(Vec<RawRequest>, LagSamples)>> = match threads.mode {
        RuntimeMode::Shared => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(split.len())
                .enable_all()
                .build();
            rt.map(|rt| vec![rt.block_on(run_workers(sh.clone(), workers))])
        }
        RuntimeMode::PerCore => std::thread::scope(|scope| {
            let handles: Vec<_> = split
                .iter()
                .map(|&w| {
                    let sh = sh.clone();
                    scope.spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        Ok(rt.block_on(run_workers(sh, w)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        }),
    };
    let duration_ns = ns_since(sh.target.epoch) - sh.start_ns;
    stop.store(true, Ordering::Relaxed);
    watcher.thread().unpark();
    let _ = watcher.join();
    let mut requests = Vec::with_capacity(n);
    let mut lag = LagSamples::default();
    for (reqs, l) in parts? {
        requests.extend(reqs);
        lag.timer_late_ns.extend(l.timer_late_ns);
        lag.queue_delay_ns.extend(l.queue_delay_ns);
    }
    requests.sort_by_key(|r| r.index);
    Ok(RunOutput {
        requests,
        duration_ns,
        lag,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_shared_out_evenly() {
        assert_eq!(shares(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(shares(2, 4), vec![1, 1]);
        assert_eq!(shares(1, 1), vec![1]);
    }

    #[test]
    fn infinite_rate_dispatches_everything_at_once() {
        assert_eq!(schedule(3, f64::INFINITY, 1.0, 0), vec![0, 0, 0]);
    }

    #[test]
    fn finite_rate_has_the_requested_mean_gap() {
        let s = schedule(20_001, 100.0, 1.0, 7);
        assert_eq!(s[0], 0);
        assert!(s.windows(2).all(|w| w[1] >= w[0]));
        let mean_gap_s = s[20_000] as f64 / 1e9 / 20_000.0;
        assert!((mean_gap_s - 0.01).abs() < 0.0005, "{mean_gap_s}");
        // Higher burstiness ⇒ more regular gaps, same mean.
        let regular = schedule(20_001, 100.0, 50.0, 7);
        let gaps: Vec<f64> = regular.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let m = crate::util::stats::mean(&gaps);
        assert!((m / 1e7 - 1.0).abs() < 0.02);
        assert!(crate::util::stats::std_population(&gaps) / m < 0.2);
    }
}
