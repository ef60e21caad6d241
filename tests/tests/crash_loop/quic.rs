//! The QUIC side of the crash loop: producers that write uniquely named messages to the topic
//! `app.events` until the server dies, the check of the topic after a restart (every
//! acknowledged message exactly once, at its acknowledged `_seq`), and a consumer group member
//! that commits as it goes and must resume, after each restart, right after the group's
//! committed offset: never before an acknowledged commit, never past a message it was not given.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::{single_answer, ConsumerConfig, GroupConsumer};
use strand_wire::quic::{
    Fetch, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
};

pub const TOPIC: &str = "app.events";
pub const PARTITIONS: u32 = 2;
pub const DDL: &str = "CREATE TOPIC app.events WITH (PARTITIONS = 2)";
/// Producer tasks per cycle.
pub const PRODUCERS: u64 = 2;
const GROUP: &str = "crash-loop";
/// Short, so a member the server may remember from before a crash expires soon.
const SESSION_TIMEOUT_MS: u32 = 2_000;
/// How long the final drain may take to read every acknowledged message.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A partition's messages: value by `_seq`.
pub type Partition = BTreeMap<u64, String>;
/// The topic's messages by partition, as fetched after a restart.
pub type Contents = BTreeMap<u32, Partition>;

/// What the producers sent and what the server acknowledged: `(partition, _seq)` by value.
#[derive(Default)]
pub struct ProduceLedger {
    pub sent: BTreeSet<String>,
    pub acknowledged: BTreeMap<String, (u32, u64)>,
    pub unexpected: Vec<String>,
}

impl ProduceLedger {
    pub fn absorb(&mut self, other: ProduceLedger) {
        self.sent.extend(other.sent);
        self.acknowledged.extend(other.acknowledged);
        self.unexpected.extend(other.unexpected);
    }

    /// Every acknowledged message is in the topic exactly once, at its acknowledged place;
    /// every message there was sent.
    pub fn verify(&self, contents: &Contents, context: &str) {
        let mut found: BTreeMap<&str, (u32, u64)> = BTreeMap::new();
        for (&partition, messages) in contents {
            for (&seq, value) in messages {
                assert!(
                    self.sent.contains(value),
                    "{context}: message {value:?} at ({partition}, {seq}) was never sent"
                );
                let again = found.insert(value, (partition, seq));
                assert!(
                    again.is_none(),
                    "{context}: message {value:?} twice: at {again:?} and ({partition}, {seq})"
                );
            }
        }
        let lost: Vec<_> = self
            .acknowledged
            .iter()
            .filter(|(value, place)| found.get(value.as_str()) != Some(place))
            .map(|(value, place)| (value, place, found.get(value.as_str())))
            .collect();
        assert!(
            lost.is_empty(),
            "{context}: acknowledged messages lost or moved (value, acknowledged at, found at): \
             {lost:?}"
        );
    }
}

/// Produces batches of one or two messages, alternating partitions, until `stop` is set or the
/// server stops answering.
pub async fn produce_until_stopped(
    client: Arc<Client>,
    producer: u64,
    cycle: u64,
    stop: Arc<AtomicBool>,
) -> ProduceLedger {
    let mut ledger = ProduceLedger::default();
    for batch in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let partition = ((batch + producer) % u64::from(PARTITIONS)) as u32;
        // At most two records a batch: see the ack's check below.
        let count = if batch % 3 == 2 { 2 } else { 1 };
        let values: Vec<String> = (0..count)
            .map(|i| format!("c{cycle}-p{producer}-b{batch}-{i}"))
            .collect();
        let request = ProduceTopic {
            topic: TOPIC.into(),
            partitioning: Partitioning::Explicit(PartitionIndex(partition)),
            idempotence: None,
            records: values
                .iter()
                .map(|value| ProduceRecord {
                    key: Default::default(),
                    value: value.clone().into_bytes().into(),
                })
                .collect(),
        };
        ledger.sent.extend(values.iter().cloned());
        match single_answer(&client, Message::ProduceTopic(request)).await {
            Ok(Message::ProduceAck(ack)) => {
                // `_seq`s rise from `first` to `last` but need not be consecutive (a
                // millisecond's 4,096 ids can run out mid-batch); with at most two records a
                // batch, each record's place is still known: the first and the last.
                let span = ack.last.0.checked_sub(ack.first.0).map(|d| d + 1);
                if ack.partition.0 != partition
                    || ack.count != count
                    || span.is_none_or(|span| span < u64::from(count))
                    || (count == 1) != (ack.first == ack.last)
                {
                    ledger.unexpected.push(format!("{values:?}: {ack:?}"));
                    continue;
                }
                let places = [ack.first.0, ack.last.0];
                for (value, seq) in values.into_iter().zip(places) {
                    ledger.acknowledged.insert(value, (partition, seq));
                }
            }
            Ok(other) => ledger.unexpected.push(format!("{values:?}: {other:?}")),
            // The server is gone (or refused because it is going): not acknowledged.
            Err(_) => break,
        }
    }
    ledger
}

