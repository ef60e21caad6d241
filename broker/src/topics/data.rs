//! [`TopicData`]: the messages of topics, over log partitions named
//! `tp/<ns>.<topic>.<incarnation>/<partition>`: produce (with idempotent producers), fetch
//! from a `_seq`, the earliest or the latest, and waiting for new messages (tailing without
//! busy polling).
//!
//! A produced batch goes to one partition: the one asked for, else the one its first key
//! hashes to (FNV-1a, stable across restarts and builds), else round-robin for keyless
//! batches. Clients that want per-key partitioning split batches by partition.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, SeqRange, Store};
use thiserror::Error;
use tokio::sync::watch;

use super::envelope::{self, BatchMarker};
use crate::catalog::CatalogTopic;

#[derive(Debug, Error)]
pub enum TopicError {
    #[error("topic {topic} has no partition {partition} (it has {partitions})")]
    NoSuchPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("producer {producer_id} sent batch {batch_seq} after batch {last}: out of order")]
    OutOfOrder {
        producer_id: u64,
        batch_seq: u64,
        last: u64,
    },
    #[error("an empty batch")]
    EmptyBatch,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("a stored message is unreadable: {0}")]
    Corrupt(#[from] envelope::EnvelopeError),
    #[error("the message at _seq {seq} does not fit one response frame")]
    TooLargeForFrame { seq: Seq },
    /// A cluster member could not get the write acknowledged by its group.
    #[error(transparent)]
    Replication(#[from] crate::cluster::writer::ReplicationError),
}

/// Where a batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionChoice {
    Explicit(u32),
    ByKey,
}

/// An idempotent producer's identity for one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: u64,
    pub batch_seq: u64,
}

/// The durable range a batch was written at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceAck {
    pub partition: u32,
    pub first: Seq,
    pub last: Seq,
    pub count: u32,
    /// The batch had been written before (a retry): this is its original range.
    pub duplicate: bool,
}

/// Where a fetch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchFrom {
    Earliest,
    /// Only messages produced from now on.
    Latest,
    After(Seq),
}

/// An idempotent producer's last batch in a partition.
#[derive(Clone, Copy, Debug)]
struct LastBatch {
    batch_seq: u64,
    ack: ProduceAck,
    /// Queued in the log but not yet durable.
    pending: bool,
}

/// One open topic partition: its log, its producers' last batches, and a watch of its last
/// committed `_seq` for tailing readers.
struct TopicPartition {
    id: PartitionId,
    log: Arc<Partition>,
    /// Last batch per producer id; checked and updated together with queueing the append.
    /// Filled from the log by the first idempotent produce after the partition opens
    /// ([`TopicPartition::lock_producers`]), not at open: a scan of the whole partition, which
    /// fetches and plain produces do not need (after a restart the first fetch of a large
    /// topic waited seconds for it).
    producers: Mutex<HashMap<u64, LastBatch>>,
    /// Whether `producers` holds the log's markers (set under the `producers` lock).
    producers_loaded: AtomicBool,
    /// Signalled when a pending batch became durable or failed.
    settled: Condvar,
    committed: watch::Sender<Seq>,
    /// On a cluster member: the partition's last `_seq` when `producers` was last brought up
    /// to date (`data/replicated.rs`).
    producers_as_of: AtomicU64,
}

impl TopicPartition {
    /// The producers' last batches, read from the log's markers first if this is the first
    /// idempotent use since the partition opened. No idempotent batch can have been queued
    /// before (each goes through this lock), so the log holds every marker there is.
    fn lock_producers(&self) -> Result<MutexGuard<'_, HashMap<u64, LastBatch>>, TopicError> {
        let mut producers = self.producers.lock();
        if !self.producers_loaded.load(Ordering::Acquire) {
            *producers = producers_of(&self.log)?;
            self.producers_loaded.store(true, Ordering::Release);
        }
        Ok(producers)
    }

    /// Tell tailing readers that everything up to `last` is committed (concurrent produces
    /// finish in any order; the watch only moves forward).
    fn advance(&self, last: Seq) {
        self.committed.send_if_modified(|committed| {
            let newer = last > *committed;
            if newer {
                *committed = last;
            }
            newer
        });
    }
}

pub struct TopicData {
    store: Arc<Store>,
    open: Mutex<HashMap<PartitionId, Arc<TopicPartition>>>,
    round_robin: AtomicU64,
    /// Set on a cluster member: writes go through its Raft group.
    replication: OnceLock<replicated::Replication>,
}

