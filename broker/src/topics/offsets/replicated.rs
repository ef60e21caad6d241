//! Group offsets on a cluster member: commits and the retention's tombstones are written
//! through the meta group ([`BlockingWriter`]) instead of appended locally, and acknowledged
//! once a majority holds them durably. Every member, the leader included, appends them when it
//! applies the entry and reads them into its map ([`GroupOffsets::catch_up`], called by the
//! server's applied-records router), so a member that becomes leader has every acknowledged
//! commit, in the order the log holds them.
//!
//! Only the leader writes (the writer refuses elsewhere), and the leader's map is its log's:
//! nothing is inserted directly, so every member ends with the same map. A commit and an
//! expiry are ordered by [`Replication::writes`]: the expiry decides and writes under the
//! write side, so a group's commit lands either before the decision (and keeps the group
//! active) or after the tombstones (and stays).

use parking_lot::RwLock;

use strand_log::{NewRecord, PartitionId};

use super::{GroupOffsets, OffsetsError, OFFSETS_PARTITION};
use crate::cluster::writer::BlockingWriter;

/// How offset records reach the cluster.
pub(super) struct Replication {
    writer: BlockingWriter,
    /// Commits hold it shared through their write, an expiry exclusively (module comment).
    writes: RwLock<()>,
}

impl GroupOffsets {
    /// From now on, commits and expiries are replicated through `writer` (a cluster member).
    pub fn replicate_through(&self, writer: BlockingWriter) {
        let replication = Replication {
            writer,
            writes: RwLock::new(()),
        };
        let _ = self.replication.set(replication);
    }

    /// The writer, on a cluster member: the consumer-group service asks it whether this node
    /// leads (coordinators run on the leader only).
    pub fn cluster_writer(&self) -> Option<&BlockingWriter> {
        self.replication
            .get()
            .map(|replication| &replication.writer)
    }

    /// Whether `id` is the partition of the group offsets.
    pub fn is_offsets_partition(id: &PartitionId) -> bool {
        id.as_str() == OFFSETS_PARTITION
    }

    /// Reads the offset records appended since the map was last brought up to date (records
    /// a cluster member applied from its Raft group): the newest per key wins, a tombstone
    /// removes its key.
    pub fn catch_up(&self) -> Result<(), OffsetsError> {
        self.committed.lock().replay(&self.log)
    }

    /// Counts every group as active now at the latest, as after a restart: a new leader
    /// takes the groups over without removing offsets it has not seen a full retention.
    pub fn restart_retention(&self, now_ms: u64) {
        self.committed.lock().restart_retention(now_ms);
    }

    /// [`GroupOffsets::commit_all`] on a cluster member, once the records are built.
    pub(super) fn commit_replicated(
        &self,
        replication: &Replication,
        records: &[NewRecord<'_>],
        checked_in: Option<u64>,
    ) -> Result<(), OffsetsError> {
        let _writes = replication.writes.read();
        // Not under the map lock: applying the entry here takes it (`catch_up`), and that
        // happens before the write is acknowledged.
        match checked_in {
            Some(term) => replication.writer.append_in(&self.id, records, term)?,
            None => replication.writer.append(&self.id, records)?,
        };
        self.catch_up()
    }

    /// [`GroupOffsets::expire_idle`] on a cluster member (its leader).
    pub(super) fn expire_replicated(
        &self,
        replication: &Replication,
        now_ms: u64,
        retention_ms: u64,
        kept_max: usize,
        is_live: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, OffsetsError> {
        let _writes = replication.writes.write();
        // Decide on every commit made before this node led, not on a map that lags.
        let term = replication.writer.ready_to_lead()?;
        self.catch_up()?;
        let (expired, keys) = {
            let mut committed = self.committed.lock();
            let expired = committed.expiring(now_ms, retention_ms, kept_max, is_live);
            let keys = committed.keys_of(&expired);
            (expired, keys)
        };
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        if !keys.is_empty() {
            let records: Vec<NewRecord<'_>> = keys
                .iter()
                .map(|key| NewRecord::tombstone(key.as_bytes()))
                .collect();
            replication.writer.append_in(&self.id, &records, term)?;
        }
        // The tombstones removed the groups' keys; a group that had none is dropped too.
        let mut committed = self.committed.lock();
        committed.replay(&self.log)?;
        committed.forget(&expired);
        Ok(expired.into_iter().collect())
    }
}
