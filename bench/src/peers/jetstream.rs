//! NATS JetStream's side of the topics workloads, on a [`NatsServer`] (file storage), through
//! `async-nats`:
//! - produce: each producer its own connection, JetStream publish (the server acks each
//!   message once stored), windows of `batch` publishes whose acks are all awaited before the
//!   next window (as a Strand producer awaits its batch's ack);
//! - consume: a pull consumer (`AckPolicy::None`, deliver all) read with `stream()` in pull
//!   batches;
//! - e2e: JetStream publish at a fixed rate (open loop), a pull consumer receiving
//!   continuously on another connection.
//!
//! Strand's partitions are streams here: stream `<prefix>_<i>` holds subject `<prefix>.<i>`.
//! Version 2.9 has no per-message fsync option: its file store syncs every 2 minutes, which
//! [`DURABILITY`] says (comparable with Strand's `fsync=never`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use tokio::runtime::Runtime;

use crate::latency::LatencyHistogram;
use crate::peers::nats::NatsServer;
use crate::topics::cpu::CpuMark;
use crate::topics::driver::{self, E2eRun, Gauge, Receipts, Run, Task};
use crate::topics::{self, ConsumeCase, E2eCase, ProduceCase, E2E_VALUE_BYTES, FILL_BATCH};

/// The durability label of JetStream's measurements.
pub const DURABILITY: &str = "default (sync/2min)";
/// Messages a pull consumer asks for per pull request.
pub const PULL_BATCH: usize = 1000;
/// How long a consumer waits for a next message before it calls the stream stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(nats: &NatsServer) -> anyhow::Result<jetstream::Context> {
    Ok(jetstream::new(nats.connect().await?))
}

/// File-storage streams `<prefix>_<i>` (subject `<prefix>.<i>`) for `i < count`.
async fn create_streams(js: &jetstream::Context, prefix: &str, count: u32) -> anyhow::Result<()> {
    for i in 0..count {
        js.create_stream(stream::Config {
            name: format!("{prefix}_{i}"),
            subjects: vec![format!("{prefix}.{i}")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("create stream {prefix}_{i}: {e}"))?;
    }
    Ok(())
}

/// Produce throughput of `case`: producer `i` publishes to stream `i % partitions`.
pub fn produce(nats: &NatsServer, runtime: &Runtime, case: &ProduceCase) -> anyhow::Result<Run> {
    let prefix = format!("P{}_{}", case.value_bytes, case.producers);
    runtime.block_on(async {
        create_streams(&connect(nats).await?, &prefix, case.partitions).await?;
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<LatencyHistogram>> = Vec::new();
        for i in 0..case.producers {
            let js = connect(nats).await?;
            let subject = format!("{prefix}.{}", i as u32 % case.partitions);
            let values = topics::values(case.value_bytes, i, case.batch);
            tasks.push(Box::pin(produce_loop(
                js,
                subject.into(),
                values,
                gauge.clone(),
            )));
        }
        let pid = Some(nats.pid());
        driver::drive_producers(tasks, gauge, case.warm_up, case.window(), pid).await
    })
}

async fn produce_loop(
    js: jetstream::Context,
    subject: async_nats::Subject,
    values: Vec<Bytes>,
    gauge: Arc<Gauge>,
) -> anyhow::Result<LatencyHistogram> {
    let mut latency = LatencyHistogram::new();
    let bytes: u64 = values.iter().map(|v| v.len() as u64).sum();
    let mut first = true;
    while !gauge.stopped() {
        let started = Instant::now();
        let sent = publish_window(&js, &subject, &values);
        let Some(published) = gauge.unless_stopped(sent).await else {
            break;
        };
        published?;
        gauge.acked(values.len() as u64, bytes, &mut first);
        if gauge.measuring() {
            latency.record(started.elapsed());
        }
    }
    Ok(latency)
}

/// Publishes `values` and awaits every ack.
async fn publish_window(
    js: &jetstream::Context,
    subject: &async_nats::Subject,
    values: &[Bytes],
) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(values.len());
    for value in values {
        let ack = js.publish(subject.clone(), value.clone()).await;
        acks.push(ack.map_err(|e| anyhow!("publish: {e}"))?);
    }
    for ack in acks {
        ack.await.map_err(|e| anyhow!("publish ack: {e}"))?;
    }
    Ok(())
}

/// Publishes the records of `case` into new streams (one publisher per stream, windows of
/// [`FILL_BATCH`]); returns the stream prefix and how long it took.
pub fn fill(
    nats: &NatsServer,
    runtime: &Runtime,
    case: &ConsumeCase,
    bar: &ProgressBar,
) -> anyhow::Result<(String, Duration)> {
    let prefix = format!("C{}", case.value_bytes);
    let started = Instant::now();
    runtime.block_on(async {
        create_streams(&connect(nats).await?, &prefix, case.partitions).await?;
        let mut handles = Vec::new();
        for i in 0..case.partitions {
            let js = connect(nats).await?;
            let subject = async_nats::Subject::from(format!("{prefix}.{i}"));
            let values = topics::values(case.value_bytes, i as usize, FILL_BATCH);
            let (mut left, bar) = (case.records_per_partition, bar.clone());
            handles.push(tokio::spawn(async move {
                while left > 0 {
                    let n = left.min(values.len() as u64);
                    publish_window(&js, &subject, &values[..n as usize]).await?;
                    left -= n;
                    bar.inc(n);
                }
                anyhow::Ok(())
            }));
        }
        for handle in handles {
            handle.await.context("a fill task panicked")??;
        }
        anyhow::Ok(())
    })?;
    Ok((prefix, started.elapsed()))
}

async fn pull_consumer(
    js: &jetstream::Context,
    stream_name: &str,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(stream_name)
        .await
        .map_err(|e| anyhow!("get stream {stream_name}: {e}"))?;
    stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("create consumer on {stream_name}: {e}"))
}

