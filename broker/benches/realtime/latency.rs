//! Workload 1, write-to-client latency: `subscribers` subscriptions of
//! `SELECT id, room, v FROM <table> WHERE room = <i % rooms>` (rooms = subscribers / 10, so a
//! write reaches ~10 of them), [`SUBSCRIPTIONS_PER_CONNECTION`] per WebSocket connection, while
//! writer threads send single-row INSERTs over keep-alive HTTP paced at a fixed rate.
//!
//! A write's send time is stored (by id, monotonic clock of this process) just before its
//! request goes out; a change's latency is its receive time minus that. Writes in the warm-up
//! are delivered and checked but not counted. Every expected delivery must arrive.

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
    /// Deliveries of measured writes so far.
    delivered: AtomicU64,
    /// The first id that is measured (the ones before are the warm-up).
    measure_from: i64,
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
    });
    let (stop, stopped) = watch::channel(false);
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|ws| runtime.spawn(receive(ws, shared.clone(), stopped.clone())))
        .collect();

    // Subscriber j watches room j % rooms: a write to room r reaches every such j.
    let reach = |id: i64| {
        let room = (id % rooms as i64) as usize;
        (subscribers / rooms + usize::from(room < subscribers % rooms)) as u64
    };
    let expected: u64 = (shared.measure_from..=total_writes as i64).map(reach).sum();
    let cpu = CpuMeter::start(bench);
    let (write_time, max_lag) = write_paced(bench, &table, rooms, total_writes, plan, &shared)?;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.delivered.load(Ordering::Acquire) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (client_cpu, server_cpu) = cpu.percent(bench);
    let _ = stop.send(true);
    let mut samples = Vec::new();
    for receiver in receivers {
        let received = runtime
            .block_on(receiver)
            .context("a receiver task panicked")?
            .context("a subscriber connection failed")?;
        samples.extend(received);
    }
    let delivered = samples.len() as u64;
    let stats = Stats::of(samples).context("no change was delivered")?;
    let mut figures = stats.figures(true);
    figures.extend([
        Figure::count("delivered", delivered),
        Figure::count("expected", expected),
        Figure::new(
            "writes",
            (measured_writes as f64 / write_time.as_secs_f64()).round(),
            "/s",
        ),
        Figure::ms("max send lag", max_lag),
        Figure::new("client cpu", client_cpu, "%"),
        Figure::new("server cpu", server_cpu, "%"),
        Figure::new("subscribe all", subscribe_time.as_secs_f64(), "s"),
    ]);
    if delivered != expected {
        eprintln!("LOST OR EXTRA CHANGES: {delivered} delivered, {expected} expected ({table})");
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

/// Read changes until told to stop; the latencies of measured writes, in ns.
async fn receive(
    mut ws: Ws,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<u64>> {
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
        if id >= shared.measure_from {
            samples.push(now.saturating_sub(sent));
            shared.delivered.fetch_add(1, Ordering::Release);
        }
    }
    ws.close().await;
    Ok(samples)
}

/// Send ids `1..=total` at `plan.rate_per_s` from [`WRITERS`] threads; the time the measured
/// part took and the largest delay of a send behind its schedule.
fn write_paced(
    bench: &Bench,
    table: &str,
    rooms: usize,
    total: usize,
    plan: &LatencyPlan,
    shared: &Shared,
) -> anyhow::Result<(Duration, Duration)> {
    let period = Duration::from_secs_f64(1.0 / plan.rate_per_s);
    let start = Instant::now() + Duration::from_millis(20);
    let measured_start = start + period * (shared.measure_from as u32 - 1);
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
    Ok((measured_start.elapsed(), max_lag))
}