impl TopicData {
    pub fn new(store: Arc<Store>) -> TopicData {
        TopicData {
            store,
            open: Mutex::new(HashMap::new()),
            round_robin: AtomicU64::new(0),
            replication: OnceLock::new(),
        }
    }

    /// Write `messages` (key, value) as one durable batch; returns its `_seq` range.
    ///
    /// The batch is queued in the partition's log (its `_seq`s and its place fixed) and then
    /// waited for, so concurrent produces to a partition share one commit round (one fsync
    /// under `always`) instead of queueing behind each other's. An idempotent producer's
    /// check and queueing happen under the partition's producers lock, so batches of one
    /// producer keep their order and a retry cannot slip in between; the lock is not held
    /// while waiting for durability. A retry that arrives while its original is still on its
    /// way to the disk waits for it, and is answered only once the original is durable.
    pub fn produce(
        &self,
        topic: &CatalogTopic,
        choice: PartitionChoice,
        messages: &[(&[u8], &[u8])],
        producer: Option<ProducerBatch>,
    ) -> Result<ProduceAck, TopicError> {
        let Some((first_key, _)) = messages.first() else {
            return Err(TopicError::EmptyBatch);
        };
        let index = match choice {
            PartitionChoice::Explicit(index) => index,
            PartitionChoice::ByKey => self.partition_for_key(topic, first_key),
        };
        let partition = self.partition(topic, index)?;
        let count = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let marker = producer.map(|batch| BatchMarker {
            producer_id: batch.producer_id,
            batch_seq: batch.batch_seq,
            count,
        });
        // Every envelope in one buffer: one allocation per batch, not one per message.
        let envelopes_bytes: usize = messages
            .iter()
            .map(|(_, value)| value.len() + envelope::ENVELOPE_BYTES_MAX)
            .sum();
        let mut envelopes = Vec::with_capacity(envelopes_bytes);
        let mut ends = Vec::with_capacity(messages.len());
        for (n, (_, value)) in messages.iter().enumerate() {
            envelope::encode(&mut envelopes, marker.filter(|_| n == 0), value);
            ends.push(envelopes.len());
        }
        let mut start = 0;
        let records: Vec<NewRecord<'_>> = messages
            .iter()
            .zip(&ends)
            .map(|((key, _), &end)| {
                let record = NewRecord::new(key, &envelopes[start..end]);
                start = end;
                record
            })
            .collect();
        let ack_of = |range: SeqRange| ProduceAck {
            partition: index,
            first: range.first,
            last: range.last,
            count,
            duplicate: false,
        };
        if let Some(replication) = self.replication.get() {
            return self.produce_replicated(replication, &partition, &records, producer, ack_of);
        }
        let Some(batch) = producer else {
            let range = partition.log.submit(&records)?.wait()?;
            partition.advance(range.last);
            return Ok(ack_of(range));
        };
        let mut producers = partition.lock_producers()?;
        loop {
            match producers.get(&batch.producer_id) {
                Some(last) if batch.batch_seq == last.batch_seq && last.pending => {
                    // A retry of a batch not yet durable: answer once it is (or resend it).
                    partition.settled.wait(&mut producers);
                }
                last => match answered_before(last, batch) {
                    Some(answer) => return answer,
                    None => break,
                },
            }
        }
        let ticket = partition.log.submit(&records)?;
        let ack = ack_of(ticket.range());
        let state = LastBatch {
            batch_seq: batch.batch_seq,
            ack,
            pending: true,
        };
        let before = producers.insert(batch.producer_id, state);
        drop(producers);
        let written = ticket.wait();
        let mut producers = partition.producers.lock();
        let ours = producers
            .get(&batch.producer_id)
            .is_some_and(|last| last.batch_seq == batch.batch_seq);
        if ours {
            match (&written, before) {
                (Ok(_), _) => {
                    if let Some(last) = producers.get_mut(&batch.producer_id) {
                        last.pending = false;
                    }
                }
                // Not written (the partition is poisoned): the producer's previous batch is its
                // last again, unless that one was still pending too (it failed as well).
                (Err(_), Some(before)) if !before.pending => {
                    producers.insert(batch.producer_id, before);
                }
                (Err(_), _) => {
                    producers.remove(&batch.producer_id);
                }
            }
        }
        drop(producers);
        partition.settled.notify_all();
        let range = written?;
        partition.advance(range.last);
        Ok(ack)
    }