async fn read_stream(
    js: &jetstream::Context,
    stream_name: &str,
    expected: u64,
    gauge: &Gauge,
) -> anyhow::Result<u64> {
    let consumer = pull_consumer(js, stream_name).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .map_err(|e| anyhow!("pull stream: {e}"))?;
    let mut read = 0u64;
    while read < expected {
        let message = tokio::time::timeout(STALL_TIMEOUT, messages.next())
            .await
            .with_context(|| format!("{stream_name}: nothing for 30 s after {read}"))?;
        let message = message
            .context("pull stream ended")?
            .map_err(|e| anyhow!("pull: {e}"))?;
        ensure!(!message.payload.is_empty(), "empty message");
        read += 1;
        gauge.add(1, message.payload.len() as u64);
    }
    Ok(read)
}

/// Consume throughput of `case` over streams [`fill`]ed under `prefix`.
pub fn consume(
    nats: &NatsServer,
    runtime: &Runtime,
    prefix: &str,
    case: &ConsumeCase,
) -> anyhow::Result<Run> {
    runtime.block_on(async {
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<u64>> = Vec::new();
        for k in 0..case.consumers {
            let js = connect(nats).await?;
            let names: Vec<String> = case
                .partitions_of(k)
                .map(|i| format!("{prefix}_{i}"))
                .collect();
            let (gauge, expected) = (gauge.clone(), case.records_per_partition);
            tasks.push(Box::pin(async move {
                let mut read = 0;
                for name in names {
                    read += read_stream(&js, &name, expected, &gauge).await?;
                }
                Ok(read)
            }));
        }
        driver::drive_consumers(tasks, gauge, case.records(), Some(nats.pid())).await
    })
}

/// Produce-to-consume latency of `case`: publishes due at `case.rate` (each ack awaited in
/// its own task), a pull consumer on another connection.
pub fn e2e(nats: &NatsServer, runtime: &Runtime, case: &E2eCase) -> anyhow::Result<E2eRun> {
    let total = case.total();
    runtime.block_on(async {
        let producer = connect(nats).await?;
        create_streams(&producer, "L", 1).await?;
        let consumer = pull_consumer(&connect(nats).await?, "L_0").await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(100)
            .messages()
            .await
            .map_err(|e| anyhow!("pull stream: {e}"))?;
        let mark = CpuMark::now(Some(nats.pid()));
        let base = Instant::now();
        let deadline = case.receive_deadline(base);
        let mut receipts = Receipts::new(base, case.warm_up, total);
        let reader = tokio::spawn(async move {
            while !receipts.complete() {
                let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                let Ok(next) = tokio::time::timeout(wait, messages.next()).await else {
                    break;
                };
                let message = next
                    .context("pull stream ended")?
                    .map_err(|e| anyhow!("pull: {e}"))?;
                receipts.receive(&message.payload, Instant::now())?;
            }
            anyhow::Ok(receipts)
        });
        let handle = tokio::runtime::Handle::current();
        let rate = case.rate;
        let pacer = tokio::task::spawn_blocking(move || {
            let acks = Mutex::new(Vec::new());
            let lag = driver::pace_blocking(base, rate, total, |index, due_ns| {
                let value = Bytes::from(topics::stamped_value(E2E_VALUE_BYTES, index, due_ns));
                let producer = producer.clone();
                let ack = handle.spawn(async move {
                    let ack = producer.publish("L.0", value).await;
                    ack.map_err(|e| anyhow!("publish: {e}"))?
                        .await
                        .map_err(|e| anyhow!("publish ack: {e}"))
                });
                acks.lock().expect("ack list lock").push(ack);
            });
            (lag, acks.into_inner().expect("ack list lock"))
        });
        let (max_send_lag, acks) = pacer.await.context("the pacing thread panicked")?;
        for ack in acks {
            ack.await.context("a publish task panicked")??;
        }
        let receipts = reader.await.context("the consumer task panicked")??;
        Ok(E2eRun {
            receipts,
            sent: total,
            max_send_lag,
            cpu: mark.use_since(),
        })
    })
}
