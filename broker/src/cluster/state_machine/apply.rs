//! Storing a [`ReplicatedBatch`] in the local store: for an applied entry, and for each batch
//! of an installed snapshot.
//!
//! Idempotent: the records at or below the partition's last `_seq` are already there and are
//! skipped. openraft re-applies the entries after the last applied id it finds at start (the
//! state machine persists it after each `apply`, so at most one call's entries), and a
//! snapshot may hold records of entries after its own last log id (`snapshot.rs`).
//!
//! Deterministic refusals: a batch that can never be stored as it is (a bad partition name,
//! `_seq`s not increasing, a record over the log's limits) is refused the same way on every
//! replica, whatever the replica holds: the checks look at the batch alone, before anything
//! of the partition is read. Only the log's batch size bound depends on configuration, which
//! every node of a group must share (`segment_bytes_max`).

use std::sync::Arc;

use strand_log::limits::BATCH_RECORDS_MAX;
use strand_log::record::{check_record, frame_bytes};
use strand_log::{
    LogError, NewRecord, Partition, PartitionId, RecordFlags, ReplicatedRecord, Seq, Store,
};

use crate::cluster::types::ReplicatedBatch;

/// What storing a batch did.
#[derive(Debug)]
pub(crate) enum Stored {
    /// Records were appended, the last with this `_seq`.
    Appended {
        /// The partition written (synced before the applied state moves past the batch).
        partition: Arc<Partition>,
        /// `_seq` of the batch's last record.
        last_seq: Seq,
    },
    /// Every record was already there.
    AlreadyThere,
    /// The batch cannot be stored as it is, on any replica.
    Refused(String),
}

/// The batch's partition and records in the log's terms, or why no replica can store it.
fn checked(batch: &ReplicatedBatch) -> Result<(PartitionId, Vec<ReplicatedRecord<'_>>), String> {
    let id = PartitionId::new(batch.partition.as_str()).map_err(|e| e.to_string())?;
    if batch.records.is_empty() {
        return Err("empty batch".to_owned());
    }
    let mut previous = Seq::ZERO;
    let mut records = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        let seq = Seq(record.seq);
        if seq <= previous || seq > Seq::MAX {
            return Err(format!(
                "_seq {seq} is not above the one before it ({previous}) or is out of range"
            ));
        }
        previous = seq;
        let flags = RecordFlags::from_bits(record.flags)
            .ok_or_else(|| format!("record {seq} has unknown flag bits {:#x}", record.flags))?;
        let new = NewRecord {
            key: &record.key,
            payload: &record.payload,
            flags,
            previous_version: Seq(record.previous_version),
        };
        check_record(&new).map_err(|reason| format!("record {seq}: {reason}"))?;
        records.push(ReplicatedRecord {
            seq,
            timestamp_unix_ms: record.timestamp_unix_ms,
            record: new,
        });
    }
    Ok((id, records))
}

/// The records of `records` above the partition's last: a suffix, `_seq`s being increasing.
fn fresh<'r, 'a>(
    partition: &Partition,
    records: &'r [ReplicatedRecord<'a>],
) -> &'r [ReplicatedRecord<'a>] {
    let last = partition.last_seq();
    let stored = records.partition_point(|record| record.seq <= last);
    &records[stored..]
}

/// Whether the log refused a batch for what it is (the same on every replica sharing the
/// configuration), rather than failing to store it.
fn is_refusal(error: &LogError) -> bool {
    matches!(
        error,
        LogError::InvalidRecord(_)
            | LogError::InvalidBatch(_)
            | LogError::BatchTooLarge { .. }
            | LogError::InvalidPartitionName(_)
    )
}

/// Store an applied entry's batch as one append (readers see all of it or none of it).
/// `Err` only when the local store fails.
pub(crate) fn apply_batch(store: &Store, batch: &ReplicatedBatch) -> Result<Stored, LogError> {
    let (id, records) = match checked(batch) {
        Ok(checked) => checked,
        Err(reason) => return Ok(Stored::Refused(reason)),
    };
    let partition = store.partition(&id)?;
    let records = fresh(&partition, &records);
    if records.is_empty() {
        return Ok(Stored::AlreadyThere);
    }
    match partition.append_replicated(records) {
        Ok(range) => Ok(Stored::Appended {
            partition: partition.clone(),
            last_seq: range.last,
        }),
        Err(error) if is_refusal(&error) => Ok(Stored::Refused(error.to_string())),
        Err(error) => Err(error),
    }
}

/// Store a snapshot's batch. Snapshot batches are cut by the leader's byte target, not by
/// this node's segment size: a batch the log finds too large is stored in several appends
/// (atomicity does not matter here: nothing reads a partition as a replica installs it, and
/// an interrupted install is redone). Returns the partition written, if any.
pub(crate) fn install_batch(
    store: &Store,
    batch: &ReplicatedBatch,
) -> Result<Option<Arc<Partition>>, InstallRefused> {
    let (id, records) = checked(batch).map_err(InstallRefused::Malformed)?;
    let partition = store.partition(&id)?;
    let records = fresh(&partition, &records);
    if records.is_empty() {
        return Ok(None);
    }
    match partition.append_replicated(records) {
        Ok(_) => Ok(Some(partition)),
        Err(LogError::BatchTooLarge { max_bytes, .. }) => {
            for chunk in chunks(records, max_bytes) {
                partition.append_replicated(chunk?)?;
            }
            Ok(Some(partition))
        }
        Err(error) => Err(error.into()),
    }
}

/// Why a snapshot batch was not stored.
#[derive(Debug)]
pub(crate) enum InstallRefused {
    /// The batch is malformed.
    Malformed(String),
    /// The local store refused or failed.
    Log(LogError),
}

impl From<LogError> for InstallRefused {
    fn from(error: LogError) -> Self {
        InstallRefused::Log(error)
    }
}

/// `records` cut into runs of at most `max_bytes` of frames and the log's records per batch;
/// an `Err` for a record that alone is larger.
fn chunks<'r, 'a>(
    records: &'r [ReplicatedRecord<'a>],
    max_bytes: u64,
) -> impl Iterator<Item = Result<&'r [ReplicatedRecord<'a>], LogError>> + 'r {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0u64;
        let mut taken = 0;
        for record in rest.iter().take(BATCH_RECORDS_MAX) {
            let frame = frame_bytes(record.record.key.len(), record.record.payload.len()) as u64;
            if bytes + frame > max_bytes {
                break;
            }
            bytes += frame;
            taken += 1;
        }
        if taken == 0 {
            let record = &rest[0].record;
            rest = &[];
            return Some(Err(LogError::BatchTooLarge {
                bytes: frame_bytes(record.key.len(), record.payload.len()) as u64,
                max_bytes,
            }));
        }
        let (chunk, after) = rest.split_at(taken);
        rest = after;
        Some(Ok(chunk))
    })
}
