//! The Strand side: a `strand serve` per configuration (`http_sql`'s `StrandServer`: release
//! binary, 127.0.0.1:0, fresh data directory), topics made over HTTP SQL, and QUIC clients
//! (`strand_wire::quic::client`, one connection per producer or consumer, authenticated with
//! the JWT of one login, trusting `<data-dir>/tls/cert.pem`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::json;
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Frame, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
    Records,
};
use tokio::runtime::Runtime;

use crate::common::{self, ConsumeRun, Gauge, LatencyRun, Pacer, Task, Throughput};
use crate::http::HttpConnection;
use crate::plan::{FETCH_BYTES_MAX, FETCH_RECORDS_MAX, LATENCY_VALUE_BYTES, PARTITIONS};
use crate::strand::{StrandServer, ADMIN_PASSWORD};

/// How long a connection (handshake and auth) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request of the fill may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server, logged in.
pub struct Strand {
    server: StrandServer,
    authorization: String,
    token: String,
    cert: PathBuf,
}

impl Drop for Strand {
    /// Removes the data directory (the server still has its files open; the kernel frees them,
    /// dirty pages included, when the server exits right after): later configurations do not
    /// pay for this one's writeback.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.server.data_dir);
    }
}

impl Strand {
    /// `strand serve --fsync <fsync>` on `<scratch>/<name>`, and `CREATE NAMESPACE bench`.
    pub fn start(scratch: &Path, name: &str, fsync: &str) -> anyhow::Result<Strand> {
        let server = StrandServer::start(&scratch.join(name), fsync)?;
        let mut http = HttpConnection::connect(server.http, None)?;
        let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
        let (status, answer) = http.post_json("/v1/api/auth/login", body.as_bytes())?;
        let answer: serde_json::Value = serde_json::from_slice(answer)?;
        ensure!(status == 200, "login failed ({status}): {answer}");
        let token = answer["token"]
            .as_str()
            .context("login answer has no token")?
            .to_string();
        let cert = server.data_dir.join("tls").join("cert.pem");
        let strand = Strand {
            authorization: format!("Bearer {token}"),
            token,
            cert,
            server,
        };
        strand.sql("CREATE NAMESPACE bench")?;
        Ok(strand)
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    pub fn stderr(&self) -> String {
        self.server.stderr()
    }

    /// Runs statements over HTTP SQL; fails unless they all succeed.
    pub fn sql(&self, sql: &str) -> anyhow::Result<()> {
        let mut http = HttpConnection::connect(self.server.http, Some(&self.authorization))?;
        let body = json!({"sql": sql, "params": []}).to_string();
        let (status, answer) = http.post_json("/v1/api/sql", body.as_bytes())?;
        ensure!(
            status == 200,
            "{sql}: HTTP {status}: {}",
            String::from_utf8_lossy(answer)
        );
        Ok(())
    }

    /// A topic of `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<()> {
        self.sql(&format!(
            "CREATE TOPIC {topic} WITH (PARTITIONS = {partitions})"
        ))
    }

    /// A connection, authenticated (the client's defaults: `strand_wire::quic::client`).
    async fn connect(&self) -> anyhow::Result<Client> {
        let connect = Client::connect_token(self.server.quic, &self.cert, &self.token);
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .context("QUIC connect: no connection within 10 s")?
            .context("QUIC connect")
    }
}

/// The acks of one produce: their record count, or the server's error.
fn acked_records(frames: Vec<Frame>) -> anyhow::Result<u64> {
    let mut records = 0;
    for frame in frames {
        match frame.message {
            Message::ProduceAck(ack) => records += u64::from(ack.count),
            Message::Error(error) => bail!("produce: {}: {}", error.code, error.message),
            other => bail!("produce answered with {}", other.name()),
        }
    }
    Ok(records)
}

fn records_of(frames: Vec<Frame>) -> anyhow::Result<Records> {
    match frames.into_iter().next().map(|frame| frame.message) {
        Some(Message::FetchResponse(records)) => Ok(records),
        Some(Message::Error(error)) => bail!("fetch: {}: {}", error.code, error.message),
        Some(other) => bail!("fetch answered with {}", other.name()),
        None => bail!("fetch: no answer"),
    }
}

