//! `KeyedPartition`: the versions of one table partition (one user's rows of a USER table, or
//! a SHARED table) in a log partition, with a primary-key index of the newest version per key.
//!
//! Each row version is one log record: key = encoded primary key, payload = the stored row,
//! tombstone flag for a delete, `previous_version` = the `_seq` of the version it replaces. The
//! index is rebuilt by one scan when the partition is first used. Reads of the latest state use
//! the index (point lookups) or a snapshot; reads as of any `_seq` use a log snapshot and take no
//! lock a writer waits for. Writes to one partition are serialised by `write_lock`, so a
//! primary-key check and the append it guards are atomic; different partitions (users) write
//! in parallel and still share the store's group commit.
//!
//! A record with an empty key is a row without a primary key (STREAM tables may have none):
//! it is never replaced, and every such record is its own row.
//!
//! It does not know SQL, column types or users: keys and rows are bytes.

use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::key::IndexKey;
use crate::limits::{COMMIT_POLL_INTERVAL_MS, COMMIT_WAIT_MS_MAX};
use strand_log::{LogError, Partition, ReadFrom, ReadSnapshot, RecordView, Seq};

/// Newest known version of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    pub seq: Seq,
    pub deleted: bool,
}

/// One change to apply: insert or replace a row, or delete a key.
#[derive(Clone, Copy, Debug)]
pub enum RowWrite<'a> {
    Put {
        key: &'a [u8],
        row: &'a [u8],
    },
    Delete {
        key: &'a [u8],
    },
    /// Delete the row version `version` because its TTL passed (STREAM tables). Unlike
    /// `Delete`, it names the version it removes, so it also works for rows without a
    /// primary key (empty `key`), where the tombstone's `previous_version` is the only link.
    Expire {
        key: &'a [u8],
        version: Seq,
    },
}

