//! Workload 1, write-to-client latency: `subscribers` subscriptions of
//! `SELECT id, room, v FROM <table> WHERE room = <i % rooms>` (rooms = subscribers / 10, so a
//! write reaches ~10 of them), [`SUBSCRIPTIONS_PER_CONNECTION`] per WebSocket connection, while
//! writer threads send single-row INSERTs over keep-alive HTTP paced at a fixed rate.
//!
//! A write's send time is stored (by id, monotonic clock of this process) just before its
//! request goes out; a change's latency is its receive time minus that. Writes in the warm-up
//! are delivered and checked but not timed.
//!
//! Every delivery is counted per subscription and row id: a change that never arrives would
//! otherwise leave p99 computed over what did arrive (losing the slowest changes improves it),
//! so lost and duplicate deliveries are reported and the target refuses them (LOST,
//! DUPLICATE). The writers' achieved rate is measured too: a latency target holds only at the
//! write rate it is stated at.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::report::{Figure, Measurement, Stats};
use crate::setup::{create_table_sql, Bench, CpuMeter};
use crate::ws::{subscribe_all, Lite, Ws};

/// Subscriptions per WebSocket connection (the server allows 256).
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 100;
/// Subscribers per room: each write reaches this many.
pub const SUBSCRIBERS_PER_ROOM: usize = 10;
/// Writer threads (one HTTP connection each) sharing the paced schedule.
const WRITERS: usize = 4;
/// How long after the last write every change must have arrived.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receivers keep reading once every expected change has arrived.
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);

pub struct LatencyPlan {
    pub rate_per_s: f64,
    pub warm_up: Duration,
    pub measure: Duration,
}

/// What the receivers share with the writers.
struct Shared {
    base: Instant,
    /// Send time of id `i + 1` in ns since `base`; 0 until sent.
    sent_ns: Vec<AtomicU64>,
    /// Deliveries so far, warm-up included (duplicates too).
    delivered: AtomicU64,
    /// The first id that is measured (the ones before are the warm-up).
    measure_from: i64,
    /// Subscriber `j` watches room `j % rooms`.
    rooms: usize,
}

/// How many times each subscription of one connection received each id of its room.
struct Tally {
    /// The connection's first subscriber index (subscription ids are `s<j>`).
    first: usize,
    /// `counts[j - first][id / rooms]`: the ids of subscriber `j`'s room are `j % rooms`,
    /// `j % rooms + rooms`, ...
    counts: Vec<Vec<u16>>,
}

/// What the receivers saw, added up.
#[derive(Default)]
struct Deliveries {
    /// Changes received, duplicates included.
    received: u64,
    /// Expected (subscription, id) deliveries that never arrived.
    lost: u64,
    /// Deliveries beyond the first of a (subscription, id).
    duplicates: u64,
    /// Subscriptions that missed at least one change.
    subscriptions_short: u64,
}

impl Deliveries {
    /// Add one connection's tally: subscriber `j` should have every id `1..=total` whose
    /// room is `j % rooms`, exactly once.
    fn add(&mut self, tally: &Tally, rooms: usize, total: usize) {
        for (offset, counts) in tally.counts.iter().enumerate() {
            let room = (tally.first + offset) % rooms;
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
            self.subscriptions_short += u64::from(short);
        }
    }
}

