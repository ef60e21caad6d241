//! The write-to-receipt latency run shared by Strand and its peers: `subscribers` subscribers,
//! subscriber `j` watching room `j % rooms`, writers sending ids `1..=total` (id `i` to room
//! `i % rooms`) on an open-loop schedule, and receivers that count every delivery per
//! subscriber and id.
//!
//! A write's due time is stored (by id, ns since the run's base instant) just before it goes
//! out; a receipt's latency is its arrival minus that due time, so a stalled writer or server
//! shows as latency for every write due meanwhile (no coordinated omission). Writes of the
//! warm-up are delivered and counted but not timed.
//!
//! Every delivery is counted per subscriber and row id: a change that never arrives would
//! otherwise leave p99 computed over what did arrive (losing the slowest changes improves it),
//! so lost and duplicate deliveries are figures, and nonzero fails the case.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::latency::{LatencyHistogram, OpenLoop};
use crate::report::{Figure, Measurement};

/// How long after the last write every delivery must have arrived.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receivers keep reading once every expected delivery has arrived (late
/// duplicates would arrive about as fast as the changes did).
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);

/// What the receivers share with the writers.
pub struct Schedule {
    base: Instant,
    /// Due time of id `i + 1` in ns since `base`; 0 until sent.
    due_ns: Vec<AtomicU64>,
    /// Send time of id `i + 1` in ns since `base` (the writers' achieved rate).
    sent_ns: Vec<AtomicU64>,
    /// Deliveries so far, warm-up included (duplicates too).
    delivered: AtomicU64,
    /// The first id that is timed (the ones before are the warm-up).
    measure_from: i64,
    pub rooms: usize,
    pub subscribers: usize,
    pub rate_per_s: f64,
    /// Writer threads (one connection each) sharing the schedule.
    pub writers: usize,
}

impl Schedule {
    pub fn new(
        subscribers: usize,
        rooms: usize,
        rate_per_s: f64,
        warm_up: Duration,
        measure: Duration,
    ) -> Schedule {
        let warm_up_writes = (rate_per_s * warm_up.as_secs_f64()) as usize;
        let total = warm_up_writes + ((rate_per_s * measure.as_secs_f64()) as usize).max(1);
        Schedule {
            base: Instant::now(),
            due_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
            sent_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            measure_from: warm_up_writes as i64 + 1,
            rooms: rooms.max(1),
            subscribers,
            rate_per_s,
            writers: 1,
        }
    }

    pub fn total_writes(&self) -> usize {
        self.due_ns.len()
    }

    /// The room of id `id`.
    pub fn room(&self, id: i64) -> i64 {
        id % self.rooms as i64
    }

    /// Subscribers a write of `id` reaches: every `j` with `j % rooms == id % rooms`.
    fn reach(&self, id: i64) -> u64 {
        let room = (id % self.rooms as i64) as usize;
        let per_room = self.subscribers / self.rooms;
        (per_room + usize::from(room < self.subscribers % self.rooms)) as u64
    }

    /// Waits until every delivery of every write arrived (or [`DRAIN_TIMEOUT`] passed), and
    /// then [`DUPLICATE_GRACE`].
    pub fn drain(&self) {
        let expected: u64 = (1..=self.total_writes() as i64)
            .map(|id| self.reach(id))
            .sum();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.delivered.load(Ordering::Acquire) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(DUPLICATE_GRACE);
    }