impl RowWrite<'_> {
    fn key(&self) -> &[u8] {
        match self {
            RowWrite::Put { key, .. } | RowWrite::Delete { key } | RowWrite::Expire { key, .. } => {
                key
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the same primary key appears twice in one statement")]
    KeyRepeated,
    /// A cluster member could not replicate the batch (not the leader, no majority).
    #[error(transparent)]
    Replication(#[from] crate::cluster::writer::ReplicationError),
}

/// Why [`KeyedPartition::version_as_of`] could not tell a key's version as of a `_seq`.
#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// A version after the boundary is no longer stored (compaction removed it): the
    /// changes after the boundary are no longer complete either.
    #[error("version {0} of a key is no longer stored")]
    Removed(Seq),
    /// The index names a version whose batch did not commit in time (or failed).
    #[error("version {0} of a key was not committed")]
    NotCommitted(Seq),
}

/// Keys are hashed on every write and point read: foldhash (seeded per process) is several
/// times faster than the default SipHash for short keys.
type KeyHasher = foldhash::fast::RandomState;
type KeyIndex = HashMap<IndexKey, KeyVersion, KeyHasher>;

#[derive(Debug)]
pub struct KeyedPartition {
    partition: Arc<Partition>,
    index: RwLock<KeyIndex>,
    write_lock: Mutex<()>,
    /// STREAM tables: every record up to here was looked at by the expiry sweep
    /// (`tables/expiry.rs`); 0 after opening.
    expiry_cursor: AtomicU64,
    /// Damaged bytes found while indexing, if any (see [`KeyedPartition::check_intact`]).
    damage: Option<PartitionDamage>,
    /// On a cluster member, how this partition's writes are replicated (`replicated.rs`).
    replication: Option<replicated::RowReplication>,
    /// Replicated partitions: every record up to here is in the key index.
    indexed_through: Mutex<Seq>,
}

/// What [`KeyedPartition::open`] could not index: damaged records on disk.
#[derive(Debug)]
pub struct PartitionDamage {
    /// The first damaged range, for the error a refused read gets.
    pub first: strand_log::Damage,
    /// The error that range gave.
    pub error: LogError,
    /// Every version at or after this `_seq` was read after the last damaged range: a key
    /// whose newest intact version is older may have a newer one in the damage.
    pub certain_from: Seq,
}

impl KeyedPartition {
    /// Wrap a partition, building the key index from its records. Damaged records are
    /// skipped and remembered: reads that may need them are refused
    /// ([`KeyedPartition::check_intact`]), everything else is served, and writes go on.
    pub fn open(partition: Arc<Partition>) -> Result<KeyedPartition, VersionError> {
        let mut index = KeyIndex::default();
        let snapshot = partition.snapshot();
        let mut records = snapshot.records(ReadFrom::Earliest);
        let mut damage: Option<PartitionDamage> = None;
        let mut after_damage = false;
        loop {
            let record = match records.next() {
                None => break,
                Some(Ok(record)) => record,
                Some(Err(error)) if error.is_corruption() => {
                    let Some(skipped) = records.skip_damage() else {
                        return Err(error.into());
                    };
                    tracing::error!(partition = %partition.dir().display(), %error,
                        "damaged records skipped while indexing; reads that may need them are refused");
                    after_damage = true;
                    damage.get_or_insert(PartitionDamage {
                        first: skipped,
                        error,
                        certain_from: Seq::MAX,
                    });
                    continue;
                }
                Some(Err(error)) => return Err(error.into()),
            };
            if after_damage {
                after_damage = false;
                if let Some(damage) = damage.as_mut() {
                    damage.certain_from = record.seq;
                }
            }
            if record.key.is_empty() {
                continue;
            }
            let version = KeyVersion {
                seq: record.seq,
                deleted: record.flags.is_tombstone(),
            };
            index.insert(IndexKey::new(record.key), version);
        }
        if after_damage {
            // Nothing intact after the last damage: only versions written from now on.
            if let Some(damage) = damage.as_mut() {
                damage.certain_from = snapshot.last_seq().successor();
            }
        }
        drop(records);
        let indexed_through = snapshot.last_seq();
        drop(snapshot);
        Ok(KeyedPartition {
            partition,
            index: RwLock::new(index),
            write_lock: Mutex::new(()),
            expiry_cursor: AtomicU64::new(0),
            damage,
            replication: None,
            indexed_through: Mutex::new(indexed_through),
        })
    }

    /// Damaged records this partition holds, if any.
    pub fn damage(&self) -> Option<&PartitionDamage> {
        self.damage.as_ref()
    }

    /// `Err` (the damage's error) when `version`, the index's newest version of a key (`None`:
    /// never written, as far as the index knows), may be stale: the damaged records could hold
    /// a newer version. Versions written after the damage are certain.
    pub fn check_intact(&self, version: Option<KeyVersion>) -> Result<(), &LogError> {
        match &self.damage {
            Some(damage) if version.is_none_or(|v| v.seq < damage.certain_from) => {
                Err(&damage.error)
            }
            _ => Ok(()),
        }
    }

    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// How many keys were ever written (deleted ones included): the partition's size, for
    /// choosing where to read it.
    pub fn key_count(&self) -> usize {
        self.read_index().len()
    }

    /// Newest version of `key`, if the key was ever written.
    pub fn version(&self, key: &[u8]) -> Option<KeyVersion> {
        self.read_index().get(key).copied()
    }

    /// Take the partition's write lock: until the writer is dropped, no other statement
    /// writes here, so what the holder read (index or snapshot) stays the newest state. On a
    /// cluster member, only the leader gets one, once it has applied and indexed every
    /// earlier write (`replicated.rs`).
    pub fn writer(&self) -> Result<PartitionWriter<'_>, VersionError> {
        if let Some(replication) = &self.replication {
            let mut writer = self.lock_writer();
            // Under the lock: a statement before this one whose proposal got no answer in
            // time (it may still commit) is settled before this one reads the index.
            writer.term = replication.ready_to_lead()?;
            self.catch_up_index()?;
            return Ok(writer);
        }
        Ok(self.lock_writer())
    }

    fn lock_writer(&self) -> PartitionWriter<'_> {
        PartitionWriter {
            rows: self,
            _guard: self.write_lock.lock(),
            term: 0,
        }
    }

    /// Apply `writes` as one durable batch after `check` approves them against the current
    /// index (e.g. "no live row has this key" for an INSERT). Returns the `_seq` of each write.
    pub fn apply<E>(
        &self,
        writes: &[RowWrite<'_>],
        check: impl FnOnce(&dyn Fn(&[u8]) -> Option<KeyVersion>) -> Result<(), E>,
    ) -> Result<Result<Vec<Seq>, E>, VersionError> {
        let writer = self.writer()?;
        if let Err(rejected) = self.check_index(check) {
            writer.confirm_unwritten()?;
            return Ok(Err(rejected));
        }
        writer.append(writes).map(Ok)
    }

    /// [`KeyedPartition::apply`] for a caller on an async runtime: neither waits for the
    /// partition's lock (`Ok(None)` while another statement holds it) nor for durability. The
    /// batch is queued and indexed; the caller awaits [`DeferredBatch::committed`] and, if that
    /// fails, calls [`DeferredBatch::undo`].
    pub fn try_queue<E>(
        &self,
        writes: &[RowWrite<'_>],
        check: impl FnOnce(&dyn Fn(&[u8]) -> Option<KeyVersion>) -> Result<(), E>,
    ) -> Result<Option<Result<DeferredBatch, E>>, VersionError> {
        if self.replication.is_some() {
            // A replicated write waits for a majority: the blocking path takes it.
            return Ok(None);
        }
        let Some(guard) = self.write_lock.try_lock() else {
            return Ok(None);
        };
        let writer = PartitionWriter {
            rows: self,
            _guard: guard,
            term: 0,
        };
        if let Err(rejected) = self.check_index(check) {
            return Ok(Some(Err(rejected)));
        }
        let (ticket, seqs, replaced) = writer.queue_batch(writes)?;
        Ok(Some(Ok(DeferredBatch {
            ticket,
            seqs,
            replaced,
        })))
    }

    /// Run a statement's check against the key index, under one read lock for the whole
    /// check (not one per key). Call it holding the partition's write lock.
    fn check_index<E>(
        &self,
        check: impl FnOnce(&dyn Fn(&[u8]) -> Option<KeyVersion>) -> Result<(), E>,
    ) -> Result<(), E> {
        let index = self.read_index();
        check(&|key: &[u8]| index.get(key).copied())
    }

    /// Where the STREAM expiry sweep stopped reading this partition.
    pub fn expiry_cursor(&self) -> Seq {
        Seq(self.expiry_cursor.load(Ordering::Acquire))
    }

    pub fn set_expiry_cursor(&self, seq: Seq) {
        self.expiry_cursor.store(seq.0, Ordering::Release);
    }

    /// A consistent view for reads as of its last `_seq` (or any earlier one).
    pub fn snapshot(&self) -> ReadSnapshot {
        self.partition.snapshot()
    }

    /// A snapshot whose every version is in the key index: taken while no statement is
    /// between issuing `_seq`s and indexing them (a commit round may publish a batch before
    /// its writer indexed it). From then on, the index's version of a key is at or after its
    /// newest version in the snapshot; one after the snapshot's last `_seq` is resolved by
    /// [`KeyedPartition::version_as_of`]. Waits for a writer holding the partition (an
    /// UPDATE waits for its fsync under the lock): call it where waiting is allowed.
    pub fn indexed_snapshot(&self) -> ReadSnapshot {
        if self.replication.is_some() {
            return self.replicated_snapshot();
        }
        let _writers = self.write_lock.lock();
        self.partition.snapshot()
    }

    /// [`KeyedPartition::indexed_snapshot`] without waiting: `None` if a writer holds the
    /// partition right now.
    pub fn try_indexed_snapshot(&self) -> Option<ReadSnapshot> {
        if self.replication.is_some() {
            return Some(self.replicated_snapshot());
        }
        let _writers = self.write_lock.try_lock()?;
        Some(self.partition.snapshot())
    }

    /// The `_seq` of the newest version of `key` as of `boundary` (a tombstone's too), where
    /// `boundary` is the last `_seq` of an [`KeyedPartition::indexed_snapshot`]: the index's
    /// version if it is not after `boundary`, else found by following the versions'
    /// `previous_version` links back from it (as many steps as the key was written since).
    /// `None`: the key had no version then. Sleeps while the index's version is written but
    /// not yet committed, so call it where blocking is allowed. `read` counts the records it
    /// reads.
    pub fn version_as_of(
        &self,
        key: &[u8],
        boundary: Seq,
        read: &mut u64,
    ) -> Result<Option<Seq>, AsOfError> {
        loop {
            // Every version at or below `boundary` was indexed when the snapshot was taken,
            // and only a batch that failed to commit (so above it) is taken out again.
            let Some(newest) = self.version(key) else {
                return Ok(None);
            };
            if newest.seq <= boundary {
                return Ok(Some(newest.seq));
            }
            match self.walk_back(key, newest.seq, boundary, read) {
                Ok(Some(found)) => return Ok(found),
                // The batch failed and left the index: look again.
                Ok(None) => continue,
                Err(error) if self.version(key) != Some(newest) => {
                    tracing::debug!(%error, "the key changed while reading its versions");
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// From version `newest` of `key` back to the first version at or below `boundary`;
    /// `Ok(None)` if the index no longer names `newest` (its batch failed to commit).
    fn walk_back(
        &self,
        key: &[u8],
        newest: Seq,
        boundary: Seq,
        read: &mut u64,
    ) -> Result<Option<Option<Seq>>, AsOfError> {
        let started = std::time::Instant::now();
        let snapshot = loop {
            let snapshot = self.partition.snapshot();
            if snapshot.last_seq() >= newest {
                break snapshot;
            }
            if self.version(key).map(|v| v.seq) != Some(newest) {
                return Ok(None);
            }
            if self.partition.is_poisoned()
                || started.elapsed() >= Duration::from_millis(COMMIT_WAIT_MS_MAX)
            {
                return Err(AsOfError::NotCommitted(newest));
            }
            std::thread::sleep(Duration::from_millis(COMMIT_POLL_INTERVAL_MS));
        };
        let mut seq = newest;
        loop {
            *read += 1;
            let previous = match snapshot.records(ReadFrom::Seq(seq)).next() {
                Some(Ok(record)) if record.seq == seq => record.previous_version,
                Some(Err(error)) => return Err(AsOfError::Log(error)),
                _ => return Err(AsOfError::Removed(seq)),
            };
            if previous == Seq::ZERO {
                return Ok(Some(None));
            }
            if previous <= boundary {
                return Ok(Some(Some(previous)));
            }
            seq = previous;
        }
    }

    fn read_index(&self) -> parking_lot::RwLockReadGuard<'_, KeyIndex> {
        self.index.read()
    }
}

/// The newest version of every key as of `boundary` (inclusive), tombstones included, in
/// `_seq` order. A row without a key is its own version until a tombstone names it
/// (`previous_version`, an expiry), which then takes its place. Reads only the snapshot:
/// writers are never held.
///
/// Why two passes and no map of keys: every version names the one it replaced
/// (`previous_version`, set from the key index under the partition's lock), so a version is
/// the newest exactly when no later version up to `boundary` names it. The first pass collects
/// the replaced `_seq`s (as many as there were updates and deletes, none for an insert-only
/// table), the second keeps the others: no hashing of a million keys to scan a million rows.
pub fn versions_as_of<'s>(
    snapshot: &'s ReadSnapshot,
    boundary: Seq,
) -> Result<Vec<RecordView<'s>>, LogError> {
    let mut replaced: HashSet<Seq, KeyHasher> = HashSet::default();
    let mut count = 0usize;
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        if record.seq > boundary {
            break;
        }
        count += 1;
        if record.previous_version != Seq::ZERO {
            replaced.insert(record.previous_version);
        }
    }
    let mut newest = Vec::with_capacity(count.saturating_sub(replaced.len()));
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        if record.seq > boundary {
            break;
        }
        if replaced.is_empty() || !replaced.contains(&record.seq) {
            newest.push(record);
        }
    }
    Ok(newest)
}

mod replicated;
mod writer;
pub use replicated::SharedWriter;
pub use writer::{DeferredBatch, PartitionWriter};

#[cfg(test)]
mod tests;
