//! The load loop: a fixed set of workers, one keep-alive connection each, that take request
//! indices in order and record raw samples.
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

use super::client::{Connection, Target, ns_since, send};
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

/// Runs the load against `target`; `bodies[i]` is request i. Must run inside a tokio runtime.
pub async fn run_load(
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    load: LoadSpec,
    progress: Option<ProgressBar>,
) -> RunOutput {
    let n = bodies.len();
    let workers = load.max_concurrency.unwrap_or(n).min(n).max(1);
    let sched = Arc::new(schedule(n, load.request_rate, load.burstiness, load.seed));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(lag_probe(stop.clone()));
    let ticker = progress.map(|pb| {
        let done = done.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                pb.set_position(done.load(Ordering::Relaxed) as u64);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            pb.set_position(done.load(Ordering::Relaxed) as u64);
            pb.finish();
        })
    });

    let start_ns = ns_since(target.epoch);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (target, bodies, sched, next, done) = (
            target.clone(),
            bodies.clone(),
            sched.clone(),
            next.clone(),
            done.clone(),
        );
        set.spawn(async move {
            let mut conn: Option<Connection> = None;
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let due = start_ns + sched[i];
                let mut rec = RawRequest {
                    index: i,
                    scheduled_ns: due,
                    events: Vec::new(),
                    ..RawRequest::default()
                };
                let now = ns_since(target.epoch);
                if now < due {
                    tokio::time::sleep_until((target.epoch + Duration::from_nanos(due)).into())
                        .await;
                    rec.timer_late_ns = ns_since(target.epoch).saturating_sub(due);
                } else {
                    rec.slot_wait_ns = now - due;
                }
                send(&mut conn, &target, bodies[i].clone(), &mut rec).await;
                done.fetch_add(1, Ordering::Relaxed);
                out.push(rec);
            }
            out
        });
    }
    let mut requests = Vec::with_capacity(n);
    while let Some(res) = set.join_next().await {
        match res {
            Ok(part) => requests.extend(part),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let duration_ns = ns_since(target.epoch) - start_ns;
    stop.store(true, Ordering::Relaxed);
    let lag = probe.await.unwrap_or_default();
    if let Some(t) = ticker {
        let _ = t.await;
    }
    requests.sort_by_key(|r| r.index);
    RunOutput {
        requests,
        duration_ns,
        lag,
        workers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