    /// Sends ids `1..=total` at the schedule's rate from [`Schedule::writers`] threads: writer `w` sends
    /// ids `w + 1, w + 1 + writers, ...`, each at its open-loop due time (together they keep
    /// one schedule of `rate_per_s`). `connect(w)` makes a writer's connection (all connect
    /// before the first write is due), `write(conn, id, room)` sends one write and waits for
    /// its answer. Returns the rate the measured sends reached and the largest send lag
    /// behind schedule.
    pub fn write_paced<W: Send>(
        &self,
        connect: impl Fn(usize) -> anyhow::Result<W>,
        write: impl Fn(&mut W, i64, i64) -> anyhow::Result<()> + Sync,
    ) -> anyhow::Result<(f64, Duration)> {
        let writers = self.writers.max(1);
        let connections = (0..writers)
            .map(connect)
            .collect::<anyhow::Result<Vec<W>>>()?;
        let period = Duration::from_secs_f64(1.0 / self.rate_per_s);
        let start = Instant::now() + Duration::from_millis(20);
        let total = self.total_writes();
        let lags = std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for (writer, mut connection) in connections.into_iter().enumerate() {
                let write = &write;
                threads.push(scope.spawn(move || -> anyhow::Result<Duration> {
                    let first_due = start + period.mul_f64(writer as f64);
                    let mut schedule = OpenLoop::new(first_due, self.rate_per_s / writers as f64);
                    let mut max_lag = Duration::ZERO;
                    for k in (writer..total).step_by(writers) {
                        let due = schedule.next_due_blocking();
                        let now = Instant::now();
                        max_lag = max_lag.max(now.saturating_duration_since(due));
                        let id = k as i64 + 1;
                        self.due_ns[k].store(self.since_base(due).max(1), Ordering::Release);
                        self.sent_ns[k].store(self.since_base(now).max(1), Ordering::Release);
                        write(&mut connection, id, self.room(id))
                            .with_context(|| format!("write of id {id}"))?;
                    }
                    Ok(max_lag)
                }));
            }
            threads
                .into_iter()
                .map(|t| t.join().expect("a writer thread panicked"))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let max_lag = lags.into_iter().max().unwrap_or_default();
        let measured = &self.sent_ns[self.measure_from as usize - 1..];
        let sends = measured.iter().map(|sent| sent.load(Ordering::Acquire));
        let (Some(first), Some(last)) = (sends.clone().min(), sends.max()) else {
            bail!("no measured write was sent");
        };
        let span_s = last.saturating_sub(first) as f64 / 1e9;
        Ok(((measured.len() as f64 - 1.0) / span_s.max(1e-9), max_lag))
    }

    /// When write `id` (`1..=total`) was due, once it has been sent (`None` before, or for an
    /// id outside the schedule): receivers that match their own way (`live-sql`) time from it.
    pub fn due(&self, id: i64) -> Option<Instant> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        let ns = self.due_ns.get(i)?.load(Ordering::Acquire);
        (ns != 0).then(|| self.base + Duration::from_nanos(ns))
    }

    /// Whether write `id` is timed (not one of the warm-up's).
    pub fn is_timed(&self, id: i64) -> bool {
        id >= self.measure_from
    }

    fn since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// How many times each subscriber of one receiver (subscribers `first..first + n`) received
/// each id of its room, and the latencies of first deliveries of timed ids.
pub struct Receipts {
    first: usize,
    /// `counts[j - first][id / rooms]`: the ids of subscriber `j`'s room are `j % rooms`,
    /// `j % rooms + rooms`, ...
    counts: Vec<Vec<u16>>,
    pub histogram: LatencyHistogram,
}

impl Receipts {
    /// The tally of subscribers `first..last`.
    pub fn new(schedule: &Schedule, first: usize, last: usize) -> Receipts {
        let slots = schedule.total_writes() / schedule.rooms + 1;
        Receipts {
            first,
            counts: vec![vec![0; slots]; last.saturating_sub(first)],
            histogram: LatencyHistogram::new(),
        }
    }

