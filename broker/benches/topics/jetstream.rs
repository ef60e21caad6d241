//! The NATS JetStream side, when `nats-server` is on PATH: a throwaway server per
//! configuration (`nats-server -c <conf>`: 127.0.0.1 on a free port, JetStream with file
//! storage under the scratch directory), and the same workloads through `async-nats`:
//! - produce: each producer its own connection, JetStream publish (the server acks each
//!   message once stored), windows of [`crate::plan::BATCH`] publishes whose acks are all
//!   awaited before the next window (as a Strand producer awaits its batch's ack);
//! - consume: a pull consumer (`AckPolicy::None`, deliver all) read with `stream()` in pull
//!   batches;
//! - latency: JetStream publish at a fixed rate, a pull consumer receiving continuously.
//!
//! Throughput "partitions" are streams: stream `<prefix>_<i>` holds subject `<prefix>.<i>`,
//! one per Strand partition.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use crate::common::{self, ConsumeRun, Gauge, LatencyRun, Pacer, Task, Throughput};
use crate::plan::{LATENCY_VALUE_BYTES, PARTITIONS};

/// Messages a JetStream pull consumer asks for per pull request.
pub const PULL_BATCH: usize = 1000;

/// `nats-server --version`, when it is installed.
pub fn installed_version() -> Option<String> {
    let output = Command::new("nats-server").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A running `nats-server` (killed on drop).
pub struct NatsServer {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl NatsServer {
    pub fn start(dir: &Path) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let store = dir.join("jetstream");
        let config = format!(
            "listen: 127.0.0.1:{port}\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 1GB\n  max_file_store: 200GB\n}}\n",
            store.display()
        );
        let config_path = dir.join("nats.conf");
        std::fs::write(&config_path, config)?;
        let stderr_path = dir.join("nats.stderr");
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .context("spawn nats-server")?;
        let server = NatsServer {
            child,
            addr,
            dir: dir.to_path_buf(),
            stderr_path,
        };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if started.elapsed() > Duration::from_secs(15) {
                bail!(
                    "nats-server did not listen within 15 s:\n{}",
                    server.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    async fn connect(&self) -> anyhow::Result<jetstream::Context> {
        let client = async_nats::connect(format!("nats://{}", self.addr))
            .await
            .context("NATS connect")?;
        Ok(jetstream::new(client))
    }

    /// File-storage streams `<prefix>_<i>` (subject `<prefix>.<i>`) for `i < count`.
    async fn create_streams(&self, prefix: &str, count: u32) -> anyhow::Result<()> {
        let js = self.connect().await?;
        for i in 0..count {
            js.create_stream(stream::Config {
                name: format!("{prefix}_{i}"),
                subjects: vec![format!("{prefix}.{i}")],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("create stream {prefix}_{i}: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    /// Stops the server and removes its store (see `Strand`'s drop).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Produce throughput, as [`crate::strand_side::produce`]: producer `i` publishes to stream
/// `i % PARTITIONS` in windows of `batch` messages.
#[allow(clippy::too_many_arguments)]
pub fn produce(
    nats: &NatsServer,
    runtime: &Runtime,
    prefix: &str,
    value_bytes: usize,
    producers: usize,
    batch: usize,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<Throughput> {
    runtime.block_on(async {
        nats.create_streams(prefix, PARTITIONS).await?;
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<Vec<u64>>> = Vec::new();
        for i in 0..producers {
            let js = nats.connect().await?;
            let subject = async_nats::Subject::from(format!("{prefix}.{}", i as u32 % PARTITIONS));
            let values: Vec<Bytes> = (0..batch)
                .map(|n| Bytes::from(common::value(value_bytes, i, n)))
                .collect();
            tasks.push(Box::pin(produce_loop(js, subject, values, gauge.clone())));
        }
        common::drive_producers(tasks, gauge, warm_up, measure, nats.pid()).await
    })
}

async fn produce_loop(
    js: jetstream::Context,
    subject: async_nats::Subject,
    values: Vec<Bytes>,
    gauge: Arc<Gauge>,
) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::new();
    let mut acks = Vec::with_capacity(values.len());
    while !gauge.stopped() {
        let started = Instant::now();
        for value in &values {
            let ack = js
                .publish(subject.clone(), value.clone())
                .await
                .map_err(|e| anyhow::anyhow!("publish: {e}"))?;
            acks.push(ack);
        }
        for ack in acks.drain(..) {
            ack.await.map_err(|e| anyhow::anyhow!("publish ack: {e}"))?;
        }
        gauge.add(values.len() as u64);
        if gauge.measuring() {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    Ok(samples)
}

/// Publishes `records` messages spread evenly over `PARTITIONS` new streams.
pub fn fill(
    nats: &NatsServer,
    runtime: &Runtime,
    prefix: &str,
    value_bytes: usize,
    records: usize,
) -> anyhow::Result<Duration> {
    let per_stream = records / PARTITIONS as usize;
    let started = Instant::now();
    runtime.block_on(async {
        nats.create_streams(prefix, PARTITIONS).await?;
        let mut handles = Vec::new();
        for i in 0..PARTITIONS {
            let js = nats.connect().await?;
            let subject = async_nats::Subject::from(format!("{prefix}.{i}"));
            let values: Vec<Bytes> = (0..1000)
                .map(|n| Bytes::from(common::value(value_bytes, i as usize, n)))
                .collect();
            handles.push(tokio::spawn(async move {
                let mut left = per_stream;
                while left > 0 {
                    let n = left.min(values.len());
                    let mut acks = Vec::with_capacity(n);
                    for value in &values[..n] {
                        let ack = js.publish(subject.clone(), value.clone()).await;
                        acks.push(ack.map_err(|e| anyhow::anyhow!("publish: {e}"))?);
                    }
                    for ack in acks {
                        ack.await.map_err(|e| anyhow::anyhow!("publish ack: {e}"))?;
                    }
                    left -= n;
                }
                anyhow::Ok(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        anyhow::Ok(())
    })?;
    Ok(started.elapsed())
}

async fn pull_consumer(
    js: &jetstream::Context,
    stream_name: &str,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(stream_name)
        .await
        .map_err(|e| anyhow::anyhow!("get stream {stream_name}: {e}"))?;
    stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create consumer on {stream_name}: {e}"))
}

async fn read_stream(
    js: &jetstream::Context,
    stream_name: &str,
    expected: u64,
) -> anyhow::Result<u64> {
    let consumer = pull_consumer(js, stream_name).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("pull stream: {e}"))?;
    let mut read = 0u64;
    while read < expected {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .with_context(|| format!("{stream_name}: nothing for 30 s after {read}"))?;
        let message = message
            .context("pull stream ended")?
            .map_err(|e| anyhow::anyhow!("pull: {e}"))?;
        ensure!(!message.payload.is_empty(), "empty message");
        read += 1;
    }
    Ok(read)
}

/// Consume throughput over streams [`fill`]ed with `records`: one consumer reading the
/// streams one after the other on one connection, or one per stream on its own connection.
pub fn consume(
    nats: &NatsServer,
    runtime: &Runtime,
    prefix: &str,
    records: usize,
    consumers: usize,
) -> anyhow::Result<ConsumeRun> {
    let per_stream = (records / PARTITIONS as usize) as u64;
    runtime.block_on(async {
        let mut tasks: Vec<Task<u64>> = Vec::new();
        if consumers == 1 {
            let js = nats.connect().await?;
            let prefix = prefix.to_string();
            tasks.push(Box::pin(async move {
                let mut read = 0;
                for i in 0..PARTITIONS {
                    read += read_stream(&js, &format!("{prefix}_{i}"), per_stream).await?;
                }
                Ok(read)
            }));
        } else {
            for i in 0..PARTITIONS {
                let js = nats.connect().await?;
                let name = format!("{prefix}_{i}");
                tasks.push(Box::pin(async move {
                    read_stream(&js, &name, per_stream).await
                }));
            }
        }
        common::drive_consumers(tasks, nats.pid()).await
    })
}

/// Produce-to-consume latency, as [`crate::strand_side::latency`]: publishes at `rate_per_s`
/// (each ack awaited in its own task), a pull consumer on another connection.
pub fn latency(
    nats: &NatsServer,
    runtime: &Runtime,
    prefix: &str,
    rate_per_s: u32,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<LatencyRun> {
    let total = (f64::from(rate_per_s) * (warm_up + measure).as_secs_f64()) as usize;
    let limit = warm_up + measure + Duration::from_secs(60);
    let run = async {
        nats.create_streams(prefix, 1).await?;
        let producer = nats.connect().await?;
        let consumer_js = nats.connect().await?;
        let consumer = pull_consumer(&consumer_js, &format!("{prefix}_0")).await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(100)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("pull stream: {e}"))?;
        let base = Instant::now();
        let cpu = common::CpuWindow::start(nats.pid());
        let deadline = warm_up + measure + Duration::from_secs(30);
        let reader = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(total);
            while samples.len() < total {
                ensure!(
                    base.elapsed() < deadline,
                    "received {} of {total}",
                    samples.len()
                );
                let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
                let Ok(Some(message)) = next else {
                    bail!("pull stream stalled after {}", samples.len());
                };
                let message = message.map_err(|e| anyhow::anyhow!("pull: {e}"))?;
                let now = base.elapsed().as_nanos() as u64;
                let sent = common::stamp_of(&message.payload).context("short value")?;
                samples.push((sent, now.saturating_sub(sent)));
            }
            anyhow::Ok(samples)
        });
        let subject = async_nats::Subject::from(format!("{prefix}.0"));
        let mut pacer = Pacer::new(rate_per_s);
        let mut acks = tokio::task::JoinSet::new();
        for i in 0..total {
            pacer.wait_for(i).await;
            let sent = base.elapsed().as_nanos() as u64;
            let value = Bytes::from(common::stamped_value(LATENCY_VALUE_BYTES, sent));
            let ack = producer
                .publish(subject.clone(), value)
                .await
                .map_err(|e| anyhow::anyhow!("publish: {e}"))?;
            acks.spawn(async move { ack.await.map_err(|e| anyhow::anyhow!("ack: {e}")) });
        }
        while let Some(acked) = acks.join_next().await {
            acked??;
        }
        let samples = reader.await??;
        let cpu = cpu.usage();
        Ok(LatencyRun {
            stats: common::latency_stats(&samples, warm_up.as_nanos() as u64)?,
            received: samples.len(),
            sent: total,
            max_send_lag: pacer.max_lag,
            cpu,
        })
    };
    runtime.block_on(async {
        tokio::time::timeout(limit, run)
            .await
            .context("the latency run did not finish in time")?
    })
}
