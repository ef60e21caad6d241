//! What the cluster's Raft groups agree on: [`ClusterTypes`] (openraft's type configuration),
//! the entries' payload [`ClusterCommand`] and what applying one answers, [`ClusterReply`].
//!
//! An entry is a batch of records a partition's leader issued `_seq`s to, so applying it on
//! any replica stores the same records at the same `_seq`s (`Partition::append_replicated`).
//! The types are plain data with serde derives: postcard encodes them in the Raft log on disk
//! and between nodes.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster (`--node-id`); it is also the node bits of the `_seq`s it
/// issues, so two nodes never issue the same `_seq`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for every Strand Raft group.
    pub ClusterTypes:
        D = ClusterCommand,
        R = ClusterReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<ClusterTypes>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The payload of a Raft entry (besides openraft's own blank and membership entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
    /// Records for one partition, with the `_seq`s and times the leader issued.
    Append(ReplicatedBatch),
    /// [`ClusterCommand::Append`] of a batch checked against state read in `term` (a key
    /// index, the catalog, a producer's last batch): applied only if the entry is of that
    /// term, else refused alike on every replica. A leader that read in one term and whose
    /// proposal lands in a later one (it lost and won the office again meanwhile) may have
    /// missed another leader's writes between, so its check no longer holds.
    AppendInTerm {
        /// The term the leader read the state in.
        term: u64,
        /// The records.
        batch: ReplicatedBatch,
    },
    /// A data group's [`ClusterCommand::AppendInTerm`]: applied on a member only once it
    /// applied the meta group through `meta_index`, the index the leader had applied when it
    /// proposed them (`groups.rs`: a table's rows never arrive before the catalog change they
    /// were checked against). Last, so older entries keep their postcard tags.
    AppendAfterMeta {
        /// The term the leader read the state in.
        term: u64,
        /// The meta group's applied index the batch follows.
        meta_index: u64,
        /// The records.
        batch: ReplicatedBatch,
    },
    /// A data group's applied watermark: `seq`, issued to no record, is above every `_seq`
    /// the group's entries before it carry and below every one after it, so a member that
    /// applied it holds every record of the group below `seq` (`groups.rs`: `AppliedTicks`).
    /// Applied only if the entry is of `term`, the term the leader issued `seq` in: a leader
    /// between may have issued lower `_seq`s. Last, so older entries keep their tags.
    Tick {
        /// The term the leader issued `seq` in.
        term: u64,
        /// The tick's `_seq`.
        seq: u64,
    },
}

impl ClusterCommand {
    /// The records the entry carries (none for a tick).
    pub fn batch(&self) -> Option<&ReplicatedBatch> {
        match self {
            ClusterCommand::Append(batch)
            | ClusterCommand::AppendInTerm { batch, .. }
            | ClusterCommand::AppendAfterMeta { batch, .. } => Some(batch),
            ClusterCommand::Tick { .. } => None,
        }
    }

    /// The term the batch's checks were made in, if it names one.
    pub fn checked_in_term(&self) -> Option<u64> {
        match self {
            ClusterCommand::Append(_) => None,
            ClusterCommand::AppendInTerm { term, .. }
            | ClusterCommand::AppendAfterMeta { term, .. }
            | ClusterCommand::Tick { term, .. } => Some(*term),
        }
    }

    /// The meta group's index a member must have applied first (0: none).
    pub fn meta_index(&self) -> u64 {
        match self {
            ClusterCommand::AppendAfterMeta { meta_index, .. } => *meta_index,
            _ => 0,
        }
    }
}

/// Records for one partition, in `_seq` order, as a leader wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicatedBatch {
    /// The partition's id in the store (`strand_log::PartitionId`'s text).
    pub partition: String,
    /// The records, `_seq`s strictly increasing.
    pub records: Vec<OwnedRecord>,
}

/// One record of a [`ReplicatedBatch`]: `strand_log::ReplicatedRecord` with owned bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRecord {
    /// The `_seq` the leader issued.
    pub seq: u64,
    /// The leader's time of the write.
    pub timestamp_unix_ms: u64,
    /// What compaction groups versions by; empty: not keyed.
    pub key: Vec<u8>,
    /// The record's bytes.
    pub payload: Vec<u8>,
    /// `strand_log::RecordFlags` bits.
    pub flags: u16,
    /// `_seq` of the previous version of the key, or 0.
    pub previous_version: u64,
}

/// What applying an entry answers the proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterReply {
    /// A blank or membership entry, or an append that was already applied.
    #[default]
    Nothing,
    /// The last `_seq` of an applied append.
    Appended {
        /// The batch's last `_seq`.
        last_seq: u64,
    },
    /// An append no replica can store as it is (a bad partition name, `_seq`s not
    /// increasing, a record over the log's limits): every replica refuses it alike and the
    /// group goes on.
    Refused {
        /// Why, for the proposer.
        reason: String,
    },
    /// An [`ClusterCommand::AppendInTerm`] whose entry is of another term than its checks:
    /// nothing stored, on any replica.
    TermChanged {
        /// The term the checks were made in.
        checked_in: u64,
        /// The term of the entry.
        proposed_in: u64,
    },
}

impl fmt::Display for ClusterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterCommand::Tick { seq, .. } => write!(f, "tick at _seq {seq}")?,
            _ => {
                if let Some(batch) = self.batch() {
                    write!(
                        f,
                        "append {} record(s) to {}",
                        batch.records.len(),
                        batch.partition
                    )?;
                }
            }
        }
        if let Some(term) = self.checked_in_term() {
            write!(f, " (checked in term {term})")?;
        }
        match self.meta_index() {
            0 => Ok(()),
            index => write!(f, " after meta index {index}"),
        }
    }
}
