//! A table partition on a cluster member: its writes are proposed through its data group
//! ([`BlockingWriter`]) and acknowledged once a majority holds them, and its key index follows
//! the local log instead of being written ahead of it.
//!
//! Why the index follows the log here: every member appends an applied entry's records itself
//! (`cluster/state_machine`), the leader included, so the records, not the statement that
//! proposed them, are what each member's index must agree with. [`KeyedPartition::
//! catch_up_index`] reads the records after the last one indexed; it runs when a member is
//! told of an apply, before the leader checks a statement, and before a snapshot is taken
//! for a subscription, so the single-node invariant holds on every member: every version in
//! an indexed snapshot is in the index.
//!
//! The leader holds the partition's write lock from its primary-key check until the batch is
//! applied locally, so statements on one partition stay serialised across the Raft round
//! trip, and the `previous_version` links it writes come from an index that has every
//! earlier version.

use std::sync::{Arc, OnceLock};

use strand_log::{LogError, PartitionId, ReadFrom, ReadSnapshot, Seq};

use super::{IndexKey, KeyVersion, KeyedPartition, PartitionWriter, RowWrite, VersionError};
use crate::cluster::writer::{BlockingWriter, ReplicationError};

/// Where a cluster member's table writes go: the writer, set once the node joined its
/// cluster. Shared by every partition of a [`crate::tables::TableData`].
pub type SharedWriter = Arc<OnceLock<BlockingWriter>>;

/// One partition's way into the cluster.
#[derive(Debug)]
pub(crate) struct RowReplication {
    id: PartitionId,
    writer: SharedWriter,
}

impl RowReplication {
    fn writer(&self) -> Result<&BlockingWriter, ReplicationError> {
        self.writer.get().ok_or_else(|| {
            ReplicationError::Raft("this node has not joined its cluster yet".into())
        })
    }

    /// The term this node leads the partition's group in, once it has applied every
    /// earlier entry.
    pub(super) fn ready_to_lead(&self) -> Result<u64, ReplicationError> {
        self.writer()?.ready_for(&self.id)
    }
}

impl KeyedPartition {
    /// [`KeyedPartition::open`] for a cluster member: writes to the partition (log id `id`)
    /// are replicated through `writer`.
    pub fn open_replicated(
        partition: Arc<strand_log::Partition>,
        id: PartitionId,
        writer: SharedWriter,
    ) -> Result<KeyedPartition, VersionError> {
        let mut rows = KeyedPartition::open(partition)?;
        rows.replication = Some(RowReplication { id, writer });
        Ok(rows)
    }

    /// On a cluster member, this member's settled tick (`cluster/ticks.rs`): `Some(None)`
    /// before it has one. `None` for a partition that is not replicated, whose log's own
    /// ticks hold.
    pub(crate) fn replicated_tick(&self) -> Option<Option<Seq>> {
        let replication = self.replication.as_ref()?;
        Some(replication.writer().ok().and_then(|w| w.settled_tick()))
    }

    /// Index every record of the log after the last one indexed; returns the snapshot it
    /// indexed through. Only for replicated partitions, whose index is written nowhere else.
    pub(crate) fn catch_up_index(&self) -> Result<ReadSnapshot, LogError> {
        let mut through = self.indexed_through.lock();
        let snapshot = self.partition.snapshot();
        if snapshot.last_seq() <= *through {
            return Ok(snapshot);
        }
        let mut index = self.index.write();
        for record in snapshot.records(ReadFrom::After(*through)) {
            let record = record?;
            if record.key.is_empty() {
                continue;
            }
            let version = KeyVersion {
                seq: record.seq,
                deleted: record.flags.is_tombstone(),
            };
            index.insert(IndexKey::new(record.key), version);
        }
        *through = snapshot.last_seq();
        Ok(snapshot)
    }

    /// An indexed snapshot of a replicated partition. Records the log cannot read (damage)
    /// cannot be indexed; they cannot be read from the snapshot either, so it is served.
    pub(super) fn replicated_snapshot(&self) -> ReadSnapshot {
        self.catch_up_index().unwrap_or_else(|error| {
            tracing::error!(partition = %self.partition.dir().display(), %error,
                "cannot index replicated records");
            self.partition.snapshot()
        })
    }

    /// Whether this partition's writes go through the cluster.
    pub fn is_replicated(&self) -> bool {
        self.replication.is_some()
    }

    /// The partition's log id, for a replicated one.
    pub fn replicated_id(&self) -> Option<&PartitionId> {
        self.replication.as_ref().map(|r| &r.id)
    }
}

impl PartitionWriter<'_> {
    /// A statement that writes nothing (an UPDATE or DELETE that matched no row, an INSERT
    /// refused as a duplicate) is answered from this member's state, so on a cluster member
    /// a majority first confirms that this node still leads in the term it read in. Else a
    /// leader cut off from the others could answer from state a newer leader has changed
    /// (found by the fault schedule: an UPDATE acknowledged as "0 updated" on a cut-off
    /// leader, of a row the new leader had inserted).
    pub(super) fn confirm_unwritten(&self) -> Result<(), VersionError> {
        if let Some(replication) = &self.rows.replication {
            replication
                .writer()?
                .confirm_for(&replication.id, self.term)?;
        }
        Ok(())
    }

    /// Propose `writes` as one entry and wait until a majority holds it and this node applied
    /// it; returns the `_seq`s the leader issued. The lock is held throughout (module doc).
    pub(super) fn replicate(
        self,
        replication: &RowReplication,
        writes: &[RowWrite<'_>],
    ) -> Result<Vec<Seq>, VersionError> {
        let records = self.records_of(writes)?;
        if records.is_empty() {
            self.confirm_unwritten()?;
            return Ok(Vec::new());
        }
        let seqs = replication
            .writer()?
            .append_seqs_in(&replication.id, &records, self.term)?;
        // Applying the entry told this member's tables already; this covers a partition the
        // apply did not find open.
        self.rows.catch_up_index()?;
        drop(self);
        Ok(seqs)
    }
}