/// Every message of the topic, read with plain fetches from the earliest.
pub async fn topic_contents(client: &Client) -> Contents {
    let mut contents = Contents::new();
    for partition in 0..PARTITIONS {
        let messages = contents.entry(partition).or_default();
        let mut from = ReadFrom::Earliest;
        loop {
            let fetch = Fetch {
                topic: TOPIC.into(),
                partition: PartitionIndex(partition),
                from,
                records_max: 1_000,
                bytes_max: 1 << 20,
                wait_ms: 0,
            };
            let records = match single_answer(client, Message::Fetch(fetch)).await {
                Ok(Message::FetchResponse(records)) => records,
                other => panic!("fetch of partition {partition}: {other:?}"),
            };
            let Some(last) = records.records.last().map(|r| r.seq) else {
                break;
            };
            for record in records.records {
                let value = String::from_utf8_lossy(&record.value).into_owned();
                let again = messages.insert(record.seq.0, value);
                assert!(
                    again.is_none(),
                    "partition {partition}: _seq {} twice",
                    record.seq.0
                );
            }
            from = ReadFrom::After(last);
        }
    }
    contents
}

/// What one member read in one cycle.
#[derive(Default)]
pub struct Consumption {
    /// `(partition, _seq, value)` in the order delivered.
    pub deliveries: Vec<(u32, u64, String)>,
    /// The last `_seq` of each partition whose commit the server acknowledged.
    pub committed: BTreeMap<u32, u64>,
    pub commits: u64,
}

/// Joins the group and reads, committing after each poll, until `stop` is set or the server
/// dies.
pub async fn consume_until_stopped(client: Arc<Client>, stop: Arc<AtomicBool>) -> Consumption {
    let mut consumption = Consumption::default();
    let Ok(mut consumer) = GroupConsumer::join(client, config()).await else {
        return consumption;
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(found) = consumer.poll(Duration::from_millis(100)).await else {
            break;
        };
        let mut last = BTreeMap::new();
        for records in found {
            for record in records.records {
                let value = String::from_utf8_lossy(&record.value).into_owned();
                consumption
                    .deliveries
                    .push((records.partition.0, record.seq.0, value));
                last.insert(records.partition.0, record.seq.0);
            }
        }
        match consumer.commit().await {
            Ok(true) => {
                consumption.committed.extend(last);
                consumption.commits += 1;
            }
            Ok(false) => {}
            Err(_) => break,
        }
    }
    consumption
}

fn config() -> ConsumerConfig {
    let mut config = ConsumerConfig::new(GROUP, TOPIC);
    config.session_timeout_ms = SESSION_TIMEOUT_MS;
    config.start = ReadFrom::Earliest;
    config
}

/// The group's consumption over all cycles.
#[derive(Default)]
pub struct GroupLedger {
    /// Every message ever delivered: value by `(partition, _seq)`.
    pub delivered: BTreeMap<(u32, u64), String>,
    /// The last `_seq` per partition whose commit was acknowledged: the group's committed
    /// offset is at least this.
    pub committed: BTreeMap<u32, u64>,
    /// The last `_seq` delivered per partition: the committed offset is at most this.
    pub last_delivered: BTreeMap<u32, u64>,
    pub commits: u64,
    /// Partitions whose resume point was checked, over all cycles.
    pub resumes_checked: u64,
}

