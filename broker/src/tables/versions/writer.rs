//! [`PartitionWriter`]: the holder of a [`KeyedPartition`]'s write lock, and what it writes:
//! a statement's batch, queued and indexed under the lock (or proposed through the cluster on
//! a member, `replicated.rs`), each record naming the version it replaces.

use strand_log::{AppendTicket, LogError, NewRecord, Seq};

use super::{IndexKey, KeyVersion, KeyedPartition, RowWrite, VersionError};

/// A queued batch: its ticket, its `_seq`s, and the index entries it replaced.
pub(super) type QueuedBatch = (Option<AppendTicket>, Vec<Seq>, Vec<Option<KeyVersion>>);

/// A batch queued and indexed by [`KeyedPartition::try_queue`], not yet known durable.
#[derive(Debug)]
pub struct DeferredBatch {
    pub(super) ticket: Option<AppendTicket>,
    pub(super) seqs: Vec<Seq>,
    pub(super) replaced: Vec<Option<KeyVersion>>,
}

impl DeferredBatch {
    /// Resolves once the batch is durable (or failed to commit); an empty batch at once.
    pub async fn committed(&mut self) -> Result<(), LogError> {
        match self.ticket.take() {
            Some(ticket) => ticket.committed().await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// The batch failed to commit: put back the index entries it replaced, as
    /// [`PartitionWriter::append`] does. Waits for the partition's lock.
    pub fn undo(self, rows: &KeyedPartition, writes: &[RowWrite<'_>]) {
        rows.lock_writer()
            .unindex(writes, &self.seqs, self.replaced);
    }
}

/// The write lock of one [`KeyedPartition`], held for a read-modify-write.
pub struct PartitionWriter<'a> {
    pub(super) rows: &'a KeyedPartition,
    pub(super) _guard: parking_lot::MutexGuard<'a, ()>,
    /// On a cluster member, the term this node led in when it took the lock (0: alone).
    pub(super) term: u64,
}

impl PartitionWriter<'_> {
    /// Append `writes` as one durable batch and index them; returns each write's `_seq`. The
    /// batch is queued and indexed under the lock, which is released before waiting for
    /// durability, so concurrent INSERTs into one partition share one fsync.
    pub fn append(self, writes: &[RowWrite<'_>]) -> Result<Vec<Seq>, VersionError> {
        if let Some(replication) = &self.rows.replication {
            return self.replicate(replication, writes);
        }
        let (ticket, seqs, replaced) = self.queue_batch(writes)?;
        let rows = self.rows;
        drop(self);
        if let Some(ticket) = ticket {
            if let Err(error) = ticket.wait() {
                rows.lock_writer().unindex(writes, &seqs, replaced);
                return Err(error.into());
            }
        }
        Ok(seqs)
    }

    /// [`PartitionWriter::append`] that keeps the lock until the batch is durable: for a
    /// read-modify-write (UPDATE, DELETE), whose next competitor must read this result.
    pub fn append_holding_lock(self, writes: &[RowWrite<'_>]) -> Result<Vec<Seq>, VersionError> {
        if let Some(replication) = &self.rows.replication {
            return self.replicate(replication, writes);
        }
        let (ticket, seqs, replaced) = self.queue_batch(writes)?;
        if let Some(ticket) = ticket {
            if let Err(error) = ticket.wait() {
                self.unindex(writes, &seqs, replaced);
                return Err(error.into());
            }
        }
        drop(self);
        Ok(seqs)
    }

    /// After `writes` failed to commit (a full disk: the log undid the batch and the partition
    /// stays writable), put back the index entries they replaced (`replaced`, in order), where
    /// no later statement has written the key since.
    pub(super) fn unindex(
        &self,
        writes: &[RowWrite<'_>],
        seqs: &[Seq],
        replaced: Vec<Option<KeyVersion>>,
    ) {
        let mut index = self.rows.index.write();
        let keyed = writes.iter().filter(|w| !w.key().is_empty());
        for ((write, &seq), before) in keyed.zip(seqs).zip(replaced) {
            let key = IndexKey::new(write.key());
            if index.get(&key).is_none_or(|now| now.seq != seq) {
                continue;
            }
            match before {
                Some(version) => index.insert(key, version),
                None => index.remove(&key),
            };
        }
    }

    /// Queue the batch and index it; returns its ticket, `_seq`s, and the index entries it
    /// replaced (one per keyed write, in order).
    pub(super) fn queue_batch(&self, writes: &[RowWrite<'_>]) -> Result<QueuedBatch, VersionError> {
        let records = self.records_of(writes)?;
        if records.is_empty() {
            return Ok((None, Vec::new(), Vec::new()));
        }
        let mut seqs = Vec::with_capacity(writes.len());
        let ticket = self.rows.partition.submit_with_seqs(&records, &mut seqs)?;
        // Indexed before it is durable: the next statement's primary-key check must see these
        // keys. Readers compare index entries with their snapshot (`versions.rs` callers fall
        // back to the snapshot when an entry is newer). If the commit fails, the caller puts
        // the replaced entries back (`unindex`).
        let mut index = self.rows.index.write();
        let mut replaced = Vec::with_capacity(writes.len());
        for (write, &seq) in writes.iter().zip(&seqs) {
            if write.key().is_empty() {
                continue;
            }
            let deleted = !matches!(write, RowWrite::Put { .. });
            replaced.push(index.insert(IndexKey::new(write.key()), KeyVersion { seq, deleted }));
        }
        Ok((Some(ticket), seqs, replaced))
    }

    /// The log records of `writes`, each naming the version it replaces (from the key
    /// index, which the held lock keeps current).
    pub(super) fn records_of<'w>(
        &self,
        writes: &[RowWrite<'w>],
    ) -> Result<Vec<NewRecord<'w>>, VersionError> {
        let mut seen = std::collections::HashSet::with_capacity(writes.len());
        let mut records = Vec::with_capacity(writes.len());
        for write in writes {
            if !write.key().is_empty() && !seen.insert(write.key()) {
                return Err(VersionError::KeyRepeated);
            }
            let previous_version = match write {
                RowWrite::Expire { version, .. } => *version,
                _ => self.rows.version(write.key()).map_or(Seq::ZERO, |v| v.seq),
            };
            records.push(match *write {
                RowWrite::Put { key, row } => NewRecord {
                    previous_version,
                    ..NewRecord::new(key, row)
                },
                RowWrite::Delete { key } | RowWrite::Expire { key, .. } => NewRecord {
                    previous_version,
                    ..NewRecord::tombstone(key)
                },
            });
        }
        Ok(records)
    }
}
