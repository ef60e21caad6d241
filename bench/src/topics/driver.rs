//! The driver every system's topics workloads share: producer tasks (already connected) run
//! for a warm-up, then the records they get acknowledged are counted over a window (with
//! records/s per tenth of it, and each request's latency); consumer tasks run to their end
//! while their progress is sampled; a produce-to-consume run tallies its receipts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::latency::{LatencyHistogram, OpenLoop};
use crate::report::SeriesPoint;
use crate::topics::cpu::{CpuMark, CpuUse};

/// A task of a workload: a producer loop (its request latencies) or a consumer (records
/// read).
pub type Task<T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>;

/// Points of a produce run's series: one per tenth of the counted window.
const SERIES_POINTS: u32 = 10;
/// How often a consume run's progress is sampled for its series.
const CONSUME_SERIES_STEP: Duration = Duration::from_millis(100);
/// How long producers may take to stop, and consumers to finish.
const PRODUCER_STOP_TIMEOUT: Duration = Duration::from_secs(60);
const CONSUMER_TIMEOUT: Duration = Duration::from_secs(600);

/// What the driver and its tasks share.
pub struct Gauge {
    /// Producers end their loop, their request in flight dropped, when set.
    stop: tokio::sync::watch::Sender<bool>,
    /// Set during the counted window: producers record their request latencies then.
    pub measuring: AtomicBool,
    /// Records and value bytes acknowledged (consumers: read) so far, all tasks.
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Producers that got a first request acknowledged.
    pub ready: AtomicU64,
}

impl Default for Gauge {
    fn default() -> Gauge {
        Gauge {
            stop: tokio::sync::watch::Sender::new(false),
            measuring: AtomicBool::new(false),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            ready: AtomicU64::new(0),
        }
    }
}