impl GroupLedger {
    /// Whatever a member was given is in the topic after the restart, unchanged: a consumer
    /// never sees a message that a crash then takes back.
    pub fn verify_durable(&self, contents: &Contents, context: &str) {
        for (&(partition, seq), value) in &self.delivered {
            let stored = contents.get(&partition).and_then(|p| p.get(&seq));
            assert_eq!(
                stored,
                Some(value),
                "{context}: delivered message ({partition}, {seq}) {value:?} is not in the topic"
            );
        }
    }

    /// Adds a cycle's consumption, checking where it started in each partition against
    /// `before` (the topic when the cycle started): after the acknowledged commit, and with
    /// no message skipped after the last one delivered; within the cycle, `_seq`s increase.
    pub fn absorb(&mut self, consumption: Consumption, before: &Contents, context: &str) {
        let mut first: BTreeMap<u32, u64> = BTreeMap::new();
        for (partition, seq, value) in consumption.deliveries {
            if let Some(&previous) = self.last_delivered.get(&partition) {
                if first.contains_key(&partition) {
                    assert!(
                        seq > previous,
                        "{context}: partition {partition}: _seq {seq} delivered after {previous}"
                    );
                }
            }
            first.entry(partition).or_insert(seq);
            self.last_delivered.insert(partition, seq);
            self.delivered.insert((partition, seq), value);
        }
        for (&partition, &start) in &first {
            self.resumes_checked += 1;
            if let Some(&committed) = self.committed.get(&partition) {
                assert!(
                    start > committed,
                    "{context}: partition {partition} resumed at {start}, at or before its \
                     acknowledged commit {committed}"
                );
            }
            // Every message before the resume point was delivered earlier.
            let skipped: Vec<u64> = before
                .get(&partition)
                .into_iter()
                .flat_map(|messages| messages.range(..start).map(|(&seq, _)| seq))
                .filter(|seq| !self.delivered.contains_key(&(partition, *seq)))
                .collect();
            assert!(
                skipped.is_empty(),
                "{context}: partition {partition} resumed at {start}, skipping {skipped:?}"
            );
        }
        self.committed.extend(consumption.committed);
        self.commits += consumption.commits;
    }

    /// A member reads until every acknowledged message has been delivered at least once
    /// (over all cycles) and commits; the group's offsets then hold.
    pub async fn drain(
        &mut self,
        client: Arc<Client>,
        produced: &ProduceLedger,
        before: &Contents,
        context: &str,
    ) {
        let mut consumer = GroupConsumer::join(client, config())
            .await
            .unwrap_or_else(|e| panic!("{context}: join for the drain: {e}"));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let missing = |delivered: &BTreeMap<(u32, u64), String>| -> usize {
            produced
                .acknowledged
                .values()
                .filter(|&&(p, seq)| !delivered.contains_key(&(p, seq)))
                .count()
        };
        let mut drained = Consumption::default();
        let mut seen = self.delivered.clone();
        while missing(&seen) > 0 {
            assert!(
                Instant::now() < deadline,
                "{context}: {} acknowledged messages never delivered",
                missing(&seen)
            );
            let found = consumer
                .poll(Duration::from_millis(200))
                .await
                .unwrap_or_else(|e| panic!("{context}: poll in the drain: {e}"));
            for records in found {
                for record in records.records {
                    let value = String::from_utf8_lossy(&record.value).into_owned();
                    seen.insert((records.partition.0, record.seq.0), value.clone());
                    drained
                        .deliveries
                        .push((records.partition.0, record.seq.0, value));
                }
            }
        }
        assert!(
            consumer
                .commit()
                .await
                .unwrap_or_else(|e| panic!("{context}: commit: {e}")),
            "{context}: the drain's commit was refused"
        );
        let _ = consumer.leave().await;
        // The drain is a cycle like the others: its start is checked too.
        self.absorb(drained, before, context);
    }
}
