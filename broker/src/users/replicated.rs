//! The user directory on a cluster member: a change (CREATE/ALTER/DROP USER, GRANT, REVOKE)
//! is replicated through the meta group ([`BlockingWriter`]) as records of `system/users`,
//! which every member appends at the same `_seq`s, so a user's incarnation (the `_seq` of the
//! record that created it, and part of its rows' partition names) is the same everywhere. Each
//! member then reads the records it has not applied into memory ([`UserDirectory::catch_up`]).
//!
//! The first administrator is not replicated: every member creates it at start, at the same
//! `_seq` ([`BOOTSTRAP_SEQ`], below any `_seq` a node issues), so it exists on each member
//! before any election, with the same incarnation. Its password is the one each member was
//! started with (give every member the same `STRAND_ADMIN_PASSWORD`); the first ALTER USER
//! replicates a new one to all.

use std::sync::atomic::Ordering;

use strand_log::{NewRecord, PartitionId, ReadFrom, ReplicatedRecord, Seq, SeqRange};
use strand_sql_view::{Role, UserName};

use super::record::{encode_user, DirectoryKey, StoredUser};
use super::{now_unix_ms, UserDirectory, UserError, USERS_PARTITION};
use crate::cluster::writer::BlockingWriter;
use crate::users::{RowsLayout, UserIncarnation};

/// The `_seq` of the first administrator's record on a cluster member: a Snowflake `_seq` is
/// far above it, so every replicated record comes after.
pub const BOOTSTRAP_SEQ: Seq = Seq(1);

/// The directory's change lock, held while a change reads the directory and writes, with the
/// term this node led its group in when it took it (0: a single node).
pub(super) struct ChangeLock<'a> {
    _lock: parking_lot::MutexGuard<'a, ()>,
    term: u64,
}

impl UserDirectory {
    /// From now on, changes are replicated through `writer` (a cluster member).
    pub fn replicate_through(&self, writer: BlockingWriter) {
        let _ = self.replication.set(writer);
    }

    /// Whether `id` is the directory's partition.
    pub fn is_users_partition(id: &PartitionId) -> bool {
        id.as_str() == USERS_PARTITION
    }

    /// Applies the records appended since the directory last read its partition (records a
    /// cluster member applied from its Raft group), and tells credential caches and open
    /// streams if anything changed.
    pub fn catch_up(&self) -> Result<(), UserError> {
        let mut through = self.replayed_through.lock();
        let snapshot = self.partition.snapshot();
        if snapshot.last_seq() <= *through {
            return Ok(());
        }
        {
            let mut state = self.write();
            for record in snapshot.records(ReadFrom::After(*through)) {
                let record = record?;
                let tombstone = record.flags.is_tombstone();
                state.apply(record.seq.0, record.key, record.payload, tombstone)?;
                *through = record.seq;
            }
        }
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
        self.access_changed();
        Ok(())
    }

    /// Appends a change's records: through the cluster on a member (in the term the change
    /// read the directory in), else to the local log.
    pub(super) fn append(
        &self,
        change: &ChangeLock<'_>,
        records: &[NewRecord<'_>],
    ) -> Result<SeqRange, UserError> {
        match self.replication.get() {
            Some(writer) => Ok(writer.append_in(self.partition_id(), records, change.term)?),
            None => Ok(self.partition.append(records)?),
        }
    }

    /// The change lock, once this node may change the directory: on a cluster member, once
    /// it leads and has applied every earlier change, so the checks a change makes read the
    /// newest directory. Taken under the lock, so a change whose proposal got no answer is
    /// settled first.
    pub(super) fn lock_change(&self) -> Result<ChangeLock<'_>, UserError> {
        let lock = self.change.lock();
        let mut term = 0;
        if let Some(writer) = self.replication.get() {
            term = writer.ready_to_lead()?;
            self.catch_up()?;
        }
        Ok(ChangeLock { _lock: lock, term })
    }

    /// `answer`, taken from this member's directory without a write (CREATE USER of a taken
    /// name, a GRANT already held, DROP USER IF EXISTS of no user): on a cluster member, only
    /// once a majority confirms this node still leads in the term it read in, else a leader
    /// cut off from the others could answer from a directory a newer leader has changed.
    /// Call it without the directory's state lock: the confirmation waits for this node to
    /// apply what it committed, and applying takes that lock.
    pub(super) fn unchanged<T>(
        &self,
        change: &ChangeLock<'_>,
        answer: Result<T, UserError>,
    ) -> Result<T, UserError> {
        if let Some(writer) = self.replication.get() {
            writer.confirm_leading(change.term)?;
        }
        answer
    }

    /// [`UserDirectory::unchanged`] for an error answer (a lookup that found nothing); a
    /// value read is for the write that follows, which a majority accepts or not.
    pub(super) fn unchanged_if_err<T>(
        &self,
        change: &ChangeLock<'_>,
        read: Result<T, UserError>,
    ) -> Result<T, UserError> {
        match read {
            Ok(value) => Ok(value),
            Err(error) => self.unchanged(change, Err(error)),
        }
    }

    /// [`UserDirectory::bootstrap_admin`] on a cluster member: `admin` at [`BOOTSTRAP_SEQ`]
    /// on a directory that has nothing yet (module doc).
    pub(super) fn bootstrap_admin_at_first_seq(
        &self,
        admin: &UserName,
        password: &str,
    ) -> Result<(), UserError> {
        let stored = StoredUser {
            role: Role::System,
            password_hash: self.hashing.hash(password)?,
            created_unix_ms: now_unix_ms(),
            incarnation: UserIncarnation(BOOTSTRAP_SEQ.0),
            rows: RowsLayout::ByIncarnation,
        };
        let key = DirectoryKey::User(admin.clone()).encode();
        let payload = encode_user(&stored);
        let record = ReplicatedRecord {
            seq: BOOTSTRAP_SEQ,
            timestamp_unix_ms: stored.created_unix_ms,
            record: NewRecord::new(&key, &payload),
        };
        self.partition.append_replicated(&[record])?;
        self.catch_up()
    }
}