    /// Subscriber `j` received `id` at `now`: counted, and timed from the write's due time
    /// when it is the first delivery of a timed id. A delivery to the wrong room, of an id
    /// never written, or for a subscriber of another receiver is an error.
    pub fn record(
        &mut self,
        schedule: &Schedule,
        j: usize,
        id: i64,
        now: Instant,
    ) -> anyhow::Result<()> {
        let Some(due) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| schedule.due_ns.get(i))
        else {
            bail!("a delivery of id {id}, which the bench never wrote");
        };
        let due = due.load(Ordering::Acquire);
        ensure!(due != 0, "a delivery of id {id} before its write was sent");
        let rooms = schedule.rooms;
        let slot = usize::try_from(id).context("a negative id")?;
        ensure!(
            slot % rooms == j % rooms,
            "subscriber {j} (room {}) got id {id} of room {}",
            j % rooms,
            slot % rooms
        );
        let count = j
            .checked_sub(self.first)
            .and_then(|offset| self.counts.get_mut(offset))
            .and_then(|counts| counts.get_mut(slot / rooms))
            .with_context(|| format!("a delivery for subscriber {j} of another receiver"))?;
        *count = count.saturating_add(1);
        schedule.delivered.fetch_add(1, Ordering::Release);
        if id >= schedule.measure_from && *count == 1 {
            let latency = schedule.since_base(now).saturating_sub(due);
            self.histogram.record(Duration::from_nanos(latency));
        }
        Ok(())
    }
}

/// What the receivers saw, added up.
#[derive(Default)]
pub struct Deliveries {
    /// Deliveries received, duplicates included.
    pub received: u64,
    /// Expected (subscriber, id) deliveries that never arrived.
    pub lost: u64,
    /// Deliveries beyond the first of a (subscriber, id).
    pub duplicates: u64,
    /// Subscribers that missed at least one change.
    pub subscribers_short: u64,
    /// Latencies of every receiver.
    pub histogram: LatencyHistogram,
}

impl Deliveries {
    /// Adds one receiver's tally: subscriber `j` should have every id `1..=total` whose room
    /// is `j % rooms`, exactly once.
    pub fn add(&mut self, receipts: &Receipts, schedule: &Schedule) {
        let (rooms, total) = (schedule.rooms, schedule.total_writes());
        for (offset, counts) in receipts.counts.iter().enumerate() {
            let room = (receipts.first + offset) % rooms;
            let mut short = false;
            for (slot, &count) in counts.iter().enumerate() {
                let id = slot * rooms + room;
                if id == 0 || id > total {
                    continue;
                }
                self.received += u64::from(count);
                if count == 0 {
                    self.lost += 1;
                    short = true;
                }
                self.duplicates += u64::from(count.saturating_sub(1));
            }
            self.subscribers_short += u64::from(short);
        }
        self.histogram.merge(&receipts.histogram);
    }

    /// Fills `m`: the latency, the delivery figures, the writers' rate and lag.
    pub fn finish(
        &self,
        m: &mut Measurement,
        schedule: &Schedule,
        write_rate: f64,
        max_lag: Duration,
    ) {
        let expected: u64 = (schedule.measure_from..=schedule.total_writes() as i64)
            .map(|id| schedule.reach(id))
            .sum();
        m.latency = self.histogram.summary();
        m.figures.extend([
            Figure::new("lost", self.lost as f64, ""),
            Figure::new("duplicate", self.duplicates as f64, ""),
            Figure::new("deliveries", self.received as f64, ""),
            Figure::new("timed", self.histogram.count() as f64, ""),
            Figure::new("timed_expected", expected as f64, ""),
            Figure::new("subscribers_short", self.subscribers_short as f64, ""),
            Figure::new("write_rate", write_rate, "/s"),
            Figure::new("max_send_lag", max_lag.as_secs_f64() * 1e3, "ms"),
        ]);
    }

    /// An error when a delivery was lost or duplicated.
    pub fn check(&self, what: &str) -> anyhow::Result<()> {
        if self.lost + self.duplicates > 0 {
            bail!(
                "{what}: LOST or DUPLICATE deliveries: {} lost ({} subscribers short), {} \
                 duplicates, {} received",
                self.lost,
                self.subscribers_short,
                self.duplicates,
                self.received
            );
        }
        Ok(())
    }
}
