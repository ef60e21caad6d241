//! Snapshots of the replicated state: every record the store holds, in every partition, with
//! the applied state they include (format: `format.rs`).
//!
//! A snapshot is built while the state machine goes on applying, so it may hold records of
//! entries after its last log id. That is safe because applying is idempotent
//! (`apply.rs`): a replica that installs it and then applies those entries skips the records
//! it already has. What it must not miss is anything at or before its last log id, and it
//! does not: the applied state is taken first, the records read after.
//!
//! Memory: the snapshot data type is `Cursor<Vec<u8>>`, so a snapshot is built, sent and
//! installed whole in memory, as large as the store's records. Fine while stores are
//! small; a streaming data type (a file) is the way out.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::{RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError};
use strand_log::{ReadFrom, ReadSnapshot, Store};

use super::apply::{install_batch, InstallRefused};
use super::error::{SnapshotFormatError, StateMachineError};
use super::files::SnapshotSlot;
use super::format::{AppliedState, SnapshotHeader, SnapshotReader, SnapshotWriter};
use super::run_blocking;
use crate::cluster::groups::META_GROUP;
use crate::cluster::types::{ClusterTypes, NodeId, OwnedRecord};

/// Builds a snapshot of the store as of the applied state it was created with.
#[derive(Debug)]
pub struct ClusterSnapshotBuilder {
    pub(crate) store: Arc<Store>,
    pub(crate) applied: AppliedState,
    pub(crate) slot: Arc<SnapshotSlot>,
    pub(crate) listener: super::Listener,
    pub(crate) place: Option<super::GroupPlace>,
}

impl RaftSnapshotBuilder<ClusterTypes> for ClusterSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ClusterTypes>, StorageError<NodeId>> {
        let store = self.store.clone();
        let applied = self.applied.clone();
        let slot = self.slot.clone();
        let listener = self.listener.clone();
        let place = self.place.clone();
        let (meta, data) = run_blocking(move || {
            let (meta, data) = build(&store, applied, &listener, place.as_ref())?;
            slot.save(meta.last_log_id, &data)?;
            Ok((meta, data))
        })
        .await
        .map_err(StateMachineError::into_snapshot_error)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// openraft's meta for a snapshot with `header`.
pub(crate) fn meta_of(header: SnapshotHeader) -> SnapshotMeta<NodeId, openraft::BasicNode> {
    SnapshotMeta {
        last_log_id: header.applied.last_applied,
        last_membership: header.applied.last_membership,
        snapshot_id: header.snapshot_id,
    }
}

/// The snapshot data of every record in `store` that the group replicates, headed by
/// `applied`.
fn build(
    store: &Store,
    applied: AppliedState,
    listener: &super::Listener,
    place: Option<&super::GroupPlace>,
) -> Result<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>), StateMachineError> {
    let built_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let snapshot_id = match &applied.last_applied {
        Some(log_id) => format!("{log_id}-{built_unix_ms}"),
        None => format!("none-{built_unix_ms}"),
    };
    // Only what the group replicates: partitions a member writes alone differ between
    // members and must not travel, and another group's partitions are in its snapshots.
    let mut partitions = Vec::new();
    for id in store.partition_ids()? {
        if listener.replicates(id.as_str()) && place.is_none_or(|p| p.owns(id.as_str())) {
            partitions.push((id.as_str().to_owned(), store.partition(&id)?.snapshot()));
        }
    }
    // Read after the partitions' views: every record in them was applied after the meta
    // entries it follows, so a member that applied the meta group this far may take them.
    let meta_index = match place {
        Some(place) if place.group != META_GROUP => place.indexes.get(META_GROUP),
        _ => 0,
    };
    let header = SnapshotHeader {
        applied,
        snapshot_id,
        meta_index,
    };
    let mut writer = SnapshotWriter::new(&header);
    for (name, view) in &partitions {
        push_partition(&mut writer, name, view)?;
    }
    Ok((meta_of(header), writer.finish()))
}

/// The meta index a snapshot's data follows (its header's), read before it is installed.
pub(crate) fn meta_index_of(data: &[u8]) -> Result<u64, SnapshotFormatError> {
    let (header, _) = SnapshotReader::open(data)?;
    Ok(header.meta_index)
}

/// Every record a partition still holds (retention and compaction may have removed some),
/// read from one consistent view of it.
fn push_partition(
    writer: &mut SnapshotWriter,
    name: &str,
    view: &ReadSnapshot,
) -> Result<(), StateMachineError> {
    for record in view.records(ReadFrom::Earliest) {
        let record = record?;
        let owned = OwnedRecord {
            seq: record.seq.0,
            timestamp_unix_ms: record.timestamp_unix_ms,
            key: record.key.to_vec(),
            payload: record.payload.to_vec(),
            flags: record.flags.bits(),
            previous_version: record.previous_version.0,
        };
        writer.push(name, owned);
    }
    Ok(())
}

/// Store the records of snapshot `data` above each partition's last, and make the snapshot
/// the current one. Returns the applied state it holds.
///
/// Records this replica holds beyond the snapshot's are not removed: the log is append-only,
/// so they cannot be. None should exist: a replica is sent a snapshot because it is behind
/// the leader, and everything it holds it applied from the same Raft log (a record a
/// replica has, the leader has; compaction on the leader may have removed older versions the
/// replica keeps, which only changes how much history it holds).
pub(crate) fn install(
    store: &Store,
    slot: &SnapshotSlot,
    meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
    data: &[u8],
    listener: &super::Listener,
) -> Result<AppliedState, StateMachineError> {
    let (header, mut reader) = SnapshotReader::open(data)?;
    if header.applied.last_applied != meta.last_log_id {
        return Err(StateMachineError::SnapshotMismatch {
            expected: format!("{:?}", meta.last_log_id),
            found: format!("{:?}", header.applied.last_applied),
        });
    }
    let mut written = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        match install_batch(store, &batch) {
            Ok(Some(partition)) => written.push((batch.partition.clone(), partition)),
            Ok(None) => {}
            Err(InstallRefused::Log(error)) => return Err(error.into()),
            Err(InstallRefused::Malformed(reason)) => {
                let partition = batch.partition;
                return Err(SnapshotFormatError::BadBatch { partition, reason }.into());
            }
        }
    }
    // The records are durable before the snapshot says they are there (fsync policies
    // `interval` and `never` return before the disk has them).
    for (_, partition) in &written {
        partition.sync()?;
    }
    listener.tell(&written);
    slot.save(meta.last_log_id, data)?;
    Ok(AppliedState {
        last_applied: meta.last_log_id,
        last_membership: meta.last_membership.clone(),
    })
}
