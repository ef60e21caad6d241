//! PostgreSQL LISTEN/NOTIFY as `subscribe`'s peer: the same write-to-receipt run as Strand's
//! (the schedule, rooms and delivery tally of `realtime/tally.rs`) on a throwaway cluster
//! (`peers/postgres.rs`, `synchronous_commit=on`).
//!
//! Each write is one autocommitted `INSERT` into `ticks (id BIGINT PRIMARY KEY, room INT,
//! v INT)`; an `AFTER INSERT` trigger sends `pg_notify('room_<room>', id)`, which PostgreSQL
//! delivers at commit. Listener `j` is a connection of its own (a thread blocking on its
//! notifications) that ran `LISTEN room_<j % rooms>`: the filter Strand's subscribers have as
//! `WHERE room = ...`. PostgreSQL's default `max_connections` is 100, so the listener count is
//! `--pg-subscribers` (80 by default), which Strand also runs for the ratio.
//!
//! The writers' sessions commit as durably as Strand's run does: `synchronous_commit=on`
//! (a WAL flush per commit) beside `--fsync always`, `off` (WAL flushed in the background
//! within 200 ms) beside `interval` or `never`, so the ratio compares like with like.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::peers::postgres::Postgres;
use crate::proc::CpuMeter;
use crate::realtime::latency::LatencyPlan;
use crate::realtime::tally::{Deliveries, Receipts, Schedule};
use crate::report::Measurement;
use crate::run::Bench;

/// The trigger that turns each insert into a notification on its room's channel.
const SETUP: &str = "
    CREATE TABLE ticks (id BIGINT PRIMARY KEY, room INT, v INT);
    CREATE FUNCTION tick_notify() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('room_' || NEW.room, NEW.id::text);
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER ticks_notify AFTER INSERT ON ticks
        FOR EACH ROW EXECUTE FUNCTION tick_notify();
";
/// Connections the cluster takes (its default `max_connections` is 100): listeners, writers
/// and the setup's connection.
const PG_CONNECTIONS_MAX: usize = 98;
/// How long a listener blocks for notifications before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Runs the case `subs<subscribers>` against a fresh cluster and pushes it; a note when
/// PostgreSQL is not installed.
pub fn run(
    bench: &mut Bench,
    subscribers: usize,
    plan: &LatencyPlan,
    durable: bool,
) -> anyhow::Result<()> {
    let Some(pg) = Postgres::start(bench.targets.scratch(), "pg-notify")? else {
        bench.note("postgres not installed: skipped the LISTEN/NOTIFY peer of subscribe");
        return Ok(());
    };
    let schedule = plan.schedule(subscribers);
    anyhow::ensure!(
        subscribers + schedule.writers < PG_CONNECTIONS_MAX,
        "PostgreSQL takes {PG_CONNECTIONS_MAX} connections: {subscribers} listeners and {} \
         writers are too many (lower --pg-subscribers)",
        schedule.writers
    );
    let mut m = Measurement::new(
        "subscribe",
        "postgres",
        &format!("subs{subscribers}"),
        &format!(
            "{subscribers} LISTENers, {} channels, {} writes/s",
            schedule.rooms, plan.rate_per_s
        ),
    )
    .durability(match durable {
        true => "synchronous_commit=on",
        false => "synchronous_commit=off",
    });
    m = plan.params(m, &schedule).param("connections", subscribers);
    let window = plan.warm_up + plan.measure;
    let bar = bench
        .progress
        .timed(&format!("pg subs{subscribers}"), window);
    let outcome = measure(&pg, schedule, durable, &mut m);
    drop(bar);
    let deliveries = outcome.with_context(|| format!("PostgreSQL log:\n{}", pg.log()))?;
    if let Ok(facts) = pg.describe() {
        m = m.param("server", facts);
    }
    bench.push(m);
    deliveries.check(&format!("postgres subs{subscribers}"))
}

fn measure(
    pg: &Postgres,
    schedule: Schedule,
    durable: bool,
    m: &mut Measurement,
) -> anyhow::Result<Deliveries> {
    pg.connect()?
        .batch_execute(SETUP)
        .context("create ticks and its trigger")?;
    let schedule = Arc::new(schedule);
    let stop = Arc::new(AtomicBool::new(false));
    let subscribers = schedule.subscribers;
    // Every listener (and this thread) waits here until all have run LISTEN.
    let listening = Arc::new(Barrier::new(subscribers + 1));
    // Every connection first: a listener thread must not wait at the barrier for one that
    // could not connect.
    let clients = (0..subscribers)
        .map(|_| pg.connect())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut listeners = Vec::new();
    for (j, mut client) in clients.into_iter().enumerate() {
        let (schedule, stop, listening) = (schedule.clone(), stop.clone(), listening.clone());
        listeners.push(std::thread::spawn(move || -> anyhow::Result<Receipts> {
            let listened = client.batch_execute(&format!("LISTEN room_{}", j % schedule.rooms));
            listening.wait();
            listened.context("LISTEN")?;
            listen(&mut client, j, &schedule, &stop)
        }));
    }
    listening.wait();

    let cpu = CpuMeter::start(None);
    let insert = "INSERT INTO ticks (id, room, v) VALUES ($1, $2, 0)";
    let written = schedule.write_paced(
        |_| {
            let mut client = pg.connect()?;
            if !durable {
                client.batch_execute("SET synchronous_commit = off")?;
            }
            let statement = client.prepare(insert)?;
            Ok((client, statement))
        },
        |(client, statement), id, room| {
            let room = i32::try_from(room).context("room out of range")?;
            let rows = client.execute(&*statement, &[&id, &room])?;
            ensure!(rows == 1, "INSERT of id {id} wrote {rows} rows");
            Ok(())
        },
    );
    if written.is_ok() {
        schedule.drain();
    }
    cpu.figures(&mut m.figures);
    stop.store(true, Ordering::Release);
    let mut deliveries = Deliveries::default();
    for listener in listeners {
        let receipts = listener
            .join()
            .expect("a listener thread panicked")
            .context("a listener failed")?;
        deliveries.add(&receipts, &schedule);
    }
    let (write_rate, max_lag) = written?;
    deliveries.finish(m, &schedule, write_rate, max_lag);
    Ok(deliveries)
}

/// Listener `j`: every notification counted and timed until `stop`.
fn listen(
    client: &mut postgres::Client,
    j: usize,
    schedule: &Schedule,
    stop: &AtomicBool,
) -> anyhow::Result<Receipts> {
    let mut receipts = Receipts::new(schedule, j, j + 1);
    while !stop.load(Ordering::Acquire) {
        let mut notifications = client.notifications();
        let mut batch = notifications.timeout_iter(POLL);
        while let Some(notification) =
            postgres::fallible_iterator::FallibleIterator::next(&mut batch)?
        {
            let now = Instant::now();
            let id: i64 = notification
                .payload()
                .parse()
                .with_context(|| format!("a notification {:?}", notification.payload()))?;
            receipts.record(schedule, j, id, now)?;
        }
    }
    Ok(receipts)
}
