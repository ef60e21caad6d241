//! Strand's side of the topics workloads: topics created over HTTP SQL in a namespace of
//! this run's own (`bench_topics_<pid>_<n>`, so runs against a shared server do not collide),
//! and QUIC clients (`strand_wire::quic::client`, one connection per producer or consumer,
//! authenticated with the token of one login).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use indicatif::ProgressBar;
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Frame, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
    Records,
};
use tokio::runtime::Runtime;

use crate::latency::LatencyHistogram;
use crate::target::Target;
use crate::topics::driver::{self, E2eRun, Gauge, Receipts, Run, Task};
use crate::topics::{
    self, ConsumeCase, E2eCase, E2eConsumer, ProduceCase, E2E_VALUE_BYTES, FETCH_BYTES_MAX,
    FETCH_RECORDS_MAX, FILL_BATCH,
};

/// How long one request of a fill may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the produce-to-consume consumer's fetch waits for a first record.
const LONG_POLL_MS: u32 = 1000;
/// Namespaces made by this process so far (each target gets its own).
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A server, logged in, with a namespace of this run's own.
pub struct StrandTopics {
    pub target: Target,
    token: String,
    namespace: String,
}

impl Drop for StrandTopics {
    /// Removes a spawned server's data directory (the kernel frees its files, dirty pages
    /// included, when the server exits right after): later cases do not pay for this one's
    /// writeback.
    fn drop(&mut self) {
        if let Some(process) = &self.target.process {
            let _ = std::fs::remove_dir_all(&process.data_dir);
        }
    }
}

impl StrandTopics {
    /// Logs in and creates the namespace.
    pub fn open(target: Target) -> anyhow::Result<StrandTopics> {
        let token = target.login()?;
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("bench_topics_{}_{n}", std::process::id());
        target.sql(&token, &format!("CREATE NAMESPACE {namespace}"))?;
        Ok(StrandTopics {
            target,
            token,
            namespace,
        })
    }

    /// The server's `/metrics` now (`None` when it does not answer).
    pub fn scrape(&self) -> Option<crate::server_metrics::Scrape> {
        crate::server_metrics::Scrape::take(&self.target, &self.token)
    }

    pub fn server_pid(&self) -> Option<u32> {
        self.target.server_pid()
    }

