//! Topic writes on a cluster member: a batch is replicated through the partition's Raft group
//! ([`ClusterWriter`]) instead of appended locally, and acknowledged once a majority holds it
//! durably. Every member appends it when it applies the entry and tells [`TopicData`]
//! ([`TopicData::replicated`]), so readers tailing a partition on any member wake up.
//!
//! Idempotent producers: the leader keeps each producer's last batch as a single node does,
//! and the batch's marker is in the replicated records, so a member that becomes leader reads
//! the producers' state from its own log. It reads it again whenever the partition holds
//! records it did not write as leader (`producers_as_of` is behind the log).

use std::sync::atomic::Ordering;

use strand_log::{NewRecord, PartitionId, Seq, SeqRange};

use super::{LastBatch, ProduceAck, ProducerBatch, TopicData, TopicError, TopicPartition};
use crate::cluster::writer::{BlockingWriter, ReplicationError};

/// How topic writes reach the cluster.
pub(crate) struct Replication(BlockingWriter);

impl Replication {
    /// A write checked against nothing.
    fn append(&self, id: &PartitionId, records: &[NewRecord<'_>]) -> Result<SeqRange, TopicError> {
        self.0.append(id, records).map_err(TopicError::Replication)
    }

    /// A write checked against state read in `term`.
    fn append_in(
        &self,
        id: &PartitionId,
        records: &[NewRecord<'_>],
        term: u64,
    ) -> Result<SeqRange, TopicError> {
        let appended = self.0.append_in(id, records, term);
        appended.map_err(TopicError::Replication)
    }
}

impl TopicData {
    /// From now on, produces are replicated through `writer` (a cluster member).
    pub fn replicate_through(&self, writer: BlockingWriter) {
        let _ = self.replication.set(Replication(writer));
    }

    /// [`TopicData::produce`] on a cluster member, once `records` are built.
    pub(super) fn produce_replicated(
        &self,
        replication: &Replication,
        partition: &TopicPartition,
        records: &[NewRecord<'_>],
        producer: Option<ProducerBatch>,
        ack_of: impl Fn(SeqRange) -> ProduceAck,
    ) -> Result<ProduceAck, TopicError> {
        let Some(batch) = producer else {
            let range = replication.append(&partition.id, records)?;
            partition.advance(range.last);
            return Ok(ack_of(range));
        };
        // The producers' state and the write under one lock: a retry waits for its original.
        let mut producers = partition.lock_producers()?;
        // Under the lock: a new leader, or one whose last proposal got no answer in time, has
        // applied every earlier write before it reads the producers' state.
        let term = replication.0.ready_for(&partition.id)?;
        if partition.producers_as_of.load(Ordering::Acquire) != partition.log.last_seq().0 {
            *producers = super::producers_of(&partition.log)?;
        }
        if let Some(answer) = super::answered_before(producers.get(&batch.producer_id), batch) {
            return answer;
        }
        let range = replication.append_in(&partition.id, records, term)?;
        let ack = ack_of(range);
        let last = LastBatch {
            batch_seq: batch.batch_seq,
            ack,
            pending: false,
        };
        producers.insert(batch.producer_id, last);
        partition
            .producers_as_of
            .store(range.last.0, Ordering::Release);
        drop(producers);
        partition.advance(range.last);
        Ok(ack)
    }
}

impl TopicData {
    /// A cluster member applied records up to `last` to the topic partition `id`: wake the
    /// readers tailing it here.
    pub fn replicated(&self, id: &PartitionId, last: Seq) {
        let open = self.open.lock().get(id).cloned();
        if let Some(partition) = open {
            partition.advance(last);
        }
    }
}

/// The error frame's code for a write the cluster did not acknowledge.
pub(crate) fn replication_code(error: &ReplicationError) -> &'static str {
    match error {
        ReplicationError::NotLeader { .. } => strand_wire::quic::codes::NOT_LEADER,
        _ => strand_wire::quic::codes::UNAVAILABLE,
    }
}