fn batch_request(
    topic: &str,
    partition: u32,
    value_bytes: usize,
    producer: usize,
    batch: usize,
) -> ProduceTopic {
    ProduceTopic {
        topic: topic.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: None,
        records: (0..batch)
            .map(|n| ProduceRecord {
                key: bytes::Bytes::new(),
                value: common::value(value_bytes, producer, n).into(),
            })
            .collect(),
    }
}

/// Produce throughput: `producers` tasks, each on its own connection, each sending batches of
/// `batch` records of `value_bytes` to partition `i % PARTITIONS` of a new topic, one request
/// in flight per producer (the next batch goes when the last one is acknowledged).
#[allow(clippy::too_many_arguments)]
pub fn produce(
    strand: &Strand,
    runtime: &Runtime,
    topic: &str,
    value_bytes: usize,
    producers: usize,
    batch: usize,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<Throughput> {
    strand.create_topic(topic, PARTITIONS)?;
    runtime.block_on(async {
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<Vec<u64>>> = Vec::new();
        for i in 0..producers {
            let client = strand.connect().await?;
            let partition = i as u32 % PARTITIONS;
            let request = batch_request(topic, partition, value_bytes, i, batch);
            tasks.push(Box::pin(produce_loop(client, request, gauge.clone())));
        }
        common::drive_producers(tasks, gauge, warm_up, measure, strand.pid()).await
    })
}

async fn produce_loop(
    client: Client,
    request: ProduceTopic,
    gauge: Arc<Gauge>,
) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::new();
    let expected = request.records.len() as u64;
    while !gauge.stopped() {
        let started = Instant::now();
        let frames = client
            .request(Message::ProduceTopic(request.clone()))
            .await?;
        let records = acked_records(frames)?;
        ensure!(records == expected, "acked {records} of {expected} records");
        gauge.add(records);
        if gauge.measuring() {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    Ok(samples)
}

/// Writes `records` records of `value_bytes` into a new topic, spread evenly over its
/// partitions (one producer per partition, batches of 1000).
pub fn fill(
    strand: &Strand,
    runtime: &Runtime,
    topic: &str,
    value_bytes: usize,
    records: usize,
) -> anyhow::Result<Duration> {
    strand.create_topic(topic, PARTITIONS)?;
    let per_partition = records / PARTITIONS as usize;
    let started = Instant::now();
    runtime.block_on(async {
        let mut handles = Vec::new();
        for partition in 0..PARTITIONS {
            let client = strand.connect().await?;
            let topic = topic.to_string();
            let full = batch_request(&topic, partition, value_bytes, partition as usize, 1000);
            handles.push(tokio::spawn(async move {
                let mut left = per_partition;
                while left > 0 {
                    let n = left.min(1000);
                    let mut request = full.clone();
                    request.records.truncate(n);
                    let sent = client.request(Message::ProduceTopic(request));
                    let frames = tokio::time::timeout(REQUEST_TIMEOUT, sent)
                        .await
                        .context("a fill produce took over 60 s")??;
                    ensure!(acked_records(frames)? == n as u64, "short fill ack");
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

/// Consume throughput over a topic [`fill`]ed with `records`: `consumers` = 1 reads every
/// partition one after the other on one connection; otherwise one consumer per partition,
/// each on its own connection. Fetches from the earliest, then after the last `_seq` read.
pub fn consume(
    strand: &Strand,
    runtime: &Runtime,
    topic: &str,
    records: usize,
    consumers: usize,
) -> anyhow::Result<ConsumeRun> {
    let per_partition = (records / PARTITIONS as usize) as u64;
    runtime.block_on(async {
        let mut tasks: Vec<Task<u64>> = Vec::new();
        if consumers == 1 {
            let client = strand.connect().await?;
            let topic = topic.to_string();
            tasks.push(Box::pin(async move {
                let mut read = 0;
                for partition in 0..PARTITIONS {
                    read += read_partition(&client, &topic, partition, per_partition).await?;
                }
                Ok(read)
            }));
        } else {
            for partition in 0..PARTITIONS {
                let client = strand.connect().await?;
                let topic = topic.to_string();
                tasks.push(Box::pin(async move {
                    read_partition(&client, &topic, partition, per_partition).await
                }));
            }
        }
        common::drive_consumers(tasks, strand.pid()).await
    })
}

async fn read_partition(
    client: &Client,
    topic: &str,
    partition: u32,
    expected: u64,
) -> anyhow::Result<u64> {
    let mut from = ReadFrom::Earliest;
    let mut read = 0u64;
    while read < expected {
        let fetch = Fetch {
            topic: topic.to_string(),
            partition: PartitionIndex(partition),
            from,
            records_max: FETCH_RECORDS_MAX,
            bytes_max: FETCH_BYTES_MAX,
            wait_ms: 0,
        };
        let records = records_of(client.request(Message::Fetch(fetch)).await?)?;
        let Some(last) = records.records.last() else {
            bail!("partition {partition}: no records after {read} of {expected}");
        };
        from = ReadFrom::After(last.seq);
        read += records.records.len() as u64;
    }
    ensure!(
        read == expected,
        "partition {partition}: read {read} of {expected}"
    );
    Ok(read)
}

/// Produce-to-consume latency: one producer sends one record per produce at `rate_per_s`
/// (each produce on its own stream, so a slow ack does not delay the next send); one
/// consumer on another connection long-polls (`wait_ms` 1000) after the last `_seq` it read.
/// Latency: the consumer's receipt of a record minus its send time (same clock).
pub fn latency(
    strand: &Strand,
    runtime: &Runtime,
    topic: &str,
    rate_per_s: u32,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<LatencyRun> {
    strand.create_topic(topic, 1)?;
    let total = (f64::from(rate_per_s) * (warm_up + measure).as_secs_f64()) as usize;
    let limit = warm_up + measure + Duration::from_secs(60);
    let run = async {
        let producer = Arc::new(strand.connect().await?);
        let consumer = strand.connect().await?;
        let base = Instant::now();
        let cpu = common::CpuWindow::start(strand.pid());
        let topic_name = topic.to_string();
        let deadline = warm_up + measure + Duration::from_secs(30);
        let reader = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(total);
            let mut from = ReadFrom::Earliest;
            while samples.len() < total {
                ensure!(
                    base.elapsed() < deadline,
                    "received {} of {total}",
                    samples.len()
                );
                let fetch = Fetch {
                    topic: topic_name.clone(),
                    partition: PartitionIndex(0),
                    from,
                    records_max: 1000,
                    bytes_max: 1 << 20,
                    wait_ms: 1000,
                };
                let records = records_of(consumer.request(Message::Fetch(fetch)).await?)?;
                let now = base.elapsed().as_nanos() as u64;
                for record in &records.records {
                    let sent = common::stamp_of(&record.value).context("short value")?;
                    samples.push((sent, now.saturating_sub(sent)));
                    from = ReadFrom::After(record.seq);
                }
            }
            anyhow::Ok(samples)
        });
        let mut pacer = Pacer::new(rate_per_s);
        let mut acks = tokio::task::JoinSet::new();
        for i in 0..total {
            pacer.wait_for(i).await;
            let sent = base.elapsed().as_nanos() as u64;
            let request = ProduceTopic {
                topic: topic.to_string(),
                partitioning: Partitioning::Explicit(PartitionIndex(0)),
                idempotence: None,
                records: vec![ProduceRecord {
                    key: bytes::Bytes::new(),
                    value: common::stamped_value(LATENCY_VALUE_BYTES, sent).into(),
                }],
            };
            let producer = producer.clone();
            acks.spawn(async move {
                let frames = producer.request(Message::ProduceTopic(request)).await?;
                acked_records(frames)
            });
        }
        while let Some(acked) = acks.join_next().await {
            ensure!(acked?? == 1, "a single-record produce acked another count");
        }
        let samples = reader.await??;
        let cpu = cpu.usage();
        let warm_up_ns = warm_up.as_nanos() as u64;
        Ok(LatencyRun {
            stats: common::latency_stats(&samples, warm_up_ns)?,
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