    /// The partition a batch whose first key is `key` goes to under
    /// [`PartitionChoice::ByKey`]: by FNV-1a of the key, round-robin for an empty key.
    pub fn partition_for_key(&self, topic: &CatalogTopic, key: &[u8]) -> u32 {
        let partitions = u64::from(topic.def.partitions.max(1));
        if key.is_empty() {
            let next = self.round_robin.fetch_add(1, Ordering::Relaxed);
            return (next % partitions) as u32;
        }
        (fnv1a(key) % partitions) as u32
    }

    /// The highest batch sequence idempotent producer `producer_id` has written to any
    /// partition of `topic` (opening each partition, which scans it once), if any.
    pub fn producer_last_batch(
        &self,
        topic: &CatalogTopic,
        producer_id: u64,
    ) -> Result<Option<u64>, TopicError> {
        let mut highest = None;
        for index in 0..topic.def.partitions {
            let partition = self.partition(topic, index)?;
            let producers = partition.lock_producers()?;
            if let Some(last) = producers.get(&producer_id) {
                highest = highest.max(Some(last.batch_seq));
            }
        }
        Ok(highest)
    }

    fn partition(
        &self,
        topic: &CatalogTopic,
        index: u32,
    ) -> Result<Arc<TopicPartition>, TopicError> {
        if index >= topic.def.partitions {
            return Err(TopicError::NoSuchPartition {
                topic: topic.def.name.to_string(),
                partition: index,
                partitions: topic.def.partitions,
            });
        }
        let id = PartitionId::new(format!("{}{index}", super::partition_prefix(topic)))?;
        let mut open = self.open.lock();
        if let Some(partition) = open.get(&id) {
            return Ok(partition.clone());
        }
        let log = self.store.partition(&id)?;
        let (committed, _) = watch::channel(log.last_seq());
        let partition = Arc::new(TopicPartition {
            id: id.clone(),
            log,
            producers: Mutex::new(HashMap::new()),
            producers_loaded: AtomicBool::new(false),
            settled: Condvar::new(),
            committed,
            producers_as_of: AtomicU64::new(0),
        });
        open.insert(id, partition.clone());
        Ok(partition)
    }
}

/// The answer to `batch` if its producer's `last` batch settles it without a write: a retry
/// of the last batch gets its original ack, an older batch `OutOfOrder`; `None` for a new
/// batch.
fn answered_before(
    last: Option<&LastBatch>,
    batch: ProducerBatch,
) -> Option<Result<ProduceAck, TopicError>> {
    let last = last?;
    if batch.batch_seq == last.batch_seq {
        return Some(Ok(ProduceAck {
            duplicate: true,
            ..last.ack
        }));
    }
    (batch.batch_seq < last.batch_seq).then_some(Err(TopicError::OutOfOrder {
        producer_id: batch.producer_id,
        batch_seq: batch.batch_seq,
        last: last.batch_seq,
    }))
}

/// Every producer's last batch in a partition, from the markers in the log (a full scan, at
/// the first idempotent use; the state of idempotent producers survives restarts this way).
fn producers_of(log: &Partition) -> Result<HashMap<u64, LastBatch>, TopicError> {
    let mut producers = HashMap::new();
    let snapshot = log.snapshot();
    let mut records = snapshot.records(ReadFrom::Earliest);
    while let Some(record) = records.next() {
        let record = record?;
        let (Some(marker), _) = envelope::decode(record.payload)? else {
            continue;
        };
        let mut last = record.seq;
        for _ in 1..marker.count {
            match records.next() {
                Some(next) => last = next?.seq,
                None => break,
            }
        }
        let ack = ProduceAck {
            partition: 0,
            first: record.seq,
            last,
            count: marker.count,
            duplicate: false,
        };
        let last = LastBatch {
            batch_seq: marker.batch_seq,
            ack,
            pending: false,
        };
        producers.insert(marker.producer_id, last);
    }
    let index = log
        .dir()
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for last in producers.values_mut() {
        last.ack.partition = index;
    }
    Ok(producers)
}

/// FNV-1a, 64 bits: a key's partition must not change across restarts or builds.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

mod read;
mod replicated;
pub(crate) use replicated::replication_code;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub use read::TopicMessage;