pub fn run(
    bench: &Bench,
    runtime: &Runtime,
    subscribers: usize,
    plan: &LatencyPlan,
) -> anyhow::Result<Measurement> {
    let rooms = (subscribers / SUBSCRIBERS_PER_ROOM).max(1);
    let table = format!("bench.ticks_{subscribers}");
    bench.sql(&create_table_sql(&table))?;
    let connections = subscribers.div_ceil(SUBSCRIPTIONS_PER_CONNECTION);
    let subscribing = Instant::now();
    let sockets = runtime.block_on(open_subscribers(bench, &table, subscribers, rooms))?;
    let subscribe_time = subscribing.elapsed();

    let warm_up_writes = (plan.rate_per_s * plan.warm_up.as_secs_f64()) as usize;
    let measured_writes = (plan.rate_per_s * plan.measure.as_secs_f64()) as usize;
    let total_writes = warm_up_writes + measured_writes;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        sent_ns: (0..total_writes).map(|_| AtomicU64::new(0)).collect(),
        delivered: AtomicU64::new(0),
        measure_from: warm_up_writes as i64 + 1,
        rooms,
    });
    let (stop, stopped) = watch::channel(false);
    let receivers = spawn_receivers(runtime, sockets, subscribers, &shared, &stopped);

    // Subscriber j watches room j % rooms: a write to room r reaches every such j.
    let reach = |id: i64| {
        let room = (id % rooms as i64) as usize;
        (subscribers / rooms + usize::from(room < subscribers % rooms)) as u64
    };
    let expected_all: u64 = (1..=total_writes as i64).map(reach).sum();
    let expected: u64 = (shared.measure_from..=total_writes as i64).map(reach).sum();
    let cpu = CpuMeter::start(bench);
    let (write_rate, max_lag) = write_paced(bench, &table, rooms, total_writes, plan, &shared)?;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.delivered.load(Ordering::Acquire) < expected_all && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Late duplicates would arrive about as fast as the changes did.
    std::thread::sleep(DUPLICATE_GRACE);
    let (client_cpu, server_cpu) = cpu.percent(bench);
    let _ = stop.send(true);
    let (samples, deliveries) = collect(runtime, receivers, rooms, total_writes)?;
    let timed = samples.len() as u64;
    let stats = Stats::of(samples).context("no change was delivered")?;
    let mut figures = stats.figures(true);
    figures.extend([
        Figure::count("timed", timed),
        Figure::count("of expected", expected),
        Figure::count("deliveries", deliveries.received),
        Figure::count("lost", deliveries.lost),
        Figure::count("duplicates", deliveries.duplicates),
        Figure::count("subs short", deliveries.subscriptions_short),
        Figure::new("write rate", write_rate, "/s"),
        Figure::new("target rate", plan.rate_per_s, "/s"),
        Figure::ms("max send lag", max_lag),
        Figure::new("client cpu", client_cpu, "%"),
        Figure::new("server cpu", server_cpu, "%"),
        Figure::new("subscribe all", subscribe_time.as_secs_f64(), "s"),
    ]);
    if deliveries.lost + deliveries.duplicates > 0 {
        eprintln!(
            "LOST OR DUPLICATE CHANGES ({table}): {} lost, {} duplicates, of {expected_all} \
             expected deliveries",
            deliveries.lost, deliveries.duplicates
        );
    }
    Ok(Measurement {
        key: format!("latency_{subscribers}"),
        workload: "write->client latency",
        case: format!(
            "{} subs, {} rooms, {connections} conns",
            crate::report::thousands(subscribers as i64),
            crate::report::thousands(rooms as i64)
        ),
        figures,
    })
}

type Receiver = tokio::task::JoinHandle<anyhow::Result<(Vec<u64>, Tally)>>;

/// One [`receive`] task per connection, each with a [`Tally`] of its subscriptions.
fn spawn_receivers(
    runtime: &Runtime,
    sockets: Vec<Ws>,
    subscribers: usize,
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
) -> Vec<Receiver> {
    let slots = shared.sent_ns.len() / shared.rooms + 1;
    sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| {
            let first = c * SUBSCRIPTIONS_PER_CONNECTION;
            let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(subscribers);
            let tally = Tally {
                first,
                counts: vec![vec![0; slots]; last - first],
            };
            runtime.spawn(receive(ws, tally, shared.clone(), stopped.clone()))
        })
        .collect()
}

/// Wait for every receiver (already told to stop): the latencies, and the deliveries counted.
fn collect(
    runtime: &Runtime,
    receivers: Vec<Receiver>,
    rooms: usize,
    total_writes: usize,
) -> anyhow::Result<(Vec<u64>, Deliveries)> {
    let (mut samples, mut deliveries) = (Vec::new(), Deliveries::default());
    for receiver in receivers {
        let (received, tally) = runtime
            .block_on(receiver)
            .context("a receiver task panicked")?
            .context("a subscriber connection failed")?;
        samples.extend(received);
        deliveries.add(&tally, rooms, total_writes);
    }
    Ok((samples, deliveries))
}

/// Connect and subscribe everyone; every snapshot (of an empty table) is ready on return.
async fn open_subscribers(
    bench: &Bench,
    table: &str,
    subscribers: usize,
    rooms: usize,
) -> anyhow::Result<Vec<Ws>> {
    let addr = bench.server.http;
    let mut tasks = Vec::new();
    for first in (0..subscribers).step_by(SUBSCRIPTIONS_PER_CONNECTION) {
        let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(subscribers);
        let subscriptions: Vec<(String, String)> = (first..last)
            .map(|j| {
                let sql = format!("SELECT id, room, v FROM {table} WHERE room = {}", j % rooms);
                (format!("s{j}"), sql)
            })
            .collect();
        let token = bench.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = Ws::connect(addr, &token).await?;
            subscribe_all(&mut ws, &subscriptions, None).await?;
            anyhow::Ok(ws)
        }));
    }
    let mut sockets = Vec::new();
    for task in tasks {
        sockets.push(task.await.context("a subscribe task panicked")??);
    }
    Ok(sockets)
}