    /// `<namespace>.<name>` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) -> anyhow::Result<String> {
        let topic = format!("{}.{name}", self.namespace);
        self.target.sql(
            &self.token,
            &format!("CREATE TOPIC {topic} WITH (PARTITIONS = {partitions})"),
        )?;
        Ok(topic)
    }

    /// The spawned server's stderr, for a failure's context.
    pub fn stderr(&self) -> String {
        self.target
            .process
            .as_ref()
            .map_or_else(String::new, |p| p.stderr())
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        self.target.quic_client(&self.token).await
    }

    /// Produce throughput (see [`ProduceCase`]) into a new topic.
    pub fn produce(&self, runtime: &Runtime, case: &ProduceCase) -> anyhow::Result<Run> {
        let topic = self.create_topic(
            &format!("p{}_{}", case.producers, case.value_bytes),
            case.partitions,
        )?;
        runtime.block_on(async {
            let gauge = Arc::new(Gauge::default());
            let mut tasks: Vec<Task<LatencyHistogram>> = Vec::new();
            // Connected all at once: a handshake waits on the network and the server.
            let connects = (0..case.producers).map(|_| self.connect());
            let clients = futures_util::future::try_join_all(connects).await?;
            for (i, client) in clients.into_iter().enumerate() {
                let partition = i as u32 % case.partitions;
                let request = batch_request(&topic, partition, case.value_bytes, i, case.batch);
                let task = produce_loop(client, request, case.value_bytes, gauge.clone());
                tasks.push(Box::pin(task));
            }
            let pid = self.server_pid();
            driver::drive_producers(tasks, gauge, case.warm_up, case.window(), pid).await
        })
    }

    /// Writes the records of `case` into a new topic (one producer per partition, batches of
    /// [`FILL_BATCH`]); returns the topic and how long it took.
    pub fn fill(
        &self,
        runtime: &Runtime,
        case: &ConsumeCase,
        bar: &ProgressBar,
    ) -> anyhow::Result<(String, Duration)> {
        let topic = self.create_topic(&format!("c{}", case.value_bytes), case.partitions)?;
        let started = Instant::now();
        runtime.block_on(async {
            let mut handles = Vec::new();
            for partition in 0..case.partitions {
                let client = self.connect().await?;
                let full = batch_request(
                    &topic,
                    partition,
                    case.value_bytes,
                    partition as usize,
                    FILL_BATCH,
                );
                let mut left = case.records_per_partition;
                let bar = bar.clone();
                handles.push(tokio::spawn(async move {
                    while left > 0 {
                        let n = left.min(FILL_BATCH as u64);
                        let mut request = full.clone();
                        request.records.truncate(n as usize);
                        let sent = client.request(Message::ProduceTopic(request));
                        let frames = tokio::time::timeout(REQUEST_TIMEOUT, sent)
                            .await
                            .context("a fill produce took over 60 s")??;
                        ensure!(acked_records(frames)? == n, "short fill ack");
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
        Ok((topic, started.elapsed()))
    }

    /// Consume throughput over a topic [`StrandTopics::fill`]ed with `case`'s records:
    /// fetches from the earliest record, then after the last `_seq` read.
    pub fn consume(
        &self,
        runtime: &Runtime,
        topic: &str,
        case: &ConsumeCase,
    ) -> anyhow::Result<Run> {
        runtime.block_on(async {
            let gauge = Arc::new(Gauge::default());
            let mut tasks: Vec<Task<u64>> = Vec::new();
            for k in 0..case.consumers {
                let client = self.connect().await?;
                let partitions: Vec<u32> = case.partitions_of(k).collect();
                let (topic, gauge, expected) =
                    (topic.to_string(), gauge.clone(), case.records_per_partition);
                tasks.push(Box::pin(async move {
                    let mut read = 0;
                    for partition in partitions {
                        read +=
                            read_partition(&client, &topic, partition, expected, &gauge).await?;
                    }
                    Ok(read)
                }));
            }
            driver::drive_consumers(tasks, gauge, case.records(), self.server_pid()).await
        })
    }

    /// Produce-to-consume latency: one record per produce due at `case.rate` (each produce
    /// on its own stream, so a slow ack does not delay the next send), one consumer on
    /// another connection (a `tail`, or `fetch` long polls after the last `_seq` it read).
    /// Latency: receipt minus the record's due time.
    pub fn e2e(
        &self,
        runtime: &Runtime,
        case: &E2eCase,
        consumer_kind: E2eConsumer,
    ) -> anyhow::Result<E2eRun> {
        let topic = self.create_topic("e2e", 1)?;
        let total = case.total();
        runtime.block_on(async {
            let producer = Arc::new(self.connect().await?);
            let consumer = self.connect().await?;
            let mark = crate::topics::cpu::CpuMark::now(self.server_pid());
            let base = Instant::now();
            let deadline = case.receive_deadline(base);
            let mut receipts = Receipts::new(base, case.warm_up, total);
            let reader_topic = topic.clone();
            let reader = tokio::spawn(async move {
                match consumer_kind {
                    E2eConsumer::Fetch => {
                        fetch_receipts(&consumer, &reader_topic, &mut receipts, deadline).await?
                    }
                    E2eConsumer::Tail => {
                        tail_receipts(&consumer, &reader_topic, &mut receipts, deadline).await?
                    }
                }
                anyhow::Ok(receipts)
            });
            let handle = tokio::runtime::Handle::current();
            let rate = case.rate;
            let pacer = tokio::task::spawn_blocking(move || {
                let acks = Mutex::new(Vec::new());
                let lag = driver::pace_blocking(base, rate, total, |index, due_ns| {
                    let request = single_record(&topic, index, due_ns);
                    let producer = producer.clone();
                    let ack = handle.spawn(async move {
                        acked_records(producer.request(Message::ProduceTopic(request)).await?)
                    });
                    acks.lock().expect("ack list lock").push(ack);
                });
                (lag, acks.into_inner().expect("ack list lock"))
            });
            let (max_send_lag, acks) = pacer.await.context("the pacing thread panicked")?;
            for ack in acks {
                ensure!(
                    ack.await.context("a produce task panicked")?? == 1,
                    "a single-record produce acked another count"
                );
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
}

async fn produce_loop(
    client: Client,
    request: ProduceTopic,
    value_bytes: usize,
    gauge: Arc<Gauge>,
) -> anyhow::Result<LatencyHistogram> {
    let mut latency = LatencyHistogram::new();
    let expected = request.records.len() as u64;
    let mut first = true;
    while !gauge.stopped() {
        let started = Instant::now();
        let sent = client.request(Message::ProduceTopic(request.clone()));
        let Some(frames) = gauge.unless_stopped(sent).await else {
            break;
        };
        let frames = frames?;
        let records = acked_records(frames)?;
        ensure!(records == expected, "acked {records} of {expected} records");
        gauge.acked(records, records * value_bytes as u64, &mut first);
        if gauge.measuring() {
            latency.record(started.elapsed());
        }
    }
    Ok(latency)
}

async fn read_partition(
    client: &Client,
    topic: &str,
    partition: u32,
    expected: u64,
    gauge: &Gauge,
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
        let bytes: usize = records.records.iter().map(|r| r.value.len()).sum();
        read += records.records.len() as u64;
        gauge.add(records.records.len() as u64, bytes as u64);
    }
    ensure!(
        read == expected,
        "partition {partition}: read {read} of {expected}"
    );
    Ok(read)
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

/// Long-poll `fetch`es after the last `_seq` read until every record came or `deadline`.
async fn fetch_receipts(
    consumer: &Client,
    topic: &str,
    receipts: &mut Receipts,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut from = ReadFrom::Earliest;
    while !receipts.complete() && Instant::now() < deadline {
        let fetch = Fetch {
            topic: topic.to_string(),
            partition: PartitionIndex(0),
            from,
            records_max: 1000,
            bytes_max: 1 << 20,
            wait_ms: LONG_POLL_MS,
        };
        let records = records_of(consumer.request(Message::Fetch(fetch)).await?)?;
        let now = Instant::now();
        for record in &records.records {
            receipts.receive(&record.value, now)?;
            from = ReadFrom::After(record.seq);
        }
    }
    Ok(())
}

/// One `tail` from the start, read until every record came or `deadline`; dropping it ends
/// the tail.
async fn tail_receipts(
    consumer: &Client,
    topic: &str,
    receipts: &mut Receipts,
    deadline: Instant,
) -> anyhow::Result<()> {
    let tail = Fetch {
        topic: topic.to_string(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 1000,
        bytes_max: 1 << 20,
        // Push each record at once; no lingering for more.
        wait_ms: 0,
    };
    let mut pushes = consumer.send(Message::Tail(tail)).await?;
    while !receipts.complete() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, pushes.next()).await else {
            break;
        };
        let records = match next?.map(|frame| frame.message) {
            Some(Message::TailPush(records)) => records,
            Some(Message::Error(error)) => bail!("tail: {}: {}", error.code, error.message),
            Some(other) => bail!("tail pushed {}", other.name()),
            None => bail!("the tail ended"),
        };
        let now = Instant::now();
        for record in &records.records {
            receipts.receive(&record.value, now)?;
        }
    }
    Ok(())
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
        records: topics::values(value_bytes, producer, batch)
            .into_iter()
            .map(|value| ProduceRecord {
                key: bytes::Bytes::new(),
                value,
            })
            .collect(),
    }
}

/// A produce of one stamped record to partition 0.
fn single_record(topic: &str, index: u64, due_ns: u64) -> ProduceTopic {
    ProduceTopic {
        topic: topic.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: vec![ProduceRecord {
            key: bytes::Bytes::new(),
            value: topics::stamped_value(E2E_VALUE_BYTES, index, due_ns).into(),
        }],
    }
}
