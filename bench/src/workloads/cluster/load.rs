//! The clients of `strand-bench cluster` beyond the produce throughput (which is the
//! `produce` workload's own loop, [`crate::topics::strand::StrandTopics::produce`]): a
//! produce-to-subscriber run whose producer and reader may be on different members, and the
//! produce sent in turn to each surviving member after a leader's death until one is
//! acknowledged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
};
use tokio::runtime::Runtime;

use crate::spawn::ADMIN_PASSWORD;
use crate::topics::driver::{self, Receipts};
use crate::topics::{stamped_value, E2eCase, E2E_VALUE_BYTES};

/// How long a QUIC connection (handshake and password check) may take outside a failover.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one try of the failover produce waits for a connection or an answer before it
/// goes to the next member: a member that was just elected answers within milliseconds, and
/// one that cannot reach a majority would hold the produce for 5 s (a follower forwards it to
/// the leader it knows, which may be the dead one). It is the failover figure's granularity:
/// with 500 ms the times fell into steps 500 ms apart.
const TRY_TIMEOUT: Duration = Duration::from_millis(100);
/// The pause after a refusal (`not_leader`, `unavailable`) before the next try: it bounds how
/// late the first acknowledged try can start after the new leader is ready.
const RETRY_PAUSE: Duration = Duration::from_millis(10);
/// A failover that takes longer than this is a failure, not a figure.
const FAILOVER_MAX: Duration = Duration::from_secs(60);

/// A server's QUIC address and the CA its certificate is checked against.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub quic: SocketAddr,
    pub ca_cert: PathBuf,
}

impl Endpoint {
    async fn connect(&self, timeout: Duration) -> anyhow::Result<Client> {
        let connect = Client::connect_password(self.quic, &self.ca_cert, "admin", ADMIN_PASSWORD);
        tokio::time::timeout(timeout, connect)
            .await
            .with_context(|| format!("no QUIC connection to {} within {timeout:?}", self.quic))?
            .with_context(|| format!("QUIC connect to {}", self.quic))
    }
}

/// Write-to-subscriber latency: one 100 B record per produce to `producer`, due at
/// `case.rate` (open loop, each produce on its own stream), while one `tail` on `reader` (a
/// follower in a cluster) receives them. Latency: receipt minus the record's due time, which
/// is stamped in its value. Returns the receipts and how many records were sent.
pub fn follower_latency(
    runtime: &Runtime,
    producer: &Endpoint,
    reader: &Endpoint,
    topic: &str,
    case: &E2eCase,
) -> anyhow::Result<(Receipts, u64)> {
    let total = case.total();
    runtime.block_on(async {
        let producer = Arc::new(producer.connect(CONNECT_TIMEOUT).await?);
        let consumer = reader.connect(CONNECT_TIMEOUT).await?;
        let base = Instant::now();
        let deadline = case.receive_deadline(base);
        let mut receipts = Receipts::new(base, case.warm_up, total);
        let tail_topic = topic.to_string();
        let reading = tokio::spawn(async move {
            tail(&consumer, &tail_topic, &mut receipts, deadline).await?;
            anyhow::Ok(receipts)
        });
        let handle = tokio::runtime::Handle::current();
        let (rate, topic) = (case.rate, topic.to_string());
        let pacer = tokio::task::spawn_blocking(move || {
            let acks = Mutex::new(Vec::new());
            driver::pace_blocking(base, rate, total, |index, due_ns| {
                let value = stamped_value(E2E_VALUE_BYTES, index, due_ns);
                let request = produce_request(&topic, 0, value);
                let producer = producer.clone();
                let ack = handle.spawn(async move { producer.request(request).await });
                acks.lock().expect("ack list lock").push(ack);
            });
            acks.into_inner().expect("ack list lock")
        });
        for ack in pacer.await.context("the pacing thread panicked")? {
            let frames = ack.await.context("a produce task panicked")??;
            if !matches!(
                frames.first().map(|f| &f.message),
                Some(Message::ProduceAck(_))
            ) {
                bail!("a produce was not acknowledged: {frames:?}");
            }
        }
        let receipts = reading.await.context("the reader task panicked")??;
        Ok((receipts, total))
    })
}

/// One `tail` of partition 0 from the start, read until every record came or `deadline`.
async fn tail(
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

fn produce_request(topic: &str, partition: u32, value: Vec<u8>) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: topic.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: None,
        records: vec![ProduceRecord {
            key: bytes::Bytes::new(),
            value: value.into(),
        }],
    })
}

/// A surviving member the failover produce is sent to, with its connection once made.
pub struct Survivor {
    endpoint: Endpoint,
    client: Option<Client>,
}

impl Survivor {
    /// Connected now when it can be (before the kill, so that the failover time is the
    /// cluster's, not a handshake's); else at its first try.
    pub fn connect(runtime: &Runtime, endpoint: Endpoint) -> Survivor {
        let client = runtime.block_on(endpoint.connect(CONNECT_TIMEOUT)).ok();
        Survivor { endpoint, client }
    }
}

/// What it took to get a produce acknowledged after a kill.
pub struct Failover {
    /// From `killed` to the first acknowledgement.
    pub elapsed: Duration,
    /// Produces sent (refused, timed out and the acknowledged one).
    pub tries: u64,
}

/// Sends a one-record produce to each of `survivors` in turn (a refusal or no answer within
/// [`TRY_TIMEOUT`]: the next one) until one acknowledges it.
pub fn first_ack(
    runtime: &Runtime,
    survivors: &mut [Survivor],
    topic: &str,
    killed: Instant,
) -> anyhow::Result<Failover> {
    runtime.block_on(async {
        let mut tries = 0u64;
        let mut turn = 0;
        loop {
            if killed.elapsed() > FAILOVER_MAX {
                bail!("no produce acknowledged within {FAILOVER_MAX:?} of the kill");
            }
            let survivor = &mut survivors[turn % survivors.len()];
            turn += 1;
            if survivor.client.is_none() {
                survivor.client = survivor.endpoint.connect(TRY_TIMEOUT).await.ok();
            }
            let Some(client) = &survivor.client else {
                continue;
            };
            tries += 1;
            let request = produce_request(topic, 0, b"failover".to_vec());
            match tokio::time::timeout(TRY_TIMEOUT, client.request(request)).await {
                Ok(Ok(frames)) => match frames.first().map(|f| &f.message) {
                    Some(Message::ProduceAck(_)) => {
                        return Ok(Failover {
                            elapsed: killed.elapsed(),
                            tries,
                        })
                    }
                    Some(Message::Error(e))
                        if e.code == "not_leader" || e.code == "unavailable" =>
                    {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    other => bail!("unexpected answer to a produce: {other:?}"),
                },
                // The connection broke: a new one at this member's next turn.
                Ok(Err(_)) => survivor.client = None,
                // No answer in time: the next member.
                Err(_) => {}
            }
        }
    })
}