impl Gauge {
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs `request` unless the driver stops the producers first (`None` then): a round of
    /// requests still in flight after the window is not waited for.
    pub async fn unless_stopped<T>(&self, request: impl Future<Output = T>) -> Option<T> {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            done = request => Some(done),
            _ = stop.wait_for(|stopped| *stopped) => None,
        }
    }

    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    pub fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A producer's request was acknowledged: counts it, and the producer as ready after its
    /// first one (`first` is the producer's own flag).
    pub fn acked(&self, records: u64, bytes: u64, first: &mut bool) {
        self.add(records, bytes);
        if std::mem::take(first) {
            self.ready.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn load(&self) -> (u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A produce or consume run's figures.
pub struct Run {
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Produce: per request (Strand: one produce of a batch; JetStream: a window of
    /// publishes until its last ack; Redis: one pipeline). Empty for consume runs.
    pub latency: LatencyHistogram,
    pub series: Vec<SeriesPoint>,
    pub cpu: CpuUse,
}

/// Samples `gauge` at the end of each step, as records/s over that step.
struct Sampler {
    start: Instant,
    last: (Instant, u64),
    points: Vec<SeriesPoint>,
}

impl Sampler {
    fn new(start: Instant, records: u64) -> Sampler {
        Sampler {
            start,
            last: (start, records),
            points: Vec::new(),
        }
    }

    fn sample(&mut self, records: u64) {
        let now = Instant::now();
        let step = now.duration_since(self.last.0).as_secs_f64().max(1e-9);
        self.points.push(SeriesPoint {
            t_s: now.duration_since(self.start).as_secs_f64(),
            records_per_s: records.saturating_sub(self.last.1) as f64 / step,
        });
        self.last = (now, records);
    }
}

/// Runs producer `tasks` for `warm_up` and until each had a request acknowledged (so the
/// counted window starts in a steady state even when one round of requests takes longer
/// than the warm-up), counts what is acknowledged in the next `measure` (or twice that first
/// round, when longer, up to `window_max`), then stops them and merges their request latencies.
pub async fn drive_producers(
    tasks: Vec<Task<LatencyHistogram>>,
    gauge: Arc<Gauge>,
    warm_up: Duration,
    (measure, window_max): (Duration, Duration),
    server_pid: Option<u32>,
) -> anyhow::Result<Run> {
    let producers = tasks.len() as u64;
    let started = Instant::now();
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    tokio::time::sleep(warm_up).await;
    let warming = Instant::now();
    while gauge.ready.load(Ordering::Relaxed) < producers
        && !handles.iter().any(tokio::task::JoinHandle::is_finished)
    {
        ensure!(
            warming.elapsed() < PRODUCER_STOP_TIMEOUT,
            "a producer had no request acknowledged within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Producers whose requests take longer than the window would be counted in none or
    // one round: the window spans at least two of the first rounds.
    let measure = measure.max((started.elapsed() * 2).min(window_max));
    let (records_before, bytes_before) = gauge.load();
    let mark = CpuMark::now(server_pid);
    gauge.measuring.store(true, Ordering::Relaxed);
    let mut sampler = Sampler::new(mark.at(), records_before);
    for step in 1..=SERIES_POINTS {
        let end = mark.at() + measure.mul_f64(f64::from(step) / f64::from(SERIES_POINTS));
        tokio::time::sleep_until(end.into()).await;
        sampler.sample(gauge.records.load(Ordering::Relaxed));
    }
    let (records_after, bytes_after) = gauge.load();
    let elapsed = mark.at().elapsed();
    let cpu = mark.use_since();
    gauge.measuring.store(false, Ordering::Relaxed);
    gauge.stop.send_replace(true);
    let mut latency = LatencyHistogram::new();
    for handle in handles {
        let joined = tokio::time::timeout(PRODUCER_STOP_TIMEOUT, handle)
            .await
            .context("a producer did not stop within 60 s")?;
        latency.merge(&joined.context("a producer task panicked")??);
    }
    Ok(Run {
        records: records_after - records_before,
        bytes: bytes_after - bytes_before,
        elapsed,
        latency,
        series: sampler.points,
        cpu,
    })
}

/// Runs consumer `tasks` (already connected; each adds what it reads to `gauge`) to their
/// end; the clock runs from their start to the last one's end. Each task returns the records
/// it read, which must add up to `expected`.
pub async fn drive_consumers(
    tasks: Vec<Task<u64>>,
    gauge: Arc<Gauge>,
    expected: u64,
    server_pid: Option<u32>,
) -> anyhow::Result<Run> {
    let mark = CpuMark::now(server_pid);
    let mut handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let mut sampler = Sampler::new(mark.at(), 0);
    let mut next_sample = mark.at() + CONSUME_SERIES_STEP;
    let mut read = 0;
    for handle in &mut handles {
        loop {
            ensure!(
                mark.at().elapsed() < CONSUMER_TIMEOUT,
                "the consumers did not finish within {} s",
                CONSUMER_TIMEOUT.as_secs()
            );
            tokio::select! {
                joined = &mut *handle => {
                    read += joined.context("a consumer task panicked")??;
                    break;
                }
                () = tokio::time::sleep_until(next_sample.into()) => {
                    sampler.sample(gauge.records.load(Ordering::Relaxed));
                    next_sample += CONSUME_SERIES_STEP;
                }
            }
        }
    }
    let elapsed = mark.at().elapsed();
    let cpu = mark.use_since();
    // The last, partial step only when it is long enough to say something.
    if sampler.points.is_empty() || sampler.last.0.elapsed() >= CONSUME_SERIES_STEP / 2 {
        sampler.sample(gauge.records.load(Ordering::Relaxed));
    }
    ensure!(
        read == expected,
        "the consumers read {read} of {expected} records"
    );
    Ok(Run {
        records: read,
        bytes: gauge.bytes.load(Ordering::Relaxed),
        elapsed,
        latency: LatencyHistogram::new(),
        series: sampler.points,
        cpu,
    })
}

/// What a produce-to-consume consumer received: latencies from each record's due time, and
/// which records came (to count missing and duplicate ones).
pub struct Receipts {
    /// The schedule's start: a record's due time is `base + due_ns`.
    base: Instant,
    /// Records due before this are not in the histogram (warm-up).
    warm_up_ns: u64,
    seen: Vec<bool>,
    pub received: u64,
    pub duplicates: u64,
    pub latency: LatencyHistogram,
}

impl Receipts {
    pub fn new(base: Instant, warm_up: Duration, total: u64) -> Receipts {
        Receipts {
            base,
            warm_up_ns: u64::try_from(warm_up.as_nanos()).unwrap_or(u64::MAX),
            seen: vec![false; usize::try_from(total).unwrap_or(usize::MAX)],
            received: 0,
            duplicates: 0,
            latency: LatencyHistogram::new(),
        }
    }

    /// Whether every record came.
    pub fn complete(&self) -> bool {
        self.received >= self.seen.len() as u64
    }

    /// A record's value (a [`crate::topics::stamped_value`]) received at `now`.
    pub fn receive(&mut self, value: &[u8], now: Instant) -> anyhow::Result<()> {
        let (index, due_ns) = super::stamp_of(value).context("a record too short for its stamp")?;
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| self.seen.get_mut(i))
            .with_context(|| format!("a record with index {index} that was never sent"))?;
        if *slot {
            self.duplicates += 1;
            return Ok(());
        }
        *slot = true;
        self.received += 1;
        if due_ns >= self.warm_up_ns {
            let due = self.base + Duration::from_nanos(due_ns);
            self.latency.record(now.saturating_duration_since(due));
        }
        Ok(())
    }
}

/// A produce-to-consume run's figures.
pub struct E2eRun {
    pub receipts: Receipts,
    pub sent: u64,
    /// How far behind its schedule the producer fell at most (a late send is in the
    /// latencies anyway; this says whether the client was the bottleneck).
    pub max_send_lag: Duration,
    pub cpu: CpuUse,
}

impl E2eRun {
    pub fn missing(&self) -> u64 {
        self.sent.saturating_sub(self.receipts.received)
    }
}

/// Calls `send(index, due_ns)` for `total` records due at `rate` per second from `base`
/// (open loop: each at its due time whatever happened to earlier ones), on the calling plain
/// thread, whose OS timer wakes it within microseconds where tokio's would round up to the
/// next millisecond. Returns how late the latest send was.
pub fn pace_blocking(
    base: Instant,
    rate: f64,
    total: u64,
    mut send: impl FnMut(u64, u64),
) -> Duration {
    let mut schedule = OpenLoop::new(base, rate);
    let mut max_lag = Duration::ZERO;
    for index in 0..total {
        let due = schedule.next_due_blocking();
        max_lag = max_lag.max(due.elapsed());
        let due_ns = u64::try_from(due.duration_since(base).as_nanos()).unwrap_or(u64::MAX);
        send(index, due_ns);
    }
    max_lag
}