/// Read changes until told to stop, counting each in `tally`; the latencies of the first
/// delivery of each measured (subscription, id), in ns, and the tally.
async fn receive(
    mut ws: Ws,
    mut tally: Tally,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Vec<u64>, Tally)> {
    let mut samples = Vec::new();
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let now = shared.base.elapsed().as_nanos() as u64;
        let lite = Lite::parse(&text)?;
        ensure!(
            lite.kind == "change",
            "expected a change, got {}",
            crate::ws::clip(&text)
        );
        let id = lite.change_id()?;
        let Some(sent) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| shared.sent_ns.get(i))
        else {
            bail!("a change for id {id}, which the bench never wrote");
        };
        let sent = sent.load(Ordering::Acquire);
        ensure!(sent != 0, "a change for id {id} before its write was sent");
        let count = count_delivery(&mut tally, &lite, id, shared.rooms)?;
        shared.delivered.fetch_add(1, Ordering::Release);
        if id >= shared.measure_from && *count == 1 {
            samples.push(now.saturating_sub(sent));
        }
    }
    ws.close().await;
    Ok((samples, tally))
}

/// Count a change of `id` for its subscription; the count so far. A change for a
/// subscription of another connection, or of another room, is an error.
fn count_delivery<'t>(
    tally: &'t mut Tally,
    lite: &Lite<'_>,
    id: i64,
    rooms: usize,
) -> anyhow::Result<&'t mut u16> {
    let subscription = lite.subscription_id.as_deref().unwrap_or_default();
    let j: usize = subscription
        .strip_prefix('s')
        .and_then(|j| j.parse().ok())
        .with_context(|| format!("a change for an unknown subscription {subscription:?}"))?;
    let id = usize::try_from(id).context("a negative id")?;
    ensure!(
        id % rooms == j % rooms,
        "subscription {subscription} (room {}) got id {id} of room {}",
        j % rooms,
        id % rooms
    );
    let count = j
        .checked_sub(tally.first)
        .and_then(|offset| tally.counts.get_mut(offset))
        .and_then(|counts| counts.get_mut(id / rooms))
        .with_context(|| format!("a change for {subscription} on another connection"))?;
    *count = count.saturating_add(1);
    Ok(count)
}

/// Send ids `1..=total` at `plan.rate_per_s` from [`WRITERS`] threads; the rate the measured
/// sends reached (sends after the first over the time from the first to the last) and the
/// largest delay of a send behind its schedule.
fn write_paced(
    bench: &Bench,
    table: &str,
    rooms: usize,
    total: usize,
    plan: &LatencyPlan,
    shared: &Shared,
) -> anyhow::Result<(f64, Duration)> {
    let period = Duration::from_secs_f64(1.0 / plan.rate_per_s);
    let start = Instant::now() + Duration::from_millis(20);
    let lags = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                scope.spawn(move || -> anyhow::Result<Duration> {
                    let mut session = bench.session()?;
                    let mut max_lag = Duration::ZERO;
                    for k in (writer..total).step_by(WRITERS) {
                        let due = start + period * k as u32;
                        let now = Instant::now();
                        match due.checked_duration_since(now) {
                            Some(wait) => std::thread::sleep(wait),
                            None => max_lag = max_lag.max(now - due),
                        }
                        let id = k as i64 + 1;
                        let sql = format!(
                            "INSERT INTO {table} (id, room, v) VALUES ({id}, {}, 0)",
                            id % rooms as i64
                        );
                        let sent = shared.base.elapsed().as_nanos() as u64;
                        shared.sent_ns[k].store(sent.max(1), Ordering::Release);
                        let reply = session.insert_rows(&sql)?;
                        ensure!(
                            reply.rows == 1,
                            "INSERT of id {id} wrote {} rows",
                            reply.rows
                        );
                    }
                    Ok(max_lag)
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("a writer thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let max_lag = lags.into_iter().max().unwrap_or_default();
    let measured = &shared.sent_ns[shared.measure_from as usize - 1..];
    let sends = measured.iter().map(|sent| sent.load(Ordering::Acquire));
    let (first, last) = (sends.clone().min(), sends.max());
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no measured write was sent");
    };
    let span_s = last.saturating_sub(first) as f64 / 1e9;
    let rate = (measured.len() as f64 - 1.0) / span_s.max(1e-9);
    Ok((rate, max_lag))
}
