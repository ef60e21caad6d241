//! Strand's write-to-receipt latency run: `subscribers` subscriptions of
//! `SELECT id, room, v FROM <table> WHERE room = <j % rooms>` (rooms = subscribers / 10, so a
//! write reaches ~10 of them), [`SUBSCRIPTIONS_PER_CONNECTION`] per WebSocket connection, while
//! `--writers` threads send single-row INSERTs over keep-alive HTTP on the open-loop schedule
//! of [`Schedule`] (which also counts every delivery per subscription and id).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::proc::CpuMeter;
use crate::realtime::setup::Server;
use crate::realtime::tally::{Deliveries, Receipts, Schedule};
use crate::realtime::ws::{clip, subscribe_all, Lite, Ws};
use crate::report::{Figure, Measurement};

/// Subscriptions per WebSocket connection (the server allows 256).
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 100;
/// Subscribers per room: each write reaches this many.
pub const SUBSCRIBERS_PER_ROOM: usize = 10;

/// The rate and windows of a latency run.
#[derive(Clone, Copy)]
pub struct LatencyPlan {
    pub rate_per_s: f64,
    /// Writer threads (one connection each) sharing the open-loop schedule.
    pub writers: usize,
    /// Writes before the timed ones: delivered and counted, not timed.
    pub warm_up: Duration,
    pub measure: Duration,
}

impl LatencyPlan {
    /// The schedule of a run with `subscribers`, ~[`SUBSCRIBERS_PER_ROOM`] per room.
    pub fn schedule(&self, subscribers: usize) -> Schedule {
        let rooms = (subscribers / SUBSCRIBERS_PER_ROOM).max(1);
        let mut schedule = Schedule::new(
            subscribers,
            rooms,
            self.rate_per_s,
            self.warm_up,
            self.measure,
        );
        schedule.writers = self.writers.max(1);
        schedule
    }

    /// The plan's parameters on `m`.
    pub fn params(&self, m: Measurement, schedule: &Schedule) -> Measurement {
        m.param("subscribers", schedule.subscribers)
            .param("rooms", schedule.rooms)
            .param("rate_per_s", self.rate_per_s)
            .param("warm_up_s", self.warm_up.as_secs_f64())
            .param("duration_s", self.measure.as_secs_f64())
            .param("writers", self.writers.max(1))
    }
}

/// Runs the case on `server` with table `table` (created here) and fills `m`; the
/// deliveries, for the caller's LOST / DUPLICATE check after it pushed `m`.
pub fn measure(
    server: &Server,
    runtime: &Runtime,
    table: &str,
    schedule: Schedule,
    m: &mut Measurement,
) -> anyhow::Result<Deliveries> {
    server.create_table(table)?;
    let subscribers = schedule.subscribers;
    let connections = subscribers.div_ceil(SUBSCRIPTIONS_PER_CONNECTION);
    let subscribing = Instant::now();
    let sockets = runtime.block_on(open_subscribers(server, table, subscribers, schedule.rooms))?;
    let subscribe_time = subscribing.elapsed();

    let schedule = Arc::new(schedule);
    let (stop, stopped) = watch::channel(false);
    let receivers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| {
            let first = c * SUBSCRIPTIONS_PER_CONNECTION;
            let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(subscribers);
            let receipts = Receipts::new(&schedule, first, last);
            runtime.spawn(receive(ws, receipts, schedule.clone(), stopped.clone()))
        })
        .collect();

    let cpu = CpuMeter::start(server.target.server_pid());
    let written = schedule.write_paced(
        |_| server.session(),
        |session, id, room| {
            let sql = format!("INSERT INTO {table} (id, room, v) VALUES ({id}, {room}, 0)");
            let rows = session.execute(&sql)?;
            ensure!(rows == 1, "INSERT of id {id} wrote {rows} rows");
            Ok(())
        },
    );
    // Stop the receivers whatever happened to the writers.
    if written.is_ok() {
        schedule.drain();
    }
    cpu.figures(&mut m.figures);
    let _ = stop.send(true);
    let mut deliveries = Deliveries::default();
    for receiver in receivers {
        let receipts = runtime
            .block_on(receiver)
            .context("a receiver task panicked")?
            .context("a subscriber connection failed")?;
        deliveries.add(&receipts, &schedule);
    }
    let (write_rate, max_lag) = written?;
    deliveries.finish(m, &schedule, write_rate, max_lag);
    m.params.insert("connections".into(), connections.into());
    m.figures.push(Figure::new(
        "subscribe_all",
        subscribe_time.as_secs_f64(),
        "s",
    ));
    Ok(deliveries)
}

/// Connects and subscribes everyone; every snapshot (of an empty table) is ready on return.
async fn open_subscribers(
    server: &Server,
    table: &str,
    subscribers: usize,
    rooms: usize,
) -> anyhow::Result<Vec<Ws>> {
    let addr = server.target.http;
    let mut tasks = Vec::new();
    for first in (0..subscribers).step_by(SUBSCRIPTIONS_PER_CONNECTION) {
        let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(subscribers);
        let subscriptions: Vec<(String, String)> = (first..last)
            .map(|j| {
                let sql = format!("SELECT id, room, v FROM {table} WHERE room = {}", j % rooms);
                (format!("s{j}"), sql)
            })
            .collect();
        let token = server.token.clone();
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

/// Reads changes until told to stop, counting and timing each in `receipts`.
async fn receive(
    mut ws: Ws,
    mut receipts: Receipts,
    schedule: Arc<Schedule>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Receipts> {
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let now = Instant::now();
        let lite = Lite::parse(&text)?;
        ensure!(
            lite.kind == "change",
            "expected a change, got {}",
            clip(&text)
        );
        let id = lite.change_id()?;
        let subscription = lite.subscription_id.as_deref().unwrap_or_default();
        let j: usize = subscription
            .strip_prefix('s')
            .and_then(|j| j.parse().ok())
            .with_context(|| format!("a change for an unknown subscription {subscription:?}"))?;
        receipts.record(&schedule, j, id, now)?;
    }
    ws.close().await;
    Ok(receipts)
}
