//! [`TopicData`]: the messages of topics, over log partitions named
//! `tp/<ns>.<topic>.<incarnation>/<partition>`: produce (with idempotent producers), fetch
//! from a `_seq`, the earliest or the latest, and waiting for new messages (tailing without
//! busy polling).
//!
//! A produced batch goes to one partition: the one asked for, else the one its first key
//! hashes to (FNV-1a, stable across restarts and builds), else round-robin for keyless
//! batches. Clients that want per-key partitioning split batches by partition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};
use thiserror::Error;
use tokio::sync::watch;

use super::envelope::{self, BatchMarker};
use crate::tables::catalog::CatalogTopic;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMessage {
    pub seq: Seq,
    pub timestamp_unix_ms: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// One open topic partition: its log, its producers' last batches, and a watch of its last
/// committed `_seq` for tailing readers.
struct TopicPartition {
    log: Arc<Partition>,
    /// Last batch per producer id, with its ack; guarded together with the append.
    producers: Mutex<HashMap<u64, (u64, ProduceAck)>>,
    committed: watch::Sender<Seq>,
}

pub struct TopicData {
    store: Arc<Store>,
    open: Mutex<HashMap<PartitionId, Arc<TopicPartition>>>,
    round_robin: AtomicU64,
}

impl TopicData {
    pub fn new(store: Arc<Store>) -> TopicData {
        TopicData {
            store,
            open: Mutex::new(HashMap::new()),
            round_robin: AtomicU64::new(0),
        }
    }

    /// Write `messages` (key, value) as one durable batch; returns its `_seq` range.
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
        let mut producers = partition
            .producers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(batch) = producer {
            if let Some(&(last, ack)) = producers.get(&batch.producer_id) {
                if batch.batch_seq == last {
                    return Ok(ProduceAck {
                        duplicate: true,
                        ..ack
                    });
                }
                if batch.batch_seq < last {
                    return Err(TopicError::OutOfOrder {
                        producer_id: batch.producer_id,
                        batch_seq: batch.batch_seq,
                        last,
                    });
                }
            }
        }
        let count = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let mut payloads = Vec::with_capacity(messages.len());
        for (n, (_, value)) in messages.iter().enumerate() {
            let marker = producer.filter(|_| n == 0).map(|batch| BatchMarker {
                producer_id: batch.producer_id,
                batch_seq: batch.batch_seq,
                count,
            });
            let mut payload = Vec::with_capacity(value.len() + 22);
            envelope::encode(&mut payload, marker, value);
            payloads.push(payload);
        }
        let records: Vec<NewRecord<'_>> = messages
            .iter()
            .zip(&payloads)
            .map(|((key, _), payload)| NewRecord::new(key, payload))
            .collect();
        // The producers' lock is held through the append so a retry cannot slip in between
        // the check and the write; appends of other producers to this partition wait.
        let range = partition.log.append(&records)?;
        let ack = ProduceAck {
            partition: index,
            first: range.first,
            last: range.last,
            count,
            duplicate: false,
        };
        if let Some(batch) = producer {
            producers.insert(batch.producer_id, (batch.batch_seq, ack));
        }
        drop(producers);
        partition.committed.send_replace(range.last);
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
            let producers = partition
                .producers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(&(last, _)) = producers.get(&producer_id) {
                highest = highest.max(Some(last));
            }
        }
        Ok(highest)
    }

    /// Up to `max_records` messages (and about `max_bytes`) of one partition.
    pub fn fetch(
        &self,
        topic: &CatalogTopic,
        index: u32,
        from: FetchFrom,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<TopicMessage>, TopicError> {
        let partition = self.partition(topic, index)?;
        let snapshot = partition.log.snapshot();
        let from = match from {
            FetchFrom::Earliest => ReadFrom::Earliest,
            FetchFrom::Latest => ReadFrom::Latest,
            FetchFrom::After(seq) => ReadFrom::After(seq),
        };
        let mut messages = Vec::new();
        let mut bytes = 0usize;
        for record in snapshot.records(from) {
            if messages.len() >= max_records || (bytes >= max_bytes && !messages.is_empty()) {
                break;
            }
            let record = record?;
            let (_, value) = envelope::decode(record.payload)?;
            bytes += record.key.len() + value.len();
            messages.push(TopicMessage {
                seq: record.seq,
                timestamp_unix_ms: record.timestamp_unix_ms,
                key: record.key.to_vec(),
                value: value.to_vec(),
            });
        }
        Ok(messages)
    }

    /// The partition's last committed `_seq`.
    pub fn last_seq(&self, topic: &CatalogTopic, index: u32) -> Result<Seq, TopicError> {
        Ok(self.partition(topic, index)?.log.last_seq())
    }

    /// Wait until the partition has a message after `after`, at most `timeout`; true if it has.
    pub async fn wait_after(
        &self,
        topic: &CatalogTopic,
        index: u32,
        after: Seq,
        timeout: Duration,
    ) -> Result<bool, TopicError> {
        let mut committed = self.partition(topic, index)?.committed.subscribe();
        let arrived = tokio::time::timeout(timeout, committed.wait_for(|last| *last > after))
            .await
            .is_ok_and(|changed| changed.is_ok());
        Ok(arrived)
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
        let name = &topic.def.name;
        let id = PartitionId::new(format!(
            "tp/{}.{}.{}/{index}",
            name.namespace, name.topic, topic.incarnation.0
        ))?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(partition) = open.get(&id) {
            return Ok(partition.clone());
        }
        let log = self.store.partition(&id)?;
        let producers = producers_of(&log)?;
        let (committed, _) = watch::channel(log.last_seq());
        let partition = Arc::new(TopicPartition {
            log,
            producers: Mutex::new(producers),
            committed,
        });
        open.insert(id, partition.clone());
        Ok(partition)
    }
}

/// Every producer's last batch in a partition, from the markers in the log (a full scan at
/// open; the state of idempotent producers survives restarts this way).
fn producers_of(log: &Partition) -> Result<HashMap<u64, (u64, ProduceAck)>, TopicError> {
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
        producers.insert(marker.producer_id, (marker.batch_seq, ack));
    }
    let index = log
        .dir()
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for (_, ack) in producers.values_mut() {
        ack.partition = index;
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

#[cfg(test)]
mod tests;
