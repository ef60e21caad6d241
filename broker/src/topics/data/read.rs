//! Reading a topic partition: messages from a `_seq`, the earliest or the latest, borrowed
//! from the log's memory maps for the length of a call ([`TopicData::read_with`]) or, in
//! tests, copied out (`TopicData::fetch`); the partition's last `_seq`; waiting for the next
//! message; and a snapshot of an open partition for `/metrics` (group lag).

use std::time::Duration;

use strand_log::{PartitionId, ReadFrom, ReadSnapshot, Seq};

use super::{envelope, FetchFrom, TopicData, TopicError};
use crate::catalog::CatalogTopic;

/// A message as stored, borrowed from the log: the read path encodes it into a response
/// without copying it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredMessage<'a> {
    pub seq: Seq,
    pub timestamp_unix_ms: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// A message copied out of the log (tests read with it; the server encodes from
/// [`StoredMessage`]s).
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMessage {
    pub seq: Seq,
    pub timestamp_unix_ms: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl TopicData {
    /// Calls `with` on up to `max_records` messages of one partition (and about `max_bytes` of
    /// keys and values, at least one message), borrowed from the log, and returns its answer.
    pub fn read_with<R>(
        &self,
        topic: &CatalogTopic,
        index: u32,
        from: FetchFrom,
        max_records: usize,
        max_bytes: usize,
        with: impl FnOnce(&[StoredMessage<'_>]) -> R,
    ) -> Result<R, TopicError> {
        let partition = self.partition(topic, index)?;
        let snapshot = partition.log.snapshot();
        let from = match from {
            FetchFrom::Earliest => ReadFrom::Earliest,
            FetchFrom::Latest => ReadFrom::Latest,
            FetchFrom::After(seq) => ReadFrom::After(seq),
        };
        // References only (48 bytes a message): the bytes stay in the map.
        let mut messages = Vec::with_capacity(max_records.min(READ_BATCH_GUESS));
        let mut bytes = 0usize;
        for record in snapshot.records(from) {
            if messages.len() >= max_records || (bytes >= max_bytes && !messages.is_empty()) {
                break;
            }
            let record = record?;
            let (_, value) = envelope::decode(record.payload)?;
            bytes += record.key.len() + value.len();
            messages.push(StoredMessage {
                seq: record.seq,
                timestamp_unix_ms: record.timestamp_unix_ms,
                key: record.key,
                value,
            });
        }
        Ok(with(&messages))
    }

    /// Up to `max_records` messages (and about `max_bytes`) of one partition, copied.
    #[cfg(test)]
    pub fn fetch(
        &self,
        topic: &CatalogTopic,
        index: u32,
        from: FetchFrom,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<TopicMessage>, TopicError> {
        self.read_with(topic, index, from, max_records, max_bytes, |messages| {
            messages
                .iter()
                .map(|m| TopicMessage {
                    seq: m.seq,
                    timestamp_unix_ms: m.timestamp_unix_ms,
                    key: m.key.to_vec(),
                    value: m.value.to_vec(),
                })
                .collect()
        })
    }

    /// A snapshot of partition `index` of `topic` if it is open; never opens one (a metrics
    /// render must not pay for recovering a partition nobody uses).
    pub fn open_snapshot(&self, topic: &CatalogTopic, index: u32) -> Option<ReadSnapshot> {
        if index >= topic.def.partitions {
            return None;
        }
        let prefix = crate::topics::partition_prefix(topic);
        let id = PartitionId::new(format!("{prefix}{index}")).ok()?;
        let open = self.open.lock();
        open.get(&id).map(|partition| partition.log.snapshot())
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
}

/// Message references reserved up front for a read; more grow the list as needed.
const READ_BATCH_GUESS: usize = 1024;
