//! NATS core pub/sub as `subscribe`'s peer: the same write-to-receipt run as Strand's (the
//! schedule, rooms and delivery tally of `realtime/tally.rs`) on a throwaway `nats-server`
//! (`peers/nats.rs`).
//!
//! Subscriber `j` is a subscription to subject `rooms.<j % rooms>` (the filter Strand's
//! subscribers have as `WHERE room = ...`), 100 per client connection as Strand's are per
//! WebSocket; each write is a publish of the id to its room's subject followed by a flush
//! (a PING/PONG round trip: the write has reached the server, as an answered INSERT has).
//! Core NATS keeps nothing: its durability is none, and nothing is written to disk.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::peers::nats::{installed_version, NatsServer};
use crate::proc::CpuMeter;
use crate::realtime::latency::{LatencyPlan, SUBSCRIPTIONS_PER_CONNECTION};
use crate::realtime::tally::{Deliveries, Receipts, Schedule};
use crate::report::Measurement;
use crate::run::Bench;

/// Runs the case `subs<N>` for every N against one fresh server per case and pushes them; a
/// note when nats-server is not installed.
pub fn run(bench: &mut Bench, subscribers: &[usize], plan: &LatencyPlan) -> anyhow::Result<()> {
    let Some(version) = installed_version() else {
        bench.note("nats-server not installed: skipped the NATS core peer of subscribe");
        return Ok(());
    };
    let mut failures = Vec::new();
    for (case, &n) in subscribers.iter().enumerate() {
        let dir = bench.targets.scratch().join(format!("nats-core-{case}"));
        let server = NatsServer::start(&dir)?;
        let schedule = plan.schedule(n);
        let mut m = Measurement::new(
            "subscribe",
            "nats-core",
            &format!("subs{n}"),
            &format!(
                "{n} NATS subs, {} subjects, {} writes/s",
                schedule.rooms, plan.rate_per_s
            ),
        )
        .durability("none (core pub/sub)")
        .param("server", version.clone());
        m = plan
            .params(m, &schedule)
            .param("connections", n.div_ceil(SUBSCRIPTIONS_PER_CONNECTION));
        let bar = bench
            .progress
            .timed(&format!("nats subs{n}"), plan.warm_up + plan.measure);
        let outcome = measure(bench, &server, schedule, &mut m);
        drop(bar);
        let deliveries =
            outcome.with_context(|| format!("nats-server stderr:\n{}", server.stderr()))?;
        bench.push(m);
        if let Err(error) = deliveries.check(&format!("nats-core subs{n}")) {
            failures.push(format!("{error:#}"));
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

fn measure(
    bench: &Bench,
    server: &NatsServer,
    schedule: Schedule,
    m: &mut Measurement,
) -> anyhow::Result<Deliveries> {
    let runtime = &bench.runtime;
    let schedule = Arc::new(schedule);
    let subscribers = schedule.subscribers;
    let (stop, stopped) = watch::channel(false);
    let mut receivers = Vec::new();
    for first in (0..subscribers).step_by(SUBSCRIPTIONS_PER_CONNECTION) {
        let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(subscribers);
        let client = runtime.block_on(server.connect())?;
        let mut streams = Vec::new();
        for j in first..last {
            let subject = format!("rooms.{}", j % schedule.rooms);
            let subscription = runtime.block_on(client.subscribe(subject))?;
            streams.push(subscription.map(move |message| (j, message)));
        }
        // A round trip: the server has every subscription before the first publish.
        runtime
            .block_on(client.flush())
            .context("flush the subscriptions")?;
        let receipts = Receipts::new(&schedule, first, last);
        let (schedule, mut stop) = (schedule.clone(), stopped.clone());
        receivers.push(runtime.spawn(async move {
            let _client = client;
            let mut receipts = receipts;
            let mut merged = futures_util::stream::select_all(streams);
            loop {
                let (j, message) = tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    next = merged.next() => next.context("subscriptions ended")?,
                };
                let now = Instant::now();
                let id: i64 = std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .context("a message whose payload is not an id")?;
                receipts.record(&schedule, j, id, now)?;
            }
            anyhow::Ok(receipts)
        }));
    }

    let cpu = CpuMeter::start(Some(server.pid()));
    let handle = runtime.handle();
    let written = schedule.write_paced(
        |_| handle.block_on(server.connect()),
        |client, id, room| {
            handle.block_on(async {
                client
                    .publish(format!("rooms.{room}"), id.to_string().into())
                    .await?;
                client.flush().await?;
                anyhow::Ok(())
            })
        },
    );
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
            .context("a NATS subscriber failed")?;
        deliveries.add(&receipts, &schedule);
    }
    let (write_rate, max_lag) = written?;
    deliveries.finish(m, &schedule, write_rate, max_lag);
    Ok(deliveries)
}
